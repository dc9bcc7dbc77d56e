package daemon

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

// sameAsSlow checks that onePass takes body only where the full check
// does, into the same job, and that decodeJob answers as the full check.
func sameAsSlow(t *testing.T, body []byte) (taken bool) {
	t.Helper()
	var fast api.Job
	taken = decodeOnePass(body, &fast)
	slow, serr := decodeJobStrict(body)
	if taken {
		if serr != nil {
			t.Fatalf("onePass took %q, which the full check refuses: %v", body, serr)
		}
		if !reflect.DeepEqual(&fast, slow) {
			t.Fatalf("onePass decoded %q as\n%#v\nencoding/json as\n%#v", body, fast, *slow)
		}
	}
	got, gerr := decodeJob(body)
	if !reflect.DeepEqual(gerr, serr) || !reflect.DeepEqual(got, slow) {
		t.Fatalf("decodeJob(%q) = %#v, %v; want %#v, %v", body, got, gerr, slow, serr)
	}
	return taken
}

var onePassBodies = []string{
	`{"steps":[{"argv":["true"]}]}`,
	` {"steps":[{"argv":["true"]}]} ` + "\n",
	`{"id":"a","key":[1,{"x":2}],"files":{"a/b.txt":"x","c":{"base64":"AAE=","mode":"0755"}},"steps":[{"argv":["sh","-c","cat a/b.txt"],"stdin":"in","expected_stdout":"x","limits":{"cpu_time_ms":100,"memory_bytes":1048576}}],"tracked_files":["c"],"stop_on":"never","output_encoding":"base64","workspace_bytes":1048576}`,
	`{"key":null,"steps":[{"argv":["true"],"expected_stdout":null,"limits":null,"env":null}],"files":null}`,
	`{"key":"k","steps":[],"tracked_files":[],"files":{},"keep_files":[]}`,
	`{"key":{},"steps":[{"argv":[],"env":{}}]}`,
	`{"key":{"":1,"a":[true,false,null,-0.5e+3,"\u00e9\ud83d\ude00"]},"steps":[{"argv":["true"]}]}`,
	`{"steps":[{"argv":["\u003cb\u003e \u0026 \"q\" \\ \/ \b\f\n\r\t"],"stdin":"\ud83d\ude00 \ud83d x \ude00 \ud83d\u0041 é ✓"}]}`,
	"{\"steps\":[{\"argv\":[\"bad \xff\xfe utf8 \xed\xa0\x80 \xef\xbf\xbd\"]}]}",
	`{"steps":[{"argv":["true"],"env":{"A":"1","\u0041B":"2","":"3"}}]}`,
	`{"steps":[{"argv":["true"],"env":{"A":"1","\u0041":"2"}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"cpus":0.5,"pids":9223372036854775807}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":9223372036854775808}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"cpus":1e400}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"cpus":0}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"cpus":-1}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":01}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":1.0}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":1e2}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":-1}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":0}}]}`,
	`{"steps":[{"argv":["true"],"limits":{"pids":"1"}}]}`,
	`{"steps":[{"argv":["true"],"stdin_pipe":true,"stdin_pipe":true}]}`,
	`{"steps":[{"argv":["true"],"stdin_pipe":tru}]}`,
	`{"steps":[{"argv":["true"],"stdin_pipe":false}]}`,
	`{"st\u0065ps":[{"argv":["true"]}]}`,
	`{"Steps":[{"argv":["true"]}]}`,
	`{"steps":[{"argv":["true"]}],"nope":1}`,
	`{"steps":[{"argv":["true"]}]}{}`,
	`{"steps":[{"argv":["true"]}]`,
	`{"steps":[{"argv":["true"]},]}`,
	`{"steps":[{"argv":["true"]}],}`,
	`{"steps":[{"argv":["true",null]}]}`,
	`{"steps":[{"argv":["a` + "\x01" + `"]}]}`,
	`{"steps":[{"argv":["a\x"]}]}`,
	`{"steps":[{"argv":["a\u12"]}]}`,
	`{"files":{"a":"1","a":"2"},"steps":[{"argv":["true"]}]}`,
	`{"files":{"a":{"content":"x","mode":"0644","cached":"","base64":""}},"steps":[{"argv":["true"]}]}`,
	`{"files":{"a":{"content":"x","Mode":"0644"}},"steps":[{"argv":["true"]}]}`,
	`{"files":{"a":{"content":null}},"steps":[{"argv":["true"]}]}`,
	`{"files":{"a":null},"steps":[{"argv":["true"]}]}`,
	`{"files":{"a":1},"steps":[{"argv":["true"]}]}`,
	`{"files":{"a":{}},"steps":[{"argv":["true"]}]}`,
	`{"key":{"a":1,"a":2},"steps":[{"argv":["true"]}]}`,
	`{"key":{"\u0061":1,"a":2},"steps":[{"argv":["true"]}]}`,
	`{"key":[1 2],"steps":[{"argv":["true"]}]}`,
	`{"key":` + strings.Repeat("[", 1001) + strings.Repeat("]", 1001) + `,"steps":[]}`,
	`{"key":` + strings.Repeat("[", 999) + strings.Repeat("]", 999) + `,"steps":[]}`,
	`{"steps":[{"programs":[{"name":"a","argv":["true"],"workspace":"private","files":{"x":"y"},"tracked_files":["x"]}],"pipes":[{"from":"a","to":"b","capture_bytes":10}]}]}`,
	`{"steps":[{"argv":["true"],"float_abs":1e-9,"float_rel":0.5,"compare":"float"}],"pause_between_steps":true}`,
	`null`,
	`[]`,
	`"x"`,
	``,
	`   `,
	`{}`,
	`{"steps":[{"argv":["true"]}]} x`,
}

func TestOnePassAgreesWithTheFullCheck(t *testing.T) {
	taken := 0
	for _, body := range onePassBodies {
		if sameAsSlow(t, []byte(body)) {
			taken++
		}
	}
	if taken < 10 {
		t.Fatalf("onePass took only %d of the bodies", taken)
	}
	// Every cut of a full body: truncated JSON is never taken.
	full := []byte(onePassBodies[2])
	for i := range full {
		sameAsSlow(t, full[:i])
	}
	// Bytes changed at random.
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]":,\ u0123456789.-eE+ntrfalsu"` + "\x00\x1f\x80\xff")
	for range 20000 {
		b := []byte(onePassBodies[r.IntN(len(onePassBodies))])
		for range 1 + r.IntN(3) {
			if len(b) == 0 {
				break
			}
			b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
		}
		sameAsSlow(t, b)
	}
}

// TestOnePassTakesWhatClientsSend: the Go client's encoding (with its
// \u003c escapes) and Python's (ensure_ascii, surrogate pairs) of a job
// with a large stdin and file are read in one pass, to the same job.
func TestOnePassTakesWhatClientsSend(t *testing.T) {
	var text strings.Builder
	for i := 0; text.Len() < 4<<20; i++ {
		text.WriteString("line <b>&amp;</b> \"quoted\" \\ tab\t é ✓ 😀 \x7f\n")
	}
	job := api.Job{
		Key:   api.KeyOf(map[string]any{"case": 7, "name": "é"}),
		Files: map[string]api.File{"in.txt": {Content: text.String()}, "run.sh": {Content: "cat in.txt", Mode: "0755"}},
		Steps: []api.Step{{Argv: []string{"sh", "run.sh"}, Stdin: text.String(), Limits: api.Limits{CPUs: 0.5, PIDs: 4}}},
	}
	goBody, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	if !sameAsSlow(t, goBody) {
		t.Fatal("onePass did not take the Go client's body")
	}
	// Python's json.dumps: every non-ASCII rune escaped, outside the BMP
	// as a surrogate pair.
	var py bytes.Buffer
	for _, r := range string(goBody) {
		switch {
		case r < 0x80:
			py.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			py.WriteString(strings.ToLower(string(fmtU(0xd800 + (r >> 10)))))
			py.WriteString(strings.ToLower(string(fmtU(0xdc00 + (r & 0x3ff)))))
		default:
			py.WriteString(string(fmtU(r)))
		}
	}
	if !sameAsSlow(t, py.Bytes()) {
		t.Fatal("onePass did not take the Python client's body")
	}
	got, _ := decodeJob(py.Bytes())
	if got.Steps[0].Stdin != text.String() {
		t.Fatal("stdin decoded wrong")
	}
}

func fmtU(r rune) []byte {
	const hex = "0123456789ABCDEF"
	return []byte{'\\', 'u', hex[r>>12&15], hex[r>>8&15], hex[r>>4&15], hex[r&15]}
}

// FuzzOnePass: whatever onePass takes, the full check takes, into the
// same job.
func FuzzOnePass(f *testing.F) {
	for _, b := range onePassBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAsSlow(t, body)
	})
}

func BenchmarkDecodeLargeStdin(b *testing.B) {
	line := strings.Repeat("x", 63) + "\n"
	job := api.Job{Steps: []api.Step{{Argv: []string{"cat"}, Stdin: strings.Repeat(line, 16<<20/64)}}}
	body, _ := json.Marshal(job)
	for _, way := range []struct {
		name   string
		decode func([]byte) (*api.Job, *api.Error)
	}{{"onepass", decodeJob}, {"full", decodeJobStrict}} {
		b.Run(way.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, aerr := way.decode(body); aerr != nil {
					b.Fatal(aerr)
				}
			}
		})
	}
}

// TestPlainRun: the eight-at-a-time scan stops where a byte-at-a-time one
// does.
func TestPlainRun(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	special := []byte{'"', '\\', 0, 0x1f, 0x7f, 0x80, 0xff, ' ', '!', '#', '[', ']'}
	for range 100000 {
		d := make([]byte, r.IntN(40))
		for i := range d {
			d[i] = 'a' + byte(r.IntN(26))
			if r.IntN(16) == 0 {
				d[i] = special[r.IntN(len(special))]
			}
		}
		start := 0
		if len(d) > 0 {
			start = r.IntN(len(d))
		}
		want := start
		for want < len(d) && plainByte[d[want]] {
			want++
		}
		if got := plainRun(d, start); got != want {
			t.Fatalf("plainRun(%q, %d) = %d, want %d", d, start, got, want)
		}
	}
}

// TestOnePassKnowsEveryField: the types a job is made of use only what
// onePass decodes as encoding/json does (no embedded structs, no ",string"
// options, no other Unmarshaler than api.File's, no other kinds), so that a
// field added to the API cannot be read one way here and another there.
func TestOnePassKnowsEveryField(t *testing.T) {
	unmarshaler := reflect.TypeFor[json.Unmarshaler]()
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		if seen[ty] {
			return
		}
		seen[ty] = true
		if ty != fileType && ty != rawMessageType && reflect.PointerTo(ty).Implements(unmarshaler) {
			t.Errorf("%s (%s) has its own UnmarshalJSON", path, ty)
		}
		switch ty.Kind() {
		case reflect.String, reflect.Int64, reflect.Float64, reflect.Bool:
		case reflect.Pointer, reflect.Slice:
			if ty != rawMessageType {
				walk(ty.Elem(), path+"[]")
			}
		case reflect.Map:
			if ty.Key().Kind() != reflect.String {
				t.Errorf("%s: map keyed by %s", path, ty.Key())
			}
			walk(ty.Elem(), path+"[k]")
		case reflect.Struct:
			for i := range ty.NumField() {
				f := ty.Field(i)
				tag := f.Tag.Get("json")
				if f.Anonymous || strings.Contains(tag, ",string") {
					t.Errorf("%s.%s: embedded or ,string", path, f.Name)
				}
				walk(f.Type, path+"."+f.Name)
			}
		default:
			t.Errorf("%s: kind %s", path, ty.Kind())
		}
	}
	walk(reflect.TypeFor[api.Job](), "Job")
}
