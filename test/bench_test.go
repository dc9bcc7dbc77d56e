package test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// The benchmarks time one run of /bin/true: bare (os/exec: fork, exec,
// wait) and through the engine (namespaces, cgroups, seccomp, measured and
// judged), in the same process and the same run, so that their ratio means
// something on any machine. They look inside; make bench (test/bench)
// measures the daemon and sandboxd exec from outside.

func BenchmarkBareTrue(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSandboxTrue(b *testing.B) {
	eng, err := engine.New(engine.DefaultConfig(), engine.Options{RunPrefix: "bench-"})
	if err != nil {
		b.Fatal(err)
	}
	req := &engine.StepRequest{Argv: []string{"/bin/true"}}
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
