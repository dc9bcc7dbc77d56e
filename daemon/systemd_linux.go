package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	sdactivation "github.com/coreos/go-systemd/v22/activation"
	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
)

// The daemon under systemd (dist/systemd/sandboxd.service, Type=notify):
//
//	systemd                          sandboxd serve
//	-------                          --------------
//	sandboxd.socket listens   --fd 3 (LISTEN_FDS)-->  TakeSystemdSocket, before any child starts
//	                                                  New: reclaim, engine, warm pools
//	                                                  Serve: accepts on the passed socket
//	                          <--READY=1------------  once the warm pools are full (or warmWait passed)
//	                          <--STATUS=...---------  when running/queued change, at most once a second
//	                          <--WATCHDOG=1---------  after each GET /v1/info through our own socket answered
//	SIGHUP (ExecReload=)      <--RELOADING=1, MONOTONIC_USEC=--  Reload (reload_linux.go)
//	                          <--READY=1------------  the new config in force, or refused
//	SIGTERM (KillMode=mixed)  <--STOPPING=1---------  draining
//
// Without NOTIFY_SOCKET nothing is sent; without LISTEN_FDS the daemon
// makes its own socket, as it always has.

// activated is the listening socket systemd passed, taken by
// TakeSystemdSocket and served by Serve. Inherited descriptors belong to
// the process, so this is process state too.
var activated struct {
	mu sync.Mutex
	ln net.Listener
}

// TakeSystemdSocket takes the listening Unix socket systemd passed under
// socket activation (LISTEN_PID, LISTEN_FDS), if any, and marks it
// close-on-exec. Call it before the daemon starts a child process, which
// would otherwise inherit it. It reports whether a socket was passed.
// More than one socket, or one that is not a Unix stream listener, is an
// error: the unit must pass exactly sandboxd.socket.
func TakeSystemdSocket() (bool, error) {
	files := sdactivation.Files(true)
	if len(files) == 0 {
		return false, nil
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	if len(files) != 1 {
		return false, fmt.Errorf("socket activation: systemd passed %d sockets; sandboxd serves one (ListenStream= once)", len(files))
	}
	ln, err := net.FileListener(files[0])
	if err != nil {
		return false, fmt.Errorf("socket activation: %w", err)
	}
	if _, ok := ln.(*net.UnixListener); !ok {
		ln.Close()
		return false, fmt.Errorf("socket activation: the passed socket is %s, not a Unix stream socket", ln.Addr().Network())
	}
	activated.mu.Lock()
	activated.ln = ln
	activated.mu.Unlock()
	return true, nil
}

// listen returns the socket to serve and the group that may use it: the
// one systemd passed (its group is the socket file's, SocketGroup= in the
// unit), else our own at the configured path with the configured group.
// own says the socket file is the daemon's, to remove when it stops; the
// one systemd passed stays for the next start.
func (d *Daemon) listen(gid uint32) (ln net.Listener, _ uint32, own bool, _ error) {
	activated.mu.Lock()
	ln = activated.ln
	activated.ln = nil
	activated.mu.Unlock()
	if ln == nil {
		ln, err := listenUnix(d.socket, gid)
		return ln, gid, true, err
	}
	path := ln.Addr().String()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		ln.Close()
		return nil, 0, false, fmt.Errorf("socket activation: %w", err)
	}
	if path != d.socket || st.Gid != gid {
		d.log.WithFields(logrus.Fields{"socket": path, "gid": st.Gid, "config_socket": d.socket, "config_gid": gid}).
			Warn("serving the socket systemd passed, which differs from the config's socket or socket_group")
	}
	d.socket = path
	return ln, st.Gid, false, nil
}

// How the daemon talks to systemd. warmWait bounds how long READY=1 waits
// for the warm pools: a host that cannot build sandboxes still gets a
// running daemon whose STATUS and logs say why, rather than a start that
// times out. statusEvery is the most STATUS= lines a second.
const (
	warmWait    = 2 * time.Minute
	statusEvery = time.Second
	warmPoll    = 20 * time.Millisecond
)

// notifySystemd tells systemd how the daemon is doing, once it serves
// the socket at addr: READY=1, STATUS=, WATCHDOG=1, and STOPPING=1 once
// ctx ends (the drain begins). The returned func stops it; Serve calls it
// as it returns. Without NOTIFY_SOCKET it does nothing.
func (d *Daemon) notifySystemd(ctx context.Context, addr string) (stop func()) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return func() {}
	}
	watchdog, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil {
		d.log.WithError(err).Warn("systemd watchdog")
	}
	n := &notifier{d: d, probe: newProbe(addr), watchdog: watchdog}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		n.run(ctx, done)
	}()
	return func() {
		close(done)
		<-finished
	}
}

type notifier struct {
	d        *Daemon
	probe    *probe
	watchdog time.Duration // WatchdogSec=; 0: none
	status   string        // the last STATUS= sent
	lastSent time.Time
	ready    bool
	stopping bool
}

func (n *notifier) send(state string) { n.d.sdNotify(state) }

func (n *notifier) run(ctx context.Context, done <-chan struct{}) {
	started := time.Now()
	// Pinged at half the watchdog's time, as sd_watchdog_enabled(3)
	// advises; a daemon without one still ticks for STATUS and READY.
	tick := statusEvery
	if n.watchdog > 0 {
		tick = min(tick, n.watchdog/2)
	}
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
	warm := time.NewTicker(warmPoll)
	defer warm.Stop()
	ctxDone := ctx.Done()
	for {
		if !n.ready {
			target, have := n.d.warmTarget(), n.d.engine.WarmReady()
			if have >= target || time.Since(started) > warmWait {
				n.ready = true
				warm.Stop()
				if have < target {
					n.d.log.WithFields(logrus.Fields{"warm_ready": have, "warm_sandboxes": target}).
						Warn("ready before the warm pools filled: sandboxes are slow or fail to build")
				}
				n.send(sddaemon.SdNotifyReady + "\n" + "STATUS=" + n.statusText())
				n.d.sdReady.Store(true) // from now on a reload notifies too
				n.status, n.lastSent = n.statusText(), time.Now()
			}
		}
		select {
		case <-done:
			return
		default:
		}
		select {
		case <-done:
			return
		case <-ctxDone:
			ctxDone = nil
			n.stopping = true
			n.send(sddaemon.SdNotifyStopping + "\nSTATUS=" + n.statusText())
			n.status, n.lastSent = n.statusText(), time.Now()
		case <-warm.C:
			continue
		case <-ticker.C:
		}
		switch {
		case n.watchdog > 0 && n.stopping:
			// Draining: the socket stops answering before the process
			// ends, and under socket activation a probe then would wait
			// in systemd's backlog and start the next daemon. What bounds
			// a drain that hangs is the unit's TimeoutStopSec.
			n.send(sddaemon.SdNotifyWatchdog)
		case n.watchdog > 0:
			if err := n.probe.check(done, min(n.watchdog/2, 5*time.Second)); err != nil {
				// No ping: if this lasts the watchdog's time, systemd
				// restarts the daemon.
				n.d.log.WithError(err).Warn("watchdog: the daemon's own health check failed; not pinging systemd")
			} else {
				n.send(sddaemon.SdNotifyWatchdog)
			}
		}
		if n.ready || n.stopping {
			if s := n.statusText(); s != n.status && time.Since(n.lastSent) >= statusEvery {
				n.send("STATUS=" + s)
				n.status, n.lastSent = s, time.Now()
			}
		}
	}
}

// warmTarget is how many warm sandboxes the pools hold when full: each
// profile that keeps warm sandboxes (Config.pooledNames) keeps
// warm_sandboxes.
func (d *Daemon) warmTarget() int {
	conf := d.conf()
	return conf.cfg.WarmSandboxes * len(conf.cfg.pooledNames())
}

func (n *notifier) statusText() string {
	running, queued := n.d.sched.load()
	switch {
	case n.stopping:
		return fmt.Sprintf("draining: %d running, %d queued", running, queued)
	case !n.ready:
		return "starting: " + n.d.warmText()
	}
	return n.d.statusLine()
}

// statusLine is STATUS= of a daemon that serves: its jobs and warm
// sandboxes.
func (d *Daemon) statusLine() string {
	running, queued := d.sched.load()
	return fmt.Sprintf("%d running, %d queued; %s", running, queued, d.warmText())
}

func (d *Daemon) warmText() string {
	return fmt.Sprintf("%d/%d warm sandboxes", d.engine.WarmReady(), d.warmTarget())
}

// probe is the watchdog's health check: a GET /v1/info through the
// daemon's own socket. Its answer needs the accept loop, the peer check,
// the route table and the handler, and Info takes the scheduler's, the
// pools' and the workspaces' locks: a daemon wedged in any of them does
// not answer, and systemd hears no WATCHDOG=1. It also checks the
// scheduler's one invariant that a lost hand-off breaks: no job waits
// while a slot is free. (A slot is handed over under the scheduler's lock,
// so seeing both on two checks in a row is not a race.)
type probe struct {
	c       *http.Client
	strikes int
}

func newProbe(addr string) *probe {
	return &probe{c: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", addr)
		},
		DisableKeepAlives: true,
	}}}
}

// check asks; done ends it early (Serve is returning).
func (p *probe) check(done <-chan struct{}, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-done:
			cancel()
		case <-stop:
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://sandboxd/v1/info", nil)
	if err != nil {
		return err
	}
	resp, err := p.c.Do(req)
	if err != nil {
		return fmt.Errorf("GET /v1/info: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /v1/info: %s", resp.Status)
	}
	var info api.Info
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return fmt.Errorf("GET /v1/info: %w", err)
	}
	if pl := info.Pool; pl.Queued > 0 && pl.Running < pl.Concurrency {
		p.strikes++
		if p.strikes >= 2 {
			return fmt.Errorf("scheduler: %d jobs queued while %d of %d slots are free", pl.Queued, pl.Concurrency-pl.Running, pl.Concurrency)
		}
	} else {
		p.strikes = 0
	}
	return nil
}
