package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/sandboxd/sandboxd/api"
)

// shard is part I of N of a JSONL batch (--shard I/N): the jobs whose
// index modulo N is I. A job's index is its place among the file's jobs,
// from 0, blank lines not counted: the index the daemon would give it in
// one unsharded batch, so the N shards' answers together carry the same
// indexes as that batch's.
//
// Round robin rather than N contiguous ranges: it needs no count of the
// jobs first, so it works on stdin and streams the file once, and a
// dataset sorted by size or difficulty still gives every shard a like mix.
type shard struct{ i, n int }

// parseShard reads "I/N": 0 <= I < N. Its errors name the flag.
func parseShard(s string) (shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, ierr := strconv.Atoi(is)
	n, nerr := strconv.Atoi(ns)
	switch {
	case !ok || ierr != nil || nerr != nil:
		return shard{}, fmt.Errorf("--shard: %q is not I/N (this part, from 0, of N)", s)
	case n < 1:
		return shard{}, fmt.Errorf("--shard: %q: N must be at least 1", s)
	case i < 0 || i >= n:
		return shard{}, fmt.Errorf("--shard: %q: I must be from 0 to N-1 (%d)", s, n-1)
	}
	return shard{i, n}, nil
}

func (s shard) has(index int) bool { return index%s.n == s.i }

// size is how many of the first total jobs are in the shard.
func (s shard) size(total int) int {
	if total <= s.i {
		return 0
	}
	return (total - s.i + s.n - 1) / s.n
}

// shardJob is where one job of the shard came from in the whole file.
type shardJob struct {
	index int // among the file's jobs, from 0
	line  int // the file's line, from 1, blank lines counted
}

// shardReader is the body of a sharded batch: the shard's job lines, one
// a line, read from the whole file as the request is sent. It remembers
// where each came from, so that an answer can be given back its place.
type shardReader struct {
	*io.PipeReader

	mu   sync.Mutex // guards jobs
	jobs []shardJob // the shard's jobs in the order sent, which is the daemon's index
}

// newShardReader reads src up to the shard's first job before it returns,
// so that a body the shard cannot be cut from is an error before anything
// is sent; a goroutine reads the rest as the request consumes it. Closing
// the reader stops that goroutine.
func newShardReader(src io.Reader, s shard) (*shardReader, error) {
	br := bufio.NewReaderSize(src, 64<<10)
	sr := &shardReader{}
	index, line := 0, 0
	// next returns the file's next job line, or nil at its end.
	next := func() ([]byte, error) {
		for {
			b, err := br.ReadBytes('\n')
			if len(b) == 0 && err == io.EOF {
				return nil, nil
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			line++
			if b = bytes.TrimSpace(b); len(b) > 0 {
				return b, nil
			}
		}
	}
	var first []byte
	for first == nil {
		b, err := next()
		if err != nil || b == nil {
			// A read error, or no job in this shard: an empty body.
			pr, pw := io.Pipe()
			pw.CloseWithError(err)
			sr.PipeReader = pr
			return sr, nil
		}
		switch {
		case index == 0 && startsJobsObject(b):
			return nil, errors.New(`--shard: the file is one {"jobs": [...]} object; a sharded batch needs one job a line (JSONL)`)
		case s.has(index) && startsJobsObject(b):
			// The daemon would read it as the whole body's {"jobs": [...]}.
			return nil, fmt.Errorf(`--shard: line %d: a {"jobs": ...} object where a job was expected`, line)
		case s.has(index):
			first = b
			sr.jobs = append(sr.jobs, shardJob{index, line})
		}
		index++
	}

	pr, pw := io.Pipe()
	sr.PipeReader = pr
	go func() {
		bw := bufio.NewWriterSize(pw, 64<<10)
		_, err := bw.Write(append(first, '\n'))
		for err == nil {
			var b []byte
			if b, err = next(); err != nil || b == nil {
				break
			}
			idx := index
			index++
			if !s.has(idx) {
				continue
			}
			sr.mu.Lock()
			sr.jobs = append(sr.jobs, shardJob{idx, line})
			sr.mu.Unlock()
			if _, err = bw.Write(append(b, '\n')); err != nil {
				break
			}
			// The next read may wait (stdin): send the jobs read so far.
			if br.Buffered() == 0 {
				err = bw.Flush()
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		pw.CloseWithError(err)
	}()
	return sr, nil
}

// place gives an answer line back its place in the whole file: its index,
// and the line an error message names ("line 3: ...", which the daemon
// counts in the shard's body).
func (sr *shardReader) place(bl *api.BatchLine) {
	if bl.Index == nil {
		return
	}
	sr.mu.Lock()
	local := *bl.Index
	var j shardJob
	ok := local >= 0 && local < len(sr.jobs)
	if ok {
		j = sr.jobs[local]
	}
	sr.mu.Unlock()
	if !ok {
		return
	}
	index := j.index
	bl.Index = &index
	if bl.Error != nil {
		want := "line " + strconv.Itoa(local+1) + ": "
		if rest, found := strings.CutPrefix(bl.Error.Message, want); found {
			e := *bl.Error
			e.Message = "line " + strconv.Itoa(j.line) + ": " + rest
			bl.Error = &e
		}
	}
}

// startsJobsObject tells whether a line begins an object whose first key
// is "jobs", which the daemon takes for a {"jobs": [...]} body.
func startsJobsObject(line []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	key, err := dec.Token()
	return err == nil && key == "jobs"
}
