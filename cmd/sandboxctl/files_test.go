package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

const testID = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	os.WriteFile(in, []byte("foo"), 0o600)
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/files", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if string(b) != "foo" || r.Header.Get("Content-Type") != "application/octet-stream" {
			t.Errorf("upload: %q %s", b, r.Header.Get("Content-Type"))
		}
		writeJSON(w, 201, api.CachedFile{ID: testID, Size: 3})
	})
	f.mux.HandleFunc("GET /v1/files", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, api.CachedFileList{Files: []api.CachedFileInfo{{ID: testID, Size: 3, LastUsed: "2026-12-07T15:00:00Z", UploadedBy: 1000}}})
	})
	f.mux.HandleFunc("GET /v1/files/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testID {
			writeJSON(w, 404, api.ErrorBody{Error: &api.Error{Code: api.CodeNotFound, Message: "file: not in the cache"}})
			return
		}
		w.Write([]byte("foo"))
	})
	f.mux.HandleFunc("DELETE /v1/files/{id}", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 409, api.ErrorBody{Error: &api.Error{Code: api.CodeConflict, Message: "file: 1 queued or running jobs use it"}})
	})
	if r := f.sandboxctl(t, "", "files", "upload", in); r.code != 0 || r.stdout != testID+"\t3\t"+in+"\n" {
		t.Errorf("upload: %+v", r)
	}
	if r := f.sandboxctl(t, "", "files", "ls"); r.code != 0 || !strings.Contains(r.stdout, testID+"  3     2026-12-07T15:00:00Z  1000") {
		t.Errorf("ls: %+v", r)
	}
	out := filepath.Join(dir, "out")
	if r := f.sandboxctl(t, "", "files", "get", testID, "-o", out); r.code != 0 {
		t.Errorf("get: %+v", r)
	}
	if b, _ := os.ReadFile(out); string(b) != "foo" {
		t.Errorf("got %q", b)
	}
	if r := f.sandboxctl(t, "", "files", "get", "nope"); r.code != exitDaemon || !strings.Contains(r.stderr, "not in the cache") {
		t.Errorf("get nope: %+v", r)
	}
	if r := f.sandboxctl(t, "", "files", "rm", testID); r.code != exitDaemon || !strings.Contains(r.stderr, "queued or running") {
		t.Errorf("rm: %+v", r)
	}
	if r := f.sandboxctl(t, "", "files", "frob"); r.code != exitUsage {
		t.Errorf("files frob: %+v", r)
	}
}

func TestRunCached(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		job := decodeJob(t, r.Body)
		if job.Files["in.txt"].Cached != testID || job.Files["x"].Content != "y" || job.Steps[0].StdinCached != testID {
			t.Errorf("job: %+v", job)
		}
		writeJSON(w, 200, okResult("r_1", "", ""))
	})
	if r := f.sandboxctl(t, "", "run", "--file-cached", "in.txt="+testID, "--file", "x=y", "--stdin-cached", testID, "--", "cat"); r.code != 0 {
		t.Fatalf("%+v", r)
	}
	if r := f.sandboxctl(t, "", "run", "--stdin-cached", testID, "--stdin", "-", "--", "cat"); r.code != exitUsage {
		t.Errorf("both stdins: %+v", r)
	}
	if r := f.sandboxctl(t, "", "run", "--file-cached", "in.txt", "--", "cat"); r.code != exitUsage {
		t.Errorf("no id: %+v", r)
	}
}
