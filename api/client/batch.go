package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/sandboxd/sandboxd/api"
)

// Batch runs many jobs: r is NDJSON, one api.Job a line, and is sent as it
// is read, never read whole first. The answer is read while the body is
// still going out: fn is called for each job's line as it arrives, in
// completion order (a line with Error is a job the daemon refused), and
// Batch returns the summary, the last line, which fn does not see.
// concurrency > 0 caps this batch's parallelism; otherwise the daemon
// chooses.
//
// A line with an error but no index ends the batch: it is returned as an
// *api.Error. An error from fn stops reading and is returned as it is;
// like cancelling ctx, that closes the connection and the daemon cancels
// the jobs left. r is not closed. fn may be nil.
func (c *Client) Batch(ctx context.Context, r io.Reader, concurrency int, fn func(*api.BatchLine) error) (*api.BatchSummary, error) {
	const method = http.MethodPost
	path := "/v1/batch"
	if concurrency > 0 {
		path += "?concurrency=" + strconv.Itoa(concurrency)
	}
	// The transport closes a body it is given; the caller's reader (stdin,
	// say) stays the caller's.
	resp, err := c.send(ctx, method, path, unclosable{r}, contentNDJSON, contentNDJSON)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()

	lines := newLineReader(resp.Body)
	for {
		line, err := lines.next()
		if err == io.EOF {
			err = errors.New("the answer ended before the summary")
		}
		if err != nil {
			return nil, c.readError(ctx, method, path, err)
		}
		var bl api.BatchLine
		if err := json.Unmarshal(line, &bl); err != nil {
			return nil, fmt.Errorf("%s %s: line %d of the answer: %w", method, path, lines.n, err)
		}
		switch {
		case bl.Summary != nil:
			return bl.Summary, nil
		case bl.Index == nil && bl.Error != nil:
			return nil, bl.Error
		case bl.Index == nil:
			return nil, fmt.Errorf("%s %s: line %d of the answer is neither a job's nor the summary: %.200s", method, path, lines.n, line)
		}
		if fn != nil {
			if err := fn(&bl); err != nil {
				return nil, err
			}
		}
	}
}

// BatchJobs is Batch over jobs, encoded one a line as the request goes out.
func (c *Client) BatchJobs(ctx context.Context, jobs []api.Job, concurrency int, fn func(*api.BatchLine) error) (*api.BatchSummary, error) {
	pr, pw := io.Pipe()
	go func() {
		for i := range jobs {
			b, err := encodeJob(&jobs[i])
			if err == nil {
				_, err = pw.Write(append(b, '\n'))
			}
			if err != nil {
				pw.CloseWithError(fmt.Errorf("encoding job %d: %w", i, err))
				return
			}
		}
		pw.Close()
	}()
	defer pr.Close() // lets the encoder go if Batch ended early
	return c.Batch(ctx, pr, concurrency, fn)
}

// unclosable hides the Close of a request body's reader, so that it is
// only read.
type unclosable struct{ r io.Reader }

func (u unclosable) Read(p []byte) (int, error) { return u.r.Read(p) }
