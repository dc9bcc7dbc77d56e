package daemon

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
)

// listenIntake is an intake listener on a socket of its own, with an
// intake limit of 2 and at most maxOpen connections held.
func listenIntake(t *testing.T, maxOpen int64) (*intakeListener, string) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "s")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newIntakeListener(ln, 2, maxOpen, func(string) {})
	if err != nil {
		t.Fatal(err)
	}
	return l, sock
}

// acceptAll sends every connection l's Accept gives on the channel it
// returns, which is closed once Accept fails.
func acceptAll(l *intakeListener) <-chan net.Conn {
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
	return accepted
}

// TestIntakeListener: every connection is accepted as it comes, at most
// maxOpen held; net/http gets at most limit of them in their intake, the
// next once one's intake ends or its hold passes; a silent connection
// and a resumed one go out at once, outside the intake; Close ends
// Accept.
func TestIntakeListener(t *testing.T) {
	l, sock := listenIntake(t, 4)
	l.hold = time.Second // longer than the test's own waits
	// Each client sends the start of a request, but the fifth, which
	// stays silent.
	for i := range 6 {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if i != 4 {
			c.Write([]byte("G"))
		}
	}
	waitFor(t, "4 accepted", func() bool { return l.open.Load() == 4 })
	time.Sleep(50 * time.Millisecond)
	if n := l.open.Load(); n != 4 {
		t.Fatalf("%d connections held, want maxOpen 4", n)
	}
	accepted := acceptAll(l)
	none := func(what string) {
		t.Helper()
		select {
		case c := <-accepted:
			t.Fatalf("%s: %v handed out", what, c)
		case <-time.After(50 * time.Millisecond):
		}
	}
	first, second := <-accepted, <-accepted
	none("two in their intake")
	first.(*timedConn).intakeDone()
	first.(*timedConn).intakeDone() // once only
	third := <-accepted
	none("two in their intake again")
	// A close makes room for the fifth client, silent; once the fourth
	// has its place, the fifth goes out at once outside the intake.
	first.Close()
	waitFor(t, "the fifth accepted", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.line) == 2
	})
	second.(*timedConn).intakeDone()
	if c := <-accepted; c.(*timedConn).intakeOf == nil {
		t.Fatal("the fourth client's connection is outside the intake")
	}
	if c := <-accepted; c.(*timedConn).intakeOf != nil {
		t.Fatal("the silent client's connection counts against the intake")
	}
	// A resumed connection goes out at once, with no place free.
	l.resume(second.(*timedConn).Conn)
	if c := <-accepted; c.(*timedConn).Conn != second.(*timedConn).Conn || c.(*timedConn).intakeOf != nil {
		t.Fatalf("got %v, want the resumed connection, outside the intake", c)
	}
	// The sixth, once there is room, waits for a place: the hold frees
	// one from a connection whose request does not come on.
	third.Close()
	select {
	case c := <-accepted:
		if c.(*timedConn).intakeOf == nil {
			t.Fatal("the sixth client's connection is outside the intake")
		}
	case <-time.After(5 * l.hold):
		t.Fatalf("no connection handed out %v after the intake's hold", 5*l.hold)
	}
	l.Close()
	for range accepted { // Accept fails once closed
	}
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

// TestResumeOnRequest: a connection given back after a hijack reaches
// net/http only once its next request begins, with that request's bytes
// whole, and not at once, where its header would be due within
// headerTimeout (an idle client would get a 408); Close ends the wait of
// one whose client sends nothing, closing it.
func TestResumeOnRequest(t *testing.T) {
	l, sock := listenIntake(t, 16)
	accepted := acceptAll(l)
	dial := func() (client, server net.Conn) {
		t.Helper()
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.Write([]byte("G"))
		s := <-accepted
		b := make([]byte, 1)
		if _, err := s.Read(b); err != nil {
			t.Fatal(err)
		}
		return c, s.(*timedConn).Conn
	}

	kept, hijacked := dial()
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.resumeOnRequest(hijacked)
	}()
	select {
	case c := <-accepted:
		t.Fatalf("%v handed out before its next request began", c)
	case <-time.After(100 * time.Millisecond):
	}
	kept.Write([]byte("GET /_ping HTTP/1.1\r\n"))
	c := <-accepted
	<-done
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 64)
	n, err := io.ReadAtLeast(c, b, len("GET /_ping HTTP/1.1\r\n"))
	if err != nil || string(b[:n]) != "GET /_ping HTTP/1.1\r\n" {
		t.Fatalf("the resumed connection reads %q, %v", b[:n], err)
	}

	silent, hijacked := dial()
	done = make(chan struct{})
	go func() {
		defer close(done)
		l.resumeOnRequest(hijacked)
	}()
	time.Sleep(50 * time.Millisecond)
	l.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end the wait for a next request")
	}
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(b); err != io.EOF {
		t.Fatalf("the waiting connection after Close: %v, want it closed", err)
	}
	for range accepted {
	}
}

// TestBareConn: a connection detached once more after each resume does
// not grow a wrapper a time; bytes not read yet are kept.
func TestBareConn(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	var c net.Conn = a
	for range 3 {
		c = &pendingConn{Conn: c}
	}
	if got := bareConn(&timedConn{Conn: c}); got != a {
		t.Fatalf("bareConn gives %T, want the connection itself", got)
	}
	unread := &pendingConn{Conn: a, pending: []byte("G")}
	if got := bareConn(&timedConn{Conn: &pendingConn{Conn: unread}}); got != unread {
		t.Fatalf("bareConn gives %T, want the connection with its unread byte", got)
	}
}
