package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWorkspaceErrorWithoutPath(t *testing.T) {
	// The state dir's workspace parent is a file: the caller learns why,
	// not where.
	state := t.TempDir()
	if err := os.WriteFile(filepath.Join(state, "ws"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newWorkspace(state, "x", 1<<20)
	if err == nil {
		t.Fatal("a workspace was made beneath a file")
	}
	if got := withoutPath(err); got != "mkdir: not a directory" || strings.Contains(got, state) {
		t.Fatalf("withoutPath(%v) = %q", err, got)
	}
}

// No fork happens while a job's file is open for writing: the child would
// hold it open, and the program exec'd from it would fail with ETXTBSY.
func TestWriteFilesExcludesForks(t *testing.T) {
	w := &workspace{dir: t.TempDir()}
	syscall.ForkLock.Lock() // a fork in progress
	done := make(chan error, 1)
	go func() {
		done <- w.writeFiles([]preparedFile{{name: "bin/prog", data: []byte("#!/bin/sh\n"), mode: 0o755}})
	}()
	time.Sleep(50 * time.Millisecond)
	_, err := os.Stat(filepath.Join(w.dir, "bin/prog"))
	syscall.ForkLock.Unlock()
	if err == nil {
		t.Error("the file was opened while a fork was in progress")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(w.dir, "bin/prog")); err != nil || string(b) != "#!/bin/sh\n" {
		t.Fatalf("after the fork: %q %v", b, err)
	}
}
