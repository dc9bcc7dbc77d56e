package engine

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

func TestDecide(t *testing.T) {
	sec := time.Second
	for _, tc := range []struct {
		name string
		f    stepFacts
		want api.Verdict
	}{
		{"clean exit", stepFacts{exited: true}, api.VerdictOK},
		{"exit 3", stepFacts{exited: true, exitCode: 3}, api.VerdictNonzeroExit},
		{"segv", stepFacts{exited: true, signal: 11}, api.VerdictSignaled},
		{"abort", stepFacts{exited: true, signal: 6}, api.VerdictSignaled},
		{"cpu budget killed it", stepFacts{exited: true, signal: 9, cause: causeCPU, cpu: sec, cpuLimit: sec}, api.VerdictCPUTimeLimit},
		{"finished just past the cpu limit", stepFacts{exited: true, cpu: sec + time.Millisecond, cpuLimit: sec}, api.VerdictCPUTimeLimit},
		{"finished at the cpu limit", stepFacts{exited: true, cpu: sec, cpuLimit: sec}, api.VerdictOK},
		{"rlimit cpu backstop", stepFacts{exited: true, signal: 24, cpu: 3 * sec, cpuLimit: sec}, api.VerdictCPUTimeLimit},
		{"SIGXCPU of its own rlimit, under the budget", stepFacts{exited: true, signal: 24, cpu: sec / 2, cpuLimit: sec}, api.VerdictSignaled},
		{"ran past the wall limit, ended before the kill", stepFacts{exited: true, wall: sec + time.Millisecond, wallLimit: sec}, api.VerdictWallTimeLimit},
		{"exited with its output cut", stepFacts{exited: true, truncated: true}, api.VerdictOutputLimit},
		{"output cut, then the cpu budget", stepFacts{exited: true, signal: 9, cause: causeCPU, truncated: true}, api.VerdictCPUTimeLimit},
		{"wall", stepFacts{exited: true, signal: 9, cause: causeWall}, api.VerdictWallTimeLimit},
		{"oom killed main", stepFacts{exited: true, signal: 9, oomKills: 1, memLimitHits: 3}, api.VerdictMemoryLimit},
		{"oom killed a child, main slept on", stepFacts{exited: true, signal: 9, cause: causeWall, oomKills: 1, memLimitHits: 1}, api.VerdictMemoryLimit},
		{"oom seen by polling", stepFacts{exited: true, signal: 9, cause: causeMemory, oomKills: 1, memLimitHits: 1}, api.VerdictMemoryLimit},
		{"oom at the limit, uncounted (v1)", stepFacts{exited: true, signal: 9, oomKills: 1, memPeak: 64 << 20, memLimit: 64 << 20}, api.VerdictMemoryLimit},
		{"oom just below the limit", stepFacts{exited: true, signal: 9, oomKills: 1, memPeak: 64<<20 - 8<<10, memLimit: 64 << 20}, api.VerdictMemoryLimit},
		{"oom from outside", stepFacts{exited: true, signal: 9, oomKills: 1, memPeak: 100 << 20, memLimit: 256 << 20}, api.VerdictInternalError},
		{"oom from outside seen by polling", stepFacts{exited: true, signal: 9, cause: causeMemory, oomKills: 1, memPeak: 100 << 20, memLimit: 256 << 20}, api.VerdictInternalError},
		{"oom from outside, peak unknown", stepFacts{exited: true, signal: 9, oomKills: 1, memLimit: 256 << 20}, api.VerdictInternalError},
		{"cancelled while oom from outside", stepFacts{exited: true, signal: 9, cause: causeCancelled, oomKills: 1, memLimit: 256 << 20}, api.VerdictCancelled},
		{"output cap", stepFacts{exited: true, signal: 9, cause: causeOutput}, api.VerdictOutputLimit},
		{"file size", stepFacts{exited: true, signal: sigXFSZ}, api.VerdictOutputLimit},
		{"file size at the sandbox's limit", stepFacts{exited: true, signal: sigXFSZ, fileSizeLimit: 1 << 20, diedFileSize: ptr(uint64(1 << 20))}, api.VerdictOutputLimit},
		{"a file past the limit, the program went on", stepFacts{exited: true, exitCode: 1, filePastLimit: true}, api.VerdictOutputLimit},
		{"a file past the limit, after a cpu kill", stepFacts{exited: true, signal: 9, cause: causeCPU, filePastLimit: true}, api.VerdictCPUTimeLimit},
		{"file size of its own, lower limit", stepFacts{exited: true, signal: sigXFSZ, fileSizeLimit: 1 << 20, diedFileSize: ptr(uint64(4096))}, api.VerdictSignaled},
		{"blocked call", stepFacts{exited: true, signal: 9, cause: causeBlocked, blocked: "ptrace"}, api.VerdictSyscallBlocked},
		{"blocked wins over later cpu", stepFacts{exited: true, signal: 9, cause: causeBlocked, cpu: 2 * sec, cpuLimit: sec}, api.VerdictSyscallBlocked},
		{"cancelled", stepFacts{exited: true, signal: 9, cause: causeCancelled, oomKills: 1}, api.VerdictCancelled},
		{"cancelled during setup", stepFacts{cause: causeCancelled, setupErr: errors.New("x")}, api.VerdictCancelled},
		{"exec failed", stepFacts{execErr: errors.New("exec x: no such file")}, api.VerdictExecFailed},
		{"setup failed", stepFacts{setupErr: errors.New("mount /usr: EPERM")}, api.VerdictInternalError},
		{"end never seen", stepFacts{}, api.VerdictInternalError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := decide(tc.f)
			if got != tc.want {
				t.Fatalf("decide(%+v) = %s, want %s", tc.f, got, tc.want)
			}
		})
	}
}

func TestDecideNamesTheBlockedCall(t *testing.T) {
	_, msg := decide(stepFacts{exited: true, cause: causeBlocked, blocked: "bpf"})
	if msg != "blocked system call: bpf" {
		t.Fatalf("message %q", msg)
	}
}

func TestDecideBlamesTheHostForAnOutsideOOM(t *testing.T) {
	v, msg := decide(stepFacts{exited: true, signal: 9, oomKills: 1, memPeak: 100 << 20, memLimit: 256 << 20})
	if v != api.VerdictInternalError || !strings.Contains(msg, "out of memory") || !strings.Contains(msg, "below its limit") {
		t.Fatalf("%s %q", v, msg)
	}
}

func ptr[T any](v T) *T { return &v }
