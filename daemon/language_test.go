package daemon

import (
	"os"
	"path/filepath"
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
