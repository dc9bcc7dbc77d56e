package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// mountedTmpfs reports whether dir is a tmpfs mount point of size bytes.
func mountedTmpfs(t *testing.T, dir string, size int64) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.TMPFS_MAGIC && st.Blocks*uint64(st.Bsize) == uint64(size)
}

func TestWSPool(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts tmpfs workspaces")
	}
	state := t.TempDir()
	logged := make(chan error, 100)
	const size = 4 << 20
	p := newWSPool(state, 2, []int64{size}, nil, func(err error) { logged <- err })
	waitReady := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for p.readyCount() != n {
			if time.Now().After(deadline) {
				t.Fatalf("%d workspaces ready, want %d", p.readyCount(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitReady(2)

	// Taken ones are mounted, distinct, and replaced.
	seen := map[string]bool{}
	var taken []*workspace
	for i := 0; i < 5; i++ {
		ws, err := p.take(size)
		if err != nil {
			t.Fatal(err)
		}
		if seen[ws.dir] {
			t.Fatalf("workspace %s given twice", ws.dir)
		}
		seen[ws.dir] = true
		if !mountedTmpfs(t, ws.dir, size) {
			t.Fatalf("%s is not a tmpfs of %d bytes", ws.dir, size)
		}
		taken = append(taken, ws)
	}
	waitReady(2)

	// Another size: made at once, none kept of it.
	other, err := p.take(1 << 20)
	if err != nil || !mountedTmpfs(t, other.dir, 1<<20) {
		t.Fatalf("a workspace of another size: %v", err)
	}
	taken = append(taken, other)
	if p.readyCount() != 2 {
		t.Errorf("%d ready after a take of another size, want 2", p.readyCount())
	}
	for _, ws := range taken {
		if err := ws.remove(); err != nil {
			t.Fatal(err)
		}
	}

	// Close leaves nothing, mounts included.
	p.close()
	if ents, _ := os.ReadDir(filepath.Join(state, "ws")); len(ents) != 0 {
		t.Errorf("%d workspaces after close", len(ents))
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), state) {
		t.Errorf("mounts left under %s", state)
	}
	if ws, err := p.take(size); err != nil || p.readyCount() != 0 {
		t.Errorf("take after close: %v, %d ready", err, p.readyCount())
	} else {
		ws.remove()
	}
	if len(logged) != 0 {
		t.Errorf("logged: %v", <-logged)
	}
}

// A pool that cannot make workspaces logs why, and take still answers
// with the error of a workspace made at once.
func TestWSPoolFailure(t *testing.T) {
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "ws"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	logged := make(chan error, 10)
	p := newWSPool(state, 1, []int64{1 << 20}, nil, func(err error) { logged <- err })
	defer p.close()
	select {
	case err := <-logged:
		if !strings.Contains(err.Error(), "not a directory") {
			t.Errorf("logged %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the failure was not logged")
	}
	if _, err := p.take(1 << 20); err == nil || withoutPath(err) != "mkdir: not a directory" {
		t.Errorf("take: %v", err)
	}
}

// A refill waits for its turn: a workspace taken while a job runs is
// replaced only when turn lets it.
func TestWSPoolRefillWaitsItsTurn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts tmpfs workspaces")
	}
	state := t.TempDir()
	const size = 1 << 20
	asked := make(chan struct{}, 10)
	allow := make(chan struct{})
	turn := func() {
		asked <- struct{}{}
		<-allow
	}
	p := newWSPool(state, 1, []int64{size}, turn, func(err error) { t.Errorf("logged: %v", err) })
	defer p.close()
	release := sync.OnceFunc(func() { close(allow) })
	defer release() // before close, which waits for the refill
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the first fill did not ask for its turn")
	}
	allow <- struct{}{}
	deadline := time.Now().Add(5 * time.Second)
	for p.readyCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the first workspace was not made")
		}
		time.Sleep(time.Millisecond)
	}

	ws, err := p.take(size)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.remove()
	select {
	case <-asked:
	case <-time.After(5 * time.Second):
		t.Fatal("the refill did not ask for its turn")
	}
	// Until its turn comes, nothing is made.
	time.Sleep(20 * time.Millisecond)
	if n := p.readyCount(); n != 0 {
		t.Fatalf("%d ready before the refill's turn", n)
	}
	if ents, _ := os.ReadDir(filepath.Join(state, "ws")); len(ents) != 1 {
		t.Fatalf("%d workspace dirs before the refill's turn, want the taken one", len(ents))
	}
	release()
	deadline = time.Now().Add(5 * time.Second)
	for p.readyCount() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the refill was not made after its turn")
		}
		time.Sleep(time.Millisecond)
	}
}
