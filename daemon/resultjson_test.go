package daemon

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

// writeResult writes exactly what encoding/json writes, for every shape a
// result takes.
func TestWriteResultMatchesEncodingJSON(t *testing.T) {
	matches := true
	for _, res := range []*api.Result{
		{ID: "a", Status: api.StatusCompleted},
		{ID: "b<&>", Status: api.StatusError, Message: "steps[0]: \"x\" <y>", Steps: []api.StepResult{}},
		{ID: "c", Status: api.StatusCompleted, Steps: []api.StepResult{
			{Verdict: api.VerdictOK, Stdout: "hi\n\x00\u2028", CPUTimeMS: 1.5, StdoutMatches: &matches},
			{Verdict: api.VerdictSkipped},
		}, Files: map[string]*api.TrackedFile{"z": {Content: "zz"}, "a/b": nil, "m": {Content: "", Truncated: true}},
			Timing: api.Timing{QueuedMS: 0.25, TotalMS: 3}},
		{ID: "d", Status: api.StatusCompleted, Kept: map[string]api.CachedFile{"b<": {ID: "ab", Size: 2}, "a": {ID: "cd"}}},
	} {
		var want bytes.Buffer
		json.NewEncoder(&want).Encode(res)
		var got bytes.Buffer
		if err := writeResult(&got, res); err != nil {
			t.Fatal(err)
		}
		if got.String() != want.String() {
			t.Errorf("writeResult:\n%s\nencoding/json:\n%s", got.String(), want.String())
		}
	}
}

// A step's large stdout and stderr, which writeStep writes itself, come
// out as encoding/json writes them: every byte that is escaped, invalid
// UTF-8, U+2028 and U+2029, in a step with programs of their own.
func TestWriteResultLargeOutputsMatchEncodingJSON(t *testing.T) {
	var every []byte
	for b := range 256 {
		every = append(every, byte(b))
	}
	tricky := string(every) + "é\u2028\u2029\U0001F600\xe2\x82" + "<a&b>\"\\"
	big := strings.Repeat(tricky+"plain text, line after line\n", bigOutput/len(tricky)+1)
	matches := false
	for _, res := range []*api.Result{
		{ID: "big", Status: api.StatusCompleted, Steps: []api.StepResult{{Verdict: api.VerdictOK, Stdout: big, Stderr: "e\n"}}},
		{ID: "both", Status: api.StatusCompleted, Steps: []api.StepResult{
			{Verdict: api.VerdictOutputLimit, Signal: "SIGKILL", Stdout: big, Stderr: big, StdoutTruncated: true, StdoutMatches: &matches,
				Programs: []api.ProgramResult{{Name: "p", StepResult: api.StepResult{Stdout: "small", Stderr: ""}}}},
			{Verdict: api.VerdictSkipped, Stderr: big[:bigOutput]},
		}},
	} {
		var want bytes.Buffer
		json.NewEncoder(&want).Encode(res)
		var got bytes.Buffer
		if err := writeResult(&got, res); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			i := 0
			for i < min(got.Len(), want.Len()) && got.Bytes()[i] == want.Bytes()[i] {
				i++
			}
			t.Errorf("%s: writeResult differs from encoding/json at byte %d of %d: %.80q against %.80q",
				res.ID, i, want.Len(), got.Bytes()[i:], want.Bytes()[i:])
		}
	}
}

// A result with small outputs is encoded whole in memory, as writeResult
// writes it, so that it goes out with its length; larger outputs, tracked
// files and programs are left to be written as they are encoded.
func TestEncodeSmall(t *testing.T) {
	small := &api.Result{ID: "a", Status: api.StatusCompleted, Steps: []api.StepResult{{Verdict: api.VerdictOK, Stdout: "1\n"}}}
	buf := encodeSmall(small)
	if buf == nil {
		t.Fatal("a result with 2 bytes of output was not encoded in memory")
	}
	var want bytes.Buffer
	json.NewEncoder(&want).Encode(small)
	if buf.String() != want.String() {
		t.Errorf("encodeSmall:\n%s\nencoding/json:\n%s", buf.String(), want.String())
	}
	for name, res := range map[string]*api.Result{
		"large":    {Steps: []api.StepResult{{Stdout: strings.Repeat("x", smallResult+1)}}},
		"files":    {Steps: []api.StepResult{{}}, Files: map[string]*api.TrackedFile{"f": {Content: "x"}}},
		"programs": {Steps: []api.StepResult{{Programs: []api.ProgramResult{{}}}}},
	} {
		if encodeSmall(res) != nil {
			t.Errorf("%s: encoded in memory", name)
		}
	}
}
