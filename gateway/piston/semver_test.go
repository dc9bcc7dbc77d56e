package piston

import "testing"

func TestPistonSemver(t *testing.T) {
	v, _ := parseVersion("3.11.2")
	for sel, want := range map[string]bool{
		"*": true, "": true, "3": true, "3.x": true, "3.11.x": true, "3.11.2": true, "3.11.3": false,
		"2": false, "^3.10": true, "^3.12": false, "~3.11": true, "~3.10": false, ">=3.8 <4": true,
		">3.11.2": false, ">=3.11.2": true, "<=3.11": true, "<3.11": false, "1.x || 3.x": true,
		"1.x || 2.x": false, "banana": false, "=3.11.2": true, "v3.11.2": true,
	} {
		if got := satisfies(v, sel); got != want {
			t.Errorf("3.11.2 in %q: %v, want %v", sel, got, want)
		}
	}
	if v, ok := parseVersion("20.20"); !ok || v.String() != "20.20.0" {
		t.Errorf("20.20: %v %v", v, ok)
	}
}
