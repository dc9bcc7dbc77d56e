package nsjail

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// helperFDMin keeps the in-memory helper's descriptor above any the
// helper's file layout uses, so that nothing is dup'ed over it before the
// exec: the helper gets descriptors 0-3, and Go's fork moves at most as
// many again out of their way, just above them. It also keeps it below 64,
// the size of a new process's descriptor table: growing the table that a
// multithreaded process shares waits for an RCU grace period.
const helperFDMin = 32

var helperExe struct {
	mu   sync.Mutex
	path string
}

// helperPath is what startHelper executes as the helper: the embedded
// helper from a sealed memfd when the binary carries one, else the binary
// itself. A failure is not kept: the next start tries again.
func helperPath() (string, error) {
	helperExe.mu.Lock()
	defer helperExe.mu.Unlock()
	if helperExe.path != "" {
		return helperExe.path, nil
	}
	if len(embeddedHelper) == 0 {
		helperExe.path = "/proc/self/exe"
		return helperExe.path, nil
	}
	p, err := loadEmbeddedHelper()
	if err != nil {
		return "", err
	}
	helperExe.path = p
	return p, nil
}

// loadEmbeddedHelper writes the embedded helper into a sealed memfd, held open
// for the life of the process.
func loadEmbeddedHelper() (string, error) {
	var fd int
	var err error
	// Sealing against writes fails with EBUSY while something else still
	// holds a reference to one of the new pages (seen under load, after the
	// kernel's own wait): a fresh memfd a moment later does.
	for try := 0; ; try++ {
		if fd, err = sealedHelper(); err != unix.EBUSY || try == sealTries-1 {
			break
		}
		time.Sleep(time.Duration(try+1) * 10 * time.Millisecond)
	}
	if err == unix.EBUSY {
		return "", fmt.Errorf("seal the helper: %w (%d tries)", err, sealTries)
	}
	if err != nil {
		return "", err
	}
	high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, helperFDMin)
	unix.Close(fd)
	if err != nil {
		return "", fmt.Errorf("move the helper's descriptor: %w", err)
	}
	return fmt.Sprintf("/proc/self/fd/%d", high), nil
}

// sealTries bounds the attempts at a sealed copy of the helper.
const sealTries = 5

// sealedHelper makes one memfd holding the helper, sealed against any change.
// The error is the bare errno where sealing failed.
func sealedHelper() (int, error) {
	fd, err := unix.MemfdCreate("sandboxd-helper", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return -1, fmt.Errorf("memfd for the helper: %w", err)
	}
	for b := embeddedHelper; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("write the helper: %w", err)
		}
		b = b[n:]
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		unix.Close(fd)
		if err == unix.EBUSY {
			return -1, err
		}
		return -1, fmt.Errorf("seal the helper: %w", err)
	}
	return fd, nil
}
