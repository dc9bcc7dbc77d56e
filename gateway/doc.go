// Package gateway serves foreign sandbox protocols over TCP and turns each
// request into v1 jobs on the daemon's Unix socket, through the Go client
// (api/client). It is the core of `sandboxd gateway`: the config, the
// listeners, the Bearer token, the metrics and the request log. Each
// protocol is a package of its own exporting an http.Handler: gateway/gojudge,
// gateway/piston, and gateway/web (the browser playground and its
// WebSocket, whose listener also takes the token as a query parameter or
// cookie, as a browser's WebSocket cannot send the header).
//
// It depends on the api packages and the protocol packages only, never on
// the daemon's or the engine's internals: a gateway is one more client of
// the daemon, with the daemon's checks and limits.
//
//	judge --HTTP--> gateway (protocol package) --v1 over the socket--> daemon
//
// Without a token it listens on loopback addresses only: anyone who can
// reach it can run programs and read the files of host_dirs.
package gateway
