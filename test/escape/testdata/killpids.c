/* killpids: sends SIGKILL to every pid from argv[1] to argv[2] but its own,
 * and says what happened: how many signals were delivered, how many pids
 * were there but refused (EPERM), how many did not exist (ESRCH), which
 * pids refused, and the tasks of the init (pid 1 and its threads) for
 * comparison. With one argument it signals only that pid and prints the
 * errno name. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc == 2) {
		int r = kill(atoi(argv[1]), SIGKILL);
		printf("kill %s: %s\n", argv[1], r == 0 ? "ok" : strerrorname_np(errno));
		return 0;
	}
	if (argc != 3) return 2;
	int from = atoi(argv[1]), to = atoi(argv[2]), sent = 0, eperm = 0, esrch = 0;
	char refused[4096] = "";
	for (int pid = from; pid <= to; pid++) {
		if (pid == getpid()) continue;
		if (kill(pid, SIGKILL) == 0) {
			sent++;
		} else if (errno == EPERM) {
			eperm++;
			snprintf(refused + strlen(refused), sizeof refused - strlen(refused), " %d", pid);
		} else if (errno == ESRCH) {
			esrch++;
		}
	}
	printf("sent=%d eperm=%d esrch=%d\nrefused:%s\ninit tasks:", sent, eperm, esrch, refused);
	int tasks[256], n = 0;
	DIR *d = opendir("/proc/1/task");
	struct dirent *e;
	while (d != NULL && (e = readdir(d)) != NULL && n < 256)
		if (e->d_name[0] != '.') tasks[n++] = atoi(e->d_name);
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (tasks[j] < tasks[i]) {
				int x = tasks[i];
				tasks[i] = tasks[j];
				tasks[j] = x;
			}
	for (int i = 0; i < n; i++) printf(" %d", tasks[i]);
	printf("\n");
	return 0;
}
