package nsjail

import (
	"syscall"
	"unsafe"
)

// cloneArgs is struct clone_args of clone3(2), up to its cgroup field.
type cloneArgs struct {
	flags      uint64
	pidfd      uint64
	childTID   uint64
	parentTID  uint64
	exitSignal uint64
	stack      uint64
	stackSize  uint64
	tls        uint64
	setTID     uint64
	setTIDSize uint64
	cgroup     uint64
}

// What a cloned child runs (childEntry).
const (
	cloneProgram = iota + 1 // programMain: the program's process, forked by the init
	cloneInit               // initChildMain: the init's process, forked by the parent
)

// childEntry is where a child from startClone begins. It never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func childEntry(what uintptr, p unsafe.Pointer) {
	switch what {
	case cloneProgram:
		programMain((*programPlan)(p))
	case cloneInit:
		initChildMain((*initPlan)(p))
	}
	for {
		syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 127, 0, 0)
	}
}

// stackTop is the highest 16-byte aligned address in stack.
func stackTop(stack []byte) uintptr {
	return (uintptr(unsafe.Pointer(&stack[0])) + uintptr(len(stack))) &^ 15
}
