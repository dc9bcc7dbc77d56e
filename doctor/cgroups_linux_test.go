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
		if c := h.cgroups(); c.Status != tc.want || !strings.Contains(c.Detail, tc.text) {
			t.Errorf("controllers %q: %+v, want %s with %q", tc.ctrls, c, tc.want, tc.text)
		}
	}
}
