#include "textflag.h"

// func rawClone3(args *cloneArgs, size, what uintptr, p unsafe.Pointer) (pid, errno uintptr)
//
// clone3(args, size) for a child that may share our memory: the child
// starts on the stack args gives, calls childEntry(what, p) there, and
// never comes back; the parent gets the child's pid, or the errno of the
// failure.
TEXT ·rawClone3(SB),NOSPLIT,$0-48
	MOVQ	args+0(FP), DI
	MOVQ	size+8(FP), SI
	MOVQ	what+16(FP), R12	// the kernel keeps R12 and R13 in both processes
	MOVQ	p+24(FP), R13
	MOVQ	$435, AX		// SYS_clone3
	SYSCALL
	TESTQ	AX, AX
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JCC	failed			// -4095..-1 as unsigned: an error
	MOVQ	AX, pid+32(FP)
	MOVQ	$0, errno+40(FP)
	RET
failed:
	NEGQ	AX
	MOVQ	$0, pid+32(FP)
	MOVQ	AX, errno+40(FP)
	RET
child:
	// SP is the top of the new stack. Room for childEntry's arguments;
	// the call leaves SP as any Go function expects it at entry.
	// The call is indirect: the child starts a stack of its own, and the
	// linker's count of nosplit frames, which would add the child's
	// frames to the parent's, starts again with it.
	SUBQ	$16, SP
	MOVQ	R12, 0(SP)
	MOVQ	R13, 8(SP)
	MOVQ	$·childEntry(SB), AX
	CALL	AX
	// childEntry does not return; should it, the child goes.
	MOVQ	$127, DI
	MOVQ	$231, AX		// SYS_exit_group
	SYSCALL
	INT	$3
