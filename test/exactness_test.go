package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

// Verdicts and measurements a judge relies on, at their edges: a cut
// output is always output_limit, a signal is the sandbox's limit only
// when the sandbox's limit sent it, and measurements are the program's
// own.

// TestDaemonOutputCutIsAlwaysOutputLimit runs, many times, a program that
// writes one byte past output_bytes and exits at once: the cut must be
// output_limit every time (never ok with the output silently shortened),
// the expected answer equal to the kept prefix must not match, and the job
// must stop there.
func TestDaemonOutputCutIsAlwaysOutputLimit(t *testing.T) {
	d := startDaemon(t, "")
	const limit = 1024
	prefix := strings.Repeat("0", limit)
	// dash's printf writes the 1,025 zeros in one write, then sh exits.
	step := api.Step{
		Argv:           []string{"sh", "-c", fmt.Sprintf("printf '%%0%dd' 0", limit+1)},
		Limits:         api.Limits{OutputBytes: limit},
		ExpectedStdout: &prefix,
	}
	const runs = 60
	var wg sync.WaitGroup
	errs := make(chan string, runs)
	for i := 0; i < runs; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := d.c.Run(context.Background(), &api.Job{Steps: []api.Step{step, {Argv: []string{"true"}}}})
			if err != nil {
				errs <- err.Error()
				return
			}
			s := res.Steps[0]
			switch {
			case s.Verdict != api.VerdictOutputLimit:
				errs <- fmt.Sprintf("verdict %s (stdout %d bytes, truncated %v)", s.Verdict, len(s.Stdout), s.StdoutTruncated)
			case len(s.Stdout) != limit || !s.StdoutTruncated:
				errs <- fmt.Sprintf("stdout %d bytes, truncated %v", len(s.Stdout), s.StdoutTruncated)
			case s.StdoutMatches == nil || *s.StdoutMatches:
				errs <- "a cut stdout matched the expected answer"
			case res.Steps[1].Verdict != api.VerdictSkipped:
				errs <- "the job went on after the output limit: second step " + string(res.Steps[1].Verdict)
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for e := range errs {
		if n++; n <= 5 {
			t.Error(e)
		}
	}
	if n > 0 {
		t.Errorf("%d of %d runs wrong", n, runs)
	}
}

// TestDaemonSignalsOfTheProgramsOwnLimits: a program that lowers its own
// CPU or file-size rlimit and dies of SIGXCPU or SIGXFSZ did not pass the
// sandbox's limits: it is signaled, with the signal's name. The sandbox's
// own file-size limit is still output_limit.
func TestDaemonSignalsOfTheProgramsOwnLimits(t *testing.T) {
	d := startDaemon(t, "")
	for _, tc := range []struct {
		name   string
		script string
		limits api.Limits
		want   api.Verdict
		signal string
	}{
		{"own cpu rlimit", "ulimit -S -t 1; exec sh -c 'while :; do :; done'", api.Limits{CPUTimeMS: 10_000}, api.VerdictSignaled, "SIGXCPU"},
		{"own file-size rlimit", "ulimit -f 8; exec head -c 100000 /dev/zero > f", api.Limits{FileSizeBytes: 1 << 20}, api.VerdictSignaled, "SIGXFSZ"},
		{"the sandbox's file-size limit", "exec head -c 100000 /dev/zero > f", api.Limits{FileSizeBytes: 4096}, api.VerdictOutputLimit, "SIGXFSZ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", tc.script}, Limits: tc.limits}}})
			if err != nil {
				t.Fatal(err)
			}
			s := res.Steps[0]
			if s.Verdict != tc.want || s.Signal != tc.signal {
				t.Fatalf("verdict %s signal %q, want %s %s: %s", s.Verdict, s.Signal, tc.want, tc.signal, summary(s))
			}
		})
	}
}

// TestDaemonWallTimeNeverShort runs short sleeps while every CPU is busy:
// the init may notice an exec late, but the reported wall time is never
// shorter than the program ran by its own clock (from the start of its
// main to its exit).
func TestDaemonWallTimeNeverShort(t *testing.T) {
	d := startDaemon(t, "concurrency = 10")
	prog, err := os.ReadFile(filepath.Join(programsDir, "selftime"))
	if err != nil {
		t.Fatal(err)
	}
	// Spinners in sandboxes of their own keep the CPUs busy.
	ctx, stop := context.WithCancel(context.Background())
	var spin sync.WaitGroup
	for i := 0; i < 8; i++ {
		spin.Add(1)
		go func() {
			defer spin.Done()
			d.c.Run(ctx, &api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", "while :; do :; done"}, Limits: api.Limits{WallTimeMS: 30_000}}}})
		}()
	}
	defer func() { stop(); spin.Wait() }()
	short := 0
	least := 1e9
	for i := 0; i < 100; i++ {
		res, err := d.c.Run(ctxT(t), &api.Job{
			Files: map[string]api.File{"selftime": {Base64: base64Std(string(prog)), Mode: "0755"}},
			Steps: []api.Step{{Argv: []string{"./selftime", "10000"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Steps[0]
		if s.Verdict != api.VerdictOK {
			t.Fatalf("verdict %s: %s", s.Verdict, summary(s))
		}
		ran, err := strconv.ParseFloat(strings.TrimSpace(s.Stdout), 64)
		if err != nil {
			t.Fatalf("selftime's output %q", s.Stdout)
		}
		if margin := s.WallTimeMS - ran/1e6; margin < 0 {
			short++
			least = minf(least, margin)
		}
	}
	if short > 0 {
		t.Errorf("%d of 100 runs reported less wall time than they ran by their own clock (by up to %.3f ms)", short, -least)
	}
}

func minf(a, b float64) float64 {
	if a < b {
		return a
	}
	return b
}

// TestDaemonMaxRSSIsTheProgramsOwn: max_rss_bytes is the program's own
// peak: /bin/true's is about a MiB (as bare), not the few MiB of the
// memory its process was cloned from; a program that touches 64 MiB reads
// a little above that.
func TestDaemonMaxRSSIsTheProgramsOwn(t *testing.T) {
	d := startDaemon(t, "")
	info, err := d.c.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !info.Features["max_rss_own"] {
		t.Fatalf("max_rss_own is not offered: %v", info.Features)
	}
	small, err := d.c.Run(ctxT(t), job("/bin/true"))
	if err != nil {
		t.Fatal(err)
	}
	big, err := d.c.Run(ctxT(t), job("python3", "-c", "b = bytearray(64 << 20)"))
	if err != nil {
		t.Fatal(err)
	}
	s, b := small.Steps[0], big.Steps[0]
	t.Logf("max_rss_bytes: /bin/true %d KiB, python with 64 MiB %d KiB", s.MaxRSSBytes>>10, b.MaxRSSBytes>>10)
	if s.MaxRSSBytes <= 0 || s.MaxRSSBytes > 2<<20 {
		t.Errorf("/bin/true: max_rss_bytes %d, want its own peak (about 1 MiB)", s.MaxRSSBytes)
	}
	if b.MaxRSSBytes < 64<<20 || b.MaxRSSBytes > 100<<20 {
		t.Errorf("python with 64 MiB: max_rss_bytes %d", b.MaxRSSBytes)
	}
}

// TestDaemonFileSizeByAnyProcess: file_size_bytes is output_limit whenever
// a process of the step passed it, in the workspace, /tmp or /dev/shm,
// whether SIGXFSZ ended that process, it caught the signal, or it was a
// child the step's program outlived; and only then: a file of exactly the
// limit, a file larger than the limit that was there before the step, and
// a program that lowered its own limit are not.
func TestDaemonFileSizeByAnyProcess(t *testing.T) {
	d := startDaemon(t, "")
	const limit = 64 << 10
	catch := `import signal, sys
signal.signal(signal.SIGXFSZ, lambda *a: None)
try:
    open(sys.argv[1], "wb").write(b"x" * 100000)
except OSError as e:
    print(e.strerror)
    sys.exit(3)`
	for _, tc := range []struct {
		name string
		job  api.Job
		want api.Verdict
	}{
		{"python catches SIGXFSZ", api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", catch, "out"}}}}, api.VerdictOutputLimit},
		{"python ignores it (its default), in /tmp", api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", `open("/tmp/x", "wb").write(b"x" * 100000)`}}}}, api.VerdictOutputLimit},
		{"a shell's child dies of it, the shell exits 0", api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", "dd if=/dev/zero of=/dev/shm/x bs=1k count=100 2>/dev/null; exit 0"}}}}, api.VerdictOutputLimit},
		{"a sparse file past it", api.Job{Steps: []api.Step{{Argv: []string{"truncate", "-s", "65537", "f"}}}}, api.VerdictOutputLimit},
		{"in a job's workspace, second step", api.Job{Steps: []api.Step{{Argv: []string{"true"}}, {Argv: []string{"sh", "-c", "head -c 70000 /dev/zero > f 2>/dev/null; exit 0"}}}}, api.VerdictOutputLimit},
		{"exactly the limit", api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", "head -c 65536 /dev/zero > f"}}}}, api.VerdictOK},
		{"a larger file from before the step", api.Job{Files: map[string]api.File{"big": {Content: strings.Repeat("b", 100000)}},
			Steps: []api.Step{{Argv: []string{"sh", "-c", "cat big > /dev/null; head -c 1000 /dev/zero > small"}}}}, api.VerdictOK},
		{"its own lower limit", api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", "ulimit -f 8; exec head -c 100000 /dev/zero > f"}}}}, api.VerdictSignaled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := tc.job
			for i := range j.Steps {
				j.Steps[i].Limits.FileSizeBytes = limit
			}
			res, err := d.c.Run(ctxT(t), &j)
			if err != nil {
				t.Fatal(err)
			}
			s := res.Steps[len(res.Steps)-1]
			if s.Verdict != tc.want {
				t.Fatalf("verdict %s, want %s: %s", s.Verdict, tc.want, summary(s))
			}
		})
	}
}
