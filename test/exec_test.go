package test

import (
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

func TestTrue(t *testing.T) {
	r := sandboxExec(t, "--", "/bin/true")
	wantVerdict(t, r, api.VerdictOK)
	if r.ExitCode != 0 || r.Signal != "" || r.Message != "" {
		t.Errorf("exit %d signal %q message %q", r.ExitCode, r.Signal, r.Message)
	}
	if r.CPUTimeMS <= 0 || r.CPUTimeMS > 100 || r.WallTimeMS <= 0 || r.WallTimeMS > 1000 {
		t.Errorf("implausible times: cpu %.3f ms, wall %.3f ms", r.CPUTimeMS, r.WallTimeMS)
	}
	if r.MemoryPeakBytes <= 0 || r.MaxRSSBytes <= 0 || r.MaxRSSBytes > 64<<20 {
		t.Errorf("implausible memory: peak %d, max rss %d", r.MemoryPeakBytes, r.MaxRSSBytes)
	}
	if r.PIDsPeak < 1 {
		t.Errorf("pids_peak %d, want at least 1", r.PIDsPeak)
	}
}

func TestExitCode(t *testing.T) {
	r := sandboxExec(t, "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	wantVerdict(t, r, api.VerdictNonzeroExit)
	if r.ExitCode != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
		t.Errorf("exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

func TestSIGSEGV(t *testing.T) {
	r := sandboxExec(t, "--workdir", workdir(t, "segv"), "--", "./segv")
	wantVerdict(t, r, api.VerdictSignaled)
	if r.Signal != "SIGSEGV" {
		t.Errorf("signal %q, want SIGSEGV", r.Signal)
	}
}

func TestAbortIsSIGABRT(t *testing.T) {
	r := sandboxExec(t, "--workdir", workdir(t, "abort"), "--", "./abort")
	wantVerdict(t, r, api.VerdictSignaled)
	if r.Signal != "SIGABRT" {
		t.Errorf("signal %q, want SIGABRT", r.Signal)
	}
}

func TestCPULimit(t *testing.T) {
	r := sandboxExec(t, "--cpu-time-ms", "500", "--wall-time-ms", "10000", "--workdir", workdir(t, "spin"), "--", "./spin", "1")
	wantVerdict(t, r, api.VerdictCPUTimeLimit)
	// The budget is enforced within a few ms of CPU; leave room for a
	// loaded CI machine.
	if r.CPUTimeMS < 500 || r.CPUTimeMS > 560 {
		t.Errorf("cpu %.1f ms under a 500 ms limit, want 500..560", r.CPUTimeMS)
	}
	t.Logf("CPU overshoot: %.1f ms", r.CPUTimeMS-500)
}

func TestCPULimitCountsEveryThread(t *testing.T) {
	r := sandboxExec(t, "--cpu-time-ms", "1000", "--wall-time-ms", "10000", "--workdir", workdir(t, "spin"), "--", "./spin", "4")
	wantVerdict(t, r, api.VerdictCPUTimeLimit)
	if r.CPUTimeMS < 1000 || r.CPUTimeMS > 1080 {
		t.Errorf("cpu %.1f ms under a 1000 ms limit, want 1000..1080", r.CPUTimeMS)
	}
	// Four threads that each burn 250 ms of their own CPU time, the main
	// thread idle: the step's CPU is their sum, however loaded the host.
	r = sandboxExec(t, "--cpu-time-ms", "5000", "--wall-time-ms", "20000", "--workdir", workdir(t, "spin"), "--", "./spin", "4", "250")
	wantVerdict(t, r, api.VerdictOK)
	if r.CPUTimeMS < 1000 || r.CPUTimeMS > 1200 {
		t.Errorf("cpu %.1f ms for 4 threads of 250 ms each, want 1000..1200", r.CPUTimeMS)
	}
}

func TestWallLimit(t *testing.T) {
	r := sandboxExec(t, "--wall-time-ms", "300", "--", "sleep", "10")
	wantVerdict(t, r, api.VerdictWallTimeLimit)
	if r.WallTimeMS < 300 || r.WallTimeMS > 1000 {
		t.Errorf("wall %.1f ms under a 300 ms limit", r.WallTimeMS)
	}
	if r.CPUTimeMS > 50 {
		t.Errorf("sleeping used %.1f ms of CPU", r.CPUTimeMS)
	}
}

func TestMemoryLimit(t *testing.T) {
	r := sandboxExec(t, "--memory-bytes", fmt.Sprint(128<<20), "--workdir", workdir(t, "alloc"), "--", "./alloc", "512")
	wantVerdict(t, r, api.VerdictMemoryLimit)
	if r.MemoryPeakBytes < 120<<20 || r.MemoryPeakBytes > 130<<20 {
		t.Errorf("memory peak %d, want near the 128 MiB limit", r.MemoryPeakBytes)
	}
	if strings.Contains(r.Stdout, "done") {
		t.Error("the program finished allocating 512 MiB under a 128 MiB limit")
	}
}

func TestMemoryWithinLimit(t *testing.T) {
	r := sandboxExec(t, "--memory-bytes", fmt.Sprint(128<<20), "--workdir", workdir(t, "alloc"), "--", "./alloc", "64")
	wantVerdict(t, r, api.VerdictOK)
	if r.MemoryPeakBytes < 64<<20 || r.MaxRSSBytes < 64<<20 {
		t.Errorf("memory peak %d, max rss %d: want at least the 64 MiB touched", r.MemoryPeakBytes, r.MaxRSSBytes)
	}
}

func TestForkBomb(t *testing.T) {
	start := time.Now()
	r := sandboxExec(t, "--pids", "32", "--cpu-time-ms", "2000", "--wall-time-ms", "2000", "--", "sh", "-c", "f() { f | f & }; f; wait")
	if r.Verdict != api.VerdictWallTimeLimit && r.Verdict != api.VerdictCPUTimeLimit && r.Verdict != api.VerdictOK && r.Verdict != api.VerdictNonzeroExit {
		t.Fatalf("verdict %s", r.Verdict)
	}
	if r.PIDsPeak > 32 {
		t.Errorf("pids_peak %d above the limit 32", r.PIDsPeak)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	// The host can still fork; nothing of the bomb is left (checked by
	// sandboxExec).
	if err := hostRun("true"); err != nil {
		t.Errorf("the host cannot start a process after the fork bomb: %v", err)
	}
}

func TestOutputLimit(t *testing.T) {
	r := sandboxExec(t, "--output-bytes", "1000", "--", "yes")
	wantVerdict(t, r, api.VerdictOutputLimit)
	if len(r.Stdout) != 1000 || !r.StdoutTruncated || r.Stdout[:6] != "y\ny\ny\n" {
		t.Errorf("stdout %d bytes (truncated %v) starting %q", len(r.Stdout), r.StdoutTruncated, r.Stdout[:min(len(r.Stdout), 6)])
	}
}

func TestOutputKeptWhenALimitHits(t *testing.T) {
	r := sandboxExec(t, "--cpu-time-ms", "300", "--workdir", workdir(t, "spin"), "--", "sh", "-c", "echo before; ./spin")
	wantVerdict(t, r, api.VerdictCPUTimeLimit)
	if r.Stdout != "before\n" {
		t.Errorf("stdout %q, want what was written before the limit", r.Stdout)
	}
}

func TestFileSizeLimit(t *testing.T) {
	r := sandboxExec(t, "--file-size-bytes", "100000", "--", "sh", "-c", "exec head -c 1000000 /dev/zero > big")
	wantVerdict(t, r, api.VerdictOutputLimit)
}

func TestDaemonizedGrandchildIsKilled(t *testing.T) {
	start := time.Now()
	r := sandboxExec(t, "--", "sh", "-c", "(setsid sleep 60 > /dev/null 2>&1 &); echo parent done")
	wantVerdict(t, r, api.VerdictOK)
	if time.Since(start) > 5*time.Second {
		t.Errorf("the step waited for its daemonised grandchild: %v", time.Since(start))
	}
	// sandboxExec asserted that no process is left under a sandbox uid.
}

func TestStdin(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, []byte("world\n"), 0o644)
	r := sandboxExec(t, "--stdin", in, "--workdir", workdir(t, "hello"), "--", "./hello")
	wantVerdict(t, r, api.VerdictOK)
	if r.Stdout != "hello, world\n" {
		t.Errorf("stdout %q", r.Stdout)
	}
}

func TestEnvIsClean(t *testing.T) {
	os.Setenv("SANDBOXD_SECRET", "leak")
	defer os.Unsetenv("SANDBOXD_SECRET")
	r := sandboxExec(t, "--env", "GREETING=hi", "--", "env")
	wantVerdict(t, r, api.VerdictOK)
	if strings.Contains(r.Stdout, "SANDBOXD_SECRET") || !strings.Contains(r.Stdout, "GREETING=hi\n") || !strings.Contains(r.Stdout, "PATH=/usr/local/bin:/usr/bin:/bin\n") {
		t.Errorf("environment:\n%s", r.Stdout)
	}
}

func TestIdentity(t *testing.T) {
	r := sandboxExec(t, "--", "sh", "-c", `id; cat /proc/self/uid_map /proc/self/gid_map; grep -E '^(Cap[A-Za-z]+|NoNewPrivs|Seccomp):' /proc/self/status; cat /proc/1/comm; echo $$`)
	wantVerdict(t, r, api.VerdictOK)
	out := r.Stdout
	for _, want := range []string{
		"uid=1000(sandbox) gid=1000(sandbox)",
		"CapInh:\t0000000000000000", "CapPrm:\t0000000000000000", "CapEff:\t0000000000000000",
		"CapBnd:\t0000000000000000", "CapAmb:\t0000000000000000",
		"NoNewPrivs:\t1", "Seccomp:\t2", "sandboxd-init",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("inside output lacks %q:\n%s", want, out)
		}
	}
	// uid_map: "0 <init's host uid> 1" and "1000 <host uid> 1", both
	// unprivileged, the program's one ours alone.
	lines := strings.Split(out, "\n")
	var in0, host0, n0, in1, host1, n1 int
	fmt.Sscanf(lines[1], "%d %d %d", &in0, &host0, &n0)
	fmt.Sscanf(lines[2], "%d %d %d", &in1, &host1, &n1)
	// The test gives exec its uids (--uid-base, --uid-count).
	if in0 != 0 || n0 != 1 || int64(host0) != hostcheck.InitUID {
		t.Errorf("uid_map %q: want 0 mapped to the inits' host uid %d", lines[1], hostcheck.InitUID)
	}
	if in1 != 1000 || n1 != 1 || host1 < int(hostcheck.UIDBase) || host1 >= int(hostcheck.UIDBase+hostcheck.UIDCount) {
		t.Errorf("uid_map %q: want 1000 mapped to one unprivileged host uid", lines[2])
	}
}

func TestHostProcessesInvisible(t *testing.T) {
	r := sandboxExec(t, "--", "sh", "-c", `ls /proc | grep -c '^[0-9]'; cat /proc/*/cmdline | tr '\0' ' '`)
	wantVerdict(t, r, api.VerdictOK)
	lines := strings.SplitN(r.Stdout, "\n", 2)
	var n int
	fmt.Sscan(lines[0], &n)
	// The init, the shell, ls, grep (and the init's Go threads are tasks,
	// not processes).
	if n > 6 {
		t.Errorf("%d processes visible in the sandbox:\n%s", n, r.Stdout)
	}
	if strings.Contains(r.Stdout, "go test") || strings.Contains(r.Stdout, "systemd") || strings.Contains(r.Stdout, ".test") {
		t.Errorf("a host process is visible:\n%s", r.Stdout)
	}
}

func TestHostLoopbackUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("host secret\n"))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	script := fmt.Sprintf(`
import socket
try:
    s = socket.create_connection(("127.0.0.1", %d), timeout=2)
    print("connected:", s.recv(100))
except OSError as e:
    print("refused:", e)
`, port)
	r := sandboxExec(t, "--", "python3", "-c", script)
	wantVerdict(t, r, api.VerdictOK)
	if !strings.HasPrefix(r.Stdout, "refused:") {
		t.Errorf("the host's loopback listener was reachable: %q", r.Stdout)
	}
	r = sandboxExec(t, "--", "sh", "-c", "cat /proc/net/dev | tail -n +3 | cut -d: -f1")
	if strings.TrimSpace(r.Stdout) != "lo" {
		t.Errorf("interfaces in the sandbox: %q, want only lo", r.Stdout)
	}
}

func TestWritesOutsideWorkdirAndTmpRefused(t *testing.T) {
	r := sandboxExec(t, "--", "sh", "-c", `
for f in /x /usr/x /etc/x /bin/x /dev/x /proc/x; do
	if (echo data > $f) 2>/dev/null; then echo "WROTE $f"; fi
done
echo a > /workspace/ok && echo a > /tmp/ok && echo a > /dev/shm/ok && echo fine`)
	wantVerdict(t, r, api.VerdictOK)
	if strings.Contains(r.Stdout, "WROTE") || !strings.Contains(r.Stdout, "fine") {
		t.Errorf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}

func TestHostSecretsAbsent(t *testing.T) {
	r := sandboxExec(t, "--", "sh", "-c", "cat /etc/shadow; ls /sys /root /home 2>&1; echo end")
	wantVerdict(t, r, api.VerdictOK)
	if strings.Contains(r.Stdout, "root:") {
		t.Errorf("/etc/shadow was read: %q", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "/etc/shadow") {
		t.Errorf("stderr %q", r.Stderr)
	}
}

func TestMissingProgram(t *testing.T) {
	r := sandboxExec(t, "--", "no-such-program")
	wantVerdict(t, r, api.VerdictExecFailed)
	if !strings.Contains(r.Message, "no-such-program") {
		t.Errorf("message %q does not name the program", r.Message)
	}
	r = sandboxExec(t, "--", "/etc/passwd")
	wantVerdict(t, r, api.VerdictExecFailed)
}

func TestPython(t *testing.T) {
	r := sandboxExec(t, "--", "python3", "-c", "import sys, os; print(sum(range(10)), os.getcwd(), sys.version_info[0])")
	wantVerdict(t, r, api.VerdictOK)
	if r.Stdout != "45 /workspace 3\n" {
		t.Errorf("stdout %q stderr %q", r.Stdout, r.Stderr)
	}
}

func TestCompileAndRunC(t *testing.T) {
	dir := t.TempDir()
	src, _ := os.ReadFile("testdata/hello.c")
	os.WriteFile(filepath.Join(dir, "main.c"), src, 0o644)
	r := sandboxExec(t, "--workdir", dir, "--cpu-time-ms", "20000", "--wall-time-ms", "40000", "--", "gcc", "-O2", "-o", "main", "main.c")
	wantVerdict(t, r, api.VerdictOK)
	in := filepath.Join(t.TempDir(), "in")
	os.WriteFile(in, []byte("gcc\n"), 0o644)
	r = sandboxExec(t, "--workdir", dir, "--stdin", in, "--", "./main")
	wantVerdict(t, r, api.VerdictOK)
	if r.Stdout != "hello, gcc\n" {
		t.Errorf("stdout %q", r.Stdout)
	}
	// The workdir is given back to its owner.
	fi, err := os.Stat(filepath.Join(dir, "main"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != uint32(os.Getuid()) {
		t.Errorf("main is owned by uid %d after the run, want %d", st.Uid, os.Getuid())
	}
}

func TestBlockedSyscalls(t *testing.T) {
	dir := workdir(t, "syscalls")
	for _, call := range []string{
		"ptrace", "unshare", "setns", "clone", "mount", "umount2", "pivot_root", "chroot", "bpf",
		"perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
		"kexec_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
		"TIOCSTI", "TIOCLINUX", "open_by_handle_at", "syslog", "iopl", "ioperm", "personality",
		"process_vm_readv", "i386", "x32",
	} {
		t.Run(call, func(t *testing.T) {
			if call == "i386" && !hostHasIA32() {
				t.Skip("this kernel has no IA32 emulation: int 0x80 faults before seccomp sees it")
			}
			r := sandboxExec(t, "--workdir", dir, "--", "./syscalls", call)
			wantVerdict(t, r, api.VerdictSyscallBlocked)
			want := map[string]string{"TIOCSTI": "ioctl", "TIOCLINUX": "ioctl", "i386": "i386", "x32": "x32"}[call]
			if want == "" {
				want = call
			}
			if !strings.Contains(r.Message, want) {
				t.Errorf("message %q does not name %q", r.Message, want)
			}
			if r.Stdout != "" {
				t.Errorf("the call returned: %q", r.Stdout)
			}
		})
	}
	// clone3 and io_uring_setup are refused softly (ENOSYS), so that libc
	// falls back to clone and event loops to epoll.
	for _, call := range []string{"clone3", "io_uring_setup"} {
		r := sandboxExec(t, "--workdir", dir, "--", "./syscalls", call)
		wantVerdict(t, r, api.VerdictOK)
		if !strings.Contains(r.Stdout, "errno 38") {
			t.Errorf("%s: %q, want ENOSYS", call, r.Stdout)
		}
	}
}

// hostHasIA32 reports whether int 0x80 works on this kernel, by trying it
// outside any sandbox.
func hostHasIA32() bool {
	err := osexec.Command(filepath.Join(programsDir, "syscalls"), "i386").Run()
	return err == nil
}

func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cpu-time-ms", "-5", "--", "true"}, "cpu-time-ms"},
		{[]string{"--memory-bytes", "0", "--", "true"}, "memory-bytes"},
		{[]string{"--memory-bytes", "99999999999999", "--", "true"}, "memory-bytes"},
		{[]string{"--pids", "lots", "--", "true"}, "pids"},
		{[]string{"--no-such-flag", "--", "true"}, "no-such-flag"},
		{[]string{"--env", "NOEQUALS", "--", "true"}, "env"},
		{[]string{"--stdin", "/no/such/file", "--", "true"}, "stdin"},
		{[]string{"--workdir", "/no/such/dir", "--", "true"}, "workdir"},
		{[]string{"--wall-time-ms", "1000"}, "no command"},
	} {
		r := sandboxExecRaw(t, tc.args...)
		if r.exitCode != 2 || !strings.Contains(r.stderr, tc.want) || r.raw != "" {
			t.Errorf("sandboxd exec %q: exit %d, stderr %q, stdout %q; want exit 2 naming %q and no result", tc.args, r.exitCode, r.stderr, r.raw, tc.want)
		}
	}
	assertNoLeftovers(t)
}

func hostRun(name string) error {
	p, err := os.StartProcess("/bin/"+name, []string{name}, &os.ProcAttr{})
	if err != nil {
		return err
	}
	_, err = p.Wait()
	return err
}
