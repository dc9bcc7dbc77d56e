package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/nsjail"
)

// stateDir is a state dir of the test's own, removed when it ends.
// Sandboxes reach the state dir as another user: every directory on the
// way must be searchable, which t.TempDir's are not.
func stateDir(t testing.TB) string {
	t.Helper()
	state, err := os.MkdirTemp("", "sandboxd-engine-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(state) })
	if err := os.Chmod(state, 0o755); err != nil {
		t.Fatal(err)
	}
	return state
}

// rootEngine is an engine on the real host with cfg's settings, its state
// dir and cgroup subtree of its own, closed when the test ends.
func rootEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: the engine maps uids and makes cgroups")
	}
	state := stateDir(t)
	cfg.StateDir = state
	cfg.CgroupSubtree = fmt.Sprintf("sandboxd-enginetest-%d", os.Getpid())
	e, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		// The next test's engine sets its own helpers.
		nsjail.SetHelpers(nsjail.HelperOptions{Count: 1})
	})
	return e
}

// TestTwoHelpers forces two helpers on this host and checks that the
// sandboxes spread over both and that every verdict, a cancel, and the
// death of one helper while the other serves come out as with one.
func TestTwoHelpers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Helpers = 2
	e := rootEngine(t, cfg)
	if e.Helpers() != 2 {
		t.Fatalf("Helpers() = %d, want 2", e.Helpers())
	}
	cases := []struct {
		name  string
		argv  []string
		lim   api.Limits
		want  api.Verdict
		check func(api.StepResult) string
	}{
		{"ok", []string{"/bin/sh", "-c", "echo hi"}, api.Limits{}, api.VerdictOK, func(r api.StepResult) string {
			if r.Stdout != "hi\n" {
				return fmt.Sprintf("stdout %q", r.Stdout)
			}
			return ""
		}},
		{"exit 3", []string{"/bin/sh", "-c", "exit 3"}, api.Limits{}, api.VerdictNonzeroExit, func(r api.StepResult) string {
			if r.ExitCode != 3 {
				return fmt.Sprintf("exit code %d", r.ExitCode)
			}
			return ""
		}},
		{"SIGSEGV", []string{"/bin/sh", "-c", "kill -SEGV $$"}, api.Limits{}, api.VerdictSignaled, func(r api.StepResult) string {
			if r.Signal != "SIGSEGV" {
				return "signal " + r.Signal
			}
			return ""
		}},
		{"cpu", []string{"/bin/sh", "-c", "while :; do :; done"}, api.Limits{CPUTimeMS: 300, WallTimeMS: 10000}, api.VerdictCPUTimeLimit, nil},
		{"wall", []string{"/bin/sleep", "10"}, api.Limits{WallTimeMS: 300}, api.VerdictWallTimeLimit, nil},
		{"memory", []string{"/usr/bin/python3", "-c", "b = bytearray(512 << 20)"}, api.Limits{MemoryBytes: 64 << 20}, api.VerdictMemoryLimit, nil},
		{"output", []string{"/usr/bin/yes"}, api.Limits{OutputBytes: 1000}, api.VerdictOutputLimit, nil},
		{"blocked", []string{"/usr/bin/unshare", "-U", "/bin/true"}, api.Limits{}, api.VerdictSyscallBlocked, func(r api.StepResult) string {
			if !strings.Contains(r.Message, "unshare") {
				return "message " + r.Message
			}
			return ""
		}},
		{"cancel", []string{"/bin/sleep", "10"}, api.Limits{}, api.VerdictCancelled, nil},
	}
	// Twice over, all at once: each helper makes some of each.
	var wg sync.WaitGroup
	for round := range 2 {
		for _, c := range cases {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx := context.Background()
				if c.want == api.VerdictCancelled {
					var cancel func()
					ctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
					defer cancel()
				}
				r, err := e.RunStep(ctx, &StepRequest{Argv: c.argv, Limits: c.lim})
				if err != nil || r.Verdict != c.want {
					t.Errorf("%s (round %d): verdict %s (%s), error %v; want %s", c.name, round, r.Verdict, r.Message, err, c.want)
					return
				}
				if c.check != nil {
					if msg := c.check(r); msg != "" {
						t.Errorf("%s (round %d): %s", c.name, round, msg)
					}
				}
			}()
		}
	}
	wg.Wait()
	pids := nsjail.HelperPIDs()
	if len(pids) != 2 {
		t.Fatalf("helper pids %v after %d steps at once, want two helpers", pids, 2*len(cases))
	}

	// One helper dies while sandboxes of both run: those of the dead one
	// fail with internal_error, those of the other end as they would;
	// the next steps get a new helper in its place.
	const running = 4
	results := make(chan api.StepResult, running)
	for range running {
		go func() {
			r, _ := e.RunStep(context.Background(), &StepRequest{Argv: []string{"/bin/sh", "-c", "sleep 1; echo done"}})
			results <- r
		}()
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ok, failed int
	for range running {
		r := <-results
		switch {
		case r.Verdict == api.VerdictOK && r.Stdout == "done\n":
			ok++
		case r.Verdict == api.VerdictInternalError:
			failed++
		default:
			t.Errorf("a step running when a helper died: %s (%s) stdout %q", r.Verdict, r.Message, r.Stdout)
		}
	}
	if ok == 0 || failed == 0 {
		t.Errorf("%d steps ok and %d failed after one of two helpers died, want some of each (the sandboxes spread over both)", ok, failed)
	}
	for i := range 4 {
		r, err := e.RunStep(context.Background(), &StepRequest{Argv: []string{"/bin/sh", "-c", "exit 7"}})
		if err != nil || r.Verdict != api.VerdictNonzeroExit || r.ExitCode != 7 {
			t.Fatalf("step %d after the helper's death: %s (%s), error %v", i, r.Verdict, r.Message, err)
		}
	}
	after := nsjail.HelperPIDs()
	if len(after) != 2 || slices.Contains(after, pids[0]) || !slices.Contains(after, pids[1]) {
		t.Errorf("helpers %v after %d died (of %v): want the survivor and a new one", after, pids[0], pids)
	}
}
