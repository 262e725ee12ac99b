/*
 * tcpbench: the small TCP services and clients that bench/tunnel.sh and
 * bench/adaptive.sh point at a path (direct, `ssh -L`, a PeerPipe tunnel).
 * It is not part of PeerPipe; it only needs to be cheap and precise, which
 * a Python client is not at microsecond latencies.
 *
 *   tcpbench echo [ADDR]           echo service; prints "port N" when listening
 *   tcpbench sink [ADDR]           reads each connection to EOF, then answers
 *                                  the byte count (8 bytes, big-endian) and closes
 *   tcpbench rr HOST:PORT [SIZE [SECONDS]]
 *                                  round trips of SIZE bytes (default 64) on one
 *                                  connection for SECONDS (default 5): percentiles
 *   tcpbench cps HOST:PORT [SECONDS]
 *                                  connect, one 1-byte round trip, close, in a
 *                                  loop: connections per second
 *   tcpbench hold HOST:PORT N      opens N connections with one round trip each,
 *                                  prints "ready N", holds them until killed
 *   tcpbench send HOST:PORT FILE BYTES
 *                                  sends BYTES bytes (FILE's content, repeated)
 *                                  to a sink, waits for its count: MB/s
 *
 * ADDR defaults to 127.0.0.1:0.  Results are one line of key=value pairs on
 * stdout; errors go to stderr with exit status 1.  Single-threaded; the
 * services use epoll and never block on one connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define IOBUF		(64 * 1024)
#define MAX_SAMPLES	(4 * 1024 * 1024)
#define MAX_EVENTS	256

static void
die(const char *what)
{
	fprintf(stderr, "tcpbench: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void
usage(void)
{
	fprintf(stderr, "usage: tcpbench echo|sink [ADDR]\n"
	    "       tcpbench rr HOST:PORT [SIZE [SECONDS]]\n"
	    "       tcpbench cps HOST:PORT [SECONDS]\n"
	    "       tcpbench hold HOST:PORT N\n"
	    "       tcpbench send HOST:PORT FILE BYTES\n");
	exit(2);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	size_t hl;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (colon == NULL || (hl = (size_t)(colon - s)) >= sizeof(host)) {
		fprintf(stderr, "tcpbench: %s: want IPV4:PORT\n", s);
		exit(2);
	}
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "tcpbench: %s: not an IPv4 address\n", host);
		exit(2);
	}
	sa->sin_port = htons((uint16_t)atoi(colon + 1));
}

static void
nodelay(int fd)
{
	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
}

static int
dial(const struct sockaddr_in *sa)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		die("socket");
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0)
		die("connect");
	nodelay(fd);
	return fd;
}

static void
write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die("write");
		c += w;
		n -= (size_t)w;
	}
}

static void
read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n > 0) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0) {
			fprintf(stderr, "tcpbench: connection closed by peer\n");
			exit(1);
		}
		if (r < 0)
			die("read");
		c += r;
		n -= (size_t)r;
	}
}

/* --- services ------------------------------------------------------------ */

struct conn {
	int fd;
	uint64_t count;		/* sink: bytes read */
	size_t plen;		/* echo: bytes not yet written back */
	char pend[IOBUF];
};

static void
serve(const char *addr, int sink)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	struct epoll_event ev, evs[MAX_EVENTS];
	static char buf[IOBUF];
	int lfd, ep, on = 1;

	parse_addr(addr, &sa);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		die("socket");
	(void)setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	if (listen(lfd, 4096) < 0)
		die("listen");
	if (getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0)
		die("getsockname");
	printf("port %u\n", ntohs(sa.sin_port));
	fflush(stdout);
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	for (;;) {
		int n = epoll_wait(ep, evs, MAX_EVENTS, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			int fd, done = 0;

			if (c == NULL) {
				while ((fd = accept4(lfd, NULL, NULL,
				    SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					if ((c = calloc(1, sizeof(*c))) == NULL)
						die("calloc");
					c->fd = fd;
					nodelay(fd);
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
						die("epoll_ctl");
				}
				continue;
			}
			if (c->plen > 0) {	/* echo backlog: EPOLLOUT */
				ssize_t w = write(c->fd, c->pend, c->plen);

				if (w < 0 && errno != EAGAIN)
					done = 1;
				else if (w > 0) {
					memmove(c->pend, c->pend + w,
					    c->plen - (size_t)w);
					c->plen -= (size_t)w;
				}
				if (!done && c->plen == 0) {
					ev.events = EPOLLIN;
					ev.data.ptr = c;
					(void)epoll_ctl(ep, EPOLL_CTL_MOD,
					    c->fd, &ev);
				}
			} else {
				ssize_t r = read(c->fd, buf, sizeof(buf));

				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					continue;
				if (r <= 0) {
					done = 1;
					if (r == 0 && sink) {
						uint64_t be = 0;

						for (int k = 0; k < 8; k++)
							((uint8_t *)&be)[k] =
							    (uint8_t)(c->count >>
							    (56 - 8 * k));
						/* 8 bytes into an empty
						 * buffer: never short */
						if (write(c->fd, &be, 8) != 8)
							fprintf(stderr, "tcpbench:"
							    " count not sent\n");
					}
				} else if (sink) {
					c->count += (uint64_t)r;
				} else {
					ssize_t w = write(c->fd, buf, (size_t)r);

					if (w < 0 && errno != EAGAIN)
						done = 1;
					else if (w < r) {
						if (w < 0)
							w = 0;
						c->plen = (size_t)(r - w);
						memcpy(c->pend, buf + w, c->plen);
						ev.events = EPOLLOUT;
						ev.data.ptr = c;
						(void)epoll_ctl(ep,
						    EPOLL_CTL_MOD, c->fd, &ev);
					}
				}
			}
			if (done) {
				close(c->fd);
				free(c);
			}
		}
	}
}

/* --- clients ------------------------------------------------------------- */

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(const double *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);

	return v[i < n ? i : n - 1];
}

static void
print_dist(const char *what, double *v, size_t n, double secs)
{
	qsort(v, n, sizeof(*v), cmp_double);
	printf("%s n=%zu per_s=%.0f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
	    "max_us=%.1f\n", what, n, (double)n / secs, pct(v, n, 50) * 1e6,
	    pct(v, n, 90) * 1e6, pct(v, n, 99) * 1e6, v[n - 1] * 1e6);
}

static void
rr(const struct sockaddr_in *sa, size_t size, double secs)
{
	double *v = malloc(MAX_SAMPLES * sizeof(double)), t0, t1, end;
	char *msg = malloc(size), *back = malloc(size);
	size_t n = 0;
	int fd = dial(sa);

	if (v == NULL || msg == NULL || back == NULL)
		die("malloc");
	memset(msg, 'x', size);
	for (int i = 0; i < 200; i++) {		/* warm-up, not counted */
		write_all(fd, msg, size);
		read_all(fd, back, size);
	}
	t0 = now_s();
	end = t0 + secs;
	for (t1 = t0; t1 < end && n < MAX_SAMPLES;) {
		double a = t1;

		write_all(fd, msg, size);
		read_all(fd, back, size);
		t1 = now_s();
		v[n++] = t1 - a;
	}
	close(fd);
	print_dist("rr", v, n, t1 - t0);
}

static void
cps(const struct sockaddr_in *sa, double secs)
{
	double *v = malloc(MAX_SAMPLES * sizeof(double)), t0, t1, end;
	size_t n = 0;
	char b = 'x';

	if (v == NULL)
		die("malloc");
	t0 = now_s();
	end = t0 + secs;
	for (t1 = t0; t1 < end && n < MAX_SAMPLES;) {
		double a = t1;
		int fd = dial(sa);

		write_all(fd, &b, 1);
		read_all(fd, &b, 1);
		close(fd);
		t1 = now_s();
		v[n++] = t1 - a;
	}
	print_dist("cps", v, n, t1 - t0);
}

static void
hold(const struct sockaddr_in *sa, long n)
{
	char b = 'x';

	for (long i = 0; i < n; i++) {
		int fd = dial(sa);

		write_all(fd, &b, 1);
		read_all(fd, &b, 1);
	}
	printf("ready %ld\n", n);
	fflush(stdout);
	for (;;)
		pause();
}

static void
send_file(const struct sockaddr_in *sa, const char *path, uint64_t bytes)
{
	struct stat st;
	uint64_t left = bytes, got = 0;
	uint8_t be[8];
	size_t len, off = 0;
	char *data;
	double t0, t1;
	int fd, ffd;

	if ((ffd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(ffd, &st) < 0)
		die(path);
	if (st.st_size <= 0) {
		fprintf(stderr, "tcpbench: %s is empty\n", path);
		exit(1);
	}
	len = (size_t)st.st_size;
	if ((data = malloc(len)) == NULL)
		die("malloc");
	read_all(ffd, data, len);
	close(ffd);
	t0 = now_s();
	fd = dial(sa);
	while (left > 0) {
		size_t chunk = len - off < IOBUF ? len - off : IOBUF;

		if (chunk > left)
			chunk = (size_t)left;
		write_all(fd, data + off, chunk);
		left -= chunk;
		off = (off + chunk) % len;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		die("shutdown");
	read_all(fd, be, 8);
	t1 = now_s();
	close(fd);
	for (int k = 0; k < 8; k++)
		got = got << 8 | be[k];
	if (got != bytes) {
		fprintf(stderr, "tcpbench: sink counted %" PRIu64 " bytes of %"
		    PRIu64 "\n", got, bytes);
		exit(1);
	}
	printf("send bytes=%" PRIu64 " seconds=%.3f MBps=%.2f\n", bytes,
	    t1 - t0, (double)bytes / 1e6 / (t1 - t0));
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sa;

	signal(SIGPIPE, SIG_IGN);
	if (argc < 2)
		usage();
	if (strcmp(argv[1], "echo") == 0 || strcmp(argv[1], "sink") == 0)
		serve(argc > 2 ? argv[2] : "127.0.0.1:0", argv[1][0] == 's');
	if (argc < 3)
		usage();
	parse_addr(argv[2], &sa);
	if (strcmp(argv[1], "rr") == 0)
		rr(&sa, argc > 3 ? (size_t)atol(argv[3]) : 64,
		    argc > 4 ? atof(argv[4]) : 5);
	else if (strcmp(argv[1], "cps") == 0)
		cps(&sa, argc > 3 ? atof(argv[3]) : 5);
	else if (strcmp(argv[1], "hold") == 0 && argc == 4)
		hold(&sa, atol(argv[3]));
	else if (strcmp(argv[1], "send") == 0 && argc == 5)
		send_file(&sa, argv[3], strtoull(argv[4], NULL, 10));
	else
		usage();
	return 0;
}
