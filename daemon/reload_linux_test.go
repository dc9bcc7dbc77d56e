package daemon

import (
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

func mustSnapshot(cfg Config) *snapshot {
	s, err := newSnapshot(cfg, nil)
	if err != nil {
		panic(err)
	}
	return s
}

// testConfig is the defaults with two profiles: "fast", whose default
// cpu time is cpuMS, and "static".
func testConfig(cpuMS int64) Config {
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.WarmSandboxes = 2, 0
	cfg.Profiles = map[string]ProfileConfig{
		"fast":   {DefaultLimits: &LimitsConfig{CPUTimeMS: cpuMS}},
		"static": {Env: map[string]string{"A": "1"}},
	}
	return cfg
}

// reloadDaemon is a Daemon of what Reload and check use, with an engine
// that has no pools (nothing of it is opened).
func reloadDaemon(t *testing.T, cfg Config) (*Daemon, *test.Hook) {
	t.Helper()
	log, hook := test.NewNullLogger()
	d := &Daemon{
		log: log, engine: &engine.Engine{},
		sched:  newScheduler(cfg.Concurrency, cfg.QueueSize),
		reg:    newRegistry(cfg.ResultTTL.Duration, cfg.ResultBytes),
		bodies: newByteBudget(cfg.MaxInflightRequestBytes),
		ws:     newWSPool(t.TempDir(), 0, nil, nil, func(error) {}),
	}
	d.live.Store(mustSnapshot(cfg))
	t.Cleanup(d.ws.close)
	return d, hook
}

func loadOK(cfg Config) func() (Config, error) {
	return func() (Config, error) { return cfg, cfg.Validate() }
}

func TestNewSnapshotKeepsUnchangedProfiles(t *testing.T) {
	old := mustSnapshot(testConfig(100))
	next, err := newSnapshot(testConfig(200), old)
	if err != nil {
		t.Fatal(err)
	}
	if next.gen != 2 {
		t.Errorf("generation %d, want 2", next.gen)
	}
	// The same *Profile keeps its warm pool (engine.ReplacePools).
	if next.profiles["static"] != old.profiles["static"] || next.profiles["default"] != old.profiles["default"] {
		t.Error("an unchanged profile was built anew")
	}
	if next.profiles["fast"] == old.profiles["fast"] || next.profiles["fast"].Defaults.CPUTimeMS != 200 {
		t.Errorf("the changed profile: %+v", next.profiles["fast"].Defaults)
	}
	if old.profiles["fast"].Defaults.CPUTimeMS != 100 {
		t.Error("the old snapshot changed")
	}
}

func TestKeepRestartOnly(t *testing.T) {
	running := testConfig(100)
	file := testConfig(100)
	file.Socket, file.StateDir, file.UIDCount = "/elsewhere.sock", "/var/lib/other", 1000
	file.QueueSize, file.ShutdownGrace.Duration = 7, 0
	cfg, kept := keepRestartOnly(running, file)
	var keys []string
	for _, k := range kept {
		keys = append(keys, k.key)
	}
	if got := strings.Join(keys, ","); got != "socket,state_dir,uid_count" {
		t.Errorf("kept %q", got)
	}
	if cfg.Socket != running.Socket || cfg.StateDir != running.StateDir || cfg.UIDCount != running.UIDCount {
		t.Errorf("a restart-only key changed: %+v", cfg)
	}
	if cfg.QueueSize != 7 || cfg.ShutdownGrace.Duration != 0 {
		t.Errorf("a live key did not change: queue_size %d shutdown_grace %v", cfg.QueueSize, cfg.ShutdownGrace)
	}
	// Every restart-only key is a key of the file.
	fields := keyFields(&cfg)
	for _, r := range restartOnly {
		if _, ok := fields[r.key]; !ok {
			t.Errorf("restartOnly names %q, which is no key", r.key)
		}
	}
}

func TestDescribeChanges(t *testing.T) {
	old := mustSnapshot(testConfig(100))
	cfg := testConfig(200)
	delete(cfg.Profiles, "static")
	cfg.Profiles["py"] = ProfileConfig{}
	cfg.QueueSize = 9
	next, err := newSnapshot(cfg, old)
	if err != nil {
		t.Fatal(err)
	}
	want := "profiles added: py; profiles changed: fast; profiles removed: static; queue_size=9 (was 256)"
	if got := describeChanges(old, next); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := describeChanges(next, next); got != "nothing changed" {
		t.Errorf("no change: %q", got)
	}
}

func TestReloadAppliesAndKeepsRunningJobs(t *testing.T) {
	d, hook := reloadDaemon(t, testConfig(100))
	before, aerr := d.check(&api.Job{Profile: "fast", Steps: []api.Step{{Argv: []string{"true"}}}})
	if aerr != nil {
		t.Fatal(aerr)
	}
	cfg := testConfig(200)
	cfg.QueueSize, cfg.Concurrency, cfg.JobOutputBytes = 9, 3, 4096
	cfg.Socket = "/changed.sock"
	if err := d.Reload(loadOK(cfg)); err != nil {
		t.Fatal(err)
	}
	after, aerr := d.check(&api.Job{Profile: "fast", Steps: []api.Step{{Argv: []string{"true"}}}})
	if aerr != nil {
		t.Fatal(aerr)
	}
	// The job checked before keeps its profile, limits and caps.
	if before.steps[0].limits.CPUTimeMS != 100 || before.conf.cfg.JobOutputBytes == 4096 {
		t.Errorf("the job checked before the reload changed: cpu %d, job_output_bytes %d", before.steps[0].limits.CPUTimeMS, before.conf.cfg.JobOutputBytes)
	}
	if after.steps[0].limits.CPUTimeMS != 200 || after.conf.cfg.JobOutputBytes != 4096 || after.conf.gen != 2 {
		t.Errorf("the job checked after: cpu %d, job_output_bytes %d, generation %d", after.steps[0].limits.CPUTimeMS, after.conf.cfg.JobOutputBytes, after.conf.gen)
	}
	if d.sched.queueCap != 9 || d.sched.slots != 3 || d.sched.free != 3 {
		t.Errorf("scheduler: queue %d slots %d free %d", d.sched.queueCap, d.sched.slots, d.sched.free)
	}
	if c := d.conf(); c.cfg.Socket == "/changed.sock" || strings.Join(c.pending, ",") != "socket" {
		t.Errorf("socket %q, pending %q", c.cfg.Socket, c.pending)
	}
	var lines []string
	for _, e := range hook.AllEntries() {
		lines = append(lines, e.Level.String()+": "+e.Message)
	}
	log := strings.Join(lines, "\n")
	for _, want := range []string{
		"warning: reload: socket changed in the config file, but it applies only at a restart",
		"info: config reloaded: profiles changed: fast; concurrency=3 (was 2); job_output_bytes=4096 (was 67108864); queue_size=9 (was 256)",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestReloadRefused(t *testing.T) {
	d, hook := reloadDaemon(t, testConfig(100))
	old := d.conf()
	bad := errors.New("config x.toml: unknown key profiles.fast.bogus")
	if err := d.Reload(func() (Config, error) { return Config{}, bad }); err != bad {
		t.Fatalf("Reload = %v", err)
	}
	// Valid keys, but not together: refused by Validate.
	cfg := testConfig(100)
	cfg.MaxInflightRequestBytes = cfg.MaxRequestBytes
	if err := d.Reload(func() (Config, error) { return cfg, nil }); err == nil || !strings.Contains(err.Error(), "max_inflight_request_bytes") {
		t.Fatalf("Reload = %v", err)
	}
	if d.conf() != old {
		t.Fatal("a refused reload changed the config in force")
	}
	if msg := d.reloadErr.Load(); msg == nil || !strings.Contains(*msg, "max_inflight_request_bytes") {
		t.Errorf("reload error kept: %v", msg)
	}
	if e := hook.LastEntry(); e == nil || e.Level != logrus.ErrorLevel || !strings.HasPrefix(e.Message, "reload refused") {
		t.Errorf("last log entry %+v", e)
	}
	// A good one clears it.
	if err := d.Reload(loadOK(testConfig(300))); err != nil || d.reloadErr.Load() != nil || d.conf().gen != 2 {
		t.Errorf("Reload = %v, error kept %v, generation %d", err, d.reloadErr.Load(), d.conf().gen)
	}
	d.closing = true // as close sets it
	if err := d.Reload(loadOK(testConfig(400))); err != errStopping {
		t.Errorf("Reload after close = %v", err)
	}
}

// TestReloadRace checks jobs while reloads swap the config under them
// (go test -race): each job sees one whole snapshot, its profile and its
// limits from the same one.
func TestReloadRace(t *testing.T) {
	d, _ := reloadDaemon(t, testConfig(101)) // generation 1
	d.log.SetOutput(io.Discard)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				cj, aerr := d.check(&api.Job{Profile: "fast", Steps: []api.Step{{Argv: []string{"true"}}}})
				if aerr != nil {
					t.Error(aerr)
					return
				}
				want := cj.conf.profiles["fast"].Defaults.CPUTimeMS
				if cj.profile != cj.conf.profiles["fast"] || cj.steps[0].limits.CPUTimeMS != want || want != 100+int64(cj.conf.gen) {
					t.Errorf("generation %d: cpu %d, profile's %d", cj.conf.gen, cj.steps[0].limits.CPUTimeMS, want)
					return
				}
			}
		}()
	}
	for i := range 200 {
		gen := d.conf().gen + 1
		cfg := testConfig(100 + int64(gen))
		cfg.QueueSize = 10 + i%5
		if err := d.Reload(loadOK(cfg)); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if g := d.conf().gen; g != 201 {
		t.Errorf("generation %d", g)
	}
}
