// Package client is the Go client of the sandboxd v1 API (docs/api.md): HTTP/1.1
// over the daemon's Unix socket, the way `curl --unix-socket SOCK
// http://sandboxd/v1/...` talks to it. sandboxctl is built on it, and so are
// the daemon's end-to-end tests.
//
// There is no client-wide timeout: a run may take as long as its limits
// allow. Every call takes a context; cancelling it closes the connection,
// and the daemon cancels a job whose client went away.
//
// Errors:
//   - a non-2xx answer is a *StatusError, which unwraps to the *api.Error
//     of the body (errors.As works for both);
//   - no daemon on the socket is an *UnreachableError;
//   - an "error" event of a streamed run, or an error line of a batch that
//     ends the batch, is an *api.Error;
//   - anything else (a broken stream, a cancelled context) is wrapped with
//     the method and path it happened on.
//
// What the client needs from the server:
//
//	POST /v1/run    Accept: application/x-ndjson  ->  one event a line,
//	                flushed after every line; "finished" or "error" last.
//	POST /v1/batch  chunked NDJSON body           ->  one line per job as it
//	                finishes, flushed, while the body is still arriving
//	                (a Go server must call EnableFullDuplex on its
//	                ResponseController); the summary line last.
//
// A streamed answer is read line by line, so a line may be of any length.
//
// A call whose body is in memory, up to 64 KiB, goes over a connection the
// client keeps, written and read on the caller's goroutine rather than
// through net/http's Transport: half the client's CPU per run (conn.go says
// why, with the figures). Streams and larger bodies use net/http.
package client
