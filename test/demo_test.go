package test

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoStopsCleanlyOnCtrlC runs make run's script as a terminal would
// (its own process group), waits for its programs, and presses Ctrl-C (a
// SIGINT to the whole group): the daemon drains and the script exits 0,
// leaving nothing. On the way, the fork bomb shows the pids limit at work.
func TestDemoStopsCleanlyOnCtrlC(t *testing.T) {
	dir, err := os.MkdirTemp("", "sandboxd-demo-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // the sandboxes' inits reach its state dir
	cmd := exec.Command("../scripts/demo.sh")
	cmd.Env = append(os.Environ(),
		"SANDBOXD_DEMO_DIR="+dir,
		fmt.Sprintf("SANDBOXD_DEMO_SUBTREE=sandboxd-demo-test-%d", os.Getpid()),
		"SANDBOXD_DEMO_WEB=127.0.0.1:0", // a free port: 8080 may be taken
		"SANDBOXD_BIN="+sandboxdBin,
		"SANDBOXCTL_BIN="+filepath.Join(filepath.Dir(sandboxdBin), "sandboxctl"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var seen strings.Builder
	deadline := time.After(60 * time.Second)
wait:
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the demo ended before serving:\n%s", seen.String())
			}
			seen.WriteString(l + "\n")
			if strings.Contains(l, "The playground") || strings.Contains(l, "the playground's gateway did not start") {
				break wait
			}
		case <-deadline:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			t.Fatalf("the demo did not get to serving in 60 s:\n%s", seen.String())
		}
	}
	if !strings.Contains(seen.String(), "process 33 refused: Resource temporarily unavailable") ||
		!strings.Contains(seen.String(), "pids:         32") {
		t.Errorf("the fork bomb does not show the pids limit:\n%s", seen.String())
	}
	// The playground's URL, printed last, answers.
	const prefix = "Ctrl+Enter runs): "
	if i := strings.Index(seen.String(), prefix); i < 0 {
		t.Errorf("no playground URL:\n%s", seen.String())
	} else {
		url := strings.Fields(seen.String()[i+len(prefix):])[0]
		resp, err := http.Get(url)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v", url, err, resp)
		} else {
			resp.Body.Close()
		}
	}
	// Ctrl-C: the terminal signals the foreground process group.
	syscall.Kill(-cmd.Process.Pid, syscall.SIGINT)
	done := make(chan error, 1)
	go func() {
		for range lines {
		}
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("the demo after Ctrl-C: %v (make run would say Error)", err)
		}
	case <-time.After(30 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		t.Fatal("the demo did not end within 30 s of Ctrl-C")
	}
	if _, err := os.Stat(filepath.Join(dir, "sandboxd.sock")); err == nil {
		t.Error("the demo's socket was left behind")
	}
	if procs := sandboxProcesses(); len(procs) > 0 {
		t.Errorf("processes left under sandbox uids: %v", procs)
	}
}
