package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// DefaultSocket is where the daemon listens unless told otherwise.
const DefaultSocket = "/run/sandboxd/sandboxd.sock"

// SocketEnv names the environment variable that New reads when it is given
// no socket.
const SocketEnv = "SANDBOXD_SOCKET"

// baseURL is what every request is addressed to; the host is a placeholder,
// as the connection always goes to the socket.
const baseURL = "http://sandboxd"

// Content types of the API.
const (
	contentJSON   = "application/json"
	contentNDJSON = "application/x-ndjson"
)

// Client talks to one daemon. It is safe for concurrent use.
type Client struct {
	socket string
	hc     *http.Client // requests whose body is a stream (conn.go)
	kept   conns        // the others' connections
}

// New returns a client of the daemon listening on socket; "" means
// $SANDBOXD_SOCKET, or DefaultSocket when that is unset. Nothing is
// dialled until the first call.
func New(socket string) *Client {
	if socket == "" {
		socket = os.Getenv(SocketEnv)
	}
	if socket == "" {
		socket = DefaultSocket
	}
	c := &Client{socket: socket}
	c.hc = &http.Client{
		Transport: &http.Transport{
			DialContext:         c.dial,
			DisableCompression:  true, // a local socket: gzip only costs CPU
			MaxIdleConnsPerHost: 16,
			IdleConnTimeout:     30 * time.Second,
		},
		// No Timeout: runs can be long; contexts bound each call.
	}
	return c
}

// Close closes the connections kept open for later calls. Calls in
// progress go on; a later call dials again.
func (c *Client) Close() error {
	c.hc.CloseIdleConnections()
	c.closeKept()
	return nil
}

// Socket is the path of the daemon's socket.
func (c *Client) Socket() string { return c.socket }

func (c *Client) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		return nil, &UnreachableError{Socket: c.socket, Err: err}
	}
	return conn, nil
}

// Ping checks that the daemon answers and can start sandboxes.
func (c *Client) Ping(ctx context.Context) error {
	resp, err := c.send(ctx, http.MethodGet, "/_ping", nil, "", "text/plain")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return c.readError(ctx, http.MethodGet, "/_ping", err)
	}
	if s := strings.TrimSpace(string(body)); s != "OK" {
		return fmt.Errorf("GET /_ping: the daemon answered %q, not OK", s)
	}
	return nil
}

// Info describes the daemon and its host.
func (c *Client) Info(ctx context.Context) (*api.Info, error) {
	var info api.Info
	if err := c.Do(ctx, http.MethodGet, "/v1/info", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Run runs one job and waits for its result. Cancelling ctx closes the
// connection, which makes the daemon cancel the job.
func (c *Client) Run(ctx context.Context, job *api.Job) (*api.Result, error) {
	body, err := encodeJob(job)
	if err != nil {
		return nil, fmt.Errorf("encoding the job: %w", err)
	}
	return c.RunJSON(ctx, body)
}

// RunJSON is Run with the job as JSON, sent as it is: the daemon decodes
// it (strictly) as it would any client's.
func (c *Client) RunJSON(ctx context.Context, job []byte) (*api.Result, error) {
	var res api.Result
	if err := c.do(ctx, http.MethodPost, "/v1/run", job, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// encodeJob encodes a job for the wire, without a newline. A key that is
// not JSON (Key: []byte("abc")) is refused with a word on how to make one.
func encodeJob(job *api.Job) ([]byte, error) {
	if len(job.Key) > 0 && !json.Valid(job.Key) {
		return nil, fmt.Errorf("key: %.40q is not JSON; make a key with api.KeyOf (api.KeyOf(\"abc\") is the string \"abc\")", job.Key)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(job); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// Runs lists the jobs running or queued now.
func (c *Client) Runs(ctx context.Context) ([]api.RunInfo, error) {
	var list api.RunList
	if err := c.Do(ctx, http.MethodGet, "/v1/runs", nil, &list); err != nil {
		return nil, err
	}
	return list.Runs, nil
}

// Get gives one job's state, and its result once it has finished.
func (c *Client) Get(ctx context.Context, id string) (*api.RunInfo, error) {
	path, err := runPath(id)
	if err != nil {
		return nil, err
	}
	var info api.RunInfo
	if err := c.Do(ctx, http.MethodGet, path, nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// Cancel kills every process of a job; its result says cancelled.
func (c *Client) Cancel(ctx context.Context, id string) error {
	path, err := runPath(id)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodDelete, path, nil, nil)
}

// Continue lets a job submitted with pause_between_steps, paused after a
// step, run its next one. A job that is not paused is a conflict error.
func (c *Client) Continue(ctx context.Context, id string) error {
	path, err := runPath(id)
	if err != nil {
		return err
	}
	return c.Do(ctx, http.MethodPost, path+"/continue", nil, nil)
}

// WriteStdin writes data into the stdin pipe of a job whose step has
// stdin_pipe, and closes the pipe after it when eof is set (the program
// then reads end of file). It returns once the pipe has taken every byte;
// a program that does not read for 10 s makes it a conflict error.
func (c *Client) WriteStdin(ctx context.Context, id string, data []byte, eof bool) error {
	path, err := runPath(id)
	if err != nil {
		return err
	}
	path += "/stdin"
	if eof {
		path += "?eof=true"
	}
	resp, err := c.send(ctx, http.MethodPost, path, bytes.NewReader(data), "application/octet-stream", contentJSON)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return c.readError(ctx, http.MethodPost, path, err)
	}
	return nil
}

func runPath(id string) (string, error) {
	if id == "" {
		return "", errors.New("no run id given")
	}
	return "/v1/runs/" + url.PathEscape(id), nil
}

// Metrics returns the daemon's metrics in the Prometheus text format.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, http.MethodGet, "/metrics", nil, "", "text/plain")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", c.readError(ctx, http.MethodGet, "/metrics", err)
	}
	return string(b), nil
}

// Do sends one request and decodes a 2xx JSON answer into out: the typed
// methods are built on it, and it serves what they do not cover (raw JSON
// bodies in tests, a *json.RawMessage out to keep the answer as it came).
// path may carry a query. body, if not nil, is sent as application/json.
// out nil discards the answer. A non-2xx answer is a *StatusError.
func (c *Client) Do(ctx context.Context, method, path string, body io.Reader, out any) error {
	var data []byte
	if body != nil {
		var err error
		if data, err = io.ReadAll(body); err != nil {
			return fmt.Errorf("%s %s: reading the body: %w", method, path, err)
		}
		if data == nil {
			data = []byte{}
		}
	}
	return c.do(ctx, method, path, data, out)
}

// do is Do with the body in memory: nil is none.
func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	ctype := ""
	var r io.Reader
	if body != nil {
		ctype = contentJSON
		r = bytes.NewReader(body)
	}
	resp, err := c.send(ctx, method, path, r, ctype, contentJSON)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil {
		if err = json.NewDecoder(resp.Body).Decode(out); err != nil {
			err = fmt.Errorf("decoding the answer: %w", err)
		}
	}
	if err == nil {
		// What follows the value (its newline): the connection is then
		// free for the next call.
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		return c.readError(ctx, method, path, err)
	}
	return nil
}

// send makes one request and returns a 2xx answer, whose body the caller
// closes. Other answers become a *StatusError. A body in memory (nil or a
// *bytes.Reader) goes over a kept connection (conn.go); any other through
// net/http, which sends it while it reads the answer.
func (c *Client) send(ctx context.Context, method, path string, body io.Reader, contentType, accept string) (*http.Response, error) {
	switch b := body.(type) {
	case nil:
		return c.sendKept(ctx, method, path, nil, contentType, accept)
	case *bytes.Reader:
		if b.Len() <= maxKeptBody {
			data := make([]byte, b.Len())
			b.Read(data)
			return c.sendKept(ctx, method, path, data, contentType, accept)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	req.Header.Set("User-Agent", "sandboxd-client/1")
	resp, err := c.hc.Do(req)
	if err != nil {
		var unreachable *UnreachableError
		if errors.As(err, &unreachable) {
			return nil, unreachable
		}
		return nil, c.readError(ctx, method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		return nil, statusError(resp)
	}
	return resp, nil
}

// readError names the request an error happened on. When ctx is done, its
// error is the one that counts.
func (c *Client) readError(ctx context.Context, method, path string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else if uerr, ok := err.(*url.Error); ok {
		err = uerr.Err // drop the placeholder URL
	}
	return fmt.Errorf("%s %s: %w", method, path, err)
}
