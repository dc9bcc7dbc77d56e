// Command sandboxd-bench is `make bench`: what a sandbox costs, measured
// from outside against bare fork/exec of the same command and against the
// kernel's namespace floor, on the same machine in the same run.
//
//	sandboxd-bench [-sandboxd bin/sandboxd] [-runs 500] [-batch 1000] [-cached-runs 100] [-judge 40]
//		[-scale full|quick|tiny|off] [-scale-parts LIST] [-only-scale]
//		[-json run/bench/bench.json] [-plots DIR] [-quick] [-check]
//
// For /bin/true and python3 -c 'print(1)' it times four ways of running
// the command:
//
//	bare           os/exec from this small Go program
//	ns floor       the same in fresh user (root mapped to nobody), pid, mount,
//	               uts, ipc and network namespaces, and nothing else
//	sandboxd exec  one `sandboxd exec -- CMD` process per run
//	POST /v1/run   one request per run to a daemon this program starts, with
//	               its own socket, state dir and cgroup subtree
//
// each one at a time (p50 and p99 latency) and with two workers (runs/s),
// in interleaved rounds. Then one POST /v1/batch of python jobs, the CPU
// overshoot past a 200 ms CPU limit, and the spread of the CPU time charged
// for one fixed busy loop. Then two judge workloads: a program reading all
// of a 256 MiB input from the daemon's file cache against a 1 KiB one
// (stdin_cached and files[].cached, beside bare reads of the same files),
// and submissions of a C++ solution (one g++ compile kept in the cache, 20
// tests) through the daemon against a bash script doing the same with no
// sandbox. Then the scaling figures (scale_linux.go): how what the daemon
// adds grows with the work (stdout, input, files and steps at a few sizes
// each, beside the same work done bare), batches of up to 100,000 jobs
// with the daemon's RSS and throughput along them, 10,000 jobs queued at
// once while GET /_ping is timed, and latency and throughput against 1, 2,
// 4 and 8 clients. It prints a table, checks the speed targets (PASS or
// MISS), writes every figure as JSON and draws the scaling figures as PNG
// plots (gonum's plot package, linked into this program alone). It needs
// root, gcc, g++ and python3.
package main
