/* loop [N]: a fixed busy loop of N iterations, then exit 0. Without N (or
 * with 0) it spins until killed. The same work every run, so that the CPU
 * time it is charged can show how steady the accounting is. */
#include <stdlib.h>
int main(int argc, char **argv) {
	unsigned long n = argc > 1 ? strtoul(argv[1], 0, 10) : 0;
	for (volatile unsigned long i = 0; n == 0 || i < n; i++)
		;
	return 0;
}
