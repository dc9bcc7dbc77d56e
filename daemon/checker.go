package daemon

import (
	"math"
	"path"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// checkStdoutFields validates what a step asks of its stdout: stdout_to,
// expected_stdout_file, compare and the float tolerances. files are the
// job's, which stdout_to must not collide with. name is "steps[i]".
func checkStdoutFields(s *api.Step, name string, files map[string]api.File) (stdoutCheck, *api.Error) {
	c := stdoutCheck{mode: s.Compare}
	if s.StdoutTo != "" {
		field := name + ".stdout_to"
		if err := validRelPath(s.StdoutTo); err != nil {
			return c, invalid("%s: %v", field, err)
		}
		for dir := path.Dir(s.StdoutTo); dir != "."; dir = path.Dir(dir) {
			if _, ok := files[dir]; ok {
				return c, invalid("%s: needs %q to be a directory, but files[%q] is a file", field, dir, dir)
			}
		}
		for f := range files {
			if strings.HasPrefix(f, s.StdoutTo+"/") {
				return c, invalid("%s: %q is a directory of files[%q], not a file", field, s.StdoutTo, f)
			}
		}
		if s.StdoutTo == s.ExpectedStdoutFile {
			return c, invalid("%s: the same file as %s.expected_stdout_file: stdout would be compared with itself", field, name)
		}
	}
	if s.ExpectedStdoutFile != "" {
		if s.ExpectedStdout != nil {
			return c, invalid("%s.expected_stdout, %s.expected_stdout_file: give one, not both", name, name)
		}
		if err := validRelPath(s.ExpectedStdoutFile); err != nil {
			return c, invalid("%s.expected_stdout_file: %v", name, err)
		}
	}
	switch s.Compare {
	case "":
		c.mode = api.CompareLines
	case api.CompareLines, api.CompareExact, api.CompareTokens, api.CompareFloat:
		if s.ExpectedStdout == nil && s.ExpectedStdoutFile == "" {
			return c, invalid("%s.compare: needs expected_stdout or expected_stdout_file", name)
		}
	default:
		return c, invalid("%s.compare: %q is not lines, exact, tokens or float", name, s.Compare)
	}
	for _, t := range []struct {
		field string
		v     float64
		to    *float64
	}{{"float_abs", s.FloatAbs, &c.abs}, {"float_rel", s.FloatRel, &c.rel}} {
		switch {
		case t.v == 0:
			*t.to = api.DefaultFloatTolerance
			continue
		case math.IsNaN(t.v) || math.IsInf(t.v, 0) || t.v < 0:
			return c, invalid("%s.%s: must be a finite number above 0, got %v", name, t.field, t.v)
		case c.mode != api.CompareFloat:
			return c, invalid("%s.%s: only with compare %q (compare is %q)", name, t.field, api.CompareFloat, c.mode)
		}
		*t.to = t.v
	}
	return c, nil
}
