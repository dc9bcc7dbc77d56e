package main

import (
	"context"
	_ "embed"
	"encoding/base64"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

//go:embed testdata/loop.c
var loopSource []byte

// buildLoop compiles testdata/loop.c with the host's gcc into dir.
func buildLoop(dir string) (string, error) {
	src := filepath.Join(dir, "loop.c")
	if err := os.WriteFile(src, loopSource, 0o644); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "loop")
	if out, err := exec.Command("gcc", "-O2", "-o", bin, src).CombinedOutput(); err != nil {
		return "", fmt.Errorf("gcc loop.c: %w\n%s", err, out)
	}
	return bin, nil
}

// loopJob runs the loop binary, sent in the job, with args.
func (b *bench) loopJob(limits api.Limits, args ...string) (*api.Job, error) {
	bin, err := os.ReadFile(b.loopPath)
	if err != nil {
		return nil, err
	}
	return &api.Job{
		Files: map[string]api.File{"loop": {Base64: base64.StdEncoding.EncodeToString(bin), Mode: "0755"}},
		Steps: []api.Step{{Argv: append([]string{"./loop"}, args...), Limits: limits}},
	}, nil
}

// cpuLimitMS is the CPU limit the overshoot is measured against.
const cpuLimitMS = 200

// CPULimit is how far past its CPU limit an endless loop gets before it is
// killed: the CPU time the daemon reports less the limit.
type CPULimit struct {
	LimitMS      float64   `json:"limit_ms"`
	Runs         int       `json:"runs"`
	MedianMS     float64   `json:"overshoot_median_ms"`
	MaxMS        float64   `json:"overshoot_max_ms"`
	OvershootsMS []float64 `json:"overshoots_ms"`
	WallMedianMS float64   `json:"wall_median_ms"`
}

// cpuLimit runs the endless loop n times, one at a time, each of which must
// end as cpu_time_limit.
func (b *bench) cpuLimit(ctx context.Context, n int) (CPULimit, error) {
	r := CPULimit{LimitMS: cpuLimitMS, Runs: n}
	job, err := b.loopJob(api.Limits{CPUTimeMS: cpuLimitMS})
	if err != nil {
		return r, err
	}
	var wall []float64
	for range n {
		res, err := b.d.client.Run(ctx, job)
		if err != nil {
			return r, fmt.Errorf("CPU limit: %w", err)
		}
		step, err := oneStep(res, api.VerdictCPUTimeLimit)
		if err != nil {
			return r, fmt.Errorf("CPU limit: %w", err)
		}
		r.OvershootsMS = append(r.OvershootsMS, step.CPUTimeMS-cpuLimitMS)
		wall = append(wall, step.WallTimeMS)
	}
	r.MedianMS = median(r.OvershootsMS)
	r.MaxMS = slices.Max(r.OvershootsMS)
	r.WallMedianMS = median(wall)
	return r, nil
}

// spreadTarget is about how much CPU the fixed loop of the spread case
// takes: long enough that start-up is noise, short enough for 30 runs.
const spreadTarget = 150 * time.Millisecond

// CPUSpread is how steady the CPU time of one fixed piece of work is from
// run to run, through the daemon and bare.
type CPUSpread struct {
	Iterations uint64     `json:"iterations"`
	Runs       int        `json:"runs"`
	Daemon     SpreadStat `json:"daemon"`
	Bare       SpreadStat `json:"bare"`
}

// SpreadStat is the mean, the (sample) standard deviation and their ratio,
// the coefficient of variation, of CPU times in ms.
type SpreadStat struct {
	MeanMS   float64   `json:"mean_ms"`
	StdDevMS float64   `json:"stddev_ms"`
	CVPct    float64   `json:"cv_pct"`
	TimesMS  []float64 `json:"times_ms"`
}

// cpuSpread runs the loop with a fixed iteration count n times through the
// daemon and n times bare, alternately and one at a time. The daemon's
// figure is its cgroup's; the bare one the child's rusage.
func (b *bench) cpuSpread(ctx context.Context, n int) (CPUSpread, error) {
	r := CPUSpread{Runs: n}
	iters, err := b.calibrateLoop()
	if err != nil {
		return r, err
	}
	r.Iterations = iters
	arg := strconv.FormatUint(iters, 10)
	job, err := b.loopJob(api.Limits{}, arg)
	if err != nil {
		return r, err
	}
	var viaDaemon, bare []float64
	for range n {
		res, err := b.d.client.Run(ctx, job)
		if err != nil {
			return r, fmt.Errorf("CPU spread: %w", err)
		}
		step, err := oneStep(res, api.VerdictOK)
		if err != nil {
			return r, fmt.Errorf("CPU spread: %w", err)
		}
		viaDaemon = append(viaDaemon, step.CPUTimeMS)
		cpu, err := b.bareLoop(arg)
		if err != nil {
			return r, err
		}
		bare = append(bare, ms(cpu))
	}
	r.Daemon, r.Bare = spread(viaDaemon), spread(bare)
	return r, nil
}

// calibrateLoop picks the iteration count that takes about spreadTarget of
// CPU on this machine: the best of three trial runs, scaled.
func (b *bench) calibrateLoop() (uint64, error) {
	const trial = 50_000_000
	best := time.Duration(math.MaxInt64)
	for range 3 {
		cpu, err := b.bareLoop(strconv.Itoa(trial))
		if err != nil {
			return 0, err
		}
		best = min(best, cpu)
	}
	if best <= 0 {
		return 0, fmt.Errorf("loop %d took no CPU time", trial)
	}
	return uint64(float64(trial) * float64(spreadTarget) / float64(best)), nil
}

// bareLoop runs the loop on the host and returns its CPU time.
func (b *bench) bareLoop(arg string) (time.Duration, error) {
	cmd := exec.Command(b.loopPath, arg)
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("bare loop %s: %w", arg, err)
	}
	return cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}

func spread(xs []float64) SpreadStat {
	s := SpreadStat{TimesMS: xs}
	for _, x := range xs {
		s.MeanMS += x
	}
	s.MeanMS /= float64(len(xs))
	if len(xs) > 1 {
		var ss float64
		for _, x := range xs {
			ss += (x - s.MeanMS) * (x - s.MeanMS)
		}
		s.StdDevMS = math.Sqrt(ss / float64(len(xs)-1))
	}
	if s.MeanMS > 0 {
		s.CVPct = 100 * s.StdDevMS / s.MeanMS
	}
	return s
}

func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
