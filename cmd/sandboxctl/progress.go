package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/sandboxd/sandboxd/api"
)

// progress shows how a batch is going on stderr: a bar on a terminal,
// else a plain line every second while jobs finish. Either way a last line
// sums the batch up.
type progress struct {
	w     io.Writer
	total int // -1: not known
	start time.Time

	bar        *progressbar.ProgressBar // nil: plain lines
	clearFirst bool                     // stdout is the same terminal: clear the bar before a line goes there

	stopTick chan struct{}
	tickDone chan struct{}

	mu      sync.Mutex // guards what follows, and writes to w
	done    int
	counts  map[string]int // the verdict of each job done, or "invalid"
	printed int            // done, when the last plain line was printed
}

// plainEvery is how often a plain progress line may be printed (a
// variable for the tests).
var plainEvery = time.Second

// isTerminal tells whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress starts showing progress towards total jobs (-1: unknown).
// With bar set it draws a progress bar; sharedTerminal says stdout shows
// on the same terminal.
func newProgress(w io.Writer, total int, bar, sharedTerminal bool) *progress {
	p := &progress{
		w: w, total: total, start: time.Now(), counts: map[string]int{},
		stopTick: make(chan struct{}), tickDone: make(chan struct{}),
	}
	every := plainEvery
	if bar {
		p.bar = newBar(w, total)
		p.clearFirst = sharedTerminal
		every = 250 * time.Millisecond // keeps rate, elapsed and ETA moving
	}
	go p.tick(every)
	return p
}

func newBar(w io.Writer, total int) *progressbar.ProgressBar {
	max := int64(total)
	if total <= 0 {
		max = -1 // a spinner with the count and rate, no ETA
	}
	return progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetWidth(24),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("jobs"),
		progressbar.OptionSetPredictTime(true), // [elapsed:eta]
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionShowDescriptionAtLineEnd(), // the verdict counts
		progressbar.OptionThrottle(50*time.Millisecond),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSpinnerType(14),
		progressbar.OptionSetRenderBlankState(true),
	)
}

func (p *progress) tick(every time.Duration) {
	defer close(p.tickDone)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.stopTick:
			return
		case <-t.C:
		}
		p.mu.Lock()
		if p.bar != nil {
			p.bar.Add(0) // a render, to update the times
		} else if p.done != p.printed {
			p.printed = p.done
			fmt.Fprintf(p.w, "batch: %s\n", p.line())
		}
		p.mu.Unlock()
	}
}

// beforeOutput is called before a line goes to stdout: on a terminal
// shared with stdout, the bar steps aside (it comes back at its next
// render).
func (p *progress) beforeOutput() {
	if !p.clearFirst {
		return
	}
	p.mu.Lock()
	io.WriteString(p.w, "\r\x1b[2K")
	p.mu.Unlock()
}

// jobDone counts one finished job and its verdict.
func (p *progress) jobDone(verdict string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.counts[verdict]++
	if p.bar == nil {
		return
	}
	if p.total > 0 && p.done > p.total { // the count of lines was off
		p.bar.ChangeMax(p.done)
	}
	p.bar.Describe(countsText(p.counts))
	p.bar.Add(1)
}

// line is a plain progress line: done, rate, ETA, counts.
func (p *progress) line() string {
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(p.done) / elapsed
	}
	var b strings.Builder
	if p.total > 0 {
		fmt.Fprintf(&b, "%d/%d done, %.1f jobs/s", p.done, p.total, rate)
		if left := p.total - p.done; left > 0 && rate > 0 {
			fmt.Fprintf(&b, ", eta %s", (time.Duration(float64(left) / rate * float64(time.Second))).Round(time.Second))
		}
	} else {
		fmt.Fprintf(&b, "%d done, %.1f jobs/s", p.done, rate)
	}
	if len(p.counts) > 0 {
		b.WriteString(": ")
		b.WriteString(countsText(p.counts))
	}
	return b.String()
}

// stop ends the display and prints the last line: the daemon's summary
// when there is one, else what was seen before the batch broke off.
func (p *progress) stop(sum *api.BatchSummary) {
	close(p.stopTick)
	<-p.tickDone
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar != nil {
		if p.total <= 0 {
			p.bar.Finish() // ends the spinner's own redrawing
		} else {
			p.bar.Add(0)
		}
		io.WriteString(p.w, "\n")
	}
	if sum == nil {
		fmt.Fprintf(p.w, "batch: stopped: %s\n", p.line())
		return
	}
	counts := map[string]int{}
	for v, n := range sum.Verdicts {
		counts[v] = n
	}
	if sum.Invalid > 0 {
		counts["invalid"] = sum.Invalid
	}
	wall := time.Duration(sum.WallMS * float64(time.Millisecond))
	rate := 0.0
	if wall > 0 {
		rate = float64(sum.Total) / wall.Seconds()
	}
	fmt.Fprintf(p.w, "batch: %d jobs in %s (%.1f jobs/s): %s\n", sum.Total, wall.Round(time.Millisecond), rate, countsText(counts))
}

// verdictOrder is how counts are listed: ok first, then as docs/api.md lists
// the verdicts, then refused jobs.
var verdictOrder = []string{
	string(api.VerdictOK), string(api.VerdictNonzeroExit), string(api.VerdictSignaled),
	string(api.VerdictCPUTimeLimit), string(api.VerdictWallTimeLimit), string(api.VerdictMemoryLimit),
	string(api.VerdictOutputLimit), string(api.VerdictSyscallBlocked), string(api.VerdictExecFailed),
	string(api.VerdictSkipped), string(api.VerdictCancelled), string(api.VerdictInternalError),
	"invalid",
}

// countsText reads like "ok 180 nonzero_exit 12 cpu_time_limit 8".
func countsText(counts map[string]int) string {
	keys := sortedKeys(counts)
	slices.SortStableFunc(keys, func(a, b string) int { return rank(a) - rank(b) })
	var parts []string
	for _, k := range keys {
		if counts[k] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, counts[k]))
		}
	}
	if len(parts) == 0 {
		return "nothing done"
	}
	return strings.Join(parts, " ")
}

func rank(v string) int {
	if i := slices.Index(verdictOrder, v); i >= 0 {
		return i
	}
	return len(verdictOrder) // unknown ones last, by name
}

// lineVerdict is what a job's answer counts as: like the daemon's summary,
// its first verdict that is not ok, else ok; "invalid" for a refused job.
func lineVerdict(bl *api.BatchLine) string {
	if bl.Error != nil || bl.Result == nil {
		return "invalid"
	}
	for _, s := range bl.Result.Steps {
		if s.Verdict != api.VerdictOK {
			return string(s.Verdict)
		}
	}
	if len(bl.Result.Steps) == 0 && bl.Result.Status != api.StatusCompleted {
		return bl.Result.Status
	}
	return string(api.VerdictOK)
}
