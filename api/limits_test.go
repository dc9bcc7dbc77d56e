package api

import (
	"math"
	"strings"
	"testing"
)

func TestLimitsValidate(t *testing.T) {
	max := Limits{CPUTimeMS: 1000, MemoryBytes: 1 << 30, CPUs: 2}
	name := func(f string) string { return "steps[0].limits." + f }
	for _, tc := range []struct {
		l    Limits
		want string // "" = valid
	}{
		{Limits{}, ""},
		{Limits{CPUTimeMS: 1000, MemoryBytes: 1 << 30, PIDs: 1 << 40}, ""},
		{Limits{CPUTimeMS: 1001}, "steps[0].limits.cpu_time_ms: 1001 is above the maximum 1000"},
		{Limits{MemoryBytes: -1}, "steps[0].limits.memory_bytes: must be positive"},
		{Limits{StackBytes: -5}, "steps[0].limits.stack_bytes: must be positive"},
		{Limits{MemoryBytes: MinMemoryBytes}, ""},
		{Limits{MemoryBytes: MinMemoryBytes - 1}, "steps[0].limits.memory_bytes: 4194303 is below the minimum 4194304"},
		{Limits{MemoryBytes: 1}, "steps[0].limits.memory_bytes: 1 is below the minimum 4194304"},
		{Limits{CPUs: 2}, ""},
		{Limits{CPUs: 0.01}, ""},
		{Limits{CPUs: 2.5}, "steps[0].limits.cpus: 2.5 is above the maximum 2"},
		{Limits{CPUs: 0.005}, "steps[0].limits.cpus: 0.005 is below the minimum 0.01"},
		{Limits{CPUs: -1}, "steps[0].limits.cpus: must be positive, got -1"},
		{Limits{CPUs: math.NaN()}, "steps[0].limits.cpus: must be a number of CPUs, got NaN"},
		{Limits{CPUs: math.Inf(1)}, "steps[0].limits.cpus: must be a number of CPUs, got +Inf"},
	} {
		err := tc.l.Validate(max, name)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.l, err)
		case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want %q", tc.l, err, tc.want)
		}
	}
}

func TestLimitsWithDefaults(t *testing.T) {
	got := Limits{CPUTimeMS: 5}.WithDefaults(Limits{CPUTimeMS: 1, WallTimeMS: 2, PIDs: 3, CPUs: 1})
	if got != (Limits{CPUTimeMS: 5, WallTimeMS: 2, PIDs: 3, CPUs: 1}) {
		t.Fatalf("got %+v", got)
	}
	if got := (Limits{CPUs: 0.5}).WithDefaults(Limits{CPUs: 1}); got.CPUs != 0.5 {
		t.Fatalf("cpus set: got %+v", got)
	}
}

func TestLimitFieldsCoverEveryField(t *testing.T) {
	var l Limits
	for i, f := range LimitFields {
		*f.Get(&l) = int64(i + 1)
	}
	if l.CPUTimeMS == 0 || l.WallTimeMS == 0 || l.MemoryBytes == 0 || l.PIDs == 0 || l.OutputBytes == 0 ||
		l.FileSizeBytes == 0 || l.OpenFiles == 0 || l.StackBytes == 0 {
		t.Fatalf("a field of Limits is missing from LimitFields: %+v", l)
	}
}
