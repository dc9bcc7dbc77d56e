/* ids: prints the real, effective and saved user and group ids, and the
 * effective capabilities, of the running process. Run set-uid, it shows
 * whether the set-uid bit took effect. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	printf("uids %d %d %d gids %d %d %d\n", ru, eu, su, rg, eg, sg);
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (!strncmp(line, "CapEff:", 7) || !strncmp(line, "CapPrm:", 7) || !strncmp(line, "NoNewPrivs:", 11))
			fputs(line, stdout);
	return 0;
}
