package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// routeTable is the API: each route's method and path pattern, and its
// handler. The OpenAPI document (docs/openapi.yaml) lists the same routes.
var routeTable = []struct {
	pattern string
	h       func(*server, http.ResponseWriter, *http.Request)
}{
	{"GET /_ping", (*server).ping},
	{"GET /v1/info", (*server).info},
	{"POST /v1/run", (*server).run},
	{"POST /v1/batch", (*server).batch},
	{"GET /v1/runs", (*server).runs},
	{"GET /v1/runs/{id}", (*server).getRun},
	{"DELETE /v1/runs/{id}", (*server).cancelRun},
	{"POST /v1/runs/{id}/continue", (*server).continueRun},
	{"POST /v1/runs/{id}/stdin", (*server).writeStdin},
	{"POST /v1/files", (*server).uploadFile},
	{"GET /v1/files", (*server).listFiles},
	{"GET /v1/files/{id}", (*server).getFile},
	{"DELETE /v1/files/{id}", (*server).deleteFile},
	{"GET /metrics", (*server).metricsPage},
}

// routes serves routeTable, behind the caller check and the answers for an
// unknown path or method.
func (s *server) routes() http.Handler {
	mux := http.NewServeMux()
	for _, r := range routeTable {
		h := r.h
		mux.HandleFunc(r.pattern, func(w http.ResponseWriter, req *http.Request) { h(s, w, req) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.inflight.Add(1)
		defer s.inflight.Add(-1)
		if c := connOf(r.Context()); c != nil {
			c.enter()
			defer c.leave()
		}
		p := peerOf(r.Context())
		if !s.allowed(p) {
			s.fail(w, http.StatusForbidden, &api.Error{Code: api.CodePermissionDenied,
				Message: fmt.Sprintf("uid %d (gid %d) may not use sandboxd: allowed are the configured uids and gids, or root and the socket's group", p.uid, p.gid)})
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			if allow := allowedMethods(mux, r); allow != "" {
				w.Header().Set("Allow", allow)
				s.fail(w, http.StatusMethodNotAllowed, &api.Error{Code: api.CodeInvalidArgument,
					Message: fmt.Sprintf("%s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, allow)})
				return
			}
			s.fail(w, http.StatusNotFound, &api.Error{Code: api.CodeNotFound, Message: r.Method + " " + r.URL.Path + ": no such endpoint"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// allowedMethods lists the methods mux has a route for at r's path, for an
// Allow header; "" if none.
func allowedMethods(mux *http.ServeMux, r *http.Request) string {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "" {
			allow = append(allow, m)
		}
	}
	return strings.Join(allow, ", ")
}

var httpStatus = map[string]int{
	api.CodeInvalidArgument:   http.StatusBadRequest,
	api.CodePermissionDenied:  http.StatusForbidden,
	api.CodeNotFound:          http.StatusNotFound,
	api.CodeConflict:          http.StatusConflict,
	api.CodeResourceExhausted: http.StatusTooManyRequests,
	api.CodeUnavailable:       http.StatusServiceUnavailable,
	api.CodeInternal:          http.StatusInternalServerError,
}

// fail writes an error answer. The status follows the code where status
// is 0.
func (s *server) fail(w http.ResponseWriter, status int, e *api.Error) {
	if status == 0 {
		status = httpStatus[e.Code]
	}
	s.d.metrics.reject(e.Code)
	if e.Code == api.CodeResourceExhausted {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, api.ErrorBody{Error: e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}

func (s *server) metricsPage(w http.ResponseWriter, r *http.Request) { s.metrics.ServeHTTP(w, r) }

// refuseWhileDraining answers 503 "shutting down" once the daemon drains,
// and says whether it did: no new job, upload or ping is taken then.
func (s *server) refuseWhileDraining(w http.ResponseWriter) bool {
	if !s.draining.Load() {
		return false
	}
	s.fail(w, 0, &api.Error{Code: api.CodeUnavailable, Message: "shutting down"})
	return true
}

func (s *server) ping(w http.ResponseWriter, r *http.Request) {
	if s.refuseWhileDraining(w) {
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	io.WriteString(w, "OK")
}

func (s *server) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.d.Info())
}
