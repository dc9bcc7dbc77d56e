package daemon

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestSchedulerFairBetweenCallers(t *testing.T) {
	s := newScheduler(1, 100)
	release, err := s.acquire(context.Background(), 1, false)
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan uint32, 10)
	var wg sync.WaitGroup
	start := func(caller uint32) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rel, err := s.acquire(context.Background(), caller, false)
			if err != nil {
				t.Error(err)
				return
			}
			order <- caller
			time.Sleep(time.Millisecond)
			rel()
		}()
		// Let it queue before the next one.
		for {
			if _, q := s.load(); q > 0 && waitingFor(s, caller) {
				return
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
	// Caller 1 queues three jobs, then caller 2 one: caller 2 must not wait
	// for all three.
	start(1)
	start(1)
	start(1)
	start(2)
	release()
	var got []uint32
	for i := 0; i < 4; i++ {
		got = append(got, <-order)
	}
	if got[0] != 1 || got[1] != 2 {
		t.Fatalf("order %v, want caller 2 second", got)
	}
	wg.Wait()
	if r, q := s.load(); r != 0 || q != 0 {
		t.Fatalf("after all: running %d queued %d", r, q)
	}
}

func waitingFor(s *scheduler, caller uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting[caller]) > 0
}

func TestSchedulerQueueFullAndCancel(t *testing.T) {
	s := newScheduler(1, 1)
	rel, _ := s.acquire(context.Background(), 0, false)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := s.acquire(ctx, 0, false); errc <- err }()
	for _, q := s.load(); q == 0; _, q = s.load() {
		time.Sleep(100 * time.Microsecond)
	}
	if _, err := s.acquire(context.Background(), 0, false); err != errQueueFull {
		t.Fatalf("third job: %v, want errQueueFull", err)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("a cancelled waiter got a slot")
	}
	rel()
	if r, q := s.load(); r != 0 || q != 0 {
		t.Fatalf("running %d queued %d, want 0 0", r, q)
	}
	// The slot is free again.
	rel2, err := s.acquire(context.Background(), 0, false)
	if err != nil {
		t.Fatal(err)
	}
	rel2()
}

// TestSchedulerResize changes concurrency as a reload does: new slots go
// to the waiting jobs at once; slots taken away while in use are gone as
// their jobs end, and no waiting job gets one meanwhile.
func TestSchedulerResize(t *testing.T) {
	s := newScheduler(2, 10)
	var releases []func()
	for range 2 {
		t0, err := s.enqueue(1, false)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := t0.wait(context.Background())
		releases = append(releases, rel)
	}
	waiting, err := s.enqueue(2, false)
	if err != nil || waiting.w == nil {
		t.Fatalf("a third job did not wait: %v", err)
	}
	s.resize(3, 10)
	if !waiting.w.granted {
		t.Fatal("a new slot was not handed to the waiting job")
	}
	releases = append(releases, s.release)

	// Down to one: the three running keep their slots; the next job waits
	// until two have ended and one more gives its slot back.
	s.resize(1, 10)
	next, _ := s.enqueue(3, false)
	for i, rel := range releases {
		rel()
		if i < 2 && next.w.granted {
			t.Fatalf("granted after %d of 3 ended, with one slot", i+1)
		}
	}
	if !next.w.granted {
		t.Fatal("not granted once the running jobs ended")
	}
	s.release()
	if s.free != 1 || s.running != 0 || s.queued != 0 {
		t.Errorf("free %d running %d queued %d", s.free, s.running, s.queued)
	}
	// A smaller queue holds no more.
	s.resize(1, 0)
	a, _ := s.enqueue(1, false)
	if _, err := s.enqueue(1, false); err != errQueueFull {
		t.Errorf("queue_size 0: %v", err)
	}
	a.wait(context.Background())
	s.release()
}

// acquire is enqueue and wait in one, as the tests use them.
func (s *scheduler) acquire(ctx context.Context, caller uint32, mayExceed bool) (func(), error) {
	t, err := s.enqueue(caller, mayExceed)
	if err != nil {
		return nil, err
	}
	return t.wait(ctx)
}

// TestSchedulerDrained: drained says once that the queue emptied after n
// jobs waited at once, by grants or by cancels, and not for a smaller
// queue.
func TestSchedulerDrained(t *testing.T) {
	s := newScheduler(1, 100)
	first, _ := s.enqueue(0, false)
	var waiting []*ticket
	for range 3 {
		tk, _ := s.enqueue(1, false)
		waiting = append(waiting, tk)
	}
	if s.drained(3) {
		t.Fatal("drained while 3 wait")
	}
	granted := 0
	for _, tk := range waiting {
		tk.onGrant(func() { granted++ })
	}
	release, _ := first.wait(context.Background())
	release()
	for range 2 {
		s.release()
	}
	if granted != 3 {
		t.Fatalf("onGrant called %d times, want 3", granted)
	}
	if !s.drained(3) || s.drained(3) {
		t.Fatal("drained after a queue of 3 emptied: want true once")
	}
	s.release()
	// A queue of 2, emptied by a cancel: not a burst of 3.
	a, _ := s.enqueue(0, false)
	b, _ := s.enqueue(0, false)
	c, _ := s.enqueue(0, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.wait(ctx); err == nil {
		t.Fatal("a cancelled ticket got a slot")
	}
	rel, _ := a.wait(context.Background())
	rel()
	if s.drained(3) {
		t.Fatal("drained after a queue of 2")
	}
	if rel, err := b.wait(context.Background()); err == nil {
		rel()
	}
}
