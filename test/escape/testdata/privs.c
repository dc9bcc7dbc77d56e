/* privs: tries ONE way to regain privileges, named by argv[1], prints the
 * outcome as "<what>: <errno name>" (or ": ok"), then the identity and
 * capability lines of /proc/self/status. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *what, long r) {
	if (r == 0) printf("%s: ok\n", what);
	else printf("%s: %s\n", what, strerrorname_np(errno));
}

int main(int argc, char **argv) {
	if (argc < 2) return 2;
	const char *c = argv[1];
	if (!strcmp(c, "capset")) {
		struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
		struct __user_cap_data_struct d[2];
		memset(d, 0xff, sizeof d);
		report("capset all", syscall(SYS_capset, &h, d));
	} else if (!strcmp(c, "ambient")) {
		report("raise ambient CAP_SYS_ADMIN", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN, 0, 0));
	} else if (!strcmp(c, "setuid0")) {
		report("setresuid 0", setresuid(0, 0, 0));
		report("setresgid 0", setresgid(0, 0, 0));
		gid_t g = 0;
		report("setgroups 0", setgroups(1, &g));
	} else if (!strcmp(c, "rlimits")) {
		struct rlimit inf = {RLIM_INFINITY, RLIM_INFINITY};
		report("raise RLIMIT_CORE", setrlimit(RLIMIT_CORE, &inf));
		report("raise RLIMIT_NOFILE", setrlimit(RLIMIT_NOFILE, &inf));
		report("raise RLIMIT_CPU", setrlimit(RLIMIT_CPU, &inf));
	} else if (!strcmp(c, "no_new_privs_off")) {
		report("clear no_new_privs", prctl(PR_SET_NO_NEW_PRIVS, 0, 0, 0, 0));
	} else {
		fprintf(stderr, "unknown %s\n", c);
		return 2;
	}
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (!strncmp(line, "Uid:", 4) || !strncmp(line, "Gid:", 4) || !strncmp(line, "Cap", 3) ||
		    !strncmp(line, "NoNewPrivs:", 11) || !strncmp(line, "Seccomp:", 8))
			fputs(line, stdout);
	return 0;
}
