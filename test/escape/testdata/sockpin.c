// sockpin MODE [PROCS]: pin kernel memory in socket buffers that are never
// read, from PROCS processes (default 63), each opening as many sockets of
// one kind as its open-files limit allows and filling each. MODE is netlink
// (every protocol the sandbox may open), netlink_route (NETLINK_ROUTE alone), tcp (loopback pairs), udp,
// unix_stream, unix_dgram or pipe. When every process is done it prints
//   mode=M procs=N socks=S queued_kb=Q net_kb=K drop_kb=D protos=P
// where Q is what the processes managed to send, K what the sockets of the
// sandbox's network namespace hold (the queues in /proc/net/{tcp,tcp6,udp,
// udp6,netlink}), D how far the host's MemAvailable (/proc/meminfo is the
// host's) fell meanwhile, and P the netlink protocols that opened; then it exits 0 and the sandbox's end frees everything.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
	long queued; // bytes
	long socks;
	long done;
	unsigned protos; // netlink protocols that could be opened
};
static struct shared *sh;
static char buf[1 << 16];

// meminfo is opened before the sockets take every descriptor.
static int meminfo = -1;

static long mem_available_kb(void) {
	char text[4096];
	ssize_t n = pread(meminfo, text, sizeof text - 1, 0);
	if (n <= 0)
		return -1;
	text[n] = 0;
	char *p = strstr(text, "MemAvailable:");
	return p ? strtol(p + strlen("MemAvailable:"), NULL, 10) : -1;
}

// netfiles are /proc/net tables, opened before the sockets take every
// descriptor; netKB sums their queue columns.
static const char *netnames[] = {"/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6", "/proc/net/netlink"};
static int netfiles[5] = {-1, -1, -1, -1, -1};

static long net_kb(void) {
	static char chunk[1 << 16];
	char line[512];
	long total = 0;
	for (int i = 0; i < 5; i++) {
		if (netfiles[i] < 0 || lseek(netfiles[i], 0, SEEK_SET) < 0)
			continue;
		size_t ln = 0;
		int first = 1;
		ssize_t n;
		while ((n = read(netfiles[i], chunk, sizeof chunk)) > 0) {
			for (ssize_t k = 0; k < n; k++) {
				if (chunk[k] != '\n') {
					if (ln < sizeof line - 1)
						line[ln++] = chunk[k];
					continue;
				}
				line[ln] = 0;
				ln = 0;
				if (first) { // the header
					first = 0;
					continue;
				}
				if (i < 4) { // sl local rem st tx_queue:rx_queue
					unsigned long tx, rx;
					if (sscanf(line, "%*s %*s %*s %*s %lx:%lx", &tx, &rx) == 2)
						total += tx + rx;
				} else { // sk Eth Pid Groups Rmem Wmem
					unsigned long r, w;
					if (sscanf(line, "%*s %*s %*s %*s %lu %lu", &r, &w) == 2)
						total += r + w;
				}
			}
		}
	}
	return total / 1024;
}

static void bigbufs(int fd) {
	int big = 1 << 30;
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
}

// fill writes to fd until it would block; returns the bytes written.
static long fill(int fd) {
	long n = 0;
	for (int i = 0; i < 100000; i++) {
		ssize_t w = send(fd, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno == EMSGSIZE)
			w = send(fd, buf, 4096, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w <= 0)
			break;
		n += w;
	}
	return n;
}

static long do_netlink(int proto) {
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto);
	if (fd < 0)
		return -errno;
	__atomic_fetch_or(&sh->protos, 1u << proto, __ATOMIC_RELAXED);
	bigbufs(fd);
	struct sockaddr_nl me = {.nl_family = AF_NETLINK};
	bind(fd, (struct sockaddr *)&me, sizeof me);
	socklen_t len = sizeof me;
	getsockname(fd, (struct sockaddr *)&me, &len);
	// To itself where the protocol lets users talk to users, else to the
	// kernel, asking for an acknowledgement that echoes the request back.
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	int size = 32768;
	memset(buf, 0x5a, size);
	h->nlmsg_len = size;
	h->nlmsg_type = 0x7f00;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	h->nlmsg_seq = 1;
	h->nlmsg_pid = me.nl_pid;
	struct sockaddr_nl to = {.nl_family = AF_NETLINK, .nl_pid = me.nl_pid};
	long n = 0;
	if (sendto(fd, buf, size, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to) == size) {
		n += size;
	} else {
		to.nl_pid = 0;
	}
	for (int i = 0; i < 64; i++) {
		if (sendto(fd, buf, size, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to) != size)
			break;
		n += size;
	}
	return n;
}

static int listener = -1;
static struct sockaddr_in laddr;

static int one_pair(int kind, long *q) {
	int sv[2];
	if (kind == 0) { // tcp
		int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0)
			return -1;
		if (connect(c, (struct sockaddr *)&laddr, sizeof laddr) < 0) {
			close(c);
			return -1;
		}
		int s = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			close(c);
			return -1;
		}
		sv[0] = c, sv[1] = s;
	} else if (kind == 1) { // udp: one socket sending to itself
		int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (u < 0)
			return -1;
		bigbufs(u);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		socklen_t len = sizeof a;
		bind(u, (struct sockaddr *)&a, sizeof a);
		getsockname(u, (struct sockaddr *)&a, &len);
		connect(u, (struct sockaddr *)&a, sizeof a);
		for (int i = 0; i < 64; i++) {
			ssize_t w = send(u, buf, 60000, MSG_DONTWAIT);
			if (w <= 0)
				break;
			*q += w;
		}
		return 1;
	} else {
		int type = kind == 2 ? SOCK_STREAM : SOCK_DGRAM;
		if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) < 0)
			return -1;
	}
	bigbufs(sv[0]);
	bigbufs(sv[1]);
	*q += fill(sv[0]);
	*q += fill(sv[1]);
	return 2;
}

static void work(const char *mode) {
	long q = 0, socks = 0;
	int kind = -1;
	if (!strcmp(mode, "tcp"))
		kind = 0;
	else if (!strcmp(mode, "udp"))
		kind = 1;
	else if (!strcmp(mode, "unix_stream"))
		kind = 2;
	else if (!strcmp(mode, "unix_dgram"))
		kind = 3;
	if (!strcmp(mode, "netlink") || !strcmp(mode, "netlink_route")) {
		int protos = strcmp(mode, "netlink") ? 1 : 32;
		for (int round = 0; round < 100000; round++) {
			int opened = 0;
			for (int p = 0; p < protos; p++) {
				long n = do_netlink(p);
				if (n == -EMFILE || n == -ENFILE)
					goto out;
				if (n >= 0) {
					q += n;
					socks++;
					opened++;
				}
			}
			if (!opened)
				break;
		}
	} else if (!strcmp(mode, "pipe")) {
		for (;;) {
			int p[2];
			if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
				break;
			fcntl(p[1], F_SETPIPE_SZ, 1 << 20);
			for (;;) {
				ssize_t w = write(p[1], buf, sizeof buf);
				if (w <= 0)
					break;
				q += w;
			}
			socks += 2;
		}
	} else if (kind >= 0) {
		if (kind == 0) {
			listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
			laddr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			socklen_t len = sizeof laddr;
			if (listener < 0 || bind(listener, (struct sockaddr *)&laddr, sizeof laddr) < 0 ||
			    listen(listener, 64) < 0 || getsockname(listener, (struct sockaddr *)&laddr, &len) < 0) {
				perror("listener");
				goto out;
			}
		}
		for (;;) {
			int n = one_pair(kind, &q);
			if (n < 0)
				break;
			socks += n;
		}
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		exit(2);
	}
out:
	__atomic_fetch_add(&sh->queued, q, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->socks, socks, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->done, 1, __ATOMIC_RELEASE);
}

int main(int argc, char **argv) {
	if (argc < 2) {
		fprintf(stderr, "usage: sockpin MODE [PROCS]\n");
		return 2;
	}
	int procs = argc > 2 ? atoi(argv[2]) : 63;
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	memset(buf, 0x5a, sizeof buf);
	meminfo = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
	for (int i = 0; i < 5; i++)
		netfiles[i] = open(netnames[i], O_RDONLY | O_CLOEXEC);
	long before = mem_available_kb();
	int started = 1;
	for (int i = 1; i < procs; i++) {
		pid_t pid = fork();
		if (pid < 0)
			break;
		if (pid == 0) {
			work(argv[1]);
			for (;;)
				pause();
		}
		started++;
	}
	work(argv[1]);
	struct timespec t = {0, 20 * 1000 * 1000};
	for (int i = 0; i < 1500 && __atomic_load_n(&sh->done, __ATOMIC_ACQUIRE) < started; i++)
		nanosleep(&t, NULL);
	t.tv_nsec = 200 * 1000 * 1000;
	nanosleep(&t, NULL); // let the kernel's replies land
	long after = mem_available_kb();
	printf("mode=%s procs=%d socks=%ld queued_kb=%ld net_kb=%ld drop_kb=%ld protos=%#x\n", argv[1], started, sh->socks,
	       sh->queued / 1024, net_kb(), before - after, sh->protos);
	fflush(stdout);
	return 0;
}
