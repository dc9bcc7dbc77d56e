package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// The plots of the scaling figures, drawn with gonum's plot package (a
// dependency of this program alone, never of sandboxd or sandboxctl).
// Each is a PNG named after what it shows, next to the JSON.

// minLog is where a figure at or below zero is drawn on a log axis: a
// sandbox that cost nothing over bare, within the noise.
const minLog = 0.01

// writePlots draws every plot of s into dir and returns their paths.
func writePlots(dir string, s *Scale) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var paths []string
	save := func(name string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		path := filepath.Join(dir, name)
		if err := p.Save(6*vg.Inch, 4*vg.Inch, path); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		paths = append(paths, path)
		return nil
	}
	if len(s.Concurrency) > 0 {
		p, err := sweepPlot(s.Concurrency, "latency one request at a time against clients at once (p50)", "p50 latency, ms",
			func(x SweepPoint) float64 { return x.P50MS })
		if err := save("concurrency-latency.png", p, err); err != nil {
			return paths, err
		}
		p, err = sweepPlot(s.Concurrency, "throughput against clients at once", "runs/s",
			func(x SweepPoint) float64 { return x.RunsPerS })
		if err := save("concurrency-throughput.png", p, err); err != nil {
			return paths, err
		}
	}
	for _, k := range []struct{ kind, file, xlabel string }{
		{kindStdout, "overhead-stdout.png", "stdout, bytes"},
		{kindInput, "overhead-input.png", "input, bytes"},
		{kindFiles, "overhead-files.png", "files in the job"},
		{kindSteps, "overhead-steps.png", "steps in the job"},
	} {
		p, err := overheadPlot(s.Rows, k.kind, k.xlabel)
		if p == nil && err == nil {
			continue
		}
		if err := save(k.file, p, err); err != nil {
			return paths, err
		}
	}
	if len(s.Batches) > 0 {
		last := s.Batches[len(s.Batches)-1]
		p, err := batchRSSPlot(last)
		if err := save("batch-rss.png", p, err); err != nil {
			return paths, err
		}
		p, err = batchRatePlot(last)
		if err := save("batch-throughput.png", p, err); err != nil {
			return paths, err
		}
	}
	return paths, nil
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

func logAxis(a *plot.Axis) {
	a.Scale = plot.LogScale{}
	a.Tick.Marker = plot.LogTicks{Prec: -1}
}

// sweepPlot is one line per command and way, y against the clients.
func sweepPlot(pts []SweepPoint, title, ylabel string, y func(SweepPoint) float64) (*plot.Plot, error) {
	p := newPlot(title, "clients at once (the daemon runs 2 jobs at once)", ylabel)
	logAxis(&p.Y)
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(clientTicks())
	var lines []any
	seen := map[string]bool{}
	for _, s := range pts {
		key := s.Command + ", " + s.Way
		if seen[key] {
			continue
		}
		seen[key] = true
		var xy plotter.XYs
		for _, t := range pts {
			if t.Command == s.Command && t.Way == s.Way {
				xy = append(xy, plotter.XY{X: float64(t.Clients), Y: math.Max(y(t), minLog)})
			}
		}
		lines = append(lines, key, xy)
	}
	return p, addLines(p, lines)
}

func clientTicks() []plot.Tick {
	var t []plot.Tick
	for _, c := range sweepClients {
		t = append(t, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	return t
}

// overheadPlot is, against the size of one kind of work, the bare run's
// p50 (the work itself) and each daemon way's p50 over its bare run (what
// sandboxd adds). nil when the kind has no rows.
func overheadPlot(rows []ScaleRow, kind, xlabel string) (*plot.Plot, error) {
	var ways []string
	bare := map[int64]float64{}
	for _, r := range rows {
		if r.Kind != kind {
			continue
		}
		if len(ways) == 0 || !contains(ways, r.Way) {
			ways = append(ways, r.Way)
		}
		if r.Bare == wayBare {
			bare[r.Size] = r.BareP50MS
		}
	}
	if len(ways) == 0 {
		return nil, nil
	}
	p := newPlot(kind+": the work bare, and what sandboxd adds (p50)", xlabel, "ms")
	logAxis(&p.X)
	logAxis(&p.Y)
	var bxy plotter.XYs
	for _, r := range rows {
		if r.Kind == kind && r.Way == ways[0] {
			bxy = append(bxy, plotter.XY{X: float64(r.Size), Y: math.Max(bare[r.Size], minLog)})
		}
	}
	p.X.Tick.Marker = plot.ConstantTicks(sizeTicks(rows, kind))
	lines := []any{"bare: the work itself", bxy}
	for _, w := range ways {
		var xy plotter.XYs
		for _, r := range rows {
			if r.Kind == kind && r.Way == w {
				xy = append(xy, plotter.XY{X: float64(r.Size), Y: math.Max(r.OverBareMS, minLog)})
			}
		}
		lines = append(lines, w+": p50 - "+bareOf(rows, kind, w), xy)
	}
	return p, addLines(p, lines)
}

// addLines adds the named lines, with room above them on a log axis for
// the legend.
func addLines(p *plot.Plot, lines []any) error {
	if err := plotutil.AddLinePoints(p, lines...); err != nil {
		return err
	}
	if _, ok := p.Y.Scale.(plot.LogScale); ok {
		p.Y.Max *= math.Pow(p.Y.Max/p.Y.Min, 0.45)
	}
	return nil
}

// sizeTicks marks each size of a kind: in KiB and MiB for bytes.
func sizeTicks(rows []ScaleRow, kind string) []plot.Tick {
	var t []plot.Tick
	seen := map[int64]bool{}
	for _, r := range rows {
		if r.Kind == kind && !seen[r.Size] {
			seen[r.Size] = true
			t = append(t, plot.Tick{Value: float64(r.Size), Label: sizeLabel(kind, r.Size)})
		}
	}
	return t
}

// wholeTicks are the default ticks, labelled as whole numbers.
type wholeTicks struct{}

func (wholeTicks) Ticks(min, max float64) []plot.Tick {
	t := plot.DefaultTicks{}.Ticks(min, max)
	for i := range t {
		if t[i].Label != "" {
			t[i].Label = fmt.Sprintf("%.0f", t[i].Value)
		}
	}
	return t
}

func bareOf(rows []ScaleRow, kind, way string) string {
	for _, r := range rows {
		if r.Kind == kind && r.Way == way {
			return r.Bare
		}
	}
	return wayBare
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// batchRSSPlot is the daemon's RSS against the jobs a batch has done.
func batchRSSPlot(b BatchScale) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("daemon RSS (with its helper) over a batch of %d jobs", b.Jobs), "jobs done", "MiB")
	p.Y.Min = 0
	p.X.Tick.Marker = wholeTicks{}
	var xy plotter.XYs
	for _, s := range b.Samples {
		xy = append(xy, plotter.XY{X: float64(s.Done), Y: mib(s.RSSBytes)})
	}
	l, err := plotter.NewLine(xy)
	if err != nil {
		return nil, err
	}
	l.Color = plotutil.Color(0)
	p.Add(l)
	return p, nil
}

// batchRatePlot is the throughput of each hundredth of a batch against
// the jobs done, beside the bare rate of the same number of runs.
func batchRatePlot(b BatchScale) (*plot.Plot, error) {
	p := newPlot(fmt.Sprintf("throughput over a batch of %d /bin/true jobs, 2 at once", b.Jobs), "jobs done", "runs/s")
	p.Y.Min = 0
	p.X.Tick.Marker = wholeTicks{}
	var xy, bare plotter.XYs
	for i := 1; i < len(b.Samples); i++ {
		a, z := b.Samples[i-1], b.Samples[i]
		if z.TimeS > a.TimeS {
			xy = append(xy, plotter.XY{X: float64(z.Done), Y: float64(z.Done-a.Done) / (z.TimeS - a.TimeS)})
		}
	}
	if len(b.Samples) > 0 {
		bare = plotter.XYs{{X: 0, Y: b.BareRunsPerS}, {X: float64(b.Jobs), Y: b.BareRunsPerS}}
	}
	if err := plotutil.AddLines(p, "POST /v1/batch, each hundredth", xy, "bare, 2 workers, the whole", bare); err != nil {
		return nil, err
	}
	p.Y.Max *= 1.25 // room for the legend
	return p, nil
}
