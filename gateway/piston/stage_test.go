package piston

import (
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestPistonStage(t *testing.T) {
	for _, c := range []struct {
		step           api.StepResult
		status, signal string // "" for null
		code           *int
	}{
		{api.StepResult{Verdict: api.VerdictOK}, "", "", new(int)},
		{api.StepResult{Verdict: api.VerdictNonzeroExit, ExitCode: 2}, "RE", "", func() *int { n := 2; return &n }()},
		{api.StepResult{Verdict: api.VerdictSignaled, Signal: "SIGSEGV"}, "SG", "SIGSEGV", nil},
		{api.StepResult{Verdict: api.VerdictSyscallBlocked, Signal: "SIGSYS"}, "SG", "SIGSYS", nil},
		{api.StepResult{Verdict: api.VerdictCPUTimeLimit}, "TO", "SIGKILL", nil},
		{api.StepResult{Verdict: api.VerdictWallTimeLimit}, "TO", "SIGKILL", nil},
		{api.StepResult{Verdict: api.VerdictMemoryLimit}, "SG", "SIGKILL", nil},
		{api.StepResult{Verdict: api.VerdictOutputLimit, StdoutTruncated: true}, "OL", "SIGKILL", nil},
		{api.StepResult{Verdict: api.VerdictOutputLimit, StderrTruncated: true}, "EL", "SIGKILL", nil},
		{api.StepResult{Verdict: api.VerdictExecFailed, Message: "no such file"}, "XX", "", nil},
		{api.StepResult{Verdict: api.VerdictInternalError}, "XX", "", nil},
	} {
		st := stageOf(&c.step, "")
		str := func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		}
		if str(st.Status) != c.status || str(st.Signal) != c.signal || (st.Code == nil) != (c.code == nil) || st.Code != nil && *st.Code != *c.code {
			t.Errorf("%s: status %q signal %q code %v; want %q %q %v", c.step.Verdict, str(st.Status), str(st.Signal), st.Code, c.status, c.signal, c.code)
		}
		if (c.status == "") != (st.Message == nil) {
			t.Errorf("%s: message %v", c.step.Verdict, st.Message)
		}
	}
	if stageOf(&api.StepResult{Verdict: api.VerdictSkipped}, "") != nil {
		t.Error("a skipped step is a stage")
	}
}
