package daemon

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
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
	if err := chownTree(dir, int(uid), int(uid)); err != nil {
		return nil, err
	}
	return func() error { return chownTree(dir, int(st.Uid), int(st.Gid)) }, nil
}

// chownRoot gives dir itself, not what is in it, to uid:gid.
func chownRoot(dir string, uid, gid int) error {
	if err := os.Lchown(dir, uid, gid); err != nil {
		return fmt.Errorf("workdir: %w", err)
	}
	return nil
}

// chownTree gives dir and everything beneath it to uid:gid. It walks by
// descriptors, never by paths, so that no depth of directories is too
// deep for it, keeps one directory open at a time, and never follows a
// symlink (a symlink is chowned itself). Nothing may change the tree
// meanwhile: the workspace's last step has ended. An error never names a
// host path.
func chownTree(dir string, uid, gid int) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("workdir: open: %w", err)
	}
	defer func() { unix.Close(fd) }()
	if err := unix.Fchown(fd, uid, gid); err != nil {
		return fmt.Errorf("workdir: chown: %w", err)
	}
	buf := make([]byte, 32<<10)
	// pending[i] are the subdirectories of the directory at depth i that
	// are still to visit; fd is the directory at depth len(pending)-1.
	var pending [][]string
	subdirs, err := chownEntries(fd, uid, gid, buf, nil)
	if err != nil {
		return err
	}
	pending = append(pending, subdirs)
	for len(pending) > 0 {
		top := &pending[len(pending)-1]
		if len(*top) == 0 {
			pending = pending[:len(pending)-1]
			if len(pending) == 0 {
				break
			}
			up, err := unix.Openat(fd, "..", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return fmt.Errorf("workdir: open ..: %w", err)
			}
			unix.Close(fd)
			fd = up
			continue
		}
		name := (*top)[len(*top)-1]
		*top = (*top)[:len(*top)-1]
		down, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("workdir: open a directory: %w", err)
		}
		unix.Close(fd)
		fd = down
		subdirs, err := chownEntries(fd, uid, gid, buf, nil)
		if err != nil {
			return err
		}
		pending = append(pending, subdirs)
	}
	return nil
}

// chownEntries chowns every entry of the directory fd and returns the
// names of its subdirectories, appended to subdirs.
func chownEntries(fd, uid, gid int, buf []byte, subdirs []string) ([]string, error) {
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
			if err := unix.Fchownat(fd, string(name), uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return nil, fmt.Errorf("workdir: chown: %w", err)
			}
			if typ == unix.DT_UNKNOWN { // file systems without d_type
				var st unix.Stat_t
				if err := unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
					return nil, fmt.Errorf("workdir: stat: %w", err)
				}
				if st.Mode&unix.S_IFMT == unix.S_IFDIR {
					typ = unix.DT_DIR
				}
			}
			if typ == unix.DT_DIR {
				subdirs = append(subdirs, string(name))
			}
		}
	}
}
