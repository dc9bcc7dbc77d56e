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
// helper (helper_linux.go), sends it spawn requests and reads its replies
// and death notices.

// spawnWait bounds the wait for the helper's answer to a spawn request; a
// late answer's init is killed. It answers within milliseconds, but a reply
// it could not address (never seen) would leave Prepare waiting for ever.
var spawnWait = 30 * time.Second

// helperClient is the engine's process's connection to its helper.
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
	status := "the helper ended"
	if st, werr := h.cmd.Process.Wait(); werr == nil {
		status = "the helper ended: " + st.String()
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
