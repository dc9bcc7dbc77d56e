package escape

import (
	"github.com/sandboxd/sandboxd/test/internal/hostcheck"

	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api/client"
)

var (
	sandboxdBin string            // the daemon under test
	programs    map[string][]byte // testdata/*.c compiled, by name without .c
)

// canary is put in the daemon's environment: no sandbox may see it.
const canary = "SANDBOXD_ESCAPE_CANARY=host-secret-7f3a"

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Println("skipping the escape corpus: it needs root (user namespaces mapped to other host uids, cgroups)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "sandboxd-escape-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if err := setup(dir); err != nil {
			fmt.Fprintln(os.Stderr, "setup:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// setup finds the daemon binary (SANDBOXD_BIN, as `make test` passes it, or
// a build of cmd/sandboxd that re-executes itself as the init, as the
// end-to-end tests of ../ do) and compiles the C programs of testdata/.
func setup(dir string) error {
	sandboxdBin = os.Getenv("SANDBOXD_BIN")
	if sandboxdBin == "" {
		sandboxdBin = filepath.Join(dir, "sandboxd")
		cmd := exec.Command("go", "build", "-o", sandboxdBin, "../../cmd/sandboxd")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build sandboxd: %v\n%s", err, out)
		}
	}
	srcs, err := filepath.Glob("testdata/*.c")
	if err != nil || len(srcs) == 0 {
		return fmt.Errorf("no C programs in testdata/ (%v)", err)
	}
	programs = map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(srcs))
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := strings.TrimSuffix(filepath.Base(src), ".c")
			out := filepath.Join(dir, name)
			if b, err := exec.Command("gcc", "-O1", "-pthread", "-o", out, src).CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("gcc %s: %v\n%s", src, err, b)
				return
			}
			b, err := os.ReadFile(out)
			if err != nil {
				errs[i] = err
				return
			}
			mu.Lock()
			programs[name] = b
			mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// testDaemon is one `sandboxd serve` with a state dir, socket and cgroup
// subtree of its own.
type testDaemon struct {
	cmd      *exec.Cmd
	socket   string
	stateDir string
	config   string
	subtree  string
	log      *lockedBuffer
	c        *client.Client
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon starts the daemon with the given extra configuration lines;
// the test's cleanup stops it and checks that it left nothing behind.
func startDaemon(t *testing.T, extra string) *testDaemon {
	t.Helper()
	stateDir, err := os.MkdirTemp("", "sandboxd-escape-state-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(stateDir, 0o755)
	d := &testDaemon{
		stateDir: stateDir,
		socket:   filepath.Join(stateDir, "sandboxd.sock"),
		config:   filepath.Join(stateDir, "config.toml"),
		subtree:  hostcheck.Subtree("sandboxd-escape"),
		log:      &lockedBuffer{},
	}
	cfg := fmt.Sprintf("state_dir = %q\ncgroup_subtree = %q\nlog_format = \"json\"\n%s\n", stateDir, d.subtree, hostcheck.Config(extra))
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d.cmd = exec.Command(sandboxdBin, "serve", "--socket", d.socket, "--config", d.config)
	d.cmd.Env = append(os.Environ(), canary)
	d.cmd.Stderr = d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.c = client.New(d.socket)
	t.Cleanup(func() {
		d.stop(t)
		for _, l := range d.leftovers(false) {
			t.Errorf("after the daemon stopped: %s", l)
		}
		if t.Failed() {
			t.Logf("daemon log (last 8 KiB):\n%s", tail(d.log.String(), 8<<10))
		}
		os.RemoveAll(stateDir)
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := d.c.Ping(context.Background())
		if err == nil {
			return d
		}
		var se *client.StatusError
		if errors.As(err, &se) && se.HTTPStatus == http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("the daemon does not answer: %v\nlog:\n%s", err, d.log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (d *testDaemon) pid() int { return d.cmd.Process.Pid }

// alive says whether the daemon process still runs and answers.
func (d *testDaemon) alive(ctx context.Context) error {
	if err := d.cmd.Process.Signal(syscall.Signal(0)); err != nil {
		return fmt.Errorf("the daemon process is gone: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return d.c.Ping(ctx)
}

func (d *testDaemon) stop(t *testing.T) {
	if d.cmd.ProcessState != nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("daemon exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Errorf("the daemon did not exit within 30 s of SIGTERM")
	}
}

// leftovers lists what of the daemon's jobs is still on the host: a
// process under a sandbox uid, a run cgroup beneath the daemon's subtree in
// any hierarchy, a workspace directory or mount. While the daemon runs
// (running), its warm sandboxes (an idle init in a group of its own) are
// not leftovers; once it stopped, they are.
func (d *testDaemon) leftovers(running bool) []string {
	var found []string
	procs, groups := hostcheck.All, func() []string { return hostcheck.AllGroups(d.subtree) }
	if running {
		procs, groups = hostcheck.Busy, func() []string { return hostcheck.StrayGroups(d.subtree) }
	}
	for _, p := range hostcheck.Settle(2*time.Second, procs) {
		found = append(found, "process left: "+p)
	}
	for _, g := range hostcheck.Settle(2*time.Second, groups) {
		found = append(found, "cgroup left: "+g)
	}
	// A finished job's workspace goes just after its result. While the
	// daemon runs, the empty workspaces it says it made ahead are not
	// leftovers; once it stopped, they are.
	ws := filepath.Join(d.stateDir, "ws")
	found = append(found, hostcheck.Settle(2*time.Second, func() []string {
		ready := 0
		if running {
			if info, err := d.c.Info(context.Background()); err == nil {
				ready = info.Pool.WorkspacesReady
			}
		}
		var left []string
		ents, _ := os.ReadDir(ws)
		if len(ents) > ready {
			for _, e := range ents {
				left = append(left, "workspace left: "+filepath.Join(ws, e.Name()))
			}
		}
		mounts := 0
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, line := range strings.Split(string(mi), "\n") {
			if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], ws+"/") {
				mounts++
			}
		}
		if mounts > ready {
			left = append(left, fmt.Sprintf("%d workspace mounts in the host's mount table, %d ready", mounts, ready))
		}
		return left
	})...)
	return found
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// slots runs the cases at most two at a time (the daemon's concurrency),
// and gives each case a moment when nothing else runs, to check that it
// left nothing behind. A case needing both daemon slots at once (two
// concurrent jobs of its own) takes both.
type slots struct {
	mu       sync.Mutex
	cond     *sync.Cond
	capacity int
	used     int
	checking int
}

func newSlots(capacity int) *slots {
	s := &slots{capacity: capacity}
	s.cond = sync.NewCond(&s.mu)
	return s
}

func (s *slots) acquire(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.checking > 0 || s.used+n > s.capacity {
		s.cond.Wait()
	}
	s.used += n
}

// releaseAndCheck gives the slots back, waits until no case runs (no new
// one starts meanwhile), and then calls check.
func (s *slots) releaseAndCheck(n int, check func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.used -= n
	s.checking++
	s.cond.Broadcast()
	for s.used > 0 {
		s.cond.Wait()
	}
	check()
	s.checking--
	s.cond.Broadcast()
}
