// Package daemon is `sandboxd serve`: the v1 API (package api) over HTTP on
// a Unix socket, on one engine (package engine) that runs the steps.
//
// # Layers
//
// Top down, each using only the ones below:
//   - HTTP: the socket, peer credentials and the caller check
//     (listen_linux.go); the intake (intake_linux.go): every connection
//     accepted at once into a line of the daemon's own and handed to
//     net/http a few at a time; the route table, error answers with one
//     map from error codes to HTTP statuses (routes_linux.go); request
//     bodies under one budget, timeouts, streamed answers; a POST /v1/run
//     that must wait taken from net/http while it waits
//     (detach_linux.go); Serve and its drain.
//   - Jobs: a body is decoded strictly (decode.go) and checked against the
//     profiles (Daemon.check) into a checkedJob; admitted (the registry, and
//     a fair queue per caller: fairqueue.go); run step by step in one
//     workspace (job_linux.go), each step's stdout written to its
//     stdout_to file and compared with its expected output
//     (checker_linux.go, compare.go); its result kept for GET /v1/runs/{id}.
//   - The engine runs each step; while a job runs the daemon holds the
//     engine's pools back (Engine.Hold), so that refills wait for the CPUs.
//
// # Decoding a job in one pass
//
// A job's body is decoded by onePass (onepass.go), this package's own
// decoder, rather than by encoding/json alone: the strict check (unknown
// fields refused, naming the field) and json.Unmarshal after it went over
// the body about six times, and a 64 MiB inline stdin cost the daemon
// 1.3 s of CPU (20 ms a MiB) against 8 ms for a bare read of it. onePass
// decodes what the job's types hold in one pass and unescapes a large
// string once into its destination: 2.8 ms a MiB, a 16 MiB stdin decoded
// in 17 ms instead of 310 (docs/benchmarks.md, "What grew faster than the
// work"). It only accepts: on anything it does not handle, or that the
// strict check would refuse, it gives up and the old path runs, so errors
// are the old path's, word for word. onepass_test.go holds it to the old
// path on hand-made bodies, every cut of one, and random mutations.
//
// # Thousands of requests at once
//
// A burst of connections (10,000 POST /v1/run at once) must neither
// fill the kernel's listen backlog, which refuses connects with EAGAIN,
// nor make a request on a kept connection (a /_ping, /v1/info, /metrics)
// wait behind all of them for the daemon's one P. The intake listener
// accepts every connection as it comes and lets at most 8 per P be read,
// decoded and admitted at once; it is woken through the network poller,
// so that between two rounds of intake the runtime polls the network and
// runs what came on kept connections (intake_linux.go says why a channel
// would not do). A job that must wait leaves net/http while it waits
// (detach_linux.go): its connection's buffers and its handler's stack are
// given back, a goroutine parked in a one-byte read notices its client
// leaving, and its answer is written as net/http would, after which the
// connection goes back to net/http for the client's next request. Once a
// queue of 1,000 or more has emptied, the heap that held it is given back
// to the kernel at once. The figures are in docs/benchmarks.md ("The
// queue").
//
// # Configuration and reload
//
// The configuration in force is an immutable snapshot (reload.go): the
// config and the profiles built from it, read by a request once and kept
// by its job (checkedJob.conf) to its end. Reload (SIGHUP) builds a new
// one from the file and swaps it atomically; restart-only keys keep their
// values in force; a file with an error is refused and nothing changes.
// The scheduler, the results kept, the bodies' budget and the engine's
// warm pools follow the new snapshot (reload_linux.go).
//
// # Metrics
//
// GET /metrics is a promtext.Page (metrics.go) on
// github.com/VictoriaMetrics/metrics, not Prometheus' own Go client. The
// daemon, the gateway and a one-shot `sandboxd exec` are one binary, and
// Go runs the init of every linked package at every start: client_golang's
// (protobuf descriptors, procfs' regular expressions, its default
// registry's collectors) was about 1.4 ms of each. Without it `sandboxd
// version` starts in 3.4-3.5 ms instead of 4.6-4.7 (p50 at load 3-4; an
// empty Go program 1.8), with about 1 ms less CPU (docs/benchmarks.md,
// "The binary's start without client_golang"). The series keep their
// names, types, labels, HELP texts and buckets; the go_* and process_*
// series are the library's (docs/api.md, "Go and process metrics").
//
// # What it owns
//
// The state dir, locked (daemon.lock) while it runs: ws/ holds the jobs'
// workspaces, on a tmpfs of the daemon's own unless the state dir is one.
// The cgroup subtree, locked in every hierarchy; its runs are named "d-N".
// A second daemon on either is refused, naming the holder. At start, New
// reclaims what a crashed predecessor left: run groups with its prefix (and
// their processes) and workspaces.
//
// # Cleanup
//
// New leaves nothing held when it fails. When its context ends Serve
// drains: new jobs are refused and /_ping answers 503; running jobs finish
// within shutdown_grace and are then cancelled. Then, and also when it
// fails before serving, Serve removes the socket and gives back everything
// New acquired, in reverse order: workspaces, the engine with the subtree
// and its lock, the state dir's lock. A job's processes are gone when its result is out; its
// workspace is removed just after, and Serve waits for that.
package daemon
