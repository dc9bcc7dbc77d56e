package daemon

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
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

func chownTree(dir string, uid, gid int) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("workdir: %w", err)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			return fmt.Errorf("workdir: %w", err)
		}
		return nil
	})
}
