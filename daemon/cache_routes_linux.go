package daemon

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/sandboxd/sandboxd/api"
)

// uploadFile is POST /v1/files: the body, streamed to disk while it is
// hashed, becomes a cached file. Its cap is the cache's (cache_bytes), not
// max_request_bytes: the body is never held in memory, so it takes nothing
// from max_inflight_request_bytes either.
func (s *server) uploadFile(w http.ResponseWriter, r *http.Request) {
	if s.refuseWhileDraining(w) {
		return
	}
	c := s.d.cache
	if r.ContentLength > c.capBytes {
		s.fail(w, http.StatusRequestEntityTooLarge, &api.Error{Code: api.CodeInvalidArgument,
			Message: fmt.Sprintf("body: %d bytes, larger than the file cache's cap of %d bytes (cache_bytes)", r.ContentLength, c.capBytes)})
		return
	}
	idle := newIdleBody(r.Body, w, nil)
	defer idle.close()
	cf, created, status, aerr, readErr := c.put(idle, peerOf(r.Context()).uid)
	switch {
	case errors.Is(readErr, errBodyIdle):
		s.fail(w, http.StatusRequestTimeout, bodyIdleError)
		return
	case readErr != nil:
		s.fail(w, 0, invalid("body: %v", readErr))
		return
	case aerr != nil:
		if status == http.StatusRequestEntityTooLarge {
			aerr.Message = "body: " + aerr.Message
		}
		s.fail(w, status, aerr)
		return
	}
	status = http.StatusOK
	if created {
		status = http.StatusCreated
	}
	writeJSON(w, status, cf)
}

// listFiles is GET /v1/files: the caller's files, root's every file.
func (s *server) listFiles(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.CachedFileList{Files: s.d.cache.list(peerOf(r.Context()).uid)})
}

// getFile is GET /v1/files/{id}: the file's bytes. An id is enough to read
// a file, as it is to use it in a job: it is the content's hash.
func (s *server) getFile(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f, err := s.d.cache.open(id)
	if err != nil {
		s.fail(w, 0, &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("file %q: not in the cache", id)})
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		s.fail(w, 0, &api.Error{Code: api.CodeInternal, Message: "cache: " + withoutPath(err)})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(fi.Size(), 10))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, f)
}

// deleteFile is DELETE /v1/files/{id}: the caller's ownership goes (root's
// delete: the file), and the file with its last owner.
func (s *server) deleteFile(w http.ResponseWriter, r *http.Request) {
	if aerr := s.d.cache.remove(r.PathValue("id"), peerOf(r.Context()).uid); aerr != nil {
		s.fail(w, 0, aerr)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
