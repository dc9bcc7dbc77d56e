package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
	"github.com/sandboxd/sandboxd/engine"
)

// envFlags collects repeated --env K=V.
type envFlags map[string]string

func (e envFlags) String() string { return "" }
func (e envFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not K=V", v)
	}
	e[k] = val
	return nil
}

// uint32Flag is a flag holding a uint32, such as a uid.
type uint32Flag uint32

func (u *uint32Flag) String() string { return strconv.FormatUint(uint64(*u), 10) }
func (u *uint32Flag) Set(v string) error {
	n, err := strconv.ParseUint(v, 0, 32)
	if err != nil {
		return errors.Unwrap(err) // the flag package names the flag and the value
	}
	*u = uint32Flag(n)
	return nil
}

// limitFlags maps each limit to its flag name.
var limitFlags = map[string]string{
	"cpu_time_ms": "cpu-time-ms", "wall_time_ms": "wall-time-ms", "memory_bytes": "memory-bytes",
	"pids": "pids", "output_bytes": "output-bytes", "file_size_bytes": "file-size-bytes",
	"open_files": "open-files", "stack_bytes": "stack-bytes", api.CPUsField: "cpus",
}

func execMain(args []string) int {
	fs := flag.NewFlagSet("sandboxd exec", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sandboxd exec [flags] -- ARGV...\n\nRuns ARGV once in a fresh sandbox and prints its result as one JSON object.\nExit status 0 whenever a result was produced; 1 if the sandbox failed; 2 for bad usage.\n\nflags:\n")
		fs.PrintDefaults()
	}
	var lim api.Limits
	fs.Int64Var(&lim.CPUTimeMS, "cpu-time-ms", 0, "CPU time limit in ms, all processes and threads together (default: the profile's, 10000)")
	fs.Int64Var(&lim.WallTimeMS, "wall-time-ms", 0, "wall-clock limit in ms (default 20000)")
	fs.Int64Var(&lim.MemoryBytes, "memory-bytes", 0, "memory limit in bytes, swap off (default 536870912)")
	fs.Int64Var(&lim.PIDs, "pids", 0, "most processes and threads at once (default 64)")
	fs.Int64Var(&lim.OutputBytes, "output-bytes", 0, "cap on stdout and on stderr, each (default 1048576)")
	fs.Int64Var(&lim.FileSizeBytes, "file-size-bytes", 0, "largest file the program may write (default 16777216)")
	fs.Int64Var(&lim.OpenFiles, "open-files", 0, "most open file descriptors (default 256)")
	fs.Int64Var(&lim.StackBytes, "stack-bytes", 0, "stack size limit in bytes (default 67108864)")
	fs.Float64Var(&lim.CPUs, "cpus", 0, "CPU rate limit in CPUs, e.g. 0.5 or 2, all processes and threads together (default 1, at most the host's CPUs)")
	stdinPath := fs.String("stdin", "", "file to give the program as standard input (default: empty)")
	workdir := fs.String("workdir", "", "host directory bound read-write as the working directory (default: a fresh private tmpfs)")
	env := envFlags{}
	fs.Var(env, "env", "K=V set in the program's environment (repeatable)")
	cfg := engine.DefaultConfig()
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "where the engine keeps its host state")
	fs.Var((*uint32Flag)(&cfg.UIDBase), "uid-base", "host uids for the sandbox (as the daemon's uid_base; the one below is the init's)")
	fs.Var((*uint32Flag)(&cfg.UIDCount), "uid-count", "how many host uids from --uid-base")
	fs.StringVar(&cfg.CgroupSubtree, "cgroup-subtree", cfg.CgroupSubtree, "the cgroup subtree beneath this process's own cgroups (as the daemon's cgroup_subtree)")
	socket := fs.String("socket", "", "run the command through the daemon listening on this socket `PATH` (POST /v1/run) instead of an engine of this process's own: the same sandbox, result and exit status, several times faster to start (not with --workdir, --state-dir, --uid-base, --uid-count, --cgroup-subtree)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	argv := fs.Args()
	if len(argv) == 0 {
		fmt.Fprintln(os.Stderr, "sandboxd exec: no command given (usage: sandboxd exec [flags] -- ARGV...)")
		return 2
	}
	// A limit given as 0 is an error, not "the default".
	var bad error
	fs.Visit(func(f *flag.Flag) {
		for _, lf := range api.LimitFields {
			if limitFlags[lf.JSON] == f.Name && *lf.Get(&lim) == 0 && bad == nil {
				bad = fmt.Errorf("--%s: must be positive, got 0", f.Name)
			}
		}
		if f.Name == "cpus" && lim.CPUs == 0 && bad == nil {
			bad = errors.New("--cpus: must be above 0, got 0")
		}
	})
	if *socket != "" {
		// The daemon's engine makes the sandbox: the flags that set up
		// an engine of this process's own do not apply.
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "workdir", "state-dir", "uid-base", "uid-count", "cgroup-subtree":
				if bad == nil {
					bad = fmt.Errorf("--%s: not with --socket (the daemon's own configuration sets that up)", f.Name)
				}
			}
		})
	}
	profile := engine.DefaultProfile()
	if bad == nil && *socket == "" {
		// The daemon checks the limits against its own profile's.
		bad = lim.Validate(profile.Max, func(field string) string { return "--" + limitFlags[field] })
	}
	if bad == nil {
		bad = engine.ValidateEnv(env, "--env")
	}
	if bad == nil {
		bad = cfg.Validate(func(key string) string { return "--" + strings.ReplaceAll(key, "_", "-") })
	}
	if bad != nil {
		for _, line := range strings.Split(bad.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "sandboxd exec:", line)
		}
		return 2
	}

	if *socket != "" {
		return execThrough(*socket, argv, env, lim, *stdinPath)
	}

	req := &engine.StepRequest{Argv: argv, Env: env, Limits: lim}
	if *stdinPath != "" {
		f, err := os.Open(*stdinPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sandboxd exec: --stdin:", err)
			return 2
		}
		defer f.Close()
		req.Stdin = f
	}
	if *workdir != "" {
		fi, err := os.Stat(*workdir)
		if err != nil || !fi.IsDir() {
			fmt.Fprintf(os.Stderr, "sandboxd exec: --workdir: %s is not a directory\n", *workdir)
			return 2
		}
	}

	// One sandbox, made by a helper that is a thread of this process: no
	// helper executable to copy, no second process to start.
	cfg.Helpers = 1
	eng, err := engine.New(cfg, engine.Options{RunPrefix: engine.ExecRunPrefix(os.Getpid()), InProcessHelper: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd exec:", err)
		return 1
	}
	// A sandboxd exec killed outright cannot clean up after itself: the
	// next one does.
	if err := eng.ReclaimExecRuns(); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd exec: reclaiming the leftovers of earlier runs:", err)
	}
	if *workdir != "" {
		id, err := eng.AcquireID()
		if err != nil {
			fmt.Fprintln(os.Stderr, "sandboxd exec:", err)
			return 1
		}
		defer eng.ReleaseID(id)
		giveBack, err := engine.LendWorkdir(*workdir, id)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sandboxd exec: --workdir:", err)
			return 1
		}
		defer func() {
			if err := giveBack(); err != nil {
				fmt.Fprintln(os.Stderr, "sandboxd exec: --workdir:", err)
			}
		}()
		req.HostID = id
		req.Workdir = *workdir
	}

	// The sandbox is torn down after the result is out; the workdir goes
	// back to its owner after that. The cgroup subtree goes too, unless
	// another sandboxd process has runs in it (one that starts later makes
	// it again).
	defer eng.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	res, err := eng.RunStep(ctx, req)
	printStepResult(&res)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd exec: the sandbox failed:", err)
		return 1
	}
	return 0
}

// printStepResult writes a step's result as exec prints it, whichever way
// it ran.
func printStepResult(res *api.StepResult) {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.Encode(res)
}

// execJob and execStep are the fields of api.Job and api.Step that exec
// --socket sends. Encoding the whole api.Job type for the first time, and
// decoding the whole api.Result, built encoding/json's reflection tables
// for every type they hold: about an eighth of this process's CPU (0.5 ms).
type execJob struct {
	Steps [1]execStep `json:"steps"`
}

type execStep struct {
	Argv        []string          `json:"argv"`
	Env         map[string]string `json:"env,omitempty"`
	Stdin       string            `json:"stdin,omitempty"`
	StdinBase64 string            `json:"stdin_base64,omitempty"`
	Limits      api.Limits        `json:"limits"`
}

// execAnswer is what exec --socket reads of the job's result: its step
// result is printed as the daemon wrote it, which is encoding/json's form
// of an api.StepResult (daemon/resultjson.go), indented as exec indents.
type execAnswer struct {
	Status  string            `json:"status"`
	Message string            `json:"message"`
	Steps   []json.RawMessage `json:"steps"`
}

// execThrough is exec --socket: the step as a one-step job of the daemon
// at socket. No signal handler is set: a signal ends this process, and the
// daemon ends the job when the connection closes, as for any client.
func execThrough(socket string, argv []string, env map[string]string, lim api.Limits, stdinPath string) int {
	job := execJob{Steps: [1]execStep{{Argv: argv, Env: env, Limits: lim}}}
	step := &job.Steps[0]
	if stdinPath != "" {
		b, err := os.ReadFile(stdinPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sandboxd exec: --stdin:", err)
			return 2
		}
		step.Stdin, step.StdinBase64 = api.StdinFields(b)
	}
	body, err := json.Marshal(&job)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd exec:", err)
		return 1
	}
	c := client.New(socket)
	defer c.Close()
	var res execAnswer
	if err := c.Do(context.Background(), http.MethodPost, "/v1/run", bytes.NewReader(body), &res); err != nil {
		var ue *client.UnreachableError
		if errors.As(err, &ue) {
			var op *net.OpError
			if errors.As(ue.Err, &op) && op.Err != nil {
				ue.Err = op.Err // drop "dial unix PATH", which repeats the socket
			}
			fmt.Fprintf(os.Stderr, "sandboxd exec: --socket: cannot reach the daemon at %s: %v\n", ue.Socket, ue.Err)
			return 1
		}
		fmt.Fprintln(os.Stderr, "sandboxd exec:", err)
		var se *client.StatusError
		if errors.As(err, &se) && se.HTTPStatus == http.StatusBadRequest {
			return 2 // the daemon refused the flags' values: bad usage
		}
		return 1
	}
	if len(res.Steps) != 1 {
		fmt.Fprintf(os.Stderr, "sandboxd exec: the daemon answered with %d step results for one step (job status %q: %s)\n", len(res.Steps), res.Status, res.Message)
		return 1
	}
	var out bytes.Buffer
	if err := json.Indent(&out, res.Steps[0], "", "  "); err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd exec: the daemon's step result:", err)
		return 1
	}
	out.WriteByte('\n')
	os.Stdout.Write(out.Bytes())
	if res.Status != api.StatusCompleted {
		fmt.Fprintf(os.Stderr, "sandboxd exec: the job's status is %s: %s\n", res.Status, res.Message)
		return 1
	}
	return 0
}
