package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// cacheFiles lists the cached files on disk (their ids) and the temp files
// of uploads in the cache's dir.
func (d *testDaemon) cacheFiles(t *testing.T) (ids, tmps []string) {
	t.Helper()
	dir := filepath.Join(d.stateDir, "cache")
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if len(e.Name()) == 64 {
			ids = append(ids, e.Name())
		}
	}
	tt, _ := os.ReadDir(filepath.Join(dir, "tmp"))
	for _, e := range tt {
		tmps = append(tmps, e.Name())
	}
	return ids, tmps
}

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// randomBytes is n bytes of a fixed pseudo-random sequence.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for k := 0; k < 8; k++ {
			b[i+k] = byte(v >> (8 * k))
		}
	}
	return b
}

func wantAPIError(t *testing.T, err error, status int, words ...string) {
	t.Helper()
	var se *client.StatusError
	if !errors.As(err, &se) || se.HTTPStatus != status {
		t.Fatalf("got %v, want HTTP %d", err, status)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%v: does not say %q", err, w)
		}
	}
}

// noCacheLeft checks that no upload left a temp file and no job a mount.
func (d *testDaemon) noCacheLeft(t *testing.T) {
	t.Helper()
	if _, tmps := d.cacheFiles(t); len(tmps) > 0 {
		t.Errorf("temp files left in the cache's dir: %v", tmps)
	}
	deadline := time.Now().Add(5 * time.Second)
	for cachedMounts() > 0 {
		if time.Now().After(deadline) {
			t.Errorf("%d cached files still bound in the host", cachedMounts())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cachedMounts counts the mounts in the host whose root is a cached file
// (a bind of a job's files entry with cached).
func cachedMounts() int {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.Contains(f[3], "/cache/") && strings.Contains(f[3], "sandboxd-state-") {
			n++
		}
	}
	return n
}

// TestDaemonCacheUse: dedup (one id, one file), 8 concurrent uploads of the
// same content, a files entry and a stdin read from the cache, read-only,
// the 400s naming the field, a pinned file's delete a 409, download, list
// and delete.
func TestDaemonCacheUse(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	data := []byte("line one\nline two\n")
	a, err := d.c.Upload(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.c.Upload(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != sha(data) || b != a || a.Size != int64(len(data)) {
		t.Fatalf("uploads: %+v, %+v; want id %s", a, b, sha(data))
	}

	big := randomBytes(4<<20, 1)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cf, err := d.c.Upload(ctx, bytes.NewReader(big))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = cf.ID
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != sha(big) {
			t.Errorf("concurrent upload: id %s, want %s", id, sha(big))
		}
	}
	onDisk, _ := d.cacheFiles(t)
	if len(onDisk) != 2 {
		t.Errorf("cached files on disk: %v, want 2", onDisk)
	}
	d.noCacheLeft(t)

	// Used as a file and as a stdin: the program reads both, cannot
	// change, remove or chmod the file, and its writes fail.
	res, err := d.c.Run(ctx, &api.Job{
		Files: map[string]api.File{"in/data.txt": {Cached: a.ID}, "big": {Cached: sha(big)}},
		Steps: []api.Step{
			{Argv: []string{"sh", "-c", `cat in/data.txt; sha256sum < big | cut -c1-64; wc -c; ls -l in/data.txt | cut -c1-10
echo x > in/data.txt && echo WROTE; echo x >> big && echo APPENDED; rm -f in/data.txt && echo REMOVED
chmod 777 big && echo CHMOD; mv big moved && echo MOVED; true`}, StdinCached: sha(big)},
			{Argv: []string{"sh", "-c", "cat in/data.txt; sha256sum big | cut -c1-64"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := string(data) + sha(big) + "\n" + fmt.Sprint(len(big)) + "\n-r-xr-xr-x\n"
	if res.Status != api.StatusCompleted || res.Steps[0].Stdout != want {
		t.Fatalf("step 0: %s %+v\nstdout %q\nwant   %q", res.Status, res.Steps[0], res.Steps[0].Stdout, want)
	}
	if got := res.Steps[1].Stdout; got != string(data)+sha(big)+"\n" {
		t.Errorf("step 1 (a second sandbox): %q", got)
	}
	t.Logf("the program's attempts to change the file: %q", res.Steps[0].Stderr)
	var dl bytes.Buffer
	if err := d.c.Download(ctx, sha(big), &dl); err != nil || sha(dl.Bytes()) != sha(big) {
		t.Fatalf("download: %v, %d bytes", err, dl.Len())
	}

	// Unknown ids: 400 naming the field.
	_, err = d.c.Run(ctx, &api.Job{Files: map[string]api.File{"in.txt": {Cached: sha([]byte("never uploaded"))}}, Steps: []api.Step{{Argv: []string{"true"}}}})
	wantAPIError(t, err, 400, `files["in.txt"].cached`, "not in the file cache")
	_, err = d.c.Run(ctx, &api.Job{Steps: []api.Step{{Argv: []string{"true"}}, {Argv: []string{"true"}}, {Argv: []string{"cat"}, StdinCached: "abc"}}})
	wantAPIError(t, err, 400, `steps[2].stdin_cached`, "not a file cache id")
	_, err = d.c.Run(ctx, &api.Job{Steps: []api.Step{{Argv: []string{"cat"}, Stdin: "x", StdinCached: a.ID}}})
	wantAPIError(t, err, 400, `steps[0].stdin_cached`)
	_, err = d.c.Run(ctx, &api.Job{Files: map[string]api.File{"x": {Cached: a.ID, Mode: "0755"}}, Steps: []api.Step{{Argv: []string{"true"}}}})
	wantAPIError(t, err, 400, `files["x"].mode`)
	_, err = d.c.Run(ctx, &api.Job{KeepFiles: []string{"../x"}, Steps: []api.Step{{Argv: []string{"true"}}}})
	wantAPIError(t, err, 400, `keep_files[0]`)

	// A file a running job holds cannot be deleted.
	done := make(chan *api.Result, 1)
	go func() {
		r, _ := d.c.Run(ctx, &api.Job{ID: "holder", Files: map[string]api.File{"d": {Cached: a.ID}}, Steps: []api.Step{{Argv: []string{"sleep", "30"}}}})
		done <- r
	}()
	waitRunning(t, d, "holder")
	wantAPIError(t, d.c.DeleteFile(ctx, a.ID), 409, "queued or running")
	if err := d.c.Cancel(ctx, "holder"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r == nil || r.Status != api.StatusCancelled {
		t.Fatalf("holder: %+v", r)
	}
	d.noCacheLeft(t)
	if err := d.c.DeleteFile(ctx, a.ID); err != nil {
		t.Fatalf("delete once the job ended: %v", err)
	}
	wantAPIError(t, d.c.DeleteFile(ctx, a.ID), 404)
	wantAPIError(t, d.c.Download(ctx, a.ID, io.Discard), 404)
	list, err := d.c.Files(ctx)
	if err != nil || len(list) != 1 || list[0].ID != sha(big) || list[0].UploadedBy != 0 || list[0].Size != int64(len(big)) {
		t.Fatalf("list: %+v, %v", list, err)
	}
	if _, err := time.Parse(time.RFC3339, list[0].LastUsed); err != nil {
		t.Errorf("last_used: %v", err)
	}
	onDisk, _ = d.cacheFiles(t)
	if len(onDisk) != 1 {
		t.Errorf("cached files on disk after the delete: %v", onDisk)
	}
}

// TestDaemonCacheEviction: under a small cache_bytes, an upload evicts the
// least recently used file that no job holds; the files a running and a
// queued job hold stay, though older.
func TestDaemonCacheEviction(t *testing.T) {
	d := startDaemon(t, "concurrency = 1\ncache_bytes = 4194304\n")
	ctx := ctxT(t)
	up := func(seed uint64, n int) string {
		cf, err := d.c.Upload(ctx, bytes.NewReader(randomBytes(n, seed)))
		if err != nil {
			t.Fatal(err)
		}
		return cf.ID
	}
	held1, held2 := up(1, 1<<20), up(2, 1<<20)
	free := up(3, 1<<20)
	results := make(chan *api.Result, 2)
	go func() {
		r, _ := d.c.Run(ctx, &api.Job{ID: "running", Steps: []api.Step{{Argv: []string{"sh", "-c", "wc -c; sleep 30"}, StdinCached: held1}}})
		results <- r
	}()
	waitRunning(t, d, "running")
	go func() {
		r, _ := d.c.Run(ctx, &api.Job{ID: "queued", Files: map[string]api.File{"f": {Cached: held2}}, Steps: []api.Step{{Argv: []string{"wc", "-c", "f"}}}})
		results <- r
	}()
	waitState(t, d, "queued", api.StateQueued)
	// 2 MiB more: 1 MiB must go, and only one file may.
	newer := up(4, 2<<20)
	list, _ := d.c.Files(ctx)
	have := map[string]bool{}
	for _, f := range list {
		have[f.ID] = true
	}
	if !have[held1] || !have[held2] || !have[newer] || have[free] {
		t.Fatalf("after the eviction: %+v\nwant held %s %s and new %s, not %s", list, held1, held2, newer, free)
	}
	// Nothing more fits beside the held files: a clear 429.
	_, err := d.c.Upload(ctx, bytes.NewReader(randomBytes(3<<20, 5)))
	wantAPIError(t, err, 429, "cache_bytes", "hold")
	d.c.Cancel(ctx, "running")
	for range 2 {
		if r := <-results; r == nil {
			t.Fatal("a job got no result")
		} else if r.ID == "queued" && (r.Status != api.StatusCompleted || r.Steps[0].Stdout != "1048576 f\n") {
			t.Errorf("queued job: %+v", r)
		}
	}
	// Free now: the least recently used go for a new one, two of three.
	if _, err := d.c.Upload(ctx, bytes.NewReader(randomBytes(3<<20, 5))); err != nil {
		t.Fatal(err)
	}
	if onDisk, _ := d.cacheFiles(t); len(onDisk) != 2 {
		t.Errorf("files on disk: %d, want 2", len(onDisk))
	}
	d.noCacheLeft(t)
}

func waitState(t *testing.T, d *testDaemon, id, state string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if info, err := d.c.Get(context.Background(), id); err == nil && info.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s never %s", id, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDaemonCacheLimits: an upload above cache_bytes is a 413 naming it, a
// caller over its quota a 429 naming cache_quota_bytes, its usage and the
// size asked for.
func TestDaemonCacheLimits(t *testing.T) {
	d := startDaemon(t, "cache_bytes = 4194304\ncache_quota_bytes = 1048576\n")
	ctx := ctxT(t)
	_, err := d.c.Upload(ctx, bytes.NewReader(make([]byte, 5<<20)))
	wantAPIError(t, err, 413, "cache_bytes", "4194304")
	// Of unknown length, cut while it streams.
	_, err = d.c.Upload(ctx, io.LimitReader(zeroReader{}, 5<<20))
	wantAPIError(t, err, 413, "cache_bytes")
	if _, err := d.c.Upload(ctx, bytes.NewReader(randomBytes(800<<10, 1))); err != nil {
		t.Fatal(err)
	}
	_, err = d.c.Upload(ctx, bytes.NewReader(randomBytes(800<<10, 2)))
	wantAPIError(t, err, 429, "cache_quota_bytes", "819200 bytes in the file cache", "819200 more")
	// The same content again costs nothing.
	if _, err := d.c.Upload(ctx, bytes.NewReader(randomBytes(800<<10, 1))); err != nil {
		t.Fatal(err)
	}
	d.noCacheLeft(t)
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// TestDaemonCacheRestart: the cache survives a restart of the daemon; a
// file whose content no longer matches its id is dropped then. A crash
// with jobs holding bound files leaves nothing once restarted.
func TestDaemonCacheRestart(t *testing.T) {
	d := startDaemon(t, "concurrency = 2\n") // two jobs at once below, on one CPU too
	ctx := ctxT(t)
	good, bad := []byte("kept across restarts\n"), []byte("to be corrupted\n")
	g, err := d.c.Upload(ctx, bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	b, err := d.c.Upload(ctx, bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	d.stop()
	p := filepath.Join(d.stateDir, "cache", b.ID)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("changed on disk\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.stateDir, "cache", "tmp", "upload-123"), []byte("half an upload"), 0o600)
	d.start(filepath.Join(d.stateDir, "config.toml"))
	list, err := d.c.Files(ctx)
	if err != nil || len(list) != 1 || list[0].ID != g.ID {
		t.Fatalf("after the restart: %+v, %v (want only %s)", list, err, g.ID)
	}
	d.noCacheLeft(t)

	// A crash while a job holds a bound file and another reads one.
	go d.c.Run(ctx, &api.Job{ID: "bound", Files: map[string]api.File{"g": {Cached: g.ID}}, Steps: []api.Step{{Argv: []string{"sleep", "60"}}}})
	go d.c.Run(ctx, &api.Job{ID: "stdin", Steps: []api.Step{{Argv: []string{"sh", "-c", "cat; sleep 60"}, StdinCached: g.ID}}})
	waitRunning(t, d, "bound")
	waitRunning(t, d, "stdin")
	if cachedMounts() < 1 {
		t.Fatalf("expected the cached file bound in the workspace")
	}
	d.crash(t, 1)
	d.restartReclaims(t)
	d.noCacheLeft(t)
	res, err := d.c.Run(ctx, &api.Job{Files: map[string]api.File{"g": {Cached: g.ID}}, Steps: []api.Step{{Argv: []string{"cat", "g"}}}})
	if err != nil || res.Steps[0].Stdout != string(good) {
		t.Fatalf("after the crash: %+v, %v", res, err)
	}
	d.noCacheLeft(t)
}

// TestDaemonCacheKeepCompiled: a job compiles a C program and keeps the
// binary; a later job runs it from the cache. A path that cannot be kept is
// a message, not a failed job.
func TestDaemonCacheKeepCompiled(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	res, err := d.c.Run(ctx, &api.Job{
		Files:     map[string]api.File{"hello.c": {Content: "#include <stdio.h>\nint main(void){char b[64];if(fgets(b,sizeof b,stdin))printf(\"hello %s\",b);return 0;}\n"}},
		Steps:     []api.Step{{Argv: []string{"sh", "-c", "gcc -O2 -o hello hello.c && mkdir d && ln -s hello link"}}},
		KeepFiles: []string{"hello", "missing", "d", "link"},
	})
	if err != nil {
		t.Fatal(err)
	}
	kept, ok := res.Kept["hello"]
	if res.Status != api.StatusCompleted || !ok || len(res.Kept) != 1 || kept.Size < 1000 {
		t.Fatalf("compile: %+v", res)
	}
	for _, w := range []string{`keep_files[1] "missing": no such file`, `keep_files[2] "d": not a regular file`, `keep_files[3] "link": a symlink`} {
		if !strings.Contains(res.Message, w) {
			t.Errorf("message %q does not say %q", res.Message, w)
		}
	}
	in, err := d.c.Upload(ctx, strings.NewReader("world\n"))
	if err != nil {
		t.Fatal(err)
	}
	res, err = d.c.Run(ctx, &api.Job{
		Files: map[string]api.File{"bin/hello": {Cached: kept.ID}},
		Steps: []api.Step{{Argv: []string{"bin/hello"}, StdinCached: in.ID}},
	})
	if err != nil || res.Steps[0].Verdict != api.VerdictOK || res.Steps[0].Stdout != "hello world\n" {
		t.Fatalf("run the kept binary: %+v, %v", res, err)
	}
	d.noCacheLeft(t)
}

// TestDaemonCacheLargeStdin: a 256 MiB cached file as a program's stdin,
// its hash checked in the sandbox.
func TestDaemonCacheLargeStdin(t *testing.T) {
	d := startDaemon(t, "")
	ctx := ctxT(t)
	data := randomBytes(256<<20, 7)
	cf, err := d.c.Upload(ctx, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	want := sha(data)
	data = nil
	// Hashing 256 MiB takes a second or two here, and minutes of
	// emulated CPU in make test-v2's guest.
	res, err := d.c.Run(ctx, &api.Job{Steps: []api.Step{{Argv: []string{"sh", "-c", "sha256sum | cut -c1-64"}, StdinCached: cf.ID,
		Limits: api.Limits{CPUTimeMS: 300_000, WallTimeMS: 600_000}}}})
	if err != nil || res.Steps[0].Stdout != want+"\n" {
		t.Fatalf("%+v, %v; want %s", res, err, want)
	}
	t.Logf("256 MiB stdin_cached: the step's wall %.1f ms, total %.1f ms", res.Steps[0].WallTimeMS, res.Timing.TotalMS)
	d.noCacheLeft(t)
}
