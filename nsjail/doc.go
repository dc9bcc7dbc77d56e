// Package nsjail runs one command in fresh Linux namespaces: the namespace
// jail under every sandboxd step.
//
// # Contract
//
// Prepare starts an init in new user, pid, mount, network, uts and ipc
// namespaces. The init builds a fresh root and forks the program's process,
// which joins the program's cgroups and waits; then the init reports Ready.
// Run gives the sandbox its one command: the init attaches the workspace,
// hands the command to the waiting process, which execs it as pid 2, and
// watches it until it ends. A sandbox runs one command only; the caller
// may prepare it long before the command is known, which takes every
// namespace, mount and cgroup migration off the command's path.
//
// The package takes everything as plain data: the seccomp program is a
// compiled []unix.SockFilter, cgroups are open files (cgroup.procs of the
// program's groups, written by the program's process itself, and a cgroup2
// directory that the init is cloned into). It never imports the cgroup or
// seccomp packages, and it judges nothing: limits, verdicts and
// measurements belong to the caller.
//
// # What it needs from the kernel
//
// User namespaces that root may create, CLONE_NEWPID/NS/NET/UTS/IPC, procfs
// mountable inside a user namespace (no locked over-mounts on /proc), seccomp
// filters with SECCOMP_FILTER_FLAG_NEW_LISTENER (5.0), close_range (5.11),
// and clone3 CLONE_INTO_CGROUP (5.7) where a cgroup2 directory is given.
// Roots come from shared templates where the kernel attaches mounts to a
// detached mount tree (6.15): each init is cloned in a template mount
// namespace and starts with its root in place; elsewhere each init builds
// its whole root.
//
// # Three processes: the helper, the init, the program
//
// The helper is a long-lived process (HelperMain, started on the first
// Prepare that falls to it, and again after it dies); there are
// HelperOptions.Count of them, each sandbox going to the least busy, so
// that the clones, which one helper makes one after another, keep up with
// many CPUs. With HelperOptions.InProcess a helper is instead a thread of
// the engine's process (serveHelper on a locked thread, same protocol),
// for a process that runs one sandbox and exits: sandboxd exec. Each sandbox's init (its pid 1) is no
// program of its own: it is a CLONE_VM clone of the helper, running
// rawInitMain: raw system calls only, over a plan the helper laid out for
// it (the root's mount operations, the program's process, buffers). A
// clone that shares memory costs neither an exec nor a teardown of its
// memory. The helper holds nothing but these plans: a job's files and
// output never pass through it, only each command's image (argv, env) on
// its way to exec. It is the helper's memory, not the engine's process's,
// that a sandbox's init shares. Nothing the init runs stores a pointer in
// that memory: the helper's garbage collector may be marking it meanwhile.
// The program is the user's command: pid 2 and its descendants; "the
// program's process" is the clone of the init that becomes pid 2 at its
// exec.
//
// The engine's process talks to the helper over a SOCK_SEQPACKET socket
// (helperclient_linux.go, helper_linux.go): a spawn request (the Spec as
// JSON, or only its Key once the helper has it, with the sandbox's host
// ids and the init's descriptors) is answered with the init's pid, a pidfd
// and where the command's image goes in the init's memory. The helper
// reaps each init it made (its one thread waits in ppoll for a request or
// any init's pidfd); the engine's process sees an init's end on its own
// copy of the pidfd, through its poller: no message says it. The helper dies with the engine's process
// (its death signal), and the inits with the helper (theirs); the next
// Prepare that falls to a dead helper's place starts a new one. A helper
// that is a thread builds each root in the init (no template: one
// sandbox would not repay one) and reaps only its own inits.
//
// # The order of operations
//
//	engine (Prepare, Run)     helper               init (pid 1; root of the user ns,
//	                                                 mapped to InitUID: every capability
//	                                                 in its namespaces, none outside)
//	  Spec, fds ------------>  plan the root; enter its
//	                           template namespace (template_linux.go)
//	                           clone3(VM|NEWUSER|NEWPID|NEWNS|...)
//	                           [CLONE_INTO_CGROUP Files.Init]
//	                           write uid_map/gid_map, release -->  setresuid/gid 0;
//	                                                 death signal; lay out fds 0..
//	  <-- pid, pidfd, image ---                      the root is the template's (a copy
//	                                                 of its namespace): mount /dev/shm,
//	                                                 /proc (/proc/locks masked), /tmp on it
//	                                                 (or: make "/" private; tmpfs on
//	                                                 RootDir, binds (ro), /proc, /dev,
//	                                                 /tmp, files; "/" remounted
//	                                                 read-only; pivot_root)
//	                                                 hostname, loopback up; the workspace
//	                                                 tmpfs (Spec.ReadyWorkspaceBytes), if set
//	                                                 clone3(VM [INTO_CGROUP Program]) --
//	                                                 the program's process:
//	                                                    join the other cgroups (write "0"
//	                                                    to each Join fd)
//	                                                    its own fds above 9; 3..9 /dev/null
//	                                                    (close-on-exec) until the command's
//	                                                    unshare(CLONE_NEWCGROUP); setsid;
//	                                                    reset signals; drop bounding,
//	                                                    ambient; no_new_privs;
//	                                                    seccomp(NEW_LISTENER); "R" on its
//	                                                    socket, with the listener fd;
//	                                                    wait for the command
//	  <-- {"kind":"ready"} ---------------------------
//	  (Run) stdin, stdout, stderr, extra
//	  files (3..9), workdir
//	  as SCM_RIGHTS on fd 5; the command
//	  (laid out for the image buffer,
//	  rawCommand) on fd 3, close --------------------> attach the workspace (or a tmpfs,
//	                                                 unless the one mounted ahead fits)
//	                                                 read the image into the buffer;
//	                                                 find argv[0] among the candidates;
//	                                                 send the program's fds -->
//	                                                    dup3 them to 0..9; chdir; rlimits;
//	                                                    setresgid/setresuid 1000 (HostUID);
//	                                                    capset all zero; fds above 9
//	                                                    close-on-exec; execve
//	  <-- {"kind":"started"} -------------------------  exec seen (error pipe closed), or
//	                                                 StartedAfter later (none if it
//	                                                 ended sooner)
//	  <-- {"kind":"blocked"} -------------------------  a Notify rule hit: kill(-1, SIGKILL)
//	  <-- {"kind":"exited"}  -------------------------  pid 2 reaped (signalfd): status,
//	                                                 rusage, wall; kill(-1, SIGKILL),
//	                                                 reap all; statfs /tmp, /dev/shm,
//	                                                 the workspace (unused); wait
//	  (Kill) close fd 5, pidfd SIGKILL  ------------->  until fd 5 closes; exit
//	  pidfd readable           reap (pidfd)
//
// Messages travel one JSON object a line over fd 4. A setup failure is
// reported as {"kind":"failed"} with a step number (step.go), its path
// and an errno, which the engine's process reads as a *SetupError
// ("bind /usr: permission denied"), and the init exits. Every process that
// can fail reports with the same step enum.
//
// At its exec the program has descriptors 0, 1 and 2 and those of 3 to 9
// its command gives (IO.ExtraFiles), and no other: the program's process
// keeps its own above 9, and so receives the command's there, so that no
// dup3 onto 0 to 9 closes one it still needs (its error pipe, which tells
// a failed exec from a started program).
//
// The program is never pid 1: pid 1 ignores signals it has no handler for,
// so abort() in pid 1 would not end in SIGABRT. The program runs under
// another uid than its init, so it cannot signal it, nor read its /proc
// entries. When the init dies, the kernel kills everything left in its pid
// namespace.
//
// The helper is a small program of its own (cmd/sandboxd-helper) when the
// binary embeds one (build tag embedhelper): it runs from a sealed memfd.
// Otherwise the running binary is re-executed, and its main must call
// HelperMain when IsHelper says so.
//
// Both clones share the cloning process's memory (CLONE_VM, on a stack of
// the child's own; amd64 only, an ordinary fork elsewhere): the init for
// its whole life, the program's process until its exec.
package nsjail
