// Package api holds the wire types of the sandboxd v1 API: the job a client
// sends (Job, its Steps, Files and Limits), what comes back (Result and its
// StepResults, the Events of a streamed run, the BatchLines of a batch,
// RunInfo, Info), and the error body (ErrorBody) with its closed set of
// codes. docs/api.md is the reference and docs/openapi.yaml the same API as
// an OpenAPI document; a daemon test fails when a JSON field here is missing
// there or the other way round.
//
// It is plain data: no I/O, nothing but the standard library, and it builds
// on every platform. The JSON names are the contract: fields may be added,
// never renamed. A zero Limits field means "not set" and is left out on the
// wire, where a limit sent is at least 1. Bounds and defaults come from the
// daemon's profiles (Limits.Validate and WithDefaults apply them). A program
// that fails is a Verdict in its StepResult, never an Error.
package api
