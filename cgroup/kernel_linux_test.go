package cgroup

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// A kept directory's descriptor stays open while a call uses it, even when
// the directory is let go of meanwhile (on another thread), and is closed
// once the last user is done; paths beneath a directory not kept go by
// their whole path.
func TestHostKernelKeptDirs(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "g")
	k := &hostKernel{}
	if err := k.mkdir(sub); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fd, name, done := k.at(filepath.Join(sub, "f"))
	if fd == unix.AT_FDCWD || name != "f" {
		t.Fatalf("at = %d, %q: the made directory is not kept", fd, name)
	}
	k.drop(sub)
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		t.Fatalf("the descriptor was closed under its user: %v", err)
	}
	if b, err := k.readFile(filepath.Join(sub, "f")); err != nil || string(b) != "x" {
		t.Errorf("read by path after the drop: %q, %v", b, err)
	}
	done()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("the descriptor outlived its last user: %v", err)
	}
	if fd, name, done := k.at(filepath.Join(dir, "other", "f")); fd != unix.AT_FDCWD || name != filepath.Join(dir, "other", "f") {
		t.Errorf("at beneath a directory not kept = %d, %q", fd, name)
	} else {
		done()
	}
	// keepDir in place of a kept one closes the first (no user).
	k.keepDir(sub)
	first := k.dirs[sub].fd
	k.keepDir(sub)
	if _, err := unix.FcntlInt(uintptr(first), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("the replaced descriptor is still open: %v", err)
	}
	if err := k.rmdir(sub); err == nil {
		t.Error("rmdir of a directory with a file succeeded")
	}
	if len(k.dirs) != 0 {
		t.Errorf("kept after rmdir: %v", k.dirs)
	}
}
