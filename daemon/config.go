package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// Config is the daemon's configuration: a TOML file, strictly parsed.
// Every field has a default, so no file is needed to start.
type Config struct {
	// Socket is the Unix socket path; SocketGroup the group it is given
	// (mode 0660). Empty group: root's group.
	Socket      string `toml:"socket"`
	SocketGroup string `toml:"socket_group"`
	// Config is the engine's part: state_dir (which also holds the
	// daemon's workspaces and its lock), uid_base, uid_count and
	// cgroup_subtree (the daemon's subtree beneath its own cgroups). Its
	// defaults and checks are the engine's.
	engine.Config
	// Concurrency is how many sandboxes may run at once (default: the
	// number of CPUs); QueueSize how many jobs may wait behind them.
	Concurrency int `toml:"concurrency"`
	QueueSize   int `toml:"queue_size"`
	// WarmSandboxes is how many sandboxes each profile keeps built and
	// waiting for a command (default: twice Concurrency, at most 64), so
	// that a step starts in one at once; each is still used for one
	// command only. 0 builds every sandbox when its step starts.
	WarmSandboxes int `toml:"warm_sandboxes"`
	// MaxRequestBytes caps a request body (a batch's per line).
	MaxRequestBytes int64 `toml:"max_request_bytes"`
	// MaxInflightRequestBytes caps the request bodies (a batch's: lines)
	// the daemon holds at once, queued and running jobs' included; a body
	// past it is answered 429 (a batch's next line waits). Default: twice
	// MaxRequestBytes.
	MaxInflightRequestBytes int64 `toml:"max_inflight_request_bytes"`
	// TrackedFileBytes caps each tracked file read back.
	TrackedFileBytes int64 `toml:"tracked_file_bytes"`
	// JobOutputBytes caps all a job gives back: every step's stdout and
	// stderr and its tracked files together. A step cut by it ends as
	// output_limit; tracked files past it come back truncated.
	JobOutputBytes int64 `toml:"job_output_bytes"`
	// AllowedUIDs and AllowedGIDs may use the API. Empty both: root and
	// members of the socket's group.
	AllowedUIDs []uint32 `toml:"allowed_uids"`
	AllowedGIDs []uint32 `toml:"allowed_gids"`
	// ShutdownGrace is how long running jobs may go on after SIGTERM before
	// they are cancelled; ResultTTL how long finished results are kept.
	ShutdownGrace Duration `toml:"shutdown_grace"`
	ResultTTL     Duration `toml:"result_ttl"`
	// ResultBytes caps the finished results kept for GET /v1/runs/{id},
	// all together: past it the oldest go before their ttl.
	ResultBytes int64 `toml:"result_bytes"`
	// LogFormat: "auto" (text on a terminal, JSON otherwise), "text", "json".
	LogFormat string `toml:"log_format"`
	// BatchScheduling runs the daemon, its helper and the sandboxes'
	// inits under SCHED_BATCH (see SetBatchScheduling); the programs run
	// under SCHED_OTHER all the same. false leaves the policy the daemon
	// was started with, and the programs inherit it.
	BatchScheduling bool `toml:"batch_scheduling"`
	// CacheDir holds the file cache (POST /v1/files), which survives a
	// restart of the daemon. Default: state_dir + "/cache". CacheBytes caps
	// the cache (and so one upload): past it the least recently used files
	// that no queued or running job names are evicted. CacheQuotaBytes caps
	// the files each caller uid uploaded or kept. Default: cache_bytes.
	CacheDir        string `toml:"cache_dir"`
	CacheBytes      int64  `toml:"cache_bytes"`
	CacheQuotaBytes int64  `toml:"cache_quota_bytes"`
	// Profiles by name; "default" always exists.
	Profiles map[string]ProfileConfig `toml:"profiles"`
}

// ProfileConfig is a profile in the config file. Unset fields take the
// built-in default profile's.
type ProfileConfig struct {
	Binds          []string          `toml:"binds"`
	Env            map[string]string `toml:"env"`
	DefaultLimits  *LimitsConfig     `toml:"default_limits"`
	MaxLimits      *LimitsConfig     `toml:"max_limits"`
	WorkspaceBytes int64             `toml:"workspace_bytes"`
	// MaxWorkspaceBytes bounds the workspace_bytes a job may ask for.
	MaxWorkspaceBytes int64  `toml:"max_workspace_bytes"`
	TmpBytes          int64  `toml:"tmp_bytes"`
	Seccomp           string `toml:"seccomp"`
	// A profile may carry a language (Language): what GET /v1/info tells a
	// client that runs programs in it, such as the Piston gateway.
	Language       string   `toml:"language"`
	Version        string   `toml:"version"`
	VersionCommand []string `toml:"version_command"`
	Aliases        []string `toml:"aliases"`
	SourceFile     string   `toml:"source_file"`
	Compile        []string `toml:"compile"`
	Run            []string `toml:"run"`
}

// LimitsConfig is api.Limits with TOML names.
type LimitsConfig struct {
	CPUTimeMS     int64   `toml:"cpu_time_ms"`
	WallTimeMS    int64   `toml:"wall_time_ms"`
	MemoryBytes   int64   `toml:"memory_bytes"`
	PIDs          int64   `toml:"pids"`
	OutputBytes   int64   `toml:"output_bytes"`
	FileSizeBytes int64   `toml:"file_size_bytes"`
	OpenFiles     int64   `toml:"open_files"`
	StackBytes    int64   `toml:"stack_bytes"`
	CPUs          float64 `toml:"cpus"`
}

func (l *LimitsConfig) limits() api.Limits { return api.Limits(*l) }

// Duration is a time.Duration written as "10s" in TOML.
type Duration struct{ time.Duration }

// UnmarshalText parses "1m30s".
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	d.Duration = v
	return err
}

// MarshalText writes the duration back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// DefaultConfig is what the daemon runs with when no file says otherwise.
func DefaultConfig() Config {
	return Config{
		Socket:                  "/run/sandboxd/sandboxd.sock",
		Config:                  engine.DefaultConfig(),
		Concurrency:             runtime.NumCPU(),
		QueueSize:               256,
		WarmSandboxes:           defaultWarm(runtime.NumCPU()),
		MaxRequestBytes:         64 << 20,
		MaxInflightRequestBytes: defaultInflight(64 << 20),
		TrackedFileBytes:        1 << 20,
		JobOutputBytes:          64 << 20,
		ShutdownGrace:           Duration{10 * time.Second},
		ResultTTL:               Duration{10 * time.Minute},
		ResultBytes:             256 << 20,
		LogFormat:               "auto",
		BatchScheduling:         true,
		CacheDir:                filepath.Join(engine.DefaultConfig().StateDir, "cache"),
		CacheBytes:              1 << 30,
		CacheQuotaBytes:         1 << 30,
	}
}

// LoadConfig reads a TOML config file over the defaults. A key the daemon
// does not know is an error that names it.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path == "" {
		return cfg, cfg.Validate()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	md, err := toml.Decode(string(b), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return cfg, fmt.Errorf("config %s: unknown key %s", path, strings.Join(keys, ", "))
	}
	if !md.IsDefined("warm_sandboxes") {
		cfg.WarmSandboxes = defaultWarm(cfg.Concurrency)
	}
	if !md.IsDefined("cache_dir") {
		cfg.CacheDir = filepath.Join(cfg.StateDir, "cache")
	}
	if !md.IsDefined("cache_quota_bytes") {
		cfg.CacheQuotaBytes = cfg.CacheBytes
	}
	if !md.IsDefined("max_inflight_request_bytes") {
		cfg.MaxInflightRequestBytes = defaultInflight(cfg.MaxRequestBytes)
	}
	return cfg, cfg.Validate()
}

// defaultWarm is how many warm sandboxes a profile keeps unless the config
// says: two for each sandbox that may run at once, so that the refills,
// held back while jobs run (engine.Engine.Hold), keep up with back-to-back
// short runs (docs/benchmarks.md). An idle warm sandbox costs no memory of
// its own (its two processes share the helper's) beyond the kernel's
// namespaces and cgroups.
func defaultWarm(concurrency int) int { return min(2*concurrency, 64) }

// defaultInflight is room for two bodies of the largest size at once (and
// the byte the reader needs to see a body's end).
func defaultInflight(maxRequest int64) int64 { return 2 * (maxRequest + 1) }

// Validate checks the configuration; messages name the key.
func (c *Config) Validate() error {
	var errs []error
	if !filepath.IsAbs(c.Socket) {
		errs = append(errs, fmt.Errorf("socket: %q is not an absolute path", c.Socket))
	}
	if err := c.Config.Validate(func(key string) string { return key }); err != nil {
		errs = append(errs, err)
	}
	if c.Concurrency < 1 || c.Concurrency > 1024 {
		errs = append(errs, fmt.Errorf("concurrency: %d is not within 1..1024", c.Concurrency))
	}
	if c.WarmSandboxes < 0 || c.WarmSandboxes > 64 {
		errs = append(errs, fmt.Errorf("warm_sandboxes: %d is not within 0..64", c.WarmSandboxes))
	}
	if c.QueueSize < 0 {
		errs = append(errs, fmt.Errorf("queue_size: %d is negative", c.QueueSize))
	}
	if c.MaxRequestBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("max_request_bytes: %d is below 1024", c.MaxRequestBytes))
	}
	if c.MaxInflightRequestBytes <= c.MaxRequestBytes {
		errs = append(errs, fmt.Errorf("max_inflight_request_bytes: %d must be above max_request_bytes (%d): a body of the largest size must fit", c.MaxInflightRequestBytes, c.MaxRequestBytes))
	}
	if c.ResultBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("result_bytes: %d is below 1048576", c.ResultBytes))
	}
	if c.JobOutputBytes < 1<<10 {
		errs = append(errs, fmt.Errorf("job_output_bytes: %d is below 1024", c.JobOutputBytes))
	}
	if c.TrackedFileBytes < 1 {
		errs = append(errs, fmt.Errorf("tracked_file_bytes: %d must be positive", c.TrackedFileBytes))
	}
	// Every warm sandbox holds a uid, and so does every running step.
	if held := uint64(c.Concurrency) + uint64(c.WarmSandboxes)*uint64(len(c.pooledNames())); c.UIDCount >= 1 && uint64(c.UIDCount) < held {
		errs = append(errs, fmt.Errorf("uid_count: %d uids are fewer than the %d that concurrency (%d) and warm_sandboxes (%d for each of %d profiles) hold at once",
			c.UIDCount, held, c.Concurrency, c.WarmSandboxes, len(c.pooledNames())))
	}
	if c.ShutdownGrace.Duration < 0 || c.ResultTTL.Duration < 0 {
		errs = append(errs, errors.New("shutdown_grace, result_ttl: negative"))
	}
	if !filepath.IsAbs(c.CacheDir) || filepath.Clean(c.CacheDir) != c.CacheDir {
		errs = append(errs, fmt.Errorf("cache_dir: %q is not a clean absolute path", c.CacheDir))
	}
	if c.CacheBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("cache_bytes: %d is below 1048576", c.CacheBytes))
	}
	if c.CacheQuotaBytes < 1 || c.CacheQuotaBytes > c.CacheBytes {
		errs = append(errs, fmt.Errorf("cache_quota_bytes: %d is not within 1..cache_bytes (%d)", c.CacheQuotaBytes, c.CacheBytes))
	}
	switch c.LogFormat {
	case "auto", "text", "json":
	default:
		errs = append(errs, fmt.Errorf("log_format: %q is not auto, text or json", c.LogFormat))
	}
	for _, name := range c.profileNames() {
		if _, err := c.Profile(name); err != nil {
			errs = append(errs, err)
		} else if _, err := c.Language(name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// profileNames is every profile's name, "default" first: the config's and
// the built-in language profiles.
func (c *Config) profileNames() []string {
	names := []string{"default"}
	for n := range c.Profiles {
		if n != "default" {
			names = append(names, n)
		}
	}
	for n := range builtinLanguages {
		if _, ok := c.Profiles[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names[1:])
	return names
}

// pooledNames is the profiles that keep warm sandboxes: "default" and the
// config file's. A built-in language profile builds each sandbox when its
// step starts, so that the languages nobody uses hold no uids or memory.
func (c *Config) pooledNames() []string {
	var names []string
	for _, n := range c.profileNames() {
		_, builtin := builtinLanguages[n]
		_, configured := c.Profiles[n]
		if !builtin || configured {
			names = append(names, n)
		}
	}
	return names
}

// Language is the language the named profile carries, nil for none. A
// built-in language profile's keys are the base of the config's.
func (c *Config) Language(name string) (*Language, error) {
	var l Language
	b, builtin := builtinLanguages[name]
	if builtin {
		l = b.lang
	}
	pc, ok := c.Profiles[name]
	if !ok {
		if builtin {
			return &l, nil
		}
		return nil, nil
	}
	if pc.Language == "" && pc.Version == "" && pc.VersionCommand == nil && pc.Aliases == nil &&
		pc.SourceFile == "" && pc.Compile == nil && pc.Run == nil && !builtin {
		return nil, nil
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&l.Language, pc.Language)
	set(&l.SourceFile, pc.SourceFile)
	if pc.Version != "" {
		l.Version, l.VersionCommand = pc.Version, nil
	}
	if pc.VersionCommand != nil {
		l.Version, l.VersionCommand = "", pc.VersionCommand
	}
	for _, f := range []struct {
		dst *[]string
		v   []string
	}{{&l.Aliases, pc.Aliases}, {&l.Compile, pc.Compile}, {&l.Run, pc.Run}} {
		if f.v != nil {
			*f.dst = f.v
		}
	}
	if err := l.validate("profiles." + name); err != nil {
		return nil, err
	}
	return &l, nil
}

// Profile builds the named profile: the built-in default, overridden by
// what the config sets.
func (c *Config) Profile(name string) (*engine.Profile, error) {
	p := builtinProfile(name)
	_, builtin := builtinLanguages[name]
	pc, ok := c.Profiles[name]
	if !ok {
		if name != "default" && !builtin {
			return nil, fmt.Errorf("profile %q does not exist", name)
		}
		return &p, nil
	}
	key := "profiles." + name
	if pc.Binds != nil {
		for i, b := range pc.Binds {
			if !filepath.IsAbs(b) || filepath.Clean(b) != b || b == "/" {
				return nil, fmt.Errorf("%s.binds[%d]: %q must be a clean absolute path other than /", key, i, b)
			}
		}
		p.Binds = pc.Binds
	}
	if pc.Env != nil {
		if err := engine.ValidateEnv(pc.Env, key+".env"); err != nil {
			return nil, err
		}
		p.Env = pc.Env
	}
	if pc.MaxLimits != nil {
		p.Max = pc.MaxLimits.limits().WithDefaults(p.Max)
	}
	if pc.DefaultLimits != nil {
		p.Defaults = pc.DefaultLimits.limits().WithDefaults(p.Defaults)
	}
	if err := p.Max.Validate(api.Limits{}, func(f string) string { return key + ".max_limits." + f }); err != nil {
		return nil, err
	}
	if host := engine.HostCPUs(); p.Max.CPUs > float64(host) {
		return nil, fmt.Errorf("%s.max_limits.cpus: %g is more than the %d CPUs of this host", key, p.Max.CPUs, host)
	}
	if err := p.Defaults.Validate(p.Max, func(f string) string { return key + ".default_limits." + f }); err != nil {
		return nil, err
	}
	if pc.WorkspaceBytes < 0 || pc.MaxWorkspaceBytes < 0 || pc.TmpBytes < 0 {
		return nil, fmt.Errorf("%s.workspace_bytes, max_workspace_bytes, tmp_bytes: negative", key)
	}
	if pc.WorkspaceBytes > 0 {
		p.WorkspaceBytes = pc.WorkspaceBytes
	}
	switch {
	case pc.MaxWorkspaceBytes > 0:
		p.MaxWorkspaceBytes = pc.MaxWorkspaceBytes
	case p.WorkspaceBytes > p.MaxWorkspaceBytes:
		p.MaxWorkspaceBytes = p.WorkspaceBytes // a larger default is also the maximum
	}
	if p.MaxWorkspaceBytes > maxWorkspaceCap {
		return nil, fmt.Errorf("%s.max_workspace_bytes: %d is above %d", key, p.MaxWorkspaceBytes, int64(maxWorkspaceCap))
	}
	if p.WorkspaceBytes > p.MaxWorkspaceBytes {
		return nil, fmt.Errorf("%s.workspace_bytes: %d is above max_workspace_bytes %d", key, p.WorkspaceBytes, p.MaxWorkspaceBytes)
	}
	if pc.TmpBytes > 0 {
		p.TmpBytes = pc.TmpBytes
	}
	if pc.Seccomp != "" && pc.Seccomp != "default" {
		return nil, fmt.Errorf("%s.seccomp: unknown policy %q (known: default)", key, pc.Seccomp)
	}
	return &p, nil
}
