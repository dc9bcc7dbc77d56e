package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Tier 2: Open, NewSandbox (and its steps), stats, Kill and Destroy against fake cgroupfs trees
// in a temp dir, asserting exactly which files got which values.

func openFake(t *testing.T, k *fakeKernel, cfg Config) *Manager {
	t.Helper()
	m, err := open(cfg, k)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	m.killTimeout = 100 * time.Millisecond
	return m
}

func wantStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

// assertWritesUnder fails for any write outside the allowed prefixes.
func assertWritesUnder(t *testing.T, k *fakeKernel, allowed ...string) {
	t.Helper()
	for _, w := range append(slices.Clone(k.writes), k.refused...) {
		r := k.rel(w.path)
		if !slices.ContainsFunc(allowed, func(a string) bool { return r == a || strings.HasPrefix(r, a+"/") }) {
			t.Errorf("write outside our subtree: %s <- %q", r, w.value)
		}
	}
	for _, d := range k.mkdirs {
		r := k.rel(d)
		if !slices.ContainsFunc(allowed, func(a string) bool { return r == a || strings.HasPrefix(r, a+"/") }) {
			t.Errorf("mkdir outside our subtree: %s", r)
		}
	}
}

func fileNames(files []*os.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name())
		f.Close()
	}
	return out
}

func TestFakeV2(t *testing.T) {
	k, cfg := newFakeHost(t, ModeV2, fakeOpts{})
	const own = "/system.slice/sandboxd.service"
	const s = own + "/sandboxd"
	inits := s + "/_inits-" + strconv.Itoa(os.Getpid())
	m := openFake(t, k, cfg)

	// Open: enabling controllers in our own group fails while we sit in it,
	// so we move into the -self leaf and try again; cpu goes separately.
	wantStrings(t, "Open's refused writes", k.relPaths([]string{k.refused[0].path}), []string{own + "/cgroup.subtree_control"})
	wantStrings(t, "Open's writes", k.relWrites(), []string{
		own + "/sandboxd-self/cgroup.procs <- " + strconv.Itoa(os.Getpid()),
		own + "/cgroup.subtree_control <- +memory +pids",
		own + "/cgroup.subtree_control <- +cpu",
		s + "/cgroup.subtree_control <- +cpu +memory +pids",
	})
	wantStrings(t, "Open's mkdirs", k.relPaths(k.mkdirs), []string{own + "/sandboxd-self", s, inits})
	assertWritesUnder(t, k, own)
	if got := k.value(own + "/cgroup.procs"); got != "" {
		t.Errorf("own group still holds %q", got)
	}
	if got := k.value(own + "/sandboxd-self/cgroup.procs"); got != strconv.Itoa(os.Getpid()) {
		t.Errorf("-self leaf holds %q", got)
	}
	if got := k.value(own + "/cgroup.subtree_control"); got != "cpu memory pids" {
		t.Errorf("own subtree_control = %q", got)
	}
	if m.Mode() != ModeV2 {
		t.Errorf("mode = %s", m.Mode())
	}
	wantStrings(t, "Controllers", m.Controllers(), []string{"cpu", "memory", "pids"})
	if want := (Features{CgroupKill: true, CloneIntoCgroup: true, MemoryPeak: true, PIDsPeak: true, SwapLimit: true, OOMGroup: true, CPULimit: true, SocketLimit: true}); m.Features() != want {
		t.Errorf("features = %+v, want %+v", m.Features(), want)
	}
	if want := map[string]string{"unified": k.root + s}; !reflect.DeepEqual(m.Paths(), want) {
		t.Errorf("paths = %v", m.Paths())
	}

	k.resetLog()
	g, err := m.create("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8, CPUQuota: 150 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// One leaf, the program's, with the limits; the init goes to the
	// inits' group, made at Open.
	wantStrings(t, "create's mkdirs", k.relPaths(k.mkdirs), []string{s + "/r1"})
	wantStrings(t, "create's writes", k.relWrites(), []string{
		s + "/r1/memory.swap.max <- 0",
		s + "/r1/memory.oom.group <- 1",
		s + "/r1/cpu.max <- 150000 100000",
		s + "/r1/memory.max <- 33554432",
		s + "/r1/pids.max <- 8",
	})
	assertWritesUnder(t, k, s+"/r1")
	if got := k.value(inits + "/memory.max"); got != "max" {
		t.Errorf("the inits' group got a memory limit: %q", got)
	}

	// A group made ahead gets its run's limits later; zero keeps one.
	k.resetLog()
	if err := g.SetLimits(Limits{PIDs: 20}); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "SetLimits' writes", k.relWrites(), []string{s + "/r1/pids.max <- 20"})
	if err := g.SetLimits(Limits{MemoryBytes: -1}); err == nil {
		t.Error("SetLimits took a negative memory limit")
	}
	for _, q := range []time.Duration{-time.Millisecond, 999 * time.Microsecond, 1500*time.Nanosecond + time.Millisecond} {
		if err := g.SetLimits(Limits{CPUQuota: q}); err == nil {
			t.Errorf("SetLimits took a CPU quota of %v", q)
		}
	}

	files, err := g.procsJoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "procsJoinFiles", k.relPaths(fileNames(files)), []string{s + "/r1/cgroup.procs"})
	dir, err := g.initDir()
	if err != nil {
		t.Fatal(err)
	}
	if k.rel(dir.Name()) != inits {
		t.Errorf("initDir = %s", dir.Name())
	}
	dir.Close()

	// Stats come from the program's leaf.
	prog := path.Join(k.root, s, "r1")
	k.set(prog+"/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnice_usec 0\n")
	k.set(prog+"/memory.peak", "31457280\n")
	k.set(prog+"/memory.events", "low 0\nhigh 0\nmax 9\noom 1\noom_kill 2\noom_group_kill 1\n")
	k.set(prog+"/pids.peak", "7\n")
	if cpu, err := g.CPUUsage(); err != nil || cpu != 1500*time.Microsecond {
		t.Errorf("CPUUsage = %v, %v", cpu, err)
	}
	k.set(prog+"/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 30\nnr_throttled 20\nthrottled_usec 700000\n")
	if cpu, err := g.CPUUsage(); err != nil || cpu != 2500*time.Millisecond {
		t.Errorf("CPUUsage after more work = %v, %v (the kept file must be re-read)", cpu, err)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{CPU: 2500 * time.Millisecond, User: 2 * time.Second, System: 500 * time.Millisecond, MemoryPeak: 31457280, OOMKills: 2, MemoryLimitHits: 9, PIDsPeak: 7, Throttled: 700 * time.Millisecond}); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}
	// From MarkStart on, what was used before does not count.
	if err := g.MarkStart(); err != nil {
		t.Fatal(err)
	}
	k.set(prog+"/cpu.stat", "usage_usec 2600000\nuser_usec 2060000\nsystem_usec 540000\nnr_periods 31\nnr_throttled 21\nthrottled_usec 750000\n")
	if cpu, err := g.CPUUsage(); err != nil || cpu != 100*time.Millisecond {
		t.Errorf("CPUUsage after MarkStart = %v, %v; want 100ms", cpu, err)
	}
	if st, err := g.Stats(); err != nil || st.CPU != 100*time.Millisecond || st.User != 60*time.Millisecond || st.System != 40*time.Millisecond || st.Throttled != 50*time.Millisecond {
		t.Errorf("Stats after MarkStart = %+v, %v", st, err)
	}

	// Kill through cgroup.kill, then remove the leaf; the init, in
	// the inits' group, is not the run's to kill.
	k.put(4001, path.Join(k.root, inits))
	k.put(4002, prog)
	k.put(4003, prog)
	k.resetLog()
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "Destroy's writes", k.relWrites(), []string{s + "/r1/cgroup.kill <- 1"})
	wantStrings(t, "Destroy's rmdirs", k.relPaths(k.rmdirs), []string{s + "/r1"})
	if got := k.pidsIn(path.Join(k.root, inits)); !slices.Equal(got, []int{4001}) {
		t.Errorf("the inits' group holds %v after Destroy, want the init", got)
	}
	k.removeEverywhere(4001)
	if !k.fileExists(s) || k.fileExists(s+"/r1") {
		t.Error("Destroy removed the wrong directories")
	}
	if err := g.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
	if _, err := g.CPUUsage(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("CPUUsage after Destroy = %v, want ErrClosed", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if k.fileExists(s) || !k.fileExists(own+"/sandboxd-self") {
		t.Error("Close must remove the subtree and keep the -self leaf we live in")
	}

	// A second Open in this process finds us in the -self leaf: it treats
	// the leaf's parent as our own group and writes nothing there.
	k.resetLog()
	m2 := openFake(t, k, cfg)
	wantStrings(t, "second Open's writes", k.relWrites(), []string{s + "/cgroup.subtree_control <- +cpu +memory +pids"})
	wantStrings(t, "second Open's mkdirs", k.relPaths(k.mkdirs), []string{s, inits})
	if err := m2.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFakeV2OldKernel(t *testing.T) {
	// A 5.10 kernel: no cgroup.kill, memory.peak, pids.peak; and no swap
	// accounting.
	k, cfg := newFakeHost(t, ModeV2, fakeOpts{
		release: "5.10.0-28-amd64",
		omit:    []string{"cgroup.kill", "memory.peak", "pids.peak", "memory.swap.max"},
		offered: "memory pids",
	})
	m := openFake(t, k, cfg)
	if want := (Features{CloneIntoCgroup: true, OOMGroup: true, SocketLimit: true}); m.Features() != want {
		t.Errorf("features = %+v, want %+v", m.Features(), want)
	}
	wantStrings(t, "Controllers", m.Controllers(), []string{"memory", "pids"})
	const s = "/system.slice/sandboxd.service/sandboxd"
	// No cpu controller: a CPU rate limit cannot be had, and says so.
	if _, err := m.create("r0", Limits{CPUQuota: 100 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "cpu controller") {
		t.Errorf("create with a CPU quota and no cpu controller = %v", err)
	}
	k.resetLog()
	g, err := m.create("r1", Limits{MemoryBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "create's writes", k.relWrites(), []string{
		s + "/r1/memory.oom.group <- 1",
		s + "/r1/memory.max <- 1073741824",
	})
	prog := path.Join(k.root, s, "r1")
	k.set(prog+"/cpu.stat", "usage_usec 10\nuser_usec 6\nsystem_usec 4\n")
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{CPU: 10 * time.Microsecond, User: 6 * time.Microsecond, System: 4 * time.Microsecond}); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}

	// Without cgroup.kill: freeze, signal each process, thaw.
	k.put(5001, prog)
	k.put(5002, prog)
	k.resetLog()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "Kill's writes", k.relWrites(), []string{s + "/r1/cgroup.freeze <- 1", s + "/r1/cgroup.freeze <- 0"})
	if slices.Sort(k.killed); !slices.Equal(k.killed, []int{5001, 5002}) {
		t.Errorf("killed %v", k.killed)
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFakeV2OwnGroupIsRoot(t *testing.T) {
	// Our own group is the hierarchy's root (a container's cgroup
	// namespace, say). We never write to it: fine when the controllers are
	// enabled there already, an error otherwise.
	k, cfg := newFakeHost(t, ModeV2, fakeOpts{ownPath: "/"})
	_, err := open(cfg, k)
	if err == nil || !strings.Contains(err.Error(), "root group") {
		t.Fatalf("open = %v, want a refusal to write the root group", err)
	}
	if len(k.writes)+len(k.refused)+len(k.mkdirs) != 0 {
		t.Errorf("failed Open touched the host: writes %v refused %v mkdirs %v", k.writes, k.refused, k.mkdirs)
	}

	k.set(path.Join(k.root, "cgroup.subtree_control"), "cpu memory pids\n")
	m := openFake(t, k, cfg)
	wantStrings(t, "writes", k.relWrites(), []string{"/sandboxd/cgroup.subtree_control <- +cpu +memory +pids"})
	g, err := m.create("r1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFakeV2Refusals(t *testing.T) {
	t.Run("controllers not delegated", func(t *testing.T) {
		k, cfg := newFakeHost(t, ModeV2, fakeOpts{offered: "cpu io"})
		_, err := open(cfg, k)
		if err == nil || !strings.Contains(err.Error(), "controllers memory, pids are not available") {
			t.Fatalf("open = %v", err)
		}
		if len(k.writes)+len(k.refused)+len(k.mkdirs) != 0 {
			t.Errorf("failed Open touched the host")
		}
	})
	t.Run("someone else in our group", func(t *testing.T) {
		k, cfg := newFakeHost(t, ModeV2, fakeOpts{ownProcs: []int{777}})
		_, err := open(cfg, k)
		if err == nil || !strings.Contains(err.Error(), "[777]") || !errors.Is(err, syscall.EBUSY) {
			t.Fatalf("open = %v", err)
		}
		if len(k.writes)+len(k.mkdirs) != 0 {
			t.Errorf("failed Open changed the host: %v %v", k.writes, k.mkdirs)
		}
	})
}

func TestFakeV1(t *testing.T) {
	k, cfg := newFakeHost(t, ModeV1, fakeOpts{release: "4.19.0"})
	m := openFake(t, k, cfg)
	const (
		cpu = "/cpu,cpuacct/x/sandboxd"
		mem = "/memory/process_api/abc/sandboxd"
		frz = "/freezer/sandboxd"
		pid = "/pids/sandboxd"
	)
	if m.Mode() != ModeV1 {
		t.Fatalf("mode = %s", m.Mode())
	}
	wantStrings(t, "Controllers", m.Controllers(), []string{"cpu", "cpuacct", "freezer", "memory", "pids"})
	if want := (Features{MemoryPeak: true, PIDsPeak: true, SwapLimit: true, CPULimit: true, SocketLimit: true}); m.Features() != want {
		t.Errorf("features = %+v, want %+v", m.Features(), want)
	}
	if want := map[string]string{"cpu,cpuacct": k.root + cpu, "freezer": k.root + frz, "memory": k.root + mem, "pids": k.root + pid}; !reflect.DeepEqual(m.Paths(), want) {
		t.Errorf("paths = %v", m.Paths())
	}
	wantStrings(t, "Open's mkdirs", k.relPaths(k.mkdirs), []string{cpu, frz, mem, pid})
	wantStrings(t, "Open's writes", k.relWrites(), []string{mem + "/memory.swappiness <- 0"})

	k.resetLog()
	g, err := m.create("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "create's mkdirs", k.relPaths(k.mkdirs), []string{cpu + "/r1", frz + "/r1", mem + "/r1", pid + "/r1"})
	wantStrings(t, "create's writes", k.relWrites(), []string{
		mem + "/r1/memory.limit_in_bytes <- 33554432",
		mem + "/r1/memory.memsw.limit_in_bytes <- 33554432",
		mem + "/r1/memory.kmem.tcp.limit_in_bytes <- 33554432",
		pid + "/r1/pids.max <- 8",
	})
	if got := k.value(mem + "/r1/memory.swappiness"); got != "0" {
		t.Errorf("run's swappiness = %q, want 0 inherited from the subtree", got)
	}
	files, err := g.procsJoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "procsJoinFiles", k.relPaths(fileNames(files)), []string{
		cpu + "/r1/cgroup.procs", frz + "/r1/cgroup.procs", mem + "/r1/cgroup.procs", pid + "/r1/cgroup.procs",
	})
	if dir, err := g.initDir(); dir != nil || err != nil {
		t.Errorf("initDir on v1 = %v, %v; want nil, nil", dir, err)
	}

	k.set(k.root+cpu+"/r1/cpuacct.usage", "1500000000\n")
	k.set(k.root+cpu+"/r1/cpuacct.usage_user", "1000000000\n")
	k.set(k.root+cpu+"/r1/cpuacct.usage_sys", "500000000\n")
	k.set(k.root+cpu+"/r1/cpu.stat", "nr_periods 9\nnr_throttled 4\nthrottled_time 250000000\n")
	k.set(k.root+mem+"/r1/memory.max_usage_in_bytes", "33554432\n")
	k.set(k.root+mem+"/r1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	k.set(k.root+pid+"/r1/pids.peak", "8\n")
	k.set(k.root+mem+"/r1/memory.failcnt", "3\n")
	k.set(k.root+mem+"/r1/memory.memsw.failcnt", "2\n")
	if cpuUsed, err := g.CPUUsage(); err != nil || cpuUsed != 1500*time.Millisecond {
		t.Errorf("CPUUsage = %v, %v", cpuUsed, err)
	}
	if n, err := g.OOMKills(); err != nil || n != 1 {
		t.Errorf("OOMKills = %v, %v", n, err)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{CPU: 1500 * time.Millisecond, User: time.Second, System: 500 * time.Millisecond, MemoryPeak: 32 << 20, OOMKills: 1, MemoryLimitHits: 5, PIDsPeak: 8, Throttled: 250 * time.Millisecond}); st != want {
		t.Errorf("stats = %+v, want %+v", st, want)
	}

	// Kill with the freezer: FROZEN, signal, THAWED.
	for _, p := range []int{6001, 6002} {
		k.put(p, k.root+cpu+"/r1", k.root+frz+"/r1", k.root+mem+"/r1", k.root+pid+"/r1")
	}
	k.resetLog()
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "Destroy's writes", k.relWrites(), []string{frz + "/r1/freezer.state <- FROZEN", frz + "/r1/freezer.state <- THAWED"})
	wantStrings(t, "Destroy's rmdirs", k.relPaths(k.rmdirs), []string{cpu + "/r1", frz + "/r1", mem + "/r1", pid + "/r1"})
	if slices.Sort(k.killed); !slices.Equal(k.killed, []int{6001, 6002}) {
		t.Errorf("killed %v", k.killed)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{cpu, frz, mem, pid} {
		if k.fileExists(d) {
			t.Errorf("%s left behind", d)
		}
	}
}

func TestFakeHybrid(t *testing.T) {
	k, cfg := newFakeHost(t, ModeHybrid, fakeOpts{omit: []string{"pids.peak"}})
	m := openFake(t, k, cfg)
	// cpuacct is mounted, but the unified tree's cpu.stat is the CPU
	// clock: no cpuacct group is made.
	const (
		uni = "/unified/sandboxd"
		cpu = "/cpu/sandboxd"
		mem = "/memory/process_api/abc/sandboxd"
		pid = "/pids/sandboxd"
	)
	inits := uni + "/_inits-" + strconv.Itoa(os.Getpid())
	if m.Mode() != ModeHybrid {
		t.Fatalf("mode = %s", m.Mode())
	}
	wantStrings(t, "Controllers", m.Controllers(), []string{"cpu", "memory", "pids"})
	if want := (Features{CgroupKill: true, CloneIntoCgroup: true, MemoryPeak: true, SwapLimit: true, CPULimit: true, SocketLimit: true}); m.Features() != want {
		t.Errorf("features = %+v, want %+v", m.Features(), want)
	}
	wantStrings(t, "Open's mkdirs", k.relPaths(k.mkdirs), []string{uni, cpu, mem, pid, inits})
	wantStrings(t, "Open's writes", k.relWrites(), []string{mem + "/memory.swappiness <- 0"})

	k.resetLog()
	g, err := m.create("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8, CPUQuota: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// One cgroup2 group, the program's; the init goes to the inits' group.
	wantStrings(t, "create's mkdirs", k.relPaths(k.mkdirs), []string{uni + "/r1", cpu + "/r1", mem + "/r1", pid + "/r1"})
	wantStrings(t, "create's writes", k.relWrites(), []string{
		cpu + "/r1/cpu.cfs_quota_us <- 50000",
		mem + "/r1/memory.limit_in_bytes <- 33554432",
		mem + "/r1/memory.memsw.limit_in_bytes <- 33554432",
		mem + "/r1/memory.kmem.tcp.limit_in_bytes <- 33554432",
		pid + "/r1/pids.max <- 8",
	})
	files, err := g.procsJoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "procsJoinFiles", k.relPaths(fileNames(files)), []string{
		uni + "/r1/cgroup.procs", cpu + "/r1/cgroup.procs", mem + "/r1/cgroup.procs", pid + "/r1/cgroup.procs",
	})
	dir, err := g.initDir()
	if err != nil || k.rel(dir.Name()) != inits {
		t.Fatalf("initDir = %v, %v", dir, err)
	}
	dir.Close()
	// The program cloned into its group by the init, which may do so once
	// it has that group's cgroup.procs and the subtree's (the common
	// ancestor); then only v1 to join, by thread.
	if dir, err = g.openDir(g.prog, "program"); err != nil || k.rel(dir.Name()) != uni+"/r1" {
		t.Fatalf("program dir = %v, %v", dir, err)
	}
	dir.Close()
	k.resetLog()
	if err := g.delegateJoin(4242, 4343); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "delegateJoin's chowns", k.relPaths(k.chowned), []string{
		uni + "/cgroup.procs 4242:4343", uni + "/r1/cgroup.procs 4242:4343",
	})
	files, err = g.threadJoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "threadJoinFiles", k.relPaths(fileNames(files)), []string{cpu + "/r1/tasks", mem + "/r1/tasks", pid + "/r1/tasks"})

	k.set(k.root+uni+"/r1/cpu.stat", "usage_usec 42\nuser_usec 40\nsystem_usec 2\n")
	if cpuUsed, err := g.CPUUsage(); err != nil || cpuUsed != 42*time.Microsecond {
		t.Errorf("CPUUsage = %v, %v", cpuUsed, err)
	}
	// The throttled time is the v1 cpu group's: the unified tree has no
	// controller.
	k.set(k.root+cpu+"/r1/cpu.stat", "nr_periods 3\nnr_throttled 2\nthrottled_time 80000000\n")
	if st, err := g.Stats(); err != nil || st.PIDsPeak != 0 || st.Throttled != 80*time.Millisecond {
		t.Errorf("stats = %+v, %v; PIDsPeak must be 0 without pids.peak, Throttled 80ms", st, err)
	}

	// The program in the unified group and every v1 group; a stray joined
	// only v1 groups.
	k.put(7002, k.root+uni+"/r1", k.root+mem+"/r1", k.root+pid+"/r1")
	k.put(7003, k.root+mem+"/r1")
	k.resetLog()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if slices.Sort(k.killed); !slices.Equal(k.killed, []int{7002, 7003}) {
		t.Errorf("killed %v", k.killed)
	}
	if w := k.relWrites(); len(w) == 0 || w[0] != uni+"/r1/cgroup.kill <- 1" {
		t.Errorf("Kill's writes = %q", w)
	}
	assertWritesUnder(t, k, uni+"/r1")
	k.resetLog()
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantStrings(t, "Destroy's rmdirs", k.relPaths(k.rmdirs), []string{uni + "/r1", cpu + "/r1", mem + "/r1", pid + "/r1"})
	wantStrings(t, "Destroy's writes after Kill", k.relWrites(), nil)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// Another sandboxd process on the same subtree removed it, empty, when it
// stopped: the next create makes it again.
func TestFakeCreateRemakesTheSubtree(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeV1, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			m := openFake(t, k, cfg)
			hs := m.hierarchies()
			// One hierarchy, then all of them; the cgroup2 one with the
			// inits' group in it, as if someone removed both.
			for _, gone := range [][]*hierarchy{hs[len(hs)-1:], hs} {
				for _, h := range gone {
					if h.v2 {
						if err := k.rmdir(m.inits); err != nil {
							t.Fatal(err)
						}
					}
					if err := k.rmdir(h.dir); err != nil {
						t.Fatal(err)
					}
				}
				g, err := m.create("r1", Limits{MemoryBytes: 1 << 20, PIDs: 4})
				if err != nil {
					t.Fatalf("create after the subtree went: %v", err)
				}
				for _, h := range hs {
					if !k.exists(h.dir) {
						t.Errorf("%s not made again", h.dir)
					}
				}
				if m.inits != "" && !k.exists(m.inits) {
					t.Errorf("%s not made again", m.inits)
				}
				if err := g.Destroy(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// Another sandboxd process on the same subtree removes it, empty, just as
// this one made it and is about to make its inits' group in it: Open
// makes it again.
func TestFakeOpenWhileTheSubtreeGoes(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			removed := 0
			k.beforeMkdir = func(p string) {
				if strings.HasPrefix(path.Base(p), initsPrefix) && removed < 2 {
					removed++
					if err := k.rmdir(path.Dir(p)); err != nil {
						t.Errorf("the other process's rmdir: %v", err)
					}
				}
			}
			m := openFake(t, k, cfg)
			k.beforeMkdir = nil
			if removed != 2 || !k.exists(m.inits) {
				t.Fatalf("subtree removed %d times; inits' group %s there: %v", removed, m.inits, k.exists(m.inits))
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A killed daemon's inits' group is removed by the next Open in its
// subtree, its last init (still exiting) killed; a live process's stays.
func TestFakeOpenRemovesDeadInits(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			m := openFake(t, k, cfg)
			s := m.unified.dir
			// A pid that is gone: a process that ran and was reaped.
			gone := exec.Command("true")
			if err := gone.Run(); err != nil {
				t.Fatal(err)
			}
			dead := path.Join(s, initsPrefix+strconv.Itoa(gone.Process.Pid))
			live := path.Join(s, initsPrefix+"1") // pid 1 never goes
			for _, d := range []string{dead, live} {
				if err := k.mkdir(d); err != nil {
					t.Fatal(err)
				}
			}
			k.put(6001, dead)
			m2 := openFake(t, k, cfg)
			if k.exists(dead) || !slices.Contains(k.killed, 6001) {
				t.Errorf("the dead daemon's group: there %v; killed %v", k.exists(dead), k.killed)
			}
			if !k.exists(live) {
				t.Error("a live process's inits' group was removed")
			}
			if err := k.rmdir(live); err != nil {
				t.Fatal(err)
			}
			if err := m2.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Fresh says whether Open made the subtree in every hierarchy: only then
// can nothing of an earlier process be in it.
func TestFakeOpenFresh(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeV1, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			m := openFake(t, k, cfg)
			if !m.Fresh() {
				t.Error("Fresh = false after Open made the subtree")
			}
			m2 := openFake(t, k, cfg) // the subtree is there: not made afresh
			if m2.Fresh() {
				t.Error("Fresh = true with the subtree already there")
			}
			if err := m2.Close(); err != nil {
				t.Fatal(err)
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
			// One hierarchy's subtree left behind (a process killed while
			// it removed the others): not fresh.
			hs := m.hierarchies()
			if err := k.mkdir(hs[len(hs)-1].dir); err != nil {
				t.Fatal(err)
			}
			m3 := openFake(t, k, cfg)
			if m3.Fresh() {
				t.Errorf("Fresh = %v with %s already there", m3.Fresh(), hs[len(hs)-1].dir)
			}
			if err := m3.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFakeCreateFailureLeavesNothing(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeV1, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			m := openFake(t, k, cfg)
			pidsMax := path.Join(m.Paths()["pids"], "r1", "pids.max")
			if mode == ModeV2 {
				pidsMax = path.Join(m.Paths()["unified"], "r1", "pids.max")
			}
			k.failWrite[pidsMax] = syscall.EINVAL
			g, err := m.create("r1", Limits{MemoryBytes: 1 << 20, PIDs: 4})
			if g != nil || err == nil {
				t.Fatalf("create = %v, %v; want an error", g, err)
			}
			if want := "write " + pidsMax + ": invalid argument"; !strings.Contains(err.Error(), want) || !errors.Is(err, syscall.EINVAL) {
				t.Errorf("error %q does not say %q", err, want)
			}
			if left, err := m.Leftovers(); err != nil || len(left) != 0 {
				t.Errorf("Leftovers = %v, %v", left, err)
			}
			if err := g.Destroy(); err != nil { // a nil *Group
				t.Errorf("Destroy after failed create: %v", err)
			}
			delete(k.failWrite, pidsMax)

			// A name in use is refused and the existing group is kept.
			g, err = m.create("r1", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.create("r1", Limits{}); !errors.Is(err, os.ErrExist) {
				t.Errorf("second create(r1) = %v, want ErrExist", err)
			}
			if left, _ := m.Leftovers(); !slices.Equal(left, []string{"r1"}) {
				t.Errorf("Leftovers = %v; the first r1 must survive", left)
			}
			if err := g.Destroy(); err != nil {
				t.Fatal(err)
			}
			for _, bad := range []string{"", "../x", "a/b", ".", "-"} {
				if _, err := m.create(bad, Limits{}); !errors.Is(err, ErrInvalidName) {
					t.Errorf("create(%q) = %v", bad, err)
				}
			}
			if _, err := m.create("ok", Limits{PIDs: -1}); err == nil {
				t.Error("negative limit accepted")
			}
			if err := m.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFakeLeftoversAndRemove(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeV1, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			m := openFake(t, k, cfg)
			for _, n := range []string{"b", "a"} {
				if _, err := m.create(n, Limits{PIDs: 3}); err != nil {
					t.Fatal(err)
				}
			}
			// A previous daemon's run with a process still in it.
			var dirs []string
			for _, p := range m.Paths() {
				dirs = append(dirs, path.Join(p, "a"))
			}
			k.put(8001, dirs...)

			m2 := openFake(t, k, cfg) // the restarted daemon
			left, err := m2.Leftovers()
			if err != nil || !slices.Equal(left, []string{"a", "b"}) {
				t.Fatalf("Leftovers = %v, %v", left, err)
			}
			for _, n := range left {
				if err := m2.Remove(n); err != nil {
					t.Fatal(err)
				}
				if err := m2.Remove(n); err != nil {
					t.Errorf("second Remove(%s): %v", n, err)
				}
			}
			if !slices.Contains(k.killed, 8001) {
				t.Errorf("Remove did not kill 8001: %v", k.killed)
			}
			if left, _ := m2.Leftovers(); len(left) != 0 {
				t.Errorf("Leftovers after Remove = %v", left)
			}
			if err := m2.Remove("../etc"); !errors.Is(err, ErrInvalidName) {
				t.Errorf("Remove(../etc) = %v", err)
			}
			if err := m2.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestFakeKillSurvivor(t *testing.T) {
	k, cfg := newFakeHost(t, ModeHybrid, fakeOpts{})
	m := openFake(t, k, cfg)
	m.killTimeout = 20 * time.Millisecond
	g, err := m.create("r1", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	prog := path.Join(m.Paths()["unified"], "r1")
	k.put(9001, prog)
	k.immortal[9001] = true
	err = g.Kill()
	if !errors.Is(err, ErrSurvivors) || !strings.Contains(err.Error(), "[9001]") {
		t.Errorf("Kill = %v, want ErrSurvivors naming 9001", err)
	}
	if err := g.Destroy(); err == nil {
		t.Error("Destroy with a survivor succeeded")
	}
	if !k.exists(prog) {
		t.Error("the survivor's group was removed")
	}
	delete(k.immortal, 9001)
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestFakeOpenErrors(t *testing.T) {
	k, cfg := newFakeHost(t, ModeHybrid, fakeOpts{})
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"no subtree", func(c *Config) { c.Subtree = "" }, "Config.Subtree"},
		{"subtree with slash", func(c *Config) { c.Subtree = "a/b" }, "Config.Subtree"},
		{"nothing mounted there", func(c *Config) { c.Root = "/nowhere" }, "no cgroup or cgroup2 filesystem mounted at or under /nowhere"},
		{"no mountinfo", func(c *Config) { c.MountInfo = path.Join(k.base, "missing") }, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			tc.edit(&c)
			if _, err := open(c, k); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("open = %v, want %q", err, tc.want)
			}
		})
	}

	// v1 without a pids hierarchy: say so.
	mi := k.read(cfg.MountInfo)
	var kept []string
	for _, l := range strings.Split(mi, "\n") {
		if !strings.HasSuffix(l, "rw,pids") && !strings.Contains(l, "cgroup2") {
			kept = append(kept, l)
		}
	}
	k.set(cfg.MountInfo, strings.Join(kept, "\n"))
	if _, err := open(cfg, k); err == nil || !strings.Contains(err.Error(), "no v1 pids hierarchy") {
		t.Errorf("open without pids = %v", err)
	}
}

// After preopen, a step's reads (MarkStart, the polls, Stats) open nothing:
// every control file they read is kept open from before the run.
func TestFakePreopenLeavesNothingToOpen(t *testing.T) {
	for _, mode := range []Mode{ModeV2, ModeV1, ModeHybrid} {
		t.Run(string(mode), func(t *testing.T) {
			k, cfg := newFakeHost(t, mode, fakeOpts{})
			m := openFake(t, k, cfg)
			g, err := m.create("r1", Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if err := g.preopen(); err != nil {
				t.Fatal(err)
			}
			k.resetLog()
			if err := g.MarkStart(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.CPUUsage(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.OOMKills(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.Stats(); err != nil {
				t.Fatal(err)
			}
			wantStrings(t, "files opened during the run", k.relPaths(k.opened), nil)
			if err := g.Destroy(); err != nil {
				t.Fatal(err)
			}
			if _, err := g.CPUUsage(); !errors.Is(err, os.ErrClosed) {
				t.Errorf("CPUUsage after Destroy: %v, want ErrClosed", err)
			}
		})
	}
}

// TestFakeSetLimitsWritesOnlyChanges: a group made with a profile's
// limits costs a run that keeps them no write, and on v1 a changed memory
// limit goes to memory and memsw in the order the kernel accepts (memsw
// never below memory).
func TestFakeSetLimitsWritesOnlyChanges(t *testing.T) {
	k, cfg := newFakeHost(t, ModeV1, fakeOpts{release: "4.19.0"})
	m := openFake(t, k, cfg)
	const mem, pid, cpu = "/memory/process_api/abc/sandboxd/r1", "/pids/sandboxd/r1", "/cpu,cpuacct/x/sandboxd/r1"
	g, err := m.create("r1", Limits{MemoryBytes: 32 << 20, PIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		lim  Limits
		want []string
	}{
		{Limits{MemoryBytes: 32 << 20, PIDs: 8}, nil},
		{Limits{}, nil},
		{Limits{MemoryBytes: 64 << 20, PIDs: 8}, []string{
			mem + "/memory.memsw.limit_in_bytes <- 67108864",
			mem + "/memory.limit_in_bytes <- 67108864",
			mem + "/memory.kmem.tcp.limit_in_bytes <- 67108864",
		}},
		{Limits{MemoryBytes: 16 << 20, PIDs: 4}, []string{
			mem + "/memory.limit_in_bytes <- 16777216",
			mem + "/memory.memsw.limit_in_bytes <- 16777216",
			mem + "/memory.kmem.tcp.limit_in_bytes <- 16777216",
			pid + "/pids.max <- 4",
		}},
		{Limits{MemoryBytes: 16 << 20, PIDs: 4}, nil},
		{Limits{CPUQuota: 250 * time.Millisecond}, []string{cpu + "/cpu.cfs_quota_us <- 250000"}},
		{Limits{MemoryBytes: 16 << 20, CPUQuota: 250 * time.Millisecond}, nil},
		{Limits{CPUQuota: time.Millisecond}, []string{cpu + "/cpu.cfs_quota_us <- 1000"}},
	} {
		k.resetLog()
		if err := g.SetLimits(c.lim); err != nil {
			t.Fatal(err)
		}
		wantStrings(t, fmt.Sprintf("SetLimits(%+v) writes", c.lim), k.relWrites(), c.want)
	}
}

// A process that died is gone, reaped or not (a killed daemon's parent
// may leave it a zombie for a while); this one is not.
func TestGone(t *testing.T) {
	c := exec.Command("true")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	pid := c.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for !gone(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d, a zombie, is not gone", pid)
		}
		time.Sleep(time.Millisecond)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err != nil || !strings.Contains(string(b), ") Z ") {
		t.Errorf("not a zombie yet: %q, %v", b, err)
	}
	c.Wait()
	if !gone(pid) {
		t.Errorf("pid %d, reaped, is not gone", pid)
	}
	if gone(os.Getpid()) {
		t.Error("this process is gone")
	}
}
