package daemon

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
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
)

func invalid(format string, args ...any) *api.Error {
	return &api.Error{Code: api.CodeInvalidArgument, Message: fmt.Sprintf(format, args...)}
}

// decodeJob reads one job strictly: unknown fields, wrong types and
// trailing data are errors that name the field.
func decodeJob(data []byte) (*api.Job, *api.Error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var job api.Job
	if err := dec.Decode(&job); err != nil {
		return nil, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalid("body: unexpected data after the job")
	}
	return &job, nil
}

// jsonError turns a decoding error into a message that names the field.
func jsonError(err error) *api.Error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return invalid("%s: wrong type (%s, want %s)", field, te.Value, te.Type)
	case errors.As(err, &se):
		return invalid("body: malformed JSON at byte %d: %v", se.Offset, se)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalid("%s: unknown field", strings.TrimPrefix(err.Error(), "json: unknown field "))
	case errors.Is(err, io.EOF):
		return invalid("body: empty")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalid("body: truncated JSON")
	}
	return invalid("body: %v", err)
}

// preparedJob is a validated job with everything resolved: its profile,
// its decoded files and stdins, its limits with defaults.
type preparedJob struct {
	job       *api.Job
	profile   *Profile
	files     []preparedFile
	steps     []preparedStep
	wsBytes   int64
	base64    bool
	stopNever bool
}

type preparedFile struct {
	name string
	data []byte
	mode uint32
}

type preparedStep struct {
	step   *api.Step
	stdin  []byte
	limits api.Limits
}

// prepare validates a job against the daemon's profiles. The error names
// the field.
func (d *Daemon) prepare(job *api.Job) (*preparedJob, *api.Error) {
	p := &preparedJob{job: job}
	if len(job.ID) > maxIDBytes || strings.HasPrefix(job.ID, ".") || strings.IndexFunc(job.ID, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
	}) >= 0 {
		return nil, invalid("id: %q must be at most %d characters of A-Z a-z 0-9 . _ -, not starting with a dot", job.ID, maxIDBytes)
	}
	profileName := job.Profile
	if profileName == "" {
		profileName = "default"
	}
	prof, ok := d.profiles[profileName]
	if !ok {
		return nil, invalid("profile: %q does not exist", job.Profile)
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
		if len(s.Argv) == 0 || s.Argv[0] == "" {
			return nil, invalid("%s.argv: empty", name)
		}
		if len(s.Argv) > maxArgs {
			return nil, invalid("%s.argv: %d arguments, at most %d", name, len(s.Argv), maxArgs)
		}
		for j, a := range s.Argv {
			if strings.IndexByte(a, 0) >= 0 {
				return nil, invalid("%s.argv[%d]: contains a NUL byte", name, j)
			}
		}
		if err := ValidateEnv(s.Env, name+".env"); err != nil {
			return nil, invalid("%v", err)
		}
		if err := s.Limits.Validate(prof.Max, func(f string) string { return name + ".limits." + f }); err != nil {
			return nil, invalid("%v", err)
		}
		ps := preparedStep{step: s, limits: s.Limits.WithDefaults(prof.Defaults)}
		switch {
		case s.Stdin != "" && s.StdinBase64 != "":
			return nil, invalid("%s.stdin, %s.stdin_base64: give one, not both", name, name)
		case s.StdinBase64 != "":
			b, err := base64.StdEncoding.DecodeString(s.StdinBase64)
			if err != nil {
				return nil, invalid("%s.stdin_base64: %v", name, err)
			}
			ps.stdin = b
		default:
			ps.stdin = []byte(s.Stdin)
		}
		p.steps = append(p.steps, ps)
	}

	if len(job.Files) > maxFiles {
		return nil, invalid("files: %d files, at most %d", len(job.Files), maxFiles)
	}
	for name, f := range job.Files {
		field := fmt.Sprintf("files[%q]", name)
		if err := validRelPath(name); err != nil {
			return nil, invalid("%s: %v", field, err)
		}
		pf := preparedFile{name: name, mode: 0o644}
		switch {
		case f.Content != "" && f.Base64 != "":
			return nil, invalid("%s: give content or base64, not both", field)
		case f.Base64 != "":
			b, err := base64.StdEncoding.DecodeString(f.Base64)
			if err != nil {
				return nil, invalid("%s.base64: %v", field, err)
			}
			pf.data = b
		default:
			pf.data = []byte(f.Content)
		}
		if f.Mode != "" {
			m, err := strconv.ParseUint(f.Mode, 8, 32)
			if err != nil || m > 0o777 {
				return nil, invalid("%s.mode: %q is not an octal mode within 0000..0777", field, f.Mode)
			}
			pf.mode = uint32(m)
		}
		p.files = append(p.files, pf)
	}
	if len(job.TrackedFiles) > maxTracked {
		return nil, invalid("tracked_files: %d files, at most %d", len(job.TrackedFiles), maxTracked)
	}
	for i, name := range job.TrackedFiles {
		if err := validRelPath(name); err != nil {
			return nil, invalid("tracked_files[%d]: %v", i, err)
		}
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
	if job.WorkspaceBytes < 0 || job.WorkspaceBytes > maxWorkspaceCap {
		return nil, invalid("workspace_bytes: %d is not within 0..%d", job.WorkspaceBytes, int64(maxWorkspaceCap))
	}
	if job.WorkspaceBytes > 0 {
		p.wsBytes = job.WorkspaceBytes
	}
	var total int64
	for _, f := range p.files {
		total += int64(len(f.data))
	}
	if total > p.wsBytes {
		return nil, invalid("files: %d bytes do not fit the workspace of %d bytes", total, p.wsBytes)
	}
	return p, nil
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
