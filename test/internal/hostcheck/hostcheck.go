package hostcheck

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// uidBlock is how many host uids each test process has: its block starts
// at uidFloor + pid*uidBlock, far from the default range (DefaultUIDBase),
// and below 2^32-2 for every pid up to Linux's largest, 2^22.
const (
	uidFloor = 1_900_000_000
	uidBlock = 512
)

var (
	// InitUID is the host uid every sandbox's init of this test process
	// runs under: the first of its block.
	InitUID = int64(uidFloor) + int64(os.Getpid())*uidBlock
	// UIDBase and UIDCount are this test process's sandbox uids, the rest
	// of its block (a daemon's uid_base and uid_count).
	UIDBase  = uint32(InitUID + 1)
	UIDCount = uint32(uidBlock - 1)
)

// Config is the daemon configuration that gives it this test process's
// uids; extra is the rest of the test's configuration, whose own uid_count
// (a smaller one) stays.
func Config(extra string) string {
	c := fmt.Sprintf("uid_base = %d\n", UIDBase)
	if !strings.Contains(extra, "uid_count") {
		c += fmt.Sprintf("uid_count = %d\n", UIDCount)
	}
	return c + extra
}

// Subtree is the cgroup subtree for this test process's daemons and runs:
// prefix-<pid>, unless the process was started in a "<name>-self" leaf
// (as make test-v2's guest places its suites, beside the subtree <name>
// it delegated for them), where it must be <name>.
func Subtree(prefix string) string {
	if name, ok := strings.CutSuffix(path.Base(OwnCgroup2()), "-self"); ok && name != "" {
		return name
	}
	return fmt.Sprintf("%s-%d", prefix, os.Getpid())
}

// OwnCgroup2 is this process's cgroup2 path (its "0::" line in
// /proc/self/cgroup), or "" without one.
func OwnCgroup2() string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

// ExecFlags are the flags that give `sandboxd exec` this test process's
// uids and the cgroup subtree.
func ExecFlags(subtree string) []string {
	return []string{"--uid-base", fmt.Sprint(UIDBase), "--uid-count", fmt.Sprint(UIDCount), "--cgroup-subtree", subtree}
}

// Proc is a live process (zombies aside: they run nothing, and their
// parent reaps them in its own time) under a sandbox uid: the inits' shared
// uid or a program's.
type Proc struct {
	PID      int
	PPID     int
	Name     string
	UID      int64
	Children []int
}

func (p Proc) String() string { return fmt.Sprintf("pid %d %s uid %d", p.PID, p.Name, p.UID) }

// idle marks the processes of warm sandboxes: an init with at most one
// child, itself under the inits' uid and childless (the process that will
// exec the command, waiting for it). A program never runs under that uid.
func idle(procs []Proc) map[int]bool {
	by := map[int]Proc{}
	for _, p := range procs {
		by[p.PID] = p
	}
	marks := map[int]bool{}
	for _, p := range procs {
		if p.UID != InitUID || len(p.Children) > 1 {
			continue
		}
		if len(p.Children) == 0 {
			marks[p.PID] = true
			continue
		}
		c, ok := by[p.Children[0]]
		if ok && c.UID == InitUID && len(c.Children) == 0 {
			marks[p.PID], marks[c.PID] = true, true
		}
	}
	return marks
}

// Procs lists the live processes under this test process's sandbox uids.
func Procs() []Proc {
	var found []Proc
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		p := Proc{PID: pid, UID: -1}
		state := ""
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "Name:":
				p.Name = f[1]
			case "State:":
				state = f[1]
			case "PPid:":
				p.PPID, _ = strconv.Atoi(f[1])
			case "Uid:":
				p.UID, _ = strconv.ParseInt(f[1], 10, 64)
			}
		}
		if state == "Z" || p.UID < InitUID || p.UID >= int64(UIDBase)+int64(UIDCount) {
			continue
		}
		kids, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, k := range kids {
			c, _ := os.ReadFile(k)
			for _, f := range strings.Fields(string(c)) {
				if n, err := strconv.Atoi(f); err == nil {
					p.Children = append(p.Children, n)
				}
			}
		}
		found = append(found, p)
	}
	return found
}

// Busy lists the processes under sandbox uids but idle inits: what a
// finished job must not leave.
func Busy() []string {
	var found []string
	procs := Procs()
	warm := idle(procs)
	for _, p := range procs {
		if !warm[p.PID] {
			found = append(found, p.String())
		}
	}
	return found
}

// All lists every process under sandbox uids, idle inits included: what a
// stopped daemon must not leave.
func All() []string {
	var found []string
	for _, p := range Procs() {
		found = append(found, p.String())
	}
	return found
}

// RunGroups lists the run cgroups beneath subtree in every hierarchy, by
// run name.
func RunGroups(subtree string) map[string][]string {
	found := map[string][]string{}
	filepath.WalkDir("/sys/fs/cgroup", func(p string, de os.DirEntry, err error) error {
		if err != nil || !de.IsDir() {
			return nil
		}
		if strings.Count(p, "/") > 8 {
			return filepath.SkipDir
		}
		if strings.Contains(p, "/"+subtree+"/") {
			found[filepath.Base(p)] = append(found[filepath.Base(p)], p)
			return filepath.SkipDir
		}
		return nil
	})
	return found
}

// AllGroups lists every run cgroup beneath subtree: what a stopped daemon
// must not leave.
func AllGroups(subtree string) []string {
	var found []string
	for _, dirs := range RunGroups(subtree) {
		found = append(found, dirs...)
	}
	return found
}

// InitsPrefix starts the name of a daemon's group of sandbox inits, in
// the cgroup2 subtree: the daemon's own while it runs, not a run's.
const InitsPrefix = "_inits-"

// StrayGroups lists the run cgroups beneath subtree that are not a warm
// sandbox's. A warm sandbox's groups hold nothing but the program's
// process, waiting for its command; the idle init itself is in the
// daemon's inits' group.
func StrayGroups(subtree string) []string {
	warm := idle(Procs())
	var found []string
	for name, dirs := range RunGroups(subtree) {
		if strings.HasPrefix(name, InitsPrefix) {
			continue
		}
		hasInit, busy := false, false
		for _, d := range dirs {
			for _, pid := range pids(d) {
				hasInit = hasInit || warm[pid]
				busy = busy || !warm[pid]
			}
		}
		if !hasInit || busy {
			found = append(found, dirs...)
		}
	}
	return found
}

// pids reads a group's cgroup.procs; a missing group has none.
func pids(dir string) []int {
	b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// Settle calls list until it comes back empty or wait has passed, and
// returns its last answer: a warm sandbox being made is briefly a group
// without its init, and a torn-down one an init without its group.
func Settle(wait time.Duration, list func() []string) []string {
	deadline := time.Now().Add(wait)
	for {
		found := list()
		if len(found) == 0 || time.Now().After(deadline) {
			return found
		}
		time.Sleep(10 * time.Millisecond)
	}
}
