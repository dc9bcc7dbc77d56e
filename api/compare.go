package api

// Compare modes: how a step's stdout is compared with expected_stdout or
// expected_stdout_file (Step.Compare). docs/api.md gives the exact rules.
const (
	// CompareLines drops trailing whitespace from each line and at the
	// end, then compares: the default.
	CompareLines = "lines"
	// CompareExact compares the bytes.
	CompareExact = "exact"
	// CompareTokens compares the whitespace-separated tokens.
	CompareTokens = "tokens"
	// CompareFloat compares tokens, numeric ones within Step.FloatAbs or
	// Step.FloatRel (DefaultFloatTolerance each when left out).
	CompareFloat = "float"
)

// DefaultFloatTolerance is float_abs's and float_rel's default.
const DefaultFloatTolerance = 1e-6
