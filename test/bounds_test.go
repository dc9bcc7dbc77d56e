package test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// The daemon's own work for a job stays bounded whatever the job's
// programs do: what it gives back, what it does between steps, and how
// long a job holds its slot when its client stops reading.

// TestDaemonJobOutputIsCapped runs a job of 12 steps that each write their
// whole output cap to stdout and stderr: everything the job gives back
// (outputs and tracked files) stays within job_output_bytes, the step that
// meets the cap is output_limit and says so, and the tracked file past it
// comes back truncated.
func TestDaemonJobOutputIsCapped(t *testing.T) {
	const jobCap = 1 << 20
	d := startDaemon(t, fmt.Sprintf("job_output_bytes = %d", jobCap))
	const perStream = 128 << 10
	write := fmt.Sprintf("head -c %d /dev/zero | tr '\\0' o; head -c %d /dev/zero | tr '\\0' e >&2; head -c %d /dev/zero > big", perStream, perStream, perStream)
	job := &api.Job{StopOn: api.StopOnNever, TrackedFiles: []string{"big"}}
	for i := 0; i < 12; i++ {
		job.Steps = append(job.Steps, api.Step{Argv: []string{"sh", "-c", write}, Limits: api.Limits{OutputBytes: perStream}})
	}
	res, err := d.c.Run(ctxT(t), job)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	firstCut := -1
	for i, s := range res.Steps {
		total += len(s.Stdout) + len(s.Stderr)
		if s.Verdict == api.VerdictOutputLimit && firstCut < 0 {
			firstCut = i
			if !strings.Contains(s.Message, "job's output") || !strings.Contains(s.Message, strconv.Itoa(jobCap)) {
				t.Errorf("step %d: message %q does not name the job's cap", i, s.Message)
			}
		}
		if firstCut < 0 && s.Verdict != api.VerdictOK {
			t.Errorf("step %d before the cap: %s", i, summary(s))
		}
	}
	if firstCut != 4 {
		// Four steps of 2 x 128 KiB fill 1 MiB; the fifth meets the cap.
		t.Errorf("first step cut by the job's cap: %d, want 4", firstCut)
	}
	tf := res.Files["big"]
	if tf == nil || !tf.Truncated || len(tf.Content) != 0 {
		t.Errorf("tracked file past the cap: %+v", tf)
	}
	if total > jobCap {
		t.Errorf("the job gave back %d bytes of output, above its cap of %d", total, jobCap)
	}
	t.Logf("12 steps of 2 x %d bytes: %d bytes given back, cut at step %d", perStream, total, firstCut)
}

// TestDaemonStepsCannotGrowTheWorkBetweenThem: a step that makes a
// directory chain far deeper than PATH_MAX and as many files as it can
// cannot make the next step fail, nor make the daemon re-own more than the
// workspace's inode cap, nor put a host path into the result.
func TestDaemonStepsCannotGrowTheWorkBetweenThem(t *testing.T) {
	d := startDaemon(t, "")
	deep := `import os
for i in range(300):
    os.mkdir("d" * 40)
    os.chdir("d" * 40)
print(len(os.getcwd()))`
	many := `import os
n = 0
try:
    while n < 200000:
        open("f%d" % n, "w").close()
        n += 1
except OSError as e:
    print(n, e.strerror)
else:
    print(n)`
	res, err := d.c.Run(ctxT(t), &api.Job{
		StopOn: api.StopOnNever,
		Steps: []api.Step{
			{Argv: []string{"python3", "-c", deep}},
			{Argv: []string{"python3", "-c", many}, Limits: api.Limits{WallTimeMS: 60_000}},
			{Argv: []string{"sh", "-c", "ls | wc -l; rm f0 && touch after && echo ok"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	if res.Status != api.StatusCompleted {
		t.Fatalf("status %s: %s", res.Status, res.Message)
	}
	if strings.Contains(string(b), d.stateDir) || strings.Contains(string(b), "/run/") {
		t.Errorf("a host path in the result: %s", b)
	}
	for i, s := range res.Steps {
		if s.Verdict != api.VerdictOK {
			t.Fatalf("step %d: %s", i, summary(s))
		}
	}
	fields := strings.Fields(res.Steps[1].Stdout)
	n, _ := strconv.Atoi(fields[0])
	if n >= 200000 || n > 1<<14 {
		t.Errorf("the step made %d files: the workspace's inode cap did not hold", n)
	}
	if !strings.HasSuffix(res.Steps[2].Stdout, "ok\n") {
		t.Errorf("the last step: %q", res.Steps[2].Stdout)
	}
	t.Logf("files made: %s", strings.TrimSpace(res.Steps[1].Stdout))
}

// TestDaemonStreamClientThatStopsReading: a client that asks for a stream
// and never reads it does not keep its job running past the job's wall
// limit, nor hold its slot: with one slot, the next job runs at once.
func TestDaemonStreamClientThatStopsReading(t *testing.T) {
	d := startDaemon(t, "concurrency = 1\nwarm_sandboxes = 1")
	conn, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body, _ := json.Marshal(&api.Job{ID: "stalled", Steps: []api.Step{{
		Argv:   []string{"sh", "-c", "head -c 4000000 /dev/zero | tr '\\0' x; sleep 100"},
		Limits: api.Limits{WallTimeMS: 1000, OutputBytes: 8 << 20},
	}}})
	fmt.Fprintf(conn, "POST /v1/run HTTP/1.1\r\nHost: sandboxd\r\nAccept: application/x-ndjson\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	// Read the answer's head only, then nothing more.
	resp, err := http.ReadResponse(bufio.NewReaderSize(conn, 512), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}

	start := time.Now()
	deadline := time.Now().Add(8 * time.Second)
	for {
		info, err := d.c.Get(context.Background(), "stalled")
		if err == nil && info.Result != nil {
			s := info.Result.Steps[0]
			if s.Verdict != api.VerdictWallTimeLimit {
				t.Errorf("the stalled job: %s", summary(s))
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job of a client that stopped reading still runs %v after its start (wall limit 1 s): %+v %v", time.Since(start), info, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the stalled client's job ended after %v", time.Since(start))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := d.c.Run(ctx, job("echo", "next"))
	if err != nil || res.Steps[0].Stdout != "next\n" {
		t.Fatalf("the next job with one slot: %v %+v", err, res)
	}
}

// TestDaemonRequestBodiesAreBounded: a body announced above
// max_request_bytes is refused at once (413) without being read; bodies in
// flight (their jobs queued or running) hold at most
// max_inflight_request_bytes, past which a request is 429; and a large body's
// memory goes back to the kernel once its job is over.
func TestDaemonRequestBodiesAreBounded(t *testing.T) {
	const maxBody = 8 << 20
	d := startDaemon(t, fmt.Sprintf("max_request_bytes = %d\nmax_inflight_request_bytes = %d\nconcurrency = 2", maxBody, 2*maxBody+2))

	// Announced above the cap: answered before the client sends a byte.
	conn, err := net.Dial("unix", d.socket)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /v1/run HTTP/1.1\r\nHost: sandboxd\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("a body announced above the cap was not answered at once: %v", err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body announced above the cap: status %d, want 413", resp.StatusCode)
	}
	conn.Close()

	// Two bodies of 7 MB fit; a third while they are held does not.
	file := strings.Repeat("a", 7<<20)
	slow := &api.Job{Files: map[string]api.File{"f": {Content: file}}, Steps: []api.Step{{Argv: []string{"sleep", "2"}}}}
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { _, err := d.c.Run(context.Background(), slow); errs <- err }()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		runs, _ := d.c.Runs(context.Background())
		if len(runs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the two jobs did not start: %+v", runs)
		}
	}
	_, err = d.c.Run(context.Background(), slow)
	var se *client.StatusError
	if !errors.As(err, &se) || se.HTTPStatus != http.StatusTooManyRequests || !strings.Contains(err.Error(), "max_inflight_request_bytes") {
		t.Errorf("a third body while two are held: %v, want 429 naming max_inflight_request_bytes", err)
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Errorf("a body that fit: %v", err)
		}
	}
	rssBefore := daemonRSS(t, d)
	if _, err := d.c.Run(ctxT(t), slow); err != nil {
		t.Errorf("a body once the others are done: %v", err)
	}
	// Its memory goes back: within seconds (an emulated guest takes more)
	// the daemon is near where it was.
	var rss int64
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if rss = daemonRSS(t, d); rss < rssBefore+8<<20 {
			break
		}
	}
	t.Logf("daemon RSS before the last 7 MB body %d KiB, after its job %d KiB", rssBefore>>10, rss>>10)
	if rss >= rssBefore+8<<20 {
		t.Errorf("the daemon kept %d KiB more after a 7 MB body", (rss-rssBefore)>>10)
	}
}

// daemonRSS is the test daemon's resident memory, bytes.
func daemonRSS(t *testing.T, d *testDaemon) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", d.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
