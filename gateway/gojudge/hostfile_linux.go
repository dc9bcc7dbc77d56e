package gojudge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// openHostFile opens a host file for reading when it is beneath one of
// dirs: the directory is opened, and the rest of the path resolved from it
// with openat2(RESOLVE_BENEATH), so a symlink (or "..") that would leave it
// fails with EXDEV, whatever the path looks like. Only a regular file is
// taken. The error names the path.
func openHostFile(dirs []string, path string) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("src %q: not an absolute path", path)
	}
	clean := filepath.Clean(path)
	for _, dir := range dirs {
		rel, ok := strings.CutPrefix(clean, dir+"/")
		if !ok || rel == "" {
			continue
		}
		dfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("src %q: opening %s: %w", path, dir, err)
		}
		fd, err := unix.Openat2(dfd, rel, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
		})
		unix.Close(dfd)
		if err == unix.EXDEV {
			return nil, fmt.Errorf("src %q: leaves %s (through a symlink or ..)", path, dir)
		} else if err != nil {
			return nil, fmt.Errorf("src %q: %w", path, err)
		}
		f := os.NewFile(uintptr(fd), path)
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("src %q: %w", path, err)
		}
		if !st.Mode().IsRegular() {
			f.Close()
			return nil, fmt.Errorf("src %q: not a regular file", path)
		}
		return f, nil
	}
	if len(dirs) == 0 {
		return nil, fmt.Errorf("src %q: no host file may be read (the gateway's host_dirs is empty)", path)
	}
	return nil, fmt.Errorf("src %q: not beneath the gateway's host_dirs (%s)", path, strings.Join(dirs, ", "))
}
