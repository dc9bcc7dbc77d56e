package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestRunStdoutFlags(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		job := decodeJob(t, r.Body)
		s := job.Steps[0]
		if s.StdoutTo != "out.txt" || s.ExpectedStdoutFile != "ans.txt" || s.Compare != "float" && s.Compare != "bad" || s.FloatAbs != 1e-9 || s.FloatRel != 0.5 {
			t.Errorf("step %+v", s)
		}
		if s.Compare == "bad" {
			writeJSON(w, 400, api.ErrorBody{Error: &api.Error{Code: api.CodeInvalidArgument, Message: `steps[0].compare: "bad" is not lines, exact, tokens or float`}})
			return
		}
		res := okResult("r_1", "1 2\n", "")
		no := false
		res.Steps[0].StdoutMatches = &no
		writeJSON(w, 200, res)
	})
	r := f.sandboxctl(t, "", "run", "--stdout-to", "out.txt", "--expected-stdout-file", "ans.txt", "--compare", "float",
		"--float-abs", "1e-9", "--float-rel=0.5", "--", "./sol")
	if r.code != 1 || !strings.Contains(r.stdout, "stdout matches:  no") {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = f.sandboxctl(t, "", "run", "--stdout-to", "out.txt", "--expected-stdout-file", "ans.txt", "--compare", "bad",
		"--float-abs", "1e-9", "--float-rel=0.5", "--", "./sol")
	if r.code != 3 || !strings.HasSuffix(r.stderr, "sandboxctl: that is --compare\n") {
		t.Errorf("bad compare: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, v := range []string{"0", "-1", "x", "nan", "inf"} {
		r = f.sandboxctl(t, "", "run", "--float-abs", v, "--", "./sol")
		if r.code != 2 || !strings.Contains(r.stderr, "not a number above 0") {
			t.Errorf("--float-abs %s: exit %d, stderr %q", v, r.code, r.stderr)
		}
	}
	r = f.sandboxctl(t, `{"steps":[{"argv":["x"]}]}`, "run", "--compare", "tokens", "--job", "-")
	if r.code != 2 || !strings.Contains(r.stderr, "--compare cannot be added") {
		t.Errorf("--job with --compare: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestStdoutFlagOf(t *testing.T) {
	for msg, want := range map[string]string{
		`steps[0].compare: "x" is not lines, exact, tokens or float`:                  "compare",
		`steps[0].float_rel: only with compare "float" (compare is "lines")`:          "float-rel",
		`steps[0].expected_stdout, steps[0].expected_stdout_file: give one, not both`: "expected-stdout",
		`steps[0].stdout_to: absolute path; paths are relative to the workspace`:      "stdout-to",
		`steps[0].limits.cpu_time_ms: must be at least 1, got 0`:                      "",
		`files["a"]: empty path`:                                     "",
		`steps[1].compare: "x" is not lines, exact, tokens or float`: "",
	} {
		if got := stdoutFlagOf(msg); got != want {
			t.Errorf("%s: %q, want %q", msg, got, want)
		}
	}
}
