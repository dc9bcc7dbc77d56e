/* signals: tries to signal the init (pid 1) by the ways kill(2) does not
 * cover, then checks that pid 1 is still there. "sigio": a pipe whose
 * owner (F_SETOWN) is pid 1 and whose I/O signal (F_SETSIG) is SIGKILL,
 * then a write to it. "others": tgkill, rt_sigqueueinfo and
 * pidfd_send_signal with SIGKILL. Each prints "<what>: <errno name>" (or
 * "ok"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long r) {
	if (r >= 0) printf("%s: ok\n", what);
	else printf("%s: %s\n", what, strerrorname_np(errno));
}

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	if (!strcmp(argv[1], "sigio")) {
		int p[2];
		if (pipe(p) != 0) return 1;
		report("F_SETOWN 1", fcntl(p[0], F_SETOWN, 1));
		report("F_SETSIG SIGKILL", fcntl(p[0], F_SETSIG, SIGKILL));
		report("O_ASYNC", fcntl(p[0], F_SETFL, O_ASYNC | O_NONBLOCK));
		report("write", write(p[1], "x", 1));
		report("F_SETOWN -1 (process group 1)", fcntl(p[0], F_SETOWN, -1));
		report("write", write(p[1], "x", 1));
		usleep(100000);
	} else {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = SIGKILL;
		si.si_code = SI_QUEUE;
		report("tgkill 1 1 SIGKILL", syscall(SYS_tgkill, 1, 1, SIGKILL));
		report("rt_sigqueueinfo 1 SIGKILL", syscall(SYS_rt_sigqueueinfo, 1, SIGKILL, &si));
		int pidfd = syscall(SYS_pidfd_open, 1, 0);
		report("pidfd_send_signal 1 SIGKILL", syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0));
	}
	report("pid 1 still there (kill 0)", kill(1, 0));
	return 0;
}
