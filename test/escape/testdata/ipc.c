/* ipc: "create" makes a System V shared memory segment, semaphore set and
 * message queue under the key argv[2], and a POSIX shared memory object
 * /sandboxd-escape, says "ready", and sleeps. "probe" looks for all four
 * and prints what it found (an errno name, or "found"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <unistd.h>

static void show(const char *what, int r) {
	printf("%s: %s\n", what, r >= 0 ? "found" : strerrorname_np(errno));
}

int main(int argc, char **argv) {
	if (argc != 3) return 2;
	key_t key = (key_t)strtol(argv[2], NULL, 0);
	if (!strcmp(argv[1], "create")) {
		int shm = shmget(key, 4096, IPC_CREAT | IPC_EXCL | 0666);
		int sem = semget(key, 1, IPC_CREAT | IPC_EXCL | 0666);
		int msg = msgget(key, IPC_CREAT | IPC_EXCL | 0666);
		int pshm = shm_open("/sandboxd-escape", O_CREAT | O_EXCL | O_RDWR, 0666);
		if (shm < 0 || sem < 0 || msg < 0 || pshm < 0) {
			perror("create");
			return 1;
		}
		char *p = shmat(shm, NULL, 0);
		strcpy(p, "secret of job A");
		write(pshm, "secret of job A", 15);
		show("shm", shmget(key, 0, 0));
		show("sem", semget(key, 0, 0));
		show("msg", msgget(key, 0));
		show("posix shm", shm_open("/sandboxd-escape", O_RDONLY, 0));
		printf("ready\n");
		fflush(stdout);
		for (;;) pause();
	}
	show("shm", shmget(key, 0, 0));
	show("sem", semget(key, 0, 0));
	show("msg", msgget(key, 0));
	show("posix shm", shm_open("/sandboxd-escape", O_RDONLY, 0));
	return 0;
}
