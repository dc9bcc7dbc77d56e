package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"sort"
	"sync"

	"github.com/sandboxd/sandboxd/api"
)

// writeResult writes res as encoding/json would (the same bytes, and a
// newline), one step and one tracked file at a time: the answer of a job
// whose outputs fill its whole budget costs one step's encoding more, not
// the whole result's (and the doubling of a buffer that holds it all).
func writeResult(w io.Writer, res *api.Result) error {
	bw := resultWriters.Get().(*bufio.Writer)
	bw.Reset(w)
	defer func() {
		bw.Reset(nil)
		resultWriters.Put(bw)
	}()
	// An Encoder writes its buffer straight into bw, where json.Marshal
	// would copy it first: a step's 64 MiB of stdout is copied once less.
	// It escapes as Marshal does and ends each value with a newline,
	// which noNewline drops.
	enc := json.NewEncoder(noNewline{bw})
	put := func(prefix string, v any) error {
		bw.WriteString(prefix)
		return enc.Encode(v)
	}
	if err := put(`{"id":`, res.ID); err != nil {
		return err
	}
	put(`,"status":`, res.Status)
	if res.Message != "" {
		put(`,"message":`, res.Message)
	}
	if res.Steps == nil {
		bw.WriteString(`,"steps":null`)
	} else {
		bw.WriteString(`,"steps":[`)
		for i := range res.Steps {
			sep := ","
			if i == 0 {
				sep = ""
			}
			bw.WriteString(sep)
			if err := writeStep(bw, enc, &res.Steps[i]); err != nil {
				return err
			}
		}
		bw.WriteString("]")
	}
	if len(res.Files) > 0 {
		names := make([]string, 0, len(res.Files))
		for name := range res.Files {
			names = append(names, name)
		}
		sort.Strings(names)
		bw.WriteString(`,"files":{`)
		for i, name := range names {
			sep := ","
			if i == 0 {
				sep = ""
			}
			put(sep, name)
			if err := put(":", res.Files[name]); err != nil {
				return err
			}
		}
		bw.WriteString("}")
	}
	put(`,"timing":`, res.Timing)
	if len(res.Kept) > 0 {
		put(`,"kept":`, res.Kept)
	}
	bw.WriteString("}\n")
	return bw.Flush()
}

// resultWriters are writeResult's buffers, kept between answers: a fresh
// 64 KiB buffer an answer is memory to zero and collect each time.
var resultWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 64<<10) }}

// smallResult bounds the outputs of a result that is encoded in memory
// before it is sent (encodeSmall); larger ones are written as they are
// encoded.
const smallResult = 32 << 10

// encodeSmall encodes res into a buffer from resultBufs when its outputs
// are small, so that the answer can go out whole, with its length, before
// the job's end is logged; nil when they are not.
func encodeSmall(res *api.Result) *bytes.Buffer {
	n := 0
	for i := range res.Steps {
		s := &res.Steps[i]
		if len(s.Programs) > 0 || len(s.Pipes) > 0 {
			return nil
		}
		n += len(s.Stdout) + len(s.Stderr)
	}
	if n > smallResult || len(res.Files) > 0 {
		return nil
	}
	buf := resultBufs.Get().(*bytes.Buffer)
	buf.Reset()
	if err := writeResult(buf, res); err != nil {
		resultBufs.Put(buf)
		return nil
	}
	return buf
}

// resultBufs hold small answers (encodeSmall) until they are sent.
var resultBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// noNewline writes each of an Encoder's values without the newline it
// ends with (an Encoder writes a value in one Write).
type noNewline struct{ w *bufio.Writer }

func (n noNewline) Write(p []byte) (int, error) {
	_, err := n.w.Write(bytes.TrimSuffix(p, []byte("\n")))
	return len(p), err
}
