package gojudge

import (
	"math"

	"github.com/sandboxd/sandboxd/api"
)

// Status is one of go-judge's status strings, exactly.
type Status string

// go-judge's statuses (its README, "Return Status").
const (
	StatusAccepted            Status = "Accepted"
	StatusMemoryLimitExceeded Status = "Memory Limit Exceeded"
	StatusTimeLimitExceeded   Status = "Time Limit Exceeded"
	StatusOutputLimitExceeded Status = "Output Limit Exceeded"
	StatusFileError           Status = "File Error"
	StatusNonzeroExitStatus   Status = "Nonzero Exit Status"
	StatusSignalled           Status = "Signalled"
	StatusInternalError       Status = "Internal Error"
)

// convertResult turns one program's result into go-judge's, but for its
// files: the status, exitStatus (the exit code, or the number of the
// signal that ended it, as go-judge gives it), error, and the
// measurements in go-judge's units.
//
// Decided where go-judge has no exact counterpart:
//   - syscall_blocked is Signalled with exitStatus 31 (SIGSYS) and the
//     blocked call in error: go-judge's default build (no seccomp tag)
//     reports a program its filter kills as killed by that signal.
//   - exec_failed is Internal Error, as go-judge reports a program that
//     does not exist; error says why.
//   - internal_error, cancelled and skipped are Internal Error.
func convertResult(s api.StepResult) Result {
	r := Result{
		Time:    nsOf(s.CPUTimeMS),
		RunTime: nsOf(s.WallTimeMS),
		Memory:  uint64(max(s.MemoryPeakBytes, 0)),
	}
	r.ExitStatus = s.ExitCode
	if n := signalNumber(s.Signal); n > 0 {
		r.ExitStatus = n
	}
	switch s.Verdict {
	case api.VerdictOK:
		r.Status = StatusAccepted
	case api.VerdictNonzeroExit:
		r.Status = StatusNonzeroExitStatus
	case api.VerdictSignaled:
		r.Status = StatusSignalled
	case api.VerdictCPUTimeLimit, api.VerdictWallTimeLimit:
		r.Status = StatusTimeLimitExceeded
	case api.VerdictMemoryLimit:
		r.Status = StatusMemoryLimitExceeded
	case api.VerdictOutputLimit:
		r.Status = StatusOutputLimitExceeded
	case api.VerdictSyscallBlocked:
		r.Status = StatusSignalled
		r.ExitStatus = 31
		r.Error = s.Message
	default: // exec_failed, internal_error, cancelled, skipped
		r.Status = StatusInternalError
		r.Error = s.Message
		if r.Error == "" {
			r.Error = "sandboxd: " + string(s.Verdict)
		}
	}
	return r
}

// nsOf converts sandboxd's milliseconds to go-judge's nanoseconds.
func nsOf(ms float64) uint64 {
	if ms <= 0 {
		return 0
	}
	return uint64(math.Round(ms * 1e6))
}

// signalNumber is the Linux number of a signal's name ("SIGSEGV": 11); 0
// for "" or a name it does not know.
func signalNumber(name string) int {
	for i, n := range signalNames {
		if n == name {
			return i
		}
	}
	return 0
}

// signalNames are Linux's (x86, arm and most others) by number.
var signalNames = [...]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV",
	12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
	18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG",
	24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO",
	30: "SIGPWR", 31: "SIGSYS"}
