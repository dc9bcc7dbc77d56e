package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
