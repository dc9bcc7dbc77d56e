package escape

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

func persistenceCases() []escapeCase {
	return []escapeCase{
		{
			name:  "double_fork_setsid",
			tries: "fork, setsid, fork again, ignore every signal, and keep writing a heartbeat file in the background after the step's program exits",
			expect: "step 1 ok; by step 2 the heartbeat has stopped (the daemon's process was killed with its step) " +
				"and only step 2's own processes exist",
			programs: []string{"doublefork"},
			shape: func(_ *env, j *api.Job) {
				j.Steps = []api.Step{
					{Argv: []string{"./doublefork"}},
					{Argv: []string{"sh", "-c", `a=$(cat beat); sleep 0.5; b=$(cat beat)
[ -n "$a" ] && [ "$a" = "$b" ] && echo "heartbeat stopped" || echo "heartbeat goes on: $a $b"
set -- /proc/[0-9]*; echo "$# processes"`}},
				}
			},
			check: func(t *testing.T, _ *env, r *api.Result) {
				if r.Status != api.StatusCompleted || len(r.Steps) != 2 {
					t.Fatalf("status %s, %d steps", r.Status, len(r.Steps))
				}
				wantVerdict(t, r.Steps[0], api.VerdictOK)
				wantStdout(t, r.Steps[0], "parent done\n")
				wantVerdict(t, r.Steps[1], api.VerdictOK)
				// /proc holds the init and the shell, nothing of step 1.
				wantStdout(t, r.Steps[1], "heartbeat stopped\n2 processes\n")
			},
		},
		{
			name:   "background_survivor",
			tries:  "start nohup'd, signal-ignoring background loops and exit at once",
			expect: "step 1 ok; in step 2 only the init and the new program exist",
			shape: func(_ *env, j *api.Job) {
				j.Steps = []api.Step{
					{Argv: []string{"sh", "-c", "trap '' HUP TERM INT QUIT; nohup sh -c 'while :; do sleep 1; done' >/dev/null 2>&1 & (sleep 300 &) ; exit 0"}},
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
			name:  "leave_the_cgroup",
			tries: "move itself out of its cgroup through /sys/fs/cgroup, and read where /proc/self/cgroup puts it",
			expect: "ENOENT (no /sys at all); every hierarchy in /proc/self/cgroup shows the sandbox's own namespace " +
				"root, and the v2 line is 0::/",
			argv: []string{"python3", "-c", pyAttempt + `
attempt("write /sys/fs/cgroup/cgroup.procs", lambda: open("/sys/fs/cgroup/cgroup.procs", "w").write(str(os.getpid())))
attempt("write /sys/fs/cgroup/memory/cgroup.procs", lambda: open("/sys/fs/cgroup/memory/cgroup.procs", "w").write(str(os.getpid())))
lines = open("/proc/self/cgroup").read().split()
print("all at their root" if all(l.endswith(":/") for l in lines) else lines)
print([l for l in lines if l.startswith("0::")])
`},
			check: okWithStdout("write /sys/fs/cgroup/cgroup.procs: ENOENT\nwrite /sys/fs/cgroup/memory/cgroup.procs: ENOENT\nall at their root\n['0::/']\n"),
		},
	}
}

func apiCases() []escapeCase {
	return []escapeCase{
		{
			name:   "tracked_symlinks",
			tries:  "make tracked files symlinks to /etc/shadow, /proc/1/environ, the daemon's state dir, and a workspace file",
			expect: "null for every one (never followed, even inside the workspace)",
			argv: []string{"sh", "-c", `echo inside > real.txt
ln -s /etc/shadow shadow
ln -s /proc/1/environ environ
ln -s "$1" state
ln -s real.txt link.txt`, "sh", "STATE_DIR/config.toml"},
			shape: func(e *env, j *api.Job) {
				j.Steps[0].Argv[len(j.Steps[0].Argv)-1] = e.d.stateDir + "/config.toml"
				j.TrackedFiles = []string{"shadow", "environ", "state", "link.txt", "real.txt"}
			},
			check: func(t *testing.T, _ *env, r *api.Result) {
				wantVerdict(t, only(t, r), api.VerdictOK)
				wantTracked(t, r, map[string]string{"real.txt": "inside\n"}, "shadow", "environ", "state", "link.txt")
			},
		},
		{
			name:   "tracked_symlink_parent",
			tries:  "make a parent directory of a tracked file a symlink: to /etc, to the state dir's parent, to a workspace directory",
			expect: "null for every path through a symlinked directory; the real path reads",
			argv: []string{"sh", "-c", `mkdir real && echo inside > real/f
ln -s /etc etc
ln -s / root
ln -s real alias`},
			shape: func(_ *env, j *api.Job) {
				j.TrackedFiles = []string{"etc/passwd", "root/etc/passwd", "alias/f", "real/f"}
			},
			check: func(t *testing.T, _ *env, r *api.Result) {
				wantVerdict(t, only(t, r), api.VerdictOK)
				wantTracked(t, r, map[string]string{"real/f": "inside\n"}, "etc/passwd", "root/etc/passwd", "alias/f")
			},
		},
		{
			name:   "tracked_hard_links",
			tries:  "hard-link a host file (/etc/passwd, /usr/bin/su) into the workspace, and a workspace file to another name",
			expect: "the links to host files fail (EXDEV: another file system) and read back null; the workspace link is just that file",
			argv: []string{"sh", "-c", `ln /etc/passwd passwd 2>&1 | grep -c 'Invalid cross-device link'
ln /usr/bin/su su 2>&1 | grep -c 'Invalid cross-device link'
echo data > a && ln a b && echo linked`},
			shape: func(_ *env, j *api.Job) { j.TrackedFiles = []string{"passwd", "su", "b"} },
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOK)
				wantStdout(t, s, "1\n1\nlinked\n")
				wantTracked(t, r, map[string]string{"b": "data\n"}, "passwd", "su")
			},
		},
		{
			name:   "tracked_fifo_and_devices",
			tries:  "make tracked files a FIFO (to hang the daemon's read), a device node (mknod c 1 3), a directory, a Unix socket",
			expect: "mknod fails (EPERM); the FIFO, the missing device, the directory and the socket all read back null, at once",
			argv: []string{"sh", "-c", `mkfifo fifo
mknod dev c 1 3 2>&1 | grep -c 'Operation not permitted'
mkdir dir
python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind("sock")'
exit 0`},
			shape: func(_ *env, j *api.Job) { j.TrackedFiles = []string{"fifo", "dev", "dir", "sock"} },
			check: func(t *testing.T, _ *env, r *api.Result) {
				s := only(t, r)
				wantVerdict(t, s, api.VerdictOK)
				wantStdout(t, s, "1\n")
				wantTracked(t, r, nil, "fifo", "dev", "dir", "sock")
				if r.Timing.TotalMS > 10000 {
					t.Errorf("the job took %.0f ms: something waited on the FIFO", r.Timing.TotalMS)
				}
			},
		},
		{
			name:   "tracked_file_cap",
			tries:  "make a tracked file a 15 MiB sparse file (no space used), so that the daemon reads it all",
			expect: "the daemon reads at most tracked_file_bytes (1 MiB): truncated",
			argv:   []string{"truncate", "-s", "15M", "big"},
			shape:  func(_ *env, j *api.Job) { j.TrackedFiles = []string{"big"} },
			check: func(t *testing.T, _ *env, r *api.Result) {
				wantVerdict(t, only(t, r), api.VerdictOK)
				if f := r.Files["big"]; f == nil || len(f.Content) != 1<<20 || !f.Truncated {
					t.Errorf("tracked big: want 1 MiB, truncated")
				}
			},
		},
		{
			name:   "giant_body",
			tries:  "a request body of 5 MiB, above max_request_bytes (4 MiB)",
			expect: "413 body: larger than the cap; the daemon lives on",
			run: func(t *testing.T, e *env) {
				body := `{"steps":[{"argv":["true"],"stdin":"` + strings.Repeat("x", 5<<20) + `"}]}`
				var res api.Result
				err := e.d.c.Do(ctxT(t), http.MethodPost, "/v1/run", strings.NewReader(body), &res)
				var se *client.StatusError
				if !errors.As(err, &se) || se.HTTPStatus != http.StatusRequestEntityTooLarge || se.Err == nil ||
					se.Err.Code != api.CodeInvalidArgument || !strings.Contains(se.Err.Message, "body: larger than the cap") {
					t.Errorf("a 5 MiB body: %v, want 413 invalid_argument naming the cap", err)
				}
			},
		},
		{
			name:   "deeply_nested_json",
			tries:  "a body nesting arrays 100000 deep (in the free-form key), and one nesting objects 100000 deep",
			expect: "400 for both, naming key and the unknown a; the daemon lives on and runs the next job",
			run: func(t *testing.T, e *env) {
				const depth = 100000
				wantInvalid(t, e, `{"key":`+strings.Repeat("[", depth)+strings.Repeat("]", depth)+`,"steps":[{"argv":["true"]}]}`, "key: nested deeper than 1000")
				wantInvalid(t, e, strings.Repeat(`{"a":`, depth)+"1"+strings.Repeat("}", depth), "a: unknown field")
				res, err := e.d.c.Run(ctxT(t), &api.Job{Steps: []api.Step{{Argv: []string{"echo", "alive"}}}})
				if err != nil {
					t.Fatal(err)
				}
				okWithStdout("alive\n")(t, e, res)
			},
		},
		{
			name:   "file_name_dotdot",
			tries:  "job files named ../escape, a/../../escape, and .. itself",
			expect: "400 naming the field for each",
			run: func(t *testing.T, e *env) {
				for _, name := range []string{"../escape", "a/../../escape", ".."} {
					_, err := e.d.c.Run(ctxT(t), &api.Job{Files: map[string]api.File{name: {Content: "x"}}, Steps: []api.Step{{Argv: []string{"true"}}}})
					wantInvalidErr(t, err, fmt.Sprintf("files[%q]", name), name)
				}
			},
		},
		{
			name:   "file_name_nul",
			tries:  `a job file named "a\x00/etc/passwd" (a NUL cuts the name short in C)`,
			expect: "400 naming the field",
			run: func(t *testing.T, e *env) {
				wantInvalid(t, e, `{"files":{"a\u0000/etc/passwd":"x"},"steps":[{"argv":["true"]}]}`, `files["a\x00/etc/passwd"]`)
			},
		},
		{
			name:   "file_name_absolute",
			tries:  "job files named /etc/cron.d/evil and //tmp/evil",
			expect: "400 naming the field for each",
			run: func(t *testing.T, e *env) {
				for _, name := range []string{"/etc/cron.d/evil", "//tmp/evil"} {
					_, err := e.d.c.Run(ctxT(t), &api.Job{Files: map[string]api.File{name: {Content: "x"}}, Steps: []api.Step{{Argv: []string{"true"}}}})
					wantInvalidErr(t, err, fmt.Sprintf("files[%q]", name), name)
				}
			},
		},
		{
			name:   "file_name_unclean",
			tries:  "job files named a/./b, a//b, dir/ and ./x (names that clean to something else)",
			expect: "400 naming the field for each",
			run: func(t *testing.T, e *env) {
				for _, name := range []string{"a/./b", "a//b", "dir/", "./x"} {
					_, err := e.d.c.Run(ctxT(t), &api.Job{Files: map[string]api.File{name: {Content: "x"}}, Steps: []api.Step{{Argv: []string{"true"}}}})
					wantInvalidErr(t, err, fmt.Sprintf("files[%q]", name), name)
				}
			},
		},
		{
			name:   "too_many_names",
			tries:  "10001 job files, and 1001 tracked files",
			expect: "400 naming files, and tracked_files",
			run: func(t *testing.T, e *env) {
				files := map[string]api.File{}
				for i := 0; i <= 10000; i++ {
					files[fmt.Sprintf("f%d", i)] = api.File{Content: "x"}
				}
				_, err := e.d.c.Run(ctxT(t), &api.Job{Files: files, Steps: []api.Step{{Argv: []string{"true"}}}})
				wantInvalidErr(t, err, "files", "10001 files")
				var tracked []string
				for i := 0; i <= 1000; i++ {
					tracked = append(tracked, fmt.Sprintf("f%d", i))
				}
				_, err = e.d.c.Run(ctxT(t), &api.Job{TrackedFiles: tracked, Steps: []api.Step{{Argv: []string{"true"}}}})
				wantInvalidErr(t, err, "tracked_files", "1001 tracked files")
			},
		},
		{
			name:   "tracked_name_escapes",
			tries:  "tracked files named ../../etc/shadow, /etc/shadow, and a name with a NUL",
			expect: "400 naming tracked_files[i] for each",
			run: func(t *testing.T, e *env) {
				for _, name := range []string{"../../etc/shadow", "/etc/shadow", "a\x00b"} {
					_, err := e.d.c.Run(ctxT(t), &api.Job{TrackedFiles: []string{name}, Steps: []api.Step{{Argv: []string{"true"}}}})
					wantInvalidErr(t, err, "tracked_files[0]", fmt.Sprintf("%q", name))
				}
			},
		},
		{
			name:  "job_id_dot_names",
			tries: `job ids ".." and "." (they pass the id's character set, and the id names the job's workspace directory)`,
			expect: "400 naming id for each; nothing is made or touched outside the workspaces directory, and the " +
				"answer does not reveal host paths",
			run: func(t *testing.T, e *env) {
				for _, id := range []string{"..", "."} {
					res, err := e.d.c.Run(ctxT(t), &api.Job{ID: id, Steps: []api.Step{{Argv: []string{"true"}}}})
					if err == nil {
						t.Errorf("id %q: the job was accepted: status %s, message %q", id, res.Status, res.Message)
						if strings.Contains(res.Message, e.d.stateDir) {
							t.Errorf("id %q: the answer reveals the daemon's state dir: %q", id, res.Message)
						}
						continue
					}
					wantInvalidErr(t, err, "id", fmt.Sprintf("id %q", id))
				}
				if err := e.d.alive(context.Background()); err != nil {
					t.Error(err)
				}
			},
		},
		{
			name:   "stdin_is_private",
			tries:  "write into its stdin (a memfd of the daemon's) and read back a step later",
			expect: "the next step's stdin is fresh: what step 1 wrote is gone",
			shape: func(_ *env, j *api.Job) {
				j.Steps = []api.Step{
					{Argv: []string{"sh", "-c", "echo planted >&0; exit 0"}, Stdin: "original\n"},
					{Argv: []string{"cat"}, Stdin: "original\n"},
				}
			},
			check: func(t *testing.T, _ *env, r *api.Result) {
				if r.Status != api.StatusCompleted || len(r.Steps) != 2 {
					t.Fatalf("status %s, %d steps", r.Status, len(r.Steps))
				}
				wantVerdict(t, r.Steps[1], api.VerdictOK)
				wantStdout(t, r.Steps[1], "original\n")
			},
		},
	}
}

// wantTracked checks the tracked files of a result: those in want hold
// exactly that content, the nulls are present and null.
func wantTracked(t *testing.T, r *api.Result, want map[string]string, nulls ...string) {
	t.Helper()
	for name, content := range want {
		if f := r.Files[name]; f == nil || f.Content != content || f.Truncated {
			t.Errorf("tracked %s: %+v, want %q", name, f, content)
		}
	}
	for _, name := range nulls {
		if f, ok := r.Files[name]; !ok || f != nil {
			t.Errorf("tracked %s: %+v (present %v), want null", name, f, ok)
		}
	}
}
