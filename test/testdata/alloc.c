/* Allocates argv[1] MiB and touches every page, then prints "done". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv) {
	long mib = argc > 1 ? atol(argv[1]) : 512;
	for (long i = 0; i < mib; i++) {
		char *p = malloc(1 << 20);
		if (!p) { puts("malloc failed"); return 1; }
		memset(p, 1, 1 << 20);
	}
	puts("done");
	return 0;
}
