package test

import (
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// The soak: SANDBOXD_SOAK_JOBS mixed jobs (default soakDefaultJobs, the
// short form `make test` runs; `make soak` runs 20000) through one daemon
// from soakClients clients at once, more than the daemon runs at once.
const (
	soakDefaultJobs = 300
	soakClients     = 8
	soakResultTTL   = 2 * time.Second
	// soakSettle bounds every wait for the daemon to come back to rest:
	// sandboxes torn down and refilled, connections closed, results expired.
	soakSettle = 20 * time.Second
)

// Growth the daemon may show from the start of the load to its end, checked
// from soakStrictJobs jobs up (a short run measures too little to judge):
// RSS may grow by at most half its size at the start, and by at most 20 MiB;
// the p50 latency of the probe job by at most half, plus 2 ms for the
// machine's own noise. Descriptors and goroutines must come back exactly.
const (
	soakStrictJobs   = 2000
	soakRSSGrowth    = 0.5
	soakRSSGrowthMax = 20 << 20
	soakP50Growth    = 0.5
	soakP50Slack     = 2 * time.Millisecond
)

// soakKind is one kind of job of the mix: how to make one, and what exactly
// its result must be.
type soakKind struct {
	name   string
	weight int
	// job makes the job; check judges its result. Both are nil for the
	// kinds that drive the daemon themselves (cancels, disconnects,
	// batches): run does it all.
	job   func(s *soak, id string) *api.Job
	check func(res *api.Result) error
	run   func(s *soak, c *client.Client, id string) error
	jobs  int // how many jobs one of this kind is (a batch's); 0 is one
}

// soak is the state of one soak run.
type soak struct {
	t     *testing.T
	d     *testDaemon
	kinds []soakKind
	bins  map[string]api.File // compiled testdata programs, ready to send
	first *soakMeasure        // the baseline, once taken

	mu       sync.Mutex // guards the fields below
	errs     []string
	verdicts map[api.Verdict]int
	byKind   map[string]int
}

// TestDaemonSoak loads one daemon with the mix, then checks that it came
// back to where it started: nothing leaked, nothing grew.
func TestDaemonSoak(t *testing.T) {
	n := soakDefaultJobs
	if v := os.Getenv("SANDBOXD_SOAK_JOBS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			t.Fatalf("SANDBOXD_SOAK_JOBS=%q: not a positive number", v)
		}
	}
	d := startDaemon(t, fmt.Sprintf("result_ttl = %q\n", soakResultTTL))
	s := &soak{t: t, d: d, bins: map[string]api.File{}, verdicts: map[api.Verdict]int{}, byKind: map[string]int{}}
	for _, p := range []string{"segv", "abort", "spin", "alloc", "syscalls"} {
		b, err := os.ReadFile(filepath.Join(programsDir, p))
		if err != nil {
			t.Fatal(err)
		}
		s.bins[p] = api.File{Base64: base64Std(string(b)), Mode: "0755"}
	}
	s.kinds = soakKinds()
	info, err := d.c.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	probes := 30
	if n >= soakStrictJobs {
		probes = 200
	}

	// Warm up: every kind once, then rest; the baseline is the daemon at
	// rest with its pool full.
	s.load(0, 0, true)
	if len(s.errs) > 0 {
		t.Fatalf("warm-up:\n%s", strings.Join(s.errs, "\n"))
	}
	s.verdicts, s.byKind = map[api.Verdict]int{}, map[string]int{}
	start := s.measure("start", probes)

	began := time.Now()
	half := s.load(1, n/2, false)
	firstHalf := time.Since(began)
	mid := s.measure("middle", probes)
	began = time.Now()
	second := s.load(2, n-half, false)
	secondHalf := time.Since(began)
	n = half + second
	end := s.measure("end", probes)

	s.mu.Lock()
	errs := s.errs
	s.mu.Unlock()
	for i, e := range errs {
		if i == 20 {
			t.Errorf("... and %d more", len(errs)-20)
			break
		}
		t.Error(e)
	}

	// The report.
	rate := func(jobs int, d time.Duration) float64 { return float64(jobs) / d.Seconds() }
	var b strings.Builder
	fmt.Fprintf(&b, "soak: %d jobs from %d clients, daemon concurrency %d, %d warm sandboxes: %v, %.1f jobs/s (first half %.1f, second %.1f)\n",
		n, soakClients, info.Pool.Concurrency, info.Pool.WarmSandboxes, (firstHalf + secondHalf).Round(time.Millisecond),
		rate(n, firstHalf+secondHalf), rate(half, firstHalf), rate(second, secondHalf))
	fmt.Fprintf(&b, "%-7s %8s %10s %10s %5s %11s %10s\n", "", "RSS MiB", "probe p50", "probe p99", "fds", "goroutines", "helper fds")
	for _, m := range []soakMeasure{start, mid, end} {
		fmt.Fprintf(&b, "%-7s %8.1f %10s %10s %5d %11d %10d\n", m.name, float64(m.rss)/(1<<20),
			fmtMS(m.p50), fmtMS(m.p99), m.fds, m.goroutines, m.helperFDs)
	}
	fmt.Fprintf(&b, "RSS: the daemon's and its helper's\n")
	fmt.Fprintf(&b, "probe: %d runs of /bin/true alone, each with the pool full\n", probes)
	fmt.Fprintf(&b, "kinds: %s\n", countList(s.byKind))
	verdicts := map[string]int{}
	for v, k := range s.verdicts {
		verdicts[string(v)] = k
	}
	fmt.Fprintf(&b, "verdicts: %s", countList(verdicts))
	t.Log("\n" + b.String())

	// Nothing grew that should not have.
	for _, m := range []soakMeasure{mid, end} {
		if m.fds != start.fds {
			t.Errorf("daemon file descriptors: %d at the %s, %d at the start:\n%s", m.fds, m.name, start.fds, m.fdList)
		}
		if m.helper != start.helper {
			t.Errorf("helper: pid %d at the %s, %d at the start", m.helper, m.name, start.helper)
		}
		if m.helperFDs != start.helperFDs {
			t.Errorf("helper's file descriptors: %d at the %s, %d at the start:\n%s", m.helperFDs, m.name, start.helperFDs, m.helperLst)
		}
		if m.goroutines != start.goroutines {
			t.Errorf("daemon goroutines: %d at the %s, %d at the start", m.goroutines, m.name, start.goroutines)
		}
		if m.groups != start.groups {
			t.Errorf("run cgroups: %d at the %s, %d at the start (the warm sandboxes')", m.groups, m.name, start.groups)
		}
		if m.mounts != start.mounts {
			t.Errorf("mounts under the state dir: %d at the %s, %d at the start", m.mounts, m.name, start.mounts)
		}
	}
	if n >= soakStrictJobs {
		if grow := end.rss - start.rss; float64(grow) > soakRSSGrowth*float64(start.rss) || grow > soakRSSGrowthMax {
			t.Errorf("daemon RSS grew from %.1f MiB to %.1f MiB: more than %.0f%% or %d MiB",
				float64(start.rss)/(1<<20), float64(end.rss)/(1<<20), 100*soakRSSGrowth, soakRSSGrowthMax>>20)
		}
		if limit := time.Duration(float64(start.p50)*(1+soakP50Growth)) + soakP50Slack; end.p50 > limit {
			t.Errorf("probe p50 grew from %s to %s: above %s", fmtMS(start.p50), fmtMS(end.p50), fmtMS(limit))
		}
	}
	// Once the daemon stops, nothing at all is left: startDaemon's cleanup
	// checks processes (idle inits included), cgroups, workspaces, mounts
	// and the socket.
}

// soakKinds is the mix. Every job is short (tens of milliseconds) but the
// fork bomb and the compile; the weights make a job of every verdict common
// enough to recur hundreds of times in `make soak`.
func soakKinds() []soakKind {
	one := func(res *api.Result, want api.Verdict) (api.StepResult, error) {
		if res.Status != api.StatusCompleted || len(res.Steps) != 1 {
			return api.StepResult{}, fmt.Errorf("status %s (%s), %d steps", res.Status, res.Message, len(res.Steps))
		}
		s := res.Steps[0]
		if s.Verdict != want {
			return s, fmt.Errorf("verdict %s, want %s: %s", s.Verdict, want, summary(s))
		}
		return s, nil
	}
	step := func(argv ...string) api.Step { return api.Step{Argv: argv} }
	return []soakKind{
		{name: "ok", weight: 20,
			job: func(_ *soak, id string) *api.Job { return &api.Job{ID: id, Steps: []api.Step{step("echo", id)}} },
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictOK)
				if err == nil && s.Stdout != res.ID+"\n" {
					err = fmt.Errorf("stdout %q", s.Stdout)
				}
				return err
			}},
		{name: "stdin_expected", weight: 10,
			job: func(_ *soak, id string) *api.Job {
				want := id + "\n"
				return &api.Job{ID: id, Steps: []api.Step{{Argv: []string{"cat"}, Stdin: id + "\n", ExpectedStdout: &want}}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictOK)
				if err == nil && (s.StdoutMatches == nil || !*s.StdoutMatches) {
					err = fmt.Errorf("stdout %q does not match", s.Stdout)
				}
				return err
			}},
		{name: "nonzero_exit", weight: 8,
			job: func(_ *soak, id string) *api.Job {
				return &api.Job{ID: id, Steps: []api.Step{step("sh", "-c", "exit 3")}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictNonzeroExit)
				if err == nil && s.ExitCode != 3 {
					err = fmt.Errorf("exit code %d, want 3", s.ExitCode)
				}
				return err
			}},
		{name: "sigsegv", weight: 5,
			job: func(s *soak, id string) *api.Job {
				return &api.Job{ID: id, Files: s.files("segv"), Steps: []api.Step{step("./segv")}}
			},
			check: signaled(one, "SIGSEGV")},
		{name: "sigabrt", weight: 3,
			job: func(s *soak, id string) *api.Job {
				return &api.Job{ID: id, Files: s.files("abort"), Steps: []api.Step{step("./abort")}}
			},
			check: signaled(one, "SIGABRT")},
		{name: "cpu_time_limit", weight: 5,
			job: func(s *soak, id string) *api.Job {
				return &api.Job{ID: id, Files: s.files("spin"), Steps: []api.Step{{Argv: []string{"./spin"}, Limits: api.Limits{CPUTimeMS: 30}}}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictCPUTimeLimit)
				if err == nil && s.CPUTimeMS < 30 {
					err = fmt.Errorf("cpu %.1f ms, under the limit 30", s.CPUTimeMS)
				}
				return err
			}},
		{name: "wall_time_limit", weight: 5,
			job: func(_ *soak, id string) *api.Job {
				return &api.Job{ID: id, Steps: []api.Step{{Argv: []string{"sleep", "10"}, Limits: api.Limits{WallTimeMS: 30}}}}
			},
			check: func(res *api.Result) error { _, err := one(res, api.VerdictWallTimeLimit); return err }},
		{name: "memory_limit", weight: 5,
			job: func(s *soak, id string) *api.Job {
				return &api.Job{ID: id, Files: s.files("alloc"), Steps: []api.Step{{Argv: []string{"./alloc", "64"}, Limits: api.Limits{MemoryBytes: 16 << 20}}}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictMemoryLimit)
				if err == nil && s.MemoryPeakBytes > 16<<20 {
					err = fmt.Errorf("memory peak %d above the limit", s.MemoryPeakBytes)
				}
				return err
			}},
		{name: "output_limit", weight: 5,
			job: func(_ *soak, id string) *api.Job {
				return &api.Job{ID: id, Steps: []api.Step{{Argv: []string{"yes"}, Limits: api.Limits{OutputBytes: 1000}}}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictOutputLimit)
				if err == nil && (len(s.Stdout) != 1000 || !s.StdoutTruncated) {
					err = fmt.Errorf("stdout %d bytes, truncated %v; want 1000, truncated", len(s.Stdout), s.StdoutTruncated)
				}
				return err
			}},
		{name: "syscall_blocked", weight: 4,
			job: func(s *soak, id string) *api.Job {
				return &api.Job{ID: id, Files: s.files("syscalls"), Steps: []api.Step{step("./syscalls", "bpf")}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictSyscallBlocked)
				if err == nil && !strings.Contains(s.Message, "bpf") {
					err = fmt.Errorf("message %q does not name bpf", s.Message)
				}
				return err
			}},
		{name: "exec_failed", weight: 2,
			job:   func(_ *soak, id string) *api.Job { return &api.Job{ID: id, Steps: []api.Step{step("./nothing-here")}} },
			check: func(res *api.Result) error { _, err := one(res, api.VerdictExecFailed); return err }},
		{name: "pids_limit", weight: 3,
			// The shell's fourth process is refused: it says so and exits 2.
			job: func(_ *soak, id string) *api.Job {
				return &api.Job{ID: id, Steps: []api.Step{{Argv: []string{"sh", "-c", "for i in 1 2 3 4 5 6; do sleep 10 & done; wait"}, Limits: api.Limits{PIDs: 4}}}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictNonzeroExit)
				if err == nil && (s.ExitCode != 2 || !strings.Contains(s.Stderr, "fork") || s.PIDsPeak > 4) {
					err = fmt.Errorf("want exit 2, a refused fork, at most 4 pids: %s", summary(s))
				}
				return err
			}},
		{name: "fork_bomb", weight: 1,
			// Every process forks for ever: held at 16 processes, ended by
			// the clock (two CPUs cannot spend the CPU budget in 200 ms).
			job: func(_ *soak, id string) *api.Job {
				return &api.Job{ID: id, Steps: []api.Step{{
					Argv:   []string{"python3", "-c", "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"},
					Limits: api.Limits{PIDs: 16, WallTimeMS: 200, CPUTimeMS: 5000},
				}}}
			},
			check: func(res *api.Result) error {
				s, err := one(res, api.VerdictWallTimeLimit)
				if err == nil && s.PIDsPeak > 16 {
					err = fmt.Errorf("pids peak %d above the limit 16", s.PIDsPeak)
				}
				return err
			}},
		{name: "compile_run", weight: 2,
			job: func(_ *soak, id string) *api.Job {
				src, _ := os.ReadFile("testdata/hello.c")
				want := "hello, " + id + "\n"
				return &api.Job{ID: id, Files: map[string]api.File{"main.c": {Content: string(src)}},
					Steps: []api.Step{
						{Argv: []string{"gcc", "-O0", "-o", "main", "main.c"}, Limits: api.Limits{CPUTimeMS: 20000, WallTimeMS: 40000}},
						{Argv: []string{"sh", "-c", "./main | tee out.txt"}, Stdin: id + "\n", ExpectedStdout: &want},
					},
					TrackedFiles: []string{"out.txt", "main.c"}}
			},
			check: func(res *api.Result) error {
				want := "hello, " + res.ID + "\n"
				if res.Status != api.StatusCompleted || len(res.Steps) != 2 || res.Steps[0].Verdict != api.VerdictOK || res.Steps[1].Verdict != api.VerdictOK ||
					res.Steps[1].StdoutMatches == nil || !*res.Steps[1].StdoutMatches {
					return fmt.Errorf("compile and run: %+v", res)
				}
				if f := res.Files["out.txt"]; f == nil || f.Content != want || res.Files["main.c"] == nil {
					return fmt.Errorf("tracked files: %+v", res.Files)
				}
				return nil
			}},
		{name: "steps_skipped", weight: 4,
			// A failing step skips the next; what it wrote is still read back.
			job: func(_ *soak, id string) *api.Job {
				return &api.Job{ID: id, Steps: []api.Step{step("sh", "-c", "echo $0 > out.txt; exit 1", id), step("echo", "never")},
					TrackedFiles: []string{"out.txt", "missing.txt"}}
			},
			check: func(res *api.Result) error {
				if res.Status != api.StatusCompleted || len(res.Steps) != 2 || res.Steps[0].Verdict != api.VerdictNonzeroExit || res.Steps[1].Verdict != api.VerdictSkipped {
					return fmt.Errorf("steps: %+v", res.Steps)
				}
				if f, ok := res.Files["missing.txt"]; !ok || f != nil {
					return fmt.Errorf("missing.txt: %+v, want null", f)
				}
				if f := res.Files["out.txt"]; f == nil || f.Content != res.ID+"\n" {
					return fmt.Errorf("out.txt: %+v", f)
				}
				return nil
			}},
		{name: "cancel", weight: 3, run: (*soak).cancelRunning},
		{name: "disconnect_running", weight: 3, run: (*soak).disconnectRunning},
		{name: "disconnect_any", weight: 2, run: (*soak).disconnectAny},
		{name: "batch", weight: 3, run: (*soak).batch, jobs: len(batchKinds)},
		{name: "batch_disconnect", weight: 1, run: (*soak).batchDisconnect, jobs: batchDisconnectJobs},
	}
}

func signaled(one func(*api.Result, api.Verdict) (api.StepResult, error), sig string) func(*api.Result) error {
	return func(res *api.Result) error {
		s, err := one(res, api.VerdictSignaled)
		if err == nil && s.Signal != sig {
			err = fmt.Errorf("signal %q, want %s", s.Signal, sig)
		}
		return err
	}
}

func (s *soak) files(names ...string) map[string]api.File {
	m := map[string]api.File{}
	for _, n := range names {
		m[n] = s.bins[n]
	}
	return m
}

// load runs n jobs of the mix (a few more when a batch comes last) from
// soakClients clients at once, or every kind once when all is set, then
// waits for the daemon to rest. It returns how many jobs it ran.
func (s *soak) load(phase, n int, all bool) int {
	rng := rand.New(rand.NewSource(int64(phase)))
	total := 0
	for _, k := range s.kinds {
		total += k.weight
	}
	pick := func() *soakKind {
		r := rng.Intn(total)
		for i := range s.kinds {
			if r -= s.kinds[i].weight; r < 0 {
				return &s.kinds[i]
			}
		}
		panic("unreachable")
	}
	type unit struct {
		kind *soakKind
		id   string
	}
	units := make(chan unit)
	var wg sync.WaitGroup
	for w := 0; w < soakClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client.New(s.d.socket)
			defer c.Close()
			for u := range units {
				if err := s.runOne(c, u.kind, u.id); err != nil {
					s.fail("%s %s: %v", u.kind.name, u.id, err)
				}
			}
		}()
	}
	jobs := 0
	for i := 0; all && i < len(s.kinds) || !all && jobs < n; i++ {
		k := &s.kinds[i%len(s.kinds)]
		if !all {
			k = pick()
		}
		units <- unit{k, fmt.Sprintf("soak-%d-%d", phase, i)}
		jobs += max(k.jobs, 1)
	}
	close(units)
	wg.Wait()
	s.rest()
	return jobs
}

// runOne runs one of the mix and checks its result.
func (s *soak) runOne(c *client.Client, k *soakKind, id string) error {
	s.count(k.name, nil)
	if k.run != nil {
		return k.run(s, c, id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.Run(ctx, k.job(s, id))
	if err != nil {
		return err
	}
	s.count("", res)
	return k.check(res)
}

func (s *soak) count(kind string, res *api.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind != "" {
		s.byKind[kind]++
	}
	if res != nil {
		for _, st := range res.Steps {
			s.verdicts[st.Verdict]++
		}
	}
}

func (s *soak) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

// readyJob prints "ready" once its program runs, then sleeps; a second
// step would run after it.
func readyJob(id string) *api.Job {
	return &api.Job{ID: id, Steps: []api.Step{{Argv: []string{"sh", "-c", "echo ready; exec sleep 10"}}, {Argv: []string{"true"}}}}
}

// cancelRunning cancels a job (DELETE /v1/runs/{id}) once its program runs:
// the job ends cancelled, its second step skipped.
func (s *soak) cancelRunning(c *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.RunStream(ctx, readyJob(id), func(e *api.Event) error {
		if e.Event == api.EventStdout && strings.Contains(e.Data, "ready") {
			return c.Cancel(ctx, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.count("", res)
	if res.Status != api.StatusCancelled || len(res.Steps) != 2 || res.Steps[0].Verdict != api.VerdictCancelled || res.Steps[1].Verdict != api.VerdictSkipped {
		return fmt.Errorf("after the cancel: status %s, steps %+v", res.Status, res.Steps)
	}
	return nil
}

// disconnectRunning leaves (cancels the request's context) once the job's
// program runs: the job ends cancelled, nothing of it left running.
func (s *soak) disconnectRunning(c *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.RunStream(ctx, readyJob(id), func(e *api.Event) error {
		if e.Event == api.EventStdout && strings.Contains(e.Data, "ready") {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("the stream after the client left: %v", err)
	}
	return s.waitCancelled(c, id, true)
}

// disconnectAny leaves after a random moment: before the daemon has the
// job, while it is queued, or while it runs.
func (s *soak) disconnectAny(c *client.Client, id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(1+rand.Intn(30))*time.Millisecond)
	defer cancel()
	_, err := c.Run(ctx, readyJob(id))
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("a run whose client left: %v", err)
	}
	return s.waitCancelled(c, id, false)
}

// waitCancelled waits until the job with id is no longer live: finished
// cancelled, or (unless it must have started) never known to the daemon.
func (s *soak) waitCancelled(c *client.Client, id string, started bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		info, err := c.Get(ctx, id)
		var se *client.StatusError
		switch {
		case errors.As(err, &se) && se.HTTPStatus == 404 && !started:
			return nil
		case err != nil:
			return fmt.Errorf("GET after the client left: %v", err)
		case info.State == api.StateFinished:
			s.count("", info.Result)
			if info.Result.Status != api.StatusCancelled || info.Result.Steps[0].Verdict != api.VerdictCancelled && info.Result.Steps[0].Verdict != api.VerdictSkipped {
				return fmt.Errorf("after the client left: status %s, steps %+v", info.Result.Status, info.Result.Steps)
			}
			return nil
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// batchKinds are the kinds a batch mixes.
var batchKinds = []string{"ok", "stdin_expected", "nonzero_exit", "sigsegv", "cpu_time_limit", "output_limit", "syscall_blocked", "steps_skipped"}

// batch sends one batch of a job of each of batchKinds and checks every
// line by its key.
func (s *soak) batch(c *client.Client, id string) error {
	var jobs []api.Job
	var checks []func(*api.Result) error
	for i, name := range batchKinds {
		k := s.kind(name)
		j := k.job(s, fmt.Sprintf("%s-%d", id, i))
		j.Key, _ = json.Marshal(i)
		jobs = append(jobs, *j)
		checks = append(checks, k.check)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	seen := make([]bool, len(jobs))
	sum, err := c.BatchJobs(ctx, jobs, 0, func(l *api.BatchLine) error {
		var key int
		if l.Index == nil || l.Result == nil || json.Unmarshal(l.Key, &key) != nil || key != *l.Index || seen[key] {
			return fmt.Errorf("line %+v", l)
		}
		seen[key] = true
		s.count("", l.Result)
		if err := checks[key](l.Result); err != nil {
			return fmt.Errorf("%s: %v", batchKinds[key], err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if sum.Total != len(jobs) || slices.Contains(seen, false) {
		return fmt.Errorf("summary %+v, lines seen %v", sum, seen)
	}
	return nil
}

const batchDisconnectJobs = 4

// batchDisconnect leaves a batch once its first job is done, while the
// others sleep or wait: none of them may be left live.
func (s *soak) batchDisconnect(c *client.Client, id string) error {
	jobs := []api.Job{{ID: id + "-0", Steps: []api.Step{{Argv: []string{"true"}}}}}
	for i := 1; i < batchDisconnectJobs; i++ {
		jobs = append(jobs, *readyJob(fmt.Sprintf("%s-%d", id, i)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.BatchJobs(ctx, jobs, 1, func(l *api.BatchLine) error {
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		return fmt.Errorf("the batch after the client left: %v", err)
	}
	// A batch's finished jobs leave the registry at once: each must be
	// gone soon.
	for _, j := range jobs[1:] {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := c.Get(context.Background(), j.ID)
			var se *client.StatusError
			if errors.As(err, &se) && se.HTTPStatus == 404 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("batch job %s still live 10 s after its client left (%v)", j.ID, err)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	return nil
}

func (s *soak) kind(name string) *soakKind {
	for i := range s.kinds {
		if s.kinds[i].name == name {
			return &s.kinds[i]
		}
	}
	panic("no soak kind " + name)
}

// rest waits until the daemon is at rest: no job live, no sandbox process
// or cgroup but the warm ones, the pool full, no workspace but the empty
// ones made ahead.
func (s *soak) rest() {
	t := s.t
	t.Helper()
	ctx := ctxT(t)
	left := hostcheck.Settle(soakSettle, func() []string {
		var found []string
		if runs, err := s.d.c.Runs(ctx); err != nil || len(runs) > 0 {
			found = append(found, fmt.Sprintf("live jobs: %d (%v)", len(runs), err))
		}
		if info, err := s.d.c.Info(ctx); err != nil || info.Pool.WarmReady < info.Pool.WarmSandboxes {
			found = append(found, fmt.Sprintf("warm pool not full: %+v (%v)", info, err))
		}
		found = append(found, hostcheck.Busy()...)
		found = append(found, strayGroups(s.d.subtree)...)
		found = append(found, s.d.strayWorkspaces(t)...)
		return found
	})
	if len(left) > 0 {
		t.Fatalf("the daemon did not come to rest within %v: %v", soakSettle, left)
	}
}

// soakMeasure is the daemon at rest at one point of the soak.
type soakMeasure struct {
	name       string
	rss        int64
	p50, p99   time.Duration
	fds        int
	fdList     string
	goroutines int
	groups     int // run cgroups (the warm sandboxes')
	mounts     int // mount points under the state dir

	helper    int // the helper's pid
	helperFDs int
	helperLst string
}

// measure times the probe job, then, once its results have expired and
// every connection is closed, takes the daemon's figures. From the second
// measure on, descriptors and goroutines are awaited until they come back
// to those of the first, for soakSettle at most.
func (s *soak) measure(name string, probes int) soakMeasure {
	t := s.t
	t.Helper()
	m := soakMeasure{name: name}
	m.p50, m.p99 = s.probe(name, probes)
	s.rest()
	// Every result expires within twice the ttl, the oldest first: when
	// the last job's has, the registry is empty.
	last := fmt.Sprintf("probe-%s-%d", name, probes-1)
	ctx := ctxT(t)
	if hostcheck.Settle(soakSettle, func() []string {
		if _, err := s.d.c.Get(ctx, last); err == nil {
			return []string{last}
		}
		return nil
	}) != nil {
		t.Fatalf("the result of %s has not expired %v after its job (result_ttl %v)", last, soakSettle, soakResultTTL)
	}
	pid := s.d.cmd.Process.Pid
	// The daemon's memory is its own and its helper's.
	m.helper = s.d.helperPID()
	m.rss = vmRSS(pid)
	if m.helper != 0 {
		m.rss += vmRSS(m.helper)
	}
	m.groups = len(hostcheck.RunGroups(s.d.subtree))
	m.mounts = countMounts(s.d.stateDir + "/")
	first := s.first
	hostcheck.Settle(soakSettle, func() []string {
		s.d.c.Close()
		m.goroutines = s.goroutines()
		s.d.c.Close()
		m.fds, m.fdList = openFDs(pid)
		m.helperFDs, m.helperLst = openFDs(m.helper)
		if first == nil || m.fds == first.fds && m.goroutines == first.goroutines && m.helperFDs == first.helperFDs {
			return nil
		}
		return []string{"not yet"}
	})
	if first == nil {
		s.first = &m
	}
	return m
}

// probe runs /bin/true n times alone, each once the pool is full again (the
// daemon's work between requests does not count), and gives the p50 and
// p99 of the time to its answer.
func (s *soak) probe(name string, n int) (p50, p99 time.Duration) {
	t := s.t
	t.Helper()
	ctx := ctxT(t)
	var lat []time.Duration
	for i := 0; i < n; i++ {
		for {
			info, err := s.d.c.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.Pool.WarmReady >= info.Pool.WarmSandboxes {
				break
			}
			time.Sleep(time.Millisecond)
		}
		start := time.Now()
		res, err := s.d.c.Run(ctx, &api.Job{ID: fmt.Sprintf("probe-%s-%d", name, i), Steps: []api.Step{{Argv: []string{"/bin/true"}}}})
		lat = append(lat, time.Since(start))
		if err != nil || res.Steps[0].Verdict != api.VerdictOK {
			t.Fatalf("probe: %v %+v", err, res)
		}
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[(len(lat)*99)/100]
}

// vmRSS is a process's resident set size in bytes.
func vmRSS(pid int) int64 {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// openFDs counts a process's open file descriptors and lists what they are.
func openFDs(pid int) (int, string) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, _ := os.ReadDir(dir)
	var list []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		list = append(list, e.Name()+" -> "+target)
	}
	return len(ents), strings.Join(list, "\n")
}

// countMounts counts the host's mount points under prefix.
func countMounts(prefix string) int {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4]+"/", prefix) {
			n++
		}
	}
	return n
}

// goroutines reads the daemon's go_goroutines from GET /metrics: the
// least of a few reads, as gathering the metrics starts goroutines of its
// own.
func (s *soak) goroutines() int {
	least := -1
	for i := 0; i < 5; i++ {
		m, err := s.d.c.Metrics(ctxT(s.t))
		if err != nil {
			s.t.Fatal(err)
		}
		for _, line := range strings.Split(m, "\n") {
			if rest, ok := strings.CutPrefix(line, "go_goroutines "); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(rest)); err == nil && (least < 0 || n < least) {
					least = n
				}
			}
		}
	}
	if least < 0 {
		s.t.Fatal("GET /metrics has no go_goroutines")
	}
	return least
}

func fmtMS(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

// countList reads like "a=3 b=1", by name.
func countList(m map[string]int) string {
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		fmt.Fprintf(&b, "%s=%d ", k, m[k])
	}
	return strings.TrimSpace(b.String())
}
