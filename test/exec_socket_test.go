package test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	osexec "os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// execVia runs `sandboxd exec --socket SOCKET ARGS...` and returns what it
// printed and its exit status.
func execVia(t *testing.T, socket string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := osexec.Command(sandboxdBin, append([]string{"exec", "--socket", socket}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*osexec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run sandboxd exec: %v", err)
	}
	return out.String(), errb.String(), code
}

// jsonKeys is the set of top-level keys of a JSON object.
func jsonKeys(t *testing.T, raw string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatalf("not a JSON object: %v: %s", err, raw)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// `sandboxd exec --socket` runs the step as a job of the daemon: the same
// result, in the same shape, and the same exit statuses as a standalone
// exec; the flags that only an engine of its own would use are refused.
func TestExecThroughTheDaemon(t *testing.T) {
	d := startDaemon(t, "")
	run := func(args ...string) api.StepResult {
		t.Helper()
		out, errOut, code := execVia(t, d.socket, args...)
		if code != 0 {
			t.Fatalf("sandboxd exec --socket %q: exit %d\nstderr: %s\nstdout: %s", args, code, errOut, out)
		}
		var r api.StepResult
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("bad JSON %v: %s", err, out)
		}
		return r
	}

	t.Run("the same result as a standalone exec", func(t *testing.T) {
		via, _, code := execVia(t, d.socket, "--", "/bin/true")
		alone := sandboxExecRaw(t, "--", "/bin/true")
		if code != 0 || alone.exitCode != 0 {
			t.Fatalf("exit %d through the daemon, %d alone", code, alone.exitCode)
		}
		if a, b := jsonKeys(t, via), jsonKeys(t, alone.raw); !reflect.DeepEqual(a, b) {
			t.Errorf("keys through the daemon %v, alone %v", a, b)
		}
		// Byte for byte the form a standalone exec prints: the result
		// encoded by encoding/json, indented by two spaces, a newline.
		out, _, _ := execVia(t, d.socket, "--", "sh", "-c", "printf '<&>\\t\\001\\303\\251'")
		var decoded api.StepResult
		if err := json.Unmarshal([]byte(out), &decoded); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetIndent("", "  ")
		enc.Encode(decoded)
		if out != want.String() || decoded.Stdout != "<&>\t\x01\u00e9" {
			t.Errorf("printed\n%s\nwant\n%s", out, want.String())
		}
		r := run("--", "/bin/true")
		if r.Verdict != api.VerdictOK || r.ExitCode != 0 || r.CPUTimeMS <= 0 || r.WallTimeMS <= 0 || r.MemoryPeakBytes <= 0 || r.PIDsPeak < 1 {
			t.Errorf("implausible result: %s", summary(r))
		}
	})
	t.Run("exit code and output", func(t *testing.T) {
		r := run("--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if r.Verdict != api.VerdictNonzeroExit || r.ExitCode != 3 || r.Stdout != "out\n" || r.Stderr != "err\n" {
			t.Errorf("got %s", summary(r))
		}
	})
	t.Run("env and stdin, text and bytes", func(t *testing.T) {
		dir := t.TempDir()
		text, bin := filepath.Join(dir, "text"), filepath.Join(dir, "bin")
		os.WriteFile(text, []byte("line one\nline two\n"), 0o644)
		os.WriteFile(bin, []byte{0xff, 0x00, 0xfe, 'x', 0x80}, 0o644)
		r := run("--env", "GREETING=hello there", "--stdin", text, "--", "sh", "-c", `echo "$GREETING"; cat`)
		if r.Verdict != api.VerdictOK || r.Stdout != "hello there\nline one\nline two\n" {
			t.Errorf("got %s", summary(r))
		}
		r = run("--stdin", bin, "--", "od", "-An", "-tx1")
		if got := strings.Join(strings.Fields(r.Stdout), " "); r.Verdict != api.VerdictOK || got != "ff 00 fe 78 80" {
			t.Errorf("stdin bytes came through as %q: %s", got, summary(r))
		}
	})
	t.Run("limits", func(t *testing.T) {
		r := run("--cpu-time-ms", "200", "--wall-time-ms", "5000", "--", "sh", "-c", "while :; do :; done")
		if r.Verdict != api.VerdictCPUTimeLimit {
			t.Errorf("verdict %s, want %s: %s", r.Verdict, api.VerdictCPUTimeLimit, summary(r))
		}
		r = run("--output-bytes", "1000", "--", "sh", "-c", "yes | head -c 5000")
		if r.Verdict != api.VerdictOutputLimit || len(r.Stdout) != 1000 || !r.StdoutTruncated {
			t.Errorf("output limit: %d bytes kept: %s", len(r.Stdout), summary(r))
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"--cpu-time-ms", "999999999", "--", "/bin/true"}, 2, "cpu_time_ms: 999999999 is above the maximum"},
			{[]string{"--cpu-time-ms", "0", "--", "/bin/true"}, 2, "--cpu-time-ms: must be positive"},
			{[]string{"--workdir", t.TempDir(), "--", "/bin/true"}, 2, "--workdir: not with --socket"},
			{[]string{"--cgroup-subtree", "x", "--", "/bin/true"}, 2, "--cgroup-subtree: not with --socket"},
			{[]string{"--stdin", "/nonexistent/input", "--", "/bin/true"}, 2, "--stdin: open /nonexistent/input"},
			{[]string{"--env", "NOEQUALS", "--", "/bin/true"}, 2, `"NOEQUALS" is not K=V`},
			{[]string{"--"}, 2, "no command given"},
		} {
			out, errOut, code := execVia(t, d.socket, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) || out != "" {
				t.Errorf("%q: exit %d, stderr %q, stdout %q; want exit %d and %q", c.args, code, errOut, out, c.code, c.want)
			}
		}
		missing := filepath.Join(t.TempDir(), "none.sock")
		_, errOut, code := execVia(t, missing, "--", "/bin/true")
		if want := "--socket: cannot reach the daemon at " + missing + ": connect: no such file or directory"; code != 1 || !strings.Contains(errOut, want) {
			t.Errorf("no daemon: exit %d, stderr %q; want 1 and %q", code, errOut, want)
		}
	})
	t.Run("a killed exec's job ends", func(t *testing.T) {
		cmd := osexec.Command(sandboxdBin, "exec", "--socket", d.socket, "--wall-time-ms", "60000", "--", "sleep", "60")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the daemon runs the job, then kill the client.
		deadline := time.Now().Add(10 * time.Second)
		for {
			runs, err := d.c.Runs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the job never showed in GET /v1/runs")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		for {
			runs, err := d.c.Runs(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if len(runs) == 0 && len(busyProcesses()) == 0 {
				break
			}
			if time.Now().After(deadline.Add(10 * time.Second)) {
				t.Fatalf("the killed client's job is still there: runs %v, processes %v", runs, busyProcesses())
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
}
