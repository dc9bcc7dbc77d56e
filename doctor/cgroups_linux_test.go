package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCgroupsV2 points the check at a fake pure-v2 host: a mountinfo with
// cgroup2 at the root and a temp dir as cgroupfs.
func TestCgroupsV2(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "cgroup")
	svc := filepath.Join(root, "system.slice", "sandboxd.service")
	os.MkdirAll(svc, 0o755)
	os.MkdirAll(filepath.Join(dir, "systemd"), 0o755)
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte("30 24 0:26 / "+root+" rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"), 0o644)
	h := Host{CgroupRoot: root, MountInfo: mi, SystemdRun: filepath.Join(dir, "systemd"), Kernel: "6.1"}.withDefaults()
	for _, tc := range []struct {
		ctrls string
		want  Status
		text  string
	}{
		{"cpuset cpu io memory pids", OK, "delegated to sandboxd.service: cpuset cpu io memory pids"},
		{"cpu io pids", Fail, "missing memory"},
		{"memory pids", Warn, "no cpu controller"},
	} {
		os.WriteFile(filepath.Join(svc, "cgroup.controllers"), []byte(tc.ctrls+"\n"), 0o644)
		if c := h.cgroups("sandboxd"); c.Status != tc.want || !strings.Contains(c.Detail, tc.text) {
			t.Errorf("controllers %q: %+v, want %s with %q", tc.ctrls, c, tc.want, tc.text)
		}
	}
}

// TestCgroupsV2OwnLeaf: without systemd the daemon's group is this
// process's, and a process an engine already moved into its leaf
// (<subtree>-self, which has no controllers of its own) owns the leaf's
// parent, as the engine does.
func TestCgroupsV2OwnLeaf(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "cgroup")
	own := filepath.Join(root, "test.slice", "e2e.service")
	os.MkdirAll(filepath.Join(own, "sandboxd-self"), 0o755)
	os.WriteFile(filepath.Join(own, "cgroup.controllers"), []byte("cpu memory pids\n"), 0o644)
	os.WriteFile(filepath.Join(own, "sandboxd-self", "cgroup.controllers"), []byte("\n"), 0o644)
	mi := filepath.Join(dir, "mountinfo")
	os.WriteFile(mi, []byte("30 24 0:26 / "+root+" rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n"), 0o644)
	self := filepath.Join(dir, "self-cgroup")
	os.WriteFile(self, []byte("0::/test.slice/e2e.service/sandboxd-self\n"), 0o644)
	h := Host{CgroupRoot: root, MountInfo: mi, SystemdRun: filepath.Join(dir, "no-systemd"), SelfCgroup: self, Kernel: "6.1"}.withDefaults()
	if c := h.cgroups("sandboxd"); c.Status != OK || !strings.Contains(c.Detail, "this process's group /test.slice/e2e.service: cpu memory pids") {
		t.Errorf("in the engine's leaf: %+v, want ok for the leaf's parent", c)
	}
	if c := h.cgroups("other"); c.Status != Fail {
		t.Errorf("in another subtree's leaf: %+v, want fail (the leaf itself has no controllers)", c)
	}
}
