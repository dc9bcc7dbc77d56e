package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/daemon"
	"github.com/sandboxd/sandboxd/doctor"
)

// defaultConfigPath is where make install puts the config, and what
// sandboxd.service reads.
const defaultConfigPath = "/etc/sandboxd/sandboxd.toml"

// doctorReport is doctor --json's output.
type doctorReport struct {
	OK     bool           `json:"ok"`
	Checks []doctor.Check `json:"checks"`
}

func doctorMain(args []string) int {
	fs := flag.NewFlagSet("sandboxd doctor", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sandboxd doctor [--config FILE] [--json] [--cgroup-subtree NAME]\n\nChecks that this host can run sandboxes, and starts one. One line per check:\nok, warn or fail, and how to fix it. Exit status 1 if a check failed.\n\nflags:\n")
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "the daemon's config file (default: "+defaultConfigPath+" if it exists, else the built-in defaults)")
	asJSON := fs.Bool("json", false, "print the checks as one JSON object")
	subtree := fs.String("cgroup-subtree", "sandboxd-doctor", "the cgroup subtree of its end-to-end sandbox, beneath this process's own cgroups (never the daemon's)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "sandboxd doctor: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	checks := runDoctor(*configPath, doctor.Host{}, *subtree)
	failed := doctor.Failed(checks)
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(doctorReport{OK: !failed, Checks: checks})
	} else {
		printChecks(os.Stdout, checks)
	}
	if failed {
		return 1
	}
	return 0
}

// runDoctor loads the config and runs every check, the end-to-end sandbox
// last (and only when the host checks let it have a chance).
func runDoctor(configPath string, h doctor.Host, subtree string) []doctor.Check {
	if configPath == "" {
		if _, err := os.Stat(defaultConfigPath); err == nil {
			configPath = defaultConfigPath
		}
	}
	cfg, err := daemon.LoadConfig(configPath)
	cc := doctor.Check{Name: "config", Status: doctor.OK, Detail: configPath}
	switch {
	case err != nil:
		cc.Status, cc.Detail = doctor.Fail, err.Error()
		cc.Fix = "fix the key it names; the checks below use the built-in defaults"
		cfg = daemon.DefaultConfig()
	case configPath == "":
		cc.Detail = "no file: the built-in defaults"
	}
	checks := append([]doctor.Check{cc}, doctor.HostChecks(cfg, configPath, h)...)
	return append(checks, sandboxCheck(cfg, checks, subtree))
}

func printChecks(w io.Writer, checks []doctor.Check) {
	for _, c := range checks {
		line := fmt.Sprintf("%-4s %-16s %s", c.Status, c.Name, c.Detail)
		if c.Fix != "" {
			line += "; fix: " + c.Fix
		}
		fmt.Fprintln(w, line)
	}
}

// sandboxCheck starts a real sandbox: this binary re-executed as `sandboxd
// exec -- /bin/true`, with the config's state dir and uid range, in a
// cgroup subtree of its own (beneath this process's group, never the
// daemon's), which exec removes when it ends.
func sandboxCheck(cfg daemon.Config, before []doctor.Check, subtree string) doctor.Check {
	c := doctor.Check{Name: "sandbox"}
	if doctor.Failed(before[1:]) {
		c.Status, c.Detail = doctor.Fail, "not tried: fix the failed checks above first"
		return c
	}
	self, err := os.Executable()
	if err != nil {
		c.Status, c.Detail = doctor.Fail, err.Error()
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := []string{self, "exec",
		"--state-dir", cfg.StateDir,
		"--uid-base", strconv.FormatUint(uint64(cfg.UIDBase), 10),
		"--uid-count", strconv.FormatUint(uint64(cfg.UIDCount), 10),
		"--cgroup-subtree", subtree,
		"--", "/bin/true"}
	// On pure v2 under systemd, the group this runs in (a login's scope, a
	// service) is not delegated, and holds other processes: the sandbox
	// gets a transient scope of its own with Delegate=yes, as the daemon's
	// unit has.
	if lay, err := cgroup.DetectLayout(cgroup.Config{}); err == nil && lay.Mode == cgroup.ModeV2 && underSystemd() {
		if run, err := exec.LookPath("systemd-run"); err == nil {
			argv = append([]string{run, "--scope", "--quiet", "--collect", "-p", "Delegate=yes",
				"--unit", fmt.Sprintf("sandboxd-doctor-%d", os.Getpid())}, argv...)
		}
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	var res api.StepResult
	jsonErr := json.Unmarshal(stdout.Bytes(), &res)
	switch {
	case jsonErr == nil && res.Verdict == api.VerdictOK:
		c.Status = doctor.OK
		c.Detail = fmt.Sprintf("/bin/true ran in a sandbox: verdict ok in %.0f ms (wall %.1f ms)", float64(took.Microseconds())/1000, res.WallTimeMS)
	case jsonErr == nil:
		c.Status = doctor.Fail
		c.Detail = fmt.Sprintf("/bin/true in a sandbox: verdict %s %s", res.Verdict, firstLine(res.Message+" "+stderr.String()))
	default:
		var ee *exec.ExitError
		c.Status = doctor.Fail
		if errors.As(err, &ee) {
			c.Detail = fmt.Sprintf("sandboxd exec: %s: %s", ee.ProcessState, firstLine(stderr.String()))
		} else {
			c.Detail = fmt.Sprintf("sandboxd exec: %v", err)
		}
	}
	if c.Status == doctor.Fail {
		c.Fix = "run `sandboxd exec -- /bin/true` for the whole message"
	}
	return c
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// underSystemd says whether systemd is PID 1 (sd_booted(3)).
func underSystemd() bool {
	_, err := os.Stat("/run/systemd/system")
	return err == nil
}

// logHostChecks is the daemon's start-up check: the host checks (not the
// end-to-end sandbox: the daemon is about to build its own), logged one
// line each when one fails, so that the reason is next to whatever error
// follows.
func logHostChecks(cfg daemon.Config, configPath string, log *logrus.Logger) {
	checks := doctor.HostChecks(cfg, configPath, doctor.Host{})
	if !doctor.Failed(checks) {
		return
	}
	for _, c := range checks {
		e := log.WithFields(logrus.Fields{"check": c.Name, "status": string(c.Status), "detail": c.Detail})
		if c.Fix != "" {
			e = e.WithField("fix", c.Fix)
		}
		switch c.Status {
		case doctor.Fail:
			e.Error("host check failed (sandboxd doctor)")
		case doctor.Warn:
			e.Warn("host check")
		default:
			e.Info("host check")
		}
	}
}
