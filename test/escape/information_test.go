package escape

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

func informationCases() []escapeCase {
	return []escapeCase{
		{
			name:   "host_processes",
			tries:  "list /proc for other processes, and look up the daemon's and the test's host pids",
			expect: "only the init and the program itself; neither host pid exists",
			run: func(t *testing.T, e *env) {
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", `import json, os, sys
comms = []
for p in os.listdir("/proc"):
    if p.isdigit():
        comms.append(open("/proc/%s/comm" % p).read().strip())
print(json.dumps(sorted(comms)))
for pid in sys.argv[1:]:
    print(pid, os.path.exists("/proc/" + pid))
`, strconv.Itoa(e.d.pid()), strconv.Itoa(os.Getpid())}}}})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout(fmt.Sprintf("[\"python3\", \"sandboxd-init\"]\n%d False\n%d False\n", e.d.pid(), os.Getpid()))(t, e, res)
			},
		},
		{
			name:   "host_files",
			tries:  "stat host files and directories: /etc/shadow, /root, /home, /var, /run, the daemon's state dir, config, socket and workspaces",
			expect: "ENOENT for each: the root holds only the profile's binds; the daemon's paths (by their host names) are not there",
			run: func(t *testing.T, e *env) {
				paths := []string{"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root", "/home", "/var", "/boot", "/run",
					"/run/sandboxd", e.d.stateDir, e.d.config, e.d.socket, filepath.Join(e.d.stateDir, "ws"), "/dev/mem", "/dev/vda", "/dev/sda"}
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: append([]string{"python3", "-c", pyAttempt + `
for p in sys.argv[1:]:
    attempt("stat " + p, lambda: os.stat(p))
`}, paths...)}}})
				if err != nil {
					t.Fatal(err)
				}
				var want strings.Builder
				for _, p := range paths {
					fmt.Fprintf(&want, "stat %s: ENOENT\n", p)
				}
				okWithStdout(want.String())(t, e, res)
			},
		},
		{
			name:   "daemon_socket",
			tries:  "connect to the daemon's socket by its host path, and to the default /run/sandboxd/sandboxd.sock",
			expect: "ENOENT for both: the socket is not in the sandbox's tree",
			run: func(t *testing.T, e *env) {
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", pyAttempt + `
for p in sys.argv[1:]:
    attempt("connect " + p, lambda: socket.socket(socket.AF_UNIX).connect(p))
`, e.d.socket, "/run/sandboxd/sandboxd.sock"}}}})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout(fmt.Sprintf("connect %s: ENOENT\nconnect /run/sandboxd/sandboxd.sock: ENOENT\n", e.d.socket))(t, e, res)
			},
		},
		{
			name:   "etc_passwd_generated",
			tries:  "read /etc/passwd and /etc/group for the host's users",
			expect: "only the generated root, sandbox and nobody (and their groups), no password hashes",
			argv:   []string{"sh", "-c", "cut -d: -f1,2 /etc/passwd; cut -d: -f1,2 /etc/group"},
			check:  okWithStdout("root:x\nsandbox:x\nnobody:x\nroot:x\nsandbox:x\nnogroup:x\n"),
		},
		{
			name:   "sys_absent",
			tries:  "list /sys, read /sys/kernel, create /sys",
			expect: "ENOENT, ENOENT, EROFS: there is no /sys",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("list /sys", lambda: os.listdir("/sys"))
attempt("list /sys/kernel", lambda: os.listdir("/sys/kernel"))
attempt("mkdir /sys", lambda: os.mkdir("/sys"))
`},
			check: okWithStdout("list /sys: ENOENT\nlist /sys/kernel: ENOENT\nmkdir /sys: EROFS\n"),
		},
		{
			name:   "kernel_addresses",
			tries:  "read kernel symbol addresses from /proc/kallsyms (to defeat KASLR)",
			expect: "every address reads as zero (no CAP_SYSLOG)",
			argv: []string{"python3", "-c", `lines = open("/proc/kallsyms").read().splitlines()
print(len(lines) > 1000, sum(1 for l in lines if int(l.split()[0], 16) != 0))
`},
			check: okWithStdout("True 0\n"),
		},
		{
			name:   "kernel_log_files",
			tries:  "read the kernel log through /dev/kmsg and /proc/kmsg",
			expect: "ENOENT (no /dev/kmsg), EACCES (/proc/kmsg belongs to host root)",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("read /dev/kmsg", lambda: open("/dev/kmsg", "rb").read(1))
attempt("read /proc/kmsg", lambda: open("/proc/kmsg", "rb").read(1))
`},
			check: okWithStdout("read /dev/kmsg: ENOENT\nread /proc/kmsg: EACCES\n"),
		},
		{
			name:   "dev_is_minimal",
			tries:  "list /dev for device nodes to use",
			expect: "null zero full random urandom, the fd symlinks and shm; nothing else",
			argv:   []string{"ls", "-A", "/dev"},
			check:  okWithStdout("fd\nfull\nnull\nrandom\nshm\nstderr\nstdin\nstdout\nurandom\nzero\n"),
		},
		{
			name:     "init_environ",
			tries:    "read the init's environment, /proc/1/environ",
			expect:   "EACCES",
			programs: []string{"procfs"},
			argv:     []string{"./procfs", "init_environ"},
			check:    okWithStdout("read /proc/1/environ: EACCES\n"),
		},
		{
			name:   "clean_environment",
			tries:  "print the whole environment, looking for the daemon's (a canary variable is set in it)",
			expect: "exactly HOME LANG PATH USER and the job's own variable",
			argv:   []string{"env"},
			env:    map[string]string{"JOB_VAR": "from-the-job"},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOK)
				var names []string
				for _, line := range strings.Split(strings.TrimSpace(s.Stdout), "\n") {
					names = append(names, strings.SplitN(line, "=", 2)[0])
				}
				sort.Strings(names)
				if strings.Join(names, " ") != "HOME JOB_VAR LANG PATH USER" || !strings.Contains(s.Stdout, "JOB_VAR=from-the-job\n") {
					t.Errorf("environment %q, want exactly HOME JOB_VAR LANG PATH USER", s.Stdout)
				}
				if strings.Contains(s.Stdout, strings.SplitN(canary, "=", 2)[1]) {
					t.Errorf("the daemon's environment leaked: %q", s.Stdout)
				}
			},
		},
		{
			name:   "host_tcp_listener",
			tries:  "connect to a TCP listener on the host's 127.0.0.1",
			expect: "ECONNREFUSED (the sandbox's loopback is its own); the host listener never sees a connection",
			run: func(t *testing.T, e *env) {
				host, port, _ := strings.Cut(e.tcpAddr, ":")
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", pyAttempt + `
attempt("connect", lambda: socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5))
`, host, port}}}})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout("connect: ECONNREFUSED\n")(t, e, res)
			},
		},
		{
			name:   "network_interfaces",
			tries:  "list the network interfaces (if_nameindex, which asks netlink; /proc/net/dev)",
			expect: "no netlink (EAFNOSUPPORT); lo only in /proc/net/dev",
			argv: []string{"python3", "-c", `import socket
try:
    print(socket.if_nameindex())
except OSError as e:
    print(e.errno)
print([l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:]])
`},
			check: okWithStdout("97\n['lo']\n"),
		},
		{
			name:   "outside_network",
			tries:  "reach outside: TCP to 192.0.2.1:80 and to the host's own address, UDP to 8.8.8.8:53, TCP to 2001:db8::1",
			expect: "ENETUNREACH for each",
			run: func(t *testing.T, e *env) {
				hostIP := e.hostIPv4
				if hostIP == "" {
					hostIP = "10.0.0.1"
				}
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", pyAttempt + `
attempt("tcp 192.0.2.1:80", lambda: socket.create_connection(("192.0.2.1", 80), timeout=5))
attempt("tcp host:22", lambda: socket.create_connection((sys.argv[1], 22), timeout=5))
attempt("udp 8.8.8.8:53", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("8.8.8.8", 53)))
attempt("tcp [2001:db8::1]:80", lambda: socket.create_connection(("2001:db8::1", 80), timeout=5))
`, hostIP}}}})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout("tcp 192.0.2.1:80: ENETUNREACH\ntcp host:22: ENETUNREACH\nudp 8.8.8.8:53: ENETUNREACH\ntcp [2001:db8::1]:80: ENETUNREACH\n")(t, e, res)
			},
		},
		{
			name:  "host_abstract_socket",
			tries: "connect to the abstract Unix socket @sandboxd-escape-test that the host listens on",
			expect: "ECONNREFUSED: abstract sockets belong to the network namespace; /proc/net/unix does not list it; " +
				"the host's listener never sees a connection",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("connect @sandboxd-escape-test", lambda: socket.socket(socket.AF_UNIX).connect("\0sandboxd-escape-test"))
print("listed" if "sandboxd-escape-test" in open("/proc/net/unix").read() else "not listed")
`},
			check: okWithStdout("connect @sandboxd-escape-test: ECONNREFUSED\nnot listed\n"),
		},
		{
			name:   "vsock_and_packet_sockets",
			tries:  "open an AF_VSOCK socket (the VM's channel to its hypervisor, not namespaced) and an AF_PACKET one",
			expect: "EAFNOSUPPORT for both (seccomp refuses the families)",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("socket AF_VSOCK", lambda: socket.socket(40, socket.SOCK_STREAM))
attempt("socket AF_PACKET", lambda: socket.socket(17, socket.SOCK_RAW))
`},
			check: okWithStdout("socket AF_VSOCK: EAFNOSUPPORT\nsocket AF_PACKET: EAFNOSUPPORT\n"),
		},
		{
			name:  "socketpair_rare_families",
			tries: "socketpair(AF_VSOCK) and socketpair(AF_PACKET): reach the families' socket-creation code past the socket(2) rule",
			expect: "EAFNOSUPPORT for both, as socket(2) gets: socketpair creates a socket of the family (its create function " +
				"runs) before it fails",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("socketpair AF_VSOCK", lambda: socket.socketpair(40, socket.SOCK_STREAM))
attempt("socketpair AF_PACKET", lambda: socket.socketpair(17, socket.SOCK_RAW))
`},
			check: okWithStdout("socketpair AF_VSOCK: EAFNOSUPPORT\nsocketpair AF_PACKET: EAFNOSUPPORT\n"),
		},
		{
			name:   "other_job_workspace",
			slots:  2,
			tries:  "while job A (with a secret file in its workspace) runs, job B searches its tree for A's file and stats A's workspace by its host path",
			expect: "B finds nothing: its /workspace is empty, A's file is nowhere, A's host path is ENOENT; A's file was there all along",
			run: func(t *testing.T, e *env) {
				ctx := ctxT(t)
				a := startStreamed(ctx, e.d.c, &api.Job{
					ID:           "escape-ws-a",
					Steps:        []api.Step{{Argv: []string{"sh", "-c", "echo 'secret of job A' > secret-a.txt; echo ready; exec sleep 60"}}},
					TrackedFiles: []string{"secret-a.txt"},
				})
				a.waitReady(t)
				// The daemon names workspaces itself: find A's by its file.
				hostPath := ""
				wss, _ := filepath.Glob(filepath.Join(e.d.stateDir, "ws", "*", "secret-a.txt"))
				if len(wss) == 1 {
					hostPath = filepath.Dir(wss[0])
				} else {
					t.Errorf("A's file is not in exactly one workspace on the host: %v", wss)
					hostPath = filepath.Join(e.d.stateDir, "ws", "unknown")
				}
				res, err := e.d.c.Run(ctx, &api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", pyAttempt + `
print(sorted(os.listdir("/workspace")))
hits = []
for root, dirs, files in os.walk("/"):
    if root == "/":
        dirs[:] = [d for d in dirs if d not in ("proc", "usr")]  # usr: the read-only host bind
    if "secret-a.txt" in files:
        hits.append(root)
print(hits)
for p in sys.argv[1:]:
    attempt("stat " + p, lambda: os.stat(p))
`, hostPath, filepath.Join(hostPath, "secret-a.txt"), "/workspace/secret-a.txt"}}}})
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-a.done:
					t.Errorf("job A ended before job B did: B did not run beside it")
				default:
				}
				okWithStdout(fmt.Sprintf("[]\n[]\nstat %s: ENOENT\nstat %s/secret-a.txt: ENOENT\nstat /workspace/secret-a.txt: ENOENT\n", hostPath, hostPath))(t, e, res)
				if err := e.d.c.Cancel(ctx, "escape-ws-a"); err != nil {
					t.Fatal(err)
				}
				ra := a.wait(t)
				if ra.Status != api.StatusCancelled || ra.Files["secret-a.txt"] == nil || ra.Files["secret-a.txt"].Content != "secret of job A\n" {
					t.Errorf("job A: status %s, files %+v; want cancelled with its secret", ra.Status, ra.Files)
				}
			},
		},
		{
			name:  "other_job_ipc",
			slots: 2,
			tries: "while job A holds a System V shared memory segment, semaphore set and message queue (key 0x5eed, mode 0666) " +
				"and a POSIX shared memory object, job B looks them up",
			expect: "B gets ENOENT for all four (its own IPC namespace and /dev/shm); the host does not see A's segment either",
			run: func(t *testing.T, e *env) {
				ctx := ctxT(t)
				a := startStreamed(ctx, e.d.c, &api.Job{
					ID:    "escape-ipc-a",
					Files: map[string]api.File{"ipc": program(t, "ipc")},
					Steps: []api.Step{{Argv: []string{"./ipc", "create", "0x5eed"}}},
				})
				a.waitReady(t)
				if _, err := unix.SysvShmGet(0x5eed, 0, 0); err != unix.ENOENT {
					t.Errorf("the host looks up key 0x5eed: %v, want ENOENT", err)
				}
				if _, err := os.Stat("/dev/shm/sandboxd-escape"); !os.IsNotExist(err) {
					t.Errorf("the host's /dev/shm/sandboxd-escape: %v, want absent", err)
				}
				res, err := e.d.c.Run(ctx, &api.Job{
					Files: map[string]api.File{"ipc": program(t, "ipc")},
					Steps: []api.Step{{Argv: []string{"./ipc", "probe", "0x5eed"}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-a.done:
					t.Errorf("job A ended before job B did: B did not run beside it")
				default:
				}
				okWithStdout("shm: ENOENT\nsem: ENOENT\nmsg: ENOENT\nposix shm: ENOENT\n")(t, e, res)
				if err := e.d.c.Cancel(ctx, "escape-ipc-a"); err != nil {
					t.Fatal(err)
				}
				ra := a.wait(t)
				if ra.Status != api.StatusCancelled || len(ra.Steps) != 1 || ra.Steps[0].Stdout != "shm: found\nsem: found\nmsg: found\nposix shm: found\nready\n" {
					t.Errorf("job A: status %s %+v; want cancelled after finding its own objects", ra.Status, ra.Steps)
				}
			},
		},
		{
			name:  "other_job_signals",
			slots: 2,
			tries: "while job A sleeps (its pid in a tracked file), job B sends SIGKILL to every pid from 1 to 300 but its own",
			expect: "B delivers nothing (only its init refuses, EPERM; every other pid is ESRCH); " +
				"A completes normally (ok, its whole output)",
			run: func(t *testing.T, e *env) {
				ctx := ctxT(t)
				a := startStreamed(ctx, e.d.c, &api.Job{
					Steps:        []api.Step{{Argv: []string{"sh", "-c", "echo $$ > pid; echo ready; sleep 4; echo done"}}},
					TrackedFiles: []string{"pid"},
				})
				a.waitReady(t)
				started := time.Now()
				res, err := e.d.c.Run(ctx, &api.Job{
					Files: map[string]api.File{"killpids": program(t, "killpids")},
					Steps: []api.Step{{Argv: []string{"./killpids", "1", "300"}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-a.done:
					t.Errorf("job A ended before job B did (B took %v): B did not run beside it", time.Since(started))
				default:
				}
				s := only(t, res)
				t.Logf("B: %s", summary(s))
				wantVerdict(t, s, api.VerdictOK)
				checkKillpids(t, s.Stdout)
				ra := a.wait(t)
				sa := only(t, ra)
				wantVerdict(t, sa, api.VerdictOK)
				wantStdout(t, sa, "ready\ndone\n")
				pidFile := ra.Files["pid"]
				if pidFile == nil {
					t.Fatalf("A's pid file is missing")
				}
				if pid, err := strconv.Atoi(strings.TrimSpace(pidFile.Content)); err != nil || pid < 1 || pid > 300 {
					t.Errorf("A's pid %q is not one B aimed at", pidFile.Content)
				}
			},
		},
	}
}

// checkKillpids checks the report of `killpids FROM TO`: no signal was
// delivered, and the only refusals were the init's (pid 1 and its
// threads, listed on the last line).
func checkKillpids(t *testing.T, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "sent=0 ") || !strings.HasPrefix(lines[1], "refused: 1") {
		t.Fatalf("killpids: %q, want nothing sent and pid 1 refused", out)
	}
	// Every refusal is the init's (pid 1 or one of its threads). The init
	// may start a thread after the loop passed its number (the seccomp
	// watcher's), so a task need not have been refused.
	refused := strings.Fields(strings.TrimPrefix(lines[1], "refused:"))
	initTasks := strings.Fields(strings.TrimPrefix(lines[2], "init tasks:"))
	for _, pid := range refused {
		if !slices.Contains(initTasks, pid) {
			t.Errorf("pid %s refused, but it is not one of the init's tasks %v", pid, initTasks)
		}
	}
}
