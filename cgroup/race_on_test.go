//go:build race

package cgroup

// The race detector's instrumentation makes stack buffers escape.
const raceEnabled = true
