package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// TestDaemonQueueBurst: 3,000 POST /v1/run of /bin/true sent at once, each
// on a connection of its own, wait in the daemon's queue. Meanwhile
// /_ping and /v1/info answer on kept connections; a waiting request's
// connection serves the client's next request once its answer came (one
// sent before the answer too); Connection: close is honoured; a client
// that leaves while its job waits has the job cancelled. Every job is
// answered, ok, once: none is lost. How fast the pings come is the
// benchmark's to say (sandboxd-bench's queue row), not this test's.
func TestDaemonQueueBurst(t *testing.T) {
	const n = 3000
	d := startDaemon(t, "concurrency = 2\nqueue_size = 10000")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Two slow jobs take both slots: whatever comes next waits.
	var slow sync.WaitGroup
	for i := range 2 {
		slow.Add(1)
		go func() {
			defer slow.Done()
			if _, err := d.c.Run(ctx, &api.Job{ID: fmt.Sprintf("slow-%d", i), Steps: []api.Step{{Argv: []string{"sleep", "3"}}}}); err != nil {
				t.Errorf("slow job: %v", err)
			}
		}()
	}
	waitState(t, d, "slow-0", api.StateRunning)
	waitState(t, d, "slow-1", api.StateRunning)

	post := func(id, extra string) string {
		body := fmt.Sprintf(`{"id": %q, "steps": [{"argv": ["/bin/true"]}]}`, id)
		return fmt.Sprintf("POST /v1/run HTTP/1.1\r\nHost: sandboxd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s", len(body), extra, body)
	}
	const ping = "GET /_ping HTTP/1.1\r\nHost: sandboxd\r\n\r\n"
	// A queued job on a connection that is used again after its answer,
	// and one whose next request is sent before the answer.
	kept, keptR := dialRaw(t, d)
	io.WriteString(kept, post("kept", ""))
	piped, pipedR := dialRaw(t, d)
	io.WriteString(piped, post("piped", "")+ping)
	closing, closingR := dialRaw(t, d)
	io.WriteString(closing, post("closing", "Connection: close\r\n"))
	gone, _ := dialRaw(t, d)
	io.WriteString(gone, post("gone", ""))
	for _, id := range []string{"kept", "piped", "closing", "gone"} {
		waitState(t, d, id, api.StateQueued)
	}
	gone.Close()

	// The burst, and a pinger and an info reader on kept connections.
	stop := make(chan struct{})
	var watchers sync.WaitGroup
	var pings, infos atomic.Int64
	watch := func(what string, f func(context.Context, *client.Client) error, count *atomic.Int64) {
		watchers.Add(1)
		go func() {
			defer watchers.Done()
			c := client.New(d.socket)
			defer c.Close()
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				actx, acancel := context.WithTimeout(ctx, 30*time.Second)
				err := f(actx, c)
				acancel()
				if err != nil {
					t.Errorf("%s while %d jobs were sent at once: %v", what, n, err)
					return
				}
				count.Add(1)
			}
		}()
	}
	watch("GET /_ping", func(ctx context.Context, c *client.Client) error { return c.Ping(ctx) }, &pings)
	watch("GET /v1/info", func(ctx context.Context, c *client.Client) error { _, err := c.Info(ctx); return err }, &infos)
	jc := client.New(d.socket)
	defer jc.Close()
	job := []byte(`{"steps": [{"argv": ["/bin/true"]}]}`)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]bool{}
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := jc.RunJSON(ctx, job)
			if err == nil && (res.Status != api.StatusCompleted || len(res.Steps) != 1 || res.Steps[0].Verdict != api.VerdictOK) {
				err = fmt.Errorf("result %+v", res)
			}
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			ids[res.ID] = true
			mu.Unlock()
		}()
	}

	// The connections of waiting requests, answered.
	// read reads one answer from br, whole.
	read := func(what string, br *bufio.Reader) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, body
	}
	answer := func(name string, br *bufio.Reader) *http.Response {
		t.Helper()
		resp, body := read(name, br)
		var res api.Result
		if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &res) != nil || res.ID != name || res.Status != api.StatusCompleted {
			t.Fatalf("%s: HTTP %d %s", name, resp.StatusCode, body)
		}
		return resp
	}
	pingOn := func(name string, br *bufio.Reader) {
		t.Helper()
		resp, body := read(name+": the ping after the answer", br)
		if resp.StatusCode != http.StatusOK || string(body) != "OK" {
			t.Fatalf("%s: the ping after the answer: HTTP %d %q", name, resp.StatusCode, body)
		}
	}
	for _, c := range []net.Conn{kept, piped, closing} {
		c.SetReadDeadline(time.Now().Add(time.Minute))
	}
	answer("kept", keptR)
	io.WriteString(kept, ping)
	pingOn("kept", keptR)
	answer("piped", pipedR)
	pingOn("piped", pipedR)
	if resp := answer("closing", closingR); !resp.Close {
		t.Errorf("closing: the answer does not say Connection: close")
	}
	if _, err := closingR.ReadByte(); err != io.EOF {
		t.Errorf("closing: the connection stays open after the answer (%v)", err)
	}
	info, err := d.c.Get(ctx, "gone")
	if err != nil || info.State != api.StateFinished || info.Result == nil || info.Result.Status != api.StatusCancelled {
		t.Errorf("gone: %+v %v, want cancelled once its client left", info, err)
	}

	wg.Wait()
	close(stop)
	watchers.Wait()
	slow.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("a job of the burst: %v", err)
	}
	if len(ids) != n {
		t.Errorf("%d distinct jobs answered, want %d", len(ids), n)
	}
	if pings.Load() == 0 || infos.Load() == 0 {
		t.Errorf("%d pings and %d infos answered while the jobs waited", pings.Load(), infos.Load())
	}
	info2, err := d.c.Info(ctx)
	if err != nil || info2.Pool.Queued != 0 || info2.Pool.Running != 0 {
		t.Errorf("after the burst: %+v %v, want nothing queued or running", info2.Pool, err)
	}
	if strings.Contains(d.log.String(), `"level":"error"`) {
		t.Errorf("the daemon logged errors:\n%s", d.log)
	}
}

// TestDaemonQueueKeptConnection: a client that pipelined its next request
// behind one that waits in the queue, then left, has that job cancelled,
// as a client that sent nothing more. The connection of a request that
// waited is a kept one once answered: idle for longer than a request
// header may take, it still serves the client's next request, with no
// 408 sent unasked.
func TestDaemonQueueKeptConnection(t *testing.T) {
	d := startDaemon(t, "concurrency = 1")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	slow := make(chan error, 1)
	go func() {
		_, err := d.c.Run(ctx, &api.Job{ID: "slow", Steps: []api.Step{{Argv: []string{"sleep", "2"}}}})
		slow <- err
	}()
	waitState(t, d, "slow", api.StateRunning)

	post := func(id string) string {
		body := fmt.Sprintf(`{"id": %q, "steps": [{"argv": ["/bin/true"]}]}`, id)
		return fmt.Sprintf("POST /v1/run HTTP/1.1\r\nHost: sandboxd\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	}
	const ping = "GET /_ping HTTP/1.1\r\nHost: sandboxd\r\n\r\n"
	piped, _ := dialRaw(t, d)
	io.WriteString(piped, post("piped")+ping)
	idle, idleR := dialRaw(t, d)
	io.WriteString(idle, post("idle"))
	waitState(t, d, "piped", api.StateQueued)
	waitState(t, d, "idle", api.StateQueued)
	piped.Close()

	idle.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("idle: HTTP %d", resp.StatusCode)
	}
	info, err := d.c.Get(ctx, "piped")
	if err != nil || info.State != api.StateFinished || info.Result == nil || info.Result.Status != api.StatusCancelled {
		t.Errorf("piped: %+v %v, want cancelled once its client left", info, err)
	}
	if err := <-slow; err != nil {
		t.Fatalf("slow job: %v", err)
	}

	// Longer than the daemon's header timeout (10s).
	time.Sleep(11 * time.Second)
	io.WriteString(idle, ping)
	resp, err = http.ReadResponse(idleR, nil)
	if err != nil {
		t.Fatalf("idle: the ping after %v idle: %v", 11*time.Second, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Fatalf("idle: the ping after %v idle: HTTP %d %q", 11*time.Second, resp.StatusCode, body)
	}
}
