/* A solution of the guessing game of the interactive tests: it guesses a
 * number from 1 to 1000 on stdout and reads "higher", "lower" or "correct"
 * on stdin. argv[1] says how: search (binary search, right), wrong (always
 * 1), silent (never writes), crash (SIGSEGV after one guess), closein
 * (closes its stdin, then guesses). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int ask(int g, char *answer, int n) {
	if (printf("%d\n", g) < 0 || fflush(stdout) != 0)
		return 0;
	return fgets(answer, n, stdin) != NULL;
}

int main(int argc, char **argv) {
	const char *mode = argc > 1 ? argv[1] : "search";
	char answer[64];
	if (!strcmp(mode, "silent")) {
		for (;;)
			pause();
	}
	if (!strcmp(mode, "crash")) {
		ask(500, answer, sizeof answer);
		volatile int *p = 0;
		return *p;
	}
	if (!strcmp(mode, "closein")) {
		close(0);
		printf("500\n");
		fflush(stdout);
		return 0;
	}
	if (!strcmp(mode, "wrong")) {
		signal(SIGPIPE, SIG_IGN);
		while (ask(1, answer, sizeof answer))
			;
		return 0;
	}
	int lo = 1, hi = 1000;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (!ask(mid, answer, sizeof answer))
			return 3;
		if (!strncmp(answer, "correct", 7))
			return 0;
		if (!strncmp(answer, "higher", 6))
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 4;
}
