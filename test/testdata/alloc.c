/* Allocates argv[1] MiB and touches every page, holds it for argv[2]
 * milliseconds (default none), then prints "done". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
int main(int argc, char **argv) {
	long mib = argc > 1 ? atol(argv[1]) : 512;
	long hold = argc > 2 ? atol(argv[2]) : 0;
	for (long i = 0; i < mib; i++) {
		char *p = malloc(1 << 20);
		if (!p) { puts("malloc failed"); return 1; }
		memset(p, 1, 1 << 20);
	}
	struct timespec ts = {hold / 1000, (hold % 1000) * 1000000};
	nanosleep(&ts, NULL);
	puts("done");
	return 0;
}
