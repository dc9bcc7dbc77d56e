package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

// TestBenchProgram runs make bench's program, in a short form, against the
// binary under test: every way of running both commands must be measured,
// and every way of reading both cached inputs, the judge's submissions both
// ways, every target checked, the figures written as JSON, and nothing of the
// run left on the host: no process under a sandbox uid, no cgroup of the
// daemon's or of the floor+cgroups case. SANDBOXD_BENCH_BIN names the
// program (make test builds it); without it the test builds it.
func TestBenchProgram(t *testing.T) {
	bin := benchBin(t)
	jsonPath := filepath.Join(t.TempDir(), "bench.json")
	// The bench's daemon gets this test process's uids, which the leftover
	// check below looks at; its subtrees are named by the bench's pid.
	// The scaling figures have a test of their own (TestBenchScale).
	cmd := exec.Command(bin, "-quick", "-runs", "10", "-batch", "20", "-scale", "off", "-sandboxd", sandboxdBin, "-json", jsonPath,
		"-daemon-config", hostcheck.Config(""))
	var outb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outb, &outb
	err := cmd.Run()
	out := outb.Bytes()
	if err != nil {
		t.Fatalf("sandboxd-bench: %v\n%s", err, out)
	}
	for _, want := range []string{"floor+cgroups", "runs/s against floor+cgroups", "targets", "CPU spread",
		"cached input", "256 MiB against 1 KiB", "judge submissions/s through the daemon against the script"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the printed report lacks %q:\n%s", want, out)
		}
	}

	var rep struct {
		Cases []struct {
			Command           string  `json:"command"`
			Way               string  `json:"way"`
			P50MS             float64 `json:"p50_ms"`
			RunsPerS          float64 `json:"runs_per_s"`
			CPUMSPerRun       float64 `json:"cpu_ms_per_run"`
			RateVsCgroupFloor float64 `json:"rate_vs_floor_cgroups"`
		} `json:"cases"`
		Targets []struct {
			Name  string  `json:"name"`
			Value float64 `json:"value"`
		} `json:"targets"`
		CachedInput struct {
			Cases []struct {
				Command           string  `json:"command"`
				Way               string  `json:"way"`
				P50MS             float64 `json:"p50_ms"`
				CPUMSPerRun       float64 `json:"cpu_ms_per_run"`
				DaemonCPUMSPerRun float64 `json:"daemon_cpu_ms_per_run"`
			} `json:"cases"`
			BigVsSmall []struct {
				Way            string  `json:"way"`
				DaemonCPURatio float64 `json:"daemon_cpu_big_vs_small"`
			} `json:"big_vs_small"`
		} `json:"cached_input"`
		Judge struct {
			Daemon struct {
				Submissions int     `json:"submissions"`
				PerS        float64 `json:"submissions_per_s"`
			} `json:"daemon"`
			Script struct {
				Submissions int     `json:"submissions"`
				PerS        float64 `json:"submissions_per_s"`
			} `json:"script"`
			RateVsScript float64 `json:"daemon_vs_script"`
		} `json:"judge"`
	}
	data, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("the JSON: %v\n%s", err, data)
	}
	measured := map[string]bool{}
	for _, c := range rep.Cases {
		key := c.Command + " / " + c.Way
		measured[key] = true
		if c.RunsPerS <= 0 || c.CPUMSPerRun <= 0 || c.RateVsCgroupFloor <= 0 {
			t.Errorf("%s: runs/s %v, CPU ms/run %v, against floor+cgroups %v: want each above zero", key, c.RunsPerS, c.CPUMSPerRun, c.RateVsCgroupFloor)
		}
		if c.Way != "POST /v1/batch" && c.P50MS <= 0 {
			t.Errorf("%s: p50 %v ms", key, c.P50MS)
		}
	}
	for _, cmd := range []string{"/bin/true", "python3 -c 'print(1)'"} {
		for _, way := range []string{"bare", "ns floor", "floor+cgroups", "sandboxd exec", "exec --socket", "sandboxctl run", "POST /v1/run"} {
			if !measured[cmd+" / "+way] {
				t.Errorf("no figures for %s / %s", cmd, way)
			}
		}
	}
	if !measured["python3 -c 'print(1)' / POST /v1/batch"] {
		t.Error("no figures for the batch")
	}
	cached := map[string]bool{}
	for _, c := range rep.CachedInput.Cases {
		key := c.Command + " / " + c.Way
		cached[key] = true
		if c.P50MS <= 0 || c.CPUMSPerRun <= 0 || (strings.HasPrefix(c.Way, "POST ") && c.DaemonCPUMSPerRun <= 0) {
			t.Errorf("cached input, %s: p50 %v ms, CPU ms/run %v, daemon CPU ms/run %v: want each above zero",
				key, c.P50MS, c.CPUMSPerRun, c.DaemonCPUMSPerRun)
		}
	}
	for _, size := range []string{"1 KiB", "256 MiB"} {
		for _, way := range []string{"bare", "bare, host copy", "POST /v1/run stdin_cached", "POST /v1/run files[].cached"} {
			if key := "cat >/dev/null, " + size + " / " + way; !cached[key] {
				t.Errorf("no figures for the cached input, %s", key)
			}
		}
	}
	if len(rep.CachedInput.BigVsSmall) != 2 {
		t.Errorf("cached input: %d ways compared big against small, want 2", len(rep.CachedInput.BigVsSmall))
	}
	if j := rep.Judge; j.Daemon.Submissions < 2 || j.Script.Submissions != j.Daemon.Submissions || j.Daemon.PerS <= 0 || j.Script.PerS <= 0 || j.RateVsScript <= 0 {
		t.Errorf("judge: %+v", j)
	}
	if len(rep.Targets) != 13 {
		t.Errorf("%d targets checked, want 13", len(rep.Targets))
	}
	for _, tg := range rep.Targets {
		if tg.Value <= 0 {
			t.Errorf("target %q: value %v", tg.Name, tg.Value)
		}
	}

	if left := cgroupDirs(fmt.Sprintf("sandboxd-bench-%d", cmd.Process.Pid)); len(left) > 0 {
		t.Errorf("cgroups left by the bench: %v", left)
	}
	if left := cgroupDirs(fmt.Sprintf("sandboxd-bench-floor-%d", cmd.Process.Pid)); len(left) > 0 {
		t.Errorf("cgroups left by the bench: %v", left)
	}
	if procs := hostcheck.Settle(2*time.Second, sandboxProcesses); len(procs) > 0 {
		t.Errorf("processes left under sandbox uids: %v", procs)
	}
}

// benchBin is the bench program: SANDBOXD_BENCH_BIN, or one built here.
func benchBin(t *testing.T) string {
	if bin := os.Getenv("SANDBOXD_BENCH_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "sandboxd-bench")
	cmd := exec.Command("go", "build", "-o", bin, "./bench")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the bench: %v\n%s", err, out)
	}
	return bin
}
