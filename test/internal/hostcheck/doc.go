// Package hostcheck looks at the host for what the tests' sandboxes leave
// behind: processes under the test process's sandbox uids and run cgroups
// under its subtrees. The daemon keeps warm sandboxes (an init waiting for
// its command, in a run cgroup of its own) while it runs; those are told
// apart from leftovers. What other sandboxd processes run on the host (a
// service, another test process) is never looked at: each test process
// gives its daemons and `sandboxd exec` runs a uid range of their own
// (Config, ExecFlags).
package hostcheck
