package daemon

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sandboxd/sandboxd/api"
)

// stdoutCheck is how a step's stdout is judged against its expected
// output: one of the api.Compare* modes, with the float tolerances.
type stdoutCheck struct {
	mode     string
	abs, rel float64
}

// match compares a step's stdout (got) with its expected output (want).
// When they differ, why says where, for the step's message; the lines mode
// says nothing, as it never did.
func (c stdoutCheck) match(got, want string) (ok bool, why string) {
	switch c.mode {
	case api.CompareExact:
		return matchExact(got, want)
	case api.CompareTokens:
		return matchTokens(got, want, nil)
	case api.CompareFloat:
		return matchTokens(got, want, func(g, w string) bool { return floatTokensMatch(g, w, c.abs, c.rel) })
	}
	return normalizeOutput(got) == normalizeOutput(want), ""
}

// normalizeOutput drops trailing whitespace on each line and at the end,
// the comparison of the lines mode.
func normalizeOutput(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r\f\v")
	}
	return strings.TrimRight(strings.Join(lines, "\n"), " \t\r\n\f\v")
}

func matchExact(got, want string) (bool, string) {
	if got == want {
		return true, ""
	}
	n := min(len(got), len(want))
	i := 0
	for i < n && got[i] == want[i] {
		i++
	}
	return false, fmt.Sprintf("stdout differs from the expected output at byte %d (%d bytes, expected %d)", i, len(got), len(want))
}

// isSpace is whitespace between tokens: C's isspace in the C locale.
func isSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f'
}

// tokens walks the whitespace-separated tokens of s without copying it.
type tokens struct {
	s   string
	pos int
}

// next is the next token, or false at the end.
func (t *tokens) next() (string, bool) {
	for t.pos < len(t.s) && isSpace(t.s[t.pos]) {
		t.pos++
	}
	if t.pos == len(t.s) {
		return "", false
	}
	start := t.pos
	for t.pos < len(t.s) && !isSpace(t.s[t.pos]) {
		t.pos++
	}
	return t.s[start:t.pos], true
}

// matchTokens compares the tokens of got and want one by one: equal as
// bytes, or (with same) as same says. Different counts never match.
func matchTokens(got, want string, same func(g, w string) bool) (bool, string) {
	gt, wt := tokens{s: got}, tokens{s: want}
	for i := 1; ; i++ {
		g, gok := gt.next()
		w, wok := wt.next()
		switch {
		case !gok && !wok:
			return true, ""
		case !gok:
			return false, fmt.Sprintf("stdout has %d tokens, expected more (token %d is %s)", i-1, i, quoteToken(w))
		case !wok:
			return false, fmt.Sprintf("stdout has more tokens than the %d expected (token %d is %s)", i-1, i, quoteToken(g))
		case g == w || same != nil && same(g, w):
			continue
		}
		return false, fmt.Sprintf("token %d differs: %s, expected %s", i, quoteToken(g), quoteToken(w))
	}
}

// quoteToken quotes a token for a message, cut to a readable length.
func quoteToken(s string) string {
	const max = 64
	if len(s) > max {
		return strconv.Quote(s[:max]) + "..."
	}
	return strconv.Quote(s)
}

// floatTokensMatch says whether two tokens that are not equal as bytes
// are equal as numbers: both numeric (parseNumber), and
//   - NaN only with NaN, an infinity only with the same infinity;
//   - finite: |g-w| <= abs or |g-w| <= rel*|w| (w is the expected), with a
//     slack of a few units in the last place of the larger, so that a
//     difference of exactly the tolerance as written in decimal (1.000001
//     against 1 with 1e-6) is within it although the doubles' difference
//     is not exactly it.
func floatTokensMatch(g, w string, abs, rel float64) bool {
	a, ok := parseNumber(g)
	if !ok {
		return false
	}
	b, ok := parseNumber(w)
	if !ok {
		return false
	}
	switch {
	case math.IsNaN(a) || math.IsNaN(b):
		return math.IsNaN(a) && math.IsNaN(b)
	case math.IsInf(a, 0) || math.IsInf(b, 0):
		return a == b
	}
	diff := math.Abs(a - b)
	slack := 4 * 0x1p-53 * max(math.Abs(a), math.Abs(b))
	return diff <= max(abs, rel*math.Abs(b))+slack
}

// parseNumber reads a numeric token: a decimal number ([+-], digits with
// an optional fraction, or a fraction alone, then an optional exponent:
// "3", "-0.5", ".5", "5.", "1e-6", "+2E+03"), or inf, infinity or nan in
// any case, with an optional sign. Anything else (hex, "1_000", "1,5") is
// not a number. A number beyond the range of a double is an infinity.
func parseNumber(s string) (float64, bool) {
	if isDecimal(s) {
		// The syntax is checked: its only error is a range one, with the
		// infinity or the zero it rounds to.
		v, _ := strconv.ParseFloat(s, 64)
		return v, true
	}
	sign, word := 1.0, strings.ToLower(s)
	if len(word) > 0 && (word[0] == '+' || word[0] == '-') {
		if word[0] == '-' {
			sign = -1
		}
		word = word[1:]
	}
	switch word {
	case "inf", "infinity":
		return math.Inf(int(sign)), true
	case "nan":
		return math.NaN(), true
	}
	return 0, false
}

// isDecimal is the decimal syntax of parseNumber.
func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i, digits = i+1, digits+1
	}
	if i < len(s) && s[i] == '.' {
		i++
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, digits = i+1, digits+1
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i, exp = i+1, exp+1
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}
