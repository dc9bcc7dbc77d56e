package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// A command is what every way of running is timed with.
type command struct {
	name string
	argv []string
}

var (
	cmdTrue   = command{"/bin/true", []string{"/bin/true"}}
	cmdPython = command{"python3 -c 'print(1)'", []string{"/usr/bin/python3", "-c", "print(1)"}}
)

// The ways a command is run.
const (
	wayBare  = "bare"           // os/exec from this program
	wayFloor = "ns floor"       // the same in fresh namespaces, nothing else
	wayCgrp  = "floor+cgroups"  // the floor in fresh cgroups too (cgroupFloor)
	wayExec  = "sandboxd exec"  // one sandboxd exec process per run
	wayExecD = "exec --socket"  // one sandboxd exec --socket process per run, to the daemon
	wayCtl   = "sandboxctl run" // one sandboxctl run process per run, to the daemon
	wayRun   = "POST /v1/run"   // one request per run to the daemon
	wayBatch = "POST /v1/batch" // every run in one request
)

// workers is the concurrency of the throughput blocks, the batch and the
// daemon: the two clients of the targets, one per CPU of the
// machine kind they were set on.
const workers = 2

// plainEnv is what bare and floor runs get: what the sandbox's profile
// sets, so that python3 starts the same way in both.
var plainEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8"}

// nobody is the host uid (and gid) the floor's user namespace maps its
// root to: unprivileged, as a sandbox's.
const nobody = 65534

// benchCase is one way of running one command, and what was measured of it.
type benchCase struct {
	cmd command
	way string
	run func(context.Context) error
	// settle, if set, runs untimed before each timed run of a latency
	// block: the daemon's background work (refilling its warm sandboxes)
	// is done before a request arrives, and does not count against it.
	settle func(context.Context) error
	// drain, if set, runs after a block, before its CPU is read: it waits
	// for work that the block's runs left in the background.
	drain func() error

	latency  []time.Duration // one run at a time
	rateRuns int             // runs of the throughput blocks, with workers at once
	rateTime time.Duration   // and their wall time

	cpuRuns   int           // runs the CPU figures below are over
	cpu       time.Duration // the spawner and what it reaped: this program or the daemon
	daemonCPU time.Duration // the daemon's own
	clientCPU time.Duration // this program's (forks and waits, the HTTP client)
}

func (c *benchCase) label() string { return c.cmd.name + ", " + c.way }

// viaDaemon reports whether the case's runs are requests to the daemon
// ("POST /v1/run", "POST /v1/batch", "POST /v1/run stdin_cached", ..., and
// the gateway's, which become requests to the daemon),
// whose CPU is then the daemon's rather than this program's children's.
func (c *benchCase) viaDaemon() bool {
	return strings.HasPrefix(c.way, "POST ") || strings.HasPrefix(c.way, "gateway ") || c.way == wayCtl || c.way == wayExecD
}

// bareRunner is os/exec of argv; attr, if not nil, makes its SysProcAttr.
func bareRunner(argv []string, attr func() *syscall.SysProcAttr) func(context.Context) error {
	return func(context.Context) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = plainEnv
		if attr != nil {
			cmd.SysProcAttr = attr()
		}
		return cmd.Run()
	}
}

// floorAttr asks for fresh user, pid, mount, uts, ipc and network
// namespaces, the user namespace's root mapped to nobody, and nothing
// else: no mounts, cgroups, seccomp, rlimits or handshake. What the kernel
// alone charges for the namespaces every sandbox needs.
func floorAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS |
			syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: nobody, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: nobody, Size: 1}},
	}
}

// execRunner is one `sandboxd exec -- ARGV` per run; its verdict must be ok.
func execRunner(bin, stateDir string, argv []string) func(context.Context) error {
	return execArgsRunner(bin, append([]string{"exec", "--state-dir", stateDir, "--"}, argv...))
}

// execSocketRunner is one `sandboxd exec --socket SOCKET -- ARGV` per run:
// the same process, the step run by the daemon on socket.
func execSocketRunner(bin, socket string, argv []string) func(context.Context) error {
	return execArgsRunner(bin, append([]string{"exec", "--socket", socket, "--"}, argv...))
}

// execArgsRunner runs `bin ARGS...`, a sandboxd exec whose verdict must be ok.
func execArgsRunner(bin string, args []string) func(context.Context) error {
	return func(context.Context) error {
		var out, stderr bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("sandboxd exec: %w: %s", err, stderr.Bytes())
		}
		var res api.StepResult
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return fmt.Errorf("sandboxd exec: its output: %w: %.300s", err, out.Bytes())
		}
		if res.Verdict != api.VerdictOK {
			return fmt.Errorf("sandboxd exec: verdict %s (%s)", res.Verdict, res.Message)
		}
		return nil
	}
}

// ctlRunner is one `sandboxctl run -- ARGV` per run, a process that sends
// the job to the daemon on socket; its verdict must be ok (exit status 0).
func ctlRunner(bin, socket string, argv []string) func(context.Context) error {
	args := append([]string{"--socket", socket, "run", "--"}, argv...)
	return func(context.Context) error {
		var out bytes.Buffer
		cmd := exec.Command(bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("sandboxctl run: %w: %.300s", err, out.Bytes())
		}
		return nil
	}
}

// runRunner is one POST /v1/run of argv per run; its verdict must be ok.
func runRunner(c *client.Client, argv []string) func(context.Context) error {
	return jobRunner(c, &api.Job{Steps: []api.Step{{Argv: argv}}})
}

// jobRunner is one POST /v1/run of a one-step job per run; its verdict
// must be ok.
func jobRunner(c *client.Client, job *api.Job) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := c.Run(ctx, job)
		if err != nil {
			return err
		}
		_, err = oneStep(res, api.VerdictOK)
		return err
	}
}

// warmSettle waits (up to a second) until the daemon has every warm
// sandbox it keeps ready again.
func warmSettle(c *client.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		deadline := time.Now().Add(time.Second)
		for {
			info, err := c.Info(ctx)
			if err != nil {
				return err
			}
			if info.Pool.WarmReady >= info.Pool.WarmSandboxes || time.Now().After(deadline) {
				return nil
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}

// oneStep is the step of a one-step job's result, which must have
// completed with verdict v.
func oneStep(res *api.Result, v api.Verdict) (*api.StepResult, error) {
	if res == nil || res.Status != api.StatusCompleted || len(res.Steps) != 1 || res.Steps[0].Verdict != v {
		return nil, fmt.Errorf("want one step judged %s, got %s", v, describe(res))
	}
	return &res.Steps[0], nil
}

func describe(res *api.Result) string {
	if res == nil {
		return "no result"
	}
	s := fmt.Sprintf("status %s", res.Status)
	if res.Message != "" {
		s += " (" + res.Message + ")"
	}
	for _, st := range res.Steps {
		s += fmt.Sprintf(", step %s exit %d %s %q %.200q", st.Verdict, st.ExitCode, st.Signal, st.Message, st.Stderr)
	}
	return s
}

// measure times every case in rounds. Each round runs a block of each case
// one at a time, then a block of each with two workers, the order rotated
// from round to round: whatever else the machine does then falls on every
// case alike, and the ratios compare like with like.
func (b *bench) measure(ctx context.Context, cases []*benchCase) error {
	return b.measureN(ctx, cases, b.runs, b.rounds, b.warmup)
}

// measureN is measure with runs runs of each case one at a time (and as
// many with two workers) in rounds rounds, after warmup runs of each.
func (b *bench) measureN(ctx context.Context, cases []*benchCase, runs, rounds, warmup int) error {
	for _, c := range cases {
		for range warmup {
			if err := c.run(ctx); err != nil {
				return fmt.Errorf("%s: warm-up: %w", c.label(), err)
			}
		}
	}
	per := (runs + rounds - 1) / rounds
	for r := range rounds {
		k := r % len(cases)
		order := slices.Concat(cases[k:], cases[:k])
		for _, c := range order {
			if err := b.latencyBlock(ctx, c, per); err != nil {
				return err
			}
		}
		for _, c := range order {
			if err := b.rateBlock(ctx, c, per); err != nil {
				return err
			}
		}
	}
	return nil
}

// latencyBlock does n runs one after the other, timing each.
func (b *bench) latencyBlock(ctx context.Context, c *benchCase, n int) error {
	before, err := b.counters()
	if err != nil {
		return err
	}
	for range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		if c.settle != nil {
			if err := c.settle(ctx); err != nil {
				return fmt.Errorf("%s: %w", c.label(), err)
			}
		}
		t := time.Now()
		if err := c.run(ctx); err != nil {
			return fmt.Errorf("%s: %w", c.label(), err)
		}
		c.latency = append(c.latency, time.Since(t))
	}
	return b.charge(c, before, n)
}

// rateBlock does n runs with workers at once and times the whole.
func (b *bench) rateBlock(ctx context.Context, c *benchCase, n int) error {
	before, err := b.counters()
	if err != nil {
		return err
	}
	var next atomic.Int64
	errs := make(chan error, workers)
	start := time.Now()
	for range workers {
		go func() {
			for next.Add(1) <= int64(n) {
				if err := ctx.Err(); err != nil {
					errs <- err
					return
				}
				if err := c.run(ctx); err != nil {
					next.Store(int64(n)) // the other worker stops too
					errs <- fmt.Errorf("%s, %d workers: %w", c.label(), workers, err)
					return
				}
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
	c.rateRuns += n
	c.rateTime += time.Since(start)
	return b.charge(c, before, n)
}

// batch sends n jobs of cmd in one POST /v1/batch at the daemon's
// concurrency; every one must be ok.
func (b *bench) batch(ctx context.Context, cmd command, n int) (*benchCase, error) {
	c := &benchCase{cmd: cmd, way: wayBatch}
	jobs := make([]api.Job, n)
	for i := range jobs {
		jobs[i] = api.Job{Steps: []api.Step{{Argv: cmd.argv}}}
	}
	before, err := b.counters()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	sum, err := b.d.client.BatchJobs(ctx, jobs, workers, func(l *api.BatchLine) error {
		if l.Error != nil {
			return fmt.Errorf("job %d refused: %w", *l.Index, l.Error)
		}
		_, err := oneStep(l.Result, api.VerdictOK)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.label(), err)
	}
	c.rateTime = time.Since(start)
	if sum.Verdicts[string(api.VerdictOK)] != n {
		return nil, fmt.Errorf("%s: %d of %d jobs ok: %+v", c.label(), sum.Verdicts[string(api.VerdictOK)], n, sum)
	}
	c.rateRuns = n
	return c, b.charge(c, before, n)
}

// counters are the CPU totals a block of runs is charged from.
type counters struct {
	children time.Duration // this program's reaped children: bare, floor and sandboxd exec runs
	self     time.Duration // this program
	daemon   procCPU
}

func (b *bench) counters() (counters, error) {
	var ch, self syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ch)
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	d, err := b.d.cpu()
	if err != nil {
		return counters{}, fmt.Errorf("the daemon's CPU time: %w", err)
	}
	return counters{children: rusageCPU(&ch), self: rusageCPU(&self), daemon: d}, nil
}

func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// settle is how long the daemon is given after a block before its CPU is
// read: work a run sets off in the background (making the next sandbox
// ready, say) belongs to that run.
const settle = 50 * time.Millisecond

// charge adds the CPU a block of n runs of c cost since before.
func (b *bench) charge(c *benchCase, before counters, n int) error {
	if c.drain != nil {
		if err := c.drain(); err != nil {
			return fmt.Errorf("%s: %w", c.label(), err)
		}
	}
	viaDaemon := c.viaDaemon()
	if viaDaemon {
		time.Sleep(settle)
	}
	after, err := b.counters()
	if err != nil {
		return err
	}
	c.cpuRuns += n
	c.clientCPU += after.self - before.self
	if viaDaemon {
		c.daemonCPU += after.daemon.own - before.daemon.own
		c.cpu += after.daemon.own + after.daemon.children - before.daemon.own - before.daemon.children
		if c.way == wayCtl || c.way == wayExecD { // and the client processes
			c.cpu += after.children - before.children
		}
	} else {
		// The spawner's share counts: the kernel makes the namespaces, and
		// copies the forking process, in the parent's time.
		c.cpu += after.children + after.self - before.children - before.self
	}
	return nil
}
