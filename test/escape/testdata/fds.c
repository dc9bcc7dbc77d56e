/* fds: opens /dev/null until the kernel says no, and says how many it got
 * and why it stopped. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

int main(void) {
	long n = 0;
	for (;;) {
		if (open("/dev/null", O_RDONLY) < 0) break;
		n++;
	}
	printf("opened %ld then %s\n", n, strerrorname_np(errno));
	return 0;
}
