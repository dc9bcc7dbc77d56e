/* nsfds: tries to get hold of namespaces outside the sandbox as file
 * descriptors. "pidfd": pidfd_open(1), then every PIDFD_GET_*_NAMESPACE
 * ioctl on it (the init's namespaces; its cgroup namespace is the host's).
 * "nsfs": NS_GET_PARENT and NS_GET_USERNS on the sandbox's own namespace
 * files, which would name the host's. Each prints "<what>: <errno name>",
 * or what it got a descriptor of. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show(const char *what, int fd) {
	if (fd < 0) {
		printf("%s: %s\n", what, strerrorname_np(errno));
		return;
	}
	char path[64], link[256] = "", own[256] = "";
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	n = readlink("/proc/self/ns/user", own, sizeof own - 1);
	own[n > 0 ? n : 0] = 0;
	if (!strcmp(link, own)) printf("%s: got the sandbox's own user namespace\n", what);
	else printf("%s: got %s\n", what, link);
}

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	if (!strcmp(argv[1], "pidfd")) {
		static const char *names[] = {"cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time", "time_for_children", "user", "uts"};
		int pidfd = syscall(SYS_pidfd_open, 1, 0);
		if (pidfd < 0) {
			show("pidfd_open 1", pidfd);
			return 1;
		}
		for (int i = 0; i < 10; i++) {
			char what[64];
			snprintf(what, sizeof what, "PIDFD_GET_%s_NAMESPACE", names[i]);
			show(what, ioctl(pidfd, _IO(0xFF, i + 1), 0)); /* PIDFS_IOCTL_MAGIC */
		}
		return 0;
	}
	static const char *nss[] = {"user", "pid", "net", "mnt"};
	for (int i = 0; i < 4; i++) {
		char path[64], what[96];
		snprintf(path, sizeof path, "/proc/self/ns/%s", nss[i]);
		int fd = open(path, O_RDONLY);
		snprintf(what, sizeof what, "NS_GET_PARENT %s", nss[i]);
		show(what, ioctl(fd, _IO(0xb7, 0x2), 0));
		snprintf(what, sizeof what, "NS_GET_USERNS %s", nss[i]);
		show(what, ioctl(fd, _IO(0xb7, 0x1), 0));
	}
	return 0;
}
