package api

import (
	"encoding/json"
	"testing"
)

func TestKeyOf(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{"abc", `"abc"`},
		{7, `7`},
		{map[string]any{"case": 7}, `{"case":7}`},
		{[]string{"a", "b"}, `["a","b"]`},
		{nil, `null`},
		{json.RawMessage(`{"x":[1,2]}`), `{"x":[1,2]}`},
	} {
		job := Job{Key: KeyOf(tc.v), Steps: []Step{{Argv: []string{"true"}}}}
		b, err := json.Marshal(job)
		if err != nil {
			t.Fatalf("%v: %v", tc.v, err)
		}
		var back Job
		if err := json.Unmarshal(b, &back); err != nil || string(back.Key) != tc.want {
			t.Errorf("KeyOf(%v): %s on the wire, back %s (%v); want %s", tc.v, b, back.Key, err, tc.want)
		}
	}
}
