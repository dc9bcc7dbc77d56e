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
		entry := childEntryFunc
		entry(what, p)
	}
	return int(pid), errno
}

// rawClone3 is clone3 from a raw init, whose child runs childEntry(what,
// p): here a plain fork, on a copy of the init's memory and stack.
//
//go:nosplit
//go:norace
//go:nocheckptr
func rawClone3(args *cloneArgs, size, what uintptr, p unsafe.Pointer) (pid, errno uintptr) {
	args.flags &^= unix.CLONE_VM
	args.stack, args.stackSize = 0, 0
	r1, _, e := syscall.RawSyscall(unix.SYS_CLONE3, uintptr(unsafe.Pointer(args)), size, 0)
	if e == 0 && r1 == 0 {
		entry := childEntryFunc
		entry(what, p)
	}
	return r1, uintptr(e)
}

// sysFstatat is fstatat(2) for raw system calls.
const sysFstatat = unix.SYS_FSTATAT

// childEntryFunc is childEntry called indirectly: the linker's count of
// nosplit frames would add the child's (an init's are more than its
// budget) to the forking function's. The child runs on its copy of the
// forking thread's stack, which has room for them: the budget is for
// stacks about to grow.
var childEntryFunc func(uintptr, unsafe.Pointer)

func init() { childEntryFunc = childEntry }
