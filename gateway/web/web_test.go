package web

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

func TestLineSplitter(t *testing.T) {
	var mu sync.Mutex
	var got []string
	s := newLineSplitter(30*time.Millisecond, func(line string, partial bool) {
		mu.Lock()
		defer mu.Unlock()
		if partial {
			line += "~"
		}
		got = append(got, line)
	})
	s.write("a\nb")
	s.write("c\r\n\nname? ")
	time.Sleep(100 * time.Millisecond) // the prompt goes out as partial
	s.write("x\ntail")
	s.close()
	mu.Lock()
	defer mu.Unlock()
	if want := "a|bc||name? ~|x|tail"; strings.Join(got, "|") != want {
		t.Errorf("lines %q, want %q", strings.Join(got, "|"), want)
	}
}

func TestOutcome(t *testing.T) {
	tb := "Traceback (most recent call last):\n  File \"/workspace/main.py\", line 1, in <module>\nZeroDivisionError: division by zero\n"
	syntax := "  File \"/workspace/main.py\", line 1\n    print(\n         ^\nSyntaxError: '(' was never closed\n"
	step := func(v api.Verdict, code int, sig, stderr string) api.StepResult {
		return api.StepResult{Verdict: v, ExitCode: code, Signal: sig, Stderr: stderr, WallTimeMS: 12}
	}
	for _, tc := range []struct {
		name     string
		lang     string
		compiled bool
		steps    []api.StepResult
		status   string
		stopped  bool
		typ      string
		msg      string
	}{
		{"ok", "python", false, []api.StepResult{step(api.VerdictOK, 0, "", "")}, "completed", false, TypeExecutionComplete, "Execution completed with exit code: 0"},
		{"exit 3", "python", false, []api.StepResult{step(api.VerdictNonzeroExit, 3, "", "x")}, "completed", false, TypeExecutionComplete, "Execution completed with exit code: 3"},
		{"sys.exit(1) is no exception", "python", false, []api.StepResult{step(api.VerdictNonzeroExit, 1, "", "bye\n")}, "completed", false, TypeExecutionComplete, "exit code: 1"},
		{"exception", "python", false, []api.StepResult{step(api.VerdictNonzeroExit, 1, "", "out\n"+tb)}, "completed", false, TypeError, strings.TrimSpace(tb)},
		{"syntax error", "python", false, []api.StepResult{step(api.VerdictNonzeroExit, 1, "", syntax)}, "completed", false, TypeError, "SyntaxError"},
		{"a traceback from C is not Python's", "c", true, []api.StepResult{step(api.VerdictOK, 0, "", ""), step(api.VerdictNonzeroExit, 1, "", tb)}, "completed", false, TypeExecutionComplete, "exit code: 1"},
		{"signal", "python", false, []api.StepResult{step(api.VerdictSignaled, 0, "SIGSEGV", "")}, "completed", false, TypeExecutionComplete, "exit code: -11 (signaled, SIGSEGV)"},
		{"timeout", "python", false, []api.StepResult{step(api.VerdictWallTimeLimit, 0, "SIGKILL", "")}, "completed", false, TypeTimeout, "timed out"},
		{"cpu timeout", "python", false, []api.StepResult{step(api.VerdictCPUTimeLimit, 0, "SIGKILL", "")}, "completed", false, TypeTimeout, "cpu time limit"},
		{"stopped", "python", false, []api.StepResult{step(api.VerdictCancelled, 0, "SIGKILL", "")}, "cancelled", true, TypeExecutionComplete, "Execution stopped"},
		{"compile error", "c", true, []api.StepResult{step(api.VerdictNonzeroExit, 1, "", "main.c:1: error: nope"), {Verdict: api.VerdictSkipped}}, "completed", false, TypeError, "Compilation failed (exit code 1):\nmain.c:1: error: nope"},
	} {
		m := outcome("ws_1", tc.lang, tc.compiled, &api.Result{Status: tc.status, Steps: tc.steps}, tc.stopped)
		if m.Type != tc.typ || !strings.Contains(m.Message, tc.msg) || m.ExecutionID != "ws_1" || m.ExitCode == nil || m.WallTimeMS == nil {
			t.Errorf("%s: %+v, want %s with %q", tc.name, m, tc.typ, tc.msg)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, ""},
		{Config{AllowedOrigins: []string{"*.example.edu", "https://a.example"}, MaxConnections: 5}, ""},
		{Config{MaxCodeBytes: -1}, "max_code_bytes: -1 is negative"},
		{Config{TimeLimitMS: -5}, "time_limit_ms: -5 is negative"},
		{Config{AllowedOrigins: []string{"[x"}}, "allowed_origins[0]"},
		{Config{AllowedOrigins: []string{""}}, "allowed_origins[0]: empty"},
	} {
		err := tc.cfg.Validate()
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.cfg, err, tc.want)
		}
	}
}
