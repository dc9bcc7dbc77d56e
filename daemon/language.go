package daemon

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
)

// Language is what a profile that carries a language says about it: how a
// program in it is compiled and run. The daemon runs none of it for a job:
// a client (the Piston gateway) reads it from GET /v1/info and sends the
// steps. Argv run in the workspace, where the source is SourceFile.
type Language struct {
	// Language is the language's name, as Piston names it ("python", "c++").
	Language string
	Aliases  []string
	// Version, if set, is the version as it is; else the first dotted
	// number in what VersionCommand prints, run on the host at start.
	Version        string
	VersionCommand []string
	SourceFile     string
	// Compile is empty for a language with no compile stage.
	Compile []string
	Run     []string
}

// languageState is a language profile as found on the host at start (or
// at a reload): its version, or why it cannot run.
type languageState struct {
	Language
	version string
	reason  string // empty: available
}

// builtinLanguages are the language profiles that exist without a config
// file: the toolchains Debian packages, each at the path Debian puts it. A
// profile whose toolchain is missing is listed as unavailable in GET
// /v1/info and refused when a job names it. Their sandboxes are the
// default profile's but for the changes given here. A [profiles.NAME] of
// the same name in the config file starts from the built-in one.
var builtinLanguages = map[string]struct {
	lang Language
	// edit adapts the default profile for the language.
	edit func(p *engine.Profile)
}{
	"python3": {lang: Language{
		Language: "python", Aliases: []string{"py", "py3", "python3"},
		VersionCommand: []string{"/usr/bin/python3", "--version"},
		SourceFile:     "main.py", Run: []string{"/usr/bin/python3", "main.py"},
	}},
	"c": {lang: Language{
		Language: "c", Aliases: []string{"gcc"},
		VersionCommand: []string{"/usr/bin/gcc", "-dumpfullversion"},
		SourceFile:     "main.c", Compile: []string{"/usr/bin/gcc", "-O2", "-std=gnu17", "-o", "main", "main.c", "-lm"},
		Run: []string{"./main"},
	}},
	"cpp": {lang: Language{
		Language: "c++", Aliases: []string{"cpp", "g++"},
		VersionCommand: []string{"/usr/bin/g++", "-dumpfullversion"},
		SourceFile:     "main.cpp", Compile: []string{"/usr/bin/g++", "-O2", "-std=gnu++17", "-o", "main", "main.cpp"},
		Run: []string{"./main"},
	}},
	// The source launcher compiles and runs one file whatever its public
	// class is named, as Piston's java does; there is no compile stage.
	"java": {lang: Language{
		Language: "java", Aliases: []string{},
		VersionCommand: []string{"/usr/bin/java", "-version"},
		SourceFile:     "Main.java", Run: []string{"/usr/bin/java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "Main.java"},
	}, edit: func(p *engine.Profile) {
		// The JVM's configuration is in /etc (jvm.cfg, security); it
		// starts a thread per core for its compilers and more, and maps
		// far more than it touches.
		p.Binds = append(p.Binds, "/etc/java-17-openjdk")
		p.Defaults.MemoryBytes = 1 << 30
		p.Defaults.PIDs = 256
		p.Defaults.CPUTimeMS = 20_000
		p.Defaults.WallTimeMS = 30_000
		// Its compiler and collector threads run beside the program's:
		// every CPU of the host by default, not the default profile's one.
		p.Defaults.CPUs = p.Max.CPUs
	}},
	"node": {lang: Language{
		Language: "javascript", Aliases: []string{"node-javascript", "node-js", "js", "node"},
		VersionCommand: []string{"/usr/bin/node", "--version"},
		SourceFile:     "main.js", Run: []string{"/usr/bin/node", "main.js"},
	}, edit: func(p *engine.Profile) {
		p.Defaults.PIDs = 128 // V8's and libuv's threads
	}},
	// Debian's golang-go; a Go installed elsewhere (/usr/local/go) is not
	// this profile's.
	"go": {lang: Language{
		Language: "go", Aliases: []string{"golang"},
		VersionCommand: []string{"/usr/lib/go/bin/go", "version"},
		SourceFile:     "main.go", Compile: []string{"/usr/lib/go/bin/go", "build", "-o", "main", "main.go"},
		Run: []string{"./main"},
	}, edit: func(p *engine.Profile) {
		p.Env["GOCACHE"] = "/tmp/go-cache"
		p.Env["GOPATH"] = "/tmp/go"
		p.Env["CGO_ENABLED"] = "0"
		p.Defaults.PIDs = 256
		p.Defaults.MemoryBytes = 1 << 30
		p.Defaults.CPUs = p.Max.CPUs // go build compiles packages in parallel
	}},
}

// builtinProfile is a built-in language profile's sandbox: the default
// profile with the language's changes.
func builtinProfile(name string) engine.Profile {
	p := engine.DefaultProfile()
	p.Name = name
	if b, ok := builtinLanguages[name]; ok && b.edit != nil {
		p.Env = maps.Clone(p.Env)
		b.edit(&p)
	}
	return p
}

// validate checks a profile's language keys; key names the profile.
func (l *Language) validate(key string) error {
	if l.Language == "" {
		return fmt.Errorf("%s: language is needed with source_file, run, compile, aliases or version", key)
	}
	if len(l.Run) == 0 || l.Run[0] == "" {
		return fmt.Errorf("%s.run: the argv that runs the program is needed", key)
	}
	if l.SourceFile == "" || strings.Contains(l.SourceFile, "/") || strings.HasPrefix(l.SourceFile, ".") {
		return fmt.Errorf("%s.source_file: %q must be a file name, not starting with a dot", key, l.SourceFile)
	}
	if l.Version == "" && len(l.VersionCommand) == 0 {
		return fmt.Errorf("%s: version or version_command is needed", key)
	}
	for _, argv := range [][]string{l.Compile, l.Run, l.VersionCommand} {
		if len(argv) > 0 && argv[0] == "" {
			return fmt.Errorf("%s: an argv starts with an empty program", key)
		}
	}
	return nil
}

// versionRE finds a version in what a toolchain prints: "Python 3.11.7",
// "v20.20.2", `openjdk version "17.0.15" 2025-04-15`, "go1.19.8". Compiled
// when first needed, not at every start of sandboxd.
var versionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`[0-9]+(\.[0-9]+)+`) })

// probeLanguage finds on the host whether a language profile can run: its
// compile and run programs must be reachable through the profile's binds,
// and its version is read. It never fails: what is wrong is the reason.
func probeLanguage(p *engine.Profile, l *Language) *languageState {
	s := &languageState{Language: *l, version: l.Version}
	for _, argv := range [][]string{l.Compile, l.Run, l.VersionCommand} {
		if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
			continue // a program of the workspace (./main), or one found on PATH
		}
		if err := reachable(argv[0], p.Binds); err != nil {
			s.reason = err.Error()
			return s
		}
	}
	if s.version == "" {
		v, err := hostVersion(l.VersionCommand)
		if err != nil {
			s.reason = err.Error()
			return s
		}
		s.version = v
	}
	return s
}

// reachable says whether path is an executable file on the host that a
// sandbox with these binds sees at the same path: every link on its way
// lies under a bind (a bind of a symlink is recreated as one).
func reachable(path string, binds []string) error {
	p := path
	for range 40 {
		if !underBinds(p, binds) {
			if p == path {
				return fmt.Errorf("%s: not under the profile's binds", path)
			}
			return fmt.Errorf("%s: it leads to %s, which is not under the profile's binds", path, p)
		}
		fi, err := os.Lstat(p)
		if err != nil {
			if p == path {
				return fmt.Errorf("%s: not found on the host", path)
			}
			return fmt.Errorf("%s: it leads to %s, which is not found on the host", path, p)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
				return fmt.Errorf("%s: %s is not an executable file", path, p)
			}
			return nil
		}
		target, err := os.Readlink(p)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(p), target)
		}
		p = filepath.Clean(target)
	}
	return fmt.Errorf("%s: too many symlinks", path)
}

// underBinds says whether path is a bind or lies beneath one, a directory
// on the way that is a symlink resolved (/lib64 -> usr/lib64).
func underBinds(path string, binds []string) bool {
	dir, err := filepath.EvalSymlinks(filepath.Dir(path))
	if err != nil {
		dir = filepath.Dir(path)
	}
	for _, p := range []string{path, filepath.Join(dir, filepath.Base(path))} {
		for _, b := range binds {
			if p == b || strings.HasPrefix(p, b+"/") {
				return true
			}
		}
	}
	return false
}

// hostVersion runs argv on the host and finds the version in its output.
func hostVersion(argv []string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("version: %s: %w", strings.Join(argv, " "), err)
	}
	v := versionRE().FindString(string(out))
	if v == "" {
		return "", fmt.Errorf("version: %s printed no version: %.80q", strings.Join(argv, " "), out)
	}
	return v, nil
}

// probeLanguages probes the language profiles of s at once (a JVM takes a
// while to say its version). prev's result stands for a profile that did
// not change.
func (s *snapshot) probeLanguages(prev *snapshot) {
	s.langs = map[string]*languageState{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range s.names {
		l, err := s.cfg.Language(name)
		if err != nil || l == nil {
			continue
		}
		if prev != nil && prev.profiles[name] == s.profiles[name] {
			if old := prev.langs[name]; old != nil && equalLanguage(&old.Language, l) {
				s.langs[name] = old
				continue
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := probeLanguage(s.profiles[name], l)
			mu.Lock()
			s.langs[name] = st
			mu.Unlock()
		}()
	}
	wg.Wait()
}

func equalLanguage(a, b *Language) bool {
	return a.Language == b.Language && a.Version == b.Version && a.SourceFile == b.SourceFile &&
		slices.Equal(a.Aliases, b.Aliases) && slices.Equal(a.VersionCommand, b.VersionCommand) &&
		slices.Equal(a.Compile, b.Compile) && slices.Equal(a.Run, b.Run)
}

// languageInfos is GET /v1/info's languages, in profile order.
func (s *snapshot) languageInfos() []api.LanguageInfo {
	out := []api.LanguageInfo{}
	for _, name := range s.names {
		st := s.langs[name]
		if st == nil {
			continue
		}
		aliases := st.Aliases
		if aliases == nil {
			aliases = []string{}
		}
		out = append(out, api.LanguageInfo{
			Profile: name, Language: st.Language.Language, Version: st.version, Aliases: aliases,
			Available: st.reason == "", Reason: st.reason,
			SourceFile: st.SourceFile, Compile: st.Compile, Run: st.Run,
		})
	}
	return out
}
