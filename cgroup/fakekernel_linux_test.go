package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// fakeKernel stands in for cgroupfs: a temp dir laid out like the real
// thing, plus the kernel rules this package depends on:
//
//   - mkdir creates a group's control files; rmdir removes them with the
//     group, and refuses (EBUSY) while the group has children or processes;
//   - control files cannot be created by writing, only written;
//   - cgroup2 subtree_control accepts only controllers in cgroup.controllers
//     and refuses to enable any while a non-root group holds processes;
//   - a process is in exactly one group per hierarchy: writing its pid to
//     cgroup.procs moves it; killing it removes it everywhere;
//   - cgroup.events reports "populated" from the processes beneath;
//   - /proc/self/cgroup follows where this test process sits.
//
// Processes are just pids in cgroup.procs files; kill signals nothing.
type fakeKernel struct {
	t    *testing.T
	base string // temp dir holding root, mountinfo and self-cgroup files
	root string // stands for /sys/fs/cgroup

	mu         sync.Mutex
	mounts     []*fakeMount
	releaseStr string
	omit       map[string]bool  // control files this kernel lacks
	failWrite  map[string]error // injected write errors, by path
	failOpen   map[string]error // injected openFile errors, by path
	immortal   map[int]bool     // pids that survive kill
	logging    bool
	// beforeMkdir, when set, runs before each mkdir (without mu): another
	// process's doing at that moment.
	beforeMkdir func(p string)

	writes  []fakeWrite // successful writes, in order
	refused []fakeWrite // writes the fake kernel refused
	opened  []string    // files opened or read whole, when logging
	files   []*os.File  // every file openFile returned
	chowned []string    // "path uid:gid", when logging
	mkdirs  []string
	rmdirs  []string
	killed  []int
}

type fakeWrite struct{ path, value string }

func (w fakeWrite) String() string { return w.path + " <- " + strconv.Quote(w.value) }

type fakeMount struct {
	id          int    // hierarchy ID in /proc/self/cgroup; 0 for cgroup2
	point       string // mount point
	rootField   string // the group shown at point (mountinfo field 4)
	v2          bool
	controllers []string // v1: the hierarchy's controllers; v2: offered by the root group
}

// v2Order is the kernel's order of controllers in cgroup.controllers.
var v2Order = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

func (k *fakeKernel) mountOf(p string) *fakeMount {
	var best *fakeMount
	for _, m := range k.mounts {
		if (p == m.point || strings.HasPrefix(p, m.point+"/")) && (best == nil || len(m.point) > len(best.point)) {
			best = m
		}
	}
	return best
}

func (k *fakeKernel) isMountPoint(p string) bool {
	m := k.mountOf(p)
	return m != nil && m.point == p
}

// --- the kernel interface ---

func (k *fakeKernel) keepDir(string) {}

func (k *fakeKernel) mkdir(p string) error {
	if k.beforeMkdir != nil {
		k.beforeMkdir(p)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.mkdirLocked(p)
}

func (k *fakeKernel) mkdirLocked(p string) error {
	k.mustBeInside(p)
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	k.populate(p)
	if k.logging {
		k.mkdirs = append(k.mkdirs, p)
	}
	return nil
}

// populate creates the control files of the new group p.
func (k *fakeKernel) populate(p string) {
	m := k.mountOf(p)
	files := map[string]string{"cgroup.procs": ""}
	if m.v2 {
		parentCtrls := k.fields(path.Join(path.Dir(p), "cgroup.subtree_control"))
		for f, v := range map[string]string{
			"cgroup.controllers": strings.Join(parentCtrls, " "), "cgroup.subtree_control": "",
			"cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "", "cgroup.freeze": "0",
			"cgroup.type": "domain", "cgroup.threads": "",
			"cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnice_usec 0\n",
		} {
			files[f] = v
		}
		for _, c := range parentCtrls {
			for f, v := range v2ControllerFiles[c] {
				files[f] = v
			}
		}
	} else {
		files["tasks"] = ""
		files["notify_on_release"] = "0"
		for _, c := range m.controllers {
			for f, v := range v1ControllerFiles[c] {
				files[f] = v
			}
		}
		if _, ok := files["memory.swappiness"]; ok {
			// New v1 memory groups copy their parent's swappiness.
			if b, err := os.ReadFile(path.Join(path.Dir(p), "memory.swappiness")); err == nil {
				files["memory.swappiness"] = string(b)
			}
		}
	}
	for f, v := range files {
		if k.omit[f] {
			continue
		}
		if err := os.WriteFile(path.Join(p, f), []byte(v), 0o644); err != nil {
			k.t.Fatal(err)
		}
	}
}

var v2ControllerFiles = map[string]map[string]string{
	"memory": {
		"memory.max": "max\n", "memory.swap.max": "max\n", "memory.oom.group": "0\n", "memory.peak": "0\n",
		"memory.current": "0\n", "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
	},
	"pids": {"pids.max": "max\n", "pids.current": "0\n", "pids.peak": "0\n", "pids.events": "max 0\n"},
	"cpu": {
		"cpu.max": "max 100000\n", "cpu.weight": "100\n",
		"cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnice_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\nnr_bursts 0\nburst_usec 0\n",
	},
	"io": {"io.max": ""},
}

var v1ControllerFiles = map[string]map[string]string{
	"memory": {
		"memory.limit_in_bytes": "9223372036854771712\n", "memory.memsw.limit_in_bytes": "9223372036854771712\n",
		"memory.kmem.tcp.limit_in_bytes": "9223372036854771712\n",
		"memory.max_usage_in_bytes":      "0\n", "memory.usage_in_bytes": "0\n", "memory.failcnt": "0\n", "memory.memsw.failcnt": "0\n",
		"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n", "memory.swappiness": "60\n",
	},
	"pids":    {"pids.max": "max\n", "pids.current": "0\n", "pids.peak": "0\n", "pids.events": "max 0\n"},
	"cpuacct": {"cpuacct.usage": "0\n", "cpuacct.usage_user": "0\n", "cpuacct.usage_sys": "0\n", "cpuacct.stat": "user 0\nsystem 0\n"},
	"cpu": {
		"cpu.shares": "1024\n", "cpu.cfs_period_us": "100000\n", "cpu.cfs_quota_us": "-1\n",
		"cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\nnr_bursts 0\nburst_time 0\n",
	},
	"freezer": {"freezer.state": "THAWED\n", "freezer.self_freezing": "0\n", "freezer.parent_freezing": "0\n"},
}

func (k *fakeKernel) rmdir(p string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.mustBeInside(p)
	fi, err := os.Lstat(p)
	if err != nil {
		return &os.PathError{Op: "rmdir", Path: p, Err: syscall.ENOENT}
	}
	if !fi.IsDir() {
		return &os.PathError{Op: "rmdir", Path: p, Err: syscall.ENOTDIR}
	}
	if k.isMountPoint(p) || len(k.subdirsLocked(p)) > 0 || len(k.pidsIn(p)) > 0 {
		return &os.PathError{Op: "rmdir", Path: p, Err: syscall.EBUSY}
	}
	if err := os.RemoveAll(p); err != nil {
		k.t.Fatal(err)
	}
	if k.logging {
		k.rmdirs = append(k.rmdirs, p)
	}
	return nil
}

func (k *fakeKernel) readFile(p string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.logging {
		k.opened = append(k.opened, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	if path.Base(p) == "cgroup.events" {
		dir := path.Dir(p)
		populated := 0
		if len(k.treePIDs(dir)) > 0 {
			populated = 1
		}
		frozen := strings.TrimSpace(k.read(path.Join(dir, "cgroup.freeze")))
		b = fmt.Appendf(nil, "populated %d\nfrozen %s\n", populated, frozen)
	}
	return b, nil
}

func (k *fakeKernel) writeFile(p, value string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	err := k.writeLocked(p, value)
	if err != nil {
		k.refused = append(k.refused, fakeWrite{p, value})
		return &os.PathError{Op: "write", Path: p, Err: err}
	}
	if k.logging {
		k.writes = append(k.writes, fakeWrite{p, value})
	}
	return nil
}

// writeLocked applies the kernel's rules for one write and returns the
// errno it would fail with.
func (k *fakeKernel) writeLocked(p, value string) error {
	k.mustBeInside(p)
	if err, ok := k.failWrite[p]; ok {
		return err
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return syscall.ENOENT
	}
	if !fi.Mode().IsRegular() {
		return syscall.EISDIR
	}
	dir, base := path.Dir(p), path.Base(p)
	isNum := func(s string) bool { n, err := strconv.ParseInt(s, 10, 64); return err == nil && n >= 0 }
	switch base {
	case "cgroup.subtree_control":
		return k.writeSubtreeControl(dir, value)
	case "cgroup.procs":
		pid, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || pid <= 0 {
			return syscall.EINVAL
		}
		m := k.mountOf(dir)
		if m.v2 && k.exists(path.Join(dir, "cgroup.type")) && len(k.fields(path.Join(dir, "cgroup.subtree_control"))) > 0 {
			return syscall.EBUSY // no internal processes
		}
		k.place(pid, dir)
		return nil
	case "cgroup.kill":
		if value != "1" {
			return syscall.EINVAL
		}
		for _, pid := range k.treePIDs(dir) {
			k.killLocked(pid)
		}
		return nil
	case "cgroup.freeze", "memory.oom.group":
		if value != "0" && value != "1" {
			return syscall.EINVAL
		}
	case "freezer.state":
		if value != "FROZEN" && value != "THAWED" {
			return syscall.EINVAL
		}
	case "memory.max", "memory.swap.max", "pids.max":
		if value != "max" && !isNum(value) {
			return syscall.EINVAL
		}
	case "memory.limit_in_bytes":
		if !isNum(value) {
			return syscall.EINVAL
		}
		if sw := k.read(path.Join(dir, "memory.memsw.limit_in_bytes")); sw != "" && num(value) > num(sw) {
			return syscall.EINVAL // memory+swap may not be below memory
		}
	case "memory.memsw.limit_in_bytes":
		if !isNum(value) || num(value) < num(k.read(path.Join(dir, "memory.limit_in_bytes"))) {
			return syscall.EINVAL
		}
	case "memory.swappiness":
		if n, err := strconv.Atoi(value); err != nil || n < 0 || n > 100 {
			return syscall.EINVAL
		}
	}
	k.set(p, value+"\n")
	return nil
}

func (k *fakeKernel) writeSubtreeControl(dir, value string) error {
	avail := k.fields(path.Join(dir, "cgroup.controllers"))
	cur := k.fields(path.Join(dir, "cgroup.subtree_control"))
	enabling := false
	for _, tok := range strings.Fields(value) {
		if len(tok) < 2 || (tok[0] != '+' && tok[0] != '-') {
			return syscall.EINVAL
		}
		c := tok[1:]
		if !slices.Contains(avail, c) {
			return syscall.ENOENT
		}
		if tok[0] == '+' {
			enabling = true
			if !slices.Contains(cur, c) {
				cur = append(cur, c)
			}
		} else {
			cur = slices.DeleteFunc(cur, func(x string) bool { return x == c })
		}
	}
	if enabling && k.exists(path.Join(dir, "cgroup.type")) && len(k.pidsIn(dir)) > 0 {
		return syscall.EBUSY // no internal processes
	}
	sorted := slices.DeleteFunc(slices.Clone(v2Order), func(x string) bool { return !slices.Contains(cur, x) })
	k.set(path.Join(dir, "cgroup.subtree_control"), strings.Join(sorted, " ")+"\n")
	// Children gain the controllers' files.
	for _, sub := range k.subdirsLocked(dir) {
		child := path.Join(dir, sub)
		k.set(path.Join(child, "cgroup.controllers"), strings.Join(sorted, " ")+"\n")
		for _, c := range sorted {
			for f, v := range v2ControllerFiles[c] {
				if !k.omit[f] && !k.exists(path.Join(child, f)) {
					k.set(path.Join(child, f), v)
				}
			}
		}
	}
	return nil
}

func (k *fakeKernel) openFile(p string, flag int) (*os.File, error) {
	k.mustBeInside(p)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.logging {
		k.opened = append(k.opened, p)
	}
	if err := k.failOpen[p]; err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f, err := os.OpenFile(p, flag, 0)
	if err == nil {
		k.files = append(k.files, f)
	}
	return f, err
}

// openNow lists the files openFile returned that are still open.
func (k *fakeKernel) openNow() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, f := range k.files {
		if f.Fd() != ^uintptr(0) {
			out = append(out, f.Name())
		}
	}
	return out
}

func (k *fakeKernel) chown(p string, uid, gid int) error {
	k.mustBeInside(p)
	k.mu.Lock()
	if k.logging {
		k.chowned = append(k.chowned, fmt.Sprintf("%s %d:%d", p, uid, gid))
	}
	k.mu.Unlock()
	return os.Lchown(p, uid, gid)
}

func (k *fakeKernel) owner(p string) ([2]int, error) {
	k.mustBeInside(p)
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return [2]int{-1, -1}, &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return [2]int{int(st.Uid), int(st.Gid)}, nil
}

func (k *fakeKernel) exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func (k *fakeKernel) subdirs(p string) ([]string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, err := os.Stat(p); err != nil {
		return nil, err
	}
	return k.subdirsLocked(p), nil
}

func (k *fakeKernel) subdirsLocked(p string) []string {
	ents, _ := os.ReadDir(p)
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

func (k *fakeKernel) kill(pid int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killLocked(pid)
	return nil
}

func (k *fakeKernel) killLocked(pid int) {
	k.killed = append(k.killed, pid)
	if k.immortal[pid] {
		return
	}
	k.removeEverywhere(pid)
}

func (k *fakeKernel) release() string { return k.releaseStr }

// --- processes ---

// place moves pid into dir, out of every other group of dir's hierarchy.
func (k *fakeKernel) place(pid int, dir string) {
	m := k.mountOf(dir)
	k.walkProcs(m.point, func(file string, pids []int) {
		if i := slices.Index(pids, pid); i >= 0 {
			k.setPIDs(file, slices.Delete(pids, i, i+1))
		}
	})
	procs := path.Join(dir, "cgroup.procs")
	k.setPIDs(procs, append(k.pidList(procs), pid))
	if pid == os.Getpid() {
		k.writeSelfCgroup()
	}
}

// put places pid in each of dirs, as a test's stand-in for a process that
// joined them.
func (k *fakeKernel) put(pid int, dirs ...string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, d := range dirs {
		k.place(pid, d)
	}
}

func (k *fakeKernel) removeEverywhere(pid int) {
	k.walkProcs(k.root, func(file string, pids []int) {
		if i := slices.Index(pids, pid); i >= 0 {
			k.setPIDs(file, slices.Delete(pids, i, i+1))
		}
	})
}

func (k *fakeKernel) walkProcs(top string, fn func(file string, pids []int)) {
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Name() == "cgroup.procs" {
			fn(p, k.pidList(p))
		}
		return nil
	})
	if err != nil {
		k.t.Fatal(err)
	}
}

func (k *fakeKernel) pidsIn(dir string) []int { return k.pidList(path.Join(dir, "cgroup.procs")) }

func (k *fakeKernel) treePIDs(dir string) []int {
	var all []int
	if _, err := os.Stat(dir); err != nil {
		return nil
	}
	k.walkProcs(dir, func(_ string, pids []int) { all = append(all, pids...) })
	return all
}

func (k *fakeKernel) pidList(file string) []int {
	var out []int
	for _, f := range strings.Fields(k.read(file)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			k.t.Fatalf("%s: %v", file, err)
		}
		out = append(out, n)
	}
	return out
}

func (k *fakeKernel) setPIDs(file string, pids []int) {
	var b strings.Builder
	for _, p := range pids {
		fmt.Fprintf(&b, "%d\n", p)
	}
	k.set(file, b.String())
	if tasks := path.Join(path.Dir(file), "tasks"); k.exists(tasks) {
		k.set(tasks, b.String())
	}
}

// writeSelfCgroup regenerates the self-cgroup file from where this process
// sits in each hierarchy.
func (k *fakeKernel) writeSelfCgroup() {
	self := os.Getpid()
	ms := slices.Clone(k.mounts)
	sort.Slice(ms, func(i, j int) bool { return ms[i].id > ms[j].id })
	var b strings.Builder
	for _, m := range ms {
		cg := ""
		k.walkProcs(m.point, func(file string, pids []int) {
			if slices.Contains(pids, self) {
				rel := strings.TrimPrefix(path.Dir(file), m.point)
				cg = path.Join(m.rootField, "/"+rel)
			}
		})
		if cg == "" {
			k.t.Fatalf("this process is in no group of %s", m.point)
		}
		name := strings.Join(m.controllers, ",")
		if m.v2 {
			name = ""
		}
		fmt.Fprintf(&b, "%d:%s:%s\n", m.id, name, cg)
	}
	k.set(path.Join(k.base, "self-cgroup"), b.String())
}

// --- file helpers ---

func (k *fakeKernel) mustBeInside(p string) {
	if p != k.root && !strings.HasPrefix(p, k.root+"/") {
		k.t.Errorf("access outside the fake cgroupfs: %s", p)
	}
}

func (k *fakeKernel) read(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return string(b)
}

func (k *fakeKernel) set(p, v string) {
	// In place (truncate and write), so open files see the new text.
	if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
		k.t.Fatal(err)
	}
}

func (k *fakeKernel) fields(p string) []string { return strings.Fields(k.read(p)) }

func num(s string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return n
}

// --- building fake hosts ---

type fakeOpts struct {
	omit    []string // control files the kernel lacks
	release string   // default "6.18.0"
	// v2 only:
	ownPath  string // own group; default "/system.slice/sandboxd.service"
	offered  string // controllers the root offers; default "cpu io memory pids"
	ownProcs []int  // more processes in our own group besides us
}

// newFakeHost builds a fake host of the given mode and returns the kernel
// and a Config pointing at it.
//
//	v2:     cgroup2 at root; we sit in opts.ownPath
//	v1:     cpu,cpuacct mounted with root field /docker (we are in /docker/x),
//	        memory (we are nested in /process_api/abc), pids, freezer, devices
//	hybrid: cpu, cpuacct, memory (nested), pids, freezer separately, and a
//	        controller-less cgroup2 at root/unified; all at "/" but memory
func newFakeHost(t *testing.T, mode Mode, opts fakeOpts) (*fakeKernel, Config) {
	t.Helper()
	base := t.TempDir()
	k := &fakeKernel{
		t: t, base: base, root: path.Join(base, "cgroup"),
		releaseStr: "6.18.0", omit: map[string]bool{}, failWrite: map[string]error{}, failOpen: map[string]error{}, immortal: map[int]bool{},
	}
	if opts.release != "" {
		k.releaseStr = opts.release
	}
	for _, f := range opts.omit {
		k.omit[f] = true
	}
	if err := os.Mkdir(k.root, 0o755); err != nil {
		t.Fatal(err)
	}
	mountinfo := []string{
		"22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw",
		"23 22 0:5 / /proc rw,nosuid - proc proc rw",
	}
	self := os.Getpid()
	// own places us in the group cgPath of mount m, creating the groups on
	// the way with the fake's mkdir.
	own := func(m *fakeMount, cgPath string) string {
		rel := strings.TrimPrefix(cgPath, m.rootField)
		dir := m.point
		for _, el := range strings.Split(strings.Trim(rel, "/"), "/") {
			if el == "" {
				continue
			}
			if m.v2 {
				// Parents hand every offered controller down.
				k.set(path.Join(dir, "cgroup.subtree_control"), strings.Join(m.controllers, " ")+"\n")
			}
			dir = path.Join(dir, el)
			if err := k.mkdirLocked(dir); err != nil {
				t.Fatal(err)
			}
		}
		k.place(self, dir)
		return dir
	}
	addV2 := func(point, cgPath string, offered []string) {
		m := &fakeMount{id: 0, point: point, rootField: "/", v2: true, controllers: offered}
		k.mounts = append(k.mounts, m)
		if err := os.MkdirAll(point, 0o755); err != nil {
			t.Fatal(err)
		}
		// The root group: no cgroup.type, no cgroup.kill or freeze.
		for f, v := range map[string]string{
			"cgroup.controllers": strings.Join(offered, " ") + "\n", "cgroup.subtree_control": "\n",
			"cgroup.procs": "1\n", "cgroup.stat": "", "cpu.stat": "usage_usec 0\n",
		} {
			k.set(path.Join(point, f), v)
		}
		mountinfo = append(mountinfo, fmt.Sprintf("40 30 0:37 / %s rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate", point))
		own(m, cgPath)
	}
	addV1 := func(id int, name, rootField, cgPath string) {
		point := path.Join(k.root, name)
		m := &fakeMount{id: id, point: point, rootField: rootField, controllers: strings.Split(name, ",")}
		k.mounts = append(k.mounts, m)
		if err := os.Mkdir(point, 0o755); err != nil {
			t.Fatal(err)
		}
		k.populate(point)
		k.set(path.Join(point, "cgroup.procs"), "1\n")
		mountinfo = append(mountinfo, fmt.Sprintf("%d 30 0:%d %s %s rw,nosuid,nodev,noexec,relatime shared:%d - cgroup cgroup rw,%s",
			30+id, 27+id, rootField, point, 10+id, name))
		own(m, cgPath)
	}
	switch mode {
	case ModeV2:
		if opts.ownPath == "" {
			opts.ownPath = "/system.slice/sandboxd.service"
		}
		if opts.offered == "" {
			opts.offered = "cpu io memory pids"
		}
		addV2(k.root, opts.ownPath, strings.Fields(opts.offered))
		for _, p := range opts.ownProcs {
			ownDir := path.Join(k.root, opts.ownPath)
			k.place(p, ownDir)
		}
	case ModeV1, ModeHybrid:
		mountinfo = append(mountinfo, fmt.Sprintf("30 22 0:27 / %s rw,relatime - tmpfs tmpfs rw,mode=755", k.root))
		if mode == ModeV1 {
			addV1(2, "cpu,cpuacct", "/docker", "/docker/x")
		} else {
			addV1(1, "cpu", "/", "/")
			addV1(2, "cpuacct", "/", "/")
		}
		addV1(4, "memory", "/", "/process_api/abc")
		addV1(5, "devices", "/", "/")
		addV1(6, "freezer", "/", "/")
		addV1(8, "pids", "/", "/")
		if mode == ModeHybrid {
			addV2(path.Join(k.root, "unified"), "/", nil)
		}
	}
	k.set(path.Join(base, "mountinfo"), strings.Join(mountinfo, "\n")+"\n")
	k.writeSelfCgroup()
	k.logging = true
	return k, Config{
		Root:       k.root,
		MountInfo:  path.Join(base, "mountinfo"),
		SelfCgroup: path.Join(base, "self-cgroup"),
		Subtree:    "sandboxd",
	}
}

// resetLog forgets the operations recorded so far.
func (k *fakeKernel) resetLog() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.writes, k.refused, k.mkdirs, k.rmdirs, k.killed, k.opened, k.chowned = nil, nil, nil, nil, nil, nil, nil
}

// rel shortens the fake's paths to the part below root, for messages and
// expectations.
func (k *fakeKernel) rel(p string) string { return strings.TrimPrefix(p, k.root) }

func (k *fakeKernel) relWrites() []string {
	var out []string
	for _, w := range k.writes {
		out = append(out, k.rel(w.path)+" <- "+w.value)
	}
	return out
}

func (k *fakeKernel) relPaths(ps []string) []string {
	var out []string
	for _, p := range ps {
		out = append(out, k.rel(p))
	}
	return out
}

// value reads a control file below root, trimmed.
func (k *fakeKernel) value(rel string) string {
	return strings.TrimSpace(k.read(path.Join(k.root, rel)))
}

func (k *fakeKernel) fileExists(rel string) bool { return k.exists(path.Join(k.root, rel)) }

var errInjected = errors.New("injected")
