// Package gojudge serves the subset of go-judge's REST API that its real
// clients use (Hydro's judge, HOJ, PutongOJ's judger), on sandboxd's v1
// API through the Go client: POST /run, the file routes on sandboxd's
// file cache, GET /version and GET /config. docs/gateway.md lists what
// maps to what and what is not supported.
//
// A request becomes jobs this way:
//
//	cmd[] without pipeMapping -> one job per cmd, run at once; copyIn is
//	                             the job's files, files[0] its stdin,
//	                             copyOut its tracked files, copyOutCached
//	                             its keep_files
//	cmd[] with pipeMapping    -> one job of one interactive step: each cmd
//	                             a program ("c0", "c1", ...), each mapping
//	                             a pipe (proxy+name: capture_bytes = max),
//	                             each program in a private workspace with
//	                             its own copyIn files and its copyOut and
//	                             copyOutCached as its tracked_files
//
// The verdict of each program becomes one of go-judge's status strings
// (status.go). Field names, units (ns, bytes) and status strings are
// go-judge's exactly; the JSON is decoded as go-judge decodes it (unknown
// keys ignored), but a known field sandboxd cannot honour is a 400 naming
// it, never silently dropped.
//
// A host file ("src") is read only beneath the configured host_dirs, with
// openat2(RESOLVE_BENEATH), so that no symlink leads out of them; it goes
// to the daemon's file cache and from there into the job.
package gojudge
