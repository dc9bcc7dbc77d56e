package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sandboxd/sandboxd/api"
)

// RunStream runs one job and calls fn for every event of its stream as it
// arrives (Accept: application/x-ndjson), the last one included. It returns
// the Result of the "finished" event, or the *api.Error of an "error"
// event. An error from fn stops the stream and is returned as it is; like
// cancelling ctx, that closes the connection, so the daemon cancels the
// job. fn may be nil.
func (c *Client) RunStream(ctx context.Context, job *api.Job, fn func(*api.Event) error) (*api.Result, error) {
	body, err := encodeJob(job)
	if err != nil {
		return nil, fmt.Errorf("encoding the job: %w", err)
	}
	return c.RunStreamJSON(ctx, body, fn)
}

// RunStreamJSON is RunStream with the job as JSON, sent as it is.
func (c *Client) RunStreamJSON(ctx context.Context, job []byte, fn func(*api.Event) error) (*api.Result, error) {
	const method, path = http.MethodPost, "/v1/run"
	resp, err := c.send(ctx, method, path, bytes.NewReader(job), contentJSON, contentNDJSON)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	lines := newLineReader(resp.Body)
	for {
		line, err := lines.next()
		if err == io.EOF {
			err = errors.New("the event stream ended before the job finished")
		}
		if err != nil {
			return nil, c.readError(ctx, method, path, err)
		}
		var ev api.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, fmt.Errorf("%s %s: line %d of the event stream: %w", method, path, lines.n, err)
		}
		if fn != nil {
			if err := fn(&ev); err != nil {
				return nil, err
			}
		}
		switch ev.Event {
		case api.EventFinished:
			res, err := ev.JobResult()
			if err != nil {
				return nil, fmt.Errorf("%s %s: the finished event: %w", method, path, err)
			}
			return res, nil
		case api.EventError:
			if ev.Error == nil {
				return nil, &api.Error{Code: api.CodeInternal, Message: "the daemon sent an error event without an error"}
			}
			return nil, ev.Error
		}
	}
}

// lineReader splits a stream into its non-blank lines, of any length, each
// as soon as its newline (or the end of the stream) arrives.
type lineReader struct {
	r *bufio.Reader
	n int // lines returned so far
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next non-blank line without its newline, or io.EOF at
// the end. A last line without a newline counts; a line cut off by a broken
// connection does not.
func (l *lineReader) next() ([]byte, error) {
	for {
		line, err := l.r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return nil, err
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			l.n++
			return t, nil
		}
		if err != nil {
			return nil, err
		}
	}
}
