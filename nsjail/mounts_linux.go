package nsjail

import "fmt"

// devices are the host nodes bound into the sandbox's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// sandboxOwned is the tmpfs option that gives a tmpfs's root to the sandbox
// user rather than to the init.
var sandboxOwned = fmt.Sprintf("uid=%d,gid=%d", SandboxUID, SandboxGID)
