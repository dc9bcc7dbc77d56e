package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/daemon"
)

// fakeHost is a Host whose /proc/sys and /etc files are a temp dir's.
func fakeHost(t *testing.T, sysctls map[string]string, etc map[string]string) Host {
	t.Helper()
	dir := t.TempDir()
	for name, v := range sysctls {
		p := filepath.Join(dir, "sys", strings.ReplaceAll(name, ".", "/"))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(v+"\n"), 0o644)
	}
	h := Host{ProcSys: filepath.Join(dir, "sys"), Kernel: "6.1.0-test"}
	for name, body := range etc {
		p := filepath.Join(dir, "etc", name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	h.Subuid = filepath.Join(dir, "etc", "subuid")
	h.Subgid = filepath.Join(dir, "etc", "subgid")
	h.Passwd = filepath.Join(dir, "etc", "passwd")
	h.Group = filepath.Join(dir, "etc", "group")
	return h.withDefaults()
}

var allowed = map[string]string{
	"user.max_user_namespaces": "63000", "user.max_mnt_namespaces": "63000", "user.max_pid_namespaces": "63000",
	"user.max_net_namespaces": "63000", "user.max_uts_namespaces": "63000", "user.max_ipc_namespaces": "63000",
	"user.max_cgroup_namespaces": "63000", "kernel.seccomp.actions_avail": "kill_process kill_thread trap errno user_notif trace log allow",
}

func with(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	if v == "" {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestUserNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name    string
		sysctls map[string]string
		want    Status
		detail  string
	}{
		{"allowed", allowed, OK, "user.max_user_namespaces=63000"},
		{"max 0", with(allowed, "user.max_user_namespaces", "0"), Fail, "user.max_user_namespaces=0"},
		{"no userns", with(allowed, "user.max_user_namespaces", ""), Fail, "no user namespaces"},
		{"Debian's unprivileged_userns_clone=0", with(allowed, "kernel.unprivileged_userns_clone", "0"), OK, "restrict unprivileged users only"},
		{"AppArmor's restriction", with(allowed, "kernel.apparmor_restrict_unprivileged_userns", "1"), OK, "kernel.apparmor_restrict_unprivileged_userns restrict unprivileged users only"},
	} {
		c := fakeHost(t, tc.sysctls, nil).userNamespaces()
		if c.Status != tc.want || !strings.Contains(c.Detail, tc.detail) || (c.Status == Fail) != (c.Fix != "") {
			t.Errorf("%s: %+v, want %s with %q and a fix when it fails", tc.name, c, tc.want, tc.detail)
		}
	}
	if c := fakeHost(t, with(allowed, "user.max_net_namespaces", "0"), nil).namespaces(); c.Status != Fail || !strings.Contains(c.Detail, "user.max_net_namespaces") {
		t.Errorf("max_net_namespaces=0: %+v", c)
	}
}

func TestKernelAndSeccomp(t *testing.T) {
	h := fakeHost(t, allowed, nil)
	if c := h.kernel(); c.Status != OK {
		t.Errorf("6.1: %+v", c)
	}
	h.Kernel = "5.10.0-28-amd64"
	if c := h.kernel(); c.Status != Fail || c.Fix == "" {
		t.Errorf("5.10: %+v", c)
	}
	if c := h.seccomp(); c.Status != OK {
		t.Errorf("seccomp: %+v", c)
	}
	if c := fakeHost(t, with(allowed, "kernel.seccomp.actions_avail", "kill_thread trap errno"), nil).seccomp(); c.Status != Fail || !strings.Contains(c.Detail, "kill_process, user_notif") {
		t.Errorf("old seccomp: %+v", c)
	}
}

// TestUIDRange: the range is uid_base-1 .. uid_base+uid_count-1, against
// /etc/subuid, /etc/subgid, users and groups.
func TestUIDRange(t *testing.T) {
	cfg := daemon.DefaultConfig() // 1800000000 + 65536
	clear := map[string]string{
		"subuid": "alice:100000:65536\n# a comment\n",
		"subgid": "alice:100000:65536\n",
		"passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n",
		"group":  "root:x:0:\nsandboxd:x:997:alice\n",
	}
	if c := fakeHost(t, allowed, clear).uidRange(cfg, "/etc/sandboxd/sandboxd.toml"); c.Status != OK {
		t.Errorf("clear: %+v", c)
	}
	for _, tc := range []struct {
		file, body, want string
	}{
		// The last id below the range, and the first above it, are fine;
		// the init's uid (uid_base-1) is in it.
		{"subuid", "podman:1799934463:65536\npodman2:1800065536:10\n", ""},
		{"subuid", "podman:1799934464:65536\n", "subuid line 1 (subordinate uids: podman"},
		{"subgid", "#x\nbuild:1800001000:1\n", "subgid line 2 (subordinate gids: build, 1800001000..1800001000)"},
		{"passwd", "root:x:0:0::/:/bin/sh\nsvc:x:1800065535:1:::\n", "passwd line 2 (user svc, id 1800065535)"},
		{"group", "g:x:1799999999:\n", "group line 1 (group g, id 1799999999)"},
	} {
		etc := with(clear, tc.file, tc.body)
		c := fakeHost(t, allowed, etc).uidRange(cfg, "/etc/sandboxd/sandboxd.toml")
		if tc.want == "" {
			if c.Status != OK {
				t.Errorf("%s %q: %+v, want ok", tc.file, tc.body, c)
			}
			continue
		}
		if c.Status != Fail || !strings.Contains(c.Detail, tc.want) || !strings.Contains(c.Fix, "/etc/sandboxd/sandboxd.toml") {
			t.Errorf("%s %q: %+v, want a failure naming %q and the config file", tc.file, tc.body, c, tc.want)
		}
	}
}

func TestSocket(t *testing.T) {
	cfg := daemon.DefaultConfig()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cfg.Socket = filepath.Join(dir, "sandboxd.sock")
	cfg.SocketGroup = "sandboxd"
	h := fakeHost(t, allowed, map[string]string{"group": "root:x:0:\nsandboxd:x:997:\n"})
	if c := h.socket(cfg, "cfg"); c.Status != OK {
		t.Errorf("ready dir: %+v", c)
	}
	cfg.SocketGroup = "nosuch"
	if c := h.socket(cfg, "cfg"); c.Status != Fail || !strings.Contains(c.Fix, "systemd-sysusers") {
		t.Errorf("missing group: %+v", c)
	}
	cfg.SocketGroup = ""
	os.WriteFile(cfg.Socket, nil, 0o644)
	if c := h.socket(cfg, "cfg"); c.Status != Fail || !strings.Contains(c.Detail, "not a socket") {
		t.Errorf("a file in the socket's place: %+v", c)
	}
	cfg.Socket = filepath.Join(dir, "missing", "sandboxd.sock")
	if c := h.socket(cfg, "cfg"); c.Status != Warn {
		t.Errorf("no dir yet: %+v", c)
	}
}

// TestHostChecksHere runs the checks on this host: each gives a status and
// a detail, and a failure a fix.
func TestHostChecksHere(t *testing.T) {
	for _, c := range HostChecks(daemon.DefaultConfig(), "", Host{}) {
		if c.Name == "" || c.Detail == "" || c.Status == Fail && c.Fix == "" {
			t.Errorf("%+v", c)
		}
		t.Logf("%s %s: %s", c.Status, c.Name, c.Detail)
	}
}
