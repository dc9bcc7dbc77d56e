package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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

	mu       sync.Mutex // guards the fields below
	state    string
	step     int
	result   *api.Result
	finished time.Time
}

func (j *job) info(now time.Time) api.RunInfo {
	j.mu.Lock()
	defer j.mu.Unlock()
	return api.RunInfo{
		ID: j.id, Key: j.key, CallerUID: j.caller, State: j.state,
		AgeMS: ms(now.Sub(j.created)), Step: j.step, Steps: j.steps, Result: j.result,
	}
}

func (j *job) setState(state string, step int) {
	j.mu.Lock()
	j.state, j.step = state, step
	j.mu.Unlock()
}

// registry knows the live jobs by id, and keeps finished results for a
// while.
type registry struct {
	ttl time.Duration

	mu   sync.Mutex // guards jobs
	jobs map[string]*job
}

func newRegistry(ttl time.Duration) *registry {
	return &registry{ttl: ttl, jobs: map[string]*job{}}
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

func (r *registry) finish(j *job, res *api.Result) {
	j.mu.Lock()
	j.state, j.result, j.finished = api.StateFinished, res, time.Now()
	j.mu.Unlock()
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
	for id, j := range r.jobs {
		j.mu.Lock()
		old := j.state == api.StateFinished && now.Sub(j.finished) > r.ttl
		j.mu.Unlock()
		if old {
			delete(r.jobs, id)
		}
	}
}

// expireEvery is how often the daemon looks for expired results: as often as the ttl (a
// result then lives at most twice its ttl), but not more than once a
// second nor less than once a minute.
func expireEvery(ttl time.Duration) time.Duration {
	return min(max(ttl, time.Second), time.Minute)
}

func sortJobs(js []*job) {
	for i := 1; i < len(js); i++ {
		for k := i; k > 0 && js[k].created.Before(js[k-1].created); k-- {
			js[k], js[k-1] = js[k-1], js[k]
		}
	}
}

// drop forgets a job that was never admitted.
func (r *registry) drop(j *job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.jobs[j.id] == j {
		delete(r.jobs, j.id)
	}
}
