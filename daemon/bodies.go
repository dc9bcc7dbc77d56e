package daemon

import (
	"context"
	"fmt"
	"runtime/debug"
	"sync"
	"time"
)

// byteBudget bounds the bytes of request bodies the daemon holds at once:
// a body's bytes are taken from it before they are read, and given back
// when its job is over (its files, decoded from the body, live that long).
type byteBudget struct {
	mu       sync.Mutex // guards the fields below
	total    int64      // max_inflight_request_bytes; a reload may change it
	free     int64      // negative after a reload made total smaller
	freed    *sync.Cond // on mu: bytes were given back
	lastFree time.Time  // the heap was last given back to the kernel
	pending  bool       // a give-back to the kernel is due
	again    bool       // a large body was given back while one was pending
}

// freeOSMemory gives the heap's free pages back to the kernel; a test
// counts the calls.
var freeOSMemory = debug.FreeOSMemory

func newByteBudget(total int64) *byteBudget {
	b := &byteBudget{total: total, free: total}
	b.freed = sync.NewCond(&b.mu)
	return b
}

// size is the budget's total.
func (b *byteBudget) size() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total
}

// resize makes the total n (a reload). Bytes taken past a smaller total
// are given back as usual; nothing more is taken until they are.
func (b *byteBudget) resize(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n - b.total
	b.total = n
	b.freed.Broadcast()
}

// tryTake takes n bytes if they are free now.
func (b *byteBudget) tryTake(n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.free {
		return false
	}
	b.free -= n
	return true
}

// take waits until n bytes are free, or ctx ends. n above the total is
// an error.
func (b *byteBudget) take(ctx context.Context, n int64) error {
	stop := context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.freed.Broadcast()
		b.mu.Unlock()
	})
	defer stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for n > b.free {
		if err := ctx.Err(); err != nil {
			return err
		}
		if n > b.total {
			// A reload made the budget smaller than a body admitted
			// under the old one: it would wait for ever.
			return fmt.Errorf("%d bytes are more than all of max_inflight_request_bytes (%d)", n, b.total)
		}
		b.freed.Wait()
	}
	b.free -= n
	return nil
}

// bigBody is the size past which a body given back is also given back to
// the kernel: the heap's idle pages would otherwise stay in the daemon's
// RSS for minutes, and with the job decoded in one pass (onePass) a body
// of 7 MB makes too little garbage to start a collection by itself.
const bigBody = 4 << 20

// give gives n bytes back.
func (b *byteBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.free += n
	b.freed.Broadcast()
	switch {
	case n < bigBody:
	case b.pending:
		// Its caller may hold it still at the pending passes: one more
		// round follows them.
		b.again = true
	default:
		b.freeLater()
	}
}

// freeLater gives the heap back to the kernel once the caller has dropped
// the body and its job, and at most once a second (it collects the whole
// heap); a second pass later takes what a slow caller still held at the
// first, and a body given back meanwhile gets a round of its own.
//
// Preconditions: b.mu is held; b.pending is false.
func (b *byteBudget) freeLater() {
	b.pending = true
	wait := max(100*time.Millisecond, time.Until(b.lastFree.Add(time.Second)))
	time.AfterFunc(wait, func() {
		freeOSMemory()
		time.AfterFunc(2*time.Second, func() {
			freeOSMemory()
			b.mu.Lock()
			defer b.mu.Unlock()
			b.pending, b.lastFree = false, time.Now()
			if b.again {
				b.again = false
				b.freeLater()
			}
		})
	})
}
