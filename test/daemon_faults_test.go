package test

import (
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
	"strconv"

	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// The daemon's faults: SIGKILLed mid-batch, a sandbox's init killed from
// outside, a cgroup or a workspace that cannot be made, the host's memory
// or disk short. Each test checks what the caller got and that nothing is
// left, and puts back whatever it broke, also when it fails.

// crash SIGKILLs the daemon and checks that its sandboxes died with it and
// that it left its run cgroups, and at least workspaces workspaces, for the
// next daemon to reclaim.
func (d *testDaemon) crash(t *testing.T, workspaces int) {
	t.Helper()
	d.cmd.Process.Kill()
	d.cmd.Wait()
	// The inits die with the daemon (parent-death signal) and their pid
	// namespaces with them; the host's pid 1 reaps them in its own time.
	if procs := hostcheck.Settle(5*time.Second, sandboxProcesses); len(procs) > 0 {
		t.Fatalf("processes outlived the daemon: %v", procs)
	}
	if len(subtreeGroups(d.subtree)) == 0 {
		t.Fatal("expected the killed daemon's cgroups to be left behind")
	}
	if ws, _ := os.ReadDir(filepath.Join(d.stateDir, "ws")); len(ws) < workspaces {
		t.Fatalf("%d workspaces left behind, expected at least %d", len(ws), workspaces)
	}
}

// restartReclaims starts a new daemon on the crashed one's state dir and
// subtree, and checks that it reclaimed everything and serves.
func (d *testDaemon) restartReclaims(t *testing.T) {
	t.Helper()
	left, _ := os.ReadDir(filepath.Join(d.stateDir, "ws"))
	d.start(filepath.Join(d.stateDir, "config.toml"))
	var rec struct {
		Msg        string `json:"msg"`
		Cgroups    int    `json:"cgroups"`
		Workspaces int    `json:"workspaces"`
	}
	sc := bufio.NewScanner(strings.NewReader(d.log.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "reclaimed") {
			json.Unmarshal(sc.Bytes(), &rec)
		}
	}
	if rec.Cgroups == 0 || rec.Workspaces != len(left) {
		t.Errorf("reclaim logged %d cgroups and %d workspaces, want some and %d:\n%s", rec.Cgroups, rec.Workspaces, len(left), d.log)
	}
	d.assertNoJobLeft(t)
	res, err := d.c.Run(ctxT(t), job("echo", "alive"))
	if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "alive\n" {
		t.Fatalf("after reclaim: %v %+v", err, res)
	}
}

// assertNoJobLeft checks that a running daemon holds nothing but its warm
// sandboxes: no busy process, no other run cgroup, no workspace or its
// mount. A finished job's teardown runs after its result, so each check
// is given a moment.
func (d *testDaemon) assertNoJobLeft(t *testing.T) {
	t.Helper()
	if procs := hostcheck.Settle(2*time.Second, busyProcesses); len(procs) > 0 {
		t.Errorf("processes left: %v", procs)
	}
	if groups := hostcheck.Settle(2*time.Second, func() []string { return strayGroups(d.subtree) }); len(groups) > 0 {
		t.Errorf("cgroups left: %v", groups)
	}
	if ws := hostcheck.Settle(2*time.Second, func() []string { return d.strayWorkspaces(t) }); len(ws) > 0 {
		t.Errorf("workspaces left: %v", ws)
	}
}

// strayWorkspaces lists the workspace directories and mounts under a
// running daemon's state dir, unless there are no more of either than the
// empty ones it says it keeps ready for the next jobs.
func (d *testDaemon) strayWorkspaces(t *testing.T) []string {
	var dirs, mounts []string
	ents, _ := os.ReadDir(filepath.Join(d.stateDir, "ws"))
	for _, e := range ents {
		dirs = append(dirs, e.Name())
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(mi), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], d.stateDir+"/ws/") {
			mounts = append(mounts, "mount "+f[4])
		}
	}
	ready := readyWorkspaces(t, d.c)
	if len(dirs) <= ready && len(mounts) <= ready {
		return nil
	}
	return append(append(dirs, mounts...), fmt.Sprintf("(%d ready)", ready))
}

// readyWorkspaces is how many empty workspaces the daemon says it keeps
// mounted ahead now.
func readyWorkspaces(t *testing.T, c *client.Client) int {
	info, err := c.Info(ctxT(t))
	if err != nil {
		return 0
	}
	return info.Pool.WorkspacesReady
}

func TestDaemonFaultSIGKILLMidBatch(t *testing.T) {
	d := startDaemon(t, "concurrency = 3\n")
	// Five quick jobs, then jobs that sleep: the daemon dies with three of
	// them running and the rest queued.
	var jobs []api.Job
	for i := range 30 {
		script := "cat in.txt"
		if i >= 5 {
			script += "; sleep 60 & sleep 60"
		}
		jobs = append(jobs, api.Job{ID: fmt.Sprintf("m%d", i), Files: map[string]api.File{"in.txt": {Content: fmt.Sprint(i)}},
			Steps: []api.Step{{Argv: []string{"sh", "-c", script}}}})
	}
	var lines atomic.Int32
	done := make(chan error, 1)
	go func() {
		_, err := d.c.BatchJobs(context.Background(), jobs, 3, func(l *api.BatchLine) error {
			if s := l.Result.Steps[0]; s.Verdict != api.VerdictOK || s.Stdout != fmt.Sprint(*l.Index) {
				t.Errorf("job %d: %s", *l.Index, summary(s))
			}
			lines.Add(1)
			return nil
		})
		done <- err
	}()
	waitFor(t, "three jobs running after five finished", func() bool {
		runs, _ := d.c.Runs(context.Background())
		running := 0
		for _, r := range runs {
			if r.State == api.StateRunning {
				running++
			}
		}
		return lines.Load() == 5 && running == 3 && len(busyProcesses()) >= 3
	})

	d.crash(t, 3)
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the batch's client got no error from a daemon killed mid-batch")
		}
		t.Logf("the client got: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the batch's client still waits 5 s after the daemon was killed")
	}

	d.restartReclaims(t)
	var again []api.Job
	for i := range 10 {
		want := fmt.Sprint(i)
		again = append(again, api.Job{Files: map[string]api.File{"in.txt": {Content: want}},
			Steps: []api.Step{{Argv: []string{"cat", "in.txt"}, ExpectedStdout: &want}}})
	}
	sum, err := d.c.BatchJobs(ctxT(t), again, 3, func(*api.BatchLine) error { return nil })
	if err != nil || sum.Verdicts["ok"] != 10 {
		t.Fatalf("a batch after the reclaim: %v %+v", err, sum)
	}
	d.assertNoJobLeft(t)
}

// waitFor polls cond until it holds, and fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 10 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runningInit is the host pid of the init of the daemon's sandbox whose
// program runs: an init (under the inits' uid) with a child under a
// program's uid.
func runningInit(t *testing.T, d *testDaemon) int {
	t.Helper()
	pid := 0
	waitFor(t, "a sandbox init with its program running", func() bool {
		procs := hostcheck.Procs()
		uid := map[int]int64{}
		for _, p := range procs {
			uid[p.PID] = p.UID
		}
		helper := d.helperPID()
		for _, p := range procs {
			if p.PPID != helper || p.UID != hostcheck.InitUID {
				continue
			}
			for _, c := range p.Children {
				if u, ok := uid[c]; ok && u != hostcheck.InitUID {
					pid = p.PID
					return true
				}
			}
		}
		return false
	})
	return pid
}

// helperPID is the pid of the daemon's helper, the parent of its
// sandboxes' inits; 0 if it has none.
// waitWarm waits until every warm sandbox of the daemon is ready.
func (d *testDaemon) waitWarm(t *testing.T, what string) {
	t.Helper()
	waitFor(t, what, func() bool {
		info, err := d.c.Info(context.Background())
		return err == nil && info.Pool.WarmReady == info.Pool.WarmSandboxes
	})
}

func (d *testDaemon) helperPID() int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		st := string(b)
		if strings.Contains(st, "Name:\tsandboxd-helper\n") && strings.Contains(st, fmt.Sprintf("\nPPid:\t%d\n", d.cmd.Process.Pid)) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}

// A step whose memory limit its program's process could reach before its
// exec takes hold (while it still shares the helper's memory) would make
// the OOM killer end the helper, and every other job's sandbox with it. The
// limit has a floor that leaves room for the largest exec arguments: at
// that floor and those arguments, the neighbour's job and the helper live.
func TestDaemonFaultMemoryFloorSparesTheHelper(t *testing.T) {
	d := startDaemon(t, "")
	d.waitWarm(t, "warm sandboxes")
	helper := d.helperPID()
	if helper == 0 {
		t.Fatal("no helper")
	}
	neighbour := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"sleep", "2"}}}})
		if err != nil {
			t.Error(err)
		}
		neighbour <- res
	}()
	// Fifteen arguments of the kernel's largest size: as close to the
	// 2 MiB exec cap as the API allows.
	arg := strings.Repeat("x", 128<<10-1)
	argv := []string{"true"}
	for range 15 {
		argv = append(argv, arg)
	}
	for i := range 6 {
		res, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: argv, Limits: api.Limits{MemoryBytes: api.MinMemoryBytes}}}})
		if err != nil {
			t.Fatal(err)
		}
		if v := res.Steps[0].Verdict; v != api.VerdictOK && v != api.VerdictMemoryLimit {
			t.Errorf("run %d at the floor: verdict %s (%s)", i, v, res.Message)
		}
	}
	if res := <-neighbour; res != nil && res.Steps[0].Verdict != api.VerdictOK {
		t.Errorf("the neighbour's job: %s (%s)", res.Steps[0].Verdict, res.Message)
	}
	if now := d.helperPID(); now != helper {
		t.Errorf("the helper changed from pid %d to %d", helper, now)
	}
	_, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"true"}, Limits: api.Limits{MemoryBytes: 1 << 20}}}})
	var se *client.StatusError
	if !errors.As(err, &se) || se.HTTPStatus != 400 || !strings.Contains(se.Err.Message, "steps[0].limits.memory_bytes: 1048576 is below the minimum 4194304") {
		t.Errorf("memory_bytes below the floor: %v", err)
	}
}

func TestDaemonFaultInitKilled(t *testing.T) {
	d := startDaemon(t, "")
	done := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctxT(t), &api.Job{ID: "victim", Steps: []api.Step{
			{Argv: []string{"sh", "-c", "sleep 60 & sleep 60"}},
			{Argv: []string{"true"}},
		}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitRunning(t, d, "victim")
	syscall.Kill(runningInit(t, d), syscall.SIGKILL)
	var res *api.Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no result 10 s after the sandbox's init was killed")
	}
	if res == nil {
		t.Fatal("no result")
	}
	t.Logf("status %s, message %q, step 0: %s", res.Status, res.Message, summary(res.Steps[0]))
	if s := res.Steps[0]; s.Verdict != api.VerdictInternalError || !strings.Contains(s.Message, "init") {
		t.Errorf("step 0: %s, want internal_error naming the init", summary(s))
	}
	if res.Status != api.StatusError || !strings.Contains(res.Message, "steps[0]") || res.Steps[1].Verdict != api.VerdictSkipped {
		t.Errorf("result %+v, want status error naming steps[0], and step 1 skipped", res)
	}
	d.assertNoJobLeft(t)
	res, err := d.c.Run(ctxT(t), job("echo", "alive"))
	if err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Fatalf("after the init's death: %v %+v", err, res)
	}
	d.waitWarm(t, "the warm pool refilled")
}

// The helper killed under a running job and its warm sandboxes: the
// job's step fails naming the helper, the warm sandboxes are dropped, and
// the next job gets a new helper.
func TestDaemonFaultHelperKilled(t *testing.T) {
	d := startDaemon(t, "")
	done := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctxT(t), &api.Job{ID: "victim", Steps: []api.Step{{Argv: []string{"sleep", "60"}}}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitRunning(t, d, "victim")
	runningInit(t, d)
	helper := d.helperPID()
	if helper == 0 {
		t.Fatal("no helper found")
	}
	syscall.Kill(helper, syscall.SIGKILL)
	var res *api.Result
	select {
	case res = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no result 10 s after the helper was killed")
	}
	if res == nil {
		t.Fatal("no result")
	}
	if s := res.Steps[0]; s.Verdict != api.VerdictInternalError || !strings.Contains(s.Message, "helper") {
		t.Errorf("step 0: %s, want internal_error naming the helper", summary(s))
	}
	res, err := d.c.Run(ctxT(t), job("echo", "alive"))
	if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "alive\n" {
		t.Fatalf("after the helper's death: %v %+v", err, res)
	}
	if h := d.helperPID(); h == 0 || h == helper {
		t.Errorf("helper pid %d after the old one (%d) died, want a new one", h, helper)
	}
	d.waitWarm(t, "the warm pool refilled")
	d.assertNoJobLeft(t)
}

func TestDaemonFaultIdleInitKilled(t *testing.T) {
	d := startDaemon(t, "")
	d.waitWarm(t, "the warm pool filled")
	var killed []int
	procs := hostcheck.Procs()
	helper := d.helperPID()
	for _, p := range procs {
		if p.PPID == helper && p.UID == hostcheck.InitUID {
			syscall.Kill(p.PID, syscall.SIGKILL)
			killed = append(killed, p.PID)
		}
	}
	if len(killed) == 0 {
		t.Fatal("no warm sandbox's init found")
	}
	// Once the daemon has reaped them it knows; a step that takes a warm
	// sandbox whose init is being killed that very moment fails as in
	// TestDaemonFaultInitKilled.
	waitFor(t, "the killed inits reaped", func() bool {
		for _, pid := range killed {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
				return false
			}
		}
		return true
	})
	res, err := d.c.Run(ctxT(t), job("echo", "alive"))
	if err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Fatalf("after %d warm inits were killed: %v %+v", len(killed), err, res)
	}
	d.assertNoJobLeft(t)
}

// inject writes value to a file the test's own daemon made (a control file
// of its cgroup subtree), and gives back a function that writes restore;
// the test's cleanup calls it too, whatever happens. A file that is gone
// (the subtree goes with a daemon that stops) needs no restoring.
func inject(t *testing.T, file, value, restore string) (remove func()) {
	t.Helper()
	if err := os.WriteFile(file, []byte(value), 0); err != nil {
		t.Fatalf("inject the fault: %v", err)
	}
	return onceCleanup(t, func() error {
		if err := os.WriteFile(file, []byte(restore), 0); !os.IsNotExist(err) {
			return err
		}
		return nil
	})
}

// subtreeDir is the daemon's cgroup subtree in the hierarchy key ("unified"
// or a v1 controller), as /v1/info tells; "" when the host has none.
func subtreeDir(t *testing.T, d *testDaemon, key string) string {
	t.Helper()
	info, err := d.c.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := info.Cgroup.Paths[key]
	if dir != "" && filepath.Base(dir) != d.subtree {
		t.Fatalf("the daemon's %s subtree %s is not the test's own %s", key, dir, d.subtree)
	}
	return dir
}

func TestDaemonFaultCgroupCreate(t *testing.T) {
	// Few uids: a failed sandbox that kept its uid would soon leave none.
	d := startDaemon(t, "uid_count = 4\nconcurrency = 2\nwarm_sandboxes = 2\n")
	sub := subtreeDir(t, d, "unified")
	if sub == "" {
		t.Skip("a pure v1 host: no cgroup2 tree whose cgroup.max.depth could refuse a run's groups")
	}
	info, _ := d.c.Info(ctxT(t))
	warm := info.Pool.WarmSandboxes
	// No run's cgroup2 group may be made beneath the subtree any more
	// (the daemon's inits' group is there already): each try fails after
	// the run's uid was taken, which must be given back.
	remove := inject(t, filepath.Join(sub, "cgroup.max.depth"), "0", "max")

	// The sandboxes made ahead still serve; every other step fails. Each
	// failed sandbox had a uid of the few: more failures than uids, and
	// none may find the uids used up.
	var failed []*api.Result
	for i := range warm + 6 {
		res, err := d.c.Run(ctxT(t), job("echo", "hi"))
		if err != nil {
			t.Fatalf("job %d: %v, want a result", i, err)
		}
		if res.Steps[0].Verdict != api.VerdictOK {
			failed = append(failed, res)
		}
	}
	if len(failed) < 6 {
		t.Fatalf("%d of %d jobs ran though no run cgroup can be made", warm+6-len(failed), warm+6)
	}
	t.Logf("status %s, message %q, step 0: %s", failed[0].Status, failed[0].Message, summary(failed[0].Steps[0]))
	for _, res := range failed {
		if s := res.Steps[0]; s.Verdict != api.VerdictInternalError || !strings.Contains(s.Message, "create cgroup") ||
			!strings.Contains(s.Message, syscall.EAGAIN.Error()) {
			t.Fatalf("step 0: %s, want internal_error naming the cgroup and the kernel's refusal", summary(s))
		}
		if res.Status != api.StatusError || !strings.Contains(res.Message, "create cgroup") {
			t.Fatalf("result %+v, want status error naming the cgroup", res)
		}
	}
	d.assertNoJobLeft(t)

	remove()
	res, err := d.c.Run(ctxT(t), job("echo", "again"))
	if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "again\n" {
		t.Fatalf("after the fault was removed: %v %+v", err, res)
	}
	d.waitWarm(t, "the warm pool refilled")
	d.assertNoJobLeft(t)
}

func TestDaemonFaultWorkspaceCreate(t *testing.T) {
	// No workspace made ahead: the faults below replace the workspaces'
	// parent under a running daemon, which would hide those.
	d := startDaemon(t, "warm_sandboxes = 0\n")
	ws := filepath.Join(d.stateDir, "ws")
	for _, tc := range []struct {
		name   string
		inject func(t *testing.T) (remove func())
		want   string
	}{
		{"state dir full", func(t *testing.T) func() {
			// A tmpfs whose root takes its only inode: not one more
			// directory fits.
			if err := os.MkdirAll(ws, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mount("sandboxd-test-full", ws, "tmpfs", 0, "size=1M,nr_inodes=1"); err != nil {
				t.Fatal(err)
			}
			return onceCleanup(t, func() error { return syscall.Unmount(ws, syscall.MNT_DETACH) })
		}, "mkdir: " + syscall.ENOSPC.Error()},
		{"workspace parent is a file", func(t *testing.T) func() {
			// The daemon's own tmpfs there goes first.
			if err := syscall.Unmount(ws, syscall.MNT_DETACH); err != nil && err != syscall.EINVAL {
				t.Fatal(err)
			}
			if err := os.Remove(ws); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if err := os.WriteFile(ws, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return onceCleanup(t, func() error { return os.Remove(ws) })
		}, "mkdir: " + syscall.ENOTDIR.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remove := tc.inject(t)
			res, err := d.c.Run(ctxT(t), &api.Job{Files: map[string]api.File{"in.txt": {Content: "x"}},
				Steps: []api.Step{{Argv: []string{"cat", "in.txt"}}, {Argv: []string{"true"}}}})
			if err != nil {
				t.Fatalf("%v, want a result", err)
			}
			t.Logf("status %s, message %q", res.Status, res.Message)
			if res.Status != api.StatusError || !strings.Contains(res.Message, "workspace") || !strings.Contains(res.Message, tc.want) ||
				strings.Contains(res.Message, d.stateDir) {
				t.Errorf("result %+v, want status error naming the workspace and %q, without the host path", res, tc.want)
			}
			for i, s := range res.Steps {
				if s.Verdict != api.VerdictSkipped {
					t.Errorf("step %d: %s, want skipped", i, summary(s))
				}
			}
			d.assertNoJobLeft(t)
			remove()
			res, err = d.c.Run(ctxT(t), &api.Job{Files: map[string]api.File{"in.txt": {Content: "x"}},
				Steps: []api.Step{{Argv: []string{"cat", "in.txt"}}}})
			if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "x" {
				t.Fatalf("after the fault was removed: %v %+v", err, res)
			}
			d.assertNoJobLeft(t)
		})
	}
}

// onceCleanup registers undo as a cleanup and returns it for the test to
// call earlier; it runs once.
func onceCleanup(t *testing.T, undo func() error) func() {
	done := false
	f := func() {
		if !done {
			done = true
			if err := undo(); err != nil {
				t.Errorf("remove the fault: %v", err)
			}
		}
	}
	t.Cleanup(f)
	return f
}

func TestDaemonFaultWorkspaceFull(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\n")
	// One job fills its 1 MiB workspace; its neighbour writes 4 MiB in its
	// own at the same time, and a third sends more small files than fit.
	jobs := []api.Job{
		{WorkspaceBytes: 1 << 20, Steps: []api.Step{{Argv: []string{"sh", "-c", "head -c 4194304 /dev/zero > big"}}}},
		{Steps: []api.Step{{Argv: []string{"sh", "-c", "head -c 4194304 /dev/zero > big && wc -c < big"}}}},
		{WorkspaceBytes: 1 << 20, Files: map[string]api.File{}, Steps: []api.Step{{Argv: []string{"true"}}}},
	}
	for i := range 300 {
		jobs[2].Files[fmt.Sprintf("f%03d", i)] = api.File{Content: "x"}
	}
	got := map[int]*api.Result{}
	sum, err := d.c.BatchJobs(ctxT(t), jobs, 2, func(l *api.BatchLine) error {
		got[*l.Index] = l.Result
		return nil
	})
	if err != nil || sum.Total != 3 {
		t.Fatalf("batch: %v %+v", err, sum)
	}
	if s := got[0].Steps[0]; s.Verdict != api.VerdictNonzeroExit || !strings.Contains(s.Stderr, "No space left on device") {
		t.Errorf("the job that filled its workspace: %s, want nonzero_exit with the program told ENOSPC", summary(s))
	}
	if s := got[1].Steps[0]; s.Verdict != api.VerdictOK || s.Stdout != "4194304\n" {
		t.Errorf("its neighbour: %s, want ok", summary(s))
	}
	if r := got[2]; r.Status != api.StatusError || !strings.Contains(r.Message, "the workspace is full") || r.Steps[0].Verdict != api.VerdictSkipped {
		t.Errorf("the job whose files do not fit: %+v, want status error saying the workspace is full", r)
	}
	t.Logf("filled: %s; neighbour: %s; too many files: %q", summary(got[0].Steps[0]), summary(got[1].Steps[0]), got[2].Message)
	d.assertNoJobLeft(t)
}

func TestDaemonFaultMemoryPressure(t *testing.T) {
	d := startDaemon(t, "concurrency = 3\n")
	info, err := d.c.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// The memory of the daemon's whole subtree, the parent of every run's
	// group, is less than what three jobs take at once, each well within
	// its own limit.
	file, unlimited := filepath.Join(subtreeDir(t, d, "memory"), "memory.limit_in_bytes"), "-1"
	if info.Cgroup.Mode == "v2" {
		file, unlimited = filepath.Join(subtreeDir(t, d, "unified"), "memory.max"), "max"
	}
	remove := inject(t, file, fmt.Sprint(160<<20), unlimited)
	alloc, err := os.ReadFile(filepath.Join(programsDir, "alloc"))
	if err != nil {
		t.Fatal(err)
	}
	allocJob := func(mib, holdMS int, limit int64) api.Job {
		return api.Job{Files: map[string]api.File{"alloc": {Base64: b64(string(alloc)), Mode: "0755"}},
			Steps: []api.Step{{Argv: []string{"./alloc", fmt.Sprint(mib), fmt.Sprint(holdMS)}, Limits: api.Limits{MemoryBytes: limit}}}}
	}

	// A job that reaches its own limit is still the program's fault.
	res, err := d.c.Run(ctxT(t), ptr(allocJob(100, 0, 32<<20)))
	if err != nil || res.Steps[0].Verdict != api.VerdictMemoryLimit {
		t.Fatalf("a job past its own limit under the pressure: %v %+v, want memory_limit", err, res)
	}

	// Three jobs of 100 MiB held a second each, in 160 MiB: the kernel
	// kills some of them, though none reached its own limit.
	pressure := func() (ok, killed int) {
		jobs := []api.Job{allocJob(100, 1000, 256<<20), allocJob(100, 1000, 256<<20), allocJob(100, 1000, 256<<20)}
		sum, err := d.c.BatchJobs(ctxT(t), jobs, 3, func(l *api.BatchLine) error {
			r, s := l.Result, l.Result.Steps[0]
			t.Logf("job %d: status %s, message %q: %s", *l.Index, r.Status, r.Message, summary(s))
			switch {
			case s.Verdict == api.VerdictOK && s.Stdout == "done\n":
				ok++
			case s.Verdict == api.VerdictInternalError && strings.Contains(s.Message, "out of memory") &&
				r.Status == api.StatusError && strings.Contains(r.Message, "out of memory"):
				killed++
			default:
				t.Errorf("job %d: %s, want ok, or internal_error saying the daemon's group ran out of memory", *l.Index, summary(s))
			}
			return nil
		})
		if err != nil || sum.Total != 3 {
			t.Fatalf("batch: %v %+v", err, sum)
		}
		return ok, killed
	}
	if ok, killed := pressure(); killed == 0 {
		t.Errorf("%d jobs ok and none killed in 160 MiB", ok)
	}
	if err := d.c.Ping(ctxT(t)); err != nil || d.cmd.ProcessState != nil {
		t.Fatalf("the daemon after the pressure: %v %v", err, d.cmd.ProcessState)
	}
	d.assertNoJobLeft(t)

	remove()
	if ok, _ := pressure(); ok != 3 {
		t.Errorf("%d of 3 jobs ok once the subtree's memory was given back", ok)
	}
	d.assertNoJobLeft(t)
}

func ptr[T any](v T) *T { return &v }

// A daemon whose log reader went away (a logger that exited, a journal
// restarting) goes on serving, and drains and cleans up on SIGTERM: a
// write to the broken pipe fails, where SIGPIPE would have killed it.
func TestDaemonOutlivesItsLogReader(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	d := startDaemonLogging(t, "", w)
	w.Close()
	r.Close()
	for i := 0; i < 3; i++ {
		res, err := d.c.Run(ctxT(t), job("echo", "still here"))
		if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "still here\n" {
			t.Fatalf("job %d with the log reader gone: %v %+v", i, err, res)
		}
	}
	// stop (cleanup) checks a clean exit after SIGTERM, assertClean that
	// nothing is left.
}
