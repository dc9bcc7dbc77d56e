/* zombies: forks 40 children that exit at once and never reaps them, waits
 * until /proc shows all 40 as zombies (or 10 s pass), prints how many it
 * saw, and exits, leaving them to the init. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int count_zombies(void) {
	int zombies = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL) {
		char path[300], buf[512];
		snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL) continue;
		if (fgets(buf, sizeof buf, f) != NULL) {
			char *s = strrchr(buf, ')');
			if (s != NULL && s[1] == ' ' && s[2] == 'Z') zombies++;
		}
		fclose(f);
	}
	if (d != NULL) closedir(d);
	return zombies;
}

int main(void) {
	for (int i = 0; i < 40; i++) {
		pid_t p = fork();
		if (p == 0) _exit(0);
		if (p < 0) {
			perror("fork");
			return 1;
		}
	}
	int zombies = 0;
	for (int tries = 0; tries < 1000 && (zombies = count_zombies()) < 40; tries++) usleep(10000);
	printf("zombies=%d\n", zombies);
	return 0;
}
