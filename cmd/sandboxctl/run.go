package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/sandboxd/sandboxd/api"
)

// runCmd is `sandboxctl run`: one job of one step, or the job of a file.
func runCmd(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("run", "[flags] -- ARGV...\n       sandboxctl run [--json] [--stream] --job FILE")
	var (
		limits   api.Limits
		files    = fileFlags{}
		env      = envFlags{}
		track    listFlags
		jobFile  = fs.String("job", "", "run the job in `FILE` (\"-\": stdin) instead of ARGV: the JSON body of POST /v1/run, sent as it is (several steps, files, limits, tracked files)")
		stdin    = fs.String("stdin", "", "`FILE` to give as standard input (\"-\": this command's stdin)")
		stdinID  = fs.String("stdin-cached", "", "the cached file `ID` to give as standard input (sandboxctl files upload)")
		expected = fs.String("expected-stdout", "", "`TEXT` the standard output should be (trailing whitespace aside)")
		checks   stdoutFlags
		profile  = fs.String("profile", "", "the daemon's profile `NAME` (default: the daemon's default)")
		asJSON   = fs.Bool("json", false, "print the result as JSON")
		stream   = fs.Bool("stream", false, "copy the program's output as it comes, then show the result")
	)
	addLimitFlags(fs.FlagSet, &limits)
	fs.Var(cachedFileFlags(files), "file-cached", "a workspace file from the file cache: `NAME=ID`, read-only (repeatable)")
	checks.add(fs.FlagSet)
	fs.Var(files, "file", "a workspace file: `NAME=@PATH` (a host file, byte for byte) or NAME=TEXT (repeatable)")
	fs.Var(env, "env", "an environment variable `K=V` (repeatable)")
	fs.Var(&track, "track", "a workspace `FILE` to read back after the run and show (repeatable)")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if *jobFile != "" {
		return c.runJobFile(ctx, fs, *jobFile, *asJSON, *stream)
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return c.usageError(fs.Name(), errors.New("no command given: sandboxctl run [flags] -- ARGV..."))
	}

	step := api.Step{Argv: argv, Limits: limits}
	if len(env) > 0 {
		step.Env = env
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "expected-stdout" {
			step.ExpectedStdout = expected
		}
	})
	if *stdin != "" && *stdinID != "" {
		return c.usageError(fs.Name(), errors.New("--stdin, --stdin-cached: give one"))
	}
	step.StdinCached = *stdinID
	checks.apply(&step)
	if *stdin != "" {
		b, err := readInput(*stdin, c.stdin)
		if err != nil {
			return c.usageError(fs.Name(), fmt.Errorf("--stdin: %w", err))
		}
		step.Stdin, step.StdinBase64 = api.StdinFields(b)
	}
	job := &api.Job{Profile: *profile, Steps: []api.Step{step}, TrackedFiles: track}
	if len(files) > 0 {
		job.Files = files
	}

	if *stream {
		return c.runStream(ctx, func(fn func(*api.Event) error) (*api.Result, error) {
			return c.client().RunStream(ctx, job, fn)
		}, *asJSON)
	}
	res, err := c.client().Run(ctx, job)
	return c.showRun(ctx, res, err, *asJSON)
}

// runJobFile is `sandboxctl run --job FILE`: the file's job, sent as it
// is, so that the daemon checks it as it would any client's.
func (c *cli) runJobFile(ctx context.Context, fs *flags, path string, asJSON, stream bool) int {
	if fs.NArg() > 0 {
		return c.usageError(fs.Name(), errors.New("--job: the job file gives the steps; no ARGV with it"))
	}
	var extra string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "job", "json", "stream", "socket":
		default:
			if extra == "" {
				extra = f.Name
			}
		}
	})
	if extra != "" {
		return c.usageError(fs.Name(), fmt.Errorf("--job: the job file gives the whole job; --%s cannot be added", extra))
	}
	body, err := readInput(path, c.stdin)
	if err != nil {
		return c.usageError(fs.Name(), fmt.Errorf("--job: %w", err))
	}
	c.jobFile = true
	if stream {
		return c.runStream(ctx, func(fn func(*api.Event) error) (*api.Result, error) {
			return c.client().RunStreamJSON(ctx, body, fn)
		}, asJSON)
	}
	res, err := c.client().RunJSON(ctx, body)
	return c.showRun(ctx, res, err, asJSON)
}

// showRun prints a run's result, or its error, and gives the exit status.
func (c *cli) showRun(ctx context.Context, res *api.Result, err error, asJSON bool) int {
	if err != nil {
		return c.failRun(ctx, err)
	}
	if asJSON {
		printJSON(c.stdout, res)
		return c.judge(res, true)
	}
	printResult(c.stdout, res, true)
	return c.judge(res, false)
}

// runStream runs a job with events: the program's output is copied as it
// comes (or, with asJSON, every event printed as a line), then the result
// is shown on stderr, where it does not mix with the output.
func (c *cli) runStream(ctx context.Context, run func(fn func(*api.Event) error) (*api.Result, error), asJSON bool) int {
	res, err := run(func(ev *api.Event) error {
		if asJSON {
			b, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			_, err = c.stdout.Write(append(b, '\n'))
			return err
		}
		switch ev.Event {
		case api.EventStdout:
			_, err := io.WriteString(c.stdout, ev.Data)
			return err
		case api.EventStderr:
			_, err := io.WriteString(c.stderr, ev.Data)
			return err
		}
		return nil
	})
	if err != nil {
		return c.failRun(ctx, err)
	}
	if asJSON {
		return c.judge(res, true)
	}
	fmt.Fprintln(c.stderr, "---")
	printResult(c.stderr, res, false)
	return c.judge(res, false)
}

// failRun is fail, and names the flag behind a limit the daemon refused.
// A job from a file (--job) set no flags, and gets no such word.
func (c *cli) failRun(ctx context.Context, err error) int {
	code := c.fail(ctx, err)
	var apiErr *api.Error
	if c.jobFile || !errors.As(err, &apiErr) || apiErr.Code != api.CodeInvalidArgument {
		return code
	}
	field, ok := strings.CutPrefix(apiErr.Message, "steps[0].limits.")
	field, _, _ = strings.Cut(field, ":")
	for _, f := range append(api.LimitFields, api.LimitField{JSON: api.CPUsField}) {
		if ok && f.JSON == field {
			fmt.Fprintf(c.stderr, "sandboxctl: that limit is --%s\n", limitFlagName(field))
		}
	}
	if flag := stdoutFlagOf(apiErr.Message); flag != "" {
		fmt.Fprintf(c.stderr, "sandboxctl: that is --%s\n", flag)
	}
	return code
}

func readInput(path string, stdin io.Reader) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(path)
}

// judge gives the exit status of a result: 0 when the job completed and
// every step is ok (and its stdout matched, where that was asked). When
// say is set, what was wrong goes to stderr (the result printed did not
// say it in words).
func (c *cli) judge(res *api.Result, say bool) int {
	code := exitOK
	if res.Status != api.StatusCompleted {
		code = exitNotOK
		if say {
			fmt.Fprintf(c.stderr, "sandboxctl: job %s %s %s\n", res.ID, res.Status, res.Message)
		}
	}
	for i, s := range res.Steps {
		bad := ""
		switch {
		case s.Verdict != api.VerdictOK:
			bad = string(s.Verdict)
		case s.StdoutMatches != nil && !*s.StdoutMatches:
			bad = "stdout does not match the expected output"
		}
		if bad == "" {
			continue
		}
		code = exitNotOK
		if say {
			fmt.Fprintf(c.stderr, "sandboxctl: step %d: %s\n", i+1, bad)
		}
	}
	return code
}

func printJSON(w io.Writer, v any) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		fmt.Fprintf(w, "cannot encode the answer: %v\n", err)
		return
	}
	w.Write(append(b, '\n'))
}

// printResult shows a result for people: per step the verdict, how it
// ended, what it used, and (with outputs) its stdout and stderr.
func printResult(w io.Writer, res *api.Result, outputs bool) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s:\t"+format+"\n", append([]any{k}, a...)...) }
	row("job", "%s", res.ID)
	if res.Status != api.StatusCompleted || res.Message != "" {
		row("status", "%s", res.Status)
		if res.Message != "" {
			row("message", "%s", res.Message)
		}
	}
	for i, s := range res.Steps {
		if len(res.Steps) > 1 {
			fmt.Fprintf(tw, "step %d of %d\n", i+1, len(res.Steps))
		}
		row("verdict", "%s", s.Verdict)
		if s.Verdict == api.VerdictSkipped {
			continue
		}
		if len(s.Programs) > 0 {
			// An interactive step: each program as a step, then the
			// captured pipes.
			for _, p := range s.Programs {
				fmt.Fprintf(tw, "program %s\n", p.Name)
				row("verdict", "%s", p.Verdict)
				printMeasures(w, tw, row, &p.StepResult, outputs)
			}
			tw.Flush()
			for _, p := range s.Pipes {
				printOutput(w, "pipe "+p.From+" -> "+p.To, p.Data, p.Truncated)
			}
			continue
		}
		printMeasures(w, tw, row, &s, outputs)
	}
	for _, name := range sortedKeys(res.Files) {
		f := res.Files[name]
		tw.Flush()
		if f == nil {
			fmt.Fprintf(w, "--- file %s: missing ---\n", name)
			continue
		}
		printOutput(w, "file "+name, f.Content, f.Truncated)
	}
	tw.Flush()
}

// printMeasures shows how a step (or a program) ended, what it used and,
// with outputs, its stdout and stderr.
func printMeasures(w io.Writer, tw *tabwriter.Writer, row func(k, format string, a ...any), s *api.StepResult, outputs bool) {
	switch {
	case s.Verdict == api.VerdictExecFailed: // it never ran
	case s.Signal != "":
		row("exit", "signal %s", s.Signal)
	default:
		row("exit", "code %d", s.ExitCode)
	}
	row("cpu", "%.1f ms (user %.1f, sys %.1f)", s.CPUTimeMS, s.UserTimeMS, s.SysTimeMS)
	row("wall", "%.1f ms", s.WallTimeMS)
	row("memory peak", "%.1f MiB", float64(s.MemoryPeakBytes)/(1<<20))
	row("pids", "%d", s.PIDsPeak)
	if s.StdoutMatches != nil {
		row("stdout matches", "%s", yesNo(*s.StdoutMatches))
	}
	if s.Message != "" {
		row("message", "%s", s.Message)
	}
	if outputs {
		tw.Flush()
		printOutput(w, "stdout", s.Stdout, s.StdoutTruncated)
		printOutput(w, "stderr", s.Stderr, s.StderrTruncated)
	} else {
		if s.StdoutTruncated {
			row("stdout", "truncated")
		}
		if s.StderrTruncated {
			row("stderr", "truncated")
		}
	}
}

// printOutput prints one labelled output, ending on a new line.
func printOutput(w io.Writer, label, text string, truncated bool) {
	var notes []string
	if text == "" {
		notes = append(notes, "empty")
	}
	if truncated {
		notes = append(notes, "truncated")
	}
	if len(notes) > 0 {
		label += " (" + strings.Join(notes, ", ") + ")"
	}
	fmt.Fprintf(w, "--- %s ---\n", label)
	io.WriteString(w, text)
	if text != "" && !strings.HasSuffix(text, "\n") {
		io.WriteString(w, "\n")
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
