package engine

import (
	"context"
	"testing"
	"time"
)

// waitWarm waits until n warm sandboxes are ready, or fails after within.
func waitWarm(t *testing.T, e *Engine, n int, within time.Duration, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for e.WarmReady() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d warm sandboxes ready after %v, want %d", what, e.WarmReady(), within, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAheadBuildsWhileAJobRuns: while a job holds the pools, a used warm
// sandbox is not replaced, unless the job has steps left (Ahead): then its
// next step's sandbox is built while the job runs.
func TestAheadBuildsWhileAJobRuns(t *testing.T) {
	e := rootEngine(t, DefaultConfig())
	// On a loaded host /bin/true may run past lendAfter, and a step that
	// does lends the job's hold to a refill: not what is tested here.
	e.lendAfter = time.Minute
	prof := &e.profile
	e.StartPools([]*Profile{prof}, 1)
	waitWarm(t, e, 1, 30*time.Second, "at start")

	hold := e.Hold()
	defer hold()
	step := func() {
		t.Helper()
		r, err := e.RunStep(context.Background(), &StepRequest{Argv: []string{"/bin/true"}, Profile: prof, Held: true})
		if err != nil || r.Verdict != "ok" {
			t.Fatalf("step: %s (%s), %v", r.Verdict, r.Message, err)
		}
	}
	step()
	time.Sleep(300 * time.Millisecond)
	if n := e.WarmReady(); n != 0 {
		t.Fatalf("%d warm sandboxes made while a job of one step held the pools, want 0", n)
	}

	done := e.Ahead(prof)
	waitWarm(t, e, 1, 30*time.Second, "a job with steps left")
	step()
	waitWarm(t, e, 1, 30*time.Second, "after its next step")
	done()
	if waits := e.PoolWaits(); waits != 0 {
		t.Errorf("%d steps waited for a sandbox, want 0", waits)
	}
}
