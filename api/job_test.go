package api

import "testing"

func TestStdinFields(t *testing.T) {
	for _, c := range []struct {
		in          []byte
		text, based string
	}{
		{nil, "", ""},
		{[]byte("é\n"), "é\n", ""},
		{[]byte{0xff, 0, 'x'}, "", "/wB4"},
	} {
		text, based := StdinFields(c.in)
		if text != c.text || based != c.based {
			t.Errorf("StdinFields(%q) = %q, %q; want %q, %q", c.in, text, based, c.text, c.based)
		}
	}
}
