package gojudge

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api/client"
)

// Config is what the go-judge protocol needs beyond the client.
type Config struct {
	// HostDirs are the directories a "src" path may be read from.
	HostDirs []string
	// Version is the gateway's, reported by GET /version.
	Version string
}

// maxRunBody bounds the body of POST /run.
const maxRunBody = 64 << 20

// maxNames bounds how many uploaded files' names the gateway remembers
// for GET /file.
const maxNames = 100_000

type handler struct {
	c   *client.Client
	cfg Config
	log logrus.FieldLogger

	mu    sync.Mutex
	names map[string]string // file id -> the name it was uploaded as
}

// NewHandler serves go-judge's REST API on the daemon c talks to.
func NewHandler(c *client.Client, cfg Config, log logrus.FieldLogger) http.Handler {
	h := &handler{c: c, cfg: cfg, log: log, names: map[string]string{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", h.run)
	mux.HandleFunc("GET /file", h.fileList)
	mux.HandleFunc("POST /file", h.fileUpload)
	mux.HandleFunc("GET /file/{id}", h.fileGet)
	mux.HandleFunc("DELETE /file/{id}", h.fileDelete)
	mux.HandleFunc("GET /version", h.version)
	mux.HandleFunc("GET /config", h.config)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// writeError answers an error as go-judge does: the message as a JSON
// string.
func writeError(w http.ResponseWriter, err error) {
	var bad *badRequest
	if errors.As(err, &bad) {
		writeJSON(w, http.StatusBadRequest, bad.msg)
		return
	}
	status, msg := errorOfDaemon(err)
	writeJSON(w, status, msg)
}

func (h *handler) run(w http.ResponseWriter, r *http.Request) {
	var req Request
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRunBody))
	if err := dec.Decode(&req); err != nil {
		writeError(w, badf("body: %s", decodeError(err)))
		return
	}
	if len(req.Cmd) == 0 {
		writeError(w, badf("no cmd provided"))
		return
	}
	piped, err := checkPipes(req.Cmd, req.PipeMapping)
	if err != nil {
		writeError(w, err)
		return
	}
	plans := make([]*cmdPlan, len(req.Cmd))
	for i := range req.Cmd {
		if plans[i], err = h.planCmd(r.Context(), i, &req.Cmd[i], piped[i]); err != nil {
			writeError(w, err)
			return
		}
		if len(req.PipeMapping) > 0 && (plans[i].stdin != "" || plans[i].stdinCached != "") {
			writeError(w, badf("cmd[%d].files[0]: a cmd joined by pipes takes no stdin file in sandboxd: copy it in and let the program open it, or pipe it", i))
			return
		}
	}
	var results []Result
	if len(req.PipeMapping) == 0 {
		results, err = h.runAlone(r.Context(), plans)
	} else {
		results, err = h.runGroup(r.Context(), plans, req.PipeMapping)
	}
	if err != nil {
		if r.Context().Err() != nil {
			return // the client left; the daemon cancelled its jobs
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, results)
}

// checkPipes checks pipeMapping against the cmds and gives, per cmd, the
// fds its pipes take.
func checkPipes(cmds []Cmd, pipes []PipeMap) ([]map[int]bool, error) {
	piped := make([]map[int]bool, len(cmds))
	for i := range piped {
		piped[i] = map[int]bool{}
	}
	if len(pipes) == 0 {
		return piped, nil
	}
	if len(cmds) < 2 || len(cmds) > maxCmdsInGroup {
		return nil, badf("pipeMapping: sandboxd joins 2 to %d cmds by pipes, this request has %d", maxCmdsInGroup, len(cmds))
	}
	for k, m := range pipes {
		for _, end := range []struct {
			what string
			pi   PipeIndex
		}{{"in", m.In}, {"out", m.Out}} {
			if end.pi.Index < 0 || end.pi.Index >= len(cmds) {
				return nil, badf("pipeMapping[%d].%s.index: %d is not a cmd (0 to %d)", k, end.what, end.pi.Index, len(cmds)-1)
			}
			if end.pi.Fd < 0 || end.pi.Fd > 9 {
				return nil, badf("pipeMapping[%d].%s.fd: %d is not 0 to 9", k, end.what, end.pi.Fd)
			}
			if piped[end.pi.Index][end.pi.Fd] {
				return nil, badf("pipeMapping[%d].%s: cmd %d's fd %d is in another pipe already", k, end.what, end.pi.Index, end.pi.Fd)
			}
			piped[end.pi.Index][end.pi.Fd] = true
		}
		if m.Max < 0 {
			return nil, badf("pipeMapping[%d].max: must not be negative, got %d", k, m.Max)
		}
	}
	return piped, nil
}

func decodeError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var mb *http.MaxBytesError
	switch {
	case errors.Is(err, io.EOF):
		return "empty"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %v", se.Offset, err)
	case errors.As(err, &te):
		return fmt.Sprintf("%s: wrong type (%s, want %s)", te.Field, te.Value, te.Type)
	case errors.As(err, &mb):
		return fmt.Sprintf("larger than %d bytes", mb.Limit)
	}
	return err.Error()
}

func (h *handler) fileUpload(w http.ResponseWriter, r *http.Request) {
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, badf("body: a multipart form with a field \"file\" is expected: %v", err))
		return
	}
	for {
		part, err := mr.NextPart()
		if err != nil {
			writeError(w, badf("body: no multipart field \"file\" (%v)", err))
			return
		}
		if part.FormName() != "file" {
			part.Close()
			continue
		}
		cf, err := h.c.Upload(r.Context(), part)
		if err != nil {
			writeError(w, err)
			return
		}
		h.mu.Lock()
		if _, ok := h.names[cf.ID]; ok || len(h.names) < maxNames {
			h.names[cf.ID] = part.FileName()
		}
		h.mu.Unlock()
		writeJSON(w, http.StatusOK, cf.ID)
		return
	}
}

// fileList answers go-judge's map of file id to the name it was uploaded
// as ("" for a file this gateway did not upload).
func (h *handler) fileList(w http.ResponseWriter, r *http.Request) {
	files, err := h.c.Files(r.Context())
	if err != nil {
		writeError(w, err)
		return
	}
	out := make(map[string]string, len(files))
	h.mu.Lock()
	for _, f := range files {
		out[f.ID] = h.names[f.ID]
	}
	h.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) fileGet(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h.mu.Lock()
	name := h.names[id]
	h.mu.Unlock()
	if name == "" {
		name = id
	}
	lw := &lazyWriter{w: w, start: func() {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", name))
	}}
	if err := h.c.Download(r.Context(), id, lw); err != nil && !lw.started {
		writeError(w, err)
	}
}

// lazyWriter sets the answer's headers at its first byte, so that an error
// before it can still be answered as one.
type lazyWriter struct {
	w       http.ResponseWriter
	start   func()
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.started = true
		l.start()
	}
	return l.w.Write(p)
}

func (h *handler) fileDelete(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := h.c.DeleteFile(r.Context(), id); err != nil {
		writeError(w, err)
		return
	}
	h.mu.Lock()
	delete(h.names, id)
	h.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// capabilities are the optional features of go-judge's /version and
// /config that this gateway has: clients check copyOutOptional before
// they send a name ending in "?".
func capabilities() map[string]any {
	return map[string]any{"copyOutOptional": true, "pipeProxy": true}
}

func (h *handler) version(w http.ResponseWriter, r *http.Request) {
	v := capabilities()
	v["buildVersion"] = "sandboxd-gateway " + h.cfg.Version
	v["goVersion"] = runtime.Version()
	v["platform"] = runtime.GOARCH
	v["os"] = runtime.GOOS
	writeJSON(w, http.StatusOK, v)
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) {
	v := capabilities()
	v["fileStorePath"] = ""
	v["runnerConfig"] = map[string]any{"runner": "sandboxd", "hostDirs": h.cfg.HostDirs}
	writeJSON(w, http.StatusOK, v)
}
