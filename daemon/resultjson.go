package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"sort"

	"github.com/sandboxd/sandboxd/api"
)

// writeResult writes res as encoding/json would (the same bytes, and a
// newline), one step and one tracked file at a time: the answer of a job
// whose outputs fill its whole budget costs one step's encoding more, not
// the whole result's (and the doubling of a buffer that holds it all).
func writeResult(w io.Writer, res *api.Result) error {
	bw := bufio.NewWriterSize(w, 64<<10)
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

// noNewline writes each of an Encoder's values without the newline it
// ends with (an Encoder writes a value in one Write).
type noNewline struct{ w *bufio.Writer }

func (n noNewline) Write(p []byte) (int, error) {
	_, err := n.w.Write(bytes.TrimSuffix(p, []byte("\n")))
	return len(p), err
}
