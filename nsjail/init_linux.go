package nsjail

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
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

// Init runs the sandbox init and exits; it never returns. See the package
// documentation for its steps.
func Init() {
	// The root's directories and the program get a known umask, whatever
	// the daemon's was at the fork (it narrows it while it creates its
	// socket, and the warm sandboxes are forked meanwhile).
	unix.Umask(0o022)
	// Run from a memfd, the init would otherwise be named after its
	// descriptor.
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("sandboxd-init\x00")[0])), 0, 0, 0)
	// The pipes from the parent came non-blocking (Go makes its pipes so,
	// and the flag belongs to the pipe): made blocking, they are read and
	// written with plain system calls, and the runtime never starts its
	// poller, nor the threads that waiting in it would take.
	unix.SetNonblock(fdSpec, false)
	unix.SetNonblock(fdReport, false)
	rep := &reporter{f: rawFile(fdReport)}
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
	f  rawFile
}

func (r *reporter) send(m message) {
	b, _ := json.Marshal(m)
	b = append(b, '\n')
	r.mu.Lock()
	defer r.mu.Unlock()
	r.f.Write(b) // A parent that stopped listening kills us soon anyway.
}

func runInit(rep *reporter) error {
	// One decoder for both values: it may read ahead into the second.
	dec := json.NewDecoder(bufio.NewReader(rawFile(fdSpec)))
	var cfg initConfig
	if err := dec.Decode(&cfg); err != nil {
		return &SetupError{"read spec", err}
	}
	spec := &cfg.Spec
	if err := buildRoot(spec); err != nil {
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
	joinFDs := make([]int, cfg.JoinFiles)
	for i := range joinFDs {
		joinFDs[i] = fdJoin + i
	}
	c, err := forkWaiting(spec, joinFDs)
	if err != nil {
		return err
	}
	for _, fd := range joinFDs {
		unix.Close(fd)
	}
	// The listener's watcher is made now, while the sandbox waits, so that
	// the runtime has its thread before the command comes. It takes
	// notifications only once the program's start is reported: Blocked
	// never comes before Started, when the parent would end the whole
	// sandbox (the listener with it, and the blocked call would return).
	c.started = make(chan struct{})
	if c.listener >= 0 {
		go func() {
			<-c.started
			watchSeccomp(rep, c.listener)
		}()
	}
	warmDecoder()
	rep.send(message{Kind: msgReady})

	// Wait for the command. A sandbox dropped unused sees EOF and goes.
	var run runConfig
	if err := dec.Decode(&run); err != nil {
		if err == io.EOF {
			os.Exit(0)
		}
		return &SetupError{"read command", err}
	}
	_, _, fds, err := receiveMsg(fdControl, 4)
	if err == nil && len(fds) == 0 {
		err = errors.New("no descriptors")
	}
	if err != nil {
		return &SetupError{"receive the command's descriptors", err}
	}
	want := 3
	if run.Workdir {
		want = 4
	}
	if len(fds) != want {
		return &SetupError{"receive the command's descriptors", fmt.Errorf("got %d, want %d", len(fds), want)}
	}
	workdir := -1
	if run.Workdir {
		workdir = fds[3]
	}
	if err := attachWorkspace(workdir, run.Command.WorkspaceBytes); err != nil {
		return err
	}
	if workdir >= 0 {
		unix.Close(workdir)
	}
	cmd := &run.Command
	argv0, err := lookPath(cmd.Argv[0], cmd.Env)
	if err != nil {
		return err
	}
	rlimits := append([]Rlimit{{Resource: unix.RLIMIT_CORE}}, cmd.Rlimits...)
	image, err := c.plan.buildImage(argv0, cmd.Argv, cmd.Env, rlimits)
	if err != nil {
		if err == unix.E2BIG {
			return &ExecError{argv0, err}
		}
		return &SetupError{"command", err}
	}
	if err := c.send(image, fds[:3]); err != nil {
		return err
	}
	for _, fd := range fds[:3] {
		unix.Close(fd)
	}
	return c.supervise(rep, argv0)
}

// waitingChild is the program's process, forked when the sandbox is
// prepared, waiting for its command.
type waitingChild struct {
	pid  int
	plan *childPlan
	sock *os.File // our end of the command socket
	errR rawFile  // the child's error pipe

	listener int           // the child's seccomp listener, -1 without a filter
	started  chan struct{} // closed once Started is reported
}

// forkWaiting forks the child that will run the command, and waits until
// it has joined the program's cgroups and is ready for it.
func forkWaiting(spec *Spec, joinFDs []int) (*waitingChild, error) {
	p := &childPlan{joinFDs: joinFDs, lastCap: lastCap()}
	p.prepare()
	if len(spec.Seccomp) > 0 {
		p.filter.Len = uint16(len(spec.Seccomp))
		p.filter.Filter = &spec.Seccomp[0]
	}
	var errPipe [2]int
	if err := unix.Pipe2(errPipe[:], unix.O_CLOEXEC); err != nil {
		return nil, &SetupError{"pipe", err}
	}
	errR := rawFile(errPipe[0])
	p.errFD = errPipe[1]
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, &SetupError{"socketpair", err}
	}
	p.sock = pair[1]
	pid, err := forkChild(p)
	unix.Close(pair[1])
	unix.Close(errPipe[1])
	if err != nil {
		return nil, err
	}
	c := &waitingChild{pid: pid, plan: p, sock: os.NewFile(uintptr(pair[0]), "command"), errR: errR, listener: -1}
	// Ready: one byte, with the seccomp listener when there is a filter.
	b, n, fds, err := receiveMsg(pair[0], 1)
	if err != nil || n != 1 || b != 'R' {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, c.failure(nil, "")
	}
	switch {
	case len(fds) == 1 && p.filter.Len > 0:
		c.listener = fds[0]
	case len(fds) == 0 && p.filter.Len == 0:
	default:
		for _, fd := range fds {
			unix.Close(fd)
		}
		unix.Kill(pid, unix.SIGKILL)
		unix.Wait4(pid, nil, 0, nil)
		return nil, &SetupError{"receive seccomp listener", fmt.Errorf("%d descriptors with the ready byte", len(fds))}
	}
	return c, nil
}

// send gives the child its command: the image, with stdio as SCM_RIGHTS
// on its first bytes.
func (c *waitingChild) send(image []byte, stdio []int) error {
	fd := int(c.sock.Fd())
	n, err := unix.SendmsgN(fd, image, unix.UnixRights(stdio...), nil, unix.MSG_NOSIGNAL)
	for err == nil && n < len(image) {
		var m int
		m, err = unix.SendmsgN(fd, image[n:], nil, nil, unix.MSG_NOSIGNAL)
		n += m
	}
	if err != nil {
		return &SetupError{"send the command to the child", err}
	}
	return nil
}

// supervise reports the program's start, forwards seccomp violations,
// and reaps everything until the program has ended.
func (c *waitingChild) supervise(rep *reporter, argv0 string) error {
	sent := time.Now()
	var buf [8]byte
	n, _ := c.errR.Read(buf[:])
	if n != 0 {
		// Not EOF: the child failed before its exec. Put back what was read.
		return c.failure(buf[:n], argv0)
	}
	c.errR.Close()
	pid := c.pid
	started := time.Now()
	rep.send(message{Kind: msgStarted, WallNs: started.Sub(sent).Nanoseconds()})
	close(c.started)

	c.sock.Close()

	// Reap until the program ends. Orphans re-parented to us are reaped on
	// the way.
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
				break
			}
		}
		// Nothing of the step is left. The namespaces go with this init,
		// when the parent says (it closes the control socket, or kills
		// us): their teardown need not compete with the step's answer.
		var b [1]byte
		for {
			if n, err := unix.Read(fdControl, b[:]); n <= 0 && err != unix.EINTR {
				return nil
			}
		}
	}
}

// failure reads why the child ended before its exec (first: what of the
// report was read already), and reaps it.
func (c *waitingChild) failure(first []byte, argv0 string) error {
	var buf [8]byte
	n := copy(buf[:], first)
	for n < len(buf) {
		m, err := c.errR.Read(buf[n:])
		if err != nil {
			break
		}
		n += m
	}
	var ws unix.WaitStatus
	unix.Wait4(c.pid, &ws, 0, nil)
	if n != len(buf) {
		return &SetupError{"child", fmt.Errorf("ended without a report (%v)", ws)}
	}
	step, errno := readStepReport(&buf)
	if step == stepExec && isProgramExecErrno(errno) {
		return &ExecError{argv0, errno}
	}
	return &SetupError{step.String(), errno}
}

// rawFile is a blocking descriptor read and written with plain system
// calls, outside the runtime's poller.
type rawFile int

func (f rawFile) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(b) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (f rawFile) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		n, err := unix.Write(int(f), b[written:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return written, err
		}
		written += n
	}
	return written, nil
}

func (f rawFile) Close() error { return unix.Close(int(f)) }

// receiveMsg reads one message of one byte on sock, and the descriptors
// (up to max) sent with it: none when it carried no control message. n is
// 0 at EOF.
func receiveMsg(sock, max int) (b byte, n int, fds []int, err error) {
	var buf [1]byte
	oob := make([]byte, unix.CmsgSpace(4*max))
	for {
		var oobn int
		n, oobn, _, _, err = unix.Recvmsg(sock, buf[:], oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || oobn == 0 {
			return buf[0], n, nil, err
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil || len(msgs) != 1 {
			return buf[0], n, nil, fmt.Errorf("no control message (%v)", err)
		}
		fds, err = unix.ParseUnixRights(&msgs[0])
		return buf[0], n, fds, err
	}
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

// warmDecoder decodes a sample command while the sandbox waits: the JSON
// decoder studies a type on its first use, which took about 80 µs of the
// request's path (4 µs once studied).
func warmDecoder() {
	sample := runConfig{Command: Command{Argv: []string{"x"}, Env: []string{"X=y"}, Rlimits: []Rlimit{{}}, WorkspaceBytes: 1}}
	if b, err := json.Marshal(&sample); err == nil {
		json.Unmarshal(b, &runConfig{})
	}
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
