//go:build linux

package seccomp

import "golang.org/x/sys/unix"

// Argument values of the x86_64 ABI that the default policy tests. They are
// spelled out here, not taken from x/sys/unix, because the filter targets
// x86_64 whatever machine compiles it (TIOCSTI differs on some other
// architectures).
const (
	ioctlTIOCSTI   = 0x5412 // push a byte into a terminal's input queue
	ioctlTIOCLINUX = 0x541c // virtual console tricks: selection paste, console dumps

	personaLinux       = 0x0000000  // PER_LINUX
	personaLinux32     = 0x0000008  // PER_LINUX32
	personaNoRandomize = 0x0040000  // ADDR_NO_RANDOMIZE
	personaQuery       = 0xffffffff // returns the persona, changes nothing
)

// cloneNamespaceFlags are the clone flags that create namespaces.
// CLONE_NEWTIME (0x80) shares bits with the exit signal in clone's first
// argument; a program never asks for an exit signal of 128 or more, so
// testing the bit costs nothing and keeps the mask honest.
const cloneNamespaceFlags = unix.CLONE_NEWNS | unix.CLONE_NEWCGROUP | unix.CLONE_NEWUTS |
	unix.CLONE_NEWIPC | unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNET |
	unix.CLONE_NEWTIME

// notify is a rule that reports every call of the syscall to the sandbox's init.
func notify(syscall, reason string) Rule {
	return Rule{Syscall: syscall, Action: Notify, Reason: reason}
}

// notifyWhen is a rule that reports the calls whose argument matches.
func notifyWhen(syscall string, when Cond, reason string) Rule {
	return Rule{Syscall: syscall, Action: Notify, When: &when, Reason: reason}
}

// DefaultPolicy is the policy every sandbox gets unless its profile names
// another: allow what programs do, report (Notify) the calls that reach kernel
// attack surface or could leave the sandbox, and fail (Errno) the few such
// calls that runtimes probe at start and can do without.
//
// The live tests run bash and coreutils, Python, gcc and g++ (with as and
// ld), javac and java, Node.js, go run and rustc under it: none of them meets
// a Notify rule in normal work.
func DefaultPolicy() Policy {
	return Policy{
		Name:       "default",
		Default:    Allow,
		ForeignABI: Notify,
		Rules: []Rule{
			// Other processes: memory, registers and file descriptors.
			notify("ptrace", "reads and writes another process's memory and registers; a long record of kernel bugs"),
			notify("process_vm_readv", "reads another process's memory"),
			notify("process_vm_writev", "writes another process's memory"),
			notify("pidfd_getfd", "steals a file descriptor from another process"),
			notify("process_madvise", "changes another process's memory management"),
			notify("kcmp", "compares kernel objects of two processes: a checkpoint/restore tool that orders kernel pointers, not a program's need"),

			// The file system tree: mounts and roots are built by the init, never changed by the program.
			notify("mount", "mounting is the init's job; the program must not change its tree"),
			notify("umount2", "unmounting could uncover what the sandbox root hides"),
			notify("pivot_root", "changes the root the init built"),
			notify("chroot", "changes the root; classic escape helper"),
			notify("move_mount", "new mount API: moves mounts"),
			notify("open_tree", "new mount API: clones mount trees"),
			notify("open_tree_attr", "new mount API: clones mount trees with new attributes"),
			notify("fsopen", "new mount API: opens a file system context"),
			notify("fsconfig", "new mount API: configures a file system context, a parser with a bug record"),
			notify("fsmount", "new mount API: creates a mount"),
			notify("fspick", "new mount API: reconfigures a mounted file system"),
			notify("mount_setattr", "new mount API: changes mount attributes"),
			notify("open_by_handle_at", "opens files by handle, past the mount's root (the 'shocker' escape)"),
			notify("name_to_handle_at", "makes the handles open_by_handle_at takes"),

			// Namespaces. A fresh user namespace would hand the program every capability in it.
			notify("unshare", "creates namespaces; the sandbox's namespaces are final"),
			notify("setns", "joins other namespaces"),
			notifyWhen("clone", Cond{Arg: 0, Op: MaskedNonZero, Value: cloneNamespaceFlags},
				"clone with namespace flags creates namespaces; plain fork and threads pass"),
			notify("listns", "enumerates namespaces (6.18); nothing a program needs, new kernel surface"),

			// Kernel attack surface with a bug record and no use for a sandboxed program.
			notify("bpf", "eBPF programs and maps: verifier bugs are a classic local root"),
			notify("perf_event_open", "performance counters: a classic local root, and side channels"),
			notify("keyctl", "kernel keyrings are not namespaced; a bug record"),
			notify("add_key", "kernel keyrings are not namespaced"),
			notify("request_key", "kernel keyrings are not namespaced; can call out to user space helpers"),
			notify("userfaultfd", "lets a program stall the kernel at chosen points: the tool of many race exploits"),
			notify("io_uring_enter", "io_uring runs calls the filter never sees; unreachable since io_uring_setup fails"),
			notify("io_uring_register", "io_uring runs calls the filter never sees; unreachable since io_uring_setup fails"),
			notify("modify_ldt", "x86 descriptor tables: only 16-bit emulators need them; a bug record"),
			notify("lookup_dcookie", "oprofile's interface (removed from recent kernels); not for programs"),
			notify("fanotify_init", "file system wide monitoring"),
			notify("uselib", "a.out shared libraries (obsolete); not for programs"),

			// The machine: kernel code, power, swap, time, I/O ports, accounting.
			notify("kexec_load", "loads a new kernel"),
			notify("kexec_file_load", "loads a new kernel"),
			notify("init_module", "loads kernel code"),
			notify("finit_module", "loads kernel code"),
			notify("delete_module", "unloads kernel code"),
			notify("create_module", "old module interface (removed); only a probe would call it"),
			notify("get_kernel_syms", "old module interface (removed); only a probe would call it"),
			notify("query_module", "old module interface (removed); only a probe would call it"),
			notify("reboot", "reboots or halts the machine"),
			notify("swapon", "changes the host's swap"),
			notify("swapoff", "changes the host's swap"),
			notify("settimeofday", "sets the host's clock"),
			notify("clock_settime", "sets the host's clock"),
			notify("clock_adjtime", "adjusts the host's clock; the struct it reads is out of the filter's sight"),
			notify("adjtimex", "adjusts the host's clock; the struct it reads is out of the filter's sight"),
			notify("iopl", "raw I/O port access"),
			notify("ioperm", "raw I/O port access"),
			notify("acct", "process accounting for the host"),
			notify("quotactl", "disk quotas of host file systems"),
			notify("quotactl_fd", "disk quotas of host file systems"),
			notify("syslog", "the kernel log: host information and kernel pointers"),
			notify("vhangup", "hangs up the controlling terminal"),
			notify("nfsservctl", "kernel NFS server control (removed); only a probe would call it"),
			notify("_sysctl", "binary sysctl (removed in 5.5); only a probe would call it"),
			notify("sysfs", "obsolete file system type queries; nothing calls it"),
			notify("ustat", "obsolete file system statistics, dropped from glibc; nothing calls it"),

			// Terminals. The kernel reads ioctl's cmd as an unsigned int, so these compare the low 32 bits.
			notifyWhen("ioctl", Cond{Arg: 1, Op: Equal, Value: ioctlTIOCSTI, Low32: true},
				"TIOCSTI types into a terminal someone else reads: command injection outside the sandbox"),
			notifyWhen("ioctl", Cond{Arg: 1, Op: Equal, Value: ioctlTIOCLINUX, Low32: true},
				"TIOCLINUX pastes console selections, the same injection as TIOCSTI"),

			// personality: the kernel reads an unsigned int. Allowed: the query, which
			// Python and many tools make; PER_LINUX32 (uname says i686, used by linux32 and
			// old build scripts); ADDR_NO_RANDOMIZE alone or with PER_LINUX32, which only
			// weakens the caller's own ASLR and which sanitizer runtimes and some language
			// runtimes re-exec with. Anything else (READ_IMPLIES_EXEC, MMAP_PAGE_ZERO,
			// ADDR_LIMIT_*, UNAME26, other exec domains) has no use here and a bug record.
			notifyWhen("personality", Cond{Arg: 0, Op: NotIn, Low32: true, Values: []uint64{
				personaLinux, personaLinux32, personaNoRandomize, personaNoRandomize | personaLinux32, personaQuery,
			}}, "personality flags other than the query, PER_LINUX32 and ADDR_NO_RANDOMIZE weaken kernel defences"),

			// Calls that runtimes probe: failing them is enough, and a verdict would be wrong.
			{
				Syscall: "clone3", Action: Errno, Errno: unix.ENOSYS,
				Reason: "its flags live in memory a filter cannot read; ENOSYS makes glibc, Rust and Go fall back to clone, whose flags the clone rule inspects",
			},
			{
				Syscall: "io_uring_setup", Action: Errno, Errno: unix.ENOSYS,
				Reason: "io_uring runs calls the filter never sees; recent libuv (Node.js) and others set it up at start and fall back to epoll on ENOSYS",
			},
			{
				Syscall: "socket", Action: Errno, Errno: unix.EAFNOSUPPORT,
				When: &Cond{Arg: 0, Op: NotIn, Low32: true, Values: []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}},
				Reason: "other families (packet, alg, vsock, tipc, rds, can, ...) are rarely used kernel code, often loaded on demand, with a long bug record; " +
					"netlink's queues are charged to no cgroup (the kernel's replies echo each request: a route socket alone pinned 4 MB of host memory), " +
					"and in a namespace with loopback alone it tells nothing a program needs (glibc's getaddrinfo falls back); programs fall back on EAFNOSUPPORT",
			},
			{
				Syscall: "socketpair", Action: Errno, Errno: unix.EAFNOSUPPORT,
				When:   &Cond{Arg: 0, Op: NotIn, Low32: true, Values: []uint64{unix.AF_UNIX, unix.AF_INET, unix.AF_INET6}},
				Reason: "the same families as socket: socketpair reaches their creation code too",
			},

			// Host-wide kernel tables that no cgroup bounds: a sandbox could fill them for every process of the host.
			{
				Syscall: "io_setup", Action: Errno, Errno: unix.ENOSYS,
				Reason: "Linux AIO contexts count in fs.aio-nr against the host-wide fs.aio-max-nr: one sandbox took them all and io_setup failed host-wide; glibc's POSIX AIO uses threads, and libaio users fall back on ENOSYS",
			},
			{
				Syscall: "inotify_init", Action: Errno, Errno: unix.ENOSYS,
				Reason: "inotify instances and watches count up the user namespaces to their owner's, host root's, limit; and a watch on a read-only bind of the host's /usr sees live what other sandboxes and the host run; tail and file watchers fall back to polling",
			},
			{
				Syscall: "inotify_init1", Action: Errno, Errno: unix.ENOSYS,
				Reason: "as inotify_init: host root's inotify limits, and a live view of the host's file accesses",
			},
			{
				Syscall: "mq_open", Action: Errno, Errno: unix.ENOSYS,
				Reason: "POSIX message queue bytes count up the user namespaces against host root's RLIMIT_MSGQUEUE; a program has pipes, sockets and SysV queues (charged to its cgroup)",
			},
		},
	}
}
