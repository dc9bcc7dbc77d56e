package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"os"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// A POST /v1/run that must wait in line leaves net/http while it waits:
// its handler would hold the connection's read and write buffers, the
// request and a goroutine with the handler's whole stack (about 35 KiB a
// request, docs/benchmarks.md), for as long as the queue is. Detached, a
// waiting job holds its admission, its connection and one goroutine
// parked in a one-byte read that notices the client leaving, as net/http
// would. Once the job has run, its answer is written as net/http would
// write it, and the connection goes back to net/http (resumeOnRequest)
// for the client's next request.
//
//	handler: body -> decode -> admit -> ticket waits? -> hijack, return
//	detached goroutine: read 1 byte until granted / cancelled / client gone
//	                    run the job (a watch goroutine reads meanwhile)
//	                    write the answer -> resume the connection once its
//	                    next request begins, or close

// aLongTimeAgo is a read deadline that ends a pending read at once.
var aLongTimeAgo = time.Unix(1, 0)

// detach takes a waiting POST /v1/run's connection from net/http and
// answers it from a goroutine of its own; from then on that goroutine
// owns adm and release. clientGone stops the request's context from
// cancelling the job. It says whether it detached: false leaves
// everything to the handler.
func (s *server) detach(w http.ResponseWriter, r *http.Request, adm *admission, clientGone func() bool, release func()) bool {
	if !r.ProtoAtLeast(1, 1) || s.intake == nil {
		return false
	}
	closeAfter := r.Close
	c, rw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return false
	}
	// The request's context ends when the handler returns; a client that
	// left before this cancelled the job already.
	clientGone()
	var pending []byte // bytes of a next request, already read
	if n := rw.Reader.Buffered(); n > 0 {
		b, _ := rw.Reader.Peek(n)
		pending = append([]byte(nil), b...)
	}
	s.inflight.Add(1)
	go s.answerDetached(bareConn(c), pending, adm, release, closeAfter)
	return true
}

// answerDetached waits for the job's turn, runs it and answers it on c.
func (s *server) answerDetached(c net.Conn, pending []byte, adm *admission, release func(), closeAfter bool) {
	defer s.inflight.Add(-1)
	defer release()
	defer adm.finish()
	// The watch reads on when bytes of a next request came with this one
	// (pipelined), as net/http's background read does: a client that sent
	// them and left still has its job cancelled. One byte more ends it,
	// as it ends net/http's.
	watch := &connWatch{c: c}
	adm.ticket.onGrant(watch.wake)
	stop := context.AfterFunc(adm.ctx, watch.wake)
	got, gone := watch.read()
	stop()
	if gone {
		adm.cancel()
	}
	// While the job runs, a client that leaves cancels it.
	var watched chan struct{}
	if !gone && got == nil {
		watched = make(chan struct{})
		watch.rearm()
		go func() {
			defer close(watched)
			var g bool
			if got, g = watch.read(); g {
				gone = true
				adm.cancel()
			}
		}()
	}
	res := adm.run(nil)
	if watched != nil {
		watch.wake()
		<-watched
	}
	if gone {
		c.Close()
		return
	}
	if err := writeAnswer(c, res, closeAfter); err != nil || closeAfter {
		c.Close()
		return
	}
	if pending = append(pending, got...); len(pending) > 0 {
		s.intake.resume(&pendingConn{Conn: c, pending: pending})
		return
	}
	// The next request is still to come: the connection waits for it as
	// a kept one, not as a new one, whose header would be due at once. On
	// a goroutine of its own, as this request is over.
	go s.intake.resumeOnRequest(c)
}

// connWatch is a one-byte read of a connection that wake ends early.
type connWatch struct {
	c net.Conn

	mu      sync.Mutex // guards the fields below
	reading bool
	woken   bool
}

// wake ends the read pending or next to come.
func (w *connWatch) wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.woken = true
	if w.reading {
		w.c.SetReadDeadline(aLongTimeAgo)
	}
}

// rearm lets a read after a wake wait again.
func (w *connWatch) rearm() {
	w.mu.Lock()
	w.woken = false
	w.mu.Unlock()
}

// read waits for a byte, the client's end or a wake: a byte is returned
// (the start of the client's next request), gone says the client closed
// the connection or it failed.
func (w *connWatch) read() (got []byte, gone bool) {
	w.mu.Lock()
	if w.woken {
		w.mu.Unlock()
		return nil, false
	}
	w.reading = true
	w.mu.Unlock()
	var b [1]byte
	n, err := w.c.Read(b[:])
	w.mu.Lock()
	w.reading = false
	w.mu.Unlock()
	w.c.SetReadDeadline(time.Time{})
	switch {
	case n == 1:
		return b[:1], false
	case err == nil, errors.Is(err, os.ErrDeadlineExceeded):
		return nil, false
	}
	return nil, true
}

// writeAnswer writes a job's result as the handler would through
// net/http: 200, JSON, whole with its length when small, else chunked.
func writeAnswer(c net.Conn, res *api.Result, closeAfter bool) error {
	c.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	defer c.SetWriteDeadline(time.Time{})
	bw := bufio.NewWriterSize(c, 4<<10)
	conn := ""
	if closeAfter {
		conn = "Connection: close\r\n"
	}
	date := time.Now().UTC().Format(http.TimeFormat)
	if buf := encodeSmall(res); buf != nil {
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\nContent-Type: application/json\r\nDate: %s\r\n%s\r\n", buf.Len(), date, conn)
		bw.Write(buf.Bytes())
		resultBufs.Put(buf)
		return bw.Flush()
	}
	fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: %s\r\n%sTransfer-Encoding: chunked\r\n\r\n", date, conn)
	cw := httputil.NewChunkedWriter(bw)
	if err := writeResult(cw, res); err != nil {
		return err
	}
	if err := cw.Close(); err != nil {
		return err
	}
	bw.WriteString("\r\n")
	return bw.Flush()
}

// bareConn is c without what net/http's use of it added: the timeouts of
// its reads (timedConn) and the first bytes of a request net/http has read
// already (a pendingConn with none left), so that a connection detached
// again and again is not wrapped deeper each time.
func bareConn(c net.Conn) net.Conn {
	if t, ok := c.(*timedConn); ok {
		c = t.Conn
	}
	for {
		p, ok := c.(*pendingConn)
		if !ok || len(p.pending) > 0 {
			return c
		}
		c = p.Conn
	}
}

// pendingConn is a connection whose first bytes were read already.
type pendingConn struct {
	net.Conn
	pending []byte
}

func (c *pendingConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
