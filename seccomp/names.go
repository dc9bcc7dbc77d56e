//go:build linux

package seccomp

import (
	"fmt"
	"sync"

	"golang.org/x/sys/unix"
)

//go:generate go run gen_names.go

// numbersX86_64 maps an x86_64 name to its number.
var numbersX86_64 = sync.OnceValue(func() map[string]int32 {
	m := make(map[string]int32, len(namesX86_64))
	for nr, name := range namesX86_64 {
		if name != "" {
			m[name] = int32(nr)
		}
	}
	return m
})

// SyscallNumber returns the x86_64 number of the named system call, e.g. 101
// for "ptrace".
func SyscallNumber(name string) (int32, bool) {
	nr, ok := numbersX86_64()[name]
	return nr, ok
}

// SyscallName names a call as a filter or the listener saw it, for verdicts
// and logs: "ptrace" for a native x86_64 call; "x32 syscall 101" for a call
// with the x32 bit (the number shown without the bit); "i386 syscall 26
// (ptrace)", or "i386 syscall 26" where the name is unknown; "syscall 999" for
// an x86_64 number the table does not know; "arch 0xc00000b7 syscall 5" for
// any other audit arch.
func SyscallName(arch uint32, nr int32) string {
	switch arch {
	case unix.AUDIT_ARCH_X86_64:
		if nr >= 0 && nr&x32SyscallBit != 0 {
			return fmt.Sprintf("x32 syscall %d", nr&^x32SyscallBit)
		}
		if nr >= 0 && int(nr) < len(namesX86_64) && namesX86_64[nr] != "" {
			return namesX86_64[nr]
		}
		return fmt.Sprintf("syscall %d", nr)
	case unix.AUDIT_ARCH_I386:
		if nr >= 0 && int(nr) < len(namesI386) && namesI386[nr] != "" {
			return fmt.Sprintf("i386 syscall %d (%s)", nr, namesI386[nr])
		}
		return fmt.Sprintf("i386 syscall %d", nr)
	}
	return fmt.Sprintf("arch %#x syscall %d", arch, nr)
}
