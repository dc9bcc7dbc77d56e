package test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
)

// The judge's problem: read n and n integers, print their sum and their
// mean. The answers give the mean to 6 decimals, the solutions print 9:
// only a comparison with a tolerance takes them.
var judgeSolutions = map[string]string{
	"correct": `#include <cstdio>
int main() {
	long n, x, sum = 0;
	if (scanf("%ld", &n) != 1) return 1;
	for (long i = 0; i < n; i++) { scanf("%ld", &x); sum += x; }
	printf("%ld %.9f\n", sum, (double)sum / n);
}`,
	// The mean off by 1: beyond the tolerances (the means are below 1e6).
	"wrong": `#include <cstdio>
int main() {
	long n, x, sum = 0;
	scanf("%ld", &n);
	for (long i = 0; i < n; i++) { scanf("%ld", &x); sum += x; }
	printf("%ld %.9f\n", sum, (double)sum / n + 1);
}`,
	"slow": `#include <cstdio>
int main() {
	volatile unsigned long spin = 0;
	for (;;) spin++;
}`,
	"crash": `#include <cstdio>
int main() {
	long n;
	scanf("%ld", &n);
	*(volatile long *)0 = n;
}`,
}

// judgeChecker decides a test from its files: exit 0 accepted, 1 wrong.
const judgeChecker = `import sys
out = open(sys.argv[2]).read().split()
ans = open(sys.argv[3]).read().split()
if len(out) != len(ans):
    print("expected %d tokens, got %d" % (len(ans), len(out)))
    sys.exit(1)
for i, (o, a) in enumerate(zip(out, ans)):
    try:
        fo, fa = float(o), float(a)
    except ValueError:
        if o != a:
            print("token %d: %r, expected %r" % (i + 1, o, a))
            sys.exit(1)
        continue
    d = abs(fo - fa)
    if not (d <= 1e-6 or d <= 1e-6 * abs(fa)):
        print("token %d: %s, expected %s" % (i + 1, o, a))
        sys.exit(1)
print("ok")
`

// judgeTests makes n tests: inputs and answers.
func judgeTests(n int) (inputs, answers []string) {
	rng := rand.New(rand.NewSource(20))
	for i := 0; i < n; i++ {
		count := 1 + rng.Intn(2000)
		var in strings.Builder
		fmt.Fprintf(&in, "%d\n", count)
		sum := 0
		for j := 0; j < count; j++ {
			x := 1 + rng.Intn(1000000)
			sum += x
			fmt.Fprintf(&in, "%d ", x)
		}
		in.WriteString("\n")
		inputs = append(inputs, in.String())
		// Half the answers on two lines: the layout does not count.
		sep := " "
		if i%2 == 1 {
			sep = "\n"
		}
		answers = append(answers, fmt.Sprintf("%d%s%.6f\n", sum, sep, float64(sum)/float64(count)))
	}
	return inputs, answers
}

// TestDaemonJudgeFlow is a judge's day: 20 tests' inputs and answers
// uploaded to the file cache once, four solutions each compiled once with
// the binary kept in the cache, run against every test as one job per test
// that names its files by cache id (no content in the job), decided by a
// checker program reading the run's stdout_to file, and again by
// expected_stdout_file with compare float. Every verdict is exact.
func TestDaemonJudgeFlow(t *testing.T) {
	d := startDaemon(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	inputs, answers := judgeTests(20)
	upload := func(content string) string {
		f, err := d.c.Upload(ctx, strings.NewReader(content))
		if err != nil {
			t.Fatal(err)
		}
		return f.ID
	}
	var inIDs, ansIDs []string
	for i := range inputs {
		inIDs, ansIDs = append(inIDs, upload(inputs[i])), append(ansIDs, upload(answers[i]))
	}
	checkerID := upload(judgeChecker)

	start := time.Now()
	binaries := map[string]string{} // cache ids
	for name, src := range judgeSolutions {
		res, err := d.c.Run(ctx, &api.Job{
			Files:     map[string]api.File{"main.cpp": {Content: src}},
			Steps:     []api.Step{{Argv: []string{"g++", "-O2", "-o", "sol", "main.cpp"}, Limits: api.Limits{CPUTimeMS: 30000, WallTimeMS: 60000}}},
			KeepFiles: []string{"sol"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != api.StatusCompleted || res.Steps[0].Verdict != api.VerdictOK || res.Kept["sol"].ID == "" {
			t.Fatalf("compile %s: %+v", name, res)
		}
		binaries[name] = res.Kept["sol"].ID
	}
	t.Logf("4 compiles: %v", time.Since(start))

	// The correct solution takes about 1 ms of CPU.
	runLimits := api.Limits{CPUTimeMS: 100, WallTimeMS: 2000}
	for _, name := range []string{"correct", "wrong", "slow", "crash"} {
		// With a checker: the run writes out.txt, the checker reads it.
		var withChecker, withCompare []api.Job
		for i := range inputs {
			files := map[string]api.File{
				"sol":        {Cached: binaries[name]},
				"in.txt":     {Cached: inIDs[i]},
				"ans.txt":    {Cached: ansIDs[i]},
				"checker.py": {Cached: checkerID},
			}
			withChecker = append(withChecker, api.Job{
				Key:   api.KeyOf(fmt.Sprintf("%s-checker-%d", name, i)),
				Files: files,
				Steps: []api.Step{
					{Argv: []string{"./sol"}, StdinCached: inIDs[i], StdoutTo: "out.txt", Limits: runLimits},
					{Argv: []string{"python3", "checker.py", "in.txt", "out.txt", "ans.txt"}},
				},
			})
			withCompare = append(withCompare, api.Job{
				Key:   api.KeyOf(fmt.Sprintf("%s-compare-%d", name, i)),
				Files: map[string]api.File{"sol": files["sol"], "ans.txt": files["ans.txt"]},
				Steps: []api.Step{{Argv: []string{"./sol"}, StdinCached: inIDs[i], ExpectedStdoutFile: "ans.txt",
					Compare: api.CompareFloat, Limits: runLimits}},
			})
		}
		start := time.Now()
		checked := judgeBatch(ctx, t, d, withChecker)
		compared := judgeBatch(ctx, t, d, withCompare)
		t.Logf("%s: 2 x 20 jobs in %v", name, time.Since(start))

		for i := range inputs {
			run, checker, cmp := checked[i].Steps[0], checked[i].Steps[1], compared[i].Steps[0]
			for _, r := range []*api.Result{checked[i], compared[i]} {
				if r.Status != api.StatusCompleted {
					t.Fatalf("%s test %d: status %s %s", name, i, r.Status, r.Message)
				}
			}
			bad := func(what string) {
				t.Errorf("%s test %d: %s\nrun: %s\nchecker: %s\ncompare: %s", name, i, what, summary(run), summary(checker), summary(cmp))
			}
			switch name {
			case "correct":
				if run.Verdict != api.VerdictOK || checker.Verdict != api.VerdictOK || checker.Stdout != "ok\n" ||
					cmp.Verdict != api.VerdictOK || cmp.StdoutMatches == nil || !*cmp.StdoutMatches {
					bad("want accepted")
				}
			case "wrong":
				if run.Verdict != api.VerdictOK || checker.Verdict != api.VerdictNonzeroExit || checker.ExitCode != 1 ||
					!strings.HasPrefix(checker.Stdout, "token 2: ") ||
					cmp.Verdict != api.VerdictOK || cmp.StdoutMatches == nil || *cmp.StdoutMatches ||
					!strings.HasPrefix(cmp.Message, "token 2 differs: ") {
					bad("want wrong answer")
				}
			case "slow":
				if run.Verdict != api.VerdictCPUTimeLimit || checker.Verdict != api.VerdictSkipped ||
					cmp.Verdict != api.VerdictCPUTimeLimit || cmp.StdoutMatches == nil || *cmp.StdoutMatches {
					bad("want cpu_time_limit")
				}
			case "crash":
				if run.Verdict != api.VerdictSignaled || run.Signal != "SIGSEGV" || checker.Verdict != api.VerdictSkipped ||
					cmp.Verdict != api.VerdictSignaled || cmp.Signal != "SIGSEGV" {
					bad("want signaled SIGSEGV")
				}
			}
		}
	}
	// Used sandboxes are torn down in the background; the daemon's stop
	// then checks that nothing at all is left.
	for start := time.Now(); len(busyProcesses()) > 0; time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 5*time.Second {
			t.Errorf("processes left 5 s after the jobs: %v", busyProcesses())
			break
		}
	}
}

// judgeBatch runs jobs as one batch and gives their results in order;
// the summary's verdicts are the results'.
func judgeBatch(ctx context.Context, t *testing.T, d *testDaemon, jobs []api.Job) []*api.Result {
	t.Helper()
	results := make([]*api.Result, len(jobs))
	sum, err := d.c.BatchJobs(ctx, jobs, 0, func(bl *api.BatchLine) error {
		if bl.Error != nil {
			return fmt.Errorf("job %d refused: %v", *bl.Index, bl.Error)
		}
		results[*bl.Index] = bl.Result
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Total != len(jobs) || sum.Invalid != 0 {
		t.Fatalf("summary %+v", sum)
	}
	counted := map[string]int{}
	for _, r := range results {
		counted[string(judgeVerdict(r))]++
	}
	if fmt.Sprint(counted) != fmt.Sprint(sum.Verdicts) {
		t.Errorf("summary verdicts %v, results %v", sum.Verdicts, counted)
	}
	return results
}

// judgeVerdict is the batch summary's verdict of a result.
func judgeVerdict(r *api.Result) api.Verdict {
	for _, s := range r.Steps {
		switch {
		case s.Verdict != api.VerdictOK:
			return s.Verdict
		case s.StdoutMatches != nil && !*s.StdoutMatches:
			return api.VerdictWrongAnswer
		}
	}
	return api.VerdictOK
}

// A program that leaves a symlink (or a FIFO, or a directory of
// symlinks) at its stdout_to path never makes the daemon write through it:
// not to a host file (the daemon writes in the host), not out of the
// workspace, whatever a process it left behind keeps doing.
func TestDaemonStdoutToSymlink(t *testing.T) {
	d := startDaemon(t, "")
	host := t.TempDir()
	target := filepath.Join(host, "target")
	if err := os.WriteFile(target, []byte("host file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	passwd, _ := os.ReadFile("/etc/passwd")
	before := sha256.Sum256(passwd)

	for _, tc := range []struct {
		name, script, to string
		verdict          api.Verdict
		message          string
	}{
		{"to /etc/passwd", `ln -s /etc/passwd out.txt; echo pwned`, "out.txt", api.VerdictOK, ""},
		{"to a host file", `ln -s ` + target + ` out.txt; echo pwned`, "out.txt", api.VerdictOK, ""},
		{"dangling to the host", `ln -s ` + host + `/new out.txt; echo pwned`, "out.txt", api.VerdictOK, ""},
		{"relative out", `ln -s ../../../../../../../..` + target + ` out.txt; echo pwned`, "out.txt", api.VerdictOK, ""},
		{"a fifo", `mkfifo out.txt; echo pwned`, "out.txt", api.VerdictOK, ""},
		{"kept replacing", `(while :; do ln -sf /etc/passwd out.tmp; mv -f out.tmp out.txt; done) & sleep 0.2; echo pwned`, "out.txt", api.VerdictOK, ""},
		{"a directory on the way", `ln -s ` + host + ` d; echo pwned`, "d/out.txt", api.VerdictOutputLimit, `stdout_to "d/out.txt": d: a symlink is in the way`},
		{"a directory at the name", `mkdir out.txt; echo pwned`, "out.txt", api.VerdictOutputLimit, `stdout_to "out.txt": a directory is in the way`},
	} {
		res, err := d.c.Run(ctxT(t), &api.Job{
			StopOn: api.StopOnNever,
			Steps: []api.Step{
				{Argv: []string{"sh", "-c", tc.script}, StdoutTo: tc.to},
				// The next step sees a file of its own uid.
				{Argv: []string{"sh", "-c", `test -f out.txt && test ! -L out.txt && test -O out.txt && cat out.txt && echo more >> out.txt`}},
			},
			TrackedFiles: []string{"out.txt"},
		})
		if err != nil {
			t.Fatal(err)
		}
		s := res.Steps[0]
		if res.Status != api.StatusCompleted || s.Verdict != tc.verdict || s.Message != tc.message || s.Stdout != "pwned\n" {
			t.Errorf("%s: %s; %+v", tc.name, summary(s), res)
		}
		if tc.verdict == api.VerdictOK {
			if f := res.Files["out.txt"]; f == nil || f.Content != "pwned\nmore\n" || res.Steps[1].Verdict != api.VerdictOK {
				t.Errorf("%s: out.txt %+v, next step %s", tc.name, f, summary(res.Steps[1]))
			}
		}
	}
	if b, _ := os.ReadFile(target); string(b) != "host file\n" {
		t.Errorf("the host file was written: %q", b)
	}
	if ents, _ := os.ReadDir(host); len(ents) != 1 {
		t.Errorf("files made in the host directory: %v", ents)
	}
	passwd, _ = os.ReadFile("/etc/passwd")
	if sha256.Sum256(passwd) != before {
		t.Errorf("/etc/passwd changed")
	}
}
