package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"syscall"
	"time"
)

// Kill sends SIGKILL to every process of the sandbox, in all its groups, and
// returns once none is left. It waits at most about 2 s; if processes remain
// the error wraps ErrSurvivors and lists them. Killing an empty or removed
// sandbox is not an error.
//
// How, by mode:
//
//	cgroup2 with cgroup.kill:  write "1" to S/<name>/cgroup.kill
//	cgroup2 without it:        cgroup.freeze 1, SIGKILL each pid, cgroup.freeze 0 at the end
//	pure v1:                   freezer.state FROZEN, SIGKILL each pid, THAWED; repeat
//
// The kill is repeated until S/<name>/cgroup.events says "populated 0" and
// the v1 groups' cgroup.procs are empty. On hybrid, a process found only in
// v1 groups (it did not join the unified leaf) is signalled directly.
func (g *Group) Kill() error {
	if g == nil {
		return nil
	}
	if err := g.kill(); err != nil {
		return fmt.Errorf("cgroup: kill %s: %w", g.name, err)
	}
	return nil
}

func (g *Group) kill() (err error) {
	m := g.m
	deadline := time.Now().Add(m.killTimeout)
	pause := 20 * time.Microsecond
	v2Frozen := false
	defer func() {
		if v2Frozen {
			if uerr := m.k.writeFile(path.Join(g.unified, "cgroup.freeze"), "0"); uerr != nil && !isNotExist(uerr) && err == nil {
				err = uerr
			}
		}
	}()
	for {
		// Look before signalling: at the end of a step its processes are
		// usually gone already, and then a Kill is only reads.
		busy, err := g.populated()
		if err != nil {
			return err
		}
		var strays []int
		if !busy {
			// Processes the cgroup2 kill or the freezer cannot reach:
			// they sit only in v1 groups, outside the contract.
			if strays, err = g.v1PIDs(); err != nil {
				return err
			}
			if len(strays) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			left, _ := g.allPIDs()
			return fmt.Errorf("%w after %v: pids %v", ErrSurvivors, m.killTimeout, left)
		}
		if busy {
			err = g.signalRun(&v2Frozen, deadline)
		} else {
			err = g.signal(strays)
		}
		if err != nil {
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, 5*time.Millisecond)
	}
}

// signalRun kills through the sandbox's main group: cgroup.kill, or a frozen
// cgroup2 group's pids one by one, or (pure v1) a freezer round.
func (g *Group) signalRun(v2Frozen *bool, deadline time.Time) error {
	m := g.m
	if g.unified != "" {
		if m.features.CgroupKill {
			if err := m.k.writeFile(path.Join(g.unified, "cgroup.kill"), "1"); err != nil && !isNotExist(err) {
				return err
			}
			return nil
		}
		if m.hasFreeze && !*v2Frozen {
			// A frozen group cannot fork while we collect its pids;
			// SIGKILL still ends frozen cgroup2 tasks.
			if err := m.k.writeFile(path.Join(g.unified, "cgroup.freeze"), "1"); err == nil {
				*v2Frozen = true
			} else if !isNotExist(err) {
				return err
			}
		}
		pids, err := g.treePIDs(g.unified)
		if err != nil {
			return err
		}
		return g.signal(pids)
	}
	if g.frzDir != "" {
		return g.freezerRound(deadline)
	}
	return nil
}

// freezerRound is one pass of the v1 freezer kill: freeze, so nothing forks
// or exits under us while we read the pids; signal them all; thaw, because
// v1 frozen tasks cannot act on SIGKILL.
func (g *Group) freezerRound(deadline time.Time) error {
	k := g.m.k
	state := path.Join(g.frzDir, "freezer.state")
	if err := k.writeFile(state, "FROZEN"); err != nil {
		if isNotExist(err) {
			return nil
		}
		return err
	}
	// FREEZING turns into FROZEN once every task stopped; one stuck in the
	// kernel can delay that, so we wait a little and go on regardless.
	wait := time.Now().Add(50 * time.Millisecond)
	if wait.After(deadline) {
		wait = deadline
	}
	for pause := 10 * time.Microsecond; ; pause = min(2*pause, time.Millisecond) {
		data, err := k.readFile(state)
		if err != nil || bytes.HasPrefix(bytes.TrimSpace(data), []byte("FROZEN")) || time.Now().After(wait) {
			break
		}
		time.Sleep(pause)
	}
	pids, err := g.m.readPIDs(path.Join(g.frzDir, "cgroup.procs"))
	if err == nil {
		err = g.signal(pids)
	}
	if terr := k.writeFile(state, "THAWED"); terr != nil && !isNotExist(terr) && err == nil {
		err = terr
	}
	return err
}

func (g *Group) signal(pids []int) error {
	for _, p := range pids {
		if err := g.m.k.kill(p); err != nil {
			return err
		}
	}
	return nil
}

// populated reports whether the sandbox's cgroup2 group or (pure v1) its freezer
// group still holds a process.
func (g *Group) populated() (bool, error) {
	if g.unified != "" {
		file := path.Join(g.unified, "cgroup.events")
		data, err := g.m.k.readFile(file)
		if err != nil {
			if isNotExist(err) {
				return false, nil
			}
			return false, err
		}
		v, err := keyedValue(data, "populated")
		if err != nil {
			return false, fmt.Errorf("parse %s: %w", file, err)
		}
		return v != 0, nil
	}
	if g.frzDir != "" {
		pids, err := g.m.readPIDs(path.Join(g.frzDir, "cgroup.procs"))
		return len(pids) > 0, err
	}
	return false, nil
}

// v1PIDs lists the processes in the sandbox's v1 groups other than the freezer.
// Our v1 sandbox groups are leaves, so cgroup.procs of each is the whole story.
func (g *Group) v1PIDs() ([]int, error) {
	var all []int
	for _, d := range g.v1 {
		if d == g.frzDir {
			continue
		}
		pids, err := g.m.readPIDs(path.Join(d, "cgroup.procs"))
		if err != nil {
			return nil, err
		}
		for _, p := range pids {
			if !slices.Contains(all, p) {
				all = append(all, p)
			}
		}
	}
	return all, nil
}

// treePIDs lists the processes in dir and every group beneath it.
func (g *Group) treePIDs(dir string) ([]int, error) {
	pids, err := g.m.readPIDs(path.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	subs, err := g.m.k.subdirs(dir)
	if err != nil {
		if isNotExist(err) {
			return pids, nil
		}
		return nil, err
	}
	for _, s := range subs {
		more, err := g.treePIDs(path.Join(dir, s))
		if err != nil {
			return nil, err
		}
		pids = append(pids, more...)
	}
	return pids, nil
}

// allPIDs lists every process left in any of the sandbox's groups, for errors.
func (g *Group) allPIDs() ([]int, error) {
	var all []int
	for _, d := range g.dirs() {
		pids, err := g.treePIDs(d)
		if err != nil {
			return all, err
		}
		for _, p := range pids {
			if !slices.Contains(all, p) {
				all = append(all, p)
			}
		}
	}
	slices.Sort(all)
	return all, nil
}

// dirs lists the sandbox's top directories: cgroup2 first, then v1.
func (g *Group) dirs() []string {
	var ds []string
	if g.unified != "" {
		ds = append(ds, g.unified)
	}
	return append(ds, g.v1...)
}

// Destroy kills the sandbox and removes every directory of it, children first,
// with plain rmdir. The kill (see Kill) happens only when a group refuses
// removal because it still holds processes, so destroying a sandbox that was
// already killed, or that ended by itself, costs only the rmdirs. It is
// idempotent, and nil-safe so that it may follow a failed NewSandbox. After
// Destroy the stats methods fail.
func (g *Group) Destroy() error {
	if g == nil {
		return nil
	}
	if err := g.destroy(); err != nil {
		return fmt.Errorf("cgroup: destroy %s: %w", g.name, err)
	}
	return nil
}

func (g *Group) destroy() error {
	// A sandbox whose processes are gone needs nothing but rmdir; a busy group
	// refuses with EBUSY, and then we kill and try again.
	err := g.removeDirs(time.Time{}, true)
	if err != nil && isBusy(err) {
		kerr := g.kill()
		err = g.removeDirs(time.Now().Add(rmdirBusyWait), false)
		if kerr != nil {
			err = errors.Join(fmt.Errorf("kill: %w", kerr), err)
		}
	}
	g.closeFiles()
	return err
}

// removeDirs removes the sandbox's directories: the cgroup2 group, then the
// v1 groups. With firstOnly it stops at the first error.
func (g *Group) removeDirs(busyUntil time.Time, firstOnly bool) error {
	var dirs []string
	if g.unified != "" {
		dirs = append(dirs, g.unified)
	}
	dirs = append(dirs, g.v1...)
	var errs []error
	for _, d := range dirs {
		if err := g.removeTree(d, busyUntil); err != nil {
			if firstOnly {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeTree removes dir with plain rmdir. When the kernel says EBUSY
// because of child groups (a sandbox left by another version, say), those go
// first; when it is busy with processes, rmdir is retried until busyUntil.
// A group already gone is fine.
func (g *Group) removeTree(dir string, busyUntil time.Time) error {
	k := g.m.k
	pause := 50 * time.Microsecond
	for {
		err := k.rmdir(dir)
		switch {
		case err == nil || isNotExist(err):
			return nil
		case !isBusy(err) && !errors.Is(err, syscall.ENOTEMPTY):
			return err
		}
		subs, serr := k.subdirs(dir)
		if serr == nil && len(subs) > 0 {
			for _, s := range subs {
				if err := g.removeTree(path.Join(dir, s), busyUntil); err != nil {
					return err
				}
			}
			continue
		}
		if time.Now().After(busyUntil) {
			return err
		}
		time.Sleep(pause)
		pause = min(2*pause, 10*time.Millisecond)
	}
}
