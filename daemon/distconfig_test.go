package daemon

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"

	"github.com/sandboxd/sandboxd/engine"
)

// TestDistConfig loads the default config that make install puts in
// /etc/sandboxd (dist/sandboxd.toml): as shipped, and with every key that
// it shows commented out switched on, so that each is a key the daemon
// knows, and its value the default it claims to be.
func TestDistConfig(t *testing.T) {
	const path = "../dist/sandboxd.toml"
	shipped, err := LoadConfig(path)
	if err != nil {
		t.Fatalf("as shipped: %v", err)
	}
	if shipped.SocketGroup != "sandboxd" {
		t.Errorf("socket_group = %q, want sandboxd (the group sandboxd.socket uses)", shipped.SocketGroup)
	}
	if shipped.CacheDir != "/var/cache/sandboxd" {
		t.Errorf("cache_dir = %q, want /var/cache/sandboxd (the unit's CacheDirectory=)", shipped.CacheDir)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	keyLine := regexp.MustCompile(`(?m)^#([a-z\[])`)
	if n := len(keyLine.FindAll(b, -1)); n < 40 {
		t.Errorf("only %d keys shown commented out", n)
	}
	all := filepath.Join(t.TempDir(), "all.toml")
	os.WriteFile(all, keyLine.ReplaceAll(b, []byte("$1")), 0o644)
	every, err := LoadConfig(all)
	if err != nil {
		t.Fatalf("with every key on: %v", err)
	}
	// The machine-dependent defaults (concurrency, and warm_sandboxes
	// that follows it) are shown for 2 CPUs.
	want := DefaultConfig()
	want.Concurrency, want.WarmSandboxes, want.SocketGroup, want.CacheDir = 2, 4, "sandboxd", "/var/cache/sandboxd"
	every.AllowedUIDs, every.AllowedGIDs = nil, nil // [] and unset alike: nobody listed
	def, err := every.Profile("default")
	if err != nil {
		t.Fatal(err)
	}
	builtin := engine.DefaultProfile()
	if !reflect.DeepEqual(*def, builtin) {
		t.Errorf("[profiles.default] as shown:\n%+v\nthe built-in default:\n%+v", *def, builtin)
	}
	py, err := every.Language("python3")
	if err != nil {
		t.Fatal(err)
	}
	if pyProfile, err := every.Profile("python3"); err != nil || !reflect.DeepEqual(*py, builtinLanguages["python3"].lang) || !reflect.DeepEqual(*pyProfile, builtinProfile("python3")) {
		t.Errorf("[profiles.python3] as shown: %+v (%v), the built-in: %+v", *py, err, builtinLanguages["python3"].lang)
	}
	every.Profiles = nil
	if !reflect.DeepEqual(every, want) {
		t.Errorf("every key on:\n%+v\nthe defaults:\n%+v", every, want)
	}
}
