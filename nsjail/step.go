package nsjail

// step names what a sandbox was doing when it failed. Every process
// reports a failure as a step (a number) and an errno, and a path where
// the step has one (arg in SetupError, in message): the init on fdReport,
// the program's process and the init's process before their start on a
// pipe (exitReporting), and this package's Go code as a *SetupError. The
// names are rendered here only, in the engine's process: the code that
// runs after a clone never formats text.
type step uint32

const (
	stepUnknown step = iota

	// The engine's process (Prepare, Run).
	stepStartInit        // the helper could not start the init
	stepHelperExecutable // the helper's executable (a sealed memfd)
	stepStartHelper      // starting the helper
	stepSendDescriptors  // the command's descriptors to the init
	stepSendCommand      // the command to the init
	stepOpenTreeWorkdir  // a detached copy of the workspace's mount
	stepSetattrWorkdir   // its nosuid, nodev
	stepInitDied         // the init ended without reporting why

	// Planning a root, in the helper (the host's view of each path).
	stepMkdir
	stepBind
	stepReadlink
	stepMount
	stepWrite

	// Templates, in the helper: wrap the step inside them.
	stepTemplate
	stepTemplateNamespace
	stepMakeDev
	stepReadOnlyRoot
	stepOpenNamespace

	// Building the root, in the init (rootPlan), or a template namespace.
	stepMakePrivate
	stepMountTmpfs
	stepRemount
	stepCreate
	stepSymlink
	stepMountProc
	stepMask
	stepAttachRoot
	stepCloseRoot
	stepChdir
	stepPivotRoot
	stepDetachOldRoot
	stepSethostname
	stepSetdomainname
	stepLoUp

	// The init's process from its clone (initChildMain).
	stepWaitIDMaps
	stepDeathSignal
	stepSetgidRoot
	stepSetuidRoot
	stepLayOutFDs

	// The init (rawInitMain).
	stepNotPID1
	stepBlockSIGCHLD
	stepSignalfd
	stepPipe
	stepSocketpair
	stepFork
	stepReadCommand
	stepReceiveDescriptors
	stepAttachWorkdir
	stepSendToProgram
	stepPpoll
	stepProgramReport

	// The program's process (programMain); reset signals and execve are the
	// init's process's too.
	stepJoinCgroup
	stepUnshareCgroup
	stepSetsid
	stepSignals
	stepReady
	stepReceive
	stepStdio
	stepChdirWorkspace
	stepRlimit
	stepAmbient
	stepBounding
	stepSetgid
	stepSetuid
	stepCapset
	stepNoNewPrivs
	stepSeccomp
	stepSendListener
	stepCloseRange
	stepSchedPolicy
	stepLayOutProgramFDs
	stepCPUAffinity
	stepExec
)

// String is the step's name; a SetupError puts its path after it.
func (s step) String() string {
	switch s {
	case stepStartInit:
		return "start init"
	case stepHelperExecutable:
		return "helper executable"
	case stepStartHelper:
		return "start the helper"
	case stepSendDescriptors:
		return "send the command's descriptors"
	case stepSendCommand:
		return "send the command"
	case stepOpenTreeWorkdir:
		return "open_tree workdir"
	case stepSetattrWorkdir:
		return "mount_setattr workdir"
	case stepInitDied:
		return "init"
	case stepMkdir:
		return "mkdir"
	case stepBind:
		return "bind"
	case stepReadlink:
		return "readlink"
	case stepMount:
		return "mount"
	case stepWrite:
		return "write"
	case stepTemplate:
		return "template"
	case stepTemplateNamespace:
		return "template namespace"
	case stepMakeDev:
		return "make /dev"
	case stepReadOnlyRoot:
		return "read-only /"
	case stepOpenNamespace:
		return "open the namespace"
	case stepMakePrivate:
		return "make / private"
	case stepMountTmpfs:
		return "mount tmpfs"
	case stepRemount:
		return "remount"
	case stepCreate:
		return "create"
	case stepSymlink:
		return "symlink"
	case stepMountProc:
		return "mount proc /proc"
	case stepMask:
		return "mask"
	case stepAttachRoot:
		return "attach the root"
	case stepCloseRoot:
		return "close the root's descriptor"
	case stepChdir:
		return "chdir"
	case stepPivotRoot:
		return "pivot_root"
	case stepDetachOldRoot:
		return "detach the old root"
	case stepSethostname:
		return "sethostname"
	case stepSetdomainname:
		return "setdomainname"
	case stepLoUp:
		return "bring lo up"
	case stepWaitIDMaps:
		return "wait for the id maps"
	case stepDeathSignal:
		return "set the parent-death signal"
	case stepSetgidRoot:
		return "setresgid 0"
	case stepSetuidRoot:
		return "setresuid 0"
	case stepLayOutFDs:
		return "lay out descriptors"
	case stepNotPID1:
		return "the init is not pid 1 of its namespace"
	case stepBlockSIGCHLD:
		return "block SIGCHLD"
	case stepSignalfd:
		return "signalfd"
	case stepPipe:
		return "pipe"
	case stepSocketpair:
		return "socketpair"
	case stepFork:
		return "fork"
	case stepReadCommand:
		return "read command"
	case stepReceiveDescriptors:
		return "receive the command's descriptors"
	case stepAttachWorkdir:
		return "attach workdir"
	case stepSendToProgram:
		return "send the command to the program's process"
	case stepPpoll:
		return "ppoll"
	case stepProgramReport:
		return "the program's process's report"
	case stepJoinCgroup:
		return "join cgroup"
	case stepUnshareCgroup:
		return "unshare cgroup namespace"
	case stepSetsid:
		return "setsid"
	case stepSignals:
		return "reset signals"
	case stepReady:
		return "report ready"
	case stepReceive:
		return "receive the command"
	case stepStdio:
		return "dup the command's descriptors"
	case stepChdirWorkspace:
		return "chdir " + WorkspaceDir
	case stepRlimit:
		return "setrlimit"
	case stepAmbient:
		return "clear ambient capabilities"
	case stepBounding:
		return "drop bounding capabilities"
	case stepSetgid:
		return "setresgid"
	case stepSetuid:
		return "setresuid"
	case stepCapset:
		return "capset"
	case stepNoNewPrivs:
		return "no_new_privs"
	case stepSeccomp:
		return "seccomp"
	case stepSendListener:
		return "send seccomp listener"
	case stepCloseRange:
		return "close_range"
	case stepSchedPolicy:
		return "set the scheduling policy SCHED_OTHER"
	case stepLayOutProgramFDs:
		return "lay out the program's descriptors"
	case stepCPUAffinity:
		return "sched_setaffinity"
	case stepExec:
		return "execve"
	}
	return "unknown step"
}
