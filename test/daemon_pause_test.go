package test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// TestDaemonPauseBetweenSteps: a job with pause_between_steps waits after
// each step until its client continues it, so that the client decides from
// a step's result whether the next one runs at all: continued after the
// first step, cancelled after the second, its third never ran.
func TestDaemonPauseBetweenSteps(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	job := &api.Job{ID: "paused-1", PauseBetweenSteps: true, StopOn: api.StopOnNever,
		Steps: []api.Step{
			{Argv: []string{"sh", "-c", "echo one; touch one"}},
			{Argv: []string{"sh", "-c", "echo two; exit 3"}},
			{Argv: []string{"sh", "-c", "echo three; touch three"}},
		},
		TrackedFiles: []string{"one", "three"},
	}
	var seen []string
	res, err := d.c.RunStream(ctx, job, func(e *api.Event) error {
		if e.Event != api.EventStepFinished {
			return nil
		}
		info, err := d.c.Get(ctx, job.ID)
		if err != nil {
			return err
		}
		seen = append(seen, info.State)
		switch *e.Step {
		case 0:
			return d.c.Continue(ctx, job.ID)
		case 1:
			// The client's rule: stop at a nonzero exit.
			return d.c.Cancel(ctx, job.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(seen, ",") != "paused,paused" {
		t.Errorf("states seen at each step_finished: %v, want paused twice", seen)
	}
	if res.Status != api.StatusCancelled || len(res.Steps) != 3 || res.Steps[0].Stdout != "one\n" || res.Steps[1].ExitCode != 3 ||
		res.Steps[2].Verdict != api.VerdictSkipped || !strings.Contains(res.Message, "paused after steps[1]: cancelled") {
		t.Errorf("result: %+v", res)
	}
	if res.Files["one"] == nil || res.Files["three"] != nil {
		t.Errorf("tracked files %+v: the third step must not have run", res.Files)
	}

	// Continued every time, it runs to its end as any job.
	job.ID = "paused-2"
	res, err = d.c.RunStream(ctx, job, func(e *api.Event) error {
		if e.Event == api.EventStepFinished && *e.Step < 2 {
			return d.c.Continue(ctx, job.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != api.StatusCompleted || res.Steps[2].Stdout != "three\n" || res.Files["three"] == nil {
		t.Errorf("continued: %+v", res)
	}

	// A continue for a job that does not pause, or is not paused now.
	var ae *api.Error
	if err := d.c.Continue(ctx, "paused-2"); !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(ae.Message, "is not paused: it is finished") {
		t.Errorf("continue of a finished job: %v", err)
	}
	if err := d.c.Continue(ctx, "nope"); !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		t.Errorf("continue of no job: %v", err)
	}
	plain := &api.Job{ID: "plain", Steps: []api.Step{{Argv: []string{"sleep", "0.5"}}}}
	done := make(chan error, 1)
	go func() { _, err := d.c.Run(ctx, plain); done <- err }()
	for {
		if info, err := d.c.Get(ctx, "plain"); err == nil && info.State == api.StateRunning {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := d.c.Continue(ctx, "plain"); !errors.As(err, &ae) || ae.Code != api.CodeConflict || !strings.Contains(ae.Message, "not submitted with pause_between_steps") {
		t.Errorf("continue of a job that does not pause: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	d.assertNoJobLeft(t)
}
