package daemon

import (
	"context"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"
)

func TestByteBudget(t *testing.T) {
	b := newByteBudget(100)
	if !b.tryTake(60) || b.tryTake(50) || !b.tryTake(40) {
		t.Fatal("tryTake does not follow what is free")
	}
	// take waits for bytes given back, and gives up with its context.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := b.take(ctx, 10); err == nil {
		t.Fatal("take of bytes that are not free returned")
	}
	got := make(chan error, 1)
	go func() { got <- b.take(context.Background(), 30) }()
	time.Sleep(20 * time.Millisecond)
	b.give(40)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Second):
		t.Fatal("take did not wake when bytes were given back")
	}
	if b.tryTake(11) || !b.tryTake(10) {
		t.Fatalf("free after the waits: want 10")
	}
}

// TestByteBudgetGivesLateBodiesBack: a large body given back while the
// heap's give-back to the kernel is pending gets a round of its own: its
// caller may still hold it at the pending passes.
func TestByteBudgetGivesLateBodiesBack(t *testing.T) {
	var calls atomic.Int32
	freeOSMemory = func() { calls.Add(1) }
	defer func() { freeOSMemory = debug.FreeOSMemory }()
	b := newByteBudget(4 * bigBody)
	b.take(context.Background(), 2*bigBody)
	b.give(bigBody)
	time.Sleep(50 * time.Millisecond)
	b.give(bigBody) // while the first is pending
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%d give-backs to the kernel in 10 s, want a third for the body given back while one was pending", calls.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
