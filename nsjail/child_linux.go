package nsjail

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The Go runtime's fork hooks, the same ones package syscall uses around its
// own fork: BeforeFork blocks signals and poisons the stack guard so that
// any stack growth in the child fails loudly; AfterFork undoes that in the
// parent.
//
//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

// childStep names the step at which the forked child failed.
type childStep uint32

const (
	stepStdio childStep = iota + 1
	stepJoinCgroup
	stepUnshareCgroup
	stepSetsid
	stepSignals
	stepRlimit
	stepAmbient
	stepBounding
	stepSetgid
	stepSetuid
	stepCapset
	stepNoNewPrivs
	stepSeccomp
	stepSendListener
	stepCloseRange
	stepExec
)

func (s childStep) String() string {
	switch s {
	case stepStdio:
		return "dup stdio"
	case stepJoinCgroup:
		return "join cgroup"
	case stepUnshareCgroup:
		return "unshare cgroup namespace"
	case stepSetsid:
		return "setsid"
	case stepSignals:
		return "reset signals"
	case stepRlimit:
		return "setrlimit"
	case stepAmbient:
		return "clear ambient capabilities"
	case stepBounding:
		return "drop bounding capabilities"
	case stepSetgid:
		return "setresgid"
	case stepSetuid:
		return "setresuid"
	case stepCapset:
		return "capset"
	case stepNoNewPrivs:
		return "no_new_privs"
	case stepSeccomp:
		return "seccomp"
	case stepSendListener:
		return "send seccomp listener"
	case stepCloseRange:
		return "close_range"
	case stepExec:
		return "execve"
	}
	return "unknown step"
}

// kernelSigaction is struct sigaction as the rt_sigaction system call takes
// it on amd64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// childPlan is everything the child needs after fork, prepared beforehand:
// the child allocates nothing and only makes raw system calls.
type childPlan struct {
	stdio [3]int // the program's stdin, stdout, stderr: dup'ed onto 0, 1, 2

	argv0 *byte
	argv  []*byte // nil-terminated
	envv  []*byte // nil-terminated

	joinFDs  []int // cgroup.procs files: the child writes "0" to each
	zero     [1]byte
	rlimits  []unix.Rlimit
	rlimitOf []int
	lastCap  int

	filter       unix.SockFprog // Len 0: no filter
	listenerSock int            // where the filter's listener fd goes (SCM_RIGHTS)
	msg          unix.Msghdr
	iov          unix.Iovec
	iovByte      [1]byte
	cmsg         []byte // one SCM_RIGHTS message for one fd; the fd goes at cmsgFDOffset
	cmsgFDOffset int

	capHeader unix.CapUserHeader
	capData   [2]unix.CapUserData
	sigDfl    kernelSigaction
	sigEmpty  uint64

	errFD  int // close-on-exec pipe: step and errno on failure, EOF on exec
	errBuf [8]byte
}

func (p *childPlan) prepare() {
	p.zero[0] = '0'
	p.iov.Base = &p.iovByte[0]
	p.iov.SetLen(1)
	p.cmsg = unix.UnixRights(0)
	p.cmsgFDOffset = unix.CmsgLen(0)
	p.msg.Iov = &p.iov
	p.msg.Iovlen = 1
	p.msg.Control = &p.cmsg[0]
	p.msg.SetControllen(len(p.cmsg))
	p.capHeader.Version = unix.LINUX_CAPABILITY_VERSION_3
}

// forkChild forks the program. In the child it runs the plan and execs;
// it returns the child's pid in the parent.
//
// After the fork the child runs on a copy of the calling thread only, with
// the Go runtime in an undefined state: it may call nothing but the raw,
// nosplit system call entry points, and may not allocate.
//
//go:norace
//go:nocheckptr
func forkChild(p *childPlan) (int, error) {
	syscall.ForkLock.Lock()
	runtimeBeforeFork()
	pid, _, errno := syscall.RawSyscall6(syscall.SYS_CLONE, uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 || pid != 0 {
		runtimeAfterFork()
		syscall.ForkLock.Unlock()
		if errno != 0 {
			return 0, &SetupError{Step: "fork", Err: errno}
		}
		return int(pid), nil
	}

	// Child. Join the program's cgroups first, so that everything it does
	// from here on (including the exec) is accounted to it.
	var step childStep
	var r1 uintptr
	// The streams were received above 2, so no dup3 clobbers another.
	for i := 0; i < 3; i++ {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.stdio[i]), uintptr(i), 0); errno != 0 {
			step = stepStdio
			goto fail
		}
	}
	for i := 0; i < len(p.joinFDs); i++ {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.joinFDs[i]), uintptr(unsafe.Pointer(&p.zero[0])), 1)
		if errno != 0 {
			step = stepJoinCgroup
			goto fail
		}
	}
	// A cgroup namespace rooted at the program's own groups.
	if _, _, errno = syscall.RawSyscall(syscall.SYS_UNSHARE, unix.CLONE_NEWCGROUP, 0, 0); errno != 0 {
		step = stepUnshareCgroup
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); errno != 0 {
		step = stepSetsid
		goto fail
	}
	// Default dispositions for every signal and an empty mask: what the init
	// inherited or ignored is not the program's business.
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig == uintptr(syscall.SIGKILL) || sig == uintptr(syscall.SIGSTOP) || sig == 32 || sig == 33 {
			continue
		}
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&p.sigDfl)), 0, 8, 0, 0); errno != 0 {
			step = stepSignals
			goto fail
		}
	}
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&p.sigEmpty)), 0, 8, 0, 0); errno != 0 {
		step = stepSignals
		goto fail
	}
	for i := 0; i < len(p.rlimits); i++ {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, uintptr(p.rlimitOf[i]), uintptr(unsafe.Pointer(&p.rlimits[i])), 0, 0, 0); errno != 0 {
			step = stepRlimit
			goto fail
		}
	}
	// Capabilities: none at all. The bounding set must go while we still
	// hold CAP_SETPCAP (as root of the namespace), so it comes before the
	// change to the sandbox user, which clears the other sets but the
	// inheritable one; capset clears that.
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 {
		step = stepAmbient
		goto fail
	}
	for c := 0; c <= p.lastCap; c++ {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0, 0); errno != 0 {
			step = stepBounding
			goto fail
		}
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESGID, SandboxGID, SandboxGID, SandboxGID); errno != 0 {
		step = stepSetgid
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESUID, SandboxUID, SandboxUID, SandboxUID); errno != 0 {
		step = stepSetuid
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&p.capHeader)), uintptr(unsafe.Pointer(&p.capData[0])), 0); errno != 0 {
		step = stepCapset
		goto fail
	}
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		step = stepNoNewPrivs
		goto fail
	}
	// Seccomp last but for the exec: from here on every forbidden call
	// reaches the init through the listener.
	if p.filter.Len > 0 {
		r1, _, errno = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&p.filter)))
		if errno != 0 {
			step = stepSeccomp
			goto fail
		}
		*(*int32)(unsafe.Pointer(&p.cmsg[p.cmsgFDOffset])) = int32(r1)
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SENDMSG, uintptr(p.listenerSock), uintptr(unsafe.Pointer(&p.msg)), 0); errno != 0 {
			step = stepSendListener
			goto fail
		}
		syscall.RawSyscall(syscall.SYS_CLOSE, r1, 0, 0)
	}
	// Every descriptor but stdin, stdout and stderr closes on exec.
	if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, 3, ^uintptr(0)>>32, unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
		step = stepCloseRange
		goto fail
	}
	_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(p.argv0)), uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])))
	step = stepExec

fail:
	p.errBuf[0] = byte(step)
	p.errBuf[1] = byte(step >> 8)
	p.errBuf[2] = byte(step >> 16)
	p.errBuf[3] = byte(step >> 24)
	p.errBuf[4] = byte(errno)
	p.errBuf[5] = byte(errno >> 8)
	p.errBuf[6] = byte(errno >> 16)
	p.errBuf[7] = byte(errno >> 24)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.errFD), uintptr(unsafe.Pointer(&p.errBuf[0])), uintptr(len(p.errBuf)))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}
