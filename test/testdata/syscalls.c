/* Calls the system call named by argv[1] with harmless arguments and prints
 * what it returned. Under sandboxd every call listed here is forbidden: the
 * process should never get to print. "clone3" is refused softly (ENOSYS). */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static long x32(long nr) { return syscall(nr | 0x40000000); }

static long int80(long nr) {
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
	return ret;
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *c = argv[1];
	long r = -1;
	char x = 'x';
	if (!strcmp(c, "ptrace")) r = syscall(SYS_ptrace, 0 /* TRACEME */, 0, 0, 0);
	else if (!strcmp(c, "unshare")) r = syscall(SYS_unshare, CLONE_NEWUSER);
	else if (!strcmp(c, "setns")) r = syscall(SYS_setns, 0, CLONE_NEWNET);
	else if (!strcmp(c, "clone")) r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	else if (!strcmp(c, "clone3")) { struct clone_args a; memset(&a, 0, sizeof a); a.exit_signal = SIGCHLD; r = syscall(SYS_clone3, &a, sizeof a); if (r == 0) _exit(0); }
	else if (!strcmp(c, "mount")) r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
	else if (!strcmp(c, "umount2")) r = syscall(SYS_umount2, "/tmp", 0);
	else if (!strcmp(c, "pivot_root")) r = syscall(SYS_pivot_root, ".", ".");
	else if (!strcmp(c, "chroot")) r = syscall(SYS_chroot, ".");
	else if (!strcmp(c, "bpf")) r = syscall(SYS_bpf, 0, 0, 0);
	else if (!strcmp(c, "perf_event_open")) r = syscall(SYS_perf_event_open, 0, 0, -1, -1, 0);
	else if (!strcmp(c, "keyctl")) r = syscall(SYS_keyctl, 0, 0, 0, 0, 0);
	else if (!strcmp(c, "add_key")) r = syscall(SYS_add_key, "user", "k", "v", 1, 0);
	else if (!strcmp(c, "request_key")) r = syscall(SYS_request_key, "user", "k", 0, 0);
	else if (!strcmp(c, "userfaultfd")) r = syscall(SYS_userfaultfd, 0);
	else if (!strcmp(c, "io_uring_setup")) r = syscall(SYS_io_uring_setup, 1, 0);
	else if (!strcmp(c, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, 0, 0);
	else if (!strcmp(c, "init_module")) r = syscall(SYS_init_module, 0, 0, "");
	else if (!strcmp(c, "finit_module")) r = syscall(SYS_finit_module, -1, "", 0);
	else if (!strcmp(c, "delete_module")) r = syscall(SYS_delete_module, "x", 0);
	else if (!strcmp(c, "reboot")) r = syscall(SYS_reboot, 0, 0, 0, 0);
	else if (!strcmp(c, "swapon")) r = syscall(SYS_swapon, "/x", 0);
	else if (!strcmp(c, "TIOCSTI")) r = ioctl(0, TIOCSTI, &x);
	else if (!strcmp(c, "TIOCLINUX")) r = ioctl(0, TIOCLINUX, &x);
	else if (!strcmp(c, "open_by_handle_at")) r = syscall(SYS_open_by_handle_at, -1, 0, 0);
	else if (!strcmp(c, "syslog")) r = syscall(SYS_syslog, 3, 0, 0);
	else if (!strcmp(c, "iopl")) r = syscall(SYS_iopl, 3);
	else if (!strcmp(c, "ioperm")) r = syscall(SYS_ioperm, 0, 1, 1);
	else if (!strcmp(c, "personality")) r = syscall(SYS_personality, 0x0400000 /* READ_IMPLIES_EXEC */);
	else if (!strcmp(c, "process_vm_readv")) r = syscall(SYS_process_vm_readv, 1, 0, 0, 0, 0, 0);
	else if (!strcmp(c, "i386")) r = int80(20 /* getpid */);
	else if (!strcmp(c, "x32")) r = x32(39 /* getpid */);
	else { printf("unknown call %s\n", c); return 2; }
	printf("%s returned %ld errno %d (%s)\n", c, r, errno, strerror(errno));
	return 0;
}
