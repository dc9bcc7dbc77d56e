package daemon

import (
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestCheckStdoutFields(t *testing.T) {
	for _, tc := range []struct{ fields, msg string }{
		{`,"compare":"Float","expected_stdout":"1"`, `steps[0].compare: "Float" is not lines, exact, tokens or float`},
		{`,"compare":"tokens"`, `steps[0].compare: needs expected_stdout or expected_stdout_file`},
		{`,"float_abs":1e-3,"expected_stdout":"1"`, `steps[0].float_abs: only with compare "float" (compare is "lines")`},
		{`,"float_rel":1e-3,"compare":"tokens","expected_stdout":"1"`, `steps[0].float_rel: only with compare "float" (compare is "tokens")`},
		{`,"float_abs":-1e-3,"compare":"float","expected_stdout":"1"`, `steps[0].float_abs: must be above 0, got -1e-3`},
		{`,"float_rel":0,"compare":"float","expected_stdout":"1"`, `steps[0].float_rel: must be above 0, got 0`},
		{`,"float_rel":"1e-3","compare":"float","expected_stdout":"1"`, `steps[0].float_rel: wrong type (string, want number)`},
		{`,"float_rel":1e999,"compare":"float","expected_stdout":"1"`, `steps[0].float_rel: 1e999 is out of range`},
		{`,"expected_stdout":"1","expected_stdout_file":"ans.txt"`, `steps[0].expected_stdout, steps[0].expected_stdout_file: give one, not both`},
		{`,"expected_stdout_file":"../ans.txt"`, `steps[0].expected_stdout_file: path leaves the workspace (..)`},
		{`,"expected_stdout_file":"/etc/passwd"`, `steps[0].expected_stdout_file: absolute path; paths are relative to the workspace`},
		{`,"stdout_to":"/tmp/out"`, `steps[0].stdout_to: absolute path; paths are relative to the workspace`},
		{`,"stdout_to":"a/../../out"`, `steps[0].stdout_to: path is not clean (no ./, //, trailing /)`},
		{`,"stdout_to":"out/"`, `steps[0].stdout_to: path is not clean (no ./, //, trailing /)`},
		{`,"stdout_to":"x/.."`, `steps[0].stdout_to: path is not clean (no ./, //, trailing /)`},
		{`,"stdout_to":"out.txt","expected_stdout_file":"out.txt"`, `steps[0].stdout_to: the same file as steps[0].expected_stdout_file: stdout would be compared with itself`},
		{`,"stdout_to":1`, `steps[0].stdout_to: wrong type (number, want string)`},
		{`,"Stdout_to":"x"`, `steps[0].Stdout_to: unknown field (names are case-sensitive: stdout_to)`},
	} {
		wantInvalid(t, step(tc.fields), tc.msg)
	}
	wantInvalid(t, `{"files":{"a":"x"},"steps":[{"argv":["true"],"stdout_to":"a/out"}]}`,
		`steps[0].stdout_to: needs "a" to be a directory, but files["a"] is a file`)
	wantInvalid(t, `{"files":{"out/x":"x"},"steps":[{"argv":["true"],"stdout_to":"out"}]}`,
		`steps[0].stdout_to: "out" is a directory of files["out/x"], not a file`)
	// The second step names the field by its index.
	wantInvalid(t, `{"steps":[{"argv":["true"]},{"argv":["true"],"compare":"bytes","expected_stdout":""}]}`,
		`steps[1].compare: "bytes" is not lines, exact, tokens or float`)

	for _, tc := range []struct {
		fields   string
		want     stdoutCheck
		wantsWS  bool
		wantFile string
	}{
		{``, stdoutCheck{mode: api.CompareLines, abs: 1e-6, rel: 1e-6}, false, ""},
		{`,"expected_stdout":"1","compare":"lines"`, stdoutCheck{mode: api.CompareLines, abs: 1e-6, rel: 1e-6}, false, ""},
		{`,"expected_stdout":"1","compare":"exact"`, stdoutCheck{mode: api.CompareExact, abs: 1e-6, rel: 1e-6}, false, ""},
		{`,"expected_stdout":"1","compare":"float"`, stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 1e-6}, false, ""},
		{`,"expected_stdout":"1","compare":"float","float_abs":1e-9,"float_rel":null`, stdoutCheck{mode: api.CompareFloat, abs: 1e-9, rel: 1e-6}, false, ""},
		{`,"expected_stdout_file":"t/ans.txt","compare":"float","float_rel":0.25`, stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 0.25}, true, "t/ans.txt"},
		{`,"stdout_to":"t/out.txt"`, stdoutCheck{mode: api.CompareLines, abs: 1e-6, rel: 1e-6}, true, ""},
	} {
		cj := wantOK(t, step(tc.fields))
		if cj == nil {
			continue
		}
		if cj.steps[0].check != tc.want || cj.stepFiles != tc.wantsWS || cj.job.Steps[0].ExpectedStdoutFile != tc.wantFile {
			t.Errorf("%s: check %+v stepFiles %v, want %+v %v", tc.fields, cj.steps[0].check, cj.stepFiles, tc.want, tc.wantsWS)
		}
	}
	// A stdout_to beside the job's files, over one of them, or in a
	// directory of them is fine.
	wantOK(t, `{"files":{"in/a":"x","out.txt":"old"},"steps":[{"argv":["true"],"stdout_to":"in/out"},{"argv":["true"],"stdout_to":"out.txt"}]}`)
}
