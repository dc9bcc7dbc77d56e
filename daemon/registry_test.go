package daemon

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

func TestRegistryExpire(t *testing.T) {
	r := newRegistry(5*time.Second, 1<<30)
	j := &job{id: "a", state: api.StateQueued}
	r.add(j)
	r.finish(j, &api.Result{ID: "a"})
	r.expire(j.finished.Add(4 * time.Second))
	if r.get("a") == nil {
		t.Fatal("a result younger than the ttl was dropped")
	}
	r.expire(j.finished.Add(6 * time.Second))
	if r.get("a") != nil {
		t.Fatal("a result older than the ttl was kept")
	}
}

// A short result_ttl is honoured: the loop looks about as often as the ttl.
func TestExpireEvery(t *testing.T) {
	for _, tc := range []struct{ ttl, want time.Duration }{
		{0, time.Second},
		{100 * time.Millisecond, time.Second},
		{5 * time.Second, 5 * time.Second},
		{10 * time.Minute, time.Minute},
	} {
		if got := expireEvery(tc.ttl); got != tc.want {
			t.Errorf("expireEvery(%v) = %v, want %v", tc.ttl, got, tc.want)
		}
	}
}

// Finished results hold at most maxBytes in all: past it the oldest go,
// however young; the newest is kept even alone above it.
func TestRegistryBoundsTheResultsKept(t *testing.T) {
	r := newRegistry(time.Hour, 3<<20)
	big := func(id string) *api.Result {
		return &api.Result{ID: id, Steps: []api.StepResult{{Stdout: strings.Repeat("x", 1<<20)}}}
	}
	for i := 0; i < 10; i++ {
		id := strconv.Itoa(i)
		j := &job{id: id, state: api.StateQueued}
		r.add(j)
		r.finish(j, big(id))
	}
	for i := 0; i < 10; i++ {
		kept := r.get(strconv.Itoa(i)) != nil
		if want := i >= 8; kept != want {
			t.Errorf("result %d kept %v, want %v", i, kept, want)
		}
	}
	if r.kept > 3<<20 {
		t.Errorf("%d bytes of results kept", r.kept)
	}
	j := &job{id: "huge", state: api.StateQueued}
	r.add(j)
	r.finish(j, &api.Result{ID: "huge", Steps: []api.StepResult{{Stdout: strings.Repeat("x", 5<<20)}}})
	if r.get("huge") == nil || len(r.finished) != 1 {
		t.Errorf("the newest result alone: kept %v, %d results", r.get("huge") != nil, len(r.finished))
	}
}

// A paused job waits for proceed, a cancel, or its time to run out; a
// proceed for a job that is not paused is refused.
func TestJobAwait(t *testing.T) {
	j := &job{id: "p", state: api.StateRunning, resume: make(chan struct{}, 1)}
	if j.proceed() {
		t.Error("proceed of a running job")
	}
	j.setState(api.StatePaused, 0)
	if !j.proceed() || j.info(time.Now()).State != api.StateRunning {
		t.Error("proceed of a paused job")
	}
	if why := j.await(context.Background(), time.Minute); why != "" {
		t.Errorf("await after proceed: %q", why)
	}
	j.setState(api.StatePaused, 1)
	if why := j.await(context.Background(), 20*time.Millisecond); why != "no continue within 20ms" || j.info(time.Now()).State != api.StateRunning {
		t.Errorf("await timed out: %q, state %s", why, j.info(time.Now()).State)
	}
	j.setState(api.StatePaused, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if why := j.await(ctx, time.Minute); why != "cancelled" {
		t.Errorf("await cancelled: %q", why)
	}
	plain := &job{id: "q", state: api.StatePaused}
	if plain.proceed() {
		t.Error("proceed of a job that does not pause")
	}
}
