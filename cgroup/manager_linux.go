package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// hierarchy is one mounted cgroup hierarchy that sandboxes are placed in.
type hierarchy struct {
	// key is "unified" for cgroup2, else the v1 controllers ("cpu,cpuacct").
	key string
	v2  bool
	// own is the directory of this process's own group.
	own string
	// dir is our subtree S = own/<Config.Subtree>.
	dir string
}

// Manager owns our subtree in every hierarchy and creates sandbox groups in it.
// Its methods are safe for concurrent use. It holds a descriptor of each
// directory it made (or found as its subtree) until it removes it.
type Manager struct {
	k       kernel
	mode    Mode
	subtree string

	// unified is the cgroup2 hierarchy (pure v2 and hybrid); nil on v1.
	unified *hierarchy
	// v1 lists the v1 hierarchies in use, sorted by key; the roles below
	// point into it (one hierarchy can serve two roles when controllers are
	// mounted together).
	v1                                  []*hierarchy
	memory, pids, cpu, cpuacct, freezer *hierarchy

	// v2Controllers are enabled for sandboxes on pure v2, sorted.
	v2Controllers []string
	features      Features
	// fresh: Open made the subtree in every hierarchy, so nothing of an
	// earlier process is in it (see Fresh).
	fresh bool
	// hasFreeze: cgroup2 groups have cgroup.freeze (Linux 5.2+); used by
	// Kill when cgroup.kill is missing.
	hasFreeze bool

	killTimeout time.Duration

	// inits is S/<initsPrefix><pid> in the cgroup2 hierarchy: the group
	// of every sandbox's init of this process (see Handover.Init);
	// "" on pure v1.
	inits string

	lockMu sync.Mutex // guards locks
	// locks holds our subtree's directory in each hierarchy, by path,
	// locked (Lock) until Close.
	locks map[string]*os.File
}

// initsPrefix starts the names of the inits' groups: no sandbox group can
// have it (validateName), and the pid after it tells whose it is.
const initsPrefix = "_inits-"

const (
	defaultKillTimeout = 2 * time.Second
	// rmdirBusyWait bounds retries of rmdir on EBUSY after a successful
	// Kill (the kernel may still be tearing a task down).
	rmdirBusyWait = 200 * time.Millisecond
)

// Open detects the host's cgroup mode, finds this process's own group in
// each hierarchy it needs, and creates the subtree cfg.Subtree beneath them
// (enabling controllers on the way on pure v2). The error says what is
// missing. Open may be called again after a restart: an existing subtree is
// reused, and Leftovers lists the sandboxes a previous daemon left.
func Open(cfg Config) (*Manager, error) {
	return open(cfg, &hostKernel{})
}

func open(cfg Config, k kernel) (*Manager, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	data, err := k.readFile(cfg.MountInfo)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open: %w", err)
	}
	mounts, err := parseMountInfo(data)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open: %s: %w", cfg.MountInfo, err)
	}
	data, err = k.readFile(cfg.SelfCgroup)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open: %w", err)
	}
	self, err := parseSelfCgroup(data)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open: %s: %w", cfg.SelfCgroup, err)
	}
	lay, err := detectLayout(mounts, cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open: %w", err)
	}
	m := &Manager{k: k, mode: lay.mode, subtree: cfg.Subtree, killTimeout: defaultKillTimeout}
	if err := m.resolve(lay, self, cfg); err != nil {
		return nil, fmt.Errorf("cgroup: open (%s): %w", lay.mode, err)
	}
	if m.unified != nil {
		m.inits = path.Join(m.unified.dir, initsPrefix+strconv.Itoa(os.Getpid()))
	}
	if err := m.setup(); err != nil {
		return nil, fmt.Errorf("cgroup: open (%s): %w", lay.mode, err)
	}
	return m, nil
}

// resolve picks the hierarchies for the mode and finds our own group in
// each. It touches nothing.
func (m *Manager) resolve(lay layout, self selfCgroup, cfg Config) error {
	if m.mode != ModeV1 {
		if !self.hasUnified {
			return fmt.Errorf("%s has no \"0::\" line for the cgroup2 hierarchy at %s", cfg.SelfCgroup, lay.unified.point)
		}
		own, err := groupDir(*lay.unified, self.unified)
		if err != nil {
			return err
		}
		if path.Base(own) == m.subtree+"-self" && own != lay.unified.point {
			// An earlier Open in this process parked us in this leaf (see
			// moveSelfToLeaf); our own group is its parent.
			own = path.Dir(own)
		}
		m.unified = &hierarchy{key: "unified", v2: true, own: own, dir: path.Join(own, m.subtree)}
	}
	if m.mode == ModeV2 {
		return nil
	}
	var missing []string
	pick := func(ctrl string, required bool) (*hierarchy, error) {
		mounts := lay.v1[ctrl]
		if len(mounts) == 0 {
			if required {
				missing = append(missing, ctrl)
			}
			return nil, nil
		}
		p, ok := self.v1[ctrl]
		if !ok {
			return nil, fmt.Errorf("%s has no line for the v1 %s hierarchy mounted at %s", cfg.SelfCgroup, ctrl, mounts[0].point)
		}
		var firstErr error
		for _, mt := range mounts {
			own, err := groupDir(mt, p)
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				continue
			}
			key := mt.key()
			for _, h := range m.v1 {
				if h.key == key {
					return h, nil
				}
			}
			h := &hierarchy{key: key, own: own, dir: path.Join(own, m.subtree)}
			m.v1 = append(m.v1, h)
			return h, nil
		}
		return nil, firstErr
	}
	var err error
	if m.memory, err = pick("memory", true); err != nil {
		return err
	}
	if m.pids, err = pick("pids", true); err != nil {
		return err
	}
	// The CFS quota, where the kernel offers it; Features.CPULimit says.
	if m.cpu, err = pick("cpu", false); err != nil {
		return err
	}
	// On hybrid the unified tree's cpu.stat is the CPU clock, one read for
	// the total, user and system time, and no group more to make and
	// remove per sandbox; on pure v1 cpuacct is the only CPU clock and the
	// freezer the only safe kill.
	if m.mode == ModeV1 {
		if m.cpuacct, err = pick("cpuacct", true); err != nil {
			return err
		}
		if m.freezer, err = pick("freezer", true); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no v1 %s hierarchy mounted under %s", strings.Join(missing, ", "), cfg.Root)
	}
	sort.Slice(m.v1, func(i, j int) bool { return m.v1[i].key < m.v1[j].key })
	return nil
}

// hierarchies lists every hierarchy in use: cgroup2 first, then v1 by key.
func (m *Manager) hierarchies() []*hierarchy {
	var hs []*hierarchy
	if m.unified != nil {
		hs = append(hs, m.unified)
	}
	return append(hs, m.v1...)
}

// setup creates the subtree in every hierarchy and probes the features. On
// failure it removes the subtree directories it created.
func (m *Manager) setup() (err error) {
	if m.mode == ModeV2 {
		// Before any mkdir: this may move us into a leaf, and it fails
		// early when the controllers were not delegated.
		if err := m.delegateOwnGroup(); err != nil {
			return err
		}
	}
	if err := m.makeSubtree(); err != nil {
		return err
	}
	m.probeFeatures()
	if !m.fresh {
		m.removeDeadInits()
	}
	return nil
}

// makeSubtree makes S in every hierarchy where it is missing and sets it
// up; on failure it removes the directories it made. Another process on
// the same subtree may remove S, empty, while this one makes what goes in
// it: then it starts again, twice at most.
func (m *Manager) makeSubtree() error {
	for try := 1; ; try++ {
		err := m.makeSubtreeOnce()
		if err == nil || !isNotExist(err) || try == 3 {
			return err
		}
	}
}

func (m *Manager) makeSubtreeOnce() (err error) {
	if !m.lockedByUs() {
		// Another process's Close may remove S between our mkdir (which
		// finds it) and our reading its control files (which then fail
		// with ENODEV): hold it back while we set it up (treelock_linux.go).
		defer lockTreeShared(m.subtreeDirs())()
	}
	var made []string
	defer func() {
		if err != nil {
			for i := len(made) - 1; i >= 0; i-- {
				_ = m.k.rmdir(made[i])
			}
		}
	}()
	// makeOrKeep makes dir, or keeps it as it is there.
	makeOrKeep := func(dir string) error {
		switch err := m.k.mkdir(dir); {
		case err == nil:
			made = append(made, dir)
		case errors.Is(err, fs.ErrExist):
			m.k.keepDir(dir)
		default:
			return err
		}
		return nil
	}
	hs := m.hierarchies()
	for _, h := range hs {
		if err := makeOrKeep(h.dir); err != nil {
			return err
		}
	}
	m.fresh = len(made) == len(hs)
	if m.mode == ModeV2 {
		if err := m.enable(m.unified.dir, m.v2Controllers); err != nil {
			return err
		}
	}
	if m.memory != nil {
		// New v1 memory groups copy their parent's swappiness, so setting
		// it once on the subtree covers every sandbox. Best effort: the file is
		// read-only on some kernels.
		_ = m.k.writeFile(path.Join(m.memory.dir, "memory.swappiness"), "0")
	}
	if m.inits != "" {
		return makeOrKeep(m.inits)
	}
	return nil
}

// removeDeadInits removes the inits' groups of processes that are gone (a
// daemon that was killed). Its inits die with its helper, which dies with
// it; one may still be on its way out when the next daemon starts: it is
// killed again, and waited for, killTimeout at most.
func (m *Manager) removeDeadInits() {
	if m.inits == "" {
		return
	}
	names, err := m.k.subdirs(m.unified.dir)
	if err != nil {
		return
	}
	for _, n := range names {
		pid, ok := initsOwner(n)
		if !ok || pid == os.Getpid() || !gone(pid) {
			continue
		}
		dir := path.Join(m.unified.dir, n)
		deadline := time.Now().Add(m.killTimeout)
		for {
			err := m.k.rmdir(dir)
			if err == nil || !isBusy(err) || time.Now().After(deadline) {
				break
			}
			if m.features.CgroupKill {
				_ = m.k.writeFile(path.Join(dir, "cgroup.kill"), "1")
			} else if pids, err := m.readPIDs(path.Join(dir, "cgroup.procs")); err == nil {
				for _, p := range pids {
					_ = m.k.kill(p)
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// gone reports whether process pid has ended: no such process, or one
// that died and waits to be reaped (a killed daemon's parent may take its
// time).
func gone(pid int) bool {
	if unix.Kill(pid, 0) == unix.ESRCH {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return os.IsNotExist(err)
	}
	// The state follows the command, in parentheses, which may hold
	// anything: look after the last ")".
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z' || b[i+2] == 'X'
	}
	return false
}

// initsOwner is the pid whose inits' group name is, if name is one.
func initsOwner(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, initsPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	return n, err == nil && n > 0
}

// requiredV2 are the controllers a pure v2 host must delegate to us.
var requiredV2 = []string{"memory", "pids"}

// delegateOwnGroup makes the memory and pids controllers (and cpu when
// offered) available to our subtree by enabling them in our own group's
// cgroup.subtree_control. Nothing above our own group is written.
func (m *Manager) delegateOwnGroup() error {
	own := m.unified.own
	avail, err := m.readFields(path.Join(own, "cgroup.controllers"))
	if err != nil {
		return err
	}
	var missing []string
	for _, c := range requiredV2 {
		if !avail[c] {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("controllers %s are not available in %s (its cgroup.controllers lists %q); delegate them to this service (systemd: Delegate=yes)",
			strings.Join(missing, ", "), own, strings.Join(sortedKeys(avail), " "))
	}
	enabled, err := m.readFields(path.Join(own, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	var need []string
	for _, c := range requiredV2 {
		if !enabled[c] {
			need = append(need, c)
		}
	}
	if len(need) > 0 {
		if err := m.enableInOwn(need); err != nil {
			return err
		}
	}
	m.v2Controllers = slices.Clone(requiredV2)
	// cpu is optional: cpu.stat works without it, and enabling it can fail
	// (for example with realtime threads about), which must not stop us.
	if avail["cpu"] && (enabled["cpu"] || m.enableInOwn([]string{"cpu"}) == nil) {
		m.v2Controllers = append(m.v2Controllers, "cpu")
	}
	sort.Strings(m.v2Controllers)
	return nil
}

// enableInOwn enables controllers in our own group. The kernel refuses
// (EBUSY) while processes sit in a non-root group that hands controllers to
// its children ("no internal processes"); then we move this process into
// the leaf <own>/<Subtree>-self and try again.
func (m *Manager) enableInOwn(ctrls []string) error {
	own := m.unified.own
	if !m.k.exists(path.Join(own, "cgroup.type")) {
		// Only the root group lacks cgroup.type.
		return fmt.Errorf("controllers %s are not enabled in %s/cgroup.subtree_control, and that is the hierarchy's root group, which sandboxd never writes",
			strings.Join(ctrls, ", "), own)
	}
	file := path.Join(own, "cgroup.subtree_control")
	err := m.k.writeFile(file, plusList(ctrls))
	if err == nil || !isBusy(err) {
		return err
	}
	if merr := m.moveSelfToLeaf(); merr != nil {
		return fmt.Errorf("%w; moving out of the way: %w", err, merr)
	}
	return m.k.writeFile(file, plusList(ctrls))
}

// moveSelfToLeaf moves this process, all its threads, from our own group into
// the leaf <own>/<Subtree>-self.
func (m *Manager) moveSelfToLeaf() error {
	own := m.unified.own
	procsFile := path.Join(own, "cgroup.procs")
	pids, err := m.readPIDs(procsFile)
	if err != nil {
		return err
	}
	self := os.Getpid()
	var others []int
	for _, p := range pids {
		if p != self {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		return fmt.Errorf("%s holds processes %v besides this one; they must move to a leaf group first", procsFile, others)
	}
	if !slices.Contains(pids, self) {
		return fmt.Errorf("this process (%d) is not in %s", self, procsFile)
	}
	leaf := path.Join(own, m.subtree+"-self")
	if err := m.k.mkdir(leaf); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	// Writing a pid to cgroup.procs moves the whole thread group.
	return m.k.writeFile(path.Join(leaf, "cgroup.procs"), strconv.Itoa(self))
}

// enable makes sure ctrls are enabled in dir's cgroup.subtree_control.
func (m *Manager) enable(dir string, ctrls []string) error {
	file := path.Join(dir, "cgroup.subtree_control")
	enabled, err := m.readFields(file)
	if err != nil {
		return err
	}
	var need []string
	for _, c := range ctrls {
		if !enabled[c] {
			need = append(need, c)
		}
	}
	if len(need) == 0 {
		return nil
	}
	return m.k.writeFile(file, plusList(need))
}

func (m *Manager) probeFeatures() {
	has := func(dir, file string) bool { return m.k.exists(path.Join(dir, file)) }
	if m.unified != nil {
		s := m.unified.dir
		m.features.CgroupKill = has(s, "cgroup.kill")
		m.hasFreeze = has(s, "cgroup.freeze")
		// clone3 gained CLONE_INTO_CGROUP in 5.7; no file tells.
		m.features.CloneIntoCgroup = kernelAtLeast(m.k.release(), 5, 7)
	}
	if m.mode == ModeV2 {
		s := m.unified.dir
		m.features.MemoryPeak = has(s, "memory.peak")
		m.features.PIDsPeak = has(s, "pids.peak")
		m.features.SwapLimit = has(s, "memory.swap.max")
		m.features.OOMGroup = has(s, "memory.oom.group")
		m.features.SocketLimit = has(s, "memory.max")
		m.features.CPULimit = slices.Contains(m.v2Controllers, "cpu") && has(s, "cpu.max")
		return
	}
	m.features.CPULimit = m.cpu != nil && has(m.cpu.dir, "cpu.cfs_quota_us")
	m.features.MemoryPeak = has(m.memory.dir, "memory.max_usage_in_bytes")
	m.features.SwapLimit = has(m.memory.dir, "memory.memsw.limit_in_bytes")
	m.features.SocketLimit = has(m.memory.dir, "memory.kmem.tcp.limit_in_bytes")
	m.features.PIDsPeak = has(m.pids.dir, "pids.peak")
}

// Fresh reports whether Open made the subtree in every hierarchy: then it
// held nothing when Open returned, and there are no Leftovers of earlier
// processes to look for.
func (m *Manager) Fresh() bool { return m.fresh }

// Mode is the detected cgroup mode.
func (m *Manager) Mode() Mode { return m.mode }

// Features is what the kernel offers, probed at Open.
func (m *Manager) Features() Features { return m.features }

// Controllers lists the controllers sandboxes use, sorted: on v2 those enabled in
// the subtree (memory, pids, and cpu when offered); on v1 and hybrid the v1
// hierarchies by controller (cpu when mounted, memory, pids, and cpuacct and
// freezer on pure v1).
func (m *Manager) Controllers() []string {
	if m.mode == ModeV2 {
		return slices.Clone(m.v2Controllers)
	}
	var out []string
	for name, h := range map[string]*hierarchy{"cpu": m.cpu, "cpuacct": m.cpuacct, "memory": m.memory, "pids": m.pids, "freezer": m.freezer} {
		if h != nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Paths maps each hierarchy in use ("unified", or the v1 controller list
// such as "memory" or "cpu,cpuacct") to our subtree directory in it.
func (m *Manager) Paths() map[string]string {
	out := map[string]string{}
	for _, h := range m.hierarchies() {
		out[h.key] = h.dir
	}
	return out
}

// Leftovers lists, sorted, the names of sandbox groups present under our
// subtree in any hierarchy: after a restart, sandboxes of the previous daemon.
func (m *Manager) Leftovers() ([]string, error) {
	seen := map[string]bool{}
	for _, h := range m.hierarchies() {
		names, err := m.k.subdirs(h.dir)
		if err != nil {
			if isNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("cgroup: leftovers: %w", err)
		}
		for _, n := range names {
			if _, inits := initsOwner(n); !inits {
				seen[n] = true
			}
		}
	}
	return sortedKeys(seen), nil
}

// Remove kills every process in the sandbox group name and removes it in every
// hierarchy, as Destroy does for a Group; for reclaiming Leftovers. A group
// that is not there is not an error.
func (m *Manager) Remove(name string) error {
	if err := validateName(name); err != nil {
		return fmt.Errorf("cgroup: remove: %w", err)
	}
	g := m.group(name)
	if err := g.destroy(); err != nil {
		return fmt.Errorf("cgroup: remove %s: %w", name, err)
	}
	return nil
}

// Close removes our subtree directories and lets go of the lock (Lock).
// It fails if sandbox groups remain (Remove them first). A directory another
// process holds locked stays: a daemon runs on it. It does not move this
// process back out of the <Subtree>-self leaf on v2, which is where it has
// to live.
func (m *Manager) Close() error {
	var errs []error
	m.removeDeadInits()
	if m.inits != "" {
		if err := m.k.rmdir(m.inits); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
	}
	m.lockMu.Lock()
	hs := m.hierarchies()
	for i := len(hs) - 1; i >= 0; i-- {
		done, ok := m.holdForRemoval(hs[i].dir)
		if !ok {
			continue
		}
		unlock, ok := lockTreeForRemoval(hs[i].dir)
		if !ok {
			// Another process is making its groups in it, and removes
			// it when it stops.
			done()
			continue
		}
		if err := m.k.rmdir(hs[i].dir); err != nil && !isNotExist(err) {
			errs = append(errs, err)
		}
		unlock()
		done()
	}
	for _, f := range m.locks {
		f.Close()
	}
	m.locks = nil
	m.lockMu.Unlock()
	if len(errs) > 0 {
		return fmt.Errorf("cgroup: close: %w", errors.Join(errs...))
	}
	return nil
}

// readFields reads a space-separated list file (cgroup.controllers,
// cgroup.subtree_control) into a set.
func (m *Manager) readFields(file string) (map[string]bool, error) {
	data, err := m.k.readFile(file)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{}
	for _, f := range strings.Fields(string(data)) {
		set[f] = true
	}
	return set, nil
}

// readPIDs reads a cgroup.procs file. A missing file reads as empty: the
// group is gone, and so are its processes.
func (m *Manager) readPIDs(file string) ([]int, error) {
	data, err := m.k.readFile(file)
	if err != nil {
		if isNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		p, err := strconv.Atoi(f)
		if err != nil || p <= 0 {
			return nil, &os.PathError{Op: "parse", Path: file, Err: errBadValue}
		}
		pids = append(pids, p)
	}
	return pids, nil
}

func plusList(ctrls []string) string {
	var b strings.Builder
	for i, c := range ctrls {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteByte('+')
		b.WriteString(c)
	}
	return b.String()
}

func sortedKeys(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
