package daemon

import (
	"context"
	"errors"
	"sync"
)

// errQueueFull is returned when a job cannot even wait for a sandbox.
var errQueueFull = errors.New("the queue is full")

// scheduler hands out the daemon's sandbox slots. Jobs that find none free
// wait in a queue per caller; a freed slot goes to the callers in turn, so
// one caller's many jobs do not hold back another's.
type scheduler struct {
	mu          sync.Mutex // guards everything below
	queueCap    int
	slots       int // concurrency
	free        int // negative after resize took slots that are in use
	running     int
	queued      int
	waiting     map[uint32][]*waiter // per caller, oldest first
	turn        []uint32             // callers with waiters, in turn order
	peak        int                  // the most jobs waiting since the queue was last empty
	drainedPeak int                  // the peak of the last time it emptied, until drained reads it
}

type waiter struct {
	ch      chan struct{} // closed when granted
	granted bool
	notify  func() // called once granted, if set (onGrant)
}

func newScheduler(slots, queueCap int) *scheduler {
	return &scheduler{queueCap: queueCap, slots: slots, free: slots, waiting: map[uint32][]*waiter{}}
}

// resize sets the number of slots and the queue's size (a reload). New
// slots go to the jobs waiting at once; slots taken away while in use are
// gone as their jobs end. Jobs already waiting keep their place, however
// many they are.
func (s *scheduler) resize(slots, queueCap int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.free += slots - s.slots
	s.slots, s.queueCap = slots, queueCap
	for s.free > 0 && len(s.turn) > 0 {
		s.free--
		s.handOff()
	}
}

// ticket is a job's place: granted at once, or waiting in line.
type ticket struct {
	s      *scheduler
	caller uint32
	w      *waiter // nil when granted at once
}

// enqueue takes a slot for caller, or a place in line. With mayExceed
// false a full queue is errQueueFull at once; with true the job waits
// regardless (a batch's jobs, already bounded by the batch's own
// concurrency).
func (s *scheduler) enqueue(caller uint32, mayExceed bool) (*ticket, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 && s.queued == 0 {
		s.free--
		s.running++
		return &ticket{s: s, caller: caller}, nil
	}
	if !mayExceed && s.queued >= s.queueCap {
		return nil, errQueueFull
	}
	w := &waiter{ch: make(chan struct{})}
	if len(s.waiting[caller]) == 0 {
		s.turn = append(s.turn, caller)
	}
	s.waiting[caller] = append(s.waiting[caller], w)
	s.queued++
	s.peak = max(s.peak, s.queued)
	return &ticket{s: s, caller: caller, w: w}, nil
}

// waiting says whether the ticket had to wait in line.
func (t *ticket) waiting() bool { return t.w != nil }

// onGrant has f called once the ticket holds a slot: at once if it does
// already, else from the release that grants it (under the scheduler's
// lock, so f must be quick and take no lock of the daemon's), before
// wait returns.
func (t *ticket) onGrant(f func()) {
	if t.w == nil {
		f()
		return
	}
	s := t.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.w.granted {
		f()
		return
	}
	t.w.notify = f
}

// wait returns once the ticket holds a slot; release gives it back (call
// it once). If ctx ends first, the place in line is given up.
func (t *ticket) wait(ctx context.Context) (func(), error) {
	s := t.s
	if t.w == nil {
		return s.release, nil
	}
	select {
	case <-t.w.ch:
		return s.release, nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if t.w.granted {
			// Granted as we gave up: pass the slot on.
			s.running--
			s.handOff()
			return nil, ctx.Err()
		}
		s.remove(t.caller, t.w)
		return nil, ctx.Err()
	}
}

func (s *scheduler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.handOff()
}

// handOff gives a free slot to the next caller in turn, or keeps it free
// (or, after resize took it away, drops it).
// Preconditions: s.mu is held; one slot is unaccounted for.
func (s *scheduler) handOff() {
	if len(s.turn) == 0 || s.free < 0 {
		s.free++
		return
	}
	caller := s.turn[0]
	q := s.waiting[caller]
	w := q[0]
	s.waiting[caller] = q[1:]
	s.turn = s.turn[1:]
	if len(s.waiting[caller]) > 0 {
		s.turn = append(s.turn, caller) // back of the line
	} else {
		delete(s.waiting, caller)
	}
	s.queued--
	s.noteEmpty()
	s.running++
	w.granted = true
	if w.notify != nil {
		w.notify()
	}
	close(w.ch)
}

// remove drops a waiter that gave up. Preconditions: s.mu is held.
func (s *scheduler) remove(caller uint32, w *waiter) {
	q := s.waiting[caller]
	for i, x := range q {
		if x == w {
			s.waiting[caller] = append(q[:i:i], q[i+1:]...)
			s.queued--
			s.noteEmpty()
			break
		}
	}
	if len(s.waiting[caller]) == 0 {
		delete(s.waiting, caller)
		for i, c := range s.turn {
			if c == caller {
				s.turn = append(s.turn[:i:i], s.turn[i+1:]...)
				break
			}
		}
	}
}

// noteEmpty keeps the peak of a queue that just emptied for drained.
// Preconditions: s.mu is held.
func (s *scheduler) noteEmpty() {
	if s.queued == 0 {
		s.drainedPeak, s.peak = s.peak, 0
	}
}

// drained says, once, that the queue emptied after at least n jobs
// waited in it at once.
func (s *scheduler) drained(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queued > 0 || s.drainedPeak < n {
		return false
	}
	s.drainedPeak = 0
	return true
}

// load reports the slots in use and the jobs waiting.
func (s *scheduler) load() (running, queued int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, s.queued
}
