package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// The HTTP side of the contract: answers while draining, cancel of a
// finished job, wrong methods, Expect: 100-continue, slow clients.

// rawHTTP is a client on d's socket that hands requests to the daemon as
// they are.
func rawHTTP(d *testDaemon) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
}

// errorOf decodes an error answer.
func errorOf(t *testing.T, resp *http.Response) *api.Error {
	t.Helper()
	defer resp.Body.Close()
	var eb api.ErrorBody
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || eb.Error == nil {
		t.Errorf("HTTP %d: not a JSON error body (%v)", resp.StatusCode, err)
		return &api.Error{}
	}
	return eb.Error
}

// TestDaemonPingWhileDraining: after SIGTERM, while a job still runs, the
// socket answers: /_ping and new jobs with 503 "shutting down", the job
// finishes, and the daemon goes.
func TestDaemonPingWhileDraining(t *testing.T) {
	d := startDaemon(t, "shutdown_grace = \"10s\"\n")
	ctx := ctxT(t)
	done := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctx, &api.Job{ID: "draining", Steps: []api.Step{{Argv: []string{"sleep", "1.5"}}}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitRunning(t, d, "draining")
	d.cmd.Process.Signal(syscall.SIGTERM)
	hc := rawHTTP(d)
	var resp *http.Response
	var err error
	deadline := time.Now().Add(time.Second)
	for {
		resp, err = hc.Get("http://sandboxd/_ping")
		if err == nil && resp.StatusCode == http.StatusServiceUnavailable || time.Now().After(deadline) {
			break
		}
		if err == nil {
			resp.Body.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("GET /_ping while draining: %v, want 503", err)
	}
	if e := errorOf(t, resp); resp.StatusCode != http.StatusServiceUnavailable || e.Code != api.CodeUnavailable || e.Message != "shutting down" {
		t.Errorf("GET /_ping while draining: HTTP %d %+v", resp.StatusCode, e)
	}
	if _, err := d.c.Run(ctx, job("true")); !isStatus(err, http.StatusServiceUnavailable) {
		t.Errorf("a new job while draining: %v, want 503", err)
	}
	if res := <-done; res == nil || res.Status != api.StatusCompleted {
		t.Errorf("the running job: %+v", res)
	}
	d.stop()
}

func isStatus(err error, status int) bool {
	var se *client.StatusError
	return errors.As(err, &se) && se.HTTPStatus == status
}

// TestDaemonCancelFinishedAndWrongMethods: DELETE of a finished job is a
// 409 that says so; a wrong method is a 405 with an Allow header.
func TestDaemonCancelFinishedAndWrongMethods(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	if _, err := d.c.Run(ctx, &api.Job{ID: "over", Steps: []api.Step{{Argv: []string{"true"}}}}); err != nil {
		t.Fatal(err)
	}
	err := d.c.Cancel(ctx, "over")
	var se *client.StatusError
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusConflict || se.Err == nil || se.Err.Code != api.CodeConflict ||
		!strings.Contains(se.Err.Message, "already finished with status completed") {
		t.Errorf("cancel of a finished job: %v, want 409 conflict saying it finished", err)
	}
	hc := rawHTTP(d)
	for _, tc := range []struct{ method, path, allow string }{
		{"GET", "/v1/run", "POST"},
		{"PUT", "/v1/batch", "POST"},
		{"POST", "/_ping", "GET, HEAD"},
		{"DELETE", "/v1/runs", "GET, HEAD"},
		{"POST", "/v1/runs/over", "GET, HEAD, DELETE"},
		{"PATCH", "/metrics", "GET, HEAD"},
	} {
		req, _ := http.NewRequest(tc.method, "http://sandboxd"+tc.path, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		e := errorOf(t, resp)
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != tc.allow || !strings.Contains(e.Message, tc.path) {
			t.Errorf("%s %s: HTTP %d Allow %q %+v, want 405 with Allow %q", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), e, tc.allow)
		}
	}
	resp, err := hc.Get("http://sandboxd/v1/nothing")
	if err != nil {
		t.Fatal(err)
	}
	if e := errorOf(t, resp); resp.StatusCode != http.StatusNotFound || e.Code != api.CodeNotFound {
		t.Errorf("unknown path: HTTP %d %+v", resp.StatusCode, e)
	}
}

// dialRaw opens a connection to d's socket for hand-written HTTP.
func dialRaw(t *testing.T, d *testDaemon) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// TestDaemonBatchExpectContinue: a batch client that sends Expect:
// 100-continue (curl -T does) is told to go on at once.
func TestDaemonBatchExpectContinue(t *testing.T) {
	d := startDaemon(t, "")
	c, br := dialRaw(t, d)
	start := time.Now()
	fmt.Fprintf(c, "POST /v1/batch HTTP/1.1\r\nHost: sandboxd\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
		t.Fatalf("after %v: %q %v, want 100 Continue", time.Since(start), line, err)
	}
	if el := time.Since(start); el > 200*time.Millisecond {
		t.Errorf("100 Continue after %v", el)
	}
	br.ReadString('\n') // the blank line that ends it
	body := `{"key": "a", "steps": [{"argv": ["echo", "a"]}]}` + "\n"
	fmt.Fprintf(c, "%x\r\n%s\r\n0\r\n\r\n", len(body), body)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(out), `"summary"`) || !strings.Contains(string(out), `"stdout":"a\n"`) {
		t.Errorf("HTTP %d:\n%s", resp.StatusCode, out)
	}
}

// TestDaemonSlowClients: a header or a body that stops coming gets a 408
// with a JSON error, and its connection is closed; a batch whose client
// waits on its jobs' results before it sends more is not cut, and one
// that stops sending with nothing left to run gets an error line and its
// summary.
func TestDaemonSlowClients(t *testing.T) {
	d := startDaemon(t, "")
	var wg sync.WaitGroup
	check := func(name string, f func(t *testing.T)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t.Run(name, f)
		}()
	}
	want408 := func(t *testing.T, c net.Conn, br *bufio.Reader, what string) {
		start := time.Now()
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %v: %v, want a 408", time.Since(start), err)
		}
		e := errorOf(t, resp)
		if resp.StatusCode != http.StatusRequestTimeout || e.Code != api.CodeInvalidArgument || !strings.Contains(e.Message, what) {
			t.Errorf("HTTP %d %+v, want 408 naming %q", resp.StatusCode, e, what)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("the connection stays open after the 408: %v", err)
		}
	}
	check("header", func(t *testing.T) {
		c, br := dialRaw(t, d)
		fmt.Fprintf(c, "POST /v1/run HTTP/1.1\r\nHost: sandboxd\r\n")
		want408(t, c, br, "request header")
	})
	check("run_body", func(t *testing.T) {
		c, br := dialRaw(t, d)
		fmt.Fprintf(c, "POST /v1/run HTTP/1.1\r\nHost: sandboxd\r\nContent-Length: 100\r\n\r\n{\"steps\": ")
		want408(t, c, br, "body")
	})
	send := func(c net.Conn, line string) {
		line += "\n"
		fmt.Fprintf(c, "%x\r\n%s\r\n", len(line), line)
	}
	// batch starts a batch with its first line; the answer's header comes
	// with the first result.
	batch := func(t *testing.T, c net.Conn, br *bufio.Reader, first string) *bufio.Scanner {
		fmt.Fprintf(c, "POST /v1/batch HTTP/1.1\r\nHost: sandboxd\r\nTransfer-Encoding: chunked\r\n\r\n")
		send(c, first)
		c.SetReadDeadline(time.Now().Add(40 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("batch: %v %v", resp, err)
		}
		return bufio.NewScanner(resp.Body)
	}
	check("batch_waits_on_its_jobs", func(t *testing.T) {
		c, br := dialRaw(t, d)
		// The next line goes only once the first job's result came, 12 s
		// after the body's last byte.
		lines := batch(t, c, br, `{"key": 1, "steps": [{"argv": ["sleep", "12"]}]}`)
		if !lines.Scan() || !strings.Contains(lines.Text(), `"key":1`) || !strings.Contains(lines.Text(), `"verdict":"ok"`) {
			t.Fatalf("first line: %q %v", lines.Text(), lines.Err())
		}
		time.Sleep(time.Second)
		send(c, `{"key": 2, "steps": [{"argv": ["true"]}]}`)
		fmt.Fprintf(c, "0\r\n\r\n")
		if !lines.Scan() || !strings.Contains(lines.Text(), `"key":2`) || !strings.Contains(lines.Text(), `"verdict":"ok"`) {
			t.Fatalf("second line: %q %v", lines.Text(), lines.Err())
		}
		if !lines.Scan() || !strings.Contains(lines.Text(), `"summary":{"total":2`) {
			t.Fatalf("summary: %q %v", lines.Text(), lines.Err())
		}
	})
	check("batch_body_stops", func(t *testing.T) {
		c, br := dialRaw(t, d)
		lines := batch(t, c, br, `{"key": 1, "steps": [{"argv": ["true"]}]}`)
		var got []string
		for lines.Scan() {
			got = append(got, lines.Text())
		}
		all := strings.Join(got, "\n")
		if len(got) != 3 || !strings.Contains(all, `"key":1`) || !strings.Contains(all, "nothing received for 10s") || !strings.Contains(got[2], `"summary":{"total":2`) {
			t.Errorf("lines:\n%s", all)
		}
	})
	wg.Wait()
}
