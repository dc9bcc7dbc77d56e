package nsjail

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Files are the open descriptors a sandbox gets. Start does not close them;
// the caller closes its copies once Start returns.
type Files struct {
	// Stdin, Stdout and Stderr are the program's. Nil is /dev/null.
	Stdin, Stdout, Stderr *os.File
	// Workdir is a host directory (O_PATH is enough) bound read-write at
	// WorkspaceDir, through a detached copy of its mount. Nil: a fresh tmpfs of Spec.WorkspaceBytes.
	Workdir *os.File
	// Join are cgroup.procs files of the program's cgroups, opened for
	// writing by the host: the program joins each before exec.
	Join []*os.File
	// Supervisor is a cgroup2 directory the init is cloned into
	// (CLONE_INTO_CGROUP). Nil: the init stays in its parent's cgroups.
	Supervisor *os.File
}

// EventKind says what happened in a sandbox.
type EventKind int

const (
	// Started: the program exec'ed.
	Started EventKind = iota + 1
	// Blocked: the program made a call its seccomp policy forbids; every
	// process of the sandbox is being killed.
	Blocked
	// Exited: the program ended; Exit says how. The last event.
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

// Process is a running sandbox.
type Process struct {
	cmd    *exec.Cmd
	events chan Event
	done   chan struct{}
}

// Events delivers what happens, in order, ending with Exited or Failed;
// then it is closed, once the init has been reaped.
func (p *Process) Events() <-chan Event { return p.events }

// Pid is the host pid of the sandbox's init.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Kill ends the sandbox: the init gets SIGKILL, and with it every process
// in its pid namespace. Safe to call at any time and more than once.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
}

// Done is closed once the init has been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Start launches a sandbox for spec. It returns once the init runs; the
// program's start, end or failure come through Events.
func Start(spec *Spec, files Files) (*Process, error) {
	if err := spec.Validate(); err != nil {
		return nil, fmt.Errorf("sandbox spec: %w", err)
	}
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spec pipe: %w", err)
	}
	defer specR.Close()
	reportR, reportW, err := os.Pipe()
	if err != nil {
		specW.Close()
		return nil, fmt.Errorf("report pipe: %w", err)
	}
	defer reportW.Close()

	exe, err := initPath()
	if err != nil {
		specW.Close()
		reportR.Close()
		reportW.Close()
		return nil, &SetupError{"init executable", err}
	}
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{initArg0},
		Env:        []string{},
		Stdin:      files.Stdin,
		Stdout:     files.Stdout,
		Stderr:     files.Stderr,
		ExtraFiles: append([]*os.File{specR, reportW, files.Workdir}, files.Join...),
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID | syscall.CLONE_NEWNS |
				syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC,
			// The init is root of its user namespace (every capability
			// there, none outside), mapped to InitUID; the program runs as
			// SandboxUID, mapped to HostUID.
			UidMappings: []syscall.SysProcIDMap{
				{ContainerID: 0, HostID: int(spec.InitUID), Size: 1},
				{ContainerID: SandboxUID, HostID: int(spec.HostUID), Size: 1},
			},
			GidMappings: []syscall.SysProcIDMap{
				{ContainerID: 0, HostID: int(spec.InitGID), Size: 1},
				{ContainerID: SandboxGID, HostID: int(spec.HostGID), Size: 1},
			},
			GidMappingsEnableSetgroups: false,
			Credential:                 &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
			Pdeathsig:                  syscall.SIGKILL,
		},
	}
	if files.Workdir != nil {
		wd, err := detachedClone(files.Workdir)
		if err != nil {
			specW.Close()
			reportR.Close()
			return nil, err
		}
		defer wd.Close()
		cmd.ExtraFiles[fdWorkdir-3] = wd
	}
	if files.Supervisor != nil {
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(files.Supervisor.Fd())
	}
	// The spec goes into the pipe before the init exists, so that it is
	// there to read the moment the init starts. A spec larger than the pipe
	// buffer is written while the init reads.
	cfg := initConfig{Spec: *spec, JoinFiles: len(files.Join), Workdir: files.Workdir != nil}
	specJSON, err := json.Marshal(&cfg)
	if err != nil {
		specW.Close()
		reportR.Close()
		return nil, fmt.Errorf("sandbox spec: %w", err)
	}
	writeSpec := func() error {
		_, err := specW.Write(specJSON)
		specW.Close()
		return err
	}
	small := len(specJSON) <= 60<<10
	if small {
		if err := writeSpec(); err != nil {
			reportR.Close()
			return nil, fmt.Errorf("write sandbox spec: %w", err)
		}
	}
	if err := cmd.Start(); err != nil {
		specW.Close()
		reportR.Close()
		return nil, &SetupError{"start init", err}
	}
	p := &Process{cmd: cmd, events: make(chan Event, 4), done: make(chan struct{})}
	specR.Close()
	reportW.Close()
	go p.watch(reportR)
	if !small {
		// If the init dies before reading it all, the write fails and
		// watch reports the death.
		go writeSpec()
	}
	return p, nil
}

// detachedClone makes a detached copy of the mount of dir (open_tree
// OPEN_TREE_CLONE), without set-uid and device files, for the init to
// attach inside its own mount namespace: a descriptor of a mount in the
// host's namespace cannot be bound there, and its host path may not be
// reachable by the sandbox user.
func detachedClone(dir *os.File) (*os.File, error) {
	fd, err := unix.OpenTree(int(dir.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return nil, &SetupError{"open_tree workdir", err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		unix.Close(fd)
		return nil, &SetupError{"mount_setattr workdir", err}
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
		case msgStarted:
			ev.Kind = Started
		case msgBlocked:
			ev.Kind, ev.Nr, ev.Arch, ev.PID = Blocked, m.Nr, m.Arch, m.PID
		case msgExited:
			ev.Kind = Exited
			ev.Exit = Exit{
				Code: m.ExitCode, Signal: m.Signal, MaxRSS: m.MaxRSSKiB * 1024,
				User: time.Duration(m.UserNs), Sys: time.Duration(m.SysNs), Wall: time.Duration(m.WallNs),
			}
		case msgFailed:
			ev.Kind = Failed
			var err error = errors.New(m.Error)
			if m.Errno != 0 {
				err = syscall.Errno(m.Errno)
			}
			if m.ExecStep {
				ev.Err = &ExecError{Path: m.Step[len("exec "):], Err: err}
			} else {
				ev.Err = &SetupError{Step: m.Step, Err: err}
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
	err := p.cmd.Wait()
	close(p.done)
	if !final {
		p.events <- Event{Kind: Failed, At: time.Now(), Err: &SetupError{Step: "init", Err: fmt.Errorf("died without a report: %v", err)}}
	}
}
