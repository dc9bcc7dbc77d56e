package cgroup

import (
	"hash/fnv"
	"os"

	"golang.org/x/sys/unix"
)

// Two sandboxd processes without a daemon's lock (Lock) may share a subtree:
// `sandboxd exec` processes run side by side, each making its groups in the
// subtree and removing the subtree, empty, when it stops. Between one
// process finding the subtree there and making its group in it, another
// could remove the subtree. The tree lock closes that gap: a process making
// groups read-locks a byte of treeLockFile for each subtree directory until
// its groups are there (after which the directory is busy and cannot be
// removed), and a process removing a subtree directory write-locks the
// byte first, without waiting: when that fails, a maker is in the middle
// of its work and will remove the subtree itself when it stops.
//
// The locks are open-file-description locks (F_OFD_SETLK) on a descriptor
// opened for the one call, so goroutines of one process do not release each
// other's, and a process that dies releases its own. The byte of a
// directory is a hash of its path: two paths that share one only make a
// removal wait for the next process that stops.
var treeLockFile = "/run/sandboxd-cgroups.lock"

// treeLockByte is the offset of dir's byte in treeLockFile.
func treeLockByte(dir string) int64 {
	h := fnv.New64a()
	h.Write([]byte(dir))
	return int64(h.Sum64() >> 2) // positive
}

// lockTreeShared read-locks the bytes of dirs and returns their release.
// When the lock file cannot be had (no /run, not root) it returns a no-op:
// create's retry on a vanished subtree is then the only guard.
func lockTreeShared(dirs []string) (release func()) {
	fd, err := unix.Open(treeLockFile, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return func() {}
	}
	for _, d := range dirs {
		lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0, Start: treeLockByte(d), Len: 1}
		for {
			// Waits only for a remover, which holds its lock for one rmdir.
			err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_SETLKW, &lk)
			if err != unix.EINTR {
				break
			}
		}
	}
	return func() { unix.Close(fd) }
}

// lockTreeForRemoval write-locks dir's byte if nobody holds it. ok is false
// when a maker holds it: dir stays.
func lockTreeForRemoval(dir string) (release func(), ok bool) {
	f, err := os.OpenFile(treeLockFile, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}, true
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: treeLockByte(dir), Len: 1}
	if err := ignoringEINTR(func() error { return unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk) }); err != nil {
		f.Close()
		return nil, false
	}
	return func() { f.Close() }, true
}
