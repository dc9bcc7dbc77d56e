package daemon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

// peer is who is on the other end of a connection, by SO_PEERCRED.
type peer struct {
	pid      int32
	uid, gid uint32
}

type peerKey struct{}

func peerOf(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// server is the HTTP side of the daemon.
type server struct {
	d         *Daemon
	socketGID uint32
	draining  atomic.Bool
	bodies    *byteBudget  // request bodies in flight
	inflight  atomic.Int64 // requests being answered
	metrics   http.Handler // the Prometheus page
}

// Serve answers the API on the configured Unix socket until ctx ends, then
// drains: it refuses new jobs and answers /_ping with 503, lets running
// jobs finish within the grace, cancels the rest, stops accepting, removes
// the socket and returns.
func (d *Daemon) Serve(ctx context.Context) error {
	defer d.closeWorkspaces() // also when Serve fails before it drains
	gid, err := socketGroup(d.cfg.SocketGroup)
	if err != nil {
		return err
	}
	ln, gid, err := d.listen(gid) // systemd's socket, else our own (systemd_linux.go)
	if err != nil {
		return err
	}
	s := &server{d: d, socketGID: gid, bodies: newByteBudget(d.cfg.MaxInflightRequestBytes),
		metrics: promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{})}
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleConnTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(context.WithValue(ctx, connKey{}, c), peerKey{}, credentials(c))
		},
		ErrorLog: nil,
	}
	go d.expireLoop(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(timedListener{Listener: ln, rejected: d.metrics.reject}) }()
	d.log.WithFields(logrus.Fields{
		"socket": d.cfg.Socket, "concurrency": d.cfg.Concurrency, "queue": d.cfg.QueueSize,
		"cgroups": d.engine.Cgroups().Mode(), "version": d.version, "go_procs": runtime.GOMAXPROCS(0), "sched": schedPolicy(),
	}).Info("sandboxd serving")
	defer d.notifySystemd(ctx, ln.Addr().String())() // READY, STATUS, watchdog, STOPPING (systemd_linux.go)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	running, queued := d.sched.load()
	d.log.WithFields(logrus.Fields{"running": running, "queued": queued, "grace": d.cfg.ShutdownGrace.String()}).Info("draining")
	// The socket answers while the jobs finish (srv.Shutdown would close
	// it at once): a load balancer's /_ping sees 503, not a refusal.
	if !s.waitIdle(d.cfg.ShutdownGrace.Duration) {
		// The grace is over: cancel what still runs, and wait for its
		// teardown.
		d.cancelBase()
		s.waitIdle(30 * time.Second)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(closeCtx)
	d.cancelBase()
	d.cleanup.Wait()
	d.closeWorkspaces()
	d.engine.Close()
	// Our cgroup subtree goes too, unless another sandboxd process still
	// has runs in it.
	if err := d.engine.Cgroups().Close(); err != nil {
		d.log.WithError(err).Debug("cgroup subtree left in place")
	}
	// Only now may another daemon take the state dir (the subtree's lock
	// went with Close).
	d.stateLock.Close()
	d.log.Info("sandboxd stopped")
	return nil
}

// waitIdle waits until no request is being answered, for d at most, and
// says whether that came.
func (s *server) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// socketGroup resolves the configured group; empty is root's group.
func socketGroup(name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("socket_group: %w", err)
	}
	n, _ := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), nil
}

// listenUnix listens on path, mode 0660 and the given group. A socket file
// left by a dead daemon is replaced; one somebody answers on is not.
func listenUnix(path string, gid uint32) (net.Listener, error) {
	if err := stateDirReady(dirOf(path)); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket: another process answers on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket: removing the stale %s: %w", path, err)
		}
	}
	// Created 0660 from the start: no moment where anyone else may connect.
	old := unix.Umask(0o117)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chown(path, 0, int(gid)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket: %w", err)
	}
	return ln, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}

// credentials reads the peer of a Unix connection.
func credentials(c net.Conn) peer {
	if tc, ok := c.(*timedConn); ok {
		c = tc.Conn
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{uid: ^uint32(0), gid: ^uint32(0)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{uid: ^uint32(0), gid: ^uint32(0)}
	}
	p := peer{uid: ^uint32(0), gid: ^uint32(0)}
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			p = peer{pid: cred.Pid, uid: cred.Uid, gid: cred.Gid}
		}
	})
	return p
}

// allowed decides whether a peer may use the API.
func (s *server) allowed(p peer) bool {
	cfg := &s.d.cfg
	if len(cfg.AllowedUIDs) == 0 && len(cfg.AllowedGIDs) == 0 {
		return p.uid == 0 || p.gid == s.socketGID || slices.Contains(supplementaryGroups(p.pid), s.socketGID)
	}
	if slices.Contains(cfg.AllowedUIDs, p.uid) || slices.Contains(cfg.AllowedGIDs, p.gid) {
		return true
	}
	for _, g := range supplementaryGroups(p.pid) {
		if slices.Contains(cfg.AllowedGIDs, g) {
			return true
		}
	}
	return false
}

// supplementaryGroups reads a process's groups from /proc.
func supplementaryGroups(pid int32) []uint32 {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var gs []uint32
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.ParseUint(f, 10, 32); err == nil {
					gs = append(gs, uint32(n))
				}
			}
			return gs
		}
	}
	return nil
}

// routeTable is the API: each route's method and path pattern, and its
// handler. The OpenAPI document (docs/openapi.yaml) lists the same routes.
var routeTable = []struct {
	pattern string
	h       func(*server, http.ResponseWriter, *http.Request)
}{
	{"GET /_ping", (*server).ping},
	{"GET /v1/info", (*server).info},
	{"POST /v1/run", (*server).run},
	{"POST /v1/batch", (*server).batch},
	{"GET /v1/runs", (*server).runs},
	{"GET /v1/runs/{id}", (*server).getRun},
	{"DELETE /v1/runs/{id}", (*server).cancelRun},
	{"GET /metrics", (*server).metricsPage},
}

// routes serves routeTable, behind the caller check and the answers for an
// unknown path or method.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range routeTable {
		h := r.h
		mux.HandleFunc(r.pattern, func(w http.ResponseWriter, req *http.Request) { h(s, w, req) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		if c := connOf(r.Context()); c != nil {
			c.enter()
			defer c.leave()
		}
		p := peerOf(r.Context())
		if !s.allowed(p) {
			s.fail(w, http.StatusForbidden, &api.Error{Code: api.CodePermissionDenied,
				Message: fmt.Sprintf("uid %d (gid %d) may not use sandboxd: allowed are the configured uids and gids, or root and the socket's group", p.uid, p.gid)})
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			if allow := allowedMethods(mux, r); allow != "" {
				w.Header().Set("Allow", allow)
				s.fail(w, http.StatusMethodNotAllowed, &api.Error{Code: api.CodeInvalidArgument,
					Message: fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow)})
				return
			}
			s.fail(w, http.StatusNotFound, &api.Error{Code: api.CodeNotFound, Message: r.Method + " " + r.URL.Path + ": no such endpoint"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods mux has a route for at r's path, for an
// Allow header; "" if none.
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

var httpStatus = map[string]int{
	api.CodeInvalidArgument:   http.StatusBadRequest,
	api.CodePermissionDenied:  http.StatusForbidden,
	api.CodeNotFound:          http.StatusNotFound,
	api.CodeConflict:          http.StatusConflict,
	api.CodeResourceExhausted: http.StatusTooManyRequests,
	api.CodeUnavailable:       http.StatusServiceUnavailable,
	api.CodeInternal:          http.StatusInternalServerError,
}

// fail writes an error answer. The status follows the code where status
// is 0.
func (s *server) fail(w http.ResponseWriter, status int, e *api.Error) {
	if status == 0 {
		status = httpStatus[e.Code]
	}
	s.d.metrics.reject(e.Code)
	if e.Code == api.CodeResourceExhausted {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, api.ErrorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func (s *server) metricsPage(w http.ResponseWriter, r *http.Request) { s.metrics.ServeHTTP(w, r) }

func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.fail(w, 0, &api.Error{Code: api.CodeUnavailable, Message: "shutting down"})
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "OK")
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.d.Info())
}

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
	limit := s.d.cfg.MaxRequestBytes
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
	busy := &api.Error{Code: api.CodeResourceExhausted, Message: fmt.Sprintf("request bodies in flight would pass %d bytes (max_inflight_request_bytes); retry later", s.bodies.total)}
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
	if s.draining.Load() {
		s.fail(w, 0, &api.Error{Code: api.CodeUnavailable, Message: "shutting down"})
		return
	}
	data, release, ok := s.readBody(w, r)
	if !ok {
		return
	}
	defer release()
	job, aerr := decodeJob(data)
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	pj, aerr := s.d.prepare(job)
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	if wantsStream(r) {
		lineBuffered(pj)
	}
	caller := peerOf(r.Context()).uid
	adm, aerr := s.d.admit(r.Context(), caller, pj, false)
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	defer adm.finish()
	if !wantsStream(r) {
		res := adm.run(nil)
		// The job is over and its slot free; a client that does not take
		// its answer does not hold the connection and the result for long.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		writeResult(w, res)
		return
	}
	// A client that stops reading cancels its job once its answer stalls;
	// the job's own limits hold meanwhile, as the engine never waits on it.
	sw := newStreamWriter(w, adm.cancel, int(2*s.d.cfg.JobOutputBytes)+1<<20, false)
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
	pj     *preparedJob
	ticket *ticket
	batch  bool

	// release gives up the job's hold on the pools (Engine.Hold), and
	// logged logs the job's end; see finish.
	release, logged func()
}

// admit registers a job and gives it a place in line: the errors a client
// must see before anything runs (conflict, queue full) come from here. The
// job's context ends with ctx (the client), a cancel, or the daemon giving
// up at shutdown.
func (d *Daemon) admit(ctx context.Context, caller uint32, pj *preparedJob, batch bool) (*admission, *api.Error) {
	id := pj.job.ID
	if id == "" {
		id = newID()
	}
	jctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(d.base, cancel)
	j := &job{id: id, key: pj.job.Key, caller: caller, created: time.Now(), steps: len(pj.steps),
		cancel: func() { stop(); cancel() }, state: api.StateQueued}
	if !d.reg.add(j) {
		cancel()
		return nil, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("id: %q is in use by a live job", id)}
	}
	t, err := d.sched.enqueue(caller, batch)
	if err != nil {
		cancel()
		d.reg.drop(j)
		return nil, &api.Error{Code: api.CodeResourceExhausted, Message: fmt.Sprintf("the queue is full (%d jobs waiting); retry later", d.cfg.QueueSize)}
	}
	return &admission{d: d, ctx: jctx, cancel: j.cancel, job: j, pj: pj, ticket: t, batch: batch}, nil
}

// resultHold bounds how long a job's result keeps its hold on the pools
// after the job ended, while it is written to its client.
const resultHold = 50 * time.Millisecond

// finish is called once the job's result is out: the job lets go of the
// pools, and its end is logged. Safe to call more than once, and when run
// did not run the job.
func (a *admission) finish() {
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
	var res *api.Result
	release, err := a.ticket.wait(a.ctx)
	if err != nil {
		res = &api.Result{ID: j.id, Status: api.StatusCancelled, Message: "cancelled while queued"}
		for range a.pj.steps {
			res.Steps = append(res.Steps, api.StepResult{Verdict: api.VerdictSkipped})
		}
		res.Timing.QueuedMS = ms(time.Since(j.created))
		res.Timing.TotalMS = res.Timing.QueuedMS
	} else {
		queued := time.Since(j.created)
		j.setState(api.StateRunning, 0)
		hold := d.engine.Hold()
		res = d.runJob(a.ctx, j, a.pj, queued, emit)
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
	}
	// A batch's results too: the registry bounds what it keeps
	// (result_bytes), however large the batch.
	d.reg.finish(j, res)
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

// cancelRun is DELETE /v1/runs/{id}: every process of the job is killed.
// Its owner or root may cancel it.
func (s *server) cancelRun(w http.ResponseWriter, r *http.Request) {
	j := s.d.reg.get(r.PathValue("id"))
	if j == nil {
		s.fail(w, 0, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("run %q: no such job", r.PathValue("id"))})
		return
	}
	if p := peerOf(r.Context()); p.uid != 0 && p.uid != j.caller {
		s.fail(w, 0, &api.Error{Code: api.CodePermissionDenied, Message: fmt.Sprintf("run %q belongs to uid %d", j.id, j.caller)})
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

// batch is POST /v1/batch: NDJSON jobs in (or {"jobs": [...]}), NDJSON
// results out in completion order, the summary last. Jobs are read as
// earlier ones finish, at most concurrency at a time.
func (s *server) batch(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.fail(w, 0, &api.Error{Code: api.CodeUnavailable, Message: "shutting down"})
		return
	}
	conc := s.d.cfg.Concurrency
	if q := r.URL.Query().Get("concurrency"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			s.fail(w, 0, invalid("concurrency: %q is not a positive integer", q))
			return
		}
		conc = min(n, s.d.cfg.Concurrency)
	}
	rc := http.NewResponseController(w)
	rc.EnableFullDuplex()
	// The answer's header goes out before the body is read, which stops
	// net/http from sending the 100 Continue a client may wait for (curl
	// -T waits a second): it is sent now.
	if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusContinue)
	}
	// The batch stops when its client goes: a body cut short, or an answer
	// that cannot be written, cancels every job of it.
	ctx, cancelBatch := context.WithCancel(r.Context())
	defer cancelBatch()
	caller := peerOf(ctx).uid
	sw := newStreamWriter(w, cancelBatch, batchBacklog, true)
	defer sw.close()
	start := time.Now()
	sum := &api.BatchSummary{Statuses: map[string]int{}, Verdicts: map[string]int{}}
	var sumMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)

	// The body is read ahead by a goroutine of its own, so that a client
	// that goes away is noticed at once (its body read fails), not only when
	// a slot frees; once the body has been read to its end, the server
	// itself watches the connection and ends ctx.
	// Each line's bytes are held in the budget of bodies in flight until
	// its job is over: a line that does not fit waits.
	type item struct {
		raw   []byte
		where string // "line 3" or "jobs[2]", for its errors
		err   *api.Error
	}
	items := make(chan item, 1024)
	// A client that stops sending while none of its jobs is left to wait
	// for gets an error line; the jobs it sent run to their end.
	body := newIdleBody(r.Body, w, func() bool { return len(sem) > 0 || len(items) > 0 })
	defer body.close()
	go func() {
		defer close(items)
		aerr, ioErr := readBatch(body, s.d.cfg.MaxRequestBytes, func(raw []byte, where string, rerr *api.Error) bool {
			if s.bodies.take(ctx, int64(len(raw))) != nil {
				return false
			}
			select {
			case items <- item{raw, where, rerr}:
				return true
			case <-ctx.Done():
				s.bodies.give(int64(len(raw)))
				return false
			}
		})
		if errors.Is(ioErr, errBodyIdle) {
			// The timed-out read also ended the request's context (net/http
			// cancels it on a read error); the answer can still be written,
			// and the loop below writes error lines whatever the context.
			items <- item{nil, "", &api.Error{Code: api.CodeInvalidArgument, Message: ioErr.Error() + "; the batch ends here"}}
			return
		} else if ioErr != nil {
			cancelBatch()
			return
		}
		if aerr != nil {
			select {
			case items <- item{nil, "", aerr}:
			case <-ctx.Done():
			}
		}
	}()

	index := 0
	for it := range items {
		i := index
		index++
		held := int64(len(it.raw))
		line := api.BatchLine{Index: &i}
		var pj *preparedJob
		aerr := it.err
		if aerr == nil {
			var job *api.Job
			if job, aerr = decodeJob(it.raw); aerr == nil {
				line.Key = job.Key
				pj, aerr = s.d.prepare(job)
			}
		}
		if aerr == nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.bodies.give(held)
				continue // drain: the reader stops on ctx too
			}
			var adm *admission
			if adm, aerr = s.d.admit(ctx, caller, pj, true); aerr != nil {
				<-sem
			} else {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					defer s.bodies.give(held)
					defer adm.finish()
					res := adm.run(nil)
					line.Result = res
					sumMu.Lock()
					sum.Total++
					sum.Statuses[res.Status]++
					sum.Verdicts[string(jobVerdict(res))]++
					sumMu.Unlock()
					sw.write(line)
				}()
				continue
			}
		}
		s.bodies.give(held)
		line.Error = aerr
		if it.where != "" {
			line.Error = atBatchItem(it.where, aerr)
		}
		sumMu.Lock()
		sum.Total++
		sum.Invalid++
		sumMu.Unlock()
		sw.write(line)
	}
	wg.Wait()
	sum.WallMS = ms(time.Since(start))
	sw.write(api.BatchLine{Summary: sum})
}

// readBatch feeds each job of a batch body to each, in order, until each
// says stop, with where it is in the body ("line 3", counted from 1, or
// "jobs[2]"). NDJSON: one job a line, each at most maxLine bytes. A body
// that is one JSON object {"jobs": [...]} (on any number of lines) is
// taken too. The first error describes a body that cannot be understood;
// the second, one that cannot be read (the client went away).
func readBatch(body io.Reader, maxLine int64, each func(raw []byte, where string, err *api.Error) bool) (*api.Error, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	first := true
	for n := 1; ; n++ {
		where := "line " + strconv.Itoa(n)
		line, err := readLine(br, maxLine)
		if err != nil {
			if err == io.EOF {
				return nil, nil
			}
			if errors.Is(err, errLineTooLong) {
				if !each(nil, where, invalid("body: longer than the cap of %d bytes", maxLine)) {
					return nil, nil
				}
				continue
			}
			return nil, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if first {
			first = false
			if jobs, ok, aerr := wrapperJobs(line, br, maxLine); ok {
				if aerr != nil {
					return aerr, nil
				}
				for i, j := range jobs {
					if !each(j, fmt.Sprintf("jobs[%d]", i), nil) {
						return nil, nil
					}
				}
				return nil, nil
			}
		}
		if !each(line, where, nil) {
			return nil, nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes; a longer line is skipped
// whole and reported.
func readLine(br *bufio.Reader, max int64) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(buf)+len(chunk)) > max {
			// Skip the rest of this line.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch err {
		case nil:
			return buf, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(buf) > 0 {
				return buf, nil
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

// wrapperJobs recognises {"jobs": [...]}: the first line starts it; the
// rest of the body (up to max bytes) completes it.
func wrapperJobs(first []byte, br *bufio.Reader, max int64) ([]json.RawMessage, bool, *api.Error) {
	dec := json.NewDecoder(bytes.NewReader(first))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false, nil
	}
	if key, err := dec.Token(); err != nil || key != "jobs" {
		return nil, false, nil
	}
	rest, err := io.ReadAll(io.LimitReader(br, max+1))
	if err != nil {
		return nil, true, invalid("body: %v", err)
	}
	doc := append(append(first, '\n'), rest...)
	if int64(len(doc)) > max {
		return nil, true, invalid("body: larger than the cap of %d bytes", max)
	}
	var wrapper struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	// Each job is checked on its own when it is decoded.
	if aerr := checkStrict(doc, reflect.TypeOf(wrapper), "the jobs", true); aerr != nil {
		return nil, true, aerr
	}
	if err := json.Unmarshal(doc, &wrapper); err != nil {
		return nil, true, invalid("body: %v", err)
	}
	return wrapper.Jobs, true, nil
}
