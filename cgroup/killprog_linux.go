package cgroup

import (
	"fmt"
	"path"
	"time"
)

// KillProgram sends SIGKILL to the processes of the program's groups only,
// sparing the init so that it sees the program's process die and reports
// how. It does not wait; Kill, afterwards, ends everything and waits.
func (g *Group) KillProgram() error {
	if g == nil {
		return nil
	}
	m := g.m
	if g.prog != "" && m.features.CgroupKill {
		if err := m.k.writeFile(path.Join(g.prog, "cgroup.kill"), "1"); err != nil && !isNotExist(err) {
			return fmt.Errorf("cgroup: kill the program of %s: %w", g.name, err)
		}
		return nil
	}
	if g.frzDir != "" {
		return g.freezerRound(time.Now().Add(m.killTimeout))
	}
	dir := g.prog
	if dir == "" {
		dir = g.memDir
	}
	pids, err := m.readPIDs(path.Join(dir, "cgroup.procs"))
	if err != nil && !isNotExist(err) {
		return fmt.Errorf("cgroup: kill the program of %s: %w", g.name, err)
	}
	return g.signal(pids)
}
