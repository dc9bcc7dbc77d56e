package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

const (
	// headerTimeout is how long a request's header may take to arrive; a
	// client slower than that gets a 408 and the connection is closed.
	headerTimeout = 10 * time.Second
	// bodyIdleTimeout is how long a request body may go without a byte
	// arriving (a batch's: while none of its jobs is queued or running, as
	// its client may wait for their results before it sends more).
	bodyIdleTimeout = 10 * time.Second
	// idleConnTimeout closes a kept-alive connection that sends no new
	// request.
	idleConnTimeout = 2 * time.Minute
)

// timedConn answers 408 to a request whose header does not arrive within
// headerTimeout: net/http closes such a connection without a word. It
// tells that timeout apart from the others by what it has seen: a read
// deadline passed outside a handler, on a connection that has begun a
// request (its first, or bytes of a next one). An idle kept-alive
// connection is closed quietly, and net/http's own wake-ups (a deadline
// in the past) are not timeouts.
type timedConn struct {
	net.Conn
	rejected func(code string)

	mu        sync.Mutex // guards the fields below
	deadline  time.Time  // the last read deadline set
	inHandler bool
	served    bool // a handler has run on this connection
	begun     bool // bytes of a request arrived outside a handler
	answered  bool

	// intakeOf is the listener whose intake the connection is in, until
	// intakeDone; intake ends it after intakeHold. Both nil for a
	// connection resumed after a hijack.
	intakeOf   *intakeListener
	intake     *time.Timer // guarded by mu
	intakeOnce sync.Once
}

// intakeDone ends the connection's intake: the next connection may be
// read. Safe to call more than once.
func (c *timedConn) intakeDone() {
	if c.intakeOf == nil {
		return
	}
	c.intakeOnce.Do(func() {
		c.mu.Lock()
		t := c.intake
		c.mu.Unlock()
		if t != nil {
			t.Stop()
		}
		c.intakeOf.release()
	})
}

type connKey struct{}

func (c *timedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *timedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *timedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	defer c.mu.Unlock()
	if n > 0 && !c.inHandler {
		c.begun = true
	}
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !c.inHandler && !c.answered &&
		c.deadline.After(time.Unix(1<<30, 0)) && (c.begun || !c.served) {
		c.answered = true
		c.rejected(api.CodeInvalidArgument)
		writeRaw408(c.Conn, fmt.Sprintf("request header: not complete within %v", headerTimeout))
	}
	return n, err
}

// enter and leave bracket a handler.
func (c *timedConn) enter() {
	c.mu.Lock()
	c.inHandler, c.served, c.begun = true, true, false
	c.mu.Unlock()
}

func (c *timedConn) leave() {
	c.mu.Lock()
	c.inHandler = false
	c.mu.Unlock()
}

// writeRaw408 writes a whole 408 answer, with a JSON error body, straight
// to a connection net/http is about to close.
func writeRaw408(c net.Conn, msg string) {
	body, _ := json.Marshal(api.ErrorBody{Error: &api.Error{Code: api.CodeInvalidArgument, Message: msg}})
	body = append(body, '\n')
	c.SetWriteDeadline(time.Now().Add(time.Second))
	fmt.Fprintf(c, "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// connOf is the timedConn a request came on, or nil.
func connOf(ctx context.Context) *timedConn {
	c, _ := ctx.Value(connKey{}).(*timedConn)
	return c
}

// errBodyIdle is what an idleBody's reads fail with once it gave up.
var errBodyIdle = fmt.Errorf("body: nothing received for %v", bodyIdleTimeout)

// idleBody reads a request body and gives up on a client that sends
// nothing for bodyIdleTimeout: it moves the connection's read deadline to
// now, and the pending read fails with errBodyIdle. While busy says true
// the clock waits. close must be called before the handler returns.
type idleBody struct {
	r     io.Reader
	rc    *http.ResponseController
	busy  func() bool
	timer *time.Timer

	mu      sync.Mutex // guards the fields below
	reading bool       // a read is pending
	last    time.Time  // when the last read began or ended, or the batch last had work
	idle    bool
	closed  bool
}

func newIdleBody(r io.Reader, w http.ResponseWriter, busy func() bool) *idleBody {
	b := &idleBody{r: r, rc: http.NewResponseController(w), busy: busy, last: time.Now()}
	b.timer = time.AfterFunc(bodyIdleTimeout, b.check)
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	if b.idle {
		b.mu.Unlock()
		return 0, errBodyIdle
	}
	b.reading, b.last = true, time.Now()
	b.mu.Unlock()
	n, err := b.r.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading, b.last = false, time.Now()
	if b.idle && err != nil && err != io.EOF {
		err = errBodyIdle
	}
	return n, err
}

// check gives up on the body if a read has waited for bodyIdleTimeout,
// else it looks again when that could be so.
func (b *idleBody) check() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	if b.busy != nil && b.busy() {
		// The clock starts again once the batch has nothing left to do.
		b.last = time.Now()
		b.timer.Reset(bodyIdleTimeout / 10)
		return
	}
	wait := bodyIdleTimeout - time.Since(b.last)
	if !b.reading || wait > 0 {
		b.timer.Reset(max(wait, bodyIdleTimeout/10))
		return
	}
	b.idle = true
	b.rc.SetReadDeadline(time.Now())
}

// close stops the clock; the body is not given up on after it returns.
func (b *idleBody) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.timer.Stop()
}
