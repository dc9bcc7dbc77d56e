package nsjail

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the helper process. The sandboxes' inits are not programs
// of their own: each is a CLONE_VM clone of the helper, running
// rawInitMain on what the helper laid out for it. The helper holds nothing
// but those layouts: no job's files or output ever pass through it, and
// it is what a sandbox's init shares memory with, never the engine's
// process. It is started on the first Prepare (helperclient_linux.go) and
// talks with that process over a SOCK_SEQPACKET socket on its descriptor
// 3: a spawnRequest with the init's descriptors, answered by a spawnReply
// with a pidfd of the init, whose end the client sees on it.

// helperArg0 marks a re-executed binary as the helper.
const helperArg0 = "sandboxd-helper"

// IsHelper reports whether this process was started by Prepare as the
// helper. Programs that use Prepare call it first thing in main:
//
//	if nsjail.IsHelper() { nsjail.HelperMain() }
func IsHelper() bool { return len(os.Args) > 0 && os.Args[0] == helperArg0 }

// spawnRequest asks the helper for a sandbox's init. Its descriptors:
// fdCommand's, fdReport's and fdControl's ends for the init, the join
// files, the program's cgroup directory when Program is set, then the
// init's cgroup directory when Init is set.
//
// Spec is nil when Key names a Spec the helper was sent before; the
// helper keeps at most maxKeyedSpecs of them, and answers errUnknownKey for
// one it no longer has. HostUID and HostGID are the sandbox's own, with
// either.
type spawnRequest struct {
	ID        uint64 `json:"id"`
	Spec      *Spec  `json:"spec,omitempty"`
	Key       string `json:"key,omitempty"`
	HostUID   uint32 `json:"host_uid"`
	HostGID   uint32 `json:"host_gid"`
	JoinFiles int    `json:"join_files"`
	Program   bool   `json:"program,omitempty"`
	Init      bool   `json:"init"`
}

// maxKeyedSpecs bounds the Specs the helper keeps by Key; more, and it
// forgets them all.
const maxKeyedSpecs = 64

// errUnknownKey is the helper's answer to a Key it does not have: the
// client sends the whole Spec again.
const errUnknownKey = "unknown spec key"

// spawnReply answers a spawnRequest; with a pidfd of the init when it runs.
type spawnReply struct {
	ID    uint64 `json:"id"`
	PID   int    `json:"pid,omitempty"`
	Image uint64 `json:"image,omitempty"` // where the program's image goes, in the init's memory
	Error string `json:"error,omitempty"`
}

// helperFD is the helper's end of its socket.
const helperFD = 3

// maxSpawnRequest bounds a spawnRequest as JSON (the Spec, mostly): the
// helper reads each into a buffer of this size, and one message of a
// SOCK_SEQPACKET socket must fit the socket's send buffer.
const maxSpawnRequest = 128 << 10

// HelperMain runs the helper: it never returns. Programs that use Prepare
// call it first thing in main when IsHelper says so.
func HelperMain() {
	// Every init is cloned from this thread, which never ends: their death
	// signal follows the thread that made them.
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte(helperArg0 + "\x00")[0])), 0, 0, 0)
	serveHelper(helperFD, false)
	// The engine's process is gone; so are we, and the inits with us.
	os.Exit(0)
}

// serveHelper is the helper's loop: it answers spawn requests on the
// socket sock until the client closes its end, and reaps the inits it
// made, on one thread. The calling goroutine must be locked to its thread
// for good: every init is cloned from it, and their death signal follows
// the thread that made them. inProcess says the helper is a thread of the
// engine's process (HelperOptions.InProcess): it must then leave the rest
// of the process as it found it, and where the process helper would exit,
// it ends its thread instead (runtime.Goexit on a locked thread), which
// kills its inits as a helper's death does.
//
// One ppoll waits for both: a request on the socket, and the end of any
// live init (its pidfd turns readable). The inits are cloned without an
// exit signal, so no SIGCHLD reaches this process's signal handlers.
func serveHelper(sock int, inProcess bool) {
	tmpl := templates{inProcess: inProcess}
	if tmpl.enableNamespaces() || !inProcess {
		// The file system context, umask included, is this thread's
		// own (or this process's, when it is a helper of its own).
		unix.Umask(0o022)
	}
	h := &helper{sock: sock, live: map[int]*liveInit{}, templates: tmpl, inProcess: inProcess}
	defer h.end()
	buf := make([]byte, maxSpawnRequest+1) // one more: a longer one shows
	oob := make([]byte, unix.CmsgSpace(4*(maxInitFDs+1)))
	var fds []unix.PollFd
	var pids []int
	for {
		fds = append(fds[:0], unix.PollFd{Fd: int32(sock), Events: unix.POLLIN})
		pids = pids[:0]
		for pid, l := range h.live {
			fds = append(fds, unix.PollFd{Fd: int32(l.pidfd), Events: unix.POLLIN})
			pids = append(pids, pid)
		}
		if _, err := unix.Ppoll(fds, nil, nil); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		for i, pid := range pids {
			if fds[i+1].Revents != 0 {
				h.reap(pid)
			}
		}
		if fds[0].Revents == 0 {
			continue
		}
		if !h.serveRequest(buf, oob) {
			return
		}
	}
}

// serveRequest answers one spawn request; false when the client is gone.
func (h *helper) serveRequest(buf, oob []byte) bool {
	n, oobn, _, _, err := unix.Recvmsg(h.sock, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err == unix.EAGAIN || err == unix.EINTR {
		return true
	}
	if err != nil || n == 0 {
		return false
	}
	var fds []int
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			got, _ := unix.ParseUnixRights(&msgs[i])
			fds = append(fds, got...)
		}
	}
	// Ours until the reply: files, so that nothing else closes their
	// numbers (an *os.File closes its descriptor when collected).
	files := make([]*os.File, len(fds))
	for i, fd := range fds {
		files[i] = os.NewFile(uintptr(fd), "")
	}
	var reply spawnReply
	pidfd := -1
	var req spawnRequest
	if err := json.Unmarshal(buf[:n], &req); err != nil {
		reply.Error = "bad request: " + err.Error()
	} else if spec, tmplKey, ok := h.specOf(&req); !ok {
		reply = spawnReply{ID: req.ID, Error: errUnknownKey}
	} else {
		reply, pidfd = h.spawn(&req, spec, tmplKey, files)
	}
	for _, f := range files {
		f.Close()
	}
	// The pidfd stays the helper's (the init's entry in live): the
	// client gets a copy of it.
	return h.send(reply, pidfd)
}

type helper struct {
	sock int // the socket to the client

	live map[int]*liveInit // what each init runs on, until it is reaped
	null *os.File

	templates templates // roots built ahead
	specs     map[string]*keyedSpec

	inProcess bool // a thread of the engine's process (serveHelper)
}

// keyedSpec is a Spec the client named with a Key, and its template key.
type keyedSpec struct {
	spec    *Spec
	tmplKey string
}

// specOf is the request's Spec, for its sandbox's host ids, and the
// Spec's template key; false when it names a Spec by a Key the helper does
// not have.
func (h *helper) specOf(req *spawnRequest) (*Spec, string, bool) {
	var ks *keyedSpec
	switch {
	case req.Spec != nil:
		ks = &keyedSpec{spec: req.Spec, tmplKey: templateKey(req.Spec)}
		if req.Key != "" {
			if len(h.specs) >= maxKeyedSpecs {
				clear(h.specs)
			}
			if h.specs == nil {
				h.specs = map[string]*keyedSpec{}
			}
			h.specs[req.Key] = ks
		}
	case req.Key != "":
		if ks = h.specs[req.Key]; ks == nil {
			return nil, "", false
		}
	default:
		return nil, "", false
	}
	// The kept Spec's slices and maps are shared, and never written.
	spec := *ks.spec
	spec.HostUID, spec.HostGID = req.HostUID, req.HostGID
	return &spec, ks.tmplKey, true
}

// liveInit is an init that has not been reaped: what it runs on, and the
// helper's pidfd of it.
type liveInit struct {
	raw   *rawInit
	plan  *initPlan
	pidfd int
}

// send writes m to the client, with fd if it is not -1; false when the
// client is gone. A helper of its own then exits.
func (h *helper) send(m spawnReply, fd int) bool {
	b, _ := json.Marshal(m)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	for {
		err := unix.Sendmsg(h.sock, b, oob, nil, unix.MSG_NOSIGNAL)
		if err == unix.EINTR {
			continue
		}
		if err == nil {
			return true
		}
		break
	}
	if !h.inProcess {
		os.Exit(0)
	}
	return false
}

func (h *helper) spawn(req *spawnRequest, spec *Spec, tmplKey string, fds []*os.File) (spawnReply, int) {
	reply := spawnReply{ID: req.ID}
	fail := func(err error) (spawnReply, int) {
		reply.Error = err.Error()
		return reply, -1
	}
	want := 3 + req.JoinFiles
	if req.Program {
		want++
	}
	if req.Init {
		want++
	}
	if len(fds) != want || req.JoinFiles < 0 {
		return fail(fmt.Errorf("%d descriptors, want %d", len(fds), want))
	}
	if h.null == nil {
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return fail(err)
		}
		h.null = null
	}
	files := append([]*os.File{h.null, h.null, h.null}, fds[:3+req.JoinFiles]...)
	program := -1
	if req.Program {
		files = append(files, fds[3+req.JoinFiles])
		program = len(files) - 1
	}
	ns, tree := h.templates.root(spec, tmplKey)
	if tree >= 0 {
		// The init's copy of the root, after the cgroup files.
		f := os.NewFile(uintptr(tree), "root")
		defer f.Close()
		files = append(files, f)
		tree = len(files) - 1
	}
	raw, err := newRawInit(spec, req.JoinFiles, program, tree, ns >= 0)
	if err != nil {
		return fail(err)
	}
	var initDir *os.File
	if req.Init {
		initDir = fds[len(fds)-1]
	}
	is := &initSpawn{
		files: files,
		flags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS |
			unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		cgroup: initDir,
		// The init is root of its user namespace (every capability
		// there, none outside), mapped to InitUID; the program runs as
		// SandboxUID, mapped to HostUID.
		uidMap: idMap([3]uint32{0, spec.InitUID, 1}, [3]uint32{SandboxUID, spec.HostUID, 1}),
		gidMap: idMap([3]uint32{0, spec.InitGID, 1}, [3]uint32{SandboxGID, spec.HostGID, 1}),
		raw:    raw,
	}
	if ns >= 0 {
		is.ns = &nsSwitch{enter: ns, back: h.templates.hostNS, stuck: h.templates.stuck}
	}
	// The init is reaped only on this thread, after this: its pid cannot
	// be reused under us.
	pid, err := startInit(is)
	if err != nil {
		// No init runs on these any more (startInit killed and reaped it).
		raw.program.release()
		if is.plan != nil {
			spawnBuffers.putStack(is.plan.stack)
		}
		return fail(err)
	}
	// Non-blocking: the client waits for the init's end on its copy
	// through its poller.
	pidfd, err := unix.PidfdOpen(pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		// Reaped by pid, as startInit does on failure.
		unix.Kill(pid, unix.SIGKILL)
		for {
			if _, werr := unix.Wait4(pid, nil, unix.WALL, nil); werr != unix.EINTR {
				break
			}
		}
		raw.program.release()
		spawnBuffers.putStack(is.plan.stack)
		return fail(fmt.Errorf("pidfd_open: %w", err))
	}
	h.live[pid] = &liveInit{raw: raw, plan: is.plan, pidfd: pidfd}
	reply.PID = pid
	reply.Image = uint64(uintptr(unsafe.Pointer(&raw.program.image[0])))
	return reply, pidfd
}

// reap reaps the init pid if it has ended, and gives back what it ran on.
// The client learns of the end from its own copy of the pidfd: no message.
func (h *helper) reap(pid int) {
	l := h.live[pid]
	if l == nil {
		return
	}
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PIDFD, l.pidfd, &info, unix.WEXITED|unix.WNOHANG|unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err == nil && siginfoPID(&info) == 0 {
			return // not ended yet
		}
		// Reaped; or not ours to wait for (cannot happen): stop
		// watching it rather than spin.
		break
	}
	h.forget(pid, l)
}

// forget drops the reaped init pid: pid 1 is gone, and with it every
// process of its sandbox, so nothing uses its memory any more.
func (h *helper) forget(pid int, l *liveInit) {
	l.raw.program.release()
	if l.plan != nil {
		spawnBuffers.putStack(l.plan.stack)
	}
	unix.Close(l.pidfd)
	delete(h.live, pid)
}

// end is the end of a helper's loop. A helper of its own exits next, and
// its inits die with it; one in the engine's process kills and reaps its
// inits first, which run on this process's memory, and closes its socket.
func (h *helper) end() {
	if !h.inProcess {
		return
	}
	for pid, l := range h.live {
		unix.PidfdSendSignal(l.pidfd, unix.SIGKILL, nil, 0)
		fds := []unix.PollFd{{Fd: int32(l.pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Ppoll(fds, nil, nil); err != unix.EINTR {
				break
			}
		}
		var info unix.Siginfo
		for {
			if err := unix.Waitid(unix.P_PIDFD, l.pidfd, &info, unix.WEXITED|unix.WNOHANG|unix.WALL, nil); err != unix.EINTR {
				break
			}
		}
		h.forget(pid, l)
	}
	unix.Close(h.sock)
}

func siginfoPID(info *unix.Siginfo) int32 {
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), siPID))
}
