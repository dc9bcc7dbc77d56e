package test

import (
	"context"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/daemon"
)

// The benchmarks time one run of /bin/true: bare (os/exec: fork, exec,
// wait) and through the engine (namespaces, cgroups, seccomp, measured and
// judged), in the same process and the same run, so that their ratio means
// something on any machine.

func BenchmarkBareTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSandboxTrue(b *testing.B) {
	eng, err := daemon.NewEngine(daemon.EngineConfig{RunPrefix: "bench-"})
	if err != nil {
		b.Fatal(err)
	}
	req := &daemon.StepRequest{Argv: []string{"/bin/true"}}
	var setup time.Duration
	for b.Loop() {
		res, err := eng.RunStep(context.Background(), req)
		if err != nil || res.Verdict != api.VerdictOK {
			b.Fatalf("%v %+v", err, res)
		}
		setup += time.Duration(res.WallTimeMS * float64(time.Millisecond))
	}
	b.ReportMetric(float64(setup.Microseconds())/float64(b.N)/1000, "prog-wall-ms/op")
}

// percentiles reports the p50 and p99 of durations as benchmark metrics.
func percentiles(b *testing.B, d []time.Duration, prefix string) {
	slices.Sort(d)
	p := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(p(0.50), prefix+"p50-ms")
	b.ReportMetric(p(0.99), prefix+"p99-ms")
}

// BenchmarkLatencyBare is os/exec of /bin/true, one at a time: the
// yardstick for BenchmarkLatencyDaemon.
func BenchmarkLatencyBare(b *testing.B) {
	var d []time.Duration
	for b.Loop() {
		t := time.Now()
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t))
	}
	percentiles(b, d, "")
}

// BenchmarkLatencyDaemon is POST /v1/run of /bin/true through the real
// daemon on its socket, one at a time, end to end.
func BenchmarkLatencyDaemon(b *testing.B) {
	d := startDaemon(b, "concurrency = 2\n")
	job := &api.Job{Steps: []api.Step{{Argv: []string{"/bin/true"}}}}
	ctx := context.Background()
	var lat []time.Duration
	for b.Loop() {
		t := time.Now()
		res, err := d.c.Run(ctx, job)
		if err != nil || res.Steps[0].Verdict != api.VerdictOK {
			b.Fatalf("%v %+v", err, res)
		}
		lat = append(lat, time.Since(t))
	}
	percentiles(b, lat, "")
}

// BenchmarkThroughputBare runs /bin/true with os/exec from two workers.
func BenchmarkThroughputBare(b *testing.B) {
	b.SetParallelism(1)
	start := time.Now()
	var wg sync.WaitGroup
	jobs := make(chan struct{})
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				exec.Command("/bin/true").Run()
			}
		}()
	}
	for b.Loop() {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}

// BenchmarkThroughputDaemon is one POST /v1/batch of b.N /bin/true jobs at
// concurrency 2.
func BenchmarkThroughputDaemon(b *testing.B) {
	d := startDaemon(b, "concurrency = 2\n")
	jobs := make([]api.Job, b.N)
	for i := range jobs {
		jobs[i] = api.Job{Steps: []api.Step{{Argv: []string{"/bin/true"}}}}
	}
	b.ResetTimer()
	start := time.Now()
	sum, err := d.c.BatchJobs(context.Background(), jobs, 2, func(*api.BatchLine) error { return nil })
	if err != nil || sum.Verdicts["ok"] != b.N {
		b.Fatalf("%v %+v", err, sum)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "runs/s")
}
