package daemon

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// resultSize is not below the live heap a kept result holds with its job's
// bookkeeping, as admit and finish make them: result_bytes bounds what it
// says. Measured over many small results, the most common kind (a batch's).
func TestResultSizeCoversKeptHeap(t *testing.T) {
	const n = 20000
	reg := newRegistry(time.Hour, 1<<40)
	base, stopBase := context.WithCancel(context.Background())
	defer stopBase()
	parent, stopParent := context.WithCancel(context.Background())
	defer stopParent()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var said int64
	for range n {
		_, cancel := context.WithCancel(parent)
		stop := context.AfterFunc(base, cancel)
		j := &job{id: newID(), created: time.Now(), steps: 1, cancel: func() { stop(); cancel() }, state: api.StateQueued}
		reg.add(j)
		j.cancel()
		reg.finish(j, &api.Result{ID: j.id, Status: api.StatusCompleted,
			Steps:  []api.StepResult{{Verdict: api.VerdictOK, CPUTimeMS: 1.2, WallTimeMS: 2.3, MemoryPeakBytes: 1 << 20, PIDsPeak: 1}},
			Timing: api.Timing{QueuedMS: 0.1, TotalMS: 2}})
		said += j.size
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	live := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	t.Logf("a kept one-step result: %d bytes of live heap, resultSize %d", live, said/n)
	if said/n < live {
		t.Errorf("resultSize says %d bytes a kept result, but each holds %d of live heap", said/n, live)
	}
	runtime.KeepAlive(reg)
}
