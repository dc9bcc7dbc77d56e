package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// The judge case: what a judge's submission costs through the daemon
// against the same work with no sandbox. A submission is one compile of a
// small C++ solution (testdata/sum.cpp, g++ -O2) and 20 test runs of the
// binary, each checked against the test's answer. Through the daemon the
// compile is a job that keeps the binary in the file cache, and each test a
// job of its own that names the binary and the test's input from the cache
// and the answer as expected_stdout. With no sandbox it is
// testdata/judge.sh: bash, g++ and the binary run directly. Both ways run
// submissions with two clients at once (two workers, each submitting one
// after another), in interleaved rounds.

//go:embed testdata/sum.cpp
var judgeSource string

//go:embed testdata/judge.sh
var judgeScript []byte

// judgeTests is the number of tests of a submission, judgeMinBytes and
// judgeMaxBytes the sizes of the first and the last test input (the others
// in between, in geometric steps).
const (
	judgeTests    = 20
	judgeMinBytes = 1 << 10
	judgeMaxBytes = 1 << 20
)

// The ways of the judge case.
const (
	wayJudgeDaemon = "sandboxd (POST /v1/run)"
	wayJudgeScript = "bash script, no sandbox"
)

// Judge is the judge case's figures.
type Judge struct {
	Tests          int      `json:"tests_per_submission"`
	TestBytesTotal int64    `json:"test_input_bytes_total"`
	Clients        int      `json:"clients"`
	Rounds         int      `json:"rounds"`
	Daemon         JudgeWay `json:"daemon"`
	Script         JudgeWay `json:"script"`
	RateVsScript   float64  `json:"daemon_vs_script"` // submissions/s through the daemon over the script's
	DurationS      float64  `json:"duration_s"`       // the whole case: writing and uploading the tests, warming up, measuring
}

// JudgeWay is one way of judging: its submissions, their rate with
// Judge.Clients at once, the latency of a whole submission, of its compile
// and of its tests (as a client sees them, with the other client busy
// too), and the CPU per submission: the spawner's and all it reaped (the
// daemon with its helper and the sandboxes; this program with bash, g++
// and the runs), and the daemon's own.
type JudgeWay struct {
	Way                   string  `json:"way"`
	Submissions           int     `json:"submissions"`
	WallS                 float64 `json:"wall_s"`
	PerS                  float64 `json:"submissions_per_s"`
	P50MS                 float64 `json:"submission_p50_ms"`
	MaxMS                 float64 `json:"submission_max_ms"`
	CompileP50MS          float64 `json:"compile_p50_ms"`
	TestsP50MS            float64 `json:"tests_p50_ms"` // all 20 tests of a submission
	CPUMSPerSubmission    float64 `json:"cpu_ms_per_submission"`
	DaemonCPUMSPerSubmit  float64 `json:"daemon_cpu_ms_per_submission"`
	total, compile, tests []time.Duration
	wall, cpu, daemonCPU  time.Duration
	submit                func(ctx context.Context, n int) (compile, tests time.Duration, err error)
	viaDaemon             bool
}

// judgeTest is one test: its input on the host and in the cache, and the
// answer.
type judgeTest struct {
	in, ans string // host paths
	id      string // the input's cache id
	answer  string
}

// judge measures the judge case: n submissions of each way, in rounds.
func (b *bench) judge(ctx context.Context, n, rounds int) (Judge, error) {
	r := Judge{Tests: judgeTests, Clients: workers, Rounds: rounds}
	start := time.Now()
	dir := filepath.Join(b.dir, "judge")
	testDir := filepath.Join(dir, "tests")
	if err := os.MkdirAll(testDir, 0o755); err != nil {
		return r, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "judge.sh")
	if err := os.WriteFile(script, judgeScript, 0o755); err != nil {
		return r, err
	}
	tests, total, err := b.judgeTests(ctx, testDir)
	if err != nil {
		return r, err
	}
	r.TestBytesTotal = total

	var seq atomic.Int64 // every submission's number, so each is a binary of its own
	source := func() string {
		return strings.Replace(judgeSource, "SUBMISSION", fmt.Sprintf("submission %d", seq.Add(1)), 1)
	}
	d := &JudgeWay{Way: wayJudgeDaemon, viaDaemon: true}
	d.submit = func(ctx context.Context, _ int) (time.Duration, time.Duration, error) {
		return b.judgeViaDaemon(ctx, source(), tests)
	}
	s := &JudgeWay{Way: wayJudgeScript}
	s.submit = func(ctx context.Context, _ int) (time.Duration, time.Duration, error) {
		return judgeViaScript(ctx, script, dir, testDir, source())
	}
	ways := []*JudgeWay{d, s}
	for _, w := range ways { // warm-up: g++'s files in the page cache, the verdicts right
		if _, _, err := w.submit(ctx, 0); err != nil {
			return r, fmt.Errorf("judge, %s: warm-up: %w", w.Way, err)
		}
	}
	per := (n + rounds - 1) / rounds
	for round := range rounds {
		for i := range ways {
			if err := b.judgeBlock(ctx, ways[(round+i)%len(ways)], per); err != nil {
				return r, err
			}
		}
	}
	for _, w := range ways {
		w.Submissions = len(w.total)
		w.WallS = w.wall.Seconds()
		w.PerS = float64(w.Submissions) / w.WallS
		w.P50MS, w.MaxMS = ms(percentile(w.total, 0.5)), ms(percentile(w.total, 1))
		w.CompileP50MS, w.TestsP50MS = ms(percentile(w.compile, 0.5)), ms(percentile(w.tests, 0.5))
		w.CPUMSPerSubmission = ms(w.cpu) / float64(w.Submissions)
		w.DaemonCPUMSPerSubmit = ms(w.daemonCPU) / float64(w.Submissions)
	}
	r.Daemon, r.Script = *d, *s
	r.RateVsScript = ratio(d.PerS, s.PerS)
	r.DurationS = time.Since(start).Seconds()
	return r, nil
}

// judgeBlock runs n submissions of w with two workers at once and charges
// their wall and CPU time to w.
func (b *bench) judgeBlock(ctx context.Context, w *JudgeWay, n int) error {
	before, err := b.counters()
	if err != nil {
		return err
	}
	var next atomic.Int64
	var mu sync.Mutex
	errs := make(chan error, workers)
	start := time.Now()
	for range workers {
		go func() {
			for k := next.Add(1); k <= int64(n); k = next.Add(1) {
				t := time.Now()
				compile, tests, err := w.submit(ctx, int(k))
				if err == nil {
					err = ctx.Err()
				}
				if err != nil {
					next.Store(int64(n))
					errs <- fmt.Errorf("judge, %s: %w", w.Way, err)
					return
				}
				mu.Lock()
				w.total = append(w.total, time.Since(t))
				w.compile, w.tests = append(w.compile, compile), append(w.tests, tests)
				mu.Unlock()
			}
			errs <- nil
		}()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		return first
	}
	w.wall += time.Since(start)
	if w.viaDaemon {
		time.Sleep(settle)
	}
	after, err := b.counters()
	if err != nil {
		return err
	}
	if w.viaDaemon {
		w.daemonCPU += after.daemon.own - before.daemon.own
		w.cpu += after.daemon.own + after.daemon.children - before.daemon.own - before.daemon.children
	} else {
		w.cpu += after.children + after.self - before.children - before.self
	}
	return nil
}

// judgeTests writes the tests' inputs (lines of integers, from
// judgeMinBytes to judgeMaxBytes) and answers (their sums) into dir, and
// uploads the inputs to the daemon's cache, as a judge does once per
// problem.
func (b *bench) judgeTests(ctx context.Context, dir string) ([]judgeTest, int64, error) {
	var tests []judgeTest
	var total int64
	rng := rand.New(rand.NewPCG(20, 20))
	for i := range judgeTests {
		size := int(float64(judgeMinBytes) * math.Pow(float64(judgeMaxBytes)/judgeMinBytes, float64(i)/(judgeTests-1)))
		var in []byte
		var sum int64
		for len(in) < size {
			x := rng.Int64N(2_000_000_001) - 1_000_000_000
			sum += x
			in = strconv.AppendInt(in, x, 10)
			in = append(in, " \n"[rng.IntN(2)])
		}
		t := judgeTest{in: filepath.Join(dir, fmt.Sprintf("%d.in", i)), ans: filepath.Join(dir, fmt.Sprintf("%d.ans", i)),
			answer: strconv.FormatInt(sum, 10)}
		if err := os.WriteFile(t.in, in, 0o644); err != nil {
			return nil, 0, err
		}
		if err := os.WriteFile(t.ans, []byte(t.answer+"\n"), 0o644); err != nil {
			return nil, 0, err
		}
		cf, err := b.d.client.Upload(ctx, bytes.NewReader(in))
		if err != nil {
			return nil, 0, fmt.Errorf("judge: upload test %d: %w", i, err)
		}
		t.id = cf.ID
		total += int64(len(in))
		tests = append(tests, t)
	}
	return tests, total, nil
}

// judgeViaDaemon is one submission through the daemon: a job compiles src
// and keeps the binary in the cache, then one job per test runs it with
// the test's cached input as stdin and its answer as expected_stdout, each
// of which must be ok and match.
func (b *bench) judgeViaDaemon(ctx context.Context, src string, tests []judgeTest) (compile, run time.Duration, err error) {
	c := b.d.client
	t0 := time.Now()
	res, err := c.Run(ctx, &api.Job{
		Files:     map[string]api.File{"sol.cpp": {Content: src}},
		Steps:     []api.Step{{Argv: []string{"g++", "-O2", "-o", "sol", "sol.cpp"}}},
		KeepFiles: []string{"sol"},
	})
	if err != nil {
		return 0, 0, fmt.Errorf("compile: %w", err)
	}
	if _, err := oneStep(res, api.VerdictOK); err != nil {
		return 0, 0, fmt.Errorf("compile: %w", err)
	}
	bin, ok := res.Kept["sol"]
	if !ok {
		return 0, 0, fmt.Errorf("compile: the binary was not kept: %s", res.Message)
	}
	t1 := time.Now()
	for i, t := range tests {
		res, err := c.Run(ctx, &api.Job{
			Files: map[string]api.File{"sol": {Cached: bin.ID}},
			Steps: []api.Step{{Argv: []string{"./sol"}, StdinCached: t.id, ExpectedStdout: &t.answer}},
		})
		if err != nil {
			return 0, 0, fmt.Errorf("test %d: %w", i, err)
		}
		step, err := oneStep(res, api.VerdictOK)
		if err != nil {
			return 0, 0, fmt.Errorf("test %d: %w", i, err)
		}
		if step.StdoutMatches == nil || !*step.StdoutMatches {
			return 0, 0, fmt.Errorf("test %d: stdout %q, want %q", i, step.Stdout, t.answer)
		}
	}
	return t1.Sub(t0), time.Since(t1), nil
}

// judgeViaScript is one submission with no sandbox: judge.sh compiles src
// in a directory of its own under dir and runs every test in testDir.
func judgeViaScript(ctx context.Context, script, dir, testDir, src string) (compile, run time.Duration, err error) {
	work, err := os.MkdirTemp(dir, "sub-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(work)
	srcPath := filepath.Join(work, "sol.cpp")
	if err := os.WriteFile(srcPath, []byte(src), 0o644); err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, "/bin/bash", script, srcPath, work, testDir, strconv.Itoa(judgeTests))
	cmd.Env = plainEnv
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("%w: %s", err, stderr.Bytes())
	}
	// Its output is the times before and after the compile and after the
	// tests ($EPOCHREALTIME).
	var t [3]float64
	f := strings.Fields(out.String())
	if len(f) != len(t) {
		return 0, 0, fmt.Errorf("judge.sh printed %q, want three times", out.String())
	}
	for i := range t {
		if t[i], err = strconv.ParseFloat(f[i], 64); err != nil {
			return 0, 0, fmt.Errorf("judge.sh printed %q, want three times", out.String())
		}
	}
	compile = time.Duration((t[1] - t[0]) * float64(time.Second))
	run = time.Duration((t[2] - t[1]) * float64(time.Second))
	return compile, run, nil
}
