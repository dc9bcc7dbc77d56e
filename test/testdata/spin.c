/* spin [THREADS [MS]]: THREADS threads (default 1) spin on the CPU. With MS,
 * each stops after MS ms of its own CPU time and the program exits 0;
 * without, they spin until killed. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
static long budget_ms = -1;
static void *spin(void *arg) {
	(void)arg;
	struct timespec ts;
	for (volatile unsigned long i = 0;; i++) {
		if (budget_ms >= 0 && (i & 0xffff) == 0) {
			clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
			if (ts.tv_sec * 1000 + ts.tv_nsec / 1000000 >= budget_ms) return 0;
		}
	}
}
int main(int argc, char **argv) {
	int n = argc > 1 ? atoi(argv[1]) : 1;
	if (argc > 2) budget_ms = atol(argv[2]);
	pthread_t t[64];
	for (int i = 0; i < n && i < 64; i++) pthread_create(&t[i], 0, spin, 0);
	for (int i = 0; i < n && i < 64; i++) pthread_join(t[i], 0);
	return 0;
}
