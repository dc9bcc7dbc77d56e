package gojudge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/api/client"
)

// badRequest is a request the gateway refuses: 400, its message as a JSON
// string, as go-judge answers one.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func badf(format string, a ...any) error { return &badRequest{fmt.Sprintf(format, a...)} }

// cmdPlan is one cmd turned into sandboxd's terms, before it runs.
type cmdPlan struct {
	argv   []string
	env    map[string]string
	limits api.Limits
	files  map[string]api.File // copyIn
	// stdin: at most one of the three.
	stdin, stdinCached string
	hasStdin           bool
	// The collectors of fd 1 and 2: their names ("" for none) and maxima.
	outName, errName string
	outMax, errMax   int64
	copyOut          []outFile
	copyOutCached    []outFile
	copyOutMax       uint64
	// fileErrors are the copyIn files that could not be read: the cmd is
	// then a File Error and does not run.
	fileErrors []FileError
}

// outFile is one name of copyOut or copyOutCached; a trailing "?" makes it
// optional (no File Error when it is missing).
type outFile struct {
	name     string
	optional bool
}

func parseOut(names []string) []outFile {
	out := make([]outFile, 0, len(names))
	for _, n := range names {
		name, opt := strings.CutSuffix(n, "?")
		out = append(out, outFile{name: name, optional: opt})
	}
	return out
}

// Below these a limit is surely in the wrong unit: a cpuLimit of 1000
// meant 1000 ms, a memoryLimit of 256 meant 256 MiB.
const (
	minLimitNS       = 1_000_000 // 1 ms
	minMemoryLimit   = 1 << 20   // 1 MiB
	maxCmdsInGroup   = 8
	defaultPipeLimit = 1 << 20
)

// planCmd checks cmd[i] and turns it into a plan. piped says which of its
// fds a pipeMapping takes. Host files (src) are read and put into the
// daemon's file cache here, so that the job names them by id.
func (h *handler) planCmd(ctx context.Context, i int, cmd *Cmd, piped map[int]bool) (*cmdPlan, error) {
	field := func(f string) string { return fmt.Sprintf("cmd[%d].%s", i, f) }
	if len(cmd.Args) == 0 || cmd.Args[0] == "" {
		return nil, badf("%s: empty", field("args"))
	}
	switch {
	case cmd.TTY:
		return nil, badf("%s: not supported by sandboxd", field("tty"))
	case cmd.CopyOutDir != "":
		return nil, badf("%s: not supported by sandboxd (name the files in copyOut)", field("copyOutDir"))
	case cmd.CPUSetLimit != "":
		return nil, badf("%s: not supported by sandboxd", field("cpuSetLimit"))
	}
	p := &cmdPlan{files: map[string]api.File{}, copyOut: parseOut(cmd.CopyOut),
		copyOutCached: parseOut(cmd.CopyOutCached), copyOutMax: cmd.CopyOutMax}
	var err error
	if p.limits, err = convertLimits(cmd, field); err != nil {
		return nil, err
	}
	if len(cmd.Env) > 0 {
		p.env = make(map[string]string, len(cmd.Env))
		for k, kv := range cmd.Env {
			name, value, ok := strings.Cut(kv, "=")
			if !ok || name == "" {
				return nil, badf("%s: %q is not NAME=VALUE", field(fmt.Sprintf("env[%d]", k)), kv)
			}
			p.env[name] = value
		}
	}
	for name, f := range cmd.CopyIn {
		ff := field(fmt.Sprintf("copyIn[%q]", name))
		if f.Symlink != nil {
			return nil, badf("%s.symlink: not supported by sandboxd", ff)
		}
		switch {
		case f.Content != nil:
			// 0755, so that a script copied in can be run as it is.
			p.files[name] = api.File{Content: *f.Content, Mode: "0755"}
		case f.FileID != nil:
			p.files[name] = api.File{Cached: *f.FileID}
		case f.Src != nil:
			id, ferr := h.cacheHostFile(ctx, *f.Src)
			if ferr != nil {
				if _, ok := ferr.(*hostFileError); !ok {
					return nil, ferr
				}
				p.fileErrors = append(p.fileErrors, FileError{Name: *f.Src, Type: CopyInOpenFile, Message: ferr.Error()})
				continue
			}
			p.files[name] = api.File{Cached: id}
		default:
			return nil, badf("%s: give content, src or fileId", ff)
		}
	}
	if len(cmd.Files) > 3 {
		return nil, badf("%s: sandboxd gives a program fds 0, 1 and 2 only (files has %d)", field("files"), len(cmd.Files))
	}
	for fd, f := range cmd.Files {
		ff := field(fmt.Sprintf("files[%d]", fd))
		if f == nil {
			// A pipe's end, or an fd with no file: go-judge leaves it
			// closed; sandboxd captures it and the gateway drops it.
			continue
		}
		if piped[fd] {
			return nil, badf("%s: is mapped by a pipe: give null", ff)
		}
		if f.Symlink != nil || f.StreamIn != nil || f.StreamOut != nil {
			return nil, badf("%s: symlink, streamIn and streamOut are not supported by sandboxd", ff)
		}
		if fd == 0 {
			if err := h.planStdin(ctx, p, f, ff); err != nil {
				return nil, err
			}
			continue
		}
		if f.Name == nil || f.Max == nil {
			return nil, badf("%s: fd %d takes a collector {\"name\", \"max\"}", ff, fd)
		}
		if *f.Max < 1 {
			return nil, badf("%s.max: must be at least 1 byte, got %d", ff, *f.Max)
		}
		if fd == 1 {
			p.outName, p.outMax = *f.Name, *f.Max
		} else {
			p.errName, p.errMax = *f.Name, *f.Max
		}
	}
	// sandboxd bounds stdout and stderr alike: the larger collector's max
	// is the limit; the smaller one is checked on the result.
	if m := max(p.outMax, p.errMax); m > 0 {
		p.limits.OutputBytes = m
	}
	p.argv = append([]string(nil), cmd.Args...)
	if !strings.Contains(p.argv[0], "/") {
		// go-judge runs a copied-in program by its bare name ("a");
		// sandboxd looks a bare name up in PATH only.
		if _, ok := p.files[p.argv[0]]; ok {
			p.argv[0] = "./" + p.argv[0]
		}
	}
	return p, nil
}

func (h *handler) planStdin(ctx context.Context, p *cmdPlan, f *CmdFile, ff string) error {
	p.hasStdin = true
	switch {
	case f.Content != nil:
		p.stdin = *f.Content
	case f.FileID != nil:
		p.stdinCached = *f.FileID
	case f.Src != nil:
		id, err := h.cacheHostFile(ctx, *f.Src)
		if err != nil {
			if _, ok := err.(*hostFileError); !ok {
				return err
			}
			p.fileErrors = append(p.fileErrors, FileError{Name: *f.Src, Type: CopyInOpenFile, Message: err.Error()})
			return nil
		}
		p.stdinCached = id
	default:
		return badf("%s: stdin takes content, src or fileId", ff)
	}
	return nil
}

// convertLimits turns go-judge's limits (ns, bytes) into sandboxd's (ms,
// bytes). A limit the daemon's profile does not allow is the daemon's 400.
func convertLimits(cmd *Cmd, field func(string) string) (api.Limits, error) {
	var l api.Limits
	ms := func(name string, ns uint64) (int64, error) {
		if ns == 0 {
			return 0, nil
		}
		if ns < minLimitNS {
			return 0, badf("%s: %d ns is less than 1 ms: go-judge's limits are in nanoseconds (1 s is 1000000000)", field(name), ns)
		}
		ms := ns / 1_000_000
		if ns%1_000_000 != 0 {
			ms++ // up: a limit is never made shorter
		}
		return int64(ms), nil
	}
	bytes := func(name string, v uint64, floor uint64) (int64, error) {
		if v == 0 {
			return 0, nil
		}
		if v > math.MaxInt64 {
			return 0, badf("%s: %d is out of range", field(name), v)
		}
		if v < floor {
			return 0, badf("%s: %d bytes is less than 1 MiB: go-judge's memory limits are in bytes (256 MiB is 268435456)", field(name), v)
		}
		return int64(v), nil
	}
	var err error
	if l.CPUTimeMS, err = ms("cpuLimit", cmd.CPULimit); err != nil {
		return l, err
	}
	clock, clockName := cmd.ClockLimit, "clockLimit"
	if cmd.RealCPULimit > 0 {
		clock, clockName = cmd.RealCPULimit, "realCpuLimit"
	}
	if l.WallTimeMS, err = ms(clockName, clock); err != nil {
		return l, err
	}
	if l.MemoryBytes, err = bytes("memoryLimit", cmd.MemoryLimit, minMemoryLimit); err != nil {
		return l, err
	}
	if l.MemoryBytes > 0 && l.MemoryBytes < api.MinMemoryBytes {
		// go-judge's own example gives /bin/cat 1 MiB; sandboxd's floor
		// (api.MinMemoryBytes) is higher: the limit is raised to it.
		l.MemoryBytes = api.MinMemoryBytes
	}
	if l.StackBytes, err = bytes("stackLimit", cmd.StackLimit, 1); err != nil {
		return l, err
	}
	if cmd.ProcLimit > math.MaxInt64 {
		return l, badf("%s: %d is out of range", field("procLimit"), cmd.ProcLimit)
	}
	l.PIDs = int64(cmd.ProcLimit)
	// Thousandths of a CPU; the daemon checks the rate (at least 0.01 CPU,
	// at most its profile's maximum).
	l.CPUs = float64(cmd.CPURateLimit) / 1000
	return l, nil
}

// hostFileError is a host file that may not or cannot be read: a File
// Error of its cmd, not a refused request.
type hostFileError struct{ err error }

func (e *hostFileError) Error() string { return e.err.Error() }

// cacheHostFile reads a host file beneath host_dirs into the daemon's
// file cache and gives its id.
func (h *handler) cacheHostFile(ctx context.Context, path string) (string, error) {
	f, err := openHostFile(h.cfg.HostDirs, path)
	if err != nil {
		return "", &hostFileError{err}
	}
	defer f.Close()
	cf, err := h.c.Upload(ctx, f)
	if err != nil {
		return "", err
	}
	return cf.ID, nil
}

// errorOfDaemon is the answer to a request the daemon refused or could
// not take: its status and message.
func errorOfDaemon(err error) (int, string) {
	var se *client.StatusError
	if errors.As(err, &se) {
		return se.HTTPStatus, "sandboxd: " + se.Err.Message
	}
	return 500, err.Error()
}
