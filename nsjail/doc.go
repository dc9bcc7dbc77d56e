// Package nsjail runs one command in fresh Linux namespaces: the namespace
// jail under every sandboxd step.
//
// # Contract
//
// Prepare starts a small init (see Init) in new user, pid, mount, network,
// uts and ipc namespaces. The init builds a fresh root and forks the
// program's process, which joins the program's cgroups and waits; then the
// init reports Ready. Run gives the sandbox its one command: the init
// attaches the workspace, hands the command to the waiting process, which
// execs it as pid 2, and supervises it until it ends. Start is Prepare and
// Run at once. A sandbox runs one command only; the caller may prepare it
// long before the command is known, which takes every namespace, mount and
// cgroup migration off the command's path.
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
//
// # The order of operations
//
//	parent (Prepare, Run)                init (pid 1; root of the user ns, mapped
//	                                           to InitUID: every capability in its
//	                                           namespaces, none outside)
//	  write Spec as JSON to fd 3
//	  clone3(VM|NEWUSER|NEWPID|NEWNS|...)
//	  [CLONE_INTO_CGROUP supervisor dir]
//	  write uid_map/gid_map, release -->  setresuid/gid 0; death signal;
//	                                      lay out fds 0..; execve the init
//	  (startInit returns on the exec) -->  read Spec from fd 3
//	                                         make "/" private; tmpfs on RootDir
//	                                         binds (ro), /proc, /dev, /tmp
//	                                         pivot_root, remount "/" read-only
//	                                         hostname, loopback up
//	                                         clone3(VM) -- the program's process:
//	                                            join cgroups (write "0" to each fd)
//	                                            unshare(CLONE_NEWCGROUP); setsid;
//	                                            reset signals; drop bounding,
//	                                            ambient; no_new_privs;
//	                                            seccomp(NEW_LISTENER); "R" on its
//	                                            socket, with the listener fd;
//	                                            wait for the command
//	  <-- {"kind":"ready"}  ---------------
//	  (Run) stdin, stdout, stderr, workdir
//	  as SCM_RIGHTS on fd 5; the command
//	  as JSON on fd 3, close  ----------->  attach the workspace (or a tmpfs)
//	                                         find argv[0]; lay the command out
//	                                         for the waiting process's memory;
//	                                         send it with stdio  ---------->
//	                                            dup stdio; chdir; rlimits;
//	                                            setresgid/setresuid 1000 (HostUID);
//	                                            capset all zero; execve
//	  <-- {"kind":"started"}  ------------- exec seen (error pipe closed)
//	  <-- {"kind":"blocked"}  ------------- a Notify rule hit: kill(-1, SIGKILL)
//	  <-- {"kind":"exited"}   ------------- pid 2 reaped: status, rusage, wall
//	                                         kill(-1, SIGKILL), reap all; wait
//	  (Kill) close fd 5, SIGKILL  -------->  until fd 5 closes; exit
//
// Messages travel one JSON object a line over fd 4. A setup failure is
// reported as {"kind":"failed"} naming the step (for example
// "mount /usr: permission denied"), and the init exits.
//
// The program is never pid 1: pid 1 ignores signals it has no handler for,
// so abort() in pid 1 would not end in SIGABRT. The program runs under
// another uid than its init, so it cannot signal it, nor read its /proc
// entries. When the init dies, the kernel kills everything left in its pid
// namespace.
//
// The init is a small program of its own (cmd/sandboxd-init) when the
// binary embeds one (build tag embedinit): it runs from a sealed memfd and
// starts faster than a large binary would. Otherwise the running binary is
// re-executed, and its main must call Init when IsInit says so.
//
// Both clones share the forking process's memory until the child's exec
// (CLONE_VM, on a stack of the child's own; amd64 only, an ordinary fork
// elsewhere): the child runs only raw system calls prepared for it. A
// fork of the daemon copied its page tables, write-protected its heap and
// left the exec a copy to tear down; that was the larger part of the
// daemon's CPU per sandbox.
package nsjail
