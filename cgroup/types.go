package cgroup

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Mode says which cgroup layout the host offers.
type Mode string

const (
	// ModeV2 is a pure cgroup v2 host: one unified hierarchy mounted at
	// Config.Root with the memory and pids controllers delegated to us.
	ModeV2 Mode = "v2"
	// ModeV1 is a pure cgroup v1 host: one hierarchy per controller (or per
	// group of controllers) under Config.Root and no cgroup2 mount.
	ModeV1 Mode = "v1"
	// ModeHybrid has v1 hierarchies for the controllers plus a cgroup2 mount
	// (usually Config.Root/unified) that carries no controllers but still
	// offers cgroup.kill, cgroup.events, cpu.stat and CLONE_INTO_CGROUP.
	ModeHybrid Mode = "hybrid"
)

// Features records what the running kernel offers beneath our subtree.
// Every field is probed at Open; none is assumed from the kernel version
// except CloneIntoCgroup, which has no file to probe.
type Features struct {
	// CgroupKill: the sandbox's cgroup2 group has cgroup.kill (Linux 5.14+).
	// Without it Kill freezes the group and signals each process.
	CgroupKill bool `json:"cgroup_kill"`
	// CloneIntoCgroup: a cgroup2 hierarchy is in use and the kernel is
	// 5.7+, so Handover.Init and Handover.Program can be passed to
	// clone3(CLONE_INTO_CGROUP).
	CloneIntoCgroup bool `json:"clone_into_cgroup"`
	// MemoryPeak: a peak memory figure exists (v2 memory.peak, Linux 5.19+;
	// v1 memory.max_usage_in_bytes). Without it Stats.MemoryPeak is 0.
	MemoryPeak bool `json:"memory_peak"`
	// PIDsPeak: pids.peak exists. Without it Stats.PIDsPeak is 0.
	PIDsPeak bool `json:"pids_peak"`
	// SwapLimit: swap can be forbidden (v2 memory.swap.max, v1
	// memory.memsw.limit_in_bytes). Without it a sandbox may swap if the host
	// has swap.
	SwapLimit bool `json:"swap_limit"`
	// OOMGroup: memory.oom.group exists (v2 only), so an OOM kill takes the
	// whole program tree. On v1 the kernel kills one process and the caller
	// is expected to Kill the rest.
	OOMGroup bool `json:"oom_group"`
	// CPULimit: the program tree's CPU rate can be capped (Limits.CPUQuota)
	// and its throttled time read: the v2 cpu controller is enabled in our
	// subtree (cpu.max), or a v1 cpu hierarchy with CFS bandwidth control
	// is mounted (cpu.cfs_quota_us). Without it Limits.CPUQuota is refused.
	CPULimit bool `json:"cpu_limit"`
	// SocketLimit: the socket buffers of a sandbox (TCP, UDP and the other
	// protocols the kernel accounts per cgroup) are bounded by its memory
	// limit. On v2 they count in memory.current. On v1 they count only once
	// memory.kmem.tcp.limit_in_bytes is set, in a counter of their own,
	// which NewSandbox sets to the memory limit; without that file (or on v2
	// without the memory controller) they are charged to no cgroup.
	SocketLimit bool `json:"socket_limit"`
}

// Config tells Open where to find the cgroup filesystems and what to call
// our subtree. The zero value of every field but Subtree selects the host's
// real files; tests point them at fakes.
type Config struct {
	// Root is where the cgroup filesystems are mounted. Default
	// "/sys/fs/cgroup". Only cgroup mounts at Root or beneath it are used.
	Root string
	// MountInfo is the mountinfo file to read. Default "/proc/self/mountinfo".
	MountInfo string
	// SelfCgroup is the file naming this process's own groups. Default
	// "/proc/self/cgroup".
	SelfCgroup string
	// Subtree is the name of our subtree beneath this process's own group in
	// every hierarchy, e.g. "sandboxd". Required; a single path element.
	Subtree string
}

const (
	defaultRoot       = "/sys/fs/cgroup"
	defaultMountInfo  = "/proc/self/mountinfo"
	defaultSelfCgroup = "/proc/self/cgroup"
)

func (c Config) withDefaults() Config {
	if c.Root == "" {
		c.Root = defaultRoot
	}
	if c.MountInfo == "" {
		c.MountInfo = defaultMountInfo
	}
	if c.SelfCgroup == "" {
		c.SelfCgroup = defaultSelfCgroup
	}
	return c
}

// Validate reports the first field of c that cannot be used. Empty Root,
// MountInfo and SelfCgroup are valid: they select the defaults.
func (c Config) Validate() error {
	if err := validateName(c.Subtree); err != nil {
		return fmt.Errorf("cgroup: Config.Subtree: %w", err)
	}
	if c.Root != "" && (!filepath.IsAbs(c.Root) || filepath.Clean(c.Root) != c.Root) {
		return fmt.Errorf("cgroup: Config.Root %q: must be a clean absolute path", c.Root)
	}
	return nil
}

// Limits are applied to the program leaf of a sandbox. Zero means unlimited.
type Limits struct {
	// MemoryBytes caps the program tree's memory (v2 memory.max, v1
	// memory.limit_in_bytes); swap is forbidden whenever the kernel allows.
	MemoryBytes int64
	// PIDs caps the number of tasks (threads count) in the program tree.
	PIDs int64
	// CPUQuota is the CPU time the program tree may use in each CPUPeriod,
	// all its CPUs together (v2 cpu.max, v1 cpu.cfs_quota_us): a quota of
	// twice the period is a rate of two CPUs. Whole microseconds, at least
	// MinCPUQuota; it needs Features.CPULimit.
	CPUQuota time.Duration
}

// CPUPeriod is the period of the CPU rate limit (v2 cpu.max's second
// field, v1 cpu.cfs_period_us): the kernel's default, which a new v1 group
// has from the start, so that only the quota is written there.
const CPUPeriod = 100 * time.Millisecond

// MinCPUQuota is the least quota the kernel takes (1 ms a period).
const MinCPUQuota = time.Millisecond

// Validate reports a negative limit, or a CPU quota the kernel would refuse.
func (l Limits) Validate() error {
	if l.MemoryBytes < 0 {
		return fmt.Errorf("cgroup: Limits.MemoryBytes %d: must not be negative", l.MemoryBytes)
	}
	if l.PIDs < 0 {
		return fmt.Errorf("cgroup: Limits.PIDs %d: must not be negative", l.PIDs)
	}
	if l.CPUQuota != 0 && (l.CPUQuota < MinCPUQuota || l.CPUQuota%time.Microsecond != 0) {
		return fmt.Errorf("cgroup: Limits.CPUQuota %v: must be whole microseconds, at least %v", l.CPUQuota, MinCPUQuota)
	}
	return nil
}

// Stats are the accounting figures of a sandbox's program leaf.
type Stats struct {
	CPU, User, System time.Duration
	// MemoryPeak is the highest memory charge seen, in bytes; 0 when
	// Features.MemoryPeak is false.
	MemoryPeak int64
	// OOMKills counts processes the kernel OOM killer killed in the leaf.
	OOMKills int64
	// MemoryLimitHits counts the charges that met the leaf's own memory
	// limit (v2 memory.events max; v1 memory.failcnt plus
	// memory.memsw.failcnt when swap is limited). An OOM kill in a leaf
	// that never met its limit came from above: a group it lies in, or the
	// host, ran out of memory. On v1 with swap limited, recent kernels
	// count neither (the memory+swap counter refuses first and keeps no
	// count): there MemoryPeak against the limit tells.
	MemoryLimitHits int64
	// PIDsPeak is the highest task count seen; 0 when Features.PIDsPeak is
	// false.
	PIDsPeak int64
	// Throttled is how long the program tree was held back by its CPU
	// quota (v2 cpu.stat throttled_usec, v1 cpu.stat throttled_time): in
	// each period where it used up its quota, the time from then to the
	// period's end, on each CPU it had work waiting on. 0 when
	// Features.CPULimit is false.
	Throttled time.Duration
}

// ErrInvalidName is wrapped by errors about a sandbox or subtree name.
var ErrInvalidName = errors.New("invalid name")

// ErrSurvivors is wrapped by Kill when processes remain after the wait.
var ErrSurvivors = errors.New("processes survived kill")

const maxNameLen = 128

// validateName accepts a name that is safe as one directory in every
// hierarchy: it starts with a letter or digit and holds only letters, digits,
// '-', '_' and '.'. Starting with a letter or digit rules out ".", ".." and
// hidden names; the short alphabet rules out '/', NUL and spaces.
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalidName)
	}
	if len(name) > maxNameLen {
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrInvalidName, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return fmt.Errorf("%w: %q: only letters, digits and -_. (not first) are allowed", ErrInvalidName, name)
		}
	}
	return nil
}
