package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/gateway/web"
)

// webGateway is a real `sandboxd gateway --web` in front of a test daemon.
type webGateway struct {
	t    *testing.T
	d    *testDaemon
	url  string // http://127.0.0.1:PORT
	host string // 127.0.0.1:PORT
	log  *syncBuffer
}

// startWebGateway starts sandboxd gateway on d's socket with the
// playground on a free loopback port and the given config lines.
func startWebGateway(t *testing.T, d *testDaemon, config string) *webGateway {
	t.Helper()
	g := &webGateway{t: t, d: d, log: &syncBuffer{}}
	addr := runGateway(t, d, config, g.log, "web")["web"]
	g.url, g.host = "http://"+addr, addr
	return g
}

// wsConn is one test client of the protocol.
type wsConn struct {
	t    *testing.T
	conn *websocket.Conn
}

// dial opens path ("/ws/python") as the page of the gateway's own origin.
func (g *webGateway) dial(path string) *wsConn {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, "ws://"+g.host+path, &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {g.url}}})
	if err != nil {
		g.t.Fatalf("dial %s: %v (%v)", path, err, resp)
	}
	c.SetReadLimit(1 << 20)
	g.t.Cleanup(func() { c.CloseNow() })
	return &wsConn{t: g.t, conn: c}
}

func (w *wsConn) send(v any) {
	w.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		if s, isStr := v.(string); isStr {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.conn.Write(ctx, websocket.MessageText, b); err != nil {
		w.t.Fatalf("send %s: %v", b, err)
	}
}

// next reads one message, waiting up to d.
func (w *wsConn) next(d time.Duration) web.Message {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	_, b, err := w.conn.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	var m web.Message
	if err := json.Unmarshal(b, &m); err != nil {
		w.t.Fatalf("message %s: %v", b, err)
	}
	return m
}

// untilEnd reads messages until a run's last one (execution_complete,
// timeout, or an error with an execution_id), and gives them all.
func (w *wsConn) untilEnd(d time.Duration) []web.Message {
	w.t.Helper()
	deadline := time.Now().Add(d)
	var all []web.Message
	for {
		m := w.next(time.Until(deadline))
		all = append(all, m)
		if m.Type == web.TypeExecutionComplete || m.Type == web.TypeTimeout || m.Type == web.TypeError && m.ExecutionID != "" {
			return all
		}
	}
}

// lines are the contents of the messages of a type, joined by newlines.
func lines(ms []web.Message, typ string) string {
	var out []string
	for _, m := range ms {
		if m.Type == typ && m.Content != nil {
			out = append(out, *m.Content)
		}
	}
	return strings.Join(out, "\n")
}

// runsLeft waits up to d for the daemon to have no job queued or running,
// and gives those it still has.
func (g *webGateway) runsLeft(d time.Duration) []string {
	deadline := time.Now().Add(d)
	for {
		runs, err := g.d.c.Runs(context.Background())
		if err != nil {
			g.t.Fatal(err)
		}
		if len(runs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			var ids []string
			for _, r := range runs {
				ids = append(ids, r.ID+" "+r.State)
			}
			return ids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDaemonWebProtocol drives the playground's WebSocket protocol as a front
// end does, without a browser: every message type both ways, the
// refusals, stdin, stop, a disconnect, many connections at once, a client
// that never reads, and a foreign Origin.
func TestDaemonWebProtocol(t *testing.T) {
	d := startDaemon(t, "")
	g := startWebGateway(t, d, "[web]\ntime_limit_ms = 3000\nmax_code_bytes = 1000\nqueue_messages = 64\n")

	t.Run("print", func(t *testing.T) {
		w := g.dial("/ws/python")
		w.send(map[string]any{"type": "execute", "code": "print('hi')\nprint('there')"})
		ms := w.untilEnd(20 * time.Second)
		first, last := ms[0], ms[len(ms)-1]
		if first.Type != web.TypeExecutionStart || !strings.HasPrefix(first.ExecutionID, "ws_") {
			t.Errorf("first message %+v, want execution_start with an id", first)
		}
		if got := lines(ms, "stdout"); got != "hi\nthere" {
			t.Errorf("stdout lines %q", got)
		}
		if last.Type != web.TypeExecutionComplete || last.Message != "Execution completed with exit code: 0" || last.Verdict != "ok" ||
			last.CPUTimeMS == nil || last.WallTimeMS == nil || last.MemoryPeakBytes == nil || *last.MemoryPeakBytes == 0 || last.ExecutionID != first.ExecutionID {
			t.Errorf("last message %+v", last)
		}
		// No type is an execute; the exit code is the program's.
		w.send(`{"code": "import sys; print('x', file=sys.stderr); sys.exit(3)"}`)
		ms = w.untilEnd(20 * time.Second)
		last = ms[len(ms)-1]
		if lines(ms, "stderr") != "x" || last.Type != web.TypeExecutionComplete || last.Message != "Execution completed with exit code: 3" || last.Verdict != "nonzero_exit" {
			t.Errorf("a run without a type: %+v", ms)
		}
	})

	t.Run("exception", func(t *testing.T) {
		w := g.dial("/ws/python")
		w.send(map[string]any{"type": "execute", "code": "print('before')\ndef f():\n    return 1 / 0\nf()"})
		ms := w.untilEnd(20 * time.Second)
		last := ms[len(ms)-1]
		stderr := lines(ms, "stderr")
		if lines(ms, "stdout") != "before" || !strings.HasPrefix(stderr, "Traceback (most recent call last):") || !strings.HasSuffix(stderr, "ZeroDivisionError: division by zero") {
			t.Errorf("output: %+v", ms)
		}
		if last.Type != web.TypeError || last.Traceback != stderr || last.Message != stderr || last.ExitCode == nil || *last.ExitCode != 1 {
			t.Errorf("last message %+v, want an error with the traceback", last)
		}
		w.send(map[string]any{"type": "execute", "code": "print('unclosed'"})
		ms = w.untilEnd(20 * time.Second)
		if last := ms[len(ms)-1]; last.Type != web.TypeError || !strings.Contains(last.Traceback, "SyntaxError") {
			t.Errorf("a syntax error: %+v", ms)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		w := g.dial("/ws/python")
		for _, tc := range []struct{ send, want string }{
			{`{"type": "execute", "code": `, "invalid JSON"},
			{`[1, 2]`, "invalid message"},
			{`{"type": "execute", "code": 5}`, "invalid message"},
			{`{"type": "run", "code": "print(1)"}`, `unknown message type "run": execute, stop or stdin`},
			{`{"type": "execute"}`, "execute: code is required as a string"},
			{`{"type": "execute", "code": "` + strings.Repeat("#", 1001) + `"}`, "code: 1001 bytes, at most 1000"},
			{`{"type": "execute", "code": "1", "language": "cobol"}`, `language "cobol" is not available here`},
			{`{"type": "stop"}`, "no program is running"},
			{`{"type": "stdin", "data": "x"}`, "stdin: no program is running"},
			{`{"type": "stdin"}`, "stdin: data is required as a string"},
		} {
			w.send(tc.send)
			m := w.next(10 * time.Second)
			if m.Type != web.TypeError || !strings.Contains(m.Message, tc.want) {
				t.Errorf("%.40s: %+v, want an error with %q", tc.send, m, tc.want)
			}
		}
		// One program at a time: a second execute is refused, the first
		// goes on.
		w.send(map[string]any{"code": "import time; time.sleep(0.5); print('first')"})
		if m := w.next(10 * time.Second); m.Type != web.TypeExecutionStart {
			t.Fatalf("%+v", m)
		}
		w.send(map[string]any{"code": "print('second')"})
		if m := w.next(10 * time.Second); m.Type != web.TypeError || !strings.Contains(m.Message, "already running") {
			t.Errorf("a second execute: %+v", m)
		}
		if ms := w.untilEnd(10 * time.Second); lines(ms, "stdout") != "first" {
			t.Errorf("the first run: %+v", ms)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		w := g.dial("/ws/python")
		w.send(map[string]any{"code": "name = input('name? ')\nprint(name[::-1])\nimport sys\nprint(len(sys.stdin.read()))"})
		var ms []web.Message
		for {
			m := w.next(10 * time.Second)
			ms = append(ms, m)
			if m.Type == "stdout" {
				break
			}
		}
		if m := ms[len(ms)-1]; *m.Content != "name? " || !m.Partial {
			t.Fatalf("the prompt: %+v, want a partial stdout line", m)
		}
		w.send(map[string]any{"type": "stdin", "data": "olleh\n"})
		w.send(map[string]any{"type": "stdin", "data": "abc"})
		w.send(map[string]any{"type": "stdin", "eof": true})
		ms = w.untilEnd(10 * time.Second)
		if got := lines(ms, "stdout"); got != "hello\n3" || ms[len(ms)-1].Verdict != "ok" {
			t.Errorf("after stdin: %+v", ms)
		}
	})

	t.Run("stop", func(t *testing.T) {
		w := g.dial("/ws/python")
		w.send(map[string]any{"code": "print('looping', flush=True)\nwhile True: pass"})
		for m := w.next(10 * time.Second); m.Type != "stdout"; m = w.next(10 * time.Second) {
		}
		start := time.Now()
		w.send(map[string]any{"type": "stop"})
		ms := w.untilEnd(10 * time.Second)
		took := time.Since(start)
		if last := ms[len(ms)-1]; last.Type != web.TypeExecutionComplete || !last.Stopped || last.Message != "Execution stopped" {
			t.Errorf("after stop: %+v", ms)
		}
		// The issue asks for 0.5 s; a shared machine gets twice that.
		if took > time.Second {
			t.Errorf("stop took %s", took)
		}
		if left := g.runsLeft(time.Second); left != nil {
			t.Errorf("jobs left after a stop: %v", left)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		w := g.dial("/ws/python")
		w.send(map[string]any{"code": "import time\nwhile True: time.sleep(0.1)"})
		ms := w.untilEnd(20 * time.Second)
		if last := ms[len(ms)-1]; last.Type != web.TypeTimeout || last.ExecutionID == "" || !strings.Contains(last.Message, "timed out") || last.Verdict != "wall_time_limit" {
			t.Errorf("%+v", ms)
		}
	})

	t.Run("c", func(t *testing.T) {
		w := g.dial("/ws")
		w.send(map[string]any{"language": "c", "code": "#include <stdio.h>\nint main(void){int n; printf(\"n? \"); fflush(stdout); scanf(\"%d\", &n); printf(\"%d\\n\", n * 2); return 0;}"})
		for m := w.next(20 * time.Second); m.Type != "stdout"; m = w.next(20 * time.Second) {
		}
		w.send(map[string]any{"type": "stdin", "data": "21\n"})
		ms := w.untilEnd(20 * time.Second)
		if lines(ms, "stdout") != "42" || ms[len(ms)-1].Verdict != "ok" {
			t.Errorf("%+v", ms)
		}
		w.send(map[string]any{"language": "c", "code": "int main(void) { return nope; }"})
		ms = w.untilEnd(20 * time.Second)
		if last := ms[len(ms)-1]; last.Type != web.TypeError || !strings.Contains(last.Message, "Compilation failed") || !strings.Contains(lines(ms, "stderr"), "nope") {
			t.Errorf("a compile error: %+v", ms)
		}
	})

	t.Run("disconnect", func(t *testing.T) {
		w := g.dial("/ws/python")
		w.send(map[string]any{"code": "print('x', flush=True)\nwhile True: pass"})
		for m := w.next(10 * time.Second); m.Type != "stdout"; m = w.next(10 * time.Second) {
		}
		w.conn.CloseNow()
		// The bound: a closed tab stops its program within a second.
		if left := g.runsLeft(time.Second); left != nil {
			t.Errorf("jobs left a second after the client went: %v", left)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		const n = 20
		var wg sync.WaitGroup
		errs := make(chan string, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w := g.dial("/ws/python")
				w.send(map[string]any{"code": fmt.Sprintf("import time\nfor k in range(3):\n    print('conn%d', k)\n    time.sleep(0.05)", i)})
				ms := w.untilEnd(50 * time.Second)
				want := fmt.Sprintf("conn%d 0\nconn%d 1\nconn%d 2", i, i, i)
				if got := lines(ms, "stdout"); got != want || ms[len(ms)-1].Type != web.TypeExecutionComplete {
					errs <- fmt.Sprintf("connection %d got %q, want %q", i, got, want)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("never reads", func(t *testing.T) {
		// A client that sends an execute and then reads nothing: its
		// program prints as fast as it can. The gateway's queue fills, the
		// connection is dropped and the job cancelled, well within the
		// time limit (3 s).
		w := g.dial("/ws/python")
		start := time.Now()
		w.send(map[string]any{"code": "while True: print(1)"})
		time.Sleep(200 * time.Millisecond)
		if left := g.runsLeft(4 * time.Second); left != nil {
			t.Errorf("jobs left past the time limit: %v", left)
		}
		t.Logf("the job was gone %s after the execute", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(g.log.String(), "dropping a connection") {
			t.Errorf("the gateway did not drop the client that does not read; log:\n%s", g.log)
		}
		// The gateway still serves others.
		w2 := g.dial("/ws/python")
		w2.send(map[string]any{"code": "print('ok')"})
		if ms := w2.untilEnd(20 * time.Second); lines(ms, "stdout") != "ok" {
			t.Errorf("another client after: %+v", ms)
		}
	})

	t.Run("origin", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, resp, err := websocket.Dial(ctx, "ws://"+g.host+"/ws/python", &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {"http://evil.example"}}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("a foreign Origin: %v %v, want 403", err, resp)
		}
	})

	t.Run("page and health", func(t *testing.T) {
		for _, path := range []string{"/", "/playground.js", "/playground.css", "/health", "/languages"} {
			resp, err := http.Get(g.url + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || len(b) == 0 {
				t.Errorf("GET %s: %d %.100s", path, resp.StatusCode, b)
			}
			if path == "/" && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
				t.Errorf("GET /: no CSP")
			}
			if path == "/health" && !strings.Contains(string(b), `"status":"ok"`) {
				t.Errorf("GET /health: %s", b)
			}
		}
	})

	if left := g.runsLeft(2 * time.Second); left != nil {
		t.Errorf("jobs left: %v", left)
	}
}

// TestDaemonWebBounds: past max_connections a connection gets a clear error and
// is closed; with a token, a browser gives it as a query parameter or the
// cookie the page sets, and nothing without it is served but /health.
func TestDaemonWebBounds(t *testing.T) {
	d := startDaemon(t, "")
	g := startWebGateway(t, d, "token = \"s3cret\"\n[web]\nmax_connections = 1\n")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	origin := &websocket.DialOptions{HTTPHeader: http.Header{"Origin": {g.url}}}
	if _, resp, err := websocket.Dial(ctx, "ws://"+g.host+"/ws/python", origin); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token: %v %v, want 401", err, resp)
	}
	w := g.dial("/ws/python?token=s3cret")
	w.send(map[string]any{"code": "print(1)"})
	if ms := w.untilEnd(20 * time.Second); lines(ms, "stdout") != "1" {
		t.Errorf("%+v", ms)
	}
	second := g.dial("/ws/python?token=s3cret")
	m := second.next(5 * time.Second)
	if m.Type != web.TypeError || !strings.Contains(m.Message, "too many connections") {
		t.Errorf("past max_connections: %+v", m)
	}
	if _, _, err := second.conn.Read(ctx); websocket.CloseStatus(err) != websocket.StatusTryAgainLater {
		t.Errorf("past max_connections: closed with %v, want 1013", err)
	}

	for path, want := range map[string]int{"/": 401, "/?token=s3cret": 200, "/health": 200, "/languages": 401} {
		resp, err := http.Get(g.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/?token=s3cret" && !strings.Contains(resp.Header.Get("Set-Cookie"), "sandboxd_token=s3cret") {
			t.Errorf("GET %s: no cookie: %v", path, resp.Header)
		}
	}
	req, _ := http.NewRequest("GET", g.url+"/languages", nil)
	req.AddCookie(&http.Cookie{Name: "sandboxd_token", Value: "s3cret"})
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("with the cookie: %v %v", err, resp)
	}
}
