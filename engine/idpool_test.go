package engine

import (
	"path/filepath"
	"testing"
)

// Two daemons whose uid ranges overlap, each with its own pool on the
// host-wide lock file, never hand out the same uid, and a released uid is
// free for the other.
func TestIDPoolsShareUIDs(t *testing.T) {
	lock := filepath.Join(t.TempDir(), "uids.lock")
	a, err := newIDPool(lock, 1000, 4)
	if err != nil {
		t.Fatal(err)
	}
	b, err := newIDPool(lock, 1002, 4)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]string{}
	take := func(p *idPool, name string) uint32 {
		t.Helper()
		id, err := p.acquire()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if other, ok := seen[id]; ok {
			t.Fatalf("uid %d handed to %s and %s", id, other, name)
		}
		seen[id] = name
		return id
	}
	for i := 0; i < 4; i++ {
		take(a, "a")
	}
	// a holds 1000-1003; b may have only 1004 and 1005.
	take(b, "b")
	take(b, "b")
	if id, err := b.acquire(); err != errNoID {
		t.Fatalf("b got %d, %v with its free uids taken by a: want errNoID", id, err)
	}
	a.release(1003)
	delete(seen, 1003)
	if id := take(b, "b"); id != 1003 {
		t.Fatalf("b got %d after a released 1003", id)
	}
}
