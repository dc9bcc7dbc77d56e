package daemon

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

// FuzzDecodeAndCheck feeds arbitrary bodies to the request decoder and
// validator: they must never panic, and whatever they accept must be safe
// to act on: clean relative paths, limits within the profile's maximum,
// known settings. The decoder must take no key but the exact field names,
// and no duplicates.
func FuzzDecodeAndCheck(f *testing.F) {
	for _, seed := range []string{
		`{"steps":[{"argv":["true"]}]}`,
		`{"id":"a","key":[1,{"x":2}],"files":{"a/b.txt":"x","c":{"base64":"AAE=","mode":"0755"}},"steps":[{"argv":["sh","-c","cat a/b.txt"],"stdin":"in","expected_stdout":"x","limits":{"cpu_time_ms":100,"memory_bytes":1048576}}],"tracked_files":["c"],"stop_on":"never","output_encoding":"base64","workspace_bytes":1048576}`,
		`{"files":{"../x":"a"},"steps":[{"argv":["true"]}]}`,
		`{"steps":[{"argv":["true"],"limits":{"pids":-1}}]}`,
		`{"steps":[{"argv":["\u0000"]}]}`,
		`{"id":"..","steps":[{"argv":["true"]}]}`,
		`[[[[[[[[[[[[[[[[[[[[`,
		`{"steps":null}`,
		``,
		`{"steps":[{"argv":["true"],"limits":{"cpu_time_ms":100,"CPU_TIME_MS":250000}}]}`,
		`{"steps":[{"argv":["true"],"limits":{"wall_time_ms":0,"pids":null}}]}`,
		`{"steps":[{"argv":["true"],"env":{"A":"1","a":"2","PATH":"/a:/b"}}],"steps":[]}`,
		`{"key":{"a":[{"b":1,"b":2}]},"files":{"a":"x","a/b":"y","a":{"content":"z"}},"steps":[{"argv":["true",null]}]}`,
		`{"workspace_bytes":1e3,"steps":[{"argv":["true"],"expected_stdout":null,"limits":{"memory_bytes":99999999999999999999}}]}`,
		`{"files":{"x":{"Content":"a","mode":"0755"}},"steps":[{"ARGV":["true"]}]}`,
		`{"files":{"a":"1"},"steps":[{"argv":["true"],"stdout_to":"out/o.txt"},{"argv":["true"],"expected_stdout_file":"a","compare":"float","float_abs":1e-9,"float_rel":0.5}]}`,
		`{"steps":[{"argv":["true"],"stdout_to":"../o","expected_stdout":"x","compare":"tokens","float_rel":-1}]}`,
	} {
		f.Add([]byte(seed))
	}
	d := &Daemon{}
	d.live.Store(mustSnapshot(DefaultConfig()))
	p := d.conf().profiles["default"]
	f.Fuzz(func(t *testing.T, body []byte) {
		job, aerr := decodeJob(body)
		if aerr != nil {
			if aerr.Code != "invalid_argument" || aerr.Message == "" {
				t.Fatalf("decode error %+v", aerr)
			}
			return
		}
		var generic struct {
			Top   map[string]json.RawMessage
			Steps []map[string]json.RawMessage
		}
		json.Unmarshal(body, &generic.Top)
		json.Unmarshal(generic.Top["steps"], &generic.Steps)
		exact := func(obj map[string]json.RawMessage, typ reflect.Type) {
			for k := range obj {
				if _, ok := jsonFields(typ)[k]; !ok {
					t.Fatalf("accepted key %q of %s", k, typ)
				}
			}
		}
		exact(generic.Top, reflect.TypeFor[api.Job]())
		for _, st := range generic.Steps {
			exact(st, reflect.TypeFor[api.Step]())
			var lim map[string]json.RawMessage
			json.Unmarshal(st["limits"], &lim)
			exact(lim, reflect.TypeFor[api.Limits]())
		}
		cj, aerr := d.check(job)
		if aerr != nil {
			if aerr.Code != "invalid_argument" || !strings.Contains(aerr.Message, ":") {
				t.Fatalf("check error without a field: %+v", aerr)
			}
			return
		}
		if strings.HasPrefix(job.ID, ".") || strings.ContainsAny(job.ID, "/\x00") {
			t.Fatalf("accepted id %q", job.ID)
		}
		for _, f := range cj.files {
			if validRelPath(f.name) != nil || f.mode > 0o777 {
				t.Fatalf("accepted file %q mode %o", f.name, f.mode)
			}
		}
		for _, name := range job.TrackedFiles {
			if validRelPath(name) != nil {
				t.Fatalf("accepted tracked file %q", name)
			}
		}
		for i, s := range cj.steps {
			if len(s.step.Argv) == 0 {
				t.Fatalf("step %d without argv", i)
			}
			if err := s.limits.Validate(p.Max, func(f string) string { return f }); err != nil {
				t.Fatalf("step %d limits after defaults: %v", i, err)
			}
			if s.limits.CPUTimeMS <= 0 || s.limits.MemoryBytes <= 0 || s.limits.PIDs <= 0 {
				t.Fatalf("step %d limits unset after defaults: %+v", i, s.limits)
			}
			for _, p := range []string{s.step.StdoutTo, s.step.ExpectedStdoutFile} {
				if p != "" && validRelPath(p) != nil {
					t.Fatalf("step %d: accepted workspace path %q", i, p)
				}
			}
			if c := s.check; !(c.abs > 0 && c.rel > 0) || c.mode != api.CompareLines && c.mode != api.CompareExact && c.mode != api.CompareTokens && c.mode != api.CompareFloat {
				t.Fatalf("step %d: comparison %+v", i, c)
			}
		}
		if cj.wsBytes <= 0 || cj.wsBytes > p.MaxWorkspaceBytes {
			t.Fatalf("workspace bytes %d", cj.wsBytes)
		}
	})
}
