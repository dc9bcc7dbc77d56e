// Package cgroup puts each sandboxd run under cgroup limits and accounting,
// with one interface for pure cgroup v2, pure v1 and hybrid hosts.
//
// # Contract
//
// One run is one command execution. Open finds, for every hierarchy it
// needs, this process's own group (from /proc/self/cgroup through
// /proc/self/mountinfo) and creates our subtree S = <own group>/<Subtree>
// beneath it. Create makes a run's groups under S and applies its Limits;
// the run is then populated by two parties:
//
//   - the sandbox supervisor (nsjail's pid-1 init) is cloned straight into
//     the supervisors' cgroup2 group S/_inits-<pid>, one for every run of
//     this process and outside them all: clone3(CLONE_INTO_CGROUP) with the
//     directory fd from SupervisorDir. A run costs one cgroup2 directory;
//   - the program's process is cloned by the supervisor straight into the
//     run's cgroup2 group (CLONE_INTO_CGROUP with the directory from
//     ProgramDir; DelegateJoin gives the supervisor's uid the two
//     cgroup.procs files the kernel asks it to be able to write: the run
//     group's and S's, the common ancestor; the supervisor, pid 1 of its
//     sandbox's pid namespace, can name no process but its own), and joins
//     the v1 groups itself: the caller hands it the "tasks" files from
//     ThreadJoinFiles, opened by us as root on the host, and it writes "0"
//     to each before exec. The kernel checks the opener's credentials, so
//     this works from inside the sandbox's user and cgroup namespaces. No
//     cgroup.procs is written: each such write waits for an RCU grace
//     period while it holds the global cgroup mutex. (JoinFiles, with the
//     cgroup.procs files of every hierarchy, remains for a program that
//     joins all of them by itself.)
//
// While the run goes, CPUUsage and OOMKills are cheap to poll (one pread on
// a file kept open, no allocation). At the end, Kill SIGKILLs every process
// of the run and waits until none is left; Stats reads the accounting,
// still there after Kill; Destroy removes the groups. After a restart,
// Leftovers lists the runs a previous daemon left and Remove reclaims each.
//
//	Open ─► Create ─► DelegateJoin, SupervisorDir, ProgramDir, ThreadJoinFiles
//	        ─► clone3 init ─► clone3 program into <run> ─► it joins v1, execs
//	                                                    │
//	        CPUUsage/OOMKills (poll) ◄──────────────────┘
//	        Kill ─► Stats ─► Destroy
//
// # Layouts
//
// Pure v2 (the usual systemd host, Delegate=yes). Limits and statistics
// apply to the run's leaf. Controllers are enabled in every group's
// cgroup.subtree_control from our own group down. If our own group holds
// this process, the kernel's no-internal-processes rule forbids that, so
// Open first moves this process into the leaf <Subtree>-self.
//
//	<own group>/                 subtree_control: +memory +pids (+cpu)
//	├── sandboxd-self/           this process, when it had to move
//	└── sandboxd/  (S)           subtree_control: +memory +pids (+cpu)
//	    ├── _inits-<pid>/        every run's supervisor (CLONE_INTO_CGROUP); no limits
//	    └── <run>/               program tree: memory.max, memory.swap.max=0,
//	                             memory.oom.group=1, pids.max; cpu.stat,
//	                             memory.peak, memory.events, pids.peak; cgroup.kill
//
// Hybrid (v1 controllers plus a controller-less cgroup2 at Root/unified):
// the unified tree gives the supervisor/program split, cgroup.kill and
// CLONE_INTO_CGROUP, and the run group's cpu.stat is the CPU clock (a
// cpuacct hierarchy, mounted or not, is left alone). The v1 hierarchies
// hold the program tree only (the supervisor stays outside them) and carry
// the limits and the memory and pids statistics.
//
//	unified/<own>/S/_inits-<pid>           every run's supervisor
//	unified/<own>/S/<run>                  no writes: no controllers there; the program
//	                                       tree; cpu.stat
//	memory/<own>/S/<run>                   memory.limit_in_bytes, memory.memsw.limit_in_bytes
//	                                       (same value: no swap), memory.kmem.tcp.limit_in_bytes
//	                                       (same value: socket buffers); swappiness 0 set once on S
//	pids/<own>/S/<run>                     pids.max
//
// Pure v1: as hybrid without the unified tree, plus cpuacct/<own>/S/<run>
// (cpuacct.usage*, the CPU clock) and freezer/<own>/S/<run>,
// which Kill uses; there is no supervisors' group and SupervisorDir
// returns nil.
//
// # Killing
//
// Kill prefers cgroup.kill on the cgroup2 run group (Linux 5.14+). Without
// it, the group is frozen with cgroup.freeze (5.2+), each pid gets SIGKILL,
// and the group is thawed at the end. On pure v1 each round is freezer
// FROZEN, SIGKILL to every pid, THAWED. Rounds repeat until cgroup.events
// says "populated 0" (or the freezer group is empty) and the v1 groups'
// cgroup.procs are empty, for at most about 2 s. Signalling pids read from a
// group is safe from pid reuse because the group is frozen while they are
// read; a process already dying from an earlier round could in principle be
// reaped and its pid reused in between (only on v1, where the supervisor
// that reaps sits outside the frozen group). Zombies do not keep groups
// busy: the kernel drops exiting tasks from them before they are reaped.
//
// # What it needs from the kernel
//
//   - v2: the memory and pids controllers in our own group's
//     cgroup.controllers (delegation). Optional, probed at Open and reported
//     in Features: cgroup.kill (5.14), cgroup.freeze (5.2), memory.peak
//     (5.19), pids.peak (recent kernels only), memory.swap.max (swap accounting),
//     memory.oom.group (4.19); CLONE_INTO_CGROUP is assumed from 5.7.
//   - v1: memory and pids hierarchies; on pure v1 also cpuacct and freezer.
//     Optional: memory.memsw.* (swap accounting), pids.peak.
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
//   - It does not set CPU limits: the caller polls CPUUsage and kills on
//     its CPU budget, which gives exact time-limit verdicts.
//
// Our subtree is named by Config.Subtree beneath our own group. Where that
// group is a hierarchy's root (on hybrid hosts, typically every hierarchy
// but a nested memory one), two daemons with the same Subtree share S;
// Leftovers would show, and Remove would kill, each other's runs. Give each
// daemon on a host its own Subtree; Lock makes sure of it: a flock on S in
// every hierarchy, held until Close, and Close removes no S that another
// process holds. (Each process has its own supervisors' group there; Open
// removes those of processes that are gone.)
package cgroup
