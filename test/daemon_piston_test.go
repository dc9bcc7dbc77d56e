package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/gateway/piston"
)

// pistonHello is a hello world in each language the built-in profiles
// carry, by Piston's name for it.
var pistonHello = map[string]string{
	"python":     "print('hello')\n",
	"c":          "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n",
	"c++":        "#include <iostream>\nint main() { std::cout << \"hello\" << std::endl; }\n",
	"java":       "public class Hello { public static void main(String[] a) { System.out.println(\"hello\"); } }\n",
	"javascript": "console.log('hello')\n",
	"go":         "package main\nimport \"fmt\"\nfunc main() { fmt.Println(\"hello\") }\n",
}

// pistonPost posts body to the handler's execute and decodes the answer.
func pistonPost(t *testing.T, url, contentType, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url+"/api/v2/execute", contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer %d is not a JSON object: %v: %s", resp.StatusCode, err, b)
	}
	return resp.StatusCode, out
}

func pistonJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestDaemonPiston drives a real sandboxd gateway's Piston API over a real
// daemon with raw HTTP, and then with the piston-client package from npm.
func TestDaemonPiston(t *testing.T) {
	d := startDaemon(t, "")
	srv := struct{ URL string }{startGateway(t, d, "").piston}

	info, err := d.c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(srv.URL + "/api/v2/runtimes")
	if err != nil {
		t.Fatal(err)
	}
	var rts []piston.Runtime
	json.NewDecoder(resp.Body).Decode(&rts)
	resp.Body.Close()
	listed := map[string]string{}
	for _, rt := range rts {
		listed[rt.Language] = rt.Version
	}
	for _, l := range info.Languages {
		if _, ok := listed[l.Language]; ok != l.Available {
			t.Errorf("runtime %s listed: %v, available: %v (%s)", l.Language, ok, l.Available, l.Reason)
		}
	}
	for _, must := range []string{"python", "c", "c++"} {
		if listed[must] == "" {
			t.Fatalf("runtimes %+v lack %s", rts, must)
		}
	}

	t.Run("unavailable profiles refused", func(t *testing.T) {
		for _, l := range info.Languages {
			if l.Available {
				continue
			}
			_, err := d.c.Run(context.Background(), &api.Job{Profile: l.Profile, Steps: []api.Step{{Argv: []string{"/bin/true"}}}})
			if err == nil || !strings.Contains(err.Error(), "unavailable on this host: "+l.Reason) {
				t.Errorf("a job in %s (%s): %v", l.Profile, l.Reason, err)
			}
		}
	})

	t.Run("every runtime", func(t *testing.T) {
		for _, rt := range rts {
			code, out := pistonPost(t, srv.URL, "application/json", pistonJSON(map[string]any{
				"language": rt.Language, "version": "*", "files": []map[string]string{{"name": "x", "content": pistonHello[rt.Language]}},
				"run_timeout": 3000, "compile_timeout": 10000,
			}))
			run, _ := out["run"].(map[string]any)
			if code != 200 || run == nil || run["stdout"] != "hello\n" || run["code"] != float64(0) || run["status"] != nil || out["version"] != rt.Version {
				t.Errorf("%s: %d %s", rt.Language, code, pistonJSON(out))
			}
			if compiled := out["compile"] != nil; compiled != (rt.Language == "c" || rt.Language == "c++" || rt.Language == "go") {
				t.Errorf("%s: compile stage %v", rt.Language, out["compile"])
			}
		}
	})

	// Each case is a request and what its answer must hold: field paths
	// ("run.status") and their values; nil is JSON's null.
	for _, c := range []struct {
		name, body string
		status     int
		want       map[string]any
		contains   map[string]string
	}{
		{name: "stdin and args", status: 200,
			body: pistonJSON(map[string]any{"language": "py", "version": "3.x", "stdin": "abc", "args": []string{"1", "2"},
				"files": []map[string]string{{"content": "import sys\nprint(input()[::-1], sys.argv[1:])"}}}),
			want: map[string]any{"language": "python", "run.stdout": "cba ['1', '2']\n", "run.code": float64(0)}},
		{name: "compile error", status: 200,
			body:     pistonJSON(map[string]any{"language": "c", "version": "*", "files": []map[string]string{{"content": "int main(void) { return x; }"}}}),
			want:     map[string]any{"compile.status": "RE", "compile.code": float64(1), "compile.signal": nil, "run.status": "RE", "run.code": float64(1)},
			contains: map[string]string{"compile.stderr": "error", "compile.output": "undeclared"}},
		{name: "runtime error", status: 200,
			body: pistonJSON(map[string]any{"language": "python", "version": "*", "files": []map[string]string{{"content": "print('before')\nraise SystemExit(3)"}}}),
			want: map[string]any{"run.status": "RE", "run.code": float64(3), "run.signal": nil, "run.stdout": "before\n"}},
		{name: "a signal", status: 200,
			body: pistonJSON(map[string]any{"language": "c", "version": "*", "files": []map[string]string{{"content": "int main(void) { *(volatile int *)0 = 1; }"}}}),
			want: map[string]any{"run.status": "SG", "run.code": nil, "run.signal": "SIGSEGV", "compile.code": float64(0)}},
		{name: "timeout", status: 200,
			body: pistonJSON(map[string]any{"language": "python", "version": "*", "run_timeout": 500, "files": []map[string]string{{"content": "while True: pass"}}}),
			want: map[string]any{"run.status": "TO", "run.code": nil, "run.signal": "SIGKILL", "run.message": "Time limit exceeded"}},
		{name: "memory hog", status: 200,
			body: pistonJSON(map[string]any{"language": "python", "version": "*", "run_memory_limit": 64 << 20, "files": []map[string]string{{"content": "x = bytearray(512 << 20)\nprint(len(x))"}}}),
			want: map[string]any{"run.status": "SG", "run.code": nil, "run.signal": "SIGKILL", "run.stdout": ""}},
		{name: "stdout too long", status: 200,
			body: pistonJSON(map[string]any{"language": "python", "version": "*", "files": []map[string]string{{"content": "print('y' * 5000)"}}}),
			want: map[string]any{"run.status": "OL", "run.signal": "SIGKILL", "run.message": "stdout length exceeded"}},
		{name: "base64 and hex files", status: 200,
			body: pistonJSON(map[string]any{"language": "python", "version": "*", "files": []map[string]string{
				{"content": "print(open('data.bin').read(), open('h.txt').read())"},
				{"name": "data.bin", "content": "aGk=", "encoding": "base64"}, {"name": "h.txt", "content": "686f", "encoding": "hex"}}}),
			want: map[string]any{"run.stdout": "hi ho\n"}},
		{name: "unknown language", status: 400,
			body: `{"language":"cobol","version":"*","files":[{"content":"x"}]}`,
			want: map[string]any{"message": "cobol-* runtime is unknown"}},
		{name: "unavailable language", status: 400,
			body: `{"language":"python","version":"2.x","files":[{"content":"x"}]}`,
			want: map[string]any{"message": "python-2.x runtime is unknown"}},
		{name: "no version", status: 400, body: `{"language":"python","files":[{"content":"x"}]}`,
			want: map[string]any{"message": "version is required as a string"}},
		{name: "no files", status: 400, body: `{"language":"python","version":"*"}`,
			want: map[string]any{"message": "files is required as an array"}},
		{name: "content not a string", status: 400, body: `{"language":"python","version":"*","files":[{"content":1}]}`,
			want: map[string]any{"message": "files[0].content is required as a string"}},
		{name: "limit above the configured", status: 400, body: `{"language":"python","version":"*","run_timeout":3001,"files":[{"content":"x"}]}`,
			want: map[string]any{"message": "run_timeout cannot exceed the configured limit of 3000"}},
		{name: "limit not a number", status: 400, body: `{"language":"python","version":"*","run_cpu_time":"1s","files":[{"content":"x"}]}`,
			want: map[string]any{"message": "If specified, run_cpu_time must be a number"}},
		{name: "negative limit", status: 400, body: `{"language":"python","version":"*","compile_timeout":-5,"files":[{"content":"x"}]}`,
			want: map[string]any{"message": "compile_timeout must be non-negative"}},
		{name: "malformed JSON", status: 400, body: `{"language":"python",`,
			contains: map[string]string{"message": "malformed JSON"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, out := pistonPost(t, srv.URL, "application/json", c.body)
			if code != c.status {
				t.Fatalf("HTTP %d, want %d: %s", code, c.status, pistonJSON(out))
			}
			for path, want := range c.want {
				if got := pistonField(out, path); got != want {
					t.Errorf("%s = %#v, want %#v (%s)", path, got, want, pistonJSON(out))
				}
			}
			for path, sub := range c.contains {
				if got, _ := pistonField(out, path).(string); !strings.Contains(got, sub) {
					t.Errorf("%s = %q, want it to contain %q", path, got, sub)
				}
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		code, out := pistonPost(t, srv.URL, "application/x-www-form-urlencoded", `{}`)
		if code != 415 || out["message"] != "requests must be of type application/json" {
			t.Errorf("%d %v", code, out)
		}
	})
	t.Run("piston-client", func(t *testing.T) { pistonClient(t, srv.URL) })
}

// pistonField is the value at a dotted path of a decoded answer.
func pistonField(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

// pistonClient runs the npm piston-client (make deps installs it in
// run/node) against the handler: its runtimes, and an execute of each of
// its two call forms.
func pistonClient(t *testing.T, url string) {
	root, _ := filepath.Abs("..")
	mod := filepath.Join(root, "run", "node", "node_modules", "piston-client", "index.js")
	if _, err := os.Stat(mod); err != nil {
		t.Fatalf("piston-client is not installed (make deps installs it): %v", err)
	}
	script := `
import piston from ` + pistonJSON("file://"+mod) + `;
const client = piston({ server: process.argv[2] });
const runtimes = await client.runtimes();
const py = await client.execute('python', 'import sys; print("hi", sys.argv[1:])');
const c = await client.execute({ language: 'c', files: [{ name: 'a.c', content: '#include <stdio.h>\nint main(){puts("cc");}' }], args: [] });
const bad = await client.execute('cobol', 'x');
console.log(JSON.stringify({ runtimes, py, c, bad }));
`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "node", "--input-type=module", "-", url)
	cmd.Stdin = strings.NewReader(script)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v: %s", err, stderr.String())
	}
	var got struct {
		Runtimes []piston.Runtime
		Py, C    piston.Response
		Bad      map[string]any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(got.Runtimes) < 3 {
		t.Errorf("runtimes: %+v", got.Runtimes)
	}
	if got.Py.Language != "python" || got.Py.Run == nil || got.Py.Run.Stdout != "hi ['1', '2', '3']\n" {
		t.Errorf("python: %s", pistonJSON(got.Py))
	}
	if got.C.Compile == nil || got.C.Run == nil || got.C.Run.Stdout != "cc\n" {
		t.Errorf("c: %s", pistonJSON(got.C))
	}
	// piston-client finds no version for a language it does not list,
	// and passes Piston's 400 on as it is.
	if got.Bad["message"] != "version is required as a string" {
		t.Errorf("cobol: %v", got.Bad)
	}
}
