package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Group is one sandbox's groups, in every hierarchy. NewSandbox makes it; Destroy
// removes it. The stats methods may be called from any goroutine, also
// after Kill, until Destroy.
type Group struct {
	m    *Manager
	name string

	// unified is S/<name> in the cgroup2 hierarchy, the program's group
	// (a leaf, with the limits on pure v2); "" on pure v1.
	unified string
	// init is where the sandbox's init goes in the cgroup2 hierarchy: the
	// Manager's group for every init (Manager.inits), outside the sandbox's,
	// so that a sandbox costs one cgroup2 directory to make and remove.
	init string
	// v1 is S/<name> in each v1 hierarchy, in Manager.v1 order.
	v1 []string
	// Role directories of the program's groups.
	prog                                        string // unified, or ""
	memDir, pidsDir, cpuDir, cpuacctDir, frzDir string // v1 only

	// The polled files, chosen at create.
	cpuPath     string
	cpuIsNanos  bool // cpuacct.usage (ns) rather than cpu.stat usage_usec
	oomPath     string
	memPeakPath string // "" when Features.MemoryPeak is false
	pidPeakPath string // "" when Features.PIDsPeak is false
	// throttledPath is the cpu.stat with the throttled time: the program
	// leaf's on pure v2 (cpuPath), the v1 cpu group's on v1 and hybrid;
	// "" when Features.CPULimit is false.
	throttledPath string

	// mu guards the control files kept open for reading, by path.
	mu     sync.Mutex
	kept   map[string]*os.File
	base   Stats // CPU counters at MarkStart
	closed bool

	// applied are the limits in force, as setLimits last wrote them (0:
	// none written; -1: unknown after a failed write).
	applied Limits
}

// group computes the paths of sandbox name; it touches nothing.
func (m *Manager) group(name string) *Group {
	g := &Group{m: m, name: name}
	if m.unified != nil {
		g.unified = path.Join(m.unified.dir, name)
		g.prog = g.unified
		g.init = m.inits
	}
	for _, h := range m.v1 {
		g.v1 = append(g.v1, path.Join(h.dir, name))
	}
	dirOf := func(h *hierarchy) string {
		if h == nil {
			return ""
		}
		return path.Join(h.dir, name)
	}
	g.memDir, g.pidsDir, g.cpuDir, g.cpuacctDir, g.frzDir = dirOf(m.memory), dirOf(m.pids), dirOf(m.cpu), dirOf(m.cpuacct), dirOf(m.freezer)

	if m.mode == ModeV2 {
		g.oomPath = path.Join(g.prog, "memory.events")
		if m.features.MemoryPeak {
			g.memPeakPath = path.Join(g.prog, "memory.peak")
		}
		if m.features.PIDsPeak {
			g.pidPeakPath = path.Join(g.prog, "pids.peak")
		}
	} else {
		g.oomPath = path.Join(g.memDir, "memory.oom_control")
		if m.features.MemoryPeak {
			g.memPeakPath = path.Join(g.memDir, "memory.max_usage_in_bytes")
		}
		if m.features.PIDsPeak {
			g.pidPeakPath = path.Join(g.pidsDir, "pids.peak")
		}
	}
	if g.cpuacctDir != "" {
		g.cpuPath, g.cpuIsNanos = path.Join(g.cpuacctDir, "cpuacct.usage"), true
	} else {
		g.cpuPath = path.Join(g.prog, "cpu.stat")
	}
	if m.features.CPULimit {
		if m.mode == ModeV2 {
			g.throttledPath = g.cpuPath
		} else {
			g.throttledPath = path.Join(g.cpuDir, "cpu.stat")
		}
	}
	return g
}

// create makes the groups of sandbox name with limits lim:
//
//	cgroup2: S/<name>, the program's, with the limits on pure v2 (the
//	         init goes to the Manager's group of inits)
//	v1:      S/<name> in each v1 hierarchy, limits there
//
// name must be a single path element of letters, digits and "-_." not
// already in use. On failure nothing is left behind.
func (m *Manager) create(name string, lim Limits) (*Group, error) {
	if err := validateName(name); err != nil {
		return nil, fmt.Errorf("cgroup: create: %w", err)
	}
	if err := lim.Validate(); err != nil {
		return nil, err
	}
	g := m.group(name)
	var made []string
	mkdir := func(dir string) error {
		if err := m.k.mkdir(dir); err != nil {
			return err
		}
		made = append(made, dir)
		return nil
	}
	// No process can be inside yet (nothing was handed over), so plain
	// rmdir in reverse order undoes everything; a group that existed before
	// is not in made and stays.
	undo := func() (errs []error) {
		for i := len(made) - 1; i >= 0; i-- {
			if rerr := m.k.rmdir(made[i]); rerr != nil {
				errs = append(errs, fmt.Errorf("undo: %w", rerr))
			}
		}
		made = nil
		return errs
	}
	if !m.lockedByUs() {
		// Another process may remove an empty subtree meanwhile: hold it
		// back until our groups are in it (treelock_linux.go).
		defer lockTreeShared(m.subtreeDirs())()
	}
	err := g.build(lim, mkdir)
	var undone []error
	if err != nil && isNotExist(err) {
		// The subtree is gone in some hierarchy: another sandboxd process
		// on the same subtree removed it, empty, when it stopped, before
		// we held it. Make it again, once.
		if undone = undo(); len(undone) == 0 {
			if err = m.makeSubtree(); err == nil {
				err = g.build(lim, mkdir)
			}
		}
	}
	if err != nil {
		errs := append(append([]error{err}, undone...), undo()...)
		return nil, fmt.Errorf("cgroup: create %s: %w", name, errors.Join(errs...))
	}
	return g, nil
}

func (g *Group) build(lim Limits, mkdir func(string) error) error {
	m := g.m
	write := func(dir, file, value string) error { return m.k.writeFile(path.Join(dir, file), value) }
	if g.unified != "" {
		if err := mkdir(g.unified); err != nil {
			return err
		}
	}
	if m.mode == ModeV2 {
		if m.features.SwapLimit {
			if err := write(g.prog, "memory.swap.max", "0"); err != nil {
				return err
			}
		}
		if m.features.OOMGroup {
			if err := write(g.prog, "memory.oom.group", "1"); err != nil {
				return err
			}
		}
	} else {
		for _, d := range g.v1 {
			if err := mkdir(d); err != nil {
				return err
			}
		}
	}
	return g.setLimits(lim)
}

// SetLimits sets the memory, pids and CPU limits of a group made by
// NewSandbox (a zero field leaves that limit as it is), before its program
// execs: a group may be made ahead of its step and given the step's limits
// at the last moment.
func (g *Group) SetLimits(lim Limits) error {
	if err := lim.Validate(); err != nil {
		return err
	}
	if err := g.setLimits(lim); err != nil {
		return fmt.Errorf("cgroup: %s: set limits: %w", g.name, err)
	}
	return nil
}

// setLimits writes the limits that differ from those in force: a group
// made with a profile's limits costs no write when a step keeps them.
func (g *Group) setLimits(lim Limits) error {
	m := g.m
	write := func(dir, file, value string) error { return m.k.writeFile(path.Join(dir, file), value) }
	setMem := lim.MemoryBytes > 0 && lim.MemoryBytes != g.applied.MemoryBytes
	setPIDs := lim.PIDs > 0 && lim.PIDs != g.applied.PIDs
	if lim.CPUQuota > 0 && lim.CPUQuota != g.applied.CPUQuota {
		if !m.features.CPULimit {
			return errors.New("a CPU rate limit needs the cpu controller, which this host does not offer us")
		}
		var err error
		if m.mode == ModeV2 {
			err = write(g.prog, "cpu.max", formatLimit(lim.CPUQuota.Microseconds())+" "+formatLimit(CPUPeriod.Microseconds()))
		} else {
			// A new v1 group's period is the kernel's default, CPUPeriod.
			err = write(g.cpuDir, "cpu.cfs_quota_us", formatLimit(lim.CPUQuota.Microseconds()))
		}
		if err != nil {
			return err
		}
		g.applied.CPUQuota = lim.CPUQuota
	}
	if m.mode == ModeV2 {
		if setMem {
			if err := write(g.prog, "memory.max", formatLimit(lim.MemoryBytes)); err != nil {
				return err
			}
			g.applied.MemoryBytes = lim.MemoryBytes
		}
		if setPIDs {
			if err := write(g.prog, "pids.max", formatLimit(lim.PIDs)); err != nil {
				return err
			}
			g.applied.PIDs = lim.PIDs
		}
		return nil
	}
	if setMem {
		v := formatLimit(lim.MemoryBytes)
		// memsw (memory+swap) may never be below the memory limit: a
		// lower limit goes to memory first, a higher one to memsw first.
		// Equal values leave no room for swap.
		files := []string{"memory.limit_in_bytes"}
		if m.features.SwapLimit {
			files = append(files, "memory.memsw.limit_in_bytes")
			if g.applied.MemoryBytes != 0 && lim.MemoryBytes > g.applied.MemoryBytes {
				files[0], files[1] = files[1], files[0]
			}
		}
		writeAll := func() error {
			for _, f := range files {
				if err := write(g.memDir, f, v); err != nil {
					return err
				}
			}
			return nil
		}
		err := writeAll()
		if err != nil && len(files) == 2 {
			// The order did not suit what is in force (unknown after an
			// earlier failure): the other one.
			files[0], files[1] = files[1], files[0]
			err = writeAll()
		}
		if err == nil && m.features.SocketLimit {
			// v1 charges socket buffers to no cgroup until this limit is
			// set; then to a counter of their own, bounded here.
			err = write(g.memDir, "memory.kmem.tcp.limit_in_bytes", v)
		}
		if err != nil {
			g.applied.MemoryBytes = -1 // unknown: written again next time
			return err
		}
		g.applied.MemoryBytes = lim.MemoryBytes
	}
	if setPIDs {
		if err := write(g.pidsDir, "pids.max", formatLimit(lim.PIDs)); err != nil {
			return err
		}
		g.applied.PIDs = lim.PIDs
	}
	return nil
}

// pollBufSize holds cpu.stat (about 200 bytes with the cpu controller),
// memory.events and memory.oom_control.
const pollBufSize = 512

// CPUUsage is the CPU time used so far by the program leaf (v1 cpuacct.usage
// in nanoseconds, else cgroup2 cpu.stat usage_usec). It is meant to be polled
// every few milliseconds: the file stays open and each call is one pread
// into a stack buffer, without allocating.
func (g *Group) CPUUsage() (time.Duration, error) {
	var buf [pollBufSize]byte
	n, err := g.pread(g.cpuPath, buf[:])
	if err != nil {
		return 0, err
	}
	if g.cpuIsNanos {
		v, err := parseCount(buf[:n])
		if err != nil {
			return 0, &os.PathError{Op: "parse", Path: g.cpuPath, Err: err}
		}
		return time.Duration(v) - g.base.CPU, nil
	}
	v, err := keyedValue(buf[:n], "usage_usec")
	if err != nil {
		return 0, &os.PathError{Op: "parse", Path: g.cpuPath, Err: err}
	}
	return time.Duration(v)*time.Microsecond - g.base.CPU, nil
}

// OOMKills is how many processes the OOM killer killed in the program leaf
// (v2 memory.events oom_kill, v1 memory.oom_control oom_kill). Cheap enough
// to poll, like CPUUsage.
func (g *Group) OOMKills() (int64, error) {
	return g.readKeyed(g.oomPath, "oom_kill")
}

// readKeyed reads one "key value" line of a control file.
func (g *Group) readKeyed(file, key string) (int64, error) {
	var buf [pollBufSize]byte
	n, err := g.pread(file, buf[:])
	if err != nil {
		return 0, err
	}
	v, err := keyedValue(buf[:n], key)
	if err != nil {
		return 0, &os.PathError{Op: "parse " + key, Path: file, Err: err}
	}
	return v, nil
}

// pread reads the start of a control file, kept open from its first use
// (or NewSandbox) until Destroy. cgroupfs regenerates a file's text when it is
// read from offset 0.
func (g *Group) pread(file string, buf []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, err := g.keep(file)
	if err != nil {
		return 0, err
	}
	n, err := unix.Pread(int(f.Fd()), buf, 0)
	if err != nil {
		return 0, &os.PathError{Op: "read", Path: file, Err: err}
	}
	return n, nil
}

// keep opens file for reading once; g.mu is held.
func (g *Group) keep(file string) (*os.File, error) {
	if g.closed {
		return nil, &os.PathError{Op: "read", Path: file, Err: os.ErrClosed}
	}
	if f := g.kept[file]; f != nil {
		return f, nil
	}
	f, err := g.m.k.openFile(file, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	if g.kept == nil {
		g.kept = map[string]*os.File{}
	}
	g.kept[file] = f
	return f, nil
}

// preopen opens every control file that MarkStart, CPUUsage and Stats
// read, so that a step pays for none of the opens.
func (g *Group) preopen() error {
	files := []string{g.cpuPath, g.oomPath}
	if g.cpuIsNanos {
		files = append(files, path.Join(g.cpuacctDir, "cpuacct.usage_user"), path.Join(g.cpuacctDir, "cpuacct.usage_sys"))
	}
	for _, f := range []string{g.memPeakPath, g.pidPeakPath, g.throttledPath} {
		if f != "" {
			files = append(files, f)
		}
	}
	if g.m.mode != ModeV2 {
		files = append(files, path.Join(g.memDir, "memory.failcnt"))
		if g.m.features.SwapLimit {
			files = append(files, path.Join(g.memDir, "memory.memsw.failcnt"))
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, f := range files {
		if _, err := g.keep(f); err != nil {
			return fmt.Errorf("cgroup: %s: open %w", g.name, err)
		}
	}
	return nil
}

// Stats reads the sandbox's accounting: CPU split into user and system, the
// time its CPU quota held it back, the memory peak, OOM kills, and the task
// peak. Figures the kernel lacks (see Features) are 0.
func (g *Group) Stats() (Stats, error) {
	s, err := g.stats()
	if err != nil {
		return Stats{}, fmt.Errorf("cgroup: stats of %s: %w", g.name, err)
	}
	return s, nil
}

func (g *Group) stats() (Stats, error) {
	var s Stats
	cpu, user, sys, err := g.rawCPU()
	if err != nil {
		return s, err
	}
	cpu, user, sys = cpu-g.base.CPU, user-g.base.User, sys-g.base.System
	if g.cpuIsNanos {
		s.CPU = cpu
		s.User, s.System = splitCPU(int64(cpu), int64(user), int64(sys))
	} else {
		s.CPU, s.User, s.System = cpu, user, sys
	}
	throttled, err := g.rawThrottled()
	if err != nil {
		return s, err
	}
	s.Throttled = throttled - g.base.Throttled
	if s.OOMKills, err = g.OOMKills(); err != nil {
		return s, err
	}
	if s.MemoryLimitHits, err = g.memoryLimitHits(); err != nil {
		return s, err
	}
	if g.memPeakPath != "" {
		if s.MemoryPeak, err = g.readCount(g.memPeakPath); err != nil {
			return s, err
		}
	}
	if g.pidPeakPath != "" {
		if s.PIDsPeak, err = g.readCount(g.pidPeakPath); err != nil {
			return s, err
		}
	}
	return s, nil
}

// memoryLimitHits reads how many charges met the leaf's own memory limit.
// On v1 with swap limited the memory+swap counter is charged first, and at
// equal limits it is the one that refuses: both counts are summed.
func (g *Group) memoryLimitHits() (int64, error) {
	if g.m.mode == ModeV2 {
		return g.readKeyed(g.oomPath, "max")
	}
	n, err := g.readCount(path.Join(g.memDir, "memory.failcnt"))
	if err != nil || !g.m.features.SwapLimit {
		return n, err
	}
	sw, err := g.readCount(path.Join(g.memDir, "memory.memsw.failcnt"))
	return n + sw, err
}

// rawCPU reads the leaf's CPU counters as the kernel keeps them: on v1 the
// exact total and the tick-sampled user and system figures, on cgroup2 the
// three of cpu.stat.
func (g *Group) rawCPU() (cpu, user, sys time.Duration, err error) {
	if g.cpuIsNanos {
		var v, u, s int64
		if v, err = g.readCount(g.cpuPath); err != nil {
			return
		}
		if u, err = g.readCount(path.Join(g.cpuacctDir, "cpuacct.usage_user")); err != nil {
			return
		}
		if s, err = g.readCount(path.Join(g.cpuacctDir, "cpuacct.usage_sys")); err != nil {
			return
		}
		return time.Duration(v), time.Duration(u), time.Duration(s), nil
	}
	var buf [pollBufSize]byte
	n, err := g.pread(g.cpuPath, buf[:])
	if err != nil {
		return
	}
	data := buf[:n]
	for _, f := range []struct {
		key string
		dst *time.Duration
	}{{"usage_usec", &cpu}, {"user_usec", &user}, {"system_usec", &sys}} {
		v, err := keyedValue(data, f.key)
		if err != nil {
			return 0, 0, 0, &os.PathError{Op: "parse " + f.key, Path: g.cpuPath, Err: err}
		}
		*f.dst = time.Duration(v) * time.Microsecond
	}
	return cpu, user, sys, nil
}

// rawThrottled reads the throttled time as the kernel keeps it (v2
// throttled_usec, v1 throttled_time in ns); 0 without Features.CPULimit.
func (g *Group) rawThrottled() (time.Duration, error) {
	if g.throttledPath == "" {
		return 0, nil
	}
	key, unit := "throttled_usec", time.Microsecond
	if g.m.mode != ModeV2 {
		key, unit = "throttled_time", time.Nanosecond
	}
	v, err := g.readKeyed(g.throttledPath, key)
	return time.Duration(v) * unit, err
}

// MarkStart makes CPUUsage and Stats count CPU time (and throttled time)
// from now on. A group made ahead of its step already holds the process
// that will exec the program, and the little it used while it waited is
// not the step's.
func (g *Group) MarkStart() error {
	cpu, user, sys, err := g.rawCPU()
	if err != nil {
		return fmt.Errorf("cgroup: %s: mark start: %w", g.name, err)
	}
	throttled, err := g.rawThrottled()
	if err != nil {
		return fmt.Errorf("cgroup: %s: mark start: %w", g.name, err)
	}
	g.mu.Lock()
	g.base = Stats{CPU: cpu, User: user, System: sys, Throttled: throttled}
	g.mu.Unlock()
	return nil
}

// splitCPU divides the exact total between user and system time in the
// proportion of the tick-sampled figures, so that User+System == CPU. The v1
// cpuacct.usage_user and usage_sys are sampled at the timer tick and can
// exceed the total by a few ticks; the kernel adjusts cgroup2's cpu.stat and
// getrusage(2) the same way.
func splitCPU(total, user, sys int64) (time.Duration, time.Duration) {
	if total <= 0 {
		return 0, 0
	}
	if user+sys <= 0 {
		return time.Duration(total), 0 // as the kernel's cputime_adjust
	}
	u := int64(float64(total) * float64(user) / float64(user+sys))
	return time.Duration(u), time.Duration(total - u)
}

func (g *Group) readCount(file string) (int64, error) {
	var buf [64]byte
	n, err := g.pread(file, buf[:])
	if err != nil {
		return 0, err
	}
	v, err := parseCount(buf[:n])
	if err != nil {
		return 0, &os.PathError{Op: "parse", Path: file, Err: err}
	}
	return v, nil
}

// closeFiles releases the polled files; later polls fail with ErrClosed.
func (g *Group) closeFiles() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = true
	for _, f := range g.kept {
		f.Close()
	}
	g.kept = nil
}
