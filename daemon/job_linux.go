package daemon

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// emitFunc receives a streamed run's events; nil when nobody streams.
type emitFunc func(api.Event)

// runJob runs a checked job to its end: workspace, files, steps in order,
// tracked files, teardown. A program's failure is a verdict; a sandbox's
// failure makes the status "error". Nothing of the job is left when it
// returns.
func (d *Daemon) runJob(ctx context.Context, j *job, cj *checkedJob, queued time.Duration, emit emitFunc) *api.Result {
	start := time.Now()
	res := &api.Result{ID: j.id, Status: api.StatusCompleted, Steps: make([]api.StepResult, 0, len(cj.steps))}
	res.Timing.QueuedMS = ms(queued)
	defer func() { res.Timing.TotalMS = ms(time.Since(j.created)) }()

	fail := func(err error) *api.Result {
		res.Status, res.Message = api.StatusError, err.Error()
		for len(res.Steps) < len(cj.steps) {
			res.Steps = append(res.Steps, api.StepResult{Verdict: api.VerdictSkipped})
		}
		return res
	}
	// A job with one step, no files in and none tracked out has nothing
	// for the daemon to put in its workspace or take from it: its sandbox
	// mounts a fresh tmpfs of its own there, of the same size, and no
	// workspace is made, mounted or removed on the host.
	var ws *workspace
	if len(cj.steps) > 1 || len(cj.files) > 0 || len(cj.job.TrackedFiles) > 0 || cj.hasPrograms() || len(cj.job.KeepFiles) > 0 || cj.stepFiles {
		// The workspace is named by the daemon, never by the client's id.
		// Each step's sandbox gets its files under its own uid.
		var err error
		if ws, err = d.ws.take(cj.wsBytes); err != nil {
			// Host paths stay in the daemon's log; the caller gets the
			// operation and the kernel's reason.
			d.log.WithError(err).WithField("job", j.id).Error("workspace")
			return fail(fmt.Errorf("the job's workspace could not be made: %s (the daemon's log names the path)", withoutPath(err)))
		}
		// The workspace goes once the result is out, as a used sandbox
		// does; shutdown waits for it.
		defer func() {
			d.cleanup.Add(1)
			go func() {
				defer d.cleanup.Done()
				d.engine.BackgroundTurn()
				if err := ws.remove(); err != nil {
					d.log.WithError(err).Error("workspace teardown")
				}
			}()
		}()
		if err := ws.writeFiles(cj.files); err != nil {
			return fail(errors.New(strings.ReplaceAll(err.Error(), ws.dir+"/", "")))
		}
	}
	res.Timing.SetupMS = ms(time.Since(start))
	// Everything the job gives back comes out of one budget, so that the
	// daemon's memory for a job is bounded whatever its steps write.
	budget := engine.NewOutputBudget(cj.conf.cfg.JobOutputBytes)

	// Each next step's sandbox is built while the step before it runs.
	if len(cj.steps) > 1 {
		defer d.engine.Ahead(cj.profile)()
	}
	stopped := false
	for i := range cj.steps {
		cs := &cj.steps[i]
		if stopped {
			res.Steps = append(res.Steps, api.StepResult{Verdict: api.VerdictSkipped})
			continue
		}
		j.setState(api.StateRunning, i)
		sr, err := d.runStep(ctx, j, i, cs, cj, ws, budget, emit)
		d.metrics.stepFinished(sr)
		encodeStep(&sr, cj.base64)
		res.Steps = append(res.Steps, sr)
		switch {
		case err != nil:
			res.Status, res.Message = api.StatusError, fmt.Sprintf("steps[%d]: %v", i, err)
			stopped = true
		case sr.Verdict == api.VerdictCancelled || ctx.Err() != nil:
			res.Status = api.StatusCancelled
			stopped = true
		case !cj.stopNever && (sr.Verdict != api.VerdictOK || (sr.StdoutMatches != nil && !*sr.StdoutMatches)):
			stopped = true
		}
		// A job that pauses is paused before its client hears of the
		// step, so that a continue sent on seeing it finds it paused.
		pause := j.resume != nil && !stopped && i+1 < len(cj.steps)
		if pause {
			j.setState(api.StatePaused, i)
		}
		if emit != nil {
			b, _ := jsonMarshal(sr)
			step := i
			emit(api.Event{Event: api.EventStepFinished, Step: &step, Result: b})
		}
		if pause {
			if why := j.await(ctx, maxPause); why != "" {
				res.Status, res.Message = api.StatusCancelled, fmt.Sprintf("paused after steps[%d]: %s", i, why)
				stopped = true
			}
		}
	}

	if len(cj.job.KeepFiles) > 0 {
		res.Kept, res.Message = d.keepFiles(ws, cj.job.KeepFiles, j.caller)
	}
	if len(cj.job.TrackedFiles) > 0 {
		res.Files = ws.readTracked(cj.job.TrackedFiles, cj.conf.cfg.TrackedFileBytes, budget)
		for _, tf := range res.Files {
			if tf != nil {
				tf.Content = encodeOutput(tf.Content, cj.base64)
			}
		}
	}
	return res
}

// runStep runs one step of a job in its workspace, or (ws nil) in a fresh
// one of the sandbox's own.
func (d *Daemon) runStep(ctx context.Context, j *job, i int, cs *checkedStep, cj *checkedJob, ws *workspace, budget *engine.OutputBudget, emit emitFunc) (api.StepResult, error) {
	if len(cs.programs) > 0 {
		return d.runPrograms(ctx, i, cs, cj, ws, budget)
	}
	req := &engine.StepRequest{
		Output:         budget,
		Argv:           cs.step.Argv,
		Env:            cs.step.Env,
		Limits:         cs.limits,
		WorkspaceBytes: cj.wsBytes,
		Profile:        cj.profile,
		Held:           true, // runJob runs under the engine's Hold
	}
	if ws != nil {
		req.Workdir = ws.dir
		// A fresh workspace without files has nothing in it before its
		// first step.
		req.WorkdirEmpty = i == 0 && len(cj.files) == 0
		req.WorkdirMount = ws.takeMount() // the first step's
		if ws.binds {
			m, err := ws.treeMount()
			if err != nil {
				return api.StepResult{Verdict: api.VerdictInternalError, Message: withoutPath(err)}, err
			}
			req.WorkdirMount = m
		}
	}
	if req.WorkdirMount != nil {
		defer req.WorkdirMount.Close()
	}
	if cs.stdinCached != "" {
		f, err := d.openStdinCached(cs)
		if err != nil {
			return api.StepResult{Verdict: api.VerdictInternalError, Message: err.Error()}, err
		}
		defer f.Close()
		req.Stdin = f
	}
	if cs.step.StdinPipe && j.stdin != nil {
		req.Stdin = j.stdin.reader()
	}
	if len(cs.stdin) > 0 {
		f, err := memfdWith("stdin", cs.stdin)
		if err != nil {
			return api.StepResult{Verdict: api.VerdictInternalError, Message: err.Error()}, err
		}
		defer f.Close()
		req.Stdin = f
	}
	if emit != nil {
		enc := newStreamEncoder(cj.base64)
		step := i
		req.OnOutput = func(stream int, data []byte) {
			kind := api.EventStdout
			if stream == 2 {
				kind = api.EventStderr
			}
			if text := enc.encode(stream, data); text != "" {
				emit(api.Event{Event: kind, Step: &step, Data: text})
			}
		}
	}
	sr, err := d.engine.RunStep(ctx, req)
	judgeStdout(&sr, err, cs, ws)
	return sr, err
}

// withoutPath is an error's operation and cause, without the host path it
// names.
func withoutPath(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return "unknown cause"
}

// memfdWith makes an anonymous in-memory file holding data, positioned at
// its start: a step's stdin that never blocks the daemon.
func memfdWith(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		f.Close()
		return nil, fmt.Errorf("memfd: %w", err)
	}
	return f, nil
}

// encodeStep turns a step's raw output into the job's output encoding.
func encodeStep(sr *api.StepResult, b64 bool) {
	sr.Stdout = encodeOutput(sr.Stdout, b64)
	sr.Stderr = encodeOutput(sr.Stderr, b64)
	for j := range sr.Programs {
		encodeStep(&sr.Programs[j].StepResult, b64)
		for _, tf := range sr.Programs[j].Files {
			if tf != nil {
				tf.Content = encodeOutput(tf.Content, b64)
			}
		}
	}
	for j := range sr.Pipes {
		sr.Pipes[j].Data = encodeOutput(sr.Pipes[j].Data, b64)
	}
}

func encodeOutput(s string, b64 bool) string {
	if b64 {
		return base64.StdEncoding.EncodeToString([]byte(s))
	}
	return validUTF8(s)
}

// validUTF8 is s with each invalid byte sequence replaced by U+FFFD. Most
// output is valid: utf8.ValidString checks it eight ASCII bytes at a time,
// several times faster than strings.ToValidUTF8 walks it rune by rune.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// streamEncoder encodes output chunks as they come. In UTF-8 mode a
// character split between two chunks is held back until it is whole; in
// base64 mode each chunk is encoded on its own.
type streamEncoder struct {
	b64   bool
	carry [3][]byte
}

func newStreamEncoder(b64 bool) *streamEncoder { return &streamEncoder{b64: b64} }

func (e *streamEncoder) encode(stream int, data []byte) string {
	if e.b64 {
		return base64.StdEncoding.EncodeToString(data)
	}
	buf := append(e.carry[stream], data...)
	// Hold back an incomplete character at the end (at most 3 bytes).
	cut := len(buf)
	for k := 1; k <= 3 && k <= len(buf); k++ {
		c := buf[len(buf)-k]
		if c < 0x80 {
			break
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(buf[len(buf)-k:]) {
				cut = len(buf) - k
			}
			break
		}
	}
	e.carry[stream] = append([]byte(nil), buf[cut:]...)
	return validUTF8(string(buf[:cut]))
}
