package daemon

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/engine"
	"github.com/sandboxd/sandboxd/nsjail"
)

// Bounds on a step with programs.
const (
	minPrograms    = 2
	maxPrograms    = 8
	maxProgramName = 32
	maxPipeFD      = nsjail.MaxExtraFD // the highest fd a pipe may name
)

// checkedProgram is a validated program of a step.
type checkedProgram struct {
	prog    *api.Program
	limits  api.Limits
	private bool // a fresh workspace of its own
	// files are written into the private workspace before the program
	// starts; its tracked_files are read back from it after.
	files []checkedFile
}

// ownWorkspace says whether the program's private workspace is the
// daemon's, made on the host (to put files in or read files from), rather
// than a tmpfs its sandbox mounts for itself.
func (cp *checkedProgram) ownWorkspace() bool {
	return cp.private && (len(cp.files) > 0 || len(cp.prog.TrackedFiles) > 0)
}

// pipeEnd is one end of a pipe: a program (its index) and its fd.
type pipeEnd struct {
	prog, fd int
}

// checkedPipe is a validated pipe of a step.
type checkedPipe struct {
	pipe     *api.Pipe
	from, to pipeEnd
}

// hasPrograms says whether any step of the job runs programs: they need
// the job's workspace on the host, to share it.
func (cj *checkedJob) hasPrograms() bool {
	for _, cs := range cj.steps {
		if len(cs.programs) > 0 {
			return true
		}
	}
	return false
}

// checkPrograms validates a step with programs (name is "steps[i]").
func checkPrograms(s *api.Step, prof *engine.Profile, name string) (checkedStep, *api.Error) {
	cs := checkedStep{step: s}
	switch {
	case len(s.Programs) == 0:
		return cs, invalid("%s.pipes: only a step with programs has pipes", name)
	case len(s.Programs) < minPrograms || len(s.Programs) > maxPrograms:
		return cs, invalid("%s.programs: %d programs, %d to %d", name, len(s.Programs), minPrograms, maxPrograms)
	case len(s.Argv) > 0:
		return cs, invalid("%s.argv: a step with programs gives each program its argv", name)
	case len(s.Env) > 0:
		return cs, invalid("%s.env: a step with programs gives each program its env", name)
	case s.Limits != api.Limits{}:
		return cs, invalid("%s.limits: a step with programs gives each program its limits", name)
	case s.Stdin != "" || s.StdinBase64 != "":
		return cs, invalid("%s.stdin: a step with programs has no stdin; its programs read their pipes", name)
	case s.StdinCached != "":
		return cs, invalid("%s.stdin_cached: a step with programs has no stdin; its programs read their pipes", name)
	case s.StdinPipe:
		return cs, invalid("%s.stdin_pipe: a step with programs has no stdin; its programs read their pipes", name)
	case s.StdoutTo != "":
		return cs, invalid("%s.stdout_to: a step with programs has no stdout of its own; a checker step reads a program's output from a file it writes", name)
	case s.ExpectedStdoutFile != "" || s.Compare != "" || s.FloatAbs != 0 || s.FloatRel != 0:
		return cs, invalid("%s.%s: a step with programs has no expected_stdout; a program decides (its exit status)", name, firstSet(s))
	case s.ExpectedStdout != nil:
		return cs, invalid("%s.expected_stdout: a step with programs has no expected_stdout; a program decides (its exit status)", name)
	}
	index := map[string]int{}
	for j := range s.Programs {
		p := &s.Programs[j]
		pname := fmt.Sprintf("%s.programs[%d]", name, j)
		if !validProgramName(p.Name) {
			return cs, invalid("%s.name: %q must be 1 to %d characters of A-Z a-z 0-9 _ -", pname, p.Name, maxProgramName)
		}
		if k, dup := index[p.Name]; dup {
			return cs, invalid("%s.name: %q is also the name of %s.programs[%d]", pname, p.Name, name, k)
		}
		index[p.Name] = j
		if aerr := checkCommand(p.Argv, p.Env, prof, pname); aerr != nil {
			return cs, aerr
		}
		if err := p.Limits.Validate(prof.Max, func(f string) string { return pname + ".limits." + f }); err != nil {
			return cs, invalid("%v", err)
		}
		cp := checkedProgram{prog: p, limits: p.Limits.WithDefaults(prof.Defaults)}
		switch p.Workspace {
		case "", api.WorkspaceJob:
		case api.WorkspacePrivate:
			cp.private = true
		default:
			return cs, invalid("%s.workspace: %q is not job or private", pname, p.Workspace)
		}
		cs.programs = append(cs.programs, cp)
	}
	// Each end names a program's fd once: as the end of one pipe.
	used := map[pipeEnd]string{}
	for k := range s.Pipes {
		pp := &s.Pipes[k]
		field := fmt.Sprintf("%s.pipes[%d]", name, k)
		from, aerr := parsePipeEnd(pp.From, field+".from", index, true)
		if aerr != nil {
			return cs, aerr
		}
		to, aerr := parsePipeEnd(pp.To, field+".to", index, false)
		if aerr != nil {
			return cs, aerr
		}
		for _, e := range []struct {
			end   pipeEnd
			field string
			text  string
		}{{from, field + ".from", pp.From}, {to, field + ".to", pp.To}} {
			if other, ok := used[e.end]; ok {
				return cs, invalid("%s: %q is already an end of %s", e.field, e.text, other)
			}
			used[e.end] = e.field
		}
		switch {
		case pp.Capture < 0:
			return cs, invalid("%s.capture_bytes: must be at least 1, got %d", field, pp.Capture)
		case prof.Max.OutputBytes > 0 && pp.Capture > prof.Max.OutputBytes:
			return cs, invalid("%s.capture_bytes: %d is above the maximum %d (the profile's maximum output_bytes)", field, pp.Capture, prof.Max.OutputBytes)
		}
		cs.pipes = append(cs.pipes, checkedPipe{pipe: pp, from: from, to: to})
	}
	return cs, nil
}

// parsePipeEnd reads "name:fd". A writing end (from) is any fd but 0 (1,
// 2 or 3 to 9); a reading end is fd 0 or 3 to 9. Fds 1 and 2 are written,
// fd 0 read: a pipe the other way would surprise the program.
func parsePipeEnd(s, field string, index map[string]int, writer bool) (pipeEnd, *api.Error) {
	name, fdText, ok := strings.Cut(s, ":")
	if !ok {
		return pipeEnd{}, invalid("%s: %q is not name:fd (e.g. \"solution:1\")", field, s)
	}
	j, ok := index[name]
	if !ok {
		return pipeEnd{}, invalid("%s: %q names no program of the step", field, name)
	}
	fd, err := strconv.Atoi(fdText)
	if err != nil || fd < 0 || fd > maxPipeFD || fdText != strconv.Itoa(fd) {
		return pipeEnd{}, invalid("%s: %q is not an fd from 0 to %d", field, fdText, maxPipeFD)
	}
	switch {
	case writer && fd == 0:
		return pipeEnd{}, invalid("%s: fd 0 is the program's stdin, which it reads: a pipe goes from an fd the program writes (1, 2, or 3 to %d)", field, maxPipeFD)
	case !writer && (fd == 1 || fd == 2):
		return pipeEnd{}, invalid("%s: fd %d is written by the program: a pipe goes to an fd the program reads (0, or 3 to %d)", field, fd, maxPipeFD)
	}
	return pipeEnd{prog: j, fd: fd}, nil
}

func validProgramName(s string) bool {
	if s == "" || len(s) > maxProgramName {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0
}

// firstSet names the first comparison field a step sets, for a message.
func firstSet(s *api.Step) string {
	switch {
	case s.ExpectedStdoutFile != "":
		return "expected_stdout_file"
	case s.Compare != "":
		return "compare"
	case s.FloatAbs != 0:
		return "float_abs"
	}
	return "float_rel"
}
