package nsjail

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files are the descriptors that belong to the sandbox, given to Prepare.
// Prepare does not close them; the caller closes its copies once it
// returns.
type Files struct {
	// Join are cgroup.procs files of the program's cgroups, opened for
	// writing by the host: the program joins each before exec.
	Join []*os.File
	// Init is a cgroup2 directory the init is cloned into
	// (CLONE_INTO_CGROUP). Nil: the init stays in the helper's cgroups.
	Init *os.File
	// Program is a cgroup2 directory the init clones the program's process
	// into (CLONE_INTO_CGROUP), with the init's own credentials: they must
	// be allowed to write its cgroup.procs and that of its common ancestor
	// with the init's group. Then Join holds only the other hierarchies'
	// files. Nil: the program joins every group through Join.
	Program *os.File
}

// IO are the descriptors of one command, given to Run. Run does not close
// them; the caller closes its copies once it returns.
type IO struct {
	// Stdin, Stdout and Stderr are the program's. Nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	// ExtraFiles are more descriptors of the program, by number: 3 to
	// MaxExtraFD (a pipe's end, say), each open at its exec as given. The
	// program's other descriptors above 2 are closed at its exec.
	ExtraFiles map[int]*os.File
	// Workdir is a host directory (O_PATH is enough) bound read-write at
	// WorkspaceDir, through a detached copy of its mount. Nil: a fresh
	// tmpfs of Command.WorkspaceBytes.
	Workdir *os.File
	// WorkdirMount, if set, is that detached copy made ahead
	// (DetachedMount of the directory), used instead of Workdir. A
	// detached mount is attached once: it serves one command.
	WorkdirMount *os.File
}

// EventKind says what happened in a sandbox.
type EventKind int

const (
	// Ready: the sandbox is built and waits for its command.
	Ready EventKind = iota + 1
	// Started: the program exec'ed; Exit.Wall is how long ago it was
	// let go. With Command.StartedAfter, only a program that runs that
	// long has one: Exited implies it.
	Started
	// Blocked: the program made a call its seccomp policy forbids; every
	// process of the sandbox is being killed.
	Blocked
	// Exited: the program ended; Exit says how. The last event. Nothing
	// of the program is left then, but the init and its namespaces stay
	// until Kill, so that their teardown can wait until it costs nothing.
	Exited
	// Failed: the sandbox could not be set up or the program not started
	// (Err is a *SetupError or an *ExecError), or the init died. The last
	// event.
	Failed
)

// Event is one report from a running sandbox.
type Event struct {
	Kind EventKind
	At   time.Time // when the parent read it

	Exit Exit  // Exited
	Err  error // Failed

	Nr   int32  // Blocked: the system call number
	Arch uint32 // Blocked: its AUDIT_ARCH_* value
	PID  uint32 // Blocked: the caller, in the sandbox's pid namespace
}

// Process is a sandbox: prepared, then running its one command.
type Process struct {
	pid   int
	pidfd *os.File
	image uint64 // where the program's image goes, in the init's memory
	// premounted is the size of the workspace the init mounted ahead
	// (Spec.ReadyWorkspaceBytes); 0: none.
	premounted int64
	helper     *helperClient
	events     chan Event
	done       chan struct{}

	mu       sync.Mutex
	commandW *os.File // the rest of fdCommand: the command goes there
	control  *os.File // our end of fdControl: the command's descriptors go there
}

// Events delivers what happens, in order: Ready once the sandbox is built,
// then the program's events, ending with Exited or Failed; then it is
// closed, once the init has been reaped.
func (p *Process) Events() <-chan Event { return p.events }

// Pid is the host pid of the sandbox's init.
func (p *Process) Pid() int { return p.pid }

// Kill ends the sandbox: the init gets SIGKILL, and with it every process
// in its pid namespace. Safe to call at any time and more than once.
func (p *Process) Kill() {
	p.mu.Lock()
	if p.pidfd != nil {
		withFD(p.pidfd, func(fd int) { unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) })
	}
	p.closeCommandPipes()
	p.mu.Unlock()
}

// Done is closed once the init has been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Alive tells whether the sandbox may still take its command: its init has
// not exited, nor has the helper it came from (whose death kills it). Done
// closes only after the init's end has been read and reaped; Alive knows
// at once. False is final; true may turn false at any moment.
func (p *Process) Alive() bool {
	select {
	case <-p.done:
		return false
	default:
	}
	if p.helper != nil && p.helper.isGone() {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd == nil {
		return false
	}
	// A pidfd polls readable once its process has exited.
	alive := true
	withFD(p.pidfd, func(fd int) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, 0)
		alive = err != nil || n == 0
	})
	return alive
}

// Prepare launches a sandbox for spec, without its command: the init
// builds the root and waits (Ready comes through Events) until Run gives
// it the program. A prepared sandbox runs at most one command.
func Prepare(spec *Spec, files Files) (*Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox spec: %w", err)
	}
	// The init's descriptors: the layout up to fdJoin, then the join files,
	// then the program's cgroup directory. One more descriptor may come:
	// the init's copy of a root template.
	if fdJoin+len(files.Join)+2 > maxInitFDs {
		return nil, fmt.Errorf("sandbox: %d cgroup files, at most %d", len(files.Join), maxInitFDs-fdJoin-2)
	}
	for attempt := 0; ; attempt++ {
		h, err := chooseHelper()
		if err != nil {
			return nil, &SetupError{step: stepStartInit, Err: err}
		}
		p, err := prepareWith(h, spec, files)
		// A helper that died before this request (killed, say) is
		// noticed by it: the next helper takes it, once.
		if err != nil && attempt == 0 && h.isGone() {
			continue
		}
		return p, err
	}
}

// prepareWith asks the helper h for the sandbox.
func prepareWith(h *helperClient, spec *Spec, files Files) (*Process, error) {
	var closers []*os.File
	defer func() {
		for _, f := range closers {
			f.Close()
		}
	}()
	commandR, commandW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("command pipe: %w", err)
	}
	closers = append(closers, commandR)
	reportR, reportW, err := os.Pipe()
	if err != nil {
		commandW.Close()
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	closers = append(closers, reportW)
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		commandW.Close()
		reportR.Close()
		return nil, fmt.Errorf("control socket: %w", err)
	}
	control := os.NewFile(uintptr(pair[0]), "control")
	initControl := os.NewFile(uintptr(pair[1]), "init control")
	closers = append(closers, initControl)
	fail := func(err error) (*Process, error) {
		commandW.Close()
		reportR.Close()
		control.Close()
		return nil, err
	}
	req := &spawnRequest{Spec: spec, Key: spec.Key, HostUID: spec.HostUID, HostGID: spec.HostGID,
		JoinFiles: len(files.Join), Program: files.Program != nil, Init: files.Init != nil}
	sent := append([]*os.File{commandR, reportW, initControl}, files.Join...)
	if files.Program != nil {
		sent = append(sent, files.Program)
	}
	if files.Init != nil {
		sent = append(sent, files.Init)
	}
	reply, pidfd, err := h.spawn(req, sent)
	if err != nil {
		return fail(&SetupError{step: stepStartInit, Err: err})
	}
	p := &Process{pid: reply.PID, pidfd: pidfd, image: reply.Image, premounted: spec.ReadyWorkspaceBytes, helper: h, events: make(chan Event, 5), done: make(chan struct{}), commandW: commandW, control: control}
	go p.watch(reportR)
	return p, nil
}

// Run gives a prepared sandbox its command; the program's start, end or
// failure come through Events. It may be called before Ready has come,
// and only once.
func (p *Process) Run(c *Command, stdio IO) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("sandbox command: %w", err)
	}
	extra, err := extraFDs(stdio.ExtraFiles)
	if err != nil {
		return fmt.Errorf("sandbox command: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.commandW == nil {
		return errors.New("sandbox: already given a command, or killed")
	}
	// The control socket stays open until Kill: the init outlives its
	// program until then (see Exited).
	defer func() {
		if p.commandW != nil {
			p.commandW.Close()
			p.commandW = nil
		}
	}()
	// Stdin, stdout, stderr, the extra files in order, the workdir.
	fds := make([]int, 0, 4+len(stdio.ExtraFiles))
	for _, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
		if f == nil {
			null, err := devNull()
			if err != nil {
				return err
			}
			f = null
		}
		fds = append(fds, int(f.Fd()))
	}
	for fd := 3; fd <= MaxExtraFD; fd++ {
		if f := stdio.ExtraFiles[fd]; f != nil {
			fds = append(fds, int(f.Fd()))
		}
	}
	switch {
	case stdio.WorkdirMount != nil:
		fds = append(fds, int(stdio.WorkdirMount.Fd()))
	case stdio.Workdir != nil:
		wd, err := DetachedMount(stdio.Workdir)
		if err != nil {
			return err
		}
		defer wd.Close()
		fds = append(fds, int(wd.Fd()))
	}
	cmdBytes, err := rawCommandBytes(p.image, c, extra, stdio.Workdir != nil || stdio.WorkdirMount != nil, p.premounted)
	if err != nil {
		if ee, ok := err.(*ExecError); ok {
			return ee
		}
		return fmt.Errorf("sandbox command: %w", err)
	}
	// An init that is gone (it failed to build the root, say) has reported
	// why, or will be reported dead: its events tell, not this send.
	gone := func(err error) bool { return errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) }
	if err := unix.Sendmsg(int(p.control.Fd()), []byte{0}, unix.UnixRights(fds...), nil, unix.MSG_NOSIGNAL); err != nil {
		if gone(err) {
			return nil
		}
		return &SetupError{step: stepSendDescriptors, Err: err}
	}
	commandW := p.commandW
	p.commandW = nil
	if len(cmdBytes) <= 60<<10 {
		_, err := commandW.Write(cmdBytes)
		commandW.Close()
		if err != nil && !gone(err) {
			return &SetupError{step: stepSendCommand, Err: err}
		}
		return nil
	}
	// Larger than the pipe buffer: written while the init reads. If the
	// init dies first, the write fails and watch reports the death.
	go func() {
		commandW.Write(cmdBytes)
		commandW.Close()
	}()
	return nil
}

// extraFDs checks IO.ExtraFiles and gives their numbers as
// imageHeader.fds.
func extraFDs(files map[int]*os.File) (uint64, error) {
	var bits uint64
	for fd, f := range files {
		switch {
		case fd < 3 || fd > MaxExtraFD:
			return 0, fmt.Errorf("extra file %d: the extra files are 3 to %d", fd, MaxExtraFD)
		case f == nil:
			return 0, fmt.Errorf("extra file %d: nil", fd)
		}
		bits |= 1 << fd
	}
	return bits, nil
}

// closeCommandPipes closes what is left of our ends of fdCommand and
// fdControl; p.mu is held. A prepared init that sees them close without a
// command exits.
func (p *Process) closeCommandPipes() {
	if p.commandW != nil {
		p.commandW.Close()
		p.commandW = nil
	}
	if p.control != nil {
		p.control.Close()
		p.control = nil
	}
}

var (
	devNullOnce sync.Once
	devNullFile *os.File
	devNullErr  error
)

// devNull is one /dev/null shared by every command that leaves a stream
// unset.
func devNull() (*os.File, error) {
	devNullOnce.Do(func() {
		devNullFile, devNullErr = os.OpenFile(os.DevNull, os.O_RDWR, 0)
	})
	return devNullFile, devNullErr
}

// DetachedMount makes a detached copy of the mount of dir (open_tree
// OPEN_TREE_CLONE), without set-uid and device files, for the init to
// attach inside its own mount namespace: a descriptor of a mount in the
// host's namespace cannot be bound there, and its host path may not be
// reachable by the sandbox user. What is written in dir later shows
// through it: it is the same file system.
func DetachedMount(dir *os.File) (*os.File, error) {
	fd, err := unix.OpenTree(int(dir.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return nil, &SetupError{step: stepOpenTreeWorkdir, Err: err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, &SetupError{step: stepSetattrWorkdir, Err: err}
	}
	return os.NewFile(uintptr(fd), "workdir"), nil
}

// watch turns the init's report lines into events, and reaps the init.
func (p *Process) watch(r *os.File) {
	defer close(p.events)
	defer r.Close()
	final := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue
		}
		ev := Event{At: time.Now()}
		switch m.Kind {
		case msgReady:
			ev.Kind = Ready
		case msgStarted:
			ev.Kind = Started
			ev.Exit.Wall = time.Duration(m.WallNs)
		case msgBlocked:
			ev.Kind, ev.Nr, ev.Arch, ev.PID = Blocked, m.Nr, m.Arch, m.PID
		case msgExited:
			ev.Kind = Exited
			ev.Exit = Exit{
				Code: m.ExitCode, Signal: m.Signal, MaxRSS: m.MaxRSSKiB * 1024,
				User: time.Duration(m.UserNs), Sys: time.Duration(m.SysNs), Wall: time.Duration(m.WallNs),
				FileSizeLimit: m.FileSizeLimit, Unused: m.Unused,
			}
		case msgFailed:
			ev.Kind = Failed
			var err error = errors.New(m.Error)
			if m.Errno != 0 {
				err = syscall.Errno(m.Errno)
			}
			if m.ExecStep {
				ev.Err = &ExecError{Path: m.Arg, Err: err}
			} else {
				ev.Err = &SetupError{step: m.Step, arg: m.Arg, Err: err}
			}
		default:
			continue
		}
		if final {
			continue
		}
		final = ev.Kind == Exited || ev.Kind == Failed
		p.events <- ev
	}
	// The report's end is the init's: its pidfd says when it is over,
	// every process of its sandbox with it.
	waitExited(p.pidfd)
	p.helper.ended()
	p.mu.Lock()
	p.closeCommandPipes()
	p.pidfd.Close()
	p.pidfd = nil
	p.mu.Unlock()
	close(p.done)
	if !final {
		why := errors.New("died without a report")
		if gone := p.helper.goneErr(helperDeathWait); gone != nil {
			why = fmt.Errorf("died without a report: %w", gone)
		}
		p.events <- Event{Kind: Failed, At: time.Now(), Err: &SetupError{step: stepInitDied, Err: why}}
	}
}

// waitExited returns once the process of pidfd has ended, waiting
// through the runtime's poller (the helper's pidfds are non-blocking).
func waitExited(pidfd *os.File) {
	ended := func(fd uintptr, timeout int) (bool, error) {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(pfd, timeout)
		return err == nil && n > 0, err
	}
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return
	}
	if rc.Read(func(fd uintptr) bool { ok, err := ended(fd, 0); return ok || err != nil && err != unix.EINTR }) == nil {
		return
	}
	// Not on the poller: wait in the system call.
	rc.Control(func(fd uintptr) {
		for {
			if ok, err := ended(fd, -1); ok || err != nil && err != unix.EINTR {
				return
			}
		}
	})
}

// withFD calls fn with f's descriptor, without taking f off the runtime's
// poller (as f.Fd would).
func withFD(f *os.File, fn func(fd int)) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { fn(int(fd)) })
	}
}
