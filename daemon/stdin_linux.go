package daemon

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// writeStdin is POST /v1/runs/{id}/stdin: the body into the job's stdin
// pipe; ?eof=true closes it after.
func (s *server) writeStdin(w http.ResponseWriter, r *http.Request) {
	j := s.ownRun(w, r)
	if j == nil {
		return
	}
	eof := false
	if v := r.URL.Query().Get("eof"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			s.fail(w, 0, &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("eof: %q is not true or false", v)})
			return
		}
		eof = b
	}
	if j.stdin == nil {
		s.fail(w, 0, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("run %q has no stdin pipe: none of its steps has stdin_pipe", j.id)})
		return
	}
	if r.ContentLength > maxStdinWrite {
		s.fail(w, http.StatusRequestEntityTooLarge, &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("body: %d bytes, at most %d in one write", r.ContentLength, maxStdinWrite)})
		return
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxStdinWrite+1))
	if err != nil {
		s.fail(w, http.StatusRequestTimeout, &api.Error{Code: api.CodeInvalidArgument, Message: "body: " + err.Error()})
		return
	}
	if len(data) > maxStdinWrite {
		s.fail(w, http.StatusRequestEntityTooLarge, &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("body: more than %d bytes in one write", maxStdinWrite)})
		return
	}
	n, err := j.stdin.write(data, eof, stdinWriteWait)
	if err != nil {
		s.fail(w, 0, &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("run %q: stdin: %v (%d of %d bytes written)", j.id, err, n, len(data))})
		return
	}
	writeJSON(w, http.StatusOK, j.info(time.Now()))
}
