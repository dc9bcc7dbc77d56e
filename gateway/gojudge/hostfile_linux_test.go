package gojudge

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestOpenHostFile(t *testing.T) {
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	os.MkdirAll(filepath.Join(allowed, "sub"), 0o755)
	os.WriteFile(filepath.Join(allowed, "sub", "in.txt"), []byte("data"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("secret"), 0o644)
	os.Symlink("sub/in.txt", filepath.Join(allowed, "inner")) // stays beneath: taken
	os.Symlink("../secret", filepath.Join(allowed, "up"))     // leaves: refused
	os.Symlink("/etc/passwd", filepath.Join(allowed, "abs"))  // leaves: refused
	os.Symlink(dir, filepath.Join(allowed, "dirlink"))        // leaves on the way
	unix.Mkfifo(filepath.Join(allowed, "fifo"), 0o644)        // not a regular file
	dirs := []string{allowed}
	for _, ok := range []string{allowed + "/sub/in.txt", allowed + "/inner", allowed + "//sub/./in.txt"} {
		f, err := openHostFile(dirs, ok)
		if err != nil {
			t.Errorf("%s: %v", ok, err)
			continue
		}
		b, _ := io.ReadAll(f)
		f.Close()
		if string(b) != "data" {
			t.Errorf("%s: read %q", ok, b)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{allowed + "/up", "leaves " + allowed},
		{allowed + "/abs", "leaves " + allowed},
		{allowed + "/dirlink/secret", "leaves " + allowed},
		{allowed + "/../secret", "not beneath the gateway's host_dirs"},
		{allowed + "x/secret", "not beneath the gateway's host_dirs"},
		{allowed, "not beneath the gateway's host_dirs"},
		{dir + "/secret", "not beneath the gateway's host_dirs"},
		{"sub/in.txt", "not an absolute path"},
		{allowed + "/fifo", "not a regular file"},
		{allowed + "/sub", "not a regular file"},
		{allowed + "/missing", "no such file"},
	} {
		f, err := openHostFile(dirs, tc.path)
		if err == nil {
			f.Close()
			t.Errorf("%s: opened", tc.path)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path) {
			t.Errorf("%s: %v, want it to name the path and say %q", tc.path, err, tc.want)
		}
	}
	if _, err := openHostFile(nil, allowed+"/sub/in.txt"); err == nil || !strings.Contains(err.Error(), "host_dirs is empty") {
		t.Errorf("no host_dirs: %v", err)
	}
}
