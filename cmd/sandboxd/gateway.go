package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/api/client"
	"github.com/sandboxd/sandboxd/gateway"
)

func gatewayMain(args []string) int {
	fs := flag.NewFlagSet("sandboxd gateway", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sandboxd gateway --socket DAEMON_SOCKET [--config FILE] [--gojudge ADDR] [--piston ADDR] [--web ADDR]\n\n"+
			"Serves go-judge's REST API, Piston's v2 API and a browser playground (WebSocket) over TCP,\nas jobs on the daemon's socket.\n"+
			"Without a token in the config, only loopback addresses are taken. See docs/gateway.md.\n\nflags:\n")
		fs.PrintDefaults()
	}
	socket := fs.String("socket", "", "the daemon's Unix socket (default: $SANDBOXD_SOCKET, /run/sandboxd/sandboxd.sock)")
	configPath := fs.String("config", "", "TOML config file: gojudge_listen, piston_listen, web_listen, token, host_dirs, [piston], [web]")
	gojudgeAddr := fs.String("gojudge", "", "serve go-judge's REST API on this TCP address (e.g. 127.0.0.1:5050)")
	pistonAddr := fs.String("piston", "", "serve Piston's v2 API on this TCP address (e.g. 127.0.0.1:2000)")
	webAddr := fs.String("web", "", "serve the playground page and its WebSocket on this TCP address (e.g. 127.0.0.1:8080)")
	logFormat := fs.String("log-format", "auto", "text, json, or auto")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sandboxd gateway: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg, err := gateway.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd gateway:", err)
		return 2
	}
	if *gojudgeAddr != "" {
		cfg.GoJudgeListen = *gojudgeAddr
	}
	if *pistonAddr != "" {
		cfg.PistonListen = *pistonAddr
	}
	if *webAddr != "" {
		cfg.WebListen = *webAddr
	}
	log := newLogger(*logFormat)
	c := client.New(*socket)
	g, err := gateway.New(cfg, c, version, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandboxd gateway:", err)
		return 2
	}
	signal.Ignore(syscall.SIGPIPE)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err = g.Serve(ctx, 30*time.Second, func(protocol string, addr net.Addr) {
		// One line on stdout per listener, for scripts and tests that
		// asked for port 0.
		fmt.Printf("%s %s\n", protocol, addr)
	})
	if err != nil {
		log.WithError(err).Error("gateway stopped")
		return 1
	}
	return 0
}
