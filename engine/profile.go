package engine

import (
	"fmt"
	"runtime"
	"sort"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// Profile is a named sandbox recipe: what the root holds, the environment,
// and the limits a step gets when it sets none.
type Profile struct {
	Name string
	// Binds are host paths bound read-only at the same place inside. A
	// missing path is skipped; a host symlink is recreated as a symlink.
	Binds []string
	// Env is the base environment of every step; a step's own env wins.
	Env map[string]string
	// Defaults fill the limits a step leaves out.
	Defaults api.Limits
	// Max bounds what a step may ask for; above it is an error, never
	// silently lowered.
	Max api.Limits
	// WorkspaceBytes caps the private workspace tmpfs, unless a job asks
	// for another size, at most MaxWorkspaceBytes; TmpBytes caps /tmp and
	// /dev/shm.
	WorkspaceBytes    int64
	MaxWorkspaceBytes int64
	TmpBytes          int64
}

// HostCPUs is how many CPUs this process may run on: the most a step's
// cpus limit (and a profile's maximum of it) can be.
func HostCPUs() int { return runtime.NumCPU() }

// DefaultProfile is enough for shell, C, C++ and Python programs on a
// Debian-like host. A step gets one CPU's worth of CPU time per second
// unless it asks for more, at most every CPU of the host.
func DefaultProfile() Profile {
	return Profile{
		Name: "default",
		Binds: []string{
			"/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
			"/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives",
			"/etc/localtime", "/etc/nsswitch.conf", "/etc/python3", "/etc/python3.11",
		},
		Env: map[string]string{
			"PATH": "/usr/local/bin:/usr/bin:/bin",
			"HOME": "/workspace",
			"LANG": "C.UTF-8",
			"USER": "sandbox",
		},
		Defaults: api.Limits{
			CPUTimeMS:     10_000,
			WallTimeMS:    20_000,
			MemoryBytes:   512 << 20,
			PIDs:          64,
			OutputBytes:   1 << 20,
			FileSizeBytes: 16 << 20,
			OpenFiles:     256,
			StackBytes:    64 << 20,
			CPUs:          1,
		},
		Max: api.Limits{
			CPUTimeMS:     300_000,
			WallTimeMS:    600_000,
			MemoryBytes:   4 << 30,
			PIDs:          4096,
			OutputBytes:   64 << 20,
			FileSizeBytes: 1 << 30,
			OpenFiles:     65536,
			StackBytes:    4 << 30,
			CPUs:          float64(HostCPUs()),
		},
		WorkspaceBytes:    64 << 20,
		MaxWorkspaceBytes: 1 << 30,
		TmpBytes:          64 << 20,
	}
}

// Environ merges the profile's env with a step's into "K=V" lines, sorted
// for a stable order.
func (p *Profile) Environ(step map[string]string) []string {
	merged := make(map[string]string, len(p.Env)+len(step))
	for k, v := range p.Env {
		merged[k] = v
	}
	for k, v := range step {
		merged[k] = v
	}
	env := make([]string, 0, len(merged))
	for k, v := range merged {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env
}

// ValidateEnv checks a step's environment; name prefixes messages.
func ValidateEnv(env map[string]string, name string) error {
	for k, v := range env {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("%s: invalid variable name %q", name, k)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("%s[%q]: value contains a NUL byte", name, k)
		}
	}
	return nil
}

// etcFiles are the generated files of the sandbox's /etc.
func etcFiles(hostname string) map[string]string {
	return map[string]string{
		"/etc/passwd":   "root:x:0:0:root:/root:/usr/sbin/nologin\nsandbox:x:1000:1000:sandbox:/workspace:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
		"/etc/group":    "root:x:0:\nsandbox:x:1000:\nnogroup:x:65534:\n",
		"/etc/hosts":    "127.0.0.1\tlocalhost " + hostname + "\n::1\tlocalhost ip6-localhost ip6-loopback\n",
		"/etc/hostname": hostname + "\n",
	}
}
