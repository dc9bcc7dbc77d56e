package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// The scaling rows: how what sandboxd adds to a run grows with the run's
// work, against the same work done bare in the same rounds. Four kinds,
// each at a few sizes: the stdout a program writes, the input it reads,
// the files a job sends, the steps a job has. If sandboxd's cost per byte,
// file or step is no more than the bare run's, its overhead grows no faster
// than the work.

// scaleSizes are the sizes of the scaling rows, the batches, the queue and
// the concurrency sweep: full in make bench, smaller with -quick, tiny in
// make test (-scale tiny).
type scaleSizes struct {
	Name      string  `json:"name"`
	Outputs   []int64 `json:"stdout_bytes"`
	Inputs    []int64 `json:"input_bytes"`
	Files     []int   `json:"files"`
	Steps     []int   `json:"steps"`
	Batches   []int   `json:"batch_jobs"`
	Queued    int     `json:"queued_jobs"`
	Runs      int     `json:"runs"`       // of each scaling row, one at a time and again with two workers
	SweepRuns int     `json:"sweep_runs"` // of each way and client count of the concurrency sweep
}

var scalePresets = map[string]scaleSizes{
	"full": {Outputs: []int64{1 << 10, 1 << 20, 64 << 20}, Inputs: []int64{1 << 10, 64 << 20},
		Files: []int{1, 100, 10000}, Steps: []int{1, 20, 200}, Batches: []int{100, 10000, 100000},
		Queued: 10000, Runs: 10, SweepRuns: 100},
	"quick": {Outputs: []int64{1 << 10, 1 << 20, 16 << 20}, Inputs: []int64{1 << 10, 16 << 20},
		Files: []int{1, 100, 1000}, Steps: []int{1, 20, 50}, Batches: []int{100, 1000, 5000},
		Queued: 1000, Runs: 4, SweepRuns: 40},
	"tiny": {Outputs: []int64{1 << 10, 64 << 10, 1 << 20}, Inputs: []int64{1 << 10, 1 << 20},
		Files: []int{1, 10, 100}, Steps: []int{1, 3, 6}, Batches: []int{10, 50, 200},
		Queued: 100, Runs: 2, SweepRuns: 8},
}

// scaleDaemonConfig lets the bench's daemon take the largest sizes: a 64 MiB
// stdout in a result (output_bytes and job_output_bytes), a 64 MiB inline
// input in a request (max_request_bytes, and two of them in flight), and
// 10,000 jobs queued at once (queue_size). The defaults stay as they are.
const scaleDaemonConfig = `max_request_bytes = 268435456
max_inflight_request_bytes = 1073741824
job_output_bytes = 268435456
queue_size = 20000
`

// scaleProfileConfig raises the default profile's maximum output_bytes; a
// table, so it goes after every top-level key.
const scaleProfileConfig = `[profiles.default.max_limits]
output_bytes = 268435456
`

// The parts of the scaling figures (-scale-parts): the kinds of row below,
// and these.
const (
	partConcurrency = "concurrency"
	partBatch       = "batch"
	partQueue       = "queue"
)

var scaleAllParts = []string{partConcurrency, partBatch, partQueue, kindStdout, kindInput, kindFiles, kindSteps}

// The kinds of scaling row, and the ways of each.
const (
	kindStdout = "stdout"
	kindInput  = "input"
	kindFiles  = "files"
	kindSteps  = "steps"

	wayBareFile     = "bare > file"               // stdout to a file on a tmpfs
	wayStdoutTo     = "POST /v1/run stdout_to"    // stdout in the result and in a workspace file
	wayStdinInline  = "POST /v1/run stdin"        // the input inline in the request
	wayStdinCachedS = "POST /v1/run stdin_cached" // the input from the file cache
)

// ScaleRow is one way of one kind of work at one size, beside the bare run
// of the same work in the same rounds. OverBareMS is the p50 less the bare
// p50: what sandboxd adds.
type ScaleRow struct {
	Kind              string  `json:"kind"`
	Size              int64   `json:"size"` // bytes, files or steps
	Way               string  `json:"way"`
	Bare              string  `json:"bare"` // the bare way it is set against
	P50MS             float64 `json:"p50_ms"`
	P99MS             float64 `json:"p99_ms"`
	BareP50MS         float64 `json:"bare_p50_ms"`
	P50VsBare         float64 `json:"p50_vs_bare"`
	OverBareMS        float64 `json:"p50_over_bare_ms"`
	RunsPerS          float64 `json:"runs_per_s"`
	BareRunsPerS      float64 `json:"bare_runs_per_s"`
	RateVsBare        float64 `json:"rate_vs_bare"`
	CPUMSPerRun       float64 `json:"cpu_ms_per_run"`
	BareCPUMSPerRun   float64 `json:"bare_cpu_ms_per_run"`
	CPUVsBare         float64 `json:"cpu_vs_bare"`
	DaemonCPUMSPerRun float64 `json:"daemon_cpu_ms_per_run"`
}

// ScaleGrowth is one kind and way from its smallest size to its largest:
// how much its p50 and the bare p50 grew, and their ratio (above 1:
// sandboxd's cost grows faster than the work); and the daemon's own CPU per
// run at both ends.
type ScaleGrowth struct {
	Kind             string  `json:"kind"`
	Way              string  `json:"way"`
	From             int64   `json:"from"`
	To               int64   `json:"to"`
	P50GrowthMS      float64 `json:"p50_growth_ms"`
	BareP50GrowthMS  float64 `json:"bare_p50_growth_ms"`
	GrowthVsBare     float64 `json:"growth_vs_bare"`
	CPUGrowthMS      float64 `json:"cpu_growth_ms"`
	BareCPUGrowthMS  float64 `json:"bare_cpu_growth_ms"`
	DaemonCPUMSFrom  float64 `json:"daemon_cpu_ms_from"`
	DaemonCPUMSTo    float64 `json:"daemon_cpu_ms_to"`
	DaemonCPUPerUnit float64 `json:"daemon_cpu_ms_per_unit"` // (to - from) / (To - From): per byte, file or step
}

// Scale is every scaling figure of a run.
type Scale struct {
	Sizes       scaleSizes    `json:"sizes"`
	Rows        []ScaleRow    `json:"rows"`
	Growth      []ScaleGrowth `json:"growth"`
	Batches     []BatchScale  `json:"batches"`
	Queue       QueueScale    `json:"queue"`
	Concurrency []SweepPoint  `json:"concurrency"`
	DurationS   float64       `json:"duration_s"`
}

// stdoutArgv writes n bytes of 64-byte text lines: text, as a program's
// output is, which the result carries as it is.
func stdoutArgv(n int64) []string {
	return []string{"/bin/sh", "-c", "yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c " + strconv.FormatInt(n, 10)}
}

// scaleCmd names a kind of work at one size, as the command of its cases.
func scaleCmd(kind string, size int64, argv []string) command {
	return command{name: kind + " " + sizeLabel(kind, size), argv: argv}
}

func sizeLabel(kind string, size int64) string {
	switch kind {
	case kindFiles:
		return fmt.Sprintf("%d files", size)
	case kindSteps:
		return fmt.Sprintf("%d steps", size)
	}
	return size2(size)
}

// size2 is a byte count in B, KiB or MiB.
func size2(b int64) string {
	if b < 1<<10 {
		return fmt.Sprintf("%d B", b)
	}
	return size(b)
}

// scaleGroup is the cases of one kind at one size, and which bare case
// each daemon way is set against.
type scaleGroup struct {
	kind  string
	size  int64
	cases []*benchCase
	bare  map[string]string // daemon way -> bare way
}

// scaleRows measures the four kinds at every size, each kind's sizes and
// ways interleaved in rounds.
func (b *bench) scaleRows(ctx context.Context, sz scaleSizes) ([]ScaleRow, []ScaleGrowth, error) {
	shm, err := os.MkdirTemp("/dev/shm", "sandboxd-bench-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(shm)
	var rows []ScaleRow
	for _, kind := range []string{kindStdout, kindInput, kindFiles, kindSteps} {
		if !b.scaleParts[kind] {
			continue
		}
		groups, cleanup, err := b.scaleGroups(ctx, kind, sz, shm)
		if err != nil {
			cleanup()
			return nil, nil, err
		}
		var cases []*benchCase
		for _, g := range groups {
			cases = append(cases, g.cases...)
		}
		fmt.Fprintf(os.Stderr, "scaling, %s: %d runs of each way and size, one at a time and with %d workers, in %d rounds\n",
			kind, sz.Runs, workers, scaleRounds(sz))
		err = b.measureN(ctx, cases, sz.Runs, scaleRounds(sz), 1)
		cleanup()
		if err != nil {
			return nil, nil, err
		}
		for _, g := range groups {
			rows = append(rows, g.rows()...)
		}
	}
	return rows, growth(rows), nil
}

func scaleRounds(sz scaleSizes) int { return min(2, sz.Runs) }

// rows turns a group's measured cases into rows, each beside its bare way.
func (g *scaleGroup) rows() []ScaleRow {
	rs := results(g.cases)
	var out []ScaleRow
	for _, r := range rs {
		bareWay, ok := g.bare[r.Way]
		if !ok {
			continue
		}
		bare := find(rs, r.Command, bareWay)
		out = append(out, ScaleRow{
			Kind: g.kind, Size: g.size, Way: r.Way, Bare: bareWay,
			P50MS: r.P50MS, P99MS: r.P99MS, BareP50MS: bare.P50MS, P50VsBare: ratio(r.P50MS, bare.P50MS),
			OverBareMS: r.P50MS - bare.P50MS,
			RunsPerS:   r.RunsPerS, BareRunsPerS: bare.RunsPerS, RateVsBare: ratio(r.RunsPerS, bare.RunsPerS),
			CPUMSPerRun: r.CPUMSPerRun, BareCPUMSPerRun: bare.CPUMSPerRun, CPUVsBare: ratio(r.CPUMSPerRun, bare.CPUMSPerRun),
			DaemonCPUMSPerRun: r.DaemonCPUMSPerRun,
		})
	}
	return out
}

// growth compares each kind and way at its largest size with its smallest.
func growth(rows []ScaleRow) []ScaleGrowth {
	var out []ScaleGrowth
	seen := map[string]bool{}
	for _, r := range rows {
		k := r.Kind + "/" + r.Way
		if seen[k] {
			continue
		}
		seen[k] = true
		var lo, hi ScaleRow
		for _, s := range rows {
			if s.Kind != r.Kind || s.Way != r.Way {
				continue
			}
			if lo.Way == "" || s.Size < lo.Size {
				lo = s
			}
			if hi.Way == "" || s.Size > hi.Size {
				hi = s
			}
		}
		g := ScaleGrowth{Kind: r.Kind, Way: r.Way, From: lo.Size, To: hi.Size,
			P50GrowthMS: hi.P50MS - lo.P50MS, BareP50GrowthMS: hi.BareP50MS - lo.BareP50MS,
			CPUGrowthMS: hi.CPUMSPerRun - lo.CPUMSPerRun, BareCPUGrowthMS: hi.BareCPUMSPerRun - lo.BareCPUMSPerRun,
			DaemonCPUMSFrom: lo.DaemonCPUMSPerRun, DaemonCPUMSTo: hi.DaemonCPUMSPerRun}
		g.GrowthVsBare = ratio(g.P50GrowthMS, g.BareP50GrowthMS)
		if hi.Size > lo.Size {
			g.DaemonCPUPerUnit = (hi.DaemonCPUMSPerRun - lo.DaemonCPUMSPerRun) / float64(hi.Size-lo.Size)
		}
		out = append(out, g)
	}
	return out
}

// scaleGroups makes the cases of one kind at each of its sizes. cleanup
// removes what they made (files, cached inputs); it may be called whatever
// the error.
func (b *bench) scaleGroups(ctx context.Context, kind string, sz scaleSizes, shm string) (groups []*scaleGroup, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	c := b.d.client
	settle := warmSettle(c)
	switch kind {
	case kindStdout:
		for _, n := range sz.Outputs {
			argv := stdoutArgv(n)
			cmd := scaleCmd(kind, n, argv)
			lim := api.Limits{OutputBytes: n + 1<<20}
			apiJob, err := encodeJob(&api.Job{Steps: []api.Step{{Argv: argv, Limits: lim}}})
			if err != nil {
				return nil, cleanup, err
			}
			toJob, err := encodeJob(&api.Job{WorkspaceBytes: max(64<<20, 2*n+16<<20),
				Steps: []api.Step{{Argv: argv, Limits: lim, StdoutTo: "out.txt"}}})
			if err != nil {
				return nil, cleanup, err
			}
			groups = append(groups, &scaleGroup{kind: kind, size: n,
				bare: map[string]string{wayRun: wayBare, wayStdoutTo: wayBareFile},
				cases: []*benchCase{
					{cmd: cmd, way: wayBare, run: bareOutputRunner(argv, n, "")},
					{cmd: cmd, way: wayBareFile, run: bareOutputRunner(argv, n, shm)},
					{cmd: cmd, way: wayRun, settle: settle, run: outputRunner(b, apiJob, n)},
					{cmd: cmd, way: wayStdoutTo, settle: settle, run: outputRunner(b, toJob, n)},
				}})
		}
	case kindInput:
		for i, n := range sz.Inputs {
			path := filepath.Join(b.dir, fmt.Sprintf("scale-input-%d", n))
			if err := writeInput(path, n, uint64(100+i)); err != nil {
				return nil, cleanup, err
			}
			undo = append(undo, func() { os.Remove(path) })
			id, err := upload(ctx, c, path)
			if err != nil {
				return nil, cleanup, fmt.Errorf("upload the %s input: %w", size2(n), err)
			}
			undo = append(undo, func() { c.DeleteFile(context.Background(), id) })
			content, err := os.ReadFile(path)
			if err != nil {
				return nil, cleanup, err
			}
			inline, err := encodeJob(&api.Job{Steps: []api.Step{{Argv: catStdin, Stdin: string(content)}}})
			if err != nil {
				return nil, cleanup, err
			}
			cached, err := encodeJob(&api.Job{Steps: []api.Step{{Argv: catStdin, StdinCached: id}}})
			if err != nil {
				return nil, cleanup, err
			}
			cmd := scaleCmd(kind, n, catStdin)
			groups = append(groups, &scaleGroup{kind: kind, size: n,
				bare: map[string]string{wayStdinInline: wayBare, wayStdinCachedS: wayBare},
				cases: []*benchCase{
					{cmd: cmd, way: wayBare, run: bareStdinRunner(catStdin, path)},
					{cmd: cmd, way: wayStdinInline, settle: settle, run: rawJobRunner(b, inline)},
					{cmd: cmd, way: wayStdinCachedS, settle: settle, run: rawJobRunner(b, cached)},
				}})
		}
	case kindFiles:
		for _, n := range sz.Files {
			files := make(map[string]api.File, n)
			for i := range n {
				files[fileName(i)] = api.File{Content: fileContent(i)}
			}
			job, err := encodeJob(&api.Job{Files: files, Steps: []api.Step{{Argv: cmdTrue.argv}}})
			if err != nil {
				return nil, cleanup, err
			}
			cmd := scaleCmd(kind, int64(n), cmdTrue.argv)
			groups = append(groups, &scaleGroup{kind: kind, size: int64(n),
				bare: map[string]string{wayRun: wayBare},
				cases: []*benchCase{
					{cmd: cmd, way: wayBare, run: bareFilesRunner(shm, n)},
					{cmd: cmd, way: wayRun, settle: settle, run: rawJobRunner(b, job)},
				}})
		}
	case kindSteps:
		for _, n := range sz.Steps {
			steps := make([]api.Step, n)
			for i := range steps {
				steps[i] = api.Step{Argv: cmdTrue.argv}
			}
			job, err := encodeJob(&api.Job{Steps: steps})
			if err != nil {
				return nil, cleanup, err
			}
			cmd := scaleCmd(kind, int64(n), cmdTrue.argv)
			groups = append(groups, &scaleGroup{kind: kind, size: int64(n),
				bare: map[string]string{wayRun: wayBare},
				cases: []*benchCase{
					{cmd: cmd, way: wayBare, run: bareStepsRunner(cmdTrue.argv, n)},
					{cmd: cmd, way: wayRun, settle: settle, run: stepsRunner(b, job, n)},
				}})
		}
	}
	return groups, cleanup, nil
}

func fileName(i int) string    { return fmt.Sprintf("d%02d/f%05d.txt", i%64, i) }
func fileContent(i int) string { return fmt.Sprintf("file %05d: %s\n", i, strings.Repeat("x", 48)) }

// encodeJob is a job as the client sends it, encoded once so that the
// client's encoding of a large job is not timed with every run.
func encodeJob(job *api.Job) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(job); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// rawJobRunner is one POST /v1/run of an encoded one-step job; its verdict
// must be ok.
func rawJobRunner(b *bench, job []byte) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := b.d.client.RunJSON(ctx, job)
		if err != nil {
			return err
		}
		_, err = oneStep(res, api.VerdictOK)
		return err
	}
}

// outputRunner is rawJobRunner for a job whose one step must write n
// bytes of stdout, all of which the result must carry.
func outputRunner(b *bench, job []byte, n int64) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := b.d.client.RunJSON(ctx, job)
		if err != nil {
			return err
		}
		st, err := oneStep(res, api.VerdictOK)
		if err != nil {
			return err
		}
		if int64(len(st.Stdout)) != n {
			return fmt.Errorf("the result carries %d bytes of stdout, want %d", len(st.Stdout), n)
		}
		return nil
	}
}

// stepsRunner is one POST /v1/run of an encoded job of n steps, each of
// which must be ok.
func stepsRunner(b *bench, job []byte, n int) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := b.d.client.RunJSON(ctx, job)
		if err != nil {
			return err
		}
		if res.Status != api.StatusCompleted || len(res.Steps) != n {
			return fmt.Errorf("want %d steps, got %s", n, describe(res))
		}
		for i, st := range res.Steps {
			if st.Verdict != api.VerdictOK {
				return fmt.Errorf("step %d: %s", i, describe(res))
			}
		}
		return nil
	}
}

// bareOutputRunner is os/exec of argv, its stdout read into memory through
// a pipe (as the daemon reads it), or, with a dir, written to a new file
// there (as stdout_to leaves it); it must be n bytes.
func bareOutputRunner(argv []string, n int64, dir string) func(context.Context) error {
	return func(context.Context) error {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = plainEnv
		var out bytes.Buffer
		var path string
		if dir == "" {
			cmd.Stdout = &out
		} else {
			f, err := os.CreateTemp(dir, "out-")
			if err != nil {
				return err
			}
			path = f.Name()
			defer os.Remove(path)
			defer f.Close()
			cmd.Stdout = f
		}
		if err := cmd.Run(); err != nil {
			return err
		}
		if path != "" {
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			return wantBytes(st.Size(), n)
		}
		return wantBytes(int64(out.Len()), n)
	}
}

func wantBytes(got, want int64) error {
	if got != want {
		return fmt.Errorf("stdout of %d bytes, want %d", got, want)
	}
	return nil
}

// bareFilesRunner writes the n files of a job into a fresh directory of
// its own on a tmpfs (as the daemon writes them into a workspace), runs
// /bin/true there and removes the directory.
func bareFilesRunner(shm string, n int) func(context.Context) error {
	return func(context.Context) error {
		dir, err := os.MkdirTemp(shm, "files-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		for i := range n {
			p := filepath.Join(dir, fileName(i))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte(fileContent(i)), 0o644); err != nil {
				return err
			}
		}
		cmd := exec.Command(cmdTrue.argv[0])
		cmd.Env, cmd.Dir = plainEnv, dir
		return cmd.Run()
	}
}

// bareStepsRunner is n runs of argv one after the other.
func bareStepsRunner(argv []string, n int) func(context.Context) error {
	one := bareRunner(argv, nil)
	return func(ctx context.Context) error {
		for range n {
			if err := one(ctx); err != nil {
				return err
			}
		}
		return nil
	}
}

// since is the time from start in seconds.
func since(start time.Time) float64 { return time.Since(start).Seconds() }

// scale measures every scaling figure: the concurrency sweep, the
// batches, the queue and the scaling rows, in that order (the batches and
// the queue before the rows' large outputs, whose results the daemon then
// keeps for a while).
func (b *bench) scale(ctx context.Context, sz scaleSizes) (*Scale, error) {
	start := time.Now()
	s := &Scale{Sizes: sz}
	var err error
	if b.scaleParts[partConcurrency] {
		if s.Concurrency, err = b.sweep(ctx, sz.SweepRuns, scaleRounds(sz)); err != nil {
			return nil, err
		}
	}
	for _, n := range sz.Batches {
		if !b.scaleParts[partBatch] {
			break
		}
		bs, err := b.batchScale(ctx, n)
		if err != nil {
			return nil, err
		}
		s.Batches = append(s.Batches, bs)
	}
	bareRate := 0.0
	if len(s.Batches) > 0 {
		bareRate = s.Batches[len(s.Batches)-1].BareRunsPerS
	}
	if b.scaleParts[partQueue] {
		if s.Queue, err = b.queue(ctx, sz.Queued, bareRate); err != nil {
			return nil, err
		}
	}
	if s.Rows, s.Growth, err = b.scaleRows(ctx, sz); err != nil {
		return nil, err
	}
	s.DurationS = time.Since(start).Seconds()
	return s, nil
}
