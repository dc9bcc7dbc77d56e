package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api/client"
)

// daemon is a sandboxd serve this program started, with its own socket,
// state dir and cgroup subtree, so that it shares nothing with any other
// daemon on the host.
type daemon struct {
	cmd     *exec.Cmd
	pid     int
	client  *client.Client
	socket  string
	logPath string
	exited  chan error

	maxRSS atomic.Int64 // the largest VmRSS sampled since resetMaxRSS
	stop   chan struct{}
	helper atomic.Int64 // the helper's pid last found, or 0
}

// startDaemon starts bin/sandboxd serve with two sandboxes at once, and
// extra added to its configuration, and waits until it answers /_ping.
func startDaemon(bin, dir, extra string) (*daemon, error) {
	socket := filepath.Join(dir, "sandboxd.sock")
	config := fmt.Sprintf("state_dir = %q\ncgroup_subtree = %q\nconcurrency = 2\nlog_format = \"json\"\n%s\n",
		dir, fmt.Sprintf("sandboxd-bench-%d", os.Getpid()), extra)
	configPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o644); err != nil {
		return nil, err
	}
	d := &daemon{logPath: filepath.Join(dir, "daemon.log"), exited: make(chan error, 1), stop: make(chan struct{})}
	logf, err := os.Create(d.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	d.cmd = exec.Command(bin, "serve", "--socket", socket, "--config", configPath)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// If this program dies without stopping it, the daemon drains and goes.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s serve: %w", bin, err)
	}
	d.pid = d.cmd.Process.Pid
	go func() { d.exited <- d.cmd.Wait() }()
	d.client, d.socket = client.New(socket), socket
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := d.client.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case werr := <-d.exited:
			d.exited <- werr
			return nil, fmt.Errorf("the daemon exited at start (%v):\n%s", werr, d.logTail())
		default:
		}
		if time.Now().After(deadline) {
			d.close()
			return nil, fmt.Errorf("the daemon did not answer /_ping within 15 s: %v\n%s", err, d.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	go d.sampleRSS()
	return d, nil
}

// close stops the daemon with SIGTERM, as an operator would, and kills it
// if it has not gone within 30 s. It may be called more than once.
func (d *daemon) close() error {
	select {
	case <-d.stop:
		return nil
	default:
		close(d.stop)
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.exited:
		if err != nil {
			return fmt.Errorf("the daemon's exit after SIGTERM: %w\n%s", err, d.logTail())
		}
		return nil
	case <-time.After(30 * time.Second):
		d.cmd.Process.Kill()
		<-d.exited
		return errors.New("the daemon did not exit within 30 s of SIGTERM; killed it")
	}
}

// logTail is the end of the daemon's log, for error messages.
func (d *daemon) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// sampleRSS keeps the largest VmRSS of the daemon, sampled every 50 ms:
// often enough to see a per-request spike, rarely enough to cost nothing.
func (d *daemon) sampleRSS() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C:
		}
		if rss, err := d.rss(); err == nil && rss > d.maxRSS.Load() {
			d.maxRSS.Store(rss)
		}
	}
}

func (d *daemon) resetMaxRSS() { d.maxRSS.Store(0) }

// helperPID is the pid of the daemon's helper (the process the
// sandboxes' inits are cloned from, and which reaps them), or 0.
func (d *daemon) helperPID() int {
	// The one found last, while it is still the daemon's sandboxd-helper:
	// the sampler asks every 50 ms, and a walk of /proc would cost the
	// machine being measured.
	if h := int(d.helper.Load()); h != 0 && d.isHelper(h) {
		return h
	}
	d.helper.Store(0)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if d.isHelper(p) {
			d.helper.Store(int64(p))
			return p
		}
	}
	return 0
}

// isHelper reports whether pid is a sandboxd-helper child of the daemon.
func (d *daemon) isHelper(pid int) bool {
	f, err := statFields(pid)
	if err != nil || f[1] != strconv.Itoa(d.pid) {
		return false
	}
	comm, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return strings.TrimSpace(string(comm)) == "sandboxd-helper"
}

// rss is the resident memory of the daemon and its helper.
func (d *daemon) rss() (int64, error) {
	rss, err := readRSS(d.pid)
	if err != nil {
		return 0, err
	}
	if h := d.helperPID(); h != 0 {
		r, _ := readRSS(h)
		rss += r
	}
	return rss, nil
}

// cpu is the CPU time of the daemon and its helper: their own, and
// that of the processes they reaped (the inits, and with them the
// programs), which is the sandboxes'.
func (d *daemon) cpu() (procCPU, error) {
	c, err := readProcCPU(d.pid)
	if err != nil {
		return c, err
	}
	if h := d.helperPID(); h != 0 {
		if hc, err := readProcCPU(h); err == nil {
			c.own += hc.own
			c.children += hc.children
		}
	}
	return c, nil
}

// procCPU is a process's CPU time from /proc/PID/stat: its own (every
// thread, live or gone), and that of its children it has reaped (with
// theirs, recursively).
type procCPU struct{ own, children time.Duration }

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

func readProcCPU(pid int) (procCPU, error) {
	f, err := statFields(pid)
	if err != nil {
		return procCPU{}, err
	}
	// f[0] is field 3 of proc(5); utime, stime, cutime, cstime are 14-17.
	var t [4]int64
	for i := range t {
		if t[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return procCPU{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
	}
	return procCPU{own: time.Duration(t[0]+t[1]) * clockTick, children: time.Duration(t[2]+t[3]) * clockTick}, nil
}

// statFields is /proc/PID/stat split after the command name (which may
// hold spaces and parentheses), so f[0] is the state.
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return nil, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return f, nil
}

// readRSS is a process's VmRSS in bytes; 0 for a zombie or a kernel
// thread, which have no memory of their own.
func readRSS(pid int) (int64, error) { return procKB(pid, "status", "VmRSS:") }

// readPss is a process's proportional set size, in bytes.
func readPss(pid int) (int64, error) { return procKB(pid, "smaps_rollup", "Pss:") }

// procKB is the value of the line starting with key in /proc/PID/file,
// given in kB there, in bytes; 0 if there is no such line.
func procKB(pid int, file, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, nil
}

// descendantsRSS sums the proportional set size (Pss) of the memory of
// every process below pid but skip (the helper): the daemon's
// sandboxes (and any it keeps ready). Pss is per address space, and a
// sandbox's init and its waiting program process share the helper's (they
// are clones of it with CLONE_VM), so each reports the helper's whole Pss:
// an address space is counted once, and the helper's (in the daemon's RSS
// already) not at all. n counts the processes. Processes that end during
// the walk are skipped.
func descendantsRSS(pid, skip int) (n int, rss int64) {
	entries, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f, err := statFields(p); err == nil {
			parent[p], _ = strconv.Atoi(f[1])
		}
	}
	counted := []int{skip}
	for p := range parent {
		// Bounded: a pid reused during the walk could make a cycle.
		for a, depth := parent[p], 0; a > 1 && depth < 64; a, depth = parent[a], depth+1 {
			if a == pid && p != skip {
				n++
				if !slices.ContainsFunc(counted, func(c int) bool { return sameVM(p, c) }) {
					r, _ := readPss(p)
					rss += r
					counted = append(counted, p)
				}
				break
			}
		}
	}
	return n, rss
}

// sameVM reports whether two processes share one address space (kcmp(2)
// with KCMP_VM).
func sameVM(a, b int) bool {
	const kcmpVM = 1
	r, _, errno := syscall.Syscall6(unix.SYS_KCMP, uintptr(a), uintptr(b), kcmpVM, 0, 0, 0)
	return errno == 0 && r == 0
}

// runQueueWait is how long the daemon's threads have waited for a CPU
// while runnable, in all (the second field of each thread's schedstat):
// the share of a ping's time that the machine's other work took.
func (d *daemon) runQueueWait() time.Duration {
	tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", d.pid))
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", d.pid, t.Name()))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); len(f) >= 2 {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			sum += time.Duration(n)
		}
	}
	return sum
}
