package nsjail

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The sandboxes' inits are not programs of their own: each is a process
// cloned, sharing memory, from one small helper process, running
// rawInitMain on what the helper laid out for it. The helper holds nothing
// but those layouts: no job's files or output ever pass through it, and
// it is what a sandbox's pid 1 shares memory with, never the daemon. It
// is the init executable run once (initArg0), started on the first
// Prepare, and talks with the daemon over a SOCK_SEQPACKET socket on its
// descriptor 3: a spawnRequest with the init's descriptors, answered by a
// spawnReply with a pidfd; a deathNotice when it has reaped an init.

// spawnRequest asks the helper for a sandbox init. Its descriptors:
// fdSpec's, fdReport's and fdControl's ends for the init, the join files,
// the program's cgroup directory when Program is set, then the supervisor
// cgroup directory when Supervisor is set.
//
// Spec is nil when Key names a Spec the helper was sent before; the
// helper keeps at most maxKeyedSpecs of them, and answers errUnknownKey for
// one it no longer has. HostUID and HostGID are the sandbox's own, with
// either.
type spawnRequest struct {
	ID         uint64 `json:"id"`
	Spec       *Spec  `json:"spec,omitempty"`
	Key        string `json:"key,omitempty"`
	HostUID    uint32 `json:"host_uid"`
	HostGID    uint32 `json:"host_gid"`
	JoinFiles  int    `json:"join_files"`
	Program    bool   `json:"program,omitempty"`
	Supervisor bool   `json:"supervisor"`
}

// maxKeyedSpecs bounds the Specs the helper keeps by Key; more, and it
// forgets them all.
const maxKeyedSpecs = 64

// errUnknownKey is the helper's answer to a Key it does not have: the
// daemon sends the whole Spec again.
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

const helperFD = 3

// maxSpawnRequest bounds a spawnRequest as JSON (the Spec, mostly): the
// helper reads each into a buffer of this size, and one message of a
// SOCK_SEQPACKET socket must fit the socket's send buffer.
const maxSpawnRequest = 128 << 10

// spawnWait bounds the wait for the helper's answer to a spawn request; a
// late answer's init is killed. It answers within milliseconds, but a reply
// it could not address (never seen) would leave Prepare waiting for ever.
var spawnWait = 30 * time.Second

// Init runs the helper: it never returns. Programs that use Prepare call
// it first thing in main when IsInit says so.
func Init() {
	// Every init is cloned from this thread, which never ends: their death
	// signal follows the thread that made them.
	runtime.LockOSThread()
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("sandboxd-init\x00")[0])), 0, 0, 0)
	var tmpl templates
	tmpl.enableNamespaces()
	unix.Umask(0o022)
	f := os.NewFile(helperFD, "helper")
	c, err := net.FileConn(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandboxd-init: %v\n", err)
		os.Exit(2)
	}
	f.Close()
	h := &helper{conn: c.(*net.UnixConn), live: map[int]*liveInit{}, templates: tmpl}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	go h.reap(sig)
	buf := make([]byte, maxSpawnRequest+1) // one more: a longer one shows
	oob := make([]byte, unix.CmsgSpace(4*(maxInitFDs+1)))
	for {
		n, oobn, _, _, err := h.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			// The daemon is gone; so are we, and the inits with us.
			os.Exit(0)
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
}

// keyedSpec is a Spec the daemon named with a Key, and its template key.
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
		os.Exit(0)
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
	if req.Supervisor {
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
	var supervisor *os.File
	if req.Supervisor {
		supervisor = fds[len(fds)-1]
	}
	is := &initSpawn{
		files: files,
		flags: unix.CLONE_NEWUSER | unix.CLONE_NEWPID | unix.CLONE_NEWNS |
			unix.CLONE_NEWNET | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC,
		cgroup: supervisor,
		// The init is root of its user namespace (every capability
		// there, none outside), mapped to InitUID; the program runs as
		// SandboxUID, mapped to HostUID.
		uidMap: idMap([3]uint32{0, spec.InitUID, 1}, [3]uint32{SandboxUID, spec.HostUID, 1}),
		gidMap: idMap([3]uint32{0, spec.InitGID, 1}, [3]uint32{SandboxGID, spec.HostGID, 1}),
		raw:    raw,
	}
	if ns >= 0 {
		is.ns = &nsSwitch{enter: ns, back: h.templates.hostNS}
	}
	// The reaper waits while we hold mu: until the init is registered and
	// has its pidfd, its pid cannot be reaped and reused under us.
	h.mu.Lock()
	defer h.mu.Unlock()
	proc, err := startInit(is)
	if err != nil {
		// No init runs on these any more (startInit killed and reaped it).
		raw.child.release()
		if is.plan != nil {
			spawnBuffers.putStack(is.plan.stack)
		}
		return fail(err)
	}
	pid := proc.Pid
	// Waited for by the reaper, by pid: the handle's own pidfd would stay
	// open until the handle is collected. (Release also sets proc.Pid to
	// -1: only pid is used from here on.)
	proc.Release()
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		unix.Kill(pid, unix.SIGKILL)
		h.live[pid] = &liveInit{raw: raw, plan: is.plan}
		return fail(fmt.Errorf("pidfd_open: %w", err))
	}
	h.live[pid] = &liveInit{raw: raw, plan: is.plan}
	reply.PID = pid
	reply.Image = uint64(uintptr(unsafe.Pointer(&raw.child.image[0])))
	return reply, pidfd
}

// reap reaps the inits, and tells the daemon. It holds mu around each
// wait, so that no init is reaped while spawn still uses its pid.
func (h *helper) reap(sig <-chan os.Signal) {
	for range sig {
		for {
			var ws unix.WaitStatus
			h.mu.Lock()
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if pid > 0 {
				if l := h.live[pid]; l != nil {
					// pid 1 is gone, and with it every process of its
					// sandbox: nothing uses this memory any more.
					l.raw.child.release()
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

func waitStatusString(ws unix.WaitStatus) string {
	switch {
	case ws.Signaled():
		return "signal: " + unix.SignalName(ws.Signal())
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	}
	return fmt.Sprintf("wait status %#x", uint32(ws))
}

// The daemon's side.

// helperClient is the daemon's connection to its helper.
type helperClient struct {
	conn *net.UnixConn
	cmd  *exec.Cmd

	sendMu sync.Mutex
	sent   map[string]bool // Keys whose Spec went to the helper; under sendMu

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan helperResult
	dead    map[int]chan string // an init's death notice, by pid
	early   map[int]string      // notices that came before their reply was read
	gone    error
}

type helperResult struct {
	reply spawnReply
	pidfd *os.File
	err   error
}

var (
	helperMu  sync.Mutex
	theHelper *helperClient
	// helperStarts runs helper starts on one thread that never ends: the
	// helper's death signal follows the thread that started it.
	helperStarts chan func()
)

// currentHelper is the running helper, started if there is none (or the
// last one died).
func currentHelper() (*helperClient, error) {
	helperMu.Lock()
	defer helperMu.Unlock()
	if theHelper != nil {
		theHelper.mu.Lock()
		gone := theHelper.gone
		theHelper.mu.Unlock()
		if gone == nil {
			return theHelper, nil
		}
	}
	if helperStarts == nil {
		helperStarts = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range helperStarts {
				f()
			}
		}()
	}
	var h *helperClient
	var err error
	done := make(chan struct{})
	helperStarts <- func() {
		h, err = startHelper()
		close(done)
	}
	<-done
	if err != nil {
		return nil, err
	}
	theHelper = h
	return h, nil
}

func startHelper() (*helperClient, error) {
	exe, err := initPath()
	if err != nil {
		return nil, &SetupError{"init executable", err}
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	ours := os.NewFile(uintptr(pair[0]), "helper")
	theirs := os.NewFile(uintptr(pair[1]), "helper")
	defer theirs.Close()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        []string{initArg0},
		Env:         []string{"GOMAXPROCS=1"},
		ExtraFiles:  []*os.File{theirs},
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, &SetupError{"start the init helper", err}
	}
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	h := &helperClient{conn: c.(*net.UnixConn), cmd: cmd, pending: map[uint64]chan helperResult{}, dead: map[int]chan string{}, early: map[int]string{}}
	go h.read()
	return h, nil
}

func (h *helperClient) read() {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	var err error
	for {
		var n, oobn int
		n, oobn, _, _, err = h.conn.ReadMsgUnix(buf, oob)
		if err == nil && n == 0 {
			err = errors.New("the init helper closed its socket")
		}
		if err != nil {
			break
		}
		var pidfd *os.File
		if oobn > 0 {
			if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil && len(msgs) == 1 {
				if fds, err := unix.ParseUnixRights(&msgs[0]); err == nil && len(fds) == 1 {
					pidfd = os.NewFile(uintptr(fds[0]), "pidfd")
				}
			}
		}
		var m helperMessage
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			if pidfd != nil {
				pidfd.Close()
			}
			continue
		}
		h.mu.Lock()
		if m.Dead != 0 {
			if ch, ok := h.dead[m.Dead]; ok {
				delete(h.dead, m.Dead)
				ch <- m.Status
			} else {
				h.early[m.Dead] = m.Status
			}
			h.mu.Unlock()
			continue
		}
		ch := h.pending[m.ID]
		delete(h.pending, m.ID)
		h.mu.Unlock()
		if ch == nil {
			if pidfd != nil {
				// Nobody waits for this init any more (see spawnWait):
				// it would wait for a command for ever.
				unix.PidfdSendSignal(int(pidfd.Fd()), unix.SIGKILL, nil, 0)
				pidfd.Close()
			}
			continue
		}
		ch <- helperResult{reply: m.spawnReply, pidfd: pidfd}
	}
	// The helper is gone, and every init with it (their death signal).
	h.conn.Close()
	h.cmd.Process.Kill()
	status := "the init helper ended"
	if st, werr := h.cmd.Process.Wait(); werr == nil {
		status = "the init helper ended: " + st.String()
	}
	h.mu.Lock()
	h.gone = fmt.Errorf("%s (%v)", status, err)
	for id, ch := range h.pending {
		ch <- helperResult{err: h.gone}
		delete(h.pending, id)
	}
	for pid, ch := range h.dead {
		ch <- status
		delete(h.dead, pid)
	}
	h.mu.Unlock()
}

// ended tells whether the helper is gone.
func (h *helperClient) ended() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.gone != nil
}

// spawn asks the helper for an init; it returns the init's pid, a pidfd,
// where the program's image goes, and a channel that gets the init's end.
func (h *helperClient) spawn(req *spawnRequest, files []*os.File) (spawnReply, *os.File, <-chan string, error) {
	r := h.ask(req, files, false)
	if r.err == nil && r.reply.Error == errUnknownKey && req.Key != "" {
		// The helper forgot this Key's Spec (it keeps a few): send it.
		r = h.ask(req, files, true)
	}
	if r.err != nil {
		return spawnReply{}, nil, nil, r.err
	}
	if r.reply.Error != "" || r.pidfd == nil {
		if r.pidfd != nil {
			r.pidfd.Close()
		}
		if r.reply.Error == "" {
			r.reply.Error = "no pidfd with the reply"
		}
		return spawnReply{}, nil, nil, errors.New(r.reply.Error)
	}
	dead := make(chan string, 1)
	h.mu.Lock()
	if st, ok := h.early[r.reply.PID]; ok {
		delete(h.early, r.reply.PID)
		dead <- st
	} else if h.gone != nil {
		dead <- h.gone.Error()
	} else {
		h.dead[r.reply.PID] = dead
	}
	h.mu.Unlock()
	return r.reply, r.pidfd, dead, nil
}

// ask sends req to the helper and waits for its answer. The Spec goes
// along when whole is set or the helper has not had req's Key yet; else
// only the Key.
func (h *helperClient) ask(req *spawnRequest, files []*os.File, whole bool) helperResult {
	ch := make(chan helperResult, 1)
	h.mu.Lock()
	if h.gone != nil {
		h.mu.Unlock()
		return helperResult{err: h.gone}
	}
	h.nextID++
	req.ID = h.nextID
	h.pending[req.ID] = ch
	h.mu.Unlock()
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	h.sendMu.Lock()
	spec := req.Spec
	byKey := !whole && req.Key != "" && h.sent[req.Key]
	if byKey {
		req.Spec = nil
	}
	b, err := json.Marshal(req)
	req.Spec = spec
	if err == nil && len(b) > maxSpawnRequest {
		err = fmt.Errorf("sandbox spec: %d bytes as JSON, at most %d (its files and mounts)", len(b), maxSpawnRequest)
	}
	if err == nil {
		// The helper reads requests in order: one sent after this one
		// finds the Spec there.
		if _, _, err = h.conn.WriteMsgUnix(b, unix.UnixRights(fds...), nil); err != nil {
			err = fmt.Errorf("send to the init helper: %w", err)
		} else if !byKey && req.Key != "" {
			if h.sent == nil {
				h.sent = map[string]bool{}
			}
			h.sent[req.Key] = true
		}
	}
	h.sendMu.Unlock()
	runtime.KeepAlive(files)
	if err != nil {
		h.mu.Lock()
		delete(h.pending, req.ID)
		h.mu.Unlock()
		return helperResult{err: err}
	}
	t := time.NewTimer(spawnWait)
	defer t.Stop()
	select {
	case r := <-ch:
		return r
	case <-t.C:
		h.mu.Lock()
		_, waiting := h.pending[req.ID]
		delete(h.pending, req.ID)
		h.mu.Unlock()
		if waiting {
			return helperResult{err: fmt.Errorf("the init helper did not answer within %v", spawnWait)}
		}
		return <-ch // read took it already: it comes at once
	}
}
