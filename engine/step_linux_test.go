package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"

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
