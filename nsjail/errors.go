package nsjail

import (
	"fmt"
	"syscall"
)

// SetupError is a failure of the sandbox itself, naming the step that
// failed: "mount tmpfs /tmp: permission denied". It is never the program's
// fault.
type SetupError struct {
	step step
	arg  string // the step's path, if it has one
	Err  error
}

// Step names the step that failed, with its path: "bind /usr".
func (e *SetupError) Step() string {
	if e.arg == "" {
		return e.step.String()
	}
	return e.step.String() + " " + e.arg
}

func (e *SetupError) Error() string { return e.Step() + ": " + e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// ExecError says the program could not be started: no such file, not
// executable, bad format. It is the program's fault, not the sandbox's.
type ExecError struct {
	Path string
	Err  error
}

func (e *ExecError) Error() string { return fmt.Sprintf("exec %s: %v", e.Path, e.Err) }
func (e *ExecError) Unwrap() error { return e.Err }

// isProgramExecErrno reports whether execve failing with errno is about the
// program file rather than the sandbox.
//
//go:nosplit
func isProgramExecErrno(errno syscall.Errno) bool {
	switch errno {
	case syscall.ENOENT, syscall.EACCES, syscall.ENOEXEC, syscall.ENOTDIR, syscall.ELOOP,
		syscall.EISDIR, syscall.ETXTBSY, syscall.ENAMETOOLONG, syscall.E2BIG, syscall.ELIBBAD, syscall.EPERM:
		return true
	}
	return false
}
