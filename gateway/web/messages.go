package web

// Message types, both ways. A client's message without a type is an
// execute.
const (
	TypeExecute = "execute"
	TypeStop    = "stop"
	TypeStdin   = "stdin"

	TypeExecutionStart    = "execution_start"
	TypeStdout            = "stdout"
	TypeStderr            = "stderr"
	TypeExecutionComplete = "execution_complete"
	TypeTimeout           = "timeout"
	TypeError             = "error"
)

// ClientMessage is what a browser sends: {"type": "execute", "code": ...,
// "language": ...}, {"type": "stop"}, {"type": "stdin", "data": ...,
// "eof": true}.
type ClientMessage struct {
	Type     string  `json:"type"`
	Code     *string `json:"code"`
	Language string  `json:"language"`
	Data     *string `json:"data"`
	EOF      bool    `json:"eof"`
}

// Message is what the gateway sends, one per frame. Type and Message or
// Content are the original protocol's; the rest are ours, left out when
// empty.
type Message struct {
	Type        string `json:"type"`
	ExecutionID string `json:"execution_id,omitempty"`
	Message     string `json:"message,omitempty"`
	// Content is one line of stdout or stderr, without its newline.
	Content *string `json:"content,omitempty"`
	// Partial: Content is the start of a line the program has not ended
	// yet (a prompt before input()); the rest follows in later messages.
	Partial bool `json:"partial,omitempty"`

	// A run's end (execution_complete, timeout, error of the program):
	// its verdict and measurements.
	ExitCode        *int     `json:"exit_code,omitempty"`
	Verdict         string   `json:"verdict,omitempty"`
	CPUTimeMS       *float64 `json:"cpu_time_ms,omitempty"`
	WallTimeMS      *float64 `json:"wall_time_ms,omitempty"`
	MemoryPeakBytes *int64   `json:"memory_peak_bytes,omitempty"`
	// Stopped: the run ended on the client's stop.
	Stopped bool `json:"stopped,omitempty"`
	// Traceback is the program's traceback, for an error that is an
	// exception in its code (Message holds it too).
	Traceback string `json:"traceback,omitempty"`
}
