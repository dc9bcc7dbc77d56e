package test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// TestDaemonStdinPipe: a step with stdin_pipe reads what its client writes
// while it runs (POST /v1/runs/{id}/stdin): the program answers each line
// as it comes, reads EOF once the client sends eof, and a write after the
// job's end, or to a job without the pipe, is a conflict.
func TestDaemonStdinPipe(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	prog := "import sys\nprint('ready')\nfor line in sys.stdin:\n    print('got', line.strip()[::-1])\nprint('eof')"
	job := &api.Job{ID: "stdin-1", Steps: []api.Step{{Argv: []string{"python3", "-c", prog}, StdinPipe: true}}}
	var out []string
	res, err := d.c.RunStream(ctx, job, func(e *api.Event) error {
		if e.Event != api.EventStdout {
			return nil
		}
		out = append(out, e.Data)
		switch {
		case strings.Contains(e.Data, "ready"):
			return d.c.WriteStdin(ctx, job.ID, []byte("abc\n"), false)
		case strings.Contains(e.Data, "got cba"):
			return d.c.WriteStdin(ctx, job.ID, []byte("xyz\n"), true)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := res.Steps[0]; s.Verdict != api.VerdictOK || s.Stdout != "ready\ngot cba\ngot zyx\neof\n" {
		t.Fatalf("step: %+v (events %q)", s, out)
	}
	var se *client.StatusError
	err = d.c.WriteStdin(ctx, job.ID, []byte("late\n"), false)
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusConflict || !strings.Contains(err.Error(), "the job has finished") {
		t.Errorf("a write after the job's end: %v, want 409 the job has finished", err)
	}

	// A job without the pipe.
	go d.c.Run(ctx, &api.Job{ID: "stdin-none", Steps: []api.Step{{Argv: []string{"sleep", "2"}}}})
	deadline := time.Now().Add(5 * time.Second)
	for {
		err = d.c.WriteStdin(ctx, "stdin-none", []byte("x"), false)
		if !errors.As(err, &se) || se.HTTPStatus != http.StatusNotFound || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusConflict || !strings.Contains(err.Error(), "none of its steps has stdin_pipe") {
		t.Errorf("a write to a job without stdin_pipe: %v, want 409", err)
	}
	d.c.Cancel(ctx, "stdin-none")

	// Refused with another stdin.
	_, err = d.c.Run(ctx, &api.Job{Steps: []api.Step{{Argv: []string{"cat"}, Stdin: "x", StdinPipe: true}}})
	if err == nil || !strings.Contains(err.Error(), "steps[0].stdin_pipe: not with stdin") {
		t.Errorf("stdin_pipe with stdin: %v, want a 400 naming steps[0].stdin_pipe", err)
	}

	// A program that never reads: a write larger than the pipe's buffer
	// waits, and the job's cancel ends the wait at once.
	go func() {
		time.Sleep(300 * time.Millisecond)
		d.c.Cancel(ctx, "stdin-stuck")
	}()
	go d.c.Run(ctx, &api.Job{ID: "stdin-stuck", Steps: []api.Step{{Argv: []string{"sleep", "30"}, StdinPipe: true}}})
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	err = d.c.WriteStdin(ctx, "stdin-stuck", make([]byte, 512<<10), false)
	if err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("a write the program never reads, cancelled: %v after %s", err, time.Since(start))
	}
}
