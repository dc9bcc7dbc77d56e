package main

import (
	"fmt"
	"io"
)

// print writes the scaling figures: the rows with their growth, the
// batches, the queue and the concurrency sweep.
func (s *Scale) print(w io.Writer) {
	if len(s.Rows) > 0 {
		s.printRows(w)
	}
	if len(s.Batches) > 0 {
		s.printBatches(w)
	}
	if s.Queue.Jobs > 0 {
		s.printQueue(w)
	}
	if len(s.Concurrency) > 0 {
		s.printSweep(w)
	}
	fmt.Fprintf(w, "(the scaling figures took %.0f s)\n\n", s.DurationS)
}

func (s *Scale) printRows(w io.Writer) {
	fmt.Fprintf(w, "scaling (sizes %q): each row beside the same work done bare, in the same rounds\n", s.Sizes.Name)
	fmt.Fprintf(w, "%-7s %-10s %-26s %-12s %8s %8s %8s %9s %8s %8s %8s %7s %7s\n", "kind", "size", "way", "against", "p50 ms", "bare p50",
		"p50-bare", "p50 vs", "runs/s", "rate vs", "CPU ms/", "bare", "daemon")
	fmt.Fprintf(w, "%-7s %-10s %-26s %-12s %8s %8s %8s %9s %8s %8s %8s %7s %7s\n", "", "", "", "", "", "ms", "ms", "bare", "", "bare", "run", "", "")
	for i, r := range s.Rows {
		if i > 0 && r.Kind != s.Rows[i-1].Kind {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%-7s %-10s %-26s %-12s %8.2f %8.2f %+8.2f %8.2fx %8.0f %7.2fx %8.2f %7.2f %7.2f\n", r.Kind, sizeLabel(r.Kind, r.Size), r.Way, r.Bare,
			r.P50MS, r.BareP50MS, r.OverBareMS, r.P50VsBare, r.RunsPerS, r.RateVsBare, r.CPUMSPerRun, r.BareCPUMSPerRun, r.DaemonCPUMSPerRun)
	}
	fmt.Fprintf(w, "(%d runs a row one at a time and %d with %d workers; CPU: the daemon with its sandboxes, or this program with its children; daemon: its own)\n",
		s.Sizes.Runs, s.Sizes.Runs, workers)
	fmt.Fprintln(w, "growth, smallest to largest size: the p50's against the bare p50's (above 1x: sandboxd's cost grows faster than the work)")
	for _, g := range s.Growth {
		fmt.Fprintf(w, "  %-7s %-26s %s -> %s: p50 %+.2f ms, bare %+.2f ms (%.2fx); CPU/run %+.2f ms, bare %+.2f ms; daemon's own %.2f -> %.2f ms\n",
			g.Kind, g.Way, sizeLabel(g.Kind, g.From), sizeLabel(g.Kind, g.To), g.P50GrowthMS, g.BareP50GrowthMS, g.GrowthVsBare,
			g.CPUGrowthMS, g.BareCPUGrowthMS, g.DaemonCPUMSFrom, g.DaemonCPUMSTo)
	}
	fmt.Fprintln(w)
}

func (s *Scale) printBatches(w io.Writer) {
	fmt.Fprintf(w, "batches of /bin/true, one POST /v1/batch at concurrency %d, against as many bare runs (at most %d) with %d workers\n", workers, maxBareBatchRuns, workers)
	fmt.Fprintf(w, "%8s %9s %9s %8s %8s %7s   %-44s %s\n", "jobs", "runs/s", "bare", "vs bare", "CPU ms/", "daemon", "runs/s start / middle / end", "RSS MiB before, start / middle / end, after")
	for _, b := range s.Batches {
		var rate, rss string
		for i, x := range b.Windows {
			if i > 0 {
				rate, rss = rate+" / ", rss+" / "
			}
			rate += fmt.Sprintf("%.0f", x.RunsPerS)
			rss += fmt.Sprintf("%.1f", mib(x.RSSBytes))
		}
		fmt.Fprintf(w, "%8d %9.0f %9.0f %7.2fx %8.2f %7.2f   %-44s %.1f, %s, %.1f\n", b.Jobs, b.RunsPerS, b.BareRunsPerS, b.RateVsBare,
			b.CPUMSPerRun, b.DaemonCPUMSPerRun, rate, mib(b.RSSBeforeBytes), rss, mib(b.RSSAfterBytes))
	}
	fmt.Fprintln(w)
}

func (s *Scale) printQueue(w io.Writer) {
	q := s.Queue
	fmt.Fprintf(w, "queue: %d jobs of /bin/true sent at once (at most %d seen waiting; %d connects found the listen backlog full and were retried): drained at %.0f runs/s (%.2fx bare's %.0f); daemon RSS %.1f -> at most %.1f MiB (%.1f KiB a job), %.1f MiB after\n",
		q.Jobs, q.MaxQueued, q.ConnectRetries, q.RunsPerS, q.RateVsBare, q.BareRunsPerS, mib(q.RSSBeforeBytes), mib(q.RSSMaxBytes), q.RSSPerJobBytes/1024, mib(q.RSSAfterBytes))
	fmt.Fprintf(w, "  GET /_ping every 10 ms from a process of its own: %d pings, p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d over 10 ms (load average before: %s)\n",
		q.Pings, q.PingP50MS, q.PingP99MS, q.PingMaxMS, q.PingsOver10MS, q.LoadAvg)
	for _, p := range []struct {
		name string
		f    PingFigure
	}{{fmt.Sprintf("while the jobs arrived (intake, %.2f s)", q.IntakeS), q.IntakePings}, {"while they waited and drained (queued)", q.QueuedPings}} {
		fmt.Fprintf(w, "    %s: %d pings, p50 %.2f ms, p99 %.2f ms, max %.2f ms; %d over 10 ms\n", p.name, p.f.Pings, p.f.P50MS, p.f.P99MS, p.f.MaxMS, p.f.Over10)
	}
	fmt.Fprintf(w, "  (the same for 2 s before, the daemon idle: p50 %.2f ms, p99 %.2f ms, max %.2f ms; the daemon's threads waited %.2f s in all for a CPU during the row's %.1f s)\n\n",
		q.IdlePingP50MS, q.IdlePingP99MS, q.IdlePingMaxMS, q.DaemonRunQueueWaitS, q.DurationS)
}

func (s *Scale) printSweep(w io.Writer) {
	fmt.Fprintf(w, "concurrency: each way with 1, 2, 4 and 8 clients at once (the daemon runs %d jobs at once)\n", workers)
	fmt.Fprintf(w, "%-24s %-14s %8s %8s %8s %9s\n", "command", "way", "clients", "p50 ms", "p99 ms", "runs/s")
	for _, p := range s.Concurrency {
		fmt.Fprintf(w, "%-24s %-14s %8d %8.2f %8.2f %9.0f\n", p.Command, p.Way, p.Clients, p.P50MS, p.P99MS, p.RunsPerS)
	}
}
