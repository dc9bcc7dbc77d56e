package web

import (
	"fmt"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// outcome is the last message of a run, from its result: timeout for a
// time limit, error for a compile that failed or a Python exception (with
// its traceback), execution_complete otherwise (a stop included).
func outcome(id, language string, compiled bool, res *api.Result, stopped bool) Message {
	m := Message{ExecutionID: id}
	if len(res.Steps) == 0 {
		m.Type, m.Message = TypeError, "the daemon gave no step: "+res.Message
		return m
	}
	run := &res.Steps[len(res.Steps)-1]
	if compiled && res.Steps[0].Verdict != api.VerdictOK {
		run = &res.Steps[0]
	}
	measure(&m, run)
	switch {
	case stopped || res.Status == api.StatusCancelled:
		m.Type, m.Stopped, m.Message = TypeExecutionComplete, true, "Execution stopped"
	case compiled && run == &res.Steps[0]:
		m.Type = TypeError
		m.Message = fmt.Sprintf("Compilation failed (%s)", describe(run))
		if s := strings.TrimSpace(run.Stderr + run.Stdout); s != "" {
			m.Message += ":\n" + s
		}
	case run.Verdict == api.VerdictWallTimeLimit || run.Verdict == api.VerdictCPUTimeLimit:
		m.Type = TypeTimeout
		m.Message = fmt.Sprintf("Execution timed out after %.0f ms (%s)", run.WallTimeMS, strings.ReplaceAll(string(run.Verdict), "_", " "))
	case run.Verdict == api.VerdictInternalError:
		m.Type, m.Message = TypeError, "the sandbox failed: "+run.Message
	default:
		if tb := pythonTraceback(language, run); tb != "" {
			m.Type, m.Message, m.Traceback = TypeError, tb, tb
			return m
		}
		m.Type = TypeExecutionComplete
		m.Message = fmt.Sprintf("Execution completed with exit code: %d", *m.ExitCode)
		if run.Verdict != api.VerdictOK && run.Verdict != api.VerdictNonzeroExit {
			m.Message += " (" + describe(run) + ")"
		}
	}
	return m
}

// measure copies a step's verdict and measurements into m. A program a
// signal ended has exit code -N, as Python's subprocess gives it.
func measure(m *Message, s *api.StepResult) {
	code := s.ExitCode
	if s.Signal != "" {
		if n := signalNumber(s.Signal); n > 0 {
			code = -n
		}
	}
	cpu, wall, mem := s.CPUTimeMS, s.WallTimeMS, s.MemoryPeakBytes
	m.ExitCode, m.Verdict, m.CPUTimeMS, m.WallTimeMS, m.MemoryPeakBytes = &code, string(s.Verdict), &cpu, &wall, &mem
}

func describe(s *api.StepResult) string {
	d := strings.ReplaceAll(string(s.Verdict), "_", " ")
	if s.Verdict == api.VerdictNonzeroExit {
		d = fmt.Sprintf("exit code %d", s.ExitCode)
	}
	if s.Signal != "" {
		d += ", " + s.Signal
	}
	if s.Message != "" {
		d += ": " + s.Message
	}
	return d
}

// pythonTraceback is the traceback of a Python program that ended on an
// exception (exit status 1, stderr ending with one): from "Traceback (most
// recent call last):", or for a syntax error (no such header) from its
// first `  File "...", line N`. "" for anything else, sys.exit(1)
// included.
func pythonTraceback(language string, s *api.StepResult) string {
	if language != "python" || s.Verdict != api.VerdictNonzeroExit || s.ExitCode != 1 {
		return ""
	}
	err := s.Stderr
	if i := strings.LastIndex(err, "Traceback (most recent call last):"); i >= 0 {
		return strings.TrimRight(err[i:], "\n")
	}
	if i := strings.Index(err, "  File \""); i >= 0 && strings.Contains(err[i:], "Error: ") {
		return strings.TrimRight(err[i:], "\n")
	}
	return ""
}
