package engine

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// idPool hands out host uids (gid = uid) so that no two live sandboxes
// share one, across every sandboxd process on the host whatever its state
// dir or uid range: uid N is a one-byte open-file-description lock at
// offset N of one host-wide file, which the kernel releases when the
// holder dies.
type idPool struct {
	base, count uint32
	f           *os.File

	mu   sync.Mutex // guards used and next
	used []bool
	next uint32
}

// uidLockFile is the host-wide file whose byte locks are the sandbox uids
// in use. /run is cleared at boot, when no sandbox runs.
const uidLockFile = "/run/sandboxd-uids.lock"

func newIDPool(lockFile string, base, count uint32) (*idPool, error) {
	if base == 0 || count == 0 || uint64(base)+uint64(count) > 1<<32-2 {
		return nil, fmt.Errorf("uid range %d+%d: must be non-zero and below 2^32-2", base, count)
	}
	f, err := os.OpenFile(lockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open id lock file: %w", err)
	}
	return &idPool{base: base, count: count, f: f, used: make([]bool, count), next: uint32(os.Getpid()) % count}, nil
}

var errNoID = errors.New("every sandbox uid in the configured range is in use")

// acquire reserves an id; release gives it back.
func (p *idPool) acquire() (uint32, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for n := uint32(0); n < p.count; n++ {
		i := (p.next + n) % p.count
		if p.used[i] {
			continue
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: int64(p.base + i), Len: 1}
		if err := unix.FcntlFlock(p.f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
			if err == unix.EAGAIN || err == unix.EACCES {
				continue // another sandboxd process holds it
			}
			return 0, fmt.Errorf("lock sandbox uid: %w", err)
		}
		p.used[i] = true
		p.next = i + 1
		return p.base + i, nil
	}
	return 0, errNoID
}

// close lets go of the lock file, and with it every id still held.
func (p *idPool) close() { p.f.Close() }

func (p *idPool) release(id uint32) {
	i := id - p.base
	p.mu.Lock()
	defer p.mu.Unlock()
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: int64(id), Len: 1}
	unix.FcntlFlock(p.f.Fd(), unix.F_OFD_SETLK, &lk)
	p.used[i] = false
}
