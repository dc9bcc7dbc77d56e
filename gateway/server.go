package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	vmetrics "github.com/VictoriaMetrics/metrics"
	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api/client"
	"github.com/sandboxd/sandboxd/gateway/gojudge"
	"github.com/sandboxd/sandboxd/gateway/piston"
	"github.com/sandboxd/sandboxd/gateway/web"
	"github.com/sandboxd/sandboxd/promtext"
)

// Gateway is the protocols' listeners, built by New and run by Serve.
type Gateway struct {
	log       logrus.FieldLogger
	listeners []protocolListener
}

type protocolListener struct {
	protocol string // "gojudge", "piston", "web": the metrics' and the log's label
	addr     string
	handler  http.Handler // the protocol's routes, wrapped
}

// New builds the gateway of cfg, whose protocols call the daemon through
// c. Nothing listens until Serve.
func New(cfg Config, c *client.Client, version string, log logrus.FieldLogger) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics()
	g := &Gateway{log: log}
	mount := func(protocol, addr string, h http.Handler) {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", &m.page)
		mux.Handle("/", h)
		g.listeners = append(g.listeners, protocolListener{protocol: protocol, addr: addr,
			handler: instrument(protocol, cfg.Token, m, log, mux)})
	}
	if cfg.GoJudgeListen != "" {
		mount("gojudge", cfg.GoJudgeListen, gojudge.NewHandler(c, gojudge.Config{HostDirs: cfg.HostDirs, Version: version}, log))
	}
	if cfg.PistonListen != "" {
		mount("piston", cfg.PistonListen, piston.NewHandler(c, cfg.Piston, log))
	}
	if cfg.WebListen != "" {
		mount("web", cfg.WebListen, web.NewHandler(c, cfg.Web, log))
	}
	return g, nil
}

// Handler is the wrapped handler of a protocol ("gojudge"), for tests
// that serve it themselves; nil when it is not configured.
func (g *Gateway) Handler(protocol string) http.Handler {
	for _, l := range g.listeners {
		if l.protocol == protocol {
			return l.handler
		}
	}
	return nil
}

// Serve listens on every configured address and serves until ctx is done,
// then lets requests in flight finish for up to grace. ready, if not nil,
// is called with each listener's address once it listens.
func (g *Gateway) Serve(ctx context.Context, grace time.Duration, ready func(protocol string, addr net.Addr)) error {
	var servers []*http.Server
	errc := make(chan error, len(g.listeners))
	for _, l := range g.listeners {
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			return fmt.Errorf("%s: listen: %w", l.protocol, err)
		}
		srv := &http.Server{Handler: l.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
		servers = append(servers, srv)
		g.log.WithFields(logrus.Fields{"protocol": l.protocol, "addr": ln.Addr().String()}).Info("gateway listening")
		if ready != nil {
			ready(l.protocol, ln.Addr())
		}
		go func() { errc <- srv.Serve(ln) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, s := range servers {
		s.Shutdown(sctx)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// metrics are the gateway's Prometheus series, served as page on every
// listener.
type metrics struct {
	page     promtext.Page
	requests *vmetrics.Set // by protocol, route and status
	latency  *vmetrics.Set // by protocol and route
}

var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics() *metrics {
	m := &metrics{}
	m.requests = m.page.Family("sandboxd_gateway_requests_total", promtext.Counter,
		"Requests the gateway answered, by protocol, route and HTTP status.")
	m.latency = m.page.Family("sandboxd_gateway_request_seconds", promtext.Histogram,
		"Time from a request's arrival to its answer, by protocol and route.")
	return m
}

// instrument wraps a protocol's routes: the token first, then the metrics
// and one log line per request, whatever its answer.
func instrument(protocol, token string, m *metrics, log logrus.FieldLogger, next http.Handler) http.Handler {
	var want [sha256.Size]byte
	if token != "" {
		want = sha256.Sum256([]byte(token))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if token != "" && !authorized(r, want, protocol == "web") {
			// As go-judge's own token option: 401 and no body.
			sw.WriteHeader(http.StatusUnauthorized)
		} else {
			next.ServeHTTP(sw, r)
		}
		route := r.Pattern // set by the ServeMux that matched it
		if route == "" || route == "/" {
			route = "unmatched"
		}
		d := time.Since(start)
		m.requests.GetOrCreateCounter(promtext.Series("sandboxd_gateway_requests_total",
			"protocol", protocol, "route", route, "status", strconv.Itoa(sw.status))).Inc()
		m.latency.GetOrCreatePrometheusHistogramExt(promtext.Series("sandboxd_gateway_request_seconds",
			"protocol", protocol, "route", route), latencyBuckets).Update(d.Seconds())
		log.WithFields(logrus.Fields{"protocol": protocol, "method": r.Method, "path": r.URL.Path,
			"route": route, "status": sw.status, "ms": float64(d.Microseconds()) / 1000, "remote": r.RemoteAddr}).Info("request")
	})
}

// authorized compares the request's Bearer token with the configured one
// in constant time: both are hashed first, so that neither their contents
// nor their lengths show in the time taken. The playground's listener
// (browser) also takes the token as a "token" query parameter or a
// "sandboxd_token" cookie, since a browser's WebSocket cannot set the
// Authorization header; and its GET /health is open, for probes.
func authorized(r *http.Request, want [sha256.Size]byte, browser bool) bool {
	const prefix = "Bearer "
	var given []string
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, prefix) {
		given = append(given, h[len(prefix):])
	}
	if browser {
		if r.Method == http.MethodGet && r.URL.Path == "/health" {
			return true
		}
		if t := r.URL.Query().Get("token"); t != "" {
			given = append(given, t)
		}
		if c, err := r.Cookie("sandboxd_token"); err == nil && c.Value != "" {
			given = append(given, c.Value)
		}
	}
	ok := false
	for _, g := range given {
		got := sha256.Sum256([]byte(g))
		ok = subtle.ConstantTimeCompare(got[:], want[:]) == 1 || ok
	}
	return ok
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
