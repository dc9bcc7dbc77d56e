package nsjail

// devices are the host nodes bound into the sandbox's /dev.
var devices = []string{"null", "zero", "full", "random", "urandom"}

// devLinks are the symlinks in the sandbox's /dev, by name.
var devLinks = map[string]string{"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"}

// sandboxOwned is the tmpfs option that gives a tmpfs's root to the sandbox
// user rather than to the init: SandboxUID and SandboxGID, written out so
// that no code runs for it at every start of sandboxd
// (TestSandboxOwnedNamesTheSandboxUser).
const sandboxOwned = "uid=1000,gid=1000"

// procMasked are the files of the sandbox's /proc covered by /dev/null:
// those that a sandbox user can read and that show what other sandboxes
// or the host do. /proc/locks lists every lock of the host, the engine's
// OFD lock on each live sandbox's uid (one byte range per uid) among them.
// (Of the other usual masks, kcore, sched_debug and sysrq-trigger do not
// exist here, and timer_list, kmsg and the kpage files are root's alone;
// keys and key-users show only what the sandbox's own user may see.)
var procMasked = []string{"locks"}
