package test

import (
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"

	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/nsjail"
)

var (
	sandboxdBin string // the binary under test
	programsDir string // testdata/*.c compiled
)

func TestMain(m *testing.M) {
	// The benchmarks run the engine in this process: this binary is then
	// also the sandbox init.
	if nsjail.IsHelper() {
		nsjail.HelperMain()
	}
	if os.Geteuid() != 0 {
		fmt.Println("skipping the end-to-end tests: they need root (user namespaces mapped to other host uids, cgroups)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sandboxd-e2e-")
	if err != nil {
		panic(err)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := setup(dir); err != nil {
			fmt.Fprintln(os.Stderr, "setup:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

func setup(dir string) error {
	sandboxdBin = os.Getenv("SANDBOXD_BIN")
	if sandboxdBin == "" {
		sandboxdBin = filepath.Join(dir, "sandboxd")
		cmd := exec.Command("go", "build", "-o", sandboxdBin, "../cmd/sandboxd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build sandboxd: %v\n%s", err, out)
		}
	}
	srcs, _ := filepath.Glob("testdata/*.c")
	// SANDBOXD_TEST_PROGRAMS names a directory holding testdata/*.c
	// already compiled as below (make test-v2 compiles them on the host for
	// its guest, where gcc would run under emulation).
	if prebuilt := os.Getenv("SANDBOXD_TEST_PROGRAMS"); prebuilt != "" {
		for _, src := range srcs {
			bin := filepath.Join(prebuilt, strings.TrimSuffix(filepath.Base(src), ".c"))
			if _, err := os.Stat(bin); err != nil {
				return fmt.Errorf("SANDBOXD_TEST_PROGRAMS: %s is not compiled: %w", src, err)
			}
		}
		programsDir = prebuilt
		return nil
	}
	programsDir = filepath.Join(dir, "programs")
	if err := os.MkdirAll(programsDir, 0o755); err != nil {
		return err
	}
	for _, src := range srcs {
		out := filepath.Join(programsDir, strings.TrimSuffix(filepath.Base(src), ".c"))
		if b, err := exec.Command("gcc", "-O1", "-pthread", "-o", out, src).CombinedOutput(); err != nil {
			return fmt.Errorf("gcc %s: %v\n%s", src, err, b)
		}
	}
	return nil
}

// workdir makes a fresh host directory for --workdir holding the named
// compiled programs.
func workdir(t *testing.T, programs ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range programs {
		b, err := os.ReadFile(filepath.Join(programsDir, p))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// execResult is one run of `sandboxd exec`.
type execResult struct {
	api.StepResult
	exitCode int
	stderr   string
	raw      string
}

// sandboxExec runs `sandboxd exec ARGS...` and decodes its result. It
// fails the test unless the run produced a result with exit status 0.
func sandboxExec(t *testing.T, args ...string) execResult {
	t.Helper()
	before := cgroupDirs(testSubtree)
	r := sandboxExecRaw(t, args...)
	// Not one cgroup more than before: no run's, nor the subtree's.
	if added := newDirs(before, cgroupDirs(testSubtree)); len(added) > 0 {
		t.Errorf("cgroups left by sandboxd exec: %v", added)
	}
	if r.exitCode != 0 {
		t.Fatalf("sandboxd exec %q: exit %d\nstderr: %s\nstdout: %s", args, r.exitCode, r.stderr, r.raw)
	}
	if err := json.Unmarshal([]byte(r.raw), &r.StepResult); err != nil {
		t.Fatalf("sandboxd exec %q: bad JSON %v: %s", args, err, r.raw)
	}
	t.Logf("sandboxd exec %s\n%s", strings.Join(args, " "), summary(r.StepResult))
	assertNoLeftovers(t)
	return r
}

// testSubtree is the cgroup subtree of this test process's daemons and
// `sandboxd exec` runs; with hostcheck's uid range, what the leftover
// checks look at, so that the tests pass beside other sandboxd processes.
var testSubtree = hostcheck.Subtree("sandboxd-test")

// execArgs is the command line of `sandboxd exec ARGS...` with this test
// process's uids and subtree.
func execArgs(args ...string) []string {
	return append(append([]string{"exec"}, hostcheck.ExecFlags(testSubtree)...), args...)
}

func sandboxExecRaw(t *testing.T, args ...string) execResult {
	t.Helper()
	cmd := exec.Command(sandboxdBin, execArgs(args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := execResult{raw: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.exitCode = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run sandboxd: %v", err)
	}
	return r
}

func summary(r api.StepResult) string {
	return fmt.Sprintf("verdict=%s exit=%d signal=%q cpu=%.1fms (user %.1f sys %.1f) wall=%.1fms peak=%d maxrss=%d pids=%d msg=%q stdout=%.200q stderr=%.200q",
		r.Verdict, r.ExitCode, r.Signal, r.CPUTimeMS, r.UserTimeMS, r.SysTimeMS, r.WallTimeMS,
		r.MemoryPeakBytes, r.MaxRSSBytes, r.PIDsPeak, r.Message, r.Stdout, r.Stderr)
}

func wantVerdict(t *testing.T, r execResult, v api.Verdict) {
	t.Helper()
	if r.Verdict != v {
		t.Fatalf("verdict %s, want %s\n%s", r.Verdict, v, summary(r.StepResult))
	}
}

// assertNoLeftovers fails if any process runs under this test process's
// sandbox uids, or any run cgroup of its `sandboxd exec` runs is left.
func assertNoLeftovers(t *testing.T) {
	t.Helper()
	if procs := sandboxProcesses(); len(procs) > 0 {
		t.Errorf("processes left running under sandbox uids: %v", procs)
	}
	if groups := execCgroups(); len(groups) > 0 {
		t.Errorf("cgroups left: %v", groups)
	}
}

// sandboxProcesses lists every live process under this test process's
// sandbox uids, idle inits included: `sandboxd exec` keeps no warm
// sandboxes, and a stopped daemon none either.
func sandboxProcesses() []string { return hostcheck.All() }

// busyProcesses lists the processes under sandbox uids but a running
// daemon's warm sandboxes (idle inits): what a finished job must not leave.
func busyProcesses() []string { return hostcheck.Busy() }

// cgroupDirs lists the cgroup directories, to the depth run groups sit
// at, in or beneath the subtree named name (and on v2 its "-self" leaf).
func cgroupDirs(name string) map[string]bool {
	dirs := map[string]bool{}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.Count(p, "/") > 9 {
			return fs.SkipDir
		}
		for _, el := range strings.Split(p, "/") {
			if el == name || el == name+"-self" {
				dirs[p] = true
				break
			}
		}
		return nil
	})
	return dirs
}

// newDirs lists what after has and before had not.
func newDirs(before, after map[string]bool) []string {
	var added []string
	for d := range after {
		if !before[d] {
			added = append(added, d)
		}
	}
	slices.Sort(added)
	return added
}

func execCgroups() []string {
	var found []string
	for d := range cgroupDirs(testSubtree) {
		if strings.HasPrefix(filepath.Base(d), "exec-") && strings.Contains(d, "/"+testSubtree+"/") {
			found = append(found, d)
		}
	}
	slices.Sort(found)
	return found
}

func base64Std(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
