/* threads: 16 threads spin forever. */
#include <pthread.h>
#include <stdio.h>

static void *spin(void *arg) {
	volatile unsigned long n = 0;
	for (;;) n++;
	return arg;
}

int main(void) {
	pthread_t t;
	for (int i = 0; i < 16; i++)
		if (pthread_create(&t, NULL, spin, NULL) != 0) {
			printf("pthread_create failed at %d\n", i);
			return 1;
		}
	spin(NULL);
}
