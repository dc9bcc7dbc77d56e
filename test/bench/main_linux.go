package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// bench is one run of the program: its settings, its scratch directory
// (also the state dir of the daemon and of sandboxd exec), the daemon.
type bench struct {
	sandboxd   string
	sandboxctl string
	runs       int // per case, one at a time and again with two workers
	rounds     int
	warmup     int
	batchJobs  int
	limitRuns  int
	spreadRuns int
	cachedRuns int // of each way and input size of the cached-input case, one at a time and again with two workers
	judgeSubs  int // submissions of each way of the judge case
	gwRuns     int // runs of each way of the gateway case, one at a time and again with two workers
	// daemonConfig is added to the daemon's configuration (-daemon-config).
	daemonConfig string
	sizes        *scaleSizes // nil: no scaling figures (-scale off)
	onlyScale    bool        // the scaling figures alone (-only-scale)
	scaleParts   map[string]bool

	dir      string
	loopPath string
	d        *daemon
}

func main() {
	if socket := os.Getenv(pingerEnv); socket != "" {
		os.Exit(pingerMain(socket))
	}
	os.Exit(benchMain())
}

func benchMain() int {
	fs := flag.NewFlagSet("sandboxd-bench", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sandboxd-bench [flags]\n\nMeasures sandboxd from outside against bare fork/exec and the namespace floor\n(make bench; see docs/benchmarks.md). Needs root, gcc, g++ and python3.\n\nflags:\n")
		fs.PrintDefaults()
	}
	b := &bench{rounds: 5, warmup: 10, limitRuns: 20, spreadRuns: 30}
	fs.StringVar(&b.sandboxd, "sandboxd", "bin/sandboxd", "the sandboxd binary to measure")
	fs.StringVar(&b.sandboxctl, "sandboxctl", "", "the sandboxctl binary of the `sandboxctl run` rows (default: the one beside -sandboxd)")
	fs.IntVar(&b.runs, "runs", 500, "runs of each case one at a time, and again with two workers")
	fs.IntVar(&b.batchJobs, "batch", 1000, "python jobs in the POST /v1/batch case")
	fs.IntVar(&b.cachedRuns, "cached-runs", 100, "runs of each way of reading a 1 KiB and a 256 MiB cached input, one at a time and again with two workers")
	fs.IntVar(&b.judgeSubs, "judge", 40, "submissions (a compile and 20 tests) of each way of the judge case")
	fs.IntVar(&b.gwRuns, "gateway-runs", 300, "runs of each way of the gateway case (go-judge and Piston against the v1 API), one at a time and again with two workers")
	jsonPath := fs.String("json", "run/bench/bench.json", "where to write every figure as JSON")
	quick := fs.Bool("quick", false, "a short smoke run: few runs of everything (unless -runs or -batch say otherwise)")
	check := fs.Bool("check", false, "exit 1 when a target is missed")
	fs.StringVar(&b.daemonConfig, "daemon-config", "", "TOML lines added to the daemon's configuration (e.g. its uid_base)")
	scale := fs.String("scale", "full", "the sizes of the scaling figures: full, quick (the default with -quick), tiny (make test's) or off")
	scaleRuns := fs.Int("scale-runs", 0, "runs of each scaling row, one at a time and again with two workers (default: the -scale preset's)")
	scaleQueued := fs.Int("scale-queued", 0, "jobs of the queue row, sent at once (default: the -scale preset's; at most 20000, the bench daemon's queue_size)")
	fs.BoolVar(&b.onlyScale, "only-scale", false, "measure the scaling figures alone")
	parts := fs.String("scale-parts", strings.Join(scaleAllParts, ","), "which scaling figures to measure, of "+strings.Join(scaleAllParts, ","))
	plotFrom := fs.String("plot-from", "", "draw the plots of a JSON report this program wrote (into -plots, default its directory), and measure nothing")
	plotDir := fs.String("plots", "", "where to draw the plots (default: the directory of -json)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if *quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		if !set["runs"] {
			b.runs = 40
		}
		if !set["batch"] {
			b.batchJobs = 100
		}
		if !set["cached-runs"] {
			b.cachedRuns = 10
		}
		if !set["judge"] {
			b.judgeSubs = 4
		}
		if !set["gateway-runs"] {
			b.gwRuns = 20
		}
		if !set["scale"] {
			*scale = "quick"
		}
		b.rounds, b.warmup, b.limitRuns, b.spreadRuns = 2, 3, 5, 10
	}
	if b.onlyScale && *scale == "off" {
		fmt.Fprintln(os.Stderr, "sandboxd-bench: -only-scale with -scale off measures nothing")
		return 2
	}
	if *scale != "off" {
		sz, ok := scalePresets[*scale]
		if !ok {
			fmt.Fprintf(os.Stderr, "sandboxd-bench: -scale %q: want full, quick, tiny or off\n", *scale)
			return 2
		}
		sz.Name = *scale
		if *scaleRuns > 0 {
			sz.Runs = *scaleRuns
		}
		if *scaleQueued > 0 {
			sz.Queued = min(*scaleQueued, 20000)
		}
		b.sizes = &sz
		b.scaleParts = map[string]bool{}
		for _, p := range strings.Split(*parts, ",") {
			if !slices.Contains(scaleAllParts, p) {
				fmt.Fprintf(os.Stderr, "sandboxd-bench: -scale-parts: %q is not one of %s\n", p, strings.Join(scaleAllParts, ","))
				return 2
			}
			b.scaleParts[p] = true
		}
	}
	if fs.NArg() > 0 || b.runs < b.rounds || b.batchJobs < 1 || b.cachedRuns < b.rounds || b.judgeSubs < b.rounds || b.gwRuns < b.rounds {
		fmt.Fprintf(os.Stderr, "sandboxd-bench: -runs, -cached-runs, -judge and -gateway-runs must be at least %d, -batch at least 1, and no arguments\n", b.rounds)
		return 2
	}
	if *plotFrom != "" {
		return replot(*plotFrom, *plotDir)
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "sandboxd-bench: must run as root (the daemon and the namespace floor need it)")
		return 1
	}
	var err error
	if b.sandboxd, err = filepath.Abs(b.sandboxd); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-bench:", err)
		return 2
	}
	if b.sandboxctl == "" {
		b.sandboxctl = filepath.Join(filepath.Dir(b.sandboxd), "sandboxctl")
	}
	if b.sandboxctl, err = filepath.Abs(b.sandboxctl); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-bench:", err)
		return 2
	}
	if _, err := os.Stat(b.sandboxctl); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-bench: -sandboxctl:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := b.run(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-bench:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	if rep.Scale != nil {
		if *plotDir == "" {
			*plotDir = filepath.Dir(*jsonPath)
		}
		if rep.Plots, err = writePlots(*plotDir, rep.Scale); err != nil {
			fmt.Fprintln(os.Stderr, "sandboxd-bench:", err)
			return 1
		}
	}
	rep.print(os.Stdout)
	if err := writeJSON(*jsonPath, rep); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-bench:", err)
		return 1
	}
	fmt.Printf("\nevery figure: %s\n", *jsonPath)
	if len(rep.Plots) > 0 {
		fmt.Printf("plots: %s\n", strings.Join(rep.Plots, " "))
	}
	if *check && !rep.allPass() {
		return 1
	}
	return 0
}

// run measures everything, in this order: the daemon idle, the five ways
// of running each command, the batch, the daemon idle again, then the CPU
// limit, the CPU spread, the cached input, the judge, the gateway and the
// scaling figures, outside the load whose RSS is reported.
func (b *bench) run(ctx context.Context) (rep *Report, err error) {
	start := time.Now()
	rep = &Report{
		Timestamp:     start.UTC().Format(time.RFC3339),
		GitDescribe:   gitDescribe(),
		Machine:       machine(),
		LoadAvgBefore: loadAvg(),
		Settings: Settings{Runs: b.runs, Rounds: b.rounds, Warmup: b.warmup, Workers: workers,
			BatchJobs: b.batchJobs, CPULimitRuns: b.limitRuns, SpreadRuns: b.spreadRuns,
			CachedRuns: b.cachedRuns, JudgeSubmissions: b.judgeSubs, GatewayRuns: b.gwRuns},
	}
	if b.dir, err = os.MkdirTemp("", "sandboxd-bench-"); err != nil {
		return nil, err
	}
	defer os.RemoveAll(b.dir)
	// Sandboxes reach the state dir's root/ as an unprivileged user.
	if err := os.Chmod(b.dir, 0o755); err != nil {
		return nil, err
	}
	if b.loopPath, err = buildLoop(b.dir); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "starting %s serve\n", b.sandboxd)
	config := b.daemonConfig
	if b.sizes != nil {
		config = scaleDaemonConfig + config + "\n" + scaleProfileConfig
	}
	if b.d, err = startDaemon(b.sandboxd, b.dir, config); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w\nthe daemon's log ends:\n%s", err, b.d.logTail())
		}
		if cerr := b.d.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if info, err := b.d.client.Info(ctx); err == nil {
		rep.DaemonVersion = info.Version
	}

	// Idle: give the daemon a moment to make whatever it keeps ready.
	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	rep.Daemon.IdleStart = idleMemory(b.d)
	b.d.resetMaxRSS()
	if b.onlyScale {
		if rep.Scale, err = b.scale(ctx, *b.sizes); err != nil {
			return nil, err
		}
		rep.LoadAvgAfter = loadAvg()
		rep.DurationS = time.Since(start).Seconds()
		return rep, nil
	}

	cf, err := openCgroupFloor(ctx, b.d)
	if err != nil {
		return nil, fmt.Errorf("the floor's cgroups: %w", err)
	}
	defer func() {
		if cerr := cf.close(); cerr != nil && err == nil {
			err = fmt.Errorf("the floor's cgroups: %w", cerr)
		}
	}()

	var cases []*benchCase
	for _, cmd := range []command{cmdTrue, cmdPython} {
		cs := []*benchCase{
			{cmd: cmd, way: wayBare, run: bareRunner(cmd.argv, nil)},
			{cmd: cmd, way: wayFloor, run: bareRunner(cmd.argv, floorAttr)},
			{cmd: cmd, way: wayCgrp, run: cf.runner(cmd.argv), drain: cf.wait},
			{cmd: cmd, way: wayExec, run: execRunner(b.sandboxd, b.dir, cmd.argv)},
			{cmd: cmd, way: wayExecD, run: execSocketRunner(b.sandboxd, b.d.socket, cmd.argv), settle: warmSettle(b.d.client)},
			{cmd: cmd, way: wayCtl, run: ctlRunner(b.sandboxctl, b.d.socket, cmd.argv), settle: warmSettle(b.d.client)},
			{cmd: cmd, way: wayRun, run: runRunner(b.d.client, cmd.argv), settle: warmSettle(b.d.client)},
		}
		fmt.Fprintf(os.Stderr, "%s: %d runs of each way, one at a time and with %d workers, in %d rounds\n", cmd.name, b.runs, workers, b.rounds)
		if err := b.measure(ctx, cs); err != nil {
			return nil, err
		}
		cases = append(cases, cs...)
	}
	fmt.Fprintf(os.Stderr, "POST /v1/batch: %d jobs of %s\n", b.batchJobs, cmdPython.name)
	bc, err := b.batch(ctx, cmdPython, b.batchJobs)
	if err != nil {
		return nil, err
	}
	cases = append(cases, bc)
	rep.Daemon.LoadMaxRSSBytes = b.d.maxRSS.Load()

	if err := sleep(ctx, time.Second); err != nil {
		return nil, err
	}
	rep.Daemon.IdleEnd = idleMemory(b.d)

	fmt.Fprintf(os.Stderr, "CPU limit: %d runs of an endless loop under %d ms\n", b.limitRuns, cpuLimitMS)
	if rep.CPULimit, err = b.cpuLimit(ctx, b.limitRuns); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "CPU spread: %d runs of a fixed loop, through the daemon and bare\n", b.spreadRuns)
	if rep.CPUSpread, err = b.cpuSpread(ctx, b.spreadRuns); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "cached input: %d runs of each way of reading a 1 KiB and a 256 MiB input, one at a time and with %d workers, in %d rounds\n",
		b.cachedRuns, workers, b.rounds)
	if rep.CachedInput, err = b.cachedInput(ctx, b.cachedRuns, b.rounds, b.warmup); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "judge: %d submissions (a C++ compile and %d tests) through the daemon and by a bash script, %d at once, in %d rounds\n",
		b.judgeSubs, judgeTests, workers, b.rounds)
	if rep.Judge, err = b.judge(ctx, b.judgeSubs, b.rounds); err != nil {
		return nil, err
	}
	if rep.Gateway, err = b.gateway(ctx, b.gwRuns, b.rounds, b.warmup); err != nil {
		return nil, err
	}
	if b.sizes != nil {
		if rep.Scale, err = b.scale(ctx, *b.sizes); err != nil {
			return nil, err
		}
	}

	rep.Cases = results(cases)
	rep.Targets = targets(rep)
	rep.LoadAvgAfter = loadAvg()
	rep.DurationS = time.Since(start).Seconds()
	return rep, nil
}

// replot draws the plots of the report at path into dir (default: its
// directory).
func replot(path, dir string) int {
	b, err := os.ReadFile(path)
	if err == nil {
		var rep Report
		if err = json.Unmarshal(b, &rep); err == nil && rep.Scale == nil {
			err = fmt.Errorf("%s: no scaling figures", path)
		}
		if err == nil {
			if dir == "" {
				dir = filepath.Dir(path)
			}
			var paths []string
			paths, err = writePlots(dir, rep.Scale)
			fmt.Println(strings.Join(paths, "\n"))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd-bench:", err)
		return 1
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func writeJSON(path string, rep *Report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// gitDescribe names the tree measured, when run from a checkout.
func gitDescribe() string {
	out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	return strings.TrimSpace(string(b))
}

// Machine is what the figures were measured on.
type Machine struct {
	Hostname      string `json:"hostname"`
	Kernel        string `json:"kernel"`
	CPUModel      string `json:"cpu_model"`
	CPUs          int    `json:"cpus"`
	MemTotalBytes int64  `json:"mem_total_bytes"`
}

func machine() Machine {
	var m Machine
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			k, v, _ := strings.Cut(line, ":")
			switch strings.TrimSpace(k) {
			case "processor":
				m.CPUs++
			case "model name":
				m.CPUModel = strings.TrimSpace(v)
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %d kB", &kb); err == nil {
			m.MemTotalBytes = kb << 10
		}
	}
	return m
}
