package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
)

// judgeStdout does what a step asks of its stdout once the step has ended:
// writes it to stdout_to (unless the sandbox failed: stepErr), then
// compares it with expected_stdout or expected_stdout_file. The stdout is
// still raw (not yet in the job's output encoding). ws is nil for a job
// with no workspace of the daemon's (never with stdout_to or
// expected_stdout_file).
func judgeStdout(sr *api.StepResult, stepErr error, cs *checkedStep, ws *workspace) {
	s := cs.step
	if s.StdoutTo != "" && ws != nil && stepErr == nil {
		if err := ws.writeStdout(s.StdoutTo, sr.Stdout); err != nil {
			// The program's output did not reach the file a checker
			// would read: never an ok step.
			if sr.Verdict == api.VerdictOK {
				sr.Verdict = api.VerdictOutputLimit
			}
			addMessage(sr, fmt.Sprintf("stdout_to %q: %v", s.StdoutTo, err))
		}
	}
	var want string
	switch {
	case s.ExpectedStdout != nil:
		want = *s.ExpectedStdout
	case s.ExpectedStdoutFile != "":
		var err error
		if ws == nil {
			err = errors.New("no such file")
		} else {
			want, err = ws.readExpected(s.ExpectedStdoutFile, cs.limits.OutputBytes)
		}
		if err != nil {
			no := false
			sr.StdoutMatches = &no
			addMessage(sr, fmt.Sprintf("expected_stdout_file %q: %v", s.ExpectedStdoutFile, err))
			return
		}
	default:
		return
	}
	// A truncated stdout is never an answer, whatever its prefix.
	ok, why := false, ""
	if !sr.StdoutTruncated {
		ok, why = cs.check.match(sr.Stdout, want)
	}
	sr.StdoutMatches = &ok
	if !ok && why != "" && sr.Verdict == api.VerdictOK {
		addMessage(sr, why)
	}
}

func addMessage(sr *api.StepResult, msg string) {
	if sr.Message != "" {
		msg = sr.Message + "; " + msg
	}
	sr.Message = msg
}

// resolveBeneath confines a lookup to the workspace: no symlink anywhere
// on the path, no "..", no other mount. Writes use it: a cached file
// (a read-only bind) is never written through or replaced.
const resolveBeneath = resolveRead | unix.RESOLVE_NO_XDEV

// resolveRead confines a read the same way but may end on a cached file:
// in the host's view of a workspace, the only mounts beneath it are the
// daemon's read-only binds of the file cache (files[].cached); whatever a
// program mounts stays in its own mount namespace.
const resolveRead = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// writeStdout puts a step's stdout into the workspace file name (a
// validated relative path) after the step, when none of its processes
// runs: whatever the program left at that name (a file, a symlink, a
// FIFO) is replaced by a new regular file, mode 0644; missing directories
// on the way are made. A symlink on the way, or a directory at the name,
// is an error: nothing is written through either.
func (w *workspace) writeStdout(name, data string) error {
	// No fork while the file is open for writing (see writeFile).
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	root, err := unix.Open(w.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return errors.New(withoutPath(&os.PathError{Op: "open the workspace", Err: err}))
	}
	defer unix.Close(root)
	dirfd := root
	if dir := path.Dir(name); dir != "." {
		if dirfd, err = mkdirsBeneath(root, dir); err != nil {
			return err
		}
		defer unix.Close(dirfd)
	}
	base := path.Base(name)
	switch err := unix.Unlinkat(dirfd, base, 0); err {
	case nil, unix.ENOENT:
	case unix.EISDIR:
		return errors.New("a directory is in the way")
	default:
		return fmt.Errorf("remove what is there: %w", err)
	}
	fd, err := unix.Openat(dirfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	_, err = f.WriteString(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		// Nothing half-written stays for a checker to read.
		unix.Unlinkat(dirfd, base, 0)
		return fmt.Errorf("the workspace is full (%d bytes of stdout)", len(data))
	}
	if err != nil {
		unix.Unlinkat(dirfd, base, 0)
		return fmt.Errorf("write: %w", withoutPathErr(err))
	}
	return nil
}

// withoutPathErr is err's cause when it is an *os.PathError.
func withoutPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// mkdirsBeneath opens the directory rel beneath root, making what is
// missing of it (mode 0755). The descriptor is the caller's to close.
func mkdirsBeneath(root int, rel string) (int, error) {
	cur := root
	parts := strings.Split(rel, "/")
	for i, part := range parts {
		at := strings.Join(parts[:i+1], "/")
		if err := unix.Mkdirat(cur, part, 0o755); err != nil && err != unix.EEXIST {
			if cur != root {
				unix.Close(cur)
			}
			return -1, fmt.Errorf("mkdir %s: %w", at, err)
		}
		// RESOLVE_NO_SYMLINKS: a symlink, this part too, is ELOOP.
		next, err := unix.Openat2(cur, part, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: resolveBeneath,
		})
		if cur != root {
			unix.Close(cur)
		}
		switch {
		case err == unix.ELOOP:
			return -1, fmt.Errorf("%s: a symlink is in the way", at)
		case err == unix.ENOTDIR:
			return -1, fmt.Errorf("%s: a file that is not a directory is in the way", at)
		case err != nil:
			return -1, fmt.Errorf("open %s: %w", at, err)
		}
		cur = next
	}
	return cur, nil
}

// readExpected reads a step's expected output from the workspace file
// name, as tracked files are read (never through a symlink, only a regular
// file), at most limit bytes: a longer one could only be compared with a
// stdout that was cut, which never matches.
func (w *workspace) readExpected(name string, limit int64) (string, error) {
	root, err := unix.Open(w.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", errors.New(withoutPath(&os.PathError{Op: "open the workspace", Err: err}))
	}
	defer unix.Close(root)
	fd, err := unix.Openat2(root, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: resolveRead,
	})
	switch {
	case err == unix.ENOENT || err == unix.ENOTDIR:
		return "", errors.New("no such file")
	case err == unix.ELOOP:
		return "", errors.New("a symlink is on its path")
	case err != nil:
		return "", fmt.Errorf("open: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return "", fmt.Errorf("stat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return "", errors.New("not a regular file")
	}
	if st.Size > limit {
		return "", fmt.Errorf("%d bytes, more than the step's output_bytes (%d)", st.Size, limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("read: %w", withoutPathErr(err))
	case int64(len(data)) > limit:
		return "", fmt.Errorf("more than the step's output_bytes (%d)", limit)
	}
	return string(data), nil
}
