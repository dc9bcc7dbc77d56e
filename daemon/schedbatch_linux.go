package daemon

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// SetBatchScheduling puts every thread of this process under SCHED_BATCH,
// at the nice value each has; threads made later, and the helper the
// daemon starts (with every init cloned from it), inherit it.
//
// A batch thread's wakeup does not preempt the thread on the CPU: it runs
// when that one's slice ends or another CPU is free. The daemon's, the
// helper's and the inits' work is a dozen short bursts a run, and under
// SCHED_OTHER each burst would preempt whichever program ran there and
// leave its caches cold (docs/benchmarks.md). A sandbox's program and init
// leave the policy for SCHED_OTHER once its setup is done (see nsjail's
// programPlan.otherSched), so that a command runs and is watched as
// promptly as under SCHED_OTHER.
func SetBatchScheduling() error {
	// A thread made while the list is read could still come from one not
	// yet switched: read it again until a pass switches none.
	for range 10 {
		changed, err := batchThreads()
		if err != nil || changed == 0 {
			return err
		}
	}
	return nil
}

// batchThreads switches the threads of this process that are not batch yet,
// and says how many it switched.
func batchThreads() (int, error) {
	dir, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return 0, fmt.Errorf("batch scheduling: %w", err)
	}
	changed := 0
	for _, e := range dir {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		attr, err := unix.SchedGetAttr(tid, 0)
		if err == unix.ESRCH {
			continue // the thread ended
		}
		if err != nil {
			return changed, fmt.Errorf("batch scheduling: thread %d: %w", tid, err)
		}
		if attr.Policy == unix.SCHED_BATCH {
			continue
		}
		attr.Policy = unix.SCHED_BATCH
		attr.Priority = 0
		if err := unix.SchedSetAttr(tid, attr, 0); err != nil && err != unix.ESRCH {
			return changed, fmt.Errorf("batch scheduling: thread %d: %w", tid, err)
		}
		changed++
	}
	return changed, nil
}

// schedPolicy names the scheduling policy of the calling thread, for the
// start-up log line.
func schedPolicy() string {
	attr, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		return "unknown"
	}
	switch attr.Policy {
	case unix.SCHED_NORMAL:
		return "other"
	case unix.SCHED_BATCH:
		return "batch"
	case unix.SCHED_IDLE:
		return "idle"
	case unix.SCHED_FIFO:
		return "fifo"
	case unix.SCHED_RR:
		return "rr"
	}
	return strconv.Itoa(int(attr.Policy))
}
