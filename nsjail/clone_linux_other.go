//go:build !amd64

package nsjail

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// startClone forks with clone3 and args: the child runs childEntry(what, p)
// on a copy of this thread, so stack is not used. It runs between the
// runtime's fork hooks, hence nosplit.
//
//go:nosplit
//go:norace
//go:nocheckptr
func startClone(args *cloneArgs, stack []byte, what uintptr, p unsafe.Pointer) (int, syscall.Errno) {
	pid, _, errno := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), unsafe.Sizeof(*args), 0)
	if errno == 0 && pid == 0 {
		childEntry(what, p)
	}
	return int(pid), errno
}
