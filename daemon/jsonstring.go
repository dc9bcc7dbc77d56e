package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/sandboxd/sandboxd/api"
)

// bigOutput is the stdout and stderr of a step past which writeStep writes
// them itself, straight into the answer, rather than through
// encoding/json's buffer: a buffer as large as the output, grown by
// doubling, its fresh pages faulted in, then copied out.
const bigOutput = 256 << 10

// stepOutputs is how encoding/json writes a step whose stdout and stderr
// are empty; writeStep puts the real ones in their place.
var stepOutputs = []byte(`"stdout":"","stderr":""`)

// writeStep writes a step result as encoding/json would (enc writes into
// bw, without the newline).
func writeStep(bw *bufio.Writer, enc *json.Encoder, st *api.StepResult) error {
	if len(st.Stdout)+len(st.Stderr) < bigOutput {
		return enc.Encode(st)
	}
	rest := *st
	rest.Stdout, rest.Stderr = "", ""
	b, err := json.Marshal(&rest)
	if err != nil {
		return err
	}
	// The first match is the step's own: the fields before it (verdict,
	// exit_code, signal) cannot hold it, and a program's come after.
	i := bytes.Index(b, stepOutputs)
	if i < 0 {
		return enc.Encode(st)
	}
	bw.Write(b[:i])
	bw.WriteString(`"stdout":`)
	writeJSONString(bw, st.Stdout)
	bw.WriteString(`,"stderr":`)
	writeJSONString(bw, st.Stderr)
	_, err = bw.Write(b[i+len(stepOutputs):])
	return err
}

const hexDigits = "0123456789abcdef"

// writeJSONString writes s as a JSON string, byte for byte as encoding/json
// encodes it (with its default HTML escaping): <, >, & and control
// characters as \u00XX (or \n, \r, \t, \b, \f), U+2028 and U+2029 escaped,
// and each invalid UTF-8 byte as \ufffd.
func writeJSONString(w *bufio.Writer, s string) {
	w.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if jsonSafe[b] {
				i++
				continue
			}
			w.WriteString(s[start:i])
			switch b {
			case '\\', '"':
				w.WriteByte('\\')
				w.WriteByte(b)
			case '\b':
				w.WriteString(`\b`)
			case '\f':
				w.WriteString(`\f`)
			case '\n':
				w.WriteString(`\n`)
			case '\r':
				w.WriteString(`\r`)
			case '\t':
				w.WriteString(`\t`)
			default:
				w.WriteString(`\u00`)
				w.WriteByte(hexDigits[b>>4])
				w.WriteByte(hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			w.WriteString(s[start:i])
			w.WriteString(`\ufffd`)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			w.WriteString(s[start:i])
			w.WriteString(`\u202`)
			w.WriteByte(hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	w.WriteString(s[start:])
	w.WriteByte('"')
}

// jsonSafe holds the ASCII bytes encoding/json writes as they are, HTML
// escaping on: not the control characters, ", \, <, > or &.
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		switch b {
		case '"', '\\', '<', '>', '&':
		default:
			t[b] = true
		}
	}
	return t
}()
