// Command webbench measures the playground's WebSocket protocol against
// the daemon's own API: the time from an execute to the first output line
// of print(1), at 1 and 4 concurrent connections, beside the same job
// through POST /v1/run (its whole answer, and streamed: its first stdout
// event), the ways interleaved in the same rounds. scripts/bench-web.sh
// starts a daemon and a gateway for it; make bench-web runs that.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
	"github.com/sandboxd/sandboxd/gateway/web"
)

const code = "print(1)"

func main() {
	socket := flag.String("socket", "", "the daemon's socket")
	addr := flag.String("web", "", "the gateway's playground address (HOST:PORT)")
	runs := flag.Int("runs", 200, "runs of each way at each concurrency")
	flag.Parse()
	if *socket == "" || *addr == "" {
		fmt.Fprintln(os.Stderr, "usage: webbench --socket DAEMON_SOCKET --web HOST:PORT [--runs N]")
		os.Exit(2)
	}
	c := client.New(*socket)
	ctx := context.Background()
	info, err := c.Info(ctx)
	if err != nil {
		fail(err)
	}
	var py *api.LanguageInfo
	for i := range info.Languages {
		if info.Languages[i].Language == "python" && info.Languages[i].Available {
			py = &info.Languages[i]
		}
	}
	if py == nil {
		fail(fmt.Errorf("the daemon has no python profile"))
	}
	// The job the gateway makes of an execute (session.go), default limits.
	job := func() *api.Job {
		return &api.Job{Profile: py.Profile, Files: map[string]api.File{py.SourceFile: {Content: code}},
			Steps: []api.Step{{Argv: py.Run, StdinPipe: true, Limits: api.Limits{WallTimeMS: 10000, CPUTimeMS: 10000}}}}
	}
	ways := []struct {
		name string
		once func(conn *websocket.Conn) (time.Duration, error)
	}{
		{"WebSocket execute -> first stdout line", func(conn *websocket.Conn) (time.Duration, error) {
			start := time.Now()
			b, _ := json.Marshal(map[string]string{"type": "execute", "code": code})
			if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
				return 0, err
			}
			var first time.Duration
			for {
				_, b, err := conn.Read(ctx)
				if err != nil {
					return 0, err
				}
				var m web.Message
				json.Unmarshal(b, &m)
				if m.Type == web.TypeStdout && first == 0 {
					first = time.Since(start)
				}
				switch m.Type {
				case web.TypeExecutionComplete:
					return first, nil
				case web.TypeError, web.TypeTimeout:
					return 0, fmt.Errorf("%s: %s", m.Type, m.Message)
				}
			}
		}},
		{"POST /v1/run streamed -> first stdout event", func(*websocket.Conn) (time.Duration, error) {
			start := time.Now()
			var first time.Duration
			_, err := c.RunStream(ctx, job(), func(e *api.Event) error {
				if e.Event == api.EventStdout && first == 0 {
					first = time.Since(start)
				}
				return nil
			})
			return first, err
		}},
		{"POST /v1/run -> whole answer", func(*websocket.Conn) (time.Duration, error) {
			start := time.Now()
			res, err := c.Run(ctx, job())
			if err == nil && res.Steps[0].Stdout != "1\n" {
				err = fmt.Errorf("stdout %q", res.Steps[0].Stdout)
			}
			return time.Since(start), err
		}},
	}
	fmt.Printf("print(1), %d runs of each way at each concurrency, ways interleaved (ms)\n", *runs)
	fmt.Printf("%-45s %4s %8s %8s %8s\n", "way", "conc", "p50", "p99", "mean")
	for _, conc := range []int{1, 4} {
		samples := make([][]time.Duration, len(ways))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for w := range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				conn, _, err := websocket.Dial(ctx, "ws://"+*addr+"/ws/python", nil)
				if err != nil {
					fail(err)
				}
				defer conn.CloseNow()
				for i := range *runs / conc {
					for k := range ways {
						way := ways[(k+i+w)%len(ways)] // rotate the order
						d, err := way.once(conn)
						if err != nil {
							fail(fmt.Errorf("%s: %w", way.name, err))
						}
						mu.Lock()
						samples[(k+i+w)%len(ways)] = append(samples[(k+i+w)%len(ways)], d)
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		for k, w := range ways {
			p50, p99, mean := stats(samples[k])
			fmt.Printf("%-45s %4d %8.2f %8.2f %8.2f\n", w.name, conc, p50, p99, mean)
		}
	}
}

func stats(d []time.Duration) (p50, p99, mean float64) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(x time.Duration) float64 { return float64(x.Microseconds()) / 1000 }
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return ms(d[len(d)/2]), ms(d[min(len(d)-1, len(d)*99/100)]), ms(sum) / float64(len(d))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "webbench:", err)
	os.Exit(1)
}
