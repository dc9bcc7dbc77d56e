package cgroup

import (
	"fmt"
	"os"
	"sort"
)

// Layout is what DetectLayout found: the mode, and the controllers of the
// v1 hierarchies (on v1 and hybrid hosts).
type Layout struct {
	Mode Mode
	// V1Controllers are the controllers mounted as v1 hierarchies, sorted;
	// empty on pure v2.
	V1Controllers []string
}

// DetectLayout tells which cgroup layout the host offers, as Open would
// find it, and touches nothing: for `sandboxd doctor`, which checks a host
// before a daemon runs there. Only cfg.Root and cfg.MountInfo are used.
func DetectLayout(cfg Config) (Layout, error) {
	cfg = cfg.withDefaults()
	data, err := os.ReadFile(cfg.MountInfo)
	if err != nil {
		return Layout{}, fmt.Errorf("cgroup: %w", err)
	}
	mounts, err := parseMountInfo(data)
	if err != nil {
		return Layout{}, fmt.Errorf("cgroup: %s: %w", cfg.MountInfo, err)
	}
	lay, err := detectLayout(mounts, cfg.Root)
	if err != nil {
		return Layout{}, fmt.Errorf("cgroup: %w", err)
	}
	out := Layout{Mode: lay.mode}
	for c := range lay.v1 {
		if knownV1Controllers[c] {
			out.V1Controllers = append(out.V1Controllers, c)
		}
	}
	sort.Strings(out.V1Controllers)
	return out, nil
}
