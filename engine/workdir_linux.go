package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// LendWorkdir hands a host directory to a sandbox user: dir and everything
// in it are chowned to uid:uid, and the returned function gives the tree
// back to the directory's owner. Symlinks are chowned themselves, never
// followed.
func LendWorkdir(dir string, uid uint32) (giveBack func() error, err error) {
	fi, err := os.Lstat(dir)
	if err != nil {
		return nil, fmt.Errorf("workdir: %w", err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("workdir: %s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if _, err := chownTree(dir, int(uid), int(uid), 0); err != nil {
		return nil, err
	}
	return func() error { _, err := chownTree(dir, int(st.Uid), int(st.Gid), 0); return err }, nil
}

// chownRoot gives dir itself, not what is in it, to uid:gid.
func chownRoot(dir string, uid, gid int) error {
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	return nil
}

// chownTree gives dir and everything beneath it to uid:gid, never
// following a symlink (a symlink is chowned itself). It returns the files
// larger than over bytes (over > 0), as they were: a step's later look
// (largeFiles) tells them from the files the step makes that large. An
// error never names a host path.
func chownTree(dir string, uid, gid int, over int64) (largeSet, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workdir: open: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return nil, fmt.Errorf("workdir: chown: %w", err)
	}
	var large largeSet
	err = walkTree(fd, func(dirfd int, name string, typ uint8) error {
		if err := unix.Fchownat(dirfd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			// A file bound in read-only (the daemon's cached files) stays
			// as it is.
			if err != unix.EROFS || !onOtherMount(dirfd, name) {
				return fmt.Errorf("workdir: chown: %w", err)
			}
		}
		if over > 0 {
			large.note(dirfd, name, typ, over)
		}
		return nil
	})
	return large, err
}

// largeSet collects regular files larger than a size, as they are.
type largeSet map[fileID]int64

// note adds the entry name of dirfd if it is a regular file larger than
// over bytes.
func (l *largeSet) note(dirfd int, name string, typ uint8, over int64) {
	var st unix.Stat_t
	if typ != unix.DT_REG || unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Size <= over {
		return
	}
	if *l == nil {
		*l = largeSet{}
	}
	(*l)[fileID{st.Dev, st.Ino}] = st.Size
}

// fileID names a file across a walk.
type fileID struct{ dev, ino uint64 }

// largeFiles says whether a regular file beneath the directory fd is
// larger than over bytes, other than those of before at the size they had.
func largeFiles(fd int, over int64, before largeSet) (bool, error) {
	found := false
	err := walkTree(fd, func(dirfd int, name string, typ uint8) error {
		if typ != unix.DT_REG {
			return nil
		}
		var st unix.Stat_t
		if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil // gone meanwhile: not ours to judge
		}
		if size, ok := before[fileID{st.Dev, st.Ino}]; st.Size > over && (!ok || size != st.Size) {
			found = true
			return errStopWalk
		}
		return nil
	})
	if err == errStopWalk {
		err = nil
	}
	return found, err
}

var errStopWalk = errors.New("stop the walk")

// largeFilesIn lists the regular files beneath dir larger than over bytes.
func largeFilesIn(dir string, over int64) (largeSet, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("workdir: open: %w", err)
	}
	defer unix.Close(fd)
	var large largeSet
	err = walkTree(fd, func(dirfd int, name string, typ uint8) error {
		large.note(dirfd, name, typ, over)
		return nil
	})
	return large, err
}

// walkTree calls visit with every entry beneath the directory fd (its
// directory's descriptor, its name and its type from the directory, a DT_
// constant; DT_REG or DT_DIR where a file system gives none), depth first.
// It walks by descriptors, never by paths, so that no depth of directories
// is too deep for it, keeps one directory of its own open at a time, and
// never follows a symlink. Nothing may change the tree meanwhile. An error
// of visit ends the walk and is returned. fd is left open.
func walkTree(fd int, visit func(dirfd int, name string, typ uint8) error) error {
	cur, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("workdir: open: %w", err)
	}
	defer func() { unix.Close(cur) }()
	bp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bp)
	buf := *bp
	// pending[i] are the subdirectories of the directory at depth i that
	// are still to visit; cur is the directory at depth len(pending)-1.
	subdirs, err := walkEntries(cur, buf, visit)
	if err != nil {
		return err
	}
	pending := [][]string{subdirs}
	for len(pending) > 0 {
		top := &pending[len(pending)-1]
		if len(*top) == 0 {
			pending = pending[:len(pending)-1]
			if len(pending) == 0 {
				break
			}
			up, err := unix.Openat(cur, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("workdir: open ..: %w", err)
			}
			unix.Close(cur)
			cur = up
			continue
		}
		name := (*top)[len(*top)-1]
		*top = (*top)[:len(*top)-1]
		down, err := unix.Openat(cur, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("workdir: open a directory: %w", err)
		}
		unix.Close(cur)
		cur = down
		subdirs, err := walkEntries(cur, buf, visit)
		if err != nil {
			return err
		}
		pending = append(pending, subdirs)
	}
	return nil
}

// direntBufs are walkTree's directory buffers, kept between walks: a step
// walks its trees at its end, and a fresh buffer each time is garbage.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// walkEntries visits every entry of the directory fd and returns the
// names of its subdirectories.
func walkEntries(fd int, buf []byte, visit func(dirfd int, name string, typ uint8) error) ([]string, error) {
	var subdirs []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err != nil {
			return nil, fmt.Errorf("workdir: read a directory: %w", err)
		}
		if n == 0 {
			return subdirs, nil
		}
		for off := 0; off < n; {
			// struct linux_dirent64: ino, off, reclen, type, name.
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			typ := buf[off+18]
			name := buf[off+19 : off+reclen]
			name = name[:bytes.IndexByte(name, 0)]
			off += reclen
			if string(name) == "." || string(name) == ".." {
				continue
			}
			if typ == unix.DT_UNKNOWN { // file systems without d_type
				var st unix.Stat_t
				if err := unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return nil, fmt.Errorf("workdir: stat: %w", err)
				}
				switch st.Mode & unix.S_IFMT {
				case unix.S_IFDIR:
					typ = unix.DT_DIR
				case unix.S_IFREG:
					typ = unix.DT_REG
				}
			}
			if err := visit(fd, string(name), typ); err != nil {
				return nil, err
			}
			if typ == unix.DT_DIR {
				subdirs = append(subdirs, string(name))
			}
		}
	}
}

// onOtherMount says whether the entry name of the directory dirfd is a
// mount point of its own (a file bound there).
func onOtherMount(dirfd int, name string) bool {
	var dir, st unix.Stat_t
	if unix.Fstat(dirfd, &dir) != nil || unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return false
	}
	return dir.Dev != st.Dev
}
