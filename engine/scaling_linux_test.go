package engine

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/nsjail"
)

// The benchmarks below measure, per run, the parts of a step's path that
// every run on the host shares (docs/scaling.md): the helper's command
// loop, the uid lock file, the engine's locks. As root:
//
//	go test -tags embedhelper -run '^$' -bench . -benchtime 400x ./engine

// helperCPU is the CPU time the running helper processes have used, and
// that of the inits they reaped (with their programs, which the inits
// reaped).
func helperCPU(b *testing.B) (own, reaped time.Duration) {
	for _, pid := range nsjail.HelperPIDs() {
		s, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatal(err)
		}
		// Fields after the command's closing parenthesis: utime and stime
		// are the 12th and 13th of them, in clock ticks (100 a second).
		f := strings.Fields(string(s[strings.LastIndexByte(string(s), ')')+2:]))
		var u, st, cu, cs int64
		fmt.Sscan(f[11], &u)
		fmt.Sscan(f[12], &st)
		fmt.Sscan(f[13], &cu)
		fmt.Sscan(f[14], &cs)
		own += time.Duration(u+st) * 10 * time.Millisecond
		reaped += time.Duration(cu+cs) * 10 * time.Millisecond
	}
	return own, reaped
}

func selfCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// mutexWait is the time goroutines of this process have waited for Go
// mutexes, as far as the mutex profile has sampled (every event while
// SetMutexProfileFraction is 1).
func mutexWait() time.Duration {
	var cycles, perSecond float64
	var sb strings.Builder
	pprof.Lookup("mutex").WriteTo(&sb, 1)
	for _, line := range strings.Split(sb.String(), "\n") {
		// "cycles/second=N", then a "<delay in cycles> <count> @ ..." line
		// per call site.
		if v, ok := strings.CutPrefix(line, "cycles/second="); ok {
			fmt.Sscan(v, &perSecond)
		} else if f := strings.Fields(line); len(f) > 2 && f[2] == "@" {
			var d float64
			fmt.Sscan(f[0], &d)
			cycles += d
		}
	}
	if perSecond == 0 {
		return 0
	}
	return time.Duration(cycles / perSecond * float64(time.Second))
}

// BenchmarkHelperSpawn is one helper making sandboxes one after another:
// the time from a spawn request to its answer is what the helper's loop
// spends on each sandbox (clone3 with new namespaces, the id maps, the
// init's start), during which it serves no other request.
func BenchmarkHelperSpawn(b *testing.B) {
	e := rootEngine(b, DefaultConfig())
	nsjail.SetHelpers(nsjail.HelperOptions{Count: 1})
	spec := e.spec(&e.profile, e.initID+2)
	warm, err := nsjail.Prepare(spec, nsjail.Files{})
	if err != nil {
		b.Fatal(err)
	}
	warm.Kill()
	<-warm.Done()
	cpu0, _ := helperCPU(b)
	var inLoop time.Duration
	for b.Loop() {
		t := time.Now()
		p, err := nsjail.Prepare(spec, nsjail.Files{})
		inLoop += time.Since(t)
		if err != nil {
			b.Fatal(err)
		}
		<-p.Events() // Ready: the init built its root on its own time
		p.Kill()
		<-p.Done()
	}
	b.ReportMetric(float64(inLoop.Microseconds())/float64(b.N), "us-answer/run")
	cpu1, _ := helperCPU(b)
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/float64(b.N), "us-helper-cpu/run")
}

// BenchmarkStepsParallel runs /bin/true steps from as many goroutines as
// CPUs, each building its sandbox (no pools): the helper's CPU and the
// engine process's per run, and the time its goroutines waited on Go
// mutexes per run.
func BenchmarkStepsParallel(b *testing.B) {
	e := rootEngine(b, DefaultConfig())
	req := func() *StepRequest { return &StepRequest{Argv: []string{"/bin/true"}} }
	if r, err := e.RunStep(context.Background(), req()); err != nil || r.Verdict != api.VerdictOK {
		b.Fatalf("%s %v", r.Verdict, err)
	}
	runtime.SetMutexProfileFraction(1)
	defer runtime.SetMutexProfileFraction(0)
	cpu0, reaped0 := helperCPU(b)
	self0, mu0 := selfCPU(), mutexWait()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if r, err := e.RunStep(context.Background(), req()); err != nil || r.Verdict != api.VerdictOK {
				b.Errorf("%s %v", r.Verdict, err)
				return
			}
		}
	})
	b.StopTimer()
	e.retiring.Wait()
	n := float64(b.N)
	cpu1, reaped1 := helperCPU(b)
	b.ReportMetric(float64((cpu1-cpu0).Microseconds())/n, "us-helper-cpu/run")
	b.ReportMetric(float64((reaped1-reaped0).Microseconds())/n, "us-sandbox-cpu/run")
	b.ReportMetric(float64((selfCPU()-self0).Microseconds())/n, "us-engine-cpu/run")
	b.ReportMetric(float64((mutexWait()-mu0).Microseconds())/n, "us-mutex-wait/run")
}

// BenchmarkIDPool is a uid's acquire and release: a byte lock taken and
// dropped in the host-wide lock file, while held others stand for the
// sandboxes alive on the host (the kernel looks through a file's locks on
// each change).
func BenchmarkIDPool(b *testing.B) {
	for _, held := range []int{0, 1000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) { benchIDPool(b, held) })
	}
}

func benchIDPool(b *testing.B, held int) {
	e := rootEngine(b, DefaultConfig())
	for range held {
		if _, err := e.ids.acquire(); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		id, err := e.ids.acquire()
		if err != nil {
			b.Fatal(err)
		}
		e.ids.release(id)
	}
}

// BenchmarkCgroupsParallel makes and removes a run's cgroups (every
// hierarchy a sandbox uses) from as many goroutines as CPUs: against
// BenchmarkCgroupsSerial, how far the kernel lets them go in parallel (it
// makes and removes every cgroup under one host-wide lock).
func BenchmarkCgroupsParallel(b *testing.B) {
	e := rootEngine(b, DefaultConfig())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			cgroupsOnce(b, e)
		}
	})
}

// BenchmarkCgroupsSerial is BenchmarkCgroupsParallel one at a time.
func BenchmarkCgroupsSerial(b *testing.B) {
	e := rootEngine(b, DefaultConfig())
	for b.Loop() {
		cgroupsOnce(b, e)
	}
}

func cgroupsOnce(b *testing.B, e *Engine) {
	grp, files, err := e.cgroups.NewSandbox(fmt.Sprintf("%s%d", e.prefix, e.seq.Add(1)), cgroup.Limits{MemoryBytes: e.profile.Defaults.MemoryBytes, PIDs: e.profile.Defaults.PIDs}, int(e.initID), int(e.initID))
	if err != nil {
		b.Error(err)
		return
	}
	files.Close()
	if err := grp.Destroy(); err != nil {
		b.Error(err)
	}
}
