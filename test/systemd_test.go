package test

import (
	"context"
	"fmt"
	"net"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"
)

// TestDaemonSystemdProtocol starts `sandboxd serve` as systemd would
// start sandboxd.service from sandboxd.socket: the listening socket as fd
// 3 (LISTEN_FDS, LISTEN_PID), a notify socket (NOTIFY_SOCKET) and a
// watchdog (WATCHDOG_USEC); this test plays systemd's part. The daemon
// must serve the passed socket, say READY=1 once its pool is warm, STATUS
// with its jobs, WATCHDOG=1 while it answers and none while it is
// stopped, STOPPING=1 when it drains, and leave the socket, which is
// systemd's, in place. make test-systemd does the same under a real
// systemd.
func TestDaemonSystemdProtocol(t *testing.T) {
	dir, err := os.MkdirTemp("", "sandboxd-systemd-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	sock := filepath.Join(dir, "sandboxd.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	lnFile, err := ln.(*net.UnixListener).File()
	ln.Close() // the daemon's copy (lnFile) stays open, as systemd's does
	if err != nil {
		t.Fatal(err)
	}
	defer lnFile.Close()
	notifyPath := filepath.Join(dir, "notify")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()
	msgs := make(chan string, 1024)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := notify.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()

	cfg := fmt.Sprintf("socket = %q\nstate_dir = %q\ncgroup_subtree = %q\nconcurrency = 1\nwarm_sandboxes = 2\n%s",
		sock, filepath.Join(dir, "state"), testSubtree, hostcheck.Config(""))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	// LISTEN_PID is the daemon's own pid, which only the process that
	// execs it knows: sh's $$ survives its exec.
	cmd := osexec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" serve --config "$1"`, sandboxdBin, cfgPath)
	cmd.Env = append(os.Environ(), "LISTEN_FDS=1", "LISTEN_FDNAMES=sandboxd.socket",
		"NOTIFY_SOCKET="+notifyPath, "WATCHDOG_USEC=400000")
	cmd.ExtraFiles = []*os.File{lnFile}
	log := &syncBuffer{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	// expect waits for a message containing want, and returns the
	// messages seen before it.
	expect := func(want string, within time.Duration) []string {
		t.Helper()
		var seen []string
		deadline := time.After(within)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %q; saw %q", want, seen)
				}
				if strings.Contains(m, want) {
					return seen
				}
				seen = append(seen, m)
			case <-deadline:
				t.Fatalf("no %q within %v; saw %q\nlog:\n%s", want, within, seen, log)
			}
		}
	}
	expect("READY=1", 30*time.Second)
	c := client.New(sock)
	info, err := c.Info(ctxT(t))
	if err != nil {
		t.Fatalf("the passed socket: %v\nlog:\n%s", err, log)
	}
	if info.Pool.WarmReady < 2 {
		t.Errorf("READY=1 with %d of 2 warm sandboxes ready", info.Pool.WarmReady)
	}

	// A job, and the STATUS line that shows it running.
	done := make(chan *api.Result, 1)
	go func() {
		res, _ := c.Run(context.Background(), job("sleep", "1.5"))
		done <- res
	}()
	expect("STATUS=1 running, 0 queued", 5*time.Second)
	if res := <-done; res == nil || res.Steps[0].Verdict != api.VerdictOK {
		t.Fatalf("job through the passed socket: %+v", res)
	}
	expect("STATUS=0 running, 0 queued", 5*time.Second)

	// Pings while it runs, none while it is stopped, pings again after.
	expect("WATCHDOG=1", 2*time.Second)
	expect("WATCHDOG=1", 2*time.Second)
	cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(100 * time.Millisecond)
	for len(msgs) > 0 {
		<-msgs
	}
	select {
	case m := <-msgs:
		t.Errorf("a message while the daemon was stopped: %q", m)
	case <-time.After(time.Second):
	}
	cmd.Process.Signal(syscall.SIGCONT)
	expect("WATCHDOG=1", 2*time.Second)

	// A reload: RELOADING=1 with the time systemd asks for, then READY=1.
	if err := os.WriteFile(cfgPath, []byte(cfg+"[profiles.reloaded]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd.Process.Signal(syscall.SIGHUP)
	expect("RELOADING=1\nMONOTONIC_USEC=", 5*time.Second)
	expect("READY=1", 5*time.Second)
	if info, err := c.Info(ctxT(t)); err != nil || info.Config.Generation != 2 {
		t.Errorf("after the reload: %v %+v\nlog:\n%s", err, info, log)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	term := time.Now()
	expect("STOPPING=1", 10*time.Second)
	if err := cmd.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v\nlog:\n%s", err, log)
	}
	// No health check after the drain: the passed socket still takes
	// connections (systemd's backlog), and one would hang until its
	// timeout, and under systemd start the next daemon.
	if took := time.Since(term); took > 3*time.Second {
		t.Errorf("exit %v after SIGTERM with nothing running\nlog:\n%s", took, log)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the socket systemd passed was removed: %v", err)
	}
	if procs := sandboxProcesses(); len(procs) > 0 {
		t.Errorf("processes left under sandbox uids: %v", procs)
	}
	if groups := subtreeGroups(testSubtree); len(groups) > 0 {
		t.Errorf("cgroups left: %v", groups)
	}
	if strings.Contains(log.String(), "differs from the config") {
		t.Errorf("the daemon saw a socket other than the config's:\n%s", log)
	}
}
