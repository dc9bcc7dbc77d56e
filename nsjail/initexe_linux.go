package nsjail

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

// initFDMin keeps the in-memory init's descriptor above any the child's
// file layout uses, so that nothing is dup'ed over it before the exec.
const initFDMin = 1000

var initExe struct {
	once sync.Once
	path string
	err  error
}

// initPath is what Start executes as the init: the embedded init from a
// sealed memfd when the binary carries one, else the binary itself.
func initPath() (string, error) {
	initExe.once.Do(func() {
		if len(embeddedInit) == 0 {
			initExe.path = "/proc/self/exe"
			return
		}
		initExe.path, initExe.err = loadEmbeddedInit()
	})
	return initExe.path, initExe.err
}

// loadEmbeddedInit writes the embedded init into a sealed memfd, held open
// for the life of the process.
func loadEmbeddedInit() (string, error) {
	fd, err := unix.MemfdCreate("sandboxd-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return "", fmt.Errorf("memfd for the init: %w", err)
	}
	for b := embeddedInit; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return "", fmt.Errorf("write the init: %w", err)
		}
		b = b[n:]
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		return "", fmt.Errorf("seal the init: %w", err)
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, initFDMin)
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("move the init's descriptor: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", high), nil
}
