package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/engine"
)

// RunPrefix starts the cgroup names of the daemon's runs; at start the
// daemon reclaims groups with this prefix, and only those.
const RunPrefix = "d-"

// Daemon is the long-running service: jobs, queue, registry, metrics, on
// one Engine. Serve exposes it on a Unix socket.
type Daemon struct {
	// live is the configuration in force; a reload swaps it (conf,
	// reload_linux.go).
	live    atomic.Pointer[snapshot]
	version string
	engine  *engine.Engine
	sched   *scheduler
	reg     *registry
	metrics *metrics
	bodies  *byteBudget // request bodies in flight
	log     *logrus.Logger
	// socket is the socket served: the config's, or the one systemd
	// passed (listen).
	socket string
	// reloadMu serializes reloads, and their end with close: a reload
	// after close does nothing.
	reloadMu  sync.Mutex
	closing   bool                   // guarded by reloadMu
	reloadErr atomic.Pointer[string] // why the last reload was refused; nil: it was not
	sdReady   atomic.Bool            // systemd was told READY=1
	cleanup   sync.WaitGroup         // workspace removals after their job's result
	ws        *wsPool                // workspaces mounted ahead
	wsTmpfs   bool                   // the workspaces' dir is a tmpfs this daemon mounted
	wsDone    sync.Once
	cache     *fileCache // POST /v1/files
	// stateLock is held while the daemon runs (lockStateDir); the cgroup
	// subtree's lock is the cgroup manager's (lockSubtree).
	stateLock *os.File
	closed    sync.Once // close

	// base is cancelled when the daemon gives up on its running jobs
	// (shutdown grace over).
	base       context.Context
	cancelBase context.CancelFunc
}

// New sets up the daemon: the engine, and the reclaim of whatever a
// previous instance left after a crash (its cgroups, workspaces, and the
// processes in those cgroups). On failure it leaves nothing held: no lock,
// no engine, no mount.
func New(cfg Config, version string, log *logrus.Logger) (_ *Daemon, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conf, err := newSnapshot(cfg, nil)
	if err != nil {
		return nil, err
	}

	// Each step that acquires something pushes its undo; a later failure
	// undoes them in reverse order. close undoes a whole daemon the same
	// way.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	// Before anything touches the state dir or the subtree.
	stateLock, err := lockStateDir(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { stateLock.Close() })
	eng, err := engine.New(cfg.Config, engine.Options{
		RunPrefix: RunPrefix,
		Profile:   conf.profiles["default"],
		Log:       func(msg string) { log.Warn(msg) },
	})
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { eng.Close() })
	// The engine's Close lets go of the subtree's lock too.
	if err := lockSubtree(eng.Cgroups(), cfg.CgroupSubtree); err != nil {
		return nil, err
	}
	d := &Daemon{
		version: version, engine: eng, stateLock: stateLock, socket: cfg.Socket,
		sched:  newScheduler(cfg.Concurrency, cfg.QueueSize),
		reg:    newRegistry(cfg.ResultTTL.Duration, cfg.ResultBytes),
		bodies: newByteBudget(cfg.MaxInflightRequestBytes),
		log:    log,
	}
	d.live.Store(conf)
	d.metrics = newMetrics(d.sched.load, eng)
	d.base, d.cancelBase = context.WithCancel(context.Background())
	undo = append(undo, d.cancelBase)
	if err := d.reclaim(); err != nil {
		return nil, fmt.Errorf("reclaiming a previous instance's leftovers: %w", err)
	}
	if d.cache, err = openFileCache(cfg.CacheDir, cfg.CacheBytes, cfg.CacheQuotaBytes, log); err != nil {
		return nil, err
	}
	if d.wsTmpfs, err = mountWorkspacesDir(cfg.StateDir); err != nil {
		return nil, err
	}
	if d.wsTmpfs {
		undo = append(undo, func() { unmountWorkspacesDir(cfg.StateDir) })
	}

	// Nothing below fails: close undoes it.
	eng.StartPools(conf.pooledList(), cfg.WarmSandboxes)
	d.ws = newWSPool(cfg.StateDir, cfg.WarmSandboxes, conf.workspaceSizes(), eng.BackgroundTurn, func(err error) { log.WithError(err).Warn("workspace made ahead") })
	return d, nil
}

// conf is the configuration in force. A caller reads it once and keeps
// what it read: a reload may publish another meanwhile.
func (d *Daemon) conf() *snapshot { return d.live.Load() }

// close gives back what New acquired, in reverse order: the workspaces
// made ahead and their tmpfs, the engine (its warm sandboxes, the cgroup
// subtree and its lock, the uid lock file), then the state dir's lock.
// Every job must be over, or given up (cancelBase). Calls after the first
// do nothing.
func (d *Daemon) close() {
	d.closed.Do(func() {
		d.reloadMu.Lock()
		d.closing = true
		d.reloadMu.Unlock()
		d.cancelBase()
		d.cleanup.Wait()
		d.closeWorkspaces()
		// The subtree stays if another sandboxd process still has runs in
		// it.
		if err := d.engine.Close(); err != nil {
			d.log.WithError(err).Debug("cgroup subtree left in place")
		}
		// Only now may another daemon take the state dir.
		d.stateLock.Close()
	})
}

// lockSubtree locks the daemon's cgroup subtree in every hierarchy
// (cgroup.Manager.Lock) while it runs; its end (a crash included) lets go.
// A second daemon on the same subtree would take the first's runs and warm
// sandboxes for a crashed instance's leftovers and kill them; it is refused
// instead, naming the key and the daemon that holds it. sandboxd exec does
// not lock: its runs have a prefix of their own, which no daemon reclaims.
func lockSubtree(cg *cgroup.Manager, subtree string) error {
	err := cg.Lock()
	var le *cgroup.LockedError
	if errors.As(err, &le) {
		return fmt.Errorf("cgroup_subtree: %q is in use by another sandboxd daemon (%s); give each daemon a subtree of its own", subtree, holder(le.PID, le.Dir+" is locked"))
	}
	if err != nil {
		return fmt.Errorf("cgroup_subtree: %w", err)
	}
	return nil
}

// holder names the process that holds a lock, for an error message.
func holder(pid int, what string) string {
	if pid <= 0 {
		return what
	}
	return fmt.Sprintf("pid %d: %s", pid, what)
}

// stateLockName is the file in the state dir that a daemon holds locked
// while it runs, with its pid in it.
const stateLockName = "daemon.lock"

// lockStateDir takes the state dir for this daemon while it runs: at start
// a daemon removes the workspaces it finds there (a crashed predecessor's)
// and mounts its own tmpfs over them, which on a state dir in use would be
// a live daemon's jobs. A second daemon is refused, naming the holder.
// sandboxd exec keeps no workspaces there and takes no lock.
func lockStateDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	path := filepath.Join(dir, stateLockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("state_dir: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if err == unix.EWOULDBLOCK {
			b, _ := io.ReadAll(io.LimitReader(f, 32))
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, fmt.Errorf("state_dir: %q is in use by another sandboxd daemon (%s); give each daemon a state_dir of its own", dir, holder(pid, path+" is locked"))
		}
		return nil, fmt.Errorf("state_dir: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// reclaim removes what a crashed daemon left: run cgroups with our prefix
// (killing any process still in them) and workspaces. Runs of other
// sandboxd processes are not touched.
func (d *Daemon) reclaim() error {
	groups, err := d.engine.RemoveRuns(func(name string) bool { return strings.HasPrefix(name, RunPrefix) })
	if err != nil {
		return err
	}
	n, err := reclaimWorkspaces(d.conf().cfg.StateDir)
	if err != nil {
		return err
	}
	if groups > 0 || n > 0 {
		d.log.WithFields(logrus.Fields{"cgroups": groups, "workspaces": n}).Warn("reclaimed the leftovers of a previous instance")
	}
	return nil
}

// closeWorkspaces removes the workspaces made ahead and unmounts the
// workspaces' tmpfs. Every job's workspace must be gone by then.
func (d *Daemon) closeWorkspaces() {
	d.wsDone.Do(func() {
		d.ws.close()
		if d.wsTmpfs {
			if err := unmountWorkspacesDir(d.conf().cfg.StateDir); err != nil {
				d.log.WithError(err).Warn("workspaces")
			}
		}
	})
}

// Info describes the daemon for GET /v1/info.
func (d *Daemon) Info() api.Info {
	var uts unix.Utsname
	unix.Uname(&uts)
	cg := d.engine.Cgroups()
	f := cg.Features()
	running, queued := d.sched.load()
	conf := d.conf()
	cfg := &conf.cfg
	info := api.Info{
		Version: d.version,
		Kernel:  unix.ByteSliceToString(uts.Release[:]),
		Cgroup:  api.CgroupInfo{Mode: string(cg.Mode()), Controllers: cg.Controllers(), Paths: cg.Paths()},
		Features: map[string]bool{
			"user_namespaces":       true,
			"seccomp_filter":        true,
			"seccomp_user_notif":    true,
			"clone_into_cgroup":     f.CloneIntoCgroup,
			"cgroup_kill":           f.CgroupKill,
			"memory_peak":           f.MemoryPeak,
			"pids_peak":             f.PIDsPeak,
			"swap_limit":            f.SwapLimit,
			"memory_oom_group":      f.OOMGroup,
			"socket_memory_limit":   f.SocketLimit,
			"cpu_limit":             f.CPULimit,
			"network_namespace":     true,
			"pivot_root":            true,
			"tracked_files_openat2": true,
			"max_rss_own":           d.engine.PeakRSSOwn(),
		},
		Pool: api.PoolInfo{
			Concurrency: cfg.Concurrency, QueueSize: cfg.QueueSize, Running: running, Queued: queued,
			WarmSandboxes: cfg.WarmSandboxes, WarmReady: d.engine.WarmReady(),
			WorkspacesReady: d.ws.readyCount(),
		},
		Config: api.ConfigInfo{Generation: conf.gen, RestartPending: conf.pending},
	}
	if msg := d.reloadErr.Load(); msg != nil {
		info.Config.ReloadError = *msg
	}
	for _, name := range conf.names {
		p := conf.profiles[name]
		info.Profiles = append(info.Profiles, api.ProfileInfo{Name: name, Defaults: p.Defaults, Max: p.Max,
			WorkspaceBytes: p.WorkspaceBytes, MaxWorkspaceBytes: p.MaxWorkspaceBytes})
	}
	info.Languages = conf.languageInfos()
	return info
}

// expireLoop drops old results until ctx ends.
func (d *Daemon) expireLoop(ctx context.Context) {
	every := expireEvery(d.conf().cfg.ResultTTL.Duration)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			d.reg.expire(now)
			// result_ttl may have changed with a reload.
			if e := expireEvery(d.conf().cfg.ResultTTL.Duration); e != every {
				every = e
				t.Reset(every)
			}
		}
	}
}

func jsonMarshal(v any) (json.RawMessage, error) { return json.Marshal(v) }

// ms is a duration in milliseconds, as the API gives times.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// stateDirReady makes the state dir with the modes the engine needs.
func stateDirReady(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Chmod(dir, 0o755)
}
