package daemon

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestNewFailureLeavesNothing: a New that fails late, after it took the
// state dir's lock, the engine and the cgroup subtree's lock, gives them all
// back: a second New on the same state dir and subtree succeeds at once, no
// descriptor is left open, and once that daemon is closed no mount is left
// under the state dir.
func TestNewFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the engine maps sandbox uids and makes cgroups")
	}
	// Sandboxes reach the state dir as another user: every directory on
	// the way must be searchable, which t.TempDir's are not.
	state, err := os.MkdirTemp("", "sandboxd-new-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.StateDir = state
	cfg.CgroupSubtree = fmt.Sprintf("sandboxd-newtest-%d", os.Getpid())
	cfg.WarmSandboxes = 0
	log := logrus.New()
	log.SetOutput(io.Discard)

	// The workspaces' dir is a file: reclaiming a previous instance's
	// workspaces fails, a step after the locks and the engine.
	ws := filepath.Join(state, "ws")
	if err := os.WriteFile(ws, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fds := openFDs(t)
	if d, err := New(cfg, "test", log); err == nil || !strings.Contains(err.Error(), "reclaiming") {
		if d != nil {
			d.close()
		}
		t.Fatalf("New with a file for the workspaces' dir: error %v, want one from the reclaim", err)
	}
	if after := openFDs(t); after != fds {
		t.Errorf("%d descriptors open after the failed New, %d before", after, fds)
	}
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("mounts left under the state dir after the failed New: %v", m)
	}

	if err := os.Remove(ws); err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, "test", log)
	if err != nil {
		t.Fatalf("New after a failed one: %v", err)
	}
	d.close()
	if m := mountsUnder(t, state); len(m) > 0 {
		t.Errorf("mounts left under the state dir after close: %v", m)
	}
	if after := openFDs(t); after != fds {
		t.Errorf("%d descriptors open after close, %d before New", after, fds)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// mountsUnder lists the mount points at or beneath dir.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 5 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			found = append(found, f[4])
		}
	}
	return found
}
