package client

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
)

// A request whose body is in memory (or absent) goes over a kept
// connection of the client's own: the calling goroutine writes the request
// and reads the answer itself. net/http's Transport would hand each call
// to a writer and a reader goroutine of the connection and back, three
// wake-ups of other goroutines a call; on a busy host, whose CPUs the
// client shares with the daemon and the runs, that is CPU a run pays for:
// the client's CPU per python3 run at two workers was 459 µs through
// net/http alone and is 208 µs so (perf by process, docs/benchmarks.md).
// The answer is still parsed by net/http (http.ReadResponse).
// Requests whose body is a stream (a batch, an upload) still go through
// net/http, which sends and reads at once.

// maxKeptConns bounds the idle connections kept for later calls.
const maxKeptConns = 16

// maxKeptBody bounds the request bodies sent over a kept connection: one
// that fits the socket's buffer is written whole before the answer is
// read. A larger one goes through net/http, which reads the answer (a
// refusal, say) while it still sends.
const maxKeptBody = 64 << 10

// keptConn is one connection to the daemon and its read buffer.
type keptConn struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte // the request line and headers, built anew for each call
}

// conns are a client's idle kept connections.
type conns struct {
	mu   sync.Mutex
	idle []*keptConn
}

// get is an idle connection that the daemon has not closed meanwhile, or
// a new one; reused says which.
func (c *Client) getConn(ctx context.Context) (kc *keptConn, reused bool, err error) {
	c.kept.mu.Lock()
	for len(c.kept.idle) > 0 {
		kc = c.kept.idle[len(c.kept.idle)-1]
		c.kept.idle = c.kept.idle[:len(c.kept.idle)-1]
		if idleAlive(kc.c) {
			c.kept.mu.Unlock()
			return kc, true, nil
		}
		kc.c.Close()
	}
	c.kept.mu.Unlock()
	nc, err := c.dial(ctx, "unix", c.socket)
	if err != nil {
		return nil, false, err
	}
	return &keptConn{c: nc, br: bufio.NewReaderSize(nc, 16<<10)}, false, nil
}

// putConn keeps kc for a later call, or closes it when enough are kept.
func (c *Client) putConn(kc *keptConn) {
	c.kept.mu.Lock()
	if len(c.kept.idle) < maxKeptConns {
		c.kept.idle = append(c.kept.idle, kc)
		kc = nil
	}
	c.kept.mu.Unlock()
	if kc != nil {
		kc.c.Close()
	}
}

// closeKept closes the idle kept connections.
func (c *Client) closeKept() {
	c.kept.mu.Lock()
	idle := c.kept.idle
	c.kept.idle = nil
	c.kept.mu.Unlock()
	for _, kc := range idle {
		kc.c.Close()
	}
}

// sendKept is send over a kept connection, for a body in memory (nil: no
// body). The answer's body reads from the connection; closing it gives the
// connection back once the body was read to its end.
func (c *Client) sendKept(ctx context.Context, method, path string, body []byte, contentType, accept string) (*http.Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, c.readError(ctx, method, path, err)
	}
	for attempt := 0; ; attempt++ {
		kc, reused, err := c.getConn(ctx)
		if err != nil {
			var unreachable *UnreachableError
			if errors.As(err, &unreachable) {
				return nil, unreachable
			}
			return nil, c.readError(ctx, method, path, err)
		}
		// A cancel closes the connection: the daemon sees its client
		// gone and cancels the job.
		stop := context.AfterFunc(ctx, func() { kc.c.Close() })
		kc.req = appendRequest(kc.req[:0], method, path, body, contentType, accept)
		written := 0
		if written, err = kc.c.Write(kc.req); err == nil && len(body) > 0 {
			var n int
			n, err = kc.c.Write(body)
			written += n
		}
		var resp *http.Response
		// A daemon that refuses a request before reading its body (413,
		// 429) answers and closes: its answer is still there to read
		// when the write failed.
		resp, rerr := http.ReadResponse(kc.br, &http.Request{Method: method})
		if err == nil || rerr == nil {
			err = rerr
		}
		if err != nil {
			stop()
			kc.c.Close()
			// A kept connection the daemon closed just before this
			// request took none of it: the request goes again, once, on
			// a new one.
			if reused && written == 0 && attempt == 0 && ctx.Err() == nil {
				continue
			}
			return nil, c.readError(ctx, method, path, err)
		}
		resp.Body = &keptBody{body: resp.Body, c: c, kc: kc, stop: stop, reuse: !resp.Close && written == len(kc.req)+len(body)}
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			defer resp.Body.Close()
			return nil, statusError(resp)
		}
		return resp, nil
	}
}

// appendRequest appends the request line and headers of a request to b.
func appendRequest(b []byte, method, path string, body []byte, contentType, accept string) []byte {
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\r\nHost: sandboxd\r\nUser-Agent: sandboxd-client/1\r\n"...)
	if contentType != "" {
		b = append(b, "Content-Type: "...)
		b = append(b, contentType...)
		b = append(b, "\r\n"...)
	}
	if accept != "" {
		b = append(b, "Accept: "...)
		b = append(b, accept...)
		b = append(b, "\r\n"...)
	}
	if body != nil || method == http.MethodPost || method == http.MethodPut {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(len(body)), 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// keptBody is an answer's body on a kept connection.
type keptBody struct {
	body  io.ReadCloser
	c     *Client
	kc    *keptConn
	stop  func() bool // ends the watch on the call's context; false: it closed the connection
	reuse bool        // the daemon keeps the connection open
	eof   bool        // the body was read to its end
}

func (b *keptBody) Read(p []byte) (int, error) {
	if b.kc == nil {
		return 0, errors.New("read on a closed body")
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// Close gives the connection back when the body was read to its end, and
// closes it otherwise (the rest of the answer would be in the way of the
// next one).
func (b *keptBody) Close() error {
	kc := b.kc
	if kc == nil {
		return nil
	}
	b.kc = nil
	if b.stop() && b.reuse && b.eof {
		b.c.putConn(kc)
		return nil
	}
	return kc.c.Close()
}
