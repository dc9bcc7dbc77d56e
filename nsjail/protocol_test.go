package nsjail

import (
	"encoding/json"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// A filter crosses as base64 of the kernel's layout and comes back the
// same, instruction for instruction.
func TestFilterJSON(t *testing.T) {
	f := Filter{{Code: 0x20, K: 4}, {Code: 0x15, Jt: 1, Jf: 2, K: 0xc000003e}, {Code: 0x06, K: unix.SECCOMP_RET_ALLOW}}
	b, err := json.Marshal(&Spec{Seccomp: f})
	if err != nil {
		t.Fatal(err)
	}
	var s Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Seccomp, f) {
		t.Errorf("filter %v read back as %v", f, s.Seccomp)
	}
	for _, bad := range []string{`{"seccomp":"AAAA"}`, `{"seccomp":"!!"}`, `{"seccomp":3}`} {
		if err := json.Unmarshal([]byte(bad), &s); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}
