package gojudge

// The wire types of go-judge's REST API, as its README ("REST API
// Interface") gives them: JSON names, ns for times, bytes for sizes.

// Request is the body of POST /run.
type Request struct {
	RequestID   string    `json:"requestId"`
	Cmd         []Cmd     `json:"cmd"`
	PipeMapping []PipeMap `json:"pipeMapping"`
}

// Cmd is one command. Zero limits take the daemon profile's default.
type Cmd struct {
	Args  []string   `json:"args"`
	Env   []string   `json:"env"`
	Files []*CmdFile `json:"files"` // fd 0, 1, 2, ...: nil where a pipe is mapped

	CPULimit     uint64 `json:"cpuLimit"`     // ns
	RealCPULimit uint64 `json:"realCpuLimit"` // ns, the old name of clockLimit
	ClockLimit   uint64 `json:"clockLimit"`   // ns
	MemoryLimit  uint64 `json:"memoryLimit"`  // bytes
	StackLimit   uint64 `json:"stackLimit"`   // bytes
	ProcLimit    uint64 `json:"procLimit"`
	CPURateLimit uint64 `json:"cpuRateLimit"` // thousandths of a CPU
	CPUSetLimit  string `json:"cpuSetLimit"`  // not supported

	CopyIn        map[string]CmdFile `json:"copyIn"`
	CopyOut       []string           `json:"copyOut"`
	CopyOutCached []string           `json:"copyOutCached"`
	CopyOutMax    uint64             `json:"copyOutMax"` // bytes
	CopyOutDir    string             `json:"copyOutDir"` // not supported

	TTY               bool `json:"tty"` // not supported
	StrictMemoryLimit bool `json:"strictMemoryLimit"`
	DataSegmentLimit  bool `json:"dataSegmentLimit"`
	AddressSpaceLimit bool `json:"addressSpaceLimit"`
}

// CmdFile is a file: an input (src, content or fileId) or a collector of
// an output (name and max).
type CmdFile struct {
	Src     *string `json:"src"`
	Content *string `json:"content"`
	FileID  *string `json:"fileId"`
	Name    *string `json:"name"`
	Max     *int64  `json:"max"`
	Symlink *string `json:"symlink"` // not supported
	// StreamIn and StreamOut belong to go-judge's WebSocket stream API.
	StreamIn  *bool `json:"streamIn"`
	StreamOut *bool `json:"streamOut"`
	Pipe      bool  `json:"pipe"`
}

// PipeIndex is one end of a pipe: a cmd's index and its fd.
type PipeIndex struct {
	Index int `json:"index"`
	Fd    int `json:"fd"`
}

// PipeMap joins In (written by its cmd) to Out (read by its cmd). With
// Proxy and Name, up to Max bytes of the traffic come back as a file.
type PipeMap struct {
	In    PipeIndex `json:"in"`
	Out   PipeIndex `json:"out"`
	Name  string    `json:"name"`
	Max   int64     `json:"max"`
	Proxy bool      `json:"proxy"`
}

// Result is what one cmd did; POST /run answers one per cmd, in order.
type Result struct {
	Status     Status            `json:"status"`
	ExitStatus int               `json:"exitStatus"`
	Error      string            `json:"error,omitempty"`
	Time       uint64            `json:"time"`    // ns of CPU
	Memory     uint64            `json:"memory"`  // bytes
	RunTime    uint64            `json:"runTime"` // ns by the clock
	Files      map[string]string `json:"files,omitempty"`
	FileIDs    map[string]string `json:"fileIds,omitempty"`
	FileError  []FileError       `json:"fileError,omitempty"`
}

// FileError says why a file could not be copied in or out.
type FileError struct {
	Name    string        `json:"name"`
	Type    FileErrorType `json:"type"`
	Message string        `json:"message,omitempty"`
}

// FileErrorType is one of go-judge's file error kinds.
type FileErrorType string

// The kinds this gateway reports.
const (
	CopyInOpenFile        FileErrorType = "CopyInOpenFile"
	CopyOutOpen           FileErrorType = "CopyOutOpen"
	CopyOutSizeExceeded   FileErrorType = "CopyOutSizeExceeded"
	CopyOutCreateFile     FileErrorType = "CopyOutCreateFile"
	CollectSizeExceeded   FileErrorType = "CollectSizeExceeded"
	CopyOutNotRegularFile FileErrorType = "CopyOutNotRegularFile"
)
