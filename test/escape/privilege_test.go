package escape

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func cases() []escapeCase {
	var all []escapeCase
	for _, group := range [][]escapeCase{privilegeCases(), forbiddenCalls(), informationCases(), resourceCases(), kernelCases(), persistenceCases(), apiCases()} {
		all = append(all, group...)
	}
	return all
}

// statusLines is what /proc/self/status says of a process that runs as
// the sandbox user with no capability at all, no_new_privs, and a seccomp
// filter.
const statusLines = "Uid:\t1000\t1000\t1000\t1000\n" +
	"Gid:\t1000\t1000\t1000\t1000\n" +
	"CapInh:\t0000000000000000\n" +
	"CapPrm:\t0000000000000000\n" +
	"CapEff:\t0000000000000000\n" +
	"CapBnd:\t0000000000000000\n" +
	"CapAmb:\t0000000000000000\n" +
	"NoNewPrivs:\t1\n" +
	"Seccomp:\t2\n"

func privilegeCases() []escapeCase {
	return []escapeCase{
		{
			name:   "setuid_root_file_through_the_api",
			tries:  "send a set-uid-root copy of a program made on the host, with the host file's mode (4755 and friends), as a job file",
			expect: "400 naming files[...].mode for every mode above 0777; the same program with 0755 runs as the sandbox user",
			run: func(t *testing.T, e *env) {
				host := filepath.Join(t.TempDir(), "ids")
				if err := os.WriteFile(host, programs["ids"], 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(host, 0, 0); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(host, 0o755|os.ModeSetuid); err != nil {
					t.Fatal(err)
				}
				fi, err := os.Stat(host)
				if err != nil {
					t.Fatal(err)
				}
				mode := fi.Mode().Perm()
				if fi.Mode()&os.ModeSetuid != 0 {
					mode |= 0o4000
				}
				hostMode := fmt.Sprintf("%o", mode)
				if hostMode != "4755" {
					t.Fatalf("the host copy has mode %s, want 4755", hostMode)
				}
				b64 := base64.StdEncoding.EncodeToString(fileContent(t, host))
				for _, m := range []string{hostMode, "04755", "6755", "2755", "1777", "7777", "u+s", "0o4755"} {
					_, err := e.d.c.Run(ctxT(t), &api.Job{
						Files: map[string]api.File{"su-copy": {Base64: b64, Mode: m}},
						Steps: []api.Step{{Argv: []string{"./su-copy"}}},
					})
					wantInvalidErr(t, err, `files["su-copy"].mode`, "mode "+m)
				}
				res, err := e.d.c.Run(ctxT(t), &api.Job{
					Files: map[string]api.File{"su-copy": {Base64: b64, Mode: "0755"}},
					Steps: []api.Step{{Argv: []string{"./su-copy"}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				s := only(t, res)
				wantVerdict(t, s, api.VerdictOK)
				wantStdout(t, s, "uids 1000 1000 1000 gids 1000 1000 1000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n")
			},
		},
		{
			name:     "chmod_setuid_then_exec",
			tries:    "chmod 6755 a copy of a program in the workspace and exec it",
			expect:   "the chmod works but the exec gains nothing (nosuid mount, no_new_privs): ids stay 1000, no capabilities",
			programs: []string{"ids"},
			argv:     []string{"sh", "-c", "cp ids ids-suid && chmod 6755 ids-suid && stat -c %A ids-suid && exec ./ids-suid"},
			check: okWithStdout("-rwsr-sr-x\nuids 1000 1000 1000 gids 1000 1000 1000\n" +
				"CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\n"),
		},
		{
			name:  "host_setuid_root_binary",
			tries: "run the host's set-uid-root su (bound read-only from /usr) and look at its ids while it waits for a password",
			expect: "su runs with real, effective and saved uid 1000 and no capabilities: the set-uid bit of a file owned by " +
				"host root (unmapped: nobody) does nothing",
			argv: []string{"sh", "-c", `stat -c '%A %U' /usr/bin/su
sleep 10 | /usr/bin/su root -c id >/dev/null 2>&1 &
for i in $(seq 200); do
	for p in /proc/[0-9]*; do
		if [ "$(cat $p/comm 2>/dev/null)" = su ]; then grep -E '^(Uid|Gid|CapEff):' $p/status; exit 0; fi
	done
	sleep 0.05
done
echo "su never ran"; exit 1`},
			check: okWithStdout("-rwsr-xr-x nobody\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\n"),
		},
		{
			name:  "file_capabilities_binary",
			tries: "run the host's gst-ptp-helper, which carries file capabilities cap_net_bind_service,cap_net_admin=ep, and bind port 319",
			expect: "the capabilities are not granted (nosuid, no_new_privs, the xattr belongs to host root): " +
				"bind 0.0.0.0:319 is EACCES and the helper gives up (signaled SIGTRAP, its g_error)",
			run: func(t *testing.T, e *env) {
				if _, err := os.Stat(ptpHelper); err != nil {
					t.Skipf("no binary with file capabilities on this host: %v", err)
				}
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{ptpHelper, "-i", "lo"}}}})
				if err != nil {
					t.Fatal(err)
				}
				s := only(t, res)
				t.Logf("%s", summary(s))
				wantVerdict(t, s, api.VerdictSignaled)
				if s.Signal != "SIGTRAP" || !strings.Contains(s.Stderr, "Error binding to address 0.0.0.0:319: Permission denied") {
					t.Errorf("signal %q stderr %q, want SIGTRAP after EACCES on port 319", s.Signal, s.Stderr)
				}
			},
		},
		{
			name:     "capset_raise_all",
			tries:    "capset every capability into the effective, permitted and inheritable sets",
			expect:   "EPERM; /proc/self/status shows every capability set empty, no_new_privs, seccomp filter mode",
			programs: []string{"privs"},
			argv:     []string{"./privs", "capset"},
			check:    okWithStdout("capset all: EPERM\n" + statusLines),
		},
		{
			name:     "ambient_capability_raise",
			tries:    "raise CAP_SYS_ADMIN in the ambient set",
			expect:   "EPERM; every capability set stays empty",
			programs: []string{"privs"},
			argv:     []string{"./privs", "ambient"},
			check:    okWithStdout("raise ambient CAP_SYS_ADMIN: EPERM\n" + statusLines),
		},
		{
			name:     "become_root_in_namespace",
			tries:    "setresuid(0,0,0), setresgid(0,0,0), setgroups([0]) inside the user namespace",
			expect:   "EPERM for each; ids stay 1000",
			programs: []string{"privs"},
			argv:     []string{"./privs", "setuid0"},
			check:    okWithStdout("setresuid 0: EPERM\nsetresgid 0: EPERM\nsetgroups 0: EPERM\n" + statusLines),
		},
		{
			name:     "raise_hard_rlimits",
			tries:    "raise RLIMIT_CORE (a core dump), RLIMIT_NOFILE and RLIMIT_CPU to unlimited",
			expect:   "EPERM for each: the limits are hard limits",
			programs: []string{"privs"},
			argv:     []string{"./privs", "rlimits"},
			check:    okWithStdout("raise RLIMIT_CORE: EPERM\nraise RLIMIT_NOFILE: EPERM\nraise RLIMIT_CPU: EPERM\n" + statusLines),
		},
		{
			name:     "clear_no_new_privs",
			tries:    "prctl(PR_SET_NO_NEW_PRIVS, 0)",
			expect:   "EINVAL: no_new_privs cannot be cleared",
			programs: []string{"privs"},
			argv:     []string{"./privs", "no_new_privs_off"},
			check:    okWithStdout("clear no_new_privs: EINVAL\n" + statusLines),
		},
		{
			name:   "realtime_and_priority",
			tries:  "take the CPU from the host: SCHED_FIFO, SCHED_RR 99, nice -20, oom_score_adj -1000",
			expect: "EPERM, EPERM, EACCES, EACCES: no real-time class, no higher priority, no OOM immunity",
			argv: []string{"python3", "-c", pyAttempt + `
def write(path, data):
    os.write(os.open(path, os.O_WRONLY), data)
attempt("SCHED_FIFO", lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)))
attempt("SCHED_RR 99", lambda: os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(99)))
attempt("nice -20", lambda: os.setpriority(os.PRIO_PROCESS, 0, -20))
attempt("oom_score_adj -1000", lambda: write("/proc/self/oom_score_adj", b"-1000"))
`},
			check: okWithStdout("SCHED_FIFO: EPERM\nSCHED_RR 99: EPERM\nnice -20: EACCES\noom_score_adj -1000: EACCES\n"),
		},
		{
			name:   "proc_writes",
			tries:  "rewrite its uid_map and gid_map to host root, allow setgroups, and write host and namespace sysctls (core_pattern, ip_forward, hostname, drop_caches) and the init's oom_score_adj",
			expect: "EPERM for the maps, EACCES for every other file",
			argv: []string{"python3", "-c", pyAttempt + `
def write(path, data):
    os.write(os.open(path, os.O_WRONLY), data)
for path, data in [("/proc/self/uid_map", b"0 0 1"), ("/proc/self/gid_map", b"0 0 1"), ("/proc/self/setgroups", b"allow"),
                   ("/proc/sys/kernel/core_pattern", b"|/workspace/x"), ("/proc/sys/net/ipv4/ip_forward", b"1"),
                   ("/proc/sys/kernel/hostname", b"evil"), ("/proc/sys/vm/drop_caches", b"3"), ("/proc/1/oom_score_adj", b"1000")]:
    attempt("write " + path, lambda: write(path, data))
`},
			check: okWithStdout("write /proc/self/uid_map: EPERM\nwrite /proc/self/gid_map: EPERM\nwrite /proc/self/setgroups: EACCES\n" +
				"write /proc/sys/kernel/core_pattern: EACCES\nwrite /proc/sys/net/ipv4/ip_forward: EACCES\n" +
				"write /proc/sys/kernel/hostname: EACCES\nwrite /proc/sys/vm/drop_caches: EACCES\nwrite /proc/1/oom_score_adj: EACCES\n"),
		},
		{
			name:     "proc_self_exe_write",
			tries:    "open the running program's own file through /proc/self/exe for writing and overwrite it",
			expect:   "ETXTBSY; the file read back afterwards is unchanged",
			programs: []string{"procfs"},
			argv:     []string{"./procfs", "self_exe_write"},
			shape: func(_ *env, j *api.Job) {
				j.TrackedFiles = []string{"procfs"}
				j.OutputEncoding = api.EncodingBase64
			},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOK)
				out, _ := base64.StdEncoding.DecodeString(s.Stdout)
				if string(out) != "open /proc/self/exe for writing: ETXTBSY\n" {
					t.Errorf("stdout %q", out)
				}
				f := r.Files["procfs"]
				if f == nil || f.Content != base64.StdEncoding.EncodeToString(programs["procfs"]) {
					t.Errorf("the program's file changed (or is missing): %v", f != nil)
				}
			},
		},
		{
			name:   "proc_self_exe_write_host_binary",
			tries:  "python3 opens /proc/self/exe (the host's python binary, bound read-only) for writing",
			expect: "EACCES for O_WRONLY (owned by unmapped host root), EROFS for O_TRUNC (read-only bind); the host file is unchanged",
			run: func(t *testing.T, e *env) {
				python, err := filepath.EvalSymlinks("/usr/bin/python3")
				if err != nil {
					t.Fatal(err)
				}
				before := fileContent(t, python)
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"python3", "-c", pyAttempt + `
attempt("open /proc/self/exe for writing", lambda: os.write(os.open("/proc/self/exe", os.O_WRONLY), b"EVIL"))
attempt("open /proc/self/exe O_RDWR|O_TRUNC", lambda: os.open("/proc/self/exe", os.O_RDWR | os.O_TRUNC))
`}}}})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout("open /proc/self/exe for writing: EACCES\nopen /proc/self/exe O_RDWR|O_TRUNC: EROFS\n")(t, e, res)
				if after := fileContent(t, python); string(after) != string(before) {
					t.Errorf("the host's %s changed", python)
				}
			},
		},
		{
			name:   "proc_init_exe_write",
			tries:  "open the init's binary through /proc/1/exe for writing",
			expect: "EACCES (the init runs under another uid, not dumpable); the daemon binary is unchanged",
			run: func(t *testing.T, e *env) {
				before := fileContent(t, sandboxdBin)
				res, err := e.d.c.Run(ctxT(t), &api.Job{
					Files: map[string]api.File{"procfs": program(t, "procfs")},
					Steps: []api.Step{{Argv: []string{"./procfs", "init_exe_write"}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout("open /proc/1/exe for writing: EACCES\n")(t, e, res)
				if after := fileContent(t, sandboxdBin); string(after) != string(before) {
					t.Errorf("the daemon binary changed")
				}
			},
		},
		{
			name:     "proc_init_exe_read",
			tries:    "open the init's binary through /proc/1/exe for reading (to copy or inspect it)",
			expect:   "EACCES",
			programs: []string{"procfs"},
			argv:     []string{"./procfs", "init_exe_read"},
			check:    okWithStdout("open /proc/1/exe for reading: EACCES\n"),
		},
		{
			name:     "proc_init_root",
			tries:    "walk out through /proc/1/root: opendir, open /proc/1/root/etc/passwd, stat",
			expect:   "EACCES for each",
			programs: []string{"procfs"},
			argv:     []string{"./procfs", "init_root"},
			check:    okWithStdout("opendir /proc/1/root: EACCES\nopen /proc/1/root/etc/passwd: EACCES\nstat /proc/1/root/: EACCES\n"),
		},
		{
			name:     "proc_init_mem",
			tries:    "open the init's memory, /proc/1/mem, read-write",
			expect:   "EACCES",
			programs: []string{"procfs"},
			argv:     []string{"./procfs", "init_mem"},
			check:    okWithStdout("open /proc/1/mem: EACCES\n"),
		},
		{
			name:     "init_namespaces_by_pidfd",
			tries:    "pidfd_open(1), then each PIDFD_GET_*_NAMESPACE ioctl (6.11+): descriptors of the init's namespaces, whose cgroup namespace is the host's",
			expect:   "EACCES for every one",
			programs: []string{"nsfds"},
			argv:     []string{"./nsfds", "pidfd"},
			check: okWithStdout("PIDFD_GET_cgroup_NAMESPACE: EACCES\nPIDFD_GET_ipc_NAMESPACE: EACCES\nPIDFD_GET_mnt_NAMESPACE: EACCES\n" +
				"PIDFD_GET_net_NAMESPACE: EACCES\nPIDFD_GET_pid_NAMESPACE: EACCES\nPIDFD_GET_pid_for_children_NAMESPACE: EACCES\n" +
				"PIDFD_GET_time_NAMESPACE: EACCES\nPIDFD_GET_time_for_children_NAMESPACE: EACCES\n" +
				"PIDFD_GET_user_NAMESPACE: EACCES\nPIDFD_GET_uts_NAMESPACE: EACCES\n"),
		},
		{
			name:     "parent_namespaces_by_nsfs",
			tries:    "NS_GET_PARENT and NS_GET_USERNS on its own user, pid, net and mnt namespace files, to reach the host's",
			expect:   "EPERM (or EINVAL) for every parent; the owning user namespace of its namespaces is its own",
			programs: []string{"nsfds"},
			argv:     []string{"./nsfds", "nsfs"},
			check: okWithStdout("NS_GET_PARENT user: EPERM\nNS_GET_USERNS user: EPERM\nNS_GET_PARENT pid: EPERM\n" +
				"NS_GET_USERNS pid: got the sandbox's own user namespace\nNS_GET_PARENT net: EINVAL\n" +
				"NS_GET_USERNS net: got the sandbox's own user namespace\nNS_GET_PARENT mnt: EINVAL\n" +
				"NS_GET_USERNS mnt: got the sandbox's own user namespace\n"),
		},
		{
			name:  "sigio_at_init",
			tries: "make pid 1 (and process group 1) the owner of a pipe with F_SETOWN, set its I/O signal to SIGKILL, and write to it",
			expect: "the fcntls work but no signal reaches the init (another uid): it is still there, and the step reports ok " +
				"(a dead init would make it internal_error)",
			programs: []string{"signals"},
			argv:     []string{"./signals", "sigio"},
			check: okWithStdout("F_SETOWN 1: ok\nF_SETSIG SIGKILL: ok\nO_ASYNC: ok\nwrite: ok\n" +
				"F_SETOWN -1 (process group 1): ok\nwrite: ok\npid 1 still there (kill 0): EPERM\n"),
		},
		{
			name:     "signal_init_other_ways",
			tries:    "SIGKILL the init with tgkill, rt_sigqueueinfo and pidfd_send_signal",
			expect:   "EPERM for each; the init is still there",
			programs: []string{"signals"},
			argv:     []string{"./signals", "others"},
			check: okWithStdout("tgkill 1 1 SIGKILL: EPERM\nrt_sigqueueinfo 1 SIGKILL: EPERM\npidfd_send_signal 1 SIGKILL: EPERM\n" +
				"pid 1 still there (kill 0): EPERM\n"),
		},
		{
			name:   "meddle_with_init",
			tries:  "change the init's limits (prlimit), priority, CPU affinity and scheduling class",
			expect: "EPERM for each",
			argv: []string{"python3", "-c", pyAttempt + `
import resource
attempt("prlimit 1 NOFILE", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (1, 1)))
attempt("setpriority 1", lambda: os.setpriority(os.PRIO_PROCESS, 1, 19))
attempt("sched_setaffinity 1", lambda: os.sched_setaffinity(1, {0}))
attempt("sched_setscheduler 1", lambda: os.sched_setscheduler(1, os.SCHED_IDLE, os.sched_param(0)))
`},
			check: okWithStdout("prlimit 1 NOFILE: EPERM\nsetpriority 1: EPERM\nsched_setaffinity 1: EPERM\nsched_setscheduler 1: EPERM\n"),
		},
		{
			name:     "inherited_descriptors",
			tries:    "look for any descriptor above 2 handed down by the daemon or the init (listener, report pipe, cgroup files)",
			expect:   "none",
			programs: []string{"inherited"},
			argv:     []string{"./inherited"},
			check:    okWithStdout("0 inherited descriptors\n"),
		},
		{
			name:   "write_the_root",
			tries:  "create files in /, /usr/bin, /etc, and the host's /dev nodes' directory",
			expect: "EROFS for each: the root, the binds and /dev are read-only",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("mkdir /evil", lambda: os.mkdir("/evil"))
attempt("create /usr/bin/evil", lambda: open("/usr/bin/evil", "w"))
attempt("create /etc/evil", lambda: open("/etc/evil", "w"))
attempt("create /dev/evil", lambda: open("/dev/evil", "w"))
attempt("sethostname", lambda: socket.sethostname("evil"))
`},
			check: okWithStdout("mkdir /evil: EROFS\ncreate /usr/bin/evil: EROFS\ncreate /etc/evil: EROFS\ncreate /dev/evil: EROFS\nsethostname: EPERM\n"),
		},
	}
}

// ptpHelper is a host binary with file capabilities (Debian's gstreamer).
const ptpHelper = "/usr/lib/x86_64-linux-gnu/gstreamer1.0/gstreamer-1.0/gst-ptp-helper"

// pyAttempt is the Python prelude of the inline cases: attempt runs one
// thing and prints "<what>: ok" or "<what>: <errno name>".
const pyAttempt = `import errno, json, os, socket, sys
def attempt(what, f):
    try:
        f()
        print(what + ": ok", flush=True)
    except OSError as e:
        print(what + ": " + errno.errorcode.get(e.errno, str(e.errno)), flush=True)
`

// forbiddenCalls are the system calls the default policy forbids: each
// case makes one, and must end as syscall_blocked naming it, except for
// the few calls refused softly (ENOSYS) so that runtimes fall back.
func forbiddenCalls() []escapeCase {
	var cs []escapeCase
	add := func(call, what, name string) {
		cs = append(cs, escapeCase{
			name:     "syscall_" + call,
			tries:    what,
			expect:   "syscall_blocked: " + name,
			programs: []string{"blocked"},
			argv:     []string{"./blocked", call},
			check:    blocked(name),
		})
	}
	add("unshare", "unshare(CLONE_NEWUSER): a nested user namespace, with every capability in it", "unshare")
	add("setns", "setns into a namespace through /proc/self/ns/user", "setns")
	add("clone_newuser", "clone(CLONE_NEWUSER): a child in a nested user namespace", "clone")
	add("clone_newnet", "clone(CLONE_NEWNET|CLONE_NEWPID)", "clone")
	add("ptrace_child", "fork a child and PTRACE_ATTACH to it", "ptrace")
	add("ptrace_init", "PTRACE_ATTACH to pid 1, the init", "ptrace")
	add("process_vm_readv", "read the init's memory with process_vm_readv", "process_vm_readv")
	add("pidfd_getfd", "pidfd_open(1) then pidfd_getfd: steal the init's descriptors", "pidfd_getfd")
	add("mount", "mount a tmpfs on /tmp", "mount")
	add("umount2", "umount2(/workspace, MNT_DETACH): uncover what lies below", "umount2")
	add("pivot_root", "pivot_root to /tmp", "pivot_root")
	add("chroot", "chroot to /tmp (the classic chroot escape's first step)", "chroot")
	add("fsopen", "fsopen(tmpfs): the new mount API", "fsopen")
	add("open_tree", "open_tree(/, OPEN_TREE_CLONE): clone the mount tree", "open_tree")
	add("open_by_handle_at", "open_by_handle_at with a forged handle of the root inode (the 'shocker' escape)", "open_by_handle_at")
	add("name_to_handle_at", "name_to_handle_at on /usr, to make handles", "name_to_handle_at")
	add("keyctl", "keyctl: the session keyring, which is not namespaced", "keyctl")
	add("add_key", "add_key to the session keyring", "add_key")
	add("bpf", "bpf(BPF_MAP_CREATE)", "bpf")
	add("perf_event_open", "perf_event_open on itself", "perf_event_open")
	add("userfaultfd", "userfaultfd: the tool of kernel race exploits", "userfaultfd")
	add("TIOCSTI", "ioctl(0, TIOCSTI): push a byte into the input of a terminal", "ioctl")
	add("TIOCSTI_high_bits", "ioctl with TIOCSTI in the low 32 bits and junk above (the kernel reads an unsigned int)", "ioctl")
	add("TIOCLINUX", "ioctl(0, TIOCLINUX, TIOCL_SETSEL): console selection tricks", "ioctl")
	add("x32", "getpid through the x32 ABI (the 0x40000000 bit)", "x32 syscall 39")
	add("personality_read_implies_exec", "personality(READ_IMPLIES_EXEC)", "personality")
	add("syslog", "syslog(READ_ALL): the kernel log", "syslog")
	add("kexec_load", "kexec_load: load a new kernel", "kexec_load")
	add("init_module", "init_module: load kernel code", "init_module")
	add("reboot", "reboot(POWER_OFF)", "reboot")
	add("clock_settime", "set the host's clock to 1970", "clock_settime")
	add("iopl", "iopl(3): raw I/O ports", "iopl")
	add("swapon", "swapon a workspace file", "swapon")
	add("modify_ldt", "modify_ldt: x86 descriptor tables", "modify_ldt")
	cs = append(cs,
		escapeCase{
			name:     "syscall_clone3_newuser",
			tries:    "clone3 with CLONE_NEWUSER (its flags are in memory the filter cannot read)",
			expect:   "ENOSYS, and the program goes on (glibc falls back to clone, which the filter inspects)",
			programs: []string{"blocked"},
			argv:     []string{"./blocked", "clone3_newuser"},
			check:    okWithStdout("clone3_newuser returned -1 ENOSYS\ncontinued\n"),
		},
		escapeCase{
			name:     "syscall_io_uring_setup",
			tries:    "io_uring_setup: a ring whose calls the filter would never see",
			expect:   "ENOSYS, and the program goes on",
			programs: []string{"blocked"},
			argv:     []string{"./blocked", "io_uring_setup"},
			check:    okWithStdout("io_uring_setup returned -1 ENOSYS\ncontinued\n"),
		},
		escapeCase{
			name:  "syscall_i386_int80",
			tries: "getpid through int 0x80, the i386 ABI",
			expect: "contained: this kernel has no usable IA32 emulation, so the program dies of SIGSEGV before seccomp " +
				"sees the call (verdict signaled SIGSEGV, not ok; never returns)",
			programs: []string{"blocked"},
			argv:     []string{"./blocked", "i386_int80"},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				if s.Verdict == api.VerdictSyscallBlocked && strings.HasPrefix(s.Message, "blocked system call: i386") {
					t.Logf("this kernel runs i386 calls; the filter stopped it: %s", s.Message)
					return
				}
				wantVerdict(t, s, api.VerdictSignaled)
				if s.Signal != "SIGSEGV" || s.Stdout != "" {
					t.Errorf("signal %q stdout %q, want SIGSEGV and nothing printed", s.Signal, s.Stdout)
				}
			},
		},
		escapeCase{
			name:   "dmesg",
			tries:  "run dmesg(1): /dev/kmsg, then klogctl",
			expect: "syscall_blocked: syslog (there is no /dev/kmsg to read first)",
			argv:   []string{"dmesg"},
			check:  blocked("syslog"),
		},
	)
	return cs
}
