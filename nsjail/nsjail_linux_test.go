package nsjail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if IsHelper() {
		HelperMain()
	}
	os.Exit(m.Run())
}

// testSandbox is a sandbox and its one command, for start.
type testSandbox struct {
	Spec
	Command
}

// start is Prepare, then Run: a sandbox running its command at once. It
// returns once the init runs; the program's start, end or failure come
// through Events.
func start(s *testSandbox, files Files, stdio IO) (*Process, error) {
	if err := s.Command.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox command: %w", err)
	}
	p, err := Prepare(&s.Spec, files)
	if err != nil {
		return nil, err
	}
	if err := p.Run(&s.Command, stdio); err != nil {
		p.Kill()
		<-p.Done()
		return nil, err
	}
	return p, nil
}

// testSpec is a root with what a shell needs, and argv to run in it; no
// seccomp, no cgroups (the engine's tests cover those together).
func testSpec(t *testing.T, argv ...string) *testSandbox {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: user namespaces mapped to other host ids")
	}
	rootDir := t.TempDir()
	os.Chmod(rootDir, 0o755)
	os.Chmod(rootDir+"/..", 0o755)
	var mounts []Mount
	for _, p := range []string{"/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ld.so.cache", "/etc/alternatives"} {
		mounts = append(mounts, Mount{Kind: MountBind, Source: p, Target: p, Optional: true})
	}
	return &testSandbox{
		Spec: Spec{
			HostUID:        1_999_000_001,
			HostGID:        1_999_000_001,
			InitUID:        1_999_000_000,
			InitGID:        1_999_000_000,
			RootDir:        rootDir,
			Mounts:         mounts,
			Files:          map[string]string{"/etc/passwd": "sandbox:x:1000:1000::/workspace:/bin/sh\n"},
			TmpBytes:       16 << 20,
			AllowNoSeccomp: true,
		},
		Command: Command{
			Argv:           argv,
			Env:            []string{"PATH=" + DefaultPath},
			WorkspaceBytes: 16 << 20,
		},
	}
}

type outcome struct {
	events []Event
	stdout string
	stderr string
}

func run(t *testing.T, spec *testSandbox) outcome {
	t.Helper()
	return runWith(t, spec, IO{})
}

// runWith is run with stdio, whose Stdout and Stderr it sets.
func runWith(t *testing.T, spec *testSandbox, stdio IO) outcome {
	t.Helper()
	outR, outW, _ := os.Pipe()
	errR, errW, _ := os.Pipe()
	stdio.Stdout, stdio.Stderr = outW, errW
	p, err := start(spec, Files{}, stdio)
	outW.Close()
	errW.Close()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	var o outcome
	var outB, errB bytes.Buffer
	done := make(chan struct{}, 2)
	go func() { io.Copy(&outB, outR); done <- struct{}{} }()
	go func() { io.Copy(&errB, errR); done <- struct{}{} }()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case ev, ok := <-p.Events():
			if !ok {
				<-done
				<-done
				o.stdout, o.stderr = outB.String(), errB.String()
				return o
			}
			o.events = append(o.events, ev)
			if ev.Kind == Exited || ev.Kind == Failed {
				// The init waits for us after its last report.
				p.Kill()
			}
		case <-timeout:
			p.Kill()
			t.Fatal("sandbox did not end within 20 s")
		}
	}
}

func last(o outcome) Event { return o.events[len(o.events)-1] }

func TestRunsAndReportsExit(t *testing.T) {
	o := run(t, testSpec(t, "sh", "-c", "echo hi; echo err >&2; exit 3"))
	ev := last(o)
	if ev.Kind != Exited || ev.Exit.Code != 3 || ev.Exit.Signal != 0 {
		t.Fatalf("last event %+v, want exit 3 (stderr %q)", ev, o.stderr)
	}
	if o.stdout != "hi\n" || o.stderr != "err\n" {
		t.Fatalf("stdout %q stderr %q", o.stdout, o.stderr)
	}
	if o.events[0].Kind != Ready || o.events[1].Kind != Started {
		t.Fatalf("first events %+v, want Ready then Started", o.events[:2])
	}
}

func TestIdentityInside(t *testing.T) {
	o := run(t, testSpec(t, "sh", "-c", `id -u; cat /proc/self/uid_map; grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status; echo pid=$$; hostname; ls /`))
	if k := last(o).Kind; k != Exited {
		t.Fatalf("last event %+v stderr %q", last(o), o.stderr)
	}
	t.Logf("inside:\n%s", o.stdout)
	if strings.Contains(o.stdout, "pid=1\n") {
		t.Error("the program runs as pid 1")
	}
	for _, want := range []string{"1000\n", "1000 1999000001          1", "         0 1999000000          1", "CapEff:\t0000000000000000", "CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000", "CapPrm:\t0000000000000000", "NoNewPrivs:\t1", "sandbox\n"} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("inside output lacks %q", want)
		}
	}
}

func TestMissingProgram(t *testing.T) {
	o := run(t, testSpec(t, "no-such-program"))
	ev := last(o)
	if _, ok := ev.Err.(*ExecError); ev.Kind != Failed || !ok {
		t.Fatalf("last event %+v, want Failed with an ExecError", ev)
	}
	o = run(t, testSpec(t, "/etc/passwd"))
	ev = last(o)
	if _, ok := ev.Err.(*ExecError); ev.Kind != Failed || !ok {
		t.Fatalf("last event %+v, want Failed with an ExecError", ev)
	}
}

func TestAbortIsSIGABRT(t *testing.T) {
	o := run(t, testSpec(t, "sh", "-c", "kill -ABRT $$"))
	if ev := last(o); ev.Kind != Exited || ev.Exit.Signal != 6 {
		t.Fatalf("last event %+v, want signal 6", ev)
	}
}

// ownCgroup2 is where the cgroup2 hierarchy is mounted and this process's
// group in it, from /proc/self/mountinfo and /proc/self/cgroup; "" where
// none is mounted.
func ownCgroup2(t *testing.T) (mountPoint, group string) {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mi), "\n") {
		// "<id> <parent> <dev> <root> <mount point> ... - cgroup2 ..."
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && len(f) >= 5 && strings.HasPrefix(post, "cgroup2 ") && f[3] == "/" {
			mountPoint = f[4]
		}
	}
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(self), "\n") {
		if g, ok := strings.CutPrefix(line, "0::"); ok && mountPoint != "" {
			return mountPoint, g
		}
	}
	return "", ""
}

// cgroup2Group makes a group of our own beneath our own cgroup2 group, with
// the given children, each removed at the test's end; it gives the
// group's path in the hierarchy and its directory. No controllers are
// enabled in ours: a process may be cloned into it on pure v2 and hybrid
// alike.
func cgroup2Group(t *testing.T, name string, children ...string) (group, dir string) {
	t.Helper()
	mountPoint, own := ownCgroup2(t)
	if mountPoint == "" {
		t.Skip("no cgroup2 hierarchy is mounted: CLONE_INTO_CGROUP needs one")
	}
	group = filepath.Join(own, fmt.Sprintf("%s-%d", name, os.Getpid()))
	dir = filepath.Join(mountPoint, group)
	dirs := []string{dir}
	for _, c := range children {
		dirs = append(dirs, filepath.Join(dir, c))
	}
	for _, d := range dirs {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// The processes are reaped by now; the kernel may take a
			// moment to let go of the group.
			deadline := time.Now().Add(2 * time.Second)
			for {
				err := unix.Rmdir(d)
				if err == unix.EBUSY && time.Now().Before(deadline) {
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Errorf("rmdir %s: %v", d, err)
				}
				return
			}
		})
	}
	return group, dir
}

func TestInitClonedIntoCgroup(t *testing.T) {
	spec := testSpec(t, "sleep", "1")
	group, dir := cgroup2Group(t, "nsjail-test")
	initDir, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer initDir.Close()
	p, err := start(spec, Files{Init: initDir}, IO{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer p.Kill()
	// CLONE_INTO_CGROUP places the init at clone time, before it runs a
	// single instruction, so it is there when start returns.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if want := "0::" + group + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("the init's /proc/%d/cgroup is\n%s\nwant the line %q", p.Pid(), b, strings.TrimSpace(want))
	}
	var last Event
	for ev := range p.Events() {
		last = ev
		if ev.Kind == Exited || ev.Kind == Failed {
			p.Kill()
		}
	}
	if last.Kind != Exited || last.Exit.Code != 0 {
		t.Errorf("last event %+v, want exit 0", last)
	}
}

// The init clones the program's process straight into Files.Program, with
// its own credentials: those given the run's cgroup.procs files.
func TestProgramClonedIntoCgroup(t *testing.T) {
	spec := testSpec(t, "sleep", "1")
	group, dir := cgroup2Group(t, "nsjail-prog-test", "prog")
	for _, d := range []string{dir, filepath.Join(dir, "prog")} {
		if err := os.Chown(filepath.Join(d, "cgroup.procs"), int(spec.InitUID), int(spec.InitGID)); err != nil {
			t.Fatal(err)
		}
	}
	initDir, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer initDir.Close()
	prog, err := os.Open(filepath.Join(dir, "prog"))
	if err != nil {
		t.Fatal(err)
	}
	defer prog.Close()
	p, err := start(spec, Files{Init: initDir, Program: prog}, IO{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer p.Kill()
	var last Event
	for ev := range p.Events() {
		last = ev
		if ev.Kind == Started {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.Pid(), p.Pid()))
			pid := strings.Fields(string(b))
			if len(pid) != 1 {
				t.Fatalf("the init's children: %q", b)
			}
			cg, _ := os.ReadFile("/proc/" + pid[0] + "/cgroup")
			if want := "0::" + group + "/prog\n"; !strings.Contains(string(cg), want) {
				t.Errorf("the program's cgroups:\n%s\nwant the line %q", cg, strings.TrimSpace(want))
			}
		}
		if ev.Kind == Exited || ev.Kind == Failed {
			p.Kill()
		}
	}
	if last.Kind != Exited || last.Exit.Code != 0 {
		t.Errorf("last event %+v, want exit 0", last)
	}
}

// The program's umask is 022 whatever the forking process had at the
// fork: the daemon narrows its own while it creates its socket, and a
// compiler run then would make binaries nobody may execute.
func TestUmaskIsFixed(t *testing.T) {
	old := unix.Umask(0o177)
	o := run(t, testSpec(t, "sh", "-c", "umask; touch f; mkdir d; stat -c %a f d /tmp"))
	unix.Umask(old)
	if k := last(o).Kind; k != Exited {
		t.Fatalf("last event %+v stderr %q", last(o), o.stderr)
	}
	if o.stdout != "0022\n644\n755\n1777\n" {
		t.Fatalf("inside: %q, want umask 0022, modes 644 755 1777", o.stdout)
	}
}

// After its program's end the init, alone in its namespaces, waits for
// Kill; then it goes, and Events closes.
func TestInitWaitsForKillAfterExit(t *testing.T) {
	spec := testSpec(t, "sh", "-c", "sleep 30 & echo started")
	p, err := start(spec, Files{}, IO{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	for ev := range p.Events() {
		if ev.Kind == Exited {
			break
		}
		if ev.Kind == Failed {
			t.Fatalf("failed: %v", ev.Err)
		}
	}
	// The background sleep is gone, the init is not.
	time.Sleep(100 * time.Millisecond)
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", p.Pid()))
	for _, task := range tasks {
		if children, _ := os.ReadFile(task); len(strings.TrimSpace(string(children))) != 0 {
			t.Errorf("the init still has children: %q", children)
		}
	}
	select {
	case <-p.Done():
		t.Fatal("the init went before Kill")
	default:
	}
	p.Kill()
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the init outlived Kill")
	}
	if _, ok := <-p.Events(); ok {
		t.Error("an event after Exited")
	}
}

// A step of the root that fails is named, with the kernel's reason, in
// the Failed event; a host path the root needs and lacks fails Prepare.
func TestRootFailureNamesTheStep(t *testing.T) {
	spec := testSpec(t, "/bin/true")
	// A file where the root has a directory (the mount point of /tmp).
	spec.Files["/tmp"] = "not a directory"
	o := run(t, spec)
	ev := last(o)
	var se *SetupError
	if ev.Kind != Failed || !errors.As(ev.Err, &se) || se.Step() != "write /tmp" || !errors.Is(se.Err, syscall.EISDIR) {
		t.Fatalf("last event %+v, want Failed: write /tmp: is a directory", ev)
	}

	spec = testSpec(t, "/bin/true")
	spec.Mounts = append(spec.Mounts, Mount{Kind: MountBind, Source: "/nonexistent/sandboxd-test", Target: "/opt/x"})
	if _, err := Prepare(&spec.Spec, Files{}); err == nil || !strings.Contains(err.Error(), "bind /nonexistent/sandboxd-test") {
		t.Fatalf("Prepare with a missing bind source: %v", err)
	}
}

// A Spec too large for one message to the helper fails Prepare, saying so,
// and the helper goes on. (The helper used to read it cut short and answer
// a request it could not name: Prepare waited for ever.)
func TestSpecTooLarge(t *testing.T) {
	spec := testSpec(t, "/bin/true")
	spec.Files["/etc/big"] = strings.Repeat("x", maxSpawnRequest)
	if _, err := Prepare(&spec.Spec, Files{}); err == nil || !strings.Contains(err.Error(), "bytes as JSON, at most") {
		t.Fatalf("Prepare with a %d-byte file: %v", maxSpawnRequest, err)
	}
	o := run(t, testSpec(t, "/bin/sh", "-c", "exit 4"))
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 4 {
		t.Fatalf("after the refused spec: %+v", ev)
	}
}

// A helper that does not answer in time: Prepare fails saying so, and the
// init the helper makes later ends (its command pipe is closed, and the
// late reply's pidfd kills it) rather than wait for a command.
func TestSpawnWaitKillsALateInit(t *testing.T) {
	run(t, testSpec(t, "/bin/true")) // a helper, running
	h := firstHelper()
	hpid := h.cmd.Process.Pid
	defer func(w time.Duration) { spawnWait = w }(spawnWait)
	spawnWait = 300 * time.Millisecond
	syscall.Kill(hpid, syscall.SIGSTOP)
	time.AfterFunc(time.Second, func() { syscall.Kill(hpid, syscall.SIGCONT) })
	if _, err := Prepare(&testSpec(t, "/bin/true").Spec, Files{}); err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("Prepare while the helper is stopped: %v", err)
	}
	children := func() string {
		var all string
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", hpid))
		for _, task := range tasks {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/children", hpid, task.Name()))
			all += string(b)
		}
		return strings.TrimSpace(all)
	}
	// It made the init once it ran again, and that init must be gone.
	time.Sleep(1500 * time.Millisecond)
	waitUntil(t, "the late init killed and reaped", func() bool { return children() == "" })
	o := run(t, testSpec(t, "/bin/sh", "-c", "exit 5"))
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 5 {
		t.Fatalf("after the late init: %+v", ev)
	}
}

// The helper's death ends its sandboxes, each with a Failed event; the
// next Prepare starts another helper.
func TestHelperDeath(t *testing.T) {
	p := readySandbox(t, testSpec(t, "/bin/sleep", "60"))
	h := firstHelper()
	h.cmd.Process.Kill()
	// Alive knows as soon as the daemon's side has seen the helper go,
	// before the sandbox's events are read.
	waitUntil(t, "Alive says no", func() bool { return !p.Alive() })
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the sandbox outlived its helper by 10 s")
	}
	var lastEv Event
	for ev := range p.Events() {
		lastEv = ev
	}
	if lastEv.Kind != Failed || !strings.Contains(lastEv.Err.Error(), "helper") {
		t.Errorf("last event %+v, want Failed naming the helper", lastEv)
	}
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid())); err == nil && !strings.Contains(string(b), ") Z ") {
		t.Errorf("the init still runs: %s", b)
	}
	o := run(t, testSpec(t, "/bin/sh", "-c", "exit 3"))
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 3 {
		t.Fatalf("after a new helper: %+v", ev)
	}
}

// An init killed from outside: Alive says so before anyone reads its end.
func TestAliveSeesTheInitDie(t *testing.T) {
	p := readySandbox(t, testSpec(t, "/bin/true"))
	syscall.Kill(p.Pid(), syscall.SIGKILL)
	waitUntil(t, "Alive says no", func() bool { return !p.Alive() })
	for range p.Events() {
	}
	if p.Alive() {
		t.Error("Alive after Done")
	}
}

// readySandbox prepares a sandbox for spec and waits until it is Ready,
// and Alive.
func readySandbox(t *testing.T, spec *testSandbox) *Process {
	t.Helper()
	p, err := Prepare(&spec.Spec, Files{})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-p.Events(); ev.Kind != Ready {
		t.Fatalf("first event %+v, want Ready", ev)
	}
	if !p.Alive() {
		t.Fatal("a ready sandbox is not Alive")
	}
	return p
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// The helper gives back each sandbox's memory once its init is reaped.
func TestHelperReleasesMemory(t *testing.T) {
	spec := testSpec(t, "/bin/true")
	run(t, spec) // a helper, warmed up
	h := firstHelper()
	rss := func() int64 {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				return n << 10
			}
		}
		return 0
	}
	before := rss()
	for range 100 {
		// A command of 1 MiB: its image's pages are touched in the helper's memory.
		argv := []string{"/bin/true"}
		for range 16 {
			argv = append(argv, strings.Repeat("x", 64<<10))
		}
		spec := testSpec(t, argv...)
		if ev := last(run(t, spec)); ev.Kind != Exited {
			t.Fatalf("%+v", ev)
		}
	}
	if after := rss(); after > before+32<<20 {
		t.Errorf("the helper's RSS grew from %d to %d bytes over 100 sandboxes", before, after)
	}
}

// A helper started ignoring a signal (a daemon run under nohup ignores
// SIGHUP) clones inits that neither ignore it nor keep any of the
// helper's handlers, and programs that start with every disposition at
// the default and nothing blocked.
func TestSandboxSignalsStartClean(t *testing.T) {
	spec := testSpec(t, "/bin/sh", "-c", "exec cat /proc/1/status /proc/self/status")
	// A new helper, started while this process ignores SIGHUP.
	signal.Ignore(syscall.SIGHUP)
	defer signal.Reset(syscall.SIGHUP)
	h := firstHelper()
	if h != nil {
		h.cmd.Process.Kill()
		waitUntil(t, "the old helper is gone", h.isGone)
	}
	o := run(t, spec)
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("last event %+v, stderr %q", ev, o.stderr)
	}
	h = firstHelper()
	// It may ignore more, what this test was started ignoring.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", h.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	var ignored uint64
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "SigIgn:\t"); ok {
			ignored, err = strconv.ParseUint(v, 16, 64)
		}
	}
	if err != nil || ignored&(1<<(syscall.SIGHUP-1)) == 0 {
		t.Fatalf("the new helper does not ignore SIGHUP (the test's premise): %v\n%s", err, b)
	}
	t.Logf("the helper ignores %#x", ignored)
	// The init's status, then the program's (cat, which sets no handler).
	var lines []string
	for _, l := range strings.Split(o.stdout, "\n") {
		if strings.HasPrefix(l, "SigBlk:") || strings.HasPrefix(l, "SigIgn:") || strings.HasPrefix(l, "SigCgt:") {
			lines = append(lines, l)
		}
	}
	want := []string{
		// The init blocks SIGCHLD for its signalfd; nothing else is
		// blocked, caught or ignored, in the init or the program.
		"SigBlk:\t0000000000010000", "SigIgn:\t0000000000000000", "SigCgt:\t0000000000000000",
		"SigBlk:\t0000000000000000", "SigIgn:\t0000000000000000", "SigCgt:\t0000000000000000",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("the init's and the program's signals:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// firstHelper is the helper of the first slot (the only one unless a test
// sets more), or nil.
func firstHelper() *helperClient {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	if len(helpers.slots) == 0 {
		return nil
	}
	return helpers.slots[0]
}

// The init says which of the sandbox's own file systems the program left
// holding nothing: the engine looks for large files only in the others.
func TestExitUnused(t *testing.T) {
	all := uint32(UnusedKnown | UnusedTmp | UnusedShm | UnusedWorkspace)
	for _, c := range []struct {
		script string
		want   uint32
	}{
		{"true", all},
		{"echo x > /tmp/f", all &^ UnusedTmp},
		{"mkdir /dev/shm/d", all &^ UnusedShm},
		{"echo x > f; rm f", all},
		// A process left running is killed and reaped before the init looks.
		{"echo x > f; sleep 5 > /tmp/g & while [ ! -e /tmp/g ]; do :; done", all &^ UnusedWorkspace &^ UnusedTmp},
	} {
		ev := last(run(t, testSpec(t, "/bin/sh", "-c", c.script)))
		if ev.Kind != Exited || ev.Exit.Unused != c.want {
			t.Errorf("%q: last event %+v, want Exited with unused %#b", c.script, ev, c.want)
		}
	}
}

// With StartedAfter, a program that ends sooner has no Started event, and
// one that runs longer has it then, saying how long it has run.
func TestStartedAfter(t *testing.T) {
	short := testSpec(t, "/bin/true")
	short.Command.StartedAfter = time.Second
	o := run(t, short)
	for _, ev := range o.events {
		if ev.Kind == Started {
			t.Errorf("a program that ended within StartedAfter had a Started event: %+v", o.events)
		}
	}
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("last event %+v, want exit 0", ev)
	}
	long := testSpec(t, "/bin/sleep", "0.3")
	long.Command.StartedAfter = 50 * time.Millisecond
	o = run(t, long)
	var kinds []EventKind
	for _, ev := range o.events {
		kinds = append(kinds, ev.Kind)
		if ev.Kind == Started && (ev.Exit.Wall < 50*time.Millisecond || ev.Exit.Wall > 250*time.Millisecond) {
			t.Errorf("Started after %v of the program, want 50 ms or a little more", ev.Exit.Wall)
		}
	}
	if len(kinds) != 3 || kinds[0] != Ready || kinds[1] != Started || kinds[2] != Exited {
		t.Fatalf("events %v, want Ready, Started, Exited", kinds)
	}
}

// TestReadyWorkspace: a sandbox whose Spec mounts the workspace ahead
// gives a command of that size the workspace in place, empty and the
// sandbox user's; a command of another size gets a fresh one of its own
// over it.
func TestReadyWorkspace(t *testing.T) {
	// stat -f: the tmpfs's size in 4 KiB blocks (the VM tests' guest has no awk).
	const script = `stat -c '%U %a' . && ls -A . | wc -l && stat -f -c '%b %S' . && touch f`
	for _, tc := range []struct {
		name  string
		bytes int64
		want  string
	}{
		{"same size", 16 << 20, "sandbox 755\n0\n4096 4096\n"},
		{"other size", 8 << 20, "sandbox 755\n0\n2048 4096\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSpec(t, "sh", "-c", script)
			s.Spec.ReadyWorkspaceBytes = 16 << 20
			s.Command.WorkspaceBytes = tc.bytes
			o := run(t, s)
			if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
				t.Fatalf("last event %+v; stderr %q", ev, o.stderr)
			}
			if o.stdout != tc.want {
				t.Errorf("stdout %q, want %q", o.stdout, tc.want)
			}
		})
	}
}

// TestRawCommandReadyWorkspace: a command takes the workspace mounted
// ahead only at its size and without a workdir of its own.
func TestRawCommandReadyWorkspace(t *testing.T) {
	c := &Command{Argv: []string{"/bin/true"}, WorkspaceBytes: 1 << 20}
	for _, tc := range []struct {
		premounted int64
		workdir    bool
		want       uint32
	}{
		{0, false, 0},
		{1 << 20, false, rawPremounted},
		{2 << 20, false, 0},
		{1 << 20, true, rawWorkdir},
	} {
		b, err := rawCommandBytes(1<<30, c, 0, tc.workdir, tc.premounted)
		if err != nil {
			t.Fatal(err)
		}
		h := (*rawCommand)(unsafe.Pointer(&b[0]))
		if h.flags != tc.want || (h.tmpfsN == 0) != (tc.want != 0) {
			t.Errorf("premounted %d, workdir %v: flags %d, tmpfsN %d; want flags %d", tc.premounted, tc.workdir, h.flags, h.tmpfsN, tc.want)
		}
	}
}
