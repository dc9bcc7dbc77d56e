package gojudge

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"sync"

	"github.com/sandboxd/sandboxd/api"
)

// runAlone runs each cmd as a job of its own, all at once, as go-judge
// runs the cmds of a request without pipes: each in its own sandbox and
// workspace. The first error the daemon answers is the request's.
func (h *handler) runAlone(ctx context.Context, plans []*cmdPlan) ([]Result, error) {
	results := make([]Result, len(plans))
	errs := make([]error, len(plans))
	var wg sync.WaitGroup
	for i, p := range plans {
		if len(p.fileErrors) > 0 {
			results[i] = Result{Status: StatusFileError, FileError: p.fileErrors}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = h.runOne(ctx, p)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

func (h *handler) runOne(ctx context.Context, p *cmdPlan) (Result, error) {
	step := api.Step{Argv: p.argv, Env: p.env, Limits: p.limits, StdinCached: p.stdinCached}
	if p.stdin != "" {
		step.StdinBase64 = base64.StdEncoding.EncodeToString([]byte(p.stdin))
	}
	job := &api.Job{Files: p.files, Steps: []api.Step{step}, OutputEncoding: api.EncodingBase64,
		TrackedFiles: trackedOf([]*cmdPlan{p}), KeepFiles: keptOf([]*cmdPlan{p})}
	res, err := h.c.Run(ctx, job)
	if err != nil {
		return Result{}, err
	}
	s := res.Steps[0]
	r := convertResult(s)
	h.finish(ctx, &r, p, s.Stdout, s.Stderr, outputs{files: res.Files, kept: res.Kept, message: res.Message})
	return r, nil
}

// runGroup runs cmds joined by pipeMapping as one interactive step: each
// cmd a program named c0, c1, ... in a private workspace of its own, with
// its own copyIn files, and its copyOut and copyOutCached files read back
// from it: as go-judge runs them, no cmd sees another's files.
func (h *handler) runGroup(ctx context.Context, plans []*cmdPlan, pipes []PipeMap) ([]Result, error) {
	results := make([]Result, len(plans))
	var failed []int
	for i, p := range plans {
		if len(p.fileErrors) > 0 {
			failed = append(failed, i)
		}
	}
	if len(failed) > 0 {
		for i, p := range plans {
			results[i] = Result{Status: StatusInternalError, Error: fmt.Sprintf("not run: cmd[%d] has a file error", failed[0])}
			if len(p.fileErrors) > 0 {
				results[i] = Result{Status: StatusFileError, FileError: p.fileErrors}
			}
		}
		return results, nil
	}
	step := api.Step{}
	for i, p := range plans {
		step.Programs = append(step.Programs, api.Program{Name: programName(i), Argv: p.argv, Env: p.env, Limits: p.limits,
			Workspace: api.WorkspacePrivate, Files: p.files, TrackedFiles: namesOf([]*cmdPlan{p}, func(p *cmdPlan) []outFile {
				return append(append([]outFile{}, p.copyOut...), p.copyOutCached...)
			})})
	}
	for _, m := range pipes {
		pipe := api.Pipe{From: fmt.Sprintf("%s:%d", programName(m.In.Index), m.In.Fd),
			To: fmt.Sprintf("%s:%d", programName(m.Out.Index), m.Out.Fd)}
		if m.Proxy && m.Name != "" {
			pipe.Capture = m.Max
			if pipe.Capture <= 0 {
				pipe.Capture = defaultPipeLimit
			}
		}
		step.Pipes = append(step.Pipes, pipe)
	}
	job := &api.Job{Steps: []api.Step{step}, OutputEncoding: api.EncodingBase64}
	res, err := h.c.Run(ctx, job)
	if err != nil {
		return nil, err
	}
	s := res.Steps[0]
	for i, p := range plans {
		if i >= len(s.Programs) { // the job failed before the step ran
			results[i] = convertResult(s)
			continue
		}
		pr := s.Programs[i].StepResult
		results[i] = convertResult(pr)
		// A proxied pipe's traffic is a file of the cmd that writes it.
		var captured map[string][]byte
		for k, m := range pipes {
			if m.In.Index != i || !m.Proxy || m.Name == "" {
				continue
			}
			for _, pc := range s.Pipes {
				if pc.From == step.Pipes[k].From && pc.To == step.Pipes[k].To {
					if captured == nil {
						captured = map[string][]byte{}
					}
					captured[m.Name] = decode(pc.Data)
				}
			}
		}
		h.finish(ctx, &results[i], p, pr.Stdout, pr.Stderr, outputs{files: s.Programs[i].Files, captured: captured, message: res.Message})
	}
	return results, nil
}

func programName(i int) string { return fmt.Sprintf("c%d", i) }

// trackedOf lists the workspace files the plans copy out (not their
// collectors), each once.
func trackedOf(plans []*cmdPlan) []string {
	return namesOf(plans, func(p *cmdPlan) []outFile { return p.copyOut })
}

func keptOf(plans []*cmdPlan) []string {
	return namesOf(plans, func(p *cmdPlan) []outFile { return p.copyOutCached })
}

func namesOf(plans []*cmdPlan, list func(*cmdPlan) []outFile) []string {
	seen := map[string]bool{}
	var names []string
	for _, p := range plans {
		for _, f := range list(p) {
			if f.name == p.outName || f.name == p.errName || seen[f.name] {
				continue
			}
			seen[f.name] = true
			names = append(names, f.name)
		}
	}
	return names
}

func decode(s string) []byte {
	b, _ := base64.StdEncoding.DecodeString(s)
	return b
}

// outputs are what a cmd's job gave back besides its stdout and stderr:
// the workspace files read back (the job's tracked files, or a program's),
// those kept in the cache (a job's keep_files; none for a program, whose
// copyOutCached files are read back and uploaded), and the traffic of the
// proxied pipes the cmd writes.
type outputs struct {
	files    map[string]*api.TrackedFile
	kept     map[string]api.CachedFile
	captured map[string][]byte
	message  string // the job's, naming why a file was not kept
}

// finish fills a cmd's files, fileIds and fileError from its job's result:
// its collectors (stdout, stderr), the workspace files it copies out, and
// the proxied pipes it writes. A missing file that is not optional makes
// an Accepted cmd a File Error; a collector past its max makes it Output
// Limit Exceeded.
func (h *handler) finish(ctx context.Context, r *Result, p *cmdPlan, stdout, stderr string, out outputs) {
	collected := map[string][]byte{}
	for name, b := range out.captured {
		// A proxied pipe's name asks for its traffic: it is a file of
		// the result whether copyOut names it or not.
		collected[name] = b
		if r.Files == nil {
			r.Files = map[string]string{}
		}
		r.Files[name] = string(b)
	}
	collect := func(name string, max int64, data string) {
		if name == "" {
			return
		}
		b := decode(data)
		if int64(len(b)) > max {
			b = b[:max]
			if r.Status == StatusAccepted {
				r.Status = StatusOutputLimitExceeded
			}
		}
		collected[name] = b
	}
	collect(p.outName, p.outMax, stdout)
	collect(p.errName, p.errMax, stderr)
	fail := func(name string, typ FileErrorType, msg string) {
		r.FileError = append(r.FileError, FileError{Name: name, Type: typ, Message: msg})
	}
	for _, f := range p.copyOut {
		var b []byte
		if c, ok := collected[f.name]; ok {
			b = c
		} else {
			tf := out.files[f.name]
			if tf == nil {
				if !f.optional {
					fail(f.name, CopyOutOpen, fmt.Sprintf("%s: no such regular file in the workspace (missing, a symlink or not a regular file)", f.name))
				}
				continue
			}
			if tf.Truncated {
				fail(f.name, CopyOutSizeExceeded, fmt.Sprintf("%s: larger than the daemon's tracked_file_bytes", f.name))
				continue
			}
			b = decode(tf.Content)
		}
		if p.copyOutMax > 0 && uint64(len(b)) > p.copyOutMax {
			fail(f.name, CopyOutSizeExceeded, fmt.Sprintf("%s: %d bytes, above copyOutMax %d", f.name, len(b), p.copyOutMax))
			continue
		}
		if r.Files == nil {
			r.Files = map[string]string{}
		}
		r.Files[f.name] = string(b)
	}
	for _, f := range p.copyOutCached {
		c, ok := collected[f.name]
		if tf := out.files[f.name]; !ok && out.kept == nil && tf != nil {
			// A program's file, read back: uploaded whole, or refused.
			if tf.Truncated {
				fail(f.name, CopyOutSizeExceeded, fmt.Sprintf("%s: larger than the daemon's tracked_file_bytes", f.name))
				continue
			}
			c, ok = decode(tf.Content), true
		}
		id := ""
		if ok {
			cf, err := h.c.Upload(ctx, bytes.NewReader(c))
			if err != nil {
				fail(f.name, CopyOutCreateFile, err.Error())
				continue
			}
			id = cf.ID
		} else if k, kept := out.kept[f.name]; kept {
			id = k.ID
		} else {
			if !f.optional {
				msg := fmt.Sprintf("%s: no such regular file in the workspace (missing, a symlink or not a regular file)", f.name)
				if out.message != "" {
					msg = fmt.Sprintf("%s: not kept: %s", f.name, out.message)
				}
				fail(f.name, CopyOutOpen, msg)
			}
			continue
		}
		if r.FileIDs == nil {
			r.FileIDs = map[string]string{}
		}
		r.FileIDs[f.name] = id
	}
	if len(r.FileError) > 0 && r.Status == StatusAccepted {
		r.Status = StatusFileError
	}
}
