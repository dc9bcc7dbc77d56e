package daemon

import (
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"path"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
	"github.com/sandboxd/sandboxd/nsjail"
)

// Bounds on a job's shape, beyond its limits.
const (
	maxSteps        = 1000
	maxFiles        = 10000
	maxTracked      = 1000
	maxPathBytes    = 4096
	maxArgs         = 100000
	maxIDBytes      = 128
	maxWorkspaceCap = 8 << 30

	// What execve takes: a program path of at most PATH_MAX and each
	// argument or "K=V" of at most MAX_ARG_STRLEN (32 pages), each with its
	// NUL. argv and the environment together, each string with its NUL and
	// pointer, are kept within 2 MiB: what the kernel takes under the usual
	// 8 MiB stack (a quarter of it). It takes up to 6 MiB with a larger
	// stack_bytes, and less below 8 MiB: a step that asks for that is
	// exec_failed, "argument list too long".
	maxProgramBytes = 4096 - 1
	maxArgBytes     = 128<<10 - 1
	maxExecBytes    = 2 << 20
)

func invalid(format string, args ...any) *api.Error {
	return &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// checkedJob is a validated job with everything resolved: its profile,
// its decoded files and stdins, its limits with defaults.
type checkedJob struct {
	job       *api.Job
	conf      *snapshot // the configuration it was checked against, for its whole run
	profile   *engine.Profile
	files     []checkedFile
	steps     []checkedStep
	wsBytes   int64
	base64    bool
	stopNever bool
	// cached are the file cache ids the job names, and the field of each:
	// admit pins them (cache_job_linux.go).
	cached       []string
	cachedFields []string
	// stepFiles: a step names a workspace file the daemon writes or
	// reads (stdout_to, expected_stdout_file), so the job needs a
	// workspace of the daemon's.
	stepFiles bool
	// stdinPipe: a step reads the job's stdin pipe (stdin_pipe), made when
	// the job is admitted.
	stdinPipe bool
}

type checkedFile struct {
	name string
	data []byte
	mode uint32
	// cached is a cached file's path: bound in read-only, not written.
	cached string
}

type checkedStep struct {
	step   *api.Step
	stdin  []byte
	limits api.Limits
	// A step with programs (programs_linux.go): no stdin, no limits of
	// its own.
	programs []checkedProgram
	pipes    []checkedPipe
	// stdinCached is a file cache id, opened as the program's stdin.
	stdinCached string
	check       stdoutCheck // how stdout is compared with the expected output
}

// check validates a job against the daemon's profiles. The error names
// the field.
func (d *Daemon) check(job *api.Job) (*checkedJob, *api.Error) {
	p := &checkedJob{job: job, conf: d.conf()}
	if len(job.ID) > maxIDBytes || strings.HasPrefix(job.ID, ".") || strings.IndexFunc(job.ID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return nil, invalid("id: %q must be at most %d characters of A-Z a-z 0-9 . _ -, not starting with a dot", job.ID, maxIDBytes)
	}
	profileName := job.Profile
	if profileName == "" {
		profileName = "default"
	}
	prof, ok := p.conf.profiles[profileName]
	if !ok {
		return nil, invalid("profile: %q does not exist", job.Profile)
	}
	if l := p.conf.langs[profileName]; l != nil && l.reason != "" {
		return nil, invalid("profile: %q (%s) is unavailable on this host: %s", profileName, l.Language.Language, l.reason)
	}
	p.profile = prof

	if len(job.Steps) == 0 {
		return nil, invalid("steps: at least one step is needed")
	}
	if len(job.Steps) > maxSteps {
		return nil, invalid("steps: %d steps, at most %d", len(job.Steps), maxSteps)
	}
	for i := range job.Steps {
		s := &job.Steps[i]
		name := fmt.Sprintf("steps[%d]", i)
		if len(s.Programs) > 0 || len(s.Pipes) > 0 {
			cs, aerr := checkPrograms(s, prof, name)
			if aerr != nil {
				return nil, aerr
			}
			p.steps = append(p.steps, cs)
			continue
		}
		if aerr := checkCommand(s.Argv, s.Env, prof, name); aerr != nil {
			return nil, aerr
		}
		if err := s.Limits.Validate(prof.Max, func(f string) string { return name + ".limits." + f }); err != nil {
			return nil, invalid("%v", err)
		}
		cs := checkedStep{step: s, limits: s.Limits.WithDefaults(prof.Defaults)}
		if s.StdinCached != "" {
			if s.Stdin != "" || s.StdinBase64 != "" {
				return nil, invalid("%s.stdin_cached: give one of stdin, stdin_base64 and stdin_cached", name)
			}
			if aerr := p.checkCached(d.cache, s.StdinCached, name+".stdin_cached"); aerr != nil {
				return nil, aerr
			}
			cs.stdinCached = s.StdinCached
		}
		if s.StdinPipe {
			if s.Stdin != "" || s.StdinBase64 != "" || s.StdinCached != "" {
				return nil, invalid("%s.stdin_pipe: not with stdin, stdin_base64 or stdin_cached: the pipe is the program's stdin", name)
			}
			p.stdinPipe = true
		}
		var aerr *api.Error
		if cs.check, aerr = checkStdoutFields(s, name, job.Files); aerr != nil {
			return nil, aerr
		}
		p.stepFiles = p.stepFiles || s.StdoutTo != "" || s.ExpectedStdoutFile != ""
		switch {
		case s.Stdin != "" && s.StdinBase64 != "":
			return nil, invalid("%s.stdin, %s.stdin_base64: give one, not both", name, name)
		case s.StdinBase64 != "":
			b, err := base64.StdEncoding.DecodeString(s.StdinBase64)
			if err != nil {
				return nil, invalid("%s.stdin_base64: %v", name, err)
			}
			cs.stdin = b
		case s.Stdin != "":
			// Only read (into a memfd): the string's own bytes, not a copy.
			cs.stdin = unsafe.Slice(unsafe.StringData(s.Stdin), len(s.Stdin))
		}
		p.steps = append(p.steps, cs)
	}

	var aerr *api.Error
	if p.files, aerr = p.checkFiles(d.cache, job.Files, "files"); aerr != nil {
		return nil, aerr
	}
	if aerr := checkTracked(job.TrackedFiles, "tracked_files"); aerr != nil {
		return nil, aerr
	}
	if aerr := checkKeepFiles(job.KeepFiles); aerr != nil {
		return nil, aerr
	}
	switch job.StopOn {
	case "", api.StopOnFailure:
	case api.StopOnNever:
		p.stopNever = true
	default:
		return nil, invalid("stop_on: %q is not failure or never", job.StopOn)
	}
	switch job.OutputEncoding {
	case "", api.EncodingUTF8:
	case api.EncodingBase64:
		p.base64 = true
	default:
		return nil, invalid("output_encoding: %q is not utf8 or base64", job.OutputEncoding)
	}
	p.wsBytes = prof.WorkspaceBytes
	switch {
	case job.WorkspaceBytes < 0:
		return nil, invalid("workspace_bytes: must be at least 1, got %d", job.WorkspaceBytes)
	case job.WorkspaceBytes > prof.MaxWorkspaceBytes:
		return nil, invalid("workspace_bytes: %d is above the maximum %d", job.WorkspaceBytes, prof.MaxWorkspaceBytes)
	case job.WorkspaceBytes > 0:
		p.wsBytes = job.WorkspaceBytes
	}
	if total := filesBytes(p.files); total > p.wsBytes {
		return nil, invalid("files: %d bytes do not fit the workspace of %d bytes", total, p.wsBytes)
	}
	// A program's own files, in a private workspace of the same size.
	for i := range p.steps {
		for j := range p.steps[i].programs {
			cp := &p.steps[i].programs[j]
			if len(cp.prog.Files) == 0 && len(cp.prog.TrackedFiles) == 0 {
				continue
			}
			field := fmt.Sprintf("steps[%d].programs[%d]", i, j)
			if !cp.private {
				which := "files"
				if len(cp.prog.Files) == 0 {
					which = "tracked_files"
				}
				return nil, invalid("%s.%s: only a program with workspace \"private\" has files of its own; the job's files and tracked_files are those of the shared workspace", field, which)
			}
			var aerr *api.Error
			if cp.files, aerr = p.checkFiles(d.cache, cp.prog.Files, field+".files"); aerr != nil {
				return nil, aerr
			}
			if aerr := checkTracked(cp.prog.TrackedFiles, field+".tracked_files"); aerr != nil {
				return nil, aerr
			}
			if total := filesBytes(cp.files); total > p.wsBytes {
				return nil, invalid("%s.files: %d bytes do not fit the workspace of %d bytes", field, total, p.wsBytes)
			}
		}
	}
	return p, nil
}

// filesBytes is the bytes of the files the daemon writes (a cached file
// is bound, not written).
func filesBytes(files []checkedFile) int64 {
	var total int64
	for _, f := range files {
		total += int64(len(f.data))
	}
	return total
}

// checkFiles checks a map of files to write into a workspace (the job's
// "files", or a program's "steps[i].programs[j].files"); field names it.
func (p *checkedJob) checkFiles(c *fileCache, files map[string]api.File, field string) ([]checkedFile, *api.Error) {
	if len(files) > maxFiles {
		return nil, invalid("%s: %d files, at most %d", field, len(files), maxFiles)
	}
	var out []checkedFile
	// In name order, so that of several bad files the same one is named
	// each time.
	for _, name := range slices.Sorted(maps.Keys(files)) {
		f := files[name]
		field := fmt.Sprintf("%s[%q]", field, name)
		if err := validRelPath(name); err != nil {
			return nil, invalid("%s: %v", field, err)
		}
		// "a" and "a/b": one of them cannot be written.
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := files[dir]; ok {
				return nil, invalid("%s: needs %q to be a directory, but files[%q] is a file", field, dir, dir)
			}
		}
		cf := checkedFile{name: name, mode: 0o644}
		if f.Cached != "" {
			if aerr := p.checkCachedFile(c, &f, &cf, field); aerr != nil {
				return nil, aerr
			}
			out = append(out, cf)
			continue
		}
		switch {
		case f.Content != "" && f.Base64 != "":
			return nil, invalid("%s: give content or base64, not both", field)
		case f.Base64 != "":
			b, err := base64.StdEncoding.DecodeString(f.Base64)
			if err != nil {
				return nil, invalid("%s.base64: %v", field, err)
			}
			cf.data = b
		default:
			cf.data = []byte(f.Content)
		}
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil || m > 0o777 {
				return nil, invalid("%s.mode: %q is not an octal mode within 0000..0777", field, f.Mode)
			}
			cf.mode = uint32(m)
		}
		out = append(out, cf)
	}
	return out, nil
}

// checkTracked checks a list of workspace paths to read back (the job's
// "tracked_files", or a program's).
func checkTracked(names []string, field string) *api.Error {
	if len(names) > maxTracked {
		return invalid("%s: %d files, at most %d", field, len(names), maxTracked)
	}
	for i, name := range names {
		if err := validRelPath(name); err != nil {
			return invalid("%s[%d]: %v", field, i, err)
		}
	}
	return nil
}

// checkCommand checks the argv and env of a step (name "steps[i]") or of
// a program.
func checkCommand(argv []string, env map[string]string, prof *engine.Profile, name string) *api.Error {
	if len(argv) == 0 || argv[0] == "" {
		return invalid("%s.argv: empty", name)
	}
	if len(argv) > maxArgs {
		return invalid("%s.argv: %d arguments, at most %d", name, len(argv), maxArgs)
	}
	for j, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return invalid("%s.argv[%d]: contains a NUL byte", name, j)
		}
	}
	if err := engine.ValidateEnv(env, name+".env"); err != nil {
		return invalid("%v", err)
	}
	return checkExecSize(argv, env, prof, name)
}

// checkExecSize keeps a step's argv and environment within what execve
// takes (see maxExecBytes), and its PATH within the directories a program
// is looked up in: beyond them the step could only fail in the sandbox.
func checkExecSize(argv []string, env map[string]string, prof *engine.Profile, name string) *api.Error {
	if n := len(argv[0]); n > maxProgramBytes {
		return invalid("%s.argv[0]: a program path of %d bytes, at most %d", name, n, maxProgramBytes)
	}
	total := 0
	for j, a := range argv {
		if len(a) > maxArgBytes {
			return invalid("%s.argv[%d]: %d bytes, at most %d (the kernel's limit on one argument)", name, j, len(a), maxArgBytes)
		}
		total += len(a) + 1 + 8
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if n := len(k) + 1 + len(env[k]); n > maxArgBytes {
			return invalid("%s.env[%q]: %d bytes as %s=..., at most %d (the kernel's limit on one variable)", name, k, n, k, maxArgBytes)
		}
	}
	if path, ok := env["PATH"]; ok {
		if n := strings.Count(path, ":") + 1; n > nsjail.MaxPathDirs {
			return invalid("%s.env[\"PATH\"]: %d directories, at most %d", name, n, nsjail.MaxPathDirs)
		}
	}
	for _, kv := range prof.Environ(env) {
		total += len(kv) + 1 + 8
	}
	if total > maxExecBytes {
		return invalid("%s.argv, %s.env: %d bytes with the profile's environment (each string with its NUL and pointer), at most %d", name, name, total, maxExecBytes)
	}
	return nil
}

// validRelPath accepts a clean relative path inside the workspace.
func validRelPath(name string) error {
	switch {
	case name == "" || name == ".":
		return errors.New("empty path")
	case len(name) > maxPathBytes:
		return fmt.Errorf("path longer than %d bytes", maxPathBytes)
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("path contains a NUL byte")
	case strings.HasPrefix(name, "/"):
		return errors.New("absolute path; paths are relative to the workspace")
	case path.Clean(name) != name:
		return errors.New("path is not clean (no ./, //, trailing /)")
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return errors.New("path leaves the workspace (..)")
		}
		if len(part) > 255 {
			return errors.New("a path element is longer than 255 bytes")
		}
	}
	return nil
}
