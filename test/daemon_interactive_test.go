package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

// interactor is the guessing game's judge: it reads guesses of the secret
// in secret.txt (in the job's workspace) and answers each; at most argv[1]
// guesses. It exits 0 when the secret is found, 1 on EOF or when out of
// guesses (a wrong answer), 2 when its answer cannot be written (EPIPE).
const interactor = `import os, sys
secret = int(open("secret.txt").read())
limit = int(sys.argv[1])
for n in range(1, limit + 1):
    line = sys.stdin.readline()
    if not line:
        print("EOF after %d guesses" % (n - 1), file=sys.stderr)
        sys.exit(1)
    g = int(line)
    answer = "correct" if g == secret else "higher" if g < secret else "lower"
    try:
        sys.stdout.write(answer + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        print("EPIPE", file=sys.stderr, flush=True)
        os._exit(2)
    if answer == "correct":
        print("found in %d" % n, file=sys.stderr)
        sys.exit(0)
print("out of guesses", file=sys.stderr)
sys.exit(1)
`

// guessingGame is a job of one interactive step: the solution (guess.c in
// mode) first, then the interactor, joined both ways: directly, or through
// the daemon with the traffic captured.
func guessingGame(t *testing.T, mode string, secret int, solution, judge api.Limits, captured bool) *api.Job {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(programsDir, "guess"))
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{"./guess", mode}
	if mode == "missing" {
		argv = []string{"./missing"}
	}
	capture := int64(0)
	if captured {
		capture = 4096
	}
	return &api.Job{
		Files: map[string]api.File{
			"guess":         {Base64: base64Std(string(bin)), Mode: "0755"},
			"interactor.py": {Content: interactor},
			"secret.txt":    {Content: fmt.Sprint(secret)},
		},
		Steps: []api.Step{{
			Programs: []api.Program{
				{Name: "solution", Argv: argv, Limits: solution},
				{Name: "interactor", Argv: []string{"/usr/bin/python3", "interactor.py", "10"}, Limits: judge},
			},
			Pipes: []api.Pipe{
				{From: "solution:1", To: "interactor:0", Capture: capture},
				{From: "interactor:1", To: "solution:0", Capture: capture},
			},
		}},
	}
}

// dialogue is what a binary search says and hears, finding secret.
func dialogue(secret int) (guesses, answers string) {
	lo, hi := 1, 1000
	for lo <= hi {
		mid := (lo + hi) / 2
		guesses += fmt.Sprintf("%d\n", mid)
		switch {
		case mid == secret:
			return guesses, answers + "correct\n"
		case mid < secret:
			answers += "higher\n"
			lo = mid + 1
		default:
			answers += "lower\n"
			hi = mid - 1
		}
	}
	return guesses, answers
}

func TestDaemonInteractiveGuessingGame(t *testing.T) {
	d := startDaemon(t, "")
	wall := api.Limits{WallTimeMS: 10000}
	for _, tc := range []struct {
		mode       string
		solution   api.Limits
		judge      api.Limits
		step       api.Verdict // the step's verdict
		sol, inter api.Verdict // each program's
		signal     string      // the solution's
		interExit  int
		interSays  string // in the interactor's stderr
		maxWallMS  float64
	}{
		{mode: "search", solution: wall, judge: wall, step: api.VerdictOK, sol: api.VerdictOK, inter: api.VerdictOK, interSays: "found in"},
		{mode: "wrong", solution: wall, judge: wall, step: api.VerdictNonzeroExit, sol: api.VerdictOK, inter: api.VerdictNonzeroExit, interExit: 1, interSays: "out of guesses"},
		// Never answers: its own wall limit ends it, and the interactor
		// sees EOF then, long before its own.
		{mode: "silent", solution: api.Limits{WallTimeMS: 1000}, judge: wall, step: api.VerdictWallTimeLimit, sol: api.VerdictWallTimeLimit, signal: "SIGKILL", inter: api.VerdictNonzeroExit, interExit: 1, interSays: "EOF after 0 guesses", maxWallMS: 4000},
		{mode: "crash", solution: wall, judge: wall, step: api.VerdictSignaled, sol: api.VerdictSignaled, signal: "SIGSEGV", inter: api.VerdictNonzeroExit, interExit: 1, interSays: "EOF after 1 guesses"},
		// Never started: the interactor sees EOF at once.
		{mode: "missing", solution: wall, judge: wall, step: api.VerdictExecFailed, sol: api.VerdictExecFailed, inter: api.VerdictNonzeroExit, interExit: 1, interSays: "EOF after 0 guesses", maxWallMS: 4000},
		{mode: "closein", solution: wall, judge: wall, step: api.VerdictNonzeroExit, sol: api.VerdictOK, inter: api.VerdictNonzeroExit, interExit: 2, interSays: "EPIPE"},
	} {
		for _, captured := range []bool{false, true} {
			name := tc.mode + "/direct"
			if captured {
				name = tc.mode + "/captured"
			}
			t.Run(name, func(t *testing.T) {
				const secret = 777
				start := time.Now()
				res, err := d.c.Run(ctxT(t), guessingGame(t, tc.mode, secret, tc.solution, tc.judge, captured))
				if err != nil {
					t.Fatal(err)
				}
				took := time.Since(start)
				if res.Status != api.StatusCompleted || len(res.Steps) != 1 || len(res.Steps[0].Programs) != 2 {
					t.Fatalf("%+v", res)
				}
				st := res.Steps[0]
				sol, inter := st.Programs[0], st.Programs[1]
				show := func() string {
					b, _ := json.MarshalIndent(st, "", " ")
					return string(b)
				}
				if sol.Name != "solution" || inter.Name != "interactor" {
					t.Errorf("names %q %q", sol.Name, inter.Name)
				}
				if st.Verdict != tc.step || sol.Verdict != tc.sol || inter.Verdict != tc.inter || sol.Signal != tc.signal ||
					inter.ExitCode != tc.interExit || !strings.Contains(inter.Stderr, tc.interSays) {
					t.Fatalf("got step %s, solution %s %s, interactor %s exit %d; want %s, %s %s, %s exit %d saying %q\n%s",
						st.Verdict, sol.Verdict, sol.Signal, inter.Verdict, inter.ExitCode, tc.step, tc.sol, tc.signal, tc.inter, tc.interExit, tc.interSays, show())
				}
				if sol.Stdout != "" || inter.Stdout != "" || st.Stdout != "" {
					t.Errorf("piped stdout captured too:\n%s", show())
				}
				if tc.maxWallMS > 0 && (inter.WallTimeMS > tc.maxWallMS || took > time.Duration(tc.maxWallMS)*time.Millisecond) {
					t.Errorf("the interactor ran %.0f ms, the job %v: past the solution's end\n%s", inter.WallTimeMS, took, show())
				}
				if !captured && len(st.Pipes) != 0 {
					t.Errorf("captures of direct pipes:\n%s", show())
				}
				if tc.mode == "search" && captured {
					guesses, answers := dialogue(secret)
					if len(st.Pipes) != 2 || st.Pipes[0].From != "solution:1" || st.Pipes[0].Data != guesses || st.Pipes[1].Data != answers || st.Pipes[0].Truncated {
						t.Errorf("captures: want %q and %q\n%s", guesses, answers, show())
					}
					if sol.CPUTimeMS <= 0 || inter.CPUTimeMS <= 0 || inter.MemoryPeakBytes <= 0 {
						t.Errorf("measurements missing\n%s", show())
					}
				}
				d.assertNoJobLeft(t)
			})
		}
	}
}

// A private workspace is the program's own: empty, unseen by the job's
// steps and programs, gone at its end. Programs on the job's workspace
// share it, each able to write.
func TestDaemonInteractiveWorkspaces(t *testing.T) {
	d := startDaemon(t, "")
	res, err := d.c.Run(ctxT(t), &api.Job{
		Files: map[string]api.File{"secret.txt": {Content: "42"}},
		Steps: []api.Step{{
			Programs: []api.Program{
				{Name: "private", Workspace: api.WorkspacePrivate, Argv: []string{"sh", "-c", "ls -A /workspace; echo mine > leak; cat /workspace/secret.txt"}},
				{Name: "a", Argv: []string{"sh", "-c", "cat secret.txt; echo a > a.txt"}},
				{Name: "b", Workspace: api.WorkspaceJob, Argv: []string{"sh", "-c", "echo b > b.txt; sleep 0.2; cat a.txt"}},
			},
		}, {
			Argv: []string{"sh", "-c", "cat a.txt b.txt; ls"},
		}},
		StopOn: api.StopOnNever,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Steps[0]
	if len(st.Programs) != 3 {
		t.Fatalf("%+v", res)
	}
	p, a, b := st.Programs[0], st.Programs[1], st.Programs[2]
	if p.Verdict != api.VerdictNonzeroExit || p.Stdout != "" || !strings.Contains(p.Stderr, "secret.txt") {
		t.Errorf("private: %+v", p)
	}
	if a.Verdict != api.VerdictOK || a.Stdout != "42" || b.Verdict != api.VerdictOK || b.Stdout != "a\n" {
		t.Errorf("a: %+v\nb: %+v", a, b)
	}
	if st.Verdict != api.VerdictNonzeroExit || st.Message != p.Message || st.ExitCode != p.ExitCode {
		t.Errorf("the step is the private program's: %+v", st)
	}
	if next := res.Steps[1]; next.Verdict != api.VerdictOK || next.Stdout != "a\nb\na.txt\nb.txt\nsecret.txt\n" {
		t.Errorf("next step: %+v", next)
	}
	d.assertNoJobLeft(t)
}

// A private workspace may have files of its own, written before the
// program starts, and tracked files read back after it: an interactor
// with the test's answer and a solution with only its own binary, neither
// able to read the other's (as a judge runs an interactive problem).
func TestDaemonInteractivePrivateFiles(t *testing.T) {
	d := startDaemon(t, "")
	res, err := d.c.Run(ctxT(t), &api.Job{
		Files: map[string]api.File{"shared.txt": {Content: "job"}},
		Steps: []api.Step{{
			Programs: []api.Program{
				{Name: "solution", Workspace: api.WorkspacePrivate,
					Files: map[string]api.File{"sol.sh": {Content: "#!/bin/sh\nread q; echo \"$q$q\"; ls -A >&2; cat answer.txt shared.txt 2>/dev/null; echo sol > sol.out", Mode: "0755"}},
					Argv:  []string{"./sol.sh"}, TrackedFiles: []string{"sol.out", "answer.txt"}},
				{Name: "interactor", Workspace: api.WorkspacePrivate,
					Files:        map[string]api.File{"answer.txt": {Content: "xx"}, "dir/q.txt": {Content: "x"}},
					Argv:         []string{"sh", "-c", "cat dir/q.txt >&3; exec 3>&-; read a; ls -A sol.sh 2>&1; [ \"$a\" = \"$(cat answer.txt)\" ] && echo verdict=ok > v.txt"},
					TrackedFiles: []string{"v.txt", "sol.out"}},
			},
			Pipes: []api.Pipe{{From: "interactor:3", To: "solution:0"}, {From: "solution:1", To: "interactor:0"}},
		}, {
			Argv: []string{"sh", "-c", "ls -A"},
		}},
		StopOn: api.StopOnNever,
	})
	if err != nil {
		t.Fatal(err)
	}
	st := res.Steps[0]
	if len(st.Programs) != 2 {
		t.Fatalf("%+v", res)
	}
	sol, in := st.Programs[0], st.Programs[1]
	if sol.Verdict != api.VerdictOK || sol.Stderr != "sol.sh\n" {
		t.Errorf("solution: %+v (its workspace must hold its own file only)", sol)
	}
	if sol.Files["sol.out"] == nil || sol.Files["sol.out"].Content != "sol\n" || sol.Files["answer.txt"] != nil || len(sol.Files) != 2 {
		t.Errorf("solution's files: %+v", sol.Files)
	}
	if in.Verdict != api.VerdictOK || !strings.Contains(in.Stdout, "No such file") {
		t.Errorf("interactor: %+v (it must not see sol.sh)", in)
	}
	if in.Files["v.txt"] == nil || in.Files["v.txt"].Content != "verdict=ok\n" || in.Files["sol.out"] != nil {
		t.Errorf("interactor's files: %+v", in.Files)
	}
	if next := res.Steps[1]; next.Verdict != api.VerdictOK || next.Stdout != "shared.txt\n" {
		t.Errorf("the job's workspace after the step: %+v", next)
	}
	d.assertNoJobLeft(t)
}

// stuckPair is a job of one step whose two programs wait on each other
// (and on a child each) for a minute.
func stuckPair(id string) *api.Job {
	return &api.Job{ID: id, Steps: []api.Step{{
		Programs: []api.Program{
			{Name: "x", Argv: []string{"sh", "-c", "sleep 60 & cat"}},
			{Name: "y", Workspace: api.WorkspacePrivate, Argv: []string{"sh", "-c", "sleep 60 & cat"}},
		},
		Pipes: []api.Pipe{{From: "x:1", To: "y:0"}, {From: "y:1", To: "x:0", Capture: 100}},
	}}}
}

// A cancel, a client that leaves and the daemon's shutdown each kill every
// program of an interactive step at once, and leave nothing.
func TestDaemonInteractiveCancel(t *testing.T) {
	d := startDaemon(t, "shutdown_grace = \"300ms\"\n")
	ctx := ctxT(t)
	run := func(ctx context.Context, id string) chan *api.Result {
		done := make(chan *api.Result, 1)
		go func() {
			res, _ := d.c.Run(ctx, stuckPair(id))
			done <- res
		}()
		waitRunning(t, d, id)
		time.Sleep(100 * time.Millisecond) // both started
		return done
	}
	cancelled := func(what string, res *api.Result) {
		t.Helper()
		if res == nil || res.Status != api.StatusCancelled || res.Steps[0].Verdict != api.VerdictCancelled ||
			res.Steps[0].Programs[0].Verdict != api.VerdictCancelled || res.Steps[0].Programs[1].Verdict != api.VerdictCancelled {
			t.Errorf("%s: %+v", what, res)
		}
	}

	done := run(ctx, "game")
	start := time.Now()
	if err := d.c.Cancel(ctx, "game"); err != nil {
		t.Fatal(err)
	}
	cancelled("cancel", <-done)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the cancel took %v", took)
	}
	d.assertNoJobLeft(t)

	cctx, leave := context.WithCancel(ctx)
	run(cctx, "left")
	leave()
	if procs := hostcheck.Settle(2*time.Second, busyProcesses); len(procs) > 0 {
		t.Errorf("processes still there after the client left: %v", procs)
	}
	d.assertNoJobLeft(t)

	done = run(ctx, "shutdown")
	d.stop()
	cancelled("shutdown", <-done)
	// assertClean (cleanup) checks nothing is left after the daemon.
}

// Pipes may join fds 3 to 9: a program talks over its fds 3 and 4 while
// its stdout stays captured, with its peer on stdin and stdout, and the
// other way round; directly or relayed. Its peer's end is its EOF.
func TestDaemonInteractiveExtraFds(t *testing.T) {
	d := startDaemon(t, "")
	const (
		// Says hello on fd 4, hears the answer on fd 3.
		onFds   = `echo hello >&4; read a <&3; echo "heard $a"`
		onStdio = `read q; echo world; echo "heard $q" >&2`
	)
	for _, tc := range []struct {
		name               string
		solution, inter    string
		pipes              []api.Pipe
		solOut, solErr     string
		interOut, interErr string
	}{
		{name: "solution-on-3-4", solution: onFds, inter: onStdio,
			pipes:  []api.Pipe{{From: "solution:4", To: "interactor:0"}, {From: "interactor:1", To: "solution:3"}},
			solOut: "heard world\n", interErr: "heard hello\n"},
		{name: "interactor-on-3-4", solution: onStdio, inter: onFds,
			pipes:  []api.Pipe{{From: "interactor:4", To: "solution:0"}, {From: "solution:1", To: "interactor:3"}},
			solErr: "heard hello\n", interOut: "heard world\n"},
		// The solution writes nothing on its fd 5 and ends: the
		// interactor's fd 3 sees EOF.
		{name: "eof-on-3", solution: `echo "fd 5 untouched"`, inter: `if read q <&3; then echo "read $q"; else echo EOF; fi`,
			pipes:  []api.Pipe{{From: "solution:5", To: "interactor:3"}},
			solOut: "fd 5 untouched\n", interOut: "EOF\n"},
	} {
		for _, captured := range []int64{0, 100} {
			name := tc.name + "/direct"
			if captured > 0 {
				name = tc.name + "/captured"
			}
			t.Run(name, func(t *testing.T) {
				pipes := slices.Clone(tc.pipes)
				for k := range pipes {
					pipes[k].Capture = captured
				}
				res, err := d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{
					Programs: []api.Program{
						{Name: "solution", Argv: []string{"sh", "-c", tc.solution}, Limits: api.Limits{WallTimeMS: 10000}},
						{Name: "interactor", Workspace: api.WorkspacePrivate, Argv: []string{"sh", "-c", tc.inter}, Limits: api.Limits{WallTimeMS: 10000}},
					},
					Pipes: pipes,
				}}})
				if err != nil {
					t.Fatal(err)
				}
				if res.Status != api.StatusCompleted || len(res.Steps) != 1 || len(res.Steps[0].Programs) != 2 {
					t.Fatalf("%+v", res)
				}
				st := res.Steps[0]
				b, _ := json.MarshalIndent(st, "", " ")
				sol, inter := st.Programs[0], st.Programs[1]
				if st.Verdict != api.VerdictOK || sol.Stdout != tc.solOut || sol.Stderr != tc.solErr || inter.Stdout != tc.interOut || inter.Stderr != tc.interErr {
					t.Fatalf("want solution stdout %q stderr %q, interactor stdout %q stderr %q:\n%s", tc.solOut, tc.solErr, tc.interOut, tc.interErr, b)
				}
				if captured > 0 && tc.name != "eof-on-3" && (len(st.Pipes) != 2 || st.Pipes[0].Data != "hello\n" || st.Pipes[1].Data != "world\n") {
					t.Errorf("captures:\n%s", b)
				}
				d.assertNoJobLeft(t)
			})
		}
	}
}

func TestDaemonInteractiveBadPipes(t *testing.T) {
	d := startDaemon(t, "")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", d.socket)
	}}}
	two := `"programs":[{"name":"a","argv":["cat"]},{"name":"b","argv":["cat"]}]`
	for _, tc := range []struct{ body, want string }{
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"]}]}]}`, "steps[0].programs: 1 programs"},
		{`{"steps":[{"argv":["true"],"pipes":[{"from":"a:1","to":"b:0"}]}]}`, "steps[0].pipes: only a step with programs"},
		{`{"steps":[{"argv":["true"],` + two + `}]}`, "steps[0].argv"},
		{`{"steps":[{"stdin":"x",` + two + `}]}`, "steps[0].stdin"},
		{`{"steps":[{"expected_stdout":"x",` + two + `}]}`, "steps[0].expected_stdout"},
		{`{"steps":[{"limits":{"cpu_time_ms":5},` + two + `}]}`, "steps[0].limits"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"c:1","to":"b:0"}]}]}`, `steps[0].pipes[0].from: "c" names no program`},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a","to":"b:0"}]}]}`, "steps[0].pipes[0].from"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:x","to":"b:0"}]}]}`, "steps[0].pipes[0].from"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:0","to":"b:0"}]}]}`, "steps[0].pipes[0].from: fd 0"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:1"}]}]}`, "steps[0].pipes[0].to: fd 1"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:10"}]}]}`, "steps[0].pipes[0].to"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:4","to":"b:2"}]}]}`, "steps[0].pipes[0].to: fd 2 is written by the program: a pipe goes to an fd the program reads (0, or 3 to 9)"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:3","to":"b:4"},{"from":"b:4","to":"a:3"}]}]}`, `steps[0].pipes[1].from: "b:4" is already an end of steps[0].pipes[0].to`},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:0"},{"from":"a:1","to":"a:0"}]}]}`, `steps[0].pipes[1].from: "a:1" is already an end of steps[0].pipes[0].from`},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:0"},{"from":"a:2","to":"b:0"}]}]}`, "steps[0].pipes[1].to"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:0","capture_bytes":0}]}]}`, "capture_bytes"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:0","capture_bytes":999999999999}]}]}`, "steps[0].pipes[0].capture_bytes"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"]},{"name":"a","argv":["cat"]}]}]}`, "steps[0].programs[1].name"},
		{`{"steps":[{"programs":[{"name":"a b","argv":["cat"]},{"name":"c","argv":["cat"]}]}]}`, "steps[0].programs[0].name"},
		{`{"steps":[{"programs":[{"name":"a","argv":[]},{"name":"c","argv":["cat"]}]}]}`, "steps[0].programs[0].argv"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"]},{"name":"c","argv":["cat"],"limits":{"cpu_time_ms":99999999999}}]}]}`, "steps[0].programs[1].limits.cpu_time_ms"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"workspace":"shared"},{"name":"c","argv":["cat"]}]}]}`, "steps[0].programs[0].workspace"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"argvv":1},{"name":"c","argv":["cat"]}]}]}`, "argvv"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"files":{"x":{"content":"1"}}},{"name":"c","argv":["cat"]}]}]}`, `steps[0].programs[0].files: only a program with workspace "private" has files of its own`},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"]},{"name":"c","argv":["cat"],"workspace":"job","tracked_files":["x"]}]}]}`, "steps[0].programs[1].tracked_files: only a program"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"workspace":"private","files":{"../x":{"content":"1"}}},{"name":"c","argv":["cat"]}]}]}`, `steps[0].programs[0].files["../x"]`},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"workspace":"private","files":{"x":{"cached":"abc"}}},{"name":"c","argv":["cat"]}]}]}`, `steps[0].programs[0].files["x"].cached`},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"workspace":"private","tracked_files":["/etc/passwd"]},{"name":"c","argv":["cat"]}]}]}`, "steps[0].programs[0].tracked_files[0]"},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"],"workspace":"private","files":{"x":{"content":"1","mode":"999"}}},{"name":"c","argv":["cat"]}]}]}`, `steps[0].programs[0].files["x"].mode`},
	} {
		resp, err := hc.Post("http://sandboxd/v1/run", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		var eb api.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != 400 || eb.Error == nil || eb.Error.Code != api.CodeInvalidArgument || !strings.Contains(eb.Error.Message, tc.want) {
			t.Errorf("%s: HTTP %d %+v, want 400 naming %q", tc.body, resp.StatusCode, eb.Error, tc.want)
		}
	}
}
