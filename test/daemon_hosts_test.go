package test

import (
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

// Two daemons on one host never hurt each other, and the tests look only
// at what they made themselves.

// startSecond starts another `sandboxd serve` with the given config
// through sh -c PRELUDE; exec, and returns its stderr once it exited, or
// stops it and fails the test if it still serves after 10 s.
func startSecond(t *testing.T, prelude, cfg string) string {
	t.Helper()
	dir := stateDirT(t)
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf("%s exec %q serve --socket %q --config %q", prelude, sandboxdBin, filepath.Join(dir, "s.sock"), cfgPath)
	second := osexec.Command("sh", "-c", script)
	var stderr syncBuffer
	second.Stderr = &stderr
	if err := second.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- second.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Errorf("the second daemon exited 0; stderr:\n%s", stderr.String())
		}
		return stderr.String()
	case <-time.After(10 * time.Second):
		second.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			second.Process.Kill()
			<-done
		}
		t.Fatalf("the second daemon served beside the first; stderr:\n%s", stderr.String())
		return ""
	}
}

// stateDirT makes a state dir that sandboxes can reach (t.TempDir's
// parent is private), removed after the test.
func stateDirT(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sandboxd-state-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// ownMemoryCgroup is this process's group in the v1 memory hierarchy, as a
// directory; "" when there is no v1 memory hierarchy (pure v2).
func ownMemoryCgroup() string {
	b, _ := os.ReadFile("/proc/self/cgroup")
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 && strings.Contains(","+f[1]+",", ",memory,") {
			dir := filepath.Join("/sys/fs/cgroup/memory", f[2])
			if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
				return dir
			}
		}
	}
	return ""
}

// useFirst runs jobs with a file and a tracked file on d, as many as its
// warm sandboxes and one more, and checks each came back whole.
func useFirst(t *testing.T, d *testDaemon, n int) {
	t.Helper()
	for i := range n + 1 {
		res, err := d.c.Run(ctxT(t), &api.Job{
			Files:        map[string]api.File{"main.sh": {Content: "echo still here > out; cat out"}},
			Steps:        []api.Step{{Argv: []string{"sh", "main.sh"}}},
			TrackedFiles: []string{"out"},
		})
		if err != nil || res.Status != api.StatusCompleted || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "still here\n" ||
			res.Files["out"] == nil || res.Files["out"].Content != "still here\n" {
			t.Fatalf("job %d on the first daemon: %v %+v", i, err, res)
		}
	}
}

// TestDaemonSecondFromAnotherMemoryCgroup: on a hybrid (or v1) host every
// process may sit in a v1 memory group of its own (every container has
// one) while the other hierarchies are shared. A second daemon with the
// same cgroup_subtree started from another memory group is refused,
// naming the first's pid, and the first's warm sandboxes and workspaces
// are untouched.
func TestDaemonSecondFromAnotherMemoryCgroup(t *testing.T) {
	own := ownMemoryCgroup()
	if own == "" {
		t.Skip("no v1 memory hierarchy: on pure cgroup v2 the subtree is one directory, TestDaemonSecondOnOneSubtree")
	}
	d := startDaemon(t, "")
	d.waitWarm(t, "the warm pool filled")
	info, err := d.c.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// A memory group of the test's own, beneath its own, for the second.
	scratch := filepath.Join(own, fmt.Sprintf("sandboxd-other-%d", os.Getpid()))
	if err := os.Mkdir(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(filepath.Join(scratch, d.subtree)); err != nil && !os.IsNotExist(err) {
			t.Errorf("the second daemon left its memory subtree: %v", err)
		}
		if err := os.Remove(scratch); err != nil {
			t.Errorf("remove the scratch memory cgroup: %v", err)
		}
	})
	stateDir := stateDirT(t)
	cfg := fmt.Sprintf("state_dir = %q\ncgroup_subtree = %q\nlog_format = \"json\"\n", stateDir, d.subtree)
	stderr := startSecond(t, fmt.Sprintf("echo $$ > %q &&", filepath.Join(scratch, "cgroup.procs")), cfg)
	want := fmt.Sprintf("pid %d", d.cmd.Process.Pid)
	if !strings.Contains(stderr, "cgroup_subtree") || !strings.Contains(stderr, "in use by another sandboxd daemon") || !strings.Contains(stderr, want) {
		t.Errorf("the second daemon's refusal:\n%s\nwant it to name cgroup_subtree and %s", stderr, want)
	}
	after, err := d.c.Info(ctxT(t))
	if err != nil || after.Pool.WarmReady != info.Pool.WarmSandboxes {
		t.Errorf("the first daemon's warm sandboxes after the second's start: %+v %v", after.Pool, err)
	}
	useFirst(t, d, info.Pool.WarmSandboxes)
	d.assertNoJobLeft(t)
}

// TestDaemonSecondOnOneStateDir: a daemon with a subtree of its own but
// the state dir of a live one is refused at start, naming the holder and
// the setting; the first's running job keeps its workspace.
func TestDaemonSecondOnOneStateDir(t *testing.T) {
	d := startDaemon(t, "")
	d.waitWarm(t, "the warm pool filled")
	ctx := ctxT(t)
	done := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctx, &api.Job{ID: "writer", Files: map[string]api.File{"in": {Content: "x"}},
			Steps:        []api.Step{{Argv: []string{"sh", "-c", "echo written > out; sleep 1.5"}}},
			TrackedFiles: []string{"out"}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitRunning(t, d, "writer")
	cfg := fmt.Sprintf("state_dir = %q\ncgroup_subtree = %q\nlog_format = \"json\"\n", d.stateDir, d.subtree+"-second")
	stderr := startSecond(t, "", cfg)
	want := fmt.Sprintf("pid %d", d.cmd.Process.Pid)
	if !strings.Contains(stderr, "state_dir") || !strings.Contains(stderr, "in use by another sandboxd daemon") || !strings.Contains(stderr, want) {
		t.Errorf("the second daemon's refusal:\n%s\nwant it to name state_dir and %s", stderr, want)
	}
	res := <-done
	if res == nil || res.Steps[0].Verdict != api.VerdictOK || res.Files["out"] == nil || res.Files["out"].Content != "written\n" {
		t.Errorf("the first daemon's job beside the second's start: %+v", res)
	}
	info, err := d.c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	useFirst(t, d, info.Pool.WarmSandboxes)
	d.assertNoJobLeft(t)
}

// TestDaemonLeftoverChecksBesideAnotherDaemon: the tests' checks for leftovers
// see only what the test process made, so that they pass on a host where
// a sandboxd service runs: here a daemon with the default uids and warm
// sandboxes, on a subtree and state dir of its own.
func TestDaemonLeftoverChecksBesideAnotherDaemon(t *testing.T) {
	stateDir := stateDirT(t)
	cfgPath := filepath.Join(stateDir, "config.toml")
	cfg := fmt.Sprintf("state_dir = %q\ncgroup_subtree = \"sandboxd-other-%d\"\nlog_format = \"json\"\n", stateDir, os.Getpid())
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	other := &testDaemon{t: t, stateDir: stateDir, socket: filepath.Join(stateDir, "s.sock"), log: &syncBuffer{}}
	other.attr = besideOwnLeaf(t, fmt.Sprintf("sandboxd-other-%d", os.Getpid()))
	other.start(cfgPath)
	// Registered before startDaemon's: the test daemon's own cleanup
	// checks while the other still runs.
	t.Cleanup(other.stop)
	other.waitWarm(t, "the other daemon's warm pool filled")

	r := sandboxExec(t, "--", "echo", "hi")
	wantVerdict(t, r, api.VerdictOK)
	d := startDaemon(t, "")
	res, err := d.c.Run(ctxT(t), job("echo", "hi"))
	if err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Fatalf("%v %+v", err, res)
	}
	d.assertNoJobLeft(t)
	// The cleanup's assertClean looks again once d stopped.
}

// besideOwnLeaf is how to start a daemon of the given subtree where it
// finds a group it may delegate to. On pure v2 a process that ran an engine
// in this test process moved it into a "<subtree>-self" leaf, which a
// daemon of another subtree would take for its own group (and could not
// enable controllers in, with this process in it): it starts in a leaf
// "<name>-self" beside that one instead. Elsewhere: nil, as it is.
func besideOwnLeaf(t *testing.T, subtree string) *syscall.SysProcAttr {
	t.Helper()
	own := hostcheck.OwnCgroup2()
	var fs syscall.Statfs_t
	if own == "" || !strings.HasSuffix(own, "-self") || syscall.Statfs("/sys/fs/cgroup", &fs) != nil || fs.Type != 0x63677270 {
		return nil // not pure v2, or not in a -self leaf
	}
	leaf := filepath.Join("/sys/fs/cgroup", filepath.Dir(own), subtree+"-self")
	if err := os.Mkdir(leaf, 0o755); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	// After the daemon's stop (cleanups run last first): its leaf is empty.
	t.Cleanup(func() { os.Remove(leaf) })
	f, err := os.Open(leaf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
}
