// Package promtext is a Prometheus text page (GET /metrics) of the daemon
// or the gateway: families of series kept by github.com/VictoriaMetrics/metrics,
// each under the HELP and TYPE lines that library does not write, then the
// library's Go and process metrics.
//
// Why that library and not Prometheus' own client: every sandboxd
// invocation, a one-shot `sandboxd exec` included, runs the init of every
// package linked into the binary, and client_golang's (with protobuf,
// procfs and its default registry) took about 1.4 ms at each start
// (docs/benchmarks.md, "Where a one-shot `sandboxd exec`'s time goes").
//
// A Page is built once, family by family, before it is served; series may
// then be added to a family's set and updated from any goroutine.
package promtext
