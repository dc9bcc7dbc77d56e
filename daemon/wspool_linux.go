package daemon

import (
	"slices"
	"sync"
	"time"
)

// wsPool keeps a few empty workspaces mounted ahead, per size, so that a
// job's mkdir and tmpfs mount are done before it arrives. A job whose size
// has none ready makes its own, as without the pool. A workspace is never
// given to a second job: each one taken is replaced by a fresh one, once
// turn lets it (when the jobs running have let go of the CPUs).
type wsPool struct {
	stateDir string
	keep     int
	logf     func(err error)
	turn     func() // returns when a refill may begin; it may wait, never for long

	mu      sync.Mutex
	ready   map[int64][]*workspace
	filling map[int64]bool
	closed  bool
	wg      sync.WaitGroup
}

// newWSPool keeps keep workspaces ready of each size in sizes; keep 0
// keeps none. Each refill first calls turn, which may be nil.
func newWSPool(stateDir string, keep int, sizes []int64, turn func(), logf func(error)) *wsPool {
	if turn == nil {
		turn = func() {}
	}
	p := &wsPool{stateDir: stateDir, keep: keep, logf: logf, turn: turn, ready: map[int64][]*workspace{}, filling: map[int64]bool{}}
	if keep > 0 {
		p.mu.Lock()
		for _, size := range sizes {
			p.fillLocked(size)
		}
		p.mu.Unlock()
	}
	return p
}

// resize keeps keep workspaces ready of each size in sizes from now on (a
// reload): the ready ones of sizes no longer kept, or past keep, are
// removed; new sizes are filled.
func (p *wsPool) resize(keep int, sizes []int64) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.keep = keep
	var drop []*workspace
	for size, list := range p.ready {
		switch {
		case keep == 0 || !slices.Contains(sizes, size):
			drop = append(drop, list...)
			delete(p.ready, size) // its filler, if one runs, stops
		case len(list) > keep:
			drop = append(drop, list[keep:]...)
			p.ready[size] = list[:keep]
		}
	}
	if keep > 0 {
		for _, size := range sizes {
			p.fillLocked(size)
		}
	}
	p.mu.Unlock()
	for _, ws := range drop {
		if err := ws.remove(); err != nil {
			p.logf(err)
		}
	}
}

// take gives a ready workspace of size, or makes one now when none is.
func (p *wsPool) take(size int64) (*workspace, error) {
	p.mu.Lock()
	if list := p.ready[size]; len(list) > 0 {
		ws := list[len(list)-1]
		p.ready[size] = list[:len(list)-1]
		p.fillLocked(size)
		p.mu.Unlock()
		return ws, nil
	}
	if _, kept := p.ready[size]; kept {
		p.fillLocked(size)
	}
	p.mu.Unlock()
	return newWorkspace(p.stateDir, newID(), size)
}

// fillLocked starts a refill of size unless one runs; p.mu is held.
func (p *wsPool) fillLocked(size int64) {
	if _, ok := p.ready[size]; !ok {
		p.ready[size] = nil
	}
	if p.closed || p.filling[size] || len(p.ready[size]) >= p.keep {
		return
	}
	p.filling[size] = true
	p.wg.Add(1)
	go p.fill(size)
}

// fill makes workspaces of size until keep are ready. A failure is logged
// and the fill stops; the next take starts another.
func (p *wsPool) fill(size int64) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if _, kept := p.ready[size]; p.closed || !kept || len(p.ready[size]) >= p.keep {
			p.filling[size] = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		// A take starts the refill while its job runs: the mkdir and
		// the mount wait until they would not take a CPU from it.
		p.turn()
		ws, err := newWorkspace(p.stateDir, newID(), size)
		if err != nil {
			p.logf(err)
			// Not at once again: the next take retries.
			time.Sleep(10 * time.Millisecond)
			p.mu.Lock()
			p.filling[size] = false
			p.mu.Unlock()
			return
		}
		p.mu.Lock()
		if _, kept := p.ready[size]; p.closed || !kept {
			p.mu.Unlock()
			if err := ws.remove(); err != nil {
				p.logf(err)
			}
			continue
		}
		p.ready[size] = append(p.ready[size], ws)
		p.mu.Unlock()
	}
}

// readyCount is how many workspaces are ready now, of every size.
func (p *wsPool) readyCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, list := range p.ready {
		n += len(list)
	}
	return n
}

// close stops the refills and removes every ready workspace.
func (p *wsPool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for size, list := range p.ready {
		for _, ws := range list {
			if err := ws.remove(); err != nil {
				p.logf(err)
			}
		}
		delete(p.ready, size)
	}
}
