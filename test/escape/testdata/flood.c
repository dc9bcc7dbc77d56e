/* flood: two processes write as fast as they can, one on stdout and one on
 * stderr, forever. */
#include <string.h>
#include <unistd.h>

int main(void) {
	static char buf[65536];
	int fd = fork() == 0 ? 2 : 1;
	memset(buf, fd == 1 ? 'o' : 'e', sizeof buf);
	for (;;) write(fd, buf, sizeof buf);
}
