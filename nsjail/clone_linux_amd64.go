package nsjail

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawClone3 is clone3(args, size) whose child runs childEntry(what, p) on
// the stack args gives (clone_linux_amd64.s).
func rawClone3(args *cloneArgs, size, what uintptr, p unsafe.Pointer) (pid, errno uintptr)

// startClone starts childEntry(what, p) in a new process made by clone3
// with args, which shares the caller's memory (CLONE_VM) until its exec,
// running on stack. The caller goes on at once: the child may wait long
// for its command, so it cannot borrow the caller's stack as vfork would.
//
// Shared memory spares the kernel the copy of every page table at the
// fork, both processes the copy-on-write faults that follow it, and the
// exec the teardown of the copy. It runs between the runtime's fork hooks,
// hence nosplit.
//
//go:nosplit
func startClone(args *cloneArgs, stack []byte, what uintptr, p unsafe.Pointer) (int, syscall.Errno) {
	args.flags |= unix.CLONE_VM
	args.stack = uint64(uintptr(unsafe.Pointer(&stack[0])))
	args.stackSize = uint64(stackTop(stack) - uintptr(unsafe.Pointer(&stack[0])))
	pid, errno := rawClone3(args, unsafe.Sizeof(*args), what, p)
	return int(pid), syscall.Errno(errno)
}

// sysFstatat is fstatat(2) for raw system calls.
const sysFstatat = unix.SYS_NEWFSTATAT
