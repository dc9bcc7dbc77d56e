package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// peer is who is on the other end of a connection, by SO_PEERCRED.
type peer struct {
	pid      int32
	uid, gid uint32
}

type peerKey struct{}

func peerOf(ctx context.Context) peer {
	p, _ := ctx.Value(peerKey{}).(peer)
	return p
}

// socketGroup resolves the configured group; empty is root's group.
func socketGroup(name string) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(n), nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("socket_group: %w", err)
	}
	n, _ := strconv.ParseUint(g.Gid, 10, 32)
	return uint32(n), nil
}

// listenUnix listens on path, mode 0660 and the given group. A socket file
// left by a dead daemon is replaced; one somebody answers on is not.
func listenUnix(path string, gid uint32) (net.Listener, error) {
	if err := stateDirReady(dirOf(path)); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("socket: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("socket: another process answers on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("socket: removing the stale %s: %w", path, err)
		}
	}
	// Created 0660 from the start: no moment where anyone else may connect.
	old := unix.Umask(0o117)
	ln, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := os.Chown(path, 0, int(gid)); err != nil {
		ln.Close()
		return nil, fmt.Errorf("socket: %w", err)
	}
	return ln, nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "/"
}

// credentials reads the peer of a Unix connection.
func credentials(c net.Conn) peer {
	for unwrapped := false; !unwrapped; {
		switch w := c.(type) {
		case *timedConn:
			c = w.Conn
		case *pendingConn:
			c = w.Conn
		case *countedConn:
			c = w.Conn
		default:
			unwrapped = true
		}
	}
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{uid: ^uint32(0), gid: ^uint32(0)}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{uid: ^uint32(0), gid: ^uint32(0)}
	}
	p := peer{uid: ^uint32(0), gid: ^uint32(0)}
	raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			p = peer{pid: cred.Pid, uid: cred.Uid, gid: cred.Gid}
		}
	})
	return p
}

// allowed decides whether a peer may use the API.
func (s *server) allowed(p peer) bool {
	cfg := &s.d.conf().cfg
	if len(cfg.AllowedUIDs) == 0 && len(cfg.AllowedGIDs) == 0 {
		return p.uid == 0 || p.gid == s.socketGID || slices.Contains(supplementaryGroups(p.pid), s.socketGID)
	}
	if slices.Contains(cfg.AllowedUIDs, p.uid) || slices.Contains(cfg.AllowedGIDs, p.gid) {
		return true
	}
	for _, g := range supplementaryGroups(p.pid) {
		if slices.Contains(cfg.AllowedGIDs, g) {
			return true
		}
	}
	return false
}

// supplementaryGroups reads a process's groups from /proc.
func supplementaryGroups(pid int32) []uint32 {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			var gs []uint32
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.ParseUint(f, 10, 32); err == nil {
					gs = append(gs, uint32(n))
				}
			}
			return gs
		}
	}
	return nil
}
