package daemon

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// batch is POST /v1/batch: NDJSON jobs in (or {"jobs": [...]}), NDJSON
// results out in completion order, the summary last. Jobs are read as
// earlier ones finish, at most concurrency at a time.
func (s *server) batch(w http.ResponseWriter, r *http.Request) {
	if s.refuseWhileDraining(w) {
		return
	}
	cfg := &s.d.conf().cfg
	conc := cfg.Concurrency
	if q := r.URL.Query().Get("concurrency"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			s.fail(w, 0, invalid("concurrency: %q is not a positive integer", q))
			return
		}
		conc = min(n, cfg.Concurrency)
	}
	keep, aerr := keepResults(r.URL.Query().Get("keep_results"))
	if aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	rc := http.NewResponseController(w)
	rc.EnableFullDuplex()
	// The answer's header goes out before the body is read, which stops
	// net/http from sending the 100 Continue a client may wait for (curl
	// -T waits a second): it is sent now.
	if strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		w.WriteHeader(http.StatusContinue)
	}
	// The batch stops when its client goes: a body cut short, or an answer
	// that cannot be written, cancels every job of it.
	ctx, cancelBatch := context.WithCancel(r.Context())
	defer cancelBatch()
	caller := peerOf(ctx).uid
	sw := newStreamWriter(w, cancelBatch, batchBacklog, true)
	defer sw.close()
	start := time.Now()
	sum := &api.BatchSummary{Statuses: map[string]int{}, Verdicts: map[string]int{}}
	var sumMu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, conc)

	// The body is read ahead by a goroutine of its own, so that a client
	// that goes away is noticed at once (its body read fails), not only when
	// a slot frees; once the body has been read to its end, the server
	// itself watches the connection and ends ctx.
	// Each line's bytes are held in the budget of bodies in flight until
	// its job is over: a line that does not fit waits.
	type item struct {
		raw   []byte
		where string // "line 3" or "jobs[2]", for its errors
		err   *api.Error
	}
	items := make(chan item, 1024)
	// A client that stops sending while none of its jobs is left to wait
	// for gets an error line; the jobs it sent run to their end.
	body := newIdleBody(r.Body, w, func() bool { return len(sem) > 0 || len(items) > 0 })
	defer body.close()
	go func() {
		defer close(items)
		aerr, ioErr := readBatch(body, cfg.MaxRequestBytes, func(raw []byte, where string, rerr *api.Error) bool {
			if s.bodies.take(ctx, int64(len(raw))) != nil {
				return false
			}
			select {
			case items <- item{raw, where, rerr}:
				return true
			case <-ctx.Done():
				s.bodies.give(int64(len(raw)))
				return false
			}
		})
		if errors.Is(ioErr, errBodyIdle) {
			// The timed-out read also ended the request's context (net/http
			// cancels it on a read error); the answer can still be written,
			// and the loop below writes error lines whatever the context.
			items <- item{nil, "", &api.Error{Code: api.CodeInvalidArgument, Message: ioErr.Error() + "; the batch ends here"}}
			return
		} else if ioErr != nil {
			cancelBatch()
			return
		}
		if aerr != nil {
			select {
			case items <- item{nil, "", aerr}:
			case <-ctx.Done():
			}
		}
	}()

	index := 0
	for it := range items {
		i := index
		index++
		held := int64(len(it.raw))
		line := api.BatchLine{Index: &i}
		var cj *checkedJob
		aerr := it.err
		if aerr == nil {
			var job *api.Job
			if job, aerr = decodeJob(it.raw); aerr == nil {
				line.Key = job.Key
				cj, aerr = s.d.check(job)
			}
		}
		if aerr == nil {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				s.bodies.give(held)
				continue // drain: the reader stops on ctx too
			}
			var adm *admission
			if adm, aerr = s.d.admit(ctx, caller, cj, true); aerr != nil {
				<-sem
			} else {
				adm.unkept = !keep.keeps(cj.job.ID)
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer func() { <-sem }()
					defer s.bodies.give(held)
					defer adm.finish()
					res := adm.run(nil)
					line.Result = res
					sumMu.Lock()
					sum.Total++
					sum.Statuses[res.Status]++
					sum.Verdicts[string(jobVerdict(res))]++
					sumMu.Unlock()
					sw.write(line)
					if adm.unkept {
						// Its client has the result: none is kept, so
						// that the daemon's memory stays flat however
						// long the batch.
						s.d.reg.drop(adm.job)
					}
				}()
				continue
			}
		}
		s.bodies.give(held)
		line.Error = aerr
		if it.where != "" {
			line.Error = atBatchItem(it.where, aerr)
		}
		sumMu.Lock()
		sum.Total++
		sum.Invalid++
		sumMu.Unlock()
		sw.write(line)
	}
	wg.Wait()
	sum.WallMS = ms(time.Since(start))
	sw.write(api.BatchLine{Summary: sum})
}
