package daemon

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// streamWriteTimeout is how long one write of an answer may wait for its
// client to read before the client counts as gone.
const streamWriteTimeout = 10 * time.Second

// batchBacklog is how far a batch's answer may run ahead of its client
// before the batch waits for it.
const batchBacklog = 4 << 20

// streamWriter writes NDJSON lines, flushed one by one, from any
// goroutine. Lines queue for a goroutine of the writer's own, so that a
// client that stops reading cannot stall a step's output capture (and with
// it the step's limits). Up to maxBacklog bytes wait; past it, a blocking
// writer makes write wait for room (a batch: its client's pace holds back
// its next jobs), any other gives up on the client. A client that does not
// read for streamWriteTimeout is gone too: gone is called once, and later
// lines are dropped.
type streamWriter struct {
	w          http.ResponseWriter
	rc         *http.ResponseController
	gone       func()
	maxBacklog int
	blocking   bool
	done       chan struct{} // closed when the writing goroutine ends

	mu      sync.Mutex // guards the fields below
	room    *sync.Cond // on mu: the backlog went down, or the client is gone
	queue   [][]byte
	backlog int
	closed  bool // no more lines will come
	failed  bool
	wake    chan struct{} // one pending signal to the writing goroutine
}

func newStreamWriter(w http.ResponseWriter, gone func(), maxBacklog int, blocking bool) *streamWriter {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	sw := &streamWriter{w: w, rc: http.NewResponseController(w), gone: gone, maxBacklog: maxBacklog,
		blocking: blocking, done: make(chan struct{}), wake: make(chan struct{}, 1)}
	sw.room = sync.NewCond(&sw.mu)
	go sw.loop()
	return sw
}

func (sw *streamWriter) send(v api.Event) { sw.write(v) }

// write queues v as one line.
func (sw *streamWriter) write(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	b = append(b, '\n')
	sw.mu.Lock()
	if sw.failed || sw.closed {
		sw.mu.Unlock()
		return
	}
	for sw.blocking && sw.backlog > 0 && sw.backlog+len(b) > sw.maxBacklog && !sw.failed {
		sw.room.Wait()
	}
	if sw.failed {
		sw.mu.Unlock()
		return
	}
	if sw.backlog+len(b) > sw.maxBacklog && sw.backlog > 0 {
		sw.failLocked()
		sw.mu.Unlock()
		return
	}
	sw.queue = append(sw.queue, b)
	sw.backlog += len(b)
	sw.mu.Unlock()
	sw.signal()
}

func (sw *streamWriter) signal() {
	select {
	case sw.wake <- struct{}{}:
	default:
	}
}

// failLocked gives up on the client.
//
// Preconditions: sw.mu is held.
func (sw *streamWriter) failLocked() {
	if sw.failed {
		return
	}
	sw.failed = true
	sw.queue, sw.backlog = nil, 0
	sw.room.Broadcast()
	go sw.gone()
	sw.signal()
}

// close waits until every queued line is written, or the client is gone.
// The handler must not return before: the ResponseWriter is not usable
// after.
func (sw *streamWriter) close() {
	sw.mu.Lock()
	sw.closed = true
	sw.mu.Unlock()
	sw.signal()
	<-sw.done
}

func (sw *streamWriter) loop() {
	defer close(sw.done)
	for {
		sw.mu.Lock()
		lines, failed, closed := sw.queue, sw.failed, sw.closed
		sw.queue = nil
		sw.mu.Unlock()
		if failed {
			return
		}
		for _, b := range lines {
			sw.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
			_, err := sw.w.Write(b)
			if err == nil {
				err = sw.rc.Flush()
			}
			sw.mu.Lock()
			if err != nil || sw.failed {
				sw.failLocked()
				sw.mu.Unlock()
				return
			}
			sw.backlog -= len(b)
			sw.room.Broadcast()
			sw.mu.Unlock()
		}
		if len(lines) == 0 && closed {
			return
		}
		if len(lines) == 0 {
			<-sw.wake
		}
	}
}

// streamEnv is set in each step of a streamed run where neither the step
// nor its profile sets it: runtimes that fully buffer output to a pipe
// then write each line as it is printed, so that it reaches the client
// while the program runs. (C's stdio and others that offer no such switch
// flush when the program says so.)
var streamEnv = map[string]string{"PYTHONUNBUFFERED": "1"}

// lineBuffered gives a streamed job's steps streamEnv.
func lineBuffered(cj *checkedJob) {
	for i := range cj.steps {
		st := cj.steps[i].step
		for k, v := range streamEnv {
			if _, ok := st.Env[k]; ok {
				continue
			}
			if _, ok := cj.profile.Env[k]; ok {
				continue
			}
			if st.Env == nil {
				st.Env = map[string]string{}
			}
			st.Env[k] = v
		}
	}
}
