package cgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LockedError is Lock's answer when another process holds our subtree in
// some hierarchy: a daemon that runs on the same subtree.
type LockedError struct {
	Dir string // our subtree's directory in that hierarchy
	PID int    // the holder, as /proc/locks names it; 0 if unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s is locked by pid %d", e.Dir, e.PID)
	}
	return e.Dir + " is locked by another process"
}

// lockWait bounds how long Lock waits for a lock held only for a moment
// (Close removing an empty subtree) before it counts as taken.
const lockWait = 200 * time.Millisecond

// Lock takes an exclusive flock(2) on our subtree's directory in every
// hierarchy, held until Close, so that a process that Leftovers and
// Remove on the subtree (a daemon reclaiming a predecessor's sandboxes) has it
// to itself. Every hierarchy counts: on a hybrid host two processes in
// different v1 memory groups have subtrees of their own there but share
// those in the other hierarchies. It fails with a *LockedError when
// another process holds one; it then holds none.
func (m *Manager) Lock() error {
	for try := 1; ; try++ {
		err := m.lockOnce()
		if !errors.Is(err, errSubtreeGone) || try == 3 {
			return err
		}
		// Another process removed an empty subtree between our Open and
		// the lock: make it again, and lock the new directories.
		if err := m.makeSubtree(); err != nil {
			return err
		}
	}
}

var errSubtreeGone = errors.New("the subtree was removed meanwhile")

func (m *Manager) lockOnce() error {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	if len(m.locks) > 0 {
		return nil
	}
	var held []*os.File
	release := func() {
		for _, f := range held {
			f.Close()
		}
	}
	for _, h := range m.hierarchies() {
		f, err := m.k.openFile(h.dir, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			release()
			if isNotExist(err) {
				return errSubtreeGone
			}
			return fmt.Errorf("cgroup: lock %s: %w", h.dir, err)
		}
		held = append(held, f)
		if err := flockWithin(f, lockWait); err != nil {
			if err == unix.EWOULDBLOCK {
				err = &LockedError{Dir: h.dir, PID: flockHolder(f)}
			} else {
				err = fmt.Errorf("cgroup: lock %s: %w", h.dir, err)
			}
			release()
			return err
		}
		// The lock is on what we opened; that must still be the subtree.
		if !samePath(f, h.dir) {
			release()
			return errSubtreeGone
		}
	}
	m.locks = map[string]*os.File{}
	for i, h := range m.hierarchies() {
		m.locks[h.dir] = held[i]
	}
	return nil
}

// flockWithin takes an exclusive flock on f, trying again for up to wait.
func flockWithin(f *os.File, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := ignoringEINTR(func() error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) })
		if err != unix.EWOULDBLOCK || time.Now().After(deadline) {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// samePath says whether path still names the file f has open.
func samePath(f *os.File, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(int(f.Fd()), &a) == nil && unix.Stat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// flockHolder finds the pid holding a flock on f's file in /proc/locks
// ("1: FLOCK  ADVISORY  WRITE 1234 00:1f:5678 0 EOF"); 0 if none shows.
func flockHolder(f *os.File) int {
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return 0
	}
	b, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0
	}
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[1] == "FLOCK" && f[5] == want {
			if pid, err := strconv.Atoi(f[4]); err == nil && pid > 0 {
				return pid
			}
		}
	}
	return 0
}

// holdForRemoval makes sure nobody else holds dir while Close removes it:
// it is ours (Lock), or it is locked now, until done. ok is false when
// another process holds it: a daemon runs on it, and it stays.
//
// Preconditions: m.lockMu is held.
func (m *Manager) holdForRemoval(dir string) (done func(), ok bool) {
	if _, ours := m.locks[dir]; ours {
		return func() {}, true
	}
	f, err := m.k.openFile(dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		// Gone already: rmdir says so.
		return func() {}, true
	}
	if err := ignoringEINTR(func() error { return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) }); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}

// lockedByUs says whether this Manager holds its subtree (Lock).
func (m *Manager) lockedByUs() bool {
	m.lockMu.Lock()
	defer m.lockMu.Unlock()
	return len(m.locks) > 0
}

// subtreeDirs is our subtree's directory in every hierarchy.
func (m *Manager) subtreeDirs() []string {
	hs := m.hierarchies()
	dirs := make([]string, len(hs))
	for i, h := range hs {
		dirs[i] = h.dir
	}
	return dirs
}
