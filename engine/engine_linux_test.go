package engine

import (
	"os"
	"strings"
	"testing"
)

// TestNewFailureLeavesNothing: a New that fails late, at the cgroups, after
// it opened the uid lock file, leaves no descriptor open.
func TestNewFailureLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: New refuses to run without it")
	}
	state := stateDir(t)
	cfg := DefaultConfig()
	cfg.StateDir = state
	before := openFDs(t)
	// No cgroup filesystem is mounted beneath an empty directory.
	e, err := New(cfg, Options{CgroupRoot: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cgroups") {
		if e != nil {
			e.Close()
		}
		t.Fatalf("New without cgroups: error %v, want one about cgroups", err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after the failed New, %d before", after, before)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}
