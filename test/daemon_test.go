package test

import (
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// testDaemon is a real `sandboxd serve` on a socket of its own, with its
// own state dir and cgroup subtree.
type testDaemon struct {
	t        testing.TB
	cmd      *osexec.Cmd
	socket   string
	stateDir string
	subtree  string
	cfgHead  string // the config file's lines before hostcheck.Config's and the test's
	log      *syncBuffer
	logTo    *os.File             // if set, the daemon's stderr instead of log
	attr     *syscall.SysProcAttr // if set, how the daemon is started
	c        *client.Client
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startDaemon starts sandboxd serve with the given extra config lines.
func startDaemon(t testing.TB, config string) *testDaemon {
	t.Helper()
	return startDaemonLogging(t, config, nil)
}

// startDaemonLogging is startDaemon with the daemon's stderr going to
// logTo; nil is the test's buffer (testDaemon.log).
func startDaemonLogging(t testing.TB, config string, logTo *os.File) *testDaemon {
	t.Helper()
	stateDir, err := os.MkdirTemp("", "sandboxd-state-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(stateDir, 0o755)
	d := &testDaemon{t: t, stateDir: stateDir, socket: filepath.Join(stateDir, "sandboxd.sock"),
		subtree: testSubtree, log: &syncBuffer{}}
	d.cfgHead = fmt.Sprintf("state_dir = %q\ncgroup_subtree = %q\nlog_format = \"json\"\n", stateDir, d.subtree)
	d.writeConfig(config)
	d.logTo = logTo
	d.start(d.configPath())
	t.Cleanup(func() {
		d.stop()
		d.assertClean()
		os.RemoveAll(stateDir)
	})
	return d
}

func (d *testDaemon) configPath() string { return filepath.Join(d.stateDir, "config.toml") }

// writeConfig writes the daemon's config file with the given extra lines,
// as startDaemon does.
func (d *testDaemon) writeConfig(config string) {
	d.t.Helper()
	if err := os.WriteFile(d.configPath(), []byte(d.cfgHead+hostcheck.Config(config)+"\n"), 0o644); err != nil {
		d.t.Fatal(err)
	}
}

func (d *testDaemon) start(cfgPath string) {
	d.t.Helper()
	d.cmd = osexec.Command(sandboxdBin, "serve", "--socket", d.socket, "--config", cfgPath)
	d.cmd.SysProcAttr = d.attr
	d.cmd.Stderr = d.log
	if d.logTo != nil {
		d.cmd.Stderr = d.logTo
	}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.c = client.New(d.socket)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.c.Ping(context.Background())
		var se *client.StatusError
		if err == nil || errors.As(err, &se) && se.HTTPStatus == http.StatusForbidden {
			return
		} else if time.Now().After(deadline) {
			d.t.Fatalf("daemon did not answer: %v\nlog:\n%s", err, d.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (d *testDaemon) stop() {
	if d.cmd == nil || d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			d.t.Errorf("daemon exit after SIGTERM: %v\nlog:\n%s", err, d.log)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		d.t.Errorf("daemon did not exit within 30 s of SIGTERM")
	}
}

// assertClean checks that nothing of the daemon's jobs is left: processes,
// cgroups, workspaces and their mounts, the socket.
func (d *testDaemon) assertClean() {
	d.t.Helper()
	if procs := sandboxProcesses(); len(procs) > 0 {
		d.t.Errorf("processes left under sandbox uids: %v", procs)
	}
	if groups := subtreeGroups(d.subtree); len(groups) > 0 {
		d.t.Errorf("cgroups left: %v", groups)
	}
	if ws, _ := os.ReadDir(filepath.Join(d.stateDir, "ws")); len(ws) > 0 {
		d.t.Errorf("workspaces left: %d", len(ws))
	}
	if mi, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(mi), d.stateDir+"/ws/") {
		d.t.Errorf("workspace mounts left in the host")
	}
	if d.cmd.ProcessState != nil {
		if _, err := os.Stat(d.socket); err == nil {
			d.t.Errorf("socket %s left after exit", d.socket)
		}
		// The workspaces' own tmpfs too.
		if n := countMounts(d.stateDir + "/"); n > 0 {
			d.t.Errorf("%d mounts left under the state dir after exit", n)
		}
	}
}

// subtreeGroups lists every run cgroup under the subtree in every
// hierarchy, warm sandboxes' included: what a stopped daemon must not leave.
func subtreeGroups(subtree string) []string { return hostcheck.AllGroups(subtree) }

// strayGroups lists the run cgroups under the subtree but a running
// daemon's warm sandboxes'.
func strayGroups(subtree string) []string { return hostcheck.StrayGroups(subtree) }

func job(argv ...string) *api.Job {
	return &api.Job{Steps: []api.Step{{Argv: argv}}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDaemonVerdicts(t *testing.T) {
	d := startDaemon(t, "")
	progs := map[string]string{}
	for _, p := range []string{"segv", "abort", "spin", "alloc", "syscalls"} {
		b, _ := os.ReadFile(filepath.Join(programsDir, p))
		progs[p] = string(b)
	}
	bin := func(name string) map[string]api.File {
		return map[string]api.File{name: {Base64: b64(progs[name]), Mode: "0755"}}
	}
	for _, tc := range []struct {
		name  string
		job   api.Job
		want  api.Verdict
		check func(t *testing.T, s api.StepResult)
	}{
		{"ok", api.Job{Steps: []api.Step{{Argv: []string{"echo", "hi"}}}}, api.VerdictOK, func(t *testing.T, s api.StepResult) {
			if s.Stdout != "hi\n" {
				t.Errorf("stdout %q", s.Stdout)
			}
		}},
		{"nonzero_exit", api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", "exit 7"}}}}, api.VerdictNonzeroExit, func(t *testing.T, s api.StepResult) {
			if s.ExitCode != 7 {
				t.Errorf("exit %d", s.ExitCode)
			}
		}},
		{"signaled", api.Job{Files: bin("segv"), Steps: []api.Step{{Argv: []string{"./segv"}}}}, api.VerdictSignaled, func(t *testing.T, s api.StepResult) {
			if s.Signal != "SIGSEGV" {
				t.Errorf("signal %q", s.Signal)
			}
		}},
		{"abort", api.Job{Files: bin("abort"), Steps: []api.Step{{Argv: []string{"./abort"}}}}, api.VerdictSignaled, func(t *testing.T, s api.StepResult) {
			if s.Signal != "SIGABRT" {
				t.Errorf("signal %q", s.Signal)
			}
		}},
		{"cpu_time_limit", api.Job{Files: bin("spin"), Steps: []api.Step{{Argv: []string{"./spin"}, Limits: api.Limits{CPUTimeMS: 300}}}}, api.VerdictCPUTimeLimit, func(t *testing.T, s api.StepResult) {
			if s.CPUTimeMS < 300 || s.CPUTimeMS > 360 {
				t.Errorf("cpu %.1f ms", s.CPUTimeMS)
			}
		}},
		{"wall_time_limit", api.Job{Steps: []api.Step{{Argv: []string{"sleep", "5"}, Limits: api.Limits{WallTimeMS: 200}}}}, api.VerdictWallTimeLimit, nil},
		{"memory_limit", api.Job{Files: bin("alloc"), Steps: []api.Step{{Argv: []string{"./alloc", "256"}, Limits: api.Limits{MemoryBytes: 64 << 20}}}}, api.VerdictMemoryLimit, func(t *testing.T, s api.StepResult) {
			if s.MemoryPeakBytes < 60<<20 || s.MemoryPeakBytes > 66<<20 {
				t.Errorf("peak %d", s.MemoryPeakBytes)
			}
		}},
		{"output_limit", api.Job{Steps: []api.Step{{Argv: []string{"yes"}, Limits: api.Limits{OutputBytes: 100}}}}, api.VerdictOutputLimit, func(t *testing.T, s api.StepResult) {
			if len(s.Stdout) != 100 || !s.StdoutTruncated {
				t.Errorf("stdout %d bytes, truncated %v", len(s.Stdout), s.StdoutTruncated)
			}
		}},
		{"syscall_blocked", api.Job{Files: bin("syscalls"), Steps: []api.Step{{Argv: []string{"./syscalls", "bpf"}}}}, api.VerdictSyscallBlocked, func(t *testing.T, s api.StepResult) {
			if !strings.Contains(s.Message, "bpf") {
				t.Errorf("message %q", s.Message)
			}
		}},
		{"exec_failed", api.Job{Steps: []api.Step{{Argv: []string{"./nothing-here"}}}}, api.VerdictExecFailed, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := d.c.Run(ctxT(t), &tc.job)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != api.StatusCompleted || len(res.Steps) != 1 {
				t.Fatalf("status %s, %d steps: %+v", res.Status, len(res.Steps), res)
			}
			s := res.Steps[0]
			if s.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s: %s", s.Verdict, tc.want, summary(s))
			}
			if tc.check != nil {
				tc.check(t, s)
			}
		})
	}
}

func b64(s string) string {
	return base64Std(s)
}

func TestDaemonCompileAndRunC(t *testing.T) {
	d := startDaemon(t, "")
	src, _ := os.ReadFile("testdata/hello.c")
	want := "hello, judge\n"
	res, err := d.c.Run(ctxT(t), &api.Job{
		Files: map[string]api.File{"main.c": {Content: string(src)}},
		Steps: []api.Step{
			{Argv: []string{"gcc", "-O2", "-o", "main", "main.c"}, Limits: api.Limits{CPUTimeMS: 20000, WallTimeMS: 40000}},
			{Argv: []string{"./main"}, Stdin: "judge\n", ExpectedStdout: &want},
		},
		TrackedFiles: []string{"main.c"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != api.StatusCompleted || res.Steps[0].Verdict != api.VerdictOK || res.Steps[1].Verdict != api.VerdictOK ||
		res.Steps[1].StdoutMatches == nil || !*res.Steps[1].StdoutMatches {
		t.Fatalf("%+v", res)
	}
	if res.Files["main.c"] == nil || res.Files["main.c"].Content != string(src) {
		t.Errorf("tracked main.c: %+v", res.Files["main.c"])
	}
}

func TestDaemonEarlyStop(t *testing.T) {
	d := startDaemon(t, "")
	wrong := "goodbye"
	res, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{
		{Argv: []string{"echo", "hello  "}, ExpectedStdout: &wrong},
		{Argv: []string{"echo", "never"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].StdoutMatches == nil || *res.Steps[0].StdoutMatches || res.Steps[1].Verdict != api.VerdictSkipped {
		t.Fatalf("%+v", res.Steps)
	}
	// Trailing whitespace does not count; stop_on never runs every step.
	right := "hello\n\n"
	res, err = d.c.Run(ctxT(t), &api.Job{StopOn: api.StopOnNever, Steps: []api.Step{
		{Argv: []string{"sh", "-c", "echo 'hello  '; exit 1"}, ExpectedStdout: &right},
		{Argv: []string{"echo", "again"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !*res.Steps[0].StdoutMatches || res.Steps[0].Verdict != api.VerdictNonzeroExit || res.Steps[1].Stdout != "again\n" {
		t.Fatalf("%+v", res.Steps)
	}
}

func TestDaemonTrackedFiles(t *testing.T) {
	d := startDaemon(t, "tracked_file_bytes = 1000\n")
	res, err := d.c.Run(ctxT(t), &api.Job{
		Files: map[string]api.File{"in/data.bin": {Base64: base64Std("\x00\x01\xff"), Mode: "0600"}},
		Steps: []api.Step{{Argv: []string{"sh", "-c", `
ln -s /etc/shadow shadow
ln -s /etc/passwd passwd-link
mkdir sub && ln -s .. sub/up
mkfifo fifo
head -c 5000 /dev/zero | tr '\0' x > big
echo result > out.txt
ln out.txt hard.txt
stat -c %a in/data.bin > mode.txt
exit 3`}}},
		TrackedFiles:   []string{"out.txt", "hard.txt", "shadow", "passwd-link", "sub/up/out.txt", "fifo", "big", "missing", "in/data.bin", "mode.txt", "in"},
		OutputEncoding: api.EncodingUTF8,
	})
	if err != nil {
		t.Fatal(err)
	}
	f := res.Files
	if f["out.txt"] == nil || f["out.txt"].Content != "result\n" || f["hard.txt"] == nil {
		t.Errorf("out.txt %+v hard.txt %+v", f["out.txt"], f["hard.txt"])
	}
	for _, name := range []string{"shadow", "passwd-link", "sub/up/out.txt", "fifo", "missing", "in"} {
		if v, ok := f[name]; !ok || v != nil {
			t.Errorf("%s: %+v, want null", name, v)
		}
	}
	if f["big"] == nil || len(f["big"].Content) != 1000 || !f["big"].Truncated {
		t.Errorf("big: want 1000 bytes, truncated")
	}
	if f["mode.txt"] == nil || f["mode.txt"].Content != "600\n" {
		t.Errorf("mode of a file sent with mode 0600: %+v", f["mode.txt"])
	}
	if f["in/data.bin"] == nil || f["in/data.bin"].Content != "\x00\x01\uFFFD" {
		t.Errorf("binary file in utf8: %+v", f["in/data.bin"])
	}
	// In base64 everything comes back exact.
	res, err = d.c.Run(ctxT(t), &api.Job{
		Files:          map[string]api.File{"data.bin": {Base64: base64Std("\x00\x01\xff")}},
		Steps:          []api.Step{{Argv: []string{"sh", "-c", "cat data.bin; cat data.bin >&2"}}},
		TrackedFiles:   []string{"data.bin"},
		OutputEncoding: api.EncodingBase64,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Steps[0].Stdout != base64Std("\x00\x01\xff") || res.Steps[0].Stderr != base64Std("\x00\x01\xff") || res.Files["data.bin"].Content != base64Std("\x00\x01\xff") {
		t.Errorf("base64: %+v %+v", res.Steps[0], res.Files["data.bin"])
	}
}

func TestDaemonBatch(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\n")
	var jobs []api.Job
	for i := 0; i < 200; i++ {
		key, _ := json.Marshal(i)
		want := fmt.Sprintf("%d\n", i*i)
		jobs = append(jobs, api.Job{Key: key, Steps: []api.Step{{
			Argv: []string{"sh", "-c", fmt.Sprintf("echo $((%d*%d))", i, i)}, ExpectedStdout: &want,
		}}})
	}
	seen := map[int]bool{}
	start := time.Now()
	sum, err := d.c.BatchJobs(ctxT(t), jobs, 2, func(l *api.BatchLine) error {
		if l.Index == nil || l.Result == nil {
			return fmt.Errorf("line without index or result: %+v", l)
		}
		var key int
		json.Unmarshal(l.Key, &key)
		if key != *l.Index || seen[*l.Index] {
			return fmt.Errorf("index %d key %d (seen %v)", *l.Index, key, seen[*l.Index])
		}
		seen[*l.Index] = true
		s := l.Result.Steps[0]
		if s.Verdict != api.VerdictOK || s.StdoutMatches == nil || !*s.StdoutMatches {
			return fmt.Errorf("job %d: %s", *l.Index, summary(s))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 200 || sum.Total != 200 || sum.Verdicts["ok"] != 200 {
		t.Fatalf("seen %d, summary %+v", len(seen), sum)
	}
	t.Logf("200 jobs at concurrency 2: %v (%.0f jobs/s)", time.Since(start), 200/time.Since(start).Seconds())
}

func TestDaemonStream(t *testing.T) {
	d := startDaemon(t, "")
	var events []api.Event
	sawOutputBeforeEnd := false
	res, err := d.c.RunStream(ctxT(t), job("sh", "-c", "echo first; sleep 1; echo second"), func(e *api.Event) error {
		events = append(events, *e)
		if e.Event == api.EventStdout && e.Data == "first\n" {
			// The program still sleeps: this event came before the end.
			sawOutputBeforeEnd = len(busyProcesses()) > 0
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawOutputBeforeEnd {
		t.Errorf("stdout was not streamed while the program ran: %+v", events)
	}
	kinds := []string{}
	for _, e := range events {
		kinds = append(kinds, e.Event)
	}
	got := strings.Join(kinds, ",")
	if got != "started,stdout,stdout,step_finished,finished" || res.Steps[0].Stdout != "first\nsecond\n" {
		t.Errorf("events %s, result %+v", got, res)
	}
}

func TestDaemonCancel(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	done := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctx, &api.Job{ID: "to-cancel", Steps: []api.Step{{Argv: []string{"sh", "-c", "sleep 60 & sleep 60"}}, {Argv: []string{"true"}}}})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	waitRunning(t, d, "to-cancel")
	start := time.Now()
	if err := d.c.Cancel(ctx, "to-cancel"); err != nil {
		t.Fatal(err)
	}
	for len(busyProcesses()) > 0 {
		if time.Since(start) > 100*time.Millisecond {
			t.Errorf("processes still there %v after the cancel: %v", time.Since(start), busyProcesses())
			break
		}
		time.Sleep(time.Millisecond)
	}
	res := <-done
	if res.Status != api.StatusCancelled || res.Steps[0].Verdict != api.VerdictCancelled || res.Steps[1].Verdict != api.VerdictSkipped {
		t.Errorf("%+v", res)
	}
	info, err := d.c.Get(ctx, "to-cancel")
	if err != nil || info.State != api.StateFinished || info.Result == nil || info.Result.Status != api.StatusCancelled {
		t.Errorf("GET after cancel: %+v %v", info, err)
	}
	var se *client.StatusError
	if err := d.c.Cancel(ctx, "no-such-job"); !errors.As(err, &se) || se.HTTPStatus != 404 {
		t.Errorf("cancel of an unknown id: %v", err)
	}
}

func waitRunning(t *testing.T, d *testDaemon, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		runs, err := d.c.Runs(context.Background())
		if err == nil {
			for _, r := range runs {
				if r.ID == id && r.State == api.StateRunning && len(busyProcesses()) > 0 {
					return
				}
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	runs, err := d.c.Runs(context.Background())
	t.Fatalf("job %s never ran (runs: %+v %v; busy: %v)", id, runs, err, busyProcesses())
}

func TestDaemonClientDisconnect(t *testing.T) {
	d := startDaemon(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	go d.c.Run(ctx, &api.Job{ID: "abandoned", Steps: []api.Step{{Argv: []string{"sleep", "60"}}}})
	waitRunning(t, d, "abandoned")
	cancel()
	start := time.Now()
	for len(busyProcesses()) > 0 {
		if time.Since(start) > time.Second {
			t.Fatalf("processes still there %v after the client left: %v", time.Since(start), busyProcesses())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDaemonQueueFull(t *testing.T) {
	d := startDaemon(t, "concurrency = 1\nqueue_size = 1\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.c.Run(ctx, &api.Job{ID: "a", Steps: []api.Step{{Argv: []string{"sleep", "60"}}}})
	waitRunning(t, d, "a")
	go d.c.Run(ctx, &api.Job{ID: "b", Steps: []api.Step{{Argv: []string{"sleep", "60"}}}})
	for {
		info, err := d.c.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.Pool.Queued == 1 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	_, err := d.c.Run(ctx, job("true"))
	var se *client.StatusError
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusTooManyRequests || se.RetryAfter <= 0 || se.Err.Code != api.CodeResourceExhausted {
		t.Fatalf("third job: %v, want 429 with Retry-After", err)
	}
	// A long job does not delay _ping or /v1/info.
	start := time.Now()
	if err := d.c.Ping(ctx); err != nil || time.Since(start) > time.Second {
		t.Errorf("ping: %v after %v", err, time.Since(start))
	}
	// An id in use by a live job is a conflict.
	_, err = d.c.Run(ctx, &api.Job{ID: "a", Steps: []api.Step{{Argv: []string{"true"}}}})
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusConflict {
		t.Errorf("reused live id: %v, want 409", err)
	}
	cancel()
}

func TestDaemonDeniedUID(t *testing.T) {
	d := startDaemon(t, "allowed_uids = [12345]\n")
	_, err := d.c.Run(ctxT(t), job("true"))
	var se *client.StatusError
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusForbidden || !strings.Contains(se.Err.Message, "uid 0") {
		t.Fatalf("root not in allowed_uids: %v, want 403 naming the uid", err)
	}
	fi, err := os.Stat(d.socket)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v (%v), want 0660", fi.Mode().Perm(), err)
	}
}

func TestDaemonBadRequests(t *testing.T) {
	d := startDaemon(t, "max_request_bytes = 100000\n")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	for _, tc := range []struct {
		body string
		want string
	}{
		{`{"steps": [`, "body"},
		{`not json`, "body"},
		{`{"steps":[{"argv":["true"],"limits":{"cpu_tme_ms":5}}]}`, "cpu_tme_ms"},
		{`{"steps":[{"argv":["true"],"limits":{"memory_bytes":"lots"}}]}`, "memory_bytes"},
		{`{"steps":[{"argv":["true"],"limits":{"memory_bytes":99999999999999}}]}`, "steps[0].limits.memory_bytes"},
		{`{"steps":[{"argv":["true"],"limits":{"pids":-1}}]}`, "steps[0].limits.pids"},
		{`{"steps":[]}`, "steps"},
		{`{"steps":[{"argv":[]}]}`, "steps[0].argv"},
		{`{"files":{"../x":"a"},"steps":[{"argv":["true"]}]}`, `files["../x"]`},
		{`{"files":{"/etc/x":"a"},"steps":[{"argv":["true"]}]}`, `files["/etc/x"]`},
		{`{"files":{"a/../../x":"a"},"steps":[{"argv":["true"]}]}`, `files["a/../../x"]`},
		{`{"files":{"x":{"base64":"!!!"}},"steps":[{"argv":["true"]}]}`, `files["x"].base64`},
		{`{"files":{"x":{"content":"a","mode":"4755"}},"steps":[{"argv":["true"]}]}`, `files["x"].mode`},
		{`{"tracked_files":["../../etc/shadow"],"steps":[{"argv":["true"]}]}`, "tracked_files[0]"},
		{`{"stop_on":"sometimes","steps":[{"argv":["true"]}]}`, "stop_on"},
		{`{"output_encoding":"latin1","steps":[{"argv":["true"]}]}`, "output_encoding"},
		{`{"profile":"nope","steps":[{"argv":["true"]}]}`, "profile"},
		{`{"steps":[{"argv":["true"]}]} {"again":1}`, "body"},
		{`{"steps":[{"argv":["true"],"stdin":"` + strings.Repeat("x", 200000) + `"}]}`, "body: larger than the cap"},
	} {
		resp, err := hc.Post("http://sandboxd/v1/run", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var eb api.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		status := 400
		if strings.HasPrefix(tc.want, "body: larger than the cap") {
			status = 413
		}
		if resp.StatusCode != status || eb.Error == nil || eb.Error.Code != api.CodeInvalidArgument || !strings.Contains(eb.Error.Message, tc.want) {
			t.Errorf("%.80s: HTTP %d %+v, want %d naming %q", tc.body, resp.StatusCode, eb.Error, status, tc.want)
		}
	}
	resp, _ := hc.Get("http://sandboxd/v1/nothing")
	if resp.StatusCode != 404 {
		t.Errorf("unknown path: HTTP %d", resp.StatusCode)
	}
	resp.Body.Close()
}

func TestDaemonInfoAndMetrics(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\n")
	info, err := d.c.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.Cgroup.Mode == "" || len(info.Profiles) == 0 || info.Pool.Concurrency != 2 || info.Kernel == "" || !info.Features["clone_into_cgroup"] {
		t.Errorf("info %+v", info)
	}
	d.c.Run(ctxT(t), job("true"))
	m, err := d.c.Metrics(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`sandboxd_steps_total{verdict="ok"} 1`, `sandboxd_jobs_total{status="completed"} 1`, "sandboxd_queue_depth 0", "sandboxd_step_wall_seconds_bucket"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if !strings.Contains(d.log.String(), `"caller_uid":0`) {
		t.Errorf("no per-job log line with the caller: %s", d.log)
	}
}

func TestDaemonSIGTERMWithJobsRunning(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\nshutdown_grace = \"300ms\"\n")
	ctx := ctxT(t)
	results := make(chan *api.Result, 2)
	for _, id := range []string{"short", "long"} {
		argv := []string{"sleep", "0.1"}
		if id == "long" {
			argv = []string{"sleep", "60"}
		}
		go func() {
			res, _ := d.c.Run(ctx, &api.Job{ID: id, Steps: []api.Step{{Argv: argv}}})
			results <- res
		}()
	}
	waitRunning(t, d, "long")
	d.stop()
	got := map[string]string{}
	for i := 0; i < 2; i++ {
		if res := <-results; res != nil {
			got[res.ID] = res.Status
		}
	}
	if got["short"] != api.StatusCompleted || got["long"] != api.StatusCancelled {
		t.Errorf("after SIGTERM: %v, want the short job completed and the long one cancelled", got)
	}
	// assertClean (cleanup) checks nothing is left, the socket included.
}

func TestDaemonReclaimsAfterSIGKILL(t *testing.T) {
	d := startDaemon(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.c.Run(ctx, &api.Job{ID: "orphan", Steps: []api.Step{{Argv: []string{"sh", "-c", "sleep 60 & sleep 60"}}}})
	waitRunning(t, d, "orphan")
	// See also TestDaemonFaultSIGKILLMidBatch.
	d.crash(t, 1)
	cancel()
	d.restartReclaims(t)
}

func TestDaemonBatchClientDisconnect(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\n")
	var jobs []api.Job
	for i := 0; i < 20; i++ {
		jobs = append(jobs, api.Job{ID: fmt.Sprintf("b%d", i), Steps: []api.Step{{Argv: []string{"sleep", "60"}}}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := d.c.BatchJobs(ctx, jobs, 2, func(*api.BatchLine) error { return nil })
		done <- err
	}()
	waitRunning(t, d, "b0")
	cancel()
	<-done
	start := time.Now()
	for len(busyProcesses()) > 0 {
		if time.Since(start) > time.Second {
			t.Fatalf("batch processes still there %v after the client left: %v", time.Since(start), busyProcesses())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing more of the batch starts.
	time.Sleep(300 * time.Millisecond)
	if procs := busyProcesses(); len(procs) > 0 {
		t.Fatalf("the batch went on after its client left: %v", procs)
	}
	runs, _ := d.c.Runs(context.Background())
	if len(runs) > 0 {
		t.Fatalf("jobs still live: %+v", runs)
	}
}

// A job with one step and no files in or out gets a workspace its sandbox
// mounts itself, of the job's size; a job with files gets the daemon's.
// From inside, both are an empty (or filled) tmpfs the sandbox user owns.
func TestDaemonWorkspaceOfItsOwn(t *testing.T) {
	d := startDaemon(t, "")
	look := `grep ' /workspace ' /proc/self/mountinfo; stat -c '%U %a' .; echo x > new && cat new`
	res, err := d.c.Run(ctxT(t), &api.Job{WorkspaceBytes: 3 << 20, Steps: []api.Step{{Argv: []string{"sh", "-c", look}}}})
	if err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Fatalf("file-less job: %v %+v", err, res)
	}
	out := res.Steps[0].Stdout
	if !strings.Contains(out, " - tmpfs tmpfs rw,size=3072k,nr_inodes=1024,") || !strings.HasSuffix(out, "sandbox 755\nx\n") {
		t.Errorf("file-less job's workspace:\n%s", out)
	}
	res, err = d.c.Run(ctxT(t), &api.Job{WorkspaceBytes: 3 << 20, Files: map[string]api.File{"in": {Content: "y"}},
		Steps: []api.Step{{Argv: []string{"sh", "-c", look + "; cat in"}}}})
	if err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Fatalf("job with a file: %v %+v", err, res)
	}
	out = res.Steps[0].Stdout
	if !strings.Contains(out, " - tmpfs sandboxd-ws rw,size=3072k,nr_inodes=1024,") || !strings.HasSuffix(out, "sandbox 755\nx\ny") {
		t.Errorf("the daemon's workspace:\n%s", out)
	}
	d.assertNoJobLeft(t)
}

// TestDaemonSecondOnOneSubtree: a second daemon on a cgroup subtree in use
// is refused at start, naming the key, and the first's warm sandboxes and
// jobs are untouched (it used to take them for a crashed instance's
// leftovers and kill them).
func TestDaemonSecondOnOneSubtree(t *testing.T) {
	d := startDaemon(t, "")
	d.waitWarm(t, "the warm pool filled")
	stateDir := stateDirT(t)
	cfg := fmt.Sprintf("state_dir = %q\ncgroup_subtree = %q\nlog_format = \"json\"\n%s", stateDir, d.subtree, hostcheck.Config(""))
	if stderr := startSecond(t, "", cfg); !strings.Contains(stderr, "cgroup_subtree") || !strings.Contains(stderr, "in use by another sandboxd daemon") {
		t.Errorf("the second daemon's stderr:\n%s\nwant a failure naming cgroup_subtree", stderr)
	}
	info, err := d.c.Info(ctxT(t))
	if err != nil || info.Pool.WarmReady != info.Pool.WarmSandboxes {
		t.Errorf("the first daemon's warm sandboxes after the second's start: %+v %v", info.Pool, err)
	}
	for i := range info.Pool.WarmSandboxes + 1 {
		res, err := d.c.Run(ctxT(t), job("echo", "still here"))
		if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "still here\n" {
			t.Fatalf("job %d on the first daemon: %v %+v", i, err, res)
		}
	}
	d.assertNoJobLeft(t)
}

// TestDaemonStreamPython: a Python program's lines reach a streaming client
// as they are printed, though Python buffers a pipe in full by default; a
// job that sets PYTHONUNBUFFERED itself keeps its own value.
func TestDaemonStreamPython(t *testing.T) {
	d := startDaemon(t, "")
	sawOutputBeforeEnd := false
	res, err := d.c.RunStream(ctxT(t), job("python3", "-c", "import time, os\nprint('first', os.environ['PYTHONUNBUFFERED'])\ntime.sleep(1)\nprint('second')"), func(e *api.Event) error {
		if e.Event == api.EventStdout && strings.HasPrefix(e.Data, "first") {
			sawOutputBeforeEnd = len(busyProcesses()) > 0
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawOutputBeforeEnd || res.Steps[0].Stdout != "first 1\nsecond\n" {
		t.Errorf("python's first line was not streamed while it ran: %s", summary(res.Steps[0]))
	}
	j := job("python3", "-c", "import os; print(os.environ['PYTHONUNBUFFERED'])")
	j.Steps[0].Env = map[string]string{"PYTHONUNBUFFERED": ""}
	res, err = d.c.RunStream(ctxT(t), j, func(*api.Event) error { return nil })
	if err != nil || res.Steps[0].Stdout != "\n" {
		t.Errorf("a job's own PYTHONUNBUFFERED: %v %+v", err, res)
	}
	// Not streamed: the environment is the job's and the profile's only.
	res, err = d.c.Run(ctxT(t), job("python3", "-c", "import os; print(os.environ.get('PYTHONUNBUFFERED'))"))
	if err != nil || res.Steps[0].Stdout != "None\n" {
		t.Errorf("a run not streamed: %v %+v", err, res)
	}
}
