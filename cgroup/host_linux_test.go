package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tier 3: the real cgroup filesystems of this host. These tests need root;
// they create groups only beneath this process's own groups, under the
// subtree sandboxd-cgtest-<pid>, and remove everything they made.

const helperEnv = "CGROUP_TEST_HELPER"

func TestMain(m *testing.M) {
	if what := os.Getenv(helperEnv); what != "" {
		os.Exit(runHelper(what))
	}
	// Orphans of killed test programs (a shell's background children) are
	// reparented to us, so the tests can reap every process they caused.
	_ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	os.Exit(m.Run())
}

// runHelper is the test binary re-executed as a sandboxed program: it joins
// its groups the way sandboxd's programs do, writing "0" to each inherited
// cgroup.procs file (fds 3...), then does its job.
func runHelper(what string) int {
	n, _ := strconv.Atoi(os.Getenv("CGROUP_TEST_JOIN"))
	for i := 0; i < n; i++ {
		f := os.NewFile(uintptr(3+i), "cgroup.procs")
		if _, err := f.WriteString("0"); err != nil {
			fmt.Fprintln(os.Stderr, "join:", err)
			return 3
		}
		f.Close()
	}
	switch what {
	case "spin":
		for x := 0; ; x++ {
			_ = x * x
		}
	case "spin4":
		for i := 0; i < 3; i++ {
			go func() {
				for x := 0; ; x++ {
					_ = x * x
				}
			}()
		}
		for x := 0; ; x++ {
			_ = x * x
		}
	case "hog":
		var keep [][]byte
		for i := 0; i < 1024; i++ {
			b := make([]byte, 1<<20)
			for j := 0; j < len(b); j += 4096 {
				b[j] = 1
			}
			keep = append(keep, b)
		}
		fmt.Println("hog survived with", len(keep), "MiB")
		return 4
	case "sleep":
		time.Sleep(time.Minute)
	case "open":
		return helperOpen()
	}
	return 0
}

func hostSubtree() string { return fmt.Sprintf("sandboxd-cgtest-%d", os.Getpid()) }

// hostManager opens the host's cgroups for a test and, when it ends,
// removes every group the test left and the subtree itself.
func hostManager(tb testing.TB, cfg Config) *Manager {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates cgroups on the host")
	}
	cfg.Subtree = hostSubtree()
	m, err := Open(cfg)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { cleanupHost(tb, m) })
	return m
}

func cleanupHost(tb testing.TB, m *Manager) {
	left, err := m.Leftovers()
	if err != nil {
		tb.Error(err)
	}
	for _, n := range left {
		tb.Errorf("test left run group %s behind", n)
		if err := m.Remove(n); err != nil {
			tb.Error(err)
		}
	}
	if err := m.Close(); err != nil {
		tb.Error(err)
	}
	for _, p := range m.Paths() {
		if _, err := os.Lstat(p); err == nil {
			tb.Errorf("%s still exists after Close", p)
		}
	}
}

// procsJoinFiles opens cgroup.procs of the program's group in every
// hierarchy, write-only, for a test program that joins them all by itself
// (writing "0" to each) rather than being cloned into the cgroup2 one.
func (g *Group) procsJoinFiles() ([]*os.File, error) {
	return g.openWriteOnly(progDirs(g), "cgroup.procs")
}

// start runs a program that joins g's groups through procsJoinFiles; the
// process is killed and reaped when the test ends, at the latest.
func start(t *testing.T, g *Group, cmd *exec.Cmd) *exec.Cmd {
	t.Helper()
	files, err := g.procsJoinFiles()
	if err != nil {
		t.Fatal(err)
	}
	cmd.ExtraFiles = files
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, "CGROUP_TEST_JOIN="+strconv.Itoa(len(files)))
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	err = cmd.Start()
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func helper(what string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+what)
	return cmd
}

// joinScript is the shell's version of joining: echo 0 into fds 3...
func joinScript(g *Group) string {
	files, err := g.procsJoinFiles()
	if err != nil {
		panic(err)
	}
	var b strings.Builder
	for i, f := range files {
		f.Close()
		fmt.Fprintf(&b, "echo 0 >&%d; ", 3+i)
	}
	return b.String()
}

// progDirs are the program leaf's directories, one per hierarchy.
func progDirs(g *Group) []string {
	var out []string
	if g.prog != "" {
		out = append(out, g.prog)
	}
	return append(out, g.v1...)
}

func procs(t *testing.T, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(path.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// waitProcs waits until every dir holds exactly n processes.
func waitProcs(t *testing.T, n int, dirs ...string) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var got []int
		ok := true
		for _, d := range dirs {
			p := procs(t, d)
			if len(p) != n {
				ok = false
			}
			got = p
		}
		if ok {
			return got
		}
		if time.Now().After(deadline) {
			for _, d := range dirs {
				t.Errorf("%s holds %v", d, procs(t, d))
			}
			t.Fatalf("timed out waiting for %d processes", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func readValue(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func wantValue(t *testing.T, file, want string) {
	t.Helper()
	if got := readValue(t, file); got != want {
		t.Errorf("%s = %q, want %q", file, got, want)
	}
}

// reap waits for a process that is not an exec.Cmd of ours: an orphan
// reparented to this subreaper. Reparenting may trail the kill a little.
func reap(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws unix.WaitStatus
		_, err := unix.Wait4(pid, &ws, 0, nil)
		switch {
		case err == nil:
			return
		case errors.Is(err, unix.EINTR):
			continue
		case errors.Is(err, unix.ECHILD) && time.Now().Before(deadline):
			time.Sleep(time.Millisecond)
			continue
		}
		t.Errorf("reap %d: %v", pid, err)
		return
	}
}

func wantKilled(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	err := cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("%s ended with %v, want SIGKILL", cmd.Path, err)
	}
}

func wantGone(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists (%v)", d, err)
		}
	}
}

// cgroupOf returns pid's path in the hierarchy whose /proc/pid/cgroup
// controller field is ctrls ("" for cgroup2).
func cgroupOf(t *testing.T, pid int, ctrls string) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && parts[1] == ctrls {
			return parts[2]
		}
	}
	t.Fatalf("pid %d has no %q line in /proc/%d/cgroup", pid, ctrls, pid)
	return ""
}

// modeByStatfs tells the host's cgroup mode from the filesystem types at
// the default root, as systemd does, independently of the mountinfo parsing
// that Open uses: cgroup2 there is pure v2; a cgroup2 at unified/ beside the
// v1 hierarchies is hybrid; anything else is v1.
func modeByStatfs(t *testing.T) Mode {
	t.Helper()
	fsType := func(p string) int64 {
		var st unix.Statfs_t
		if err := unix.Statfs(p, &st); err != nil {
			return 0
		}
		return st.Type
	}
	switch {
	case fsType(defaultRoot) == unix.CGROUP2_SUPER_MAGIC:
		return ModeV2
	case fsType(defaultRoot+"/unified") == unix.CGROUP2_SUPER_MAGIC:
		return ModeHybrid
	}
	return ModeV1
}

func TestHostOpen(t *testing.T) {
	m := hostManager(t, Config{})
	f := m.Features()
	t.Logf("mode %s, controllers %v, features %+v", m.Mode(), m.Controllers(), f)
	if want := modeByStatfs(t); m.Mode() != want {
		t.Errorf("mode %s, but the filesystems at %s say %s", m.Mode(), defaultRoot, want)
	}
	for k, p := range m.Paths() {
		t.Logf("  %s: %s", k, p)
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			t.Errorf("subtree %s: %v", p, err)
		}
	}
	rel := (&hostKernel{}).release()
	if m.Mode() != ModeV1 {
		if f.CgroupKill != kernelAtLeast(rel, 5, 14) {
			t.Errorf("CgroupKill = %v on kernel %s", f.CgroupKill, rel)
		}
		if !f.CloneIntoCgroup {
			t.Errorf("CloneIntoCgroup = false with a cgroup2 mount on kernel %s", rel)
		}
	}
	if m.Mode() == ModeV2 && f.MemoryPeak != kernelAtLeast(rel, 5, 19) {
		t.Errorf("MemoryPeak = %v on kernel %s", f.MemoryPeak, rel)
	}
	if m.Mode() != ModeV2 && !f.MemoryPeak {
		t.Error("v1 memory.max_usage_in_bytes not found")
	}
	for _, c := range []string{"memory", "pids"} {
		if !slices.Contains(m.Controllers(), c) {
			t.Errorf("controller %s missing from %v", c, m.Controllers())
		}
	}
}

func TestHostRunLifecycle(t *testing.T) {
	m := hostManager(t, Config{})
	g, err := m.create("r1", Limits{MemoryBytes: 64 << 20, PIDs: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()

	// The limits, as the kernel shows them.
	switch m.Mode() {
	case ModeV2:
		wantValue(t, g.prog+"/memory.max", "67108864")
		wantValue(t, g.prog+"/pids.max", "16")
		if m.Features().SwapLimit {
			wantValue(t, g.prog+"/memory.swap.max", "0")
		}
		if m.Features().OOMGroup {
			wantValue(t, g.prog+"/memory.oom.group", "1")
		}
	default:
		wantValue(t, g.memDir+"/memory.limit_in_bytes", "67108864")
		if m.Features().SwapLimit {
			wantValue(t, g.memDir+"/memory.memsw.limit_in_bytes", "67108864")
		}
		if m.Features().SocketLimit {
			wantValue(t, g.memDir+"/memory.kmem.tcp.limit_in_bytes", "67108864")
		}
		wantValue(t, g.memDir+"/memory.swappiness", "0")
		wantValue(t, g.pidsDir+"/pids.max", "16")
	}

	// The init goes into the Manager's group of inits at clone time,
	// outside the sandbox's groups: their Kill leaves it alone (the daemon
	// kills a sandbox's init itself, and its pid namespace with it).
	var initCmd *exec.Cmd
	dir, err := g.initDir()
	if err != nil {
		t.Fatal(err)
	}
	if dir != nil {
		initCmd = exec.Command("sleep", "60")
		initCmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd())}
		if err := initCmd.Start(); err != nil {
			t.Fatalf("clone into %s: %v", dir.Name(), err)
		}
		dir.Close()
		t.Cleanup(func() {
			if initCmd.ProcessState == nil {
				_ = initCmd.Process.Kill()
				_ = initCmd.Wait()
			}
		})
		if got := cgroupOf(t, initCmd.Process.Pid, ""); !strings.HasSuffix(got, strings.TrimPrefix(g.init, m.unified.dir)) {
			t.Errorf("init is in %s, want %s", got, g.init)
		}
		if got := procs(t, g.init); !slices.Equal(got, []int{initCmd.Process.Pid}) {
			t.Errorf("the init's group holds %v", got)
		}
		if g.init != m.inits || strings.HasPrefix(g.init, g.unified+"/") || g.init == g.unified {
			t.Errorf("the init's group %s is not the Manager's (%s), outside the sandbox's", g.init, m.inits)
		}
	}

	// The program joins by itself and forks a second process.
	prog := start(t, g, exec.Command("sh", "-c", joinScript(g)+"sleep 60 & exec sleep 60"))
	pids := waitProcs(t, 2, progDirs(g)...)
	if !slices.Contains(pids, prog.Process.Pid) {
		t.Errorf("program %d not among %v", prog.Process.Pid, pids)
	}
	if m.Mode() != ModeV2 {
		if got := cgroupOf(t, prog.Process.Pid, "memory"); !strings.HasSuffix(got, "/"+hostSubtree()+"/r1") {
			t.Errorf("program's memory cgroup is %s", got)
		}
	}

	t0 := time.Now()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kill of 3 processes took %v", time.Since(t0))
	for _, d := range append(progDirs(g), g.dirs()...) {
		if p := procs(t, d); len(p) != 0 {
			t.Errorf("%s still holds %v after Kill", d, p)
		}
	}
	wantKilled(t, prog)
	if initCmd != nil {
		if err := initCmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("the sandbox's Kill reached the init: %v", err)
		}
		_ = initCmd.Process.Kill()
		_ = initCmd.Wait()
	}
	for _, p := range pids {
		if p != prog.Process.Pid {
			reap(t, p)
		}
	}
	if _, err := g.Stats(); err != nil {
		t.Errorf("Stats after Kill: %v", err)
	}

	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantGone(t, g.dirs()...)
	if err := g.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// NewSandbox on this host: the program's process, cloned into
// Handover.Program and joining the v1 groups through Handover.Join as a
// sandbox's program does, lands in every group of the sandbox; the init's
// directory is the Manager's group of inits.
func TestHostNewSandbox(t *testing.T) {
	m := hostManager(t, Config{})
	g, h, err := m.NewSandbox("ns", Limits{MemoryBytes: 64 << 20, PIDs: 16}, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	defer h.Close()
	if m.unified != nil {
		if h.Init == nil || h.Init.Name() != m.inits {
			t.Errorf("Handover.Init = %v, want %s", h.Init, m.inits)
		}
		if h.Program == nil || h.Program.Name() != g.prog {
			t.Errorf("Handover.Program = %v, want %s", h.Program, g.prog)
		}
	} else if h.Init != nil || h.Program != nil {
		t.Errorf("Handover on pure v1 = %+v, want no cgroup2 directories", h)
	}
	if len(h.Join) != len(g.v1) {
		t.Fatalf("Handover.Join has %d files for %d v1 groups", len(h.Join), len(g.v1))
	}

	var script strings.Builder
	for i := range h.Join {
		fmt.Fprintf(&script, "echo 0 >&%d; ", 3+i)
	}
	cmd := exec.Command("sh", "-c", script.String()+"exec sleep 60")
	cmd.ExtraFiles = h.Join
	cmd.Stderr = os.Stderr
	if h.Program != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(h.Program.Fd())}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	if pids := waitProcs(t, 1, progDirs(g)...); !slices.Equal(pids, []int{cmd.Process.Pid}) {
		t.Errorf("the sandbox's groups hold %v, want the program %d", pids, cmd.Process.Pid)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, cmd)
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantGone(t, g.dirs()...)
}

func TestHostJoinFromUserNamespace(t *testing.T) {
	// The contract with nsjail: the program joins from inside its sandbox,
	// as an unprivileged host uid in fresh user and cgroup namespaces,
	// through files we opened as root; the kernel checks the opener.
	m := hostManager(t, Config{})
	g, err := m.create("userns", Limits{PIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	const hostUID = 65534
	cmd := exec.Command("sh", "-c", joinScript(g)+"exec sleep 60")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWCGROUP | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostUID, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostUID, Size: 1}},
		// Creating the namespace keeps our ids; taking the mapped ones does not.
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
	}
	p := start(t, g, cmd)
	waitProcs(t, 1, progDirs(g)...)
	status := readValue(t, fmt.Sprintf("/proc/%d/status", p.Process.Pid))
	if want := fmt.Sprintf("\nUid:\t%d\t", hostUID); !strings.Contains(status, want) {
		t.Errorf("program is not host uid %d:\n%s", hostUID, status)
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, p)
}

func TestHostCPUUsage(t *testing.T) {
	m := hostManager(t, Config{})
	g, err := m.create("cpu", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	if n := testing.AllocsPerRun(50, func() { _, _ = g.CPUUsage() }); n != 0 && !raceEnabled {
		t.Errorf("CPUUsage allocates %v times per call", n)
	}
	spin := start(t, g, helper("spin"))
	waitProcs(t, 1, progDirs(g)...)
	// The spinner's own time on a CPU (its threads' schedstat, in ns,
	// updated at the scheduler's ticks as the cgroup's count is) is the
	// yardstick, not the wall clock: a loaded machine gives it less.
	onCPU := func() time.Duration {
		tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", spin.Process.Pid))
		if err != nil || len(tasks) == 0 {
			t.Fatalf("the spinner's threads: %v", err)
		}
		var sum time.Duration
		for _, task := range tasks {
			ns, err := strconv.ParseInt(strings.Fields(readValue(t, task))[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += time.Duration(ns)
		}
		return sum
	}
	c0, err := g.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	s0 := onCPU()
	for deadline := time.Now().Add(10 * time.Second); onCPU()-s0 < 200*time.Millisecond && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	s1 := onCPU()
	c1, err := g.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	s2 := onCPU()
	t.Logf("CPU counted %v while the spinner ran %v..%v", c1-c0, s1-s0, s2-s0)
	if s1-s0 < 200*time.Millisecond {
		t.Fatalf("the spinner got only %v of CPU in 10 s", s1-s0)
	}
	if c1-c0 < s1-s0-20*time.Millisecond || c1-c0 > s2-s0+20*time.Millisecond {
		t.Errorf("CPUUsage grew by %v while the spinner ran %v..%v", c1-c0, s1-s0, s2-s0)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if d := st.User + st.System - st.CPU; st.CPU < c1 || st.User <= 0 || d > time.Millisecond || d < -time.Millisecond {
		t.Errorf("stats %+v do not fit CPUUsage %v", st, c1)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, spin)
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// TestHostCPUQuota: four spinning threads under a quota of half a CPU get
// half a CPU, however many CPUs the host has, and the time they were held
// back shows in Stats.
func TestHostCPUQuota(t *testing.T) {
	m := hostManager(t, Config{})
	if !m.Features().CPULimit {
		t.Skipf("the host offers no CPU rate limit (%s; controllers %v)", m.Mode(), m.Controllers())
	}
	const quota = CPUPeriod / 2
	g, err := m.create("quota", Limits{CPUQuota: quota})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	spin := start(t, g, helper("spin4"))
	waitProcs(t, 1, progDirs(g)...)
	time.Sleep(CPUPeriod) // past the start
	c0, err := g.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(10 * CPUPeriod)
	c1, err := g.CPUUsage()
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	// In any stretch of time the group gets at most its quota in each
	// period the stretch touches: ten and a bit periods, eleven at most.
	ratio := float64(c1-c0) / float64(wall)
	t.Logf("CPU %v in %v of wall: %.3f CPUs under a quota of %.2f", c1-c0, wall, ratio, float64(quota)/float64(CPUPeriod))
	if most := quota * time.Duration((wall+CPUPeriod-1)/CPUPeriod+1); c1-c0 > most {
		t.Errorf("the group used %v in %v, more than its quota allows (%v)", c1-c0, wall, most)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// Held back, unless a busy host gave it less than its quota anyway.
	switch rate := float64(quota) / float64(CPUPeriod); {
	case ratio < 0.9*rate:
		t.Logf("the host gave the group %.3f CPUs, less than its quota: Stats.Throttled (%v) not checked", ratio, st.Throttled)
	case st.Throttled <= 0:
		t.Errorf("Stats.Throttled = %v after %v of spinning under a quota", st.Throttled, wall)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wantKilled(t, spin)
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestHostOOMKill(t *testing.T) {
	m := hostManager(t, Config{})
	const limit = 32 << 20
	// Made without a limit, given it later: the way a group made ahead of
	// its run gets the run's limits.
	g, err := m.create("oom", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	if err := g.SetLimits(Limits{MemoryBytes: limit}); err != nil {
		t.Fatal(err)
	}
	hog := start(t, g, helper("hog"))
	done := make(chan struct{})
	go func() {
		defer close(done)
		wantKilled(t, hog)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the memory hog was not OOM-killed within 30s")
	}
	n, err := g.OOMKills()
	if err != nil || n < 1 {
		t.Errorf("OOMKills = %d, %v; want >= 1", n, err)
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats after the OOM kill: %+v", st)
	if st.OOMKills != n {
		t.Errorf("Stats.OOMKills = %d, OOMKills() = %d", st.OOMKills, n)
	}
	if m.Mode() == ModeV2 && st.MemoryLimitHits < 1 {
		// v1 kernels may keep no count of it (see Stats).
		t.Errorf("MemoryLimitHits = %d; want >= 1: the hog met its own limit", st.MemoryLimitHits)
	}
	if !m.Features().MemoryPeak {
		t.Logf("kernel has no memory peak file; MemoryPeak not checked")
	} else if st.MemoryPeak < limit*3/4 || st.MemoryPeak > limit+64<<10 {
		// The kernel may record a peak a page or so above the limit: a
		// charge that is counted, then refused and undone.
		t.Errorf("MemoryPeak = %d, want near the %d limit", st.MemoryPeak, limit)
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestHostPIDsLimit(t *testing.T) {
	m := hostManager(t, Config{})
	g, err := m.create("pids", Limits{PIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	// The shell forks until the limit stops it (dash then gives up and
	// exits); its children stay behind in the group.
	sh := exec.Command("sh", "-c", joinScript(g)+
		"i=0; while [ $i -lt 30 ]; do sleep 60 & i=$((i+1)); done; exec sleep 60")
	var shErr strings.Builder
	sh.Stderr = &shErr
	start(t, g, sh)
	var pids []int
	deadline := time.Now().Add(10 * time.Second)
	for {
		// Settled: the events file counts a refusal and the shell is done
		// forking (exited, or exec'd sleep).
		pidsDir := g.pidsDir
		if pidsDir == "" {
			pidsDir = g.prog
		}
		events, _ := os.ReadFile(pidsDir + "/pids.events")
		refused, _ := keyedValue(events, "max")
		pids = procs(t, pidsDir)
		if refused > 0 && len(pids) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fork loop not stopped: %d processes, pids.events %q", len(pids), events)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // let the shell finish reacting
	pids = procs(t, progDirs(g)[0])
	if len(pids) > 8 {
		t.Errorf("%d processes under a limit of 8", len(pids))
	}
	st, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d processes in the group; stats %+v", len(pids), st)
	if m.Features().PIDsPeak && (st.PIDsPeak > 8 || st.PIDsPeak < 2) {
		t.Errorf("PIDsPeak = %d, want 2..8", st.PIDsPeak)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = sh.Wait()
	t.Logf("the shell said: %s", strings.TrimSpace(shErr.String()))
	for _, p := range pids {
		if p != sh.Process.Pid {
			reap(t, p)
		}
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
}

func TestHostKillWithoutCgroupKill(t *testing.T) {
	m := hostManager(t, Config{})
	if m.unified == nil {
		t.Skip("pure v1 host: the freezer path is TestHostPureV1View's")
	}
	if !m.hasFreeze {
		t.Skip("kernel lacks cgroup.freeze (Linux < 5.2)")
	}
	// Take the path of kernels before 5.14: freeze, signal, thaw.
	m.features.CgroupKill = false
	g, err := m.create("nokill", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	prog := start(t, g, exec.Command("sh", "-c", joinScript(g)+"sleep 60 & sleep 60 & exec sleep 60"))
	pids := waitProcs(t, 3, progDirs(g)...)
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, g.unified+"/cgroup.freeze", "0")
	wantKilled(t, prog)
	for _, p := range pids {
		if p != prog.Process.Pid {
			reap(t, p)
		}
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
}

// writeMountInfo copies this process's mountinfo minus the lines keep
// rejects, to look at the host's real hierarchies through another mode.
func writeMountInfo(t *testing.T, keep func(line string) bool) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(string(b), "\n") {
		if keep(l) {
			kept = append(kept, l)
		}
	}
	p := filepath.Join(t.TempDir(), "mountinfo")
	if err := os.WriteFile(p, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostPureV1View(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates cgroups on the host")
	}
	// Hide the cgroup2 mount: this hybrid host's v1 hierarchies are then a
	// pure v1 host, and Kill has to use the real v1 freezer.
	mi := writeMountInfo(t, func(l string) bool { return !strings.Contains(l, " - cgroup2 ") })
	if lay, err := detectLayout(mustParse(t, mi), defaultRoot); err != nil || lay.mode != ModeV1 {
		t.Skipf("host has no v1 hierarchies to look at (%v)", err)
	}
	m := hostManager(t, Config{MountInfo: mi})
	if m.Mode() != ModeV1 {
		t.Fatalf("mode = %s", m.Mode())
	}
	wantStrings(t, "Controllers", m.Controllers(), []string{"cpu", "cpuacct", "freezer", "memory", "pids"})
	g, err := m.create("v1", Limits{MemoryBytes: 32 << 20, PIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	if d, err := g.initDir(); d != nil || err != nil {
		t.Errorf("initDir = %v, %v", d, err)
	}
	prog := start(t, g, exec.Command("sh", "-c", joinScript(g)+"sleep 60 & exec sleep 60"))
	pids := waitProcs(t, 2, progDirs(g)...)
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	wantValue(t, g.frzDir+"/freezer.state", "THAWED")
	wantKilled(t, prog)
	for _, p := range pids {
		if p != prog.Process.Pid {
			reap(t, p)
		}
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantGone(t, g.dirs()...)
}

func mustParse(t *testing.T, file string) []mountEntry {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	e, err := parseMountInfo(b)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestHostUnifiedWithoutControllers(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	m := hostManager(t, Config{})
	if m.Mode() != ModeHybrid {
		t.Skipf("host is %s; this looks at a hybrid host's controller-less cgroup2 mount", m.Mode())
	}
	// Seen alone, the unified mount is a v2 host without memory and pids:
	// Open must say so and touch nothing (our own group there is the root).
	point := path.Dir(m.unified.dir)
	mi := writeMountInfo(t, func(l string) bool { return strings.Contains(l, " - cgroup2 ") })
	_, err := Open(Config{Root: point, MountInfo: mi, Subtree: hostSubtree() + "-v2"})
	if err == nil || !strings.Contains(err.Error(), "controllers memory, pids are not available") {
		t.Errorf("Open = %v", err)
	}
	wantGone(t, path.Join(point, hostSubtree()+"-v2"))
}

func TestHostLeftoversAndRemove(t *testing.T) {
	m := hostManager(t, Config{})
	a, err := m.create("a", Limits{PIDs: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.create("b", Limits{}); err != nil {
		t.Fatal(err)
	}
	sleeper := start(t, a, exec.Command("sh", "-c", joinScript(a)+"exec sleep 60"))
	waitProcs(t, 1, progDirs(a)...)

	// A restarted daemon finds both and reclaims them.
	m2, err := Open(Config{Subtree: hostSubtree()})
	if err != nil {
		t.Fatal(err)
	}
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
	wantKilled(t, sleeper)
	if left, _ := m2.Leftovers(); len(left) != 0 {
		t.Errorf("Leftovers after Remove = %v", left)
	}
}

func TestHostDestroyBeforeReap(t *testing.T) {
	// The daemon may tear a run down before it has reaped the run's
	// processes: zombies must not keep the groups busy.
	m := hostManager(t, Config{})
	g, err := m.create("zombie", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	p := start(t, g, exec.Command("sh", "-c", joinScript(g)+"exec sleep 60"))
	waitProcs(t, 1, progDirs(g)...)
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantGone(t, g.dirs()...)
	wantKilled(t, p)
}

func TestHostErrorNamesFile(t *testing.T) {
	m := hostManager(t, Config{})
	// The kernel refuses pids.max above 4194304 (PID_MAX_LIMIT).
	_, err := m.create("bad", Limits{PIDs: 1 << 40})
	var file string
	if m.Mode() == ModeV2 {
		file = path.Join(m.Paths()["unified"], "bad", "pids.max")
	} else {
		file = path.Join(m.pids.dir, "bad", "pids.max")
	}
	want := "cgroup: create bad: write " + file + ": invalid argument"
	if err == nil || err.Error() != want || !errors.Is(err, syscall.EINVAL) {
		t.Errorf("create = %v\nwant %s", err, want)
	}
	if left, _ := m.Leftovers(); len(left) != 0 {
		t.Errorf("failed create left %v", left)
	}
}

func BenchmarkCreateDestroy(b *testing.B) {
	m := hostManager(b, Config{})
	lim := Limits{MemoryBytes: 256 << 20, PIDs: 64}
	for i := 0; b.Loop(); i++ {
		g, err := m.create("bench"+strconv.Itoa(i), lim)
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Destroy(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreate(b *testing.B) {
	m := hostManager(b, Config{})
	lim := Limits{MemoryBytes: 256 << 20, PIDs: 64}
	var groups []*Group
	b.Cleanup(func() {
		for _, g := range groups {
			_ = g.Destroy()
		}
	})
	for i := 0; b.Loop(); i++ {
		g, err := m.create("bench"+strconv.Itoa(i), lim)
		if err != nil {
			b.Fatal(err)
		}
		groups = append(groups, g)
	}
}

func BenchmarkCPUUsage(b *testing.B) {
	m := hostManager(b, Config{})
	g, err := m.create("poll", Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Destroy() })
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.CPUUsage(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkKillEmpty(b *testing.B) {
	m := hostManager(b, Config{})
	g, err := m.create("kill", Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Destroy() })
	for b.Loop() {
		if err := g.Kill(); err != nil {
			b.Fatal(err)
		}
	}
}

// Another process on the same subtree removes it, empty, and makes it
// again (one sandboxd exec stops as another starts): the directory this
// Manager kept a descriptor of is gone, and create makes the sandbox in the
// new one all the same.
func TestHostSubtreeMadeAgainByAnother(t *testing.T) {
	m := hostManager(t, Config{})
	g, err := m.create("before", Limits{PIDs: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	// The other process: the subtree goes in every hierarchy where it is
	// empty (the inits' group keeps the cgroup2 one), and comes back.
	for _, p := range m.Paths() {
		if err := os.Remove(p); err != nil {
			continue
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	g, err = m.create("after", Limits{PIDs: 8})
	if err != nil {
		t.Fatalf("create in the subtree made again: %v", err)
	}
	for _, d := range g.dirs() {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the run's group: %v", err)
		}
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	wantGone(t, g.dirs()...)
}
