package nsjail

import "time"

// The init's file descriptors, as Prepare lays them out. 0, 1 and 2 are
// /dev/null: the program's own come with its command.
const (
	fdCommand = 3 // read: the command (rawCommand and what follows it), then EOF
	fdReport  = 4 // write: one JSON message a line
	fdControl = 5 // a SOCK_SEQPACKET socket: one message with the command's descriptors
	fdJoin    = 6 // and on: cgroup.procs files the program joins
)

// MaxExtraFD is the highest descriptor a command may give its program
// (IO.ExtraFiles): at its exec the program has 0, 1, 2 and those it was
// given of 3 to MaxExtraFD, and nothing else.
const MaxExtraFD = 9

// extraFDBits has bit n set for each n of 3 to MaxExtraFD.
const extraFDBits = 1<<(MaxExtraFD+1) - 1 - 0b111

// messageKind names a report from the init.
type messageKind string

const (
	msgReady   messageKind = "ready"   // the sandbox is built and waits for its command
	msgStarted messageKind = "started" // the program exec'ed
	msgFailed  messageKind = "failed"  // the sandbox could not be set up, or the program not started
	msgBlocked messageKind = "blocked" // the program made a call its seccomp policy forbids
	msgExited  messageKind = "exited"  // the program (pid 2) ended
)

// message is one line the init writes on fdReport.
type message struct {
	Kind messageKind `json:"kind"`

	// failed
	Step     step   `json:"step,omitempty"`
	Arg      string `json:"arg,omitempty"` // the step's path; for ExecStep, the program
	Errno    int    `json:"errno,omitempty"`
	Error    string `json:"error,omitempty"`
	ExecStep bool   `json:"exec_step,omitempty"` // the failure is the program's own (execve, lookup)

	// blocked
	Nr   int32  `json:"nr,omitempty"`
	Arch uint32 `json:"arch,omitempty"`
	PID  uint32 `json:"pid,omitempty"` // in the sandbox's pid namespace

	// exited
	Unused    uint32 `json:"unused,omitempty"`
	ExitCode  int    `json:"exit_code,omitempty"`
	Signal    int    `json:"signal,omitempty"`
	MaxRSSKiB int64  `json:"max_rss_kib,omitempty"`
	UserNs    int64  `json:"user_ns,omitempty"`
	SysNs     int64  `json:"sys_ns,omitempty"`
	WallNs    int64  `json:"wall_ns,omitempty"` // command handed to pid 2 (before its exec) to pid 2 reaped, by the init's clock
	// FileSizeLimit is pid 2's RLIMIT_FSIZE when SIGXFSZ ended it.
	FileSizeLimit *uint64 `json:"file_size_limit,omitempty"`
}

// Exit is how the program ended, as its init saw it.
type Exit struct {
	Code      int           // exit status when Signal is 0
	Signal    int           // the signal that ended it, or 0
	MaxRSS    int64         // bytes: the largest RSS of pid 2 and the children it waited for
	User, Sys time.Duration // rusage of pid 2 and its waited-for children
	Wall      time.Duration // from just before pid 2 is given its command to its end: never shorter than the run
	// FileSizeLimit is, when SIGXFSZ ended the program, the file-size
	// limit it had then (it may have lowered the sandbox's); else nil.
	FileSizeLimit *uint64
	// Unused says which of the sandbox's own file systems held nothing
	// but their root once every process of the program was gone: the
	// Unused* bits, with UnusedKnown when the init looked.
	Unused uint32
}

// Exit.Unused bits.
const (
	UnusedTmp       = 1 << iota // /tmp
	UnusedShm                   // /dev/shm
	UnusedWorkspace             // WorkspaceDir (a host workdir bound there is not the sandbox's own: ignore it)
	UnusedKnown                 // the init looked
)
