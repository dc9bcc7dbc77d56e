package daemon

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func TestLanguageConfig(t *testing.T) {
	for _, c := range []struct {
		name, toml, wantErr string
		want                *Language
	}{
		{name: "default has none", toml: ``},
		{name: "a plain profile has none", toml: "[profiles.plain]\ntmp_bytes = 1048576\n"},
		{name: "builtin as it is", toml: ``, want: &Language{Language: "python"}},
		{name: "own language", toml: "[profiles.sh]\nlanguage = \"bash\"\nversion = \"5.2.15\"\nsource_file = \"main.sh\"\nrun = [\"/bin/bash\", \"main.sh\"]\n",
			want: &Language{Language: "bash", Version: "5.2.15"}},
		{name: "no run", toml: "[profiles.sh]\nlanguage = \"bash\"\nversion = \"1\"\nsource_file = \"main.sh\"\n", wantErr: "profiles.sh.run"},
		{name: "bad source", toml: "[profiles.sh]\nlanguage = \"bash\"\nversion = \"1\"\nsource_file = \"../x\"\nrun = [\"x\"]\n", wantErr: "profiles.sh.source_file"},
		{name: "no language", toml: "[profiles.sh]\nrun = [\"x\"]\n", wantErr: "language is needed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if _, err := toml.Decode(c.toml, &cfg); err != nil {
				t.Fatal(err)
			}
			err := cfg.Validate()
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("Validate: %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			name := "default"
			switch {
			case c.want != nil && c.want.Language == "python":
				name = "python3"
			case c.want != nil:
				name = "sh"
			case strings.Contains(c.toml, "plain"):
				name = "plain"
			}
			l, err := cfg.Language(name)
			if err != nil || (l == nil) != (c.want == nil) || l != nil && (l.Language != c.want.Language || l.Version != c.want.Version) {
				t.Fatalf("Language(%s) = %+v, %v; want %+v", name, l, err, c.want)
			}
		})
	}
}

func TestLanguageReachable(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "usr", "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(bin, "data"), nil, 0o644)
	os.MkdirAll(filepath.Join(dir, "etc", "alt"), 0o755)
	os.Symlink(filepath.Join(bin, "tool"), filepath.Join(dir, "etc", "alt", "tool"))
	os.Symlink(filepath.Join(dir, "etc", "alt", "tool"), filepath.Join(bin, "via-alt"))
	usr, alt := filepath.Join(dir, "usr"), filepath.Join(dir, "etc", "alt")
	for _, c := range []struct {
		path    string
		binds   []string
		wantErr string
	}{
		{filepath.Join(bin, "tool"), []string{usr}, ""},
		{filepath.Join(bin, "tool"), []string{alt}, "not under the profile's binds"},
		{filepath.Join(bin, "none"), []string{usr}, "not found on the host"},
		{filepath.Join(bin, "data"), []string{usr}, "not an executable file"},
		{filepath.Join(bin, "via-alt"), []string{usr, alt}, ""},
		{filepath.Join(bin, "via-alt"), []string{usr}, "which is not under the profile's binds"},
	} {
		err := reachable(c.path, c.binds)
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("reachable(%s, %v) = %v, want %q", c.path, c.binds, err, c.wantErr)
		}
	}
}

// TestLanguageProbe: a language profile whose program is outside its binds
// is unavailable with the reason; a reload that leaves a profile as it was
// keeps what was found for it, without running its version command again.
func TestLanguageProbe(t *testing.T) {
	cfg := DefaultConfig()
	_, err := toml.Decode(`
[profiles.sh]
language = "bash"
version_command = ["/bin/sh", "-c", "echo sh 5.2.15"]
source_file = "main.sh"
run = ["/bin/sh", "main.sh"]
[profiles.hidden]
binds = ["/lib"]
language = "bash"
version = "1.0.0"
source_file = "main.sh"
run = ["/bin/sh", "main.sh"]
`, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSnapshot(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if l := s.langs["sh"]; l == nil || l.reason != "" || l.version != "5.2.15" {
		t.Errorf("sh: %+v", l)
	}
	if l := s.langs["hidden"]; l == nil || !strings.Contains(l.reason, "/bin/sh: not under the profile's binds") {
		t.Errorf("hidden: %+v", l)
	}
	if _, ok := s.langs["default"]; ok {
		t.Error("default carries a language")
	}
	next, err := newSnapshot(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	if next.langs["sh"] != s.langs["sh"] {
		t.Error("a reload probed an unchanged profile again")
	}
	var names []string
	for _, l := range next.languageInfos() {
		names = append(names, l.Profile)
	}
	if !slices.IsSorted(names) || !slices.Contains(names, "sh") || !slices.Contains(names, "python3") {
		t.Errorf("languages: %v, want every language profile in name order", names)
	}
}
