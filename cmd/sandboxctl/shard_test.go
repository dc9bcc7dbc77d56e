package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestParseShard(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want shard
		err  string // in the error; "" for none
	}{
		{"0/1", shard{0, 1}, ""},
		{"3/4", shard{3, 4}, ""},
		{"0/100000", shard{0, 100000}, ""},
		{"4/4", shard{}, "I must be from 0 to N-1 (3)"},
		{"-1/4", shard{}, "I must be from 0 to N-1"},
		{"0/0", shard{}, "N must be at least 1"},
		{"0/-2", shard{}, "N must be at least 1"},
		{"", shard{}, "is not I/N"},
		{"1", shard{}, "is not I/N"},
		{"1/", shard{}, "is not I/N"},
		{"/4", shard{}, "is not I/N"},
		{"a/4", shard{}, "is not I/N"},
		{"1/4/2", shard{}, "is not I/N"},
		{" 1/4", shard{}, "is not I/N"},
	} {
		got, err := parseShard(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("parseShard(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		case tc.err != "" && err == nil:
			t.Errorf("parseShard(%q) = %v, want an error", tc.in, got)
		case tc.err != "" && (!strings.HasPrefix(err.Error(), "--shard: ") || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseShard(%q): error %q, want it to name --shard and say %q", tc.in, err, tc.err)
		}
	}
}

// jobsFile is n job lines, each carrying its index as its key, with a
// blank line after every third job: blank lines are not jobs.
func jobsFile(n int) (body string, lineOf []int) {
	var b strings.Builder
	line := 0
	for i := range n {
		fmt.Fprintf(&b, `{"key":%d,"steps":[{"argv":["true"]}]}`+"\n", i)
		line++
		lineOf = append(lineOf, line)
		if i%3 == 2 {
			b.WriteString("  \n")
			line++
		}
	}
	return b.String(), lineOf
}

// TestShardSplit cuts files of several sizes into N shards for several N
// (more shards than jobs too): over I = 0..N-1 every job is sent exactly
// once, in the shard its index picks, in file order, remembered with its
// index and line in the whole file.
func TestShardSplit(t *testing.T) {
	for _, jobs := range []int{0, 1, 2, 3, 7, 10, 100, 1001} {
		body, lineOf := jobsFile(jobs)
		for _, n := range []int{1, 2, 3, 4, 7, 16, 1000} {
			seen := make([]int, jobs)
			for i := range n {
				s := shard{i, n}
				sr, err := newShardReader(strings.NewReader(body), s)
				if err != nil {
					t.Fatalf("%d jobs, %d/%d: %v", jobs, i, n, err)
				}
				sent, err := io.ReadAll(sr)
				if err != nil {
					t.Fatalf("%d jobs, %d/%d: reading the body: %v", jobs, i, n, err)
				}
				var keys []int
				for l := range strings.Lines(string(sent)) {
					var j struct{ Key int }
					if err := json.Unmarshal([]byte(l), &j); err != nil {
						t.Fatalf("%d jobs, %d/%d: sent %q: %v", jobs, i, n, l, err)
					}
					keys = append(keys, j.Key)
				}
				if len(keys) != s.size(jobs) || len(sr.jobs) != len(keys) {
					t.Errorf("%d jobs, %d/%d: sent %d, remembered %d, size says %d", jobs, i, n, len(keys), len(sr.jobs), s.size(jobs))
				}
				for k, key := range keys {
					if key%n != i || (k > 0 && key <= keys[k-1]) {
						t.Errorf("%d jobs, %d/%d: sent job %d as the shard's job %d (after %v)", jobs, i, n, key, k, keys[:k])
					}
					if k < len(sr.jobs) && sr.jobs[k] != (shardJob{key, lineOf[key]}) {
						t.Errorf("%d jobs, %d/%d: shard's job %d remembered as %+v, want index %d line %d", jobs, i, n, k, sr.jobs[k], key, lineOf[key])
					}
					seen[key]++
				}
			}
			for idx, c := range seen {
				if c != 1 {
					t.Errorf("%d jobs, %d shards: job %d sent %d times", jobs, n, idx, c)
				}
			}
		}
	}
}

// TestShardPlace gives the daemon's answers (counted in the shard's body)
// their index and line in the whole file.
func TestShardPlace(t *testing.T) {
	body, lineOf := jobsFile(10)
	sr, err := newShardReader(strings.NewReader(body), shard{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, sr)
	for local, want := range []int{2, 5, 8} {
		bl := api.BatchLine{Index: &local, Error: &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("line %d: steps: none", local+1)}}
		sr.place(&bl)
		if *bl.Index != want || bl.Error.Message != fmt.Sprintf("line %d: steps: none", lineOf[want]) {
			t.Errorf("local %d: index %d, message %q; want %d and line %d", local, *bl.Index, bl.Error.Message, want, lineOf[want])
		}
	}
	summary := api.BatchLine{Summary: &api.BatchSummary{}}
	sr.place(&summary)
	if summary.Index != nil {
		t.Errorf("the summary got an index")
	}
}

func TestShardRefusesJobsObject(t *testing.T) {
	for _, tc := range []struct{ body, shard, err string }{
		{`{"jobs": [{"steps": [{"argv": ["true"]}]}]}`, "1/2", `the file is one {"jobs": [...]} object`},
		{"{\"jobs\": [\n{\"steps\": [{\"argv\": [\"true\"]}]}]}\n", "0/1", `the file is one {"jobs": [...]} object`},
		// The shard's first job would look to the daemon like a whole body.
		{"{\"key\": 0}\n\n{\"jobs\": []}\n", "1/2", `line 3: a {"jobs": ...} object`},
	} {
		s, _ := parseShard(tc.shard)
		if _, err := newShardReader(strings.NewReader(tc.body), s); err == nil || !strings.Contains(err.Error(), tc.err) || !strings.HasPrefix(err.Error(), "--shard: ") {
			t.Errorf("%q, %s: error %v, want %q", tc.body, tc.shard, err, tc.err)
		}
	}
	// Later in the shard it is a job like any other (the daemon refuses it).
	if _, err := newShardReader(strings.NewReader("{\"key\": 0}\n{\"jobs\": []}\n"), shard{0, 1}); err != nil {
		t.Errorf("a later {\"jobs\": ...} line: %v", err)
	}
}

// shardDaemon answers each job of a batch with its index in the body and
// its key; a job without steps is refused with the line it was on.
func shardDaemon(t *testing.T) *fakeDaemon {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/batch", func(w http.ResponseWriter, r *http.Request) {
		sum := &api.BatchSummary{Statuses: map[string]int{}, Verdicts: map[string]int{}, WallMS: 10}
		in := bufio.NewScanner(r.Body)
		for line := 1; in.Scan(); line++ {
			if strings.TrimSpace(in.Text()) == "" {
				continue
			}
			job := decodeJob(t, strings.NewReader(in.Text()))
			i := sum.Total
			sum.Total++
			bl := api.BatchLine{Index: &i, Key: job.Key}
			if len(job.Steps) == 0 {
				bl.Error = &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("line %d: steps: at least one step is needed", line)}
				sum.Invalid++
			} else {
				bl.Result = okResult(fmt.Sprint("r_", i), "", "")
				sum.Statuses[bl.Result.Status]++
				sum.Verdicts[string(api.VerdictOK)]++
			}
			ndjsonLine(w, bl)
		}
		ndjsonLine(w, api.BatchLine{Summary: sum})
	})
	return f
}

// TestBatchShard runs each of 3 shards of a file through the command: every
// job is answered once, under its index in the whole file; an invalid
// job's message names its line in the file.
func TestBatchShard(t *testing.T) {
	f := shardDaemon(t)
	body, lineOf := jobsFile(11)
	body = strings.Replace(body, `{"key":7,"steps":[{"argv":["true"]}]}`, `{"key":7}`, 1)
	file := filepath.Join(t.TempDir(), "jobs.jsonl")
	os.WriteFile(file, []byte(body), 0o644)
	var got []int
	for i := range 3 {
		r := f.sandboxctl(t, "", "batch", "--shard", fmt.Sprintf("%d/3", i), file)
		if want := map[bool]int{true: exitNotOK, false: exitOK}[i == 7%3]; r.code != want {
			t.Fatalf("shard %d/3: exit %d, want %d; stderr %q", i, r.code, want, r.stderr)
		}
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		for _, l := range lines[:len(lines)-1] {
			var bl api.BatchLine
			if err := json.Unmarshal([]byte(l), &bl); err != nil || bl.Index == nil {
				t.Fatalf("shard %d/3: line %q: %v", i, l, err)
			}
			if string(bl.Key) != fmt.Sprint(*bl.Index) {
				t.Errorf("shard %d/3: index %d for the job with key %s", i, *bl.Index, bl.Key)
			}
			if bl.Error != nil && bl.Error.Message != fmt.Sprintf("line %d: steps: at least one step is needed", lineOf[7]) {
				t.Errorf("shard %d/3: error %q, want it to name line %d of the file", i, bl.Error.Message, lineOf[7])
			}
			got = append(got, *bl.Index)
		}
		var last api.BatchLine
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &last); err != nil || last.Summary == nil || last.Summary.Total != (shard{i, 3}).size(11) {
			t.Errorf("shard %d/3: last line %q, want the summary of %d jobs", i, lines[len(lines)-1], (shard{i, 3}).size(11))
		}
	}
	slices.Sort(got)
	if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("answered indexes %v, want %v", got, want)
	}
	r := f.sandboxctl(t, `{"jobs": [{"steps": [{"argv": ["true"]}]}]}`, "batch", "--shard", "0/2", "-")
	if r.code != exitUsage || !strings.Contains(r.stderr, `batch: --shard: the file is one {"jobs": [...]} object`) {
		t.Errorf("a {\"jobs\": [...]} body: exit %d, stderr %q", r.code, r.stderr)
	}
	// From stdin, as the file arrives.
	r = f.sandboxctl(t, body, "batch", "--shard", "0/4", "-")
	if r.code != exitOK || strings.Count(r.stdout, "\n") != 3+1 || !strings.Contains(r.stdout, `"index":8,"key":8`) {
		t.Errorf("shard 0/4 of stdin: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}
