package daemon

import (
	"math"
	"strings"
	"testing"

	"github.com/sandboxd/sandboxd/api"
)

func TestCompareModes(t *testing.T) {
	lines := stdoutCheck{mode: api.CompareLines}
	exact := stdoutCheck{mode: api.CompareExact}
	tokens := stdoutCheck{mode: api.CompareTokens}
	float := stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 1e-6}
	absOnly := stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 1e-300}
	relOnly := stdoutCheck{mode: api.CompareFloat, abs: 1e-300, rel: 1e-6}
	for _, tc := range []struct {
		name      string
		c         stdoutCheck
		got, want string
		ok        bool
	}{
		// lines: trailing whitespace of each line and at the end aside.
		{"lines equal", lines, "a b\nc\n", "a b\nc", true},
		{"lines trailing spaces", lines, "a  \t\nc\r\n\n\n", "a\nc", true},
		{"lines CRLF", lines, "1\r\n2\r\n", "1\n2\n", true},
		{"lines leading space counts", lines, " a", "a", false},
		{"lines inner space counts", lines, "a  b", "a b", false},
		{"lines blank line inside counts", lines, "a\n\nb", "a\nb", false},
		{"lines empty", lines, "", "", true},
		{"lines empty and newlines", lines, "\n\n", "", true},
		{"lines empty against text", lines, "", "x", false},

		// exact: the bytes.
		{"exact equal", exact, "a\n", "a\n", true},
		{"exact trailing newline", exact, "a\n", "a", false},
		{"exact CRLF", exact, "a\r\n", "a\n", false},
		{"exact empty", exact, "", "", true},
		{"exact NUL", exact, "a\x00", "a\x00", true},

		// tokens: whitespace-separated, any whitespace.
		{"tokens layout", tokens, "1 2\n3\r\n", "1\n2   3", true},
		{"tokens tabs and vt ff", tokens, "\t1\v2\f3", "1 2 3", true},
		{"tokens empty", tokens, "", "", true},
		{"tokens whitespace only", tokens, " \n\t", "", true},
		{"tokens empty against one", tokens, "", "0", false},
		{"tokens one more", tokens, "1 2 3", "1 2", false},
		{"tokens one fewer", tokens, "1 2", "1 2 3", false},
		{"tokens numbers as text", tokens, "1.0", "1", false},
		{"tokens case counts", tokens, "Yes", "YES", false},
		{"tokens NUL is no space", tokens, "a\x00b", "a b", false},

		// float: numeric tokens within abs or rel of the expected.
		{"float equal", float, "1.5 x", "1.5 x", true},
		{"float words exact", float, "yes 1", "YES 1", false},
		{"float abs edge", absOnly, "1.000001", "1", true},
		{"float abs edge below", absOnly, "0.999999", "1", true},
		{"float abs from zero", absOnly, "0.000001", "0", true},
		{"float abs from zero negative", absOnly, "-1e-6", "0", true},
		{"float abs past", absOnly, "1.0000011", "1", false},
		{"float abs past from zero", absOnly, "0.0000011", "0", false},
		{"float abs large values", absOnly, "1000000000.000001", "1000000000", true},
		{"float abs large values past", absOnly, "1000000000.00001", "1000000000", false},
		{"float rel edge", relOnly, "100.0001", "100", true},
		{"float rel edge below", relOnly, "99.9999", "100", true},
		{"float rel past", relOnly, "100.00011", "100", false},
		{"float rel of the expected", relOnly, "1e9", "1000001000", true},
		{"float rel huge", relOnly, "1.000001e300", "1e300", true},
		{"float rel huge past", relOnly, "1.0000011e300", "1e300", false},
		{"float rel tiny", relOnly, "1.000001e-300", "1e-300", true},
		{"float rel tiny past abs", relOnly, "3e-300", "1e-300", false},
		{"float either", float, "1000.0009", "1000", true},
		{"float neither", float, "1.000002", "1", false},
		{"float forms", float, "+1.0e+00 .5 5. -0", "1 0.5 5 0", true},
		{"float sign", float, "-1", "1", false},
		{"float NaN only NaN", float, "nan NaN -nan", "NaN nan nan", true},
		{"float NaN against number", float, "nan", "0", false},
		{"float number against NaN", float, "0", "nan", false},
		{"float inf", float, "inf -Infinity +INF", "Inf -inf infinity", true},
		{"float inf sign", float, "inf", "-inf", false},
		{"float inf against huge", float, "inf", "1.7976931348623157e308", false},
		{"float overflow is inf", float, "1e400", "inf", true},
		{"float underflow is zero", float, "1e-400", "0", true},
		{"float hex is text", float, "0x1p0", "1", false},
		{"float underscores are text", float, "1_000", "1000", false},
		{"float comma is text", float, "1,5", "1.5", false},
		{"float bad exponent is text", float, "1e", "1", false},
		{"float double sign is text", float, "--1", "1", false},
		{"float dot alone is text", float, ".", ".", true},
		{"float two signs inf is text", float, "+-inf", "-inf", false},
		{"float counts differ", float, "1 2", "1 2 3", false},
		{"float text against number", float, "one", "1", false},
		{"float empty", float, "", "", true},
		{"float CRLF", float, "0.1\r\n0.2\r\n", "0.1\n0.2", true},
	} {
		ok, why := tc.c.match(tc.got, tc.want)
		if ok != tc.ok {
			t.Errorf("%s: match(%q, %q) = %v (%s), want %v", tc.name, tc.got, tc.want, ok, why, tc.ok)
		}
		if ok && why != "" {
			t.Errorf("%s: a match with a reason %q", tc.name, why)
		}
	}
}

// The lines mode is the comparison expected_stdout always made: each
// line's trailing whitespace and the end's dropped.
func TestCompareLinesIsTodays(t *testing.T) {
	for _, s := range []string{"", "\n", "a", "a\n", " a \n\n", "a\r\nb\r\n", "a\t\v\f\r", "\n\na", "a\n \nb"} {
		got := normalizeOutput(s)
		lines := strings.Split(s, "\n")
		for i := range lines {
			lines[i] = strings.TrimRight(lines[i], " \t\r\f\v")
		}
		if want := strings.TrimRight(strings.Join(lines, "\n"), " \t\r\n\f\v"); got != want {
			t.Errorf("normalizeOutput(%q) = %q, want %q", s, got, want)
		}
	}
	if ok, why := (stdoutCheck{}).match("x \n", "x"); !ok || why != "" {
		t.Errorf("the zero check is not the lines mode: %v %q", ok, why)
	}
}

func TestCompareReasons(t *testing.T) {
	for _, tc := range []struct {
		c         stdoutCheck
		got, want string
		why       string
	}{
		{stdoutCheck{mode: api.CompareExact}, "abc", "abd", "stdout differs from the expected output at byte 2 (3 bytes, expected 3)"},
		{stdoutCheck{mode: api.CompareExact}, "ab", "abc", "stdout differs from the expected output at byte 2 (2 bytes, expected 3)"},
		{stdoutCheck{mode: api.CompareTokens}, "1 2 5", "1 2 4", `token 3 differs: "5", expected "4"`},
		{stdoutCheck{mode: api.CompareTokens}, "1", "1 2", `stdout has 1 tokens, expected more (token 2 is "2")`},
		{stdoutCheck{mode: api.CompareTokens}, "1 2", "1", `stdout has more tokens than the 1 expected (token 2 is "2")`},
		{stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 1e-6}, "0.5 0.7", "0.5 0.6", `token 2 differs: "0.7", expected "0.6"`},
		{stdoutCheck{mode: api.CompareTokens}, strings.Repeat("x", 100), "y", `token 1 differs: "` + strings.Repeat("x", 64) + `"..., expected "y"`},
		{stdoutCheck{mode: api.CompareLines}, "a", "b", ""},
	} {
		ok, why := tc.c.match(tc.got, tc.want)
		if ok || why != tc.why {
			t.Errorf("%s %q %q: %v %q, want false %q", tc.c.mode, tc.got, tc.want, ok, why, tc.why)
		}
	}
}

// Outputs of 16 MiB (a quarter of the largest output_bytes) compare in one pass,
// without copies in the token modes.
func TestCompareHugeOutputs(t *testing.T) {
	var b strings.Builder
	for b.Len() < 16<<20 {
		b.WriteString("3.14159265 42 word\n")
	}
	big := b.String()
	near := strings.ReplaceAll(big, "3.14159265", "3.14159295") // 3e-7 apart
	for _, mode := range []string{api.CompareLines, api.CompareExact, api.CompareTokens, api.CompareFloat} {
		c := stdoutCheck{mode: mode, abs: 1e-6, rel: 1e-6}
		if ok, why := c.match(big, big); !ok {
			t.Errorf("%s: 16 MiB against itself: %s", mode, why)
		}
		if ok, _ := c.match(big, big[:len(big)-2]+"X\n"); ok {
			t.Errorf("%s: last token changed, still matches", mode)
		}
	}
	if ok, why := (stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 1e-6}).match(near, big); !ok {
		t.Errorf("float: 16 MiB within tolerance: %s", why)
	}
	allocs := testing.AllocsPerRun(2, func() {
		stdoutCheck{mode: api.CompareFloat, abs: 1e-6, rel: 1e-6}.match(near, big)
	})
	if allocs > 10 {
		t.Errorf("float compare of 16 MiB: %.0f allocations", allocs)
	}
}

func TestParseNumber(t *testing.T) {
	for _, tc := range []struct {
		s  string
		v  float64
		ok bool
	}{
		{"0", 0, true}, {"-0", 0, true}, {"+3", 3, true}, {"1.5e3", 1500, true}, {"1E-3", 0.001, true},
		{".5", 0.5, true}, {"5.", 5, true}, {"-.5e+1", -5, true}, {"007", 7, true},
		{"1e400", math.Inf(1), true}, {"-1e400", math.Inf(-1), true}, {"1e-400", 0, true},
		{"inf", math.Inf(1), true}, {"-Infinity", math.Inf(-1), true}, {"+inf", math.Inf(1), true},
		{"", 0, false}, {"+", 0, false}, {".", 0, false}, {"e5", 0, false}, {"1e", 0, false}, {"1e+", 0, false},
		{"0x10", 0, false}, {"1_0", 0, false}, {"1.2.3", 0, false}, {"--1", 0, false}, {"++inf", 0, false},
		{"infinit", 0, false}, {"nana", 0, false}, {"1 ", 0, false}, {"１", 0, false},
	} {
		v, ok := parseNumber(tc.s)
		if ok != tc.ok || ok && v != tc.v {
			t.Errorf("parseNumber(%q) = %v %v, want %v %v", tc.s, v, ok, tc.v, tc.ok)
		}
	}
	for _, s := range []string{"nan", "NaN", "-nan", "+NAN"} {
		if v, ok := parseNumber(s); !ok || !math.IsNaN(v) {
			t.Errorf("parseNumber(%q) = %v %v, want NaN", s, v, ok)
		}
	}
}

// FuzzCompare: no mode panics; every mode matches a text with itself; the
// token modes are blind to how tokens are laid out; a match in a stricter
// mode is one in each looser mode.
func FuzzCompare(f *testing.F) {
	for _, seed := range [][2]string{
		{"1 2\n", "1\n2"}, {"", ""}, {"a\r\n", "a\n"}, {"nan inf", "NaN -inf"}, {"1e-6", "0"},
		{"0.1 0.2", "0.1000001 0.2"}, {"\x00\xff", "\xff"}, {"1e400", "inf"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, got, want string) {
		modes := []stdoutCheck{
			{mode: api.CompareExact}, {mode: api.CompareLines}, {mode: api.CompareTokens},
			{mode: api.CompareFloat, abs: 1e-6, rel: 1e-6},
		}
		prev := false
		for _, c := range modes {
			if ok, _ := c.match(got, got); !ok {
				t.Fatalf("%s: %q does not match itself", c.mode, got)
			}
			ok, _ := c.match(got, want)
			if prev && !ok {
				t.Fatalf("%s: %q %q match in a stricter mode, not here", c.mode, got, want)
			}
			prev = ok
		}
		relaid := strings.Join(strings.FieldsFunc(got, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) }), "\n")
		for _, c := range modes[2:] {
			if ok, _ := c.match(relaid, got); !ok {
				t.Fatalf("%s: %q laid out again as %q does not match", c.mode, got, relaid)
			}
		}
	})
}
