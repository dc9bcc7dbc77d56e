package engine

import (
	"context"
	"fmt"
	"sync"

	"github.com/sandboxd/sandboxd/api"
)

// RunPrograms runs several programs at once, each in a sandbox of its own,
// and judges each as RunStep does; the results are in the order of reqs.
// The programs talk through the files their requests give as stdio or
// extra files (pipes, with HandOver set, so that a program's end is its
// peer's EOF or EPIPE).
// The programs whose requests name the same Workdir share it: they run
// under one host uid, which owns it while they run; a program alone on its
// Workdir has it as a step has; a program without a Workdir has a fresh
// tmpfs of its own. The error is the
// first of a sandbox that failed; the others still ran to their end. When
// it returns no process of any of the programs runs any more.
func (e *Engine) RunPrograms(ctx context.Context, reqs []*StepRequest) ([]api.StepResult, error) {
	results := make([]api.StepResult, len(reqs))
	// Programs naming one Workdir share it; a program alone on its
	// Workdir is as a step's.
	shared := map[string][]*StepRequest{}
	var dirs []string
	for i, req := range reqs {
		// The job's hold on the pools is lent once, by its first program.
		req.Held = req.Held && i == 0
		if req.Workdir != "" {
			if shared[req.Workdir] == nil {
				dirs = append(dirs, req.Workdir)
			}
			shared[req.Workdir] = append(shared[req.Workdir], req)
		}
	}
	for _, dir := range dirs {
		group := shared[dir]
		if len(group) < 2 {
			continue
		}
		id, err := e.AcquireID()
		if err != nil {
			return failAll(reqs, results, fmt.Errorf("a uid for the shared workspace: %w", err))
		}
		defer e.ReleaseID(id)
		if group[0].WorkdirEmpty {
			err = chownRoot(dir, int(id), int(id))
		} else {
			_, err = chownTree(dir, int(id), int(id), 0)
		}
		if err != nil {
			return failAll(reqs, results, err)
		}
		for _, req := range group {
			req.HostID, req.sharedID = id, true
		}
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.RunStep(ctx, req)
			results[i] = res
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return results, firstErr
}

// failAll closes what the requests would have handed over and makes each
// result internal_error with err.
func failAll(reqs []*StepRequest, results []api.StepResult, err error) ([]api.StepResult, error) {
	for i, req := range reqs {
		if req.HandOver {
			req.closeIO()
		}
		results[i] = api.StepResult{Verdict: api.VerdictInternalError, Message: err.Error()}
	}
	return results, err
}
