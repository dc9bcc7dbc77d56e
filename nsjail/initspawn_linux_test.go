package nsjail

import (
	"errors"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startTestInit is startInit with the init as an *os.Process, to kill
// and wait for.
func startTestInit(s *initSpawn) (*os.Process, error) {
	pid, err := startInit(s)
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}

// testInitSpawn starts argv as startInit would start an init: in a new
// user namespace where it is root, mapped to an unprivileged host id.
func testInitSpawn(t *testing.T, path string, files []*os.File, argv ...string) *initSpawn {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: user namespaces mapped to other host ids")
	}
	return &initSpawn{
		path:   path,
		argv:   argv,
		env:    []string{"PATH=" + DefaultPath},
		files:  files,
		flags:  unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS,
		uidMap: idMap([3]uint32{0, 1_999_000_010, 1}),
		gidMap: idMap([3]uint32{0, 1_999_000_010, 1}),
	}
}

// openNull opens /dev/null for the test's duration.
func openNull(t *testing.T) *os.File {
	t.Helper()
	null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { null.Close() })
	return null
}

// TestStartInitLaysOutDescriptors gives the child descriptors in the
// reverse order of their numbers, most of them inside the layout, so that
// a naive dup3 in place would overwrite one still to be moved.
func TestStartInitLaysOutDescriptors(t *testing.T) {
	null := openNull(t)
	const n = 12
	var writers []*os.File
	for i := 0; i < n; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		writers = append(writers, w)
	}
	files := []*os.File{null, null, null}
	for i := n - 1; i >= 0; i-- {
		files = append(files, writers[i])
	}
	proc, err := startTestInit(testInitSpawn(t, "/bin/sleep", files, "sleep", "10"))
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Wait()
	defer proc.Kill()
	dir := "/proc/" + strconv.Itoa(proc.Pid) + "/"
	// Descriptor 3+k must be writers[n-1-k]'s pipe.
	for k := 0; k < n; k++ {
		got, err := os.Readlink(dir + "fd/" + strconv.Itoa(3+k))
		want, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(writers[n-1-k].Fd())))
		if err != nil || got != want {
			t.Errorf("descriptor %d is %q (%v), want writer %d's %q", 3+k, got, err, n-1-k, want)
		}
	}
	// Nothing but the layout is open: every other descriptor of ours was
	// closed at the exec, whether it was close-on-exec or not. The exec
	// is seen (our error pipe closes) while the kernel may still be
	// closing the descriptors after it: a moment is allowed.
	var ents []os.DirEntry
	for try := 0; try < 100; try++ {
		if ents, err = os.ReadDir(dir + "fd"); err != nil {
			t.Fatal(err)
		}
		if len(ents) == 3+n {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(ents) != 3+n {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("descriptors open after the exec: %v, want 0 to %d", names, 2+n)
	}
	// Root of its user namespace, mapped to the host id of the map.
	status, _ := os.ReadFile(dir + "status")
	if !strings.Contains(string(status), "\nUid:\t1999000010\t1999000010\t1999000010\t1999000010\n") {
		t.Errorf("not running as the mapped root:\n%s", status)
	}
}

func TestStartInitExecFailure(t *testing.T) {
	null := openNull(t)
	_, err := startInit(testInitSpawn(t, "/nonexistent/init", []*os.File{null, null, null}, "x"))
	if !errors.Is(err, syscall.ENOENT) || !strings.Contains(err.Error(), "execve") {
		t.Fatalf("got %v, want execve: ENOENT", err)
	}
	// The child was reaped: nothing is left to wait for.
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Fatalf("a child is left: %v", err)
	}
}

func TestStartInitBadMaps(t *testing.T) {
	null := openNull(t)
	s := testInitSpawn(t, "/bin/true", []*os.File{null, null, null}, "true")
	s.uidMap = "0 1999000010 1\n0 1999000011 1\n" // one id mapped twice: refused
	_, err := startInit(s)
	if err == nil || !strings.Contains(err.Error(), "uid_map") {
		t.Fatalf("got %v, want an error about uid_map", err)
	}
	if _, err := unix.Wait4(-1, nil, unix.WNOHANG, nil); err != unix.ECHILD {
		t.Fatalf("a child is left: %v", err)
	}
}

// The init's process runs no handler of ours between its clone and its
// exec: every disposition is back to the default before signals come
// back (an ignored one would survive the exec; it does not).
func TestStartInitResetsSignals(t *testing.T) {
	null := openNull(t)
	signal.Ignore(syscall.SIGUSR2)
	defer signal.Reset(syscall.SIGUSR2)
	proc, err := startTestInit(testInitSpawn(t, "/bin/sleep", []*os.File{null, null, null}, "sleep", "10"))
	if err != nil {
		t.Fatal(err)
	}
	defer proc.Wait()
	defer proc.Kill()
	status, err := os.ReadFile("/proc/" + strconv.Itoa(proc.Pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:\t"); ok {
			mask, err := strconv.ParseUint(v, 16, 64)
			if err != nil || mask != 0 {
				t.Errorf("signals ignored after the exec: %s (%v)", v, err)
			}
		}
		if v, ok := strings.CutPrefix(line, "SigBlk:\t"); ok && strings.Trim(v, "0") != "" {
			t.Errorf("signals blocked after the exec: %s", v)
		}
	}
}
