package nsjail

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Root templates. Most of a sandbox's root is the same for every sandbox
// of a profile: the read-only binds, /dev, the files in /etc. The helper
// builds that part once, as a detached mount tree, and makes it the root
// of a mount namespace of its own (a template namespace), with nothing
// else in it but a proc mount. Each init is cloned from within that
// namespace: its new mount namespace is a copy of the template, its root
// is the template's root, and it adds only what is its own: /tmp,
// /dev/shm, /proc (over the template's), and later the workspace. No copy
// of the host's mounts, no pivot_root and no detach of an old root: the
// last waited for an RCU grace period in every sandbox.
//
// The template is read-only, and so is every mount in it but the device
// nodes, as when each init built its root; in the init's namespace every
// one of them is locked besides (a copy made for a less privileged user
// namespace), so that nothing in the sandbox can unmount one or remount
// it writable. The proc mount is there because the kernel lets a user
// namespace mount a proc only where its mount namespace holds one in
// full view already; it is the host's, mounted with hidepid=invisible,
// and each init's own /proc covers it before anything else runs.
//
// Where no template namespace can be made, each init gets a copy of the
// template's tree (open_tree with OPEN_TREE_CLONE) and attaches it at its
// RootDir, then pivots. Attaching mounts to a detached tree and copying
// one need Linux 6.15. Where a template cannot be made or copied, the init
// builds its root the classic way (planRoot), which is also how a Spec
// with a writable tmpfs of its own is built.

// templateMaxAge bounds how long a template serves: it holds copies of the
// host's mounts as they were when it was built, so a mount made or removed
// on the host under a bind source shows in new sandboxes within this time.
const templateMaxAge = 30 * time.Second

// maxTemplates bounds the templates kept at once; more kinds of root than
// this and all are dropped and built again as they are asked for.
const maxTemplates = 8

type rootTemplate struct {
	fd   int       // the detached tree; -1 if building it failed, or it is ns's root
	ns   int       // the template namespace, or -1
	made time.Time // when it was built, or when building failed
	err  error
}

// templates are the helper's, by templateKey. Only the helper's main loop
// uses them, on its own thread.
type templates struct {
	byKey map[string]*rootTemplate
	// nsOn: template namespaces are made, from the thread that called
	// enableNamespaces, whose own mount namespace (the host's) hostNS is.
	nsOn   bool
	hostNS int
	// nsErr says why template namespaces are off for good.
	nsErr error
	// inProcess: the helper is a thread of the engine's process (see
	// serveHelper), which stuck must not end; it makes no templates.
	inProcess bool
}

// stuck ends the helper's thread where it cannot come back to its own
// mount namespace: it would clone every init from there, and look up every
// path there. A helper of its own exits; one in the engine's process ends
// its thread (the thread is locked, so the runtime ends it), which kills
// its inits and closes its socket, as a helper's death does. It does not
// return.
func (t *templates) stuck(err error) {
	fmt.Fprintf(os.Stderr, "sandboxd-helper: back from a template namespace: %v\n", err)
	if t.inProcess {
		runtime.Goexit()
	}
	os.Exit(2)
}

// enableNamespaces lets the calling thread, which must be locked to its
// goroutine for good, make template namespaces and clone inits from them:
// it takes a file system context of its own (setns into a mount
// namespace needs that), and keeps a descriptor of its mount namespace.
// It reports whether the thread has a file system context of its own.
func (t *templates) enableNamespaces() bool {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		t.nsErr = fmt.Errorf("unshare CLONE_FS: %w", err)
		return false
	}
	fd, err := unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.nsErr = err
		return true
	}
	t.hostNS, t.nsOn = fd, true
	return true
}

// templateKey is what a template is made of; "" when spec's root cannot
// come from a shared template.
func templateKey(spec *Spec) string {
	for _, m := range spec.Mounts {
		if m.Kind != MountBind && m.Kind != MountTmpfs || m.Kind == MountTmpfs && m.Writable {
			return ""
		}
	}
	b, err := json.Marshal(struct {
		Mounts   []Mount
		Files    map[string]string
		UID, GID uint32
	}{spec.Mounts, spec.Files, spec.InitUID, spec.InitGID})
	if err != nil {
		return ""
	}
	return string(b)
}

// root says where spec's root comes from: a template namespace to clone
// the init in (ns), or a copy of a template's tree to attach (tree), each
// -1 when not; both -1: the root is built the classic way. It builds the
// template when there is none yet or it is too old. key is
// templateKey(spec).
func (t *templates) root(spec *Spec, key string) (ns, tree int) {
	if key == "" || t.inProcess {
		// A helper in the engine's process serves a sandbox or two before
		// the process exits: building a template first costs it more
		// than each init building its own root.
		return -1, -1
	}
	now := time.Now()
	tp := t.byKey[key]
	if tp != nil && now.Sub(tp.made) > templateMaxAge {
		t.drop(key)
		tp = nil
	}
	if tp == nil {
		if len(t.byKey) >= maxTemplates {
			for k := range t.byKey {
				t.drop(k)
			}
		}
		if t.byKey == nil {
			t.byKey = map[string]*rootTemplate{}
		}
		tp = t.build(spec, now)
		t.byKey[key] = tp
	}
	if tp.ns >= 0 {
		return tp.ns, -1
	}
	if tp.fd < 0 {
		return -1, -1
	}
	fd, err := unix.OpenTree(tp.fd, "", unix.OPEN_TREE_CLONE|unix.AT_RECURSIVE|unix.AT_EMPTY_PATH|unix.OPEN_TREE_CLOEXEC)
	if err == unix.EINVAL || err == unix.EPERM || err == unix.ENOSYS {
		// This kernel copies no detached tree: never again.
		unix.Close(tp.fd)
		tp.fd, tp.made, tp.err = -1, now.Add(time.Duration(1<<62)), err
		return -1, -1
	}
	if err != nil {
		// Out of something for now: this root is built in full, and the
		// next one tries a new template.
		t.drop(key)
		return -1, -1
	}
	return -1, fd
}

// build makes spec's template: a template namespace where it can, else
// the detached tree alone.
func (t *templates) build(spec *Spec, now time.Time) *rootTemplate {
	tp := &rootTemplate{fd: -1, ns: -1, made: now}
	tp.fd, tp.err = buildTemplate(spec)
	if tp.fd < 0 || !t.nsOn {
		return tp
	}
	ns, err := t.namespace(tp.fd, spec.RootDir)
	if err == nil {
		unix.Close(tp.fd)
		tp.fd, tp.ns = -1, ns
		return tp
	}
	// Copies of the tree, from now on. The tree was moved into the failed
	// namespace, which is gone: build it again.
	t.nsOn, t.nsErr = false, err
	unix.Close(tp.fd)
	tp.fd, tp.err = buildTemplate(spec)
	return tp
}

// namespace makes a template namespace with the detached tree as its root
// (the tree is moved there), and returns a descriptor of it. The calling
// thread goes into a new mount namespace to build it, and comes back to
// hostNS before it returns; when it cannot come back, the helper ends
// (stuck).
func (t *templates) namespace(tree int, rootDir string) (ns int, err error) {
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return -1, &SetupError{step: stepTemplateNamespace, arg: "unshare", Err: err}
	}
	defer func() {
		if serr := unix.Setns(t.hostNS, unix.CLONE_NEWNS); serr != nil {
			t.stuck(serr)
		}
	}()
	fail := func(s step, arg string, err error) error {
		if err != nil {
			return &SetupError{step: stepTemplateNamespace, Err: &SetupError{step: s, arg: arg, Err: err}}
		}
		return nil
	}
	root := filepath.Clean(rootDir)
	// Nothing done here may show in the host's namespace.
	if err := fail(stepMakePrivate, "", unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")); err != nil {
		return -1, err
	}
	if err := fail(stepMkdir, root, os.MkdirAll(root, 0o755)); err != nil {
		return -1, err
	}
	if err := fail(stepAttachRoot, "", unix.MoveMount(tree, "", unix.AT_FDCWD, root, unix.MOVE_MOUNT_F_EMPTY_PATH)); err != nil {
		return -1, err
	}
	if err := fail(stepMountProc, "", unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "hidepid=invisible")); err != nil {
		return -1, err
	}
	if err := fail(stepChdir, root, unix.Chdir(root)); err != nil {
		return -1, err
	}
	if err := fail(stepPivotRoot, "", unix.PivotRoot(".", ".")); err != nil {
		return -1, err
	}
	if err := fail(stepDetachOldRoot, "", unix.Unmount(".", unix.MNT_DETACH)); err != nil {
		return -1, err
	}
	ns, err = unix.Open("/proc/thread-self/ns/mnt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	return ns, fail(stepOpenNamespace, "", err)
}

func (t *templates) drop(key string) {
	if tp := t.byKey[key]; tp != nil {
		if tp.fd >= 0 {
			unix.Close(tp.fd)
		}
		if tp.ns >= 0 {
			unix.Close(tp.ns)
		}
	}
	delete(t.byKey, key)
}

// templateSource names a template's tmpfs in mountinfo.
const templateSource = "sandboxd-root"

// tmplBuilder builds a template beneath root, a detached tmpfs. Every path
// it resolves stays beneath root, on root's own file system, without
// following a symlink: the helper is root on the host, and the template
// holds the host's symlinks and mounts.
type tmplBuilder struct {
	root     int
	uid, gid int
}

// errNested: a path inside another mount of the template (a bind); the
// classic way builds such a root.
var errNested = errors.New("beneath another mount of the root")

const beneath = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV

// dir opens rel (relative to root, "" for root) as an O_PATH directory,
// making it and its parents (owned by the init's ids) when missing.
func (b *tmplBuilder) dir(rel string) (int, error) {
	fd, err := unix.Openat2(b.root, dotIfEmpty(rel), &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
	if err == nil || err != unix.ENOENT {
		if err == unix.EXDEV {
			err = errNested
		}
		return fd, err
	}
	parent, err := b.dir(filepath.Dir(rel))
	if err != nil {
		return -1, err
	}
	defer unix.Close(parent)
	base := filepath.Base(rel)
	if err := unix.Mkdirat(parent, base, 0o755); err != nil && err != unix.EEXIST {
		return -1, err
	}
	if err := unix.Fchownat(parent, base, b.uid, b.gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return -1, err
	}
	return unix.Openat2(parent, base, &unix.OpenHow{Flags: unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC, Resolve: beneath})
}

func dotIfEmpty(rel string) string {
	if rel == "" || rel == "." {
		return "."
	}
	return rel
}

// parent opens rel's parent directory (made when missing) and gives it
// with rel's last element.
func (b *tmplBuilder) parent(rel string) (int, string, error) {
	fd, err := b.dir(filepath.Dir(rel))
	return fd, filepath.Base(rel), err
}

// file creates rel empty (a mount point) or with data, owned by the init.
func (b *tmplBuilder) file(rel string, data []byte, mustBeNew bool) error {
	dir, base, err := b.parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	flags := unix.O_WRONLY | unix.O_CREAT | unix.O_NOFOLLOW | unix.O_CLOEXEC
	if mustBeNew {
		flags |= unix.O_EXCL
	}
	fd, err := unix.Openat2(dir, base, &unix.OpenHow{Flags: uint64(flags), Mode: 0o644, Resolve: beneath})
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return unix.Fchown(fd, b.uid, b.gid)
}

// attach moves the detached tree tree to rel, and closes tree.
func (b *tmplBuilder) attach(tree int, rel string) error {
	defer unix.Close(tree)
	dir, base, err := b.parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	return unix.MoveMount(tree, "", dir, base, unix.MOVE_MOUNT_F_EMPTY_PATH)
}

// copyOf is a detached copy of the host's path (with the mounts beneath
// it when recursive), private, with attrs added to its flags.
func copyOf(path string, recursive bool, attrs uint64) (int, error) {
	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	at := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
		at |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, path, flags)
	if err != nil {
		return -1, err
	}
	if err := unix.MountSetattr(fd, "", uint(at), &unix.MountAttr{Attr_set: attrs, Propagation: unix.MS_PRIVATE}); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// detachedTmpfs is a new tmpfs, not attached anywhere, with options
// (key, value pairs) and mount attributes attrs.
func detachedTmpfs(attrs uint64, options ...string) (int, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	defer unix.Close(fsfd)
	for i := 0; i+1 < len(options); i += 2 {
		if err := unix.FsconfigSetString(fsfd, options[i], options[i+1]); err != nil {
			return -1, fmt.Errorf("tmpfs option %s=%s: %w", options[i], options[i+1], err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, err
	}
	return unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(attrs))
}

// buildTemplate builds spec's root but for /tmp, /dev/shm, /proc and the
// workspace, which get mount points: what planRoot lays out, done by the
// helper in no namespace of its own, on detached mounts.
func buildTemplate(spec *Spec) (int, error) {
	uid, gid := fmt.Sprint(spec.InitUID), fmt.Sprint(spec.InitGID)
	root, err := detachedTmpfs(unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, "source", templateSource, "mode", "755", "size", "4194304", "uid", uid, "gid", gid)
	if err != nil {
		return -1, templateErr(stepMountTmpfs, "/", err)
	}
	b := &tmplBuilder{root: root, uid: int(spec.InitUID), gid: int(spec.InitGID)}
	if err := b.fill(spec); err != nil {
		unix.Close(root)
		return -1, err
	}
	return root, nil
}

// templateErr is a failure of step s while building a template.
func templateErr(s step, arg string, err error) error {
	return &SetupError{step: stepTemplate, Err: &SetupError{step: s, arg: arg, Err: err}}
}

func (b *tmplBuilder) fill(spec *Spec) error {
	const ro = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	for _, m := range spec.Mounts {
		rel := strings.TrimPrefix(filepath.Clean("/"+m.Target), "/")
		if rel == "" {
			return templateErr(stepMount, m.Target, errNested)
		}
		switch m.Kind {
		case MountTmpfs:
			mode := m.Mode
			if mode == 0 {
				mode = 0o755
			}
			opts := []string{"mode", fmt.Sprintf("%o", mode&0o7777), "uid", fmt.Sprint(b.uid), "gid", fmt.Sprint(b.gid)}
			if m.SizeBytes > 0 {
				opts = append(opts, "size", fmt.Sprint(m.SizeBytes))
			}
			fd, err := detachedTmpfs(ro, opts...)
			if err == nil {
				if err = closeIfErr(fd, b.mountPoint(rel, true)); err == nil {
					err = b.attach(fd, rel)
				}
			}
			if err != nil {
				return templateErr(stepMountTmpfs, m.Target, err)
			}
		case MountBind:
			var st unix.Stat_t
			if err := unix.Lstat(m.Source, &st); err != nil {
				if m.Optional && (err == unix.ENOENT || err == unix.ENOTDIR) {
					continue
				}
				return &SetupError{step: stepBind, arg: m.Source, Err: err}
			}
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				dest, err := os.Readlink(m.Source)
				if err == nil {
					err = b.symlink(dest, rel)
				}
				if err != nil {
					return templateErr(stepSymlink, m.Target, err)
				}
				continue
			}
			fi, err := os.Stat(m.Source)
			if err != nil {
				return &SetupError{step: stepBind, arg: m.Source, Err: err}
			}
			attrs := uint64(unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV)
			if !m.Writable {
				attrs |= unix.MOUNT_ATTR_RDONLY
			}
			fd, err := copyOf(m.Source, true, attrs)
			if err == nil {
				if err = closeIfErr(fd, b.mountPoint(rel, fi.IsDir())); err == nil {
					err = b.attach(fd, rel)
				}
			}
			if err != nil {
				return templateErr(stepBind, m.Source, err)
			}
		default:
			return &SetupError{step: stepMount, arg: m.Target, Err: fmt.Errorf("unknown kind %q", m.Kind)}
		}
	}
	if err := b.dev(); err != nil {
		return templateErr(stepMakeDev, "", err)
	}
	for _, d := range []string{"proc", "tmp", strings.TrimPrefix(WorkspaceDir, "/")} {
		if err := b.mountPoint(d, true); err != nil {
			return templateErr(stepMkdir, "/"+d, err)
		}
	}
	for _, p := range slices.Sorted(maps.Keys(spec.Files)) {
		rel := strings.TrimPrefix(filepath.Clean("/"+p), "/")
		if rel == "" || filepath.Clean(p) != p || !filepath.IsAbs(p) {
			return &SetupError{step: stepWrite, arg: p, Err: unix.EINVAL}
		}
		if err := b.file(rel, []byte(spec.Files[p]), true); err != nil {
			return templateErr(stepWrite, p, err)
		}
	}
	if err := unix.MountSetattr(b.root, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}); err != nil {
		return templateErr(stepReadOnlyRoot, "", err)
	}
	return nil
}

// dev is /dev: a read-only tmpfs with nodes of the host's devices (made
// by the helper, root on the host: a sandbox's init could not), the usual
// links, and a mount point for /dev/shm. Nodes rather than binds of the
// host's: five mounts fewer for every sandbox to copy and tear down. The
// tmpfs is the only mount of a template without nodev, for these nodes;
// nothing in a sandbox can add one (it is read-only, its copy is locked,
// and mknod of a device needs a capability the host's root has alone).
func (b *tmplBuilder) dev() error {
	if err := b.mountPoint("dev", true); err != nil {
		return err
	}
	dev, err := detachedTmpfs(unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, "source", templateSource, "mode", "755", "size", "65536",
		"uid", fmt.Sprint(b.uid), "gid", fmt.Sprint(b.gid))
	if err != nil {
		return err
	}
	d := &tmplBuilder{root: dev, uid: b.uid, gid: b.gid}
	err = func() error {
		for _, name := range devices {
			var st unix.Stat_t
			if err := unix.Stat("/dev/"+name, &st); err != nil {
				return err
			}
			if st.Mode&unix.S_IFMT != unix.S_IFCHR {
				return fmt.Errorf("/dev/%s is not a character device", name)
			}
			if err := unix.Mknodat(dev, name, unix.S_IFCHR|0o600, int(st.Rdev)); err != nil {
				return fmt.Errorf("mknod %s: %w", name, err)
			}
			// As the host's, but for the umask mknod went through.
			if err := unix.Fchmodat(dev, name, st.Mode&0o777, 0); err != nil {
				return err
			}
		}
		for _, link := range slices.Sorted(maps.Keys(devLinks)) {
			if err := d.symlink(devLinks[link], link); err != nil {
				return err
			}
		}
		if err := d.mountPoint("shm", true); err != nil {
			return err
		}
		return unix.MountSetattr(dev, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})
	}()
	if err != nil {
		unix.Close(dev)
		return err
	}
	return b.attach(dev, "dev")
}

// mountPoint makes rel, a directory or an empty file, unless it is there.
func (b *tmplBuilder) mountPoint(rel string, dir bool) error {
	if dir {
		fd, err := b.dir(rel)
		if err == nil {
			unix.Close(fd)
		}
		return err
	}
	return b.file(rel, nil, false)
}

func (b *tmplBuilder) symlink(dest, rel string) error {
	dir, base, err := b.parent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	if err := unix.Symlinkat(dest, dir, base); err != nil {
		return err
	}
	return unix.Fchownat(dir, base, b.uid, b.gid, unix.AT_SYMLINK_NOFOLLOW)
}

// closeIfErr closes fd when err is not nil, and gives err.
func closeIfErr(fd int, err error) error {
	if err != nil {
		unix.Close(fd)
	}
	return err
}

// planTemplateRoot lays out, for rawInitMain, a root made from a copy of a
// template: the copy is on descriptor treeFD when the init runs.
func planTemplateRoot(spec *Spec, treeFD int) (*rootPlan, error) {
	root := filepath.Clean(spec.RootDir)
	r := &rootPlan{root: root, created: map[string]bool{}}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, &SetupError{step: stepMkdir, arg: root, Err: err}
	}
	dev := filepath.Join(root, "dev")
	for _, d := range []string{dev, filepath.Join(dev, "shm"), filepath.Join(root, "proc"), filepath.Join(root, "tmp"), filepath.Join(root, WorkspaceDir)} {
		r.created[d] = true
	}
	r.mount(stepMakePrivate, "", "", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	r.call(stepAttachRoot, "", unix.SYS_MOVE_MOUNT, 0, uintptr(treeFD), r.str(""), atFDCWD, r.str(root), unix.MOVE_MOUNT_F_EMPTY_PATH)
	r.call(stepCloseRoot, "", unix.SYS_CLOSE, 0, uintptr(treeFD))
	r.sandboxMounts(spec)
	r.pivot()
	r.identity(spec)
	return r, nil
}

// planNamespaceRoot lays out, for rawInitMain, a root that is there
// already: the init was cloned in a template namespace, and its own is a
// copy of it, root and all.
func planNamespaceRoot(spec *Spec) *rootPlan {
	r := &rootPlan{root: "/", created: map[string]bool{}}
	r.sandboxMounts(spec)
	r.call(stepChdir, "/", unix.SYS_CHDIR, 0, r.str("/"))
	r.identity(spec)
	return r
}
