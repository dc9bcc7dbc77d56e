package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// job is one job's bookkeeping, from the moment it is accepted until its
// result expires.
type job struct {
	id      string
	key     json.RawMessage
	caller  uint32
	created time.Time
	steps   int
	cancel  context.CancelFunc
	// resume takes a continue of a job paused between steps
	// (pause_between_steps); nil for a job that never pauses.
	resume chan struct{}
	// stdin is the job's stdin pipe (a step's stdin_pipe); nil when no
	// step has one.
	stdin *stdinPipe

	mu       sync.Mutex // guards the fields below
	state    string
	step     int
	result   *api.Result
	finished time.Time
	size     int64 // resultSize(result), once finished
}

func (j *job) info(now time.Time) api.RunInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	return api.RunInfo{
		ID: j.id, Key: j.key, CallerUID: j.caller, State: j.state,
		AgeMS: ms(now.Sub(j.created)), Step: j.step, Steps: j.steps, Result: j.result,
	}
}

// proceed lets a paused job run its next step; false when it is not
// paused.
func (j *job) proceed() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.state != api.StatePaused || j.resume == nil {
		return false
	}
	j.state = api.StateRunning
	select {
	case j.resume <- struct{}{}:
	default:
	}
	return true
}

// maxPause is how long a job paused between steps waits for its
// continue: it holds a slot of the daemon's concurrency and its workspace
// meanwhile.
const maxPause = time.Minute

// await waits, paused, for proceed. It gives why the job may not go on
// ("" when it may): cancelled, or paused for longer than max.
func (j *job) await(ctx context.Context, max time.Duration) string {
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-j.resume:
		return ""
	case <-ctx.Done():
		return "cancelled"
	case <-t.C:
		j.mu.Lock()
		defer j.mu.Unlock()
		if j.state != api.StatePaused {
			return "" // a continue came at the last moment
		}
		j.state = api.StateRunning
		return fmt.Sprintf("no continue within %s", max)
	}
}

// closeStdin closes the job's stdin pipe, if it has one. Idempotent.
func (j *job) closeStdin() {
	if j.stdin != nil {
		j.stdin.release()
	}
}

func (j *job) setState(state string, step int) {
	j.mu.Lock()
	j.state, j.step = state, step
	j.mu.Unlock()
}

// registry knows the live jobs by id, and keeps finished results for a
// while: ttl long, and no more than maxBytes of them in all (the oldest
// go first), so that the memory results hold is bounded however many jobs
// finish.
type registry struct {
	mu       sync.Mutex // guards the fields below
	ttl      time.Duration
	maxBytes int64
	jobs     map[string]*job
	finished []*job // in the order they finished, oldest first
	kept     int64  // the size of their results
}

func newRegistry(ttl time.Duration, maxBytes int64) *registry {
	return &registry{ttl: ttl, maxBytes: maxBytes, jobs: map[string]*job{}}
}

// setLimits sets the ttl and the bytes of the results kept (a reload); a
// smaller maxBytes drops the oldest at once.
func (r *registry) setLimits(ttl time.Duration, maxBytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ttl, r.maxBytes = ttl, maxBytes
	for r.kept > r.maxBytes && len(r.finished) > 1 {
		r.dropOldestLocked()
	}
}

// resultSize is about what a kept result holds in memory, with its job's
// bookkeeping (the job, its contexts, its id, its entry in the registry):
// for a one-step result with no output, 819 bytes of live heap were
// measured (Go 1.26, amd64; TestResultSizeCoversKeptHeap), where this
// said 512 before: result_bytes then held 1.6 times what it says.
func resultSize(res *api.Result) int64 {
	n := int64(576 + len(res.ID) + len(res.Message))
	for _, s := range res.Steps {
		n += int64(256 + len(s.Stdout) + len(s.Stderr) + len(s.Message))
	}
	for name, f := range res.Files {
		n += int64(64 + len(name))
		if f != nil {
			n += int64(len(f.Content))
		}
	}
	return n
}

// newID makes a job id: sortable by time, unguessable.
func newID() string {
	var b [6]byte
	rand.Read(b[:])
	return "r_" + strconv.FormatInt(time.Now().UnixMilli(), 36) + hex.EncodeToString(b[:])
}

// add registers a job. A client-chosen id already used by a live job is a
// conflict; a finished job's id may be reused (its result is dropped).
func (r *registry) add(j *job) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.jobs[j.id]; ok {
		old.mu.Lock()
		live := old.state != api.StateFinished
		old.mu.Unlock()
		if live {
			return false
		}
	}
	r.jobs[j.id] = j
	return true
}

func (r *registry) get(id string) *job {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.jobs[id]
}

// finish records a job's result and keeps it (ttl, maxBytes).
func (r *registry) finish(j *job, res *api.Result) {
	settle(j, res)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished = append(r.finished, j)
	r.kept += j.size
	for r.kept > r.maxBytes && len(r.finished) > 1 {
		r.dropOldestLocked()
	}
}

// settle records a job's result without keeping it: the job stays
// registered, finished, until it is dropped (a batch's job whose result
// is not kept: once its line is out).
func settle(j *job, res *api.Result) {
	j.mu.Lock()
	j.state, j.result, j.finished = api.StateFinished, res, time.Now()
	j.size = resultSize(res)
	j.mu.Unlock()
}

// dropOldestLocked forgets the result that finished first.
//
// Preconditions: r.mu is held; r.finished is not empty.
func (r *registry) dropOldestLocked() {
	old := r.finished[0]
	r.finished[0] = nil
	r.finished = r.finished[1:]
	r.kept -= old.size
	if r.jobs[old.id] == old {
		delete(r.jobs, old.id)
	}
}

// live lists the jobs queued or running, oldest first.
func (r *registry) live() []*job {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*job
	for _, j := range r.jobs {
		j.mu.Lock()
		if j.state != api.StateFinished {
			out = append(out, j)
		}
		j.mu.Unlock()
	}
	sortJobs(out)
	return out
}

// expire drops finished results older than the ttl.
func (r *registry) expire(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.finished) > 0 {
		j := r.finished[0]
		j.mu.Lock()
		old := now.Sub(j.finished) > r.ttl
		j.mu.Unlock()
		if !old {
			return
		}
		r.dropOldestLocked()
	}
}

// expireEvery is how often the daemon looks for expired results: as often as the ttl (a
// result then lives at most twice its ttl), but not more than once a
// second nor less than once a minute.
func expireEvery(ttl time.Duration) time.Duration {
	return min(max(ttl, time.Second), time.Minute)
}

// sortJobs orders jobs oldest first (the order of their ids with the same
// creation time is kept). They come from a map, in no order: an insertion
// sort took quadratic time, 345 ms of the daemon's for 10,000 jobs queued
// against 11 ms now.
func sortJobs(js []*job) {
	slices.SortStableFunc(js, func(a, b *job) int { return a.created.Compare(b.created) })
}

// drop forgets a job that was never admitted, or a finished one whose
// result is not kept (settle).
func (r *registry) drop(j *job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs[j.id] == j {
		delete(r.jobs, j.id)
	}
}
