package nsjail

import (
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// atFDCWD is AT_FDCWD (-100) as a raw system call argument.
const atFDCWD = ^uintptr(99)

// maxCandidates bounds the paths a command's program is looked up at.
const maxCandidates = MaxPathDirs

// rawCommand starts what Run writes on fdCommand for an init: then come
// imageN bytes of the program's image (laid out for the init's buffer,
// with the candidates' strings after the command's), tmpfsN bytes of a
// fresh workspace's options, and the program's name and the error to
// report, as JSON string contents, should no candidate be an executable
// file.
type rawCommand struct {
	magic          uint32
	flags          uint32 // rawWorkdir: the workdir mount comes as the last descriptor; rawPremounted: the workspace is in place
	ncand          uint32 // cand[:ncand] are where the program may be, in order
	imageN         uint32
	tmpfsN         uint32
	nfNameN        uint32
	nfErrorN       uint32
	startedAfterUs uint32 // Command.StartedAfter, in µs; 0: Started at once
	cand           [maxCandidates]uint64
}

const (
	rawMagic      = 0x73626478
	rawWorkdir    = 1
	rawPremounted = 2
)

// rawInit is everything the init needs when it runs without exec: as for
// programMain, laid out ahead, and written only as plain data. The init
// shares the helper's memory, whose garbage collector may be marking: a
// pointer stored from the init would run a write barrier on the helper's
// behalf, so the init never stores one.
type rawInit struct {
	root    *rootPlan
	program *programPlan
	cargs   cloneArgs

	pair    [2]int32 // command socket: ours, the program's process's
	errPipe [2]int32
	zpid    uintptr
	listen  uintptr // 0: none
	sigfd   uintptr
	chld    uint64 // SIGCHLD's bit

	rByte [1]byte
	rIov  unix.Iovec
	rMsg  unix.Msghdr
	rCmsg [64]byte // the command's descriptors: 0 to MaxExtraFD and the workdir
	nfd   int      // of them, the program's: stdin, stdout, stderr and its extra ones

	cmd       rawCommand
	tmpfsData [256]byte
	preData   [256]byte // Spec.ReadyWorkspaceBytes's tmpfs options, when premount
	premount  bool
	wsPath    [16]byte
	tmpPath   [8]byte
	shmPath   [16]byte
	sfs       unix.Statfs_t
	tmpfsName [8]byte
	empty     [1]byte
	st        unix.Stat_t

	sByte [1]byte
	sIov  unix.Iovec
	sMsg  unix.Msghdr
	sCmsg [64]byte // the program's descriptors, forwarded

	nfName  [512]byte // JSON string contents: the program's name, for a program not found
	nfError [512]byte // and why
	chosen  uint32    // index of the candidate found
	comm    [16]byte  // the init's process name

	out       [1024]byte
	digits    [20]byte
	outN      int
	errBuf    [8]byte
	fds       [2]unix.PollFd
	sigbuf    [512]byte
	status    uint32
	ru        unix.Rusage
	t0, t1    unix.Timespec
	notif     seccompNotif
	cbuf      [1]byte
	started   int64
	unstarted bool          // Started is held back (rawCommand.startedAfterUs)
	timeout   unix.Timespec // ppoll's, while it is
	info      [128]byte     // a siginfo_t from waitid
	fsize     rlimit64      // pid 2's file-size limit when SIGXFSZ ended it
	fsizeRead bool
}

// initName is each init's process name; the helper's is helperArg0.
const initName = "sandboxd-init"

// rlimit64 is the kernel's struct rlimit64.
type rlimit64 struct{ cur, max uint64 }

// Offsets in a siginfo_t of SIGCHLD (x86_64 and the other 64-bit ABIs).
const (
	siCode   = 8
	siPID    = 16
	siStatus = 24

	cldKilled = 2 // CLD_KILLED
	cldDumped = 3 // CLD_DUMPED
)

// newRawInit lays out an init for spec; program is the descriptor of the
// cgroup2 directory to clone the program's process into, or -1. The root:
// inTemplate, the init is cloned in a template namespace and has it
// already; else tree is the descriptor the init gets its copy of a root
// template on, or -1 for a root built in full.
func newRawInit(spec *Spec, joinFiles, program, tree int, inTemplate bool) (*rawInit, error) {
	var root *rootPlan
	var err error
	if inTemplate {
		root = planNamespaceRoot(spec)
	} else if tree >= 0 {
		root, err = planTemplateRoot(spec, tree)
	} else {
		root, err = planRoot(spec)
	}
	if err != nil {
		return nil, err
	}
	q := &rawInit{root: root}
	p := &programPlan{lastCap: lastCap(), otherSched: programLeavesPolicy(), leaveRealTimeFirst: programLeavesRealTime()}
	for i := 0; i < joinFiles; i++ {
		p.joinFDs = append(p.joinFDs, fdJoin+i)
	}
	if err := p.setUp(); err != nil {
		return nil, err
	}
	p.inPlace = true
	p.recvIov.Base = &p.scratch[0]
	p.recvIov.SetLen(1)
	if len(spec.Seccomp) > 0 {
		p.filter.Len = uint16(len(spec.Seccomp))
		p.filter.Filter = &spec.Seccomp[0]
	}
	q.program = p
	q.cargs = cloneArgs{exitSignal: uint64(syscall.SIGCHLD), flags: unix.CLONE_VM | unix.CLONE_CLEAR_SIGHAND}
	if program >= 0 {
		q.cargs.flags |= unix.CLONE_INTO_CGROUP
		q.cargs.cgroup = uint64(program)
	}
	q.cargs.stack = uint64(uintptr(unsafe.Pointer(&p.stack[0])))
	q.cargs.stackSize = uint64(stackTop(p.stack) - uintptr(unsafe.Pointer(&p.stack[0])))
	q.chld = 1 << (uint(syscall.SIGCHLD) - 1)
	copy(q.wsPath[:], WorkspaceDir)
	copy(q.tmpPath[:], "/tmp")
	copy(q.shmPath[:], "/dev/shm")
	copy(q.tmpfsName[:], "tmpfs")
	if spec.ReadyWorkspaceBytes > 0 {
		opts := workspaceOptions(spec.ReadyWorkspaceBytes)
		if len(opts) >= len(q.preData) {
			return nil, fmt.Errorf("workspace options: %d bytes, at most %d", len(opts), len(q.preData)-1)
		}
		copy(q.preData[:], opts)
		q.premount = true
	}

	q.rIov.Base = &q.rByte[0]
	q.rIov.SetLen(1)
	q.rMsg.Iov = &q.rIov
	q.rMsg.Iovlen = 1
	q.rMsg.Control = &q.rCmsg[0]
	q.sByte[0] = 'C'
	q.sIov.Base = &q.sByte[0]
	q.sIov.SetLen(1)
	q.sMsg.Iov = &q.sIov
	q.sMsg.Iovlen = 1
	q.sMsg.Control = &q.sCmsg[0]
	h := (*unix.Cmsghdr)(unsafe.Pointer(&q.sCmsg[0]))
	h.Level = unix.SOL_SOCKET
	h.Type = unix.SCM_RIGHTS
	copy(q.comm[:], initName)
	return q, nil
}

// Message writing, without allocation.

// putByte appends c to the message in q.out; what does not fit is lost.
//
//go:nosplit
func (q *rawInit) putByte(c byte) {
	if q.outN >= 0 && q.outN < len(q.out)-2 {
		*(*byte)(unsafe.Add(unsafe.Pointer(&q.out), q.outN)) = c
		q.outN++
	}
}

//go:nosplit
func (q *rawInit) put(s string) {
	for i := 0; i < len(s); i++ {
		q.putByte(s[i])
	}
}

//go:nosplit
func (q *rawInit) putInt(v int64) {
	if v < 0 {
		q.putByte('-')
		v = -v
	}
	n := 0
	for n < len(q.digits) {
		*(*byte)(unsafe.Add(unsafe.Pointer(&q.digits), n)) = byte('0' + v%10)
		n++
		v /= 10
		if v == 0 {
			break
		}
	}
	for n > 0 {
		n--
		q.putByte(*(*byte)(unsafe.Add(unsafe.Pointer(&q.digits), n)))
	}
}

// putVerbatim appends the C string at p, at most 512 bytes of it.
//
//go:nosplit
func (q *rawInit) putVerbatim(p *byte) {
	for i := uintptr(0); i < 512; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		q.putByte(c)
	}
}

// putCString appends the C string at p, with what JSON would need
// escaped replaced.
//
//go:nosplit
func (q *rawInit) putCString(p *byte) {
	for i := uintptr(0); i < 4096; i++ {
		c := *(*byte)(unsafe.Add(unsafe.Pointer(p), i))
		if c == 0 {
			break
		}
		q.putSafeByte(c)
	}
}

// putSafe appends s, with what JSON would need escaped replaced.
//
//go:nosplit
func (q *rawInit) putSafe(s string) {
	for i := 0; i < len(s); i++ {
		q.putSafeByte(s[i])
	}
}

//go:nosplit
func (q *rawInit) putSafeByte(c byte) {
	if c == '"' || c == '\\' || c < 0x20 {
		c = '?'
	}
	q.putByte(c)
}

// send writes the message built in q.out on the report pipe.
//
//go:nosplit
func (q *rawInit) send() {
	if q.outN < 0 || q.outN > len(q.out)-2 {
		q.outN = 0
	}
	*(*byte)(unsafe.Add(unsafe.Pointer(&q.out), q.outN)) = '}'
	*(*byte)(unsafe.Add(unsafe.Pointer(&q.out), q.outN+1)) = '\n'
	q.outN += 2
	base := uintptr(unsafe.Pointer(&q.out))
	for done := uintptr(0); done < uintptr(q.outN); {
		r1, _, errno := syscall.RawSyscall6(syscall.SYS_WRITE, fdReport, base+done, uintptr(q.outN)-done, 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			break
		}
		done += r1
	}
	q.outN = 0
}

// failed reports that step s failed with errno, and exits.
//
//go:nosplit
func (q *rawInit) failed(s step, errno syscall.Errno) {
	q.failedAt(s, "", errno)
}

// failedAt reports that step s failed with errno on the path arg, and
// exits.
//
//go:nosplit
func (q *rawInit) failedAt(s step, arg string, errno syscall.Errno) {
	q.put(`{"kind":"failed","step":`)
	q.putInt(int64(s))
	if len(arg) > 0 {
		q.put(`,"arg":"`)
		q.putSafe(arg)
		q.put(`"`)
	}
	q.put(`,"errno":`)
	q.putInt(int64(errno))
	q.send()
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 1, 0, 0)
	}
}

//go:nosplit
func now(ts *unix.Timespec) int64 {
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, unix.CLOCK_MONOTONIC, uintptr(unsafe.Pointer(ts)), 0)
	return ts.Sec*1e9 + ts.Nsec
}

// rawInitMain is the init when it does not exec: it builds the root from
// its plan, forks the program's process, and watches it, with raw
// system calls only, on the memory its parent laid out. It never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func rawInitMain(q *rawInit) {
	q.setUp()
	q.forkProgram()
	q.receiveCommand()
	q.startProgram()
	q.watchProgram()
}

//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) setUp() {
	var errno syscall.Errno
	// The init kills with kill(-1), which is every process of its pid
	// namespace only if it is that namespace's pid 1.
	if pid, _, _ := syscall.RawSyscall(syscall.SYS_GETPID, 0, 0, 0); pid != 1 {
		q.failed(stepNotPID1, syscall.EPERM)
	}
	// Named apart from the helper it is a clone of (its command line, in
	// the shared memory, stays the helper's).
	syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(&q.comm[0])), 0, 0, 0, 0)
	syscall.RawSyscall(syscall.SYS_UMASK, 0o022, 0, 0)
	// SIGCHLD comes through a signalfd.
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, uintptr(unsafe.Pointer(&q.chld)), 0, 8, 0, 0); errno != 0 {
		q.failed(stepBlockSIGCHLD, errno)
	}
	if q.sigfd, _, errno = syscall.RawSyscall6(unix.SYS_SIGNALFD4, ^uintptr(0), uintptr(unsafe.Pointer(&q.chld)), 8, unix.SFD_CLOEXEC, 0, 0); errno != 0 {
		q.failed(stepSignalfd, errno)
	}
	if i, errno := runRoot(q.root); i >= 0 && i < len(q.root.ops) {
		q.failedAt(q.root.ops[i].step, q.root.ops[i].arg, errno)
	}
	// The workspace most commands will have, mounted now rather than on
	// the command's path.
	if q.premount {
		if _, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(&q.tmpfsName[0])), uintptr(unsafe.Pointer(&q.wsPath[0])), uintptr(unsafe.Pointer(&q.tmpfsName[0])), unix.MS_NOSUID|unix.MS_NODEV, uintptr(unsafe.Pointer(&q.preData[0])), 0); errno != 0 {
			q.failedAt(stepMountTmpfs, WorkspaceDir, errno)
		}
	}
}

// forkProgram forks the program's process, which joins its cgroups and
// waits, and reports Ready once it does.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) forkProgram() {
	var errno syscall.Errno
	p := q.program
	if _, _, errno = syscall.RawSyscall(syscall.SYS_PIPE2, uintptr(unsafe.Pointer(&q.errPipe[0])), unix.O_CLOEXEC, 0); errno != 0 {
		q.failed(stepPipe, errno)
	}
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_SOCKETPAIR, unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0, uintptr(unsafe.Pointer(&q.pair[0])), 0, 0); errno != 0 {
		q.failed(stepSocketpair, errno)
	}
	p.sock = int(q.pair[1])
	p.errFD = int(q.errPipe[1])
	r1, r2 := rawClone3(&q.cargs, unsafe.Sizeof(q.cargs), cloneProgram, unsafe.Pointer(p))
	if errno = syscall.Errno(r2); errno != 0 {
		q.failed(stepFork, errno)
	}
	q.zpid = r1
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(q.pair[1]), 0, 0)
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(q.errPipe[1]), 0, 0)
	// Ready: one byte, with the listener when there is a filter.
	q.rMsg.SetControllen(len(q.rCmsg))
	for {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(q.pair[0]), uintptr(unsafe.Pointer(&q.rMsg)), unix.MSG_CMSG_CLOEXEC)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno != 0 || r1 != 1 || q.rByte[0] != 'R' {
		q.programFailed(0)
	}
	if q.rMsg.Controllen >= uint64(unix.CmsgLen(4)) {
		q.listen = uintptr(*(*int32)(unsafe.Pointer(&q.rCmsg[unix.CmsgLen(0)])))
	}
	if q.program.otherSched {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, unix.SCHED_NORMAL, uintptr(unsafe.Pointer(&p.schedParam[0]))); errno != 0 {
			q.failed(stepSchedPolicy, errno)
		}
	}
	q.put(`{"kind":"ready"`)
	q.send()
}

// receiveCommand waits for the command, attaches the workspace and finds
// the program.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) receiveCommand() {
	var r1 uintptr
	var errno syscall.Errno
	for got := uintptr(0); got < unsafe.Sizeof(q.cmd); {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, fdCommand, uintptr(unsafe.Pointer(&q.cmd))+got, unsafe.Sizeof(q.cmd)-got)
		if errno == syscall.EINTR {
			continue
		}
		if errno == 0 && r1 == 0 && got == 0 {
			// Dropped unused.
			for {
				syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
			}
		}
		if errno != 0 || r1 == 0 {
			if errno == 0 {
				errno = syscall.EPIPE
			}
			q.failed(stepReadCommand, errno)
		}
		got += r1
	}
	if q.cmd.magic != rawMagic || q.cmd.ncand == 0 || q.cmd.ncand > maxCandidates ||
		uintptr(q.cmd.imageN) < unsafe.Sizeof(imageHeader{}) || uintptr(q.cmd.imageN) > uintptr(len(q.program.image)) || q.cmd.tmpfsN >= uint32(len(q.tmpfsData)) ||
		q.cmd.nfNameN >= uint32(len(q.nfName)) || q.cmd.nfErrorN >= uint32(len(q.nfError)) {
		q.failed(stepReadCommand, syscall.EPROTO)
	}
	q.readFull(uintptr(unsafe.Pointer(&q.program.image[0])), uintptr(q.cmd.imageN))
	q.readFull(uintptr(unsafe.Pointer(&q.tmpfsData[0])), uintptr(q.cmd.tmpfsN))
	q.tmpfsData[q.cmd.tmpfsN] = 0
	q.readFull(uintptr(unsafe.Pointer(&q.nfName[0])), uintptr(q.cmd.nfNameN))
	q.nfName[q.cmd.nfNameN] = 0
	q.readFull(uintptr(unsafe.Pointer(&q.nfError[0])), uintptr(q.cmd.nfErrorN))
	q.nfError[q.cmd.nfErrorN] = 0
	if q.cmd.flags&rawPremounted != 0 && (!q.premount || q.cmd.flags&rawWorkdir != 0) {
		q.failed(stepReadCommand, syscall.EPROTO)
	}
	q.rMsg.SetControllen(len(q.rCmsg))
	for {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_RECVMSG, fdControl, uintptr(unsafe.Pointer(&q.rMsg)), unix.MSG_CMSG_CLOEXEC)
		if errno != syscall.EINTR {
			break
		}
	}
	// Stdin, stdout, stderr, those of 3 to MaxExtraFD the image names,
	// then the workdir's mount, if any.
	fds := (*imageHeader)(unsafe.Pointer(&q.program.image[0])).fds
	q.nfd = 3
	for fd := 3; fd <= MaxExtraFD; fd++ {
		if fds&(1<<fd) != 0 {
			q.nfd++
		}
	}
	nfd := q.nfd
	if q.cmd.flags&rawWorkdir != 0 {
		nfd++
	}
	if errno != 0 || fds&^extraFDBits != 0 || q.rMsg.Controllen < uint64(unix.CmsgLen(4*nfd)) || (*unix.Cmsghdr)(unsafe.Pointer(&q.rCmsg[0])).Len != uint64(unix.CmsgLen(4*nfd)) {
		if errno == 0 {
			errno = syscall.EPROTO
		}
		q.failed(stepReceiveDescriptors, errno)
	}
	if nfd > q.nfd {
		wd := uintptr(*(*int32)(unsafe.Pointer(&q.rCmsg[unix.CmsgLen(4*q.nfd)])))
		if _, _, errno = syscall.RawSyscall6(unix.SYS_MOVE_MOUNT, wd, uintptr(unsafe.Pointer(&q.empty[0])), atFDCWD, uintptr(unsafe.Pointer(&q.wsPath[0])), unix.MOVE_MOUNT_F_EMPTY_PATH, 0); errno != 0 {
			q.failed(stepAttachWorkdir, errno)
		}
		syscall.RawSyscall(syscall.SYS_CLOSE, wd, 0, 0)
	} else if q.cmd.flags&rawPremounted != 0 {
		// The workspace mounted before Ready (setUp) is the command's.
	} else if _, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(&q.tmpfsName[0])), uintptr(unsafe.Pointer(&q.wsPath[0])), uintptr(unsafe.Pointer(&q.tmpfsName[0])), unix.MS_NOSUID|unix.MS_NODEV, uintptr(unsafe.Pointer(&q.tmpfsData[0])), 0); errno != 0 {
		q.failedAt(stepMountTmpfs, WorkspaceDir, errno)
	}
	// Relative paths, the program's included, start there.
	if _, _, errno = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(&q.wsPath[0])), 0, 0); errno != 0 {
		q.failed(stepChdirWorkspace, errno)
	}
	q.findProgram()
}

// findProgram points the image's argv0 at the first candidate that is an
// executable file, or reports the failure and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) findProgram() {
	hdr := (*imageHeader)(unsafe.Pointer(&q.program.image[0]))
	hdr.argv0 = 0
	errno := syscall.ENOENT
	for c := uint32(0); c < q.cmd.ncand && c < maxCandidates; c++ {
		path := uintptr(q.cmd.cand[c])
		if _, _, e := syscall.RawSyscall6(sysFstatat, atFDCWD, path, uintptr(unsafe.Pointer(&q.st)), 0, 0, 0); e != 0 || q.st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if _, _, e := syscall.RawSyscall6(syscall.SYS_FACCESSAT, atFDCWD, path, unix.X_OK, 0, 0, 0); e != 0 {
			if errno == syscall.ENOENT {
				errno = e
			}
			continue
		}
		hdr.argv0 = path
		q.chosen = c
		return
	}
	q.put(`{"kind":"failed","exec_step":true,"step":`)
	q.putInt(int64(stepExec))
	q.put(`,"arg":"`)
	q.putVerbatim(&q.nfName[0])
	if errno == syscall.ENOENT && q.cmd.ncand > 1 {
		q.put(`","error":"`)
		q.putVerbatim(&q.nfError[0])
		q.put(`"`)
	} else {
		q.put(`","errno":`)
		q.putInt(int64(errno))
	}
	q.send()
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 1, 0, 0)
	}
}

// startProgram hands the program's process its descriptors, and reports
// Started once it exec'ed.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) startProgram() {
	var r1 uintptr
	var errno syscall.Errno
	base := unix.CmsgLen(0)
	for k := 0; k < q.nfd && k <= MaxExtraFD; k++ {
		*(*int32)(unsafe.Pointer(&q.sCmsg[base+4*k])) = *(*int32)(unsafe.Pointer(&q.rCmsg[base+4*k]))
	}
	q.sMsg.SetControllen(unix.CmsgSpace(4 * q.nfd))
	(*unix.Cmsghdr)(unsafe.Pointer(&q.sCmsg[0])).SetLen(unix.CmsgLen(4 * q.nfd))
	// The wall clock starts before the program's process is let go: a
	// reported wall time is never shorter than the run, however late this
	// init runs again.
	q.started = now(&q.t0)
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SENDMSG, uintptr(q.pair[0]), uintptr(unsafe.Pointer(&q.sMsg)), unix.MSG_NOSIGNAL); errno != 0 {
		q.failed(stepSendToProgram, errno)
	}
	for k := 0; k < q.nfd && k <= MaxExtraFD; k++ {
		syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(*(*int32)(unsafe.Pointer(&q.rCmsg[base+4*k]))), 0, 0)
	}
	// EOF on the error pipe: the exec happened.
	for {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, uintptr(q.errPipe[0]), uintptr(unsafe.Pointer(&q.errBuf[0])), 8)
		if errno != syscall.EINTR {
			break
		}
	}
	if r1 != 0 {
		q.programFailed(r1)
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(q.pair[0]), 0, 0)
	if q.cmd.startedAfterUs > 0 {
		q.unstarted = true
		return
	}
	q.reportStarted()
}

// reportStarted reports that the program exec'ed, with the time since
// it was let go.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) reportStarted() {
	q.unstarted = false
	q.put(`{"kind":"started","wall_ns":`)
	q.putInt(now(&q.t1) - q.started)
	q.send()
}

// watchProgram reaps until the program ends, and ends it at its first
// forbidden call; then reports, and waits for the parent to let go.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) watchProgram() {
	q.fds[0].Fd = int32(q.sigfd)
	q.fds[0].Events = unix.POLLIN
	q.fds[1].Fd = -1
	if q.listen != 0 {
		q.fds[1].Fd = int32(q.listen)
		q.fds[1].Events = unix.POLLIN
	}
	for {
		timeout := uintptr(0)
		if q.unstarted {
			left := int64(q.cmd.startedAfterUs)*1000 - (now(&q.t1) - q.started)
			if left <= 0 {
				q.reportStarted()
				continue
			}
			q.timeout.Sec, q.timeout.Nsec = left/1e9, left%1e9
			timeout = uintptr(unsafe.Pointer(&q.timeout))
		}
		_, _, errno := syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&q.fds[0])), 2, timeout, 0, 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			q.failed(stepPpoll, errno)
		}
		if q.fds[1].Revents != 0 {
			q.blocked()
		}
		if q.fds[0].Revents != 0 {
			syscall.RawSyscall(syscall.SYS_READ, q.sigfd, uintptr(unsafe.Pointer(&q.sigbuf[0])), uintptr(len(q.sigbuf)))
			q.reap()
		}
	}
}

//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) blocked() {
	q.notif = seccompNotif{}
	_, _, e := syscall.RawSyscall(syscall.SYS_IOCTL, q.listen, uintptr(unix.SECCOMP_IOCTL_NOTIF_RECV), uintptr(unsafe.Pointer(&q.notif)))
	if e == 0 {
		if q.unstarted {
			q.reportStarted()
		}
		q.put(`{"kind":"blocked","nr":`)
		q.putInt(int64(q.notif.nr))
		q.put(`,"arch":`)
		q.putInt(int64(q.notif.arch))
		q.put(`,"pid":`)
		q.putInt(int64(q.notif.pid))
		q.send()
		syscall.RawSyscall(syscall.SYS_KILL, ^uintptr(0), uintptr(syscall.SIGKILL), 0)
	} else if e == syscall.ENOENT || q.fds[1].Revents&(unix.POLLHUP|unix.POLLERR) != 0 {
		q.fds[1].Fd = -1
	}
}

// reap reaps what has ended; once the program has, it reports and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) reap() {
	q.peekFileSizeLimit()
	for {
		r1, _, errno := syscall.RawSyscall6(syscall.SYS_WAIT4, ^uintptr(0), uintptr(unsafe.Pointer(&q.status)), syscall.WNOHANG, uintptr(unsafe.Pointer(&q.ru)), 0, 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || r1 == 0 {
			return
		}
		if r1 == q.zpid {
			break
		}
	}
	ended := now(&q.t1)
	// The step is over: nothing of it may go on running, and nothing
	// does once all is reaped.
	syscall.RawSyscall(syscall.SYS_KILL, ^uintptr(0), uintptr(syscall.SIGKILL), 0)
	for {
		if _, _, errno := syscall.RawSyscall6(syscall.SYS_WAIT4, ^uintptr(0), 0, 0, 0, 0, 0); errno == syscall.ECHILD {
			break
		}
	}
	q.put(`{"kind":"exited","unused":`)
	q.putInt(int64(UnusedKnown | q.unused(&q.tmpPath[0], UnusedTmp) | q.unused(&q.shmPath[0], UnusedShm) | q.unused(&q.wsPath[0], UnusedWorkspace)))
	q.put(`,"exit_code":`)
	if q.status&0x7f == 0 {
		q.putInt(int64(q.status >> 8 & 0xff))
		q.put(`,"signal":0`)
	} else {
		q.put(`0,"signal":`)
		q.putInt(int64(q.status & 0x7f))
	}
	if q.fsizeRead {
		q.put(`,"file_size_limit":`)
		v := int64(q.fsize.cur)
		if v < 0 { // RLIM_INFINITY
			v = 1<<63 - 1
		}
		q.putInt(v)
	}
	q.put(`,"max_rss_kib":`)
	q.putInt(q.ru.Maxrss)
	q.put(`,"user_ns":`)
	q.putInt(q.ru.Utime.Sec*1e9 + q.ru.Utime.Usec*1e3)
	q.put(`,"sys_ns":`)
	q.putInt(q.ru.Stime.Sec*1e9 + q.ru.Stime.Usec*1e3)
	q.put(`,"wall_ns":`)
	q.putInt(ended - q.started)
	q.send()
	// The namespaces go with this init, when the parent closes the
	// control socket or kills us.
	for {
		r1, _, errno := syscall.RawSyscall(syscall.SYS_READ, fdControl, uintptr(unsafe.Pointer(&q.cbuf[0])), 1)
		if errno != syscall.EINTR && (errno != 0 || r1 == 0) {
			break
		}
	}
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 0, 0, 0)
	}
}

// unused is bit when the file system at path holds nothing but its root
// (a tmpfs with one inode in use), else 0.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) unused(path *byte, bit uint32) uint32 {
	q.sfs = unix.Statfs_t{}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_STATFS, uintptr(unsafe.Pointer(path)), uintptr(unsafe.Pointer(&q.sfs)), 0); errno != 0 {
		return 0
	}
	if q.sfs.Files > 0 && q.sfs.Files-q.sfs.Ffree <= 1 {
		return bit
	}
	return 0
}

// peekFileSizeLimit reads the file-size limit pid 2 had when SIGXFSZ
// ended it, while it is a zombie: the program may have lowered its own,
// and then the signal is not the sandbox's limit.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) peekFileSizeLimit() {
	q.info = [128]byte{}
	_, _, errno := syscall.RawSyscall6(unix.SYS_WAITID, unix.P_PID, uintptr(q.zpid), uintptr(unsafe.Pointer(&q.info[0])), unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, 0, 0)
	code := *(*int32)(unsafe.Pointer(&q.info[siCode]))
	if errno != 0 || *(*int32)(unsafe.Pointer(&q.info[siPID])) != int32(q.zpid) ||
		(code != cldKilled && code != cldDumped) || *(*int32)(unsafe.Pointer(&q.info[siStatus])) != int32(syscall.SIGXFSZ) {
		return
	}
	if _, _, errno = syscall.RawSyscall6(unix.SYS_PRLIMIT64, uintptr(q.zpid), unix.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&q.fsize)), 0, 0); errno == 0 {
		q.fsizeRead = true
	}
}

// readFull reads n bytes of the command into the plan's memory at p.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) readFull(p, n uintptr) {
	for got := uintptr(0); got < n; {
		r1, _, errno := syscall.RawSyscall(syscall.SYS_READ, fdCommand, p+got, n-got)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || r1 == 0 {
			if errno == 0 {
				errno = syscall.EPIPE
			}
			q.failed(stepReadCommand, errno)
		}
		got += r1
	}
}

// programFailed reports why the program's process ended before its exec
// (first: bytes of its report read already, in q.errBuf), and exits.
//
//go:nosplit
//go:norace
//go:nocheckptr
func (q *rawInit) programFailed(first uintptr) {
	n := first
	for n < 8 {
		r1, _, errno := syscall.RawSyscall(syscall.SYS_READ, uintptr(q.errPipe[0]), uintptr(unsafe.Pointer(&q.errBuf[n])), 8-n)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 || r1 == 0 {
			break
		}
		n += r1
	}
	syscall.RawSyscall6(syscall.SYS_WAIT4, q.zpid, 0, 0, 0, 0, 0)
	if n != 8 {
		q.failed(stepProgramReport, syscall.EPIPE)
	}
	s, errno := readStepReport(&q.errBuf)
	if s == stepExec && isProgramExecErrno(errno) {
		q.put(`{"kind":"failed","exec_step":true,"step":`)
		q.putInt(int64(stepExec))
		q.put(`,"arg":"`)
		q.putCString((*byte)(unsafe.Pointer(&q.program.image[q.cmd.cand[q.chosen%maxCandidates]-uint64(uintptr(unsafe.Pointer(&q.program.image[0])))])))
		q.put(`","errno":`)
		q.putInt(int64(errno))
		q.send()
		for {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 1, 0, 0)
		}
	}
	q.failed(s, errno)
}

// rawCommandBytes lays c out for an init whose image buffer is at base:
// the header and everything after it, as Run writes them on fdCommand.
// fds is imageHeader.fds; premounted, the size of the workspace the
// init mounted ahead (0: none).
func rawCommandBytes(base uint64, c *Command, fds uint64, workdir bool, premounted int64) ([]byte, error) {
	name := c.Argv[0]
	var cands []string
	nfError := ""
	if strings.Contains(name, "/") {
		cands = []string{name}
	} else {
		path := DefaultPath
		for _, e := range c.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				path = v
			}
		}
		for _, dir := range strings.Split(path, ":") {
			if dir == "" {
				dir = "."
			}
			cands = append(cands, dir+"/"+name)
		}
		nfError = jsonStringContents(fmt.Sprintf("not found in PATH %q", path), 511)
	}
	if len(cands) > maxCandidates {
		return nil, fmt.Errorf("PATH has %d entries, at most %d", len(cands), maxCandidates)
	}
	rlimits := append(append([]Rlimit(nil), fixedRlimits...), c.Rlimits...)
	img, addrs, err := layImage(uintptr(base), imageCap, cands[0], c.Argv, c.Env, rlimits, c.CPUs, fds, cands)
	if err != nil {
		if err == unix.E2BIG {
			return nil, &ExecError{cands[0], err}
		}
		return nil, err
	}
	h := rawCommand{magic: rawMagic, ncand: uint32(len(cands)), imageN: uint32(len(img))}
	h.startedAfterUs = uint32(min(c.StartedAfter.Microseconds(), 1<<31))
	for i, a := range addrs {
		h.cand[i] = uint64(a)
	}
	tmpfs := ""
	switch {
	case workdir:
		h.flags |= rawWorkdir
	case premounted > 0 && c.WorkspaceBytes == premounted:
		h.flags |= rawPremounted
	default:
		tmpfs = workspaceOptions(c.WorkspaceBytes)
	}
	nfName := jsonStringContents(name, 511)
	h.tmpfsN, h.nfNameN, h.nfErrorN = uint32(len(tmpfs)), uint32(len(nfName)), uint32(len(nfError))
	out := make([]byte, 0, int(unsafe.Sizeof(h))+len(img)+len(tmpfs)+len(nfName)+len(nfError))
	out = append(out, unsafe.Slice((*byte)(unsafe.Pointer(&h)), unsafe.Sizeof(h))...)
	out = append(out, img...)
	out = append(out, tmpfs...)
	out = append(out, nfName...)
	out = append(out, nfError...)
	return out, nil
}

// workspaceOptions are the mount options of a fresh workspace of size
// bytes.
func workspaceOptions(size int64) string {
	return fmt.Sprintf("mode=755,size=%d,nr_inodes=%d,%s", size, TmpfsInodes(size), sandboxOwned)
}

// jsonStringContents is s as the inside of a JSON string, cut to at most
// max bytes (never inside an escape).
func jsonStringContents(s string, max int) string {
	b, _ := json.Marshal(s)
	b = b[1 : len(b)-1]
	for len(b) > max {
		s = s[:len(s)-1]
		b, _ = json.Marshal(s)
		b = b[1 : len(b)-1]
	}
	return string(b)
}
