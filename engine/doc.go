// Package engine runs steps: one command in one sandbox (fresh namespaces,
// cgroups and a host uid of its own, a seccomp filter, a root built from
// its profile), watched to its end, measured and judged with one verdict.
// The daemon (package daemon) and `sandboxd exec` both use it. It knows
// nothing of HTTP, jobs, queues, config files or log libraries: it imports
// none of them.
//
// # What it needs and owns
//
// It runs as root on a kernel with user namespaces (New checks). On the
// host it uses, and owns while it runs:
//   - the host uids Config.UIDBase..UIDBase+UIDCount-1, one per live
//     sandbox, and UIDBase-1 for every sandbox's init; a uid in use is a
//     byte lock in /run/sandboxd-uids.lock, so no two sandboxd processes
//     ever hand out the same one;
//   - Config.StateDir/root, the empty directory each new root is mounted on;
//   - run cgroups named Options.RunPrefix+N under Config.CgroupSubtree
//     (package cgroup). It does not lock the subtree; the daemon does.
//
// # A step
//
// RunStep takes a sandbox (a warm one from its profile's pool, or one made
// now: uid, cgroups, an init that builds the root), sets the step's limits,
// starts the program, and watches it (wall clock, CPU budget, memory, output
// caps, forbidden system calls) until it ends or is killed. Then it kills
// whatever is left, reads the cgroup statistics and decides the verdict
// (decide, on plain data). A program's failure is a verdict; RunStep's error
// means the sandbox itself failed (internal_error). A sandbox runs one
// command only and is torn down in the background after it.
//
// The step's cpus limit is its cgroup's CPU quota (a rate, which kills
// nothing: the CPU budget and the wall clock still decide), and, while
// the host has CPUs enough, the CPUs its program runs on: ceil(cpus) of
// them, those the engine's running steps take least of (cpuPlacer), so
// that steps do not share a CPU while they need not.
//
// RunPrograms runs several programs at once (an interactive step), each
// through RunStep in a sandbox of its own, with the pipes its caller made
// as their stdio (StepRequest.HandOver: RunStep closes the caller's copies
// once the sandbox has them). The programs on one workdir run under one
// uid, acquired for them, so that each may write it.
//
// # Cleanup
//
// When RunStep returns, no process of the step runs. New leaves nothing
// held when it fails. Close stops the pools and gives back everything the
// engine holds: warm sandboxes, the teardowns of used ones, the cgroup
// subtree and its lock, the uid lock file; a second Close does nothing.
package engine
