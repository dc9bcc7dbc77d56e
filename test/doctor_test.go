package test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"testing"

	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

type doctorOut struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name, Status, Detail, Fix string
	} `json:"checks"`
}

func runDoctor(t *testing.T, config string) (doctorOut, int) {
	t.Helper()
	// Not t.TempDir(), whose parent is 0700: sandboxes must reach the
	// state dir.
	dir, err := os.MkdirTemp("", "sandboxd-doctor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	cfg := filepath.Join(dir, "sandboxd.toml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("state_dir = %q\nsocket = %q\ncgroup_subtree = %q\n%s", dir, filepath.Join(dir, "s.sock"), testSubtree, config)), 0o644)
	// The end-to-end sandbox in this test process's subtree, which make
	// test-v2's guest delegates to the suite.
	out, err := osexec.Command(sandboxdBin, "doctor", "--json", "--config", cfg, "--cgroup-subtree", testSubtree).Output()
	code := 0
	var ee *osexec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var r doctorOut
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	return r, code
}

// TestDoctor runs `sandboxd doctor` on this host, which the tests run
// sandboxes on: every check passes, the end-to-end sandbox included, and
// it leaves nothing behind. A config it cannot load fails, exit status 1.
func TestDoctor(t *testing.T) {
	r, code := runDoctor(t, hostcheck.Config(""))
	if code != 0 || !r.OK {
		t.Errorf("doctor on this host: exit %d: %+v", code, r)
	}
	sandbox := false
	for _, c := range r.Checks {
		if c.Name == "sandbox" && c.Status == "ok" {
			sandbox = true
		}
	}
	if !sandbox {
		t.Errorf("no end-to-end sandbox passed: %+v", r.Checks)
	}
	assertNoLeftovers(t)

	r, code = runDoctor(t, "no_such_key = 1\n")
	if code != 1 || r.OK || r.Checks[0].Name != "config" || r.Checks[0].Status != "fail" {
		t.Errorf("doctor with a bad config: exit %d: %+v", code, r)
	}
}
