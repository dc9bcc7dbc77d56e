package escape

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// escapeCase is one hostile program and the one outcome it must get.
type escapeCase struct {
	name   string
	tries  string // what the program attempts
	expect string // what it must get

	// slots is how many daemon slots the case needs at once (two for a
	// case that runs two jobs side by side); 0 means 1.
	slots int

	// The usual case: one job of one step. programs are compiled
	// testdata/*.c sent into the workspace (mode 0755) under their name.
	programs []string
	argv     []string
	env      map[string]string
	limits   api.Limits
	shape    func(e *env, j *api.Job) // anything more about the job
	check    func(t *testing.T, e *env, r *api.Result)

	// run replaces the one-job flow: API-level cases, two jobs at once.
	run func(t *testing.T, e *env)
}

// env is what the cases share: the daemon, and host-side bait that no
// sandbox may reach.
type env struct {
	d            *testDaemon
	tcpAddr      string // a TCP listener on the host's 127.0.0.1
	tcpHits      atomic.Int64
	abstractHits atomic.Int64 // accepts on the abstract socket @sandboxd-escape-test
	hostIPv4     string       // a non-loopback address of the host, "" if none
}

const abstractName = "@sandboxd-escape-test"

func TestEscape(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\nmax_request_bytes = 4194304\n")
	e := &env{d: d}
	e.listen(t)
	for _, l := range d.leftovers(true) {
		t.Fatalf("before any case: %s", l)
	}
	s := newSlots(2)
	seen := map[string]bool{}
	t.Run("case", func(t *testing.T) {
		for _, c := range cases() {
			if seen[c.name] {
				t.Fatalf("two cases named %s", c.name)
			}
			seen[c.name] = true
			t.Run(c.name, func(t *testing.T) {
				t.Parallel()
				n := max(c.slots, 1)
				s.acquire(n)
				defer s.releaseAndCheck(n, func() { e.assertNothingLeft(t) })
				t.Logf("tries: %s\nmust get: %s", c.tries, c.expect)
				if c.run != nil {
					c.run(t, e)
				} else {
					runCase(t, e, &c)
				}
			})
		}
	})
	if err := d.alive(context.Background()); err != nil {
		t.Fatalf("after every case: %v", err)
	}
	t.Logf("%d cases", len(seen))
}

// assertNothingLeft runs after every case, when no other case runs: no
// process, cgroup, workspace or mount of any job is left; the host's bait
// was never touched; the daemon still answers.
func (e *env) assertNothingLeft(t *testing.T) {
	t.Helper()
	for _, l := range e.d.leftovers(true) {
		t.Errorf("after the case: %s", l)
	}
	if n := e.tcpHits.Load(); n > 0 {
		t.Errorf("after the case: the host's TCP listener on %s was reached %d times", e.tcpAddr, n)
	}
	if n := e.abstractHits.Load(); n > 0 {
		t.Errorf("after the case: the host's abstract socket %s was reached %d times", abstractName, n)
	}
	if err := e.d.alive(context.Background()); err != nil {
		t.Errorf("after the case: %v", err)
	}
}

// listen sets up the bait: a TCP listener on the host's loopback and an
// abstract Unix socket in the host's network namespace, counting whoever
// connects.
func (e *env) listen(t *testing.T) {
	serve := func(l net.Listener, hits *atomic.Int64) {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			hits.Add(1)
			c.Close()
		}
	}
	tl, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Close() })
	e.tcpAddr = tl.Addr().String()
	go serve(tl, &e.tcpHits)
	ul, err := net.Listen("unix", abstractName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ul.Close() })
	go serve(ul, &e.abstractHits)
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
				e.hostIPv4 = ipn.IP.String()
				break
			}
		}
	}
}

// runCase runs a case's one job and hands the result to its check.
func runCase(t *testing.T, e *env, c *escapeCase) {
	t.Helper()
	j := &api.Job{Steps: []api.Step{{Argv: append([]string(nil), c.argv...), Env: c.env, Limits: c.limits}}}
	if len(c.programs) > 0 {
		j.Files = map[string]api.File{}
		for _, p := range c.programs {
			j.Files[p] = program(t, p)
		}
	}
	if c.shape != nil {
		c.shape(e, j)
	}
	res, err := e.d.c.Run(ctxT(t), j)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	for i, s := range res.Steps {
		t.Logf("step %d: %s", i, summary(s))
	}
	c.check(t, e, res)
}

// program is a compiled testdata program as a job file.
func program(t *testing.T, name string) api.File {
	t.Helper()
	b, ok := programs[name]
	if !ok {
		t.Fatalf("no program %q in testdata", name)
	}
	return api.File{Base64: base64.StdEncoding.EncodeToString(b), Mode: "0755"}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func summary(s api.StepResult) string {
	return fmt.Sprintf("verdict=%s exit=%d signal=%q msg=%q cpu=%.1fms wall=%.1fms peak=%d pids=%d stdout(%d)=%.400q stderr(%d)=%.400q",
		s.Verdict, s.ExitCode, s.Signal, s.Message, s.CPUTimeMS, s.WallTimeMS, s.MemoryPeakBytes, s.PIDsPeak,
		len(s.Stdout), s.Stdout, len(s.Stderr), s.Stderr)
}

// only returns the one step of a completed job.
func only(t *testing.T, r *api.Result) api.StepResult {
	t.Helper()
	if r.Status != api.StatusCompleted || len(r.Steps) != 1 {
		t.Fatalf("status %q (%s), %d steps, want one completed step", r.Status, r.Message, len(r.Steps))
	}
	return r.Steps[0]
}

func wantVerdict(t *testing.T, s api.StepResult, v api.Verdict) {
	t.Helper()
	if s.Verdict != v {
		t.Fatalf("verdict %s, want %s: %s", s.Verdict, v, summary(s))
	}
}

func wantStdout(t *testing.T, s api.StepResult, want string) {
	t.Helper()
	if s.Stdout != want {
		t.Errorf("stdout %q\nwant   %q", s.Stdout, want)
	}
}

// blocked is the check of a forbidden call: the run ends as
// syscall_blocked naming the call, and the call never returned (the
// program prints as soon as it does).
func blocked(call string) func(*testing.T, *env, *api.Result) {
	return func(t *testing.T, _ *env, r *api.Result) {
		t.Helper()
		s := only(t, r)
		wantVerdict(t, s, api.VerdictSyscallBlocked)
		if want := "blocked system call: " + call; s.Message != want {
			t.Errorf("message %q, want %q", s.Message, want)
		}
		if strings.Contains(s.Stdout, "returned") {
			t.Errorf("the forbidden call returned to the program: %q", s.Stdout)
		}
	}
}

// okWithStdout is the check of an attempt that fails softly: the program
// runs to its end (ok) and prints exactly what it got.
func okWithStdout(want string) func(*testing.T, *env, *api.Result) {
	return func(t *testing.T, _ *env, r *api.Result) {
		t.Helper()
		s := only(t, r)
		wantVerdict(t, s, api.VerdictOK)
		wantStdout(t, s, want)
	}
}

// wantInvalid posts a raw body to /v1/run and wants a 400 whose message
// names the field.
func wantInvalid(t *testing.T, e *env, body, field string) {
	t.Helper()
	var res api.Result
	err := e.d.c.Do(ctxT(t), http.MethodPost, "/v1/run", strings.NewReader(body), &res)
	wantInvalidErr(t, err, field, fmt.Sprintf("%.120q", body))
	if err == nil {
		t.Errorf("the job ran: %+v", res)
	}
}

func wantInvalidErr(t *testing.T, err error, field, what string) {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) {
		t.Errorf("%s: %v, want a 400 naming %s", what, err, field)
		return
	}
	if se.HTTPStatus != http.StatusBadRequest || se.Err == nil || se.Err.Code != api.CodeInvalidArgument || !strings.Contains(se.Err.Message, field) {
		t.Errorf("%s: HTTP %d %+v, want 400 invalid_argument naming %s", what, se.HTTPStatus, se.Err, field)
	}
}

// streamed runs a job in the background, streamed, and reports when its
// stdout first says "ready".
type streamed struct {
	ready chan struct{}
	done  chan struct{}
	res   *api.Result
	err   error
	ended time.Time
}

func startStreamed(ctx context.Context, c *client.Client, j *api.Job) *streamed {
	s := &streamed{ready: make(chan struct{}), done: make(chan struct{})}
	var out strings.Builder
	var once sync.Once
	go func() {
		defer close(s.done)
		s.res, s.err = c.RunStream(ctx, j, func(ev *api.Event) error {
			if ev.Event == api.EventStdout {
				out.WriteString(ev.Data)
				if strings.Contains(out.String(), "ready\n") {
					once.Do(func() { close(s.ready) })
				}
			}
			return nil
		})
		s.ended = time.Now()
	}()
	return s
}

// waitReady waits until the streamed job said "ready".
func (s *streamed) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-s.ready:
	case <-s.done:
		t.Fatalf("job A ended before it was ready: %v %+v", s.err, s.res)
	case <-time.After(30 * time.Second):
		t.Fatalf("job A was not ready within 30 s")
	}
}

func (s *streamed) wait(t *testing.T) *api.Result {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("job A did not end within 60 s")
	}
	if s.err != nil {
		t.Fatalf("job A: %v", s.err)
	}
	return s.res
}

// fileContent is a host file's content, to show it unchanged.
func fileContent(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
