package nsjail

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
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
// with a pidfd; a deathNotice when it has reaped an init.

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

// deathNotice says the helper reaped an init.
type deathNotice struct {
	Dead   int    `json:"dead"`
	Status string `json:"status"`
}

// helperMessage is what the helper sends: a reply or a notice.
type helperMessage struct {
	spawnReply
	deathNotice
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
	f := os.NewFile(helperFD, "helper")
	c, err := net.FileConn(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandboxd-helper: %v\n", err)
		os.Exit(2)
	}
	f.Close()
	serveHelper(c.(*net.UnixConn), false)
	// The engine's process is gone; so are we, and the inits with us.
	os.Exit(0)
}

// serveHelper is the helper's loop: it answers spawn requests on conn
// until the client closes its end. The calling goroutine must be locked
// to its thread for good: every init is cloned from it, and their death
// signal follows the thread that made them. inProcess says the helper is
// a thread of the engine's process (HelperOptions.InProcess): it must
// then leave the rest of the process as it found it, and where the
// process helper would exit, it ends its thread instead (runtime.Goexit
// on a locked thread), which kills its inits as a helper's death does.
func serveHelper(conn *net.UnixConn, inProcess bool) {
	defer conn.Close()
	tmpl := templates{inProcess: inProcess}
	if tmpl.enableNamespaces() || !inProcess {
		// The file system context, umask included, is this thread's
		// own (or this process's, when it is a helper of its own).
		unix.Umask(0o022)
	}
	h := &helper{conn: conn, live: map[int]*liveInit{}, templates: tmpl, inProcess: inProcess}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	go h.reap(sig)
	buf := make([]byte, maxSpawnRequest+1) // one more: a longer one shows
	oob := make([]byte, unix.CmsgSpace(4*(maxInitFDs+1)))
	for {
		n, oobn, _, _, err := h.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return
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
		h.send(helperMessage{spawnReply: reply}, pidfd)
		if pidfd >= 0 {
			unix.Close(pidfd)
		}
	}
}

type helper struct {
	conn   *net.UnixConn
	sendMu sync.Mutex

	mu   sync.Mutex
	live map[int]*liveInit // what each init runs on, until it is reaped
	null *os.File

	templates templates // roots built ahead, for the main loop only
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

type liveInit struct {
	raw  *rawInit
	plan *initPlan
}

func (h *helper) send(m helperMessage, fd int) {
	b, _ := json.Marshal(m)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	if _, _, err := h.conn.WriteMsgUnix(b, oob, nil); err != nil {
		// The client is gone.
		if !h.inProcess {
			os.Exit(0)
		}
		h.conn.Close() // the main loop's read fails, and it returns
	}
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
	// The reaper waits while we hold mu: until the init is registered and
	// has its pidfd, its pid cannot be reaped and reused under us.
	h.mu.Lock()
	defer h.mu.Unlock()
	pid, err := startInit(is)
	if err != nil {
		// No init runs on these any more (startInit killed and reaped it).
		raw.program.release()
		if is.plan != nil {
			spawnBuffers.putStack(is.plan.stack)
		}
		return fail(err)
	}
	// Waited for by the reaper, by pid.
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		h.live[pid] = &liveInit{raw: raw, plan: is.plan}
		return fail(fmt.Errorf("pidfd_open: %w", err))
	}
	h.live[pid] = &liveInit{raw: raw, plan: is.plan}
	reply.PID = pid
	reply.Image = uint64(uintptr(unsafe.Pointer(&raw.program.image[0])))
	return reply, pidfd
}

// reap reaps the inits, and tells the client. It holds mu around each
// wait, so that no init is reaped while spawn still uses its pid. A helper
// of its own reaps any child (they are all inits); one in the engine's
// process reaps only its own inits, by pid, and leaves the process's other
// children to whoever waits for them.
func (h *helper) reap(sig <-chan os.Signal) {
	for range sig {
		for {
			var ws unix.WaitStatus
			h.mu.Lock()
			pid, err := h.wait(&ws)
			if pid > 0 {
				if l := h.live[pid]; l != nil {
					// pid 1 is gone, and with it every process of its
					// sandbox: nothing uses this memory any more.
					l.raw.program.release()
					if l.plan != nil {
						spawnBuffers.putStack(l.plan.stack)
					}
					delete(h.live, pid)
				}
			}
			h.mu.Unlock()
			if err == unix.EINTR {
				continue
			}
			if err != nil || pid <= 0 {
				break
			}
			h.send(helperMessage{deathNotice: deathNotice{Dead: pid, Status: waitStatusString(ws)}}, -1)
		}
	}
}

// wait reaps one ended init without blocking: its pid, or 0 when none has
// ended.
//
// Preconditions: h.mu is held.
func (h *helper) wait(ws *unix.WaitStatus) (int, error) {
	if !h.inProcess {
		return unix.Wait4(-1, ws, unix.WNOHANG, nil)
	}
	for pid := range h.live {
		got, err := unix.Wait4(pid, ws, unix.WNOHANG, nil)
		if got > 0 || err == unix.EINTR {
			return got, err
		}
	}
	return 0, nil
}

func waitStatusString(ws unix.WaitStatus) string {
	switch {
	case ws.Signaled():
		return "signal: " + unix.SignalName(ws.Signal())
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}
