package engine

import (
	"sync/atomic"
	"testing"
	"time"
)

// turn runs waitTurn in the background and reports its answer.
func turn(g *gate) chan bool { return turnUntil(g, nil) }

// turnUntil is turn for a filler whose pool is retired when stop closes.
func turnUntil(g *gate, stop chan struct{}) chan bool {
	return turnAhead(g, stop, new(atomic.Int64))
}

// turnAhead is turnUntil for a filler whose pool's Ahead count is ahead.
func turnAhead(g *gate, stop chan struct{}, ahead *atomic.Int64) chan bool {
	c := make(chan bool, 1)
	go func() { c <- g.waitTurn(stop, ahead) }()
	return c
}

func wantTurn(t *testing.T, c chan bool, want bool, what string) {
	t.Helper()
	select {
	case got := <-c:
		if got != want {
			t.Fatalf("%s: waitTurn = %v, want %v", what, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: waitTurn still waits", what)
	}
}

func wantWait(t *testing.T, c chan bool, what string) {
	t.Helper()
	select {
	case got := <-c:
		t.Fatalf("%s: waitTurn returned %v, want it to wait", what, got)
	case <-time.After(20 * time.Millisecond):
	}
}

func TestGate(t *testing.T) {
	var g gate
	wantTurn(t, turn(&g), true, "no job")

	e := &Engine{}
	release := e.Hold()
	c := turn(&e.gate)
	wantWait(t, c, "a job runs")
	e.gate.hunger(1)
	wantTurn(t, c, true, "a step waits for a sandbox")
	e.gate.hunger(-1)

	c = turn(&e.gate)
	wantWait(t, c, "a job runs again")
	release()
	release() // a second call is harmless
	wantTurn(t, c, true, "the job ended")
	if e.gate.busy != 0 {
		t.Fatalf("busy = %d after release", e.gate.busy)
	}

	release = e.Hold()
	c = turn(&e.gate)
	takeBack := e.gate.lend(time.Millisecond)
	wantTurn(t, c, true, "the program has run past lendAfter")
	takeBack()
	wantWait(t, turn(&e.gate), "the program ended, its job runs on")
	release()

	// A job with steps left lets its own pool's fillers build.
	release = e.Hold()
	p := &pool{e: e}
	e.pools = map[string]*pool{"p": p}
	prof := &Profile{Name: "p"}
	p.profile = prof
	mine := turnAhead(&e.gate, nil, &p.ahead)
	other := turn(&e.gate)
	wantWait(t, mine, "a job runs, none with steps left")
	done := e.Ahead(prof)
	wantTurn(t, mine, true, "a job with steps left")
	wantWait(t, other, "another pool's filler while a job has steps left")
	done()
	done() // a second call is harmless
	if p.ahead.Load() != 0 {
		t.Fatalf("ahead = %d after release", p.ahead.Load())
	}
	wantWait(t, turnAhead(&e.gate, nil, &p.ahead), "the job with steps left ended")
	e.Ahead(&Profile{Name: "none"})() // no pool: nothing to tell
	release()
	wantTurn(t, other, true, "no job")

	release = e.Hold()
	e.gate.lend(time.Hour)() // a short program: nothing was lent
	if e.gate.busy != 1 {
		t.Fatalf("busy = %d after a short program, want 1", e.gate.busy)
	}
	// A filler of a pool retired by a reload waits no longer.
	stop := make(chan struct{})
	c = turnUntil(&e.gate, stop)
	other = turn(&e.gate)
	wantWait(t, c, "a job runs, the pool is not retired")
	close(stop)
	e.gate.wake()
	wantTurn(t, c, false, "the pool is retired")
	wantWait(t, other, "another pool's filler")

	e.gate.close()
	wantTurn(t, other, false, "the engine closes")
	release()
}

func TestGateWaitIdle(t *testing.T) {
	var g gate
	start := time.Now()
	g.waitIdle(time.Hour)
	if time.Since(start) > time.Second {
		t.Fatal("waitIdle waited with no job holding the gate")
	}

	// A job holds: waitIdle returns when it lets go.
	g.add(1)
	done := make(chan struct{})
	go func() { g.waitIdle(time.Hour); close(done) }()
	select {
	case <-done:
		t.Fatal("waitIdle returned while a job holds the gate")
	case <-time.After(20 * time.Millisecond):
	}
	g.add(-1)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("waitIdle still waits after the job let go")
	}

	// A job that never lets go: waitIdle gives up after max.
	g.add(1)
	start = time.Now()
	g.waitIdle(30 * time.Millisecond)
	if d := time.Since(start); d < 30*time.Millisecond || d > 5*time.Second {
		t.Errorf("waitIdle(30ms) with the gate held took %v", d)
	}
	g.add(-1)
}
