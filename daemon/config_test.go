package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Socket != "/run/sandboxd/sandboxd.sock" || cfg.Concurrency < 1 || cfg.ShutdownGrace.Duration != 10*time.Second || !cfg.BatchScheduling {
		t.Fatalf("%+v", cfg)
	}
	if cfg.WarmSandboxes != min(2*cfg.Concurrency, 64) {
		t.Errorf("warm_sandboxes %d with concurrency %d, want twice that", cfg.WarmSandboxes, cfg.Concurrency)
	}
	for _, tc := range []struct {
		text string
		warm int
	}{{"concurrency = 3\n", 6}, {"concurrency = 40\n", 64}, {"concurrency = 3\nwarm_sandboxes = 1\n", 1}, {"warm_sandboxes = 0\n", 0}} {
		c, err := LoadConfig(writeConfig(t, tc.text))
		if err != nil || c.WarmSandboxes != tc.warm {
			t.Errorf("%q: warm_sandboxes %d (%v), want %d", tc.text, c.WarmSandboxes, err, tc.warm)
		}
	}
	if p, err := cfg.Profile("default"); err != nil || p.Defaults.CPUTimeMS == 0 {
		t.Fatalf("default profile: %+v %v", p, err)
	}
}

func TestLoadConfigValues(t *testing.T) {
	cfg, err := LoadConfig(writeConfig(t, `
concurrency = 3
shutdown_grace = "2s"
allowed_uids = [0, 1000]
[profiles.fast]
binds = ["/usr"]
[profiles.fast.default_limits]
cpu_time_ms = 500
[profiles.fast.max_limits]
cpu_time_ms = 1000
`))
	if err != nil {
		t.Fatal(err)
	}
	p, err := cfg.Profile("fast")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Concurrency != 3 || cfg.ShutdownGrace.Duration != 2*time.Second || len(cfg.AllowedUIDs) != 2 ||
		p.Defaults.CPUTimeMS != 500 || p.Max.CPUTimeMS != 1000 || p.Defaults.MemoryBytes == 0 || len(p.Binds) != 1 {
		t.Fatalf("%+v %+v", cfg, p)
	}
}

func TestLoadConfigErrorsNameTheKey(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"concurency = 3\n", "concurency"},
		{"[profiles.x]\nbindz = []\n", "profiles.x.bindz"},
		{"[profiles.x.default_limits]\ncpu_time = 5\n", "profiles.x.default_limits.cpu_time"},
		{"concurrency = 0\n", "concurrency"},
		{"concurrency = \"two\"\n", "concurrency"},
		{"shutdown_grace = \"soon\"\n", "shutdown_grace"},
		{"log_format = \"xml\"\n", "log_format"},
		{"batch_scheduling = \"yes\"\n", "batch_scheduling"},
		{"uid_base = 0\n", "uid_base"},
		{"uid_count = 5\nconcurrency = 2\nwarm_sandboxes = 2\n[profiles.x]\n", "uid_count: 5 uids are fewer than the 6"},
		{"socket = \"relative.sock\"\n", "socket"},
		{"[profiles.x.default_limits]\ncpu_time_ms = 999999999\n", "profiles.x.default_limits.cpu_time_ms"},
		{"[profiles.x]\nbinds = [\"usr\"]\n", "profiles.x.binds[0]"},
		{"[profiles.x]\nseccomp = \"none\"\n", "profiles.x.seccomp"},
		{"[profiles.x]\nmax_workspace_bytes = 9999999999\n", "profiles.x.max_workspace_bytes"},
		{"[profiles.x.default_limits]\nmemory_bytes = 16384\n", "profiles.x.default_limits.memory_bytes: 16384 is below the minimum 4194304"},
		{"[profiles.x.max_limits]\nmemory_bytes = 1\n", "profiles.x.max_limits.memory_bytes: 1 is below the minimum"},
		{"[profiles.x]\nworkspace_bytes = 2000000000\nmax_workspace_bytes = 1000000000\n", "profiles.x.workspace_bytes: 2000000000 is above max_workspace_bytes"},
		{"[profiles.x.max_limits]\ncpus = 100000\n", "profiles.x.max_limits.cpus: 100000 is more than the"},
		{"[profiles.x.max_limits]\ncpus = -1\n", "profiles.x.max_limits.cpus: must be positive, got -1"},
		{"[profiles.x.max_limits]\ncpus = nan\n", "profiles.x.max_limits.cpus: must be a number of CPUs, got NaN"},
		{"[profiles.x.default_limits]\ncpus = inf\n", "profiles.x.default_limits.cpus: must be a number of CPUs, got +Inf"},
		{"[profiles.x.default_limits]\ncpus = 0.001\n", "profiles.x.default_limits.cpus: 0.001 is below the minimum 0.01"},
		{"[profiles.x.default_limits]\ncpus = 100000\n", "profiles.x.default_limits.cpus: 100000 is above the maximum"},
		{"[profiles.x.max_limits]\ncpus = 0.5\n", "profiles.x.default_limits.cpus: 1 is above the maximum 0.5"},
	} {
		_, err := LoadConfig(writeConfig(t, tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one naming %q", tc.text, err, tc.want)
		}
	}
}
