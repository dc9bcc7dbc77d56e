// Package test holds the end-to-end tests of sandboxd: the real binary, run
// as root on the real kernel, with real namespaces, cgroups and seccomp.
// The C programs they run inside sandboxes are in testdata/, compiled with
// the host's gcc when the tests start.
package test
