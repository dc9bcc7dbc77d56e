//go:build linux

package seccomp

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsMatchThePolicy: docs/design.md's list of calls that end a run as
// syscall_blocked names only calls the default policy reports (Notify),
// and its list of calls that fail in place only calls it fails (Errno), so
// that a judge reading it is told what the filter does.
func TestDocsMatchThePolicy(t *testing.T) {
	b, err := os.ReadFile("../docs/design.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	actions := map[string][]Action{}
	for _, r := range DefaultPolicy().Rules {
		actions[r.Syscall] = append(actions[r.Syscall], r.Action)
	}
	for _, tc := range []struct {
		marker string
		want   Action
	}{{"syscall_blocked", Notify}, {"fail_in_place", Errno}} {
		start := strings.Index(doc, "<!-- "+tc.marker+" -->")
		end := strings.Index(doc, "<!-- /"+tc.marker+" -->")
		if start < 0 || end < start {
			t.Fatalf("docs/design.md has no %s list", tc.marker)
		}
		list := doc[start:end]
		// Inside the list, a backquoted lower-case word is a system call
		// unless it names a socket family or an errno.
		names := regexp.MustCompile("`([a-z_0-9]+)`").FindAllStringSubmatch(list, -1)
		if len(names) == 0 {
			t.Fatalf("docs/design.md's %s list names no call", tc.marker)
		}
		for _, m := range names {
			call := m[1]
			if !strings.Contains(strings.Join(actionNames(actions[call]), ","), tc.want.String()) {
				t.Errorf("docs/design.md lists %s under %s, but the policy's rules for it are %v", call, tc.marker, actionNames(actions[call]))
			}
		}
	}
}

func actionNames(as []Action) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.String())
	}
	return out
}
