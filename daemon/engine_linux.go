package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/nsjail"
	"github.com/sandboxd/sandboxd/seccomp"
	"github.com/sandboxd/sandboxd/taskstats"
)

// EngineConfig sets up an Engine. Zero values are documented per field.
type EngineConfig struct {
	// StateDir holds the engine's host state: the empty directory new roots
	// are mounted on, and the uid lock file. Empty is "/run/sandboxd".
	StateDir string
	// UIDBase and UIDCount are the host uids sandboxes run under (gid =
	// uid). Zero is DefaultUIDBase and DefaultUIDCount. UIDBase-1 is the
	// host uid (and gid) of every sandbox's init.
	UIDBase, UIDCount uint32
	// CgroupSubtree is our subtree beneath this process's own cgroups.
	// Empty is "sandboxd".
	CgroupSubtree string
	// RunPrefix starts every run's cgroup name, so that several engines can
	// share a subtree. Empty is "r".
	RunPrefix string
	// Profile is the sandbox recipe. The zero Profile is DefaultProfile().
	Profile *Profile
	// Policy is the seccomp policy. Nil is seccomp.DefaultPolicy().
	Policy *seccomp.Policy
	// CgroupRoot overrides where cgroup filesystems are mounted (tests).
	CgroupRoot string
	// Log receives what the engine cannot return to a caller (a failed
	// teardown, a warm sandbox that could not be made). Nil: standard
	// error.
	Log func(string)
}

// The default range of host uids for sandboxes: far above any real user and
// above the ranges /etc/subuid usually hands out.
const (
	DefaultUIDBase  = 1_800_000_000
	DefaultUIDCount = 65536
)

// Engine runs steps: each one in fresh namespaces, under its own cgroups
// and seccomp filter, measured and judged. It is safe for concurrent use.
type Engine struct {
	cgroups *cgroup.Manager
	filter  []unix.SockFilter
	profile Profile
	ids     *idPool
	initID  uint32
	rootDir string
	prefix  string
	ncpu    int
	seq     atomic.Uint64
	log     func(string) // what cannot be returned; nil: standard error

	poolsMu sync.Mutex
	pools   map[string]*pool // by profile name; nil until StartPools

	specsMu sync.Mutex
	specs   map[*Profile]*nsjail.Spec // what each profile's sandboxes share

	// exits gives each program's own peak RSS (see package taskstats);
	// nil where the kernel does not offer it, and max_rss_bytes is then
	// rusage's, which includes the init helper's peak.
	exits *taskstats.Listener

	retiring sync.WaitGroup // teardowns of finished steps' sandboxes
	gate     gate           // holds the pools' refills back while jobs run
}

// NewEngine checks what the host offers and prepares everything that does
// not depend on a request: the cgroup subtree, the compiled seccomp filter,
// the uid pool. The error says what is missing.
func NewEngine(cfg EngineConfig) (*Engine, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = "/run/sandboxd"
	}
	if cfg.UIDBase == 0 {
		cfg.UIDBase = DefaultUIDBase
	}
	if cfg.UIDCount == 0 {
		cfg.UIDCount = DefaultUIDCount
	}
	if cfg.CgroupSubtree == "" {
		cfg.CgroupSubtree = "sandboxd"
	}
	if cfg.RunPrefix == "" {
		cfg.RunPrefix = "r"
	}
	profile := DefaultProfile()
	if cfg.Profile != nil {
		profile = *cfg.Profile
	}
	policy := seccomp.DefaultPolicy()
	if cfg.Policy != nil {
		policy = *cfg.Policy
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("sandboxd must run as root: it maps each sandbox to its own host uid and creates cgroups")
	}
	if err := checkUserNamespaces(); err != nil {
		return nil, err
	}
	if cfg.UIDBase < 2 {
		return nil, fmt.Errorf("uid base %d: must be at least 2 (the base less one is the inits' uid)", cfg.UIDBase)
	}
	// Sandboxes inherit this process's supplementary groups, which no user
	// namespace can drop later: there must be none.
	if err := unix.Setgroups(nil); err != nil {
		return nil, fmt.Errorf("clear supplementary groups: %w", err)
	}
	filter, err := seccomp.Compile(policy)
	if err != nil {
		return nil, fmt.Errorf("seccomp policy %q: %w", policy.Name, err)
	}
	rootDir := filepath.Join(cfg.StateDir, "root")
	if err := os.MkdirAll(rootDir, 0o755); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	// The init reaches rootDir as an unprivileged user: every directory on
	// the way must be searchable.
	for d := rootDir; d != "/"; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return nil, fmt.Errorf("state dir: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return nil, fmt.Errorf("state dir: %s is not searchable by other users (mode %v); sandboxes cannot reach %s", d, fi.Mode().Perm(), rootDir)
		}
	}
	ids, err := newIDPool(UIDLockFile, cfg.UIDBase, cfg.UIDCount)
	if err != nil {
		return nil, err
	}
	cg, err := cgroup.Open(cgroup.Config{Root: cfg.CgroupRoot, Subtree: cfg.CgroupSubtree})
	if err != nil {
		ids.f.Close()
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	exits, err := taskstats.Listen()
	if err != nil {
		logEngine(cfg.Log, fmt.Sprintf("max_rss_bytes will include the init helper's memory: %v", err))
		exits = nil
	}
	return &Engine{
		exits:   exits,
		cgroups: cg,
		filter:  filter,
		profile: profile,
		ids:     ids,
		initID:  cfg.UIDBase - 1,
		rootDir: rootDir,
		prefix:  cfg.RunPrefix,
		ncpu:    runtime.NumCPU(),
		log:     cfg.Log,
	}, nil
}

// logEngine is logf before there is an Engine.
func logEngine(log func(string), msg string) {
	if log != nil {
		log(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "sandboxd: "+msg)
}

// PeakRSSOwn says whether max_rss_bytes is each program's own peak (from
// the kernel's exit records) rather than rusage's.
func (e *Engine) PeakRSSOwn() bool { return e.exits != nil }

// checkUserNamespaces fails early, with the reason, where the kernel would
// refuse every sandbox.
func checkUserNamespaces() error {
	if _, err := os.Stat("/proc/self/ns/user"); err != nil {
		return errors.New("this kernel has no user namespaces (CONFIG_USER_NS)")
	}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err == nil && string(b) == "0\n" {
		return errors.New("user namespaces are disabled: /proc/sys/user/max_user_namespaces is 0")
	}
	return nil
}

// Cgroups is the engine's cgroup manager, for /v1/info and reclaim.
func (e *Engine) Cgroups() *cgroup.Manager { return e.cgroups }

// Profile is the engine's sandbox recipe.
func (e *Engine) Profile() *Profile { return &e.profile }

// AcquireID reserves a host uid (and the gid of the same number) that no
// other live sandbox uses. ReleaseID gives it back, once nothing of the
// sandbox is left.
func (e *Engine) AcquireID() (uint32, error) { return e.ids.acquire() }

// ReleaseID returns an id from AcquireID.
func (e *Engine) ReleaseID(id uint32) { e.ids.release(id) }

// ExecRunPrefix is the cgroup name prefix of the runs of one `sandboxd exec`
// process.
func ExecRunPrefix(pid int) string { return fmt.Sprintf("exec-%d-", pid) }

// ReclaimExecRuns removes what `sandboxd exec` processes that no longer
// exist left in the cgroup subtree (after a SIGKILL, say): their run groups,
// and any process still in them. Groups of live processes are not touched.
func (e *Engine) ReclaimExecRuns() error {
	_, err := e.RemoveRuns(func(name string) bool {
		var pid, seq int
		if n, _ := fmt.Sscanf(name, "exec-%d-%d", &pid, &seq); n != 2 || pid <= 0 {
			return false
		}
		err := unix.Kill(pid, 0)
		return err != nil && err != unix.EPERM // its owner is gone
	})
	return err
}

// RemoveRuns removes the run groups in the subtree that match says to,
// killing any process still in them, and reports how many it removed.
func (e *Engine) RemoveRuns(match func(name string) bool) (int, error) {
	names, err := e.cgroups.Leftovers()
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, name := range names {
		if !match(name) {
			continue
		}
		if err := e.cgroups.Remove(name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
