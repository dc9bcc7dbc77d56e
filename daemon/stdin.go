package daemon

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// stdinPipe is a job's stdin pipe (a step's stdin_pipe): made when the job
// is admitted, so that a client may write before its program starts (the
// pipe holds what the kernel's buffer holds, 64 KiB); its read end is the
// stdin of each step with stdin_pipe, in turn; both ends are closed when
// the job ends. Writes come from POST /v1/runs/{id}/stdin.
type stdinPipe struct {
	r *os.File

	wmu sync.Mutex // one write at a time, so that two requests' bytes never mix

	mu     sync.Mutex // guards w
	w      *os.File   // nil once closed: by the client (eof), or the job's end
	closed string     // why w is nil
}

func newStdinPipe() (*stdinPipe, error) {
	r, w, err := os.Pipe() // both ends O_CLOEXEC, w on the runtime's poller
	if err != nil {
		return nil, fmt.Errorf("stdin pipe: %w", err)
	}
	return &stdinPipe{r: r, w: w}, nil
}

// stdinWriteWait is how long a write waits for the program to read what
// does not fit the pipe's buffer.
const stdinWriteWait = 10 * time.Second

// maxStdinWrite is the most one POST /v1/runs/{id}/stdin takes.
const maxStdinWrite = 1 << 20

// write writes data into the pipe, then closes it when eof is set. It
// waits up to wait for the program to take what the buffer cannot, and
// gives how many bytes went in.
func (p *stdinPipe) write(data []byte, eof bool, wait time.Duration) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	p.mu.Lock()
	w, why := p.w, p.closed
	p.mu.Unlock()
	if w == nil {
		return 0, errors.New(why)
	}
	n := 0
	if len(data) > 0 {
		w.SetWriteDeadline(time.Now().Add(wait))
		var err error
		n, err = w.Write(data)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			return n, fmt.Errorf("the program did not read its stdin for %s", wait)
		case errors.Is(err, os.ErrClosed):
			p.mu.Lock()
			why = p.closed
			p.mu.Unlock()
			return n, errors.New(why)
		case err != nil:
			return n, err
		}
	}
	if eof {
		p.close("its stdin is closed (eof was sent)")
	}
	return n, nil
}

// close closes the write end (the program reads EOF once the buffer is
// drained); a write waiting on it returns at once. Idempotent.
func (p *stdinPipe) close(why string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.w != nil {
		p.w.Close()
		p.w, p.closed = nil, why
	}
}

// release closes both ends at the job's end. Idempotent.
func (p *stdinPipe) release() {
	p.close("the job has finished")
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = "the job has finished" // whether or not eof closed it first
	if p.r != nil {
		p.r.Close()
		p.r = nil
	}
}

// reader is the read end, for a step's stdin; nil once released.
func (p *stdinPipe) reader() *os.File {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.r
}
