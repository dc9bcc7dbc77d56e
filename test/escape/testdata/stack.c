/* stack: recurses with 4 KiB frames until the stack runs out, saying how
 * deep it got every 4 MiB. */
#include <stdio.h>
#include <string.h>

static long down(long depth) {
	volatile char frame[4096];
	memset((char *)frame, (int)depth, sizeof frame);
	if (depth % 1024 == 0) {
		printf("%ld MiB\n", depth / 256);
		fflush(stdout);
	}
	if (depth > (1L << 40)) return 0; /* never: 4 PiB of stack */
	return down(depth + 1) + frame[depth % sizeof frame];
}

int main(void) { return (int)down(1); }
