package api

import (
	"fmt"
	"math"
)

// LimitField describes one field of Limits for validation and messages.
type LimitField struct {
	JSON string // the field's JSON name, e.g. "memory_bytes"
	Get  func(*Limits) *int64
}

// LimitFields lists every whole-number limit, in the order of docs/api.md;
// cpus, a decimal, comes after them.
var LimitFields = []LimitField{
	{"cpu_time_ms", func(l *Limits) *int64 { return &l.CPUTimeMS }},
	{"wall_time_ms", func(l *Limits) *int64 { return &l.WallTimeMS }},
	{"memory_bytes", func(l *Limits) *int64 { return &l.MemoryBytes }},
	{"pids", func(l *Limits) *int64 { return &l.PIDs }},
	{"output_bytes", func(l *Limits) *int64 { return &l.OutputBytes }},
	{"file_size_bytes", func(l *Limits) *int64 { return &l.FileSizeBytes }},
	{"open_files", func(l *Limits) *int64 { return &l.OpenFiles }},
	{"stack_bytes", func(l *Limits) *int64 { return &l.StackBytes }},
}

// MinMemoryBytes is the least memory_bytes a step or a profile may set.
// Until its exec takes hold, a sandbox's program's process shares the
// helper's memory (nsjail), and the kernel's OOM killer ends every process
// that shares the memory of the one it kills: a limit that the process's
// start and its exec arguments (up to 2 MiB) could reach would end the
// helper and every sandbox with it. 4 MiB leaves that start room.
const MinMemoryBytes = 4 << 20

// MinCPUs is the least cpus a step or a profile may set: a quota of 1 ms
// in each 100 ms period, the least the kernel enforces.
const MinCPUs = 0.01

// CPUsField is the JSON name of Limits.CPUs.
const CPUsField = "cpus"

// Validate checks limits against the maximum. A zero field is "not set".
// name turns a field's JSON name into the name the caller knows it by
// (e.g. "steps[0].limits.memory_bytes" or "--memory-bytes"); the message
// starts with it.
func (l Limits) Validate(max Limits, name func(field string) string) error {
	for _, f := range LimitFields {
		v, m := *f.Get(&l), *f.Get(&max)
		switch {
		case v < 0:
			return fmt.Errorf("%s: must be positive, got %d", name(f.JSON), v)
		case f.JSON == "memory_bytes" && v > 0 && v < MinMemoryBytes:
			return fmt.Errorf("%s: %d is below the minimum %d", name(f.JSON), v, MinMemoryBytes)
		case m > 0 && v > m:
			return fmt.Errorf("%s: %d is above the maximum %d", name(f.JSON), v, m)
		}
	}
	switch v, m := l.CPUs, max.CPUs; {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Errorf("%s: must be a number of CPUs, got %g", name(CPUsField), v)
	case v < 0:
		return fmt.Errorf("%s: must be positive, got %g", name(CPUsField), v)
	case v > 0 && v < MinCPUs:
		return fmt.Errorf("%s: %g is below the minimum %g", name(CPUsField), v, MinCPUs)
	case m > 0 && v > m:
		return fmt.Errorf("%s: %g is above the maximum %g", name(CPUsField), v, m)
	}
	return nil
}

// WithDefaults returns l with every unset field taken from def.
func (l Limits) WithDefaults(def Limits) Limits {
	for _, f := range LimitFields {
		if p := f.Get(&l); *p == 0 {
			*p = *f.Get(&def)
		}
	}
	if l.CPUs == 0 {
		l.CPUs = def.CPUs
	}
	return l
}
