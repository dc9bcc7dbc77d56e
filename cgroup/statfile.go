package cgroup

import (
	"bytes"
	"errors"
	"strconv"
)

// The parsers here read the kernel's small text files in place: no strings
// are built, so the polled paths (CPUUsage, OOMKills) do not allocate.

var (
	errNoKey    = errors.New("key not found")
	errBadValue = errors.New("value is not a non-negative integer")
)

// parseCount parses a decimal non-negative integer surrounded by optional
// ASCII white space, as in cpuacct.usage or memory.peak ("12345\n").
func parseCount(b []byte) (int64, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return 0, errBadValue
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errBadValue
		}
		d := int64(c - '0')
		if v > (1<<63-1-d)/10 {
			return 0, errBadValue
		}
		v = v*10 + d
	}
	return v, nil
}

// keyedValue finds the line "key value" in a flat keyed file (cpu.stat,
// memory.events, memory.oom_control, pids.events) and parses its value.
func keyedValue(data []byte, key string) (int64, error) {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) > len(key) && string(line[:len(key)]) == key && line[len(key)] == ' ' {
			return parseCount(line[len(key)+1:])
		}
	}
	return 0, errNoKey
}

// formatLimit renders a limit for a cgroup file.
func formatLimit(v int64) string { return strconv.FormatInt(v, 10) }
