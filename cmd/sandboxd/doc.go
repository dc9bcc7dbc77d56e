// Command sandboxd runs commands in sandboxes: as a daemon serving the v1
// API (package daemon), or once from the command line (package engine,
// without the daemon). serve and exec run as root.
//
//	sandboxd serve [--socket PATH] [--config FILE]   the daemon: the v1 API on a Unix socket
//	sandboxd exec [flags] -- ARGV...                 run one command in a sandbox, print its result as JSON
//	sandboxd doctor [--config FILE] [--json]         check that this host can run sandboxes
//	sandboxd version                                 print the version
//
// `make build` embeds the helper (cmd/sandboxd-helper, build tag
// embedhelper). Built without it, the same binary re-executes itself as
// the helper: the process that clones every sandbox's init.
package main
