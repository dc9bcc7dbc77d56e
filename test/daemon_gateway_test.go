package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/gateway/gojudge"
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

// testGateway is a real `sandboxd gateway` in front of a test daemon.
type testGateway struct {
	t      *testing.T
	url    string // go-judge's API: http://127.0.0.1:PORT
	piston string // Piston's API: http://127.0.0.1:PORT
	token  string
	log    *syncBuffer
}

// startGateway starts sandboxd gateway on d's socket, serving go-judge's
// and Piston's APIs on free loopback ports, with the given config lines.
func startGateway(t *testing.T, d *testDaemon, config string) *testGateway {
	t.Helper()
	g := &testGateway{t: t, log: &syncBuffer{}}
	addrs := runGateway(t, d, config, g.log, "gojudge", "piston")
	g.url, g.piston = "http://"+addrs["gojudge"], "http://"+addrs["piston"]
	return g
}

// runGateway starts a real sandboxd gateway on d's socket with the given
// config lines, each protocol on a free loopback port, its log into log;
// it is stopped (SIGTERM, and it must exit 0) when the test ends. The
// answer is each protocol's address.
func runGateway(t *testing.T, d *testDaemon, config string, log *syncBuffer, protocols ...string) map[string]string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gateway.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"gateway", "--socket", d.socket, "--config", cfg, "--log-format", "json"}
	for _, p := range protocols {
		args = append(args, "--"+p, "127.0.0.1:0")
	}
	cmd := osexec.Command(sandboxdBin, args...)
	cmd.Stderr = log
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gateway exit: %v\nlog:\n%s", err, log)
			}
		case <-time.After(35 * time.Second):
			cmd.Process.Kill()
			t.Errorf("gateway did not exit within 35 s of SIGTERM")
		}
	})
	addrs := map[string]string{}
	lines := bufio.NewReader(out)
	for range protocols {
		line, err := lines.ReadString('\n')
		if err != nil {
			t.Fatalf("gateway did not say where it listens: %v\nlog:\n%s", err, log)
		}
		protocol, addr, _ := strings.Cut(strings.TrimSpace(line), " ")
		if !slices.Contains(protocols, protocol) {
			t.Fatalf("gateway said %q", line)
		}
		addrs[protocol] = addr
	}
	return addrs
}

// do sends one request and gives the status and the body.
func (g *testGateway) do(method, path, ctype string, body []byte) (int, []byte) {
	g.t.Helper()
	req, err := http.NewRequest(method, g.url+path, bytes.NewReader(body))
	if err != nil {
		g.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// run posts a go-judge request and decodes its 200 answer.
func (g *testGateway) run(req string) []gojudge.Result {
	g.t.Helper()
	status, body := g.do("POST", "/run", "application/json", []byte(req))
	if status != http.StatusOK {
		g.t.Fatalf("POST /run: %d %s", status, body)
	}
	var res []gojudge.Result
	if err := json.Unmarshal(body, &res); err != nil {
		g.t.Fatalf("POST /run: %v: %s", err, body)
	}
	return res
}

func (g *testGateway) upload(name, content string) string {
	g.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write([]byte(content))
	mw.Close()
	status, body := g.do("POST", "/file", mw.FormDataContentType(), buf.Bytes())
	var id string
	if status != http.StatusOK || json.Unmarshal(body, &id) != nil {
		g.t.Fatalf("POST /file: %d %s", status, body)
	}
	return id
}

var fileIDPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// checkResult checks the fields every result has, and its status.
func checkResult(t *testing.T, what string, r gojudge.Result, status gojudge.Status, exit int) {
	t.Helper()
	if r.Status != status || r.ExitStatus != exit {
		t.Errorf("%s: status %q exitStatus %d, want %q %d (error %q, fileError %v)", what, r.Status, r.ExitStatus, status, exit, r.Error, r.FileError)
	}
	if status != gojudge.StatusFileError && status != gojudge.StatusInternalError && (r.RunTime == 0 || r.Memory == 0) {
		t.Errorf("%s: runTime %d ns, memory %d bytes: want both above 0", what, r.RunTime, r.Memory)
	}
}

// cmdJSON is one go-judge cmd as its clients write it: PATH in env, stdin
// content, stdout and stderr collectors of 10240 bytes.
func cmdJSON(args []string, stdin string, extra string) string {
	a, _ := json.Marshal(args)
	s, _ := json.Marshal(stdin)
	if extra != "" {
		extra = ", " + extra
	}
	return fmt.Sprintf(`{"args": %s, "env": ["PATH=/usr/bin:/bin"],
		"files": [{"content": %s}, {"name": "stdout", "max": 10240}, {"name": "stderr", "max": 10240}],
		"cpuLimit": 10000000000, "memoryLimit": 268435456, "procLimit": 50, "copyOut": ["stdout", "stderr"]%s}`, a, s, extra)
}

func oneCmd(args []string, stdin, extra string) string {
	return `{"cmd": [` + cmdJSON(args, stdin, extra) + `]}`
}

// TestDaemonGatewayGoJudge drives the gateway with go-judge's documented
// examples and its clients' usual requests, field by field.
func TestDaemonGatewayGoJudge(t *testing.T) {
	d := startDaemon(t, "")
	g := startGateway(t, d, "")

	// go-judge's README, "Single": compile with copyOutCached, then run the
	// cached binary by its bare name.
	res := g.run(oneCmd([]string{"/usr/bin/g++", "a.cc", "-o", "a"}, "",
		`"copyIn": {"a.cc": {"content": "#include <iostream>\nusing namespace std;\nint main() {\nint a, b;\ncin >> a >> b;\ncout << a + b << endl;\n}"}},
		 "copyOutCached": ["a.cc", "a"]`))
	if len(res) != 1 {
		t.Fatalf("compile: %d results", len(res))
	}
	checkResult(t, "compile", res[0], gojudge.StatusAccepted, 0)
	if res[0].Files["stdout"] != "" || res[0].Files["stderr"] != "" || len(res[0].Files) != 2 {
		t.Errorf("compile: files %q, want stdout and stderr empty", res[0].Files)
	}
	binID := res[0].FileIDs["a"]
	if !fileIDPattern.MatchString(binID) || !fileIDPattern.MatchString(res[0].FileIDs["a.cc"]) || res[0].Time == 0 {
		t.Fatalf("compile: fileIds %v, time %d", res[0].FileIDs, res[0].Time)
	}
	res = g.run(oneCmd([]string{"a"}, "1 1", `"copyIn": {"a": {"fileId": "`+binID+`"}}`))
	checkResult(t, "run", res[0], gojudge.StatusAccepted, 0)
	if res[0].Files["stdout"] != "2\n" || res[0].Files["stderr"] != "" {
		t.Errorf("run: files %q, want stdout \"2\\n\"", res[0].Files)
	}

	// One input in the cache, read by 10 runs at once.
	inID := g.upload("in.txt", "3 4")
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := g.run(`{"cmd": [{"args": ["a"], "files": [{"fileId": "` + inID + `"}, {"name": "stdout", "max": 100}, {"name": "stderr", "max": 100}],
				"copyIn": {"a": {"fileId": "` + binID + `"}}, "copyOut": ["stdout"]}]}`)
			if r[0].Status != gojudge.StatusAccepted || r[0].Files["stdout"] != "7\n" {
				t.Errorf("cached run %d: %+v", i, r[0])
			}
		}()
	}
	wg.Wait()
	if status, body := g.do("GET", "/file", "", nil); status != 200 || !strings.Contains(string(body), `"`+inID+`":"in.txt"`) {
		t.Errorf("GET /file: %d %s", status, body)
	}
	if status, body := g.do("GET", "/file/"+inID, "", nil); status != 200 || string(body) != "3 4" {
		t.Errorf("GET /file/ID: %d %q", status, body)
	}
	if status, body := g.do("DELETE", "/file/"+inID, "", nil); status != 200 {
		t.Errorf("DELETE /file/ID: %d %s", status, body)
	}
	if status, _ := g.do("GET", "/file/"+inID, "", nil); status != 404 {
		t.Errorf("GET /file/ID after DELETE: %d, want 404", status)
	}

	for _, tc := range []struct {
		name   string
		req    string
		status gojudge.Status
		exit   int
		check  func(t *testing.T, r gojudge.Result)
	}{
		{"TLE", oneCmd([]string{"python3", "-c", "while True: pass"}, "", `"cpuLimit": 500000000`),
			gojudge.StatusTimeLimitExceeded, 9, func(t *testing.T, r gojudge.Result) {
				if r.Time < 500_000_000 {
					t.Errorf("time %d ns, want at least the 500 ms limit", r.Time)
				}
			}},
		{"TLE by the clock", oneCmd([]string{"sleep", "5"}, "", `"clockLimit": 300000000`),
			gojudge.StatusTimeLimitExceeded, 9, func(t *testing.T, r gojudge.Result) {
				if r.RunTime < 300_000_000 || r.RunTime > 3_000_000_000 {
					t.Errorf("runTime %d ns, want about the 300 ms limit", r.RunTime)
				}
			}},
		{"MLE", oneCmd([]string{"python3", "-c", "b = bytearray(200 << 20)"}, "", `"memoryLimit": 67108864`),
			gojudge.StatusMemoryLimitExceeded, 9, func(t *testing.T, r gojudge.Result) {
				if r.Memory < 60<<20 {
					t.Errorf("memory %d bytes, want about the 64 MiB limit", r.Memory)
				}
			}},
		{"OLE", `{"cmd": [{"args": ["python3", "-c", "print('x' * 100000)"], "files": [{"content": ""}, {"name": "stdout", "max": 1000}, {"name": "stderr", "max": 1000}], "copyOut": ["stdout"]}]}`,
			gojudge.StatusOutputLimitExceeded, -1, func(t *testing.T, r gojudge.Result) {
				if n := len(r.Files["stdout"]); n == 0 || n > 1000 {
					t.Errorf("stdout %d bytes, want 1 to 1000", n)
				}
			}},
		{"nonzero exit", oneCmd([]string{"sh", "-c", "echo oops >&2; exit 3"}, "", ""),
			gojudge.StatusNonzeroExitStatus, 3, func(t *testing.T, r gojudge.Result) {
				if r.Files["stderr"] != "oops\n" {
					t.Errorf("stderr %q", r.Files["stderr"])
				}
			}},
		{"signal", oneCmd([]string{"sh", "-c", "kill -SEGV $$"}, "", ""), gojudge.StatusSignalled, 11, nil},
		{"stdin and env", oneCmd([]string{"sh", "-c", "cat; echo $X"}, "in\n", `"env": ["PATH=/usr/bin:/bin", "X=y=z"]`),
			gojudge.StatusAccepted, 0, func(t *testing.T, r gojudge.Result) {
				if r.Files["stdout"] != "in\ny=z\n" {
					t.Errorf("stdout %q", r.Files["stdout"])
				}
			}},
		{"missing optional copyOut", oneCmd([]string{"sh", "-c", "echo hi > out.txt"}, "", `"copyOut": ["stdout", "out.txt", "nope.txt?"]`),
			gojudge.StatusAccepted, 0, func(t *testing.T, r gojudge.Result) {
				if len(r.FileError) != 0 || r.Files["out.txt"] != "hi\n" || len(r.Files) != 2 {
					t.Errorf("files %q, fileError %v: want stdout and out.txt, no error", r.Files, r.FileError)
				}
			}},
		{"missing copyOut", oneCmd([]string{"true"}, "", `"copyOut": ["nope.txt"]`),
			gojudge.StatusFileError, 0, func(t *testing.T, r gojudge.Result) {
				if len(r.FileError) != 1 || r.FileError[0].Name != "nope.txt" || r.FileError[0].Type != gojudge.CopyOutOpen {
					t.Errorf("fileError %+v", r.FileError)
				}
			}},
		{"copyOut of a symlink to /etc/passwd", oneCmd([]string{"ln", "-s", "/etc/passwd", "out"}, "", `"copyOut": ["out"], "copyOutCached": ["out?"]`),
			gojudge.StatusFileError, 0, func(t *testing.T, r gojudge.Result) {
				if len(r.FileError) != 1 || r.FileError[0].Name != "out" || r.Files["out"] != "" || len(r.FileIDs) != 0 {
					t.Errorf("files %q, fileIds %v, fileError %+v: want no content and one error for out", r.Files, r.FileIDs, r.FileError)
				}
			}},
		{"program that does not exist", oneCmd([]string{"/nonexistent"}, "", ""), gojudge.StatusInternalError, 0,
			func(t *testing.T, r gojudge.Result) {
				if !strings.Contains(r.Error, "/nonexistent") {
					t.Errorf("error %q, want it to name the program", r.Error)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := g.run(tc.req)
			if len(res) != 1 {
				t.Fatalf("%d results", len(res))
			}
			exit := tc.exit
			if exit < 0 {
				exit = res[0].ExitStatus // not go-judge's to fix
			}
			checkResult(t, tc.name, res[0], tc.status, exit)
			if tc.check != nil {
				tc.check(t, res[0])
			}
		})
	}

	t.Run("interactive pair", func(t *testing.T) {
		// go-judge's README, "Multiple", with the pipe proxied and named.
		res := g.run(`{"cmd": [{"args": ["/bin/cat", "1"], "env": ["PATH=/usr/bin:/bin"],
			"files": [{"content": ""}, null, {"name": "stderr", "max": 10240}],
			"cpuLimit": 1000000000, "memoryLimit": 1048576, "procLimit": 50,
			"copyIn": {"1": {"content": "TEST 1"}}, "copyOut": ["stderr"]},
		  {"args": ["/bin/cat"], "env": ["PATH=/usr/bin:/bin"],
			"files": [null, {"name": "stdout", "max": 10240}, {"name": "stderr", "max": 10240}],
			"cpuLimit": 1000000000, "memoryLimit": 1048576, "procLimit": 50, "copyOut": ["stdout", "stderr"]}],
		 "pipeMapping": [{"in": {"index": 0, "fd": 1}, "out": {"index": 1, "fd": 0}, "proxy": true, "name": "pipe", "max": 100}]}`)
		if len(res) != 2 {
			t.Fatalf("%d results", len(res))
		}
		checkResult(t, "cmd 0", res[0], gojudge.StatusAccepted, 0)
		checkResult(t, "cmd 1", res[1], gojudge.StatusAccepted, 0)
		if res[0].Files["stderr"] != "" || res[0].Files["pipe"] != "TEST 1" || len(res[0].Files) != 2 {
			t.Errorf("cmd 0: files %q, want stderr empty and pipe \"TEST 1\"", res[0].Files)
		}
		if res[1].Files["stdout"] != "TEST 1" || res[1].Files["stderr"] != "" {
			t.Errorf("cmd 1: files %q, want stdout \"TEST 1\"", res[1].Files)
		}
	})

	t.Run("interactive cmds see only their own files", func(t *testing.T) {
		// The interactor has the answer and writes a report; the solution
		// has only its own file, and cannot read the answer.
		res := g.run(`{"cmd": [{"args": ["sh", "-c", "read a; [ \"$a\" = \"$(cat ans)\" ] && echo AC > report || echo WA > report"],
			"files": [null, {"name": "stdout", "max": 100}, {"name": "stderr", "max": 100}],
			"copyIn": {"ans": {"content": "42"}}, "copyOut": ["report", "nope?"], "copyOutCached": ["report"]},
		  {"args": ["sh", "-c", "cat ans 2>/dev/null || cat guess"],
			"files": [{"content": ""}, null, {"name": "stderr", "max": 100}],
			"copyIn": {"guess": {"content": "42\n"}}, "copyOut": ["stderr"]}],
		 "pipeMapping": [{"in": {"index": 1, "fd": 1}, "out": {"index": 0, "fd": 0}}]}`)
		if len(res) != 2 {
			t.Fatalf("%d results", len(res))
		}
		checkResult(t, "interactor", res[0], gojudge.StatusAccepted, 0)
		checkResult(t, "solution", res[1], gojudge.StatusAccepted, 0)
		if res[0].Files["report"] != "AC\n" || len(res[0].Files) != 1 || !fileIDPattern.MatchString(res[0].FileIDs["report"]) {
			t.Errorf("interactor: files %q, fileIds %v: want report AC (the solution read its own guess, not ans)", res[0].Files, res[0].FileIDs)
		}
		if status, body := g.do("GET", "/file/"+res[0].FileIDs["report"], "", nil); status != 200 || string(body) != "AC\n" {
			t.Errorf("the cached report: %d %q", status, body)
		}
	})

	t.Run("version and config", func(t *testing.T) {
		for _, path := range []string{"/version", "/config"} {
			status, body := g.do("GET", path, "", nil)
			var v map[string]any
			if status != 200 || json.Unmarshal(body, &v) != nil || v["copyOutOptional"] != true {
				t.Errorf("GET %s: %d %s: want copyOutOptional true", path, status, body)
			}
		}
	})

	t.Run("metrics and log", func(t *testing.T) {
		status, body := g.do("GET", "/metrics", "", nil)
		want := `sandboxd_gateway_requests_total{protocol="gojudge",route="POST /run",status="200"}`
		if status != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET /metrics: %d, no %s", status, want)
		}
		if !strings.Contains(g.log.String(), `"route":"POST /run"`) {
			t.Errorf("no request line for POST /run in the log:\n%.2000s", g.log)
		}
	})
}

// TestDaemonGatewayRefusals: the token, host files outside host_dirs, and
// bad requests, each a clear answer with nothing left running.
func TestDaemonGatewayRefusals(t *testing.T) {
	d := startDaemon(t, "")
	dir := t.TempDir()
	allowed := filepath.Join(dir, "allowed")
	os.Mkdir(allowed, 0o755)
	os.WriteFile(filepath.Join(allowed, "in.txt"), []byte("5 6"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(allowed, "passwd"))
	os.Symlink("../secret.txt", filepath.Join(allowed, "up"))
	g := startGateway(t, d, fmt.Sprintf("token = \"s3cret\"\nhost_dirs = [%q]\n", allowed))

	t.Run("token", func(t *testing.T) {
		for _, token := range []string{"", "wrong", "s3cretX", "s3cre"} {
			g.token = token
			for _, path := range []string{"/version", "/file", "/metrics"} {
				if status, body := g.do("GET", path, "", nil); status != http.StatusUnauthorized || len(body) != 0 {
					t.Errorf("token %q: GET %s: %d %q, want 401 and no body", token, path, status, body)
				}
			}
			if status, _ := g.do("POST", "/run", "application/json", []byte(oneCmd([]string{"true"}, "", ""))); status != http.StatusUnauthorized {
				t.Errorf("token %q: POST /run: %d, want 401", token, status)
			}
		}
		g.token = "s3cret"
		if status, body := g.do("GET", "/version", "", nil); status != 200 {
			t.Errorf("right token: GET /version: %d %s", status, body)
		}
		// Piston's listener takes the same token.
		for _, auth := range []string{"", "Bearer wrong", "Bearer s3cret"} {
			req, _ := http.NewRequest("GET", g.piston+"/api/v2/runtimes", nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{true: 200, false: 401}[auth == "Bearer s3cret"]; resp.StatusCode != want {
				t.Errorf("piston runtimes with %q: %d, want %d", auth, resp.StatusCode, want)
			}
		}
	})

	t.Run("host files", func(t *testing.T) {
		res := g.run(oneCmd([]string{"cat", "in.txt"}, "", `"copyIn": {"in.txt": {"src": "`+allowed+`/in.txt"}}`))
		if res[0].Status != gojudge.StatusAccepted || res[0].Files["stdout"] != "5 6" {
			t.Errorf("a file of host_dirs: %+v", res[0])
		}
		for _, src := range []string{dir + "/secret.txt", allowed + "/passwd", allowed + "/up", allowed + "/../secret.txt", "/etc/passwd", "in.txt"} {
			res := g.run(oneCmd([]string{"cat", "x"}, "", `"copyIn": {"x": {"src": "`+src+`"}}`))
			r := res[0]
			if r.Status != gojudge.StatusFileError || len(r.FileError) != 1 || r.FileError[0].Name != src ||
				r.FileError[0].Type != gojudge.CopyInOpenFile || !strings.Contains(r.FileError[0].Message, src) || r.Files["stdout"] != "" {
				t.Errorf("src %s: %+v, want a File Error naming it", src, r)
			}
		}
	})

	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct{ body, want string }{
			{`{"cmd": [`, "truncated JSON"},
			{`{"cmd": [}`, "malformed JSON"},
			{``, "empty"},
			{`{"cmd": []}`, "no cmd provided"},
			{`{"cmd": "x"}`, "wrong type"},
			{oneCmd([]string{"true"}, "", `"cpuLimit": 1000`), "cmd[0].cpuLimit: 1000 ns is less than 1 ms"},
			{oneCmd([]string{"true"}, "", `"memoryLimit": 256`), "cmd[0].memoryLimit: 256 bytes is less than 1 MiB"},
			{oneCmd([]string{"true"}, "", `"memoryLimit": 1099511627776000`), "above the maximum"},
			{oneCmd([]string{"true"}, "", `"cpuLimit": 18446744073709551615`), "above the maximum"},
			{oneCmd([]string{"true"}, "", `"tty": true`), "cmd[0].tty: not supported"},
			{oneCmd([]string{"true"}, "", `"copyIn": {"x": {}}`), `cmd[0].copyIn["x"]: give content, src or fileId`},
			{`{"cmd": [{"args": ["true"]}], "pipeMapping": [{"in": {"index": 0, "fd": 1}, "out": {"index": 1, "fd": 0}}]}`, "2 to 8 cmds"},
		} {
			status, body := g.do("POST", "/run", "application/json", []byte(tc.body))
			var msg string
			if status != http.StatusBadRequest || json.Unmarshal(body, &msg) != nil || !strings.Contains(msg, tc.want) {
				t.Errorf("%.60s: %d %s, want 400 and a JSON string with %q", tc.body, status, body, tc.want)
			}
		}
		// The daemon's warm sandboxes stay; nothing else may.
		if groups := hostcheck.Settle(2*time.Second, func() []string { return strayGroups(d.subtree) }); len(groups) > 0 {
			t.Errorf("cgroups left: %v", groups)
		}
	})
}
