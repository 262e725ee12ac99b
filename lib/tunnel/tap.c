/*
 * The evidence tap and its pcap writer (see tap.h).
 *
 * The records live in a ring of bytes: a 24-byte header (timestamp in
 * microseconds, the stream offset of the first byte, length, direction,
 * flags) followed by the payload, either of which may wrap around the end.
 */
#include "tunnel/tap.h"

#include "base/error.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HDR		24u
#define START_SIZE	4096u
#define F_FIN		1u
#define MSS4		1460u
#define MSS6		1440u
#define UDP_MAX		65507u
#define PCAP_HDR	24u
#define REC_HDR		16u
#define LINKTYPE_RAW	101u
#define ISN_CLIENT	0x50500000u	/* synthetic initial sequence numbers */
#define ISN_SERVICE	0x70700000u

struct rec {
	uint64_t ts_us;
	uint64_t off;		/* stream offset of the first byte kept */
	uint32_t len;
	uint8_t dir, flags;
};

struct pp_tap_budget {
	size_t limit, used;
	unsigned long refusals;
	unsigned refs;
};

struct pp_tap {
	struct pp_tap_flow flow;
	struct pp_tap_budget *budget;	/* a reference, or NULL */
	uint8_t *buf;
	size_t size, cap;	/* allocated, the most it may grow to */
	size_t head, used;	/* tail = (head + size - used) % size */
	uint64_t off[2];	/* bytes seen per direction */
	uint64_t seen;
	uint64_t opened_us;
	int dropped;		/* a record was evicted, cut or lost */
	int limited;		/* the budget refused to let it grow */
};

static uint64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct pp_tap_budget *
pp_tap_budget_new(size_t limit)
{
	struct pp_tap_budget *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return NULL;
	if (limit < PP_TAP_MIN_CAP)
		limit = PP_TAP_MIN_CAP;
	if (limit > PP_TAP_BUDGET_MAX)
		limit = PP_TAP_BUDGET_MAX;
	b->limit = limit;
	b->refs = 1;
	return b;
}

void
pp_tap_budget_free(struct pp_tap_budget *b)
{
	if (b == NULL || --b->refs > 0)
		return;
	free(b);
}

size_t
pp_tap_budget_used(const struct pp_tap_budget *b)
{
	return b ? b->used : 0;
}

unsigned long
pp_tap_budget_refusals(const struct pp_tap_budget *b)
{
	return b ? b->refusals : 0;
}

struct pp_tap *
pp_tap_new(size_t cap, const struct pp_tap_flow *flow,
    struct pp_tap_budget *budget)
{
	struct pp_tap *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	if (cap < PP_TAP_MIN_CAP)
		cap = PP_TAP_MIN_CAP;
	if (cap > PP_TAP_MAX_CAP)
		cap = PP_TAP_MAX_CAP;
	t->cap = cap;
	t->flow = *flow;
	t->opened_us = now_us();
	if ((t->budget = budget) != NULL)
		budget->refs++;
	return t;
}

void
pp_tap_free(struct pp_tap *t)
{
	if (t == NULL)
		return;
	if (t->budget) {
		t->budget->used -= t->size;
		pp_tap_budget_free(t->budget);
	}
	free(t->buf);
	free(t);
}

/* Ring copies, wrapping at the end. */
static void
ring_put(struct pp_tap *t, size_t at, const void *src, size_t n)
{
	size_t first = t->size - at < n ? t->size - at : n;

	memcpy(t->buf + at, src, first);
	memcpy(t->buf, (const uint8_t *)src + first, n - first);
}

static void
ring_get(const struct pp_tap *t, size_t at, void *dst, size_t n)
{
	size_t first = t->size - at < n ? t->size - at : n;

	memcpy(dst, t->buf + at, first);
	memcpy((uint8_t *)dst + first, t->buf, n - first);
}

static void
hdr_encode(const struct rec *r, uint8_t out[HDR])
{
	memcpy(out, &r->ts_us, 8);
	memcpy(out + 8, &r->off, 8);
	memcpy(out + 16, &r->len, 4);
	out[20] = r->dir;
	out[21] = r->flags;
	out[22] = out[23] = 0;
}

static void
hdr_decode(const uint8_t in[HDR], struct rec *r)
{
	memcpy(&r->ts_us, in, 8);
	memcpy(&r->off, in + 8, 8);
	memcpy(&r->len, in + 16, 4);
	r->dir = in[20];
	r->flags = in[21];
}

static size_t
tail_of(const struct pp_tap *t)
{
	return (t->head + t->size - t->used) % (t->size ? t->size : 1);
}

static void
evict_oldest(struct pp_tap *t)
{
	uint8_t h[HDR];
	struct rec r;

	ring_get(t, tail_of(t), h, HDR);
	hdr_decode(h, &r);
	t->used -= HDR + r.len;
	t->dropped = 1;
}

/* May the ring be nsize bytes within the budget? */
static int
fits(const struct pp_tap *t, size_t nsize)
{
	const struct pp_tap_budget *b = t->budget;

	return b == NULL || b->used - t->size + nsize <= b->limit;
}

/* Grows the ring to hold need more bytes, up to cap and as far as the
 * budget allows: 0, or -1 when it cannot grow at all (at cap, the budget
 * spent, or out of memory). */
static int
grow(struct pp_tap *t, size_t need)
{
	size_t nsize = t->size ? t->size : START_SIZE;
	size_t floor = START_SIZE < t->cap ? START_SIZE : t->cap;
	uint8_t *nb;

	if (t->size == t->cap)
		return -1;
	while (nsize - t->used < need && nsize < t->cap)
		nsize *= 2;
	if (nsize > t->cap)
		nsize = t->cap;
	/* less than it wanted is still more room */
	while (!fits(t, nsize) && nsize / 2 > t->size && nsize / 2 >= floor)
		nsize /= 2;
	if (!fits(t, nsize) || nsize <= t->size) {
		if (t->budget) {
			t->limited = 1;
			t->budget->refusals++;
		}
		return -1;
	}
	if ((nb = malloc(nsize)) == NULL)
		return -1;
	if (t->used)
		ring_get(t, tail_of(t), nb, t->used);
	free(t->buf);
	if (t->budget)
		t->budget->used += nsize - t->size;
	t->buf = nb;
	t->size = nsize;
	t->head = t->used % nsize;
	return 0;
}

static void
add(struct pp_tap *t, enum pp_tap_dir dir, const uint8_t *data, size_t len,
    unsigned flags)
{
	struct rec r;
	uint8_t h[HDR];
	size_t keep = len;
	int stuck = 0;

	if (keep > t->cap - HDR) {
		keep = t->cap - HDR;
		t->dropped = 1;
	}
	while (t->size - t->used < HDR + keep) {
		if (!stuck && grow(t, HDR + keep) == 0)
			continue;
		stuck = 1;	/* it will not grow now: make room */
		if (t->size <= HDR) {	/* no ring: the budget, or memory */
			t->dropped = 1;
			t->off[dir] += len;
			return;
		}
		if (t->size < HDR + keep) {
			/* a ring the budget (or memory) kept smaller than the
			 * chunk: its last bytes, as at cap */
			keep = t->size - HDR;
			t->dropped = 1;
			continue;
		}
		evict_oldest(t);
	}
	r.ts_us = now_us();
	r.off = t->off[dir] + (len - keep);
	r.len = (uint32_t)keep;
	r.dir = (uint8_t)dir;
	r.flags = (uint8_t)flags;
	hdr_encode(&r, h);
	ring_put(t, t->head, h, HDR);
	if (keep)
		ring_put(t, (t->head + HDR) % t->size, data + (len - keep), keep);
	t->head = (t->head + HDR + keep) % t->size;
	t->used += HDR + keep;
	t->off[dir] += len;
}

void
pp_tap_add(struct pp_tap *t, enum pp_tap_dir dir, const void *data, size_t len)
{
	if (t == NULL || len == 0)
		return;
	t->seen += len;
	add(t, dir, data, len, 0);
}

void
pp_tap_fin(struct pp_tap *t, enum pp_tap_dir dir)
{
	if (t != NULL)
		add(t, dir, NULL, 0, F_FIN);
}

/* ---- pcap ---- */

struct out {
	uint8_t *p;
	size_t len, cap;
	unsigned packets;
	uint64_t payload;
};

static void
put(struct out *o, const void *d, size_t n)
{
	if (o->len + n <= o->cap && n)
		memcpy(o->p + o->len, d, n);
	o->len += n;
}

static void
be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t
sum16(uint32_t acc, const uint8_t *p, size_t n)
{
	for (; n > 1; p += 2, n -= 2)
		acc += (uint32_t)p[0] << 8 | p[1];
	if (n)
		acc += (uint32_t)p[0] << 8;
	return acc;
}

static uint16_t
fold(uint32_t acc)
{
	while (acc >> 16)
		acc = (acc & 0xffffu) + (acc >> 16);
	return (uint16_t)~acc;
}

struct addrs {
	int v6;
	uint8_t a[2][16];	/* [0] our end, [1] the service */
	uint16_t port[2];
};

/*
 * One packet: from side `from` (0 us, 1 the service).  tcpflags 0 for UDP.
 * The payload pieces are given separately so ring data need not be copied
 * twice.
 */
static void
packet(struct out *o, const struct addrs *ad, int udp, int from, uint64_t ts,
    uint32_t seq, uint32_t ack, uint8_t tcpflags, const uint8_t *pay,
    size_t plen)
{
	uint8_t ip[40], l4[20], rec[REC_HDR], pseudo[40];
	size_t iplen = ad->v6 ? 40 : 20, l4len = udp ? 8 : 20;
	size_t total = iplen + l4len + plen;
	uint32_t sec = (uint32_t)(ts / 1000000u), usec = (uint32_t)(ts % 1000000u);
	uint32_t acc;
	uint16_t ck;
	int to = !from;

	memset(ip, 0, sizeof(ip));
	memset(l4, 0, sizeof(l4));
	if (ad->v6) {
		ip[0] = 0x60;
		be16(ip + 4, (uint16_t)(l4len + plen));
		ip[6] = udp ? 17 : 6;
		ip[7] = 64;
		memcpy(ip + 8, ad->a[from], 16);
		memcpy(ip + 24, ad->a[to], 16);
	} else {
		ip[0] = 0x45;
		be16(ip + 2, (uint16_t)total);
		be16(ip + 4, (uint16_t)(o->packets & 0xffffu));
		ip[6] = 0x40;	/* DF */
		ip[8] = 64;
		ip[9] = udp ? 17 : 6;
		memcpy(ip + 12, ad->a[from], 4);
		memcpy(ip + 16, ad->a[to], 4);
		be16(ip + 10, fold(sum16(0, ip, 20)));
	}
	be16(l4, ad->port[from]);
	be16(l4 + 2, ad->port[to]);
	if (udp) {
		be16(l4 + 4, (uint16_t)(8 + plen));
	} else {
		be32(l4 + 4, seq);
		be32(l4 + 8, ack);
		l4[12] = 5 << 4;
		l4[13] = tcpflags;
		be16(l4 + 14, 65535);
	}
	/* the pseudo-header checksum */
	memset(pseudo, 0, sizeof(pseudo));
	if (ad->v6) {
		memcpy(pseudo, ad->a[from], 16);
		memcpy(pseudo + 16, ad->a[to], 16);
		be32(pseudo + 32, (uint32_t)(l4len + plen));
		pseudo[39] = udp ? 17 : 6;
		acc = sum16(0, pseudo, 40);
	} else {
		memcpy(pseudo, ad->a[from], 4);
		memcpy(pseudo + 4, ad->a[to], 4);
		pseudo[9] = udp ? 17 : 6;
		be16(pseudo + 10, (uint16_t)(l4len + plen));
		acc = sum16(0, pseudo, 12);
	}
	acc = sum16(acc, l4, l4len);
	/* payload: sum16 pads odd lengths, and only the last piece may be odd */
	acc = sum16(acc, pay, plen);
	ck = fold(acc);
	if (udp && ck == 0)
		ck = 0xffff;
	be16(l4 + (udp ? 6 : 16), ck);

	memcpy(rec, &sec, 4);
	memcpy(rec + 4, &usec, 4);
	{
		uint32_t l = (uint32_t)total;

		memcpy(rec + 8, &l, 4);
		memcpy(rec + 12, &l, 4);
	}
	put(o, rec, REC_HDR);
	put(o, ip, iplen);
	put(o, l4, l4len);
	put(o, pay, plen);
	o->packets++;
	o->payload += plen;
}

static int
parse_addr(const char *s, int *v6, uint8_t out[16])
{
	if (inet_pton(AF_INET, s, out) == 1) {
		*v6 = 0;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out) == 1) {
		*v6 = 1;
		return 0;
	}
	return PP_EINVAL;
}

long
pp_tap_render_pcap(const struct pp_tap *t, uint8_t *buf, size_t cap,
    size_t *need, struct pp_pcap_info *info)
{
	struct out o = { buf, 0, cap, 0, 0 };
	struct addrs ad;
	uint8_t gh[PCAP_HDR], *pay = NULL;
	uint32_t magic = 0xa1b2c3d4u, snap = 65535u, lt = LINKTYPE_RAW;
	uint16_t vmaj = 2, vmin = 4;
	uint32_t isn[2] = { ISN_CLIENT, ISN_SERVICE };
	uint64_t next[2] = { 0, 0 };	/* next offset per direction, for acks */
	int v6b, udp = t->flow.udp, started[2] = { 0, 0 };
	size_t at, left, mss;

	memset(&ad, 0, sizeof(ad));
	if (parse_addr(t->flow.local_ip, &ad.v6, ad.a[0]) != 0 ||
	    parse_addr(t->flow.service_ip, &v6b, ad.a[1]) != 0 || v6b != ad.v6)
		return PP_EINVAL;
	ad.port[0] = t->flow.local_port;
	ad.port[1] = t->flow.service_port;
	mss = ad.v6 ? MSS6 : MSS4;

	memset(gh, 0, sizeof(gh));
	memcpy(gh, &magic, 4);
	memcpy(gh + 4, &vmaj, 2);
	memcpy(gh + 6, &vmin, 2);
	memcpy(gh + 16, &snap, 4);
	memcpy(gh + 20, &lt, 4);
	put(&o, gh, PCAP_HDR);

	if (!udp && !t->dropped) {
		/* the connection from its start: its handshake */
		packet(&o, &ad, 0, 0, t->opened_us, isn[0], 0, 0x02, NULL, 0);
		packet(&o, &ad, 0, 1, t->opened_us, isn[1], isn[0] + 1, 0x12,
		    NULL, 0);
		packet(&o, &ad, 0, 0, t->opened_us, isn[0] + 1, isn[1] + 1, 0x10,
		    NULL, 0);
		started[0] = started[1] = 1;
	}
	if (t->used && (pay = malloc(t->cap)) == NULL)
		return -ENOMEM;
	at = tail_of(t);
	left = t->used;
	while (left >= HDR) {
		struct rec r;
		uint8_t h[HDR];
		int from;

		ring_get(t, at, h, HDR);
		hdr_decode(h, &r);
		ring_get(t, (at + HDR) % t->size, pay, r.len);
		at = (at + HDR + r.len) % t->size;
		left -= HDR + r.len;
		from = r.dir == PP_TAP_TO_SERVICE ? 0 : 1;
		if (!started[from]) {
			next[from] = r.off;
			started[from] = 1;
		}
		if (udp) {
			if (r.len)
				packet(&o, &ad, 1, from, r.ts_us, 0, 0, 0, pay,
				    r.len > UDP_MAX ? UDP_MAX : r.len);
			continue;
		}
		if (r.flags & F_FIN) {
			packet(&o, &ad, 0, from, r.ts_us,
			    isn[from] + 1 + (uint32_t)r.off,
			    isn[!from] + 1 + (uint32_t)next[!from], 0x11, NULL, 0);
			continue;
		}
		for (size_t done = 0; done < r.len; ) {
			size_t n = r.len - done > mss ? mss : r.len - done;

			packet(&o, &ad, 0, from, r.ts_us,
			    isn[from] + 1 + (uint32_t)(r.off + done),
			    isn[!from] + 1 + (uint32_t)next[!from],
			    done + n == r.len ? 0x18 : 0x10, pay + done, n);
			done += n;
		}
		next[from] = r.off + r.len;
	}
	free(pay);
	if (info) {
		info->packets = o.packets;
		info->file_bytes = o.len;
		info->payload_bytes = o.payload;
		info->seen_bytes = t->seen;
		info->complete = !t->dropped;
		info->budget_limited = t->limited;
	}
	if (need)
		*need = o.len;
	return o.len > cap ? PP_ETOOBIG : (long)o.len;
}

int
pp_tap_write_pcap(const struct pp_tap *t, const char *path,
    struct pp_pcap_info *info)
{
	char tmp[4200];
	size_t need = 0;
	uint8_t *buf;
	long n;
	int fd, rc = 0;

	(void)pp_tap_render_pcap(t, NULL, 0, &need, NULL);
	if ((buf = malloc(need ? need : 1)) == NULL)
		return -ENOMEM;
	if ((n = pp_tap_render_pcap(t, buf, need, NULL, info)) < 0) {
		free(buf);
		return (int)n;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		free(buf);
		return -ENAMETOOLONG;
	}
	(void)unlink(tmp);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		free(buf);
		return -errno;
	}
	/* A short write sets no errno: write the rest, and the call that
	 * cannot says why (EFBIG, ENOSPC, EDQUOT). */
	for (size_t done = 0; rc == 0 && done < (size_t)n; ) {
		ssize_t w = write(fd, buf + done, (size_t)n - done);

		if (w > 0)
			done += (size_t)w;
		else if (w < 0 && errno != EINTR)
			rc = -errno;
		else if (w == 0)
			rc = -EIO;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	/* link(): never replaces an existing file of that name */
	if (rc == 0 && link(tmp, path) != 0)
		rc = -errno;
	unlink(tmp);
	free(buf);
	return rc;
}
