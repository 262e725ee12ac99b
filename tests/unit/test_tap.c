/* lib/tunnel/tap.c: the evidence tap and the pcap it writes.  The pcap is
 * parsed here field by field (offsets of the pcap, IPv4/IPv6, TCP and UDP
 * formats), and the integration test reads the gateway's files with an
 * independent parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "tunnel/tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static unsigned
rd16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
	    p[3];
}

/* The ones' complement sum over the data, folded: 0xffff when a checksum
 * that is part of the data is right. */
static unsigned
csum(uint32_t acc, const uint8_t *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2)
		acc += (uint32_t)p[0] << 8 | p[1];
	if (n)
		acc += (uint32_t)p[0] << 8;
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return acc;
}

struct pkt {
	int v6, udp, from_service;
	unsigned sport, dport, flags;
	uint32_t seq, ack;
	const uint8_t *pay;
	size_t plen;
};

/* Walks the pcap; checks every header and checksum; fills up to max. */
static size_t
parse(const uint8_t *b, size_t len, struct pkt *out, size_t max,
    const char *local, const char *svc)
{
	uint8_t la[16], sa[16];
	size_t off = 24, n = 0;
	uint32_t magic;

	assert_true(len >= 24);
	memcpy(&magic, b, 4);
	assert_int_equal(magic, 0xa1b2c3d4u);
	assert_int_equal(b[20] | b[21] << 8, 101);	/* LINKTYPE_RAW, host order */
	while (off < len) {
		uint32_t incl, orig;
		const uint8_t *ip, *l4;
		size_t iplen;
		struct pkt p;
		uint32_t acc;
		int v6;

		assert_true(off + 16 <= len);
		memcpy(&incl, b + off + 8, 4);
		memcpy(&orig, b + off + 12, 4);
		assert_int_equal(incl, orig);
		ip = b + off + 16;
		assert_true(off + 16 + incl <= len);
		memset(&p, 0, sizeof(p));
		v6 = (ip[0] >> 4) == 6;
		p.v6 = v6;
		if (v6) {
			iplen = 40;
			assert_int_equal(rd16(ip + 4) + 40, incl);
			p.udp = ip[6] == 17;
			assert_true(inet_pton(AF_INET6, local, la) == 1);
			assert_true(inet_pton(AF_INET6, svc, sa) == 1);
			p.from_service = memcmp(ip + 8, sa, 16) == 0;
			assert_memory_equal(ip + 8, p.from_service ? sa : la, 16);
			assert_memory_equal(ip + 24, p.from_service ? la : sa, 16);
			acc = csum(0, ip + 8, 32) + incl - 40 + ip[6];
		} else {
			iplen = 20;
			assert_int_equal(ip[0], 0x45);
			assert_int_equal(rd16(ip + 2), incl);
			assert_int_equal(csum(0, ip, 20), 0xffff);
			p.udp = ip[9] == 17;
			assert_true(inet_pton(AF_INET, local, la) == 1);
			assert_true(inet_pton(AF_INET, svc, sa) == 1);
			p.from_service = memcmp(ip + 12, sa, 4) == 0;
			assert_memory_equal(ip + 12, p.from_service ? sa : la, 4);
			assert_memory_equal(ip + 16, p.from_service ? la : sa, 4);
			acc = csum(0, ip + 12, 8) + incl - 20 + ip[9];
		}
		l4 = ip + iplen;
		assert_int_equal(csum(acc, l4, incl - iplen), 0xffff);
		p.sport = rd16(l4);
		p.dport = rd16(l4 + 2);
		if (p.udp) {
			assert_int_equal(rd16(l4 + 4), incl - iplen);
			p.pay = l4 + 8;
			p.plen = incl - iplen - 8;
		} else {
			p.seq = rd32(l4 + 4);
			p.ack = rd32(l4 + 8);
			assert_int_equal(l4[12], 5 << 4);
			p.flags = l4[13];
			p.pay = l4 + 20;
			p.plen = incl - iplen - 20;
		}
		if (n < max)
			out[n] = p;
		n++;
		off += 16 + incl;
	}
	assert_int_equal(off, len);
	return n;
}

static uint8_t *
render(struct pp_tap *t, size_t *len, struct pp_pcap_info *info)
{
	size_t need = 0;
	uint8_t *buf;
	long n;

	assert_int_equal(pp_tap_render_pcap(t, NULL, 0, &need, NULL), PP_ETOOBIG);
	buf = malloc(need);
	assert_non_null(buf);
	n = pp_tap_render_pcap(t, buf, need, NULL, info);
	assert_int_equal(n, (long)need);
	*len = need;
	return buf;
}

static struct pp_tap_flow
flow4(int udp)
{
	struct pp_tap_flow f;

	memset(&f, 0, sizeof(f));
	f.udp = udp;
	snprintf(f.local_ip, sizeof(f.local_ip), "127.0.0.1");
	f.local_port = 41234;
	snprintf(f.service_ip, sizeof(f.service_ip), "127.0.0.2");
	f.service_port = 8080;
	return f;
}

/* A whole short TCP connection: handshake, both directions in sequence,
 * payload cut at 1460 bytes, FINs, the 5-tuple on every packet. */
static void
test_tcp_whole(void **state)
{
	struct pp_tap_flow f = flow4(0);
	struct pp_tap *t = pp_tap_new(65536, &f, NULL);
	struct pp_pcap_info info;
	static uint8_t big[3000];
	struct pkt p[32];
	uint8_t *buf, got[4096];
	size_t len, n, glen = 0;
	uint32_t cisn, sisn;

	(void)state;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	pp_tap_add(t, PP_TAP_TO_SERVICE, "GET / HTTP/1.1\r\n\r\n", 18);
	pp_tap_add(t, PP_TAP_FROM_SERVICE, "HTTP/1.1 200 OK\r\n", 17);
	pp_tap_add(t, PP_TAP_TO_SERVICE, big, sizeof(big));
	pp_tap_fin(t, PP_TAP_TO_SERVICE);
	pp_tap_fin(t, PP_TAP_FROM_SERVICE);
	buf = render(t, &len, &info);
	n = parse(buf, len, p, 32, "127.0.0.1", "127.0.0.2");
	/* SYN, SYN-ACK, ACK, request, reply, 3 segments, FIN, FIN */
	assert_int_equal(n, 10);
	assert_int_equal(info.packets, 10);
	assert_int_equal(info.file_bytes, len);
	assert_int_equal(info.payload_bytes, 18 + 17 + 3000);
	assert_int_equal(info.seen_bytes, 18 + 17 + 3000);
	assert_true(info.complete);
	assert_int_equal(p[0].flags, 0x02);
	assert_int_equal(p[1].flags, 0x12);
	assert_int_equal(p[2].flags, 0x10);
	cisn = p[0].seq;
	sisn = p[1].seq;
	assert_int_equal(p[1].ack, cisn + 1);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(p[i].sport, p[i].from_service ? 8080 : 41234);
		assert_int_equal(p[i].dport, p[i].from_service ? 41234 : 8080);
	}
	assert_int_equal(p[3].seq, cisn + 1);
	assert_memory_equal(p[3].pay, "GET / HTTP/1.1\r\n\r\n", 18);
	assert_true(p[4].from_service);
	assert_int_equal(p[4].seq, sisn + 1);
	assert_int_equal(p[4].ack, cisn + 1 + 18);
	assert_int_equal(p[5].plen, 1460);
	assert_int_equal(p[6].plen, 1460);
	assert_int_equal(p[7].plen, 80);
	assert_int_equal(p[7].flags, 0x18);	/* PSH on the last piece */
	for (size_t i = 5; i < 8; i++) {
		assert_int_equal(p[i].seq, cisn + 1 + 18 + glen);
		assert_int_equal(p[i].ack, sisn + 1 + 17);
		memcpy(got + glen, p[i].pay, p[i].plen);
		glen += p[i].plen;
	}
	assert_memory_equal(got, big, sizeof(big));
	assert_int_equal(p[8].flags, 0x11);
	assert_int_equal(p[8].seq, cisn + 1 + 18 + 3000);
	assert_int_equal(p[9].flags, 0x11);
	assert_true(p[9].from_service);
	free(buf);
	pp_tap_free(t);
}

/* Bounded: past cap the oldest records go; the file shows the last bytes,
 * no handshake, sequence numbers that still count from the start. */
static void
test_bounded(void **state)
{
	struct pp_tap_flow f = flow4(0);
	struct pp_tap *t = pp_tap_new(4096, &f, NULL);
	struct pp_pcap_info info;
	struct pkt p[64];
	uint8_t chunk[1000], *buf;
	size_t len, n;
	uint32_t last_seq = 0;

	(void)state;
	for (int i = 0; i < 20; i++) {
		memset(chunk, 'a' + i, sizeof(chunk));
		pp_tap_add(t, PP_TAP_TO_SERVICE, chunk, sizeof(chunk));
	}
	buf = render(t, &len, &info);
	n = parse(buf, len, p, 64, "127.0.0.1", "127.0.0.2");
	assert_false(info.complete);
	assert_int_equal(info.seen_bytes, 20000);
	/* 4096 bytes hold 4 records of 24 + 1000 */
	assert_int_equal(n, 4);
	assert_int_equal(info.payload_bytes, 4000);
	assert_true(len <= 24 + 4096 + 4 * (16 + 40));
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(p[i].pay[0], 'a' + 16 + (int)i);
		if (i)
			assert_int_equal(p[i].seq, last_seq + 1000);
		last_seq = p[i].seq;
	}
	/* the oldest kept starts 16000 bytes into the stream */
	assert_int_equal(p[0].flags & 0x02, 0);
	free(buf);

	/* one chunk larger than cap: its last bytes */
	{
		static uint8_t huge[10000];

		memset(huge, 'x', sizeof(huge));
		huge[sizeof(huge) - 1] = 'Z';
		pp_tap_add(t, PP_TAP_FROM_SERVICE, huge, sizeof(huge));
		buf = render(t, &len, &info);
		n = parse(buf, len, p, 64, "127.0.0.1", "127.0.0.2");
		assert_int_equal(info.payload_bytes, 4096 - 24);
		assert_true(p[n - 1].from_service);
		assert_int_equal(p[n - 1].pay[p[n - 1].plen - 1], 'Z');
		free(buf);
	}
	pp_tap_free(t);
}

/* The ring wraps many times: the records come back intact, in order. */
static void
test_wraps(void **state)
{
	struct pp_tap_flow f = flow4(0);
	struct pp_tap *t = pp_tap_new(5000, &f, NULL);
	struct pkt p[256];
	uint8_t chunk[333], *buf;
	size_t len, n;

	(void)state;
	for (int i = 0; i < 1000; i++) {
		size_t l = 1 + (size_t)(i * 37) % sizeof(chunk);

		for (size_t k = 0; k < l; k++)
			chunk[k] = (uint8_t)(i + (int)k);
		pp_tap_add(t, i % 3 ? PP_TAP_TO_SERVICE : PP_TAP_FROM_SERVICE,
		    chunk, l);
	}
	buf = render(t, &len, NULL);
	n = parse(buf, len, p, 256, "127.0.0.1", "127.0.0.2");
	assert_true(n > 10);
	/* the last one is record 999 */
	assert_int_equal(p[n - 1].plen, 1 + (999 * 37) % sizeof(chunk));
	for (size_t k = 0; k < p[n - 1].plen; k++)
		assert_int_equal(p[n - 1].pay[k], (uint8_t)(999 + (int)k));
	free(buf);
	pp_tap_free(t);
}

static void
test_udp_and_ipv6(void **state)
{
	struct pp_tap_flow f = flow4(1);
	struct pp_tap *t;
	struct pkt p[8];
	uint8_t *buf;
	size_t len, n;

	(void)state;
	snprintf(f.local_ip, sizeof(f.local_ip), "fd00::1");
	snprintf(f.service_ip, sizeof(f.service_ip), "fd00::53");
	f.service_port = 53;
	t = pp_tap_new(8192, &f, NULL);
	pp_tap_add(t, PP_TAP_TO_SERVICE, "query", 5);
	pp_tap_add(t, PP_TAP_FROM_SERVICE, "answer!", 7);
	buf = render(t, &len, NULL);
	n = parse(buf, len, p, 8, "fd00::1", "fd00::53");
	assert_int_equal(n, 2);
	assert_true(p[0].v6 && p[0].udp && !p[0].from_service);
	assert_int_equal(p[0].dport, 53);
	assert_memory_equal(p[0].pay, "query", 5);
	assert_true(p[1].from_service);
	assert_memory_equal(p[1].pay, "answer!", 7);
	free(buf);
	pp_tap_free(t);

	/* mixed families are refused */
	f = flow4(0);
	snprintf(f.service_ip, sizeof(f.service_ip), "::1");
	t = pp_tap_new(1024, &f, NULL);
	assert_int_equal(pp_tap_render_pcap(t, NULL, 0, NULL, NULL), PP_EINVAL);
	pp_tap_free(t);
}

/* The file: mode 0600, never over an existing one. */
static void
test_write_file(void **state)
{
	struct pp_tap_flow f = flow4(0);
	struct pp_tap *t = pp_tap_new(4096, &f, NULL);
	struct pp_pcap_info info;
	char dir[] = "/tmp/pp-tap-XXXXXX", path[64];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/1.pcap", dir);
	pp_tap_add(t, PP_TAP_TO_SERVICE, "EVIL 0xdeadc0de", 15);
	assert_int_equal(pp_tap_write_pcap(t, path, &info), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal((uint64_t)st.st_size, info.file_bytes);
	assert_int_equal(info.packets, 4);
	assert_true(pp_tap_write_pcap(t, path, &info) < 0);	/* exists */
	unlink(path);
	rmdir(dir);
	pp_tap_free(t);
}

/*
 * The budget shared by all taps: together their rings never take more than
 * its limit.  A tap that cannot grow keeps its ring (the newest records, the
 * capture incomplete); a tap with no ring yet records nothing until memory
 * comes back; freeing a tap gives its ring back.
 */
static void
test_budget(void **state)
{
	struct pp_tap_flow f = flow4(0);
	struct pp_tap_budget *b = pp_tap_budget_new(16384);
	struct pp_tap *a, *c, *many[64];
	struct pp_pcap_info info;
	struct pkt p[64];
	uint8_t chunk[1000], *buf;
	size_t len, n;

	(void)state;
	assert_non_null(b);
	a = pp_tap_new(65536, &f, b);
	c = pp_tap_new(65536, &f, b);
	/* a wants 32 KiB for 20 records of 1024 bytes; the budget has 16 */
	for (int i = 0; i < 20; i++) {
		memset(chunk, 'a' + i, sizeof(chunk));
		pp_tap_add(a, PP_TAP_TO_SERVICE, chunk, sizeof(chunk));
		assert_true(pp_tap_budget_used(b) <= 16384);
	}
	assert_int_equal(pp_tap_budget_used(b), 16384);
	assert_true(pp_tap_budget_refusals(b) > 0);
	buf = render(a, &len, &info);
	n = parse(buf, len, p, 64, "127.0.0.1", "127.0.0.2");
	/* 16384 bytes hold 16 records of 24 + 1000: the newest, 4..19 */
	assert_int_equal(n, 16);
	assert_int_equal(p[0].pay[0], 'a' + 4);
	assert_int_equal(p[n - 1].pay[0], 'a' + 19);
	assert_false(info.complete);
	assert_true(info.budget_limited);
	assert_int_equal(info.seen_bytes, 20000);
	free(buf);

	/* c gets no ring at all: it records nothing but counts what it saw */
	pp_tap_add(c, PP_TAP_TO_SERVICE, "GET /a", 6);
	assert_int_equal(pp_tap_budget_used(b), 16384);
	buf = render(c, &len, &info);
	assert_int_equal(parse(buf, len, p, 64, "127.0.0.1", "127.0.0.2"), 0);
	assert_false(info.complete);
	assert_int_equal(info.seen_bytes, 6);
	free(buf);

	/* a goes: c can grow now, its stream offsets still count from 0 */
	pp_tap_free(a);
	assert_int_equal(pp_tap_budget_used(b), 0);
	pp_tap_add(c, PP_TAP_TO_SERVICE, "EVIL 0xdeadc0de", 15);
	assert_int_equal(pp_tap_budget_used(b), 4096);
	buf = render(c, &len, &info);
	n = parse(buf, len, p, 64, "127.0.0.1", "127.0.0.2");
	assert_int_equal(n, 1);
	assert_int_equal(p[0].plen, 15);
	assert_memory_equal(p[0].pay, "EVIL 0xdeadc0de", 15);
	assert_false(info.complete);	/* "GET /a" is missing */
	free(buf);
	pp_tap_free(c);
	assert_int_equal(pp_tap_budget_used(b), 0);

	/* Many connections: 64 taps of 64 KiB could take 4 MiB; 16 KiB it is,
	 * and a chunk larger than the ring a tap got keeps its last bytes. */
	for (size_t i = 0; i < 64; i++) {
		many[i] = pp_tap_new(65536, &f, b);
		assert_non_null(many[i]);
	}
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < 64; i++) {
			static uint8_t big[6000];

			memset(big, (int)('A' + i % 26), sizeof(big));
			big[sizeof(big) - 1] = 'Z';
			pp_tap_add(many[i], PP_TAP_FROM_SERVICE, big,
			    round == 2 ? sizeof(big) : 100);
			assert_true(pp_tap_budget_used(b) <= 16384);
		}
	/* the first taps took it all: 4096 each */
	buf = render(many[0], &len, &info);
	n = parse(buf, len, p, 64, "127.0.0.1", "127.0.0.2");
	assert_true(n >= 1);
	assert_int_equal(p[n - 1].pay[p[n - 1].plen - 1], 'Z');
	assert_true(info.payload_bytes <= 4096 - 24);
	assert_true(info.budget_limited);
	free(buf);
	/* the creator lets go first; the taps still hold the budget */
	pp_tap_budget_free(b);
	for (size_t i = 0; i < 64; i++)
		pp_tap_free(many[i]);
}

/* A write the file system cuts short: the next write() says why (here the
 * file size limit: EFBIG), not whatever errno held before; no file is left. */
static void
test_write_short(void **state)
{
	struct pp_tap_flow f = flow4(0);
	struct pp_tap *t = pp_tap_new(65536, &f, NULL);
	struct pp_pcap_info info;
	char dir[] = "/tmp/pp-tap-XXXXXX", path[64], tmp[80];
	static uint8_t big[3000];
	struct rlimit old, lim;
	void (*prev)(int);
	int rc;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/1.pcap", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	memset(big, 'x', sizeof(big));
	pp_tap_add(t, PP_TAP_TO_SERVICE, big, sizeof(big));
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1000;	/* the pcap is about 3300 bytes */
	prev = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	errno = ENOENT;		/* what a stale errno would report */
	rc = pp_tap_write_pcap(t, path, &info);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, prev);
	assert_int_equal(rc, -EFBIG);
	assert_int_not_equal(access(path, F_OK), 0);
	assert_int_not_equal(access(tmp, F_OK), 0);
	/* without the limit it is written whole */
	assert_int_equal(pp_tap_write_pcap(t, path, &info), 0);
	unlink(path);
	rmdir(dir);
	pp_tap_free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_whole),
		cmocka_unit_test(test_bounded),
		cmocka_unit_test(test_wraps),
		cmocka_unit_test(test_udp_and_ipv6),
		cmocka_unit_test(test_write_file),
		cmocka_unit_test(test_budget),
		cmocka_unit_test(test_write_short),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
