package piston

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// Config holds the limits of an execute, as Piston's configuration names
// them: the default of each stage's limit when a request leaves it out, and
// the most a request may ask for. Times are in milliseconds, memory in
// bytes; a memory limit of -1 is the profile's default, the most there is
// (Piston's "no limit").
type Config struct {
	CompileTimeout     int64 `toml:"compile_timeout"`      // 0: Piston's 10000
	RunTimeout         int64 `toml:"run_timeout"`          // 0: Piston's 3000
	CompileCPUTime     int64 `toml:"compile_cpu_time"`     // 0: Piston's 10000
	RunCPUTime         int64 `toml:"run_cpu_time"`         // 0: Piston's 3000
	CompileMemoryLimit int64 `toml:"compile_memory_limit"` // 0: Piston's -1
	RunMemoryLimit     int64 `toml:"run_memory_limit"`     // 0: Piston's -1
	// OutputMaxSize caps each stage's stdout and stderr (Piston's
	// output_max_size); 0: Piston's 1024.
	OutputMaxSize int64 `toml:"output_max_size"`
}

// Validate names the first key that no execute could honour: a negative
// time or size, or a memory limit below -1.
func (c Config) Validate() error {
	for _, f := range []struct {
		key string
		v   int64
	}{{"compile_timeout", c.CompileTimeout}, {"run_timeout", c.RunTimeout}, {"compile_cpu_time", c.CompileCPUTime},
		{"run_cpu_time", c.RunCPUTime}, {"output_max_size", c.OutputMaxSize}} {
		if f.v < 0 {
			return fmt.Errorf("%s: %d is negative", f.key, f.v)
		}
	}
	for _, f := range []struct {
		key string
		v   int64
	}{{"compile_memory_limit", c.CompileMemoryLimit}, {"run_memory_limit", c.RunMemoryLimit}} {
		if f.v < -1 {
			return fmt.Errorf("%s: %d is below -1 (the profile's default)", f.key, f.v)
		}
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.CompileTimeout, 10000)
	def(&c.RunTimeout, 3000)
	def(&c.CompileCPUTime, 10000)
	def(&c.RunCPUTime, 3000)
	def(&c.CompileMemoryLimit, -1)
	def(&c.RunMemoryLimit, -1)
	def(&c.OutputMaxSize, 1024)
	return c
}

// handler serves Piston's v2 API from one daemon.
type handler struct {
	c   *client.Client
	cfg Config
	log logrus.FieldLogger

	// The runtimes an execute chooses from, read from the daemon at most
	// once a runtimesTTL: they change only when the daemon's config is
	// reloaded, and a job in a profile gone unavailable meanwhile is
	// refused by the daemon itself.
	mu        sync.Mutex
	rts       []runtime
	rtsExpire time.Time
}

// runtimesTTL is how long an execute reuses the daemon's runtimes; GET
// /api/v2/runtimes always asks the daemon.
const runtimesTTL = time.Second

// NewHandler serves GET /api/v2/runtimes and POST /api/v2/execute over
// the daemon that c talks to.
func NewHandler(c *client.Client, cfg Config, log logrus.FieldLogger) http.Handler {
	h := &handler{c: c, cfg: cfg.withDefaults(), log: log}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/runtimes", h.runtimes)
	mux.HandleFunc("POST /api/v2/execute", h.execute)
	return mux
}

// Runtime is one entry of GET /api/v2/runtimes.
type Runtime struct {
	Language string   `json:"language"`
	Version  string   `json:"version"`
	Aliases  []string `json:"aliases"`
	// Runtime is only given where a language has several; never here.
	Runtime string `json:"runtime,omitempty"`
}

// runtime is an available language profile with its version parsed.
type runtime struct {
	api.LanguageInfo
	version version
}

func (h *handler) available(ctx context.Context) ([]runtime, error) {
	info, err := h.c.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []runtime
	for _, l := range info.Languages {
		v, ok := parseVersion(l.Version)
		if l.Available && ok {
			out = append(out, runtime{l, v})
		}
	}
	return out, nil
}

// recentRuntimes is available, reused for up to runtimesTTL.
func (h *handler) recentRuntimes(ctx context.Context) ([]runtime, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Now().Before(h.rtsExpire) {
		return h.rts, nil
	}
	rts, err := h.available(ctx)
	if err != nil {
		return nil, err
	}
	h.rts, h.rtsExpire = rts, time.Now().Add(runtimesTTL)
	return rts, nil
}

func (h *handler) runtimes(w http.ResponseWriter, r *http.Request) {
	rts, err := h.available(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	list := make([]Runtime, 0, len(rts))
	for _, rt := range rts {
		list = append(list, Runtime{Language: rt.Language, Version: rt.version.String(), Aliases: rt.Aliases})
	}
	writeJSON(w, http.StatusOK, list)
}

// File is one of an execute's files.
type File struct {
	Name     string `json:"name,omitempty"`
	Content  string `json:"content"`
	Encoding string `json:"encoding,omitempty"`
}

// request is an execute's body. The loose fields are checked as Piston
// checks them, with its messages.
type request struct {
	Language any               `json:"language"`
	Version  any               `json:"version"`
	Files    []json.RawMessage `json:"files"`
	Stdin    *string           `json:"stdin"`
	Args     []string          `json:"args"`
	Limits   map[string]any    `json:"-"`
}

// Stage is the compile or run stage of an execute's answer.
type Stage struct {
	Stdout   string   `json:"stdout"`
	Stderr   string   `json:"stderr"`
	Output   string   `json:"output"`
	Code     *int     `json:"code"`
	Signal   *string  `json:"signal"`
	Message  *string  `json:"message"`
	Status   *string  `json:"status"`
	CPUTime  *float64 `json:"cpu_time"`
	WallTime *float64 `json:"wall_time"`
	Memory   *int64   `json:"memory"`
}

// Response is an execute's answer.
type Response struct {
	Language string `json:"language"`
	Version  string `json:"version"`
	Run      *Stage `json:"run"`
	Compile  *Stage `json:"compile,omitempty"`
}

// badRequest is a request Piston refuses with 400 and this message.
type badRequest string

func (e badRequest) Error() string { return string(e) }

const maxBody = 64 << 20

func (h *handler) execute(w http.ResponseWriter, r *http.Request) {
	// Piston refuses a body that is not application/json; the npm
	// piston-client sends its JSON as text/plain (fetch's default for a
	// string), so that is taken too, and a body with no type.
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" && mt != "text/plain" && mt != "" {
		writeJSON(w, http.StatusUnsupportedMediaType, map[string]string{"message": "requests must be of type application/json"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"message": fmt.Sprintf("request body larger than %d bytes", maxBody)})
		return
	}
	var req request
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		h.fail(w, badRequest("malformed JSON: "+err.Error()))
		return
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.fail(w, badRequest("malformed request: "+err.Error()))
		return
	}
	req.Limits = raw
	rts, err := h.recentRuntimes(r.Context())
	if err != nil {
		h.fail(w, err)
		return
	}
	job, rt, err := h.jobOf(&req, rts)
	if err != nil {
		h.fail(w, err)
		return
	}
	outputs := make([]strings.Builder, len(job.Steps))
	res, err := h.c.RunStream(r.Context(), job, func(e *api.Event) error {
		if (e.Event == api.EventStdout || e.Event == api.EventStderr) && e.Step != nil && *e.Step < len(outputs) {
			outputs[*e.Step].WriteString(e.Data)
		}
		return nil
	})
	if err != nil {
		h.fail(w, err)
		return
	}
	out := Response{Language: rt.Language, Version: rt.version.String()}
	stages := make([]*Stage, len(res.Steps))
	for i := range res.Steps {
		stages[i] = stageOf(&res.Steps[i], outputs[i].String())
	}
	if len(rt.Compile) > 0 {
		out.Compile = stages[0]
		stages = stages[1:]
	}
	if len(stages) > 0 && stages[0] != nil {
		out.Run = stages[0]
	} else {
		out.Run = out.Compile // as Piston: a failed compile is the run stage too
	}
	writeJSON(w, http.StatusOK, out)
}

// jobOf checks an execute as Piston does, in its order and with its
// messages, and makes it a v1 job of the runtime's profile.
func (h *handler) jobOf(req *request, rts []runtime) (*api.Job, *runtime, error) {
	lang, ok := req.Language.(string)
	if !ok || lang == "" {
		return nil, nil, badRequest("language is required as a string")
	}
	sel, ok := req.Version.(string)
	if !ok || sel == "" {
		return nil, nil, badRequest("version is required as a string")
	}
	if req.Files == nil {
		return nil, nil, badRequest("files is required as an array")
	}
	files := make([]File, len(req.Files))
	for i, f := range req.Files {
		var m map[string]any
		json.Unmarshal(f, &m)
		if _, ok := m["content"].(string); !ok {
			return nil, nil, badRequest(fmt.Sprintf("files[%d].content is required as a string", i))
		}
		if err := json.Unmarshal(f, &files[i]); err != nil {
			return nil, nil, badRequest(fmt.Sprintf("files[%d]: %v", i, err))
		}
	}
	var rt *runtime
	for i := range rts {
		c := &rts[i]
		if (c.Language == lang || contains(c.Aliases, lang)) && satisfies(c.version, sel) && (rt == nil || c.version.cmp(rt.version) > 0) {
			rt = c
		}
	}
	if rt == nil {
		return nil, nil, badRequest(fmt.Sprintf("%s-%s runtime is unknown", lang, sel))
	}
	source := -1
	for i, f := range files {
		if f.Encoding == "" || f.Encoding == "utf8" || !known(f.Encoding) {
			source = i
			break
		}
	}
	if source < 0 {
		return nil, nil, badRequest("files must include at least one utf8 encoded file")
	}
	limits, err := h.limits(req.Limits)
	if err != nil {
		return nil, nil, err
	}

	job := &api.Job{Profile: rt.Profile, Files: map[string]api.File{}, StopOn: api.StopOnFailure}
	for i, f := range files {
		name := f.Name
		if i == source {
			name = rt.SourceFile // the profile's argv name it
		} else if name == "" {
			name = fmt.Sprintf("file%d.code", i)
		}
		switch f.Encoding {
		case "base64":
			b, err := base64.StdEncoding.DecodeString(f.Content)
			if err != nil {
				return nil, nil, badRequest(fmt.Sprintf("files[%d].content: not base64: %v", i, err))
			}
			job.Files[name] = api.File{Base64: base64.StdEncoding.EncodeToString(b)}
		case "hex":
			b, err := hex.DecodeString(f.Content)
			if err != nil {
				return nil, nil, badRequest(fmt.Sprintf("files[%d].content: not hex: %v", i, err))
			}
			job.Files[name] = api.File{Base64: base64.StdEncoding.EncodeToString(b)}
		default:
			job.Files[name] = api.File{Content: f.Content}
		}
	}
	if len(rt.Compile) > 0 {
		job.Steps = append(job.Steps, api.Step{Argv: rt.Compile, Limits: limits["compile"]})
	}
	stdin := ""
	if req.Stdin != nil {
		stdin = *req.Stdin
	}
	if !strings.HasSuffix(stdin, "\n") {
		stdin += "\n" // as Piston does
	}
	argv := append(append([]string{}, rt.Run...), req.Args...)
	job.Steps = append(job.Steps, api.Step{Argv: argv, Stdin: stdin, Limits: limits["run"]})
	return job, rt, nil
}

func known(enc string) bool { return enc == "base64" || enc == "hex" || enc == "utf8" }

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// limits reads the six limits of an execute, as Piston checks them: a
// limit left out, null or 0 is the configured default; one above the
// configured maximum, or negative, is refused (unless the configured
// one is -1, which lets anything through).
func (h *handler) limits(body map[string]any) (map[string]api.Limits, error) {
	out := map[string]api.Limits{}
	for _, stage := range []string{"compile", "run"} {
		conf := map[string]int64{
			"timeout": h.cfg.RunTimeout, "cpu_time": h.cfg.RunCPUTime, "memory_limit": h.cfg.RunMemoryLimit,
		}
		if stage == "compile" {
			conf = map[string]int64{
				"timeout": h.cfg.CompileTimeout, "cpu_time": h.cfg.CompileCPUTime, "memory_limit": h.cfg.CompileMemoryLimit,
			}
		}
		val := map[string]int64{}
		for _, c := range []string{"memory_limit", "timeout", "cpu_time"} {
			name := stage + "_" + c
			val[c] = conf[c]
			v, set := body[name]
			if !set || v == nil || v == false || v == "" || v == float64(0) {
				continue
			}
			n, ok := v.(float64)
			if !ok {
				return nil, badRequest(fmt.Sprintf("If specified, %s must be a number", name))
			}
			if conf[c] <= 0 {
				val[c] = int64(n)
				continue
			}
			if n > float64(conf[c]) {
				return nil, badRequest(fmt.Sprintf("%s cannot exceed the configured limit of %d", name, conf[c]))
			}
			if n < 0 {
				return nil, badRequest(fmt.Sprintf("%s must be non-negative", name))
			}
			val[c] = int64(n)
		}
		l := api.Limits{WallTimeMS: max(val["timeout"], 1), CPUTimeMS: max(val["cpu_time"], 1), OutputBytes: h.cfg.OutputMaxSize}
		if val["memory_limit"] > 0 {
			l.MemoryBytes = val["memory_limit"]
		}
		out[stage] = l
	}
	return out, nil
}

// stageOf turns a step's result into a Piston stage, with the status
// codes of Piston (from isolate): RE a nonzero exit, SG a fatal signal,
// TO a time limit, OL and EL stdout's and stderr's limit, XX an internal
// error; none when the program exited 0. nil for a step that did not run.
func stageOf(s *api.StepResult, output string) *Stage {
	if s.Verdict == api.VerdictSkipped {
		return nil
	}
	st := &Stage{Stdout: s.Stdout, Stderr: s.Stderr, Output: output}
	if output == "" {
		st.Output = s.Stdout + s.Stderr
	}
	cpu, wall, mem := s.CPUTimeMS, s.WallTimeMS, s.MemoryPeakBytes
	st.CPUTime, st.WallTime, st.Memory = &cpu, &wall, &mem
	str := func(v string) *string { return &v }
	killed := func(status, msg string) {
		st.Status, st.Signal, st.Message = str(status), str("SIGKILL"), str(msg)
	}
	switch s.Verdict {
	case api.VerdictOK:
		code := s.ExitCode
		st.Code = &code
	case api.VerdictNonzeroExit:
		code := s.ExitCode
		st.Code, st.Status, st.Message = &code, str("RE"), str("Exited with error status "+strconv.Itoa(code))
	case api.VerdictSignaled, api.VerdictSyscallBlocked:
		st.Status, st.Signal, st.Message = str("SG"), str(s.Signal), str("Caught fatal signal "+s.Signal)
	case api.VerdictCPUTimeLimit, api.VerdictWallTimeLimit:
		killed("TO", "Time limit exceeded")
	case api.VerdictMemoryLimit:
		killed("SG", "Memory limit exceeded")
	case api.VerdictOutputLimit:
		if s.StderrTruncated && !s.StdoutTruncated {
			killed("EL", "stderr length exceeded")
		} else {
			killed("OL", "stdout length exceeded")
		}
	default: // exec_failed, cancelled, internal_error
		st.Status, st.Message = str("XX"), str(string(s.Verdict)+": "+s.Message)
	}
	if s.Message != "" && st.Message != nil && s.Verdict != api.VerdictOK && !strings.Contains(*st.Message, s.Message) {
		*st.Message += ": " + s.Message
	}
	return st
}

// fail answers an error as Piston does: {"message": ...}, 400 for a
// request it refuses, 500 otherwise.
func (h *handler) fail(w http.ResponseWriter, err error) {
	var bad badRequest
	var apiErr *api.Error
	switch {
	case errors.As(err, &bad):
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": bad.Error()})
	case errors.As(err, &apiErr) && apiErr.Code == api.CodeInvalidArgument:
		writeJSON(w, http.StatusBadRequest, map[string]string{"message": apiErr.Message})
	default:
		if h.log != nil {
			h.log.WithError(err).Warn("piston: the daemon failed the request")
		}
		writeJSON(w, http.StatusInternalServerError, map[string]string{"message": err.Error()})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}
