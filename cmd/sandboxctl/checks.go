package main

import (
	"errors"
	"flag"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// stdoutFlags are run's flags for what a step does with its stdout:
// --stdout-to, --expected-stdout-file, --compare, --float-abs and
// --float-rel. The daemon checks them; an error names the field, and
// failRun the flag (stdoutFlagOf).
type stdoutFlags struct {
	stdoutTo, expectedFile, compare string
	floatAbs, floatRel              floatFlag
}

func (s *stdoutFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&s.stdoutTo, "stdout-to", "", "also write the standard output to the workspace `FILE` (with --track to read it back)")
	fs.StringVar(&s.expectedFile, "expected-stdout-file", "", "the workspace `FILE` (e.g. a --file) holding the expected standard output")
	fs.StringVar(&s.compare, "compare", "", "how stdout is compared with the expected output: `MODE` lines (default: trailing whitespace aside), exact, tokens or float")
	fs.Var(&s.floatAbs, "float-abs", "with --compare float: the absolute tolerance `X` (default 1e-6)")
	fs.Var(&s.floatRel, "float-rel", "with --compare float: the relative tolerance `X` (default 1e-6)")
}

func (s *stdoutFlags) apply(step *api.Step) {
	step.StdoutTo = s.stdoutTo
	step.ExpectedStdoutFile = s.expectedFile
	step.Compare = s.compare
	step.FloatAbs = float64(s.floatAbs)
	step.FloatRel = float64(s.floatRel)
}

// floatFlag is a tolerance: a number above 0. Left out, the daemon's
// default applies.
type floatFlag float64

func (f *floatFlag) String() string {
	if *f == 0 {
		return ""
	}
	return strconv.FormatFloat(float64(*f), 'g', -1, 64)
}

func (f *floatFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || !(v > 0) || v > 1e308 {
		return errFloatFlag
	}
	*f = floatFlag(v)
	return nil
}

var errFloatFlag = errors.New("not a number above 0 (leave it out for 1e-6)")

// stdoutFlagOf is the flag of a daemon's error about a step's stdout
// field ("steps[0].compare: ..." is --compare), or "".
func stdoutFlagOf(msg string) string {
	field, ok := strings.CutPrefix(msg, "steps[0].")
	if !ok {
		return ""
	}
	field, _, _ = strings.Cut(field, ":")
	field, _, _ = strings.Cut(field, ",") // "expected_stdout, steps[0].expected_stdout_file"
	switch field {
	case "stdout_to", "expected_stdout_file", "expected_stdout", "compare", "float_abs", "float_rel":
		return strings.ReplaceAll(field, "_", "-")
	}
	return ""
}
