package daemon

import (
	"errors"
	"fmt"
	"strings"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
)

// A reload (SIGHUP; systemctl reload) reads the config file again:
//
//	load the file            an error: refused, logged naming the key; nothing changes
//	restart-only keys        their values in force stay; each one the file changes is logged
//	validate, build profiles an error: refused, as above
//	scheduler, results,      concurrency, queue_size, result_ttl, result_bytes,
//	bodies budget            max_inflight_request_bytes
//	publish the snapshot     jobs checked from now on see it; a job checked
//	                         before keeps its own to its end
//	warm pools, workspaces   pools of changed or removed profiles retired,
//	                         new ones started; workspace sizes kept in step
//
// Under systemd, RELOADING=1 goes before and READY=1 after, whatever the
// outcome.

// errStopping refuses a reload once the daemon stops.
var errStopping = errors.New("the daemon is stopping")

// Reload puts the configuration that load returns in force, for the jobs
// checked from now on: load reads the config file as at start, with the
// command line's overrides. Running and queued jobs keep the profiles and
// limits they were checked with. A config with an error is refused, and
// the one in force stays; the error (which names the key) is logged and
// returned. Restart-only keys (restartOnly) keep their values in force. It
// logs one line saying what changed.
func (d *Daemon) Reload(load func() (Config, error)) error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	if d.closing {
		d.log.Warn("reload ignored: the daemon is stopping")
		return errStopping
	}
	notify := d.sdReady.Load()
	if notify {
		d.sdNotify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\nSTATUS=reloading the config", monotonicUsec()))
	}
	err := d.reload(load)
	if notify {
		d.sdNotify(sddaemon.SdNotifyReady + "\nSTATUS=" + d.statusLine())
	}
	return err
}

func (d *Daemon) reload(load func() (Config, error)) error {
	old := d.conf()
	refuse := func(err error) error {
		msg := err.Error()
		d.reloadErr.Store(&msg)
		d.log.WithError(err).WithField("generation", old.gen).
			Error("reload refused: the config in force stays")
		return err
	}
	file, err := load()
	if err != nil {
		return refuse(err)
	}
	cfg, kept := keepRestartOnly(old.cfg, file)
	if err := cfg.Validate(); err != nil {
		return refuse(err)
	}
	next, err := newSnapshot(cfg, old)
	if err != nil {
		return refuse(err)
	}
	for _, ch := range kept {
		next.pending = append(next.pending, ch.key)
	}

	d.sched.resize(cfg.Concurrency, cfg.QueueSize)
	d.reg.setLimits(cfg.ResultTTL.Duration, cfg.ResultBytes)
	d.bodies.resize(cfg.MaxInflightRequestBytes)
	d.live.Store(next)
	d.reloadErr.Store(nil)
	// Pools of profiles that changed or went are retired after the
	// publish: a job checked against the old profile builds its own
	// sandbox from then on.
	d.engine.ReplacePools(next.pooledList(), cfg.WarmSandboxes)
	d.ws.resize(cfg.WarmSandboxes, next.workspaceSizes())

	for _, ch := range kept {
		d.log.WithFields(logrus.Fields{"key": ch.key, "in_force": fmt.Sprint(ch.old), "in_file": fmt.Sprint(ch.new)}).
			Warnf("reload: %s changed in the config file, but it applies only at a restart; the value in force stays", ch.key)
	}
	fields := logrus.Fields{"generation": next.gen, "profiles": strings.Join(next.names, ",")}
	if len(next.pending) > 0 {
		fields["restart_pending"] = strings.Join(next.pending, ",")
	}
	d.log.WithFields(fields).Info("config reloaded: " + describeChanges(old, next))
	return nil
}

// sdNotify sends state to systemd; without NOTIFY_SOCKET it does nothing.
func (d *Daemon) sdNotify(state string) {
	if _, err := sddaemon.SdNotify(false, state); err != nil {
		d.log.WithError(err).Debug("sd_notify")
	}
}

// monotonicUsec is CLOCK_MONOTONIC in microseconds, which systemd asks for
// with RELOADING=1 (sd_notify(3)).
func monotonicUsec() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / int64(time.Microsecond)
}
