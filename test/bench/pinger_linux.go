package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/api/client"
)

// pingerEnv names the socket a re-executed sandboxd-bench pings as the
// queue row's pinger, instead of measuring.
const pingerEnv = "SANDBOXD_BENCH_PINGER"

// ping is one GET /_ping: when it was sent, and how long its answer took.
type ping struct {
	at  time.Time
	dur time.Duration
}

// pinger is the queue row's pinger: this program again, in a process of
// its own, so that the row's thousands of client goroutines do not delay
// it on their side.
type pinger struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader

	stopped bool
	pings   []ping
	err     error
}

// startPinger starts a process that asks GET /_ping on socket every 10 ms
// over one kept connection until stop.
func startPinger(socket string) (*pinger, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), pingerEnv+"="+socket)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return &pinger{cmd: cmd, in: in, out: bufio.NewReader(out)}, nil
}

// stop ends the pinger and gives its pings, oldest first. Calls after
// the first give the same.
func (p *pinger) stop() ([]ping, error) {
	if !p.stopped {
		p.stopped = true
		p.pings, p.err = p.collect()
	}
	return p.pings, p.err
}

func (p *pinger) collect() ([]ping, error) {
	p.in.Close()
	var out []ping
	var failed string
	for {
		line, err := p.out.ReadString('\n')
		if err != nil {
			break
		}
		f := strings.Fields(line)
		if len(f) >= 1 && f[0] == "error" {
			failed = strings.TrimSpace(strings.TrimPrefix(line, "error"))
			continue
		}
		if len(f) != 2 {
			continue
		}
		at, err1 := strconv.ParseInt(f[0], 10, 64)
		dur, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			out = append(out, ping{at: time.Unix(0, at), dur: time.Duration(dur)})
		}
	}
	if err := p.cmd.Wait(); err != nil && failed == "" {
		failed = err.Error()
	}
	if failed != "" {
		return out, fmt.Errorf("GET /_ping: %s", failed)
	}
	return out, nil
}

// pingerMain is the pinger's process: a ping every 10 ms, each written as
// "<sent, unix ns> <took, ns>", until its stdin closes; a failed ping ends
// it with "error <why>".
func pingerMain(socket string) int {
	runtime.GOMAXPROCS(1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	c := client.New(socket)
	defer c.Close()
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
		s := time.Now()
		err := c.Ping(pctx)
		d := time.Since(s)
		pcancel()
		if ctx.Err() != nil {
			return 0
		}
		if err != nil {
			fmt.Fprintf(w, "error %v\n", err)
			return 1
		}
		fmt.Fprintf(w, "%d %d\n", s.UnixNano(), d.Nanoseconds())
	}
}
