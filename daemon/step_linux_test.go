package daemon

import (
	"context"
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
