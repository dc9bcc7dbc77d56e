package nsjail

import (
	"fmt"
	"testing"
)

func TestSandboxOwnedNamesTheSandboxUser(t *testing.T) {
	if want := fmt.Sprintf("uid=%d,gid=%d", SandboxUID, SandboxGID); sandboxOwned != want {
		t.Errorf("sandboxOwned = %q, want %q", sandboxOwned, want)
	}
}
