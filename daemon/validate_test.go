package daemon

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// checkBody decodes and validates a /v1/run body against the default
// profile, as the server does.
func checkBody(body string) (*checkedJob, *api.Error) {
	d := &Daemon{}
	d.live.Store(mustSnapshot(DefaultConfig()))
	job, aerr := decodeJob([]byte(body))
	if aerr != nil {
		return nil, aerr
	}
	return d.check(job)
}

// wantInvalid checks that body is refused with exactly msg.
func wantInvalid(t *testing.T, body, msg string) {
	t.Helper()
	_, aerr := checkBody(body)
	switch {
	case aerr == nil:
		t.Errorf("%.120s: accepted, want %q", body, msg)
	case aerr.Code != api.CodeInvalidArgument || aerr.Message != msg:
		t.Errorf("%.120s:\n got %s: %s\nwant %q", body, aerr.Code, aerr.Message, msg)
	}
}

func wantOK(t *testing.T, body string) *checkedJob {
	t.Helper()
	cj, aerr := checkBody(body)
	if aerr != nil {
		t.Errorf("%.120s: %v", body, aerr)
	}
	return cj
}

// step wraps a step's JSON fields (after argv) into a job of one step.
func step(fields string) string {
	return `{"steps":[{"argv":["true"]` + fields + `}]}`
}

func TestDecodeZeroLimitIsNotLeftOut(t *testing.T) {
	for _, f := range api.LimitFields {
		wantInvalid(t, step(`,"limits":{"`+f.JSON+`":0}`), "steps[0].limits."+f.JSON+": must be at least 1, got 0")
	}
	wantInvalid(t, `{"workspace_bytes":0,"steps":[{"argv":["true"]}]}`, "workspace_bytes: must be at least 1, got 0")
	// Left out, or null, the profile's default applies.
	cj := wantOK(t, step(`,"limits":{"wall_time_ms":null}`))
	if cj != nil && cj.steps[0].limits.WallTimeMS != engine.DefaultProfile().Defaults.WallTimeMS {
		t.Errorf("wall_time_ms null: %d, want the default", cj.steps[0].limits.WallTimeMS)
	}
}

// TestCheckCPUs: cpus is a decimal from 0.01 to the profile's maximum, the
// host's CPU count in the built-in profile; 0 on the wire is refused, as
// every limit's; left out, the profile's default (1).
func TestCheckCPUs(t *testing.T) {
	host := engine.HostCPUs()
	for _, tc := range []struct{ body, msg string }{
		{step(`,"limits":{"cpus":0}`), "steps[0].limits.cpus: must be above 0, got 0"},
		{step(`,"limits":{"cpus":-1}`), "steps[0].limits.cpus: must be above 0, got -1"},
		{step(`,"limits":{"cpus":-0.5}`), "steps[0].limits.cpus: must be above 0, got -0.5"},
		{step(`,"limits":{"cpus":0.001}`), "steps[0].limits.cpus: 0.001 is below the minimum 0.01"},
		{step(`,"limits":{"cpus":1e400}`), "steps[0].limits.cpus: 1e400 is out of range"},
		{step(`,"limits":{"cpus":"1"}`), "steps[0].limits.cpus: wrong type (string, want number)"},
		{step(fmt.Sprintf(`,"limits":{"cpus":%d}`, host+1)), fmt.Sprintf("steps[0].limits.cpus: %d is above the maximum %d", host+1, host)},
		{step(fmt.Sprintf(`,"limits":{"cpus":%g}`, float64(host)+0.5)), fmt.Sprintf("steps[0].limits.cpus: %g is above the maximum %d", float64(host)+0.5, host)},
		{`{"steps":[{"programs":[{"name":"a","argv":["true"],"limits":{"cpus":0}},{"name":"b","argv":["true"]}]}]}`, "steps[0].programs[0].limits.cpus: must be above 0, got 0"},
	} {
		wantInvalid(t, tc.body, tc.msg)
	}
	for body, want := range map[string]float64{
		step(``):                                         1,
		step(`,"limits":{"cpus":0.01}`):                  0.01,
		step(`,"limits":{"cpus":0.5}`):                   0.5,
		step(fmt.Sprintf(`,"limits":{"cpus":%d}`, host)): float64(host),
	} {
		if cj := wantOK(t, body); cj != nil && cj.steps[0].limits.CPUs != want {
			t.Errorf("%s: cpus %g, want %g", body, cj.steps[0].limits.CPUs, want)
		}
	}
}

func TestDecodeStrictKeys(t *testing.T) {
	for _, tc := range []struct{ body, msg string }{
		{step(`,"limits":{"cpu_time_ms":100,"CPU_TIME_MS":250000}`), "steps[0].limits.CPU_TIME_MS: unknown field (names are case-sensitive: cpu_time_ms)"},
		{step(`,"limits":{"Cpu_Time_Ms":250000}`), "steps[0].limits.Cpu_Time_Ms: unknown field (names are case-sensitive: cpu_time_ms)"},
		{`{"Steps":[{"argv":["true"]}]}`, "Steps: unknown field (names are case-sensitive: steps)"},
		{`{"steps":[{"ARGV":["true"]}]}`, "steps[0].ARGV: unknown field (names are case-sensitive: argv)"},
		{`{"files":{"x":{"Content":"a"}},"steps":[{"argv":["true"]}]}`, `files["x"].Content: unknown field (names are case-sensitive: content)`},
		{step(`,"limits":{"cpu_time_ms":100,"cpu_time_ms":250000}`), "steps[0].limits.cpu_time_ms: duplicate key"},
		{`{"steps":[{"argv":["true"]}],"steps":[{"argv":["false"]}]}`, "steps: duplicate key"},
		{`{"id":"a","id":"b","steps":[{"argv":["true"]}]}`, "id: duplicate key"},
		{step(`,"env":{"A":"1","A":"2"}`), `steps[0].env["A"]: duplicate key`},
		{`{"files":{"x":"1","x":"2"},"steps":[{"argv":["true"]}]}`, `files["x"]: duplicate key`},
		{`{"files":{"x":{"content":"a","content":"b"}},"steps":[{"argv":["true"]}]}`, `files["x"].content: duplicate key`},
		{`{"key":{"a":[{"b":1,"b":2}]},"steps":[{"argv":["true"]}]}`, `key["a"][0]["b"]: duplicate key`},
		{`{"steps":[{"argv":["true"],"limits":{"pids":1,"pids":1}}]}`, "steps[0].limits.pids: duplicate key"},
	} {
		wantInvalid(t, tc.body, tc.msg)
	}
	// In files and env the keys are the caller's: case variants are
	// different names.
	cj := wantOK(t, `{"files":{"x":"1","X":"2"},"steps":[{"argv":["true"],"env":{"a":"1","A":"2"}}]}`)
	if cj != nil && (len(cj.files) != 2 || len(cj.steps[0].step.Env) != 2) {
		t.Errorf("case variants: files %v env %v", cj.files, cj.steps[0].step.Env)
	}
}

func TestDecodeErrorsNameTheFullPath(t *testing.T) {
	for _, tc := range []struct{ body, msg string }{
		{`{"steps":[{"argv":"true"}]}`, "steps[0].argv: wrong type (string, want array)"},
		{`{"steps":[{"argv":["true"]},{"argv":["true",3]}]}`, "steps[1].argv[1]: wrong type (number, want string)"},
		{step(`,"timeout":5`), "steps[0].timeout: unknown field"},
		{`{"files":{"a":5},"steps":[{"argv":["true"]}]}`, `files["a"]: wrong type (number, want string or object)`},
		{`{"files":{"a":{"content":"x","mod":"0755"}},"steps":[{"argv":["true"]}]}`, `files["a"].mod: unknown field`},
		{`{"files":{"a":{"mode":755}},"steps":[{"argv":["true"]}]}`, `files["a"].mode: wrong type (number, want string)`},
		{`{"files":{"a":null},"steps":[{"argv":["true"]}]}`, `files["a"]: wrong type (null, want string or object)`},
		{step(`,"env":{"A":1}`), `steps[0].env["A"]: wrong type (number, want string)`},
		{step(`,"limits":{"memory_bytes":"lots"}`), "steps[0].limits.memory_bytes: wrong type (string, want integer)"},
		{step(`,"limits":{"cpu_time_ms":1.5}`), "steps[0].limits.cpu_time_ms: 1.5 is not a whole number"},
		{step(`,"limits":{"cpu_time_ms":1e3}`), "steps[0].limits.cpu_time_ms: 1e3 is not a whole number"},
		{step(`,"limits":{"cpu_time_ms":99999999999999999999}`), "steps[0].limits.cpu_time_ms: 99999999999999999999 is out of range"},
		{step(`,"limits":{"pids":-1}`), "steps[0].limits.pids: must be at least 1, got -1"},
		{step(`,"limits":[]`), "steps[0].limits: wrong type (array, want object)"},
		{step(`,"expected_stdout":true`), "steps[0].expected_stdout: wrong type (boolean, want string)"},
		{`{"steps":{}}`, "steps: wrong type (object, want array)"},
		{`{"steps":[null]}`, "steps[0]: wrong type (null, want object)"},
		{`{"steps":[{"argv":["true",null]}]}`, "steps[0].argv[1]: wrong type (null, want string)"},
		{`{"tracked_files":"a","steps":[{"argv":["true"]}]}`, "tracked_files: wrong type (string, want array)"},
		{`{"pause_between_steps":"yes","steps":[{"argv":["true"]}]}`, "pause_between_steps: wrong type (string, want boolean)"},
		{`{"pause_between_steps":1,"steps":[{"argv":["true"]}]}`, "pause_between_steps: wrong type (number, want boolean)"},
		{`{"key":` + strings.Repeat("[", 2000) + strings.Repeat("]", 2000) + `,"steps":[{"argv":["true"]}]}`, "key: nested deeper than 1000"},
		{strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000), "a: unknown field"},
		{`[]`, "body: wrong type (array, want object)"},
		{`null`, "body: wrong type (null, want object)"},
		{``, "body: empty"},
		{`{"steps":[`, "body: truncated JSON"},
		{`{"steps":[{"argv":["true"]}]} {}`, "body: unexpected data after the job"},
	} {
		wantInvalid(t, tc.body, tc.msg)
	}
	// A syntax error says where.
	_, aerr := checkBody(`{"steps":[{"argv":[tru]}]}`)
	if aerr == nil || !strings.HasPrefix(aerr.Message, "steps[0].argv[0]: malformed JSON at byte ") {
		t.Errorf("syntax error: %v", aerr)
	}
}

func TestCheckBoundsArgvAndEnv(t *testing.T) {
	big := strings.Repeat("x", 128<<10) // with its NUL, one byte over the kernel's limit of a string
	wantInvalid(t, `{"steps":[{"argv":["echo","`+big+`"]}]}`,
		"steps[0].argv[1]: 131072 bytes, at most 131071 (the kernel's limit on one argument)")
	wantInvalid(t, step(`,"env":{"X":"`+big+`"}`),
		`steps[0].env["X"]: 131074 bytes as X=..., at most 131071 (the kernel's limit on one variable)`)
	many := make([]string, 20)
	for i := range many {
		many[i] = `"` + strings.Repeat("y", 120<<10) + `"`
	}
	_, aerr := checkBody(`{"steps":[{"argv":["echo",` + strings.Join(many, ",") + `]}]}`)
	if aerr == nil || !strings.HasPrefix(aerr.Message, "steps[0].argv, steps[0].env: ") || !strings.Contains(aerr.Message, "at most 2097152") {
		t.Errorf("argv of 2.4 MiB: %v", aerr)
	}
	dirs := make([]string, 100)
	for i := range dirs {
		dirs[i] = fmt.Sprintf("/d%d", i)
	}
	wantInvalid(t, step(`,"env":{"PATH":"`+strings.Join(dirs, ":")+`"}`),
		`steps[0].env["PATH"]: 100 directories, at most 64`)
	wantInvalid(t, `{"steps":[{"argv":["`+strings.Repeat("p", 5000)+`"]}]}`,
		"steps[0].argv[0]: a program path of 5000 bytes, at most 4095")
	wantOK(t, `{"steps":[{"argv":["echo","`+big[1:]+`"],"env":{"PATH":"`+strings.Join(dirs[:64], ":")+`"}}]}`)
}

func TestCheckBoundsWorkspace(t *testing.T) {
	max := int64(1 << 30) // engine.DefaultProfile().MaxWorkspaceBytes
	wantInvalid(t, fmt.Sprintf(`{"workspace_bytes":%d,"steps":[{"argv":["true"]}]}`, max+1),
		fmt.Sprintf("workspace_bytes: %d is above the maximum %d", max+1, max))
	wantOK(t, fmt.Sprintf(`{"workspace_bytes":%d,"steps":[{"argv":["true"]}]}`, max))
}

func TestCheckFileConflicts(t *testing.T) {
	wantInvalid(t, `{"files":{"a":"x","a/b":"y"},"steps":[{"argv":["true"]}]}`,
		`files["a/b"]: needs "a" to be a directory, but files["a"] is a file`)
	wantInvalid(t, `{"files":{"a/b/c/d":"x","a/b":"y","z":"z"},"steps":[{"argv":["true"]}]}`,
		`files["a/b/c/d"]: needs "a/b" to be a directory, but files["a/b"] is a file`)
	wantOK(t, `{"files":{"a/b":"x","a/c":"y","ab":"z","a.b/c":"w"},"steps":[{"argv":["true"]}]}`)
}

func TestJobVerdictCountsWrongAnswers(t *testing.T) {
	no, yes := false, true
	for _, tc := range []struct {
		steps []api.StepResult
		want  api.Verdict
	}{
		{[]api.StepResult{{Verdict: api.VerdictOK, StdoutMatches: &no}, {Verdict: api.VerdictSkipped}}, "wrong_answer"},
		{[]api.StepResult{{Verdict: api.VerdictOK, StdoutMatches: &yes}, {Verdict: api.VerdictOK, StdoutMatches: &no}}, "wrong_answer"},
		{[]api.StepResult{{Verdict: api.VerdictOK}, {Verdict: api.VerdictNonzeroExit}}, api.VerdictNonzeroExit},
		{[]api.StepResult{{Verdict: api.VerdictOK, StdoutMatches: &yes}, {Verdict: api.VerdictOK}}, api.VerdictOK},
	} {
		if got := jobVerdict(&api.Result{Steps: tc.steps}); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.steps, got, tc.want)
		}
	}
}

// TestDecodeTakesWhatTheGoClientSends: the strict decoder knows every
// field of the wire types, so a job with all of them set round-trips.
func TestDecodeTakesWhatTheGoClientSends(t *testing.T) {
	want := "hi\n"
	job := api.Job{
		ID: "j-1", Key: api.KeyOf(map[string]any{"case": 7, "tags": []string{"a"}}), Profile: "default",
		Files: map[string]api.File{"a/b.txt": {Content: "x"}, "c": {Base64: "AAE=", Mode: "0755"}},
		Steps: []api.Step{{
			Argv: []string{"sh", "-c", "cat a/b.txt"}, Env: map[string]string{"A": "1"}, StdinBase64: "AAE=", ExpectedStdout: &want,
			Limits: api.Limits{CPUTimeMS: 1, WallTimeMS: 2, MemoryBytes: 6 << 20, PIDs: 4, OutputBytes: 5, FileSizeBytes: 6, OpenFiles: 7, StackBytes: 8},
		}},
		StopOn: api.StopOnNever, TrackedFiles: []string{"c"}, WorkspaceBytes: 1 << 20, OutputEncoding: api.EncodingBase64,
	}
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	got, aerr := decodeJob(b)
	if aerr != nil {
		t.Fatalf("%s: %v", b, aerr)
	}
	if !reflect.DeepEqual(*got, job) {
		t.Errorf("round trip:\n got %+v\nwant %+v", *got, job)
	}
}
