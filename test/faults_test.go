package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// startExec starts `sandboxd exec ARGS...` in the background.
func startExec(t *testing.T, args ...string) (*osexec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	cmd := osexec.Command(sandboxdBin, execArgs(args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, &errb
}

// waitForInit returns the host pid of a sandbox's init of parent (a
// `sandboxd exec`) once it holds its program's process: the init
// (sandboxd-init) is a child of parent, whose helper is a thread of its
// own.
func waitForInit(t *testing.T, parent int) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			comm, _ := os.ReadFile("/proc/" + e.Name() + "/comm")
			stat, _ := os.ReadFile("/proc/" + e.Name() + "/stat")
			if string(bytes.TrimSpace(comm)) != "sandboxd-init" || len(stat) == 0 {
				continue
			}
			f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
			if len(f) < 2 {
				continue
			}
			if ppid, _ := strconv.Atoi(f[1]); ppid != parent {
				continue
			}
			tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
			for _, task := range tasks {
				if children, _ := os.ReadFile(task); len(bytes.TrimSpace(children)) > 0 {
					return pid
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("no sandbox init appeared")
	return 0
}

func TestInitKilledMidRun(t *testing.T) {
	cmd, out, errb := startExec(t, "--", "sleep", "30")
	initPid := waitForInit(t, cmd.Process.Pid)
	syscall.Kill(initPid, syscall.SIGKILL)
	start := time.Now()
	err := cmd.Wait()
	if ee, ok := err.(*osexec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("sandboxd exec: %v, want exit status 1 (the sandbox failed)", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("took %v to notice the init's death", time.Since(start))
	}
	var r api.StepResult
	json.Unmarshal(out.Bytes(), &r)
	if r.Verdict != api.VerdictInternalError || !strings.Contains(errb.String(), "init") {
		t.Errorf("verdict %s, stderr %q", r.Verdict, errb.String())
	}
	assertNoLeftovers(t)
}

func TestSIGTERMCancels(t *testing.T) {
	cmd, out, _ := startExec(t, "--", "sh", "-c", "echo started; sleep 30")
	waitForInit(t, cmd.Process.Pid)
	time.Sleep(50 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("sandboxd exec: %v, want exit 0 with a result", err)
	}
	var r api.StepResult
	json.Unmarshal(out.Bytes(), &r)
	if r.Verdict != api.VerdictCancelled || r.Stdout != "started\n" {
		t.Errorf("verdict %s stdout %q, want cancelled with the output so far", r.Verdict, r.Stdout)
	}
	assertNoLeftovers(t)
}

func TestSIGKILLedExecIsReclaimed(t *testing.T) {
	cmd, _, _ := startExec(t, "--", "sleep", "30")
	waitForInit(t, cmd.Process.Pid)
	cmd.Process.Kill()
	cmd.Wait()
	// The init dies with its parent (parent-death signal), and the pid
	// namespace with it.
	deadline := time.Now().Add(5 * time.Second)
	for len(sandboxProcesses()) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if procs := sandboxProcesses(); len(procs) > 0 {
		t.Fatalf("processes outlived a killed sandboxd exec: %v", procs)
	}
	if len(execCgroups()) == 0 {
		t.Fatal("expected the killed run's cgroups to be left for the next run to reclaim")
	}
	// The next sandboxd exec reclaims them (sandboxExec checks).
	sandboxExec(t, "--", "true")
}

func TestConcurrentSandboxesGetDistinctUIDs(t *testing.T) {
	script := "grep '^ *1000 ' /proc/self/uid_map; ls /proc | grep -c '^[0-9]'; sleep 1"
	a, outA, _ := startExec(t, "--", "sh", "-c", script)
	b, outB, _ := startExec(t, "--", "sh", "-c", script)
	a.Wait()
	b.Wait()
	var ra, rb api.StepResult
	json.Unmarshal(outA.Bytes(), &ra)
	json.Unmarshal(outB.Bytes(), &rb)
	if ra.Verdict != api.VerdictOK || rb.Verdict != api.VerdictOK {
		t.Fatalf("verdicts %s %s", ra.Verdict, rb.Verdict)
	}
	mapA, mapB := strings.SplitN(ra.Stdout, "\n", 2)[0], strings.SplitN(rb.Stdout, "\n", 2)[0]
	if mapA == mapB {
		t.Errorf("two live sandboxes share a host uid: %q", mapA)
	}
	assertNoLeftovers(t)
}

func TestOutputFloodOnBothStreams(t *testing.T) {
	r := sandboxExec(t, "--output-bytes", "4096", "--", "sh", "-c", "yes out & yes err >&2")
	wantVerdict(t, r, api.VerdictOutputLimit)
	if len(r.Stdout) > 4096 || len(r.Stderr) > 4096 || !(r.StdoutTruncated || r.StderrTruncated) {
		t.Errorf("stdout %d bytes (truncated %v), stderr %d bytes (truncated %v)", len(r.Stdout), r.StdoutTruncated, len(r.Stderr), r.StderrTruncated)
	}
}

func TestProgramCannotSignalItsInit(t *testing.T) {
	for _, sig := range []string{"TERM", "KILL", "SEGV", "QUIT", "USR1", "INT", "HUP", "STOP"} {
		r := sandboxExec(t, "--", "sh", "-c", "kill -"+sig+" 1 2>/dev/null; kill -"+sig+" -1 2>/dev/null; echo survived")
		// kill -1 may take the shell itself; what matters is that the init
		// lived to report it.
		if r.Verdict == api.VerdictInternalError {
			t.Errorf("kill -%s 1 from the program ended the sandbox: %s", sig, summary(r.StepResult))
		}
	}
}

// Short `sandboxd exec` runs side by side, each making its groups in the
// shared subtree and removing the subtree, empty, when it stops: none may
// find the subtree gone under it, and nothing is left after the last.
func TestExecsSideBySideShareTheSubtree(t *testing.T) {
	before := cgroupDirs(testSubtree)
	const workers, runs = 3, 40
	errs := make(chan string, workers*runs)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < runs; i++ {
				out, err := osexec.Command(sandboxdBin, execArgs("--", "/bin/true")...).CombinedOutput()
				if err != nil {
					errs <- fmt.Sprintf("%v: %s", err, out)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for e := range errs {
		if failed++; failed <= 3 {
			t.Errorf("sandboxd exec /bin/true: %s", e)
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d runs failed", failed, workers*runs)
	}
	if added := newDirs(before, cgroupDirs(testSubtree)); len(added) > 0 {
		t.Errorf("cgroups left by the runs: %v", added)
	}
	assertNoLeftovers(t)
}
