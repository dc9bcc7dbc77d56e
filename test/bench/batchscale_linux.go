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
// /v1/run, while a process of its own asks GET /_ping every 10 ms: how
// long the pings took while the jobs arrived and while they waited, how
// far the daemon's RSS rose, and how fast the queue drained against the
// bare rate of the same run.
type QueueScale struct {
	Jobs      int `json:"jobs"`
	MaxQueued int `json:"max_queued"` // the most GET /v1/info saw waiting
	// ConnectRetries are connects refused while the socket's listen
	// backlog was full, each sent again 10 ms later.
	ConnectRetries int `json:"connect_retries"`
	// IntakeS is how long the daemon took to take every job in: from the
	// first sent until GET /v1/info saw all of them waiting, running or
	// answered.
	IntakeS float64 `json:"intake_s"`
	// The pings from the first job sent to the last answer (all), and
	// split: while the jobs arrived (intake) and after, while they waited
	// and drained (queued).
	Pings         int        `json:"pings"`
	PingP50MS     float64    `json:"ping_p50_ms"`
	PingP99MS     float64    `json:"ping_p99_ms"`
	PingMaxMS     float64    `json:"ping_max_ms"`
	PingsOver10MS int        `json:"pings_over_10ms"`
	IntakePings   PingFigure `json:"intake_pings"`
	QueuedPings   PingFigure `json:"queued_pings"`
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
	LoadAvg           string  `json:"load_avg"` // before the row
	// DaemonRunQueueWaitS is how long the daemon's threads waited for a
	// CPU while runnable, from the first job sent to the last answer, in
	// all: what the machine's other work (and the bench's own clients)
	// took from it.
	DaemonRunQueueWaitS float64 `json:"daemon_run_queue_wait_s"`
}

// PingFigure is a phase's pings: how many, their p50, p99 and max, and
// how many took over 10 ms.
type PingFigure struct {
	Pings  int     `json:"pings"`
	P50MS  float64 `json:"p50_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	Over10 int     `json:"over_10ms"`
}

func pingFigure(p []ping) PingFigure {
	f := PingFigure{Pings: len(p)}
	if len(p) == 0 {
		return f
	}
	d := make([]time.Duration, len(p))
	for i, x := range p {
		d[i] = x.dur
		if x.dur > 10*time.Millisecond {
			f.Over10++
		}
	}
	f.P50MS, f.P99MS, f.MaxMS = ms(percentile(d, 0.5)), ms(percentile(d, 0.99)), ms(percentile(d, 1))
	return f
}

// pingsBetween are the pings sent in [from, to).
func pingsBetween(p []ping, from, to time.Time) []ping {
	var out []ping
	for _, x := range p {
		if !x.at.Before(from) && x.at.Before(to) {
			out = append(out, x)
		}
	}
	return out
}

// queue sends n jobs at once and pings the daemon meanwhile.
func (b *bench) queue(ctx context.Context, n int, bareRate float64) (QueueScale, error) {
	r := QueueScale{Jobs: n, BareRunsPerS: bareRate, LoadAvg: loadAvg()}
	fmt.Fprintf(os.Stderr, "scaling, queue: %d jobs of /bin/true sent at once, GET /_ping every 10 ms meanwhile from a process of its own\n", n)
	job, err := encodeJob(&api.Job{Steps: []api.Step{{Argv: cmdTrue.argv}}})
	if err != nil {
		return r, err
	}
	r.RSSBeforeBytes, _ = b.d.rss()
	// Each job its own connection, and the sampler its own, so that none
	// waits for another's connection.
	jc, ic := client.New(b.d.client.Socket()), client.New(b.d.client.Socket())
	defer jc.Close()
	defer ic.Close()
	pg, err := startPinger(b.d.client.Socket())
	if err != nil {
		return r, fmt.Errorf("the pinger: %w", err)
	}
	defer pg.stop()
	if err := sleep(ctx, 2*time.Second); err != nil {
		return r, err
	}
	before, err := b.counters()
	if err != nil {
		return r, err
	}
	stop := make(chan struct{})
	var watchers sync.WaitGroup
	var maxRSS atomic.Int64
	var maxQueued atomic.Int64
	var answered atomic.Int64
	var intakeEnd atomic.Int64 // unix ns
	watchers.Add(1)
	go func() {
		defer watchers.Done()
		t := time.NewTicker(20 * time.Millisecond)
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
			done := answered.Load()
			if info, err := ic.Info(ctx); err == nil {
				if int64(info.Pool.Queued) > maxQueued.Load() {
					maxQueued.Store(int64(info.Pool.Queued))
				}
				if intakeEnd.Load() == 0 && int64(info.Pool.Queued+info.Pool.Running)+done >= int64(n) {
					intakeEnd.Store(time.Now().UnixNano())
				}
			}
		}
	}()
	waitedBefore := b.d.runQueueWait()
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
			answered.Add(1)
		}()
	}
	wg.Wait()
	end := time.Now()
	r.DaemonRunQueueWaitS = (b.d.runQueueWait() - waitedBefore).Seconds()
	elapsed := end.Sub(start)
	close(stop)
	watchers.Wait()
	close(errs)
	pings, pingErr := pg.stop()
	if err := <-errs; err != nil {
		return r, fmt.Errorf("queue of %d: %w", n, err)
	}
	if pingErr != nil {
		return r, fmt.Errorf("queue of %d: %w", n, pingErr)
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
	mid := end
	if e := intakeEnd.Load(); e != 0 {
		mid = time.Unix(0, e)
	}
	r.IntakeS = mid.Sub(start).Seconds()
	idle := pingFigure(pingsBetween(pings, time.Time{}, start))
	r.IdlePingP50MS, r.IdlePingP99MS, r.IdlePingMaxMS = idle.P50MS, idle.P99MS, idle.MaxMS
	all := pingFigure(pingsBetween(pings, start, end))
	r.Pings, r.PingP50MS, r.PingP99MS, r.PingMaxMS, r.PingsOver10MS = all.Pings, all.P50MS, all.P99MS, all.MaxMS, all.Over10
	r.IntakePings = pingFigure(pingsBetween(pings, start, mid))
	r.QueuedPings = pingFigure(pingsBetween(pings, mid, end))
	if err := sleep(ctx, time.Second); err != nil {
		return r, err
	}
	r.RSSAfterBytes, _ = b.d.rss()
	r.DurationS = elapsed.Seconds()
	return r, nil
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
