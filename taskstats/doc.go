// Package taskstats follows the kernel's exit statistics of tasks (the
// TASKSTATS generic netlink family) to give each sandboxed program's peak
// RSS of its own.
//
// # Why
//
// A program's rusage maximum RSS carries the peak of the address space it
// was started from: the kernel folds the old memory's peak into the
// process's record when it execs. A sandbox's program starts as a clone
// of its init, which shares the helper's memory (see nsjail), so its
// rusage never reads below the helper's few MiB, even for /bin/true. The kernel's exit
// record of each task instead holds the peak RSS of the task's own address
// space as it exits (hiwater_rss), and the task's host uid and pid.
//
// # Contract
//
// Listen opens a netlink socket and registers it for the exit records of
// every task on every possible CPU. Watch(uid) starts collecting the
// records of tasks whose real uid on the host is uid (sandboxd gives each
// live sandbox's program a host uid of its own); End drains every record
// the kernel has queued so far and returns the largest peak seen. A task's
// record is queued in its exit path before its parent can learn of its
// end, so once a program's init has reported the program's end, End sees
// the program's own record.
//
// Records come for every exit on the host; a goroutine reads what was
// queued every 20 ms (and End reads the rest), keeping only the watched
// uids'. If the socket overflows (ENOBUFS), records were lost: every watch
// then open ends with ok false, and the caller falls back to rusage.
//
// # What it needs from the kernel
//
// CONFIG_TASKSTATS and CONFIG_TASK_XACCT (hiwater_rss), CAP_NET_ADMIN in
// the initial user namespace (registering a listener is an administrative
// command), and the initial network namespace (the kernel sends exit
// records there only). Listen's error says which is missing.
//
// # Why our own code
//
// It is about 200 lines over golang.org/x/sys/unix: one request to find
// the family, one to register, and a parser of one message type. The
// netlink libraries in Go query one task at a time and do not register
// for exit records.
package taskstats
