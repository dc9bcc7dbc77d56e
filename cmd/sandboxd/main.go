package main

import (
	"fmt"
	"os"

	"github.com/sandboxd/sandboxd/nsjail"
)

const usage = `usage: sandboxd COMMAND [flags]

commands:
  serve [--socket PATH] [--config FILE]
                            serve the v1 API on a Unix socket (the daemon)
  exec [flags] -- ARGV...   run ARGV once in a sandbox and print its result as JSON
  doctor [--config FILE] [--json]
                            check that this host can run sandboxes, and how to fix it
  gateway --socket DAEMON_SOCKET [--config FILE] [--gojudge ADDR] [--piston ADDR]
                            serve go-judge's (and Piston's) API over TCP as jobs on the daemon
  version                   print the version

Run "sandboxd exec -h" for the flags of exec.
`

// version is set at build time.
var version = "dev"

func main() {
	if nsjail.IsHelper() {
		nsjail.HelperMain()
	}
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	switch os.Args[1] {
	case "exec":
		os.Exit(execMain(os.Args[2:]))
	case "serve":
		os.Exit(serveMain(os.Args[2:]))
	case "gateway":
		os.Exit(gatewayMain(os.Args[2:])) // gateway.go
	case "doctor":
		os.Exit(doctorMain(os.Args[2:])) // doctor.go
	case "version", "--version":
		fmt.Println("sandboxd", version)
	case "help", "-h", "--help":
		fmt.Print(usage)
	default:
		fmt.Fprintf(os.Stderr, "sandboxd: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
}
