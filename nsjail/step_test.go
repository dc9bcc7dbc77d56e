package nsjail

import (
	"syscall"
	"testing"
)

// Every step has a name, and a SetupError reads as step, path, error.
func TestStepNames(t *testing.T) {
	seen := map[string]step{}
	for s := stepUnknown + 1; s <= stepExec; s++ {
		name := s.String()
		if name == "unknown step" {
			t.Errorf("step %d has no name", s)
		}
		if other, ok := seen[name]; ok {
			t.Errorf("steps %d and %d are both %q", other, s, name)
		}
		seen[name] = s
	}
	if got := (&SetupError{step: stepBind, arg: "/usr", Err: syscall.EACCES}).Error(); got != "bind /usr: permission denied" {
		t.Errorf("got %q", got)
	}
	if got := templateErr(stepMountTmpfs, "/", syscall.EPERM).Error(); got != "template: mount tmpfs /: operation not permitted" {
		t.Errorf("got %q", got)
	}
}
