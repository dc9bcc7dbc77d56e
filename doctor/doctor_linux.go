package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/daemon"
)

// Status is a check's outcome.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works, with a caveat
	Fail Status = "fail" // sandboxes will not work until it is fixed
)

// Check is one line of the report.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Detail string `json:"detail"`
	// Fix says in one line what to do; empty when there is nothing to.
	Fix string `json:"fix,omitempty"`
}

// Host is where the checks read the host. The zero value of a field is the
// real path.
type Host struct {
	ProcSys    string // /proc/sys
	CgroupRoot string // /sys/fs/cgroup
	MountInfo  string // /proc/self/mountinfo
	SelfCgroup string // /proc/self/cgroup
	SystemdRun string // /run/systemd/system: exists when systemd is PID 1
	Subuid     string // /etc/subuid
	Subgid     string // /etc/subgid
	Passwd     string // /etc/passwd
	Group      string // /etc/group
	// Kernel is the kernel release; empty: uname's.
	Kernel string
}

func (h Host) withDefaults() Host {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&h.ProcSys, "/proc/sys")
	def(&h.CgroupRoot, "/sys/fs/cgroup")
	def(&h.MountInfo, "/proc/self/mountinfo")
	def(&h.SelfCgroup, "/proc/self/cgroup")
	def(&h.SystemdRun, "/run/systemd/system")
	def(&h.Subuid, "/etc/subuid")
	def(&h.Subgid, "/etc/subgid")
	def(&h.Passwd, "/etc/passwd")
	def(&h.Group, "/etc/group")
	if h.Kernel == "" {
		var uts unix.Utsname
		unix.Uname(&uts)
		h.Kernel = unix.ByteSliceToString(uts.Release[:])
	}
	return h
}

// HostChecks runs every check that only reads the host, in the report's
// order (the end-to-end sandbox is the command's, after these). configPath
// names the config file in fixes.
func HostChecks(cfg daemon.Config, configPath string, h Host) []Check {
	h = h.withDefaults()
	if configPath == "" {
		configPath = "the config file"
	}
	return []Check{
		h.kernel(),
		h.userNamespaces(),
		h.namespaces(),
		h.cgroups(cfg.CgroupSubtree),
		h.seccomp(),
		h.uidRange(cfg, configPath),
		h.socket(cfg, configPath),
	}
}

// Failed says whether any check failed.
func Failed(checks []Check) bool {
	return slices.ContainsFunc(checks, func(c Check) bool { return c.Status == Fail })
}

// minKernel is the oldest kernel sandboxd runs on (README): clone3 with
// CLONE_INTO_CGROUP, pidfds, openat2, and idmapped details it relies on.
const minMajor, minMinor = 5, 11

func (h Host) kernel() Check {
	c := Check{Name: "kernel"}
	var major, minor int
	if _, err := fmt.Sscanf(h.Kernel, "%d.%d", &major, &minor); err != nil {
		c.Status, c.Detail = Warn, fmt.Sprintf("cannot read the version of %q", h.Kernel)
		return c
	}
	if major < minMajor || major == minMajor && minor < minMinor {
		c.Status, c.Detail = Fail, fmt.Sprintf("Linux %s; sandboxd needs %d.%d or later", h.Kernel, minMajor, minMinor)
		c.Fix = fmt.Sprintf("boot a kernel %d.%d or later", minMajor, minMinor)
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("Linux %s (%d.%d or later needed)", h.Kernel, minMajor, minMinor)
	return c
}

// sysctl reads a /proc/sys value by its dotted name; ok is false when the
// kernel has no such knob.
func (h Host) sysctl(name string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(h.ProcSys, strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// userNamespaces: the knobs distributions use to restrict user namespaces.
// The daemon runs as root (CAP_SYS_ADMIN in the host's namespace), which
// only user.max_user_namespaces limits: kernel.unprivileged_userns_clone
// (Debian's and older Ubuntu's patch) and AppArmor's
// kernel.apparmor_restrict_unprivileged_userns (Ubuntu 23.10 and later)
// restrict processes without that capability.
func (h Host) userNamespaces() Check {
	c := Check{Name: "user namespaces"}
	max, ok := h.sysctl("user.max_user_namespaces")
	if !ok {
		c.Status, c.Detail = Fail, "the kernel has no user namespaces (no /proc/sys/user/max_user_namespaces)"
		c.Fix = "boot a kernel built with CONFIG_USER_NS=y"
		return c
	}
	n, _ := strconv.Atoi(max)
	if n == 0 {
		c.Status, c.Detail = Fail, "user.max_user_namespaces=0: no process may make a user namespace, root included"
		c.Fix = "sysctl -w user.max_user_namespaces=63000, and set it in /etc/sysctl.d/ (something set it to 0 on purpose: find what)"
		return c
	}
	c.Status = OK
	parts := []string{"user.max_user_namespaces=" + max}
	var unprivileged []string
	if v, ok := h.sysctl("kernel.unprivileged_userns_clone"); ok {
		parts = append(parts, "kernel.unprivileged_userns_clone="+v)
		if v == "0" {
			unprivileged = append(unprivileged, "kernel.unprivileged_userns_clone")
		}
	}
	if v, ok := h.sysctl("kernel.apparmor_restrict_unprivileged_userns"); ok {
		parts = append(parts, "kernel.apparmor_restrict_unprivileged_userns="+v)
		if v != "0" {
			unprivileged = append(unprivileged, "kernel.apparmor_restrict_unprivileged_userns")
		}
	}
	c.Detail = strings.Join(parts, ", ")
	if len(unprivileged) > 0 {
		c.Detail += "; " + strings.Join(unprivileged, " and ") + " restrict unprivileged users only, and the daemon runs as root"
	}
	return c
}

// namespaces: every other kind a sandbox makes, which a limit of 0 forbids.
func (h Host) namespaces() Check {
	c := Check{Name: "namespaces", Status: OK}
	var zero, missing []string
	for _, kind := range []string{"mnt", "pid", "net", "uts", "ipc", "cgroup"} {
		v, ok := h.sysctl("user.max_" + kind + "_namespaces")
		switch {
		case !ok:
			missing = append(missing, kind)
		case v == "0":
			zero = append(zero, "user.max_"+kind+"_namespaces")
		}
	}
	switch {
	case len(missing) > 0:
		c.Status, c.Detail = Fail, "the kernel lacks "+strings.Join(missing, ", ")+" namespaces"
		c.Fix = "boot a kernel with every namespace built in (CONFIG_*_NS=y)"
	case len(zero) > 0:
		c.Status, c.Detail = Fail, strings.Join(zero, ", ")+" = 0"
		c.Fix = "sysctl -w " + zero[0] + "=63000 (each of them), and in /etc/sysctl.d/"
	default:
		c.Detail = "mount, pid, network, uts, ipc and cgroup namespaces allowed"
	}
	return c
}

// cgroups: the mode, and on v2 the controllers the daemon's group gets.
func (h Host) cgroups(subtree string) Check {
	c := Check{Name: "cgroups"}
	lay, err := cgroup.DetectLayout(cgroup.Config{Root: h.CgroupRoot, MountInfo: h.MountInfo})
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = "mount cgroup2 at /sys/fs/cgroup (systemd does at boot)"
		return c
	}
	if lay.Mode != cgroup.ModeV2 {
		c.Detail = fmt.Sprintf("%s; v1 hierarchies: %s", lay.Mode, strings.Join(lay.V1Controllers, " "))
		var missing []string
		for _, need := range []string{"memory", "pids", "cpuacct"} {
			if !slices.Contains(lay.V1Controllers, need) {
				missing = append(missing, need)
			}
		}
		if len(missing) > 0 {
			c.Status, c.Detail = Fail, c.Detail+"; missing "+strings.Join(missing, ", ")
			c.Fix = "mount the v1 " + strings.Join(missing, ", ") + " hierarchies, or boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)"
			return c
		}
		if !slices.Contains(lay.V1Controllers, "cpu") {
			c.Status, c.Detail = Warn, c.Detail+"; no v1 cpu hierarchy (CPU time is still measured; the cpus limit is not enforced)"
			c.Fix = "mount the v1 cpu hierarchy, or boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1)"
			return c
		}
		c.Status = OK
		return c
	}
	group, whose := h.daemonGroup(subtree)
	b, err := os.ReadFile(filepath.Join(group, "cgroup.controllers"))
	if err != nil {
		c.Status, c.Detail = Fail, fmt.Sprintf("v2; %v", err)
		return c
	}
	ctrls := strings.Fields(string(b))
	c.Detail = fmt.Sprintf("v2; %s: %s", whose, strings.Join(ctrls, " "))
	var missing []string
	for _, need := range []string{"memory", "pids"} {
		if !slices.Contains(ctrls, need) {
			missing = append(missing, need)
		}
	}
	switch {
	case len(missing) > 0:
		c.Status, c.Detail = Fail, c.Detail+"; missing "+strings.Join(missing, ", ")
		c.Fix = "run the daemon as sandboxd.service (Delegate=yes), or enable +" + strings.Join(missing, " +") + " in the cgroup.subtree_control of its parents"
	case !slices.Contains(ctrls, "cpu"):
		c.Status, c.Detail = Warn, c.Detail+"; no cpu controller (CPU time is still measured; the cpus limit is not enforced)"
		c.Fix = "enable +cpu in the cgroup.subtree_control of the daemon's parents"
	default:
		c.Status = OK
	}
	return c
}

// daemonGroup is the cgroup the daemon has, or would have: under systemd,
// sandboxd.service's (delegated: its cgroup.controllers are what it got),
// or before it ever ran the root's (Delegate=yes hands down what the root
// offers); without systemd this process's own, as a daemon started from
// here would have. A process that an engine already moved into its leaf
// (<subtree>-self) owns the leaf's parent, as the engine does.
func (h Host) daemonGroup(subtree string) (dir, whose string) {
	if _, err := os.Stat(h.SystemdRun); err == nil {
		svc := filepath.Join(h.CgroupRoot, "system.slice", "sandboxd.service")
		if _, err := os.Stat(svc); err == nil {
			return svc, "delegated to sandboxd.service"
		}
		return h.CgroupRoot, "for sandboxd.service (Delegate=yes) when it starts"
	}
	b, err := os.ReadFile(h.SelfCgroup)
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if p, ok := strings.CutPrefix(line, "0::"); ok {
				if filepath.Base(p) == subtree+"-self" && p != "/" {
					p = filepath.Dir(p)
				}
				return filepath.Join(h.CgroupRoot, p), "this process's group " + p
			}
		}
	}
	return h.CgroupRoot, "the root group"
}

// seccomp: filters, and the actions the sandbox's policy uses.
func (h Host) seccomp() Check {
	c := Check{Name: "seccomp"}
	avail, ok := h.sysctl("kernel.seccomp.actions_avail")
	if !ok {
		c.Status, c.Detail = Fail, "no seccomp filters (no /proc/sys/kernel/seccomp/actions_avail)"
		c.Fix = "boot a kernel built with CONFIG_SECCOMP_FILTER=y"
		return c
	}
	var missing []string
	for _, need := range []string{"kill_process", "errno", "user_notif"} {
		if !slices.Contains(strings.Fields(avail), need) {
			missing = append(missing, need)
		}
	}
	if len(missing) > 0 {
		c.Status, c.Detail = Fail, "filters lack the actions "+strings.Join(missing, ", ")
		c.Fix = fmt.Sprintf("boot a kernel %d.%d or later", minMajor, minMinor)
		return c
	}
	c.Status, c.Detail = OK, "filters with kill_process, errno and user_notif"
	return c
}

// idRange is a range of host ids, [first, first+count).
type idRange struct{ first, count uint64 }

func (r idRange) overlaps(o idRange) bool {
	return r.first < o.first+o.count && o.first < r.first+r.count
}

// uidRange: the sandboxes' host uids (and gids, the same numbers) are
// [uid_base-1, uid_base+uid_count): the one below uid_base is every init's.
// Another user of any of them could reach a sandbox's files and
// processes, or a sandbox theirs.
func (h Host) uidRange(cfg daemon.Config, configPath string) Check {
	r := idRange{uint64(cfg.UIDBase) - 1, uint64(cfg.UIDCount) + 1}
	c := Check{Name: "uid range"}
	desc := fmt.Sprintf("%d..%d (uid_base-1 .. uid_base+uid_count-1)", r.first, r.first+r.count-1)
	var clashes []string
	for _, f := range []struct{ path, what string }{{h.Subuid, "subordinate uids"}, {h.Subgid, "subordinate gids"}} {
		for _, e := range readIDFile(f.path, 3) {
			first, err1 := strconv.ParseUint(e.fields[1], 10, 32)
			count, err2 := strconv.ParseUint(e.fields[2], 10, 32)
			if err1 == nil && err2 == nil && r.overlaps(idRange{first, count}) {
				clashes = append(clashes, fmt.Sprintf("%s line %d (%s: %s, %s..%d)", f.path, e.line, f.what, e.fields[0], e.fields[1], first+count-1))
			}
		}
	}
	for _, f := range []struct{ path, what string }{{h.Passwd, "user"}, {h.Group, "group"}} {
		for _, e := range readIDFile(f.path, 3) {
			id, err := strconv.ParseUint(e.fields[2], 10, 32)
			if err == nil && r.overlaps(idRange{id, 1}) {
				clashes = append(clashes, fmt.Sprintf("%s line %d (%s %s, id %d)", f.path, e.line, f.what, e.fields[0], id))
			}
		}
	}
	if len(clashes) > 0 {
		c.Status, c.Detail = Fail, desc+" is in use: "+strings.Join(clashes, "; ")
		c.Fix = "set uid_base (and uid_count) in " + configPath + " to a range nothing else uses"
		return c
	}
	c.Status, c.Detail = OK, desc+": no user, group, /etc/subuid or /etc/subgid entry in it"
	return c
}

type idEntry struct {
	line   int
	fields []string
}

// readIDFile reads a colon-separated file (passwd, group, subuid), the
// lines with at least n fields. A missing file has no entries.
func readIDFile(path string, n int) []idEntry {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []idEntry
	s := bufio.NewScanner(f)
	for line := 1; s.Scan(); line++ {
		t := strings.TrimSpace(s.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if fields := strings.Split(t, ":"); len(fields) >= n {
			out = append(out, idEntry{line, fields})
		}
	}
	return out
}

// socket: the socket's directory, and the socket if it exists (made by
// sandboxd.socket or a running daemon): a socket, mode 0660, the group.
func (h Host) socket(cfg daemon.Config, configPath string) Check {
	c := Check{Name: "socket"}
	dir := filepath.Dir(cfg.Socket)
	wantGID := -1
	if cfg.SocketGroup != "" {
		gid, err := lookupGroup(cfg.SocketGroup, h.Group)
		if err != nil {
			c.Status, c.Detail = Fail, fmt.Sprintf("socket_group %q: %v", cfg.SocketGroup, err)
			c.Fix = "systemd-sysusers (makes the sandboxd group), or set socket_group in " + configPath
			return c
		}
		wantGID = gid
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		c.Status, c.Detail = Warn, dir+" does not exist yet: the daemon makes it"
		c.Fix = "systemd-tmpfiles --create sandboxd.conf (or start sandboxd.socket)"
		return c
	case err != nil:
		c.Status, c.Detail = Fail, err.Error()
		return c
	case !fi.IsDir():
		c.Status, c.Detail = Fail, dir+" is not a directory"
		c.Fix = "remove it, or set socket in " + configPath
		return c
	case fi.Mode().Perm()&0o005 != 0o005:
		c.Status, c.Detail = Fail, fmt.Sprintf("%s is mode %04o: the socket's group cannot reach the socket", dir, fi.Mode().Perm())
		c.Fix = "chmod 0755 " + dir
		return c
	}
	st, err := os.Lstat(cfg.Socket)
	if errors.Is(err, os.ErrNotExist) {
		c.Status, c.Detail = OK, dir+" is ready; no socket yet (sandboxd.socket or the daemon makes it)"
		return c
	}
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		return c
	}
	if st.Mode()&os.ModeSocket == 0 {
		c.Status, c.Detail = Fail, cfg.Socket+" exists and is not a socket"
		c.Fix = "remove " + cfg.Socket
		return c
	}
	gid := int(st.Sys().(*syscall.Stat_t).Gid)
	c.Detail = fmt.Sprintf("%s, mode %04o, group %d", cfg.Socket, st.Mode().Perm(), gid)
	switch {
	case st.Mode().Perm() != 0o660:
		c.Status, c.Detail = Warn, c.Detail+"; want 0660"
		c.Fix = "SocketMode=0660 in sandboxd.socket"
	case wantGID >= 0 && gid != wantGID:
		c.Status, c.Detail = Warn, c.Detail+fmt.Sprintf("; socket_group %q is %d", cfg.SocketGroup, wantGID)
		c.Fix = "make SocketGroup= in sandboxd.socket and socket_group in " + configPath + " the same"
	default:
		c.Status = OK
	}
	return c
}

// lookupGroup finds a group by name (or number) in the group file.
func lookupGroup(name, groupFile string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	for _, e := range readIDFile(groupFile, 3) {
		if e.fields[0] == name {
			return strconv.Atoi(e.fields[2])
		}
	}
	return 0, fmt.Errorf("no such group in %s", groupFile)
}
