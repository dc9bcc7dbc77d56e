package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/daemon"
)

func serveMain(args []string) int {
	fs := flag.NewFlagSet("sandboxd serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sandboxd serve [--socket PATH] [--config FILE]\n\nServes the v1 API on a Unix socket until SIGTERM or SIGINT, then drains.\nSIGHUP reads the config file again (docs/operations.md, \"Reload\").\n\nflags:\n")
		fs.PrintDefaults()
	}
	socket := fs.String("socket", "", "Unix socket to listen on (default: the config's, /run/sandboxd/sandboxd.sock)")
	configPath := fs.String("config", "", "TOML config file (default: none, built-in defaults)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sandboxd serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	// What a reload reads too: the file, with the command line's
	// overrides.
	load := func() (daemon.Config, error) {
		cfg, err := daemon.LoadConfig(*configPath)
		if *socket != "" {
			cfg.Socket = *socket
		}
		return cfg, err
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd serve:", err)
		return 2
	}
	// A SIGHUP from now on is a reload, not the end of the process; one
	// that comes while the daemon starts waits for it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	log := newLogger(cfg.LogFormat)
	logHostChecks(cfg, *configPath, log) // doctor.go: logged when one fails
	// Before the daemon starts its helper, which must not inherit it.
	if _, err := daemon.TakeSystemdSocket(); err != nil {
		log.WithError(err).Error("cannot start")
		return 1
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(daemonProcs(runtime.GOMAXPROCS(0)))
	}
	if cfg.BatchScheduling {
		// Before the daemon starts its helper, which inherits it.
		if err := daemon.SetBatchScheduling(); err != nil {
			log.WithError(err).Warn("the daemon runs under the policy it was started with")
		}
	}
	d, err := daemon.New(cfg, version, log)
	if err != nil {
		log.WithError(err).Error("cannot start")
		return 1
	}
	// A log reader that goes away (a pipe to a logger that exited, a
	// journal restarting) makes writes fail with EPIPE rather than end the
	// daemon by SIGPIPE before it drains.
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() {
		for range hup {
			d.Reload(load) // it logs what it did
		}
	}()
	if err := d.Serve(ctx); err != nil {
		log.WithError(err).Error("serve")
		return 1
	}
	return 0
}

// daemonProcs is how many CPUs the daemon runs Go code on at once, of the
// n the runtime would take: half, at least one. Its own work is a small
// share of a run's (the kernel's namespaces, mounts and cgroups are most of
// it, and the programs' own), and every P beyond what it needs is a thread
// that spins, parks and is woken again between the events of a run
// (docs/benchmarks.md). GOMAXPROCS in the environment overrides it.
func daemonProcs(n int) int { return max(1, n/2) }

// newLogger logs text on a terminal and JSON otherwise, unless the config
// says which.
func newLogger(format string) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(os.Stderr)
	if format == "auto" && underJournal() {
		log.SetFormatter(newJournalFormatter()) // journal.go
		return log
	}
	if format == "auto" {
		format = "json"
		if _, err := unix.IoctlGetTermios(int(os.Stderr.Fd()), unix.TCGETS); err == nil {
			format = "text"
		}
	}
	if format == "json" {
		log.SetFormatter(&logrus.JSONFormatter{})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return log
}
