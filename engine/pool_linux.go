package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/nsjail"
)

// sandbox is one single-use sandbox: its host uid, its cgroups and its
// init. Made ahead of a request (warm) or for it (cold), it runs one
// command and is then torn down.
type sandbox struct {
	proc   *nsjail.Process
	grp    *cgroup.Group
	hostID uint32
	ownID  bool // the uid was acquired for this sandbox and goes back with it
	marked bool // its cgroup's CPU counters were marked (MarkStart) once it was ready
}

// newSandbox makes a sandbox for profile, under hostID (zero: one of its
// own): uid, cgroups without limits, and an init that builds the root and
// then waits for its command. It does not wait for the root to be built.
func (e *Engine) newSandbox(profile *Profile, hostID uint32) (sb *sandbox, err error) {
	sb = &sandbox{hostID: hostID}
	defer func() {
		if err != nil {
			sb.teardown(e)
			sb = nil
		}
	}()
	if sb.hostID == 0 {
		if sb.hostID, err = e.ids.acquire(); err != nil {
			return sb, err
		}
		sb.ownID = true
	}
	name := fmt.Sprintf("%s%d", e.prefix, e.seq.Add(1))
	// The profile's limits now: a step that keeps them writes nothing.
	var files *cgroup.Handover
	if sb.grp, files, err = e.cgroups.NewSandbox(name, e.cgroupLimits(profile.Defaults), int(e.initID), int(e.initID)); err != nil {
		return sb, fmt.Errorf("create cgroup: %w", err)
	}
	defer files.Close()
	sb.proc, err = nsjail.Prepare(e.spec(profile, sb.hostID), nsjail.Files{Join: files.Join, Program: files.Program, Init: files.Init})
	return sb, err
}

// cgroupLimits are the cgroup limits of a step's limits. Without the
// host's CPU controller (Engine.CPULimit) the cpus limit is left out.
func (e *Engine) cgroupLimits(lim api.Limits) cgroup.Limits {
	cl := cgroup.Limits{MemoryBytes: lim.MemoryBytes, PIDs: lim.PIDs}
	if lim.CPUs > 0 && e.CPULimit() {
		cl.CPUQuota = CPUQuota(lim.CPUs)
	}
	return cl
}

// CPUQuota is the CPU controller's quota per cgroup.CPUPeriod for a rate
// of cpus CPUs, in whole microseconds and no less than the kernel takes.
func CPUQuota(cpus float64) time.Duration {
	us := math.Round(cpus * float64(cgroup.CPUPeriod.Microseconds()))
	return max(time.Duration(us)*time.Microsecond, cgroup.MinCPUQuota)
}

// CPULimit says whether steps' cpus limits are enforced: the host offers
// the CPU controller (cgroup.Features.CPULimit).
func (e *Engine) CPULimit() bool { return e.cgroups.Features().CPULimit }

// teardown ends whatever of the sandbox is left: its processes, cgroups
// and uid. Errors go to the engine's log function; nothing is retried.
func (sb *sandbox) teardown(e *Engine) {
	if sb.proc != nil {
		sb.proc.Kill()
		<-sb.proc.Done()
	}
	if sb.grp != nil {
		if err := sb.grp.Destroy(); err != nil {
			e.logf("sandbox teardown: %v", err)
		}
	}
	if sb.ownID {
		e.ids.release(sb.hostID)
	}
}

// retire tears a used sandbox down in the background, so that a step's
// result does not wait for it. Close waits for every retired sandbox.
func (e *Engine) retire(sb *sandbox) {
	e.retiring.Add(1)
	go func() {
		defer e.retiring.Done()
		// Killing the init takes its namespaces down, and the cgroups
		// go after it: work that would take a CPU from the step's answer,
		// which its job's hold covers until it is out.
		e.BackgroundTurn()
		sb.teardown(e)
	}()
}

// BackgroundTurn returns when work done for no request in particular (a
// used sandbox's or workspace's teardown, a workspace refill) may begin:
// once no job holds the pools, or after backgroundWait at most, so that
// it never waits behind a long job.
func (e *Engine) BackgroundTurn() { e.gate.waitIdle(backgroundWait) }

// backgroundWait bounds how long background work waits for the jobs to let
// go of the CPUs before it begins anyway.
const backgroundWait = 20 * time.Millisecond

// readyWait bounds how long a warm sandbox may take to be built.
const readyWait = 30 * time.Second

// warmUp makes a sandbox and waits until its root is built.
func (e *Engine) warmUp(profile *Profile) (*sandbox, error) {
	sb, err := e.newSandbox(profile, 0)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case ev, ok := <-sb.proc.Events():
		if ok && ev.Kind == nsjail.Ready {
			// The program's process waits, idle, in its cgroups: its CPU
			// counters are the run's starting point already.
			if err = sb.grp.MarkStart(); err != nil {
				break
			}
			sb.marked = true
			return sb, nil
		}
		if ok && ev.Kind == nsjail.Failed {
			err = ev.Err
		} else {
			err = fmt.Errorf("unexpected event %v before the sandbox was ready", ev.Kind)
		}
	case <-t.C:
		err = fmt.Errorf("the sandbox was not ready within %v", readyWait)
	}
	sb.teardown(e)
	return nil, err
}

// pool keeps warm sandboxes of one profile: size fillers each make one,
// hand it to a taker, and make the next. A request then pays for none
// of the namespaces, cgroups and mounts, only for its own command.
type pool struct {
	e       *Engine
	profile *Profile
	size    int
	ready   chan warmResult
	stop    chan struct{}
	wg      sync.WaitGroup

	waited  atomic.Uint64 // takes that found no sandbox ready
	holding atomic.Int64  // fillers holding a ready sandbox
	ahead   atomic.Int64  // jobs with steps left (Ahead): the fillers may build while jobs run
}

// warmResult is a warm sandbox, or why one could not be made: a taker gets
// the error, so that a profile that cannot be built fails its requests
// with the reason instead of leaving them waiting.
type warmResult struct {
	sb  *sandbox
	err error
	at  time.Time // when the try failed
}

// failPause is how long a filler waits after it failed to make a sandbox.
const failPause = 200 * time.Millisecond

func newPool(e *Engine, profile *Profile, size int) *pool {
	p := &pool{e: e, profile: profile, size: size, ready: make(chan warmResult), stop: make(chan struct{})}
	p.wg.Add(size)
	for range size {
		go p.fill()
	}
	return p
}

func (p *pool) fill() {
	defer p.wg.Done()
	for {
		if !p.e.gate.waitTurn(p.stop, &p.ahead) {
			return
		}
		sb, err := p.e.warmUp(p.profile)
		if err != nil {
			p.e.logf("warm sandbox for profile %q: %v", p.profile.Name, err)
		}
		if sb != nil {
			p.holding.Add(1)
		}
		select {
		case p.ready <- warmResult{sb, err, time.Now()}:
			if sb != nil {
				p.holding.Add(-1)
			}
		case <-p.stop:
			if sb != nil {
				p.holding.Add(-1)
				sb.teardown(p.e)
			}
			return
		}
		if err != nil {
			select {
			case <-time.After(failPause):
			case <-p.stop:
				return
			}
		}
	}
}

// take hands out a warm sandbox, waiting for one if none is ready.
func (p *pool) take(ctx context.Context) (*sandbox, error) {
	waited := false
	for {
		var r warmResult
		select {
		case r = <-p.ready:
		default:
			if !waited {
				p.waited.Add(1)
				waited = true
			}
			p.e.gate.hunger(1)
			select {
			case r = <-p.ready:
			case <-ctx.Done():
			case <-p.stop:
			}
			p.e.gate.hunger(-1)
			if r.sb == nil && r.err == nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, errPoolClosed
			}
		}
		if r.err != nil {
			if time.Since(r.at) > failPause {
				// A filler held this failure while nobody asked: its
				// cause may be gone. The filler tries again.
				continue
			}
			return nil, r.err
		}
		if !r.sb.proc.Alive() {
			// Its init died while it waited (killed from outside, or with
			// its helper): take another.
			r.sb.teardown(p.e)
			continue
		}
		return r.sb, nil
	}
}

var errPoolClosed = errors.New("the engine is shutting down")

// close stops the fillers and tears down the sandboxes they hold.
func (p *pool) close() {
	p.stopFill()
	p.wg.Wait()
}

// stopFill tells the fillers to stop, and wakes those waiting for their
// turn. A taker waiting on the pool gets errPoolClosed.
func (p *pool) stopFill() {
	close(p.stop)
	p.e.gate.wake()
}

// StartPools keeps size warm sandboxes ready for each profile, so that a
// step that does not ask for a particular uid starts in one instead of
// building its own. Close stops them. Without pools every step builds its
// sandbox when it starts.
func (e *Engine) StartPools(profiles []*Profile, size int) {
	if size <= 0 {
		return
	}
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	if e.pools == nil {
		e.pools = map[string]*pool{}
	}
	for _, prof := range profiles {
		if _, ok := e.pools[prof.Name]; !ok {
			e.pools[prof.Name] = newPool(e, prof, size)
		}
	}
}

// ReplacePools makes the pools those of profiles, size warm sandboxes
// each, as after a reload of the daemon's config: a pool whose profile is
// among them (the same *Profile) and whose size is size stays as it is;
// every other one is retired, its warm sandboxes torn down in the
// background (Close waits for that); profiles without a pool get one. A
// step of a retired pool's profile that is running or waiting for a
// sandbox is untouched: it builds its sandbox itself. After Close it does
// nothing.
func (e *Engine) ReplacePools(profiles []*Profile, size int) {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	if e.closed.Load() {
		return
	}
	keep := map[string]*Profile{}
	if size > 0 {
		for _, prof := range profiles {
			keep[prof.Name] = prof
		}
	}
	for name, p := range e.pools {
		if keep[name] == p.profile && p.size == size {
			continue
		}
		delete(e.pools, name)
		p.stopFill()
		e.retiring.Add(1)
		go func() {
			defer e.retiring.Done()
			p.wg.Wait()
		}()
	}
	if size <= 0 {
		return
	}
	if e.pools == nil {
		e.pools = map[string]*pool{}
	}
	for _, prof := range profiles {
		if _, ok := e.pools[prof.Name]; !ok {
			e.pools[prof.Name] = newPool(e, prof, size)
		}
	}
}

// poolFor is the pool of a profile, or nil.
func (e *Engine) poolFor(profile *Profile) *pool {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	p := e.pools[profile.Name]
	if p != nil && p.profile != profile {
		return nil // the same name, another recipe: never hand it out
	}
	return p
}

// PoolWaits counts the steps that found no warm sandbox ready and waited.
func (e *Engine) PoolWaits() uint64 {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	var n uint64
	for _, p := range e.pools {
		n += p.waited.Load()
	}
	return n
}

// WarmReady counts the warm sandboxes ready for a step now, over every
// profile.
func (e *Engine) WarmReady() int {
	e.poolsMu.Lock()
	defer e.poolsMu.Unlock()
	n := 0
	for _, p := range e.pools {
		n += int(p.holding.Load())
	}
	return n
}

// Close stops the pools, tears down their warm sandboxes, waits until the
// sandboxes of finished steps are torn down, and lets go of the rest: the
// cgroup subtree and its lock, and the uid lock file. The subtree stays
// where runs are left in it (a step still running, which Close does not
// touch, or another sandboxd process's): that is the error. Calls after
// the first do nothing.
func (e *Engine) Close() error {
	if !e.closed.CompareAndSwap(false, true) {
		return nil
	}
	e.gate.close()
	e.poolsMu.Lock()
	pools := e.pools
	e.pools = nil
	e.poolsMu.Unlock()
	for _, p := range pools {
		p.close()
	}
	e.retiring.Wait()
	if e.exits != nil {
		e.exits.Close()
	}
	var err error
	if e.cgroups != nil {
		err = e.cgroups.Close()
	}
	if e.ids != nil {
		e.ids.close()
	}
	return err
}

// logf reports what the engine cannot return to anyone.
func (e *Engine) logf(format string, args ...any) {
	if e.log != nil {
		e.log(fmt.Sprintf(format, args...))
		return
	}
	fmt.Fprintf(os.Stderr, "sandboxd: "+format+"\n", args...)
}

// Hold tells the pools that a job runs until release is called: they make
// no new sandbox meanwhile unless a step waits for one. On two cores the
// fork, namespaces and root of a refill would otherwise take the CPUs from
// the very request that emptied the pool; made between jobs, they cost a
// request nothing.
func (e *Engine) Hold() (release func()) {
	e.gate.add(1)
	var once sync.Once
	return func() { once.Do(func() { e.gate.add(-1) }) }
}

// Ahead tells profile's pool that a job with more than one step runs
// until release is called: its fillers may build while jobs run, as though
// a step waited, so that each next step finds its sandbox ready instead of
// waiting for one built on its path. Without a pool it does nothing.
func (e *Engine) Ahead(profile *Profile) (release func()) {
	p := e.poolFor(profile)
	if p == nil {
		return func() {}
	}
	p.ahead.Add(1)
	e.gate.wake()
	var once sync.Once
	return func() { once.Do(func() { p.ahead.Add(-1) }) }
}

// lendAfter is how long a program runs before its job's hold on the pools
// is lent to them: a short program ends before, and its result does not
// wait behind a refill; a long one leaves them the CPU it does not use.
// Engine.lendAfter holds it (a test sets it longer, so that a loaded host's
// slow /bin/true does not lend).
const lendAfter = 2 * time.Millisecond

// lend gives up one job's hold after d, until the returned function takes
// it back.
func (g *gate) lend(d time.Duration) (takeBack func()) {
	var mu sync.Mutex
	lent, over := false, false
	t := time.AfterFunc(d, func() {
		mu.Lock()
		defer mu.Unlock()
		if !over {
			lent = true
			g.add(-1)
		}
	})
	return func() {
		t.Stop()
		mu.Lock()
		defer mu.Unlock()
		over = true
		if lent {
			g.add(1)
		}
	}
}

// gate holds the pools' fillers back while jobs run and no step waits for
// a sandbox.
type gate struct {
	mu     sync.Mutex
	cond   *sync.Cond
	busy   int // jobs running
	hungry int // steps waiting for a warm sandbox
	closed bool
}

func (g *gate) lock() {
	g.mu.Lock()
	if g.cond == nil {
		g.cond = sync.NewCond(&g.mu)
	}
}

func (g *gate) add(n int) {
	g.lock()
	g.busy += n
	if g.busy == 0 {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

func (g *gate) hunger(n int) {
	g.lock()
	g.hungry += n
	if g.hungry > 0 {
		g.cond.Broadcast()
	}
	g.mu.Unlock()
}

// waitTurn returns when a filler may make a sandbox: no job runs, a step
// waits for one, or a job of its pool has steps left (ahead, whose rise
// wakes the waiters). False: the engine is closing, or stop (the filler's
// pool is retired; wake tells the waiters to look) is closed.
func (g *gate) waitTurn(stop <-chan struct{}, ahead *atomic.Int64) bool {
	g.lock()
	defer g.mu.Unlock()
	for g.busy > 0 && g.hungry == 0 && ahead.Load() == 0 && !g.closed && !isClosed(stop) {
		g.cond.Wait()
	}
	return !g.closed && !isClosed(stop)
}

// wake makes every waiter look at its conditions again.
func (g *gate) wake() {
	g.lock()
	g.cond.Broadcast()
	g.mu.Unlock()
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// waitIdle returns once no job holds the gate, the gate is closed, or max
// has passed.
func (g *gate) waitIdle(max time.Duration) {
	deadline := time.Now().Add(max)
	t := time.AfterFunc(max, func() {
		g.lock()
		g.cond.Broadcast()
		g.mu.Unlock()
	})
	defer t.Stop()
	g.lock()
	defer g.mu.Unlock()
	for g.busy > 0 && !g.closed && time.Now().Before(deadline) {
		g.cond.Wait()
	}
}

func (g *gate) close() {
	g.lock()
	g.closed = true
	g.cond.Broadcast()
	g.mu.Unlock()
}
