package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"
)

// Handover is what a sandbox's init and program need of its cgroups, as
// files opened by this (root) process: the kernel checks the opener's
// credentials, so they work from inside the sandbox's user and cgroup
// namespaces. The caller passes them on (nsjail.Files) and then closes them.
type Handover struct {
	// Init is the cgroup2 directory the init is cloned into
	// (clone3 with CLONE_INTO_CGROUP): the Manager's group of inits, outside
	// every sandbox's groups. nil on pure v1, where the init stays in the
	// caller's groups.
	Init *os.File
	// Program is the sandbox's cgroup2 group, as a directory the init clones
	// the program's process into (CLONE_INTO_CGROUP). nil on pure v1.
	Program *os.File
	// Join are the "tasks" files of the sandbox's v1 groups, opened
	// write-only: the program's process, still single-threaded, writes "0"
	// to each before exec. Empty on pure v2.
	Join []*os.File
}

// Close closes every file of h; h may be nil.
func (h *Handover) Close() error {
	if h == nil {
		return nil
	}
	var errs []error
	for _, f := range append([]*os.File{h.Init, h.Program}, h.Join...) {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	h.Init, h.Program, h.Join = nil, nil, nil
	return errors.Join(errs...)
}

// NewSandbox makes the groups of sandbox name with limits lim (see the
// layouts in the package doc) and readies them for an init that runs as
// initUID:initGID on the host. It returns the sandbox's Group and the files
// to hand over; the caller closes h once the init holds its copies, and
// destroys g when the sandbox ends. On failure nothing of the sandbox is
// left: no group, no open file.
//
// name must be a single path element of letters, digits and "-_." not
// already in use.
func (m *Manager) NewSandbox(name string, lim Limits, initUID, initGID int) (g *Group, h *Handover, err error) {
	if g, err = m.create(name, lim); err != nil {
		return nil, nil, err
	}
	h = &Handover{}
	defer func() {
		if err != nil {
			// No process can be inside yet: Destroy is plain rmdirs.
			h.Close()
			if derr := g.Destroy(); derr != nil {
				err = errors.Join(err, derr)
			}
			g, h = nil, nil
		}
	}()
	// Everything below needs the groups and must be done before the init
	// is cloned; among themselves these steps may go in any order.
	if err = g.preopen(); err != nil {
		return
	}
	if err = g.delegateJoin(initUID, initGID); err != nil {
		return
	}
	if h.Join, err = g.threadJoinFiles(); err != nil {
		return
	}
	if h.Program, err = g.openDir(g.prog, "program"); err != nil {
		return
	}
	h.Init, err = g.initDir()
	return
}

// delegateJoin lets uid and gid (the init's) move a process from the inits'
// cgroup2 group into the program's: the kernel asks for write access to
// cgroup.procs of the destination and of the common ancestor, S. A process
// can name only processes in its own pid namespace, so an init (its
// sandbox's pid 1) can move none but its own sandbox's. Nothing else is
// theirs; pure v1 has nothing to give.
func (g *Group) delegateJoin(uid, gid int) error {
	if g.unified == "" {
		return nil
	}
	k := g.m.k
	// S is given once, but looked at every time: another sandboxd on the
	// same subtree may have removed it and made it again.
	subtree := path.Join(path.Dir(g.unified), "cgroup.procs")
	if o, err := k.owner(subtree); err != nil || o != [2]int{uid, gid} {
		if err := k.chown(subtree, uid, gid); err != nil {
			return fmt.Errorf("cgroup: delegate %s: %w", g.name, err)
		}
	}
	if err := k.chown(path.Join(g.prog, "cgroup.procs"), uid, gid); err != nil {
		return fmt.Errorf("cgroup: delegate %s: %w", g.name, err)
	}
	return nil
}

// threadJoinFiles opens the "tasks" file of each v1 group, write-only. The
// program's process enters the cgroup2 group at its clone and joins only
// the v1 groups, thread-wise: for a single-threaded process a "tasks" write
// is the same move as a cgroup.procs write, without the kernel's wait for
// an RCU grace period under the global cgroup mutex, which would hold up
// every other sandbox's forks, mkdirs and rmdirs meanwhile.
func (g *Group) threadJoinFiles() ([]*os.File, error) {
	return g.openWriteOnly(g.v1, "tasks")
}

// openWriteOnly opens file in each of dirs for writing; on failure it
// closes what it opened.
func (g *Group) openWriteOnly(dirs []string, file string) ([]*os.File, error) {
	files := make([]*os.File, 0, len(dirs))
	for _, d := range dirs {
		f, err := g.m.k.openFile(path.Join(d, file), os.O_WRONLY)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("cgroup: join files of %s: %w", g.name, err)
		}
		files = append(files, f)
	}
	return files, nil
}

// initDir opens the inits' cgroup2 group (see Group.init) as a directory,
// making it again when another sandboxd on the same subtree removed it;
// (nil, nil) on pure v1.
func (g *Group) initDir() (*os.File, error) {
	f, err := g.openDir(g.init, "init")
	if err != nil && isNotExist(err) {
		if merr := g.m.k.mkdir(g.init); merr == nil || errors.Is(merr, fs.ErrExist) {
			f, err = g.openDir(g.init, "init")
		}
	}
	return f, err
}

// openDir opens a cgroup2 directory for CLONE_INTO_CGROUP; (nil, nil) when
// there is none (dir is "").
func (g *Group) openDir(dir, role string) (*os.File, error) {
	if dir == "" {
		return nil, nil
	}
	f, err := g.m.k.openFile(dir, os.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, fmt.Errorf("cgroup: %s dir of %s: %w", role, g.name, err)
	}
	return f, nil
}
