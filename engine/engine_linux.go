package engine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/nsjail"
	"github.com/sandboxd/sandboxd/seccomp"
	"github.com/sandboxd/sandboxd/taskstats"
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
	helpers int        // how many helpers make the sandboxes
	placer  *cpuPlacer // the CPUs of steps with a cpus limit
	seq     atomic.Uint64
	log     func(string) // what cannot be returned; nil: standard error

	poolsMu sync.Mutex
	pools   map[string]*pool // by profile name; nil until StartPools

	specsMu sync.Mutex
	specs   map[*Profile]*nsjail.Spec // what each profile's sandboxes share

	// exits gives each program's own peak RSS (see package taskstats);
	// nil where the kernel does not offer it, and max_rss_bytes is then
	// rusage's, which includes the helper's peak.
	exits *taskstats.Listener

	retiring sync.WaitGroup // teardowns of finished steps' sandboxes
	closed   atomic.Bool    // Close was called
	gate     gate           // holds the pools' refills back while jobs run
	// lendAfter is the const lendAfter, but in tests.
	lendAfter time.Duration
}

// New checks what the host offers and sets up everything that does not
// depend on a request: the cgroup subtree, the compiled seccomp filter, the
// uid pool. The error says what is missing or which setting is wrong. On
// failure nothing New acquired is left held. Close gives it all back.
func New(cfg Config, opts Options) (_ *Engine, err error) {
	if err := cfg.Validate(func(key string) string { return key }); err != nil {
		return nil, err
	}
	if opts.RunPrefix == "" {
		opts.RunPrefix = "r"
	}
	profile := DefaultProfile()
	if opts.Profile != nil {
		profile = *opts.Profile
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("sandboxd must run as root: it maps each sandbox to its own host uid and creates cgroups")
	}
	if err := checkUserNamespaces(); err != nil {
		return nil, err
	}
	// Sandboxes inherit this process's supplementary groups, which no user
	// namespace can drop later: there must be none.
	if err := unix.Setgroups(nil); err != nil {
		return nil, fmt.Errorf("clear supplementary groups: %w", err)
	}
	filter := seccomp.DefaultProgram() // compiled ahead
	if opts.Policy != nil {
		if filter, err = seccomp.Compile(*opts.Policy); err != nil {
			return nil, fmt.Errorf("seccomp policy %q: %w", opts.Policy.Name, err)
		}
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

	// From here on each step that acquires something pushes its undo; a
	// later failure undoes them in reverse order.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	ids, err := newIDPool(uidLockFile, cfg.UIDBase, cfg.UIDCount)
	if err != nil {
		return nil, err
	}
	undo = append(undo, ids.close)
	cg, err := cgroup.Open(cgroup.Config{Root: opts.CgroupRoot, Subtree: cfg.CgroupSubtree})
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	undo = append(undo, func() { cg.Close() })
	helpers := cfg.Helpers
	if helpers == 0 {
		helpers = DefaultHelpers(runtime.NumCPU())
	}
	nsjail.SetHelpers(nsjail.HelperOptions{Count: helpers, InProcess: opts.InProcessHelper})
	if !cg.Features().CPULimit {
		logEngine(opts.Log, fmt.Sprintf("the cpus limit is not enforced: the host gives sandboxd no CPU controller (cgroup %s, controllers %v)", cg.Mode(), cg.Controllers()))
	}
	exits, err := taskstats.Listen()
	if err != nil {
		logEngine(opts.Log, fmt.Sprintf("max_rss_bytes will include the helper's memory: %v", err))
		exits, err = nil, nil
	}
	return &Engine{
		lendAfter: lendAfter,
		exits:     exits,
		cgroups:   cg,
		filter:    filter,
		profile:   profile,
		ids:       ids,
		initID:    cfg.UIDBase - 1,
		rootDir:   rootDir,
		prefix:    opts.RunPrefix,
		ncpu:      runtime.NumCPU(),
		helpers:   helpers,
		placer:    newCPUPlacer(),
		log:       opts.Log,
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

// Helpers is how many helpers make the sandboxes (Config.Helpers, or its
// default for this host).
func (e *Engine) Helpers() int { return e.helpers }

// Cgroups is the engine's cgroup manager, for /v1/info and reclaim.
func (e *Engine) Cgroups() *cgroup.Manager { return e.cgroups }

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
// A subtree this engine made afresh holds none: nothing is read.
func (e *Engine) ReclaimExecRuns() error {
	if e.cgroups.Fresh() {
		return nil
	}
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
