package api

// Verdict is the outcome of one step. Exactly one applies to each step.
type Verdict string

// The verdicts of docs/api.md.
const (
	VerdictOK             Verdict = "ok"
	VerdictNonzeroExit    Verdict = "nonzero_exit"
	VerdictSignaled       Verdict = "signaled"
	VerdictCPUTimeLimit   Verdict = "cpu_time_limit"
	VerdictWallTimeLimit  Verdict = "wall_time_limit"
	VerdictMemoryLimit    Verdict = "memory_limit"
	VerdictOutputLimit    Verdict = "output_limit"
	VerdictSyscallBlocked Verdict = "syscall_blocked"
	VerdictExecFailed     Verdict = "exec_failed"
	VerdictSkipped        Verdict = "skipped"
	VerdictCancelled      Verdict = "cancelled"
	VerdictInternalError  Verdict = "internal_error"
)

// VerdictWrongAnswer is never a step's verdict: a batch summary counts
// under it the jobs whose first step that is not ok exited ok with a
// stdout that did not match its expected_stdout.
const VerdictWrongAnswer Verdict = "wrong_answer"

// Limits bound one step. A zero field means "not set": it is left out on
// the wire and the profile's default applies. On the wire a limit is at
// least 1: a 0 sent is refused, never read as "not set".
type Limits struct {
	CPUTimeMS     int64 `json:"cpu_time_ms,omitempty"`
	WallTimeMS    int64 `json:"wall_time_ms,omitempty"`
	MemoryBytes   int64 `json:"memory_bytes,omitempty"`
	PIDs          int64 `json:"pids,omitempty"`
	OutputBytes   int64 `json:"output_bytes,omitempty"`
	FileSizeBytes int64 `json:"file_size_bytes,omitempty"`
	OpenFiles     int64 `json:"open_files,omitempty"`
	StackBytes    int64 `json:"stack_bytes,omitempty"`
	// CPUs caps the rate at which the step's programs use CPU time, in
	// CPUs (0.5: half of one; 2: two), all their processes and threads
	// together, as the CPU controller's quota over 100 ms periods. A
	// program held back by it is not killed for it: cpu_time_ms and
	// wall_time_ms still decide.
	CPUs float64 `json:"cpus,omitempty"`
}

// StepResult is what one step did and used.
type StepResult struct {
	Verdict         Verdict `json:"verdict"`
	ExitCode        int     `json:"exit_code"`
	Signal          string  `json:"signal"`
	Stdout          string  `json:"stdout"`
	Stderr          string  `json:"stderr"`
	StdoutTruncated bool    `json:"stdout_truncated"`
	StderrTruncated bool    `json:"stderr_truncated"`
	StdoutMatches   *bool   `json:"stdout_matches,omitempty"`
	CPUTimeMS       float64 `json:"cpu_time_ms"`
	UserTimeMS      float64 `json:"user_time_ms"`
	SysTimeMS       float64 `json:"sys_time_ms"`
	WallTimeMS      float64 `json:"wall_time_ms"`
	MemoryPeakBytes int64   `json:"memory_peak_bytes"`
	MaxRSSBytes     int64   `json:"max_rss_bytes"`
	PIDsPeak        int64   `json:"pids_peak"`
	// ThrottledMS is how long the cpus limit held the program back, in
	// whole ms, summed over the CPUs it had work waiting on (the CPU
	// controller's throttled time); 0 when it never ran out of its quota.
	ThrottledMS int64  `json:"throttled_ms"`
	Message     string `json:"message"`
	// Programs and Pipes are those of a step with programs.
	Programs []ProgramResult `json:"programs,omitempty"`
	Pipes    []PipeCapture   `json:"pipes,omitempty"`
}
