package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

// What a program leaves at a stdout_to path never redirects the write:
// a symlink (to a file outside or inside), a FIFO, a hard link are
// replaced by a new file; a symlink on the way or a directory at the name
// is an error, and nothing is written anywhere.
func TestWriteStdoutBeneath(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "passwd")
	os.WriteFile(outside, []byte("root:x:0:0\n"), 0o644)
	w := &workspace{dir: t.TempDir()}
	in := func(name string) string { return filepath.Join(w.dir, name) }
	os.WriteFile(in("inside.txt"), []byte("inside\n"), 0o644)
	os.Symlink(outside, in("abs-link"))
	os.Symlink("inside.txt", in("rel-link"))
	os.Symlink("/nonexistent/new", in("dangling"))
	syscall.Mkfifo(in("fifo"), 0o644)
	os.Link(in("inside.txt"), in("hard"))
	os.Mkdir(in("dir"), 0o755)
	os.WriteFile(in("dir/keep"), nil, 0o644)
	os.Symlink(filepath.Dir(outside), in("updir"))
	os.WriteFile(in("file"), nil, 0o644)

	for _, name := range []string{"abs-link", "rel-link", "dangling", "fifo", "hard", "new.txt", "deep/er/out.txt", "dir/keep"} {
		if err := w.writeStdout(name, "stdout of "+name); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		var st unix.Stat_t
		if err := unix.Lstat(in(name), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 || st.Mode&0o777 != 0o644 {
			t.Errorf("%s: not a new regular file of its own, mode 0644: %+v %v", name, st, err)
		}
		if b, _ := os.ReadFile(in(name)); string(b) != "stdout of "+name {
			t.Errorf("%s: holds %q", name, b)
		}
	}
	for name, want := range map[string]string{
		"dir":         "a directory is in the way",
		"updir/x":     "updir: a symlink is in the way",
		"file/x":      "file: a file that is not a directory is in the way",
		"updir/y/out": "updir: a symlink is in the way",
		"dir/keep/x":  "dir/keep: a file that is not a directory is in the way",
	} {
		if err := w.writeStdout(name, "x"); err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", name, err, want)
		}
	}
	if b, _ := os.ReadFile(outside); string(b) != "root:x:0:0\n" {
		t.Errorf("the file outside was written: %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(outside)); len(ents) != 1 {
		t.Errorf("something was made outside: %v", ents)
	}
	if _, err := os.Stat("/nonexistent/new"); err == nil {
		t.Errorf("the dangling symlink was followed")
	}
	if b, _ := os.ReadFile(in("inside.txt")); string(b) != "inside\n" {
		t.Errorf("the file a symlink and a hard link named was written: %q", b)
	}
}

// A full workspace leaves no half-written file for a checker to read.
func TestWriteStdoutFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts a tmpfs")
	}
	dir := t.TempDir()
	if err := unix.Mount("sandboxd-test", dir, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	w := &workspace{dir: dir}
	err := w.writeStdout("out.txt", strings.Repeat("x", 1<<20))
	if err == nil || err.Error() != "the workspace is full (1048576 bytes of stdout)" {
		t.Fatalf("%v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "out.txt")); !os.IsNotExist(err) {
		t.Errorf("a half-written out.txt is left: %v", err)
	}
	if err := w.writeStdout("out.txt", "fits"); err != nil {
		t.Errorf("after: %v", err)
	}
}

func TestReadExpected(t *testing.T) {
	w := &workspace{dir: t.TempDir()}
	in := func(name string) string { return filepath.Join(w.dir, name) }
	os.WriteFile(in("ans.txt"), []byte("42\n"), 0o600)
	os.WriteFile(in("big.txt"), []byte(strings.Repeat("1", 101)), 0o644)
	os.Symlink("ans.txt", in("link"))
	os.Symlink("/etc", in("etc"))
	syscall.Mkfifo(in("fifo"), 0o644)
	os.Mkdir(in("dir"), 0o755)
	if got, err := w.readExpected("ans.txt", 100); err != nil || got != "42\n" {
		t.Errorf("ans.txt: %q %v", got, err)
	}
	for name, want := range map[string]string{
		"missing":    "no such file",
		"ans.txt/x":  "no such file",
		"link":       "a symlink is on its path",
		"etc/passwd": "a symlink is on its path",
		"fifo":       "not a regular file",
		"dir":        "not a regular file",
		"big.txt":    "101 bytes, more than the step's output_bytes (100)",
	} {
		if got, err := w.readExpected(name, 100); err == nil || err.Error() != want {
			t.Errorf("%s: %q %v, want %q", name, got, err, want)
		}
	}
}

// judgeStdout: the file is written whatever the verdict, a failed write
// makes an ok step output_limit, a missing expected file does not match.
func TestJudgeStdout(t *testing.T) {
	w := &workspace{dir: t.TempDir()}
	os.WriteFile(filepath.Join(w.dir, "ans.txt"), []byte("1.0000001 2\n"), 0o644)
	os.Mkdir(filepath.Join(w.dir, "taken"), 0o755)
	cs := func(s api.Step) *checkedStep {
		c, aerr := checkStdoutFields(&s, "steps[0]", nil)
		if aerr != nil {
			t.Fatal(aerr)
		}
		return &checkedStep{step: &s, check: c, limits: api.Limits{OutputBytes: 1 << 20}}
	}
	run := func(s api.Step, sr api.StepResult) api.StepResult {
		judgeStdout(&sr, nil, cs(s), w)
		return sr
	}
	sr := run(api.Step{StdoutTo: "out.txt", ExpectedStdoutFile: "ans.txt", Compare: api.CompareFloat}, api.StepResult{Verdict: api.VerdictOK, Stdout: "1 2"})
	if sr.StdoutMatches == nil || !*sr.StdoutMatches || sr.Message != "" {
		t.Errorf("float against the file: %+v", sr)
	}
	if b, _ := os.ReadFile(filepath.Join(w.dir, "out.txt")); string(b) != "1 2" {
		t.Errorf("out.txt: %q", b)
	}
	sr = run(api.Step{ExpectedStdoutFile: "ans.txt", Compare: api.CompareTokens}, api.StepResult{Verdict: api.VerdictOK, Stdout: "1 2"})
	if sr.StdoutMatches == nil || *sr.StdoutMatches || sr.Message != `token 1 differs: "1", expected "1.0000001"` {
		t.Errorf("tokens against the file: %+v", sr)
	}
	sr = run(api.Step{ExpectedStdoutFile: "nope.txt"}, api.StepResult{Verdict: api.VerdictOK, Stdout: "1 2"})
	if sr.StdoutMatches == nil || *sr.StdoutMatches || sr.Message != `expected_stdout_file "nope.txt": no such file` || sr.Verdict != api.VerdictOK {
		t.Errorf("missing expected file: %+v", sr)
	}
	sr = run(api.Step{StdoutTo: "taken"}, api.StepResult{Verdict: api.VerdictOK, Stdout: "x"})
	if sr.Verdict != api.VerdictOutputLimit || sr.Message != `stdout_to "taken": a directory is in the way` {
		t.Errorf("stdout_to a directory: %+v", sr)
	}
	sr = run(api.Step{StdoutTo: "tle.txt"}, api.StepResult{Verdict: api.VerdictCPUTimeLimit, Stdout: "partial", Message: "m"})
	if b, _ := os.ReadFile(filepath.Join(w.dir, "tle.txt")); string(b) != "partial" || sr.Verdict != api.VerdictCPUTimeLimit || sr.Message != "m" {
		t.Errorf("stdout of a step past its limit: %q %+v", b, sr)
	}
	// A truncated stdout never matches, and gets no reason: its verdict says it.
	want := "x"
	sr = run(api.Step{ExpectedStdout: &want, Compare: api.CompareTokens}, api.StepResult{Verdict: api.VerdictOutputLimit, Stdout: "x", StdoutTruncated: true})
	if *sr.StdoutMatches || sr.Message != "" {
		t.Errorf("truncated: %+v", sr)
	}
}
