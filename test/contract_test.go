package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

// rawClient posts bodies as they are, so that the daemon's decoder sees
// what no Go client would send.
func rawClient(d *testDaemon) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
}

// TestDaemonContractEdges sends the jobs that a lax decoder or validator
// let through to the sandbox: each must be a 400 naming the field, never a
// run.
func TestDaemonContractEdges(t *testing.T) {
	d := startDaemon(t, "")
	hc := rawClient(d)
	dirs := make([]string, 100)
	for i := range dirs {
		dirs[i] = fmt.Sprintf("/d%d", i)
	}
	args := make([]string, 200)
	for i := range args {
		args[i] = `"` + strings.Repeat("a", 100<<10) + `"`
	}
	for _, tc := range []struct{ name, body, want string }{
		{"argv of 20 MB", `{"steps":[{"argv":["echo",` + strings.Join(args, ",") + `]}]}`, "steps[0].argv, steps[0].env: "},
		{"one argument of 20 MB", `{"steps":[{"argv":["echo","` + strings.Repeat("a", 20<<20) + `"]}]}`, "steps[0].argv[1]: "},
		{"PATH of 100 directories", `{"steps":[{"argv":["true"],"env":{"PATH":"` + strings.Join(dirs, ":") + `"}}]}`, `steps[0].env["PATH"]: 100 directories`},
		{"a file where a directory is needed", `{"files":{"a":"x","a/b":"y"},"steps":[{"argv":["true"]}]}`, `files["a/b"]: needs "a" to be a directory, but files["a"] is a file`},
		{"a case variant of a limit", `{"steps":[{"argv":["true"],"limits":{"cpu_time_ms":100,"CPU_TIME_MS":250000}}]}`, "steps[0].limits.CPU_TIME_MS: unknown field"},
		{"a duplicate limit", `{"steps":[{"argv":["true"],"limits":{"cpu_time_ms":100,"cpu_time_ms":250000}}]}`, "steps[0].limits.cpu_time_ms: duplicate key"},
		{"a zero limit", `{"steps":[{"argv":["true"],"limits":{"wall_time_ms":0}}]}`, "steps[0].limits.wall_time_ms: must be at least 1"},
		{"a workspace above the maximum", `{"workspace_bytes":8589934592,"steps":[{"argv":["true"]}]}`, "workspace_bytes: 8589934592 is above the maximum"},
		{"a wrong type deep down", `{"steps":[{"argv":["true"]},{"argv":"true"}]}`, "steps[1].argv: wrong type (string, want array)"},
	} {
		resp, err := hc.Post("http://sandboxd/v1/run", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			api.Result
			Error *api.Error `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 400 || body.Error == nil || !strings.HasPrefix(body.Error.Message, tc.want) {
			got := fmt.Sprintf("error %+v", body.Error)
			if body.Error == nil {
				got = fmt.Sprintf("status %s %q", body.Status, body.Message)
				for _, s := range body.Steps {
					got += fmt.Sprintf(", step %s %q", s.Verdict, s.Message)
				}
			}
			t.Errorf("%s: HTTP %d, %s; want 400 %q", tc.name, resp.StatusCode, got, tc.want)
		}
	}
}

// TestDaemonArgvBeyondTheStack: argv and env within the daemon's bound but
// beyond what a small stack_bytes lets execve take are the step's own
// setting: exec_failed, not a sandbox error.
func TestDaemonArgvBeyondTheStack(t *testing.T) {
	d := startDaemon(t, "")
	argv := []string{"echo"}
	for i := 0; i < 15; i++ {
		argv = append(argv, strings.Repeat("a", 100<<10))
	}
	res, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: argv, Limits: api.Limits{StackBytes: 1 << 20}}}})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Steps[0]; res.Status != api.StatusCompleted || s.Verdict != api.VerdictExecFailed || !strings.Contains(s.Message, "argument list too long") {
		t.Errorf("1.5 MiB of argv under a 1 MiB stack: status %s %q, step %s %q", res.Status, res.Message, s.Verdict, s.Message)
	}
	argv = argv[:8] // 700 KiB: within a quarter of 4 MiB
	res, err = d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: append([]string{"sh", "-c", "true"}, argv...), Limits: api.Limits{StackBytes: 4 << 20}}}})
	if err != nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Errorf("700 KiB of argv under a 4 MiB stack: %v %+v", err, res)
	}
}

// TestDaemonBatchContract: a batch's errors say which line; its finished
// jobs can be fetched by id; a wrong answer is counted as one.
func TestDaemonBatchContract(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\n")
	body := strings.Join([]string{
		`{"id":"batch-ok","steps":[{"argv":["echo","hi"],"expected_stdout":"hi"}]}`,
		`{"id":"batch-wrong","steps":[{"argv":["echo","hi"],"expected_stdout":"ho"},{"argv":["true"]}]}`,
		``,
		`{"steps":[{"argv":"true"}]}`,
		`{"steps":[{"argv":["true"],"limits":{"pids":1,"pids":2}}]}`,
		`{"steps":[{"argv":["true"]}],"files":{"a":"x","a/b":"y"}}`,
	}, "\n") + "\n"
	var errs []string
	sum, err := d.c.Batch(ctxT(t), strings.NewReader(body), 2, func(l *api.BatchLine) error {
		if l.Error != nil {
			errs = append(errs, l.Error.Message)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"line 4: steps[0].argv: wrong type (string, want array)",
		"line 5: steps[0].limits.pids: duplicate key",
		`line 6: files["a/b"]: needs "a" to be a directory, but files["a"] is a file`,
	} {
		found := false
		for _, e := range errs {
			found = found || e == want
		}
		if !found {
			t.Errorf("no batch error %q in %q", want, errs)
		}
	}
	if sum.Total != 5 || sum.Invalid != 3 || sum.Verdicts["ok"] != 1 || sum.Verdicts["wrong_answer"] != 1 {
		t.Errorf("summary %+v, want 5 jobs, 3 invalid, verdicts ok 1 and wrong_answer 1", sum)
	}
	for _, id := range []string{"batch-ok", "batch-wrong"} {
		info, err := d.c.Get(ctxT(t), id)
		if err != nil {
			t.Errorf("GET /v1/runs/%s after the batch: %v", id, err)
			continue
		}
		if info.State != api.StateFinished || info.Result == nil || info.Result.ID != id || info.Result.Steps[0].Stdout != "hi\n" {
			t.Errorf("GET /v1/runs/%s: %+v", id, info)
		}
	}
}
