package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sandboxd/sandboxd/api"
)

// batchCmd is `sandboxctl batch FILE.jsonl`: the file goes to the daemon
// as it is read; each job's answer is printed as an NDJSON line as it
// arrives, then the summary line; progress goes to stderr. With --shard
// I/N only part I of N goes (see shard), and each answer keeps its index
// in the whole file.
func batchCmd(ctx context.Context, c *cli, args []string) int {
	fs := c.newFlags("batch", "[--concurrency N] [--shard I/N] [--json] FILE.jsonl   (FILE \"-\": stdin)")
	conc := fs.Int("concurrency", 0, "run at most `N` of these jobs at once (0: as many as the daemon allows)")
	shardFlag := fs.String("shard", "", "run part `I/N` only: the jobs whose index (their place among the file's jobs, from 0; blank lines are not jobs) modulo N is I; answers keep their index in the whole file")
	fs.Bool("json", false, "answers as NDJSON: the default anyway (stdout is NDJSON, progress goes to stderr)")
	if code, ok := c.parse(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return c.usageError(fs.Name(), fmt.Errorf("want one FILE.jsonl (\"-\": stdin), got %d arguments", fs.NArg()))
	}
	if *conc < 0 {
		return c.usageError(fs.Name(), errors.New("--concurrency: must be 0 (the daemon's limit) or more"))
	}
	var part *shard
	if isSet(fs, "shard") {
		s, err := parseShard(*shardFlag)
		if err != nil {
			return c.usageError(fs.Name(), err)
		}
		part = &s
	}

	var in io.Reader = c.stdin
	total := -1
	if path := fs.Arg(0); path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return c.usageError(fs.Name(), err)
		}
		defer f.Close()
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			if total, err = countJobs(f); err != nil {
				return c.usageError(fs.Name(), fmt.Errorf("%s: %w", path, err))
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return c.usageError(fs.Name(), err)
			}
		}
		in = f
	}
	var sharded *shardReader
	if part != nil {
		var err error
		if sharded, err = newShardReader(in, *part); err != nil {
			return c.usageError(fs.Name(), err)
		}
		defer sharded.Close()
		in = sharded
		if total >= 0 {
			total = part.size(total)
		}
	}

	prog := newProgress(c.stderr, total, isTerminal(c.stderr), isTerminal(c.stderr) && isTerminal(c.stdout))
	sum, err := c.client().Batch(ctx, in, *conc, func(bl *api.BatchLine) error {
		if sharded != nil {
			sharded.place(bl)
		}
		b, err := json.Marshal(bl)
		if err != nil {
			return err
		}
		prog.beforeOutput()
		if _, err := c.stdout.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("writing an answer: %w", err)
		}
		prog.jobDone(lineVerdict(bl))
		return nil
	})
	prog.stop(sum)
	if err != nil {
		return c.fail(ctx, err)
	}
	b, err := json.Marshal(api.BatchLine{Summary: sum})
	if err != nil {
		return c.fail(ctx, err)
	}
	c.stdout.Write(append(b, '\n'))
	return batchExit(sum)
}

// isSet tells whether a flag was given, even as an empty string.
func isSet(fs *flags, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// batchExit is 0 when every job completed with every step ok, else 1.
func batchExit(sum *api.BatchSummary) int {
	if sum.Invalid > 0 {
		return exitNotOK
	}
	for status, n := range sum.Statuses {
		if n > 0 && status != api.StatusCompleted {
			return exitNotOK
		}
	}
	for v, n := range sum.Verdicts {
		if n > 0 && v != string(api.VerdictOK) {
			return exitNotOK
		}
	}
	return exitOK
}

// countJobs counts the lines of an NDJSON file that are not blank, for the
// progress bar's total. A body in the form {"jobs": [...]} has no count
// that is cheap to know: -1.
func countJobs(r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		line, err := br.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return 0, err
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if n == 0 && !isJobLine(t) {
				return -1, nil
			}
			n++
		}
		if err == io.EOF {
			return n, nil
		}
	}
}

// isJobLine tells a first line that is one job from the start of a
// {"jobs": [...]} body.
func isJobLine(line []byte) bool {
	var fields map[string]json.RawMessage
	if json.Unmarshal(line, &fields) != nil {
		return false
	}
	_, jobs := fields["jobs"]
	return !jobs
}
