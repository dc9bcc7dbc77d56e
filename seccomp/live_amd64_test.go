//go:build linux

package seccomp

// Live tests: the compiled default policy installed on the real kernel, in
// child processes (this test binary re-executed), since a filter can never be
// removed from the process that installs it.
//
// Not covered live: i386 calls (int 0x80). The VM tests cover them, but on
// machines without ia32 emulation (this one among them) int 0x80 faults
// before seccomp sees it.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The environment of a re-executed child.
const (
	childJobEnv     = "SECCOMP_TEST_JOB"     // probe, listener or exec
	childVariantEnv = "SECCOMP_TEST_VARIANT" // which variant of the default policy to install
	childArgvEnv    = "SECCOMP_TEST_ARGV"    // exec: the program to run, as a JSON list
)

// markErrno is what the "marked" variant answers for every call the policy
// does not allow: no probe's arguments make the kernel itself say it, so it
// proves the filter answered.
const markErrno = unix.EHWPOISON

func TestMain(m *testing.M) {
	if job := os.Getenv(childJobEnv); job != "" {
		os.Exit(runChild(job))
	}
	os.Exit(m.Run())
}

// policyVariant is the default policy as a live test installs it:
//   - "default": as is; with no listener, Notify calls fail with ENOSYS;
//   - "marked": every answer but Allow becomes Errno markErrno;
//   - "kill": Notify becomes Kill, so a program that meets a Notify rule
//     dies of SIGSYS.
func policyVariant(name string) (Policy, error) {
	p := DefaultPolicy()
	switch name {
	case "default":
	case "marked":
		for i := range p.Rules {
			if r := &p.Rules[i]; r.Action != Allow {
				r.Action, r.Errno = Errno, markErrno
			}
		}
		p.ForeignABI, p.ForeignABIErrno = Errno, markErrno
	case "kill":
		for i := range p.Rules {
			if r := &p.Rules[i]; r.Action == Notify {
				r.Action = Kill
			}
		}
		p.ForeignABI = Kill
	default:
		return Policy{}, fmt.Errorf("unknown policy variant %q", name)
	}
	return p, nil
}

// install sets no_new_privs and installs prog on the calling thread (which the
// caller has locked), with the given seccomp flags. It returns the listener
// fd when flags ask for one.
func install(prog []unix.SockFilter, flags uintptr) (int, error) {
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return -1, os.NewSyscallError("prctl PR_SET_NO_NEW_PRIVS", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, os.NewSyscallError("seccomp", errno)
	}
	return int(r), nil
}

// probe is one system call a child makes under the filter.
type probe struct {
	name string
	d    Data
	// kernel is the kernel's own answer when the policy allows the call (0
	// for success). Arguments of blocked calls are chosen so that the call
	// would fail harmlessly (bad pointers, bad flags) if it ever ran: the
	// test runs as root.
	kernel  unix.Errno
	closeFD bool // on success the call returns an fd to close
}

func liveProbes() []probe {
	const (
		bad  = 1          // an address nothing can read or write: EFAULT if a call ran
		neg1 = ^uint64(0) // fd -1
		// CLONE_THREAD without CLONE_SIGHAND: the kernel refuses it (EINVAL)
		// before creating anything.
		invalidClone = unix.CLONE_THREAD
	)
	probes := []probe{
		{name: "ptrace", d: x86("ptrace", 0x7fffffff)},
		{name: "process_vm_readv", d: x86("process_vm_readv", 0x7fffffff, bad, 1, bad, 1)},
		{name: "process_vm_writev", d: x86("process_vm_writev", 0x7fffffff, bad, 1, bad, 1)},
		{name: "pidfd_getfd", d: x86("pidfd_getfd", neg1, neg1)},
		{name: "process_madvise", d: x86("process_madvise", neg1, bad, 1)},
		{name: "kcmp", d: x86("kcmp", 0x7fffffff, 0x7fffffff)},
		{name: "mount", d: x86("mount", bad, bad, bad, 0, bad)},
		{name: "umount2", d: x86("umount2", bad)},
		{name: "pivot_root", d: x86("pivot_root", bad, bad)},
		{name: "chroot", d: x86("chroot", bad)},
		{name: "move_mount", d: x86("move_mount", neg1, bad, neg1, bad)},
		{name: "open_tree", d: x86("open_tree", neg1, bad)},
		{name: "open_tree_attr", d: x86("open_tree_attr", neg1, bad, 0, bad, 0)},
		{name: "fsopen", d: x86("fsopen", bad)},
		{name: "fsconfig", d: x86("fsconfig", neg1, 0xffff)},
		{name: "fsmount", d: x86("fsmount", neg1)},
		{name: "fspick", d: x86("fspick", neg1, bad)},
		{name: "mount_setattr", d: x86("mount_setattr", neg1, bad, 0, bad, 0)},
		{name: "open_by_handle_at", d: x86("open_by_handle_at", neg1, bad)},
		{name: "name_to_handle_at", d: x86("name_to_handle_at", neg1, bad, bad, bad)},
		{name: "unshare", d: x86("unshare", 0)},
		{name: "setns", d: x86("setns", neg1)},
		{name: "listns", d: x86("listns", bad, bad, 0, 0)},
		{name: "bpf", d: x86("bpf", 0xffff)},
		{name: "perf_event_open", d: x86("perf_event_open", bad, 0, neg1, neg1)},
		{name: "keyctl", d: x86("keyctl", 0xffff)},
		{name: "add_key", d: x86("add_key", bad, bad)},
		{name: "request_key", d: x86("request_key", bad, bad)},
		{name: "userfaultfd", d: x86("userfaultfd", 0xffffffff)},
		{name: "io_uring_enter", d: x86("io_uring_enter", neg1)},
		{name: "io_uring_register", d: x86("io_uring_register", neg1)},
		{name: "modify_ldt", d: x86("modify_ldt", 0)},
		{name: "lookup_dcookie", d: x86("lookup_dcookie", 0, bad)},
		{name: "fanotify_init", d: x86("fanotify_init", 0xffffffff)},
		{name: "uselib", d: x86("uselib", bad)},
		// Unknown flag bits and a foreign arch: EINVAL before anything loads.
		{name: "kexec_load", d: x86("kexec_load", 0, 0, 0, 0x7fff8000)},
		{name: "kexec_file_load", d: x86("kexec_file_load", neg1, neg1, 0, 0, 0xffffffff)},
		{name: "init_module", d: x86("init_module", bad, 0, bad)},
		{name: "finit_module", d: x86("finit_module", neg1, bad)},
		{name: "delete_module", d: x86("delete_module", bad)},
		{name: "create_module", d: x86("create_module", bad)},
		{name: "get_kernel_syms", d: x86("get_kernel_syms", bad)},
		{name: "query_module", d: x86("query_module", bad)},
		{name: "reboot", d: x86("reboot", 0, 0, 0)}, // no magic: EINVAL
		{name: "swapon", d: x86("swapon", bad)},
		{name: "swapoff", d: x86("swapoff", bad)},
		{name: "settimeofday", d: x86("settimeofday", 0, 0)}, // sets nothing
		{name: "clock_settime", d: x86("clock_settime", 0xffff, bad)},
		{name: "clock_adjtime", d: x86("clock_adjtime", 0xffff, bad)},
		{name: "adjtimex", d: x86("adjtimex", bad)},
		{name: "iopl", d: x86("iopl", 4)},
		{name: "ioperm", d: x86("ioperm", 65536, 1, 1)},
		{name: "acct", d: x86("acct", bad)},
		{name: "quotactl", d: x86("quotactl", 0, bad)},
		{name: "quotactl_fd", d: x86("quotactl_fd", neg1)},
		{name: "syslog", d: x86("syslog", 0xff)},
		{name: "vhangup", d: x86("vhangup")}, // the child has no controlling terminal
		{name: "nfsservctl", d: x86("nfsservctl")},
		{name: "_sysctl", d: x86("_sysctl", bad)},
		{name: "sysfs", d: x86("sysfs", 0xff)},
		{name: "ustat", d: x86("ustat", 0, bad)},
		// fd 0 is a pipe: a terminal ioctl that ran would fail with ENOTTY.
		{name: "ioctl TIOCSTI", d: x86("ioctl", 0, unix.TIOCSTI, bad)},
		{name: "ioctl TIOCSTI with upper bits", d: x86("ioctl", 0, 0xffff_0000_0000_0000|unix.TIOCSTI, bad)},
		{name: "ioctl TIOCLINUX", d: x86("ioctl", 0, unix.TIOCLINUX, bad)},
		{name: "personality READ_IMPLIES_EXEC", d: x86("personality", 0x0400000)},
		{name: "personality MMAP_PAGE_ZERO with upper bits", d: x86("personality", 1<<32|0x0100000)},
		{name: "clone3", d: x86("clone3", bad, 0)},
		{name: "io_uring_setup", d: x86("io_uring_setup", 1, bad)},
		{name: "socket AF_ALG", d: x86("socket", unix.AF_ALG, unix.SOCK_SEQPACKET), closeFD: true},
		{name: "socket AF_PACKET", d: x86("socket", unix.AF_PACKET, unix.SOCK_DGRAM), closeFD: true},
		{name: "socketpair AF_VSOCK", d: x86("socketpair", unix.AF_VSOCK, unix.SOCK_STREAM, 0, bad)},
		{name: "socket AF_NETLINK", d: x86("socket", unix.AF_NETLINK, unix.SOCK_RAW, unix.NETLINK_ROUTE), closeFD: true},
		{name: "io_setup", d: x86("io_setup", 1, bad)},
		{name: "inotify_init", d: x86("inotify_init"), closeFD: true},
		{name: "inotify_init1", d: x86("inotify_init1", unix.IN_CLOEXEC), closeFD: true},
		{name: "mq_open", d: x86("mq_open", bad, 0, 0, 0)},
		{name: "x32 getpid", d: Data{Nr: unix.SYS_GETPID | x32SyscallBit, Arch: unix.AUDIT_ARCH_X86_64}},

		// Allowed: the kernel answers.
		{name: "getpid", d: x86("getpid"), kernel: 0},
		{name: "personality query", d: x86("personality", 0xffffffff), kernel: 0},
		{name: "personality query sign-extended", d: x86("personality", neg1), kernel: 0},
		{name: "personality ADDR_NO_RANDOMIZE", d: x86("personality", 0x0040000), kernel: 0},
		{name: "personality PER_LINUX", d: x86("personality", 0), kernel: 0},
		{name: "ioctl TCGETS on a pipe", d: x86("ioctl", 0, unix.TCGETS, 0), kernel: unix.ENOTTY},
		{name: "socket AF_UNIX", d: x86("socket", unix.AF_UNIX, unix.SOCK_STREAM), kernel: 0, closeFD: true},
		{name: "socket AF_UNIX with upper bits", d: x86("socket", 1<<40|unix.AF_UNIX, unix.SOCK_STREAM), kernel: 0, closeFD: true},
		{name: "socket AF_INET", d: x86("socket", unix.AF_INET, unix.SOCK_DGRAM), kernel: 0, closeFD: true},
		{name: "socketpair AF_UNIX into a bad pointer", d: x86("socketpair", unix.AF_UNIX, unix.SOCK_STREAM, 0, bad), kernel: unix.EFAULT},
		{name: "clone without namespace flags", d: x86("clone", invalidClone), kernel: unix.EINVAL},
		{name: "number 999", d: Data{Nr: 999, Arch: unix.AUDIT_ARCH_X86_64}, kernel: unix.ENOSYS},
	}
	for _, f := range []struct {
		name string
		flag uint64
	}{
		{"CLONE_NEWNS", unix.CLONE_NEWNS}, {"CLONE_NEWCGROUP", unix.CLONE_NEWCGROUP},
		{"CLONE_NEWUTS", unix.CLONE_NEWUTS}, {"CLONE_NEWIPC", unix.CLONE_NEWIPC},
		{"CLONE_NEWUSER", unix.CLONE_NEWUSER}, {"CLONE_NEWPID", unix.CLONE_NEWPID},
		{"CLONE_NEWNET", unix.CLONE_NEWNET}, {"CLONE_NEWTIME", unix.CLONE_NEWTIME},
	} {
		probes = append(probes, probe{name: "clone " + f.name, d: x86("clone", f.flag|invalidClone)})
	}
	return probes
}

// probeResult is what a child reports for one probe.
type probeResult struct {
	Name  string
	Errno int
}

// forkProbe names the probe that runs a program, to show plain fork and exec
// pass (and that the kernel's own calls for exec do).
const forkProbe = "fork and exec /bin/true"

// runChild is the child side. It returns the exit code.
func runChild(job string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", job, err)
		return 2
	}
	runtime.LockOSThread() // no_new_privs and a filter without TSYNC are per thread
	p, err := policyVariant(os.Getenv(childVariantEnv))
	if err != nil {
		return fail(err)
	}
	prog, err := Compile(p)
	if err != nil {
		return fail(err)
	}
	switch job {
	case "probe":
		if _, err := install(prog, unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
			return fail(err)
		}
		var results []probeResult
		for _, pr := range liveProbes() {
			var a [6]uintptr
			for i, v := range pr.d.Args {
				a[i] = uintptr(v)
			}
			r, _, errno := unix.Syscall6(uintptr(uint32(pr.d.Nr)), a[0], a[1], a[2], a[3], a[4], a[5])
			if errno == 0 && pr.closeFD {
				unix.Close(int(r))
			}
			results = append(results, probeResult{Name: pr.name, Errno: int(errno)})
		}
		res := probeResult{Name: forkProbe}
		if err := exec.Command("/bin/true").Run(); err != nil {
			res.Errno = -1
			fmt.Fprintf(os.Stderr, "%s: %v\n", forkProbe, err)
		}
		results = append(results, res)
		if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
			return fail(err)
		}
		return 0

	case "listener":
		return listenerChild(prog)

	case "exec":
		var argv []string
		if err := json.Unmarshal([]byte(os.Getenv(childArgvEnv)), &argv); err != nil || len(argv) == 0 {
			return fail(fmt.Errorf("bad %s: %v", childArgvEnv, err))
		}
		path, err := exec.LookPath(argv[0])
		if err != nil {
			return fail(err)
		}
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "SECCOMP_TEST_") {
				env = append(env, kv)
			}
		}
		if _, err := install(prog, unix.SECCOMP_FILTER_FLAG_TSYNC); err != nil {
			return fail(err)
		}
		return fail(unix.Exec(path, argv, env))
	}
	return fail(fmt.Errorf("unknown job"))
}

// seccompNotif is struct seccomp_notif; its data is struct seccomp_data,
// which Data mirrors field for field.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  Data
}

// seccompNotifResp is struct seccomp_notif_resp.
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// listenerResult is what the listener child reports.
type listenerResult struct {
	Name        string // SyscallName of the notification
	Arg0        uint64
	FromThisTID bool   // the notification's pid is the filtered thread
	Errno       int    // what the filtered call returned
	Err         string // a failure of the listener side
}

// listenerChild installs the filter with a listener on this (locked) thread
// only, plays the sandbox's init (the listener) on another goroutine, which the runtime runs on
// another thread, and makes a blocked call.
func listenerChild(prog []unix.SockFilter) int {
	fd, err := install(prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	res := listenerResult{}
	seen := make(chan seccompNotif, 1)
	supervised := make(chan error, 1)
	go func() {
		var n seccompNotif
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_RECV, uintptr(unsafe.Pointer(&n))); errno != 0 {
			supervised <- os.NewSyscallError("ioctl SECCOMP_IOCTL_NOTIF_RECV", errno)
			return
		}
		seen <- n
		resp := seccompNotifResp{ID: n.ID, Error: -int32(unix.EPERM)}
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SECCOMP_IOCTL_NOTIF_SEND, uintptr(unsafe.Pointer(&resp))); errno != 0 {
			supervised <- os.NewSyscallError("ioctl SECCOMP_IOCTL_NOTIF_SEND", errno)
			return
		}
		supervised <- nil
	}()
	tid := unix.Gettid()
	_, _, errno := unix.Syscall(unix.SYS_PTRACE, 0x7fffffff, 0, 0)
	res.Errno = int(errno)
	if err := <-supervised; err != nil {
		res.Err = err.Error()
	} else {
		n := <-seen
		res.Name = SyscallName(n.Data.Arch, n.Data.Nr)
		res.Arg0 = n.Data.Args[0]
		res.FromThisTID = int(n.Pid) == tid
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		return 2
	}
	return 0
}

// runChildJob re-executes the test binary as a child with the given job.
func runChildJob(t *testing.T, job, variant string, argv []string, dir string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childJobEnv+"="+job, childVariantEnv+"="+variant)
	if argv != nil {
		js, _ := json.Marshal(argv)
		cmd.Env = append(cmd.Env, childArgvEnv+"="+string(js))
	}
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader("") // a pipe: terminal ioctls on fd 0 fail with ENOTTY
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal for vhangup
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%w\nstdout: %s\nstderr: %s", err, out, stderr.Bytes())
	}
	return out, nil
}

func TestLiveProbes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the live tests run as root (CI does): they install filters and probe privileged calls")
	}
	p := DefaultPolicy()
	probes := liveProbes()

	// Every rule that does not allow must be met by some probe, and so
	// must the foreign ABI check.
	covered := make(map[int]bool)
	for _, pr := range probes {
		_, _, by := p.decide(pr.d)
		covered[by] = true
	}
	for i, r := range p.Rules {
		if r.Action != Allow && !covered[i] {
			t.Errorf("rule %d (%s) has no live probe", i, r)
		}
	}
	if !covered[decidedByForeign] {
		t.Error("no live probe of a foreign ABI call")
	}

	for _, variant := range []string{"default", "marked"} {
		t.Run(variant, func(t *testing.T) {
			out, err := runChildJob(t, "probe", variant, nil, "")
			if err != nil {
				t.Fatal(err)
			}
			var results []probeResult
			if err := json.Unmarshal(out, &results); err != nil {
				t.Fatalf("child output %q: %v", out, err)
			}
			if len(results) != len(probes)+1 {
				t.Fatalf("child ran %d probes, want %d", len(results), len(probes)+1)
			}
			for i, pr := range probes {
				got := unix.Errno(results[i].Errno)
				action, errno := p.Decide(pr.d)
				var want unix.Errno
				switch {
				case action == Allow:
					want = pr.kernel
				case variant == "marked":
					want = markErrno
				case action == Notify:
					want = unix.ENOSYS // no listener attached
				case action == Errno:
					want = errno
				default:
					t.Fatalf("%s: the default policy says %v", pr.name, action)
				}
				if got != want {
					t.Errorf("%s (%v by the policy): errno %d (%v), want %d (%v)", pr.name, action, int(got), got, int(want), want)
				}
			}
			if last := results[len(results)-1]; last.Name != forkProbe || last.Errno != 0 {
				t.Errorf("%s failed under the filter", forkProbe)
			}
		})
	}
}

func TestLiveListener(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the live tests run as root (CI does)")
	}
	out, err := runChildJob(t, "listener", "default", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var res listenerResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("child output %q: %v", out, err)
	}
	if res.Err != "" {
		t.Fatalf("listener side: %s", res.Err)
	}
	if res.Name != "ptrace" || res.Arg0 != 0x7fffffff || !res.FromThisTID {
		t.Errorf("notification: %+v; want ptrace with arg0 0x7fffffff from the filtered thread", res)
	}
	if unix.Errno(res.Errno) != unix.EPERM {
		t.Errorf("the blocked call returned errno %d, want EPERM (the listener's answer)", res.Errno)
	}
}

// TestLivePrograms runs real programs under the default policy with Notify
// turned into Kill: a program that met a Notify rule would die of SIGSYS.
func TestLivePrograms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the live tests run as root (CI does)")
	}
	dir := t.TempDir()
	files := map[string]string{
		"work.sh":    shellWork,
		"work.py":    pythonWork,
		"hello.c":    cWork,
		"hello.cc":   cxxWork,
		"Hello.java": javaWork,
		"work.js":    nodeWork,
		"main.go":    goWork,
		"hello.rs":   rustWork,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	programs := []struct {
		name string
		argv []string
		need string // the tool that must be installed
	}{
		{"sh", []string{"sh", "-c", "echo ok"}, "sh"},
		{"bash and coreutils", []string{"bash", "work.sh"}, "bash"},
		{"python3", []string{"python3", "work.py"}, "python3"},
		{"gcc", []string{"sh", "-c", "gcc -O2 -Wall -pthread -o hello-c hello.c && ./hello-c"}, "gcc"},
		{"g++", []string{"sh", "-c", "g++ -O2 -std=c++17 -pthread -o hello-cc hello.cc && ./hello-cc"}, "g++"},
		{"java", []string{"sh", "-c", "javac -d . Hello.java && java -Xmx256m -cp . Hello"}, "javac"},
		{"node", []string{"node", "work.js"}, "node"},
		{"go", []string{"go", "run", "main.go"}, "go"},
		{"rustc", []string{"sh", "-c", "rustc -o hello-rs hello.rs && ./hello-rs"}, "rustc"},
	}
	for _, pg := range programs {
		t.Run(pg.name, func(t *testing.T) {
			if _, err := exec.LookPath(pg.need); err != nil {
				t.Skipf("%s is not installed here", pg.need)
			}
			out, err := runChildJob(t, "exec", "kill", pg.argv, dir)
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGSYS {
					t.Fatalf("%v died of SIGSYS: it made a call the default policy reports\n%v", pg.argv, err)
				}
			}
			if err != nil {
				t.Fatalf("%v: %v", pg.argv, err)
			}
			if !strings.Contains(string(out), "ok") {
				t.Errorf("%v printed %q, want ok", pg.argv, out)
			}
		})
	}

	// The control: a program that does meet a Notify rule dies of SIGSYS,
	// so the passes above mean something.
	t.Run("control: unshare --user", func(t *testing.T) {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Skip("unshare (util-linux) is not installed here")
		}
		_, err := runChildJob(t, "exec", "kill", []string{"unshare", "--user", "true"}, dir)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("unshare --user under the kill variant: %v, want death by SIGSYS", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
			t.Fatalf("unshare --user under the kill variant: %v, want death by SIGSYS", err)
		}
	})
}

const shellWork = `set -euo pipefail
x=$(echo hello | tr a-z A-Z); [ "$x" = HELLO ]
seq 1 1000 | sort -rn | head -n 3 | wc -l >/dev/null
mkdir -p d/e && touch d/e/f && cp -r d d2 && mv d2 d3 && ln -s d3 l && readlink l >/dev/null
ls -laR d3 >/dev/null; stat d3 >/dev/null; du -sh d3 >/dev/null; df . >/dev/null
find . -name f | xargs ls -l >/dev/null
sha256sum /etc/passwd >/dev/null; md5sum /etc/passwd >/dev/null
date +%s >/dev/null; id >/dev/null; uname -a >/dev/null; nproc >/dev/null; env >/dev/null
grep -c root /etc/passwd >/dev/null; sed -n 1p /etc/passwd >/dev/null
awk -F: '{n++} END {print n}' /etc/passwd >/dev/null
tar -cf t.tar d3 && tar -tf t.tar >/dev/null && gzip -k t.tar && gunzip -c t.tar.gz >/dev/null
chmod 600 d3/e/f; rm -rf d d3 l t.tar t.tar.gz
(sleep 0.01 &); sleep 0.01 & wait; timeout 5 sleep 0.01
f() { local y=$1; echo "$y"; }; [ "$(f ok)" = ok ]
echo ok
`

const pythonWork = `import asyncio, hashlib, json, multiprocessing, os, platform, socket, sqlite3, ssl, subprocess, tempfile, threading, time

def square(x):
    return x * x

async def later():
    await asyncio.sleep(0.01)
    return 1

if __name__ == "__main__":
    threads = [threading.Thread(target=sum, args=(range(10000),)) for _ in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert subprocess.run(["true"]).returncode == 0
    with multiprocessing.Pool(2) as pool:
        assert pool.map(square, range(10))[3] == 9
    assert asyncio.run(later()) == 1
    ssl.create_default_context()
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.bind(("127.0.0.1", 0)); s.listen(); s.close()
    db = sqlite3.connect(":memory:"); db.execute("create table t(x)"); db.close()
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "f"), "w") as f: f.write("x")
    hashlib.sha256(b"x").hexdigest(); json.dumps(platform.uname()._asdict()); time.monotonic()
    print("ok")
`

const cWork = `#include <pthread.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void *work(void *arg) { return arg; }

int main(void) {
	pthread_t t;
	if (pthread_create(&t, NULL, work, NULL) != 0) return 1;
	pthread_join(t, NULL);
	pid_t pid = fork();
	if (pid == 0) _exit(0);
	int status;
	if (waitpid(pid, &status, 0) != pid || status != 0) return 1;
	puts("ok");
	return 0;
}
`

const cxxWork = `#include <iostream>
#include <thread>
#include <vector>

int main() {
	std::vector<std::thread> ts;
	for (int i = 0; i < 4; i++) ts.emplace_back([] {});
	for (auto &t : ts) t.join();
	std::cout << "ok" << std::endl;
}
`

const javaWork = `public class Hello {
	public static void main(String[] args) throws Exception {
		Thread t = new Thread(() -> {});
		t.start();
		t.join();
		Process p = new ProcessBuilder("true").start();
		if (p.waitFor() != 0) System.exit(1);
		System.out.println("ok");
	}
}
`

const nodeWork = `const fs = require("fs");
const cp = require("child_process");
const { Worker } = require("worker_threads");
fs.readFileSync("/etc/passwd");
fs.promises.readFile("/etc/passwd").then(() => {
	cp.execSync("true");
	const w = new Worker("1", { eval: true });
	w.on("exit", () => setTimeout(() => console.log("ok"), 10));
});
`

const goWork = `package main

import (
	"fmt"
	"net"
	"os/exec"
	"sync"
)

func main() {
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() { defer wg.Done() }()
	}
	wg.Wait()
	if err := exec.Command("true").Run(); err != nil {
		panic(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	l.Close()
	fmt.Println("ok")
}
`

const rustWork = `use std::process::Command;
use std::thread;

fn main() {
    let t = thread::spawn(|| 1);
    assert_eq!(t.join().unwrap(), 1);
    assert!(Command::new("true").status().unwrap().success());
    println!("ok");
}
`
