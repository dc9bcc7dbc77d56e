package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
)

const (
	// writeWait bounds one frame's write to the browser.
	writeWait = 10 * time.Second
	// partialAfter is how long an unended line waits before it is sent as
	// a partial one (a prompt before input()).
	partialAfter = 100 * time.Millisecond
	// stdinQueue bounds the stdin messages waiting for the pipe.
	stdinQueue = 256
)

// session is one WebSocket connection: at most one run at a time.
type session struct {
	h        *handler
	conn     *websocket.Conn
	language string // the endpoint's default
	out      chan []byte
	ctx      context.Context // ends with the connection
	cancel   context.CancelFunc

	mu  sync.Mutex // guards run
	run *run
}

// run is one execute's job, from the execute to its last message.
type run struct {
	id       string
	language string
	cancel   context.CancelFunc
	started  chan struct{} // closed on the daemon's started event
	done     chan struct{} // closed once its last message is queued
	stopped  atomic.Bool
	stdin    chan ClientMessage
}

func newSession(h *handler, conn *websocket.Conn, language string) *session {
	return &session{h: h, conn: conn, language: language, out: make(chan []byte, h.cfg.QueueMessages)}
}

// serve reads the client's messages until the connection ends, then
// cancels the run in flight and waits for its end, so that a connection
// counted as closed holds no sandbox.
func (s *session) serve(parent context.Context) {
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(parent))
	defer s.cancel()
	// An execute's code is at most max_code_bytes; its JSON, escaped, at
	// most about six times that.
	s.conn.SetReadLimit(6*s.h.cfg.MaxCodeBytes + 4096)
	writerDone := make(chan struct{})
	go s.writer(writerDone)
	for {
		typ, b, err := s.conn.Read(s.ctx)
		if err != nil {
			break
		}
		if typ != websocket.MessageText {
			s.send(Message{Type: TypeError, Message: "binary frames are not taken: send JSON text"})
			continue
		}
		s.handle(b)
	}
	s.cancel()
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	if r != nil {
		r.cancel()
		// The daemon cancels a job whose client went away; a cancel of its
		// own makes that prompt whatever the connection's state.
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		s.h.c.Cancel(cctx, r.id)
		ccancel()
		<-r.done
	}
	<-writerDone
	s.conn.CloseNow()
}

// writer writes the queued messages, one frame each; a write that takes
// longer than writeWait ends the connection.
func (s *session) writer(done chan struct{}) {
	defer close(done)
	for {
		select {
		case <-s.ctx.Done():
			return
		case b := <-s.out:
			ctx, cancel := context.WithTimeout(s.ctx, writeWait)
			err := s.conn.Write(ctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				s.cancel()
				s.conn.CloseNow()
				return
			}
		}
	}
}

// send queues a message and never waits: a client that lets the queue
// fill is dropped, and its run cancelled.
func (s *session) send(m Message) {
	b, _ := json.Marshal(m)
	select {
	case s.out <- b:
	default:
		if s.ctx.Err() == nil {
			s.h.log.WithError(errSlowClient).Warn("web: dropping a connection")
			s.cancel()
			go s.conn.Close(websocket.StatusPolicyViolation, "too many messages waiting: the client does not read them")
		}
	}
}

func (s *session) fail(format string, args ...any) {
	s.send(Message{Type: TypeError, Message: fmt.Sprintf(format, args...)})
}

func (s *session) handle(b []byte) {
	var m ClientMessage
	if err := json.Unmarshal(b, &m); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || !json.Valid(b) {
			s.fail("invalid JSON: %v", err)
		} else {
			s.fail("invalid message: %v", err)
		}
		return
	}
	s.mu.Lock()
	r := s.run
	s.mu.Unlock()
	switch m.Type {
	case "", TypeExecute:
		if r != nil {
			s.fail("a program is already running (execution %s): stop it or wait for its end", r.id)
			return
		}
		s.execute(m)
	case TypeStop:
		if r == nil {
			s.fail("no program is running")
			return
		}
		r.stop(s)
	case TypeStdin:
		if m.Data == nil && !m.EOF {
			s.fail("stdin: data is required as a string")
			return
		}
		if r == nil {
			s.fail("stdin: no program is running")
			return
		}
		select {
		case r.stdin <- m:
		default:
			s.fail("stdin: %d messages wait for the program already", stdinQueue)
		}
	default:
		s.fail("unknown message type %q: execute, stop or stdin", m.Type)
	}
}

func (s *session) execute(m ClientMessage) {
	if m.Code == nil {
		s.fail("execute: code is required as a string")
		return
	}
	code := *m.Code
	if int64(len(code)) > s.h.cfg.MaxCodeBytes {
		s.fail("code: %d bytes, at most %d", len(code), s.h.cfg.MaxCodeBytes)
		return
	}
	name := m.Language
	if name == "" {
		name = s.language
	}
	lang, known, err := s.h.lookup(s.ctx, name)
	if err != nil {
		s.fail("the sandbox daemon does not answer: %v", err)
		return
	}
	if lang == nil {
		s.fail("language %q is not available here (available: %v)", name, known)
		return
	}
	var idb [9]byte
	rand.Read(idb[:])
	r := &run{id: "ws_" + hex.EncodeToString(idb[:]), language: lang.Language, started: make(chan struct{}),
		done: make(chan struct{}), stdin: make(chan ClientMessage, stdinQueue)}
	var ctx context.Context
	ctx, r.cancel = context.WithCancel(s.ctx)
	job := &api.Job{ID: r.id, Profile: lang.Profile, StopOn: api.StopOnFailure,
		Files: map[string]api.File{lang.SourceFile: {Content: code}}}
	if len(lang.Compile) > 0 {
		job.Steps = append(job.Steps, api.Step{Argv: lang.Compile})
	}
	cfg := s.h.cfg
	job.Steps = append(job.Steps, api.Step{Argv: lang.Run, StdinPipe: true,
		Limits: api.Limits{WallTimeMS: cfg.TimeLimitMS, CPUTimeMS: cfg.TimeLimitMS, MemoryBytes: cfg.MemoryBytes}})
	s.mu.Lock()
	s.run = r
	s.mu.Unlock()
	go r.feedStdin(ctx, s)
	go s.runJob(ctx, r, job, len(lang.Compile) > 0)
}

// runJob streams the job's events to the client as messages, then its
// last message.
func (s *session) runJob(ctx context.Context, r *run, job *api.Job, compiled bool) {
	defer func() {
		r.cancel()
		close(r.done)
	}()
	// The run is over for the client once its last message is out: an
	// execute sent on reading it must find none running.
	last := func(m Message) {
		s.mu.Lock()
		s.run = nil
		s.mu.Unlock()
		if s.ctx.Err() == nil {
			s.send(m)
		}
	}
	line := func(kind string) func(string, bool) {
		return func(text string, partial bool) {
			s.send(Message{Type: kind, Content: &text, Partial: partial})
		}
	}
	stdout := newLineSplitter(partialAfter, line(TypeStdout))
	stderr := newLineSplitter(partialAfter, line(TypeStderr))
	res, err := s.h.c.RunStream(ctx, job, func(e *api.Event) error {
		switch e.Event {
		case api.EventStarted:
			s.send(Message{Type: TypeExecutionStart, ExecutionID: r.id, Message: "Execution started"})
			close(r.started)
			if r.stopped.Load() {
				go r.cancelJob(s)
			}
		case api.EventStdout:
			stdout.write(e.Data)
		case api.EventStderr:
			stderr.write(e.Data)
		}
		return nil
	})
	stdout.close()
	stderr.close()
	if err != nil {
		last(Message{Type: TypeError, ExecutionID: r.id, Message: "sandboxd: " + err.Error()})
		return
	}
	last(outcome(r.id, r.language, compiled, res, r.stopped.Load()))
}

// stop cancels the run's job (DELETE /v1/runs/{id}) once the daemon has
// it; a stop before that is done on its started event.
func (r *run) stop(s *session) {
	if r.stopped.Swap(true) {
		return
	}
	select {
	case <-r.started:
		go r.cancelJob(s)
	default:
	}
}

func (r *run) cancelJob(s *session) {
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	// A job that ended meanwhile is a conflict: nothing to stop.
	if err := s.h.c.Cancel(ctx, r.id); err != nil {
		s.h.log.WithError(err).WithField("job", r.id).Debug("web: stop")
	}
}

// feedStdin writes the client's stdin messages into the job's stdin pipe,
// in order, once the daemon has the job.
func (r *run) feedStdin(ctx context.Context, s *session) {
	select {
	case <-r.started:
	case <-ctx.Done():
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-r.stdin:
			data := ""
			if m.Data != nil {
				data = *m.Data
			}
			if err := s.h.c.WriteStdin(ctx, r.id, []byte(data), m.EOF); err != nil && ctx.Err() == nil {
				select {
				case <-r.done:
				default:
					s.fail("stdin: %v", err)
				}
			}
		}
	}
}
