package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
)

// cgroupFloor is the namespace floor plus the cgroups that every run needs
// as well: each run gets a group of its own in every hierarchy sandboxd
// uses on this host (three on a hybrid one: cgroup2, v1 memory, v1 pids),
// made with the default profile's limits, joined, read and removed as the
// daemon does it, and nothing else. No mounts, seccomp, init or
// daemon: what the kernel charges for fresh namespaces and fresh cgroups
// together, spawned as the namespace floor is (a fork of this Go program,
// dearer than the helper's clones a sandbox starts from).
type cgroupFloor struct {
	m    *cgroup.Manager
	lim  cgroup.Limits
	seq  atomic.Int64
	home []*os.File // "tasks" of this program's own group in each v1 hierarchy

	// Groups are removed in the background, as the daemon removes a used
	// sandbox's; wait collects them (and their first error) before a
	// block's CPU is read.
	removing sync.WaitGroup
	mu       sync.Mutex
	err      error
}

// openCgroupFloor makes the subtree the floor's run groups go in, beside
// the daemon's, with the limits of the daemon's default profile.
func openCgroupFloor(ctx context.Context, d *daemon) (*cgroupFloor, error) {
	info, err := d.client.Info(ctx)
	if err != nil {
		return nil, err
	}
	// A job that names no profile gets "default", which always exists.
	i := slices.IndexFunc(info.Profiles, func(p api.ProfileInfo) bool { return p.Name == "default" })
	if i < 0 {
		return nil, errors.New("the daemon lists no default profile")
	}
	def := info.Profiles[i].Defaults
	m, err := cgroup.Open(cgroup.Config{Subtree: fmt.Sprintf("sandboxd-bench-floor-%d", os.Getpid())})
	if err != nil {
		return nil, err
	}
	f := &cgroupFloor{m: m, lim: cgroup.Limits{MemoryBytes: def.MemoryBytes, PIDs: def.PIDs}}
	// Our own group in a hierarchy is the one our subtree is made in.
	for key, dir := range m.Paths() {
		if key == "unified" {
			continue
		}
		h, err := os.OpenFile(filepath.Join(filepath.Dir(dir), "tasks"), os.O_WRONLY, 0)
		if err != nil {
			f.close()
			return nil, err
		}
		f.home = append(f.home, h)
	}
	return f, nil
}

// runner runs argv in fresh namespaces (floorAttr) and a fresh group. The
// process is cloned straight into the cgroup2 group; the v1 groups it
// inherits from the thread that forks it, which joins them just before
// (writing "0" to their "tasks" files moves the writing thread only, as a
// sandbox's program joins them) and goes back to this program's own groups
// just after. Writing another process's pid there instead would take the
// kernel's lock on every thread group, with its wait for an RCU grace
// period: a cost that sandboxd does not pay.
func (f *cgroupFloor) runner(argv []string) func(context.Context) error {
	return func(context.Context) error {
		g, err := f.m.Create(fmt.Sprintf("floor-%d", f.seq.Add(1)), f.lim)
		if err != nil {
			return err
		}
		f.removing.Add(1)
		defer func() {
			go func() {
				defer f.removing.Done()
				if err := g.Destroy(); err != nil {
					f.fail(err)
				}
			}()
		}()
		dir, err := g.ProgramDir()
		if err != nil {
			return err
		}
		if dir != nil {
			defer dir.Close()
		}
		tasks, err := g.ThreadJoinFiles()
		if err != nil {
			return err
		}
		defer func() {
			for _, t := range tasks {
				t.Close()
			}
		}()
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = plainEnv
		cmd.SysProcAttr = floorAttr()
		if dir != nil {
			cmd.SysProcAttr.UseCgroupFD = true
			cmd.SysProcAttr.CgroupFD = int(dir.Fd())
		}
		if err := f.startIn(cmd, tasks); err != nil {
			return err
		}
		if err := cmd.Wait(); err != nil {
			return err
		}
		_, err = g.Stats()
		return err
	}
}

// zero, written to a "tasks" file, moves the thread that writes it.
var zero = []byte("0")

// startIn starts cmd from a thread in the groups of tasks, then brings the
// thread home. A thread that cannot come back is not reused: it stays
// locked to this goroutine, and Go ends it when the goroutine ends.
func (f *cgroupFloor) startIn(cmd *exec.Cmd, tasks []*os.File) error {
	runtime.LockOSThread()
	var err error
	for _, t := range tasks {
		if _, werr := t.Write(zero); werr != nil {
			err = fmt.Errorf("join %s: %w", t.Name(), werr)
			break
		}
	}
	if err == nil {
		err = cmd.Start()
	}
	if herr := f.goHome(); herr != nil {
		if cmd.Process != nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
		return herr
	}
	runtime.UnlockOSThread()
	return err
}

// goHome moves the calling thread back to this program's own v1 groups.
func (f *cgroupFloor) goHome() error {
	for _, h := range f.home {
		if _, err := h.Write(zero); err != nil {
			return fmt.Errorf("back to %s: %w", h.Name(), err)
		}
	}
	return nil
}

func (f *cgroupFloor) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// wait returns once every group of a finished run is removed, with the
// first error a removal had.
func (f *cgroupFloor) wait() error {
	f.removing.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// close removes the subtree.
func (f *cgroupFloor) close() error {
	for _, h := range f.home {
		h.Close()
	}
	if err := f.wait(); err != nil {
		return err
	}
	return f.m.Close()
}
