// tables tries the kernel's host-wide tables, one line each:
//   aio: io_setup's errno, or "taken" (a context counts in fs.aio-nr, host-wide)
//   inotify: inotify_init1's errno, or "open"
//   mqueue: mq_open's errno, or "open"
//   netlink: the protocols N that socket(AF_NETLINK, SOCK_RAW, N) opened, or "none"
//   sigpending: how many real-time signals it could queue to itself, blocked,
//     before sigqueue failed (each counts up to the user namespace's owner)
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <mqueue.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/netlink.h>

static void show(const char *what, int r, const char *ok) {
	printf("%s: %s\n", what, r >= 0 ? ok : strerrorname_np(errno));
}

int main(void) {
	aio_context_t ctx = 0;
	show("aio", (int)syscall(SYS_io_setup, 1, &ctx), "taken");
	if (ctx)
		syscall(SYS_io_destroy, ctx);
	show("inotify", inotify_init1(IN_CLOEXEC), "open");
	struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 16};
	show("mqueue", mq_open("/sandboxd-tables", O_CREAT | O_RDWR, 0600, &a), "open");
	printf("netlink:");
	int opened = 0;
	for (int p = 0; p < 32; p++) {
		int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, p);
		if (fd >= 0) {
			printf(" %d", p);
			opened++;
			close(fd);
		}
	}
	printf("%s\n", opened ? "" : " none");
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	sigprocmask(SIG_BLOCK, &set, NULL);
	long n = 0;
	union sigval v = {0};
	while (n < 1000000 && sigqueue(getpid(), SIGRTMIN, v) == 0)
		n++;
	printf("sigpending: %ld then %s\n", n, strerrorname_np(errno));
	return 0;
}
