package nsjail

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initSpawn says how to start an init: what startInit needs, as plain
// data.
type initSpawn struct {
	path   string
	argv   []string
	env    []string
	files  []*os.File // become descriptors 0, 1, 2, ...
	flags  uint64     // CLONE_NEW* flags
	cgroup *os.File   // nil, or a cgroup2 directory to clone into
	uidMap string     // contents of /proc/PID/uid_map
	gidMap string     // of gid_map (setgroups is denied)
	raw    *rawInit   // not nil: the init runs rawInitMain instead of its exec
	ns     *nsSwitch  // not nil: the mount namespace to clone the init in

	plan *initPlan // set by startInit: what a raw init runs on, to keep while it lives
}

// nsSwitch is a mount namespace to clone an init in: the calling thread
// (with a file system context of its own) enters it for the clone, and
// goes back to its own; stuck, which does not return, is called where it
// cannot.
type nsSwitch struct {
	enter, back int
	stuck       func(error)
}

// initPlan is everything the init's process needs between its clone and
// its exec, laid out beforehand: like programMain, initChildMain allocates
// nothing and makes only raw system calls.
type initPlan struct {
	fds   []int32 // fds[i] becomes descriptor i
	path  *byte
	argv  []*byte // nil-terminated
	envv  []*byte // nil-terminated
	syncR int     // one byte here once the id maps are written; EOF: give up
	syncW int     // the parent's end, closed in the child first; the parent's copy stays open until the exec
	errW  int     // close-on-exec: step and errno on failure, EOF on exec

	pollFD   unix.PollFd
	noWait   unix.Timespec     // zero: ppoll returns at once
	moved    [maxInitFDs]int32 // the child's copies of fds, above the layout
	buf      [1]byte
	errBuf   [8]byte
	sigDfl   kernelSigaction
	sigEmpty uint64
	sigReset uint64 // the signals whose disposition goes back to the default (allSignals bits)
	stack    []byte
	raw      *rawInit
}

// maxInitFDs bounds the descriptors an init starts with.
const maxInitFDs = 32

// startInit starts the init's process, in new namespaces, and returns once
// it has exec'ed, or, with s.raw, once it has laid out its descriptors and
// goes on to rawInitMain (the helper's way; the exec is left to tests of
// the common steps). It does what os/exec would with the same SysProcAttr
// (id maps written by the parent, root in the new user namespace, SIGKILL
// when the parent goes), but the child shares the caller's memory instead
// of a copy of it (see startClone): until its exec, or for its whole life.
// It returns the init's pid, a child of the calling thread for the caller
// to reap (an os.Process would first probe the kernel's pidfd support with
// a clone of its own: once per process, so once per sandboxd exec). A raw
// init (s.raw) is cloned without an exit signal: its parent learns of its
// end from a pidfd, and waits for it with WALL (or by its pidfd).
func startInit(s *initSpawn) (int, error) {
	p := &initPlan{raw: s.raw}
	if s.raw != nil {
		// The init's whole life runs on it: the helper takes it back
		// once it has reaped the init (helper.reap).
		p.stack = spawnBuffers.stack()
		s.plan = p
	} else {
		p.stack = make([]byte, 16<<10)
	}
	var err error
	if p.path, err = unix.BytePtrFromString(s.path); err != nil {
		return 0, err
	}
	if p.argv, err = cStrings(s.argv); err != nil {
		return 0, err
	}
	if p.envv, err = cStrings(s.env); err != nil {
		return 0, err
	}
	if len(s.files) > maxInitFDs {
		return 0, fmt.Errorf("%d descriptors for the init, at most %d", len(s.files), maxInitFDs)
	}
	for _, f := range s.files {
		p.fds = append(p.fds, int32(f.Fd()))
	}
	var pipes [4]int
	if err := unix.Pipe2(pipes[0:2], unix.O_CLOEXEC); err != nil {
		return 0, fmt.Errorf("pipe: %w", err)
	}
	if err := unix.Pipe2(pipes[2:4], unix.O_CLOEXEC); err != nil {
		unix.Close(pipes[0])
		unix.Close(pipes[1])
		return 0, fmt.Errorf("pipe: %w", err)
	}
	p.syncR, p.syncW = pipes[0], pipes[1]
	errR := pipes[2]
	p.errW = pipes[3]
	defer func() {
		for _, fd := range pipes {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	}()

	args := cloneArgs{flags: s.flags, exitSignal: uint64(syscall.SIGCHLD)}
	p.sigReset = allSignals
	if s.raw != nil {
		// The kernel gives the clone default handlers (an init that
		// never execs would otherwise keep the Go runtime's); what this
		// process ignores it resets itself, usually nothing: 62 calls
		// fewer per sandbox.
		args.flags |= unix.CLONE_CLEAR_SIGHAND
		p.sigReset = ignoredSignals()
		args.exitSignal = 0
	}
	if s.cgroup != nil {
		args.flags |= unix.CLONE_INTO_CGROUP
		args.cgroup = uint64(s.cgroup.Fd())
	}
	// The child runs on p's memory until its exec, which we wait for below.
	defer runtime.KeepAlive(p)
	defer runtime.KeepAlive(s)
	syscall.ForkLock.Lock()
	if s.ns != nil {
		if err := unix.Setns(s.ns.enter, unix.CLONE_NEWNS); err != nil {
			syscall.ForkLock.Unlock()
			return 0, fmt.Errorf("enter the template namespace: %w", err)
		}
	}
	runtimeBeforeFork()
	pid, errno := startClone(&args, p.stack, cloneInit, unsafe.Pointer(p))
	runtimeAfterFork()
	if s.ns != nil {
		if err := unix.Setns(s.ns.back, unix.CLONE_NEWNS); err != nil {
			// Every later init would start from the template's namespace,
			// and every file this thread opens would be looked up there.
			syscall.ForkLock.Unlock()
			s.ns.stuck(err)
		}
	}
	syscall.ForkLock.Unlock()
	if errno != 0 {
		return 0, os.NewSyscallError("clone3", errno)
	}
	unix.Close(p.syncR)
	unix.Close(p.errW)
	pipes[0], pipes[3] = -1, -1

	kill := func() {
		unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		for {
			if _, err := unix.Wait4(pid, &ws, unix.WALL, nil); err != unix.EINTR {
				return
			}
		}
	}
	if err := writeIDMaps(pid, s.uidMap, s.gidMap); err != nil {
		kill()
		return 0, err
	}
	if _, err := unix.Write(p.syncW, []byte{1}); err != nil {
		kill()
		return 0, fmt.Errorf("release the init: %w", err)
	}
	// syncW stays open until the exec (or the raw init's start): see
	// initChildMain.

	var report [8]byte
	n := 0
	for n < len(report) {
		m, err := unix.Read(errR, report[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || m == 0 {
			break
		}
		n += m
	}
	if n != 0 {
		kill()
		if n != len(report) {
			return 0, fmt.Errorf("the init's process ended before its exec")
		}
		s, errno := readStepReport(&report)
		return 0, &SetupError{step: s, Err: errno}
	}
	return pid, nil
}

// writeIDMaps gives the new user namespace of pid its id maps, setgroups
// denied, as the kernel allows a parent to once.
func writeIDMaps(pid int, uidMap, gidMap string) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/"
	for _, w := range [...]struct{ file, content string }{
		{"uid_map", uidMap}, {"setgroups", "deny"}, {"gid_map", gidMap},
	} {
		fd, err := unix.Open(dir+w.file, unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", w.file, err)
		}
		_, err = unix.Write(fd, []byte(w.content))
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("write %s: %w", w.file, err)
		}
	}
	return nil
}

// cStrings is ss as a nil-terminated array of C strings.
func cStrings(ss []string) ([]*byte, error) {
	out := make([]*byte, len(ss)+1)
	for i, s := range ss {
		b, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// idMap formats the lines of a uid_map or gid_map.
func idMap(entries ...[3]uint32) string {
	var b strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d %d\n", e[0], e[1], e[2])
	}
	return b.String()
}

// initChildMain is the init's process from its clone, in the new
// namespaces, on p.stack in the parent's memory: see programMain for what it
// may do. It waits until the parent has written the id maps, becomes root
// of the new user namespace, lays out its descriptors, and runs
// rawInitMain (p.raw) or execs. It never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func initChildMain(p *initPlan) {
	var failed step
	var errno syscall.Errno
	var r1 uintptr
	errW := uintptr(p.errW)
	n := uintptr(len(p.fds))

	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(p.syncW), 0, 0)
	// One byte: the maps are there. EOF: the parent gave up, or died.
	for {
		r1, _, errno = syscall.RawSyscall(syscall.SYS_READ, uintptr(p.syncR), uintptr(unsafe.Pointer(&p.buf[0])), 1)
		if errno != syscall.EINTR {
			break
		}
	}
	if errno != 0 || r1 != 1 {
		if errno == 0 {
			errno = syscall.EPIPE
		}
		failed = stepWaitIDMaps
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESGID, 0, 0, 0); errno != 0 {
		failed = stepSetgidRoot
		goto fail
	}
	if _, _, errno = syscall.RawSyscall(syscall.SYS_SETRESUID, 0, 0, 0); errno != 0 {
		failed = stepSetuidRoot
		goto fail
	}
	// The death signal after the change of credentials, which clears it.
	// A parent that died before this closed its end of the sync pipe
	// before it could signal us (the kernel closes a dying process's
	// descriptors before it notifies its children), and it holds that end
	// open until our exec: a hang-up now means it is gone.
	if _, _, errno = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0, 0); errno != 0 {
		failed = stepDeathSignal
		goto fail
	}
	p.pollFD.Fd = int32(p.syncR)
	p.pollFD.Events = unix.POLLIN
	if r1, _, errno = syscall.RawSyscall6(unix.SYS_PPOLL, uintptr(unsafe.Pointer(&p.pollFD)), 1, uintptr(unsafe.Pointer(&p.noWait)), 0, 0, 0); errno != 0 || (r1 == 1 && p.pollFD.Revents&unix.POLLHUP != 0) {
		if errno == 0 {
			errno = syscall.EPIPE
		}
		failed = stepDeathSignal
		goto fail
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(p.syncR), 0, 0)
	// Every descriptor to keep goes above the layout first, so that no
	// dup3 below replaces one still to be placed; the copies close on exec.
	if errW < n {
		if errW, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, errW, syscall.F_DUPFD_CLOEXEC, n); errno != 0 {
			failed = stepLayOutFDs
			goto fail
		}
	}
	for i := uintptr(0); i < n; i++ {
		if r1, _, errno = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(p.fds[i]), syscall.F_DUPFD_CLOEXEC, n); errno != 0 {
			failed = stepLayOutFDs
			goto fail
		}
		p.moved[i] = int32(r1)
	}
	for i := uintptr(0); i < n; i++ {
		if _, _, errno = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(p.moved[i]), i, 0); errno != 0 {
			failed = stepLayOutFDs
			goto fail
		}
	}
	// Whatever the parent holds open beyond the layout, close-on-exec or
	// not, stays behind.
	if p.raw == nil {
		if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, n, ^uintptr(0)>>32, unix.CLOSE_RANGE_CLOEXEC); errno != 0 {
			failed = stepLayOutFDs
			goto fail
		}
	}
	// Signals come back only for the exec. Before that, every handler goes
	// back to the default: the parent's handlers are the Go runtime's, and
	// one run here, on the parent's memory, would corrupt it (a terminal's
	// SIGINT or a service manager's SIGTERM reaches the whole group).
	if errno = resetSignalsIn(&p.sigDfl, &p.sigEmpty, p.sigReset); errno != 0 {
		failed = stepSignals
		goto fail
	}
	if p.raw != nil {
		// No exec: everything beyond the layout closes now, errW with
		// it, which tells the parent we are set up.
		if _, _, errno = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, n, ^uintptr(0)>>32, 0); errno != 0 {
			failed = stepLayOutFDs
			goto fail
		}
		rawInitMain(p.raw)
	}
	_, _, errno = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(p.path)), uintptr(unsafe.Pointer(&p.argv[0])), uintptr(unsafe.Pointer(&p.envv[0])))
	failed = stepExec

fail:
	exitReporting(errW, &p.errBuf, failed, errno)
}
