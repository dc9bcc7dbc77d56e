package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sandboxd/sandboxd/api/client"
)

// Exit statuses.
const (
	exitOK          = 0
	exitNotOK       = 1 // a step's verdict is not ok, or a job did not complete
	exitUsage       = 2
	exitDaemon      = 3 // the daemon answered an error, or could not be reached
	exitInterrupted = 130
)

const usage = `usage: sandboxctl [--socket PATH] COMMAND ...

commands:
  run [flags] -- ARGV...     run one command in a sandbox and show its result
  run --job FILE             run a job given as JSON (steps, files, limits, tracked files)
  batch [flags] FILE.jsonl   run the jobs of an NDJSON file ("-": stdin)
  ps                         list the jobs running or queued
  cancel ID                  cancel a job
  info                       show the daemon, its host and its profiles
  ping                       check that the daemon answers
  files upload FILE...       put files into the daemon's file cache; prints their ids
  files ls | get ID [-o FILE] | rm ID...
                             list, download, delete cached files

--socket PATH chooses the daemon (default: $SANDBOXD_SOCKET, or
` + client.DefaultSocket + `).
Run "sandboxctl COMMAND -h" for a command's flags.

--version prints the version.

exit status: 0 ok; 1 a step's verdict is not ok; 2 bad usage;
3 the daemon answered an error or could not be reached;
130 interrupted (the job is cancelled).
`

// version is set at build time.
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// cli is what every command works with.
type cli struct {
	socket string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// jobFile is set when run sends a job file (--job): its errors are
	// about the file, not about flags.
	jobFile bool
}

// command is one subcommand: it parses its own arguments.
type command func(ctx context.Context, c *cli, args []string) int

var commands = map[string]command{
	"run":    runCmd,
	"batch":  batchCmd,
	"ps":     psCmd,
	"cancel": cancelCmd,
	"info":   infoCmd,
	"ping":   pingCmd,
	"files":  filesCmd,
}

// run is the whole program, testable: args without the program name.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr}
	fs := flag.NewFlagSet("sandboxctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.socket, "socket", "", "the daemon's socket")
	showVersion := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return exitOK
		}
		return c.usageError("", err)
	}
	if *showVersion {
		fmt.Fprintln(stdout, "sandboxctl", version)
		return exitOK
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name, rest := fs.Arg(0), fs.Args()[1:]
	if name == "help" {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		return c.usageError("", fmt.Errorf("unknown command %q", name))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cmd(ctx, c, rest)
}

func (c *cli) client() *client.Client { return client.New(c.socket) }

// flags is a command's flag set and its synopsis, for -h.
type flags struct {
	*flag.FlagSet
	synopsis string
}

// newFlags makes a command's flag set; every command also takes --socket.
func (c *cli) newFlags(name, synopsis string) *flags {
	fs := flag.NewFlagSet("sandboxctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {} // parse prints it, for -h only
	fs.StringVar(&c.socket, "socket", c.socket, "the daemon's socket `PATH` (default $SANDBOXD_SOCKET or "+client.DefaultSocket+")")
	return &flags{fs, synopsis}
}

// parse parses a command's flags. It returns false with the exit status
// when the command should stop: -h (0) or a bad flag (2).
func (c *cli) parse(fs *flags, args []string) (int, bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, true
	case errors.Is(err, flag.ErrHelp):
		c.printUsage(fs)
		return exitOK, false
	}
	return c.usageError(fs.Name(), err), false
}

// printUsage prints a command's synopsis and flags, spelled --name.
func (c *cli) printUsage(fs *flags) {
	fmt.Fprintf(c.stdout, "usage: %s %s\n\nflags:\n", fs.Name(), fs.synopsis)
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		if _, ok := f.Value.(limitFlag); ok {
			arg = "N"
		}
		if arg != "" {
			arg = " " + arg
		}
		fmt.Fprintf(c.stdout, "  --%s%s\n        %s\n", f.Name, arg, text)
	})
}

// usageError prints a bad-usage message, naming the flag or argument.
func (c *cli) usageError(cmd string, err error) int {
	prefix := "sandboxctl"
	if cmd != "" {
		prefix = cmd
	}
	fmt.Fprintf(c.stderr, "%s: %s\n", prefix, dashDash(err.Error()))
	help := "sandboxctl -h"
	if cmd != "" {
		help = cmd + " -h"
	}
	fmt.Fprintf(c.stderr, "run '%s' for usage\n", help)
	return exitUsage
}

// dashDash writes the flag package's "-name" as "--name", the way this
// command's usage spells flags.
func dashDash(msg string) string {
	for _, p := range []string{"for flag -", "for -", "defined: -", "argument: -"} {
		msg = strings.Replace(msg, p, p+"-", 1)
	}
	return msg
}

// fail reports an error of the daemon or of reaching it.
func (c *cli) fail(ctx context.Context, err error) int {
	if ctx.Err() != nil {
		fmt.Fprintln(c.stderr, "sandboxctl: interrupted")
		return exitInterrupted
	}
	fmt.Fprintf(c.stderr, "sandboxctl: %v\n", err)
	return exitDaemon
}
