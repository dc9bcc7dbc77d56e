package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// runPrograms runs a step with programs: each in its own sandbox, all at
// once, joined by the step's pipes. The step's verdict and fields are
// those of its first program, in declared order, that is not ok (of the
// first program when all are), but its stdout and stderr, which stay in
// each program's result.
func (d *Daemon) runPrograms(ctx context.Context, i int, cs *checkedStep, cj *checkedJob, ws *workspace, budget *engine.OutputBudget) (api.StepResult, error) {
	reqs := make([]*engine.StepRequest, len(cs.programs))
	// A private workspace with files in or out is the daemon's, made like
	// the job's; it goes once the step has ended, as the job's does.
	pws := make([]*workspace, len(cs.programs))
	defer func() {
		for _, pw := range pws {
			if pw == nil {
				continue
			}
			d.cleanup.Add(1)
			go func() {
				defer d.cleanup.Done()
				d.engine.BackgroundTurn()
				if err := pw.remove(); err != nil {
					d.log.WithError(err).Error("workspace teardown")
				}
			}()
		}
	}()
	for j := range cs.programs {
		cp := &cs.programs[j]
		if !cp.ownWorkspace() {
			continue
		}
		pw, err := d.ws.take(cj.wsBytes)
		if err == nil {
			pws[j] = pw
			err = pw.writeFiles(cp.files)
		}
		if err != nil {
			d.log.WithError(err).Error("a program's workspace")
			msg := fmt.Sprintf("steps[%d].programs[%d]: its workspace could not be made: %s", i, j, withoutPath(err))
			if pw != nil {
				msg = fmt.Sprintf("steps[%d].programs[%d].%s", i, j, strings.ReplaceAll(err.Error(), pw.dir+"/", ""))
			}
			return api.StepResult{Verdict: api.VerdictInternalError, Message: msg}, errors.New(msg)
		}
	}
	mountTaken := false
	for j := range cs.programs {
		cp := &cs.programs[j]
		req := &engine.StepRequest{
			Output:         budget,
			Argv:           cp.prog.Argv,
			Env:            cp.prog.Env,
			Limits:         cp.limits,
			WorkspaceBytes: cj.wsBytes,
			Profile:        cj.profile,
			Held:           true, // runJob runs under the engine's Hold
			HandOver:       true,
		}
		if pw := pws[j]; pw != nil {
			req.Workdir, req.WorkdirEmpty = pw.dir, len(cp.files) == 0
			req.WorkdirMount = pw.takeMount()
			if req.WorkdirMount != nil {
				defer req.WorkdirMount.Close()
			}
		} else if !cp.private {
			req.Workdir = ws.dir
			req.WorkdirEmpty = i == 0 && len(cj.files) == 0
			if !mountTaken {
				// The workspace's detached mount made ahead serves one
				// program: its first step's first.
				req.WorkdirMount, mountTaken = ws.takeMount(), true
				if req.WorkdirMount != nil {
					defer req.WorkdirMount.Close()
				}
			}
		}
		reqs[j] = req
	}
	relays, err := joinPipes(cs, reqs, budget)
	if err != nil {
		for _, req := range reqs {
			closeStdio(req)
		}
		return api.StepResult{Verdict: api.VerdictInternalError, Message: err.Error()}, err
	}
	var wg sync.WaitGroup
	for _, r := range relays {
		wg.Add(1)
		go func() { defer wg.Done(); r.run() }()
	}
	results, err := d.engine.RunPrograms(ctx, reqs)
	// Every program has ended and no copy of a pipe end is left but the
	// relays' own: each has seen its writer's EOF or its reader's end.
	wg.Wait()

	var sr api.StepResult
	decider := -1
	for j, res := range results {
		if decider < 0 && res.Verdict != api.VerdictOK {
			decider = j
		}
		pr := api.ProgramResult{Name: cs.programs[j].prog.Name, StepResult: res}
		if names := cs.programs[j].prog.TrackedFiles; pws[j] != nil && len(names) > 0 {
			pr.Files = pws[j].readTracked(names, cj.conf.cfg.TrackedFileBytes, budget)
		}
		sr.Programs = append(sr.Programs, pr)
	}
	if decider < 0 {
		decider = 0
	}
	own := results[decider]
	own.Stdout, own.Stderr, own.StdoutTruncated, own.StderrTruncated = "", "", false, false
	own.Programs = sr.Programs
	for _, r := range relays {
		own.Pipes = append(own.Pipes, api.PipeCapture{
			From: r.pipe.From, To: r.pipe.To,
			Data:      unsafe.String(unsafe.SliceData(r.buf), len(r.buf)),
			Truncated: r.truncated,
		})
	}
	return own, err
}

// joinPipes makes the step's pipes and sets each program's stdio or extra
// files (fds 3 to 9) to its ends: a direct pipe, or, for a pipe with
// capture_bytes, two pipes with a relay of the daemon's between them. The
// rest of a program's stdio keeps its meaning (stdin empty, stdout and
// stderr captured); its fds 3 to 9 in no pipe are closed.
func joinPipes(cs *checkedStep, reqs []*engine.StepRequest, budget *engine.OutputBudget) (relays []*relay, err error) {
	defer func() {
		if err != nil {
			for _, r := range relays {
				r.close()
			}
			relays = nil
		}
	}()
	set := func(end pipeEnd, f *os.File) {
		req := reqs[end.prog]
		switch end.fd {
		case 0:
			req.Stdin = f
		case 1:
			req.Stdout = f
		case 2:
			req.Stderr = f
		default:
			if req.ExtraFiles == nil {
				req.ExtraFiles = map[int]*os.File{}
			}
			req.ExtraFiles[end.fd] = f
		}
	}
	for k := range cs.pipes {
		cp := &cs.pipes[k]
		r, w, err := hostPipe()
		if err != nil {
			return relays, err
		}
		if cp.pipe.Capture == 0 {
			set(cp.from, w)
			set(cp.to, r)
			continue
		}
		// from -> [r  relay  w2] -> to
		r2, w2, err := hostPipe()
		if err != nil {
			r.Close()
			w.Close()
			return relays, err
		}
		set(cp.from, w)
		set(cp.to, r2)
		rl := &relay{pipe: cp.pipe, in: int(r.Fd()), out: int(w2.Fd()), limit: cp.pipe.Capture, budget: budget}
		// The relay owns these two descriptors from now on.
		rl.keep = []*os.File{r, w2}
		relays = append(relays, rl)
	}
	return relays, nil
}

// hostPipe is a blocking pipe, close-on-exec in the daemon.
func hostPipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("pipe: %w", err)
	}
	return os.NewFile(uintptr(p[0]), "pipe"), os.NewFile(uintptr(p[1]), "pipe"), nil
}

func closeStdio(req *engine.StepRequest) {
	for _, f := range []*os.File{req.Stdin, req.Stdout, req.Stderr} {
		if f != nil {
			f.Close()
		}
	}
	for _, f := range req.ExtraFiles {
		f.Close()
	}
}

// relay copies a captured pipe from its writer's pipe (in) to its reader's
// (out), keeping up to limit bytes of it. It keeps the ends' behaviour of
// a direct pipe: the writer's EOF closes out (the reader sees EOF), and
// the reader's end closes in (the writer's next write fails with EPIPE, or
// SIGPIPE), without waiting for the writer to write.
type relay struct {
	pipe      *api.Pipe
	in, out   int
	keep      []*os.File // the files of in and out, closed at the end
	limit     int64
	budget    *engine.OutputBudget
	buf       []byte
	truncated bool
}

func (r *relay) run() {
	defer r.close()
	chunk := make([]byte, 64<<10)
	fds := []unix.PollFd{{Fd: int32(r.in), Events: unix.POLLIN}, {Fd: int32(r.out)}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			return
		}
		// A pipe's write end polls POLLERR once its reader is gone.
		if fds[1].Revents&(unix.POLLERR|unix.POLLHUP) != 0 {
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(r.in, chunk)
		if err == unix.EINTR {
			continue
		}
		if n <= 0 {
			return
		}
		r.capture(chunk[:n])
		for data := chunk[:n]; len(data) > 0; {
			m, err := unix.Write(r.out, data)
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return
			}
			data = data[m:]
		}
	}
}

func (r *relay) capture(data []byte) {
	if r.truncated {
		return
	}
	keep := min(int64(len(data)), r.limit-int64(len(r.buf)))
	keep = r.budget.Take(keep)
	if keep < int64(len(data)) {
		r.truncated = true
	}
	r.buf = append(r.buf, data[:keep]...)
}

func (r *relay) close() {
	for _, f := range r.keep {
		f.Close()
	}
	r.keep = nil
}
