package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// jobVerdict is what a batch summary counts for a job: the verdict of its
// first step that is not ok, or wrong_answer for an ok step whose stdout
// did not match what was expected; ok when there is none.
func jobVerdict(res *api.Result) api.Verdict {
	for _, s := range res.Steps {
		switch {
		case s.Verdict != api.VerdictOK:
			return s.Verdict
		case s.StdoutMatches != nil && !*s.StdoutMatches:
			return api.VerdictWrongAnswer
		}
	}
	return api.VerdictOK
}

// keepPolicy says which of a batch's results are kept for GET
// /v1/runs/{id} once their line is out (keep_results).
type keepPolicy int

const (
	keepNamed keepPolicy = iota // the default: jobs with an id of the client's
	keepAll                     // keep_results=true
	keepNone                    // keep_results=false
)

// keepResults reads a batch's keep_results parameter ("" is the default).
func keepResults(v string) (keepPolicy, *api.Error) {
	if v == "" {
		return keepNamed, nil
	}
	b, err := strconv.ParseBool(v)
	switch {
	case err != nil:
		return 0, invalid("keep_results: %q is not true or false", v)
	case b:
		return keepAll, nil
	}
	return keepNone, nil
}

// keeps says whether the result of a job with id (the client's, or "")
// is kept.
func (k keepPolicy) keeps(id string) bool {
	return k == keepAll || k == keepNamed && id != ""
}

// atBatchItem says which of a batch's jobs an error is about: where is
// "line 3" (NDJSON) or "jobs[2]" ({"jobs": [...]}).
func atBatchItem(where string, e *api.Error) *api.Error {
	msg := strings.TrimPrefix(e.Message, "body: ")
	return &api.Error{Code: e.Code, Message: where + ": " + msg}
}

// readBatch feeds each job of a batch body to each, in order, until each
// says stop, with where it is in the body ("line 3", counted from 1, or
// "jobs[2]"). NDJSON: one job a line, each at most maxLine bytes. A body
// that is one JSON object {"jobs": [...]} (on any number of lines) is
// taken too. The first error describes a body that cannot be understood;
// the second, one that cannot be read (the client went away).
func readBatch(body io.Reader, maxLine int64, each func(raw []byte, where string, err *api.Error) bool) (*api.Error, error) {
	br := bufio.NewReaderSize(body, 64<<10)
	first := true
	for n := 1; ; n++ {
		where := "line " + strconv.Itoa(n)
		line, err := readLine(br, maxLine)
		if err != nil {
			if err == io.EOF {
				return nil, nil
			}
			if errors.Is(err, errLineTooLong) {
				if !each(nil, where, invalid("body: longer than the cap of %d bytes", maxLine)) {
					return nil, nil
				}
				continue
			}
			return nil, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if first {
			first = false
			if jobs, ok, aerr := wrapperJobs(line, br, maxLine); ok {
				if aerr != nil {
					return aerr, nil
				}
				for i, j := range jobs {
					if !each(j, fmt.Sprintf("jobs[%d]", i), nil) {
						return nil, nil
					}
				}
				return nil, nil
			}
		}
		if !each(line, where, nil) {
			return nil, nil
		}
	}
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes; a longer line is skipped
// whole and reported.
func readLine(br *bufio.Reader, max int64) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if int64(len(buf)+len(chunk)) > max {
			// Skip the rest of this line.
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				return nil, err
			}
			return nil, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch err {
		case nil:
			return buf, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(buf) > 0 {
				return buf, nil
			}
			return nil, io.EOF
		default:
			return nil, err
		}
	}
}

// wrapperJobs recognises {"jobs": [...]}: the first line starts it; the
// rest of the body (up to max bytes) completes it.
func wrapperJobs(first []byte, br *bufio.Reader, max int64) ([]json.RawMessage, bool, *api.Error) {
	dec := json.NewDecoder(bytes.NewReader(first))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, false, nil
	}
	if key, err := dec.Token(); err != nil || key != "jobs" {
		return nil, false, nil
	}
	rest, err := io.ReadAll(io.LimitReader(br, max+1))
	if err != nil {
		return nil, true, invalid("body: %v", err)
	}
	doc := append(append(first, '\n'), rest...)
	if int64(len(doc)) > max {
		return nil, true, invalid("body: larger than the cap of %d bytes", max)
	}
	var wrapper struct {
		Jobs []json.RawMessage `json:"jobs"`
	}
	// Each job is checked on its own when it is decoded.
	if aerr := checkStrict(doc, reflect.TypeOf(wrapper), "the jobs", true); aerr != nil {
		return nil, true, aerr
	}
	if err := json.Unmarshal(doc, &wrapper); err != nil {
		return nil, true, invalid("body: %v", err)
	}
	return wrapper.Jobs, true, nil
}
