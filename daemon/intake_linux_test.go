package daemon

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestIntakeListener: every connection is accepted as it comes, at most
// maxOpen held; net/http gets at most limit of them in their intake, the
// next once one's intake ends; a resumed connection goes out first and
// counts against nothing; Close closes the ones never handed out.
func TestIntakeListener(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newIntakeListener(ln, 2, 4, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	var clients []net.Conn
	for range 6 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}
	waitFor(t, "4 accepted", func() bool { return l.open.Load() == 4 })
	time.Sleep(50 * time.Millisecond)
	if n := l.open.Load(); n != 4 {
		t.Fatalf("%d connections held, want maxOpen 4", n)
	}
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	first, second := <-accepted, <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("a third connection (%v) handed out while two are in their intake", c)
	case <-time.After(100 * time.Millisecond / 2):
	}
	first.(*timedConn).intakeDone()
	first.(*timedConn).intakeDone() // once only
	third := <-accepted
	select {
	case c := <-accepted:
		t.Fatalf("a fourth connection (%v) handed out after one intake ended", c)
	case <-time.After(30 * time.Millisecond):
	}
	// A closed connection makes room for the fifth client.
	first.Close()
	waitFor(t, "the fifth accepted", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.line) == 2
	})
	// A resumed connection goes out at once, with none free.
	l.resume(second.(*timedConn).Conn)
	if c := <-accepted; c.(*timedConn).Conn != second.(*timedConn).Conn || c.(*timedConn).intakeOf != nil {
		t.Fatalf("got %v, want the resumed connection, outside the intake", c)
	}
	// intakeHold frees a place for a connection whose request never comes.
	select {
	case <-accepted:
	case <-time.After(5 * intakeHold):
		t.Fatalf("no connection handed out %v after the intake's hold", 5*intakeHold)
	}
	third.Close()
	l.Close()
	for range accepted {
	}
	waitFor(t, "every connection closed", func() bool { return l.open.Load() <= 2 })
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
