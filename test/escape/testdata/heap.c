/* heap: allocates and touches 1 MiB after 1 MiB until stopped, saying how
 * far it got every 16 MiB. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
	for (long mib = 1;; mib++) {
		char *p = malloc(1 << 20);
		if (p == NULL) {
			printf("malloc failed at %ld MiB\n", mib);
			return 1;
		}
		memset(p, 1, 1 << 20);
		if (mib % 16 == 0) {
			printf("%ld MiB\n", mib);
			fflush(stdout);
		}
	}
}
