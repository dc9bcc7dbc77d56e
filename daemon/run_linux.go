package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
)

// readBody reads a request body up to the configured cap, holding its
// size in the budget of bodies in flight until release is called (once
// the job made of it is over). A body above the cap is 413 (before it is
// read, when its length is announced); one that does not fit the budget
// now is 429; a client that stops sending gets a 408 (idleBody). On
// failure it answers the client itself and ok is false.
func (s *server) readBody(w http.ResponseWriter, r *http.Request) (data []byte, release func(), ok bool) {
	data, release, status, aerr := s.readBodyUnder(w, r)
	if aerr != nil {
		s.fail(w, status, aerr)
		return nil, nil, false
	}
	return data, release, true
}

func (s *server) readBodyUnder(w http.ResponseWriter, r *http.Request) (data []byte, release func(), status int, aerr *api.Error) {
	limit := s.d.conf().cfg.MaxRequestBytes
	tooLarge := &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("body: larger than the cap of %d bytes (max_request_bytes)", limit)}
	if r.ContentLength > limit {
		return nil, nil, http.StatusRequestEntityTooLarge, tooLarge
	}
	var held int64
	release = func() { s.bodies.give(held) }
	take := func(n int64) bool {
		if !s.bodies.tryTake(n) {
			return false
		}
		held += n
		return true
	}
	busy := &api.Error{Code: api.CodeResourceExhausted, Message: fmt.Sprintf("request bodies in flight would pass %d bytes (max_inflight_request_bytes); retry later", s.bodies.size())}
	// A body of known length goes into one buffer of its size (and a byte
	// to see its end); one of unknown length into a buffer that doubles,
	// each growth taken from the budget first.
	size := int64(64 << 10)
	if r.ContentLength >= 0 {
		size = r.ContentLength + 1
	}
	if !take(size) {
		return nil, nil, 0, busy
	}
	buf := make([]byte, 0, size)
	idle := newIdleBody(r.Body, w, nil)
	defer idle.close()
	body := http.MaxBytesReader(w, io.NopCloser(idle), limit)
	for {
		if len(buf) == cap(buf) {
			more := min(int64(cap(buf)), limit+1-int64(cap(buf)))
			if more <= 0 || !take(more) {
				release()
				if more <= 0 {
					return nil, nil, http.StatusRequestEntityTooLarge, tooLarge
				}
				return nil, nil, 0, busy
			}
			buf = slices.Grow(buf, int(more))
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, release, 0, nil
		}
		if err != nil {
			release()
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				return nil, nil, http.StatusRequestEntityTooLarge, tooLarge
			case errors.Is(err, errBodyIdle):
				return nil, nil, http.StatusRequestTimeout, bodyIdleError
			}
			return nil, nil, 0, invalid("body: %v", err)
		}
	}
}

// bodyIdleError is readBody's answer to a client that stopped sending.
var bodyIdleError = &api.Error{Code: api.CodeInvalidArgument, Message: errBodyIdle.Error() + "; send the body without pauses"}

func wantsStream(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/x-ndjson")
}

// run is POST /v1/run: one job, answered with its result or streamed.
func (s *server) run(w http.ResponseWriter, r *http.Request) {
	if s.refuseWhileDraining(w) {
		return
	}
	data, release, ok := s.readBody(w, r)
	if !ok {
		return
	}
	detached := false
	defer func() {
		if !detached {
			release()
		}
	}()
	job, aerr := decodeJob(data)
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	cj, aerr := s.d.check(job)
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	if wantsStream(r) {
		lineBuffered(cj)
	}
	caller := peerOf(r.Context()).uid
	// The job may outlive the handler (detach): its context is the
	// request's without the request's end, and the client going away
	// cancels it until then.
	adm, aerr := s.d.admit(context.WithoutCancel(r.Context()), caller, cj, false)
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	clientGone := context.AfterFunc(r.Context(), adm.cancel)
	defer clientGone()
	// In line now: the next connection's request may be read.
	if c := connOf(r.Context()); c != nil {
		c.intakeDone()
	}
	if !wantsStream(r) && adm.ticket.waiting() && s.detach(w, r, adm, clientGone, release) {
		detached = true
		return
	}
	defer adm.finish()
	if !wantsStream(r) {
		res := adm.run(nil)
		// The job is over and its slot free; a client that does not take
		// its answer does not hold the connection and the result for long.
		rc := http.NewResponseController(w)
		rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		w.Header().Set("Content-Type", "application/json")
		if buf := encodeSmall(res); buf != nil {
			// Whole and with its length, the answer goes out now, before
			// the job's end is logged and its hold on the pools let go
			// (finish): neither is on the client's path.
			w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
			w.WriteHeader(http.StatusOK)
			w.Write(buf.Bytes())
			rc.Flush()
			resultBufs.Put(buf)
			return
		}
		w.WriteHeader(http.StatusOK)
		writeResult(w, res)
		return
	}
	// A client that stops reading cancels its job once its answer stalls;
	// the job's own limits hold meanwhile, as the engine never waits on it.
	sw := newStreamWriter(w, adm.cancel, int(2*adm.cj.conf.cfg.JobOutputBytes)+1<<20, false)
	defer sw.close()
	sw.send(api.Event{Event: api.EventStarted, ID: adm.job.id})
	res := adm.run(sw.send)
	b, _ := json.Marshal(res)
	sw.send(api.Event{Event: api.EventFinished, ID: adm.job.id, Result: b})
}

// admission is a job that was accepted: registered, with a place in line.
type admission struct {
	d      *Daemon
	ctx    context.Context
	cancel context.CancelFunc
	job    *job
	cj     *checkedJob
	ticket *ticket
	batch  bool
	// unkept: the result is not kept for GET /v1/runs/{id} once the job
	// is dropped (a batch's, keep_results); see settle.
	unkept bool

	// release gives up the job's hold on the pools (Engine.Hold), and
	// logged logs the job's end; see finish.
	release, logged func()
	// unpin lets go of the job's cached files (pinCached).
	unpin func()
}

// admit registers a job and gives it a place in line: the errors a client
// must see before anything runs (conflict, queue full) come from here. The
// job's context ends with ctx (the client), a cancel, or the daemon giving
// up at shutdown.
func (d *Daemon) admit(ctx context.Context, caller uint32, cj *checkedJob, batch bool) (*admission, *api.Error) {
	id := cj.job.ID
	if id == "" {
		id = newID()
	}
	jctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.base, cancel)
	j := &job{id: id, key: cj.job.Key, caller: caller, created: time.Now(), steps: len(cj.steps),
		cancel: func() { stop(); cancel() }, state: api.StateQueued}
	if cj.job.PauseBetweenSteps {
		j.resume = make(chan struct{}, 1)
	}
	if cj.stdinPipe {
		var err error
		if j.stdin, err = newStdinPipe(); err != nil {
			cancel()
			return nil, &api.Error{Code: api.CodeResourceExhausted, Message: err.Error() + "; retry later"}
		}
	}
	if !d.reg.add(j) {
		j.closeStdin()
		cancel()
		return nil, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("id: %q is in use by a live job", id)}
	}
	unpin, aerr := d.pinCached(cj)
	if aerr != nil {
		j.closeStdin()
		cancel()
		d.reg.drop(j)
		return nil, aerr
	}
	t, err := d.sched.enqueue(caller, batch)
	if err != nil {
		unpin()
		j.closeStdin()
		cancel()
		d.reg.drop(j)
		return nil, &api.Error{Code: api.CodeResourceExhausted, Message: fmt.Sprintf("the queue is full (%d jobs waiting); retry later", d.conf().cfg.QueueSize)}
	}
	return &admission{d: d, ctx: jctx, cancel: j.cancel, job: j, cj: cj, ticket: t, batch: batch, unpin: unpin}, nil
}

// burstJobs is how many jobs waiting at once make a burst, after which
// the daemon gives its heap back as soon as the queue is empty again.
const burstJobs = 1000

// resultHold bounds how long a job's result keeps its hold on the pools
// after the job ended, while it is written to its client.
const resultHold = 50 * time.Millisecond

// finish is called once the job's result is out: the job lets go of the
// pools, and its end is logged. Safe to call more than once, and when run
// did not run the job.
func (a *admission) finish() {
	a.job.closeStdin()
	if a.unpin != nil {
		a.unpin()
	}
	if a.release != nil {
		a.release()
	}
	if a.logged != nil {
		a.logged()
		a.logged = nil
	}
}

// run waits for the job's turn, runs it, and records the result; finish
// then lets go of the pools and logs it.
func (a *admission) run(emit emitFunc) *api.Result {
	d, j := a.d, a.job
	defer a.cancel()
	defer j.closeStdin() // before the result goes out: a write waiting on it returns
	var res *api.Result
	release, err := a.ticket.wait(a.ctx)
	if err != nil {
		res = &api.Result{ID: j.id, Status: api.StatusCancelled, Message: "cancelled while queued"}
		for range a.cj.steps {
			res.Steps = append(res.Steps, api.StepResult{Verdict: api.VerdictSkipped})
		}
		res.Timing.QueuedMS = ms(time.Since(j.created))
		res.Timing.TotalMS = res.Timing.QueuedMS
	} else {
		queued := time.Since(j.created)
		j.setState(api.StateRunning, 0)
		hold := d.engine.Hold()
		res = d.runJob(a.ctx, j, a.cj, queued, emit)
		// The hold lasts until the result is out (finish): a refill or
		// teardown begun now would take a CPU from the answer. A client
		// slow to read it does not hold the pools for longer than
		// resultHold.
		t := time.AfterFunc(resultHold, hold)
		a.release = func() {
			t.Stop()
			hold()
		}
		release()
		if d.sched.drained(burstJobs) {
			// The heap that held the burst goes back to the kernel now:
			// the runtime would keep most of it until its next cycles.
			go debug.FreeOSMemory()
		}
	}
	// A batch's results too, unless it keeps none: the registry bounds
	// what it keeps (result_bytes), however large the batch.
	a.unpin()
	if a.unkept {
		settle(j, res)
	} else {
		d.reg.finish(j, res)
	}
	d.metrics.jobFinished(res)
	// The log line waits until the result is out (finish).
	a.logged = func() {
		verdicts := make([]string, len(res.Steps))
		for i, s := range res.Steps {
			verdicts[i] = string(s.Verdict)
		}
		entry := d.log.WithFields(logrus.Fields{
			"job": j.id, "caller_uid": j.caller, "status": res.Status, "verdicts": strings.Join(verdicts, ","),
			"queued_ms": res.Timing.QueuedMS, "setup_ms": res.Timing.SetupMS, "total_ms": res.Timing.TotalMS,
		})
		if res.Message != "" {
			entry = entry.WithField("message", res.Message)
		}
		if res.Status == api.StatusError {
			entry.Error("job finished")
		} else {
			entry.Info("job finished")
		}
	}
	return res
}

func (s *server) runs(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	list := api.RunList{Runs: []api.RunInfo{}}
	for _, j := range s.d.reg.live() {
		list.Runs = append(list.Runs, j.info(now))
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *server) getRun(w http.ResponseWriter, r *http.Request) {
	j := s.d.reg.get(r.PathValue("id"))
	if j == nil {
		s.fail(w, 0, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("run %q: no such job (or its result expired)", r.PathValue("id"))})
		return
	}
	writeJSON(w, http.StatusOK, j.info(time.Now()))
}

// ownRun is the job a request's {id} names, when the caller may act on it
// (its owner, or root); else it answers 404 or 403 and gives nil.
func (s *server) ownRun(w http.ResponseWriter, r *http.Request) *job {
	j := s.d.reg.get(r.PathValue("id"))
	if j == nil {
		s.fail(w, 0, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("run %q: no such job", r.PathValue("id"))})
		return nil
	}
	if p := peerOf(r.Context()); p.uid != 0 && p.uid != j.caller {
		s.fail(w, 0, &api.Error{Code: api.CodePermissionDenied, Message: fmt.Sprintf("run %q belongs to uid %d", j.id, j.caller)})
		return nil
	}
	return j
}

// continueRun is POST /v1/runs/{id}/continue: a job paused between steps
// (pause_between_steps) runs its next step.
func (s *server) continueRun(w http.ResponseWriter, r *http.Request) {
	j := s.ownRun(w, r)
	if j == nil {
		return
	}
	if !j.proceed() {
		info := j.info(time.Now())
		why := "it was not submitted with pause_between_steps"
		if j.resume != nil {
			why = "it is " + info.State
		}
		s.fail(w, 0, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("run %q is not paused: %s", j.id, why)})
		return
	}
	writeJSON(w, http.StatusOK, j.info(time.Now()))
}

// cancelRun is DELETE /v1/runs/{id}: every process of the job is killed.
// Its owner or root may cancel it.
func (s *server) cancelRun(w http.ResponseWriter, r *http.Request) {
	j := s.ownRun(w, r)
	if j == nil {
		return
	}
	// A finished job has nothing left to cancel: a client must not take
	// its result for a cancel's.
	if info := j.info(time.Now()); info.State == api.StateFinished {
		status := ""
		if info.Result != nil {
			status = info.Result.Status
		}
		s.fail(w, 0, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("run %q: already finished with status %s; nothing to cancel", j.id, status)})
		return
	}
	j.cancel()
	writeJSON(w, http.StatusOK, j.info(time.Now()))
}
