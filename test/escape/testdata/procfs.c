/* procfs: tries ONE way through /proc to reach the init or the program's own
 * binary, named by argv[1], and prints the outcome as "<what>: <errno name>"
 * (or "<what>: ok" when it worked). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void report(const char *what, int ok) {
	if (ok) printf("%s: ok\n", what);
	else printf("%s: %s\n", what, strerrorname_np(errno));
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *c = argv[1];
	if (!strcmp(c, "self_exe_write")) {
		/* Overwrite the running program's own file through the magic link. */
		int fd = open("/proc/self/exe", O_WRONLY);
		if (fd >= 0 && write(fd, "EVIL", 4) != 4) fd = -1;
		report("open /proc/self/exe for writing", fd >= 0);
	} else if (!strcmp(c, "init_exe_write")) {
		int fd = open("/proc/1/exe", O_WRONLY);
		if (fd >= 0 && write(fd, "EVIL", 4) != 4) fd = -1;
		report("open /proc/1/exe for writing", fd >= 0);
	} else if (!strcmp(c, "init_exe_read")) {
		int fd = open("/proc/1/exe", O_RDONLY);
		report("open /proc/1/exe for reading", fd >= 0);
	} else if (!strcmp(c, "init_root")) {
		DIR *d = opendir("/proc/1/root");
		report("opendir /proc/1/root", d != NULL);
		int fd = open("/proc/1/root/etc/passwd", O_RDONLY);
		report("open /proc/1/root/etc/passwd", fd >= 0);
		struct stat st;
		report("stat /proc/1/root/", stat("/proc/1/root/", &st) == 0);
	} else if (!strcmp(c, "init_environ")) {
		char buf[4096];
		int fd = open("/proc/1/environ", O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf) : -1;
		report("read /proc/1/environ", n >= 0);
	} else if (!strcmp(c, "init_mem")) {
		int fd = open("/proc/1/mem", O_RDWR);
		report("open /proc/1/mem", fd >= 0);
	} else {
		fprintf(stderr, "unknown %s\n", c);
		return 2;
	}
	return 0;
}
