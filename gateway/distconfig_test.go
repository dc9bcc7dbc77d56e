package gateway

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/sandboxd/sandboxd/gateway/piston"
)

// TestDistConfig loads the config that make install puts in /etc/sandboxd
// for sandboxd-gateway.service (dist/gateway.toml): as shipped, and with
// every key it shows commented out switched on, so that each is a key the
// gateway knows and the [piston] values are the defaults it claims.
func TestDistConfig(t *testing.T) {
	const path = "../dist/gateway.toml"
	shipped, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("as shipped: %v", err)
	}
	if err := shipped.Validate(); err != nil {
		t.Fatalf("as shipped: %v", err)
	}
	if shipped.GoJudgeListen != "127.0.0.1:5050" || shipped.PistonListen != "127.0.0.1:2000" {
		t.Errorf("listens on %q and %q, want go-judge's 127.0.0.1:5050 and Piston's 127.0.0.1:2000",
			shipped.GoJudgeListen, shipped.PistonListen)
	}
	if shipped.Token != "" || len(shipped.HostDirs) != 0 || shipped.Piston != (piston.Config{}) {
		t.Errorf("as shipped: token, host_dirs and [piston] should be commented out: %+v", shipped)
	}

	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`(?m)^#([a-z_]+ = |\[)`)
	if n := len(keyLine.FindAll(b, -1)); n != 10 {
		t.Errorf("%d keys shown commented out, want 10 (token, host_dirs, [piston] and its 7 keys)", n)
	}
	all := filepath.Join(t.TempDir(), "all.toml")
	if err := os.WriteFile(all, keyLine.ReplaceAll(b, []byte("$1")), 0o644); err != nil {
		t.Fatal(err)
	}
	every, err := LoadConfig(all)
	if err != nil {
		t.Fatalf("with every key on: %v", err)
	}
	if err := every.Validate(); err != nil {
		t.Fatalf("with every key on: %v", err)
	}
	if every.Token == "" || len(every.HostDirs) != 1 {
		t.Errorf("with every key on: token %q, host_dirs %q", every.Token, every.HostDirs)
	}
	// Piston's own defaults, which a 0 stands for (piston.Config).
	want := piston.Config{CompileTimeout: 10000, RunTimeout: 3000, CompileCPUTime: 10000, RunCPUTime: 3000,
		CompileMemoryLimit: -1, RunMemoryLimit: -1, OutputMaxSize: 1024}
	if every.Piston != want {
		t.Errorf("[piston] as shown: %+v, Piston's defaults: %+v", every.Piston, want)
	}
}
