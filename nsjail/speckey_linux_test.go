package nsjail

import (
	"fmt"
	"strings"
	"testing"
)

// The helper keeps a keyed Spec, gives each request its own host ids, and
// says when it does not have a Key; past maxKeyedSpecs it forgets them all.
func TestHelperSpecOf(t *testing.T) {
	var h helper
	spec := &Spec{InitUID: 7, RootDir: "/r", Mounts: []Mount{{Kind: MountBind, Source: "/usr", Target: "/usr"}}}
	got, tmplKey, ok := h.specOf(&spawnRequest{Spec: spec, Key: "a", HostUID: 11, HostGID: 12})
	if !ok || got.HostUID != 11 || got.HostGID != 12 || tmplKey != templateKey(spec) {
		t.Fatalf("whole Spec: %+v %q %v", got, tmplKey, ok)
	}
	got, tmplKey, ok = h.specOf(&spawnRequest{Key: "a", HostUID: 21, HostGID: 22})
	if !ok || got.HostUID != 21 || got.HostGID != 22 || got.RootDir != "/r" || got.InitUID != 7 || tmplKey != templateKey(spec) {
		t.Fatalf("by key: %+v %q %v", got, tmplKey, ok)
	}
	if spec.HostUID != 0 {
		t.Errorf("the kept Spec was changed: host uid %d", spec.HostUID)
	}
	if _, _, ok := h.specOf(&spawnRequest{Key: "b"}); ok {
		t.Error("a Spec for a key never sent")
	}
	if _, _, ok := h.specOf(&spawnRequest{}); ok {
		t.Error("a Spec for a request with neither Spec nor key")
	}
	for i := range maxKeyedSpecs {
		h.specOf(&spawnRequest{Spec: spec, Key: fmt.Sprint("k", i)})
	}
	if len(h.specs) > maxKeyedSpecs {
		t.Errorf("%d Specs kept, at most %d", len(h.specs), maxKeyedSpecs)
	}
	if _, _, ok := h.specOf(&spawnRequest{Key: "a"}); ok {
		t.Error("the first Spec is still kept after maxKeyedSpecs more")
	}
}

// Sandboxes of one keyed Spec run with their own host ids; when the helper
// has forgotten the Spec (more keys than it keeps), Prepare sends it again.
func TestSpecByKey(t *testing.T) {
	first := testSpec(t, "cat", "/proc/self/uid_map")
	first.Key = t.Name() + "-first"
	for i, uid := range []uint32{1_999_000_001, 1_999_000_002} {
		spec := *first
		spec.HostUID, spec.HostGID = uid, uid
		o := run(t, &spec)
		if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
			t.Fatalf("run %d: last event %+v, stderr %q", i, ev, o.stderr)
		}
		if want := fmt.Sprintf("1000 %d          1", uid); !strings.Contains(o.stdout, want) {
			t.Errorf("run %d: uid_map %q, want %q", i, o.stdout, want)
		}
	}
	// The helper forgets every Spec once it has more than it keeps.
	for i := range maxKeyedSpecs + 1 {
		spec := testSpec(t, "true")
		spec.Key = fmt.Sprintf("%s-%d", t.Name(), i)
		if ev := last(run(t, spec)); ev.Kind != Exited || ev.Exit.Code != 0 {
			t.Fatalf("key %d: last event %+v", i, ev)
		}
	}
	o := run(t, first)
	if ev := last(o); ev.Kind != Exited || ev.Exit.Code != 0 {
		t.Fatalf("the first key again: last event %+v, stderr %q", ev, o.stderr)
	}
}
