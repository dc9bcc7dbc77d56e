package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWorkspaceErrorWithoutPath(t *testing.T) {
	// The state dir's workspace parent is a file: the caller learns why,
	// not where.
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "ws"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newWorkspace(state, "x", 1<<20)
	if err == nil {
		t.Fatal("a workspace was made beneath a file")
	}
	if got := withoutPath(err); got != "mkdir: not a directory" || strings.Contains(got, state) {
		t.Fatalf("withoutPath(%v) = %q", err, got)
	}
}

// No fork happens while a job's file is open for writing: the child would
// hold it open, and the program exec'd from it would fail with ETXTBSY.
func TestWriteFilesExcludesForks(t *testing.T) {
	w := &workspace{dir: t.TempDir()}
	syscall.ForkLock.Lock() // a fork in progress
	done := make(chan error, 1)
	go func() {
		done <- w.writeFiles([]checkedFile{{name: "bin/prog", data: []byte("#!/bin/sh\n"), mode: 0o755}})
	}()
	time.Sleep(50 * time.Millisecond)
	_, err := os.Stat(filepath.Join(w.dir, "bin/prog"))
	syscall.ForkLock.Unlock()
	if err == nil {
		t.Error("the file was opened while a fork was in progress")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(w.dir, "bin/prog")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Fatalf("after the fork: %q %v", b, err)
	}
}

// The workspaces' own tmpfs: mounted on a disk state dir, replaced when a
// previous daemon left one, and never mounted over someone else's mount.
func TestWorkspacesDirTmpfs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts")
	}
	state := t.TempDir() // on this host's disk, or a tmpfs
	var fs syscall.Statfs_t
	if err := syscall.Statfs(state, &fs); err != nil {
		t.Fatal(err)
	}
	dir := workspacesDir(state)
	top := func() string {
		src, err := mountSource(dir)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	mounted, err := mountWorkspacesDir(state)
	if err != nil {
		t.Fatal(err)
	}
	if fs.Type == 0x01021994 { // TMPFS_MAGIC: nothing to gain
		if mounted || top() != "" {
			t.Fatalf("mounted %v on a tmpfs state dir (top %q)", mounted, top())
		}
		return
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	if !mounted || top() != workspacesSource {
		t.Fatalf("mounted %v, top mount %q", mounted, top())
	}
	// A second start finds the first's tmpfs: replaced, not stacked.
	if mounted, err = mountWorkspacesDir(state); err != nil || !mounted {
		t.Fatalf("again: %v, %v", mounted, err)
	}
	if n := strings.Count(mountsAt(t, dir), "\n"); n != 1 {
		t.Errorf("%d mounts on %s, want 1", n, dir)
	}
	if err := unmountWorkspacesDir(state); err != nil || top() != "" {
		t.Fatalf("unmount: %v, top %q", err, top())
	}
	// Someone else's mount there is used as it is.
	if err := syscall.Mount("theirs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	if mounted, err = mountWorkspacesDir(state); err != nil || mounted || top() != "theirs" {
		t.Fatalf("over a foreign mount: mounted %v, %v, top %q", mounted, err, top())
	}
}

// mountsAt lists the mountinfo lines of mounts on dir.
func mountsAt(t *testing.T, dir string) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			out += line + "\n"
		}
	}
	return out
}
