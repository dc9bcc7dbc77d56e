package nsjail

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// initFDMin keeps the in-memory init's descriptor above any the child's
// file layout uses, so that nothing is dup'ed over it before the exec: the
// helper gets descriptors 0-3, and Go's fork moves at most as many again
// out of their way, just above them. It also keeps it below 64, the size
// of a new process's descriptor table: growing the table that a
// multithreaded process shares waits for an RCU grace period, which cost
// every `sandboxd exec` some 7 ms when the descriptor was 1000.
const initFDMin = 32

var initExe struct {
	mu   sync.Mutex
	path string
}

// initPath is what Start executes as the init: the embedded init from a
// sealed memfd when the binary carries one, else the binary itself. A
// failure is not kept: the next sandbox tries again.
func initPath() (string, error) {
	initExe.mu.Lock()
	defer initExe.mu.Unlock()
	if initExe.path != "" {
		return initExe.path, nil
	}
	if len(embeddedInit) == 0 {
		initExe.path = "/proc/self/exe"
		return initExe.path, nil
	}
	p, err := loadEmbeddedInit()
	if err != nil {
		return "", err
	}
	initExe.path = p
	return p, nil
}

// loadEmbeddedInit writes the embedded init into a sealed memfd, held open
// for the life of the process.
func loadEmbeddedInit() (string, error) {
	var fd int
	var err error
	// Sealing against writes fails with EBUSY while something else still
	// holds a reference to one of the new pages (seen under load, after the
	// kernel's own wait): a fresh memfd a moment later does.
	for try := 0; ; try++ {
		if fd, err = sealedInit(); err != unix.EBUSY || try == sealTries-1 {
			break
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
	}
	if err == unix.EBUSY {
		return "", fmt.Errorf("seal the init: %w (%d tries)", err, sealTries)
	}
	if err != nil {
		return "", err
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, initFDMin)
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("move the init's descriptor: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", high), nil
}

// sealTries bounds the attempts at a sealed copy of the init.
const sealTries = 5

// sealedInit makes one memfd holding the init, sealed against any change.
// The error is the bare errno where sealing failed.
func sealedInit() (int, error) {
	fd, err := unix.MemfdCreate("sandboxd-init", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd for the init: %w", err)
	}
	for b := embeddedInit; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write the init: %w", err)
		}
		b = b[n:]
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		if err == unix.EBUSY {
			return -1, err
		}
		return -1, fmt.Errorf("seal the init: %w", err)
	}
	return fd, nil
}
