package test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// reload rewrites the daemon's config file with the given extra lines and
// sends it SIGHUP, as systemctl reload does; then it waits for the log
// line that says the reload was done or refused, and returns /v1/info.
func (d *testDaemon) reload(t *testing.T, config string) *api.Info {
	t.Helper()
	outcomes := func() int {
		l := d.log.String()
		return strings.Count(l, "config reloaded") + strings.Count(l, "reload refused")
	}
	before := outcomes()
	d.writeConfig(config)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for outcomes() == before {
		if time.Now().After(deadline) {
			t.Fatalf("no reload within 10 s of SIGHUP\nlog:\n%s", d.log)
		}
		time.Sleep(5 * time.Millisecond)
	}
	info, err := d.c.Info(context.Background())
	if err != nil {
		t.Fatalf("after SIGHUP: %v\nlog:\n%s", err, d.log)
	}
	return info
}

// logLine is the daemon's last log line (JSON) holding every one of the
// given strings, or "".
func (d *testDaemon) logLine(has ...string) string {
	lines := strings.Split(d.log.String(), "\n")
	slices.Reverse(lines)
	for _, line := range lines {
		ok := true
		for _, h := range has {
			ok = ok && strings.Contains(line, h)
		}
		if ok {
			return line
		}
	}
	return ""
}

func profileNames(info *api.Info) []string {
	var names []string
	for _, p := range info.Profiles {
		names = append(names, p.Name)
	}
	return names
}

// TestDaemonReload: a reload adds a profile that the next job uses, and
// changes a default limit that the next job gets while a job that was
// running keeps its own.
func TestDaemonReload(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\nwarm_sandboxes = 1\n")
	ctx := ctxT(t)

	var se *client.StatusError
	if _, err := d.c.Run(ctx, &api.Job{Profile: "extra", Steps: []api.Step{{Argv: []string{"true"}}}}); !errors.As(err, &se) || se.HTTPStatus != 400 {
		t.Fatalf("profile extra before the reload: %v", err)
	}
	// Runs 1.5 s under the default wall time limit (20 s) it was checked
	// with; the reload makes the default 1 s.
	running := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctx, &api.Job{ID: "long", Steps: []api.Step{{Argv: []string{"sh", "-c", "sleep 1.5; echo survived"}}}})
		if err != nil {
			t.Error(err)
		}
		running <- res
	}()
	waitRunning(t, d, "long")

	info := d.reload(t, `concurrency = 2
warm_sandboxes = 1
[profiles.default.default_limits]
wall_time_ms = 1000
[profiles.extra]
env = { GREETING = "added by a reload" }
`)
	if info.Config.Generation != 2 || info.Config.ReloadError != "" || !slices.Contains(profileNames(info), "extra") {
		t.Fatalf("after the reload: config %+v, profiles %v\nlog:\n%s", info.Config, profileNames(info), d.log)
	}
	if line := d.logLine("config reloaded", "profiles added: extra", "profiles changed: default"); line == "" {
		t.Errorf("no log line says what changed:\n%s", d.log)
	} else {
		t.Logf("the operator sees: %s", line)
	}

	res, err := d.c.Run(ctx, &api.Job{Profile: "extra", Steps: []api.Step{{Argv: []string{"sh", "-c", "echo $GREETING"}}}})
	if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "added by a reload\n" {
		t.Errorf("a job in the added profile: %v %+v", err, res)
	}
	res, err = d.c.Run(ctx, job("sleep", "3"))
	if err != nil || res.Steps[0].Verdict != api.VerdictWallTimeLimit {
		t.Errorf("a job after the reload: %v, want wall_time_limit from the new default of 1 s: %+v", err, res)
	}
	res = <-running
	if res == nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "survived\n" {
		t.Errorf("the job running across the reload: %+v", res)
	}

	// The profile removed again: its jobs are refused, and its warm
	// sandboxes go.
	info = d.reload(t, "concurrency = 2\nwarm_sandboxes = 1\n")
	if info.Config.Generation != 3 || slices.Contains(profileNames(info), "extra") {
		t.Fatalf("after removing the profile: config %+v, profiles %v", info.Config, profileNames(info))
	}
	if _, err := d.c.Run(ctx, &api.Job{Profile: "extra", Steps: []api.Step{{Argv: []string{"true"}}}}); !errors.As(err, &se) || se.HTTPStatus != 400 {
		t.Errorf("profile extra after its removal: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, _ = d.c.Info(ctx)
		if info.Pool.WarmReady == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("warm sandboxes: %d ready, want 1 (the default profile's only)", info.Pool.WarmReady)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDaemonReloadRefused: a file with an unknown key, or a bad value, is
// refused with a log line naming the key; the config in force stays, and a
// job running meanwhile goes on.
func TestDaemonReloadRefused(t *testing.T) {
	d := startDaemon(t, "[profiles.kept]\n")
	ctx := ctxT(t)
	running := make(chan *api.Result, 1)
	go func() {
		res, err := d.c.Run(ctx, &api.Job{ID: "long", Steps: []api.Step{{Argv: []string{"sh", "-c", "sleep 1; echo survived"}}}})
		if err != nil {
			t.Error(err)
		}
		running <- res
	}()
	waitRunning(t, d, "long")

	for _, c := range []struct{ name, config, key string }{
		{"unknown key", "[profiles.kept]\nbogus_key = 1\n", "profiles.kept.bogus_key"},
		{"bad value", "queue_size = -1\n[profiles.kept]\n", "queue_size"},
		{"bad limit", "[profiles.kept.default_limits]\nwall_time_ms = 999999999\n", "profiles.kept.default_limits.wall_time_ms"},
		{"not TOML", "[profiles.kept\n", "config"},
	} {
		info := d.reload(t, c.config)
		line := d.logLine("reload refused", c.key)
		if info.Config.Generation != 1 || !strings.Contains(info.Config.ReloadError, c.key) || line == "" {
			t.Errorf("%s: config %+v; log:\n%s", c.name, info.Config, d.log)
			continue
		}
		t.Logf("%s: the operator sees: %s", c.name, line)
		if !slices.Contains(profileNames(info), "kept") {
			t.Errorf("%s: profile kept is gone", c.name)
		}
	}
	res := <-running
	if res == nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "survived\n" {
		t.Errorf("the job running across the refused reloads: %+v", res)
	}
	if res, err := d.c.Run(ctx, &api.Job{Profile: "kept", Steps: []api.Step{{Argv: []string{"true"}}}}); err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Errorf("a job in the old config's profile: %v %+v", err, res)
	}
}

// TestDaemonReloadRestartOnly: a restart-only key changed in the file is
// named in the log and in /v1/info, keeps its value in force, and the rest
// of the file is put in force.
func TestDaemonReloadRestartOnly(t *testing.T) {
	d := startDaemon(t, "")
	info := d.reload(t, "batch_scheduling = false\nqueue_size = 5\n")
	if info.Config.Generation != 2 || info.Pool.QueueSize != 5 || !slices.Equal(info.Config.RestartPending, []string{"batch_scheduling"}) {
		t.Fatalf("config %+v, queue_size %d", info.Config, info.Pool.QueueSize)
	}
	line := d.logLine("batch_scheduling changed in the config file, but it applies only at a restart")
	if line == "" {
		t.Fatalf("no log line names the restart-only key:\n%s", d.log)
	}
	t.Logf("the operator sees: %s", line)
	if line := d.logLine("config reloaded", "queue_size=5 (was 256)"); line == "" || strings.Contains(line, "batch_scheduling=") {
		t.Errorf("the reload's line: %q", line)
	}
}
