package test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

// policyNames are the scheduling policies by number, as the tests print them.
var policyNames = map[uint32]string{unix.SCHED_NORMAL: "other", unix.SCHED_FIFO: "fifo", unix.SCHED_RR: "rr",
	unix.SCHED_BATCH: "batch", unix.SCHED_IDLE: "idle"}

// threadPolicies counts the scheduling policies of a process's threads.
func threadPolicies(t *testing.T, pid int) map[string]int {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range tasks {
		tid, _ := strconv.Atoi(e.Name())
		if attr, err := unix.SchedGetAttr(tid, 0); err == nil {
			got[policyNames[attr.Policy]]++
		}
	}
	return got
}

// TestDaemonSchedulingPolicy: the daemon, its helper and the inits run
// under SCHED_BATCH unless batch_scheduling is off, and a program always
// starts under SCHED_OTHER, whatever the daemon runs under (a real-time
// policy included: untrusted code never inherits one).
func TestDaemonSchedulingPolicy(t *testing.T) {
	// The program prints its own policy and its init's, through
	// sched_getscheduler (it may not read the init's /proc entries).
	const show = "import os; print(os.sched_getscheduler(0), os.sched_getscheduler(1))"
	for _, tc := range []struct {
		name   string
		config string
		start  int    // the policy the daemon is started under
		daemon string // its threads' and its helper's, once it serves
	}{
		{"batch by default", "", unix.SCHED_NORMAL, "batch"},
		{"batch off", "batch_scheduling = false", unix.SCHED_NORMAL, "other"},
		{"batch off under fifo", "batch_scheduling = false", unix.SCHED_FIFO, "fifo"},
		{"batch over fifo", "", unix.SCHED_FIFO, "batch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemonUnder(t, tc.config, tc.start)
			res, err := d.c.Run(ctxT(t), job("python3", "-c", show))
			if err != nil || res.Steps[0].Verdict != api.VerdictOK {
				t.Fatalf("run: %v %+v", err, res)
			}
			if got := res.Steps[0].Stdout; got != "0 0\n" {
				t.Errorf("the program's and its init's policies: %q, want \"0 0\\n\" (SCHED_OTHER both)", got)
			}
			pid := d.cmd.Process.Pid
			if got := threadPolicies(t, pid); len(got) != 1 || got[tc.daemon] == 0 {
				t.Errorf("the daemon's threads: %v, want all %s", got, tc.daemon)
			}
			helper := d.helperPID()
			if helper == 0 {
				t.Fatal("the daemon has no helper")
			}
			if got := threadPolicies(t, helper); len(got) != 1 || got[tc.daemon] == 0 {
				t.Errorf("the helper's threads: %v, want all %s", got, tc.daemon)
			}
			if !strings.Contains(d.log.String(), `"sched":"`+tc.daemon+`"`) {
				t.Errorf("the start-up log line does not say \"sched\":%q:\n%s", tc.daemon, d.log)
			}
		})
	}
}

// startDaemonUnder is startDaemon with the daemon started under policy
// (priority 1 for a real-time one), as systemd's CPUSchedulingPolicy would.
func startDaemonUnder(t *testing.T, config string, policy int) *testDaemon {
	t.Helper()
	if policy == unix.SCHED_NORMAL {
		return startDaemon(t, config)
	}
	// The daemon is forked from this thread and inherits its policy.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	old, err := unix.SchedGetAttr(0, 0)
	if err != nil {
		t.Fatal(err)
	}
	attr := *old
	attr.Policy, attr.Priority = uint32(policy), 1
	if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
		t.Fatalf("sched_setattr: %v", err)
	}
	defer func() {
		if err := unix.SchedSetAttr(0, old, 0); err != nil {
			t.Fatalf("sched_setattr back: %v", err)
		}
	}()
	return startDaemon(t, config)
}
