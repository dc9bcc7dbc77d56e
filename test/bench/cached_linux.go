package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// The cached-input case: what a large input from the daemon's file cache
// costs a run, against a small one. The same command reads all of a 1 KiB
// and of a 256 MiB file, bare on the host and through the daemon with the
// file as a cached stdin or as a cached workspace file; if the cache makes
// no copy per run, the daemon's own CPU per run is the same for both sizes,
// and so is a run's latency less that of the bare run of the same file.
const (
	smallInputBytes = 1 << 10
	bigInputBytes   = 256 << 20
)

// The ways of the cached-input case, beside wayBare, which reads the
// daemon's own copy of the file (in its cache_dir, named by its id): the
// same bytes in the same page cache as the sandboxes read.
const (
	wayBareHost    = "bare, host copy"             // the file the bench wrote and uploaded
	wayStdinCached = "POST /v1/run stdin_cached"   // the file as the step's stdin_cached
	wayFileCached  = "POST /v1/run files[].cached" // the file as a files[].cached entry, read by path
)

// catStdin reads all of its stdin and writes nothing: cat, as a shell runs
// `cat < FILE > /dev/null`. The daemon's files[].cached way reads its
// workspace file `in` by path instead (catFile); bare, both are catStdin
// with the host file as stdin, the same work.
var (
	catStdin = []string{"/bin/sh", "-c", "cat >/dev/null"}
	catFile  = []string{"/bin/sh", "-c", "cat in >/dev/null"}
)

// CachedInput is the cached-input case's figures. Cases has, per input
// size, the bare run and the two daemon ways (their ratios to the bare run
// of the same size); BigVsSmall compares the sizes way by way.
type CachedInput struct {
	Runs         int            `json:"runs"`
	Rounds       int            `json:"rounds"`
	SmallBytes   int64          `json:"small_bytes"`
	BigBytes     int64          `json:"big_bytes"`
	BigUploadMS  float64        `json:"big_upload_ms"` // POST /v1/files of the big file, once
	Cases        []CaseResult   `json:"cases"`
	BigVsSmall   []CachedGrowth `json:"big_vs_small"`
	MaxRSSBytes  int64          `json:"daemon_max_rss_bytes"` // the daemon's, during the upload and the runs
	BareCPUSmall float64        `json:"bare_cpu_ms_per_run_small"`
	BareCPUBig   float64        `json:"bare_cpu_ms_per_run_big"`
	// HostCopyVsCached is the bare CPU per run reading the bench's own
	// copy of the big file over reading the cache's: below 1, the cache's
	// copy costs its readers more (how the daemon wrote it), bare or not.
	HostCopyVsCached float64 `json:"host_copy_vs_cached_cpu_big"`
	DurationS        float64 `json:"duration_s"` // the whole case: writing, uploading, measuring
}

// CachedGrowth is one way of the cached-input case, the big input against
// the small one: the daemon's own CPU per run for each and their ratio
// (flat is 1), and each p50 and p99 less the bare run's of the same file
// (the sandbox's cost beyond the program's own reading) and how much that
// grew with the big input (flat is 0).
type CachedGrowth struct {
	Way                 string  `json:"way"`
	DaemonCPUMSSmall    float64 `json:"daemon_cpu_ms_per_run_small"`
	DaemonCPUMSBig      float64 `json:"daemon_cpu_ms_per_run_big"`
	DaemonCPURatio      float64 `json:"daemon_cpu_big_vs_small"`
	P50OverBareMSSmall  float64 `json:"p50_over_bare_ms_small"`
	P50OverBareMSBig    float64 `json:"p50_over_bare_ms_big"`
	P50OverBareGrowthMS float64 `json:"p50_over_bare_growth_ms"`
	P99OverBareMSSmall  float64 `json:"p99_over_bare_ms_small"`
	P99OverBareMSBig    float64 `json:"p99_over_bare_ms_big"`
}

// cachedInput writes a small and a big input file, uploads both to the
// daemon's cache, times every way of reading each in interleaved rounds,
// and deletes them from the cache and the host.
func (b *bench) cachedInput(ctx context.Context, runs, rounds, warmup int) (CachedInput, error) {
	r := CachedInput{Runs: runs, Rounds: rounds, SmallBytes: smallInputBytes, BigBytes: bigInputBytes}
	start := time.Now()
	b.d.resetMaxRSS()
	inputs := []struct {
		name string
		size int64
	}{{"1 KiB", smallInputBytes}, {"256 MiB", bigInputBytes}}
	var cases []*benchCase
	var ids []string
	defer func() {
		for _, id := range ids {
			b.d.client.DeleteFile(context.Background(), id)
		}
	}()
	for i, in := range inputs {
		path := filepath.Join(b.dir, fmt.Sprintf("input-%d", in.size))
		if err := writeInput(path, in.size, uint64(i)); err != nil {
			return r, err
		}
		defer os.Remove(path)
		start := time.Now()
		id, err := upload(ctx, b.d.client, path)
		if err != nil {
			return r, fmt.Errorf("upload the %s input: %w", in.name, err)
		}
		if in.size == bigInputBytes {
			r.BigUploadMS = ms(time.Since(start))
		}
		ids = append(ids, id)
		cachedCopy := filepath.Join(b.dir, "cache", id)
		if st, err := os.Stat(cachedCopy); err != nil || st.Size() != in.size {
			return r, fmt.Errorf("the daemon's cached copy of the %s input: want %s of %d bytes: %v", in.name, cachedCopy, in.size, err)
		}
		cmd := command{name: "cat >/dev/null, " + in.name, argv: catStdin}
		cases = append(cases,
			&benchCase{cmd: cmd, way: wayBare, run: bareStdinRunner(catStdin, cachedCopy)},
			&benchCase{cmd: cmd, way: wayBareHost, run: bareStdinRunner(catStdin, path)},
			&benchCase{cmd: cmd, way: wayStdinCached, settle: warmSettle(b.d.client),
				run: jobRunner(b.d.client, &api.Job{Steps: []api.Step{{Argv: catStdin, StdinCached: id}}})},
			&benchCase{cmd: cmd, way: wayFileCached, settle: warmSettle(b.d.client),
				run: jobRunner(b.d.client, &api.Job{Files: map[string]api.File{"in": {Cached: id}},
					Steps: []api.Step{{Argv: catFile}}})},
		)
	}
	if err := b.measureN(ctx, cases, runs, rounds, warmup); err != nil {
		return r, err
	}
	r.MaxRSSBytes = b.d.maxRSS.Load()
	r.Cases = results(cases)
	small, big := "cat >/dev/null, "+inputs[0].name, "cat >/dev/null, "+inputs[1].name
	bareS, bareB := find(r.Cases, small, wayBare), find(r.Cases, big, wayBare)
	r.BareCPUSmall, r.BareCPUBig = bareS.CPUMSPerRun, bareB.CPUMSPerRun
	r.HostCopyVsCached = ratio(find(r.Cases, big, wayBareHost).CPUMSPerRun, bareB.CPUMSPerRun)
	for _, way := range []string{wayStdinCached, wayFileCached} {
		s, g := find(r.Cases, small, way), find(r.Cases, big, way)
		r.BigVsSmall = append(r.BigVsSmall, CachedGrowth{
			Way:                 way,
			DaemonCPUMSSmall:    s.DaemonCPUMSPerRun,
			DaemonCPUMSBig:      g.DaemonCPUMSPerRun,
			DaemonCPURatio:      ratio(g.DaemonCPUMSPerRun, s.DaemonCPUMSPerRun),
			P50OverBareMSSmall:  s.P50MS - bareS.P50MS,
			P50OverBareMSBig:    g.P50MS - bareB.P50MS,
			P50OverBareGrowthMS: (g.P50MS - bareB.P50MS) - (s.P50MS - bareS.P50MS),
			P99OverBareMSSmall:  s.P99MS - bareS.P99MS,
			P99OverBareMSBig:    g.P99MS - bareB.P99MS,
		})
	}
	r.DurationS = time.Since(start).Seconds()
	return r, nil
}

// writeInput writes size bytes of pseudo-random text lines to path: what a
// test input looks like, and nothing any layer could compress or skip.
func writeInput(path string, size int64, seed uint64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	line := make([]byte, 0, 64)
	for n := int64(0); n < size; {
		line = strconv.AppendInt(line[:0], rng.Int64N(1e9), 10)
		line = append(line, ' ')
		line = strconv.AppendInt(line, rng.Int64N(1e9), 10)
		line = append(line, '\n')
		if int64(len(line)) > size-n {
			line = line[:size-n]
		}
		w.Write(line)
		n += int64(len(line))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// upload puts the file at path into the daemon's cache and returns its id.
func upload(ctx context.Context, c *client.Client, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	cf, err := c.Upload(ctx, f)
	return cf.ID, err
}

// bareStdinRunner is os/exec of argv with the file at path as its stdin,
// as a shell's `ARGV < PATH` opens it.
func bareStdinRunner(argv []string, path string) func(context.Context) error {
	return func(context.Context) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = plainEnv
		cmd.Stdin = f
		return cmd.Run()
	}
}
