/* inherited: lists every open file descriptor above 2 and what it is: the
 * daemon or the init must hand the program nothing but stdin, stdout and
 * stderr. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
	int n = 0;
	for (int fd = 3; fd < 65536; fd++) {
		if (fcntl(fd, F_GETFD) < 0) continue;
		char path[64], target[256];
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
		ssize_t len = readlink(path, target, sizeof target - 1);
		target[len < 0 ? 0 : len] = 0;
		printf("fd %d -> %s\n", fd, target);
		n++;
	}
	printf("%d inherited descriptors\n", n);
	return 0;
}
