// These tests come after initspawn_linux_test.go (file order): they start
// the helper, a child of this process, which TestStartInitBadMaps
// must not find.

package nsjail

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A program reads and writes the descriptors it is given above 2.
func TestExtraFilesReadAndWrite(t *testing.T) {
	spec := testSpec(t, "sh", "-c", `read x <&5; echo "got $x" >&7; echo done`)
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	inW.Write([]byte("ping\n"))
	inW.Close()
	got := make(chan string, 1)
	go func() { b, _ := io.ReadAll(outR); got <- string(b) }()
	o := runWith(t, spec, IO{ExtraFiles: map[int]*os.File{5: inR, 7: outW}})
	inR.Close()
	outW.Close()
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("last event %+v stderr %q", ev, o.stderr)
	}
	if o.stdout != "done\n" {
		t.Errorf("stdout %q", o.stdout)
	}
	if s := <-got; s != "got ping\n" {
		t.Errorf("fd 7 got %q, want %q", s, "got ping\n")
	}
}

// At its exec the program has 0, 1, 2 and the descriptors it was given,
// each the file given, and nothing else.
func TestExtraFilesOnlyAtExec(t *testing.T) {
	spec := testSpec(t, "sleep", "30")
	r, w, _ := os.Pipe()
	defer r.Close()
	defer w.Close()
	p, err := start(spec, Files{}, IO{ExtraFiles: map[int]*os.File{4: r, 9: w}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { p.Kill(); <-p.Done() }()
	for ev := range p.Events() {
		if ev.Kind == Started {
			break
		}
		if ev.Kind != Ready {
			t.Fatalf("event %+v before Started", ev)
		}
	}
	children, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Pid(), p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(children))
	if _, err := strconv.Atoi(pid); err != nil {
		t.Fatalf("the init's children: %q", children)
	}
	// The exec may be seen before /proc shows the new program.
	deadline := time.Now().Add(5 * time.Second)
	for {
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if string(comm) == "sleep\n" || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	entries, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range entries {
		fds = append(fds, e.Name())
	}
	slices.SortFunc(fds, func(a, b string) int { x, _ := strconv.Atoi(a); y, _ := strconv.Atoi(b); return x - y })
	if !slices.Equal(fds, []string{"0", "1", "2", "4", "9"}) {
		t.Fatalf("the program's descriptors: %v, want 0 1 2 4 9", fds)
	}
	for fd, f := range map[int]*os.File{4: r, 9: w} {
		var st unix.Stat_t
		unix.Fstat(int(f.Fd()), &st)
		link, _ := os.Readlink(fmt.Sprintf("/proc/%s/fd/%d", pid, fd))
		if want := fmt.Sprintf("pipe:[%d]", st.Ino); link != want {
			t.Errorf("fd %d is %q, want %q", fd, link, want)
		}
	}
	if link, _ := os.Readlink("/proc/" + pid + "/fd/0"); link != "/dev/null" {
		t.Errorf("fd 0 is %q, want /dev/null", link)
	}
}

// With every descriptor of 3 to MaxExtraFD given, a failed exec is still
// reported as such: the program's process's own error pipe is not one of
// them.
func TestExtraFilesExecFailure(t *testing.T) {
	spec := testSpec(t, "./not-a-program")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.WriteFile(dir+"/not-a-program", []byte("\x01\x02 no interpreter\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	wd, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wd.Close()
	extra := map[int]*os.File{}
	for fd := 3; fd <= MaxExtraFD; fd++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		extra[fd] = f
	}
	o := runWith(t, spec, IO{ExtraFiles: extra, Workdir: wd})
	ev := last(o)
	var ee *ExecError
	if ev.Kind != Failed || !errors.As(ev.Err, &ee) || !errors.Is(ee.Err, syscall.ENOEXEC) {
		t.Fatalf("last event %+v (%v), want Failed with an ExecError of ENOEXEC", ev, ev.Err)
	}
	for _, e := range o.events {
		if e.Kind == Started {
			t.Errorf("Started came for a failed exec: %+v", o.events)
		}
	}
}

// ExtraFiles are 3 to MaxExtraFD, none nil.
func TestExtraFilesRefused(t *testing.T) {
	f := os.Stdin
	for _, tc := range []struct {
		files map[int]*os.File
		err   string
		bits  uint64
	}{
		{files: nil},
		{files: map[int]*os.File{3: f, 9: f}, bits: 1<<3 | 1<<9},
		{files: map[int]*os.File{2: f}, err: "extra file 2: the extra files are 3 to 9"},
		{files: map[int]*os.File{10: f}, err: "extra file 10: the extra files are 3 to 9"},
		{files: map[int]*os.File{5: nil}, err: "extra file 5: nil"},
	} {
		bits, err := extraFDs(tc.files)
		if tc.err == "" && (err != nil || bits != tc.bits) || tc.err != "" && (err == nil || err.Error() != tc.err) {
			t.Errorf("%v: got %b, %v; want %b, %q", tc.files, bits, err, tc.bits, tc.err)
		}
	}
}
