package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// The gateway case: what `sandboxd gateway` adds to a run over the daemon's
// own API. The same command is run through POST /v1/run on the daemon's
// socket and through the gateway's go-judge POST /run (one cmd, stdout and
// stderr collected, as a judge sends it); and a Python print as Piston's
// POST /api/v2/execute against the v1 job the gateway makes of it (the
// python profile, main.py, its run argv). Each pair is measured in the
// same rounds, one at a time and with two clients, the order rotated.

// The ways of the gateway case.
const (
	wayGoJudge = "gateway go-judge POST /run"
	wayPiston  = "gateway Piston POST /api/v2/execute"
	wayV1Job   = "POST /v1/run, the same job" // the v1 job the Piston request becomes
)

// Gateway is the gateway case's figures: each row a way, and each
// gateway way against the direct way of the same command.
type Gateway struct {
	Cases []CaseResult  `json:"cases"`
	Added []GatewayCost `json:"added"`
	// GatewayCPUMSPerRun is the gateway process's CPU per request, over
	// every request it served in the case.
	GatewayCPUMSPerRun float64 `json:"gateway_cpu_ms_per_request"`
	DurationS          float64 `json:"duration_s"`
}

// GatewayCost is a gateway way against the direct way of one command:
// the latency it adds (one at a time) and its throughput (two clients)
// over the direct way's.
type GatewayCost struct {
	Command      string  `json:"command"`
	Way          string  `json:"way"`
	Direct       string  `json:"direct"`
	AddedP50MS   float64 `json:"added_p50_ms"`
	AddedP99MS   float64 `json:"added_p99_ms"`
	RateVsDirect float64 `json:"rate_vs_direct"`
}

// gatewayProc is a sandboxd gateway this program started on the daemon's
// socket.
type gatewayProc struct {
	cmd     *exec.Cmd
	gojudge string // http://ADDR
	piston  string
	logPath string
}

func startGateway(bin, dir string) (*gatewayProc, error) {
	g := &gatewayProc{logPath: filepath.Join(dir, "gateway.log")}
	logf, err := os.Create(g.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	g.cmd = exec.Command(bin, "gateway", "--socket", filepath.Join(dir, "sandboxd.sock"),
		"--gojudge", "127.0.0.1:0", "--piston", "127.0.0.1:0", "--log-format", "json")
	g.cmd.Stderr = logf
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := g.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s gateway: %w", bin, err)
	}
	lines := bufio.NewReader(out)
	for range 2 {
		line, err := lines.ReadString('\n')
		if err != nil {
			g.close()
			b, _ := os.ReadFile(g.logPath)
			return nil, fmt.Errorf("the gateway did not say where it listens (%v):\n%s", err, b)
		}
		protocol, addr, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch protocol {
		case "gojudge":
			g.gojudge = "http://" + addr
		case "piston":
			g.piston = "http://" + addr
		}
	}
	go io.Copy(io.Discard, lines)
	return g, nil
}

func (g *gatewayProc) close() error {
	g.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(35 * time.Second):
		g.cmd.Process.Kill()
		<-done
		return errors.New("the gateway did not exit within 35 s of SIGTERM; killed it")
	}
}

// cpu is the gateway process's CPU time so far.
func (g *gatewayProc) cpu() (time.Duration, error) {
	c, err := readProcCPU(g.cmd.Process.Pid)
	return c.own, err
}

// httpClient keeps two connections to each gateway listener, one a worker.
var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}}

// postJSON posts body and decodes a 200 answer into out.
func postJSON(ctx context.Context, url string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d: %.300s", url, resp.StatusCode, b)
	}
	return json.Unmarshal(b, out)
}

// goJudgeRunner is one go-judge POST /run of argv per run, with the
// limits and collectors a judge sends; its status must be Accepted.
func goJudgeRunner(url string, argv []string) func(context.Context) error {
	body, _ := json.Marshal(map[string]any{"cmd": []map[string]any{{
		"args":        argv,
		"env":         plainEnv,
		"files":       []any{map[string]any{"content": ""}, map[string]any{"name": "stdout", "max": 10240}, map[string]any{"name": "stderr", "max": 10240}},
		"cpuLimit":    int64(time.Second),
		"clockLimit":  int64(3 * time.Second),
		"memoryLimit": 256 << 20,
		"procLimit":   32,
		"copyOut":     []string{"stdout", "stderr"},
	}}})
	return func(ctx context.Context) error {
		var res []struct {
			Status string `json:"status"`
			Error  string `json:"error"`
		}
		if err := postJSON(ctx, url+"/run", body, &res); err != nil {
			return err
		}
		if len(res) != 1 || res[0].Status != "Accepted" {
			return fmt.Errorf("go-judge POST /run: want one Accepted, got %+v", res)
		}
		return nil
	}
}

// pistonRunner is one Piston execute of a Python print per run; it must
// exit 0 and print "1".
func pistonRunner(url string) func(context.Context) error {
	body, _ := json.Marshal(map[string]any{"language": "python", "version": "*",
		"files": []map[string]string{{"name": "main.py", "content": "print(1)"}}})
	return func(ctx context.Context) error {
		var res struct {
			Run *struct {
				Stdout string `json:"stdout"`
				Code   *int   `json:"code"`
			} `json:"run"`
		}
		if err := postJSON(ctx, url+"/api/v2/execute", body, &res); err != nil {
			return err
		}
		if res.Run == nil || res.Run.Code == nil || *res.Run.Code != 0 || res.Run.Stdout != "1\n" {
			return fmt.Errorf("piston execute: want code 0 and \"1\\n\", got %+v", res.Run)
		}
		return nil
	}
}

// pistonJob is the v1 job the gateway makes of pistonRunner's request.
func pistonJob(ctx context.Context, c *client.Client) (*api.Job, error) {
	info, err := c.Info(ctx)
	if err != nil {
		return nil, err
	}
	for _, l := range info.Languages {
		if l.Language == "python" && l.Available {
			return &api.Job{Profile: l.Profile, Files: map[string]api.File{l.SourceFile: {Content: "print(1)"}},
				StopOn: api.StopOnFailure, Steps: []api.Step{{Argv: l.Run, Stdin: "\n"}}}, nil
		}
	}
	return nil, errors.New("the daemon has no python language profile available")
}

// gateway measures the gateway case.
func (b *bench) gateway(ctx context.Context, runs, rounds, warmup int) (g Gateway, err error) {
	start := time.Now()
	gw, err := startGateway(b.sandboxd, b.dir)
	if err != nil {
		return g, err
	}
	defer func() {
		if cerr := gw.close(); cerr != nil && err == nil {
			err = fmt.Errorf("the gateway's exit: %w", cerr)
		}
	}()
	job, err := pistonJob(ctx, b.d.client)
	if err != nil {
		return g, err
	}
	cpuBefore, err := gw.cpu()
	if err != nil {
		return g, err
	}
	cmdPiston := command{name: "Piston python print(1)"}
	var cases []*benchCase
	for _, set := range [][]*benchCase{
		{
			{cmd: cmdTrue, way: wayRun, run: runRunner(b.d.client, cmdTrue.argv), settle: warmSettle(b.d.client)},
			{cmd: cmdTrue, way: wayGoJudge, run: goJudgeRunner(gw.gojudge, cmdTrue.argv), settle: warmSettle(b.d.client)},
		},
		{
			{cmd: cmdPython, way: wayRun, run: runRunner(b.d.client, cmdPython.argv), settle: warmSettle(b.d.client)},
			{cmd: cmdPython, way: wayGoJudge, run: goJudgeRunner(gw.gojudge, cmdPython.argv), settle: warmSettle(b.d.client)},
		},
		{
			{cmd: cmdPiston, way: wayV1Job, run: jobRunner(b.d.client, job), settle: warmSettle(b.d.client)},
			{cmd: cmdPiston, way: wayPiston, run: pistonRunner(gw.piston), settle: warmSettle(b.d.client)},
		},
	} {
		fmt.Fprintf(os.Stderr, "gateway: %s: %d runs of each way, one at a time and with %d clients, in %d rounds\n", set[0].cmd.name, runs, workers, rounds)
		if err := b.measureN(ctx, set, runs, rounds, warmup); err != nil {
			return g, err
		}
		cases = append(cases, set...)
	}
	cpuAfter, err := gw.cpu()
	if err != nil {
		return g, err
	}
	g.Cases = results(cases)
	requests := 0
	for _, c := range g.Cases {
		if c.Way == wayGoJudge || c.Way == wayPiston {
			requests += c.LatencyRuns + c.RateRuns
		}
	}
	if requests > 0 {
		g.GatewayCPUMSPerRun = ms(cpuAfter-cpuBefore) / float64(requests)
	}
	for i := 0; i+1 < len(g.Cases); i += 2 {
		direct, via := g.Cases[i], g.Cases[i+1]
		g.Added = append(g.Added, GatewayCost{Command: via.Command, Way: via.Way, Direct: direct.Way,
			AddedP50MS: via.P50MS - direct.P50MS, AddedP99MS: via.P99MS - direct.P99MS,
			RateVsDirect: ratio(via.RunsPerS, direct.RunsPerS)})
	}
	g.DurationS = time.Since(start).Seconds()
	return g, nil
}
