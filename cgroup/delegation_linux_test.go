package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tier 3, pure v2 only: the layout of a systemd service with Delegate=yes,
// on the real kernel. The fake-kernel tests check the same steps file by
// file; here the kernel itself enforces the no-internal-processes rule.

const delegatedSubtree = "svc"

// helperOpen is the test binary re-executed inside a delegated group: it
// opens a manager there, makes and removes one sandbox, closes, and prints
// the group it ended up in and the controllers its sandboxes get.
func helperOpen() int {
	m, err := Open(Config{Subtree: delegatedSubtree})
	if err != nil {
		fmt.Println("open:", err)
		return 5
	}
	g, h, err := m.NewSandbox("r", Limits{MemoryBytes: 16 << 20, PIDs: 4}, os.Getuid(), os.Getgid())
	if err != nil {
		fmt.Println("new sandbox:", err)
		return 6
	}
	h.Close()
	if err := g.Destroy(); err != nil {
		fmt.Println("destroy:", err)
		return 6
	}
	if err := m.Close(); err != nil {
		fmt.Println("close:", err)
		return 6
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		fmt.Println(err)
		return 6
	}
	fmt.Printf("self %s", self)
	fmt.Printf("controllers %s\n", strings.Join(m.Controllers(), " "))
	return 0
}

// startInGroup starts cmd as a member of the cgroup2 group dir from its
// first instruction (clone3 CLONE_INTO_CGROUP), as systemd starts a service.
func startInGroup(t *testing.T, dir string, cmd *exec.Cmd) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s in %s: %v", cmd.Path, dir, err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
}

// openIn runs helperOpen as the only new process of the group dir.
func openIn(t *testing.T, dir string) (string, int) {
	t.Helper()
	cmd := helper("open")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	startInGroup(t, dir, cmd)
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}

// groupState is what a test may compare of a group it must not change:
// its enabled controllers and its child groups, sorted.
func groupState(t *testing.T, dir string) (string, []string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, e := range ents {
		if e.IsDir() {
			kids = append(kids, e.Name())
		}
	}
	return readValue(t, path.Join(dir, "cgroup.subtree_control")), kids
}

// removeGroups removes groups made by a test, deepest first, waiting a
// little for groups whose last process is still exiting.
func removeGroups(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		deadline := time.Now().Add(2 * time.Second)
		for {
			err := unix.Rmdir(d)
			if err == nil || err == unix.ENOENT {
				break
			}
			if err != unix.EBUSY || time.Now().After(deadline) {
				t.Errorf("rmdir %s: %v", d, err)
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestHostV2Delegation(t *testing.T) {
	m := hostManager(t, Config{})
	if m.Mode() != ModeV2 {
		t.Skipf("host is %s: delegation is the pure v2 layout", m.Mode())
	}
	// hostManager's Open moved this process out of its own group, which
	// now hands the controllers down: a group made here is delegated the
	// way systemd delegates a service (controllers available, none enabled).
	own := m.unified.own
	ownCtrl, ownKids := groupState(t, own)
	alone := path.Join(own, hostSubtree()+"-alone")
	shared := path.Join(own, hostSubtree()+"-shared")
	for _, d := range []string{alone, shared} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		removeGroups(t, path.Join(alone, delegatedSubtree+"-self"), path.Join(alone, delegatedSubtree), alone, shared)
	})

	// Alone in its group: Open finds enabling the controllers refused while
	// it sits there, moves itself into <subtree>-self, and enables them.
	out, code := openIn(t, alone)
	if code != 0 {
		t.Fatalf("Open in a delegated group: exit %d:\n%s", code, out)
	}
	t.Logf("the helper in %s said:\n%s", alone, out)
	if want := "/" + path.Base(alone) + "/" + delegatedSubtree + "-self\n"; !strings.Contains(out, want) {
		t.Errorf("the helper did not end up in the leaf .../%s", strings.TrimSpace(want))
	}
	avail := strings.Fields(readValue(t, path.Join(alone, "cgroup.controllers")))
	ctrl, kids := groupState(t, alone)
	var runCtrls []string
	if i := strings.Index(out, "controllers "); i >= 0 {
		runCtrls = strings.Fields(out[i+len("controllers "):])
	}
	for _, c := range []string{"memory", "pids", "cpu"} {
		if c == "cpu" && !slices.Contains(avail, c) {
			continue // optional, and not offered here
		}
		if !slices.Contains(strings.Fields(ctrl), c) {
			t.Errorf("%s not enabled in the delegated group: subtree_control %q", c, ctrl)
		}
		if !slices.Contains(runCtrls, c) {
			t.Errorf("sandboxes do not get %s: %q", c, runCtrls)
		}
	}
	if !slices.Equal(kids, []string{delegatedSubtree + "-self"}) {
		t.Errorf("the delegated group holds %q after Close; want only the %s-self leaf", kids, delegatedSubtree)
	}

	// Not alone: another process of the service sits in the group. Moving
	// into a leaf would leave it behind, so Open refuses and writes nothing.
	sleeper := exec.Command("sleep", "60")
	startInGroup(t, shared, sleeper)
	out, code = openIn(t, shared)
	if code == 0 || !strings.Contains(out, "besides this one") {
		t.Errorf("Open beside another process: exit %d, %q; want a refusal naming the other process", code, out)
	}
	if ctrl, kids := groupState(t, shared); ctrl != "" || len(kids) != 0 {
		t.Errorf("the refused Open changed its group: subtree_control %q, children %q", ctrl, kids)
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()

	// Nothing above the delegated groups was written.
	ctrl, kids = groupState(t, own)
	wantKids := append(slices.Clone(ownKids), path.Base(alone), path.Base(shared))
	slices.Sort(wantKids)
	if ctrl != ownCtrl || !slices.Equal(kids, wantKids) {
		t.Errorf("%s changed: subtree_control %q -> %q, children %q -> %q", own, ownCtrl, ctrl, ownKids, kids)
	}
}
