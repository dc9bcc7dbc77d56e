/* doublefork: the classic daemon: fork, setsid, fork again, ignore every
 * signal that can be ignored, and keep working in the background, writing
 * a heartbeat counter to the file "beat" every 20 ms for a minute. The
 * original process waits for the first beat, then exits 0. */
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

int main(void) {
	int p[2];
	pipe(p);
	if (fork() == 0) {
		setsid();
		if (fork() == 0) {
			for (int s = 1; s < 32; s++) signal(s, SIG_IGN);
			close(0);
			close(1);
			close(2);
			for (long n = 1; n <= 3000; n++) {
				FILE *f = fopen("beat.tmp", "w");
				fprintf(f, "%ld\n", n);
				fclose(f);
				rename("beat.tmp", "beat");
				if (n == 1) write(p[1], "1", 1);
				usleep(20000);
			}
		}
		_exit(0);
	}
	char c;
	read(p[0], &c, 1);
	printf("parent done\n");
	return 0;
}
