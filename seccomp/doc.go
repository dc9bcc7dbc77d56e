//go:build linux

// Package seccomp turns a seccomp policy, a reviewed table with a reason on
// every rule, into a classic BPF program for SECCOMP_SET_MODE_FILTER on
// x86_64. It is pure Go: no cgo, no libseccomp.
//
// # Contract
//
// The package compiles; it installs nothing. The program's process (the
// clone that becomes pid 2) installs the filter before it waits for its
// command, taking it as plain []unix.SockFilter data (nsjail never imports
// this package), with SECCOMP_FILTER_FLAG_NEW_LISTENER. The sandbox's init
// (its pid 1) holds the listener fd: a call whose action
// is Notify reaches it, and it kills the whole sandbox and reports the verdict
// syscall_blocked, naming the call with SyscallName. Errno fails a call in
// place (for calls that runtimes probe and can live without); Kill ends the
// caller with SIGSYS.
//
// What it needs from the kernel: seccomp filters (3.5), run under
// no_new_privs; SECCOMP_RET_KILL_PROCESS (4.14); SECCOMP_RET_USER_NOTIF and
// the listener (5.0). With no listener attached, a Notify call fails with
// ENOSYS: documented kernel behaviour, which the live test relies on.
//
// What it does not do:
//   - look behind pointers: a filter sees the six argument registers only, so
//     rules test numbers and flags, never paths or structs (hence clone3,
//     whose flags are in memory, gets ENOSYS and programs fall back to clone);
//   - filter other architectures natively: the program is for x86_64 and
//     answers any other ABI, i386 (int 0x80 from a 64-bit process) and x32
//     included, with the policy's ForeignABI action;
//   - install the filter, read the listener or decide the verdict.
//
// Every file builds on Linux only (unix.SockFilter is Linux's). The tables
// describe the x86_64 ABI whatever machine builds them, so the compiler gives
// the same program on any Linux architecture. names_x86_64.go and
// names_i386.go are generated from golang.org/x/sys/unix by gen_names.go
// (go generate).
//
// # The program
//
// Checks run in this order; every path ends in a return:
//
//	ld arch ── != AUDIT_ARCH_X86_64 ──────────────────┐
//	   │ ==                                            │
//	ld nr ──── & 0x40000000 (x32 bit; also nr < 0) ───┤
//	   │ clear                                         ▼
//	   │                                     ret ForeignABI
//	binary search over the numbers that have rules
//	(jge on a middle number; groups of at most 4 compared with jeq)
//	   ├── number without rules ──> ret Default
//	   └── number with rules:
//	         each conditional rule in table order:
//	             ld the argument's halves, test ── match ──> ret rule's action
//	         ret the unconditional rule's action, or Default
//
// Arguments are little-endian u64s at offset 16+8*i of struct seccomp_data;
// the filter loads them as two 32-bit halves (low at +0, high at +4). A Cond
// with Low32 compares only the low half: use it where the kernel declares the
// argument int or unsigned int and ignores the upper half (see Cond.Low32).
// A conditional jump reaches 255 instructions; further targets go through an
// unconditional jump placed after it. The kernel takes at most 4096
// instructions; the default policy compiles to about 200.
//
// # Testing
//
// Policy.Decide states a policy's meaning in plain Go. The tests run the
// compiled program in golang.org/x/net/bpf's VM for every x86_64 number and
// many argument patterns and hold it to Decide, keep the default program's
// disassembly in testdata/default.golden, and install the program in child
// processes on the real kernel: each blocked call must fail as the table
// says, and bash, coreutils, Python, gcc, Java, Node.js, Go and Rust must
// build and run programs under it without meeting a Notify rule.
package seccomp
