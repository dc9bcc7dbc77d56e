package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Calls one after another share one connection.
func TestKeptConnectionReused(t *testing.T) {
	f := newFakeDaemon(t)
	f.mux.HandleFunc("POST /v1/run", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"id": "job-1", "status": "completed"})
	})
	c := f.client()
	for i := range 5 {
		if _, err := c.Run(context.Background(), sampleJob()); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if n := f.conns.Load(); n != 1 {
		t.Fatalf("%d connections after five runs, want one kept", n)
	}
}

// A kept connection that the daemon closed while it was idle is not used
// again: the next call dials anew and gets its answer.
func TestKeptConnectionClosedByDaemon(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "sandboxd.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			// One answer, then the connection closes, as a daemon's idle
			// timeout would close it.
			go func() {
				defer conn.Close()
				req, err := http.ReadRequest(bufio.NewReader(conn))
				if err != nil {
					return
				}
				req.Body.Close()
				body := `{"version":"x"}` + "\n"
				fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
				time.Sleep(20 * time.Millisecond)
			}()
		}
	}()
	c := New(socket)
	for i := range 3 {
		info, err := c.Info(context.Background())
		if err != nil || info.Version != "x" {
			t.Fatalf("info %d: %+v, %v", i, info, err)
		}
		time.Sleep(50 * time.Millisecond) // the daemon's end is closed by now
	}
	if n := accepted.Load(); n != 3 {
		t.Fatalf("%d connections for three calls whose connections were closed between them, want 3", n)
	}
}

// A daemon that refuses a request before reading its body answers and
// closes the connection: the client gets the answer, whether or not its
// write of the body had failed by then.
func TestKeptConnectionRefusedBeforeBody(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "sandboxd.sock")
	l, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if _, err := http.ReadRequest(bufio.NewReader(conn)); err != nil {
					return
				}
				body := `{"error":{"code":"invalid_argument","message":"body: larger than the cap"}}` + "\n"
				fmt.Fprintf(conn, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			}()
		}
	}()
	c := New(socket)
	for _, n := range []int{1 << 10, 60 << 10} {
		err := c.Do(context.Background(), http.MethodPost, "/v1/run", strings.NewReader(`{"x":"`+strings.Repeat("a", n)+`"}`), nil)
		var se *StatusError
		if !errors.As(err, &se) || se.HTTPStatus != http.StatusRequestEntityTooLarge {
			t.Errorf("a body of %d bytes refused with 413: error %v", n, err)
		}
	}
}
