// Package piston serves Piston's v2 API (github.com/engineer-man/piston,
// docs/api-v2.md) over a sandboxd daemon, through the Go client only:
//
//	GET  /api/v2/runtimes  the daemon's available language profiles
//	                       (GET /v1/info's languages)
//	POST /api/v2/execute   one v1 job: the files into the workspace, the
//	                       profile's compile step (if any), then its run
//	                       step with args and stdin, stop_on failure
//
// Each execute is a fresh sandbox per stage, as Piston's isolate boxes
// are. Field names, defaults and status codes are Piston's; what differs
// is in docs/gateway.md.
package piston
