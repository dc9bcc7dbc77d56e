package nsjail

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// This file is the helper's client, in the engine's process: it starts the
// helper (helper_linux.go), sends it spawn requests and reads its replies.

// spawnWait bounds the wait for the helper's answer to a spawn request; a
// late answer's init is killed. It answers within milliseconds, but a reply
// it could not address (never seen) would leave Prepare waiting for ever.
var spawnWait = 30 * time.Second

// helperClient is the engine's process's connection to one helper.
type helperClient struct {
	conn *net.UnixConn
	cmd  *exec.Cmd // nil: the helper is a thread of this process

	sendMu sync.Mutex
	sent   map[string]bool // Keys whose Spec went to the helper; under sendMu

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]chan helperResult
	live    int // inits it made whose end has not been seen (Process.watch)
	gone    error
	pidfd   int  // the helper process's, until gone is set; -1: none (a thread)
	retired bool // no longer chosen: its connection closes once nothing of it is left
}

type helperResult struct {
	reply spawnReply
	pidfd *os.File
	err   error
}

// HelperOptions say how the helpers that Prepare asks for sandboxes run.
// The zero value is one helper, a process of its own.
type HelperOptions struct {
	// Count is how many helpers Prepare spreads its sandboxes over: each
	// new sandbox goes to the one with the fewest requests in flight,
	// then the fewest live sandboxes. A helper clones its inits one after
	// another, so one helper caps how many sandboxes a host starts per
	// second; more helpers lift that cap on many CPUs. Each is started on
	// first use, and again after it dies. Zero or less: one.
	Count int
	// InProcess runs each helper as a thread of this process instead of
	// a process of its own: no copy of the helper's executable, no exec,
	// no second Go runtime, no round trip to another process. The inits
	// then share this process's memory rather than a small helper's, so
	// it suits a process that runs its own sandboxes and nothing else,
	// such as sandboxd exec; a daemon holding many jobs' data keeps its
	// helpers apart.
	InProcess bool
}

var helpers struct {
	mu    sync.Mutex
	opts  HelperOptions
	slots []*helperClient // len max(1, opts.Count); nil or ended: started on next use
	next  int             // where the next choice starts looking
}

// helperStarts runs helper starts on one thread that never ends: the
// helper's death signal follows the thread that started it.
var (
	helperStartsOnce sync.Once
	helperStarts     chan func()
)

// SetHelpers says how the helpers run from now on. Helpers already
// running that no longer fit (all of them when InProcess changes, those
// beyond Count otherwise) are no longer chosen; each serves its sandboxes
// to their end, and then ends.
func SetHelpers(o HelperOptions) {
	if o.Count < 1 {
		o.Count = 1
	}
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	if o == helpers.opts && len(helpers.slots) == o.Count {
		return
	}
	keep := 0
	if o.InProcess == helpers.opts.InProcess {
		keep = min(o.Count, len(helpers.slots))
	}
	for _, h := range helpers.slots[keep:] {
		if h != nil {
			h.retire()
		}
	}
	slots := make([]*helperClient, o.Count)
	copy(slots, helpers.slots[:keep])
	helpers.opts, helpers.slots = o, slots
}

// HelperPIDs lists the pids of the running helpers that are processes of
// their own, by slot (helpers that are threads of this process have none).
func HelperPIDs() []int {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	var pids []int
	for _, h := range helpers.slots {
		if h != nil && h.cmd != nil && !h.isGone() {
			pids = append(pids, h.cmd.Process.Pid)
		}
	}
	return pids
}

// chooseHelper is the helper a new sandbox goes to: the one with the
// fewest requests in flight, then the fewest live sandboxes, looking from
// where the last choice left off; a slot without a running helper gets
// one, started now.
func chooseHelper() (*helperClient, error) {
	helpers.mu.Lock()
	defer helpers.mu.Unlock()
	if len(helpers.slots) == 0 {
		helpers.opts.Count = 1
		helpers.slots = make([]*helperClient, 1)
	}
	n := len(helpers.slots)
	start := helpers.next % n
	helpers.next = start + 1
	best, bestPending, bestLive := -1, 0, 0
	for i := range n {
		j := (start + i) % n
		h := helpers.slots[j]
		if h == nil || h.isGone() {
			h, err := launchHelper(helpers.opts.InProcess)
			if err != nil {
				return nil, err
			}
			helpers.slots[j] = h
			return h, nil
		}
		pending, live := h.load()
		if best < 0 || pending < bestPending || pending == bestPending && live < bestLive {
			best, bestPending, bestLive = j, pending, live
		}
	}
	return helpers.slots[best], nil
}

// launchHelper starts a helper: a thread of this process, or a process
// started from a thread that never ends.
func launchHelper(inProcess bool) (*helperClient, error) {
	if inProcess {
		return startHelperThread()
	}
	helperStartsOnce.Do(func() {
		helperStarts = make(chan func())
		go func() {
			runtime.LockOSThread()
			for f := range helperStarts {
				f()
			}
		}()
	})
	var h *helperClient
	var err error
	done := make(chan struct{})
	helperStarts <- func() {
		h, err = startHelper()
		close(done)
	}
	<-done
	return h, err
}

func startHelper() (*helperClient, error) {
	exe, err := helperPath()
	if err != nil {
		return nil, &SetupError{step: stepHelperExecutable, Err: err}
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
		Args:        []string{helperArg0},
		Env:         []string{"GOMAXPROCS=1"},
		ExtraFiles:  []*os.File{theirs},
		Stderr:      os.Stderr,
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, &SetupError{step: stepStartHelper, Err: err}
	}
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, err
	}
	h := newHelperClient(c.(*net.UnixConn), cmd)
	go h.read()
	return h, nil
}

// startHelperThread starts a helper as a thread of this process
// (HelperOptions.InProcess): serveHelper on a goroutine locked to its
// thread for good, over a socket pair as a helper process would be.
func startHelperThread() (*helperClient, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	f := os.NewFile(uintptr(pair[0]), "helper")
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(pair[1])
		return nil, fmt.Errorf("helper socket: %w", err)
	}
	go func() {
		// Never unlocked: the thread ends with the helper (see serveHelper).
		runtime.LockOSThread()
		serveHelper(pair[1], true)
	}()
	h := newHelperClient(c.(*net.UnixConn), nil)
	go h.read()
	return h, nil
}

func newHelperClient(c *net.UnixConn, cmd *exec.Cmd) *helperClient {
	h := &helperClient{conn: c, cmd: cmd, pending: map[uint64]chan helperResult{}, pidfd: -1}
	if cmd != nil {
		if fd, err := unix.PidfdOpen(cmd.Process.Pid, 0); err == nil {
			h.pidfd = fd
		}
	}
	return h
}

// load is how many requests wait for the helper's answer, and how many of
// its inits are not known to be dead.
func (h *helperClient) load() (pending, live int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.pending), h.live
}

// retire takes the helper out of the choice: its connection closes, and
// the helper ends, once it has no request in flight and no live init.
func (h *helperClient) retire() {
	h.mu.Lock()
	h.retired = true
	h.closeIfIdle()
	h.mu.Unlock()
}

// closeIfIdle closes a retired helper's connection once nothing of it is
// left: the helper sees it and ends.
//
// Preconditions: h.mu is held.
func (h *helperClient) closeIfIdle() {
	if h.retired && h.gone == nil && len(h.pending) == 0 && h.live == 0 {
		h.conn.CloseWrite()
	}
}

func (h *helperClient) read() {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	var err error
	for {
		var n, oobn int
		n, oobn, _, _, err = h.conn.ReadMsgUnix(buf, oob)
		if err == nil && n == 0 {
			err = errors.New("the helper closed its socket")
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
		var m spawnReply
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			if pidfd != nil {
				pidfd.Close()
			}
			continue
		}
		h.mu.Lock()
		ch := h.pending[m.ID]
		delete(h.pending, m.ID)
		h.mu.Unlock()
		if ch == nil {
			if pidfd != nil {
				// Nobody waits for this init any more (see spawnWait):
				// it would wait for a command for ever.
				withFD(pidfd, func(fd int) { unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0) })
				pidfd.Close()
			}
			continue
		}
		ch <- helperResult{reply: m, pidfd: pidfd}
	}
	// The helper is gone, and every init with it (their death signal).
	h.conn.Close()
	status := "the helper ended"
	if h.cmd != nil {
		h.cmd.Process.Kill()
		if st, werr := h.cmd.Process.Wait(); werr == nil {
			status = "the helper ended: " + st.String()
		}
	}
	h.mu.Lock()
	h.gone = fmt.Errorf("%s (%v)", status, err)
	if h.pidfd >= 0 {
		unix.Close(h.pidfd)
		h.pidfd = -1
	}
	for id, ch := range h.pending {
		ch <- helperResult{err: h.gone}
		delete(h.pending, id)
	}
	h.mu.Unlock()
}

// isGone tells whether the helper is gone.
//
// A helper process that has ended is gone even before read has seen its
// socket close: its inits die with it (some may not have yet), and one
// may be seen dead first.
func (h *helperClient) isGone() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.goneLocked() != nil
}

// goneLocked is why the helper is gone, or nil.
//
// Preconditions: h.mu is held.
func (h *helperClient) goneLocked() error {
	if h.gone == nil && h.pidfd >= 0 {
		pfd := []unix.PollFd{{Fd: int32(h.pidfd), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 0); err == nil && n > 0 {
			return errors.New("the helper ended")
		}
	}
	return h.gone
}

// spawn asks the helper for an init; it returns the init's pid, a pidfd
// (non-blocking: it polls readable once the init has ended), and where
// the program's image goes. The init counts as live until ended is called.
func (h *helperClient) spawn(req *spawnRequest, files []*os.File) (spawnReply, *os.File, error) {
	r := h.ask(req, files, false)
	if r.err == nil && r.reply.Error == errUnknownKey && req.Key != "" {
		// The helper forgot this Key's Spec (it keeps a few): send it.
		r = h.ask(req, files, true)
	}
	if r.err != nil || r.reply.Error != "" || r.pidfd == nil {
		h.mu.Lock()
		h.closeIfIdle()
		h.mu.Unlock()
	}
	if r.err != nil {
		return spawnReply{}, nil, r.err
	}
	if r.reply.Error != "" || r.pidfd == nil {
		if r.pidfd != nil {
			r.pidfd.Close()
		}
		if r.reply.Error == "" {
			r.reply.Error = "no pidfd with the reply"
		}
		return spawnReply{}, nil, errors.New(r.reply.Error)
	}
	h.mu.Lock()
	h.live++
	h.mu.Unlock()
	return r.reply, r.pidfd, nil
}

// ended says that an init spawn gave has ended.
func (h *helperClient) ended() {
	h.mu.Lock()
	h.live--
	h.closeIfIdle()
	h.mu.Unlock()
}

// helperDeathWait bounds how long an init that died without a report
// waits to be told whether its helper's death was the cause: the inits
// die as the helper's first thread ends, a little before the helper has.
const helperDeathWait = 100 * time.Millisecond

// goneErr says why the helper is gone; nil while it runs, after looking
// for up to wait. A helper process that has ended counts as gone even
// before read has seen its socket close.
func (h *helperClient) goneErr(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		h.mu.Lock()
		gone := h.goneLocked()
		h.mu.Unlock()
		if gone != nil || !time.Now().Before(deadline) {
			return gone
		}
		time.Sleep(2 * time.Millisecond)
	}
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
			err = fmt.Errorf("send to the helper: %w", err)
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
			return helperResult{err: fmt.Errorf("the helper did not answer within %v", spawnWait)}
		}
		return <-ch // read took it already: it comes at once
	}
}
