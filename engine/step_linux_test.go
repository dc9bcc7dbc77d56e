package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// A step cancelled while it waits for a warm sandbox is cancelled, not an
// internal error: nothing ran, and the sandbox did not fail.
func TestStepCancelledWaitingForSandbox(t *testing.T) {
	prof := &Profile{Name: "default"}
	e := &Engine{}
	e.pools = map[string]*pool{prof.Name: {e: e, profile: prof, ready: make(chan warmResult), stop: make(chan struct{})}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := e.RunStep(ctx, &StepRequest{Argv: []string{"true"}, Profile: prof})
	if err != nil || res.Verdict != api.VerdictCancelled {
		t.Fatalf("verdict %s, error %v; want cancelled and no error", res.Verdict, err)
	}
}

// TestSpecCacheBounded: a Profile per step does not grow the engine's
// cache of Specs without end, and a profile's Spec is shared until then.
func TestSpecCacheBounded(t *testing.T) {
	e := &Engine{}
	p := &Profile{Name: "p"}
	if a, b := e.spec(p, 1), e.spec(p, 2); a.Key != b.Key || a.HostUID != 1 || b.HostUID != 2 {
		t.Fatalf("one profile's Specs: keys %q, %q; host uids %d, %d", a.Key, b.Key, a.HostUID, b.HostUID)
	}
	for i := range 3 * maxSpecs {
		e.spec(&Profile{Name: fmt.Sprint(i)}, 1)
		if n := len(e.specs); n > maxSpecs {
			t.Fatalf("%d Specs cached after %d profiles, want at most %d", n, i+1, maxSpecs)
		}
	}
}

// A handed-over request's extra files are closed with its stdio.
func TestCloseIOClosesExtraFiles(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	req := &StepRequest{Stdin: r, ExtraFiles: map[int]*os.File{4: w}}
	req.closeIO()
	if _, err := w.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("fd 4's file after closeIO: write error %v, want it closed", err)
	}
	if req.Stdin != nil || req.ExtraFiles != nil {
		t.Errorf("closeIO left %+v", req)
	}
	req.closeIO() // once
}

// The CPU budget is first looked at when it could first run out, not at
// once: a step has used nothing when it starts.
func TestCPUPollAfter(t *testing.T) {
	for _, c := range []struct {
		limit, used time.Duration
		ncpu        int
		want        time.Duration
	}{
		{10 * time.Second, 0, 2, maxCPUPoll},
		{40 * time.Millisecond, 0, 2, 20 * time.Millisecond},
		{40 * time.Millisecond, 30 * time.Millisecond, 2, 5 * time.Millisecond},
		{time.Millisecond, 0, 4, minCPUPoll},
		{time.Millisecond, 2 * time.Millisecond, 1, minCPUPoll},
		{10 * time.Millisecond, 0, 0, 10 * time.Millisecond},
	} {
		if got := cpuPollAfter(c.limit, c.used, c.ncpu); got != c.want {
			t.Errorf("cpuPollAfter(%v, %v, %d) = %v, want %v", c.limit, c.used, c.ncpu, got, c.want)
		}
	}
}
