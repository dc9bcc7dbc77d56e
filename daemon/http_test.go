//go:build linux

package daemon

// The HTTP side of the daemon without root and without an engine: routing,
// the caller check, the batch reader and the error answers. Each test
// builds a Daemon of only what these paths use (config, profiles,
// scheduler, registry, metrics) and answers requests through
// server.routes(); none gets as far as running a job.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
)

// newHTTPServer makes a server around a Daemon without an engine; edit
// changes the configuration first.
func newHTTPServer(t *testing.T, edit func(*Config)) *server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Concurrency, cfg.WarmSandboxes = 2, 0
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	m := &metrics{}
	m.addRejected()
	cache, err := openFileCache(t.TempDir(), cfg.CacheBytes, cfg.CacheQuotaBytes, log)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		log: log, metrics: m, cache: cache,
		sched:  newScheduler(cfg.Concurrency, cfg.QueueSize),
		reg:    newRegistry(cfg.ResultTTL.Duration, cfg.ResultBytes),
		bodies: newByteBudget(cfg.MaxInflightRequestBytes),
	}
	d.live.Store(mustSnapshot(cfg))
	d.base, d.cancelBase = context.WithCancel(context.Background())
	t.Cleanup(d.cancelBase)
	return &server{d: d, bodies: d.bodies, metrics: &m.page}
}

// root is a caller the default configuration allows.
var root = peer{pid: 0, uid: 0, gid: 0}

// call answers one request from caller through the server's routes.
func call(s *server, caller peer, method, target, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://sandboxd"+target, strings.NewReader(body))
	req = req.WithContext(context.WithValue(req.Context(), peerKey{}, caller))
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, req)
	return rec
}

// errorOf decodes an error answer, and fails unless it is one with the
// given status and code.
func errorOf(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) *api.Error {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	var eb api.ErrorBody
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&eb); err != nil || eb.Error == nil {
		t.Fatalf("error body: %v (%+v)", err, eb)
	}
	if eb.Error.Code != code || eb.Error.Message == "" {
		t.Fatalf("error %+v, want code %s and a message", eb.Error, code)
	}
	return eb.Error
}

// routePaths maps each path of routeTable to the methods it takes
// (ServeMux takes HEAD wherever GET is).
func routePaths(t *testing.T) map[string][]string {
	paths := map[string][]string{}
	for _, r := range routeTable {
		method, path, _ := strings.Cut(r.pattern, " ")
		paths[path] = append(paths[path], method)
		if method == http.MethodGet {
			paths[path] = append(paths[path], http.MethodHead)
		}
	}
	return paths
}

// concrete fills a pattern's wildcards.
func concrete(path string) string { return strings.ReplaceAll(path, "{id}", "r_x") }

func TestHTTPUnknownPathIs404(t *testing.T) {
	s := newHTTPServer(t, nil)
	for _, target := range []string{"/", "/v1", "/v1/", "/v2/run", "/v1/runs/a/b", "/v1/run/", "/_ping/x", "/metrics/x", "/v1/runs/"} {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			rec := call(s, root, method, target, "")
			e := errorOf(t, rec, http.StatusNotFound, api.CodeNotFound)
			if want := method + " " + target + ": no such endpoint"; e.Message != want {
				t.Errorf("%s %s: message %q, want %q", method, target, e.Message, want)
			}
			if rec.Header().Get("Allow") != "" {
				t.Errorf("%s %s: a 404 with an Allow header %q", method, target, rec.Header().Get("Allow"))
			}
		}
	}
}

func TestHTTPWrongMethodIs405WithAllow(t *testing.T) {
	s := newHTTPServer(t, nil)
	for path, methods := range routePaths(t) {
		for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
			if slices.Contains(methods, method) {
				continue
			}
			rec := call(s, root, method, concrete(path), "")
			e := errorOf(t, rec, http.StatusMethodNotAllowed, api.CodeInvalidArgument)
			allow := strings.Split(rec.Header().Get("Allow"), ", ")
			slices.Sort(allow)
			want := slices.Clone(methods)
			slices.Sort(want)
			if !slices.Equal(allow, want) {
				t.Errorf("%s %s: Allow %v, want %v", method, path, allow, want)
			}
			if !strings.Contains(e.Message, "method not allowed") || !strings.Contains(e.Message, concrete(path)) {
				t.Errorf("%s %s: message %q does not name the path and the refusal", method, path, e.Message)
			}
		}
	}
}

func TestHTTPEveryRouteIsServed(t *testing.T) {
	// Each route reaches its handler: a status that is not the router's
	// own 404 or 405. /v1/info needs the engine and is left out.
	s := newHTTPServer(t, nil)
	j := &job{id: "r_x", caller: 0, created: time.Now(), steps: 1, cancel: func() {}, state: api.StateQueued}
	s.d.reg.add(j)
	for _, r := range routeTable {
		method, path, _ := strings.Cut(r.pattern, " ")
		if path == "/v1/info" {
			continue
		}
		body := ""
		if method == http.MethodPost {
			body = "{}" // refused by the handler, not the router
		}
		rec := call(s, root, method, concrete(path), body)
		if rec.Code == http.StatusNotFound && strings.Contains(rec.Body.String(), "no such endpoint") || rec.Code == http.StatusMethodNotAllowed {
			t.Errorf("%s: the router answered %d: %s", r.pattern, rec.Code, rec.Body)
		}
	}
}

func TestHTTPPing(t *testing.T) {
	s := newHTTPServer(t, nil)
	rec := call(s, root, http.MethodGet, "/_ping", "")
	if rec.Code != http.StatusOK || rec.Body.String() != "OK" || rec.Header().Get("Content-Type") != "text/plain" {
		t.Fatalf("ping: %d %q %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

func TestHTTPDrainingIs503(t *testing.T) {
	s := newHTTPServer(t, nil)
	s.draining.Store(true)
	for _, r := range [][2]string{{http.MethodGet, "/_ping"}, {http.MethodPost, "/v1/run"}, {http.MethodPost, "/v1/batch"}} {
		e := errorOf(t, call(s, root, r[0], r[1], `{"steps": [{"argv": ["true"]}]}`), http.StatusServiceUnavailable, api.CodeUnavailable)
		if e.Message != "shutting down" {
			t.Errorf("%s %s: message %q", r[0], r[1], e.Message)
		}
	}
	// The others answer as usual.
	if rec := call(s, root, http.MethodGet, "/v1/runs", ""); rec.Code != http.StatusOK {
		t.Errorf("GET /v1/runs while draining: %d", rec.Code)
	}
}

func TestHTTPAllowed(t *testing.T) {
	const sockGID = 4242
	other := peer{uid: 1000, gid: 1000}
	tests := []struct {
		name    string
		uids    []uint32
		gids    []uint32
		p       peer
		allowed bool
	}{
		{"root", nil, nil, peer{uid: 0, gid: 7}, true},
		{"the socket's group", nil, nil, peer{uid: 1000, gid: sockGID}, true},
		{"anyone else", nil, nil, other, false},
		{"an unknown peer", nil, nil, peer{uid: ^uint32(0), gid: ^uint32(0)}, false},
		{"a configured uid", []uint32{1000}, nil, other, true},
		{"a configured gid", nil, []uint32{1000}, peer{uid: 5, gid: 1000}, true},
		{"not configured", []uint32{1001}, []uint32{1002}, other, false},
		// Configured lists replace the default: root and the socket's
		// group are no longer let in by themselves.
		{"root, not configured", []uint32{1000}, nil, peer{uid: 0, gid: 0}, false},
		{"the socket's group, not configured", []uint32{1000}, nil, peer{uid: 5, gid: sockGID}, false},
	}
	for _, tt := range tests {
		s := newHTTPServer(t, func(c *Config) { c.AllowedUIDs, c.AllowedGIDs = tt.uids, tt.gids })
		s.socketGID = sockGID
		if got := s.allowed(tt.p); got != tt.allowed {
			t.Errorf("%s: allowed(%+v) = %v, want %v", tt.name, tt.p, got, tt.allowed)
		}
		rec := call(s, tt.p, http.MethodGet, "/_ping", "")
		if tt.allowed {
			if rec.Code != http.StatusOK {
				t.Errorf("%s: GET /_ping: %d %s", tt.name, rec.Code, rec.Body)
			}
			continue
		}
		e := errorOf(t, rec, http.StatusForbidden, api.CodePermissionDenied)
		if want := fmt.Sprintf("uid %d (gid %d) may not use sandboxd", tt.p.uid, tt.p.gid); !strings.HasPrefix(e.Message, want) {
			t.Errorf("%s: message %q, want it to start %q", tt.name, e.Message, want)
		}
		// Refused before routing: an unknown path is 403 too, not 404.
		errorOf(t, call(s, tt.p, http.MethodGet, "/nope", ""), http.StatusForbidden, api.CodePermissionDenied)
	}
}

func TestHTTPAllowedBySupplementaryGroup(t *testing.T) {
	// A caller is let in by a group it has besides its own, as /proc says
	// of its pid: this process's, or (as root) a child's given one.
	pid, groups := int32(os.Getpid()), supplementaryGroups(int32(os.Getpid()))
	if len(groups) == 0 {
		if os.Getuid() != 0 {
			t.Skip("this process has no supplementary group, and only root can start one with some")
		}
		cmd := execSleeper(t, []uint32{4343})
		pid, groups = int32(cmd), []uint32{4343}
	}
	g := groups[0]
	p := peer{pid: pid, uid: 12345, gid: 12345}
	s := newHTTPServer(t, nil)
	s.socketGID = g
	if !s.allowed(p) {
		t.Errorf("socket group %d, a caller with it as a supplementary group: refused", g)
	}
	s.socketGID = 4244
	if s.allowed(p) {
		t.Errorf("socket group 4244, a caller without it: allowed")
	}
	s = newHTTPServer(t, func(c *Config) { c.AllowedGIDs = []uint32{g} })
	s.socketGID = 4244
	if !s.allowed(p) {
		t.Errorf("allowed_gids [%d], a caller with it as a supplementary group: refused", g)
	}
}

// execSleeper starts a process with the given supplementary groups (root
// only) that lives until the test ends, and returns its pid.
func execSleeper(t *testing.T, groups []uint32) int {
	t.Helper()
	sleep, err := execLookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	attr := &syscall.ProcAttr{Sys: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: groups}}}
	pid, err := syscall.ForkExec(sleep, []string{"sleep", "60"}, attr)
	if err != nil {
		t.Fatalf("starting sleep with groups %v: %v", groups, err)
	}
	t.Cleanup(func() {
		syscall.Kill(pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
	})
	// Until it has exec'd, /proc shows the test's own groups.
	for i := 0; i < 200; i++ {
		if slices.Equal(supplementaryGroups(int32(pid)), groups) {
			return pid
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("pid %d never showed groups %v", pid, groups)
	return 0
}

func execLookPath(name string) (string, error) {
	for _, dir := range []string{"/usr/bin", "/bin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func TestHTTPPeerCredentialsOverUnixSocket(t *testing.T) {
	// The caller check on a real Unix socket, with the caller read by
	// SO_PEERCRED as Serve reads it: this process's uid, whatever it is.
	uid := uint32(os.Getuid())
	sock := filepath.Join(t.TempDir(), "s.sock")
	for _, tt := range []struct {
		uids   []uint32
		status int
	}{{[]uint32{uid}, http.StatusOK}, {[]uint32{uid + 1}, http.StatusForbidden}} {
		s := newHTTPServer(t, func(c *Config) { c.AllowedUIDs, c.AllowedGIDs = tt.uids, []uint32{4245} })
		srv := &http.Server{Handler: s.routes(), ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, credentials(c))
		}}
		ln, err := net.Listen("unix", sock+strconv.Itoa(tt.status))
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", ln.Addr().String())
		}}}
		resp, err := client.Get("http://sandboxd/_ping")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("allowed_uids %v, caller uid %d: %d %s, want %d", tt.uids, uid, resp.StatusCode, body, tt.status)
		}
	}
}

func TestHTTPErrorCodesMapToStatuses(t *testing.T) {
	want := map[string]int{
		api.CodeInvalidArgument:   http.StatusBadRequest,
		api.CodePermissionDenied:  http.StatusForbidden,
		api.CodeNotFound:          http.StatusNotFound,
		api.CodeConflict:          http.StatusConflict,
		api.CodeResourceExhausted: http.StatusTooManyRequests,
		api.CodeUnavailable:       http.StatusServiceUnavailable,
		api.CodeInternal:          http.StatusInternalServerError,
	}
	if len(httpStatus) != len(want) {
		t.Errorf("httpStatus has %d codes, want %d: %v", len(httpStatus), len(want), httpStatus)
	}
	s := newHTTPServer(t, nil)
	for code, status := range want {
		if httpStatus[code] != status {
			t.Errorf("httpStatus[%s] = %d, want %d", code, httpStatus[code], status)
		}
		rec := httptest.NewRecorder()
		s.fail(rec, 0, &api.Error{Code: code, Message: "m"})
		e := errorOf(t, rec, status, code)
		if e.Message != "m" {
			t.Errorf("%s: message %q", code, e.Message)
		}
		if retry := rec.Header().Get("Retry-After"); (code == api.CodeResourceExhausted) != (retry == "1") {
			t.Errorf("%s: Retry-After %q", code, retry)
		}
	}
	// A status given wins over the code's (405, 408, 413 are invalid_argument).
	rec := httptest.NewRecorder()
	s.fail(rec, http.StatusRequestEntityTooLarge, &api.Error{Code: api.CodeInvalidArgument, Message: "m"})
	errorOf(t, rec, http.StatusRequestEntityTooLarge, api.CodeInvalidArgument)
	// Every refusal is counted by its code.
	rec = call(s, root, http.MethodGet, "/metrics", "")
	if !strings.Contains(rec.Body.String(), `sandboxd_rejected_requests_total{code="resource_exhausted"} 1`) {
		t.Errorf("/metrics does not count the refusals:\n%s", rec.Body)
	}
}

func TestHTTPInvalidJobIs400NamingTheField(t *testing.T) {
	s := newHTTPServer(t, nil)
	tests := []struct{ body, message string }{
		{``, "body: empty"},
		{`{"steps": [{"argv": ["true"]}]} {}`, "body: unexpected data after the job"},
		{`{"steps": [{"argv": ["true"]}]`, "body: truncated JSON"},
		{`[]`, "body: wrong type (array, want object)"},
		{`{"Steps": []}`, "Steps: unknown field (names are case-sensitive: steps)"},
		{`{"steps": [{"argv": "true"}]}`, "steps[0].argv: wrong type (string, want array)"},
		{`{"steps": []}`, "steps: at least one step is needed"},
		{`{"steps": [{"argv": []}]}`, "steps[0].argv: empty"},
		{`{"steps": [{"argv": ["true"], "argv": ["false"]}]}`, "steps[0].argv: duplicate key"},
		{`{"steps": [{"argv": ["true"], "limits": {"wall_time_ms": 0}}]}`, "steps[0].limits.wall_time_ms: must be at least 1, got 0"},
		{`{"steps": [{"argv": ["true"], "limits": {"memory_bytes": 99999999999}}]}`, "steps[0].limits.memory_bytes: 99999999999 is above the maximum 4294967296"},
		{`{"steps": [{"argv": ["true"], "limits": {"pids": 1.5}}]}`, "steps[0].limits.pids: 1.5 is not a whole number"},
		{`{"steps": [{"argv": ["true"], "stdin": "a", "stdin_base64": "YQ=="}]}`, "steps[0].stdin, steps[0].stdin_base64: give one, not both"},
		{`{"files": {"../x": "a"}, "steps": [{"argv": ["true"]}]}`, `files["../x"]: path leaves the workspace (..)`},
		{`{"files": {"a": {"content": "x", "mode": "999"}}, "steps": [{"argv": ["true"]}]}`, `files["a"].mode: "999" is not an octal mode within 0000..0777`},
		{`{"profile": "gpu", "steps": [{"argv": ["true"]}]}`, `profile: "gpu" does not exist`},
		{`{"id": ".x", "steps": [{"argv": ["true"]}]}`, `id: ".x" must be at most 128 characters of A-Z a-z 0-9 . _ -, not starting with a dot`},
		{`{"stop_on": "always", "steps": [{"argv": ["true"]}]}`, `stop_on: "always" is not failure or never`},
		{`{"output_encoding": "hex", "steps": [{"argv": ["true"]}]}`, `output_encoding: "hex" is not utf8 or base64`},
		{`{"workspace_bytes": 2147483648, "steps": [{"argv": ["true"]}]}`, "workspace_bytes: 2147483648 is above the maximum 1073741824"},
		{`{"tracked_files": ["/etc/passwd"], "steps": [{"argv": ["true"]}]}`, "tracked_files[0]: absolute path; paths are relative to the workspace"},
	}
	for _, tt := range tests {
		e := errorOf(t, call(s, root, http.MethodPost, "/v1/run", tt.body), http.StatusBadRequest, api.CodeInvalidArgument)
		if e.Message != tt.message {
			t.Errorf("%s:\n got  %q\n want %q", tt.body, e.Message, tt.message)
		}
	}
	// A streamed run is refused the same way, before its stream begins.
	req := httptest.NewRequest(http.MethodPost, "http://sandboxd/v1/run", strings.NewReader(`{"steps": []}`))
	req.Header.Set("Accept", "application/x-ndjson")
	req = req.WithContext(context.WithValue(req.Context(), peerKey{}, root))
	rec := httptest.NewRecorder()
	s.routes().ServeHTTP(rec, req)
	errorOf(t, rec, http.StatusBadRequest, api.CodeInvalidArgument)
}

func TestHTTPBodyTooLargeIs413(t *testing.T) {
	s := newHTTPServer(t, func(c *Config) { c.MaxRequestBytes = 1 << 10 })
	body := `{"steps": [{"argv": ["true"], "stdin": "` + strings.Repeat("x", 2<<10) + `"}]}`
	// Announced (Content-Length) and not: both refused at the cap.
	for _, announced := range []bool{true, false} {
		req := httptest.NewRequest(http.MethodPost, "http://sandboxd/v1/run", strings.NewReader(body))
		if !announced {
			req.ContentLength = -1
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		req = req.WithContext(context.WithValue(req.Context(), peerKey{}, root))
		rec := httptest.NewRecorder()
		s.routes().ServeHTTP(rec, req)
		e := errorOf(t, rec, http.StatusRequestEntityTooLarge, api.CodeInvalidArgument)
		if want := "body: larger than the cap of 1024 bytes (max_request_bytes)"; e.Message != want {
			t.Errorf("announced %v: message %q, want %q", announced, e.Message, want)
		}
	}
}

func TestHTTPAdmissionErrors(t *testing.T) {
	// 409: an id a live job holds.
	s := newHTTPServer(t, nil)
	s.d.reg.add(&job{id: "same", created: time.Now(), steps: 1, cancel: func() {}, state: api.StateRunning})
	e := errorOf(t, call(s, root, http.MethodPost, "/v1/run", `{"id": "same", "steps": [{"argv": ["true"]}]}`), http.StatusConflict, api.CodeConflict)
	if want := `id: "same" is in use by a live job`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	// 429 with Retry-After: every slot busy and no room to wait.
	s = newHTTPServer(t, func(c *Config) { c.Concurrency, c.QueueSize = 1, 0 })
	if _, err := s.d.sched.enqueue(7, false); err != nil {
		t.Fatal(err)
	}
	rec := call(s, root, http.MethodPost, "/v1/run", `{"steps": [{"argv": ["true"]}]}`)
	errorOf(t, rec, http.StatusTooManyRequests, api.CodeResourceExhausted)
	if rec.Header().Get("Retry-After") != "1" {
		t.Errorf("429 without Retry-After: %v", rec.Header())
	}
	if live := s.d.reg.live(); len(live) != 0 {
		t.Errorf("a job refused for a full queue stays registered: %d", len(live))
	}
	// 429: the request bodies in flight would pass their budget.
	s = newHTTPServer(t, nil)
	s.bodies.tryTake(s.bodies.total)
	errorOf(t, call(s, root, http.MethodPost, "/v1/run", `{"steps": [{"argv": ["true"]}]}`), http.StatusTooManyRequests, api.CodeResourceExhausted)
}

func TestHTTPRuns(t *testing.T) {
	s := newHTTPServer(t, nil)
	var list api.RunList
	rec := call(s, root, http.MethodGet, "/v1/runs", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || rec.Code != http.StatusOK || list.Runs == nil || len(list.Runs) != 0 {
		t.Fatalf("no jobs: %d %s (want an empty list, not null)", rec.Code, rec.Body)
	}
	now := time.Now()
	cancelled := false
	live := &job{id: "b", key: api.KeyOf("k"), caller: 1000, created: now, steps: 2, cancel: func() { cancelled = true }, state: api.StateRunning, step: 1}
	older := &job{id: "a", caller: 0, created: now.Add(-time.Second), steps: 1, cancel: func() {}, state: api.StateQueued}
	done := &job{id: "c", caller: 1000, created: now, steps: 1, cancel: func() {}}
	for _, j := range []*job{live, older, done} {
		s.d.reg.add(j)
	}
	s.d.reg.finish(done, &api.Result{ID: "c", Status: api.StatusCompleted, Steps: []api.StepResult{{Verdict: api.VerdictOK}}})

	rec = call(s, root, http.MethodGet, "/v1/runs", "")
	list = api.RunList{}
	json.Unmarshal(rec.Body.Bytes(), &list)
	if len(list.Runs) != 2 || list.Runs[0].ID != "a" || list.Runs[1].ID != "b" || string(list.Runs[1].Key) != `"k"` || list.Runs[1].Step != 1 || list.Runs[1].Steps != 2 {
		t.Errorf("GET /v1/runs: the live jobs, oldest first: %s", rec.Body)
	}

	var info api.RunInfo
	rec = call(s, root, http.MethodGet, "/v1/runs/c", "")
	if err := json.Unmarshal(rec.Body.Bytes(), &info); err != nil || info.State != api.StateFinished || info.Result == nil || info.Result.Status != api.StatusCompleted {
		t.Errorf("GET /v1/runs/c: a finished job with its result: %d %s", rec.Code, rec.Body)
	}
	e := errorOf(t, call(s, root, http.MethodGet, "/v1/runs/nope", ""), http.StatusNotFound, api.CodeNotFound)
	if want := `run "nope": no such job (or its result expired)`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}

	// DELETE: not found, another uid's, already finished, then the owner's.
	errorOf(t, call(s, root, http.MethodDelete, "/v1/runs/nope", ""), http.StatusNotFound, api.CodeNotFound)
	e = errorOf(t, call(s, peer{uid: 1001, gid: 0}, http.MethodDelete, "/v1/runs/b", ""), http.StatusForbidden, api.CodePermissionDenied)
	if want := `run "b" belongs to uid 1000`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	e = errorOf(t, call(s, root, http.MethodDelete, "/v1/runs/c", ""), http.StatusConflict, api.CodeConflict)
	if want := `run "c": already finished with status completed; nothing to cancel`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
	if cancelled {
		t.Fatal("a refused cancel cancelled the job")
	}
	rec = call(s, peer{uid: 1000, gid: 0}, http.MethodDelete, "/v1/runs/b", "")
	if rec.Code != http.StatusOK || !cancelled {
		t.Errorf("DELETE by its owner: %d %s, cancelled %v", rec.Code, rec.Body, cancelled)
	}
	cancelled = false
	if rec = call(s, root, http.MethodDelete, "/v1/runs/b", ""); rec.Code != http.StatusOK || !cancelled {
		t.Errorf("DELETE by root: %d %s, cancelled %v", rec.Code, rec.Body, cancelled)
	}
}

// batchLines decodes a batch's answer.
func batchLines(t *testing.T, rec *httptest.ResponseRecorder) []api.BatchLine {
	t.Helper()
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("batch: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var out []api.BatchLine
	for _, l := range bytes.Split(bytes.TrimSpace(rec.Body.Bytes()), []byte("\n")) {
		var bl api.BatchLine
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&bl); err != nil {
			t.Fatalf("batch line %s: %v", l, err)
		}
		out = append(out, bl)
	}
	return out
}

func TestHTTPBatchRefusedLinesNameWhere(t *testing.T) {
	s := newHTTPServer(t, func(c *Config) { c.MaxRequestBytes = 1 << 10 })
	body := strings.Join([]string{
		`{"key": "a", "steps": []}`,
		``,
		`{"key": "b", "steps": [{"argv": "true"}]}`,
		`{"steps": [`,
		`{"key": "c", "steps": [{"argv": ["true"], "stdin": "` + strings.Repeat("x", 2<<10) + `"}]}`,
		`{"key": "d", "Steps": []}`,
	}, "\n")
	lines := batchLines(t, call(s, root, http.MethodPost, "/v1/batch", body))
	want := []struct {
		index   int
		key     string
		message string
	}{
		{0, `"a"`, "line 1: steps: at least one step is needed"},
		{1, ``, "line 3: steps[0].argv: wrong type (string, want array)"}, // not decoded: no key
		{2, ``, "line 4: truncated JSON"},
		{3, ``, "line 5: longer than the cap of 1024 bytes"},
		{4, ``, "line 6: Steps: unknown field (names are case-sensitive: steps)"},
	}
	if len(lines) != len(want)+1 {
		t.Fatalf("%d lines, want %d and the summary", len(lines), len(want))
	}
	for i, w := range want {
		l := lines[i]
		if l.Index == nil || *l.Index != w.index || string(l.Key) != w.key || l.Error == nil || l.Error.Code != api.CodeInvalidArgument || l.Error.Message != w.message || l.Result != nil {
			t.Errorf("line %d: %+v (error %+v), want index %d, key %s, message %q", i, l, l.Error, w.index, w.key, w.message)
		}
	}
	sum := lines[len(lines)-1].Summary
	if sum == nil || sum.Total != 5 || sum.Invalid != 5 || len(sum.Statuses) != 0 || lines[len(lines)-1].Index != nil {
		t.Errorf("summary %+v", lines[len(lines)-1])
	}
}

func TestHTTPBatchWrapperForm(t *testing.T) {
	s := newHTTPServer(t, nil)
	lines := batchLines(t, call(s, root, http.MethodPost, "/v1/batch", "{\"jobs\": [\n{\"key\": 1, \"steps\": []},\n{\"key\": 2, \"steps\": [{\"argv\": [\"\"]}]}\n]}\n"))
	if len(lines) != 3 || lines[0].Error == nil || lines[0].Error.Message != "jobs[0]: steps: at least one step is needed" ||
		lines[1].Error == nil || lines[1].Error.Message != "jobs[1]: steps[0].argv: empty" || string(lines[1].Key) != "2" ||
		lines[2].Summary == nil || lines[2].Summary.Invalid != 2 {
		t.Errorf("wrapper form: %+v", lines)
	}
	// A wrapper that is not one is refused as a whole.
	lines = batchLines(t, call(s, root, http.MethodPost, "/v1/batch", `{"jobs": [{}], "more": 1}`))
	if len(lines) != 2 || lines[0].Error == nil || lines[0].Error.Message != "more: unknown field" || lines[0].Index == nil || *lines[0].Index != 0 {
		t.Errorf("a bad wrapper: %+v", lines)
	}
}

func TestHTTPBatchConcurrencyParameter(t *testing.T) {
	s := newHTTPServer(t, nil)
	for _, q := range []string{"0", "-1", "x", "1.5"} {
		e := errorOf(t, call(s, root, http.MethodPost, "/v1/batch?concurrency="+q, ""), http.StatusBadRequest, api.CodeInvalidArgument)
		if want := fmt.Sprintf("concurrency: %q is not a positive integer", q); e.Message != want {
			t.Errorf("message %q, want %q", e.Message, want)
		}
	}
	// An empty batch: the summary alone.
	lines := batchLines(t, call(s, root, http.MethodPost, "/v1/batch?concurrency=1", ""))
	if len(lines) != 1 || lines[0].Summary == nil || lines[0].Summary.Total != 0 {
		t.Errorf("an empty batch: %+v", lines)
	}
}

// readAll runs readBatch over body and collects what it hands out.
type batchItem struct {
	raw, where string
	err        *api.Error
}

func readAll(t *testing.T, body string, maxLine int64, stopAfter int) ([]batchItem, *api.Error, error) {
	t.Helper()
	var items []batchItem
	aerr, err := readBatch(strings.NewReader(body), maxLine, func(raw []byte, where string, e *api.Error) bool {
		items = append(items, batchItem{string(raw), where, e})
		return stopAfter == 0 || len(items) < stopAfter
	})
	return items, aerr, err
}

func TestHTTPReadBatch(t *testing.T) {
	t.Run("lines", func(t *testing.T) {
		items, aerr, err := readAll(t, "{\"a\":1}\n\n  \n{\"b\":2}\r\n{\"c\":3}", 64, 0)
		want := []batchItem{{`{"a":1}`, "line 1", nil}, {`{"b":2}`, "line 4", nil}, {`{"c":3}`, "line 5", nil}}
		if aerr != nil || err != nil || !slices.Equal(items, want) {
			t.Errorf("got %v %v %v, want %v", items, aerr, err, want)
		}
	})
	t.Run("a long line is refused and the next read", func(t *testing.T) {
		long := `{"x":"` + strings.Repeat("y", 200) + `"}`
		items, aerr, err := readAll(t, "{}\n"+long+"\n{\"z\":1}\n", 64, 0)
		if aerr != nil || err != nil || len(items) != 3 || items[1].where != "line 2" || items[1].err == nil ||
			items[1].err.Message != "body: longer than the cap of 64 bytes" || items[2].raw != `{"z":1}` || items[2].where != "line 3" {
			t.Errorf("got %+v %v %v", items, aerr, err)
		}
	})
	t.Run("a line as long as the cap", func(t *testing.T) {
		line := `{"x":"` + strings.Repeat("y", 64-9) + `"}`
		items, _, _ := readAll(t, line+"\n", int64(len(line)+1), 0)
		if len(items) != 1 || items[0].err != nil || items[0].raw != line {
			t.Errorf("got %+v", items)
		}
	})
	t.Run("the wrapper form", func(t *testing.T) {
		items, aerr, err := readAll(t, "  {\"jobs\":\n [ {\"a\":1},\n{\"b\":2} ]\n}\n", 1<<10, 0)
		want := []batchItem{{`{"a":1}`, "jobs[0]", nil}, {`{"b":2}`, "jobs[1]", nil}}
		if aerr != nil || err != nil || !slices.Equal(items, want) {
			t.Errorf("got %v %v %v, want %v", items, aerr, err, want)
		}
	})
	t.Run("a malformed wrapper names where", func(t *testing.T) {
		for body, want := range map[string]string{
			`{"jobs": [{}]`:               "body: truncated JSON",
			`{"jobs": [{}], "jobs": []}`:  "jobs: duplicate key",
			`{"jobs": {}}`:                "jobs: wrong type (object, want array)",
			`{"jobs": [{}]} {}`:           "body: unexpected data after the jobs",
			`{"jobs": [` + `{}, ` + `{]}`: "jobs[1]: malformed JSON",
			`{"jobs": [null]}`:            "", // a null job is refused when it is decoded
			"{\"jobs\": [\n\"" + strings.Repeat("x", 1<<10) + "\"]}": "body: larger than the cap of 1024 bytes",
		} {
			items, aerr, err := readAll(t, body, 1<<10, 0)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case want == "" && aerr != nil:
				t.Errorf("%s: %v", body, aerr)
			case want != "" && (aerr == nil || !strings.HasPrefix(aerr.Message, want) || len(items) != 0):
				t.Errorf("%s: got %v (items %v), want %q", body, aerr, items, want)
			}
		}
	})
	t.Run("an object that is not a wrapper is a line", func(t *testing.T) {
		items, aerr, _ := readAll(t, `{"steps": [], "jobs": []}`+"\n", 1<<10, 0)
		if aerr != nil || len(items) != 1 || items[0].where != "line 1" {
			t.Errorf("got %v %v", items, aerr)
		}
	})
	t.Run("stops when told", func(t *testing.T) {
		items, _, _ := readAll(t, "{}\n{}\n{}\n", 64, 2)
		if len(items) != 2 {
			t.Errorf("got %d items, want 2", len(items))
		}
		items, _, _ = readAll(t, `{"jobs": [{}, {}, {}]}`, 64, 1)
		if len(items) != 1 {
			t.Errorf("wrapper: got %d items, want 1", len(items))
		}
	})
	t.Run("a body that fails to read", func(t *testing.T) {
		boom := fmt.Errorf("connection reset")
		aerr, err := readBatch(io.MultiReader(strings.NewReader("{}\n{"), errReader{boom}), 64, func([]byte, string, *api.Error) bool { return true })
		if aerr != nil || err != boom {
			t.Errorf("got %v %v, want the read error", aerr, err)
		}
	})
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
