package cgroup

import (
	"errors"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// kernel is the narrow set of operations this package asks of the host. The
// real one (hostKernel) acts on cgroupfs; tests substitute a fake that keeps a
// temp dir shaped like cgroupfs and imitates the kernel's rules (a
// directory's control files vanish with rmdir, subtree_control refuses
// controllers while processes sit in the group, ...).
//
// Errors are *os.PathError naming the operation and path, wrapping the errno.
type kernel interface {
	// mkdir makes a group. The real implementation keeps a descriptor of
	// each group it made (and of those keepDir names) to reach what is in
	// it, until rmdir.
	mkdir(path string) error
	keepDir(path string)
	// rmdir removes one group. On cgroupfs a group holding only its control
	// files is empty; the real implementation never removes recursively.
	rmdir(path string) error
	readFile(path string) ([]byte, error)
	// writeFile writes value with one write(2), without O_CREAT or O_TRUNC.
	writeFile(path, value string) error
	openFile(path string, flag int) (*os.File, error)
	// chown gives a control file to uid and gid.
	chown(path string, uid, gid int) error
	// owner is a file's uid and gid.
	owner(path string) ([2]int, error)
	exists(path string) bool
	// subdirs lists the child groups of a group.
	subdirs(path string) ([]string, error)
	// kill sends SIGKILL; a process already gone is not an error.
	kill(pid int) error
	// release is the kernel release, as in uname -r.
	release() string
}

// hostKernel is the kernel interface on the real cgroup filesystems. It uses
// raw system calls rather than os.File: cgroupfs files are pollable, so
// os.Open would register each one with the runtime's poller, which costs
// more than the read itself.
//
// It keeps a descriptor (O_PATH) of each directory it made, until it
// removes it, so that a control file of a sandbox is one path element from
// a descriptor, not eight from /. A directory that is not kept is reached
// by its path. A kept one that someone else removed gives ENOENT, which
// callers take as "gone" (the subtree is made again, and kept anew).
type hostKernel struct {
	mu   sync.Mutex
	dirs map[string]*keptDir
}

// keptDir is a kept directory's descriptor. It is closed only once no
// call uses it any more: a descriptor closed under a call on another
// thread could be reused for another file by then, and the call would act
// on whatever that is.
type keptDir struct {
	fd    int
	users int
	gone  bool // let go of: closed when the last user is done
}

// at gives the directory descriptor and the last element to reach path
// by (or AT_FDCWD and path), and done, to call once the descriptor is
// used.
func (k *hostKernel) at(p string) (dirfd int, name string, done func()) {
	dir, base := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	k.mu.Lock()
	defer k.mu.Unlock()
	d := k.dirs[dir]
	if d == nil || base == "" {
		return unix.AT_FDCWD, p, func() {}
	}
	d.users++
	return d.fd, base, func() {
		k.mu.Lock()
		defer k.mu.Unlock()
		d.users--
		d.closeIfDone()
	}
}

func (d *keptDir) closeIfDone() {
	if d.gone && d.users == 0 {
		unix.Close(d.fd)
	}
}

// keepDir opens dir (O_PATH) and keeps it, in place of what was kept for
// it: a directory this kernel made (mkdir), or one that exists (our
// subtree, made by another process or before a restart).
func (k *hostKernel) keepDir(dir string) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropLocked(dir)
	if err != nil {
		return
	}
	if k.dirs == nil {
		k.dirs = map[string]*keptDir{}
	}
	k.dirs[dir] = &keptDir{fd: fd}
}

// drop lets go of what is kept for dir.
func (k *hostKernel) drop(dir string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.dropLocked(dir)
}

func (k *hostKernel) dropLocked(dir string) {
	if d := k.dirs[dir]; d != nil {
		delete(k.dirs, dir)
		d.gone = true
		d.closeIfDone()
	}
}

// maxControlFile caps reads of control files; the largest we read
// (cgroup.procs of a busy group) stays well below.
const maxControlFile = 1 << 20

func (k *hostKernel) mkdir(path string) error {
	dirfd, name, done := k.at(path)
	err := ignoringEINTR(func() error { return unix.Mkdirat(dirfd, name, 0o755) })
	done()
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	k.keepDir(path)
	return nil
}

func (k *hostKernel) rmdir(path string) error {
	k.drop(path)
	dirfd, name, done := k.at(path)
	defer done()
	if err := ignoringEINTR(func() error { return unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR) }); err != nil {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

func (k *hostKernel) openRaw(path string, flag int) (int, error) {
	dirfd, name, done := k.at(path)
	defer done()
	var fd int
	err := ignoringEINTR(func() (err error) {
		fd, err = unix.Openat(dirfd, name, flag|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func (k *hostKernel) readFile(path string) ([]byte, error) {
	fd, err := k.openRaw(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 4096)
	for {
		var n int
		err := ignoringEINTR(func() (err error) {
			n, err = unix.Read(fd, buf[len(buf):cap(buf)])
			return err
		})
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		buf = buf[:len(buf)+n]
		// cgroupfs fills the whole buffer unless the text ends, so a short
		// read is the end and saves the read that would return 0.
		if n == 0 || len(buf) < cap(buf) {
			return buf, nil
		}
		if len(buf) >= maxControlFile {
			return nil, &os.PathError{Op: "read", Path: path, Err: errors.New("file larger than 1 MiB")}
		}
		grown := make([]byte, len(buf), 2*cap(buf))
		copy(grown, buf)
		buf = grown
	}
}

func (k *hostKernel) writeFile(path, value string) error {
	fd, err := k.openRaw(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var n int
	err = ignoringEINTR(func() (err error) {
		n, err = unix.Write(fd, []byte(value))
		return err
	})
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	if n != len(value) {
		return &os.PathError{Op: "write", Path: path, Err: io.ErrShortWrite}
	}
	return nil
}

func (k *hostKernel) openFile(path string, flag int) (*os.File, error) {
	fd, err := k.openRaw(path, flag)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func (k *hostKernel) chown(path string, uid, gid int) error {
	dirfd, name, done := k.at(path)
	defer done()
	return ignoringEINTR(func() error {
		if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: path, Err: err}
		}
		return nil
	})
}

func (k *hostKernel) owner(path string) ([2]int, error) {
	dirfd, name, done := k.at(path)
	defer done()
	var st unix.Stat_t
	err := ignoringEINTR(func() error { return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) })
	if err != nil {
		return [2]int{-1, -1}, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	return [2]int{int(st.Uid), int(st.Gid)}, nil
}

func (*hostKernel) exists(path string) bool {
	var st unix.Stat_t
	return ignoringEINTR(func() error { return unix.Lstat(path, &st) }) == nil
}

func (*hostKernel) subdirs(path string) ([]string, error) {
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func (*hostKernel) kill(pid int) error {
	err := unix.Kill(pid, unix.SIGKILL)
	if err == nil || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return &os.SyscallError{Syscall: "kill", Err: err}
}

func (*hostKernel) release() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelAtLeast reports whether release (e.g. "6.18.44-foo") is at least
// major.minor. An unparsable release counts as too old.
func kernelAtLeast(release string, major, minor int) bool {
	var nums [2]int
	n := 0
	for i := 0; i < len(release) && n < 2; {
		if release[i] < '0' || release[i] > '9' {
			return false
		}
		v := 0
		for i < len(release) && release[i] >= '0' && release[i] <= '9' {
			v = v*10 + int(release[i]-'0')
			i++
		}
		nums[n] = v
		n++
		if i < len(release) && release[i] == '.' {
			i++
		} else {
			break
		}
	}
	if n < 2 {
		return false
	}
	return nums[0] > major || (nums[0] == major && nums[1] >= minor)
}

func ignoringEINTR(fn func() error) error {
	for {
		err := fn()
		if err != unix.EINTR {
			return err
		}
	}
}

// isNotExist reports ENOENT, the answer for a group already gone.
func isNotExist(err error) bool { return errors.Is(err, os.ErrNotExist) }

// isBusy reports EBUSY, the kernel's answer to rmdir of a populated group
// and to enabling controllers in a group holding processes.
func isBusy(err error) bool { return errors.Is(err, syscall.EBUSY) }
