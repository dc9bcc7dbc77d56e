// Package doctor checks that a host can run sandboxd's sandboxes, and says
// how to fix what it cannot: `sandboxd doctor`, and the daemon at start,
// which logs the checks when one fails.
//
// Each check reads the host (uname, /proc/sys, cgroupfs, /etc) and changes
// nothing; the one exception is the end-to-end sandbox, which the command
// starts through `sandboxd exec` (see cmd/sandboxd/doctor.go), leaving
// nothing behind. Paths are fields of Host so that tests can point them at
// files of their own.
package doctor
