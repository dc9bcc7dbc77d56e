package daemon

import (
	"context"
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
