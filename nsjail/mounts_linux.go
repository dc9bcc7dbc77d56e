package nsjail

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// devices are the host nodes bound into the sandbox's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// buildRoot assembles the new root on spec.RootDir and pivots into it. It
// runs in the init, inside the new mount namespace, before the command
// comes: WorkspaceDir is left empty for attachWorkspace. Each failure names
// its step.
func buildRoot(spec *Spec) error {
	// Nothing done here may reach the host's mount namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return &SetupError{"make / private", err}
	}
	root := spec.RootDir
	if err := mountTmpfs(root, 0o755, 4<<20, 0, ""); err != nil {
		return err
	}
	for _, m := range spec.Mounts {
		if err := addMount(root, m); err != nil {
			return err
		}
	}
	if err := buildDev(root, spec.TmpBytes); err != nil {
		return err
	}
	if err := mkdirMount("proc", root, "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	if err := mountTmpfs(filepath.Join(root, "tmp"), 0o1777, spec.TmpBytes, 0, sandboxOwned); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(root, WorkspaceDir), 0o755); err != nil {
		return &SetupError{"mkdir " + WorkspaceDir, err}
	}
	for p, content := range spec.Files {
		if err := writeRootFile(root, p, content); err != nil {
			return err
		}
	}

	// pivot_root(".", ".") stacks the old root under the new one; detaching
	// it leaves only the new root visible.
	if err := unix.Chdir(root); err != nil {
		return &SetupError{"chdir " + root, err}
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return &SetupError{"pivot_root", err}
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &SetupError{"detach old root", err}
	}
	if err := unix.Chdir("/"); err != nil {
		return &SetupError{"chdir /", err}
	}
	return remountReadOnly("/")
}

// attachWorkspace puts the command's workspace at WorkspaceDir in the
// built root, and makes it the working directory: workdir, if not -1, is a
// detached mount to attach; otherwise a fresh tmpfs of size bytes.
func attachWorkspace(workdir int, size int64) error {
	if workdir >= 0 {
		if err := unix.MoveMount(workdir, "", unix.AT_FDCWD, WorkspaceDir, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
			return &SetupError{"attach workdir", err}
		}
	} else if err := mountTmpfs(WorkspaceDir, 0o755, size, 0, sandboxOwned); err != nil {
		return err
	}
	if err := unix.Chdir(WorkspaceDir); err != nil {
		return &SetupError{"chdir " + WorkspaceDir, err}
	}
	return nil
}

// addMount puts one profile entry in place under root.
func addMount(root string, m Mount) error {
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
		if err := mountTmpfs(target, mode, m.SizeBytes, 0, owner); err != nil {
			return err
		}
		if !m.Writable {
			return remountReadOnly(target)
		}
		return nil
	case MountBind:
		var st unix.Stat_t
		if err := unix.Lstat(m.Source, &st); err != nil {
			if m.Optional && (err == unix.ENOENT || err == unix.ENOTDIR) {
				return nil
			}
			return &SetupError{"bind " + m.Source, err}
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			// Merged /usr: /bin -> usr/bin. Recreate the link, never follow it.
			dest, err := os.Readlink(m.Source)
			if err != nil {
				return &SetupError{"readlink " + m.Source, err}
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return &SetupError{"mkdir " + filepath.Dir(m.Target), err}
			}
			if err := os.Symlink(dest, target); err != nil {
				return &SetupError{"symlink " + m.Target, err}
			}
			return nil
		}
		return bindMount(m.Source, target, m.Writable)
	}
	return &SetupError{"mount " + m.Target, fmt.Errorf("unknown kind %q", m.Kind)}
}

// bindMount binds source (a file or directory) at target, never with
// set-uid or device files, read-only unless writable.
func bindMount(source, target string, writable bool) error {
	fi, err := os.Stat(source)
	if err != nil {
		return &SetupError{"bind " + source, err}
	}
	if err := makeMountPoint(target, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &SetupError{"bind " + source, err}
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if !writable {
		flags |= unix.MS_RDONLY
	}
	return remount(target, flags)
}

// remountReadOnly makes the mount at target read-only, keeping its other
// flags.
func remountReadOnly(target string) error {
	return remount(target, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV)
}

// remount changes a bind mount's flags. Inside a user namespace the kernel
// refuses to clear flags the mount inherited locked from the host (nosuid,
// noexec, an atime mode...), so the current ones are read and kept.
func remount(target string, flags uintptr) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(target, &sfs); err != nil {
		return &SetupError{"statfs " + target, err}
	}
	for _, f := range [...]struct{ st, ms uintptr }{
		{unix.ST_RDONLY, unix.MS_RDONLY},
		{unix.ST_NOSUID, unix.MS_NOSUID},
		{unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_NOATIME, unix.MS_NOATIME},
		{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(sfs.Flags)&f.st != 0 {
			flags |= f.ms
		}
	}
	if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|flags, ""); err != nil {
		return &SetupError{"remount " + target, err}
	}
	return nil
}

// sandboxOwned is the tmpfs option that gives a tmpfs's root to the sandbox
// user rather than to the init.
var sandboxOwned = fmt.Sprintf("uid=%d,gid=%d", SandboxUID, SandboxGID)

// mountTmpfs mounts a fresh tmpfs at target with the given mode (permission
// and sticky bits, as chmod takes them), size (0: the kernel's default) and
// extra options.
func mountTmpfs(target string, mode uint32, size int64, extra uintptr, options string) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return &SetupError{"mkdir " + target, err}
	}
	data := fmt.Sprintf("mode=%o", mode&0o7777)
	if size > 0 {
		data += fmt.Sprintf(",size=%d", size)
	}
	if options != "" {
		data += "," + options
	}
	if err := unix.Mount("tmpfs", target, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|extra, data); err != nil {
		return &SetupError{"mount tmpfs " + target, err}
	}
	return nil
}

func mkdirMount(source, root, inside, fstype string, flags uintptr, data string) error {
	target := filepath.Join(root, inside)
	if err := os.MkdirAll(target, 0o755); err != nil {
		return &SetupError{"mkdir " + inside, err}
	}
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &SetupError{"mount " + fstype + " " + inside, err}
	}
	return nil
}

// buildDev makes a minimal /dev: the harmless character devices bound from
// the host, the usual symlinks, and a private /dev/shm.
func buildDev(root string, shmBytes int64) error {
	dev := filepath.Join(root, "dev")
	if err := mountTmpfs(dev, 0o755, 64<<10, unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for _, name := range devices {
		target := filepath.Join(dev, name)
		if err := makeMountPoint(target, false); err != nil {
			return err
		}
		// No MS_NODEV here: these nodes must work. They keep the host
		// devtmpfs's own flags.
		if err := unix.Mount("/dev/"+name, target, "", unix.MS_BIND, ""); err != nil {
			return &SetupError{"bind /dev/" + name, err}
		}
	}
	for link, dest := range map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2",
	} {
		if err := os.Symlink(dest, filepath.Join(dev, link)); err != nil {
			return &SetupError{"symlink /dev/" + link, err}
		}
	}
	if err := mountTmpfs(filepath.Join(dev, "shm"), 0o1777, shmBytes, unix.MS_NOEXEC, sandboxOwned); err != nil {
		return err
	}
	return remountReadOnly(dev)
}

// makeMountPoint creates an empty directory or file at target, and its
// parents.
func makeMountPoint(target string, dir bool) error {
	if dir {
		if err := os.MkdirAll(target, 0o755); err != nil {
			return &SetupError{"mkdir " + target, err}
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return &SetupError{"mkdir " + filepath.Dir(target), err}
	}
	f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return &SetupError{"create " + target, err}
	}
	return f.Close()
}

func writeRootFile(root, inside, content string) error {
	target := filepath.Join(root, inside)
	if !strings.HasPrefix(target, root+"/") {
		return &SetupError{"write " + inside, unix.EINVAL}
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return &SetupError{"mkdir " + filepath.Dir(inside), err}
	}
	if err := os.WriteFile(target, []byte(content), 0o644); err != nil {
		return &SetupError{"write " + inside, err}
	}
	return nil
}
