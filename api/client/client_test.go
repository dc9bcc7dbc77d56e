package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

func TestNewSocket(t *testing.T) {
	t.Setenv(SocketEnv, "")
	if got := New("").Socket(); got != DefaultSocket {
		t.Errorf("New(\"\") with no %s: socket %q, want %q", SocketEnv, got, DefaultSocket)
	}
	t.Setenv(SocketEnv, "/tmp/from-env.sock")
	if got := New("").Socket(); got != "/tmp/from-env.sock" {
		t.Errorf("New(\"\") with %s set: socket %q", SocketEnv, got)
	}
	if got := New("/tmp/given.sock").Socket(); got != "/tmp/given.sock" {
		t.Errorf("New(path): socket %q, the environment should not win", got)
	}
}

func TestPing(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("ping: method %s", r.Method)
		}
		if r.Host != "sandboxd" {
			t.Errorf("ping: host %q, want sandboxd", r.Host)
		}
		io.WriteString(w, "OK")
	})
	if err := f.client().Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Close lets the daemon forget the client: no connection stays open.
func TestClose(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	c := f.client()
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.conns.Load(); n != 1 {
		t.Fatalf("%d connections open after a ping, want the one kept for later calls", n)
	}
	c.Close()
	for deadline := time.Now().Add(5 * time.Second); f.conns.Load() > 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open after Close", f.conns.Load())
		}
	}
	// A later call dials again.
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestPingNotOK(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "maybe") })
	err := f.client().Ping(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"maybe"`) {
		t.Fatalf("ping answered maybe: error %v", err)
	}
}

func TestInfo(t *testing.T) {
	f := newFakeDaemon(t)
	want := api.Info{
		Version:  "1.2.3",
		Kernel:   "6.1.0",
		Cgroup:   api.CgroupInfo{Mode: "v2", Controllers: []string{"cpu", "memory", "pids"}},
		Features: map[string]bool{"user_ns": true, "memory_peak": false},
		Profiles: []api.ProfileInfo{{Name: "default", Defaults: api.Limits{CPUTimeMS: 1000}, Max: api.Limits{CPUTimeMS: 60000}}},
		Pool:     api.PoolInfo{Concurrency: 2, QueueSize: 64, Running: 1},
	}
	f.mux.HandleFunc("/v1/info", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			t.Errorf("info: method %s", r.Method)
		}
		checkHeader(t, r, "Accept", "application/json")
		writeJSON(w, 200, want)
	})
	got, err := f.client().Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, want) {
		t.Fatalf("info:\n got %+v\nwant %+v", *got, want)
	}
}

func sampleJob() *api.Job {
	want := "hello\n"
	return &api.Job{
		ID:      "job-1",
		Key:     json.RawMessage(`{"case":7}`),
		Profile: "default",
		Files: map[string]api.File{
			"main.py":  {Content: "print(input())"},
			"tool.bin": {Base64: "f0VMRgIB", Mode: "0755"},
		},
		Steps: []api.Step{{
			Argv:           []string{"python3", "main.py"},
			Env:            map[string]string{"PYTHONHASHSEED": "0"},
			Stdin:          "hello\n",
			ExpectedStdout: &want,
			Limits:         api.Limits{CPUTimeMS: 2000, MemoryBytes: 256 << 20},
		}},
		TrackedFiles: []string{"out.txt"},
	}
}

func sampleResult(id string) *api.Result {
	match := true
	return &api.Result{
		ID:     id,
		Status: api.StatusCompleted,
		Steps: []api.StepResult{{
			Verdict: api.VerdictOK, Stdout: "hello\n", StdoutMatches: &match,
			CPUTimeMS: 11.8, WallTimeMS: 14.2, MemoryPeakBytes: 9437184, PIDsPeak: 1,
		}},
		Files:  map[string]*api.TrackedFile{"out.txt": nil},
		Timing: api.Timing{TotalMS: 15},
	}
}

func TestRun(t *testing.T) {
	f := newFakeDaemon(t)
	job := sampleJob()
	f.mux.HandleFunc("/v1/run", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("run: method %s", r.Method)
		}
		checkHeader(t, r, "Content-Type", "application/json")
		checkHeader(t, r, "Accept", "application/json")
		var got api.Job
		decodeStrict(t, r.Body, &got)
		if !reflect.DeepEqual(&got, job) {
			t.Errorf("run: job\n got %+v\nwant %+v", got, *job)
		}
		writeJSON(w, 200, sampleResult("r_1"))
	})
	res, err := f.client().Run(context.Background(), job)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res, sampleResult("r_1")) {
		t.Fatalf("run: result %+v", res)
	}
}

// TestRunStream checks that events reach fn as they are sent: the fake
// sends the first events, then waits until fn has seen them before it sends
// the rest.
func TestRunStream(t *testing.T) {
	f := newFakeDaemon(t)
	sawStdout := make(chan struct{})
	step0 := 0
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		checkHeader(t, r, "Accept", "application/x-ndjson")
		checkHeader(t, r, "Content-Type", "application/json")
		var job api.Job
		decodeStrict(t, r.Body, &job)
		w.Header().Set("Content-Type", "application/x-ndjson")
		ndjsonLine(t, w, api.Event{Event: api.EventStarted, ID: "r_2"})
		ndjsonLine(t, w, api.Event{Event: api.EventStdout, Step: &step0, Data: "hel"})
		select {
		case <-sawStdout:
		case <-time.After(10 * time.Second):
			t.Error("fn did not see the stdout event before the stream went on")
			return
		}
		ndjsonLine(t, w, api.Event{Event: api.EventStdout, Step: &step0, Data: "lo\n"})
		sr, _ := json.Marshal(sampleResult("r_2").Steps[0])
		ndjsonLine(t, w, api.Event{Event: api.EventStepFinished, Step: &step0, Result: sr})
		rr, _ := json.Marshal(sampleResult("r_2"))
		ndjsonLine(t, w, api.Event{Event: api.EventFinished, Result: rr})
	})

	var events []string
	var stdout strings.Builder
	res, err := f.client().RunStream(context.Background(), sampleJob(), func(ev *api.Event) error {
		events = append(events, ev.Event)
		switch ev.Event {
		case api.EventStdout:
			if stdout.Len() == 0 {
				close(sawStdout)
			}
			stdout.WriteString(ev.Data)
		case api.EventStepFinished:
			sr, err := ev.StepResult()
			if err != nil || sr.Verdict != api.VerdictOK {
				t.Errorf("step_finished: %+v, %v", sr, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"started", "stdout", "stdout", "step_finished", "finished"}; !reflect.DeepEqual(events, want) {
		t.Errorf("events %v, want %v", events, want)
	}
	if stdout.String() != "hello\n" {
		t.Errorf("stdout %q", stdout.String())
	}
	if !reflect.DeepEqual(res, sampleResult("r_2")) {
		t.Errorf("result %+v", res)
	}
}

func TestRunStreamErrorEvent(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		ndjsonLine(t, w, api.Event{Event: api.EventStarted, ID: "r_3"})
		ndjsonLine(t, w, api.Event{Event: api.EventError, Error: &api.Error{Code: api.CodeInternal, Message: "cgroup gone"}})
	})
	var n int
	_, err := f.client().RunStream(context.Background(), sampleJob(), func(*api.Event) error { n++; return nil })
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeInternal || apiErr.Message != "cgroup gone" {
		t.Fatalf("error event: got %v", err)
	}
	if n != 2 {
		t.Errorf("fn saw %d events, want 2 (the error event too)", n)
	}
}

func TestRunStreamCutShort(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		ndjsonLine(t, w, api.Event{Event: api.EventStarted, ID: "r_4"})
	})
	_, err := f.client().RunStream(context.Background(), sampleJob(), nil)
	if err == nil || !strings.Contains(err.Error(), "ended before the job finished") {
		t.Fatalf("stream without finished: error %v", err)
	}
}

// TestRunStreamFnError checks that an error from fn ends the call and the
// connection.
func TestRunStreamFnError(t *testing.T) {
	f := newFakeDaemon(t)
	gone := make(chan struct{})
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		ndjsonLine(t, w, api.Event{Event: api.EventStarted, ID: "r_5"})
		<-r.Context().Done()
		close(gone)
	})
	stop := errors.New("stop here")
	_, err := f.client().RunStream(context.Background(), sampleJob(), func(*api.Event) error { return stop })
	if err != stop {
		t.Fatalf("fn's error: got %v", err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not see the connection close")
	}
}

// TestRunCancel checks that cancelling the context of Run closes the
// connection, which is how the daemon learns to cancel the job.
func TestRunCancel(t *testing.T) {
	f := newFakeDaemon(t)
	started := make(chan struct{})
	gone := make(chan struct{})
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server watches the connection once the body is read
		close(started)
		select {
		case <-r.Context().Done():
			close(gone)
		case <-time.After(10 * time.Second):
			t.Error("the client's cancel never closed the connection")
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := f.client().Run(ctx, sampleJob())
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled run: error %v, want context.Canceled", err)
	}
	select {
	case <-gone:
	case <-time.After(10 * time.Second):
		t.Fatal("the daemon did not see the connection close")
	}
}

// TestBatchFullDuplex checks both directions at once: the client sends
// line 2 of the request only after it got the answer to line 1, which
// works only if the body is streamed and the answer read while it is sent.
func TestBatchFullDuplex(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("/v1/batch", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			t.Errorf("batch: method %s", r.Method)
		}
		if got := r.URL.Query().Get("concurrency"); got != "3" {
			t.Errorf("batch: concurrency %q, want 3", got)
		}
		checkHeader(t, r, "Content-Type", "application/x-ndjson")
		checkHeader(t, r, "Accept", "application/x-ndjson")
		if err := http.NewResponseController(w).EnableFullDuplex(); err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		in := bufio.NewScanner(r.Body)
		i := 0
		for in.Scan() {
			var job api.Job
			decodeStrict(t, strings.NewReader(in.Text()), &job)
			ndjsonLine(t, w, api.BatchLine{Index: &i, Key: job.Key, Result: sampleResult(fmt.Sprint("r_", i))})
			i++
		}
		ndjsonLine(t, w, api.BatchLine{Summary: &api.BatchSummary{Total: i, Verdicts: map[string]int{"ok": i}}})
	})

	pr, pw := io.Pipe()
	write := func(key int) {
		b, _ := json.Marshal(api.Job{Key: json.RawMessage(fmt.Sprint(key)), Steps: []api.Step{{Argv: []string{"true"}}}})
		if _, err := pw.Write(append(b, '\n')); err != nil {
			t.Error(err)
		}
	}
	go write(100)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // fail, not hang
	defer cancel()
	var keys []string
	sum, err := f.client().Batch(ctx, pr, 3, func(bl *api.BatchLine) error {
		keys = append(keys, string(bl.Key))
		if len(keys) == 1 {
			go func() { write(101); pw.Close() }()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"100", "101"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if sum.Total != 2 || sum.Verdicts["ok"] != 2 {
		t.Errorf("summary %+v", sum)
	}
}

// TestBatchJobs checks the convenience form, answers in completion order
// (not request order), a refused job, and no concurrency parameter.
func TestBatchJobs(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			t.Errorf("batch: query %q, want none", r.URL.RawQuery)
		}
		var jobs []api.Job
		in := bufio.NewScanner(r.Body)
		for in.Scan() {
			var job api.Job
			decodeStrict(t, strings.NewReader(in.Text()), &job)
			jobs = append(jobs, job)
		}
		for i := len(jobs) - 1; i >= 0; i-- {
			line := api.BatchLine{Index: &i, Key: jobs[i].Key}
			if len(jobs[i].Steps) == 0 {
				line.Error = &api.Error{Code: api.CodeInvalidArgument, Message: "steps: none given"}
			} else {
				line.Result = sampleResult(fmt.Sprint("r_", i))
			}
			ndjsonLine(t, w, line)
		}
		ndjsonLine(t, w, api.BatchLine{Summary: &api.BatchSummary{Total: len(jobs), Invalid: 1, Verdicts: map[string]int{"ok": 2}}})
	})
	jobs := []api.Job{
		{Key: json.RawMessage(`"a"`), Steps: []api.Step{{Argv: []string{"true"}}}},
		{Key: json.RawMessage(`"b"`)},
		{Key: json.RawMessage(`"c"`), Steps: []api.Step{{Argv: []string{"true"}}}},
	}
	var order []int
	sum, err := f.client().BatchJobs(context.Background(), jobs, 0, func(bl *api.BatchLine) error {
		if bl.Summary != nil {
			t.Error("fn got the summary")
		}
		order = append(order, *bl.Index)
		if (*bl.Index == 1) != (bl.Error != nil) {
			t.Errorf("line %d: error %v", *bl.Index, bl.Error)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 1, 0}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if sum.Total != 3 || sum.Invalid != 1 {
		t.Errorf("summary %+v", sum)
	}
}

func TestBatchFailed(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		ndjsonLine(t, w, api.BatchLine{Error: &api.Error{Code: api.CodeUnavailable, Message: "shutting down"}})
	})
	_, err := f.client().BatchJobs(context.Background(), []api.Job{{Steps: []api.Step{{Argv: []string{"true"}}}}}, 0, nil)
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != api.CodeUnavailable {
		t.Fatalf("batch error line: got %v", err)
	}
}

func TestBatchNoSummary(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		i := 0
		ndjsonLine(t, w, api.BatchLine{Index: &i, Result: sampleResult("r_0")})
	})
	n := 0
	_, err := f.client().Batch(context.Background(), strings.NewReader(`{"steps":[{"argv":["true"]}]}`), 0,
		func(*api.BatchLine) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "ended before the summary") || n != 1 {
		t.Fatalf("answer without summary: %d lines, error %v", n, err)
	}
}

func TestRunsGetCancel(t *testing.T) {
	f := newFakeDaemon(t)
	runs := api.RunList{Runs: []api.RunInfo{
		{ID: "r_a", CallerUID: 1000, State: api.StateRunning, AgeMS: 1500, Step: 0, Steps: 2},
		{ID: "r_b", CallerUID: 0, State: api.StateQueued, AgeMS: 10, Steps: 1},
	}}
	f.mux.HandleFunc("GET /v1/runs", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, runs) })
	f.mux.HandleFunc("GET /v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != "my job/1" {
			t.Errorf("get: id %q", id)
		}
		writeJSON(w, 200, api.RunInfo{ID: "my job/1", State: api.StateFinished, Steps: 1, Step: 1, Result: sampleResult("my job/1")})
	})
	var cancelled string
	f.mux.HandleFunc("DELETE /v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		cancelled = r.PathValue("id")
		w.WriteHeader(http.StatusNoContent)
	})
	c := f.client()
	ctx := context.Background()

	got, err := c.Runs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, runs.Runs) {
		t.Errorf("runs %+v", got)
	}
	info, err := c.Get(ctx, "my job/1")
	if err != nil {
		t.Fatal(err)
	}
	if info.State != api.StateFinished || info.Result == nil || info.Result.ID != "my job/1" {
		t.Errorf("get %+v", info)
	}
	if err := c.Cancel(ctx, "r_a"); err != nil {
		t.Fatal(err)
	}
	if cancelled != "r_a" {
		t.Errorf("cancel reached the daemon as %q", cancelled)
	}
	if err := c.Cancel(ctx, ""); err == nil {
		t.Error("cancel with no id: no error")
	}
}

func TestMetrics(t *testing.T) {
	f := newFakeDaemon(t)
	const text = "# TYPE sandboxd_runs_total counter\nsandboxd_runs_total 3\n"
	f.mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		io.WriteString(w, text)
	})
	got, err := f.client().Metrics(context.Background())
	if err != nil || got != text {
		t.Fatalf("metrics %q, %v", got, err)
	}
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		status     int
		retryAfter string
		body       string // "" = the API's error shape with code and msg
		code, msg  string
		want       string // Error()
	}{
		{400, "", "", api.CodeInvalidArgument, "steps[0].limits.memory_bytes: above the maximum 4294967296",
			"invalid_argument: steps[0].limits.memory_bytes: above the maximum 4294967296 (HTTP 400)"},
		{403, "", "", api.CodePermissionDenied, "uid 1001 may not use sandboxd", "permission_denied: uid 1001 may not use sandboxd (HTTP 403)"},
		{404, "", "", api.CodeNotFound, "no run r_x", "not_found: no run r_x (HTTP 404)"},
		{409, "", "", api.CodeConflict, "id job-1 in use", "conflict: id job-1 in use (HTTP 409)"},
		{429, "1", "", api.CodeResourceExhausted, "queue full", "resource_exhausted: queue full (HTTP 429, retry after 1s)"},
		{503, "", "", api.CodeUnavailable, "no cgroup v2 memory controller", "unavailable: no cgroup v2 memory controller (HTTP 503)"},
		{500, "", "", api.CodeInternal, "boom", "internal: boom (HTTP 500)"},
		{502, "", "<html>Bad Gateway</html>", "http_502", "",
			`http_502: the daemon's answer is not a JSON error: "<html>Bad Gateway</html>" (HTTP 502)`},
		{500, "", `{"message":"not our shape"}`, api.CodeInternal, "",
			`internal: the daemon's answer is not a JSON error: "{\"message\":\"not our shape\"}" (HTTP 500)`},
		{404, "", " ", api.CodeNotFound, "", "not_found: the daemon's answer has no body (HTTP 404)"},
	} {
		t.Run(fmt.Sprint(tc.status), func(t *testing.T) {
			f := newFakeDaemon(t)
			f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if tc.retryAfter != "" {
					w.Header().Set("Retry-After", tc.retryAfter)
				}
				if tc.body != "" {
					w.WriteHeader(tc.status)
					io.WriteString(w, tc.body)
					return
				}
				writeError(w, tc.status, tc.code, tc.msg)
			})
			_, err := f.client().Run(context.Background(), sampleJob())
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != tc.want {
				t.Errorf("Error()\n got %q\nwant %q", err.Error(), tc.want)
			}
			var se *StatusError
			if !errors.As(err, &se) {
				t.Fatalf("%T is not a *StatusError", err)
			}
			if se.HTTPStatus != tc.status {
				t.Errorf("status %d", se.HTTPStatus)
			}
			if tc.retryAfter != "" && se.RetryAfter != time.Second {
				t.Errorf("retry after %v", se.RetryAfter)
			}
			var apiErr *api.Error
			if !errors.As(err, &apiErr) || apiErr.Code != tc.code {
				t.Errorf("api error %+v, want code %s", apiErr, tc.code)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":                              0,
		"3":                             3 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"Thu, 02 Jan 2025 03:04:15 GMT": 10 * time.Second,
		"Thu, 02 Jan 2025 03:04:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMissingSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	err := New(socket).Ping(context.Background())
	var ue *UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("missing socket: %T %v, want *UnreachableError", err, err)
	}
	want := "cannot reach sandboxd at " + socket + ": connect: no such file or directory (is the daemon running? set --socket or SANDBOXD_SOCKET)"
	if err.Error() != want {
		t.Errorf("missing socket:\n got %q\nwant %q", err.Error(), want)
	}
	// Every call says the same, not only Ping.
	if _, err := New(socket).Run(context.Background(), sampleJob()); !errors.As(err, &ue) {
		t.Errorf("run on a missing socket: %v", err)
	}
}

// TestRunKeyNotJSON: a key set as raw bytes that are not JSON is refused
// before anything is sent, with a message that says how to set one.
func TestRunKeyNotJSON(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("/v1/run", func(w http.ResponseWriter, r *http.Request) {
		t.Error("a job with a bad key reached the daemon")
	})
	job := sampleJob()
	job.Key = []byte("abc")
	_, err := f.client().Run(context.Background(), job)
	if err == nil || !strings.Contains(err.Error(), `key: "abc" is not JSON`) || !strings.Contains(err.Error(), "api.KeyOf") {
		t.Errorf("Run with Key []byte(\"abc\"): %v", err)
	}
	_, err = f.client().BatchJobs(context.Background(), []api.Job{*sampleJob(), *job}, 1, nil)
	if err == nil || !strings.Contains(err.Error(), "job 1: key:") {
		t.Errorf("BatchJobs with a bad key: %v", err)
	}
}
