package escape

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// fill writes $1 bytes of zeros to the file $2, and exits with the writer's
// status after saying how far it got.
const fill = `head -c "$1" /dev/zero > "$2"; rc=$?; stat -c "size=%s" "$2"; exit $rc`

// wantENOSPC is the check of a fill that must stop at a file system's cap:
// the writer fails with ENOSPC (exit 1) once the file holds exactly size
// bytes.
func wantENOSPC(size int64) func(*testing.T, *env, *api.Result) {
	return func(t *testing.T, _ *env, r *api.Result) {
		t.Helper()
		s := only(t, r)
		wantVerdict(t, s, api.VerdictNonzeroExit)
		if s.ExitCode != 1 || !strings.Contains(s.Stderr, "No space left on device") {
			t.Errorf("exit %d stderr %q, want 1 and ENOSPC", s.ExitCode, s.Stderr)
		}
		wantStdout(t, s, "size="+strconv.FormatInt(size, 10)+"\n")
	}
}

// wantMemoryLimit is the check of a memory bomb: memory_limit, the peak at
// most the limit (and a little rounding).
func wantMemoryLimit(limit int64) func(*testing.T, *env, *api.Result) {
	return func(t *testing.T, _ *env, r *api.Result) {
		t.Helper()
		s := only(t, r)
		wantVerdict(t, s, api.VerdictMemoryLimit)
		if s.MemoryPeakBytes > limit+1<<20 {
			t.Errorf("memory peak %d above the limit %d", s.MemoryPeakBytes, limit)
		}
	}
}

func resourceCases() []escapeCase {
	return []escapeCase{
		{
			name:     "fork_bomb",
			tries:    "every process forks forever (pids limit 32)",
			expect:   "contained at 32 processes, ended by the CPU or wall limit; the daemon still answers at once",
			programs: []string{"forkbomb"},
			argv:     []string{"./forkbomb"},
			limits:   api.Limits{PIDs: 32, CPUTimeMS: 1000, WallTimeMS: 5000},
			check: func(t *testing.T, e *env, r *api.Result) {
				s := only(t, r)
				if s.Verdict != api.VerdictCPUTimeLimit && s.Verdict != api.VerdictWallTimeLimit {
					t.Fatalf("verdict %s, want cpu_time_limit or wall_time_limit", s.Verdict)
				}
				if s.PIDsPeak > 32 {
					t.Errorf("pids peak %d above the limit 32", s.PIDsPeak)
				}
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := e.d.c.Ping(ctx); err != nil {
					t.Errorf("the daemon after the fork bomb: %v", err)
				}
				t.Logf("ping after the bomb: %v", time.Since(start))
			},
		},
		{
			name:     "fork_bomb_orphaned",
			tries:    "start a fork bomb in the background and exit at once, so that the step ends while it forks",
			expect:   "the step is ok (its program exited 0), every bomb process dies with the step; the next step sees only itself",
			programs: []string{"forkbomb"},
			shape: func(_ *env, j *api.Job) {
				j.Steps = []api.Step{
					{Argv: []string{"sh", "-c", "./forkbomb & sleep 0.2; exit 0"}, Limits: api.Limits{PIDs: 32}},
					{Argv: []string{"python3", "-c", pyComms}},
				}
			},
			check: func(t *testing.T, _ *env, r *api.Result) {
				if r.Status != api.StatusCompleted || len(r.Steps) != 2 {
					t.Fatalf("status %s, %d steps", r.Status, len(r.Steps))
				}
				wantVerdict(t, r.Steps[0], api.VerdictOK)
				wantVerdict(t, r.Steps[1], api.VerdictOK)
				wantStdout(t, r.Steps[1], "['python3', 'sandboxd-init']\n")
			},
		},
		{
			name:     "memory_bomb_heap",
			tries:    "malloc and touch memory without end (memory limit 64 MiB)",
			expect:   "memory_limit with the peak at the limit; what it printed before is kept",
			programs: []string{"heap"},
			argv:     []string{"./heap"},
			limits:   api.Limits{MemoryBytes: 64 << 20},
			check: func(t *testing.T, e *env, r *api.Result) {
				wantMemoryLimit(64<<20)(t, e, r)
				if s := r.Steps[0]; !strings.HasPrefix(s.Stdout, "16 MiB\n32 MiB\n") {
					t.Errorf("stdout %q, want the progress before the kill", s.Stdout)
				}
			},
		},
		{
			name:     "memory_bomb_many_processes",
			tries:    "16 processes each malloc and touch memory without end (memory limit 64 MiB), hoping the OOM killer picks the init",
			expect:   "memory_limit: the OOM kills fall on the program's processes, never on the init (which would make it internal_error)",
			programs: []string{"heap"},
			argv:     []string{"sh", "-c", "for i in $(seq 16); do ./heap >/dev/null & done; wait"},
			limits:   api.Limits{MemoryBytes: 64 << 20},
			check:    wantMemoryLimit(64 << 20),
		},
		{
			name:     "memory_bomb_stack",
			tries:    "recurse without end with 4 KiB frames (stack limit 8 MiB, memory 256 MiB)",
			expect:   "signaled SIGSEGV at the stack limit, well below the memory limit",
			programs: []string{"stack"},
			argv:     []string{"./stack"},
			limits:   api.Limits{StackBytes: 8 << 20, MemoryBytes: 256 << 20},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictSignaled)
				if s.Signal != "SIGSEGV" {
					t.Errorf("signal %q, want SIGSEGV", s.Signal)
				}
				wantStdout(t, s, "4 MiB\n")
				if s.MemoryPeakBytes > 32<<20 {
					t.Errorf("memory peak %d: the stack grew past its limit", s.MemoryPeakBytes)
				}
			},
		},
		{
			name:   "tmpfs_bomb_tmp",
			tries:  "write 200 MB to /tmp (a tmpfs: memory) with the default 512 MiB memory limit",
			expect: "ENOSPC at the /tmp cap of 64 MiB",
			argv:   []string{"sh", "-c", fill, "sh", "200000000", "/tmp/fill"},
			limits: api.Limits{FileSizeBytes: 256 << 20},
			check:  wantENOSPC(64 << 20),
		},
		{
			name:   "tmpfs_bomb_dev_shm",
			tries:  "write 200 MB to /dev/shm with the default 512 MiB memory limit",
			expect: "ENOSPC at the /dev/shm cap of 64 MiB",
			argv:   []string{"sh", "-c", fill, "sh", "200000000", "/dev/shm/fill"},
			limits: api.Limits{FileSizeBytes: 256 << 20},
			check:  wantENOSPC(64 << 20),
		},
		{
			name:   "tmpfs_bomb_dev_shm_memory",
			tries:  "write 200 MB to /dev/shm with a 32 MiB memory limit (below the tmpfs cap)",
			expect: "memory_limit: tmpfs pages count against the step's memory",
			argv:   []string{"sh", "-c", fill, "sh", "200000000", "/dev/shm/fill"},
			limits: api.Limits{FileSizeBytes: 256 << 20, MemoryBytes: 32 << 20},
			check:  wantMemoryLimit(32 << 20),
		},
		{
			name:   "tmpfs_bomb_workspace_memory",
			tries:  "write 200 MB to the workspace (64 MiB tmpfs) with a 32 MiB memory limit",
			expect: "memory_limit: the workspace's pages count against the step's memory",
			argv:   []string{"sh", "-c", fill, "sh", "200000000", "/workspace/fill"},
			limits: api.Limits{FileSizeBytes: 256 << 20, MemoryBytes: 32 << 20},
			check:  wantMemoryLimit(32 << 20),
		},
		{
			name:   "disk_fill_workspace",
			tries:  "write 200 MB into a workspace of 8 MiB",
			expect: "ENOSPC at exactly the workspace cap",
			argv:   []string{"sh", "-c", fill, "sh", "200000000", "fill"},
			limits: api.Limits{FileSizeBytes: 256 << 20},
			shape:  func(_ *env, j *api.Job) { j.WorkspaceBytes = 8 << 20 },
			check:  wantENOSPC(8 << 20),
		},
		{
			name:     "fd_exhaustion",
			tries:    "open /dev/null until the kernel refuses (open_files 64)",
			expect:   "EMFILE after exactly 61 descriptors (64 less stdin, stdout, stderr)",
			programs: []string{"fds"},
			argv:     []string{"./fds"},
			limits:   api.Limits{OpenFiles: 64},
			check:    okWithStdout("opened 61 then EMFILE\n"),
		},
		{
			name:     "output_flood",
			tries:    "two processes write without end, one to stdout and one to stderr (output limit 1000 bytes each)",
			expect:   "output_limit; neither stream holds more than 1000 bytes; a truncated one holds exactly 1000 of its own bytes",
			programs: []string{"flood"},
			argv:     []string{"./flood"},
			limits:   api.Limits{OutputBytes: 1000},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOutputLimit)
				if !s.StdoutTruncated && !s.StderrTruncated {
					t.Errorf("neither stream says truncated")
				}
				for _, o := range []struct {
					name, data string
					truncated  bool
					fill       string
				}{{"stdout", s.Stdout, s.StdoutTruncated, "o"}, {"stderr", s.Stderr, s.StderrTruncated, "e"}} {
					if len(o.data) > 1000 || (o.truncated && len(o.data) != 1000) || strings.Trim(o.data, o.fill) != "" {
						t.Errorf("%s: %d bytes (truncated %v), want at most 1000 of %q, exactly 1000 when truncated", o.name, len(o.data), o.truncated, o.fill)
					}
				}
			},
		},
		{
			name:   "argv_too_many",
			tries:  "a step with 100001 arguments",
			expect: "400 naming steps[0].argv (at most 100000)",
			run: func(t *testing.T, e *env) {
				argv := make([]string, 100001)
				for i := range argv {
					argv[i] = "x"
				}
				argv[0] = "true"
				_, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: argv}}})
				wantInvalidErr(t, err, "steps[0].argv", "100001 arguments")
			},
		},
		{
			name:   "argv_one_huge_argument",
			tries:  "one argument of 200000 bytes (above the kernel's 128 KiB per string)",
			expect: "400 naming steps[0].argv[1]: execve could never take it",
			run: func(t *testing.T, e *env) {
				_, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"echo", strings.Repeat("A", 200000)}}}})
				wantInvalidErr(t, err, "steps[0].argv[1]: 200000 bytes, at most 131071", "one argument of 200000 bytes")
			},
		},
		{
			name:   "env_one_huge_variable",
			tries:  "one environment variable of 200000 bytes",
			expect: `400 naming steps[0].env["HUGE"]`,
			run: func(t *testing.T, e *env) {
				_, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"true"}, Env: map[string]string{"HUGE": strings.Repeat("B", 200000)}}}})
				wantInvalidErr(t, err, `steps[0].env["HUGE"]: 200005 bytes`, "one variable of 200000 bytes")
			},
		},
		{
			name:   "argv_above_the_stack_share",
			tries:  "3000 arguments of 100 bytes (300 kB) with a 1 MiB stack limit (exec allows a quarter of it)",
			expect: "exec_failed: E2BIG",
			argv:   append([]string{"true"}, repeat(strings.Repeat("C", 99), 3000)...),
			limits: api.Limits{StackBytes: 1 << 20},
			check:  wantE2BIG,
		},
		{
			name:     "threads_spinning",
			tries:    "17 threads spin (CPU limit 1000 ms on 2 CPUs)",
			expect:   "cpu_time_limit, with the CPU time counted over every thread, near the limit",
			programs: []string{"threads"},
			argv:     []string{"./threads"},
			limits:   api.Limits{CPUTimeMS: 1000},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictCPUTimeLimit)
				if s.CPUTimeMS < 1000 || s.CPUTimeMS > 1500 {
					t.Errorf("cpu %.1f ms, want within 1000..1500", s.CPUTimeMS)
				}
				if s.PIDsPeak < 17 {
					t.Errorf("pids peak %d: the threads did not all run", s.PIDsPeak)
				}
			},
		},
		{
			name:   "sleep_forever",
			tries:  "sleep infinity (wall limit 500 ms)",
			expect: "wall_time_limit, ended soon after the limit",
			argv:   []string{"sleep", "infinity"},
			limits: api.Limits{WallTimeMS: 500},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictWallTimeLimit)
				if s.WallTimeMS < 500 || s.WallTimeMS > 5000 {
					t.Errorf("wall %.1f ms, want 500..5000", s.WallTimeMS)
				}
			},
		},
		{
			name:   "stop_itself",
			tries:  "SIGSTOP itself and its child, hoping a stopped process escapes the end of the step (wall limit 500 ms)",
			expect: "wall_time_limit; the stopped processes are killed like any other",
			argv:   []string{"sh", "-c", "sleep 60 & kill -STOP $! $$"},
			limits: api.Limits{WallTimeMS: 500},
			check: func(t *testing.T, _ *env, r *api.Result) {
				wantVerdict(t, only(t, r), api.VerdictWallTimeLimit)
			},
		},
		{
			name:     "zombie_pile",
			tries:    "fork 40 children that exit at once, never reap them, and exit",
			expect:   "ok with 40 zombies seen; the init reaps them and nothing is left",
			programs: []string{"zombies"},
			argv:     []string{"./zombies"},
			check:    okWithStdout("zombies=40\n"),
		},
		{
			name:   "kill_everything",
			tries:  "kill -9 -1 from inside, with two background children",
			expect: "only the program's own processes die (the init refuses); the shell goes on and the step reports ok",
			argv:   []string{"sh", "-c", "sleep 60 & sleep 60 & kill -9 -1; echo \"kill rc=$?\"; wait; echo survived"},
			check:  okWithStdout("kill rc=0\nsurvived\n"),
		},
		{
			name:     "kill_low_pids",
			tries:    "SIGKILL every pid from 1 to 300 but its own",
			expect:   "nothing delivered: the init (pid 1 and its threads) refuses with EPERM, the rest do not exist; the daemon is unaffected",
			programs: []string{"killpids"},
			argv:     []string{"./killpids", "1", "300"},
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOK)
				checkKillpids(t, s.Stdout)
			},
		},
		{
			name:   "kill_the_daemon",
			tries:  "SIGKILL the daemon by its host pid",
			expect: "ESRCH: the daemon's pid does not exist in the sandbox's pid namespace; the daemon lives on",
			run: func(t *testing.T, e *env) {
				pid := strconv.Itoa(e.d.pid())
				res, err := e.d.c.Run(ctxT(t), &api.Job{
					Files: map[string]api.File{"killpids": program(t, "killpids")},
					Steps: []api.Step{{Argv: []string{"./killpids", pid}}},
				})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout("kill "+pid+": ESRCH\n")(t, e, res)
				if err := e.d.alive(context.Background()); err != nil {
					t.Error(err)
				}
			},
		},
	}
}

// pyComms prints the sorted names of every process in the sandbox.
const pyComms = `import os
print(sorted(open("/proc/%s/comm" % p).read().strip() for p in os.listdir("/proc") if p.isdigit()))`

func wantE2BIG(t *testing.T, _ *env, r *api.Result) {
	t.Helper()
	s := only(t, r)
	wantVerdict(t, s, api.VerdictExecFailed)
	if !strings.Contains(s.Message, "argument list too long") {
		t.Errorf("message %q, want E2BIG (argument list too long)", s.Message)
	}
}

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
