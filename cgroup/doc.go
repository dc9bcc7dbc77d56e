// Package cgroup puts each sandbox under cgroup limits and accounting, with
// one interface for pure cgroup v2, pure v1 and hybrid hosts.
//
// # Contract
//
// A sandbox is the namespaces, cgroups and init (pid 1) that one step runs
// in; its program is the user's command, pid 2 and its descendants. Open
// finds, for every hierarchy it needs, this process's own group (from
// /proc/self/cgroup through /proc/self/mountinfo) and creates our subtree
// S = <own group>/<Subtree> beneath it.
//
// NewSandbox readies one sandbox's cgroups in one call: it makes the
// sandbox's groups under S with its Limits, opens the files that a step's
// polls and Stats read, lets the init's uid move a process into the
// program's cgroup2 group, and returns the Group and a Handover of open
// files. On failure it leaves no group and no open file. The caller then:
//
//  1. clones the init into Handover.Init (clone3 with CLONE_INTO_CGROUP):
//     S/_inits-<pid>, the group of every init of this process, outside
//     every sandbox's groups, so that a sandbox costs one cgroup2
//     directory;
//  2. has the init, running as the uid and gid given to NewSandbox, clone
//     the program's process into Handover.Program (CLONE_INTO_CGROUP). The
//     kernel asks the init to be able to write cgroup.procs of that group
//     and of S, the common ancestor; as pid 1 of its sandbox's pid
//     namespace it can name no process but its own sandbox's;
//  3. has the program's process, single-threaded, write "0" to each of
//     Handover.Join (the v1 groups' "tasks" files) before exec. The files
//     were opened by us as root on the host and the kernel checks the
//     opener's credentials, so this works from inside the sandbox's user
//     and cgroup namespaces. No cgroup.procs is written: each such write
//     waits for an RCU grace period while it holds the global cgroup mutex;
//  4. closes the Handover once the init holds its copies.
//
// Before the program execs, SetLimits gives the group a step's limits
// (writing only those that differ) and MarkStart makes the CPU figures
// count from then on. While the step runs, CPUUsage and OOMKills are cheap
// to poll (one pread on a file kept open, no allocation). KillProgram
// kills the program and spares the init. At the end, Kill SIGKILLs every
// process of the sandbox's groups and waits until none is left; Stats
// reads the accounting, still there after Kill; Destroy removes the
// groups. After a restart, Leftovers lists the sandboxes a previous daemon
// left and Remove reclaims each.
//
//	Open
//	NewSandbox ─► Group, Handover{Init, Program, Join}
//	    init cloned into Init; it clones the program's process into
//	    Program; that process writes "0" to each of Join; Handover.Close
//	SetLimits, MarkStart ─► the program execs ─► CPUUsage, OOMKills (polled)
//	Kill ─► Stats ─► Destroy
//
// # Layouts
//
// Pure v2 (the usual systemd host, Delegate=yes). Limits and statistics
// apply to the sandbox's leaf. Controllers are enabled in every group's
// cgroup.subtree_control from our own group down. If our own group holds
// this process, the kernel's no-internal-processes rule forbids that, so
// Open first moves this process into the leaf <Subtree>-self.
//
//	<own group>/                 subtree_control: +memory +pids (+cpu)
//	├── sandboxd-self/           this process, when it had to move
//	└── sandboxd/  (S)           subtree_control: +memory +pids (+cpu)
//	    ├── _inits-<pid>/        every sandbox's init (CLONE_INTO_CGROUP); no limits
//	    └── <name>/              program tree: memory.max, memory.swap.max=0,
//	                             memory.oom.group=1, pids.max, cpu.max; cpu.stat,
//	                             memory.peak, memory.events, pids.peak; cgroup.kill
//
// Hybrid (v1 controllers plus a controller-less cgroup2 at Root/unified):
// the unified tree gives the init/program split, cgroup.kill and
// CLONE_INTO_CGROUP, and the sandbox group's cpu.stat is the CPU clock (a
// cpuacct hierarchy, mounted or not, is left alone). The v1 hierarchies
// hold the program tree only (the init stays outside them) and carry
// the limits and the memory and pids statistics.
//
//	unified/<own>/S/_inits-<pid>           every sandbox's init
//	unified/<own>/S/<name>                 no writes: no controllers there; the program
//	                                       tree; cpu.stat
//	memory/<own>/S/<name>                  memory.limit_in_bytes, memory.memsw.limit_in_bytes
//	                                       (same value: no swap), memory.kmem.tcp.limit_in_bytes
//	                                       (same value: socket buffers); swappiness 0 set once on S
//	pids/<own>/S/<name>                    pids.max
//	cpu/<own>/S/<name>                     cpu.cfs_quota_us (the period stays the
//	                                       kernel's 100 ms); cpu.stat throttled_time
//
// The init is in none of the groups that carry limits: the CPU quota holds
// back the program and everything it forks, never the init that reports
// its end (nor the helper), so a throttled program's wall time and CPU time
// are its own.
//
// Pure v1: as hybrid without the unified tree, plus cpuacct/<own>/S/<name>
// (cpuacct.usage*, the CPU clock; often one hierarchy with cpu) and
// freezer/<own>/S/<name>,
// which Kill uses; there is no inits' group, and the Handover has no
// cgroup2 directories.
//
// # Killing
//
// Kill prefers cgroup.kill on the sandbox's cgroup2 group (Linux 5.14+).
// Without it, the group is frozen with cgroup.freeze (5.2+), each pid gets
// SIGKILL, and the group is thawed at the end. On pure v1 each round is
// freezer FROZEN, SIGKILL to every pid, THAWED. Rounds repeat until
// cgroup.events says "populated 0" (or the freezer group is empty) and the
// v1 groups' cgroup.procs are empty, for at most about 2 s. Signalling pids
// read from a group is safe from pid reuse because the group is frozen while
// they are read; a process already dying from an earlier round could in
// principle be reaped and its pid reused in between (only on v1, where the
// init that reaps sits outside the frozen group). Zombies do not keep groups
// busy: the kernel drops exiting tasks from them before they are reaped.
//
// # What it needs from the kernel
//
//   - v2: the memory and pids controllers in our own group's
//     cgroup.controllers (delegation). Optional, probed at Open and reported
//     in Features: cgroup.kill (5.14), cgroup.freeze (5.2), memory.peak
//     (5.19), pids.peak (recent kernels only), memory.swap.max (swap accounting),
//     memory.oom.group (4.19); CLONE_INTO_CGROUP is assumed from 5.7. The cpu
//     controller is optional: without it there is no CPU rate limit
//     (Features.CPULimit), and CPU time is still measured by cpu.stat.
//   - v1: memory and pids hierarchies; on pure v1 also cpuacct and freezer.
//     Optional: memory.memsw.* (swap accounting), pids.peak, the cpu
//     hierarchy with CFS bandwidth control (cpu.cfs_quota_us:
//     Features.CPULimit).
//   - Root: creating directories and writing files in our subtree.
//
// # What it never does
//
//   - It never writes to, moves processes out of, or removes a group it did
//     not create, with one exception on v2: our own group's
//     cgroup.subtree_control, and moving this very process (only) into our
//     <Subtree>-self leaf. It refuses to write a hierarchy's root group.
//   - It never mounts, unmounts or remounts anything.
//   - It never removes recursively: groups go with plain rmdir, children
//     first. Control files are opened with O_NOFOLLOW.
//   - It sets no CPU-time budget: the caller polls CPUUsage and kills on
//     its budget, which gives exact time-limit verdicts. The CPU quota
//     (Limits.CPUQuota) caps the rate only; it kills nothing.
//
// Our subtree is named by Config.Subtree beneath our own group. Where that
// group is a hierarchy's root (on hybrid hosts, typically every hierarchy
// but a nested memory one), two daemons with the same Subtree share S;
// Leftovers would show, and Remove would kill, each other's sandboxes. Give each
// daemon on a host its own Subtree; Lock makes sure of it: a flock on S in
// every hierarchy, held until Close, and Close removes no S that another
// process holds. (Each process has its own inits' group there; Open
// removes those of processes that are gone.)
package cgroup
