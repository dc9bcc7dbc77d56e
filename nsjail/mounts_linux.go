package nsjail

import "fmt"

// devices are the host nodes bound into the sandbox's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// devLinks are the symlinks in the sandbox's /dev, by name.
var devLinks = map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}

// sandboxOwned is the tmpfs option that gives a tmpfs's root to the sandbox
// user rather than to the init.
var sandboxOwned = fmt.Sprintf("uid=%d,gid=%d", SandboxUID, SandboxGID)
