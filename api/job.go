package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Job is one request: files into a private workspace, then steps in order.
// See docs/api.md.
type Job struct {
	ID string `json:"id,omitempty"`
	// Key is any JSON value, echoed back; make it with KeyOf:
	// KeyOf("case-7") or KeyOf(7).
	Key            json.RawMessage `json:"key,omitempty"`
	Profile        string          `json:"profile,omitempty"`
	Files          map[string]File `json:"files,omitempty"`
	Steps          []Step          `json:"steps"`
	StopOn         string          `json:"stop_on,omitempty"`
	TrackedFiles   []string        `json:"tracked_files,omitempty"`
	WorkspaceBytes int64           `json:"workspace_bytes,omitempty"`
	OutputEncoding string          `json:"output_encoding,omitempty"`
	// KeepFiles are workspace paths put into the file cache when the job
	// ends; Result.Kept gives their ids.
	KeepFiles []string `json:"keep_files,omitempty"`
	// PauseBetweenSteps pauses the job after each step that does not end
	// it, until POST /v1/runs/{id}/continue (or a cancel): a client
	// watching the stream decides, from a step's result, whether the next
	// one runs at all.
	PauseBetweenSteps bool `json:"pause_between_steps,omitempty"`
}

// KeyOf makes a Job's key of v, as encoding/json encodes it: KeyOf("abc")
// is the JSON string "abc" (where []byte("abc") is not JSON at all), and a
// json.RawMessage is kept as it is. It panics when v cannot be encoded (a
// channel, a function), as a key that cannot be sent is a mistake in the
// program.
func KeyOf(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("api.KeyOf: %v", err))
	}
	return b
}

// StopOn values.
const (
	StopOnFailure = "failure"
	StopOnNever   = "never"
)

// Output encodings.
const (
	EncodingUTF8   = "utf8"
	EncodingBase64 = "base64"
)

// File is one input file. On the wire it is either a JSON string (UTF-8
// text, mode 0644) or an object {"content": "...", "mode": "0755"} or
// {"base64": "...", "mode": "0755"}.
type File struct {
	Content string `json:"content,omitempty"`
	Base64  string `json:"base64,omitempty"`
	Mode    string `json:"mode,omitempty"`
	// Cached is a file cache id (CachedFile.ID), instead of content or
	// base64: the cached file, read-only, with no copy.
	Cached string `json:"cached,omitempty"`
}

// UnmarshalJSON takes the string form or the object form, strictly.
func (f *File) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*f = File{}
		return json.Unmarshal(b, &f.Content)
	}
	type plain File
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("a file is a string or an object with content or base64, and mode: %w", err)
	}
	*f = File(p)
	return nil
}

// Step is one command run in the job's sandbox and workspace.
type Step struct {
	Argv           []string          `json:"argv"`
	Env            map[string]string `json:"env,omitempty"`
	Stdin          string            `json:"stdin,omitempty"`
	StdinBase64    string            `json:"stdin_base64,omitempty"`
	ExpectedStdout *string           `json:"expected_stdout,omitempty"`
	Limits         Limits            `json:"limits,omitempty"`
	// StdinCached is a file cache id, instead of stdin or stdin_base64.
	StdinCached string `json:"stdin_cached,omitempty"`
	// StdinPipe makes the program's stdin the job's stdin pipe, which the
	// client writes while the job runs (POST /v1/runs/{id}/stdin): input
	// typed while the program waits for it. Not with the other stdin
	// fields.
	StdinPipe bool `json:"stdin_pipe,omitempty"`
	// Programs, if set, run at once, each in a sandbox of its own, joined
	// by Pipes; Argv, the stdin fields and expected_stdout are then left
	// out. See docs/api.md, "Interactive steps".
	Programs []Program `json:"programs,omitempty"`
	Pipes    []Pipe    `json:"pipes,omitempty"`

	// Checkers (see compare.go): where stdout also goes, and how it is
	// compared with the expected output.
	StdoutTo           string  `json:"stdout_to,omitempty"`
	ExpectedStdoutFile string  `json:"expected_stdout_file,omitempty"`
	Compare            string  `json:"compare,omitempty"`
	FloatAbs           float64 `json:"float_abs,omitempty"`
	FloatRel           float64 `json:"float_rel,omitempty"`
}

// Job statuses.
const (
	StatusCompleted = "completed"
	StatusCancelled = "cancelled"
	StatusError     = "error"
)

// Result is what a job did.
type Result struct {
	ID      string                  `json:"id"`
	Status  string                  `json:"status"`
	Message string                  `json:"message,omitempty"`
	Steps   []StepResult            `json:"steps"`
	Files   map[string]*TrackedFile `json:"files,omitempty"`
	Timing  Timing                  `json:"timing"`
	// Kept holds the cache id of each of Job.KeepFiles that was kept.
	Kept map[string]CachedFile `json:"kept,omitempty"`
}

// TrackedFile is a file read back from the workspace. A missing file is a
// null in Result.Files.
type TrackedFile struct {
	Content   string `json:"content"`
	Truncated bool   `json:"truncated"`
}

// Timing of a job, in milliseconds.
type Timing struct {
	QueuedMS float64 `json:"queued_ms"`
	SetupMS  float64 `json:"setup_ms"`
	TotalMS  float64 `json:"total_ms"`
}

// Event is one line of a streamed run (Accept: application/x-ndjson).
// Result holds a StepResult for "step_finished" and a Result for
// "finished"; use StepResult() and JobResult() to decode it.
type Event struct {
	Event  string          `json:"event"`
	ID     string          `json:"id,omitempty"`
	Step   *int            `json:"step,omitempty"`
	Data   string          `json:"data,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Event names.
const (
	EventStarted      = "started"
	EventStdout       = "stdout"
	EventStderr       = "stderr"
	EventStepFinished = "step_finished"
	EventFinished     = "finished"
	EventError        = "error"
)

// StepResult decodes the result of a "step_finished" event.
func (e *Event) StepResult() (*StepResult, error) {
	var r StepResult
	return &r, json.Unmarshal(e.Result, &r)
}

// JobResult decodes the result of a "finished" event.
func (e *Event) JobResult() (*Result, error) {
	var r Result
	return &r, json.Unmarshal(e.Result, &r)
}

// BatchLine is one line of a batch's answer: a finished job, or (last) the
// summary.
type BatchLine struct {
	Index   *int            `json:"index,omitempty"`
	Key     json.RawMessage `json:"key,omitempty"`
	Result  *Result         `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"` // the job was refused (invalid)
	Summary *BatchSummary   `json:"summary,omitempty"`
}

// BatchSummary closes a batch.
type BatchSummary struct {
	Total    int            `json:"total"`
	Statuses map[string]int `json:"statuses"`
	// Verdicts counts each job that ran once: by the verdict of its first
	// step that is not ok, wrong_answer (VerdictWrongAnswer) for an ok
	// step whose stdout did not match, or ok.
	Verdicts map[string]int `json:"verdicts"`
	Invalid  int            `json:"invalid"`
	WallMS   float64        `json:"wall_ms"`
}

// Error codes.
const (
	CodeInvalidArgument   = "invalid_argument"
	CodePermissionDenied  = "permission_denied"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeResourceExhausted = "resource_exhausted"
	CodeUnavailable       = "unavailable"
	CodeInternal          = "internal"
)

// Error is the body of any non-2xx answer: {"error": {...}}.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorBody wraps Error on the wire.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// Run states.
const (
	StateQueued  = "queued"
	StateRunning = "running"
	// StatePaused is a job with pause_between_steps between two steps,
	// waiting for POST /v1/runs/{id}/continue.
	StatePaused   = "paused"
	StateFinished = "finished"
)

// RunInfo is one entry of GET /v1/runs, and the answer of GET /v1/runs/{id}
// (with Result once finished).
type RunInfo struct {
	ID        string          `json:"id"`
	Key       json.RawMessage `json:"key,omitempty"`
	CallerUID uint32          `json:"caller_uid"`
	State     string          `json:"state"`
	AgeMS     float64         `json:"age_ms"`
	Step      int             `json:"step"` // the step running or next
	Steps     int             `json:"steps"`
	Result    *Result         `json:"result,omitempty"`
}

// RunList is the answer of GET /v1/runs.
type RunList struct {
	Runs []RunInfo `json:"runs"`
}

// Info is the answer of GET /v1/info.
type Info struct {
	Version  string          `json:"version"`
	Kernel   string          `json:"kernel"`
	Cgroup   CgroupInfo      `json:"cgroup"`
	Features map[string]bool `json:"features"`
	Profiles []ProfileInfo   `json:"profiles"`
	// Languages are the profiles that carry a language, in profile order.
	Languages []LanguageInfo `json:"languages"`
	Pool      PoolInfo       `json:"pool"`
	Config    ConfigInfo     `json:"config"`
}

// ConfigInfo says which configuration of the daemon is in force: a
// reload (SIGHUP, systemctl reload) reads the config file again.
type ConfigInfo struct {
	// Generation is 1 at start, and one more for each reload put in force.
	Generation uint64 `json:"generation"`
	// ReloadError says why the last reload was refused (the generation
	// before it stays in force); empty when it was not.
	ReloadError string `json:"reload_error,omitempty"`
	// RestartPending names the keys whose value in the file differs from
	// the one in force and applies only at the next start.
	RestartPending []string `json:"restart_pending,omitempty"`
}

// CgroupInfo describes the host's cgroups as the daemon uses them.
type CgroupInfo struct {
	Mode        string            `json:"mode"`
	Controllers []string          `json:"controllers"`
	Paths       map[string]string `json:"paths"`
}

// ProfileInfo is a profile's name and limits.
type ProfileInfo struct {
	Name     string `json:"name"`
	Defaults Limits `json:"default_limits"`
	Max      Limits `json:"max_limits"`
	// WorkspaceBytes is a job's workspace unless it asks for another
	// size, at most MaxWorkspaceBytes.
	WorkspaceBytes    int64 `json:"workspace_bytes"`
	MaxWorkspaceBytes int64 `json:"max_workspace_bytes"`
}

// LanguageInfo is a profile that carries a language: how a program in it
// is compiled and run, and whether this host can.
type LanguageInfo struct {
	// Profile is the profile's name, which a job names to use it.
	Profile  string   `json:"profile"`
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
	// Available is false when the toolchain is missing from the host or
	// from the profile's binds; Reason then says what is missing, and a
	// job in the profile is refused.
	Available bool   `json:"available"`
	Reason    string `json:"reason,omitempty"`
	// SourceFile is the workspace file the program's source goes in;
	// Compile (absent for a language with no compile stage) and Run are
	// the steps' argv, run in the workspace.
	SourceFile string   `json:"source_file"`
	Compile    []string `json:"compile,omitempty"`
	Run        []string `json:"run"`
}

// PoolInfo is the daemon's capacity and load.
type PoolInfo struct {
	Concurrency int `json:"concurrency"`
	QueueSize   int `json:"queue_size"`
	Running     int `json:"running"`
	// WarmSandboxes is how many built sandboxes each profile keeps ready;
	// WarmReady how many are ready now, over every profile.
	WarmSandboxes int `json:"warm_sandboxes"`
	WarmReady     int `json:"warm_ready"`
	// WorkspacesReady counts the empty workspaces mounted ahead for the
	// next jobs (as many per workspace size as WarmSandboxes). They are in
	// the state dir while the daemon runs; none is given to two jobs.
	WorkspacesReady int `json:"workspaces_ready"`
	Queued          int `json:"queued"`
}

// StdinFields is how the bytes b go into a step's stdin fields: as text in
// stdin when they are UTF-8, else in stdin_base64.
func StdinFields(b []byte) (stdin, stdinBase64 string) {
	if utf8.Valid(b) {
		return string(b), ""
	}
	return "", base64.StdEncoding.EncodeToString(b)
}
