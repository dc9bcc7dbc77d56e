package cgroup

import (
	"errors"
	"os"
	"testing"
)

// A second manager on the same subtree cannot lock it in any mode, is
// told who holds it, and its Close leaves the holder's directories; the
// holder's Close removes them and lets go.
func TestLockHeldSubtree(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeV1, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			first := openFake(t, k, cfg)
			if err := first.Lock(); err != nil {
				t.Fatal(err)
			}
			second := openFake(t, k, cfg)
			var le *LockedError
			if err := second.Lock(); !errors.As(err, &le) || le.PID != os.Getpid() {
				t.Fatalf("second Lock: %v, want a LockedError naming pid %d", err, os.Getpid())
			}
			second.Close()
			for key, dir := range first.Paths() {
				if _, err := os.Stat(dir); err != nil {
					t.Errorf("%s: the holder's subtree went with the other's Close: %v", key, err)
				}
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			for key, dir := range first.Paths() {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("%s: subtree left after the holder's Close: %v", key, err)
				}
			}
			third := openFake(t, k, cfg)
			if err := third.Lock(); err != nil {
				t.Errorf("Lock after the holder's Close: %v", err)
			}
			third.Close()
		})
	}
}
