/* blocked: makes ONE system call that reaches kernel attack surface or could
 * leave the sandbox, named by argv[1], with harmless arguments. If the call
 * comes back at all, it prints what it returned and exits 0, so a verdict
 * "ok" means the sandbox let the call through. A few calls are refused
 * softly (ENOSYS) by design: the program then goes on and says so. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_fsopen
#define SYS_fsopen 430
#endif
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif

static long int80(long nr) {
	long ret;
	__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr) : "memory");
	return ret;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: blocked CALL\n");
		return 2;
	}
	const char *c = argv[1];
	char x = 'x';
	long r;
	errno = 0;
	if (!strcmp(c, "unshare")) r = syscall(SYS_unshare, CLONE_NEWUSER);
	else if (!strcmp(c, "setns")) {
		int fd = open("/proc/self/ns/user", O_RDONLY);
		r = syscall(SYS_setns, fd, 0);
	} else if (!strcmp(c, "clone_newuser")) {
		r = syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
		if (r == 0) _exit(0);
	} else if (!strcmp(c, "clone_newnet")) {
		r = syscall(SYS_clone, CLONE_NEWNET | CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
		if (r == 0) _exit(0);
	} else if (!strcmp(c, "clone3_newuser")) {
		struct clone_args a;
		memset(&a, 0, sizeof a);
		a.flags = CLONE_NEWUSER;
		a.exit_signal = SIGCHLD;
		r = syscall(SYS_clone3, &a, sizeof a);
		if (r == 0) _exit(0);
	} else if (!strcmp(c, "ptrace_child")) {
		pid_t child = fork();
		if (child == 0) {
			pause();
			_exit(0);
		}
		r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, child, 0, 0);
	} else if (!strcmp(c, "ptrace_init")) r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, 1, 0, 0);
	else if (!strcmp(c, "process_vm_readv")) {
		char buf[8];
		struct { void *base; size_t len; } local = {buf, sizeof buf}, remote = {(void *)0x400000, sizeof buf};
		r = syscall(SYS_process_vm_readv, 1, &local, 1, &remote, 1, 0);
	} else if (!strcmp(c, "pidfd_getfd")) {
		int pidfd = syscall(SYS_pidfd_open, 1, 0);
		r = syscall(SYS_pidfd_getfd, pidfd, 0, 0);
	} else if (!strcmp(c, "mount")) r = syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, 0);
	else if (!strcmp(c, "umount2")) r = syscall(SYS_umount2, "/workspace", 2 /* MNT_DETACH */);
	else if (!strcmp(c, "pivot_root")) r = syscall(SYS_pivot_root, "/tmp", "/tmp");
	else if (!strcmp(c, "chroot")) r = syscall(SYS_chroot, "/tmp");
	else if (!strcmp(c, "fsopen")) r = syscall(SYS_fsopen, "tmpfs", 0);
	else if (!strcmp(c, "open_tree")) r = syscall(SYS_open_tree, AT_FDCWD, "/", 1 /* OPEN_TREE_CLONE */);
	else if (!strcmp(c, "open_by_handle_at")) {
		struct { unsigned int bytes; int type; unsigned char h[8]; } fh = {8, 1, {2, 0, 0, 0, 0, 0, 0, 0}};
		r = syscall(SYS_open_by_handle_at, AT_FDCWD, &fh, O_RDONLY);
	} else if (!strcmp(c, "name_to_handle_at")) {
		struct { unsigned int bytes; int type; unsigned char h[128]; } fh = {128, 0, {0}};
		int mnt;
		r = syscall(SYS_name_to_handle_at, AT_FDCWD, "/usr", &fh, &mnt, 0);
	} else if (!strcmp(c, "keyctl")) r = syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* session */, 1, 0, 0);
	else if (!strcmp(c, "add_key")) r = syscall(SYS_add_key, "user", "escape", "v", 1, -3);
	else if (!strcmp(c, "bpf")) {
		char attr[128];
		memset(attr, 0, sizeof attr);
		r = syscall(SYS_bpf, 0 /* BPF_MAP_CREATE */, attr, sizeof attr);
	} else if (!strcmp(c, "perf_event_open")) {
		char attr[128];
		memset(attr, 0, sizeof attr);
		r = syscall(SYS_perf_event_open, attr, 0, -1, -1, 0);
	} else if (!strcmp(c, "userfaultfd")) r = syscall(SYS_userfaultfd, O_CLOEXEC);
	else if (!strcmp(c, "io_uring_setup")) {
		char params[120];
		memset(params, 0, sizeof params);
		r = syscall(SYS_io_uring_setup, 4, params);
	} else if (!strcmp(c, "TIOCSTI")) r = ioctl(0, TIOCSTI, &x);
	else if (!strcmp(c, "TIOCSTI_high_bits")) r = syscall(SYS_ioctl, 0, 0xdead00000000UL | TIOCSTI, &x);
	else if (!strcmp(c, "TIOCLINUX")) {
		char sub = 2; /* TIOCL_SETSEL */
		r = ioctl(0, TIOCLINUX, &sub);
	} else if (!strcmp(c, "i386_int80")) r = int80(20 /* getpid */);
	else if (!strcmp(c, "x32")) r = syscall(39 /* getpid */ | 0x40000000);
	else if (!strcmp(c, "personality_read_implies_exec")) r = syscall(SYS_personality, 0x0400000);
	else if (!strcmp(c, "syslog")) {
		char buf[256];
		r = syscall(SYS_syslog, 3 /* READ_ALL */, buf, sizeof buf);
	} else if (!strcmp(c, "kexec_load")) r = syscall(SYS_kexec_load, 0, 0, 0, 0);
	else if (!strcmp(c, "init_module")) r = syscall(SYS_init_module, "", 0, "");
	else if (!strcmp(c, "reboot")) r = syscall(SYS_reboot, 0xfee1dead, 672274793, 0x4321fedc /* POWER_OFF */, 0);
	else if (!strcmp(c, "clock_settime")) {
		struct timespec ts = {0, 0};
		r = syscall(SYS_clock_settime, CLOCK_REALTIME, &ts);
	} else if (!strcmp(c, "iopl")) r = syscall(SYS_iopl, 3);
	else if (!strcmp(c, "swapon")) r = syscall(SYS_swapon, "/workspace/swap", 0);
	else if (!strcmp(c, "modify_ldt")) {
		char buf[16];
		r = syscall(SYS_modify_ldt, 0, buf, sizeof buf);
	} else {
		fprintf(stderr, "unknown call %s\n", c);
		return 2;
	}
	int e = errno;
	printf("%s returned %ld %s\n", c, r, r < 0 ? strerrorname_np(e) : "");
	printf("continued\n");
	return 0;
}
