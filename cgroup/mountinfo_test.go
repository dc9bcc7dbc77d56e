package cgroup

import (
	"reflect"
	"strings"
	"testing"
)

// mountinfo of this project's hybrid build machine (cpu and cpuacct mounted
// separately), trimmed.
const hybridMountInfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
23 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:2 - proc proc rw
30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
35 30 0:32 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
37 30 0:34 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`

const hybridSelfCgroup = `9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/dec3ad1eb33450406e8a772aae510727
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
`

// A systemd v1 host inside a container: the hierarchies are mounted with a
// root field below "/", cpu and cpuacct share one hierarchy, and there are
// optional fields before the separator.
const v1ContainerMountInfo = `100 90 0:50 / / rw,relatime master:9 - overlay overlay rw,lowerdir=/a
110 100 0:60 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
111 110 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid master:12 - cgroup cgroup rw,cpu,cpuacct
112 110 0:31 /docker/abc /sys/fs/cgroup/memory rw,nosuid master:15 - cgroup cgroup rw,memory
113 110 0:35 /docker/abc /sys/fs/cgroup/pids rw,nosuid master:16 - cgroup cgroup rw,pids
114 110 0:33 /docker/abc /sys/fs/cgroup/freezer rw,nosuid master:17 - cgroup cgroup rw,freezer
115 110 0:36 /docker/abc /sys/fs/cgroup/systemd rw,nosuid master:18 - cgroup cgroup rw,xattr,name=systemd
`

const v2MountInfo = `22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw
26 22 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`

func TestParseMountInfo(t *testing.T) {
	got, err := parseMountInfo([]byte(v1ContainerMountInfo + `120 100 0:70 / /mnt/with\040space\134x rw - cgroup2 none rw
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("got %d entries, want 8", len(got))
	}
	want := mountEntry{root: "/docker/abc", point: "/sys/fs/cgroup/cpu,cpuacct", fstype: "cgroup", superOpts: []string{"rw", "cpu", "cpuacct"}}
	if !reflect.DeepEqual(got[2], want) {
		t.Errorf("entry 2 = %+v, want %+v", got[2], want)
	}
	if got[7].point != `/mnt/with space\x` || got[7].fstype != "cgroup2" {
		t.Errorf("escaped entry = %+v", got[7])
	}
	for _, bad := range []string{
		"1 2 3:4 / /x rw shared:1 ext4 /dev/x rw\n", // no separator
		"1 2 3:4 / /x rw -\n",                       // nothing after it
	} {
		if _, err := parseMountInfo([]byte(bad)); err == nil {
			t.Errorf("parseMountInfo(%q) succeeded", bad)
		}
	}
}

func TestUnescapeMountField(t *testing.T) {
	for in, want := range map[string]string{
		`/plain`:        "/plain",
		`/a\040b`:       "/a b",
		`/tab\011x`:     "/tab\tx",
		`/nl\012`:       "/nl\n",
		`/bs\134`:       `/bs\`,
		`/short\04`:     `/short\04`,
		`/notoctal\089`: `/notoctal\089`,
	} {
		if got := unescapeMountField(in); got != want {
			t.Errorf("unescapeMountField(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseSelfCgroup(t *testing.T) {
	sc, err := parseSelfCgroup([]byte(hybridSelfCgroup))
	if err != nil {
		t.Fatal(err)
	}
	if !sc.hasUnified || sc.unified != "/" {
		t.Errorf("unified = %q, %v", sc.unified, sc.hasUnified)
	}
	if got := sc.v1["memory"]; got != "/process_api/dec3ad1eb33450406e8a772aae510727" {
		t.Errorf("memory path = %q", got)
	}
	if got := sc.v1["name=systemd"]; got != "/" {
		t.Errorf("name=systemd path = %q", got)
	}

	sc, err = parseSelfCgroup([]byte("4:cpu,cpuacct:/docker/abc/x:y\n0::/a/b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sc.v1["cpu"] != "/docker/abc/x:y" || sc.v1["cpuacct"] != "/docker/abc/x:y" || sc.unified != "/a/b" {
		t.Errorf("combined hierarchy parsed as %+v", sc)
	}

	for _, bad := range []string{"garbage\n", "1:memory\n", "1:memory:relative\n"} {
		if _, err := parseSelfCgroup([]byte(bad)); err == nil {
			t.Errorf("parseSelfCgroup(%q) succeeded", bad)
		}
	}
}

func TestDetectLayout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mountinfo string
		root      string
		mode      Mode
		unified   string
		v1        map[string]string // controller -> mount point
		wantErr   string
	}{
		{
			name: "pure v2", mountinfo: v2MountInfo, root: "/sys/fs/cgroup",
			mode: ModeV2, unified: "/sys/fs/cgroup", v1: map[string]string{},
		},
		{
			name: "hybrid", mountinfo: hybridMountInfo, root: "/sys/fs/cgroup",
			mode: ModeHybrid, unified: "/sys/fs/cgroup/unified",
			v1: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct", "cpuset": "/sys/fs/cgroup/cpuset",
				"memory": "/sys/fs/cgroup/memory", "devices": "/sys/fs/cgroup/devices", "freezer": "/sys/fs/cgroup/freezer",
				"blkio": "/sys/fs/cgroup/blkio", "pids": "/sys/fs/cgroup/pids", "name=systemd": "/sys/fs/cgroup/systemd",
			},
		},
		{
			name: "pure v1, combined cpu,cpuacct", mountinfo: v1ContainerMountInfo, root: "/sys/fs/cgroup",
			mode: ModeV1,
			v1: map[string]string{
				"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory",
				"pids": "/sys/fs/cgroup/pids", "freezer": "/sys/fs/cgroup/freezer", "name=systemd": "/sys/fs/cgroup/systemd",
			},
		},
		{
			name: "hybrid seen through the unified mount alone is v2", mountinfo: hybridMountInfo, root: "/sys/fs/cgroup/unified",
			mode: ModeV2, unified: "/sys/fs/cgroup/unified", v1: map[string]string{},
		},
		{
			name: "mounts elsewhere are ignored", mountinfo: hybridMountInfo, root: "/elsewhere",
			wantErr: "no cgroup or cgroup2 filesystem mounted at or under /elsewhere",
		},
		{
			name: "a later mount on the same point hides the earlier one",
			mountinfo: v2MountInfo + "27 26 0:24 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n" +
				"28 27 0:25 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n",
			root: "/sys/fs/cgroup", mode: ModeV1, v1: map[string]string{"memory": "/sys/fs/cgroup/memory"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			entries, err := parseMountInfo([]byte(tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			lay, err := detectLayout(entries, tc.root)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if lay.mode != tc.mode {
				t.Errorf("mode = %s, want %s", lay.mode, tc.mode)
			}
			var unified string
			if lay.unified != nil {
				unified = lay.unified.point
			}
			if unified != tc.unified {
				t.Errorf("unified = %q, want %q", unified, tc.unified)
			}
			got := map[string]string{}
			for c, ms := range lay.v1 {
				got[c] = ms[0].point
			}
			if !reflect.DeepEqual(got, tc.v1) {
				t.Errorf("v1 = %v, want %v", got, tc.v1)
			}
		})
	}
}

func TestGroupDir(t *testing.T) {
	for _, tc := range []struct {
		mount   mount
		cgPath  string
		want    string
		wantErr bool
	}{
		{mount{point: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}}, "/process_api/dec3", "/sys/fs/cgroup/memory/process_api/dec3", false},
		{mount{point: "/sys/fs/cgroup/memory", root: "/", controllers: []string{"memory"}}, "/", "/sys/fs/cgroup/memory", false},
		{mount{point: "/sys/fs/cgroup/memory", root: "/docker/abc", controllers: []string{"memory"}}, "/docker/abc", "/sys/fs/cgroup/memory", false},
		{mount{point: "/sys/fs/cgroup/memory", root: "/docker/abc", controllers: []string{"memory"}}, "/docker/abc/sub/x", "/sys/fs/cgroup/memory/sub/x", false},
		{mount{point: "/sys/fs/cgroup/memory", root: "/docker/abc", controllers: []string{"memory"}}, "/docker/abcdef", "", true},
		{mount{point: "/sys/fs/cgroup/memory", root: "/docker/abc", controllers: []string{"memory"}}, "/other", "", true},
		{mount{v2: true, point: "/sys/fs/cgroup", root: "/"}, "/system.slice/sandboxd.service", "/sys/fs/cgroup/system.slice/sandboxd.service", false},
		{mount{v2: true, point: "/sys/fs/cgroup", root: "/"}, "/../../user.slice", "", true},
		{mount{v2: true, point: "/sys/fs/cgroup", root: "/"}, "relative", "", true},
	} {
		got, err := groupDir(tc.mount, tc.cgPath)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("groupDir(%+v, %q) = %q, %v; want %q, err %v", tc.mount, tc.cgPath, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release      string
		major, minor int
		want         bool
	}{
		{"6.18.44-fc-v769", 5, 7, true},
		{"5.7.0", 5, 7, true},
		{"5.6.19-arch1", 5, 7, false},
		{"4.19.0-25-amd64", 5, 7, false},
		{"5.10", 5, 14, false},
		{"6", 5, 7, false},
		{"", 5, 7, false},
		{"x.y", 5, 7, false},
	} {
		if got := kernelAtLeast(tc.release, tc.major, tc.minor); got != tc.want {
			t.Errorf("kernelAtLeast(%q, %d, %d) = %v", tc.release, tc.major, tc.minor, got)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"r1", "sandboxd", "job-42_step.3", "A", strings.Repeat("a", maxNameLen)} {
		if err := validateName(ok); err != nil {
			t.Errorf("validateName(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", ".hidden", "-x", "a/b", "/", "a b", "a\x00", "é", strings.Repeat("a", maxNameLen+1)} {
		if err := validateName(bad); err == nil {
			t.Errorf("validateName(%q) accepted", bad)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := (Config{Subtree: "sandboxd"}).Validate(); err != nil {
		t.Error(err)
	}
	for _, c := range []Config{{}, {Subtree: "a/b"}, {Subtree: "x", Root: "relative"}, {Subtree: "x", Root: "/a/../b"}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := (Limits{MemoryBytes: -1}).Validate(); err == nil {
		t.Error("negative memory accepted")
	}
	if err := (Limits{PIDs: -1}).Validate(); err == nil {
		t.Error("negative pids accepted")
	}
}
