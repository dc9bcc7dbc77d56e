package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// BatchScale is one POST /v1/batch of /bin/true jobs at the daemon's
// concurrency, against as many bare runs with two workers (at most
// maxBareBatchRuns): throughput and
// the daemon's RSS at its start, middle and end (each a tenth of the
// jobs), and a sample at every hundredth of the jobs.
type BatchScale struct {
	Jobs              int           `json:"jobs"`
	RunsPerS          float64       `json:"runs_per_s"`
	BareRunsPerS      float64       `json:"bare_runs_per_s"`
	RateVsBare        float64       `json:"rate_vs_bare"`
	CPUMSPerRun       float64       `json:"cpu_ms_per_run"`
	BareCPUMSPerRun   float64       `json:"bare_cpu_ms_per_run"`
	DaemonCPUMSPerRun float64       `json:"daemon_cpu_ms_per_run"`
	Windows           []BatchWindow `json:"windows"` // start, middle, end
	Samples           []BatchSample `json:"samples"`
	RSSBeforeBytes    int64         `json:"daemon_rss_before_bytes"`
	RSSAfterBytes     int64         `json:"daemon_rss_after_bytes"` // a second after the batch
	DurationS         float64       `json:"duration_s"`
}

// BatchWindow is a tenth of a batch's jobs: their throughput, and the
// daemon's RSS when the last of them finished.
type BatchWindow struct {
	Name     string  `json:"name"`
	From     int     `json:"from"` // jobs done at its start
	To       int     `json:"to"`
	RunsPerS float64 `json:"runs_per_s"`
	RSSBytes int64   `json:"daemon_rss_bytes"`
}

// BatchSample is the daemon's RSS (with its helper's) once Done jobs of a
// batch had finished, TimeS after it started.
type BatchSample struct {
	Done     int     `json:"done"`
	TimeS    float64 `json:"time_s"`
	RSSBytes int64   `json:"daemon_rss_bytes"`
}

// maxBareBatchRuns bounds the bare runs beside a batch: their rate is as
// steady after 10,000 as after 100,000, which took a minute and a half
// of make bench for nothing.
const maxBareBatchRuns = 10000

// batchScale measures a batch of n /bin/true jobs and n bare runs (at most
// maxBareBatchRuns).
func (b *bench) batchScale(ctx context.Context, n int) (BatchScale, error) {
	r := BatchScale{Jobs: n}
	start := time.Now()
	nBare := min(n, maxBareBatchRuns)
	fmt.Fprintf(os.Stderr, "scaling, batch: %d jobs of /bin/true in one POST /v1/batch, and %d bare runs with %d workers\n", n, nBare, workers)
	bare := &benchCase{cmd: cmdTrue, way: wayBare, run: bareRunner(cmdTrue.argv, nil)}
	if err := b.rateBlock(ctx, bare, nBare); err != nil {
		return r, err
	}
	br := results([]*benchCase{bare})[0]
	r.BareRunsPerS, r.BareCPUMSPerRun = br.RunsPerS, br.CPUMSPerRun

	line, err := encodeJob(&api.Job{Steps: []api.Step{{Argv: cmdTrue.argv}}})
	if err != nil {
		return r, err
	}
	line = append(line, '\n')
	pr, pw := io.Pipe()
	go func() {
		for range n {
			if _, err := pw.Write(line); err != nil {
				return
			}
		}
		pw.Close()
	}()
	defer pr.Close()
	r.RSSBeforeBytes, _ = b.d.rss()
	every := max(1, n/100)
	r.Samples = append(r.Samples, BatchSample{RSSBytes: r.RSSBeforeBytes})
	c := &benchCase{cmd: cmdTrue, way: wayBatch}
	before, err := b.counters()
	if err != nil {
		return r, err
	}
	done := 0
	t0 := time.Now()
	sum, err := b.d.client.Batch(ctx, pr, workers, func(l *api.BatchLine) error {
		if l.Error != nil {
			return fmt.Errorf("job %d refused: %w", *l.Index, l.Error)
		}
		if _, err := oneStep(l.Result, api.VerdictOK); err != nil {
			return err
		}
		done++
		if done%every == 0 || done == n {
			rss, _ := b.d.rss()
			r.Samples = append(r.Samples, BatchSample{Done: done, TimeS: since(t0), RSSBytes: rss})
		}
		return nil
	})
	if err != nil {
		return r, fmt.Errorf("batch of %d: %w", n, err)
	}
	c.rateTime, c.rateRuns = time.Since(t0), n
	if sum.Verdicts[string(api.VerdictOK)] != n {
		return r, fmt.Errorf("batch of %d: %d jobs ok: %+v", n, sum.Verdicts[string(api.VerdictOK)], sum)
	}
	if err := b.charge(c, before, n); err != nil {
		return r, err
	}
	cr := results([]*benchCase{c})[0]
	r.RunsPerS, r.CPUMSPerRun, r.DaemonCPUMSPerRun = cr.RunsPerS, cr.CPUMSPerRun, cr.DaemonCPUMSPerRun
	r.RateVsBare = ratio(r.RunsPerS, r.BareRunsPerS)
	r.Windows = batchWindows(r.Samples, n)
	if err := sleep(ctx, time.Second); err != nil {
		return r, err
	}
	r.RSSAfterBytes, _ = b.d.rss()
	r.DurationS = time.Since(start).Seconds()
	return r, nil
}

// batchWindows are the first, middle and last tenth of a batch's jobs,
// from its samples (taken every hundredth).
func batchWindows(s []BatchSample, n int) []BatchWindow {
	at := func(frac float64) BatchSample {
		want := int(frac * float64(n))
		for _, x := range s {
			if x.Done >= want {
				return x
			}
		}
		return s[len(s)-1]
	}
	var out []BatchWindow
	for _, w := range []struct {
		name     string
		from, to float64
	}{{"start", 0, 0.1}, {"middle", 0.45, 0.55}, {"end", 0.9, 1}} {
		a, z := at(w.from), at(w.to)
		bw := BatchWindow{Name: w.name, From: a.Done, To: z.Done, RSSBytes: z.RSSBytes}
		if z.TimeS > a.TimeS {
			bw.RunsPerS = float64(z.Done-a.Done) / (z.TimeS - a.TimeS)
		}
		out = append(out, bw)
	}
	return out
}

// QueueScale is n jobs of /bin/true sent at once, each its own POST
// /v1/run, while another client asks GET /_ping every 10 ms: how long
// the pings took, how far the daemon's RSS rose, and how fast the queue
// drained against the bare rate of the same run.
type QueueScale struct {
	Jobs      int `json:"jobs"`
	MaxQueued int `json:"max_queued"` // the most GET /v1/info saw waiting
	// ConnectRetries are connects refused while the socket's listen
	// backlog was full, each sent again 10 ms later.
	ConnectRetries int     `json:"connect_retries"`
	Pings          int     `json:"pings"`
	PingP50MS      float64 `json:"ping_p50_ms"`
	PingP99MS      float64 `json:"ping_p99_ms"`
	PingMaxMS      float64 `json:"ping_max_ms"`
	PingsOver10MS  int     `json:"pings_over_10ms"`
	// The same pings for 2 s before, the daemon idle: the machine's own
	// delay, under whatever else it runs.
	IdlePingP50MS     float64 `json:"idle_ping_p50_ms"`
	IdlePingP99MS     float64 `json:"idle_ping_p99_ms"`
	IdlePingMaxMS     float64 `json:"idle_ping_max_ms"`
	RSSBeforeBytes    int64   `json:"daemon_rss_before_bytes"`
	RSSMaxBytes       int64   `json:"daemon_rss_max_bytes"`
	RSSPerJobBytes    float64 `json:"daemon_rss_per_queued_job_bytes"` // (max - before) / jobs
	RSSAfterBytes     int64   `json:"daemon_rss_after_bytes"`          // a second after the last answer
	RunsPerS          float64 `json:"runs_per_s"`
	BareRunsPerS      float64 `json:"bare_runs_per_s"` // the largest batch row's bare rate
	RateVsBare        float64 `json:"rate_vs_bare"`
	DaemonCPUMSPerRun float64 `json:"daemon_cpu_ms_per_run"`
	DurationS         float64 `json:"duration_s"`
}

// queue sends n jobs at once and pings the daemon meanwhile.
func (b *bench) queue(ctx context.Context, n int, bareRate float64) (QueueScale, error) {
	r := QueueScale{Jobs: n, BareRunsPerS: bareRate}
	fmt.Fprintf(os.Stderr, "scaling, queue: %d jobs of /bin/true sent at once, GET /_ping every 10 ms meanwhile\n", n)
	job, err := encodeJob(&api.Job{Steps: []api.Step{{Argv: cmdTrue.argv}}})
	if err != nil {
		return r, err
	}
	r.RSSBeforeBytes, _ = b.d.rss()
	// Each job its own connection, and the pings and the sampler theirs,
	// so that none waits for another's connection.
	jc, pc, ic := client.New(b.d.client.Socket()), client.New(b.d.client.Socket()), client.New(b.d.client.Socket())
	defer jc.Close()
	defer pc.Close()
	defer ic.Close()
	idle, err := pingFor(ctx, pc, 2*time.Second)
	if err != nil {
		return r, fmt.Errorf("GET /_ping, idle: %w", err)
	}
	r.IdlePingP50MS, r.IdlePingP99MS, r.IdlePingMaxMS = ms(percentile(idle, 0.5)), ms(percentile(idle, 0.99)), ms(percentile(idle, 1))
	before, err := b.counters()
	if err != nil {
		return r, err
	}
	stop := make(chan struct{})
	var watchers sync.WaitGroup
	var pings []time.Duration
	var maxRSS atomic.Int64
	var maxQueued atomic.Int64
	var pingErr error
	watchers.Add(2)
	go func() {
		defer watchers.Done()
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			s := time.Now()
			err := pc.Ping(pctx)
			cancel()
			if err != nil {
				pingErr = err
				return
			}
			pings = append(pings, time.Since(s))
		}
	}()
	go func() {
		defer watchers.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			if rss, err := b.d.rss(); err == nil && rss > maxRSS.Load() {
				maxRSS.Store(rss)
			}
			if info, err := ic.Info(ctx); err == nil && int64(info.Pool.Queued) > maxQueued.Load() {
				maxQueued.Store(int64(info.Pool.Queued))
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	var retries atomic.Int64
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := jc.RunJSON(ctx, job)
			// A connect refused with EAGAIN found the socket's listen
			// backlog (net.core.somaxconn) full: nothing was sent, and the
			// job is sent again once the daemon has accepted some.
			for errors.Is(err, syscall.EAGAIN) && ctx.Err() == nil {
				retries.Add(1)
				time.Sleep(10 * time.Millisecond)
				res, err = jc.RunJSON(ctx, job)
			}
			if err == nil {
				_, err = oneStep(res, api.VerdictOK)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stop)
	watchers.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return r, fmt.Errorf("queue of %d: %w", n, err)
	}
	if pingErr != nil {
		return r, fmt.Errorf("queue of %d: GET /_ping: %w", n, pingErr)
	}
	c := &benchCase{cmd: cmdTrue, way: wayRun}
	if err := b.charge(c, before, n); err != nil {
		return r, err
	}
	r.DaemonCPUMSPerRun = results([]*benchCase{c})[0].DaemonCPUMSPerRun
	r.RunsPerS = float64(n) / elapsed.Seconds()
	r.RateVsBare = ratio(r.RunsPerS, r.BareRunsPerS)
	r.MaxQueued = int(maxQueued.Load())
	r.ConnectRetries = int(retries.Load())
	r.RSSMaxBytes = maxRSS.Load()
	if r.RSSMaxBytes > r.RSSBeforeBytes {
		r.RSSPerJobBytes = float64(r.RSSMaxBytes-r.RSSBeforeBytes) / float64(n)
	}
	r.Pings = len(pings)
	if len(pings) > 0 {
		r.PingP50MS, r.PingP99MS, r.PingMaxMS = ms(percentile(pings, 0.5)), ms(percentile(pings, 0.99)), ms(percentile(pings, 1))
		for _, p := range pings {
			if p > 10*time.Millisecond {
				r.PingsOver10MS++
			}
		}
	}
	if err := sleep(ctx, time.Second); err != nil {
		return r, err
	}
	r.RSSAfterBytes, _ = b.d.rss()
	r.DurationS = elapsed.Seconds()
	return r, nil
}

// pingFor asks GET /_ping every 10 ms for d and times each answer.
func pingFor(ctx context.Context, c *client.Client, d time.Duration) ([]time.Duration, error) {
	var out []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end); {
		s := time.Now()
		if err := c.Ping(ctx); err != nil {
			return nil, err
		}
		out = append(out, time.Since(s))
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SweepPoint is one way of running one command with Clients clients at
// once: each request's latency and the throughput of them all.
type SweepPoint struct {
	Command  string  `json:"command"`
	Way      string  `json:"way"`
	Clients  int     `json:"clients"`
	Runs     int     `json:"runs"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
	RunsPerS float64 `json:"runs_per_s"`
}

// sweepClients are the client counts of the concurrency sweep; the
// daemon's concurrency stays 2, so above it requests wait in its queue.
var sweepClients = []int{1, 2, 4, 8}

// sweep runs /bin/true and python bare and through POST /v1/run with 1,
// 2, 4 and 8 clients, runs runs of each, in rounds whose order rotates.
func (b *bench) sweep(ctx context.Context, runs, rounds int) ([]SweepPoint, error) {
	fmt.Fprintf(os.Stderr, "scaling, concurrency: %d runs of /bin/true and python, bare and through POST /v1/run, with %v clients\n", runs, sweepClients)
	type cell struct {
		p    SweepPoint
		run  func(context.Context) error
		lat  []time.Duration
		wall time.Duration
	}
	var cells []*cell
	for _, cmd := range []command{cmdTrue, cmdPython} {
		for _, cl := range sweepClients {
			cells = append(cells,
				&cell{p: SweepPoint{Command: cmd.name, Way: wayBare, Clients: cl}, run: bareRunner(cmd.argv, nil)},
				&cell{p: SweepPoint{Command: cmd.name, Way: wayRun, Clients: cl}, run: runRunner(b.d.client, cmd.argv)})
		}
	}
	per := max(1, (runs+rounds-1)/rounds)
	for r := range rounds {
		k := r % len(cells)
		for _, c := range slices.Concat(cells[k:], cells[:k]) {
			lat, wall, err := clientsBlock(ctx, c.run, c.p.Clients, max(per, c.p.Clients))
			if err != nil {
				return nil, fmt.Errorf("%s, %s, %d clients: %w", c.p.Command, c.p.Way, c.p.Clients, err)
			}
			c.lat, c.wall = append(c.lat, lat...), c.wall+wall
		}
	}
	out := make([]SweepPoint, len(cells))
	for i, c := range cells {
		c.p.Runs = len(c.lat)
		c.p.P50MS, c.p.P99MS = ms(percentile(c.lat, 0.5)), ms(percentile(c.lat, 0.99))
		c.p.RunsPerS = float64(len(c.lat)) / c.wall.Seconds()
		out[i] = c.p
	}
	return out, nil
}

// clientsBlock does n runs with clients at once, timing each and the whole.
func clientsBlock(ctx context.Context, run func(context.Context) error, clients, n int) ([]time.Duration, time.Duration, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	errs := make(chan error, clients)
	start := time.Now()
	for range clients {
		go func() {
			for next.Add(1) <= int64(n) {
				if err := ctx.Err(); err != nil {
					errs <- err
					return
				}
				t := time.Now()
				if err := run(ctx); err != nil {
					next.Store(int64(n))
					errs <- err
					return
				}
				d := time.Since(t)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
			errs <- nil
		}()
	}
	var first error
	for range clients {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return lat, time.Since(start), first
}
