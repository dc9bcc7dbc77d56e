package daemon

import (
	"context"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// server is the HTTP side of the daemon.
type server struct {
	d         *Daemon
	socketGID uint32
	draining  atomic.Bool
	bodies    *byteBudget  // request bodies in flight
	inflight  atomic.Int64 // requests being answered
	metrics   http.Handler // the Prometheus page
	intake    *intakeListener
}

// Serve answers the API on the configured Unix socket until ctx ends, then
// drains: it refuses new jobs and answers /_ping with 503, lets running
// jobs finish within the grace, cancels the rest, stops accepting, removes
// the socket, gives back what New acquired (close) and returns.
func (d *Daemon) Serve(ctx context.Context) error {
	defer d.close() // also when Serve fails before it drains
	gid, err := socketGroup(d.conf().cfg.SocketGroup)
	if err != nil {
		return err
	}
	ln, gid, own, err := d.listen(gid) // systemd's socket, else our own (systemd_linux.go)
	if err != nil {
		return err
	}
	if own {
		defer os.Remove(d.socket)
	}
	s := &server{d: d, socketGID: gid, bodies: d.bodies,
		metrics: &d.metrics.page}
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: headerTimeout,
		IdleTimeout:       idleConnTimeout,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(context.WithValue(ctx, connKey{}, c), peerKey{}, credentials(c))
		},
		ConnState: connState,
		ErrorLog:  nil,
	}
	if s.intake, err = newIntakeListener(ln, intakePerProc*runtime.GOMAXPROCS(0), maxOpenConns(), d.metrics.reject); err != nil {
		ln.Close()
		return err
	}
	go d.expireLoop(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.intake) }()
	d.log.WithFields(logrus.Fields{
		"socket": d.socket, "concurrency": d.conf().cfg.Concurrency, "queue": d.conf().cfg.QueueSize,
		"cgroups": d.engine.Cgroups().Mode(), "version": d.version, "go_procs": runtime.GOMAXPROCS(0), "sched": schedPolicy(),
	}).Info("sandboxd serving")
	defer d.notifySystemd(ctx, ln.Addr().String())() // READY, STATUS, watchdog, STOPPING (systemd_linux.go)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	running, queued := d.sched.load()
	grace := d.conf().cfg.ShutdownGrace
	d.log.WithFields(logrus.Fields{"running": running, "queued": queued, "grace": grace.String()}).Info("draining")
	// The socket answers while the jobs finish (srv.Shutdown would close
	// it at once): a load balancer's /_ping sees 503, not a refusal.
	if !s.waitIdle(grace.Duration) {
		// The grace is over: cancel what still runs, and wait for its
		// teardown.
		d.cancelBase()
		s.waitIdle(30 * time.Second)
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv.Shutdown(closeCtx)
	d.close()
	d.log.Info("sandboxd stopped")
	return nil
}

// waitIdle waits until no request is being answered, for d at most, and
// says whether that came.
func (s *server) waitIdle(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for s.inflight.Load() > 0 {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}
