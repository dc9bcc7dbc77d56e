//go:build linux

package seccomp

import (
	"slices"

	"golang.org/x/sys/unix"
)

// DefaultProgram is Compile(DefaultPolicy()), compiled when the package was
// built rather than at each start: a one-shot `sandboxd exec` would spend
// a fifth of a millisecond compiling it. TestDefaultProgramIsCompiled
// keeps defaultProgram (default_program_data.go) equal to a fresh compile.
func DefaultProgram() []unix.SockFilter { return slices.Clone(defaultProgram) }
