package daemon

import (
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

func TestRegistryExpire(t *testing.T) {
	r := newRegistry(5 * time.Second)
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
