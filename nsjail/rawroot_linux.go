package nsjail

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A rootOp is one step of building a sandbox's root, laid out for raw
// system calls: its arguments point into strings the plan keeps.
type rootOp struct {
	kind  uint32
	nr    uintptr    // opSyscall: the call
	a     [6]uintptr // its arguments
	okErr uintptr    // an errno that counts as done (EEXIST for a mkdir), or 0
	step  step       // what a failure reports, with arg
	arg   string
}

const (
	opSyscall   uint32 = iota + 1
	opRemount          // a[0] path, a[1] flags: bind-remount with the flags the mount has (statfs) plus a[1]
	opWriteFile        // a[0] path, a[1] data, a[2] length
	opCreate           // a[0] path: an empty file to mount on
	opLoUp             // bring lo up (a[0]: an ifreq named lo)
)

// rootPlan builds a root without Go: a list of operations and the memory
// they point into.
type rootPlan struct {
	ops  []rootOp
	keep [][]byte

	created map[string]bool // directories the plan makes, under the new root
	root    string
	statfs  unix.Statfs_t
	ifreq   [40]byte
	empty   [1]byte
}

func (r *rootPlan) str(s string) uintptr {
	b := append([]byte(s), 0)
	r.keep = append(r.keep, b)
	return uintptr(unsafe.Pointer(&b[0]))
}

func (r *rootPlan) op(s step, arg string, op rootOp) {
	op.step, op.arg = s, arg
	r.ops = append(r.ops, op)
}

func (r *rootPlan) call(s step, arg string, nr uintptr, okErr syscall.Errno, args ...uintptr) {
	op := rootOp{kind: opSyscall, nr: nr, okErr: uintptr(okErr)}
	copy(op.a[:], args)
	r.op(s, arg, op)
}

// mkdirAll makes dir and its parents below the root; inside, at most once.
func (r *rootPlan) mkdirAll(dir string) {
	dir = filepath.Clean(dir)
	if dir == r.root || !strings.HasPrefix(dir, r.root+"/") || r.created[dir] {
		return
	}
	r.mkdirAll(filepath.Dir(dir))
	r.created[dir] = true
	r.call(stepMkdir, dir, unix.SYS_MKDIRAT, unix.EEXIST, atFDCWD, r.str(dir), 0o755)
}

func (r *rootPlan) mount(s step, arg, source, target, fstype string, flags uintptr, data string) {
	src, fs, d := uintptr(0), uintptr(0), uintptr(0)
	if source != "" {
		src = r.str(source)
	} else {
		src = uintptr(unsafe.Pointer(&r.empty[0]))
	}
	if fstype != "" {
		fs = r.str(fstype)
	}
	if data != "" {
		d = r.str(data)
	}
	r.call(s, arg, unix.SYS_MOUNT, 0, src, r.str(target), fs, flags, d)
}

func (r *rootPlan) tmpfs(target string, mode uint32, size int64, extra uintptr, options string) {
	r.mkdirAll(target)
	data := fmt.Sprintf("mode=%o", mode&0o7777)
	if size > 0 {
		data += fmt.Sprintf(",size=%d,nr_inodes=%d", size, TmpfsInodes(size))
	}
	if options != "" {
		data += "," + options
	}
	r.mount(stepMountTmpfs, target, "tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|extra, data)
}

func (r *rootPlan) remount(target string, flags uintptr) {
	r.op(stepRemount, target, rootOp{kind: opRemount, a: [6]uintptr{r.str(target), flags}})
}

func (r *rootPlan) mountPoint(target string, dir bool) {
	if dir {
		r.mkdirAll(target)
		return
	}
	r.mkdirAll(filepath.Dir(target))
	r.op(stepCreate, target, rootOp{kind: opCreate, a: [6]uintptr{r.str(target)}})
}

// planRoot lays out what buildRoot does, for rawInitMain. The host's side
// (what each bind source is) is looked at now.
func planRoot(spec *Spec) (*rootPlan, error) {
	root := filepath.Clean(spec.RootDir)
	r := &rootPlan{root: root, created: map[string]bool{}}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, &SetupError{step: stepMkdir, arg: root, Err: err}
	}
	r.mount(stepMakePrivate, "", "", "/", "", unix.MS_REC|unix.MS_PRIVATE, "")
	r.mount(stepMountTmpfs, root, "tmpfs", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=755,size=4194304")
	for _, m := range spec.Mounts {
		target := filepath.Join(root, m.Target)
		switch m.Kind {
		case MountTmpfs:
			mode := m.Mode
			if mode == 0 {
				mode = 0o755
			}
			owner := ""
			if m.Writable {
				owner = sandboxOwned
			}
			r.tmpfs(target, mode, m.SizeBytes, 0, owner)
			if !m.Writable {
				r.remount(target, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)
			}
		case MountBind:
			var st unix.Stat_t
			if err := unix.Lstat(m.Source, &st); err != nil {
				if m.Optional && (err == unix.ENOENT || err == unix.ENOTDIR) {
					continue
				}
				return nil, &SetupError{step: stepBind, arg: m.Source, Err: err}
			}
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				dest, err := os.Readlink(m.Source)
				if err != nil {
					return nil, &SetupError{step: stepReadlink, arg: m.Source, Err: err}
				}
				r.mkdirAll(filepath.Dir(target))
				r.call(stepSymlink, m.Target, unix.SYS_SYMLINKAT, 0, r.str(dest), atFDCWD, r.str(target))
				continue
			}
			fi, err := os.Stat(m.Source)
			if err != nil {
				return nil, &SetupError{step: stepBind, arg: m.Source, Err: err}
			}
			r.mountPoint(target, fi.IsDir())
			r.mount(stepBind, m.Source, m.Source, target, "", unix.MS_BIND|unix.MS_REC, "")
			flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
			if !m.Writable {
				flags |= unix.MS_RDONLY
			}
			r.remount(target, flags)
		default:
			return nil, &SetupError{step: stepMount, arg: m.Target, Err: fmt.Errorf("unknown kind %q", m.Kind)}
		}
	}
	dev := filepath.Join(root, "dev")
	r.tmpfs(dev, 0o755, 64<<10, unix.MS_NOEXEC, "")
	for _, name := range devices {
		target := filepath.Join(dev, name)
		r.mountPoint(target, false)
		r.mount(stepBind, "/dev/"+name, "/dev/"+name, target, "", unix.MS_BIND, "")
	}
	for _, link := range slices.Sorted(maps.Keys(devLinks)) {
		r.call(stepSymlink, "/dev/"+link, unix.SYS_SYMLINKAT, 0, r.str(devLinks[link]), atFDCWD, r.str(filepath.Join(dev, link)))
	}
	r.mkdirAll(filepath.Join(dev, "shm"))
	r.remount(dev, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)
	r.sandboxMounts(spec)
	r.mkdirAll(filepath.Join(root, WorkspaceDir))
	for _, p := range slices.Sorted(maps.Keys(spec.Files)) {
		target := filepath.Join(root, p)
		if !strings.HasPrefix(target, root+"/") {
			return nil, &SetupError{step: stepWrite, arg: p, Err: unix.EINVAL}
		}
		r.mkdirAll(filepath.Dir(target))
		data := []byte(spec.Files[p])
		r.keep = append(r.keep, data)
		var ptr uintptr
		if len(data) > 0 {
			ptr = uintptr(unsafe.Pointer(&data[0]))
		}
		r.op(stepWrite, p, rootOp{kind: opWriteFile, a: [6]uintptr{r.str(target), ptr, uintptr(len(data))}})
	}
	r.pivot()
	r.remount("/", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)
	r.identity(spec)
	return r, nil
}

// sandboxMounts are the mounts each sandbox gets of its own, however its
// root was made: /dev/shm and /tmp, and /proc of its pid namespace.
func (r *rootPlan) sandboxMounts(spec *Spec) {
	r.tmpfs(filepath.Join(r.root, "dev", "shm"), 0o1777, spec.TmpBytes, unix.MS_NOEXEC, sandboxOwned)
	proc := filepath.Join(r.root, "proc")
	r.mkdirAll(proc)
	r.mount(stepMountProc, "", "proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
	for _, f := range procMasked {
		r.mount(stepMask, "/proc/"+f, filepath.Join(r.root, "dev/null"), filepath.Join(proc, f), "", unix.MS_BIND, "")
	}
	r.tmpfs(filepath.Join(r.root, "tmp"), 0o1777, spec.TmpBytes, 0, sandboxOwned)
}

// pivot makes the root built at r.root the namespace's root, and lets go
// of the host's.
func (r *rootPlan) pivot() {
	r.call(stepChdir, r.root, unix.SYS_CHDIR, 0, r.str(r.root))
	dot := r.str(".")
	r.call(stepPivotRoot, "", unix.SYS_PIVOT_ROOT, 0, dot, dot)
	r.call(stepDetachOldRoot, "", unix.SYS_UMOUNT2, 0, dot, unix.MNT_DETACH)
	r.call(stepChdir, "/", unix.SYS_CHDIR, 0, r.str("/"))
}

// identity names the sandbox's host and brings its loopback up.
func (r *rootPlan) identity(spec *Spec) {
	hostname := spec.Hostname
	if hostname == "" {
		hostname = "sandbox"
	}
	r.call(stepSethostname, "", unix.SYS_SETHOSTNAME, 0, r.str(hostname), uintptr(len(hostname)))
	r.call(stepSetdomainname, "", unix.SYS_SETDOMAINNAME, 0, r.str("sandbox"), uintptr(len("sandbox")))
	copy(r.ifreq[:], "lo")
	r.op(stepLoUp, "", rootOp{kind: opLoUp, a: [6]uintptr{uintptr(unsafe.Pointer(&r.ifreq[0]))}})
}

// statfs flags a bind remount must keep (see remount).
var keptFlags = [...]struct{ st, ms uintptr }{
	{unix.ST_RDONLY, unix.MS_RDONLY},
	{unix.ST_NOSUID, unix.MS_NOSUID},
	{unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_NOATIME, unix.MS_NOATIME},
	{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
}

// runRoot runs the plan's operations; on failure it returns the failed
// one's index and errno, else -1.
//
//go:nosplit
//go:norace
//go:nocheckptr
func runRoot(r *rootPlan) (int, syscall.Errno) {
	for i := 0; i < len(r.ops); i++ {
		op := &r.ops[i]
		var errno syscall.Errno
		var r1 uintptr
		switch op.kind {
		case opSyscall:
			_, _, errno = syscall.RawSyscall6(op.nr, op.a[0], op.a[1], op.a[2], op.a[3], op.a[4], op.a[5])
		case opRemount:
			if _, _, errno = syscall.RawSyscall(syscall.SYS_STATFS, op.a[0], uintptr(unsafe.Pointer(&r.statfs)), 0); errno == 0 {
				flags := op.a[1] | unix.MS_BIND | unix.MS_REMOUNT
				for k := 0; k < len(keptFlags); k++ {
					if uintptr(r.statfs.Flags)&keptFlags[k].st != 0 {
						flags |= keptFlags[k].ms
					}
				}
				_, _, errno = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(&r.empty[0])), op.a[0], 0, flags, 0, 0)
			}
		case opCreate:
			r1, _, errno = syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, op.a[0], unix.O_CREAT|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644, 0, 0)
			if errno == 0 {
				syscall.RawSyscall(syscall.SYS_CLOSE, r1, 0, 0)
			}
		case opWriteFile:
			r1, _, errno = syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, op.a[0], unix.O_CREAT|unix.O_WRONLY|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644, 0, 0)
			if errno == 0 {
				fd := r1
				for done := uintptr(0); done < op.a[2]; {
					r1, _, errno = syscall.RawSyscall(syscall.SYS_WRITE, fd, op.a[1]+done, op.a[2]-done)
					if errno == syscall.EINTR {
						errno = 0
						continue
					}
					if errno != 0 {
						break
					}
					done += r1
				}
				syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
			}
		case opLoUp:
			r1, _, errno = syscall.RawSyscall(syscall.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if errno == 0 {
				fd := r1
				if _, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, fd, unix.SIOCGIFFLAGS, op.a[0]); errno == 0 {
					*(*uint16)(unsafe.Pointer(&r.ifreq[16])) |= unix.IFF_UP
					_, _, errno = syscall.RawSyscall(syscall.SYS_IOCTL, fd, unix.SIOCSIFFLAGS, op.a[0])
				}
				syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
			}
		}
		if errno != 0 && uintptr(errno) != op.okErr {
			return i, errno
		}
	}
	return -1, 0
}
