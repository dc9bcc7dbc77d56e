// selftime sleeps for argv[1] microseconds and prints how long it ran by
// its own clock, from the start of main to just before exit, in ns.
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static long long now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv) {
	long long t0 = now();
	long us = argc > 1 ? atol(argv[1]) : 10000;
	struct timespec d = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&d, NULL);
	printf("%lld\n", now() - t0);
	return 0;
}
