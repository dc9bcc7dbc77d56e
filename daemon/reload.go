package daemon

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/sandboxd/sandboxd/engine"
)

// snapshot is one generation of the daemon's configuration: the config in
// force and the profiles built from it. It is never changed once published
// (Daemon.conf); a reload publishes a new one. A request reads one
// snapshot, and a job keeps the one it was checked against (its profile,
// limits and output caps) until it ends.
type snapshot struct {
	cfg      Config
	profiles map[string]*engine.Profile
	names    []string // the profiles' names, "default" first
	gen      uint64   // 1 at start, one more for each reload put in force
	// pending are the restart-only keys whose value in the file differs
	// from the one in force: they wait for a restart.
	pending []string
	// langs are the profiles that carry a language, as found on the host.
	langs map[string]*languageState
}

// newSnapshot builds cfg's profiles. A profile equal to one of prev's (nil
// at start) is prev's own *Profile, so that its warm sandboxes stay.
func newSnapshot(cfg Config, prev *snapshot) (*snapshot, error) {
	s := &snapshot{cfg: cfg, profiles: map[string]*engine.Profile{}, names: cfg.profileNames(), gen: 1}
	for _, name := range s.names {
		p, err := cfg.Profile(name)
		if err != nil {
			return nil, err
		}
		if prev != nil {
			if old := prev.profiles[name]; old != nil && reflect.DeepEqual(old, p) {
				p = old
			}
		}
		s.profiles[name] = p
	}
	if prev != nil {
		s.gen = prev.gen + 1
	}
	s.probeLanguages(prev)
	return s, nil
}

// profileList is the profiles in name order, "default" first.
func (s *snapshot) profileList() []*engine.Profile {
	list := make([]*engine.Profile, len(s.names))
	for i, name := range s.names {
		list[i] = s.profiles[name]
	}
	return list
}

// pooledList is the profiles that keep warm sandboxes (Config.pooledNames).
func (s *snapshot) pooledList() []*engine.Profile {
	var list []*engine.Profile
	for _, name := range s.cfg.pooledNames() {
		list = append(list, s.profiles[name])
	}
	return list
}

// workspaceSizes is the profiles' workspace sizes, each once.
func (s *snapshot) workspaceSizes() []int64 {
	var sizes []int64
	for _, p := range s.profileList() {
		if !slices.Contains(sizes, p.WorkspaceBytes) {
			sizes = append(sizes, p.WorkspaceBytes)
		}
	}
	return sizes
}

// restartOnly are the keys a reload leaves as they are, and why: what they
// set is acquired or made once, at start. A reload that finds another
// value in the file keeps the one in force, says so in the log, and puts
// the rest of the file in force; the new value applies at the next start.
// Every other key applies to the jobs checked after the reload.
var restartOnly = []struct{ key, why string }{
	{"socket", "the daemon listens on it from the start (under socket activation it is systemd's)"},
	{"socket_group", "the socket is given its group when it is made"},
	{"state_dir", "the daemon locks it and mounts the workspaces' tmpfs there at start"},
	{"uid_base", "the engine's uid range is opened at start"},
	{"uid_count", "the engine's uid range is opened at start"},
	{"cgroup_subtree", "the engine locks and owns the subtree from the start"},
	{"helpers", "the engine sets its helpers up once, at start"},
	{"log_format", "the logger is made before the daemon"},
	{"batch_scheduling", "the policy is set before the helper starts, which inherits it"},
	{"cache_dir", "the file cache is opened and indexed at start"},
	{"cache_bytes", "the file cache's cap is set when it is opened"},
	{"cache_quota_bytes", "the file cache's quotas are set when it is opened"},
}

// isRestartOnly says whether key is one of restartOnly.
func isRestartOnly(key string) bool {
	for _, r := range restartOnly {
		if r.key == key {
			return true
		}
	}
	return false
}

// keyFields maps each top-level key of a Config but profiles to its field
// in c, the engine's keys included.
func keyFields(c *Config) map[string]reflect.Value {
	fields := map[string]reflect.Value{}
	var walk func(v reflect.Value)
	walk = func(v reflect.Value) {
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				walk(v.Field(i))
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key != "" && key != "-" && key != "profiles" {
				fields[key] = v.Field(i)
			}
		}
	}
	walk(reflect.ValueOf(c).Elem())
	return fields
}

// keyChange is a top-level key whose value differs between two configs.
type keyChange struct {
	key      string
	old, new any
}

func (k keyChange) String() string {
	return fmt.Sprintf("%s=%v (was %v)", k.key, k.new, k.old)
}

// changedKeys lists the top-level keys (profiles aside) whose values differ
// from old to new, by name.
func changedKeys(old, new *Config) []keyChange {
	of, nf := keyFields(old), keyFields(new)
	var out []keyChange
	for key, ov := range of {
		if nv := nf[key]; !reflect.DeepEqual(ov.Interface(), nv.Interface()) {
			out = append(out, keyChange{key, ov.Interface(), nv.Interface()})
		}
	}
	slices.SortFunc(out, func(a, b keyChange) int { return strings.Compare(a.key, b.key) })
	return out
}

// keepRestartOnly is the config a reload puts in force: file, with the
// restart-only keys as they are in running. kept lists those whose value
// in the file differs.
func keepRestartOnly(running, file Config) (_ Config, kept []keyChange) {
	rf, ff := keyFields(&running), keyFields(&file)
	for _, ch := range changedKeys(&running, &file) {
		if isRestartOnly(ch.key) {
			ff[ch.key].Set(rf[ch.key])
			kept = append(kept, ch)
		}
	}
	return file, kept
}

// describeChanges says, in one line for the log, what a reload changes
// from old to new: profiles added, changed and removed, and each other key
// with its old and new value. Restart-only keys are not among them: they
// do not change.
func describeChanges(old, new *snapshot) string {
	var parts []string
	var added, changed, removed []string
	for _, name := range new.names {
		switch p, ok := old.profiles[name]; {
		case !ok:
			added = append(added, name)
		case p != new.profiles[name]:
			changed = append(changed, name)
		}
	}
	for _, name := range old.names {
		if _, ok := new.profiles[name]; !ok {
			removed = append(removed, name)
		}
	}
	for _, l := range []struct {
		what  string
		names []string
	}{{"profiles added", added}, {"profiles changed", changed}, {"profiles removed", removed}} {
		if len(l.names) > 0 {
			parts = append(parts, l.what+": "+strings.Join(l.names, ", "))
		}
	}
	for _, ch := range changedKeys(&old.cfg, &new.cfg) {
		parts = append(parts, ch.String())
	}
	if len(parts) == 0 {
		return "nothing changed"
	}
	return strings.Join(parts, "; ")
}
