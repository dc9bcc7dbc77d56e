package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// intakePerProc bounds the new connections whose first request is
	// being read, decoded and admitted at once, per P (GOMAXPROCS): few
	// enough that a request on a kept connection (a /_ping) is not queued
	// behind thousands of them for the daemon's CPU.
	intakePerProc = 8
	// intakeHold is the longest a connection counts against that bound: a
	// slow client, a large upload or a long answer lets the next one in
	// after it.
	intakeHold = 100 * time.Millisecond
)

// intakeListener accepts every connection as it comes, into a line of its
// own, and hands them to net/http while fewer than limit are in their
// intake: from the hand-over until the first request reached the job
// queue (intakeDone), the connection went idle, closed or was hijacked,
// or intakeHold passed. The kernel's listen backlog so never fills (a
// connect is not refused with EAGAIN), and a burst of thousands of
// connections is read a few at a time rather than all at once.
// Connections given back after a hijack (resume) go out first and count
// against nothing: their requests come on a kept connection. Nor does a
// connection with nothing to read yet when its turn comes: a client that
// connects and stays silent holds no place.
type intakeListener struct {
	ln       net.Listener
	limit    int
	hold     time.Duration // intakeHold
	rejected func(code string)
	// A token, a connection or the end may be there: a byte in the pipe
	// (see signal), written while pending was false.
	wakeR, wakeW *os.File
	pending      atomic.Bool
	// open counts the connections accepted and not closed yet; at
	// maxOpen the accept loop waits for a close (room), so that the
	// jobs keep descriptors for their pipes and files.
	open    atomic.Int64
	maxOpen int64
	room    chan struct{}

	mu      sync.Mutex              // guards the fields below
	line    []net.Conn              // accepted, not handed out yet, oldest first
	resumed []net.Conn              // given back after a hijack
	idle    map[*connWatch]struct{} // given back, waiting for their next request
	inTake  int                     // handed out and in their intake
	err     error                   // the underlying listener's, once it failed
	closed  bool
}

func newIntakeListener(ln net.Listener, limit int, maxOpen int64, rejected func(string)) (*intakeListener, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("intake: %w", err)
	}
	l := &intakeListener{ln: ln, limit: max(1, limit), hold: intakeHold, rejected: rejected, wakeR: r, wakeW: w,
		maxOpen: maxOpen, room: make(chan struct{}, 1), idle: map[*connWatch]struct{}{}}
	go l.acceptLoop()
	return l, nil
}

// maxOpenConns is how many connections the daemon holds at most: its
// descriptor limit less a quarter (at least 256) kept for everything
// else. Connections beyond it wait in the kernel's listen backlog.
func maxOpenConns() int64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 30
	}
	n := int64(rl.Cur)
	return max(64, n-max(n/4, 256))
}

// countedConn is an accepted connection, counted in open until closed.
type countedConn struct {
	net.Conn
	l    *intakeListener
	once sync.Once
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		select {
		case c.l.room <- struct{}{}:
		default:
		}
	})
	return err
}

// signal wakes Accept. It does so through a pipe rather than a channel on
// purpose: a goroutine woken by a channel runs next on the same P, before
// anything the network poller found, and the intake (Accept, a request
// read and admitted, its token back, Accept again) would hand the one P
// from goroutine to goroutine for as long as connections wait, while a
// request on a kept connection (a /_ping) waited for it all. Woken by the
// poller, Accept runs only once the P has nothing else to run, in the
// same poll that finds those requests.
func (l *intakeListener) signal() {
	if l.pending.CompareAndSwap(false, true) {
		l.wakeW.Write([]byte{0})
	}
}

// wait blocks until the next signal.
func (l *intakeListener) wait() {
	var b [1]byte
	l.wakeR.Read(b[:])
	l.pending.Store(false)
}

// acceptLoop takes every connection the kernel has, backing off as
// net/http does when accept fails for a while (out of descriptors).
func (l *intakeListener) acceptLoop() {
	var backoff time.Duration
	for {
		if l.open.Load() >= l.maxOpen {
			<-l.room // a close, or Close
			l.mu.Lock()
			closed := l.closed
			l.mu.Unlock()
			if closed {
				return
			}
			continue
		}
		c, err := l.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			l.mu.Lock()
			l.err = err
			l.mu.Unlock()
			l.signal()
			return
		}
		backoff = 0
		l.open.Add(1)
		l.put(&l.line, &countedConn{Conn: c, l: l})
	}
}

// put adds c to the end of q (the line or resumed) and wakes Accept; after
// Close it closes c instead.
func (l *intakeListener) put(q *[]net.Conn, c net.Conn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	*q = append(*q, c)
	l.mu.Unlock()
	l.signal()
}

// readable says whether bytes of a request (or the client's end) wait on
// c, without waiting.
func readable(c net.Conn) bool {
	if cc, ok := c.(*countedConn); ok {
		c = cc.Conn
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	ready := true
	var b [1]byte
	raw.Read(func(fd uintptr) bool {
		_, _, err := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		ready = err != unix.EAGAIN
		return true
	})
	return ready
}

// isTemporary says whether an accept error passes (EMFILE, ENFILE,
// ECONNABORTED and the like), as net/http judges it.
func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// Accept gives net/http the next connection: a resumed one, else the
// oldest accepted once a place in the intake is free.
func (l *intakeListener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, net.ErrClosed
		}
		if len(l.resumed) > 0 {
			c := l.resumed[0]
			l.resumed[0] = nil
			l.resumed = l.resumed[1:]
			l.mu.Unlock()
			return &timedConn{Conn: c, rejected: l.rejected}, nil
		}
		// A connection with nothing to read yet costs nothing until its
		// request comes, as a kept one: it goes out without a place, so
		// that clients that connect and stay silent hold none.
		if ready := len(l.line) > 0 && readable(l.line[0]); len(l.line) > 0 && (!ready || l.inTake < l.limit) {
			c := l.line[0]
			l.line[0] = nil
			l.line = l.line[1:]
			if len(l.line) == 0 {
				l.line = nil // let the grown array go
			}
			if !ready {
				l.mu.Unlock()
				return &timedConn{Conn: c, rejected: l.rejected}, nil
			}
			l.inTake++
			l.mu.Unlock()
			tc := &timedConn{Conn: c, rejected: l.rejected, intakeOf: l}
			t := time.AfterFunc(l.hold, tc.intakeDone)
			tc.mu.Lock()
			tc.intake = t
			tc.mu.Unlock()
			return tc, nil
		}
		if l.err != nil && len(l.line) == 0 {
			err := l.err
			l.mu.Unlock()
			return nil, err
		}
		l.mu.Unlock()
		l.wait()
	}
}

// release ends one connection's intake.
func (l *intakeListener) release() {
	l.mu.Lock()
	l.inTake--
	l.mu.Unlock()
	l.signal()
}

// resume gives net/http back a connection taken from it by a hijack,
// whose next request has begun (resumeOnRequest, or bytes of it read
// already); after Close it is closed.
func (l *intakeListener) resume(c net.Conn) { l.put(&l.resumed, c) }

// resumeOnRequest gives net/http back a connection taken from it by a
// hijack once the client's next request begins. Until then it waits as
// net/http waits on a kept connection: for idleConnTimeout at most, and
// only then does the request header's own timeout start. A client that
// sends nothing in that time or leaves has the connection closed quietly;
// so has every waiting one at Close.
func (l *intakeListener) resumeOnRequest(c net.Conn) {
	w := &connWatch{c: c}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		c.Close()
		return
	}
	l.idle[w] = struct{}{}
	l.mu.Unlock()
	c.SetReadDeadline(time.Now().Add(idleConnTimeout))
	got, _ := w.read()
	l.mu.Lock()
	delete(l.idle, w)
	l.mu.Unlock()
	if got == nil {
		c.Close()
		return
	}
	l.resume(&pendingConn{Conn: c, pending: got})
}

// Close stops accepting, closes the connections not handed out and ends
// the waits of resumeOnRequest.
func (l *intakeListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	waiting := append(l.line, l.resumed...)
	l.line, l.resumed = nil, nil
	idle := l.idle
	l.idle = nil
	l.mu.Unlock()
	err := l.ln.Close()
	for _, c := range waiting {
		c.Close()
	}
	for w := range idle {
		w.wake()
	}
	l.signal()
	select {
	case l.room <- struct{}{}:
	default:
	}
	l.wakeW.Close() // Accept's read ends, if the signal found one pending
	l.wakeR.Close()
	return err
}

func (l *intakeListener) Addr() net.Addr { return l.ln.Addr() }

// connState ends a connection's intake once it is idle, closed or
// hijacked (http.Server.ConnState).
func connState(c net.Conn, state http.ConnState) {
	if state == http.StateIdle || state == http.StateClosed || state == http.StateHijacked {
		if tc, ok := c.(*timedConn); ok {
			tc.intakeDone()
		}
	}
}
