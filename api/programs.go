package api

// Program is one of the programs of an interactive step: a command run in
// a sandbox of its own at the same time as the step's other programs.
type Program struct {
	// Name is how pipes and results name the program: 1 to 32 characters
	// of A-Z a-z 0-9 _ -, unique in its step.
	Name   string            `json:"name"`
	Argv   []string          `json:"argv"`
	Env    map[string]string `json:"env,omitempty"`
	Limits Limits            `json:"limits,omitempty"`
	// Workspace is WorkspaceJob (the default: the job's workspace, shared
	// with the step's other programs that use it) or WorkspacePrivate.
	Workspace string `json:"workspace,omitempty"`
	// Files are written into a private workspace before the program
	// starts, as a job's files are into the job's; TrackedFiles are read
	// back from it after the program ends, into ProgramResult.Files. Only
	// with WorkspacePrivate.
	Files        map[string]File `json:"files,omitempty"`
	TrackedFiles []string        `json:"tracked_files,omitempty"`
}

// Program workspaces.
const (
	WorkspaceJob = "job"
	// WorkspacePrivate is a fresh empty workspace of the job's size, the
	// program's own, gone when it ends.
	WorkspacePrivate = "private"
)

// Pipe joins two programs of a step: what From writes, To reads. Each end
// is "name:fd", e.g. "solution:1" -> "interactor:0", with fd 0 to 9: From
// any but 0, To 0 or 3 to 9.
type Pipe struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Capture, if set, copies up to this many bytes of the traffic into
	// the step's result (StepResult.Pipes).
	Capture int64 `json:"capture_bytes,omitempty"`
}

// ProgramResult is what one program of a step did and used.
type ProgramResult struct {
	Name string `json:"name"`
	StepResult
	// Files are the program's tracked_files, read from its private
	// workspace as a job's are (a missing one is null).
	Files map[string]*TrackedFile `json:"files,omitempty"`
}

// PipeCapture is the traffic of a pipe with capture_bytes, encoded as the
// job's stdout is.
type PipeCapture struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Data      string `json:"data"`
	Truncated bool   `json:"truncated"`
}
