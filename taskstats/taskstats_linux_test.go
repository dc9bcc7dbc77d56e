package taskstats

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestPeakOfAProcessOfItsOwn runs two programs under a uid of their own:
// /bin/true, whose peak is about a MiB, and a shell that touches 64 MiB.
// Each watch sees its own program's peak, not the spawner's (this test
// binary, started from a Go process many MiB large).
func TestPeakOfAProcessOfItsOwn(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("registering for exit records needs CAP_NET_ADMIN")
	}
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	// Some memory of the test's own, far above /bin/true's.
	ballast := make([]byte, 32<<20)
	for i := range ballast {
		ballast[i] = 1
	}
	run := func(uid uint32, argv ...string) int64 {
		t.Helper()
		w := l.Watch(uid)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", argv, err, out)
		}
		peak, ok := w.End()
		if !ok {
			t.Fatalf("%v: no exit record seen", argv)
		}
		return peak
	}
	small := run(1_900_000_001, "/bin/true")
	big := run(1_900_000_002, "/usr/bin/python3", "-c", "b = bytearray(64 << 20)")
	t.Logf("/bin/true %d KiB, python with 64 MiB %d KiB; the test's own RSS is above 32 MiB", small>>10, big>>10)
	if small <= 0 || small > 4<<20 {
		t.Errorf("/bin/true's peak %d bytes: want its own (about 1 MiB)", small)
	}
	if big < 64<<20 || big > 128<<20 {
		t.Errorf("python's peak %d bytes: want a little over 64 MiB", big)
	}
	_ = ballast[len(ballast)-1]
}

// TestEndWithoutRecords: a watch of a uid that ran nothing ends with ok
// false, and a closed listener's watches too.
func TestEndWithoutRecords(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("registering for exit records needs CAP_NET_ADMIN")
	}
	l, err := Listen()
	if err != nil {
		t.Fatal(err)
	}
	w := l.Watch(1_900_000_003)
	if _, ok := w.End(); ok {
		t.Error("a watch without records ended ok")
	}
	w = l.Watch(1_900_000_004)
	l.Close()
	if _, ok := w.End(); ok {
		t.Error("a watch of a closed listener ended ok")
	}
}
