package engine

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestChownTreeBeyondPathMax gives away a tree whose deepest paths are far
// longer than PATH_MAX, and a wide directory, through descriptors: every
// entry changes hands, symlinks themselves, and no error names a path.
func TestChownTreeBeyondPathMax(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to other uids needs root")
	}
	root := t.TempDir()
	// 600 levels of 20-byte names: paths of 12,600 bytes.
	name := strings.Repeat("d", 20)
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i++ {
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(fd)
		fd = next
	}
	if err := unix.Symlinkat("/etc/passwd", fd, "link"); err != nil {
		t.Fatal(err)
	}
	deepest := fd
	defer unix.Close(deepest)
	wide := filepath.Join(root, "wide")
	os.Mkdir(wide, 0o755)
	for i := 0; i < 2000; i++ {
		os.WriteFile(filepath.Join(wide, strings.Repeat("f", 1+i%50)+strconv.Itoa(i)), nil, 0o644)
	}
	var passwd syscall.Stat_t
	syscall.Stat("/etc/passwd", &passwd)

	start := time.Now()
	if _, err := chownTree(root, 4242, 4343, 0); err != nil {
		t.Fatalf("chownTree: %v", err)
	}
	t.Logf("chowned 600 levels and 2,000 files in %v", time.Since(start))
	var st unix.Stat_t
	if err := unix.Fstatat(deepest, "link", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil || st.Uid != 4242 || st.Gid != 4343 {
		t.Errorf("the deepest symlink: uid %d gid %d (%v)", st.Uid, st.Gid, err)
	}
	if err := unix.Fstat(deepest, &st); err != nil || st.Uid != 4242 {
		t.Errorf("the deepest directory: uid %d (%v)", st.Uid, err)
	}
	var after syscall.Stat_t
	syscall.Stat("/etc/passwd", &after)
	if after.Uid != passwd.Uid {
		t.Fatalf("a symlink was followed: /etc/passwd is owned by %d", after.Uid)
	}
	entries, _ := os.ReadDir(wide)
	for _, e := range entries {
		info, _ := e.Info()
		if info.Sys().(*syscall.Stat_t).Uid != 4242 {
			t.Fatalf("%s not chowned", e.Name())
		}
	}
	if len(entries) != 2000 {
		t.Fatalf("%d files", len(entries))
	}
}

// TestLargeFiles: the files a walk finds larger than a size are those that
// were not so before, or changed size since.
func TestLargeFiles(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.WriteFile(filepath.Join(root, "small"), make([]byte, 10), 0o644)
	os.WriteFile(filepath.Join(root, "a/b/big"), make([]byte, 100), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(root, "link")) // never followed
	before, err := largeFilesIn(root, 50)
	if err != nil || len(before) != 1 {
		t.Fatalf("largeFilesIn: %v %v", before, err)
	}
	fd, _ := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	defer unix.Close(fd)
	if found, err := largeFiles(fd, 50, before); found || err != nil {
		t.Errorf("a file as large as before counted: %v %v", found, err)
	}
	os.WriteFile(filepath.Join(root, "a/b/big"), make([]byte, 101), 0o644)
	if found, _ := largeFiles(fd, 50, before); !found {
		t.Error("a large file that grew did not count")
	}
	os.WriteFile(filepath.Join(root, "a/b/big"), make([]byte, 100), 0o644)
	os.WriteFile(filepath.Join(root, "small"), make([]byte, 51), 0o644)
	if found, _ := largeFiles(fd, 50, before); !found {
		t.Error("a file newly past the size did not count")
	}
	if found, _ := largeFiles(fd, 1<<20, nil); found {
		t.Error("a file under the size counted")
	}
}
