package test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDaemonWebBrowser drives the playground page in headless Chromium (Debian's
// chromium, from make deps): print("hi") typed and run, a slow program's
// first line seen before its end, an infinite loop stopped by the Stop
// button within 0.5 s with nothing left, input() answered from the page, a
// syntax error's traceback, the narrow layout, and a screenshot under run/.
func TestDaemonWebBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium is not installed (make deps installs it)")
	}
	d := startDaemon(t, "")
	g := startWebGateway(t, d, "")

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // root, as make test runs
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 640))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	defer tcancel()

	// text gives an element's text.
	text := func(sel string) string {
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("`+sel+`").textContent`))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	// waitFor waits until the element's text holds want.
	waitFor := func(sel, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			s := text(sel)
			if strings.Contains(s, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q does not hold %q after %s (output %q)", sel, s, want, within, text("#output"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	setCode := func(code string) {
		t.Helper()
		js, _ := json.Marshal(code)
		if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const c = document.getElementById("code"); c.value = `+string(js)+`;
			c.dispatchEvent(new Event("input")); return true; })()`)); err != nil {
			t.Fatal(err)
		}
	}
	run := func() {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#run"))); err != nil {
			t.Fatal(err)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(g.url+"/")); err != nil {
		t.Fatal(err)
	}
	waitFor("#conn", "connected", 10*time.Second)

	// Typed, then run with the keyboard alone (Ctrl+Enter).
	setCode("")
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#code"), `print("hi")`),
		chromedp.KeyEvent("\r", chromedp.KeyModifiers(chromedp.ModifierCtrl))); err != nil {
		t.Fatal(err)
	}
	waitFor("#status", "Execution completed with exit code: 0", 10*time.Second)
	if out := text("#output"); strings.TrimSpace(out) != "hi" {
		t.Errorf("output %q, want hi", out)
	}
	if st := text("#status"); !strings.Contains(st, "verdict ok") || !strings.Contains(st, "wall ") || !strings.Contains(st, "mem ") {
		t.Errorf("status %q: no verdict or measurements", st)
	}

	// A line every 300 ms: the first shows while the program still runs.
	setCode("import time\nfor i in range(4):\n    print('tick', i)\n    time.sleep(0.3)")
	run()
	waitFor("#output", "tick 0", 10*time.Second)
	if st, out := text("#status"), text("#output"); !strings.HasPrefix(st, "Running") || strings.Contains(out, "tick 3") {
		t.Errorf("at the first line: status %q, output %q: the program should still run", st, out)
	}
	waitFor("#status", "exit code: 0", 10*time.Second)

	// An infinite loop, stopped by the button: measured in the page, from
	// the click to the status saying so.
	setCode("while True:\n    pass")
	run()
	waitFor("#status", "Running", 10*time.Second)
	time.Sleep(300 * time.Millisecond) // let it spin
	took, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`new Promise((done) => {
		const t0 = performance.now();
		document.getElementById("stop").click();
		const iv = setInterval(() => {
			if (document.getElementById("status").textContent.startsWith("Stopped")) {
				clearInterval(iv); done(performance.now() - t0);
			}
		}, 2);
	})`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Stop: %.0f ms from the click to the page saying Stopped", took)
	if took > 500 {
		t.Errorf("Stop took %.0f ms, want at most 500", took)
	}
	if left := g.runsLeft(time.Second); left != nil {
		t.Errorf("jobs left after Stop: %v", left)
	}

	// input(), answered in the page's stdin box.
	setCode("name = input('name? ')\nprint('hello,', name)\nimport sys\nprint('oops', file=sys.stderr)")
	run()
	waitFor("#output", "name? ", 10*time.Second)
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#stdin"), "world\r")); err != nil {
		t.Fatal(err)
	}
	waitFor("#status", "exit code: 0", 10*time.Second)
	// stdout and stderr are two pipes: the daemon's stream does not keep
	// the order of writes made close together on the two (docs/api.md).
	if out := text("#output"); !strings.HasPrefix(out, "name? world\n") || !strings.Contains(out, "\nhello, world\n") || !strings.Contains(out, "\noops\n") {
		t.Errorf("output %q", out)
	}
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join("..", "run", "playground.png")
	os.MkdirAll(filepath.Dir(shot), 0o755)
	if err := os.WriteFile(shot, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", shot, len(png))

	// A syntax error: its traceback in the output, the status says Error.
	setCode("print('hi'")
	run()
	waitFor("#status", "Error", 10*time.Second)
	if out := text("#output"); !strings.Contains(out, "SyntaxError") {
		t.Errorf("output %q: no SyntaxError", out)
	}

	// A phone's width: the buttons and the output stay on screen.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 800), chromedp.Sleep(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => { const r = document.getElementById("stop").getBoundingClientRect(),
			o = document.getElementById("output").getBoundingClientRect();
			return r.right <= 390 && r.bottom <= 800 && o.width >= 300 && o.height >= 100; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if !fits {
		t.Errorf("at 390x800 the Stop button or the output is off screen or too small")
	}
}
