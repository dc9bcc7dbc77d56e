package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/sandboxd/sandboxd/seccomp"
)

// Config is what an operator sets for the engine: the daemon's config file
// holds it (the TOML keys are the daemon's; this package reads no file),
// and `sandboxd exec` takes it from flags. DefaultConfig gives every field;
// Validate checks them all, for both.
type Config struct {
	// StateDir holds the engine's host state: the empty directory new
	// roots are mounted on (and, for the daemon, its workspaces and lock).
	StateDir string `toml:"state_dir"`
	// UIDBase and UIDCount are the host uids sandboxes run under (gid =
	// uid). UIDBase-1 is the host uid (and gid) of every sandbox's init.
	UIDBase  uint32 `toml:"uid_base"`
	UIDCount uint32 `toml:"uid_count"`
	// CgroupSubtree is the subtree beneath this process's own cgroups.
	CgroupSubtree string `toml:"cgroup_subtree"`
	// Helpers is how many helpers make the sandboxes (each sandbox's init
	// is a clone of one; see package nsjail). One helper clones its inits
	// one after another, which caps the sandboxes a host starts per
	// second; on many CPUs more lift the cap. Zero: DefaultHelpers for
	// this host's CPUs.
	Helpers int `toml:"helpers"`
}

// CPUsPerHelper is how many CPUs share one helper by default. A helper
// spends about 0.3 of the CPU time of a run of the smallest program (its
// clone with new namespaces, serially), so one helper keeps about 3.5
// CPUs busy; one per 2 leaves it room (docs/scaling.md).
const CPUsPerHelper = 2

// MaxHelpers bounds Config.Helpers.
const MaxHelpers = 256

// DefaultHelpers is the number of helpers for ncpu CPUs: one per
// CPUsPerHelper, at least one.
func DefaultHelpers(ncpu int) int { return max(1, (ncpu+CPUsPerHelper-1)/CPUsPerHelper) }

// The default range of host uids for sandboxes: far above any real user and
// above the ranges /etc/subuid usually hands out.
const (
	DefaultUIDBase  = 1_800_000_000
	DefaultUIDCount = 65536
)

// DefaultConfig is the engine's configuration when nothing says otherwise.
func DefaultConfig() Config {
	return Config{
		StateDir:      "/run/sandboxd",
		UIDBase:       DefaultUIDBase,
		UIDCount:      DefaultUIDCount,
		CgroupSubtree: "sandboxd",
	}
}

// Validate checks the configuration. Each message names the setting as
// name gives it: name gets the TOML key ("uid_base"), and returns what its
// caller calls it (the same key, or a flag "--uid-base").
func (c *Config) Validate(name func(key string) string) error {
	var errs []error
	if !filepath.IsAbs(c.StateDir) {
		errs = append(errs, fmt.Errorf("%s: %q is not an absolute path", name("state_dir"), c.StateDir))
	}
	// Below 65536 are the host's own users; UIDBase-1 (the inits' uid) must
	// be one of ours too.
	if c.UIDBase < 65536 || c.UIDCount < 1 || uint64(c.UIDBase)+uint64(c.UIDCount) > 1<<32-2 {
		errs = append(errs, fmt.Errorf("%s, %s: %d+%d must lie within 65536..4294967294", name("uid_base"), name("uid_count"), c.UIDBase, c.UIDCount))
	}
	if c.CgroupSubtree == "" || strings.ContainsAny(c.CgroupSubtree, "/\x00") || c.CgroupSubtree[0] == '.' {
		errs = append(errs, fmt.Errorf("%s: %q must be a plain name", name("cgroup_subtree"), c.CgroupSubtree))
	}
	if c.Helpers < 0 || c.Helpers > MaxHelpers {
		errs = append(errs, fmt.Errorf("%s: %d must lie within 0..%d (0: one per %d CPUs)", name("helpers"), c.Helpers, MaxHelpers, CPUsPerHelper))
	}
	return errors.Join(errs...)
}

// Options are what the program that uses the engine decides, as opposed to
// what an operator configures. The zero value of each field is documented.
type Options struct {
	// RunPrefix starts every run's cgroup name, so that several engines
	// can share a subtree. Empty is "r".
	RunPrefix string
	// Profile is the sandbox recipe of a step that names none. Nil is
	// DefaultProfile().
	Profile *Profile
	// Policy is the seccomp policy. Nil is seccomp.DefaultPolicy().
	Policy *seccomp.Policy
	// CgroupRoot overrides where cgroup filesystems are mounted (tests).
	CgroupRoot string
	// Log receives what the engine cannot return to a caller (a failed
	// teardown, a warm sandbox that could not be made). Nil: standard
	// error.
	Log func(string)
	// InProcessHelper runs the helpers as threads of this process rather
	// than processes of their own (nsjail.HelperOptions.InProcess): for a
	// process that runs a step or two and exits, such as sandboxd exec,
	// which then pays for no helper executable, exec or second Go runtime.
	// False: helper processes, as a daemon needs.
	InProcessHelper bool
}
