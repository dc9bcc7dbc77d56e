package daemon

import (
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// jobVerdict is what a batch summary counts for a job: the verdict of its
// first step that is not ok, or wrong_answer for an ok step whose stdout
// did not match what was expected; ok when there is none.
func jobVerdict(res *api.Result) api.Verdict {
	for _, s := range res.Steps {
		switch {
		case s.Verdict != api.VerdictOK:
			return s.Verdict
		case s.StdoutMatches != nil && !*s.StdoutMatches:
			return api.VerdictWrongAnswer
		}
	}
	return api.VerdictOK
}

// atBatchItem says which of a batch's jobs an error is about: where is
// "line 3" (NDJSON) or "jobs[2]" ({"jobs": [...]}).
func atBatchItem(where string, e *api.Error) *api.Error {
	msg := strings.TrimPrefix(e.Message, "body: ")
	return &api.Error{Code: e.Code, Message: where + ": " + msg}
}
