package daemon

import (
	"fmt"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// killCause is why the parent (or the init, for a forbidden call) ended a
// step early. The first cause recorded is the one that counts.
type killCause int

const (
	causeNone killCause = iota
	causeCancelled
	causeBlocked
	causeCPU
	causeOutput
	causeMemory
	causeWall
)

// stepFacts is what was observed of one step; decide turns it into a
// verdict. It is plain data so that the rules can be tested on their own.
type stepFacts struct {
	setupErr error // the sandbox failed: not the program's fault
	execErr  error // the program could not be started
	cause    killCause
	blocked  string // the forbidden call, for causeBlocked

	exited   bool
	exitCode int
	signal   int

	cpu      time.Duration
	cpuLimit time.Duration
	oomKills int64
}

const (
	sigXCPU = 24
	sigXFSZ = 25
)

// decide gives the one verdict of a step, and a message where it helps.
func decide(f stepFacts) (api.Verdict, string) {
	switch {
	case f.cause == causeCancelled:
		return api.VerdictCancelled, "the job was cancelled"
	case f.setupErr != nil:
		return api.VerdictInternalError, f.setupErr.Error()
	case f.execErr != nil:
		return api.VerdictExecFailed, f.execErr.Error()
	case f.cause == causeBlocked:
		return api.VerdictSyscallBlocked, "blocked system call: " + f.blocked
	case f.cause == causeCPU:
		return api.VerdictCPUTimeLimit, ""
	case f.cause == causeOutput:
		return api.VerdictOutputLimit, ""
	case f.cause == causeMemory || f.oomKills > 0:
		return api.VerdictMemoryLimit, fmt.Sprintf("%d process(es) killed by the memory limit", f.oomKills)
	case f.cause == causeWall:
		return api.VerdictWallTimeLimit, ""
	case f.cpuLimit > 0 && f.cpu > f.cpuLimit:
		return api.VerdictCPUTimeLimit, ""
	case !f.exited:
		return api.VerdictInternalError, "the program's end was not seen"
	case f.signal == sigXCPU:
		return api.VerdictCPUTimeLimit, "SIGXCPU"
	case f.signal == sigXFSZ:
		return api.VerdictOutputLimit, "file size limit (SIGXFSZ)"
	case f.signal != 0:
		return api.VerdictSignaled, ""
	case f.exitCode != 0:
		return api.VerdictNonzeroExit, ""
	}
	return api.VerdictOK, ""
}
