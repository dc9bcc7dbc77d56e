package nsjail

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// SandboxUID and SandboxGID are the ids the program runs under inside the
// user namespace. Each is mapped to the host id chosen per sandbox
// (Spec.HostUID).
const (
	SandboxUID = 1000
	SandboxGID = 1000
)

// MaxPathDirs bounds the directories of a command's PATH: a program
// named without a slash is looked up in each.
const MaxPathDirs = 64

// WorkspaceDir is the program's working directory inside the sandbox.
const WorkspaceDir = "/workspace"

// TmpfsInodes caps the files of a sandbox's tmpfs of size bytes (the
// workspace, /tmp, /dev/shm), whoever mounts it: one inode per 4 KiB of
// the size, at least 1024 and at most MaxTmpfsInodes. An empty file takes
// none of the size but pins an inode and a dentry (about 1 KiB of kernel
// memory), and a workspace outlives the step whose cgroup they were
// charged to.
func TmpfsInodes(size int64) int64 {
	return min(max(size/4096, 1024), MaxTmpfsInodes)
}

// MaxTmpfsInodes bounds every tmpfs's files whatever its size: the daemon
// gives a job's workspace to each next step's uid, file by file (about
// 3 µs a file).
const MaxTmpfsInodes = 1 << 14

// fixedRlimits are set in every program before the command's own:
// no core dumps; few queued signals and no POSIX message queue bytes,
// which count up the user namespaces to the limits of the namespaces'
// owner, host root.
var fixedRlimits = []Rlimit{
	{Resource: unix.RLIMIT_CORE},
	{Resource: unix.RLIMIT_SIGPENDING, Value: 256},
	{Resource: unix.RLIMIT_MSGQUEUE},
}

// MountKind says what a Mount puts at its target.
type MountKind string

const (
	// MountBind binds a host path (file or directory). A host symlink is
	// recreated as the same symlink, never followed.
	MountBind MountKind = "bind"
	// MountTmpfs mounts an empty tmpfs of SizeBytes.
	MountTmpfs MountKind = "tmpfs"
)

// Mount is one entry of the sandbox's root. The zero Writable means
// read-only; the zero Optional means a missing source is an error.
type Mount struct {
	Kind      MountKind `json:"kind"`
	Source    string    `json:"source,omitempty"` // host path, for MountBind
	Target    string    `json:"target"`           // absolute path inside the sandbox
	Writable  bool      `json:"writable,omitempty"`
	Optional  bool      `json:"optional,omitempty"`
	SizeBytes int64     `json:"size_bytes,omitempty"` // for MountTmpfs; 0 is the kernel's default (half of RAM)
	Mode      uint32    `json:"mode,omitempty"`       // for MountTmpfs; 0 is 0755
}

// Rlimit is one resource limit set (soft and hard alike) in the program.
type Rlimit struct {
	Resource int    `json:"resource"` // unix.RLIMIT_*
	Value    uint64 `json:"value"`
}

// Command is the program a sandbox runs, and what belongs to that one run.
// It is plain data: Run lays it out for the init (rawCommandBytes).
type Command struct {
	// Argv is the program and its arguments. Argv[0] without a slash is
	// looked up in the PATH of Env (or DefaultPath) inside the sandbox.
	Argv []string `json:"argv"`
	// Env is the program's whole environment, "K=V" each. Nothing else is
	// passed on.
	Env []string `json:"env"`
	// Rlimits for the program, set after fixedRlimits (RLIMIT_CORE 0,
	// RLIMIT_SIGPENDING 256, RLIMIT_MSGQUEUE 0): a command may lower
	// those, and cannot raise them past the hard limits they set.
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// WorkspaceBytes caps the fresh tmpfs at WorkspaceDir, when IO.Workdir
	// does not give a host directory instead.
	WorkspaceBytes int64 `json:"workspace_bytes"`
	// CPUs are the host CPUs (numbers below MaxCPU) the program runs on:
	// its process's affinity, set before its exec, which its threads and
	// children inherit. Empty: the init's, every CPU the helper may use.
	CPUs []int `json:"cpus,omitempty"`
	// StartedAfter, if set, holds the Started event back until the
	// program has run this long (from just before it is given its
	// command): a program that ends sooner has only its Exited event,
	// which implies it started. Zero: Started as soon as it exec'ed.
	StartedAfter time.Duration `json:"started_after,omitempty"`
}

// MaxCPU bounds the CPU numbers of Command.CPUs.
const MaxCPU = 64 * cpuMaskWords

// Spec is everything the init needs to build a sandbox; Run gives its
// command later. It is plain data: Prepare sends it to the helper as JSON.
// Zero values are documented per field.
type Spec struct {
	// HostUID and HostGID are the unprivileged host ids the sandbox user
	// (SandboxUID, SandboxGID) maps to. Both must be non-zero, and no other
	// live sandbox may use them.
	HostUID uint32 `json:"host_uid"`
	HostGID uint32 `json:"host_gid"`
	// InitUID and InitGID are the unprivileged host ids the init runs
	// under (as root of the user namespace). They must differ from HostUID
	// and HostGID, so that the program cannot signal its init; sandboxes may
	// share them.
	InitUID uint32 `json:"init_uid"`
	InitGID uint32 `json:"init_gid"`

	// RootDir is an empty host directory, searchable by anyone, on which the
	// init mounts the new root inside its private mount namespace. Many
	// sandboxes may share one: nothing is ever mounted on it in the host.
	RootDir string `json:"root_dir"`
	// Mounts build the root, in order. Parents come before children.
	Mounts []Mount `json:"mounts"`
	// Files are written into the root before it turns read-only: absolute
	// path inside the sandbox to content (mode 0644). Parent directories are
	// created.
	Files map[string]string `json:"files,omitempty"`
	// TmpBytes caps /tmp and /dev/shm (each a tmpfs).
	TmpBytes int64 `json:"tmp_bytes"`
	// ReadyWorkspaceBytes, if set, is the size of a fresh tmpfs the init mounts
	// at WorkspaceDir before it reports Ready: a command of the same
	// Command.WorkspaceBytes and without a workdir of its own finds its
	// workspace in place, and mounts none on its path. Any other command
	// mounts its own workspace over it. 0: each command mounts its own.
	ReadyWorkspaceBytes int64 `json:"ready_workspace_bytes,omitempty"`
	// Hostname inside the uts namespace; empty is "sandbox".
	Hostname string `json:"hostname,omitempty"`

	// Seccomp is the compiled filter, installed with a listener the init watches. Empty: no filter,
	// which Validate refuses unless AllowNoSeccomp is set (tests only).
	Seccomp        Filter `json:"seccomp"`
	AllowNoSeccomp bool   `json:"allow_no_seccomp,omitempty"`

	// Key, when not empty, names everything in this Spec but HostUID and
	// HostGID: Prepare sends the rest to the helper with the first sandbox
	// of a Key, and later only the Key. Specs given the same Key must not
	// differ in anything else.
	Key string `json:"-"`
}

// Filter is a compiled seccomp program. In JSON it is the base64 of the
// kernel's own layout (8 bytes an instruction): the init decodes it as
// one string rather than hundreds of objects.
type Filter []unix.SockFilter

// MarshalJSON writes the filter as base64.
func (f Filter) MarshalJSON() ([]byte, error) {
	if len(f) == 0 {
		return []byte(`""`), nil
	}
	raw := unsafe.Slice((*byte)(unsafe.Pointer(&f[0])), len(f)*int(unsafe.Sizeof(f[0])))
	out := make([]byte, 0, base64.StdEncoding.EncodedLen(len(raw))+2)
	out = append(out, '"')
	out = base64.StdEncoding.AppendEncode(out, raw)
	return append(out, '"'), nil
}

// UnmarshalJSON reads what MarshalJSON wrote.
func (f *Filter) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return fmt.Errorf("seccomp: %w", err)
	}
	size := int(unsafe.Sizeof(unix.SockFilter{}))
	if len(raw)%size != 0 {
		return fmt.Errorf("seccomp: %d bytes, not a whole number of %d-byte instructions", len(raw), size)
	}
	*f = make(Filter, len(raw)/size)
	if len(raw) > 0 {
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&(*f)[0])), len(raw)), raw)
	}
	return nil
}

// DefaultPath is the program's PATH when Env sets none.
const DefaultPath = "/usr/local/bin:/usr/bin:/bin"

// Validate checks the spec before anything is started. Messages name the
// field. The command is checked by Command.Validate.
func (s *Spec) Validate() error {
	if s.HostUID == 0 || s.HostGID == 0 || s.InitUID == 0 || s.InitGID == 0 {
		return errors.New("host_uid, host_gid, init_uid, init_gid: must be non-zero (a sandbox never maps to host root)")
	}
	if s.InitUID == s.HostUID || s.InitGID == s.HostGID {
		return errors.New("init_uid, init_gid: must differ from host_uid, host_gid (the program must not be able to signal its init)")
	}
	if !path.IsAbs(s.RootDir) {
		return fmt.Errorf("root_dir: %q is not an absolute path", s.RootDir)
	}
	for i, m := range s.Mounts {
		if !path.IsAbs(m.Target) || path.Clean(m.Target) != m.Target || m.Target == "/" {
			return fmt.Errorf("mounts[%d].target: %q must be a clean absolute path other than /", i, m.Target)
		}
		switch m.Kind {
		case MountBind:
			if !path.IsAbs(m.Source) {
				return fmt.Errorf("mounts[%d].source: %q is not an absolute path", i, m.Source)
			}
		case MountTmpfs:
			if m.SizeBytes < 0 {
				return fmt.Errorf("mounts[%d].size_bytes: negative", i)
			}
		default:
			return fmt.Errorf("mounts[%d].kind: unknown %q", i, m.Kind)
		}
	}
	for p := range s.Files {
		if !path.IsAbs(p) || path.Clean(p) != p || p == "/" {
			return fmt.Errorf("files: %q must be a clean absolute path", p)
		}
	}
	if s.TmpBytes < 0 {
		return errors.New("tmp_bytes: negative")
	}
	if s.ReadyWorkspaceBytes < 0 {
		return errors.New("ready_workspace_bytes: negative")
	}
	if len(s.Seccomp) > 4096 {
		return fmt.Errorf("seccomp: %d instructions, the kernel takes at most 4096", len(s.Seccomp))
	}
	if len(s.Seccomp) == 0 && !s.AllowNoSeccomp {
		return errors.New("seccomp: no filter given")
	}
	return nil
}

// Validate checks the command before it is sent. Messages name the field.
func (c *Command) Validate() error {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return errors.New("argv: empty")
	}
	for i, a := range c.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			return fmt.Errorf("argv[%d]: contains a NUL byte", i)
		}
	}
	for i, e := range c.Env {
		if strings.IndexByte(e, 0) >= 0 {
			return fmt.Errorf("env[%d]: contains a NUL byte", i)
		}
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			return fmt.Errorf("env[%d]: %q is not KEY=VALUE", i, e)
		}
	}
	if c.WorkspaceBytes < 0 {
		return errors.New("workspace_bytes: negative")
	}
	return nil
}
