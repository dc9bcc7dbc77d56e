package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandboxd/sandboxd/api"
	"github.com/sandboxd/sandboxd/cgroup"
	"github.com/sandboxd/sandboxd/nsjail"
	"github.com/sandboxd/sandboxd/seccomp"
	"github.com/sandboxd/sandboxd/taskstats"
)

// StepRequest is one command to run. Limits must have passed Validate
// against the profile's maximum; unset ones take the profile's defaults.
type StepRequest struct {
	Argv   []string
	Env    map[string]string
	Limits api.Limits
	// Stdin is the program's standard input. Nil is /dev/null.
	Stdin *os.File
	// Stdout and Stderr, if set, are the program's instead of a capture:
	// that stream of the result stays empty (a pipe to another program).
	Stdout, Stderr *os.File
	// ExtraFiles are the program's descriptors 3 to nsjail.MaxExtraFD, by
	// number (a pipe's end, say). Its other descriptors above 2 are
	// closed at its exec.
	ExtraFiles map[int]*os.File
	// HandOver says RunStep closes Stdin, Stdout, Stderr and ExtraFiles
	// as soon as the program's sandbox has them (or cannot take them), so
	// that the caller holds no copy while the program runs: a pipe's far
	// end then sees EOF or EPIPE when the program ends.
	HandOver bool
	// Workdir is a host directory bound read-write as the working
	// directory. With HostID zero, RunStep gives everything in it to the
	// step's sandbox uid first; otherwise it must be writable by HostID.
	// Empty: a fresh tmpfs of WorkspaceBytes (0: the profile's).
	Workdir        string
	WorkspaceBytes int64
	// WorkdirEmpty says Workdir holds nothing but itself: only its root
	// is given to the step's uid.
	WorkdirEmpty bool
	// WorkdirMount, if set, is a detached mount of Workdir made ahead
	// (nsjail.DetachedMount), used instead of a new one; the caller closes
	// it.
	WorkdirMount *os.File
	// HostID is the host uid and gid to run as, from AcquireID. Zero: the
	// step's sandbox has one of its own (a warm sandbox from the profile's
	// pool, if the engine keeps pools), given back at the end.
	HostID uint32
	// Profile is the recipe to run under; nil is the engine's.
	Profile *Profile
	// OnOutput, if set, sees the program's output as it comes (stream 1 is
	// stdout, 2 is stderr), up to the output limit. It must not block long.
	OnOutput func(stream int, data []byte)
	// Output, if set, is what is left of the job's output budget: the
	// step's stdout and stderr take from it as they come, and a stream cut
	// because it ran out makes the step output_limit.
	Output *OutputBudget
	// Held says the caller holds the pools back for this step's job
	// (Hold). Once its program has run for lendAfter, the step lets go
	// until the program ends, so that the pools refill meanwhile.
	Held bool

	// sharedID: HostID is shared with other sandboxes running now (see
	// RunPrograms), so its exit records are not the program's own.
	sharedID bool
}

// killWait bounds how long the end of a killed program may take to be
// reported by its init before the init itself is killed.
const killWait = 2 * time.Second

// killRetry is how often a kill is repeated until the program's end is
// reported.
const killRetry = 20 * time.Millisecond

// RunStep runs one step to its end and judges it. The error is non-nil
// only when the sandbox itself failed; the result then says
// internal_error with the same message. When it returns, no process of the
// step runs any more; its sandbox (the init, cgroups and uid) is torn down
// in the background, and Close waits for that.
func (e *Engine) RunStep(ctx context.Context, req *StepRequest) (api.StepResult, error) {
	if req.Profile == nil {
		req.Profile = &e.profile
	}
	lim := req.Limits.WithDefaults(req.Profile.Defaults)
	res, err := e.runStep(ctx, req, lim)
	if err != nil {
		res.Verdict = api.VerdictInternalError
		res.Message = err.Error()
	}
	return res, err
}

func (e *Engine) runStep(ctx context.Context, req *StepRequest, lim api.Limits) (api.StepResult, error) {
	var res api.StepResult
	if req.HandOver {
		defer req.closeIO()
	}
	sb, err := e.sandboxFor(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			// Cancelled while it waited for a warm sandbox.
			res.Verdict, res.Message = decide(stepFacts{cause: causeCancelled})
			return res, nil
		}
		return res, err
	}
	defer e.retire(sb)
	grp := sb.grp
	if err := grp.SetLimits(e.cgroupLimits(lim)); err != nil {
		return res, err
	}
	// The files of a host workdir already larger than the step may write:
	// only those it makes so count against it (filePastLimit).
	var large largeSet
	switch {
	case req.Workdir == "" || req.WorkdirEmpty && req.HostID != 0:
	case req.WorkdirEmpty:
		if err := chownRoot(req.Workdir, int(sb.hostID), int(sb.hostID)); err != nil {
			return res, err
		}
	case req.HostID == 0:
		// The workdir's files go to this sandbox's uid: the last step's
		// sandbox had another.
		if large, err = chownTree(req.Workdir, int(sb.hostID), int(sb.hostID), lim.FileSizeBytes); err != nil {
			return res, err
		}
	default:
		if large, err = largeFilesIn(req.Workdir, lim.FileSizeBytes); err != nil {
			return res, err
		}
	}

	stdin := req.Stdin // nil: the jail's /dev/null
	outR, outW, err := captureOr(req.Stdout)
	if err != nil {
		return res, err
	}
	defer outR.Close()
	errR, errW, err := captureOr(req.Stderr)
	if err != nil {
		outW.Close()
		return res, err
	}
	defer errR.Close()

	var workdir *os.File
	if req.WorkdirMount == nil && req.Workdir != "" {
		if workdir, err = os.OpenFile(req.Workdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			outW.Close()
			errW.Close()
			return res, fmt.Errorf("workdir: %w", err)
		}
		defer workdir.Close()
	}
	proc := sb.proc
	if !sb.marked {
		if err := grp.MarkStart(); err != nil {
			outW.Close()
			errW.Close()
			return res, err
		}
	}
	// The program runs as the sandbox's host uid, which no other live
	// sandbox has: its processes' exit records are its own.
	var exits *taskstats.Watch
	if e.exits != nil && !req.sharedID {
		exits = e.exits.Watch(sb.hostID)
	}
	cmd := e.command(req, lim)
	if e.CPULimit() {
		var release func()
		cmd.CPUs, release = e.placer.place(lim.CPUs)
		defer release()
	}
	err = proc.Run(cmd, nsjail.IO{Stdin: stdin, Stdout: outW, Stderr: errW, ExtraFiles: req.ExtraFiles, Workdir: workdir, WorkdirMount: req.WorkdirMount})
	outW.Close()
	errW.Close()
	if req.HandOver {
		req.closeIO()
	}
	if err != nil {
		if exits != nil {
			exits.End()
		}
		return res, err
	}

	w := &watcher{
		engine: e, grp: grp, proc: proc, lim: lim, held: req.Held,
		overflow: make(chan struct{}, 2),
	}
	var readers sync.WaitGroup
	stdout := &capture{limit: lim.OutputBytes, stream: 1, onOutput: req.OnOutput, overflow: w.overflow, budget: req.Output}
	stderr := &capture{limit: lim.OutputBytes, stream: 2, onOutput: req.OnOutput, overflow: w.overflow, budget: req.Output}
	readers.Add(2)
	go func() { defer readers.Done(); stdout.drain(outR) }()
	go func() { defer readers.Done(); stderr.drain(errR) }()

	facts := w.watch(ctx)

	// The program has ended, or the sandbox failed. After a reported end
	// the init has killed everything else of the step; otherwise kill
	// whatever is left. Then let the pipes run dry.
	if !facts.exited {
		if err := grp.Kill(); err != nil && facts.setupErr == nil {
			facts.setupErr = fmt.Errorf("kill the step's processes: %w", err)
		}
		proc.Kill()
		<-proc.Done()
	}
	readers.Wait()

	stats, err := grp.Stats()
	if err != nil && facts.setupErr == nil {
		facts.setupErr = fmt.Errorf("cgroup statistics: %w", err)
	}
	facts.cpu = stats.CPU
	facts.cpuLimit = time.Duration(lim.CPUTimeMS) * time.Millisecond
	facts.oomKills = stats.OOMKills
	facts.memPeak, facts.memLimit, facts.memLimitHits = stats.MemoryPeak, lim.MemoryBytes, stats.MemoryLimitHits
	facts.wall, facts.wallLimit = w.exit.Wall, time.Duration(lim.WallTimeMS)*time.Millisecond
	// A program that writes past its cap and exits at once may end
	// before the watcher reads the overflow: the cut is the verdict.
	facts.truncated = stdout.truncated || stderr.truncated
	facts.fileSizeLimit, facts.diedFileSize = lim.FileSizeBytes, w.exit.FileSizeLimit
	if facts.cause == causeNone && facts.exited && !facts.truncated {
		facts.filePastLimit = filePastLimit(proc, req.Workdir, lim.FileSizeBytes, large, w.exit.Unused)
	}

	res.Verdict, res.Message = decide(facts)
	if res.Verdict == api.VerdictOutputLimit && (stdout.budgetCut || stderr.budgetCut) {
		res.Message = fmt.Sprintf("the job's output reached its cap of %d bytes (all steps' stdout and stderr and the tracked files together)", req.Output.Cap)
	}
	res.ExitCode = facts.exitCode
	if facts.signal != 0 {
		res.Signal = unix.SignalName(unix.Signal(facts.signal))
	}
	// The buffers are the readers' no more: they become the strings as
	// they are, without a copy (the job's output may be its whole budget).
	res.Stdout, res.StdoutTruncated = unsafe.String(unsafe.SliceData(stdout.buf), len(stdout.buf)), stdout.truncated
	res.Stderr, res.StderrTruncated = unsafe.String(unsafe.SliceData(stderr.buf), len(stderr.buf)), stderr.truncated
	res.CPUTimeMS = ms(stats.CPU)
	res.UserTimeMS = ms(stats.User)
	res.SysTimeMS = ms(stats.System)
	res.WallTimeMS = ms(w.exit.Wall)
	res.MemoryPeakBytes = stats.MemoryPeak
	res.MaxRSSBytes = w.exit.MaxRSS
	if exits != nil {
		// After the init's report of the program's end: the program's own
		// record is queued by then.
		if peak, ok := exits.End(); ok {
			res.MaxRSSBytes = peak
		}
	}
	res.PIDsPeak = stats.PIDsPeak
	res.ThrottledMS = stats.Throttled.Milliseconds()
	if res.Verdict == api.VerdictInternalError {
		return res, errors.New(res.Message)
	}
	return res, nil
}

// capturePipe is a pipe whose read end is on the runtime's poller and
// whose write end, which only the program writes, never is: os.Pipe would
// register both ends, Run would make the write ends blocking again to pass
// them on, and their close would take them off the poller: ten system
// calls a step on the request's path for nothing.
func capturePipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	// The read end alone is made non-blocking; os.NewFile then sees it so
	// and polls it. The program's end stays an ordinary blocking pipe.
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_SETFL, unix.O_NONBLOCK); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(p[0]), "|0"), os.NewFile(uintptr(p[1]), "|1"), nil
}

// captureOr is a pipe whose read end the step's capture drains, or, when
// the caller gives the stream's file (to), a read end that is empty at
// once and that file, whose copy the caller keeps.
func captureOr(to *os.File) (r, w *os.File, err error) {
	if to == nil {
		return capturePipe()
	}
	if r, err = os.Open(os.DevNull); err != nil {
		return nil, nil, err
	}
	// Run's caller closes its copy: a duplicate, so that the caller's
	// own file stays the caller's.
	fd, err := unix.FcntlInt(to.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		r.Close()
		return nil, nil, fmt.Errorf("dup: %w", err)
	}
	return r, os.NewFile(uintptr(fd), to.Name()), nil
}

// closeIO closes the request's stdio and extra files, once.
func (req *StepRequest) closeIO() {
	for _, f := range []**os.File{&req.Stdin, &req.Stdout, &req.Stderr} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	for _, f := range req.ExtraFiles {
		f.Close()
	}
	req.ExtraFiles = nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// sandboxFor gives a step its sandbox: a warm one from the profile's pool
// when there is one and the step does not ask for a uid of its own, else
// one made now.
func (e *Engine) sandboxFor(ctx context.Context, req *StepRequest) (*sandbox, error) {
	if req.HostID == 0 {
		if p := e.poolFor(req.Profile); p != nil {
			sb, err := p.take(ctx)
			// A pool retired by ReplacePools while the step waited:
			// the step goes on with a sandbox of its own.
			if err != errPoolClosed || e.closed.Load() {
				return sb, err
			}
		}
	}
	return e.newSandbox(req.Profile, req.HostID)
}

// spec is the sandbox a profile describes, for the program to run as
// hostID.
func (e *Engine) spec(p *Profile, hostID uint32) *nsjail.Spec {
	e.specsMu.Lock()
	shared := e.specs[p]
	if shared == nil {
		mounts := make([]nsjail.Mount, 0, len(p.Binds))
		for _, b := range p.Binds {
			mounts = append(mounts, nsjail.Mount{Kind: nsjail.MountBind, Source: b, Target: b, Optional: true})
		}
		shared = &nsjail.Spec{
			InitUID:  e.initID,
			InitGID:  e.initID,
			RootDir:  e.rootDir,
			Mounts:   mounts,
			Files:    etcFiles("sandbox"),
			TmpBytes: p.TmpBytes,
			// The workspace a step without a workdir has, unless it
			// asks for another size, is mounted before the command.
			ReadyWorkspaceBytes: p.WorkspaceBytes,
			Seccomp:             e.filter,
			// The helper keeps this part of the Spec by its key: each
			// sandbox sends only its host ids. Keys are the process's
			// own, as the helper is.
			Key: fmt.Sprintf("%s#%d", p.Name, specKeys.Add(1)),
		}
		if e.specs == nil {
			e.specs = map[*Profile]*nsjail.Spec{}
		}
		if len(e.specs) >= maxSpecs {
			// A caller that makes a Profile per step would grow the
			// cache without end: start it again. A Spec made anew gets
			// a new key, which the helper asks for in full once.
			clear(e.specs)
		}
		e.specs[p] = shared
	}
	e.specsMu.Unlock()
	spec := *shared
	spec.HostUID, spec.HostGID = hostID, hostID
	return &spec
}

// maxSpecs bounds the engine's Specs by profile: the daemon's profiles are
// a handful, fixed at start.
const maxSpecs = 64

// specKeys numbers the Specs of every engine of the process (see
// nsjail.Spec.Key).
var specKeys atomic.Uint64

// command turns a request into the jail's plain-data command.
func (e *Engine) command(req *StepRequest, lim api.Limits) *nsjail.Command {
	wsBytes := req.WorkspaceBytes
	if wsBytes == 0 {
		wsBytes = req.Profile.WorkspaceBytes
	}
	// RLIMIT_FSIZE is one byte above the limit: a file that reaches it
	// passed file_size_bytes (filePastLimit), whichever process wrote it
	// and whether or not SIGXFSZ ended it.
	//
	// RLIMIT_CPU is a backstop only: the cgroup budget below is exact and
	// acts first.
	cpuSeconds := uint64((lim.CPUTimeMS+999)/1000) + 1
	return &nsjail.Command{
		Argv:           req.Argv,
		Env:            req.Profile.Environ(req.Env),
		WorkspaceBytes: wsBytes,
		// A program that ends within lendAfter has no Started report:
		// one message and one wake-up fewer for the shortest runs, and
		// nothing that Started starts (the wall timer, lending the job's
		// hold) is due before then.
		StartedAfter: e.lendAfter,
		Rlimits: []nsjail.Rlimit{
			{Resource: unix.RLIMIT_NOFILE, Value: uint64(lim.OpenFiles)},
			{Resource: unix.RLIMIT_FSIZE, Value: uint64(lim.FileSizeBytes) + 1},
			{Resource: unix.RLIMIT_STACK, Value: uint64(lim.StackBytes)},
			{Resource: unix.RLIMIT_CPU, Value: cpuSeconds},
		},
	}
}

// filePastLimit says whether the step left a file larger than over bytes
// in its workspace, /tmp or /dev/shm, other than the files of before (a
// host workdir's, as they were when the step began). The sandbox's own
// trees are reached through its init's root, which lives until the sandbox
// is retired; those its init found holding nothing (unused, the
// nsjail.Exit.Unused bits) are not looked at: most runs leave no file.
func filePastLimit(proc *nsjail.Process, workdir string, over int64, before largeSet, unused uint32) bool {
	if unused&nsjail.UnusedKnown == 0 {
		unused = 0
	}
	var dirs []string
	for _, d := range []struct {
		path string
		bit  uint32
	}{{"tmp", nsjail.UnusedTmp}, {"dev/shm", nsjail.UnusedShm}, {nsjail.WorkspaceDir[1:], nsjail.UnusedWorkspace}} {
		if unused&d.bit == 0 && (d.bit != nsjail.UnusedWorkspace || workdir == "") {
			dirs = append(dirs, d.path)
		}
	}
	if len(dirs) > 0 && sandboxFilePastLimit(proc, dirs, over) {
		return true
	}
	if workdir != "" {
		fd, err := unix.Open(workdir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false
		}
		defer unix.Close(fd)
		found, _ := largeFiles(fd, over, before)
		return found
	}
	return false
}

// sandboxFilePastLimit says whether one of dirs, under the sandbox's root,
// holds a file larger than over bytes.
func sandboxFilePastLimit(proc *nsjail.Process, dirs []string, over int64) bool {
	root, err := unix.Open(fmt.Sprintf("/proc/%d/root", proc.Pid()), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(root)
	var fds []int
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	for _, d := range dirs {
		fd, err := unix.Openat2(root, d, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		if err == nil {
			fds = append(fds, fd)
		}
	}
	// Opened while the init was not yet reaped: its pid named no other
	// process.
	if !proc.Alive() {
		fds = fds[:0]
	}
	for _, fd := range fds {
		// A tmpfs whose only inode is its root holds no file: most runs.
		var st unix.Statfs_t
		if unix.Fstatfs(fd, &st) == nil && st.Files > 0 && st.Files-st.Ffree <= 1 {
			continue
		}
		if found, _ := largeFiles(fd, over, nil); found {
			return true
		}
	}
	return false
}

// watcher follows one running step: the init's reports, the wall clock,
// the CPU budget, the memory limit and the output caps.
type watcher struct {
	engine   *Engine
	grp      *cgroup.Group
	proc     *nsjail.Process
	lim      api.Limits
	held     bool // lend the job's hold on the pools while the program runs
	overflow chan struct{}

	exit nsjail.Exit
}

// Polling bounds for the CPU budget: the next look comes when the budget
// could first run out with every CPU busy, but never later than
// maxCPUPoll (which also bounds how late an OOM kill of a child is seen)
// nor sooner than minCPUPoll.
const (
	minCPUPoll = 500 * time.Microsecond
	maxCPUPoll = 50 * time.Millisecond
)

// cpuPollAfter is when to look at the CPU budget next, having found used
// of limit spent: when it could first run out with ncpu CPUs busy, within
// minCPUPoll and maxCPUPoll.
func cpuPollAfter(limit, used time.Duration, ncpu int) time.Duration {
	next := (limit - used) / time.Duration(max(ncpu, 1))
	return min(max(next, minCPUPoll), maxCPUPoll)
}

func (w *watcher) watch(ctx context.Context) stepFacts {
	var f stepFacts
	cpuLimit := time.Duration(w.lim.CPUTimeMS) * time.Millisecond
	wall := time.Duration(w.lim.WallTimeMS) * time.Millisecond
	// The first look comes when the budget could first run out: at the
	// start the step has used nothing yet (MarkStart), nor been OOM-killed.
	poll := time.NewTimer(cpuPollAfter(cpuLimit, 0, w.engine.ncpu))
	defer poll.Stop()
	var wallC <-chan time.Time
	// Until the program exec'ed, the wall limit bounds the setup too.
	setupTimer := time.NewTimer(wall + killWait)
	defer setupTimer.Stop()
	var deadline <-chan time.Time // after a kill: how long the init may take to report

	started := false
	var rekill <-chan time.Time
	var rekillTicker *time.Ticker
	defer func() {
		if rekillTicker != nil {
			rekillTicker.Stop()
		}
	}()
	kill := func(c killCause) {
		if f.cause == causeNone {
			f.cause = c
		}
		if !started {
			// The program may not have joined its cgroups yet: end the
			// whole sandbox through its init.
			w.proc.Kill()
			return
		}
		w.grp.KillProgram()
		if deadline == nil {
			deadline = time.After(killWait)
			rekillTicker = time.NewTicker(killRetry)
			rekill = rekillTicker.C
		}
	}
	for {
		select {
		case ev, ok := <-w.proc.Events():
			if !ok {
				if !f.exited && f.setupErr == nil && f.execErr == nil {
					f.setupErr = errors.New("the sandbox's init ended without a report")
				}
				return f
			}
			switch ev.Kind {
			case nsjail.Ready:
			case nsjail.Started:
				// ev.Exit.Wall of the program's time has passed already.
				started = true
				if w.held {
					defer w.engine.gate.lend(max(w.engine.lendAfter-ev.Exit.Wall, 0))()
				}
				t := time.NewTimer(max(wall-ev.Exit.Wall, 0))
				defer t.Stop()
				wallC = t.C
				setupTimer.Stop()
			case nsjail.Blocked:
				if f.cause == causeNone {
					f.cause = causeBlocked
					f.blocked = seccomp.SyscallName(ev.Arch, ev.Nr)
				}
				kill(causeBlocked)
			case nsjail.Exited:
				f.exited = true
				f.exitCode, f.signal = ev.Exit.Code, ev.Exit.Signal
				w.exit = ev.Exit
				return f
			case nsjail.Failed:
				var ee *nsjail.ExecError
				if errors.As(ev.Err, &ee) {
					f.execErr = ee
				} else if f.cause == causeNone {
					f.setupErr = ev.Err
				}
				return f
			}
		case <-wallC:
			kill(causeWall)
		case <-setupTimer.C:
			f.setupErr = errors.New("the sandbox did not start the program in time")
			w.proc.Kill()
		case <-w.overflow:
			// Output means the program exec'ed, whether or not its Started
			// event has been read: it is in its cgroups.
			started = true
			kill(causeOutput)
		case <-ctx.Done():
			kill(causeCancelled)
		case <-rekill:
			// Against a process caught between fork and its cgroup join.
			w.grp.KillProgram()
		case <-deadline:
			// The init did not report the end of a killed program: end it.
			w.proc.Kill()
		case <-poll.C:
			used, err := w.grp.CPUUsage()
			if err == nil && used >= cpuLimit {
				kill(causeCPU)
				continue
			}
			if n, err := w.grp.OOMKills(); err == nil && n > 0 {
				kill(causeMemory)
				continue
			}
			poll.Reset(cpuPollAfter(cpuLimit, used, w.engine.ncpu))
		}
	}
}

// chunks are the read buffers of captures, kept between steps: a fresh
// 64 KiB buffer for each stream of each step is a cost in page faults and
// garbage collection that a busy engine pays thousands of times a minute.
var chunks = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// OutputBudget is what is left of a job's output cap, shared by its steps'
// streams and its tracked files.
type OutputBudget struct {
	Cap  int64 // the whole cap, for messages
	left atomic.Int64
}

// NewOutputBudget is a budget of n bytes.
func NewOutputBudget(n int64) *OutputBudget {
	b := &OutputBudget{Cap: n}
	b.left.Store(n)
	return b
}

// Take takes up to n bytes of the budget and says how many it got. A nil
// budget gives all.
func (b *OutputBudget) Take(n int64) int64 {
	if b == nil {
		return n
	}
	for {
		left := b.left.Load()
		k := min(n, left)
		if b.left.CompareAndSwap(left, left-k) {
			return k
		}
	}
}

// capture reads one output stream, keeping at most limit bytes (and no
// more than its budget gives). Past either it signals overflow once and
// goes on reading (and dropping) until every writer is gone.
type capture struct {
	limit     int64
	stream    int
	onOutput  func(int, []byte)
	overflow  chan<- struct{}
	budget    *OutputBudget // nil: no cap beyond limit
	buf       []byte
	truncated bool
	budgetCut bool // the budget, not limit, cut the stream
}

func (c *capture) drain(r *os.File) {
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	chunk := *bp
	for {
		n, err := r.Read(chunk)
		if n > 0 && !c.truncated {
			keep := min(int64(n), c.limit-int64(len(c.buf)))
			if c.budget != nil {
				if got := c.budget.Take(keep); got < keep {
					keep, c.budgetCut = got, true
				}
			}
			if keep < int64(n) {
				c.truncated = true
				c.overflow <- struct{}{}
			}
			c.buf = append(c.buf, chunk[:keep]...)
			if c.onOutput != nil && keep > 0 {
				c.onOutput(c.stream, chunk[:keep])
			}
		}
		if err != nil {
			return
		}
	}
}
