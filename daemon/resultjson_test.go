package daemon

import (
	"bytes"
	"encoding/json"
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
