package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// fakeDaemon is an HTTP server on a Unix socket in a temp dir, standing in
// for sandboxd. Tests add handlers to mux; requests counts what arrived.
type fakeDaemon struct {
	socket   string
	mux      *http.ServeMux
	requests atomic.Int32
}

func newFakeDaemon(t *testing.T) *fakeDaemon {
	t.Helper()
	f := &fakeDaemon{socket: filepath.Join(t.TempDir(), "d.sock"), mux: http.NewServeMux()}
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		f.mux.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return f
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// sandboxctl runs the command against f with the given args (after
// --socket) and stdin.
func (f *fakeDaemon) sandboxctl(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(append([]string{"--socket", f.socket}, args...), strings.NewReader(stdin), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func ndjsonLine(w http.ResponseWriter, v any) {
	b, _ := json.Marshal(v)
	w.Write(append(b, '\n'))
	w.(http.Flusher).Flush()
}

func decodeJob(t *testing.T, r io.Reader) api.Job {
	t.Helper()
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	var job api.Job
	if err := dec.Decode(&job); err != nil {
		t.Errorf("job: %v", err)
	}
	return job
}

func okResult(id, stdout, stderr string) *api.Result {
	return &api.Result{
		ID: id, Status: api.StatusCompleted,
		Steps: []api.StepResult{{
			Verdict: api.VerdictOK, Stdout: stdout, Stderr: stderr,
			CPUTimeMS: 11.8, UserTimeMS: 9.9, SysTimeMS: 1.9, WallTimeMS: 14.2,
			MemoryPeakBytes: 9 << 20, PIDsPeak: 1,
		}},
	}
}

func TestRunPlain(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.Header.Get("Accept"), "ndjson") {
			t.Error("a plain run asked for a stream")
		}
		job := decodeJob(t, r.Body)
		want := "hello\n"
		wantJob := api.Job{
			Profile: "fast",
			Steps: []api.Step{{
				Argv:           []string{"python3", "-c", "print(input())"},
				Env:            map[string]string{"A": "1", "B": "x=y"},
				Stdin:          "hello\n",
				ExpectedStdout: &want,
				Limits: api.Limits{CPUTimeMS: 1000, WallTimeMS: 2000, MemoryBytes: 64 << 20, PIDs: 8,
					OutputBytes: 4096, FileSizeBytes: 8192, OpenFiles: 32, StackBytes: 8 << 20},
			}},
		}
		if !reflect.DeepEqual(job, wantJob) {
			t.Errorf("job\n got %+v\nwant %+v", job, wantJob)
		}
		res := okResult("r_1", "hello\n", "a warning")
		match := true
		res.Steps[0].StdoutMatches = &match
		writeJSON(w, 200, res)
	})
	stdin := filepath.Join(t.TempDir(), "in.txt")
	os.WriteFile(stdin, []byte("hello\n"), 0o644)
	r := f.sandboxctl(t, "", "run",
		"--cpu-time-ms", "1000", "--wall-time-ms=2000", "--memory-bytes", fmt.Sprint(64<<20), "--pids", "8",
		"--output-bytes", "4096", "--file-size-bytes", "8192", "--open-files", "32", "--stack-bytes", fmt.Sprint(8<<20),
		"--env", "A=1", "--env", "B=x=y", "--stdin", stdin, "--expected-stdout", "hello\n", "--profile", "fast",
		"--", "python3", "-c", "print(input())")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"job:", "r_1", "verdict:", "ok", "exit:", "code 0", "cpu:", "11.8 ms", "wall:", "14.2 ms",
		"memory peak:", "9.0 MiB", "pids:", "stdout matches:", "yes",
		"--- stdout ---\nhello\n--- stderr ---\na warning\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestRunNotOK(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		res := okResult("r_2", "", "")
		res.Steps[0].Verdict = api.VerdictSignaled
		res.Steps[0].Signal = "SIGSEGV"
		writeJSON(w, 200, res)
	})
	r := f.sandboxctl(t, "", "run", "./crash")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1; stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"signaled", "signal SIGSEGV", "--- stdout (empty) ---"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
}

func TestRunJSON(t *testing.T) {
	f := newFakeDaemon(t)
	res := okResult("r_3", "out\n", "")
	res.Steps[0].Verdict = api.VerdictCPUTimeLimit
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, res) })
	r := f.sandboxctl(t, "", "run", "--json", "--", "spin")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1", r.code)
	}
	var got api.Result
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout is not a Result: %v\n%s", err, r.stdout)
	}
	if !reflect.DeepEqual(&got, res) {
		t.Errorf("result %+v", got)
	}
	if !strings.Contains(r.stdout, "\n  \"status\": \"completed\"") {
		t.Errorf("not indented:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "step 1: cpu_time_limit") {
		t.Errorf("stderr does not say the verdict: %q", r.stderr)
	}
}

func TestRunStream(t *testing.T) {
	f := newFakeDaemon(t)
	step := 0
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/x-ndjson" {
			t.Errorf("Accept %q", r.Header.Get("Accept"))
		}
		decodeJob(t, r.Body)
		ndjsonLine(w, api.Event{Event: api.EventStarted, ID: "r_4"})
		ndjsonLine(w, api.Event{Event: api.EventStdout, Step: &step, Data: "line 1\n"})
		ndjsonLine(w, api.Event{Event: api.EventStderr, Step: &step, Data: "oops\n"})
		ndjsonLine(w, api.Event{Event: api.EventStdout, Step: &step, Data: "line 2\n"})
		res := okResult("r_4", "line 1\nline 2\n", "oops\n")
		sr, _ := json.Marshal(res.Steps[0])
		ndjsonLine(w, api.Event{Event: api.EventStepFinished, Step: &step, Result: sr})
		rr, _ := json.Marshal(res)
		ndjsonLine(w, api.Event{Event: api.EventFinished, Result: rr})
	})
	r := f.sandboxctl(t, "", "run", "--stream", "--", "prog")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if r.stdout != "line 1\nline 2\n" {
		t.Errorf("stdout %q: want the program's output only", r.stdout)
	}
	if !strings.HasPrefix(r.stderr, "oops\n---\n") || !strings.Contains(r.stderr, "verdict:") {
		t.Errorf("stderr %q: want the program's stderr, then the result", r.stderr)
	}

	// With --json, every event is a line.
	r = f.sandboxctl(t, "", "run", "--stream", "--json", "--", "prog")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev api.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		names = append(names, ev.Event)
	}
	if want := []string{"started", "stdout", "stderr", "stdout", "step_finished", "finished"}; !reflect.DeepEqual(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}
}

func TestRunStreamError(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		ndjsonLine(w, api.Event{Event: api.EventStarted, ID: "r_5"})
		ndjsonLine(w, api.Event{Event: api.EventError, Error: &api.Error{Code: api.CodeInternal, Message: "cgroup vanished"}})
	})
	r := f.sandboxctl(t, "", "run", "--stream", "--", "prog")
	if r.code != 3 || !strings.Contains(r.stderr, "internal: cgroup vanished") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRunFiles(t *testing.T) {
	dir := t.TempDir()
	binary := []byte{0x7f, 'E', 'L', 'F', 0, 0xff, 0xfe, '\n', 0x80}
	tool := filepath.Join(dir, "tool")
	os.WriteFile(tool, binary, 0o700)
	data := filepath.Join(dir, "data.txt")
	os.WriteFile(data, []byte("1 2 3\n"), 0o600)

	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		job := decodeJob(t, r.Body)
		if len(job.Files) != 3 {
			t.Errorf("files %+v", job.Files)
		}
		got, err := base64.StdEncoding.DecodeString(job.Files["bin/tool"].Base64)
		if err != nil || !bytes.Equal(got, binary) || job.Files["bin/tool"].Mode != "0755" {
			t.Errorf("bin/tool: %+v (%v)", job.Files["bin/tool"], err)
		}
		got, err = base64.StdEncoding.DecodeString(job.Files["data.txt"].Base64)
		if err != nil || string(got) != "1 2 3\n" || job.Files["data.txt"].Mode != "0644" {
			t.Errorf("data.txt: %+v (%v)", job.Files["data.txt"], err)
		}
		if f := job.Files["main.py"]; f.Content != "print('hi')" || f.Base64 != "" {
			t.Errorf("main.py: %+v", f)
		}
		if job.Steps[0].StdinBase64 != base64.StdEncoding.EncodeToString([]byte{0xff, 0}) {
			t.Errorf("binary stdin: %+v", job.Steps[0])
		}
		writeJSON(w, 200, okResult("r_6", "", ""))
	})
	r := f.sandboxctl(t, "\xff\x00", "run", "--file", "bin/tool=@"+tool, "--file", "data.txt=@"+data,
		"--file", "main.py=print('hi')", "--stdin", "-", "--", "./bin/tool")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestRunBadUsage(t *testing.T) {
	f := newFakeDaemon(t)
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"--pids", "-1", "--", "x"}, "--pids: must be at least 1"},
		{[]string{"--memory-bytes", "1GiB", "--", "x"}, "--memory-bytes: not a whole number"},
		{[]string{"--cpu-time", "5", "--", "x"}, "not defined: --cpu-time"},
		{[]string{"--file", "noequals", "--", "x"}, `--file: "noequals" is not NAME=@PATH or NAME=TEXT`},
		{[]string{"--file", "a=@/does/not/exist", "--", "x"}, "--file: stat /does/not/exist"},
		{[]string{"--file", "a=1", "--file", "a=2", "--", "x"}, "--file: a given twice"},
		{[]string{"--env", "=v", "--", "x"}, `--env: "=v" is not K=V`},
		{[]string{"--stdin", "/does/not/exist", "--", "x"}, "--stdin: open /does/not/exist"},
		{[]string{"--json"}, "no command given"},
		{[]string{"--wall-time-ms"}, "needs an argument: --wall-time-ms"},
		{[]string{"--cpus", "0", "--", "x"}, "--cpus: must be above 0 (leave it out for the profile's default)"},
		{[]string{"--cpus", "-0.5", "--", "x"}, "--cpus: must be above 0"},
		{[]string{"--cpus", "NaN", "--", "x"}, "--cpus: not a number of CPUs"},
		{[]string{"--cpus", "two", "--", "x"}, "--cpus: not a number of CPUs"},
	} {
		r := f.sandboxctl(t, "", append([]string{"run"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("bad usage reached the daemon %d times", n)
	}
}

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout (0) or stderr
	}{
		{nil, 2, "usage: sandboxctl"},
		{[]string{"-h"}, 0, "usage: sandboxctl"},
		{[]string{"help"}, 0, "commands:"},
		{[]string{"launch"}, 2, `unknown command "launch"`},
		{[]string{"--sock", "x", "ps"}, 2, "not defined: --sock"},
		{[]string{"run", "-h"}, 0, "--memory-bytes N"},
		{[]string{"cancel"}, 2, "want exactly one job ID"},
		{[]string{"ps", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"batch"}, 2, "want one FILE.jsonl"},
		{[]string{"batch", "--concurrency", "-2", "x.jsonl"}, 2, "--concurrency: must be 0"},
		{[]string{"batch", "/does/not/exist.jsonl"}, 2, "open /does/not/exist.jsonl"},
		{[]string{"batch", "--shard", "4/4", "x.jsonl"}, 2, `batch: --shard: "4/4": I must be from 0 to N-1 (3)`},
		{[]string{"batch", "--shard", "0/0", "x.jsonl"}, 2, `--shard: "0/0": N must be at least 1`},
		{[]string{"batch", "--shard=", "x.jsonl"}, 2, `--shard: "" is not I/N`},
		{[]string{"batch", "--shard", "1of4", "-"}, 2, `--shard: "1of4" is not I/N`},
	} {
		var out, errOut bytes.Buffer
		code := run(tc.args, strings.NewReader(""), &out, &errOut)
		text := errOut.String()
		if tc.code == 0 {
			text = out.String()
		}
		if code != tc.code || !strings.Contains(text, tc.out) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.out)
		}
	}
}

func TestDaemonErrors(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 400, api.ErrorBody{Error: &api.Error{Code: api.CodeInvalidArgument, Message: "steps[0].limits.memory_bytes: above the maximum 4294967296"}})
	})
	f.mux.HandleFunc("DELETE /v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, api.ErrorBody{Error: &api.Error{Code: api.CodeNotFound, Message: "run \"nope\": no such job"}})
	})
	r := f.sandboxctl(t, "", "run", "--memory-bytes", "99999999999", "--", "x")
	if r.code != 3 || r.stderr != "sandboxctl: invalid_argument: steps[0].limits.memory_bytes: above the maximum 4294967296 (HTTP 400)\n"+
		"sandboxctl: that limit is --memory-bytes\n" {
		t.Errorf("run: exit %d, stderr %q", r.code, r.stderr)
	}
	r = f.sandboxctl(t, "", "run", "--cpu-time-ms", "5", "--", "x")
	if strings.Count(r.stderr, "that limit is") != 1 {
		t.Errorf("run: stderr %q", r.stderr)
	}
	r = f.sandboxctl(t, `{"steps":[{"argv":["x"],"limits":{"memory_bytes":99999999999}}]}`, "run", "--job", "-")
	if r.code != 3 || strings.Contains(r.stderr, "that limit is") {
		t.Errorf("run --job: exit %d, stderr %q: no flag to name", r.code, r.stderr)
	}
	r = f.sandboxctl(t, "", "cancel", "nope")
	if r.code != 3 || !strings.Contains(r.stderr, `not_found: run "nope": no such job (HTTP 404)`) || r.stdout != "" {
		t.Errorf("cancel: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestDaemonDown(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "gone.sock")
	for _, args := range [][]string{{"ping"}, {"ps"}, {"info"}, {"run", "true"}, {"cancel", "r_1"}, {"batch", "-"}} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"--socket", socket}, args...), strings.NewReader("{}\n"), &out, &errOut)
		want := "sandboxctl: cannot reach sandboxd at " + socket + ": connect: no such file or directory (is the daemon running? set --socket or SANDBOXD_SOCKET)\n"
		if code != 3 || !strings.HasSuffix(errOut.String(), want) {
			t.Errorf("%v: exit %d, stderr %q; want 3 and %q", args, code, errOut.String(), want)
		}
	}
	// SANDBOXD_SOCKET chooses the daemon when --socket does not.
	t.Setenv("SANDBOXD_SOCKET", socket)
	var out, errOut bytes.Buffer
	if code := run([]string{"ping"}, nil, &out, &errOut); code != 3 || !strings.Contains(errOut.String(), socket) {
		t.Errorf("ping with SANDBOXD_SOCKET: exit %d, stderr %q", code, errOut.String())
	}
}

// batchDaemon answers a batch in reverse order of the jobs (completion
// order is not request order), refusing jobs without steps.
func batchDaemon(t *testing.T, wantConcurrency string) *fakeDaemon {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("concurrency"); got != wantConcurrency {
			t.Errorf("concurrency %q, want %q", got, wantConcurrency)
		}
		if r.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		var jobs []api.Job
		in := bufio.NewScanner(r.Body)
		for in.Scan() {
			if strings.TrimSpace(in.Text()) != "" {
				jobs = append(jobs, decodeJob(t, strings.NewReader(in.Text())))
			}
		}
		sum := &api.BatchSummary{Total: len(jobs), Statuses: map[string]int{}, Verdicts: map[string]int{}, WallMS: 1500}
		for i := len(jobs) - 1; i >= 0; i-- {
			line := api.BatchLine{Index: &i, Key: jobs[i].Key}
			switch {
			case len(jobs[i].Steps) == 0:
				line.Error = &api.Error{Code: api.CodeInvalidArgument, Message: "steps: none given"}
				sum.Invalid++
			case jobs[i].Steps[0].Argv[0] == "false":
				line.Result = okResult(fmt.Sprint("r_", i), "", "")
				line.Result.Steps[0].Verdict = api.VerdictNonzeroExit
				line.Result.Steps[0].ExitCode = 1
			default:
				line.Result = okResult(fmt.Sprint("r_", i), "", "")
			}
			if line.Result != nil {
				sum.Statuses[line.Result.Status]++
				sum.Verdicts[string(line.Result.Steps[0].Verdict)]++
			}
			ndjsonLine(w, line)
			time.Sleep(5 * time.Millisecond)
		}
		ndjsonLine(w, api.BatchLine{Summary: sum})
	})
	return f
}

func TestBatchFile(t *testing.T) {
	f := batchDaemon(t, "2")
	file := filepath.Join(t.TempDir(), "jobs.jsonl")
	os.WriteFile(file, []byte(`{"key":"a","steps":[{"argv":["true"]}]}

{"key":"b","steps":[{"argv":["false"]}]}
{"key":"c"}
{"key":"d","steps":[{"argv":["true"]}]}
`), 0o644)
	r := f.sandboxctl(t, "", "batch", "--concurrency", "2", file)
	if r.code != 1 {
		t.Fatalf("exit %d, want 1 (a job failed); stderr %q", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("%d lines, want 4 jobs and the summary:\n%s", len(lines), r.stdout)
	}
	var keys []string
	for _, line := range lines[:4] {
		var bl api.BatchLine
		if err := json.Unmarshal([]byte(line), &bl); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, string(bl.Key))
	}
	if want := []string{`"d"`, `"c"`, `"b"`, `"a"`}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v: want completion order %v", keys, want)
	}
	var last api.BatchLine
	if err := json.Unmarshal([]byte(lines[4]), &last); err != nil || last.Summary == nil || last.Summary.Total != 4 {
		t.Errorf("last line %q is not the summary", lines[4])
	}
	if want := "batch: 4 jobs in 1.5s (2.7 jobs/s): ok 2 nonzero_exit 1 invalid 1\n"; !strings.HasSuffix(r.stderr, want) {
		t.Errorf("stderr %q, want it to end with %q", r.stderr, want)
	}
}

func TestBatchStdin(t *testing.T) {
	f := batchDaemon(t, "")
	r := f.sandboxctl(t, `{"steps":[{"argv":["true"]}]}`+"\n"+`{"steps":[{"argv":["true"]}]}`, "batch", "-")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if n := strings.Count(r.stdout, "\n"); n != 3 {
		t.Errorf("%d lines, want 3:\n%s", n, r.stdout)
	}
	if !strings.HasSuffix(r.stderr, "batch: 2 jobs in 1.5s (1.3 jobs/s): ok 2\n") {
		t.Errorf("stderr %q", r.stderr)
	}
}

// TestBatchPlainProgress checks the progress lines printed when stderr is
// not a terminal.
func TestBatchPlainProgress(t *testing.T) {
	defer func(d time.Duration) { plainEvery = d }(plainEvery)
	plainEvery = 5 * time.Millisecond
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		for i := range 3 {
			ndjsonLine(w, api.BatchLine{Index: &i, Result: okResult("r", "", "")})
			time.Sleep(50 * time.Millisecond)
		}
		ndjsonLine(w, api.BatchLine{Summary: &api.BatchSummary{Total: 3, Verdicts: map[string]int{"ok": 3}, WallMS: 150}})
	})
	file := filepath.Join(t.TempDir(), "jobs.jsonl")
	os.WriteFile(file, bytes.Repeat([]byte(`{"steps":[{"argv":["true"]}]}`+"\n"), 3), 0o644)
	r := f.sandboxctl(t, "", "batch", file)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"batch: 1/3 done, ", " jobs/s, eta ", ": ok 1\n", "batch: 2/3 done, ", "batch: 3 jobs in 150ms (20.0 jobs/s): ok 3\n"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "\r") || strings.Contains(r.stderr, "\x1b") {
		t.Errorf("terminal control characters on a stderr that is not a terminal:\n%q", r.stderr)
	}
}

// TestProgressBar drives the bar into a buffer, as it would a terminal.
func TestProgressBar(t *testing.T) {
	var buf lockedBuffer
	p := newProgress(&buf, 3, true, false)
	p.jobDone("ok")
	p.jobDone("cpu_time_limit")
	p.jobDone("ok")
	p.stop(&api.BatchSummary{Total: 3, Verdicts: map[string]int{"ok": 2, "cpu_time_limit": 1}, WallMS: 300})
	out := buf.String()
	for _, want := range []string{"3/3", "jobs/s", "ok 2 cpu_time_limit 1", "batch: 3 jobs in 300ms (10.0 jobs/s): ok 2 cpu_time_limit 1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("bar output lacks %q:\n%q", want, out)
		}
	}

	// No total known: a count and a rate, no ETA.
	buf = lockedBuffer{}
	p = newProgress(&buf, -1, true, false)
	p.jobDone("ok")
	p.stop(nil)
	if out := buf.String(); !strings.Contains(out, "1/-") || !strings.Contains(out, "batch: stopped: 1 done") {
		t.Errorf("bar without total:\n%q", out)
	}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestCountJobs(t *testing.T) {
	for in, want := range map[string]int{
		"":                         0,
		"{\"steps\":[]}\n":         1,
		"{}\n\n  \n{}\n{}":         3,
		"{\"jobs\":[{}, {}]}\n":    -1,
		"{\n  \"jobs\": [\n{}]}\n": -1,
	} {
		if got, err := countJobs(strings.NewReader(in)); err != nil || got != want {
			t.Errorf("countJobs(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

func TestPs(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("GET /v1/runs", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"runs":[{"id":"r_a","caller_uid":1000,"state":"running","age_ms":1530,"step":0,"steps":2,"extra":1},`+
			`{"id":"grader-17","caller_uid":0,"state":"queued","age_ms":12,"step":0,"steps":3}]}`)
	})
	r := f.sandboxctl(t, "", "ps")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	want := "ID         UID   STATE    STEP  AGE\n" +
		"r_a        1000  running  1/2   1.5s\n" +
		"grader-17  0     queued   0/3   12ms\n"
	if r.stdout != want {
		t.Errorf("ps:\n%s\nwant:\n%s", r.stdout, want)
	}
	r = f.sandboxctl(t, "", "ps", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"extra": 1`) || !strings.Contains(r.stdout, "\n  \"runs\": [") {
		t.Errorf("ps --json: want the daemon's JSON as it came, indented:\n%s", r.stdout)
	}
}

func TestCancel(t *testing.T) {
	f := newFakeDaemon(t)
	var got string
	f.mux.HandleFunc("DELETE /v1/runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		got = r.PathValue("id")
		writeJSON(w, 200, api.RunInfo{ID: got, State: api.StateRunning})
	})
	r := f.sandboxctl(t, "", "cancel", "r_x")
	if r.code != 0 || r.stdout != "cancelled r_x\n" || got != "r_x" {
		t.Errorf("cancel: exit %d, stdout %q, daemon saw %q", r.code, r.stdout, got)
	}
}

func TestInfo(t *testing.T) {
	f := newFakeDaemon(t)
	info := api.Info{
		Version: "0.3.0", Kernel: "6.1.0-18-amd64",
		Cgroup:   api.CgroupInfo{Mode: "hybrid", Controllers: []string{"cpuacct", "memory", "pids"}},
		Features: map[string]bool{"user_ns": true, "seccomp": true, "memory_peak": false},
		Profiles: []api.ProfileInfo{{
			Name:     "default",
			Defaults: api.Limits{CPUTimeMS: 10000, MemoryBytes: 512 << 20, PIDs: 64},
			Max:      api.Limits{CPUTimeMS: 60000, MemoryBytes: 4 << 30, PIDs: 1024},
		}, {Name: "c"}, {Name: "go"}},
		Languages: []api.LanguageInfo{{Profile: "c", Language: "c", Version: "12.2.0", Available: true},
			{Profile: "go", Language: "go", Reason: "/usr/lib/go/bin/go: not found on the host"}},
		Pool: api.PoolInfo{Concurrency: 4, QueueSize: 256, Running: 1, Queued: 2},
	}
	f.mux.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, info) })
	r := f.sandboxctl(t, "", "info")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"version:", "0.3.0", "6.1.0-18-amd64", "hybrid, controllers: cpuacct memory pids",
		"features:  seccomp user_ns", "missing:   memory_peak",
		"1 running, 2 queued; concurrency 4, queue size 256",
		"profile default:\n  limit            default   maximum\n  cpu_time_ms      10000 ms  60000 ms\n  wall_time_ms     -         -\n  memory_bytes     512 MiB   4 GiB\n  pids             64        1024\n",
		"profile c:\n  language: c 12.2.0\n", "profile go:\n  language: go, unavailable: /usr/lib/go/bin/go: not found on the host\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("info lacks %q:\n%s", want, r.stdout)
		}
	}
	r = f.sandboxctl(t, "", "info", "--json")
	var got api.Info
	if err := json.Unmarshal([]byte(r.stdout), &got); r.code != 0 || err != nil || !reflect.DeepEqual(got, info) {
		t.Errorf("info --json: exit %d, %v:\n%s", r.code, err, r.stdout)
	}
}

func TestPing(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "OK") })
	if r := f.sandboxctl(t, "", "ping"); r.code != 0 || r.stdout != "OK\n" {
		t.Errorf("ping: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

func TestVersionAndExitStatuses(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, strings.NewReader(""), &out, &errOut); code != 0 || out.String() != "sandboxctl "+version+"\n" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	run([]string{"-h"}, strings.NewReader(""), &out, &errOut)
	if !strings.Contains(out.String(), "130 interrupted") {
		t.Errorf("usage does not list exit status 130:\n%s", out.String())
	}
}

func TestRunTrack(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		job := decodeJob(t, r.Body)
		if !reflect.DeepEqual(job.TrackedFiles, []string{"out.txt", "gone.txt"}) {
			t.Errorf("tracked files %q", job.TrackedFiles)
		}
		res := okResult("r_7", "", "")
		res.Files = map[string]*api.TrackedFile{"out.txt": {Content: "42\n"}, "gone.txt": nil}
		writeJSON(w, 200, res)
	})
	r := f.sandboxctl(t, "", "run", "--track", "out.txt", "--track", "gone.txt", "--", "sh", "-c", "echo 42 > out.txt")
	if r.code != 0 || !strings.Contains(r.stdout, "--- file out.txt ---\n42\n") || !strings.Contains(r.stdout, "--- file gone.txt: missing ---") {
		t.Errorf("exit %d, stdout:\n%s\nstderr %q", r.code, r.stdout, r.stderr)
	}
	r = f.sandboxctl(t, "", "run", "--json", "--track", "out.txt", "--track", "gone.txt", "--", "true")
	var res api.Result
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || res.Files["out.txt"] == nil || res.Files["out.txt"].Content != "42\n" {
		t.Errorf("--json: exit %d, %v, stdout:\n%s", r.code, err, r.stdout)
	}
}

// TestRunJob: --job sends a job file as it is, steps and all.
func TestRunJob(t *testing.T) {
	jobJSON := `{"files": {"main.c": "int main(){return 0;}"},
 "steps": [{"argv": ["gcc", "-o", "main", "main.c"]}, {"argv": ["./main"], "limits": {"cpu_time_ms": 1000}}]}
`
	path := filepath.Join(t.TempDir(), "job.json")
	os.WriteFile(path, []byte(jobJSON), 0o644)
	f := newFakeDaemon(t)
	var bodies []string
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		res := okResult("r_8", "", "")
		res.Steps = append(res.Steps, res.Steps[0])
		if strings.Contains(r.Header.Get("Accept"), "ndjson") {
			raw, _ := json.Marshal(res)
			ndjsonLine(w, api.Event{Event: api.EventFinished, ID: "r_8", Result: raw})
			return
		}
		writeJSON(w, 200, res)
	})
	for _, args := range [][]string{{"run", "--job", path}, {"run", "--job", "-"}, {"run", "--stream", "--job", path}} {
		r := f.sandboxctl(t, jobJSON, args...)
		if r.code != 0 || !strings.Contains(r.stdout+r.stderr, "step 2 of 2") {
			t.Errorf("%q: exit %d, stdout:\n%s\nstderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	for i, b := range bodies {
		if b != jobJSON {
			t.Errorf("request %d: body %q, want the file as it is", i, b)
		}
	}
	if len(bodies) != 3 {
		t.Errorf("%d requests, want 3", len(bodies))
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--job", path, "--", "true"}, "--job: the job file gives the steps; no ARGV with it"},
		{[]string{"--job", path, "--cpu-time-ms", "5"}, "--job: the job file gives the whole job; --cpu-time-ms cannot be added"},
		{[]string{"--job", path, "--track", "x"}, "--job: the job file gives the whole job; --track cannot be added"},
		{[]string{"--job", "/does/not/exist.json"}, "--job: open /does/not/exist.json"},
		{[]string{"--cpu-time-ms", "0", "--", "x"}, "--cpu-time-ms: must be at least 1 (leave it out for the profile's default)"},
	} {
		r := f.sandboxctl(t, "", append([]string{"run"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("run %q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if len(bodies) != 3 {
		t.Errorf("bad usage reached the daemon")
	}
}
