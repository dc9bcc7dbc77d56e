package cgroup

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
)

// mountEntry is the part of one /proc/self/mountinfo line this package uses.
type mountEntry struct {
	// root is the path inside the filesystem (for cgroupfs: the group) that
	// is visible at point.
	root string
	// point is where it is mounted.
	point  string
	fstype string
	// superOpts are the per-superblock options; for cgroup v1 they name the
	// hierarchy's controllers ("rw,cpu,cpuacct", "rw,name=systemd").
	superOpts []string
}

// parseMountInfo parses the format of proc(5) /proc/[pid]/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//	(1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)         (11)
//
// Field 7 is zero or more optional fields ended by the "-" separator.
func parseMountInfo(data []byte) ([]mountEntry, error) {
	var out []mountEntry
	for n, line := range bytes.Split(data, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := strings.Fields(string(line))
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n+1, line)
		}
		e := mountEntry{
			root:   unescapeMountField(f[3]),
			point:  unescapeMountField(f[4]),
			fstype: f[sep+1],
		}
		if sep+3 < len(f) {
			e.superOpts = strings.Split(f[sep+3], ",")
		}
		out = append(out, e)
	}
	return out, nil
}

// unescapeMountField undoes the kernel's octal escapes (\040 space, \011 tab,
// \012 newline, \134 backslash) in mountinfo path fields.
func unescapeMountField(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// selfCgroup is this process's place in every hierarchy, from
// /proc/self/cgroup lines "hierarchy-ID:controller-list:path".
type selfCgroup struct {
	// unified is the path in the cgroup2 hierarchy (the "0::" line).
	unified    string
	hasUnified bool
	// v1 maps each v1 controller, and "name=..." for named hierarchies, to
	// the path in its hierarchy.
	v1 map[string]string
}

func parseSelfCgroup(data []byte) (selfCgroup, error) {
	sc := selfCgroup{v1: map[string]string{}}
	for n, line := range strings.Split(string(data), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 || !strings.HasPrefix(parts[2], "/") {
			return selfCgroup{}, fmt.Errorf("cgroup line %d: malformed: %q", n+1, line)
		}
		id, controllers, p := parts[0], parts[1], parts[2]
		if id == "0" && controllers == "" {
			sc.unified, sc.hasUnified = p, true
			continue
		}
		for _, c := range strings.Split(controllers, ",") {
			if c != "" {
				sc.v1[c] = p
			}
		}
	}
	return sc, nil
}

// knownV1Controllers are the superblock options of a v1 cgroup mount that
// name controllers; everything else there is a mount option.
var knownV1Controllers = map[string]bool{
	"blkio": true, "cpu": true, "cpuacct": true, "cpuset": true, "devices": true,
	"freezer": true, "hugetlb": true, "memory": true, "misc": true, "net_cls": true,
	"net_prio": true, "perf_event": true, "pids": true, "rdma": true,
}

// mount is one cgroup hierarchy as mounted under Config.Root.
type mount struct {
	v2    bool
	point string
	root  string
	// controllers of a v1 hierarchy, sorted; "name=x" for named ones.
	controllers []string
}

// key names the hierarchy in Paths and messages: "unified" for cgroup2, the
// joined controller list ("cpu,cpuacct") for v1.
func (m mount) key() string {
	if m.v2 {
		return "unified"
	}
	return strings.Join(m.controllers, ",")
}

// layout is what detectLayout found under Config.Root.
type layout struct {
	mode    Mode
	unified *mount
	// v1 lists, per controller, the mounts carrying it (bind mounts of one
	// hierarchy appear more than once), in mountinfo order.
	v1 map[string][]mount
}

// detectLayout classifies the cgroup mounts at or beneath root:
// cgroup2 at root itself is pure v2; v1 mounts plus a cgroup2 mount below
// root is hybrid; v1 mounts alone are v1. A cgroup2 mount below root with no
// v1 mounts is treated as v2 on that mount.
func detectLayout(entries []mountEntry, root string) (layout, error) {
	root = path.Clean(root)
	// A later mount on the same point hides an earlier one.
	top := map[string]mountEntry{}
	var order []string
	for _, e := range entries {
		p := path.Clean(e.point)
		if p != root && !strings.HasPrefix(p, root+"/") {
			continue
		}
		if _, seen := top[p]; !seen {
			order = append(order, p)
		}
		top[p] = e
	}
	lay := layout{v1: map[string][]mount{}}
	var rootV2 bool
	for _, p := range order {
		e := top[p]
		switch e.fstype {
		case "cgroup2":
			m := mount{v2: true, point: p, root: e.root}
			if p == root {
				rootV2 = true
				lay.unified = &m
			} else if !rootV2 && lay.unified == nil {
				lay.unified = &m
			}
		case "cgroup":
			m := mount{point: p, root: e.root}
			for _, o := range e.superOpts {
				if knownV1Controllers[o] || strings.HasPrefix(o, "name=") {
					m.controllers = append(m.controllers, o)
				}
			}
			if len(m.controllers) == 0 {
				continue
			}
			sort.Strings(m.controllers)
			for _, c := range m.controllers {
				lay.v1[c] = append(lay.v1[c], m)
			}
		}
	}
	switch {
	case rootV2:
		lay.mode = ModeV2
		lay.v1 = map[string][]mount{}
	case len(lay.v1) > 0 && lay.unified != nil:
		lay.mode = ModeHybrid
	case len(lay.v1) > 0:
		lay.mode = ModeV1
	case lay.unified != nil:
		lay.mode = ModeV2
	default:
		return layout{}, fmt.Errorf("no cgroup or cgroup2 filesystem mounted at or under %s", root)
	}
	return lay, nil
}

// groupDir maps a cgroup path from /proc/self/cgroup to a directory through
// the mount m, whose root field says which group sits at its mount point.
func groupDir(m mount, cgPath string) (string, error) {
	if !strings.HasPrefix(cgPath, "/") || path.Clean(cgPath) != cgPath {
		// Paths like "/../.." appear when the group is outside our cgroup
		// namespace; we cannot reach it.
		return "", fmt.Errorf("own cgroup path %q in hierarchy %s is not reachable (outside our cgroup namespace?)", cgPath, m.key())
	}
	root := path.Clean(m.root)
	var rel string
	switch {
	case root == "/":
		rel = cgPath
	case cgPath == root:
		rel = "/"
	case strings.HasPrefix(cgPath, root+"/"):
		rel = cgPath[len(root):]
	default:
		return "", fmt.Errorf("own cgroup %s in hierarchy %s is outside the group %s mounted at %s", cgPath, m.key(), root, m.point)
	}
	return path.Join(m.point, rel), nil
}
