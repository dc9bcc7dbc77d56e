package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

// A job uses cached files in two ways, neither of which copies them:
//
//   - a step's stdin_cached is the cached file opened read-only, given to
//     the program as its stdin;
//   - a files entry with cached is the cached file bound read-only onto an
//     empty file of the workspace (a bind mount in the host, made before
//     the first step), which each step's sandbox gets with the workspace
//     (a recursive clone of its mount). The file is root's, mode 0555, on
//     a read-only mount: the program can read and run it, not change it.
//     The workspace's teardown (a detached unmount) takes the binds with
//     it, and so does the reclaim of a previous daemon's workspaces.
//
// The files a job names are pinned from its admission to its end: neither
// evicted nor deleted meanwhile.

// checkCached checks that id names a cached file, and notes it for pinning.
func (p *checkedJob) checkCached(c *fileCache, id, field string) *api.Error {
	if !isCacheID(id) {
		return invalid("%s: %q is not a file cache id (64 lowercase hex digits, the SHA-256 of the content)", field, id)
	}
	if _, ok := c.lookup(id); !ok {
		return invalid("%s: %q is not in the file cache (upload it with POST /v1/files)", field, id)
	}
	p.cached = append(p.cached, id)
	p.cachedFields = append(p.cachedFields, field)
	return nil
}

// checkCachedFile checks a files entry that names a cached file.
func (p *checkedJob) checkCachedFile(c *fileCache, f *api.File, cf *checkedFile, field string) *api.Error {
	if f.Content != "" || f.Base64 != "" {
		return invalid("%s: give one of content, base64 and cached", field)
	}
	if f.Mode != "" {
		return invalid("%s.mode: a cached file is read-only with mode 0555; leave mode out", field)
	}
	if aerr := p.checkCached(c, f.Cached, field+".cached"); aerr != nil {
		return aerr
	}
	cf.cached, cf.mode = c.path(f.Cached), cacheFileMode
	return nil
}

// checkKeepFiles checks keep_files: clean workspace paths, none twice.
func checkKeepFiles(names []string) *api.Error {
	if len(names) > maxTracked {
		return invalid("keep_files: %d files, at most %d", len(names), maxTracked)
	}
	seen := map[string]bool{}
	for i, name := range names {
		if err := validRelPath(name); err != nil {
			return invalid("keep_files[%d]: %v", i, err)
		}
		if seen[name] {
			return invalid("keep_files[%d]: %q is named twice", i, name)
		}
		seen[name] = true
	}
	return nil
}

// pinCached pins the job's cached files from its admission; the returned
// function unpins them, once however often it is called. A file deleted or
// evicted since the job was checked is the same 400 as an unknown one.
func (d *Daemon) pinCached(cj *checkedJob) (unpin func(), aerr *api.Error) {
	if len(cj.cached) == 0 {
		return func() {}, nil
	}
	if i := d.cache.pin(cj.cached); i >= 0 {
		return nil, invalid("%s: %q is not in the file cache (upload it with POST /v1/files)", cj.cachedFields[i], cj.cached[i])
	}
	done := false
	return func() {
		if !done {
			done = true
			d.cache.unpin(cj.cached)
		}
	}, nil
}

// openStdinCached opens a step's stdin_cached.
func (d *Daemon) openStdinCached(cs *checkedStep) (*os.File, error) {
	f, err := d.cache.open(cs.stdinCached)
	if err != nil {
		return nil, fmt.Errorf("stdin_cached: %s", withoutPath(err))
	}
	return f, nil
}

// bindCached binds the cached file src read-only onto a new empty file at
// name in the workspace. The workspace is fresh, and nothing has run in it
// yet. After the first bind the workspace's mount for its steps must carry
// the binds (treeMount).
func (w *workspace) bindCached(name, src string) error {
	syscall.ForkLock.RLock() // as writeFile: no descriptor open for writing across a fork
	fd, err := unix.Open(filepath.Join(w.dir, name), unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, cacheFileMode)
	if err == nil {
		unix.Close(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return err
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV, Attr_clr: unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return &os.PathError{Op: "mount_setattr", Path: src, Err: err}
	}
	if err := unix.MoveMount(tree, "", unix.AT_FDCWD, filepath.Join(w.dir, name), unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: name, Err: err}
	}
	if !w.binds {
		// The mount made with the workspace does not carry the binds.
		if m := w.mount; m != nil {
			m.Close()
			w.mount = nil
		}
		w.binds = true
	}
	return nil
}

// treeMount is a detached copy of the workspace's mount with the cached
// files bound in it (open_tree with AT_RECURSIVE), without set-uid and
// device files, for one step.
func (w *workspace) treeMount() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, w.dir, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return nil, &os.PathError{Op: "open_tree", Path: w.dir, Err: err}
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "mount_setattr", Path: w.dir, Err: err}
	}
	return os.NewFile(uintptr(fd), "workdir"), nil
}

// keepFiles puts the job's keep_files into the cache for caller, once its
// steps are over. A path that cannot be kept (missing, not a regular file,
// over the cache's cap or the caller's quota) is left out of the answer
// and named in the returned message, the job's result is not an error.
func (d *Daemon) keepFiles(ws *workspace, names []string, caller uint32) (map[string]api.CachedFile, string) {
	kept := map[string]api.CachedFile{}
	var msgs []string
	dirfd, err := unix.Open(ws.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "keep_files: the workspace: " + withoutPath(&os.PathError{Err: err})
	}
	defer unix.Close(dirfd)
	for i, name := range names {
		cf, why := d.keepFile(dirfd, name, caller)
		if why != "" {
			msgs = append(msgs, fmt.Sprintf("keep_files[%d] %q: %s", i, name, why))
			continue
		}
		kept[name] = cf
	}
	sort.Strings(msgs)
	if len(kept) == 0 {
		kept = nil
	}
	return kept, strings.Join(msgs, "; ")
}

func (d *Daemon) keepFile(dirfd int, name string, caller uint32) (api.CachedFile, string) {
	fd, err := unix.Openat2(dirfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: resolveRead,
	})
	switch {
	case errors.Is(err, unix.ENOENT):
		return api.CachedFile{}, "no such file in the workspace"
	case errors.Is(err, unix.ELOOP):
		return api.CachedFile{}, "a symlink, not a regular file"
	case errors.Is(err, unix.EXDEV):
		return api.CachedFile{}, "a cached file of the job (or beneath one), not the workspace's own"
	case err != nil:
		return api.CachedFile{}, "open: " + err.Error()
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return api.CachedFile{}, "stat: " + err.Error()
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return api.CachedFile{}, "not a regular file"
	}
	cf, _, _, aerr, readErr := d.cache.put(io.LimitReader(f, st.Size), caller)
	switch {
	case aerr != nil:
		return api.CachedFile{}, aerr.Message
	case readErr != nil:
		return api.CachedFile{}, "read: " + readErr.Error()
	}
	return cf, ""
}
