package daemon

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/sandboxd/sandboxd/api"
)

// fileCache is the content-addressed file cache: each file is named by the
// SHA-256 of its content in the cache's directory, beside a small sidecar
// (<id>.meta) that lists the uids that uploaded or kept it. Its last use is
// the file's mtime. An upload is written to tmp/ while it is hashed, then
// renamed to its id, so that a reader never sees half a file and uploads of
// the same content end as one file.
//
// The cache holds at most capBytes: adding a file evicts the least recently
// used files that no queued or running job holds (pins). Each uid may own
// at most quota bytes; a file owned by several uids counts for each.
type fileCache struct {
	dir      string
	capBytes int64
	quota    int64

	mu    sync.Mutex // guards the fields below
	files map[string]*cacheEntry
	used  int64
	usage map[uint32]int64 // bytes each uid owns
}

type cacheEntry struct {
	id       string
	size     int64
	lastUsed time.Time
	owners   []uint32 // sorted; the first is the first uploader
	pins     int      // queued and running jobs that name the file
}

// cacheFileMode is every cached file's mode: readable and executable by
// anyone who reaches it (a sandbox, through a bind or a descriptor), written
// by nobody. The cache's directory is root's alone (0700).
const cacheFileMode = 0o555

type cacheMeta struct {
	Owners []uint32 `json:"owners"`
}

// isCacheID tells a cache id: 64 lowercase hex digits.
func isCacheID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// openFileCache opens the cache in dir, rebuilding its index from the
// files there: temp files of unfinished uploads are removed, and so is a
// file whose content is not what its name says (its hash is checked, which
// reads the whole cache once). A cache over capBytes (a smaller cap than
// before) loses its least recently used files.
func openFileCache(dir string, capBytes, quota int64, log *logrus.Logger) (*fileCache, error) {
	c := &fileCache{dir: dir, capBytes: capBytes, quota: quota, files: map[string]*cacheEntry{}, usage: map[uint32]int64{}}
	if err := os.MkdirAll(c.tmpDir(), 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	tmps, err := os.ReadDir(c.tmpDir())
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	for _, e := range tmps {
		os.Remove(filepath.Join(c.tmpDir(), e.Name()))
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	dropped := 0
	for _, e := range ents {
		name := e.Name()
		if name == "tmp" {
			continue
		}
		if id, ok := strings.CutSuffix(name, ".meta"); ok && isCacheID(id) {
			if _, err := os.Stat(filepath.Join(dir, id)); os.IsNotExist(err) {
				os.Remove(filepath.Join(dir, name))
			}
			continue
		}
		if !isCacheID(name) || !e.Type().IsRegular() {
			continue // not the cache's
		}
		ent, err := c.verify(name)
		if err != nil {
			log.WithError(err).WithField("id", name).Warn("cache: a file that does not match its id is dropped")
			os.Remove(filepath.Join(dir, name))
			os.Remove(c.metaPath(name))
			dropped++
			continue
		}
		c.add(ent)
	}
	c.mu.Lock()
	c.makeRoomLocked(0)
	n, used := len(c.files), c.used
	c.mu.Unlock()
	if n > 0 || dropped > 0 {
		log.WithFields(logrus.Fields{"files": n, "bytes": used, "dropped": dropped}).Info("cache opened")
	}
	return c, nil
}

func (c *fileCache) tmpDir() string            { return filepath.Join(c.dir, "tmp") }
func (c *fileCache) path(id string) string     { return filepath.Join(c.dir, id) }
func (c *fileCache) metaPath(id string) string { return filepath.Join(c.dir, id+".meta") }

// verify hashes a cached file and reads its sidecar.
func (c *fileCache) verify(id string) (*cacheEntry, error) {
	f, err := os.Open(c.path(id))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != id {
		return nil, fmt.Errorf("content hashes to %s", got)
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	ent := &cacheEntry{id: id, size: n, lastUsed: fi.ModTime()}
	var meta cacheMeta
	if b, err := os.ReadFile(c.metaPath(id)); err == nil && json.Unmarshal(b, &meta) == nil {
		ent.owners = meta.Owners
	}
	if len(ent.owners) == 0 {
		ent.owners = []uint32{0}
	}
	return ent, nil
}

// add indexes an entry. Preconditions: not in the index.
func (c *fileCache) add(ent *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.files[ent.id] = ent
	c.used += ent.size
	for _, uid := range ent.owners {
		c.usage[uid] += ent.size
	}
}

// removeLocked drops a file from the index and the disk.
// Preconditions: c.mu held; the file is not pinned.
func (c *fileCache) removeLocked(ent *cacheEntry) {
	delete(c.files, ent.id)
	c.used -= ent.size
	for _, uid := range ent.owners {
		if c.usage[uid] -= ent.size; c.usage[uid] <= 0 {
			delete(c.usage, uid)
		}
	}
	os.Remove(c.path(ent.id))
	os.Remove(c.metaPath(ent.id))
}

// makeRoomLocked evicts the least recently used unpinned files until n
// more bytes fit under the cap. It tells whether they fit.
// Preconditions: c.mu held.
func (c *fileCache) makeRoomLocked(n int64) bool {
	victims, ok := c.victimsLocked(n)
	for _, ent := range victims {
		c.removeLocked(ent)
	}
	return ok
}

// victimsLocked are the files makeRoomLocked(n) would evict: the least
// recently used that no job holds, until n more bytes fit. ok is false
// when they do not fit even so.
// Preconditions: c.mu held.
func (c *fileCache) victimsLocked(n int64) (victims []*cacheEntry, ok bool) {
	used := c.used
	if used+n <= c.capBytes {
		return nil, true
	}
	var lru []*cacheEntry
	for _, ent := range c.files {
		if ent.pins == 0 {
			lru = append(lru, ent)
		}
	}
	slices.SortFunc(lru, func(a, b *cacheEntry) int { return a.lastUsed.Compare(b.lastUsed) })
	for _, ent := range lru {
		if used+n <= c.capBytes {
			break
		}
		victims = append(victims, ent)
		used -= ent.size
	}
	return victims, used+n <= c.capBytes
}

// writeMetaLocked writes an entry's sidecar (a temp file renamed in).
// Preconditions: c.mu held.
func (c *fileCache) writeMetaLocked(ent *cacheEntry) error {
	b, _ := json.Marshal(cacheMeta{Owners: ent.owners})
	tmp, err := os.CreateTemp(c.tmpDir(), "meta-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), c.metaPath(ent.id))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// errTooLarge is what put's reader gives past the cache's cap.
var errCacheTooLarge = errors.New("larger than the cache")

// put adds the content of r to the cache for uid. created is false when
// the content was cached already. An upload larger than the cache is 413
// (status), one past uid's quota or that cannot fit beside the pinned
// files 429; readErr is r's own failure, for the caller to answer.
func (c *fileCache) put(r io.Reader, uid uint32) (cf api.CachedFile, created bool, status int, aerr *api.Error, readErr error) {
	tmp, err := os.CreateTemp(c.tmpDir(), "upload-")
	if err != nil {
		return cf, false, 0, &api.Error{Code: api.CodeInternal, Message: "cache: " + withoutPath(err)}, nil
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name()) // gone already when renamed in
	}()
	h := sha256.New()
	// Written in 1 MiB pieces, not in the 32 KiB a body read brings: the
	// file is read back faster (docs/benchmarks.md, the cached input rows).
	w := bufio.NewWriterSize(tmp, 1<<20)
	n, err := io.Copy(io.MultiWriter(w, h), &cappedReader{r: r, left: c.capBytes})
	if err == nil {
		err = w.Flush()
	}
	switch {
	case errors.Is(err, errCacheTooLarge):
		return cf, false, 413, &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf("larger than the file cache's cap of %d bytes (cache_bytes)", c.capBytes)}, nil
	case err != nil:
		var pe *os.PathError
		if errors.As(err, &pe) {
			return cf, false, 0, &api.Error{Code: api.CodeInternal, Message: "cache: write: " + pe.Err.Error()}, nil
		}
		return cf, false, 0, nil, err
	}
	if err := tmp.Chmod(cacheFileMode); err != nil {
		return cf, false, 0, &api.Error{Code: api.CodeInternal, Message: "cache: " + withoutPath(err)}, nil
	}
	cf = api.CachedFile{ID: hex.EncodeToString(h.Sum(nil)), Size: n}

	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.files[cf.ID]
	if ent != nil && slices.Contains(ent.owners, uid) {
		c.touchLocked(ent)
		return cf, false, 0, nil, nil
	}
	// What a new file would evict of uid's own does not count against it.
	used := c.usage[uid]
	if ent == nil {
		victims, ok := c.victimsLocked(n)
		if !ok {
			return cf, false, 0, &api.Error{Code: api.CodeResourceExhausted, Message: fmt.Sprintf(
				"the file cache (cache_bytes %d) is full of files that queued or running jobs hold; %d bytes do not fit: retry later", c.capBytes, n)}, nil
		}
		for _, v := range victims {
			if slices.Contains(v.owners, uid) {
				used -= v.size
			}
		}
	}
	if used+n > c.quota {
		used = c.usage[uid]
		return cf, false, 0, &api.Error{Code: api.CodeResourceExhausted, Message: fmt.Sprintf(
			"uid %d has %d bytes in the file cache; %d more would pass its quota of %d bytes (cache_quota_bytes): delete some (DELETE /v1/files/{id})",
			uid, used, n, c.quota)}, nil
	}
	if ent != nil {
		ent.owners = append(ent.owners, uid)
		slices.Sort(ent.owners)
		c.usage[uid] += n
		c.touchLocked(ent)
		c.writeMetaLocked(ent)
		return cf, false, 0, nil, nil
	}
	c.makeRoomLocked(n)
	if err := os.Rename(tmp.Name(), c.path(cf.ID)); err != nil {
		return cf, false, 0, &api.Error{Code: api.CodeInternal, Message: "cache: " + withoutPath(err)}, nil
	}
	ent = &cacheEntry{id: cf.ID, size: n, lastUsed: time.Now(), owners: []uint32{uid}}
	c.files[cf.ID] = ent
	c.used += n
	c.usage[uid] += n
	c.writeMetaLocked(ent)
	return cf, true, 0, nil, nil
}

// cappedReader fails with errCacheTooLarge past left bytes.
type cappedReader struct {
	r    io.Reader
	left int64
}

func (r *cappedReader) Read(p []byte) (int, error) {
	if int64(len(p)) > r.left+1 {
		p = p[:r.left+1]
	}
	n, err := r.r.Read(p)
	if r.left -= int64(n); r.left < 0 {
		return 0, errCacheTooLarge
	}
	return n, err
}

// touchLocked marks a file used now (its mtime is its last use).
// Preconditions: c.mu held.
func (c *fileCache) touchLocked(ent *cacheEntry) {
	ent.lastUsed = time.Now()
	os.Chtimes(c.path(ent.id), time.Time{}, ent.lastUsed)
}

// lookup is a cached file's size; ok is false for an unknown id.
func (c *fileCache) lookup(id string) (size int64, ok bool) {
	if c == nil { // a daemon without a cache (tests of check alone)
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.files[id]
	if ent == nil {
		return 0, false
	}
	return ent.size, true
}

// pin holds the files of ids against eviction and deletion, each once per
// time it is named, until unpin. It pins none and answers the first
// unknown id's index when one is not in the cache.
func (c *fileCache) pin(ids []string) (missing int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, id := range ids {
		if c.files[id] == nil {
			return i
		}
	}
	for _, id := range ids {
		c.files[id].pins++
	}
	return -1
}

// unpin lets go of what pin held. The files were used until now: a job's
// end is their last use.
func (c *fileCache) unpin(ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	for _, id := range ids {
		if ent := c.files[id]; ent != nil {
			ent.pins--
			ent.lastUsed = now
			os.Chtimes(c.path(id), time.Time{}, now)
		}
	}
}

// open opens a cached file read-only, marking it used.
func (c *fileCache) open(id string) (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.files[id]
	if ent == nil {
		return nil, os.ErrNotExist
	}
	c.touchLocked(ent)
	return os.Open(c.path(id))
}

// list is uid's files (root: every file), by id.
func (c *fileCache) list(uid uint32) []api.CachedFileInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := []api.CachedFileInfo{}
	for _, ent := range c.files {
		by := ent.owners[0]
		if uid != 0 {
			if !slices.Contains(ent.owners, uid) {
				continue
			}
			by = uid
		}
		out = append(out, api.CachedFileInfo{ID: ent.id, Size: ent.size, LastUsed: ent.lastUsed.UTC().Format(time.RFC3339), UploadedBy: by})
	}
	slices.SortFunc(out, func(a, b api.CachedFileInfo) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// remove takes uid's ownership of a file away (root's: the file); the
// file goes with its last owner. A file a queued or running job holds is a
// conflict.
func (c *fileCache) remove(id string, uid uint32) *api.Error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ent := c.files[id]
	if ent == nil || uid != 0 && !slices.Contains(ent.owners, uid) {
		return &api.Error{Code: api.CodeNotFound, Message: fmt.Sprintf("file %q: not in the cache", id)}
	}
	if ent.pins > 0 {
		return &api.Error{Code: api.CodeConflict, Message: fmt.Sprintf("file %q: %d queued or running jobs use it; delete it once they end", id, ent.pins)}
	}
	if uid == 0 || len(ent.owners) == 1 {
		c.removeLocked(ent)
		return nil
	}
	ent.owners = slices.DeleteFunc(ent.owners, func(o uint32) bool { return o == uid })
	if c.usage[uid] -= ent.size; c.usage[uid] <= 0 {
		delete(c.usage, uid)
	}
	c.writeMetaLocked(ent)
	return nil
}
