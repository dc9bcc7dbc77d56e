package daemon

import (
	"strings"
	"testing"
)

func TestCheckProgramsAcceptsAGame(t *testing.T) {
	cj := wantOK(t, `{"steps":[{"programs":[
		{"name":"solution","argv":["./sol"],"workspace":"private","limits":{"wall_time_ms":1000}},
		{"name":"interactor","argv":["python3","i.py"],"workspace":"job"}],
		"pipes":[{"from":"solution:1","to":"interactor:0","capture_bytes":100},{"from":"interactor:1","to":"solution:0"}]}]}`)
	if cj == nil {
		return
	}
	cs := cj.steps[0]
	if len(cs.programs) != 2 || !cs.programs[0].private || cs.programs[1].private || cs.programs[0].limits.WallTimeMS != 1000 ||
		cs.programs[1].limits.WallTimeMS == 0 || !cj.hasPrograms() {
		t.Errorf("%+v", cs.programs)
	}
	if len(cs.pipes) != 2 || cs.pipes[0].from != (pipeEnd{0, 1}) || cs.pipes[0].to != (pipeEnd{1, 0}) || cs.pipes[1].to != (pipeEnd{0, 0}) {
		t.Errorf("%+v", cs.pipes)
	}
}

// Fds 3 to 9 are ends both ways; 1 and 2 only written, 0 only read.
func TestCheckProgramsAcceptsFdsAbove2(t *testing.T) {
	cj := wantOK(t, `{"steps":[{"programs":[{"name":"a","argv":["cat"]},{"name":"b","argv":["cat"]}],
		"pipes":[{"from":"a:3","to":"b:4"},{"from":"b:9","to":"a:0"},{"from":"a:2","to":"b:8"},{"from":"b:1","to":"a:5"}]}]}`)
	if cj == nil {
		return
	}
	want := []checkedPipe{{from: pipeEnd{0, 3}, to: pipeEnd{1, 4}}, {from: pipeEnd{1, 9}, to: pipeEnd{0, 0}},
		{from: pipeEnd{0, 2}, to: pipeEnd{1, 8}}, {from: pipeEnd{1, 1}, to: pipeEnd{0, 5}}}
	for k, cp := range cj.steps[0].pipes {
		if cp.from != want[k].from || cp.to != want[k].to {
			t.Errorf("pipes[%d]: %+v -> %+v, want %+v -> %+v", k, cp.from, cp.to, want[k].from, want[k].to)
		}
	}
}

func TestCheckProgramsRefuses(t *testing.T) {
	two := `"programs":[{"name":"a","argv":["cat"]},{"name":"b","argv":["cat"]}]`
	for _, tc := range []struct{ body, msg string }{
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"]}]}]}`, "steps[0].programs: 1 programs, 2 to 8"},
		{`{"steps":[{"argv":["true"]},{"argv":["true"],"pipes":[{"from":"a:1","to":"b:0"}]}]}`, "steps[1].pipes: only a step with programs has pipes"},
		{`{"steps":[{"env":{"A":"1"},` + two + `}]}`, "steps[0].env: a step with programs gives each program its env"},
		{`{"steps":[{"stdout_to":"out.txt",` + two + `}]}`, "steps[0].stdout_to: a step with programs has no stdout of its own; a checker step reads a program's output from a file it writes"},
		{`{"steps":[{"expected_stdout_file":"ans.txt",` + two + `}]}`, "steps[0].expected_stdout_file: a step with programs has no expected_stdout; a program decides (its exit status)"},
		{`{"steps":[{"compare":"tokens",` + two + `}]}`, "steps[0].compare: a step with programs has no expected_stdout; a program decides (its exit status)"},
		{`{"steps":[{"float_rel":0.5,` + two + `}]}`, "steps[0].float_rel: a step with programs has no expected_stdout; a program decides (its exit status)"},
		{`{"steps":[{"stdin_cached":"` + strings.Repeat("a", 64) + `",` + two + `}]}`, "steps[0].stdin_cached: a step with programs has no stdin; its programs read their pipes"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:01"}]}]}`, `steps[0].pipes[0].to: "01" is not an fd from 0 to 9`},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:0","to":"b:3"}]}]}`, "steps[0].pipes[0].from: fd 0 is the program's stdin, which it reads: a pipe goes from an fd the program writes (1, 2, or 3 to 9)"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:3","to":"b:2"}]}]}`, "steps[0].pipes[0].to: fd 2 is written by the program: a pipe goes to an fd the program reads (0, or 3 to 9)"},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:3","to":"b:10"}]}]}`, `steps[0].pipes[0].to: "10" is not an fd from 0 to 9`},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:4","to":"b:3"},{"from":"b:3","to":"a:4"}]}]}`, `steps[0].pipes[1].from: "b:3" is already an end of steps[0].pipes[0].to`},
		{`{"steps":[{` + two + `,"pipes":[{"from":"a:1","to":"b:0"},{"from":"b:1","to":"b:0"}]}]}`, `steps[0].pipes[1].to: "b:0" is already an end of steps[0].pipes[0].to`},
		{`{"steps":[{"programs":[{"name":"a","argv":["cat"]},{"name":"b","argv":["cat"],"env":{"A=B":"1"}}]}]}`, `steps[0].programs[1].env: invalid variable name "A=B"`},
		{`{"steps":[{"programs":[{"name":"","argv":["cat"]},{"name":"b","argv":["cat"]}]}]}`, `steps[0].programs[0].name: "" must be 1 to 32 characters of A-Z a-z 0-9 _ -`},
	} {
		wantInvalid(t, tc.body, tc.msg)
	}
}
