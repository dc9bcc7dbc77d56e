// Package web serves students' code in the browser: a WebSocket protocol
// that streams a program's output line by line, and a playground page
// that speaks it, over a sandboxd daemon through the Go client only.
//
//	GET /           the playground page (embedded: HTML, CSS, JS; no CDN)
//	GET /languages  the daemon's available languages, for the page's menu
//	GET /health     200 while the daemon answers its ping, else 503
//	GET /ws/python  the WebSocket protocol, language python by default
//	GET /ws         the same protocol, any language the daemon has
//
// One connection runs one program at a time, each an execute's v1 job in
// a fresh sandbox (the profile's compile step, if any, then its run step,
// whose stdin is the job's stdin pipe):
//
//	browser                  gateway (session)                daemon
//	  |-- execute ------------->|-- POST /v1/run (ndjson) ------->|
//	  |<-- execution_start -----|<-- started ---------------------|
//	  |<-- stdout/stderr (line)-|<-- stdout/stderr (chunks) ------|
//	  |-- stdin --------------->|-- POST /v1/runs/{id}/stdin ---->|
//	  |-- stop ---------------->|-- DELETE /v1/runs/{id} -------->|
//	  |<-- execution_complete --|<-- finished --------------------|
//	       | timeout | error
//
// What the session guarantees: its writes never wait on the browser (a
// bounded queue; a client that lets it fill is dropped and its job
// cancelled); a closed connection cancels its job; the number of
// connections is bounded. The wire format is in docs/gateway.md.
package web
