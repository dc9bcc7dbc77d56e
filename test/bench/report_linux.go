package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// Report is every figure of one run, written as JSON for tracking across
// changes.
type Report struct {
	Timestamp     string       `json:"timestamp"`
	GitDescribe   string       `json:"git_describe"`
	DaemonVersion string       `json:"daemon_version"`
	Machine       Machine      `json:"machine"`
	Settings      Settings     `json:"settings"`
	LoadAvgBefore string       `json:"loadavg_before"`
	LoadAvgAfter  string       `json:"loadavg_after"`
	DurationS     float64      `json:"duration_s"`
	Cases         []CaseResult `json:"cases"`
	Daemon        DaemonMemory `json:"daemon"`
	CPULimit      CPULimit     `json:"cpu_limit"`
	CPUSpread     CPUSpread    `json:"cpu_spread"`
	CachedInput   CachedInput  `json:"cached_input"`
	Judge         Judge        `json:"judge"`
	Gateway       Gateway      `json:"gateway"`
	Scale         *Scale       `json:"scale,omitempty"`
	Plots         []string     `json:"plots,omitempty"`
	Targets       []Target     `json:"targets"`
}

// Settings are how much of everything was run.
type Settings struct {
	Runs             int `json:"runs"`
	Rounds           int `json:"rounds"`
	Warmup           int `json:"warmup"`
	Workers          int `json:"workers"`
	BatchJobs        int `json:"batch_jobs"`
	CPULimitRuns     int `json:"cpu_limit_runs"`
	SpreadRuns       int `json:"spread_runs"`
	CachedRuns       int `json:"cached_runs"`
	JudgeSubmissions int `json:"judge_submissions"`
	GatewayRuns      int `json:"gateway_runs"`
}

// CaseResult is one way of running one command. Latency is one run at a
// time; runs/s with Settings.Workers at once (the batch: the daemon's
// concurrency). The ratios are to the bare and floor cases of the same
// command: latency ratios above 1 and rate ratios below 1 are the cost.
// CPU per run is the spawner's and that of the children it reaped: this
// program's and the runs' for bare, floor and sandboxd exec; the daemon's
// and its sandboxes' for the daemon ways. DaemonCPU is the daemon's own,
// ClientCPU this program's (for the daemon ways: the HTTP client).
type CaseResult struct {
	Command           string  `json:"command"`
	Way               string  `json:"way"`
	LatencyRuns       int     `json:"latency_runs"`
	P50MS             float64 `json:"p50_ms"`
	P99MS             float64 `json:"p99_ms"`
	RateRuns          int     `json:"rate_runs"`
	RunsPerS          float64 `json:"runs_per_s"`
	P50VsBare         float64 `json:"p50_vs_bare"`
	P50VsFloor        float64 `json:"p50_vs_floor"`
	RateVsBare        float64 `json:"rate_vs_bare"`
	RateVsFloor       float64 `json:"rate_vs_floor"`
	RateVsCgroupFloor float64 `json:"rate_vs_floor_cgroups"`
	CPUMSPerRun       float64 `json:"cpu_ms_per_run"`
	DaemonCPUMSPerRun float64 `json:"daemon_cpu_ms_per_run"`
	ClientCPUMSPerRun float64 `json:"client_cpu_ms_per_run"`
}

// DaemonMemory is the daemon's resident memory idle, at the start and
// after the load, and the most sampled during the load.
type DaemonMemory struct {
	IdleStart       IdleMemory `json:"idle_start"`
	IdleEnd         IdleMemory `json:"idle_end"`
	LoadMaxRSSBytes int64      `json:"load_max_rss_bytes"`
}

// IdleMemory is the idle daemon's RSS and that of the processes below it
// (sandboxes kept ready, if any).
type IdleMemory struct {
	RSSBytes          int64 `json:"rss_bytes"`
	Sandboxes         int   `json:"sandbox_processes"`
	SandboxesRSSBytes int64 `json:"sandboxes_rss_bytes"`
}

func idleMemory(d *daemon) IdleMemory {
	var m IdleMemory
	m.RSSBytes, _ = d.rss()
	m.Sandboxes, m.SandboxesRSSBytes = descendantsRSS(d.pid, d.helperPID())
	return m
}

// Target is one speed or memory requirement: Value at most (or at least) Limit.
type Target struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Unit   string  `json:"unit"`
	AtMost bool    `json:"at_most"`
	Pass   bool    `json:"pass"`
}

func atMost(name string, v, limit float64, unit string) Target {
	return Target{Name: name, Value: v, Limit: limit, Unit: unit, AtMost: true, Pass: v <= limit}
}

func atLeast(name string, v, limit float64, unit string) Target {
	return Target{Name: name, Value: v, Limit: limit, Unit: unit, Pass: v >= limit}
}

func (r *Report) allPass() bool {
	for _, t := range r.Targets {
		if !t.Pass {
			return false
		}
	}
	return true
}

// results turns the measured cases into figures, with their ratios to the
// bare and floor cases of the same command.
func results(cases []*benchCase) []CaseResult {
	out := make([]CaseResult, len(cases))
	for i, c := range cases {
		r := CaseResult{Command: c.cmd.name, Way: c.way, LatencyRuns: len(c.latency), RateRuns: c.rateRuns}
		if len(c.latency) > 0 {
			r.P50MS, r.P99MS = ms(percentile(c.latency, 0.50)), ms(percentile(c.latency, 0.99))
		}
		if c.rateTime > 0 {
			r.RunsPerS = float64(c.rateRuns) / c.rateTime.Seconds()
		}
		if c.cpuRuns > 0 {
			n := float64(c.cpuRuns)
			r.CPUMSPerRun, r.DaemonCPUMSPerRun, r.ClientCPUMSPerRun = ms(c.cpu)/n, ms(c.daemonCPU)/n, ms(c.clientCPU)/n
		}
		out[i] = r
	}
	for i := range out {
		r := &out[i]
		bare, floor := find(out, r.Command, wayBare), find(out, r.Command, wayFloor)
		r.P50VsBare, r.RateVsBare = ratio(r.P50MS, bare.P50MS), ratio(r.RunsPerS, bare.RunsPerS)
		r.P50VsFloor, r.RateVsFloor = ratio(r.P50MS, floor.P50MS), ratio(r.RunsPerS, floor.RunsPerS)
		r.RateVsCgroupFloor = ratio(r.RunsPerS, find(out, r.Command, wayCgrp).RunsPerS)
	}
	return out
}

// find is the case of cmd run way; a zero CaseResult if there is none.
func find(rs []CaseResult, cmd, way string) CaseResult {
	for _, r := range rs {
		if r.Command == cmd && r.Way == way {
			return r
		}
	}
	return CaseResult{}
}

// percentile is the nearest-rank q-quantile.
func percentile(d []time.Duration, q float64) time.Duration {
	s := slices.Sorted(slices.Values(d))
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 {
		return 0
	}
	return a / b
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// targets are the speed and memory requirements, checked against this run.
func targets(rep *Report) []Target {
	trueBare := find(rep.Cases, cmdTrue.name, wayBare)
	trueRun := find(rep.Cases, cmdTrue.name, wayRun)
	trueFloor := find(rep.Cases, cmdTrue.name, wayFloor)
	trueExec := find(rep.Cases, cmdTrue.name, wayExecD)
	pyRun := find(rep.Cases, cmdPython.name, wayRun)
	idle := max(rep.Daemon.IdleStart.RSSBytes, rep.Daemon.IdleEnd.RSSBytes)
	t := []Target{
		atMost("POST /v1/run /bin/true, 1 client: p50 <= bare p50 + 0.5 ms", trueRun.P50MS, trueBare.P50MS+0.5, "ms"),
		atMost("sandboxd exec --socket /bin/true: p50 <= ns floor p50 + 2.5 ms", trueExec.P50MS, trueFloor.P50MS+2.5, "ms"),
		atLeast(fmt.Sprintf("POST /v1/run /bin/true, %d clients: runs/s >= 0.7x ns floor", workers), trueRun.RateVsFloor, 0.7, "x"),
		atLeast(fmt.Sprintf("POST /v1/run python3, %d clients: runs/s >= 0.75x bare", workers), pyRun.RateVsBare, 0.75, "x"),
		atLeast(fmt.Sprintf("POST /v1/run python3, %d clients: runs/s >= 0.9x ns floor", workers), pyRun.RateVsFloor, 0.9, "x"),
		atLeast(fmt.Sprintf("POST /v1/run python3, %d clients: runs/s >= 0.97x floor+cgroups", workers), pyRun.RateVsCgroupFloor, 0.97, "x"),
		atMost("daemon RSS idle <= 40 MiB", mib(idle), 40, "MiB"),
		atMost("daemon RSS under load <= 40 MiB", mib(rep.Daemon.LoadMaxRSSBytes), 40, "MiB"),
		atMost(fmt.Sprintf("CPU-limit overshoot, median of %d: <= 10 ms", rep.CPULimit.Runs), rep.CPULimit.MedianMS, 10, "ms"),
		atMost(fmt.Sprintf("CPU-time spread, CV of %d runs: <= 1%%", rep.CPUSpread.Runs), rep.CPUSpread.Daemon.CVPct, 1, "%"),
	}
	for _, g := range rep.CachedInput.BigVsSmall {
		t = append(t, atMost(fmt.Sprintf("daemon CPU/run, 256 MiB %s input: <= 1.5x 1 KiB", strings.TrimPrefix(g.Way, wayRun+" ")),
			g.DaemonCPURatio, 1.5, "x"))
	}
	return append(t, atLeast(fmt.Sprintf("judge, %d clients: submissions/s >= 0.8x the bash script", workers),
		rep.Judge.RateVsScript, 0.8, "x"))
}

// print writes the human form: the table, the daemon's memory, the CPU
// limit and spread, and the targets.
func (r *Report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nsandboxd bench %s (daemon %s), %s\n", r.GitDescribe, r.DaemonVersion, r.Timestamp)
	fmt.Fprintf(w, "%s, %d CPUs, kernel %s; load average %s before, %s after; took %.0f s\n\n",
		m.CPUModel, m.CPUs, m.Kernel, loadFields(r.LoadAvgBefore), loadFields(r.LoadAvgAfter), r.DurationS)
	if len(r.Cases) == 0 && r.Scale != nil { // -only-scale
		r.Scale.print(w)
		return
	}

	fmt.Fprintf(w, "%-38s %17s %9s %15s %15s %15s\n", "", "one at a time", fmt.Sprintf("%d at once", r.Settings.Workers),
		"p50 vs", "runs/s vs", "CPU ms/run")
	fmt.Fprintf(w, "%-22s %-15s %8s %8s %9s %7s %7s %7s %7s %7s %7s\n",
		"command", "way", "p50 ms", "p99 ms", "runs/s", "bare", "floor", "bare", "floor", "total", "daemon")
	for i, c := range r.Cases {
		if i > 0 && c.Command != r.Cases[i-1].Command {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%-22s %-15s %8s %8s %9s %7s %7s %7s %7s %7s %7s\n", c.Command, c.Way,
			num(c.P50MS, 2), num(c.P99MS, 2), num(c.RunsPerS, 0),
			num(c.P50VsBare, 2), num(c.P50VsFloor, 2), num(c.RateVsBare, 2), num(c.RateVsFloor, 2),
			num(c.CPUMSPerRun, 2), num(c.DaemonCPUMSPerRun, 2))
	}
	fmt.Fprintf(w, "(%d runs a case one at a time and %d with %d workers, in %d rounds; the batch: %d jobs at concurrency %d;\n"+
		" CPU total: the spawner (this program, or the daemon with its helper) and the runs it reaped; daemon: the daemon's and its helper's own;\n"+
		" floor+cgroups: the ns floor with a fresh group in each cgroup hierarchy a sandbox uses here, made, joined and removed as the daemon does)\n\n",
		r.Settings.Runs, r.Settings.Runs, r.Settings.Workers, r.Settings.Rounds, r.Settings.BatchJobs, r.Settings.Workers)
	var vs []string
	for _, c := range r.Cases {
		if c.Way == wayRun && c.RateVsCgroupFloor > 0 {
			vs = append(vs, fmt.Sprintf("%s %.2fx", c.Command, c.RateVsCgroupFloor))
		}
	}
	if len(vs) > 0 {
		fmt.Fprintf(w, "%s, %d clients, runs/s against floor+cgroups: %s\n\n", wayRun, r.Settings.Workers, strings.Join(vs, ", "))
	}

	d := r.Daemon
	fmt.Fprintf(w, "daemon RSS (with its helper): idle %.1f MiB at start, %.1f MiB after the load; under load at most %.1f MiB (sampled every 50 ms)\n",
		mib(d.IdleStart.RSSBytes), mib(d.IdleEnd.RSSBytes), mib(d.LoadMaxRSSBytes))
	fmt.Fprintf(w, "sandboxes idle: %d processes, %.1f MiB Pss of their own at start (they share the helper's memory); %d, %.1f MiB after the load\n",
		d.IdleStart.Sandboxes, mib(d.IdleStart.SandboxesRSSBytes), d.IdleEnd.Sandboxes, mib(d.IdleEnd.SandboxesRSSBytes))
	l := r.CPULimit
	fmt.Fprintf(w, "CPU limit %.0f ms, %d runs of an endless loop: overshoot median %.1f ms, max %.1f ms (wall median %.0f ms)\n",
		l.LimitMS, l.Runs, l.MedianMS, l.MaxMS, l.WallMedianMS)
	s := r.CPUSpread
	fmt.Fprintf(w, "CPU spread, %d runs of a fixed loop (%d iterations): daemon mean %.1f ms, sd %.2f ms, CV %.2f%%; bare mean %.1f ms, sd %.2f ms, CV %.2f%%\n\n",
		s.Runs, s.Iterations, s.Daemon.MeanMS, s.Daemon.StdDevMS, s.Daemon.CVPct, s.Bare.MeanMS, s.Bare.StdDevMS, s.Bare.CVPct)

	r.CachedInput.print(w)
	r.Judge.print(w)
	r.Gateway.print(w, r.Settings)
	if r.Scale != nil {
		r.Scale.print(w)
	}

	fmt.Fprintln(w, "targets")
	for _, t := range r.Targets {
		verdict, op := "MISS", ">="
		if t.Pass {
			verdict = "PASS"
		}
		if t.AtMost {
			op = "<="
		}
		fmt.Fprintf(w, "  %s  %-62s %8.2f %s (%s %.2f)\n", verdict, t.Name, t.Value, t.Unit, op, t.Limit)
	}
}

// num formats a figure, or "-" where the case has none.
func num(v float64, prec int) string {
	if v == 0 {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

// loadFields is the three load averages of /proc/loadavg.
func loadFields(s string) string {
	f := strings.Fields(s)
	return strings.Join(f[:min(3, len(f))], " ")
}

// print writes the cached-input case: a table, one row per input size and
// way, and the big input against the small one.
func (c *CachedInput) print(w io.Writer) {
	if len(c.Cases) == 0 {
		return
	}
	fmt.Fprintf(w, "cached input: sh -c 'cat >/dev/null' reading all of a %s and a %s file\n", size(c.SmallBytes), size(c.BigBytes))
	fmt.Fprintf(w, "%-24s %-28s %8s %8s %9s %9s %9s %7s %7s\n", "command", "way", "p50 ms", "p99 ms", "runs/s",
		"p50-bare", "p99-bare", "CPU ms/", "run")
	fmt.Fprintf(w, "%-24s %-28s %8s %8s %9s %9s %9s %7s %7s\n", "", "", "", "", "", "ms", "ms", "total", "daemon")
	for i, r := range c.Cases {
		if i > 0 && r.Command != c.Cases[i-1].Command {
			fmt.Fprintln(w)
		}
		bare := find(c.Cases, r.Command, wayBare)
		over50, over99 := "-", "-"
		if r.Way != wayBare {
			over50, over99 = fmt.Sprintf("%+.2f", r.P50MS-bare.P50MS), fmt.Sprintf("%+.2f", r.P99MS-bare.P99MS)
		}
		fmt.Fprintf(w, "%-24s %-28s %8s %8s %9s %9s %9s %7s %7s\n", r.Command, r.Way,
			num(r.P50MS, 2), num(r.P99MS, 2), num(r.RunsPerS, 0), over50, over99,
			num(r.CPUMSPerRun, 2), num(r.DaemonCPUMSPerRun, 2))
	}
	fmt.Fprintf(w, "(%d runs a case one at a time and %d with %d workers, in %d rounds; bare: os/exec with the daemon's cached copy\n"+
		" of the file (in its cache_dir) as stdin; bare, host copy: the same with the file this program wrote and uploaded;\n"+
		" stdin_cached: the cached file as the step's stdin; files[].cached: the cached file bound onto the workspace's `in`, read by\n"+
		" sh -c 'cat in >/dev/null'; p50-bare: the p50 less the bare p50 of the same size)\n",
		c.Runs, c.Runs, workers, c.Rounds)
	fmt.Fprintf(w, "%s against %s:\n", size(c.BigBytes), size(c.SmallBytes))
	for _, g := range c.BigVsSmall {
		fmt.Fprintf(w, "  %-28s daemon CPU/run %.2f -> %.2f ms (%.2fx); p50 over bare %+.2f -> %+.2f ms (%+.2f ms); p99 over bare %+.2f -> %+.2f ms\n",
			g.Way, g.DaemonCPUMSSmall, g.DaemonCPUMSBig, g.DaemonCPURatio,
			g.P50OverBareMSSmall, g.P50OverBareMSBig, g.P50OverBareGrowthMS, g.P99OverBareMSSmall, g.P99OverBareMSBig)
	}
	fmt.Fprintf(w, "  (bare CPU/run, the reading itself: %.2f -> %.2f ms; reading the host copy of %s bare: %.2fx the CPU of the cache's copy;\n"+
		"  the upload took %.0f ms, once; the daemon's RSS at most %.1f MiB meanwhile; the case took %.0f s)\n\n",
		c.BareCPUSmall, c.BareCPUBig, size(c.BigBytes), c.HostCopyVsCached, c.BigUploadMS, mib(c.MaxRSSBytes), c.DurationS)
}

// print writes the judge case: one row per way, and their ratio.
func (j *Judge) print(w io.Writer) {
	if j.Daemon.Submissions == 0 {
		return
	}
	fmt.Fprintf(w, "judge: a submission is g++ -O2 of a small C++ solution and %d tests (%s..%s inputs, %.1f MiB in all), %d clients at once\n",
		j.Tests, size(judgeMinBytes), size(judgeMaxBytes), mib(j.TestBytesTotal), j.Clients)
	fmt.Fprintf(w, "%-26s %5s %7s %8s %8s %8s %8s %9s %7s\n", "", "", "", "submission", "", "p50 ms", "", "CPU ms/sub", "")
	fmt.Fprintf(w, "%-26s %5s %7s %8s %8s %8s %8s %9s %7s\n", "way", "subs", "subs/s", "p50 ms", "max ms", "compile", "tests", "total", "daemon")
	for _, x := range []JudgeWay{j.Daemon, j.Script} {
		fmt.Fprintf(w, "%-26s %5d %7.2f %8.0f %8.0f %8.0f %8.0f %9.0f %7s\n", x.Way, x.Submissions, x.PerS,
			x.P50MS, x.MaxMS, x.CompileP50MS, x.TestsP50MS, x.CPUMSPerSubmission, num(x.DaemonCPUMSPerSubmit, 1))
	}
	fmt.Fprintf(w, "(in %d rounds, %.0f s in all; through the daemon: a compile job keeping the binary in the file cache, then one POST /v1/run a test\n"+
		" naming the binary and its input in the cache, with expected_stdout; the script: bash, g++ and the binary, no sandbox)\n",
		j.Rounds, j.DurationS)
	fmt.Fprintf(w, "judge submissions/s through the daemon against the script: %.2fx\n\n", j.RateVsScript)
}

// size is a byte count in KiB or MiB.
func size(b int64) string {
	if b >= 1<<20 {
		return fmt.Sprintf("%d MiB", b>>20)
	}
	return fmt.Sprintf("%d KiB", b>>10)
}

// print writes the gateway case: one row per way, and what each gateway
// way adds to the direct one.
func (g *Gateway) print(w io.Writer, set Settings) {
	if len(g.Cases) == 0 {
		return
	}
	fmt.Fprintf(w, "gateway: sandboxd gateway's protocols against the v1 API on the daemon's socket\n")
	fmt.Fprintf(w, "%-24s %-36s %8s %8s %9s %7s\n", "command", "way", "p50 ms", "p99 ms", "runs/s", "CPU ms/")
	fmt.Fprintf(w, "%-24s %-36s %8s %8s %9s %7s\n", "", "", "", "", "", "run")
	for i, c := range g.Cases {
		if i > 0 && c.Command != g.Cases[i-1].Command {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%-24s %-36s %8s %8s %9s %7s\n", c.Command, c.Way, num(c.P50MS, 2), num(c.P99MS, 2), num(c.RunsPerS, 0), num(c.CPUMSPerRun, 2))
	}
	fmt.Fprintf(w, "(%d runs a way one at a time and %d with %d clients, in %d rounds; CPU: the daemon's with its sandboxes;\n"+
		" the gateway process's own CPU: %.2f ms a request; the case took %.0f s)\n", set.GatewayRuns, set.GatewayRuns, set.Workers, set.Rounds,
		g.GatewayCPUMSPerRun, g.DurationS)
	for _, a := range g.Added {
		fmt.Fprintf(w, "  %-24s %-36s adds p50 %+.2f ms, p99 %+.2f ms; %d clients: %.2fx the runs/s of %s\n",
			a.Command, a.Way, a.AddedP50MS, a.AddedP99MS, set.Workers, a.RateVsDirect, a.Direct)
	}
	fmt.Fprintln(w)
}
