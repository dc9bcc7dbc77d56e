package gojudge

import (
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestConvertResult(t *testing.T) {
	for _, tc := range []struct {
		in     api.StepResult
		status Status
		exit   int
		err    string
	}{
		{api.StepResult{Verdict: api.VerdictOK}, StatusAccepted, 0, ""},
		{api.StepResult{Verdict: api.VerdictNonzeroExit, ExitCode: 3}, StatusNonzeroExitStatus, 3, ""},
		{api.StepResult{Verdict: api.VerdictSignaled, Signal: "SIGSEGV"}, StatusSignalled, 11, ""},
		{api.StepResult{Verdict: api.VerdictSignaled, Signal: "SIGABRT"}, StatusSignalled, 6, ""},
		{api.StepResult{Verdict: api.VerdictCPUTimeLimit, Signal: "SIGKILL"}, StatusTimeLimitExceeded, 9, ""},
		{api.StepResult{Verdict: api.VerdictWallTimeLimit, Signal: "SIGKILL"}, StatusTimeLimitExceeded, 9, ""},
		{api.StepResult{Verdict: api.VerdictMemoryLimit, Signal: "SIGKILL"}, StatusMemoryLimitExceeded, 9, ""},
		{api.StepResult{Verdict: api.VerdictOutputLimit}, StatusOutputLimitExceeded, 0, ""},
		{api.StepResult{Verdict: api.VerdictSyscallBlocked, Signal: "SIGKILL", Message: "blocked system call: ptrace"},
			StatusSignalled, 31, "blocked system call: ptrace"},
		{api.StepResult{Verdict: api.VerdictExecFailed, Message: "exec /x: no such file or directory"},
			StatusInternalError, 0, "exec /x: no such file or directory"},
		{api.StepResult{Verdict: api.VerdictInternalError, Message: "sandbox failed"}, StatusInternalError, 0, "sandbox failed"},
		{api.StepResult{Verdict: api.VerdictCancelled}, StatusInternalError, 0, "sandboxd: cancelled"},
		{api.StepResult{Verdict: api.VerdictSkipped}, StatusInternalError, 0, "sandboxd: skipped"},
	} {
		r := convertResult(tc.in)
		if r.Status != tc.status || r.ExitStatus != tc.exit || r.Error != tc.err {
			t.Errorf("%s: %q %d %q, want %q %d %q", tc.in.Verdict, r.Status, r.ExitStatus, r.Error, tc.status, tc.exit, tc.err)
		}
	}
	// go-judge's units: ns and bytes.
	r := convertResult(api.StepResult{Verdict: api.VerdictOK, CPUTimeMS: 1.5, WallTimeMS: 2.000001, MemoryPeakBytes: 4096})
	if r.Time != 1_500_000 || r.RunTime != 2_000_001 || r.Memory != 4096 {
		t.Errorf("measurements: time %d runTime %d memory %d", r.Time, r.RunTime, r.Memory)
	}
}

func TestConvertLimits(t *testing.T) {
	field := func(f string) string { return "cmd[0]." + f }
	for _, tc := range []struct {
		cmd  Cmd
		want api.Limits
		err  string
	}{
		{Cmd{}, api.Limits{}, ""},
		{Cmd{CPULimit: 1_000_000_000, ClockLimit: 2_500_000_001, MemoryLimit: 256 << 20, StackLimit: 8 << 20, ProcLimit: 50},
			api.Limits{CPUTimeMS: 1000, WallTimeMS: 2501, MemoryBytes: 256 << 20, StackBytes: 8 << 20, PIDs: 50}, ""},
		{Cmd{RealCPULimit: 3_000_000_000, ClockLimit: 1_000_000_000}, api.Limits{WallTimeMS: 3000}, ""},
		{Cmd{MemoryLimit: 1 << 20}, api.Limits{MemoryBytes: api.MinMemoryBytes}, ""},
		{Cmd{CPULimit: 18446744073709551615}, api.Limits{CPUTimeMS: 18446744073710}, ""},
		{Cmd{CPULimit: 1000}, api.Limits{}, "cmd[0].cpuLimit: 1000 ns is less than 1 ms"},
		{Cmd{ClockLimit: 999_999}, api.Limits{}, "cmd[0].clockLimit: 999999 ns"},
		{Cmd{MemoryLimit: 256}, api.Limits{}, "cmd[0].memoryLimit: 256 bytes is less than 1 MiB"},
		{Cmd{MemoryLimit: 1 << 63}, api.Limits{}, "cmd[0].memoryLimit: 9223372036854775808 is out of range"},
		{Cmd{ProcLimit: 1 << 63}, api.Limits{}, "cmd[0].procLimit: 9223372036854775808 is out of range"},
	} {
		got, err := convertLimits(&tc.cmd, field)
		if tc.err != "" {
			if err == nil || len(err.Error()) < len(tc.err) || err.Error()[:len(tc.err)] != tc.err {
				t.Errorf("%+v: %v, want %q", tc.cmd, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %+v, %v; want %+v", tc.cmd, got, err, tc.want)
		}
	}
}

func TestParseOut(t *testing.T) {
	got := parseOut([]string{"stdout", "out.txt?", "a?b"})
	want := []outFile{{"stdout", false}, {"out.txt", true}, {"a?b", false}}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("parseOut[%d]: %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestCheckPipes(t *testing.T) {
	two := []Cmd{{}, {}}
	pm := func(ii, ifd, oi, ofd int) PipeMap {
		return PipeMap{In: PipeIndex{ii, ifd}, Out: PipeIndex{oi, ofd}}
	}
	piped, err := checkPipes(two, []PipeMap{pm(0, 1, 1, 0), pm(1, 1, 0, 0)})
	if err != nil || !piped[0][1] || !piped[0][0] || !piped[1][0] || !piped[1][1] || piped[0][2] {
		t.Errorf("a pair: %v, %v", piped, err)
	}
	for _, tc := range []struct {
		cmds  []Cmd
		pipes []PipeMap
		want  string
	}{
		{[]Cmd{{}}, []PipeMap{pm(0, 1, 0, 0)}, "pipeMapping: sandboxd joins 2 to 8 cmds"},
		{make([]Cmd, 9), []PipeMap{pm(0, 1, 1, 0)}, "this request has 9"},
		{two, []PipeMap{pm(0, 1, 2, 0)}, "pipeMapping[0].out.index: 2 is not a cmd"},
		{two, []PipeMap{pm(0, 10, 1, 0)}, "pipeMapping[0].in.fd: 10"},
		{two, []PipeMap{pm(0, 1, 1, 0), pm(0, 1, 1, 3)}, "pipeMapping[1].in: cmd 0's fd 1 is in another pipe"},
	} {
		if _, err := checkPipes(tc.cmds, tc.pipes); err == nil || !contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.pipes, err, tc.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
