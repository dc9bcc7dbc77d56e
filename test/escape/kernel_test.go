package escape

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

// sockpinLimit is the memory limit of the socket cases.
const sockpinLimit = 64 << 20

// sockpinLine is what sockpin prints when every process is done.
var sockpinLine = regexp.MustCompile(`socks=(\d+) queued_kb=(\d+) net_kb=(\d+) drop_kb=(-?\d+) protos=(\S+)`)

// sockpinCase runs sockpin MODE with PROCS processes under a 64 MiB memory
// limit and the default pids and open-files limits: what the sockets of
// the sandbox hold must stay within the memory limit, whether the kernel
// charges it to the cgroup (memory_limit) or refuses more.
func sockpinCase(mode string, procs int) escapeCase {
	return escapeCase{
		name:     "kernel_memory_" + mode,
		tries:    "pin host memory in " + mode + " buffers that are never read, from " + strconv.Itoa(procs) + " processes with 256 descriptors each",
		expect:   "at most the 64 MiB memory limit held in the sandbox's socket queues: the kernel charges them (memory_limit) or refuses more",
		programs: []string{"sockpin"},
		argv:     []string{"./sockpin", mode, strconv.Itoa(procs)},
		limits:   api.Limits{MemoryBytes: sockpinLimit, PIDs: 64, OpenFiles: 256, WallTimeMS: 30_000, CPUTimeMS: 20_000},
		check: func(t *testing.T, _ *env, r *api.Result) {
			s := only(t, r)
			if s.Verdict == api.VerdictMemoryLimit {
				return
			}
			wantVerdict(t, s, api.VerdictOK)
			m := sockpinLine.FindStringSubmatch(s.Stdout)
			if m == nil {
				t.Fatalf("no result line in %q", s.Stdout)
			}
			netKB, _ := strconv.ParseInt(m[3], 10, 64)
			t.Logf("%s: socket queues %d KiB, host MemAvailable fell %s KiB, cgroup peak %d KiB", mode, netKB, m[4], s.MemoryPeakBytes>>10)
			if netKB<<10 > sockpinLimit+8<<20 {
				t.Errorf("the sandbox's sockets held %d KiB, above its %d KiB memory limit, charged to no cgroup", netKB, sockpinLimit>>10)
			}
			if mode == "netlink" && m[5] != "0" {
				t.Errorf("netlink protocols %s opened, want none", m[5])
			}
		},
	}
}

// tmpfsFiles makes empty files in $1 until it fails (at most 300,000) and
// says how many it made and why it stopped.
const tmpfsFiles = `import os, sys
d, n = sys.argv[1], 0
try:
    while n < 300000:
        os.close(os.open(f"{d}/f{n}", os.O_CREAT | os.O_WRONLY, 0o600))
        n += 1
    print("files", n, "no limit")
except OSError as e:
    print("files", n, e.strerror)
`

// wantInodeCap is the check of tmpfsFiles on a 64 MiB tmpfs: it stops at
// ENOSPC within the tmpfs's inode cap, one inode per 4 KiB of its size.
func wantInodeCap(t *testing.T, _ *env, r *api.Result) {
	s := only(t, r)
	wantVerdict(t, s, api.VerdictOK)
	var n int
	var why string
	f := strings.SplitN(strings.TrimSpace(s.Stdout), " ", 3)
	if len(f) == 3 {
		n, _ = strconv.Atoi(f[1])
		why = f[2]
	}
	if why != "No space left on device" || n > (64<<20)/4096 {
		t.Errorf("made %d files, then %q; want ENOSPC by %d files", n, why, (64<<20)/4096)
	}
}

func kernelCases() []escapeCase {
	return []escapeCase{
		sockpinCase("netlink", 2),
		sockpinCase("tcp", 4),
		sockpinCase("udp", 4),
		sockpinCase("unix_stream", 4),
		sockpinCase("unix_dgram", 4),
		sockpinCase("pipe", 4),
		{
			name:     "host_wide_tables",
			tries:    "take kernel tables that count host-wide or up to host root's limits: an AIO context, an inotify instance, a POSIX message queue, netlink sockets, as many queued signals as its rlimit allows",
			expect:   "io_setup, inotify_init1 and mq_open fail with ENOSYS, no netlink protocol opens, and at most 256 signals queue",
			programs: []string{"tables"},
			argv:     []string{"./tables"},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOK)
				want := "aio: ENOSYS\ninotify: ENOSYS\nmqueue: ENOSYS\nnetlink: none\n"
				if !strings.HasPrefix(s.Stdout, want) {
					t.Errorf("stdout %q, want it to start %q", s.Stdout, want)
				}
				var n int
				var why string
				if i := strings.Index(s.Stdout, "sigpending: "); i < 0 {
					t.Fatalf("no sigpending line in %q", s.Stdout)
				} else if _, err := fmt.Sscanf(s.Stdout[i:], "sigpending: %d then %s", &n, &why); err != nil || n > 256 || why != "EAGAIN" {
					t.Errorf("queued %d signals, then %q (%v); want EAGAIN by 256", n, why, err)
				}
			},
		},
		{
			name:   "tmpfs_inodes_tmp",
			tries:  "make empty files in /tmp (64 MiB) until it fails: each pins an inode and a dentry the byte cap does not count",
			expect: "ENOSPC by 16,384 files (one inode per 4 KiB of the cap)",
			argv:   []string{"python3", "-c", tmpfsFiles, "/tmp"},
			limits: api.Limits{WallTimeMS: 30_000},
			check:  wantInodeCap,
		},
		{
			name:   "tmpfs_inodes_dev_shm",
			tries:  "make empty files in /dev/shm (64 MiB) until it fails",
			expect: "ENOSPC by 16,384 files",
			argv:   []string{"python3", "-c", tmpfsFiles, "/dev/shm"},
			limits: api.Limits{WallTimeMS: 30_000},
			check:  wantInodeCap,
		},
		{
			name:   "tmpfs_inodes_workspace",
			tries:  "make empty files in the workspace (64 MiB), which outlives the step, until it fails",
			expect: "ENOSPC by 16,384 files",
			argv:   []string{"python3", "-c", tmpfsFiles, "."},
			limits: api.Limits{WallTimeMS: 30_000},
			check:  wantInodeCap,
		},
		{
			name:   "proc_locks",
			tries:  "read /proc/locks, where the daemon's lock of every live sandbox's uid shows as a byte range",
			expect: "an empty file",
			argv:   []string{"cat", "/proc/locks"},
			check:  okWithStdout(""),
		},
	}
}
