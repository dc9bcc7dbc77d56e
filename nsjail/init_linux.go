package nsjail

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// seccompNotif is struct seccomp_notif.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

// lastCap is the highest capability number this kernel knows: read once,
// as every sandbox's plan needs it.
var lastCap = sync.OnceValue(readLastCap)

// programLeavesPolicy says whether the program's process must leave the
// scheduling policy it inherits from this process for SCHED_OTHER: under
// SCHED_BATCH (the engine's process's, which the daemon's batch_scheduling
// sets) and the real-time policies it must. SCHED_IDLE stays: leaving it
// takes a privilege a sandbox does not have, and an engine run idle means
// its programs to be too.
var programLeavesPolicy = sync.OnceValue(func() bool {
	p := inheritedPolicy()
	return p == unix.SCHED_BATCH || p == unix.SCHED_FIFO || p == unix.SCHED_RR
})

// programLeavesRealTime says whether that policy is a real-time one, which
// the program's process leaves before it joins its cgroups: a v1 cpu
// group without a real-time budget of its own (cpu.rt_runtime_us 0, as
// every new one has) refuses a real-time task (EINVAL).
var programLeavesRealTime = sync.OnceValue(func() bool {
	p := inheritedPolicy()
	return p == unix.SCHED_FIFO || p == unix.SCHED_RR
})

// inheritedPolicy is this process's scheduling policy, -1 if unknown.
func inheritedPolicy() int {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return -1
	}
	return int(attr.Policy)
}

func readLastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &n); err != nil {
		return 63
	}
	return n
}
