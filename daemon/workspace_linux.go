package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
	"github.com/sandboxd/sandboxd/nsjail"
)

// workspace is a job's private directory: a tmpfs of its own, with a size
// cap, mounted under the state dir in the host and bound into each step's
// sandbox, whose uid it is given to for the step.
type workspace struct {
	dir string
	// mount is a detached copy of the workspace's mount made with it
	// (nsjail.DetachedMount), for its first step; nil once taken.
	mount *os.File
	// binds says cached files are bound in (bindCached): each step gets a
	// recursive copy of the mount (treeMount).
	binds bool
}

// workspacesDir is where workspaces are mounted, beneath the state dir.
func workspacesDir(stateDir string) string { return filepath.Join(stateDir, "ws") }

// newWorkspace makes and mounts a workspace. Its errors are *os.PathError
// (wrapped), so that the operation and the cause can be told without the
// host path.
func newWorkspace(stateDir, name string, size int64) (*workspace, error) {
	parent := workspacesDir(stateDir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	data := fmt.Sprintf("size=%d,mode=0755,nr_inodes=%d", size, nsjail.TmpfsInodes(size))
	if err := unix.Mount("sandboxd-ws", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, data); err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("workspace: %w", &os.PathError{Op: "mount tmpfs", Path: dir, Err: err})
	}
	w := &workspace{dir: dir}
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		w.mount, err = nsjail.DetachedMount(f)
		f.Close()
	}
	if err != nil {
		w.remove()
		return nil, fmt.Errorf("workspace: %w", &os.PathError{Op: "detached mount", Path: dir, Err: err})
	}
	return w, nil
}

// takeMount gives the detached mount made with the workspace, once; the
// caller closes it. Nil after the first call.
func (w *workspace) takeMount() *os.File {
	m := w.mount
	w.mount = nil
	return m
}

// writeFiles puts the job's files in place. The workspace is fresh and nothing hostile has run in it yet; names were
// validated as clean relative paths.
func (w *workspace) writeFiles(files []checkedFile) error {
	for _, f := range files {
		if err := w.mkdirs(filepath.Dir(f.name)); err != nil {
			return err
		}
		write := w.writeFile
		if f.cached != "" {
			write = func(f checkedFile) error { return w.bindCached(f.name, f.cached) }
		}
		if err := write(f); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return fmt.Errorf("files[%q]: the workspace is full", f.name)
			}
			return fmt.Errorf("files[%q]: %w", f.name, err)
		}
	}
	return nil
}

// writeFile writes one file with no fork in between: a process forked
// while the file is open for writing holds the descriptor until it execs
// (a sandbox's init waits for its uid maps first), and a program exec'd
// from the file meanwhile fails with ETXTBSY.
func (w *workspace) writeFile(f checkedFile) error {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	p := filepath.Join(w.dir, f.name)
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, f.mode)
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(fd), p)
	_, err = file.Write(f.data)
	if err == nil {
		err = file.Chmod(os.FileMode(f.mode))
	}
	if cerr := file.Close(); err == nil {
		err = cerr
	}
	return err
}

func (w *workspace) mkdirs(rel string) error {
	if rel == "." {
		return nil
	}
	cur := w.dir
	for _, part := range strings.Split(rel, "/") {
		cur = filepath.Join(cur, part)
		if err := unix.Mkdir(cur, 0o755); err != nil {
			if err == unix.EEXIST {
				continue
			}
			return fmt.Errorf("mkdir %s: %w", rel, err)
		}
	}
	return nil
}

// readTracked reads the named files back after the steps: never through a
// symlink (at any depth), never out of the workspace, never beyond limit
// bytes each nor beyond what is left of the job's budget (a file cut by
// either is truncated), and only regular files. Anything else is nil, as
// if missing.
func (w *workspace) readTracked(names []string, limit int64, budget *engine.OutputBudget) map[string]*api.TrackedFile {
	files := make(map[string]*api.TrackedFile, len(names))
	dirfd, err := unix.Open(w.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		for _, name := range names {
			files[name] = nil
		}
		return files
	}
	defer unix.Close(dirfd)
	for _, name := range names {
		files[name] = readBeneath(dirfd, name, limit, budget)
	}
	return files
}

func readBeneath(dirfd int, name string, limit int64, budget *engine.OutputBudget) *api.TrackedFile {
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: resolveRead,
	})
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil
	}
	data, err := io.ReadAll(io.LimitReader(f, min(limit, st.Size)+1))
	if err != nil {
		return nil
	}
	tf := &api.TrackedFile{}
	if int64(len(data)) > limit {
		data, tf.Truncated = data[:limit], true
	}
	if got := budget.Take(int64(len(data))); got < int64(len(data)) {
		data, tf.Truncated = data[:got], true
	}
	tf.Content = string(data)
	return tf
}

// remove unmounts and deletes the workspace. Idempotent.
func (w *workspace) remove() error {
	if m := w.takeMount(); m != nil {
		m.Close()
	}
	return removeWorkspaceDir(w.dir)
}

func removeWorkspaceDir(dir string) error {
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount workspace %s: %w", dir, err)
	}
	if err := os.Remove(dir); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("remove workspace %s: %w", dir, err)
	}
	return nil
}

// mountWorkspacesDir puts a small tmpfs of the daemon's own on the
// workspaces' dir, unless the state dir is a tmpfs already: each workspace
// is a directory made and removed there, which costs several times more on
// a disk file system (ext4 journals it) than in memory. A tmpfs a previous
// daemon left there (after reclaimWorkspaces, empty) is replaced; a mount
// of anyone else's there is used as it is. mounted tells whether
// unmountWorkspacesDir has something to do.
func mountWorkspacesDir(stateDir string) (mounted bool, err error) {
	dir := workspacesDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("workspaces: %w", err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(stateDir, &fs); err != nil {
		return false, fmt.Errorf("workspaces: %w", &os.PathError{Op: "statfs", Path: stateDir, Err: err})
	}
	if fs.Type == unix.TMPFS_MAGIC {
		return false, nil
	}
	switch src, err := mountSource(dir); {
	case err != nil:
		return false, fmt.Errorf("workspaces: %w", err)
	case src == workspacesSource:
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			return false, fmt.Errorf("workspaces: %w", &os.PathError{Op: "unmount the previous tmpfs", Path: dir, Err: err})
		}
	case src != "":
		return false, nil
	}
	// Only empty directories live here, as mount points: the size is room
	// for nothing else, and each directory is an inode.
	if err := unix.Mount(workspacesSource, dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0700,size=64k,nr_inodes=65536"); err != nil {
		return false, fmt.Errorf("workspaces: %w", &os.PathError{Op: "mount tmpfs", Path: dir, Err: err})
	}
	return true, nil
}

// workspacesSource names the workspaces' tmpfs in mountinfo.
const workspacesSource = "sandboxd-workspaces"

// mountSource is the source of the topmost mount on dir, as mountinfo
// gives it; "" when nothing is mounted there.
func mountSource(dir string) (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	src := ""
	for _, line := range strings.Split(string(b), "\n") {
		// "<id> <parent> <dev> <root> <mount point> ... - <type> <source> <options>"
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 2 && f[4] == dir {
			src = g[1]
		}
	}
	return src, nil
}

// unmountWorkspacesDir takes down what mountWorkspacesDir mounted, with
// every workspace still under it.
func unmountWorkspacesDir(stateDir string) error {
	dir := workspacesDir(stateDir)
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return fmt.Errorf("unmount workspaces %s: %w", dir, err)
	}
	return nil
}

// reclaimWorkspaces removes every workspace a previous daemon left.
func reclaimWorkspaces(stateDir string) (int, error) {
	parent := workspacesDir(stateDir)
	ents, err := os.ReadDir(parent)
	if err != nil {
		if os.IsNotExist(err) {
			return 0, nil
		}
		return 0, err
	}
	var errs []error
	for _, e := range ents {
		if err := removeWorkspaceDir(filepath.Join(parent, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return len(ents), errors.Join(errs...)
}
