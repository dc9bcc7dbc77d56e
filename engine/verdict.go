package engine

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

	cpu       time.Duration
	cpuLimit  time.Duration
	wall      time.Duration
	wallLimit time.Duration
	oomKills  int64

	// truncated says an output stream passed its cap, whether or not
	// the program was still running when that was seen.
	truncated bool
	// fileSizeLimit is the sandbox's RLIMIT_FSIZE; diedFileSize the limit
	// pid 2 had when SIGXFSZ ended it (nil: not known).
	fileSizeLimit int64
	diedFileSize  *uint64
	// filePastLimit says the step left a file larger than fileSizeLimit
	// (its processes may write one byte more, which marks it).
	filePastLimit bool

	memPeak      int64 // the step's memory peak, bytes; 0 if unknown
	memLimit     int64 // its own memory limit, bytes
	memLimitHits int64 // charges refused at that limit, where the kernel counts them
}

// memorySlack is how far below its limit a step's memory peak may stay
// when the limit refuses a charge: the kernel charges what it can in
// single pages, and the few larger charges that cannot fall back are a
// few pages each.
const memorySlack = 1 << 20

// metMemoryLimit says whether the step reached its own memory limit. An
// OOM kill of a step that did not came from outside it: the cgroup of the
// engine's process (the daemon's, or sandboxd exec's), or the host, ran
// out of memory.
func (f stepFacts) metMemoryLimit() bool {
	return f.memLimitHits > 0 || f.memLimit > 0 && f.memPeak >= f.memLimit-memorySlack
}

const sigXFSZ = 25

// passedFileSizeLimit says SIGXFSZ ended the program at the sandbox's
// file-size limit, not at a lower one it set itself.
func (f stepFacts) passedFileSizeLimit() bool {
	return f.signal == sigXFSZ && (f.diedFileSize == nil || *f.diedFileSize >= uint64(f.fileSizeLimit))
}

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
	case f.cause == causeOutput || f.cause == causeNone && f.truncated:
		return api.VerdictOutputLimit, ""
	case (f.cause == causeMemory || f.oomKills > 0) && !f.metMemoryLimit():
		return api.VerdictInternalError, fmt.Sprintf("out of memory outside the sandbox: the kernel killed %d process(es) of the step at a peak of %d bytes, below its limit of %d; sandboxd's cgroup or the host ran out of memory",
			f.oomKills, f.memPeak, f.memLimit)
	case f.cause == causeMemory || f.oomKills > 0:
		return api.VerdictMemoryLimit, fmt.Sprintf("%d process(es) killed by the memory limit", f.oomKills)
	case f.cause == causeWall:
		return api.VerdictWallTimeLimit, ""
	case f.cpuLimit > 0 && f.cpu > f.cpuLimit:
		return api.VerdictCPUTimeLimit, ""
	case f.wallLimit > 0 && f.wall > f.wallLimit:
		return api.VerdictWallTimeLimit, ""
	case !f.exited:
		return api.VerdictInternalError, "the program's end was not seen"
	case f.passedFileSizeLimit():
		return api.VerdictOutputLimit, "file size limit (SIGXFSZ)"
	case f.filePastLimit:
		return api.VerdictOutputLimit, "a file passed file_size_bytes"
	case f.signal != 0:
		return api.VerdictSignaled, ""
	case f.exitCode != 0:
		return api.VerdictNonzeroExit, ""
	}
	return api.VerdictOK, ""
}
