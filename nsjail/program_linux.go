package nsjail

import (
	"fmt"
	"sync"
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

// kernelSigaction is struct sigaction as the rt_sigaction system call takes
// it on amd64.
type kernelSigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// maxRlimits bounds the rlimits of one command, RLIMIT_CORE included.
const maxRlimits = 16

// imageCap is the room for a command's image: the kernel takes at most
// 6 MiB of arguments and environment (three quarters of 8 MiB), pointers
// included, so whatever fits the kernel fits here. The pages are touched
// only as far as a command fills them.
const imageCap = 8 << 20

// imageHeader starts a command's image: the command laid out, pointers and
// all, for the address the program's process will receive it at, so that
// it needs no parsing and no allocation.
type imageHeader struct {
	size  uint64  // bytes of the whole image, this header included
	argv0 uintptr // *byte: the path to execute
	argv  uintptr // **byte, nil-terminated
	envv  uintptr // **byte, nil-terminated
	// fds has bit n set for each descriptor n (3 to MaxExtraFD) the
	// command gives beside stdin, stdout and stderr.
	fds     uint64
	nrlimit uint64
	rlimits [maxRlimits]struct {
		resource uint64
		limit    unix.Rlimit
	}
	// cpuMask is Command.CPUs as the kernel's cpu_set_t; all zero: the
	// affinity stays as it is.
	cpuMask [cpuMaskWords]uint64
}

// cpuMaskWords is the size of imageHeader.cpuMask in 64-bit words.
const cpuMaskWords = 16

// programPlan is everything the program's process needs after its fork,
// laid out beforehand: it allocates nothing and only makes raw system
// calls. It is forked when the sandbox is prepared and waits for its
// command on sock; the command comes as an image (see imageHeader) and the
// program's descriptors: stdin, stdout, stderr, then those the image's fds
// names, in order.
type programPlan struct {
	joinFDs []int // cgroup.procs files: the program's process writes "0" to each
	zero    [1]byte
	lastCap int

	sock      int // the program's process's end of a SOCK_STREAM pair with the init
	readyByte [1]byte

	image    []byte // imageCap bytes; the image is received here
	recvIov  unix.Iovec
	recvMsg  unix.Msghdr
	recvCmsg []byte // room for SCM_RIGHTS of descriptors 0 to MaxExtraFD
	stdioOff int    // where the descriptors start in recvCmsg

	wsPath *byte

	filter   unix.SockFprog // Len 0: no filter
	msg      unix.Msghdr    // the listener's SCM_RIGHTS message to the init, on sock
	iov      unix.Iovec
	iovByte  [1]byte
	cmsg     []byte // one SCM_RIGHTS message for one fd; the fd goes at cmsgFDOffset
	cmsgFDOf int

	capHeader unix.CapUserHeader
	capData   [2]unix.CapUserData
	sigDfl    kernelSigaction
	sigEmpty  uint64

	errFD  int // close-on-exec pipe: step and errno on failure, EOF on exec
	errBuf [8]byte

	// otherSched: the helper runs under a batch or real-time policy, which
	// the program does not inherit. Its process does its setup under it,
	// then takes SCHED_OTHER (at its nice value) before it reports ready;
	// the init does the same before it reports its sandbox ready. A
	// program starts as one started from a shell would, and the init
	// that watches and times it wakes as promptly as under SCHED_OTHER.
	otherSched bool
	// leaveRealTimeFirst: that policy is a real-time one, and the process
	// takes SCHED_OTHER before it joins its cgroups, not after its setup:
	// a v1 cpu group refuses a real-time task.
	leaveRealTimeFirst bool
	schedParam         [1]int32 // struct sched_param: priority 0

	// inPlace: the image is written into image before the command comes,
	// which is then one byte (into scratch) with the stdio descriptors.
	inPlace bool
	scratch [1]byte

	// stack is the program's process's while it shares the init's memory
	// (rawInit.forkProgram); programMain's calls take well under a page of it.
	stack []byte
}

// setUp takes the command's buffer and a stack from spawnBuffers and
// points the message headers into them.
func (p *programPlan) setUp() error {
	p.zero[0] = '0'
	p.readyByte[0] = 'R'
	image, err := spawnBuffers.image()
	if err != nil {
		return fmt.Errorf("map the command's buffer: %w", err)
	}
	p.image = image
	p.stack = spawnBuffers.stack()
	p.recvIov.Base = &p.image[0]
	p.recvIov.SetLen(len(p.image))
	p.recvCmsg = make([]byte, unix.CmsgSpace((MaxExtraFD+1)*4))
	p.stdioOff = unix.CmsgLen(0)
	p.recvMsg.Iov = &p.recvIov
	p.recvMsg.Iovlen = 1
	p.recvMsg.Control = &p.recvCmsg[0]
	p.recvMsg.SetControllen(len(p.recvCmsg))
	p.wsPath, _ = unix.BytePtrFromString(WorkspaceDir)

	p.iovByte[0] = 'R'
	p.iov.Base = &p.iovByte[0]
	p.iov.SetLen(1)
	p.cmsg = unix.UnixRights(0)
	p.cmsgFDOf = unix.CmsgLen(0)
	p.msg.Iov = &p.iov
	p.msg.Iovlen = 1
	p.msg.Control = &p.cmsg[0]
	p.msg.SetControllen(len(p.cmsg))
	p.capHeader.Version = unix.LINUX_CAPABILITY_VERSION_3
	return nil
}

// release gives the command's buffer and the stack back for another
// sandbox, once no process of this one is left to use them.
func (p *programPlan) release() {
	if p.image != nil {
		spawnBuffers.putImage(p.image)
		p.image = nil
	}
	if p.stack != nil {
		spawnBuffers.putStack(p.stack)
		p.stack = nil
	}
}

// spawnBuffers keeps the memory of ended sandboxes' plans for the next
// ones: the stacks their clones run on and the buffers commands' images
// come into. A fresh stack is 64 KiB for the helper to clear and then to
// collect, at hundreds of sandboxes a second; a buffer's unmap flushed
// the TLB of every CPU an init was running on. What a kept buffer still
// holds of an earlier command (an argv, an environment) is never read:
// each command's image comes with its length, and no program can see
// this memory (it is the helper's, and a program's process leaves it at
// its exec).
var spawnBuffers buffers

type buffers struct {
	mu             sync.Mutex
	stacks, images [][]byte
}

// keptBuffers bounds the buffers of each kind kept.
const keptBuffers = 16

const stackSize = 64 << 10

func (b *buffers) stack() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if n := len(b.stacks); n > 0 {
		s := b.stacks[n-1]
		b.stacks = b.stacks[:n-1]
		return s
	}
	return make([]byte, stackSize)
}

func (b *buffers) putStack(s []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(s) == stackSize && len(b.stacks) < keptBuffers {
		b.stacks = append(b.stacks, s)
	}
}

// image is a command's buffer: mapped, not allocated, so that its pages
// come only as commands fill them (the kernel takes up to imageCap).
func (b *buffers) image() ([]byte, error) {
	b.mu.Lock()
	if n := len(b.images); n > 0 {
		img := b.images[n-1]
		b.images = b.images[:n-1]
		b.mu.Unlock()
		return img, nil
	}
	b.mu.Unlock()
	return unix.Mmap(-1, 0, imageCap, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
}

func (b *buffers) putImage(img []byte) {
	b.mu.Lock()
	if len(b.images) < keptBuffers {
		b.images = append(b.images, img)
		b.mu.Unlock()
		return
	}
	b.mu.Unlock()
	unix.Munmap(img)
}

// layImage lays out a command for an image buffer at base, of capacity
// bytes, in the memory of the process that will exec it; fds is
// imageHeader.fds; extra strings go after the command's, and their
// addresses come back.
func layImage(base uintptr, capacity int, argv0 string, argv, env []string, rlimits []Rlimit, cpus []int, fds uint64, extra []string) ([]byte, []uintptr, error) {
	if len(rlimits) > maxRlimits {
		return nil, nil, fmt.Errorf("rlimits: %d, at most %d", len(rlimits), maxRlimits)
	}
	for _, c := range cpus {
		if c < 0 || c >= MaxCPU {
			return nil, nil, fmt.Errorf("cpus: %d is not within 0..%d", c, MaxCPU-1)
		}
	}
	hdr := int(unsafe.Sizeof(imageHeader{}))
	argvOff := hdr
	envOff := argvOff + (len(argv)+1)*8
	strOff := envOff + (len(env)+1)*8
	size := strOff + len(argv0) + 1
	for _, ss := range [][]string{argv, env, extra} {
		for _, s := range ss {
			size += len(s) + 1
		}
	}
	if size > capacity {
		return nil, nil, unix.E2BIG
	}
	img := make([]byte, size)
	put := func(off int, v uintptr) { *(*uintptr)(unsafe.Pointer(&img[off])) = v }
	next := strOff
	str := func(s string) uintptr {
		at := next
		copy(img[at:], s)
		next += len(s) + 1 // the NUL is already there
		return base + uintptr(at)
	}
	h := (*imageHeader)(unsafe.Pointer(&img[0]))
	h.size = uint64(size)
	h.argv0 = str(argv0)
	for i, s := range argv {
		put(argvOff+i*8, str(s))
	}
	for i, s := range env {
		put(envOff+i*8, str(s))
	}
	h.argv = base + uintptr(argvOff)
	h.envv = base + uintptr(envOff)
	h.fds = fds
	h.nrlimit = uint64(len(rlimits))
	for i, r := range rlimits {
		h.rlimits[i].resource = uint64(r.Resource)
		h.rlimits[i].limit = unix.Rlimit{Cur: r.Value, Max: r.Value}
	}
	for _, c := range cpus {
		h.cpuMask[c/64] |= 1 << (c % 64)
	}
	addrs := make([]uintptr, len(extra))
	for i, s := range extra {
		addrs[i] = str(s)
	}
	return img, addrs, nil
}

// programMain is the program's process from its fork to its exec. It runs
// on p.stack in the init's own memory (or on a copy of the forking thread,
// see startClone), with every signal blocked and the Go runtime in an undefined
// state: it may call nothing but the raw, nosplit system call entry
// points, may not allocate, and may write only to p's buffers. It never
// returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func programMain(p *programPlan) {
	// Join the program's cgroups first, so that everything it does
	// from here on (including the exec) is accounted to it. This is done
	// ahead of the command: a cgroup migration can wait on the kernel's
	// cgroup locks for milliseconds while other sandboxes are made or torn
	// down.
	var failed step
	var r1 uintptr
	var errno syscall.Errno
	var got, n, want uintptr
	var hdr *imageHeader
	var k int
	errFD, sock := uintptr(p.errFD), uintptr(p.sock)
	if p.leaveRealTimeFirst {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_NORMAL, uintptr(unsafe.Pointer(&p.schedParam[0]))); errno != 0 {
			failed = stepSchedPolicy
			goto fail
		}
	}
	for i := 0; i < len(p.joinFDs); i++ {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p.joinFDs[i]), uintptr(unsafe.Pointer(&p.zero[0])), 1)
		if errno != 0 {
			failed = stepJoinCgroup
			goto fail
		}
	}
	// Descriptors 0 to MaxExtraFD are the program's at its exec. This
	// process's own (its error pipe, its socket) move above them, and 3 to
	// MaxExtraFD hold close-on-exec copies of /dev/null (fd 0) meanwhile:
	// whatever the command brings then lands above MaxExtraFD, and no dup3
	// onto 0 to MaxExtraFD closes a descriptor still needed.
	if errFD, errno = moveAbove(errFD, MaxExtraFD); errno != 0 {
		failed = stepLayOutProgramFDs
		goto fail
	}
	if sock, errno = moveAbove(sock, MaxExtraFD); errno != 0 {
		failed = stepLayOutProgramFDs
		goto fail
	}
	for fd := uintptr(3); fd <= MaxExtraFD; fd++ {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, 0, fd, unix.O_CLOEXEC); errno != 0 {
			failed = stepLayOutProgramFDs
			goto fail
		}
	}
	// A cgroup namespace rooted at the program's own groups.
	if _, _, errno = syscall.RawSyscall(syscall.SYS_UNSHARE, unix.CLONE_NEWCGROUP, 0, 0); errno != 0 {
		failed = stepUnshareCgroup
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); errno != 0 {
		failed = stepSetsid
		goto fail
	}
	// Default dispositions for every signal and an empty mask: what the init
	// inherited or ignored is not the program's business. The init set
	// every disposition to the default (initChildMain), and this process
	// was cloned with CLONE_CLEAR_SIGHAND besides: only the mask (the
	// init's SIGCHLD, blocked for its signalfd) is left to clear.
	if errno = resetSignalsIn(&p.sigDfl, &p.sigEmpty, 0); errno != 0 {
		failed = stepSignals
		goto fail
	}
	// What does not depend on the command is done now, off its path:
	// every capability the program could keep goes, and the seccomp
	// filter goes on, so that from here on every call of this process is
	// filtered (the policy must allow the few calls made below).
	//
	// The bounding set must go while we still hold CAP_SETPCAP (as root of
	// the namespace). The change to the sandbox user clears the other sets
	// but the inheritable one; capset clears that.
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); errno != 0 {
		failed = stepAmbient
		goto fail
	}
	for c := 0; c <= p.lastCap; c++ {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0, 0); errno != 0 {
			failed = stepBounding
			goto fail
		}
	}
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); errno != 0 {
		failed = stepNoNewPrivs
		goto fail
	}
	if p.otherSched {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_NORMAL, uintptr(unsafe.Pointer(&p.schedParam[0]))); errno != 0 {
			failed = stepSchedPolicy
			goto fail
		}
	}
	// Ready is one byte on sock; with a filter, it carries the listener,
	// through which every forbidden call reaches the init.
	if p.filter.Len > 0 {
		r1, _, errno = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&p.filter)))
		if errno != 0 {
			failed = stepSeccomp
			goto fail
		}
		*(*int32)(unsafe.Pointer(&p.cmsg[p.cmsgFDOf])) = int32(r1)
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SENDMSG, sock, uintptr(unsafe.Pointer(&p.msg)), unix.MSG_NOSIGNAL); errno != 0 {
			failed = stepSendListener
			goto fail
		}
		syscall.RawSyscall(syscall.SYS_CLOSE, r1, 0, 0)
	} else if _, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, sock, uintptr(unsafe.Pointer(&p.readyByte[0])), 1); errno != 0 {
		failed = stepReady
		goto fail
	}

	// Wait for the command: its stdio come with the first bytes, the rest
	// of the image follows.
	for {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_RECVMSG, sock, uintptr(unsafe.Pointer(&p.recvMsg)), unix.MSG_CMSG_CLOEXEC)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno != 0 || r1 == 0 {
		if errno == 0 {
			errno = syscall.EPROTO // the init went away
		}
		failed = stepReceive
		goto fail
	}
	got = r1
	for !p.inPlace && (got < uintptr(unsafe.Sizeof(imageHeader{})) || got < uintptr((*imageHeader)(unsafe.Pointer(&p.image[0])).size)) {
		n, _, errno = syscall.RawSyscall(syscall.SYS_READ, sock, uintptr(unsafe.Pointer(&p.image[0]))+got, uintptr(len(p.image))-got)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || n == 0 {
			if errno == 0 {
				errno = syscall.EPROTO
			}
			failed = stepReceive
			goto fail
		}
		got += n
	}
	hdr = (*imageHeader)(unsafe.Pointer(&p.image[0]))
	want = 3
	for fd := 3; fd <= MaxExtraFD; fd++ {
		if hdr.fds&(1<<fd) != 0 {
			want++
		}
	}
	if hdr.fds&^extraFDBits != 0 || p.recvMsg.Controllen < uint64(unix.CmsgLen(int(want)*4)) {
		errno = syscall.EPROTO // descriptors missing
		failed = stepReceive
		goto fail
	}
	// They came above MaxExtraFD (see above): each dup3 replaces
	// /dev/null or nothing, and leaves the new descriptor open at exec.
	for fd := 0; fd <= MaxExtraFD; fd++ {
		if fd > 2 && hdr.fds&(1<<fd) == 0 {
			continue
		}
		from := *(*int32)(unsafe.Pointer(&p.recvCmsg[p.stdioOff+4*k]))
		k++
		if _, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(from), uintptr(fd), 0); errno != 0 {
			failed = stepStdio
			goto fail
		}
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(p.wsPath)), 0, 0); errno != 0 {
		failed = stepChdirWorkspace
		goto fail
	}
	for i := uint64(0); i < hdr.nrlimit && i < maxRlimits; i++ {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, uintptr(hdr.rlimits[i].resource), uintptr(unsafe.Pointer(&hdr.rlimits[i].limit)), 0, 0, 0); errno != 0 {
			failed = stepRlimit
			goto fail
		}
	}
	for k = 0; k < cpuMaskWords; k++ {
		if hdr.cpuMask[k] != 0 {
			break
		}
	}
	if k < cpuMaskWords {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(hdr.cpuMask), uintptr(unsafe.Pointer(&hdr.cpuMask[0]))); errno != 0 {
			failed = stepCPUAffinity
			goto fail
		}
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESGID, SandboxGID, SandboxGID, SandboxGID); errno != 0 {
		failed = stepSetgid
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESUID, SandboxUID, SandboxUID, SandboxUID); errno != 0 {
		failed = stepSetuid
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&p.capHeader)), uintptr(unsafe.Pointer(&p.capData[0])), 0); errno != 0 {
		failed = stepCapset
		goto fail
	}
	// Every descriptor above MaxExtraFD closes on exec; below, those the
	// command did not give are close-on-exec copies of /dev/null.
	if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, MaxExtraFD+1, ^uintptr(0)>>32, unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
		failed = stepCloseRange
		goto fail
	}
	_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, hdr.argv0, hdr.argv, hdr.envv)
	failed = stepExec

fail:
	exitReporting(errFD, &p.errBuf, failed, errno)
}

// moveAbove moves the descriptor fd above floor (close-on-exec), unless
// it is there already, in a child between its fork and its exec; on
// failure fd stays where it was.
//
//go:nosplit
func moveAbove(fd, floor uintptr) (uintptr, syscall.Errno) {
	if fd > floor {
		return fd, 0
	}
	r1, _, errno := syscall.RawSyscall(syscall.SYS_FCNTL, fd, unix.F_DUPFD_CLOEXEC, floor+1)
	if errno != 0 {
		return fd, errno
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	return r1, 0
}

// resetSignals gives every signal but SIGKILL and SIGSTOP the default
// disposition dfl, then sets the signal mask to mask, in a child between
// its fork and its exec.
//
//go:nosplit
func resetSignals(dfl *kernelSigaction, mask *uint64) syscall.Errno {
	return resetSignalsIn(dfl, mask, allSignals)
}

// allSignals has a bit (1<<(sig-1)) for every signal whose disposition
// can be set: all but SIGKILL and SIGSTOP.
const allSignals = ^uint64(0) &^ (1<<(syscall.SIGKILL-1) | 1<<(syscall.SIGSTOP-1))

// resetSignalsIn is resetSignals for the signals in set only (bits as in
// allSignals); the mask is set all the same.
//
//go:nosplit
func resetSignalsIn(dfl *kernelSigaction, mask *uint64, set uint64) syscall.Errno {
	for sig := uintptr(1); sig <= 64; sig++ {
		if set&(1<<(sig-1)) == 0 {
			continue
		}
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(dfl)), 0, 8, 0, 0); errno != 0 {
			return errno
		}
	}
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(mask)), 0, 8, 0, 0)
	return errno
}

// ignoredSignals are the signals this process ignores (SIG_IGN): what a
// clone with CLONE_CLEAR_SIGHAND still ignores, the kernel resetting only
// handlers. A Go program ignores only what it was started ignoring
// (SIGHUP and SIGINT at most), so this is read once.
var ignoredSignals = sync.OnceValue(func() uint64 {
	var set uint64
	for sig := uintptr(1); sig <= 64; sig++ {
		if allSignals&(1<<(sig-1)) == 0 {
			continue
		}
		var old kernelSigaction
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, 0, uintptr(unsafe.Pointer(&old)), 8, 0, 0); errno != 0 || old.handler == sigIgn {
			set |= 1 << (sig - 1) // unknown counts as ignored: reset it
		}
	}
	return set
})

// sigIgn is SIG_IGN as the kernel's sigaction holds it.
const sigIgn = 1

// exitReporting ends a child that failed before its exec: the step and
// the errno go to fd (through buf, the child may not allocate) for
// readStepReport, and the child exits.
//
//go:nosplit
func exitReporting(fd uintptr, buf *[8]byte, s step, errno syscall.Errno) {
	buf[0], buf[1], buf[2], buf[3] = byte(s), byte(s>>8), byte(s>>16), byte(s>>24)
	buf[4], buf[5], buf[6], buf[7] = byte(errno), byte(errno>>8), byte(errno>>16), byte(errno>>24)
	syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// readStepReport decodes what exitReporting wrote. The raw init calls it
// too, hence nosplit.
//
//go:nosplit
func readStepReport(b *[8]byte) (step, syscall.Errno) {
	s := step(uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24)
	errno := syscall.Errno(uint32(b[4]) | uint32(b[5])<<8 | uint32(b[6])<<16 | uint32(b[7])<<24)
	return s, errno
}
