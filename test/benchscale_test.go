package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

// TestBenchScale runs make bench's scaling figures at tiny sizes (-scale
// tiny -only-scale) against the binary under test: every scaling row
// (stdout, input, files, steps at each size, each way beside its bare
// run), every batch with its start, middle and end, the queue with its
// pings, the concurrency sweep, and every plot, a PNG that decodes. It
// checks that each figure is there, not its value; and that nothing of
// the run is left on the host.
func TestBenchScale(t *testing.T) {
	bin := benchBin(t)
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "bench.json")
	cmd := exec.Command(bin, "-only-scale", "-scale", "tiny", "-sandboxd", sandboxdBin, "-json", jsonPath,
		"-daemon-config", hostcheck.Config(""))
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	if err := cmd.Run(); err != nil {
		t.Fatalf("sandboxd-bench: %v\n%s", err, outb.Bytes())
	}
	for _, want := range []string{"scaling (sizes \"tiny\")", "growth, smallest to largest size", "batches of /bin/true",
		"queue:", "GET /_ping every 10 ms from a process of its own",
		"while the jobs arrived (intake", "while they waited and drained (queued)", "concurrency:"} {
		if !strings.Contains(outb.String(), want) {
			t.Errorf("the printed report lacks %q:\n%s", want, outb.Bytes())
		}
	}

	var rep struct {
		Scale struct {
			Sizes struct {
				Outputs []int64 `json:"stdout_bytes"`
				Inputs  []int64 `json:"input_bytes"`
				Files   []int64 `json:"files"`
				Steps   []int64 `json:"steps"`
				Batches []int   `json:"batch_jobs"`
				Queued  int     `json:"queued_jobs"`
			} `json:"sizes"`
			Rows []struct {
				Kind         string  `json:"kind"`
				Size         int64   `json:"size"`
				Way          string  `json:"way"`
				Bare         string  `json:"bare"`
				P50MS        float64 `json:"p50_ms"`
				BareP50MS    float64 `json:"bare_p50_ms"`
				P50VsBare    float64 `json:"p50_vs_bare"`
				RunsPerS     float64 `json:"runs_per_s"`
				BareRunsPerS float64 `json:"bare_runs_per_s"`
				RateVsBare   float64 `json:"rate_vs_bare"`
				CPUMSPerRun  float64 `json:"cpu_ms_per_run"`
			} `json:"rows"`
			Growth []struct {
				Kind string `json:"kind"`
				Way  string `json:"way"`
			} `json:"growth"`
			Batches []struct {
				Jobs         int     `json:"jobs"`
				RunsPerS     float64 `json:"runs_per_s"`
				BareRunsPerS float64 `json:"bare_runs_per_s"`
				RateVsBare   float64 `json:"rate_vs_bare"`
				Windows      []struct {
					Name     string  `json:"name"`
					RunsPerS float64 `json:"runs_per_s"`
					RSSBytes int64   `json:"daemon_rss_bytes"`
				} `json:"windows"`
				Samples []struct {
					Done     int   `json:"done"`
					RSSBytes int64 `json:"daemon_rss_bytes"`
				} `json:"samples"`
			} `json:"batches"`
			Queue struct {
				Jobs        int     `json:"jobs"`
				IntakeS     float64 `json:"intake_s"`
				IntakePings struct {
					Pings int `json:"pings"`
				} `json:"intake_pings"`
				QueuedPings struct {
					Pings int `json:"pings"`
				} `json:"queued_pings"`
				Pings       int     `json:"pings"`
				PingP99MS   float64 `json:"ping_p99_ms"`
				RSSMaxBytes int64   `json:"daemon_rss_max_bytes"`
				RunsPerS    float64 `json:"runs_per_s"`
			} `json:"queue"`
			Concurrency []struct {
				Command  string  `json:"command"`
				Way      string  `json:"way"`
				Clients  int     `json:"clients"`
				P50MS    float64 `json:"p50_ms"`
				RunsPerS float64 `json:"runs_per_s"`
			} `json:"concurrency"`
		} `json:"scale"`
		Plots []string `json:"plots"`
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("the JSON: %v\n%s", err, data)
	}
	s := rep.Scale

	rows := map[string]bool{}
	for _, r := range s.Rows {
		key := fmt.Sprintf("%s %d %s", r.Kind, r.Size, r.Way)
		rows[key] = true
		if r.Bare == "" || r.P50MS <= 0 || r.BareP50MS <= 0 || r.P50VsBare <= 0 || r.RunsPerS <= 0 || r.BareRunsPerS <= 0 ||
			r.RateVsBare <= 0 || r.CPUMSPerRun < 0 {
			t.Errorf("row %s: %+v: want every figure", key, r)
		}
	}
	want := func(kind string, sizes []int64, ways ...string) {
		if len(sizes) < 2 {
			t.Errorf("%s: sizes %v, want at least 2", kind, sizes)
		}
		for _, n := range sizes {
			for _, way := range ways {
				if key := fmt.Sprintf("%s %d %s", kind, n, way); !rows[key] {
					t.Errorf("no row %s", key)
				}
			}
		}
	}
	want("stdout", s.Sizes.Outputs, "POST /v1/run", "POST /v1/run stdout_to")
	want("input", s.Sizes.Inputs, "POST /v1/run stdin", "POST /v1/run stdin_cached")
	want("files", s.Sizes.Files, "POST /v1/run")
	want("steps", s.Sizes.Steps, "POST /v1/run")
	if len(s.Growth) != 6 {
		t.Errorf("%d growth lines, want 6 (one per kind and way)", len(s.Growth))
	}

	if len(s.Batches) != len(s.Sizes.Batches) || len(s.Batches) < 2 {
		t.Errorf("%d batches measured, want %d", len(s.Batches), len(s.Sizes.Batches))
	}
	for _, b := range s.Batches {
		if b.RunsPerS <= 0 || b.BareRunsPerS <= 0 || b.RateVsBare <= 0 || len(b.Samples) < 2 || b.Samples[len(b.Samples)-1].Done != b.Jobs {
			t.Errorf("batch of %d: %+v", b.Jobs, b)
		}
		var names []string
		for _, w := range b.Windows {
			names = append(names, w.Name)
			if w.RSSBytes <= 0 {
				t.Errorf("batch of %d, %s: RSS %d", b.Jobs, w.Name, w.RSSBytes)
			}
		}
		if !slices.Equal(names, []string{"start", "middle", "end"}) {
			t.Errorf("batch of %d: windows %v", b.Jobs, names)
		}
	}
	if q := s.Queue; q.Jobs != s.Sizes.Queued || q.Pings < 1 || q.PingP99MS <= 0 || q.RSSMaxBytes <= 0 || q.RunsPerS <= 0 ||
		q.IntakeS <= 0 || q.IntakePings.Pings+q.QueuedPings.Pings != q.Pings {
		t.Errorf("queue: %+v", q)
	}
	sweep := map[string]bool{}
	for _, p := range s.Concurrency {
		sweep[fmt.Sprintf("%s %s %d", p.Command, p.Way, p.Clients)] = p.P50MS > 0 && p.RunsPerS > 0
	}
	for _, cmd := range []string{"/bin/true", "python3 -c 'print(1)'"} {
		for _, way := range []string{"bare", "POST /v1/run"} {
			for _, c := range []int{1, 2, 4, 8} {
				if key := fmt.Sprintf("%s %s %d", cmd, way, c); !sweep[key] {
					t.Errorf("concurrency sweep: no figures for %s", key)
				}
			}
		}
	}

	var names []string
	for _, p := range rep.Plots {
		names = append(names, filepath.Base(p))
		f, err := os.Open(p)
		if err != nil {
			t.Errorf("plot: %v", err)
			continue
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Errorf("plot %s: %v", p, err)
		} else if b := img.Bounds(); b.Dx() < 100 || b.Dy() < 100 {
			t.Errorf("plot %s: %v", p, b)
		}
	}
	slices.Sort(names)
	if wantNames := []string{"batch-rss.png", "batch-throughput.png", "concurrency-latency.png", "concurrency-throughput.png",
		"overhead-files.png", "overhead-input.png", "overhead-stdout.png", "overhead-steps.png"}; !slices.Equal(names, wantNames) {
		t.Errorf("plots %v, want %v", names, wantNames)
	}

	if left := cgroupDirs(fmt.Sprintf("sandboxd-bench-%d", cmd.Process.Pid)); len(left) > 0 {
		t.Errorf("cgroups left by the bench: %v", left)
	}
	if procs := hostcheck.Settle(2*time.Second, sandboxProcesses); len(procs) > 0 {
		t.Errorf("processes left under sandbox uids: %v", procs)
	}
}

// The plotting library is the bench's alone: sandboxd and sandboxctl must
// not link it.
func TestPlotsNotLinkedIntoDaemon(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "embedhelper", "../cmd/sandboxd", "../cmd/sandboxctl").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "gonum.org/") {
			t.Errorf("sandboxd or sandboxctl links %s", pkg)
		}
	}
}
