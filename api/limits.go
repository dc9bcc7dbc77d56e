package api

import "fmt"

// LimitField describes one field of Limits for validation and messages.
type LimitField struct {
	JSON string // the field's JSON name, e.g. "memory_bytes"
	Get  func(*Limits) *int64
}

// LimitFields lists every limit, in the order of docs/api.md.
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
	return nil
}

// WithDefaults returns l with every unset field taken from def.
func (l Limits) WithDefaults(def Limits) Limits {
	for _, f := range LimitFields {
		if p := f.Get(&l); *p == 0 {
			*p = *f.Get(&def)
		}
	}
	return l
}
