package piston

import (
	"strconv"
	"strings"
)

// version is a runtime's version, major.minor.patch; a shorter one read
// from a toolchain ("3.11") has zeros for the rest.
type version [3]int

func parseVersion(s string) (version, bool) {
	var v version
	parts := strings.SplitN(strings.TrimPrefix(s, "v"), ".", 3)
	for i, p := range parts {
		if i == 2 {
			p, _, _ = strings.Cut(p, "-")
		}
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func (v version) String() string {
	return strconv.Itoa(v[0]) + "." + strconv.Itoa(v[1]) + "." + strconv.Itoa(v[2])
}

func (v version) cmp(w version) int {
	for i := range v {
		if v[i] != w[i] {
			if v[i] < w[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// satisfies says whether v is within the range sel, as node's semver reads
// the selectors Piston's clients send: "*", "3", "3.x", "3.11.2", "^3.10",
// "~3.11", ">=3.8 <4", "1.x || 2.x". A selector it cannot read matches
// nothing.
func satisfies(v version, sel string) bool {
	for _, alt := range strings.Split(sel, "||") {
		fields := strings.Fields(alt)
		if len(fields) == 0 {
			fields = []string{"*"}
		}
		ok := true
		for _, f := range fields {
			if !satisfiesOne(v, f) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// satisfiesOne is one comparator or partial version of a range.
func satisfiesOne(v version, c string) bool {
	op := ""
	for _, o := range []string{">=", "<=", ">", "<", "=", "^", "~"} {
		if strings.HasPrefix(c, o) {
			op, c = o, strings.TrimSpace(c[len(o):])
			break
		}
	}
	// A partial version: the parts given, the rest free ("x", "*", absent).
	var lo version
	n := 0
	for _, p := range strings.Split(strings.TrimPrefix(c, "v"), ".") {
		if p == "x" || p == "X" || p == "*" {
			break
		}
		if n == 3 {
			return false
		}
		if n == 2 {
			p, _, _ = strings.Cut(p, "-")
		}
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return false
		}
		lo[n] = x
		n++
	}
	// hi is the first version past the partial one (n parts fixed).
	hi := lo
	switch n {
	case 0:
		hi = version{1 << 30}
	case 1:
		hi = version{lo[0] + 1}
	case 2:
		hi = version{lo[0], lo[1] + 1}
	case 3:
		hi = version{lo[0], lo[1], lo[2] + 1}
	}
	switch op {
	case "", "=":
		return v.cmp(lo) >= 0 && v.cmp(hi) < 0
	case ">=":
		return v.cmp(lo) >= 0
	case ">":
		return v.cmp(hi) >= 0
	case "<":
		return v.cmp(lo) < 0
	case "<=":
		return v.cmp(hi) < 0
	case "~": // the minor fixed if given, else the major
		if n >= 2 {
			hi = version{lo[0], lo[1] + 1}
		}
		return v.cmp(lo) >= 0 && v.cmp(hi) < 0
	case "^": // the first nonzero part fixed
		switch {
		case lo[0] > 0 || n <= 1:
			hi = version{lo[0] + 1}
		case lo[1] > 0 || n == 2:
			hi = version{0, lo[1] + 1}
		default:
			hi = version{0, 0, lo[2] + 1}
		}
		return v.cmp(lo) >= 0 && v.cmp(hi) < 0
	}
	return false
}
