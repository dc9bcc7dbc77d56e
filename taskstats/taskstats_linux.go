package taskstats

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nlaTypeMask clears an attribute type's nested and byte-order flags.
const nlaTypeMask = 0x3fff

// rcvBuf is the socket's receive buffer: room for a few thousand exit
// records queued between two reads.
const rcvBuf = 4 << 20

// Offsets of the fields read from a struct taskstats, which the kernel only
// ever extends at its end.
var (
	offUID     = int(unsafe.Offsetof(unix.Taskstats{}.Ac_uid))
	offHiwater = int(unsafe.Offsetof(unix.Taskstats{}.Hiwater_rss))
)

// Listener receives the exit records of the host's tasks. It is safe for
// concurrent use.
type Listener struct {
	fd     int
	family uint16
	cpus   string
	stop   chan struct{} // closed by Close
	done   chan struct{} // closed when the reading goroutine ends

	mu      sync.Mutex // guards reading the socket and the fields below
	buf     []byte
	watches map[uint32]*Watch
	closed  bool
}

// Watch collects the exit records of one host uid's tasks.
type Watch struct {
	l    *Listener
	uid  uint32
	peak int64 // bytes
	seen bool
	lost bool
}

// Listen registers for the exit records of every task on every possible
// CPU.
func Listen() (*Listener, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_GENERIC)
	if err != nil {
		return nil, fmt.Errorf("taskstats: netlink socket: %w", err)
	}
	l := &Listener{fd: fd, buf: make([]byte, 64<<10), watches: map[uint32]*Watch{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if err := l.setup(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	go l.loop()
	return l, nil
}

func (l *Listener) setup() error {
	if err := unix.Bind(l.fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("taskstats: bind: %w", err)
	}
	// A larger buffer than the default, past rmem_max: we are root.
	if err := unix.SetsockoptInt(l.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		unix.SetsockoptInt(l.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
	}
	family, err := l.resolveFamily()
	if err != nil {
		return err
	}
	l.family = family
	l.cpus = possibleCPUs()
	if err := l.request(unix.TASKSTATS_CMD_GET, unix.TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, l.cpus); err != nil {
		return fmt.Errorf("taskstats: register for exit records of CPUs %s: %w", l.cpus, err)
	}
	return nil
}

// possibleCPUs is the kernel's list of possible CPUs, e.g. "0-63".
func possibleCPUs() string {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if s := strings.TrimSpace(string(b)); err == nil && s != "" {
		return s
	}
	return "0-" + fmt.Sprint(runtime.NumCPU()-1)
}

// resolveFamily asks the generic netlink controller for TASKSTATS's id.
func (l *Listener) resolveFamily() (uint16, error) {
	msg := message(unix.GENL_ID_CTRL, unix.CTRL_CMD_GETFAMILY, 1, unix.CTRL_ATTR_FAMILY_NAME, unix.TASKSTATS_GENL_NAME, 0)
	if err := unix.Sendto(l.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("taskstats: ask for the family: %w", err)
	}
	n, _, err := unix.Recvfrom(l.fd, l.buf, 0)
	if err != nil {
		return 0, fmt.Errorf("taskstats: read the family: %w", err)
	}
	var id uint16
	err = eachMessage(l.buf[:n], func(typ uint16, payload []byte) error {
		if typ == unix.NLMSG_ERROR {
			return netlinkError(payload)
		}
		if len(payload) < unix.GENL_HDRLEN {
			return errors.New("short message")
		}
		return eachAttr(payload[unix.GENL_HDRLEN:], func(typ uint16, v []byte) {
			if typ == unix.CTRL_ATTR_FAMILY_ID && len(v) >= 2 {
				id = binary.NativeEndian.Uint16(v)
			}
		})
	})
	if err != nil {
		return 0, fmt.Errorf("taskstats: the kernel has no TASKSTATS family (CONFIG_TASKSTATS): %w", err)
	}
	if id == 0 {
		return 0, errors.New("taskstats: the kernel has no TASKSTATS family (CONFIG_TASKSTATS)")
	}
	return id, nil
}

// request sends one TASKSTATS command with one string attribute and waits
// for its acknowledgement.
func (l *Listener) request(cmd uint8, attr uint16, value string) error {
	msg := message(l.family, cmd, unix.TASKSTATS_GENL_VERSION, attr, value, unix.NLM_F_ACK)
	if err := unix.Sendto(l.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return err
	}
	// Exit records may come before the acknowledgement.
	for {
		n, _, err := unix.Recvfrom(l.fd, l.buf, 0)
		if err != nil {
			return err
		}
		acked := false
		err = eachMessage(l.buf[:n], func(typ uint16, payload []byte) error {
			if typ != unix.NLMSG_ERROR {
				return nil
			}
			acked = true
			return netlinkError(payload)
		})
		if acked || err != nil {
			return err
		}
	}
}

func (l *Listener) deregister() {
	msg := message(l.family, unix.TASKSTATS_CMD_GET, unix.TASKSTATS_GENL_VERSION, unix.TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, l.cpus, 0)
	unix.Sendto(l.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
}

// message lays out a generic netlink request with one NUL-terminated
// string attribute.
func message(typ uint16, cmd, version uint8, attr uint16, value string, flags uint16) []byte {
	alen := unix.NLA_HDRLEN + len(value) + 1
	total := unix.NLMSG_HDRLEN + unix.GENL_HDRLEN + align4(alen)
	b := make([]byte, total)
	binary.NativeEndian.PutUint32(b[0:], uint32(total))
	binary.NativeEndian.PutUint16(b[4:], typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|flags)
	binary.NativeEndian.PutUint32(b[8:], 1) // seq
	b[16], b[17] = cmd, version
	a := b[unix.NLMSG_HDRLEN+unix.GENL_HDRLEN:]
	binary.NativeEndian.PutUint16(a[0:], uint16(alen))
	binary.NativeEndian.PutUint16(a[2:], attr)
	copy(a[unix.NLA_HDRLEN:], value)
	return b
}

func align4(n int) int { return (n + 3) &^ 3 }

// eachMessage calls fn with each netlink message's type and payload.
func eachMessage(b []byte, fn func(typ uint16, payload []byte) error) error {
	for len(b) >= unix.NLMSG_HDRLEN {
		n := int(binary.NativeEndian.Uint32(b[0:]))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return errors.New("malformed netlink message")
		}
		if err := fn(binary.NativeEndian.Uint16(b[4:]), b[unix.NLMSG_HDRLEN:n]); err != nil {
			return err
		}
		b = b[min(align4(n), len(b)):]
	}
	return nil
}

// eachAttr calls fn with each attribute's type (flags cleared) and value.
func eachAttr(b []byte, fn func(typ uint16, v []byte)) error {
	for len(b) >= unix.NLA_HDRLEN {
		n := int(binary.NativeEndian.Uint16(b[0:]))
		if n < unix.NLA_HDRLEN || n > len(b) {
			return errors.New("malformed netlink attribute")
		}
		fn(binary.NativeEndian.Uint16(b[2:])&nlaTypeMask, b[unix.NLA_HDRLEN:n])
		b = b[min(align4(n), len(b)):]
	}
	return nil
}

func netlinkError(payload []byte) error {
	if len(payload) < 4 {
		return errors.New("short netlink error")
	}
	if code := int32(binary.NativeEndian.Uint32(payload)); code != 0 {
		return unix.Errno(-code)
	}
	return nil
}

// drainEvery is how often the records queued meanwhile are read when no
// End reads them: often enough that the socket's buffer never fills (at
// ten thousand exits a second, a fifth of it), rarely enough that an idle
// engine does not wake for every exit on the host.
const drainEvery = 20 * time.Millisecond

// loop reads the queued records every drainEvery, until Close.
func (l *Listener) loop() {
	defer close(l.done)
	t := time.NewTicker(drainEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		l.mu.Lock()
		if !l.closed {
			l.drainLocked()
		}
		l.mu.Unlock()
	}
}

// drainLocked reads every record queued so far.
//
// Preconditions: l.mu is held.
func (l *Listener) drainLocked() {
	for {
		n, _, err := unix.Recvfrom(l.fd, l.buf, unix.MSG_DONTWAIT)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ENOBUFS:
			// Records were dropped: no open watch can trust its peak.
			for _, w := range l.watches {
				w.lost = true
			}
			continue
		case err != nil:
			return
		}
		eachMessage(l.buf[:n], l.record)
	}
}

// record takes one exit record.
//
// Preconditions: l.mu is held.
func (l *Listener) record(typ uint16, payload []byte) error {
	if typ != l.family || len(payload) < unix.GENL_HDRLEN || len(l.watches) == 0 {
		return nil
	}
	return eachAttr(payload[unix.GENL_HDRLEN:], func(typ uint16, v []byte) {
		// Per-task records only: a thread group's aggregate carries no
		// memory figures.
		if typ != unix.TASKSTATS_TYPE_AGGR_PID {
			return
		}
		eachAttr(v, func(typ uint16, st []byte) {
			if typ != unix.TASKSTATS_TYPE_STATS || len(st) < offHiwater+8 {
				return
			}
			w := l.watches[binary.NativeEndian.Uint32(st[offUID:])]
			if w == nil {
				return
			}
			w.seen = true
			w.peak = max(w.peak, int64(binary.NativeEndian.Uint64(st[offHiwater:]))*1024)
		})
	})
}

// Watch starts collecting the exit records of tasks whose real host uid is
// uid. At most one watch per uid is open at a time; a new one replaces it.
func (l *Listener) Watch(uid uint32) *Watch {
	w := &Watch{l: l, uid: uid}
	l.mu.Lock()
	l.watches[uid] = w
	l.mu.Unlock()
	return w
}

// End reads every exit record queued so far and stops the watch. It gives
// the largest peak RSS, in bytes, of the uid's tasks that exited since
// Watch; ok is false when none did or records were lost.
func (w *Watch) End() (peak int64, ok bool) {
	l := w.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.drainLocked()
	}
	if l.watches[w.uid] == w {
		delete(l.watches, w.uid)
	}
	return w.peak, w.seen && !w.lost
}

// Close deregisters and closes the socket. Open watches end with ok false.
func (l *Listener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	for _, w := range l.watches {
		w.lost = true
	}
	l.deregister()
	err := unix.Close(l.fd)
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	return err
}
