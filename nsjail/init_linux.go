package nsjail

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// initArg0 marks a re-executed binary as the sandbox init.
const initArg0 = "sandboxd-init"

// IsInit reports whether this process was started by Start as a sandbox
// init. Programs that use Start call it first thing in main:
//
//	if nsjail.IsInit() { nsjail.Init() }
func IsInit() bool { return len(os.Args) > 0 && os.Args[0] == initArg0 }

// initConfig is what Start sends the init on fdSpec.
type initConfig struct {
	Spec      Spec `json:"spec"`
	JoinFiles int  `json:"join_files"` // how many descriptors from fdJoin on
	Workdir   bool `json:"workdir"`    // fdWorkdir is a host directory to bind
}

// Init runs the sandbox init and exits; it never returns. See the package
// documentation for its steps.
func Init() {
	runtime.LockOSThread()
	// Run from a memfd, the init would otherwise be named after its
	// descriptor.
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("sandboxd-init\x00")[0])), 0, 0, 0)
	rep := &reporter{f: os.NewFile(fdReport, "report")}
	if err := runInit(rep); err != nil {
		m := message{Kind: msgFailed, Error: err.Error(), Step: "init"}
		if se, ok := err.(*SetupError); ok {
			m.Step = se.Step
			m.Error = se.Err.Error()
			if errno, ok := se.Err.(syscall.Errno); ok {
				m.Errno = int(errno)
			}
		}
		if ee, ok := err.(*ExecError); ok {
			m.ExecStep = true
			m.Step = "exec " + ee.Path
			m.Error = ee.Err.Error()
		}
		rep.send(m)
		// Whatever was started dies with pid 1.
		os.Exit(1)
	}
	os.Exit(0)
}

// reporter writes messages to the parent, one line each, from any goroutine.
type reporter struct {
	mu sync.Mutex
	f  *os.File
}

func (r *reporter) send(m message) {
	b, _ := json.Marshal(m)
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Write(b) // A parent that stopped listening kills us soon anyway.
}

func runInit(rep *reporter) error {
	var cfg initConfig
	specFile := os.NewFile(fdSpec, "spec")
	if err := json.NewDecoder(bufio.NewReader(specFile)).Decode(&cfg); err != nil {
		return &SetupError{"read spec", err}
	}
	specFile.Close()
	spec := &cfg.Spec
	joinFDs := make([]int, cfg.JoinFiles)
	for i := range joinFDs {
		joinFDs[i] = fdJoin + i
	}

	workdir := -1
	if cfg.Workdir {
		workdir = fdWorkdir
	}
	if err := buildRoot(spec, workdir); err != nil {
		return err
	}
	hostname := spec.Hostname
	if hostname == "" {
		hostname = "sandbox"
	}
	if err := unix.Sethostname([]byte(hostname)); err != nil {
		return &SetupError{"sethostname", err}
	}
	if err := unix.Setdomainname([]byte("sandbox")); err != nil {
		return &SetupError{"setdomainname", err}
	}
	if err := loopbackUp(); err != nil {
		return err
	}

	argv0, err := lookPath(spec.Argv[0], spec.Env)
	if err != nil {
		return err
	}
	plan, err := newPlan(spec, argv0, joinFDs)
	if err != nil {
		return err
	}
	return supervise(rep, plan, argv0)
}

// newPlan turns the spec into the child's prepared plan, and opens the
// descriptors it needs: the error pipe and the listener socket.
func newPlan(spec *Spec, argv0 string, joinFDs []int) (*childPlan, error) {
	p := &childPlan{joinFDs: joinFDs}
	p.prepare()
	var err error
	if p.argv0, err = unix.BytePtrFromString(argv0); err != nil {
		return nil, &ExecError{spec.Argv[0], err}
	}
	if p.argv, err = syscall.SlicePtrFromStrings(spec.Argv); err != nil {
		return nil, &ExecError{spec.Argv[0], err}
	}
	if p.envv, err = syscall.SlicePtrFromStrings(spec.Env); err != nil {
		return nil, &ExecError{spec.Argv[0], err}
	}
	p.rlimits = append(p.rlimits, unix.Rlimit{})
	p.rlimitOf = append(p.rlimitOf, unix.RLIMIT_CORE)
	for _, r := range spec.Rlimits {
		p.rlimits = append(p.rlimits, unix.Rlimit{Cur: r.Value, Max: r.Value})
		p.rlimitOf = append(p.rlimitOf, r.Resource)
	}
	p.lastCap = lastCap()
	if len(spec.Seccomp) > 0 {
		p.filter.Len = uint16(len(spec.Seccomp))
		p.filter.Filter = &spec.Seccomp[0]
	}
	return p, nil
}

// supervise forks the program, reports its start, forwards seccomp
// violations, and reaps everything until pid 2 has ended.
func supervise(rep *reporter, p *childPlan, argv0 string) error {
	errR, errW, err := os.Pipe()
	if err != nil {
		return &SetupError{"pipe", err}
	}
	p.errFD = int(errW.Fd())
	var listenerR *os.File
	if p.filter.Len > 0 {
		pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return &SetupError{"socketpair", err}
		}
		p.listenerSock = pair[1]
		listenerR = os.NewFile(uintptr(pair[0]), "listener")
		defer unix.Close(pair[1])
	}

	forked := time.Now()
	pid, err := forkChild(p)
	if err != nil {
		return err
	}
	errW.Close()
	var buf [8]byte
	n, _ := errR.Read(buf[:])
	errR.Close()
	if n == len(buf) {
		step := childStep(uint32(buf[0]) | uint32(buf[1])<<8 | uint32(buf[2])<<16 | uint32(buf[3])<<24)
		errno := syscall.Errno(uint32(buf[4]) | uint32(buf[5])<<8 | uint32(buf[6])<<16 | uint32(buf[7])<<24)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		if step == stepExec && isProgramExecErrno(errno) {
			return &ExecError{argv0, errno}
		}
		return &SetupError{step.String(), errno}
	}
	started := time.Now()
	rep.send(message{Kind: msgStarted, WallNs: started.Sub(forked).Nanoseconds()})

	if listenerR != nil {
		fd, err := receiveFD(listenerR)
		if err != nil {
			unix.Kill(-1, unix.SIGKILL)
			return &SetupError{"receive seccomp listener", err}
		}
		go watchSeccomp(rep, fd)
	}

	// Reap until pid 2 ends. Orphans re-parented to us are reaped on the way.
	for {
		var ws unix.WaitStatus
		var ru unix.Rusage
		wpid, err := unix.Wait4(-1, &ws, 0, &ru)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &SetupError{"wait4", err}
		}
		if wpid != pid {
			continue
		}
		ended := time.Now()
		m := message{
			Kind:      msgExited,
			MaxRSSKiB: ru.Maxrss,
			UserNs:    unix.TimevalToNsec(ru.Utime),
			SysNs:     unix.TimevalToNsec(ru.Stime),
			WallNs:    ended.Sub(started).Nanoseconds(),
		}
		if ws.Signaled() {
			m.Signal = int(ws.Signal())
		} else {
			m.ExitCode = ws.ExitStatus()
		}
		// The step is over: nothing of it may go on running.
		unix.Kill(-1, unix.SIGKILL)
		rep.send(m)
		for {
			if _, err := unix.Wait4(-1, nil, 0, nil); err == unix.ECHILD {
				return nil
			}
		}
	}
}

// receiveFD takes the seccomp listener the child sent before its exec.
func receiveFD(sock *os.File) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC|unix.MSG_DONTWAIT)
	if err != nil {
		return -1, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("no control message (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("no descriptor (%v)", err)
	}
	return fds[0], nil
}

// seccompNotif is struct seccomp_notif.
type seccompNotif struct {
	id    uint64
	pid   uint32
	flags uint32
	nr    int32
	arch  uint32
	ip    uint64
	args  [6]uint64
}

// watchSeccomp waits for a forbidden call. The first one ends the sandbox:
// it is reported, then every process but this init is killed. The calling
// process never gets an answer; it dies in the call.
func watchSeccomp(rep *reporter, fd int) {
	for {
		var n seccompNotif
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(unix.SECCOMP_IOCTL_NOTIF_RECV), uintptr(unsafe.Pointer(&n)))
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return // ENOENT: the program is gone.
		}
		rep.send(message{Kind: msgBlocked, Nr: n.nr, Arch: n.arch, PID: n.pid})
		unix.Kill(-1, unix.SIGKILL)
	}
}

// loopbackUp brings up lo, the only interface of the new network namespace.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return &SetupError{"socket for lo", err}
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return &SetupError{"lo", err}
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return &SetupError{"get lo flags", err}
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return &SetupError{"bring lo up", err}
	}
	return nil
}

// lookPath finds the program inside the sandbox, after pivot_root, the way
// a shell would: a name with a slash is taken as it is, anything else is
// searched in the PATH of env.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	path := DefaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	var firstErr error
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		p := dir + "/" + name
		var st unix.Stat_t
		if err := unix.Stat(p, &st); err != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if err := unix.Access(p, unix.X_OK); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		return p, nil
	}
	if firstErr != nil {
		return "", &ExecError{name, firstErr}
	}
	return "", &ExecError{name, fmt.Errorf("not found in PATH %q", path)}
}

// lastCap is the highest capability number this kernel knows.
func lastCap() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 63
	}
	var n int
	if _, err := fmt.Sscan(strings.TrimSpace(string(b)), &n); err != nil {
		return 63
	}
	return n
}
