/*
 * Two SCTP associations back to back in memory on a real uv loop.  Each
 * side's send_packet queues a copy; an idle handle delivers the queue to the
 * other side's pp_sctp_input(), so no call re-enters the stack.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <usrsctp.h>
#include <uv.h>

#include "base/error.h"
#include "sctp/sctp.h"

#define MAX_CHANS	16
#define TIMEOUT_MS	20000

struct peer;

struct chan {
	struct peer *peer;
	struct pp_dc *dc;
	int opened, closed, close_status, low_events;
	unsigned msgs, text_msgs, bin_msgs, empty_msgs;
	size_t bytes, last_len;
	int last_binary;
	char last[64];
	int check_seq;			/* messages are "seq %u" in order */
	unsigned next_seq, seq_errors;
	int check_pattern;		/* message k byte i = pattern(k, i) */
	unsigned pattern_errors;
	int free_assoc_on_message;
};

struct packet {
	struct packet *next;
	struct peer *to;
	size_t len;
	uint8_t data[];
};

struct net {
	uv_loop_t loop;
	uv_idle_t idle;
	uv_timer_t tick;	/* keeps UV_RUN_ONCE from blocking forever */
	struct packet *head, *tail;
	unsigned packets;
	unsigned drop_every;	/* lose every Nth packet; 0: none */
	int sync;		/* deliver inside send_packet, no queue */
	size_t cut;		/* check pieces of this size (big packets) */
	unsigned cut_checked, cut_big;
};

struct peer {
	struct net *net;
	struct peer *other;
	struct pp_sctp *sctp;
	int connected, closed, closed_status;
	struct chan chans[MAX_CHANS];
	int nchans;
	unsigned sums_ok, sums_zero, sums_bad;	/* checksums of what it sent */
};

struct fixture {
	struct net net;
	struct peer a, b;	/* a: DTLS client (even ids), b: server (odd) */
};

static uint8_t
pattern(unsigned k, size_t i)
{
	return (uint8_t)(k * 31u + i * 7u + (i >> 8));
}

/* ---- the in-memory wire ---- */

static void
on_idle(uv_idle_t *h)
{
	struct net *net = h->data;
	struct packet *p = net->head, *next;

	/* Only what is queued now: replies go into a fresh list. */
	net->head = net->tail = NULL;
	for (; p != NULL; p = next) {
		next = p->next;
		if (p->to->sctp != NULL)
			pp_sctp_input(p->to->sctp, p->data, p->len);
		free(p);
	}
	if (net->head == NULL)
		uv_idle_stop(h);
}

static int
send_packet(void *ctx, const uint8_t *buf, size_t len)
{
	struct peer *from = ctx;
	struct net *net = from->net;
	struct packet *p;

	if (len >= 12) {
		uint8_t pkt[65536];
		uint32_t field, want;

		assert_true(len <= sizeof(pkt));
		memcpy(pkt, buf, len);
		memcpy(&field, pkt + 8, 4);
		memset(pkt + 8, 0, 4);
		want = usrsctp_crc32c(pkt, len);
		if (field == 0 && want != 0)
			from->sums_zero++;
		else if (field == want)
			from->sums_ok++;
		else
			from->sums_bad++;
	}
	if (net->drop_every && ++net->packets % net->drop_every == 0)
		return 0;
	if (net->cut) {
		/* As the pc cuts it into DTLS records: no piece but the whole
		 * packet may look whole, or the receiver would pass it on. */
		assert_true(pp_sctp_packet_whole(buf, len));
		for (size_t off = net->cut; off < len; off += net->cut)
			assert_false(pp_sctp_packet_whole(buf, off));
		assert_true(len <= PP_SCTP_MAX_PIECES * net->cut);
		/* and the receiver's join gives back exactly the packet */
		{
			struct pp_sctp_join j = { 0 };
			const uint8_t *pkt = NULL;
			size_t off = 0, n = 0;
			int got = 0;

			while (off < len) {
				size_t k = len - off < net->cut ? len - off : net->cut;

				assert_false(got);
				got = pp_sctp_join_record(&j, buf + off, k, &pkt, &n);
				off += k;
			}
			assert_true(got);
			assert_int_equal(n, len);
			assert_memory_equal(pkt, buf, len);
			assert_int_equal(pp_sctp_join_end(&j, &pkt, &n), 0);
			pp_sctp_join_free(&j);
		}
		net->cut_checked++;
		net->cut_big += len > 3 * net->cut;
	}
	if (net->sync) {
		/* The stack must cope with a transport that re-enters it. */
		if (from->other->sctp != NULL)
			pp_sctp_input(from->other->sctp, buf, len);
		return 0;
	}
	p = malloc(sizeof(*p) + len);
	assert_non_null(p);
	p->next = NULL;
	p->to = from->other;
	p->len = len;
	memcpy(p->data, buf, len);
	if (net->tail)
		net->tail->next = p;
	else
		net->head = p;
	net->tail = p;
	uv_idle_start(&net->idle, on_idle);
	return 0;
}

static void
on_tick(uv_timer_t *t)
{
	(void)t;
}

/* ---- channel callbacks ---- */

static void
ch_open(struct pp_dc *dc, void *ctx)
{
	struct chan *c = ctx;

	(void)dc;
	c->opened++;
}

static void
ch_message(struct pp_dc *dc, int binary, const uint8_t *data, size_t len,
    void *ctx)
{
	struct chan *c = ctx;

	(void)dc;
	c->msgs++;
	c->bytes += len;
	c->last_len = len;
	c->last_binary = binary;
	if (len == 0)
		c->empty_msgs++;
	else if (binary)
		c->bin_msgs++;
	else
		c->text_msgs++;
	memset(c->last, 0, sizeof(c->last));
	memcpy(c->last, data, len < sizeof(c->last) - 1 ? len :
	    sizeof(c->last) - 1);
	if (c->check_seq) {
		char want[32];

		snprintf(want, sizeof(want), "seq %u", c->next_seq);
		if (len != strlen(want) || memcmp(data, want, len) != 0)
			c->seq_errors++;
		c->next_seq++;
	}
	if (c->check_pattern) {
		unsigned k = c->msgs - 1;

		for (size_t i = 0; i < len; i++) {
			if (data[i] != pattern(k, i)) {
				c->pattern_errors++;
				break;
			}
		}
	}
	if (c->free_assoc_on_message) {
		pp_sctp_free(c->peer->sctp);
		c->peer->sctp = NULL;
	}
}

static void
ch_close(struct pp_dc *dc, int status, void *ctx)
{
	struct chan *c = ctx;

	(void)dc;
	c->closed++;
	c->close_status = status;
	c->dc = NULL;
}

static void
ch_low(struct pp_dc *dc, void *ctx)
{
	struct chan *c = ctx;

	(void)dc;
	c->low_events++;
}

static const struct pp_dc_ops chan_ops = {
	ch_open, ch_message, ch_close, ch_low,
};

static struct chan *
new_chan(struct peer *p)
{
	struct chan *c;

	assert_true(p->nchans < MAX_CHANS);
	c = &p->chans[p->nchans++];
	memset(c, 0, sizeof(*c));
	c->peer = p;
	return c;
}

/* ---- association callbacks ---- */

static void
on_connected(struct pp_sctp *s, void *ctx)
{
	struct peer *p = ctx;

	(void)s;
	p->connected++;
}

static void
on_closed(struct pp_sctp *s, int status, void *ctx)
{
	struct peer *p = ctx;

	(void)s;
	p->closed++;
	p->closed_status = status;
}

static void
on_channel(struct pp_sctp *s, struct pp_dc *dc, void *ctx)
{
	struct chan *c = new_chan(ctx);

	(void)s;
	c->dc = dc;
	pp_dc_set_ops(dc, &chan_ops, c);
}

static const struct pp_sctp_ops peer_ops = {
	send_packet, on_connected, on_closed, on_channel,
};

/* ---- running the loop ---- */

typedef int (*pred_fn)(void *arg);

static int
run_until(struct net *net, pred_fn pred, void *arg)
{
	uint64_t deadline = uv_now(&net->loop) + TIMEOUT_MS;

	while (!pred(arg)) {
		if (uv_now(&net->loop) > deadline)
			return 0;
		uv_run(&net->loop, UV_RUN_ONCE);
	}
	return 1;
}

static int
both_connected(void *arg)
{
	struct fixture *f = arg;

	return f->a.connected && f->b.connected;
}

static void
peer_new(struct fixture *f, struct peer *p, struct peer *other,
    const struct pp_sctp_config *cfg)
{
	memset(p, 0, sizeof(*p));
	p->net = &f->net;
	p->other = other;
	assert_int_equal(pp_sctp_new(&f->net.loop, cfg, &peer_ops, p, &p->sctp),
	    0);
}

static void
setup_with(struct fixture *f, size_t a_remote_max, size_t b_max, int sync)
{
	struct pp_sctp_config ca, cb;

	memset(f, 0, sizeof(*f));
	assert_int_equal(uv_loop_init(&f->net.loop), 0);
	uv_idle_init(&f->net.loop, &f->net.idle);
	f->net.idle.data = &f->net;
	uv_timer_init(&f->net.loop, &f->net.tick);
	uv_timer_start(&f->net.tick, on_tick, 5, 5);
	f->net.sync = sync;

	memset(&ca, 0, sizeof(ca));
	ca.dtls_client = 1;
	ca.remote_max_message_size = a_remote_max;
	memset(&cb, 0, sizeof(cb));
	cb.dtls_client = 0;
	cb.max_message_size = b_max;
	cb.remote_max_message_size = PP_SCTP_MAX_MESSAGE;
	peer_new(f, &f->a, &f->b, &ca);
	peer_new(f, &f->b, &f->a, &cb);
	assert_int_equal(pp_sctp_state(f->a.sctp), PP_SCTP_NEW);
	assert_int_equal(pp_sctp_start(f->a.sctp), 0);
	/* A synchronous wire has already delivered a's INIT, which
	 * started b. */
	if (!sync)
		assert_int_equal(pp_sctp_start(f->b.sctp), 0);
	assert_int_equal(pp_sctp_start(f->b.sctp), PP_ECONFLICT);
	assert_true(run_until(&f->net, both_connected, f));
	assert_int_equal(pp_sctp_state(f->a.sctp), PP_SCTP_OPEN);
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	setup_with(f, PP_SCTP_MAX_MESSAGE, 0, 0);
	*state = f;
	return 0;
}

static int
setup_sync(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	setup_with(f, PP_SCTP_MAX_MESSAGE, 0, 1);
	*state = f;
	return 0;
}

static void
free_packets(struct net *net)
{
	struct packet *p, *next;

	for (p = net->head; p != NULL; p = next) {
		next = p->next;
		free(p);
	}
	net->head = net->tail = NULL;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	pp_sctp_free(f->a.sctp);
	f->a.sctp = NULL;
	pp_sctp_free(f->b.sctp);
	f->b.sctp = NULL;
	free_packets(&f->net);
	uv_close((uv_handle_t *)&f->net.idle, NULL);
	uv_close((uv_handle_t *)&f->net.tick, NULL);
	uv_run(&f->net.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->net.loop), 0);
	free(f);
	return 0;
}

/* ---- helpers ---- */

static struct chan *
open_chan(struct peer *p, const struct pp_dc_init *init)
{
	struct chan *c = new_chan(p);

	assert_int_equal(pp_dc_open(p->sctp, init, &chan_ops, c, &c->dc), 0);
	assert_non_null(c->dc);
	return c;
}

static struct pp_dc_init
init_label(const char *label)
{
	struct pp_dc_init init;

	memset(&init, 0, sizeof(init));
	init.label = label;
	return init;
}

/* The channel the other side created for label. */
static struct chan *
find_chan(struct peer *p, const char *label)
{
	for (int i = 0; i < p->nchans; i++)
		if (p->chans[i].dc != NULL &&
		    strcmp(pp_dc_label(p->chans[i].dc), label) == 0)
			return &p->chans[i];
	return NULL;
}

struct wait_label {
	struct peer *p;
	const char *label;
};

static int
remote_open(void *arg)
{
	struct wait_label *w = arg;
	struct chan *c = find_chan(w->p, w->label);

	return c != NULL && c->opened;
}

static int
is_open(void *arg)
{
	return ((struct chan *)arg)->opened > 0;
}

static int
is_acknowledged(void *arg)
{
	return pp_dc_acknowledged(((struct chan *)arg)->dc);
}

static int
is_closed(void *arg)
{
	return ((struct chan *)arg)->closed > 0;
}

static struct chan *
wait_remote(struct fixture *f, struct peer *p, const char *label)
{
	struct wait_label w = { p, label };

	assert_true(run_until(&f->net, remote_open, &w));
	return find_chan(p, label);
}

struct wait_msgs {
	struct chan *c;
	unsigned n;
};

static int
got_msgs(void *arg)
{
	struct wait_msgs *w = arg;

	return w->c->msgs >= w->n;
}

static void
wait_msgs(struct fixture *f, struct chan *c, unsigned n)
{
	struct wait_msgs w = { c, n };

	assert_true(run_until(&f->net, got_msgs, &w));
}

static int
low_fired(void *arg)
{
	return ((struct chan *)arg)->low_events > 0;
}

/* Sends, waiting for the low-water mark whenever the queue is full. */
static void
send_blocking(struct fixture *f, struct chan *c, int binary, const void *data,
    size_t len)
{
	int rc;

	while ((rc = pp_dc_send(c->dc, binary, data, len)) == -EAGAIN) {
		c->low_events = 0;
		assert_true(run_until(&f->net, low_fired, c));
	}
	assert_int_equal(rc, 0);
}

/* ---- tests ---- */

static void
test_open_both_sides(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("from-a");
	struct chan *a1, *b1, *ra, *rb;

	init.protocol = "proto-a";
	a1 = open_chan(&f->a, &init);
	init = init_label("from-b");
	b1 = open_chan(&f->b, &init);
	/* No callback runs inside the call that caused it. */
	assert_int_equal(a1->opened, 0);
	assert_int_equal(pp_dc_state(a1->dc), PP_DC_CONNECTING);
	assert_int_equal(pp_dc_acknowledged(a1->dc), 0);

	ra = wait_remote(f, &f->b, "from-a");
	rb = wait_remote(f, &f->a, "from-b");
	assert_true(run_until(&f->net, is_open, a1));
	assert_true(run_until(&f->net, is_open, b1));
	assert_int_equal(pp_dc_state(a1->dc), PP_DC_OPEN);
	/* The peer's DATA_CHANNEL_ACK; a channel the peer opened needs none. */
	assert_true(run_until(&f->net, is_acknowledged, a1));
	assert_int_equal(pp_dc_acknowledged(ra->dc), 1);

	/* Stream id parity: DTLS client even, server odd. */
	assert_int_equal(pp_dc_id(a1->dc) % 2, 0);
	assert_int_equal(pp_dc_id(b1->dc) % 2, 1);
	assert_int_equal(pp_dc_id(ra->dc), pp_dc_id(a1->dc));
	assert_int_equal(pp_dc_id(rb->dc), pp_dc_id(b1->dc));
	assert_string_equal(pp_dc_protocol(ra->dc), "proto-a");
	assert_string_equal(pp_dc_protocol(rb->dc), "");
	assert_true(pp_dc_ordered(ra->dc));
	assert_ptr_equal(pp_dc_sctp(ra->dc), f->b.sctp);

	assert_int_equal(pp_dc_send_text(a1->dc, "ping", 4), 0);
	assert_int_equal(pp_dc_send_text(rb->dc, "pong", 4), 0);
	wait_msgs(f, ra, 1);
	wait_msgs(f, b1, 1);
	assert_string_equal(ra->last, "ping");
	assert_string_equal(b1->last, "pong");
}

static void
test_ordered_10000(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("ordered");
	struct chan *a1, *r;

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "ordered");
	assert_true(run_until(&f->net, is_open, a1));
	r->check_seq = 1;
	for (unsigned i = 0; i < 10000; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "seq %u", i);

		send_blocking(f, a1, 0, msg, (size_t)n);
	}
	wait_msgs(f, r, 10000);
	assert_int_equal(r->msgs, 10000);
	assert_int_equal(r->seq_errors, 0);
	assert_int_equal(r->text_msgs, 10000);
}

static void
test_unordered_rexmit0(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("lossy");
	struct chan *a1, *r;

	init.unordered = 1;
	init.reliability = PP_DC_MAX_RETRANSMITS;
	init.pr_value = 0;
	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "lossy");
	assert_true(run_until(&f->net, is_open, a1));
	assert_false(pp_dc_ordered(r->dc));
	assert_false(pp_dc_ordered(a1->dc));
	for (unsigned i = 0; i < 500; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "u %u", i);

		send_blocking(f, a1, 0, msg, (size_t)n);
	}
	/* The in-memory wire loses nothing, so everything arrives. */
	wait_msgs(f, r, 500);
	assert_int_equal(r->msgs, 500);

	/* A timed channel too, from the other side. */
	init = init_label("timed");
	init.reliability = PP_DC_MAX_LIFETIME;
	init.pr_value = 3000;
	struct chan *b1 = open_chan(&f->b, &init);
	struct chan *rb = wait_remote(f, &f->a, "timed");

	assert_true(run_until(&f->net, is_open, b1));
	assert_int_equal(pp_dc_send_binary(b1->dc, "t", 1), 0);
	wait_msgs(f, rb, 1);
	assert_int_equal(rb->bin_msgs, 1);
}

static void
test_large_message(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("large");
	struct chan *a1, *r;
	uint8_t *big = malloc(PP_SCTP_MAX_MESSAGE);

	assert_non_null(big);
	for (size_t i = 0; i < PP_SCTP_MAX_MESSAGE; i++)
		big[i] = pattern(0, i);
	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "large");
	assert_true(run_until(&f->net, is_open, a1));
	r->check_pattern = 1;
	assert_int_equal(pp_sctp_max_send_size(f->a.sctp), PP_SCTP_MAX_MESSAGE);
	assert_int_equal(pp_dc_send_binary(a1->dc, big, PP_SCTP_MAX_MESSAGE), 0);
	wait_msgs(f, r, 1);
	assert_int_equal(r->last_len, PP_SCTP_MAX_MESSAGE);
	assert_int_equal(r->pattern_errors, 0);
	assert_int_equal(r->bin_msgs, 1);
	free(big);
}

static void
test_cut_sizes(void **state)
{
	static const uint8_t whole[] = {
		0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0,	/* common header */
		0, 0, 0, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 0, 0, 0,
		3, 0, 0, 4,				/* a 4-byte chunk */
	};
	uint8_t odd[sizeof(whole)];

	(void)state;
	assert_int_equal(pp_sctp_cut_size(16347), 16345);
	assert_int_equal(pp_sctp_cut_size(16345), 16345);
	assert_int_equal(pp_sctp_cut_size(5), 5);
	assert_int_equal(pp_sctp_cut_size(4), 0);
	for (size_t m = 5; m < 100; m++)
		assert_int_equal(pp_sctp_cut_size(m) % 4, 1);
	assert_true(pp_sctp_packet_whole(whole, sizeof(whole)));
	/* Cut anywhere but a chunk boundary (a multiple of 4): not whole. */
	for (size_t n = 0; n < sizeof(whole); n++)
		if (n % 4 != 0 || n < 16)
			assert_false(pp_sctp_packet_whole(whole, n));
	assert_true(pp_sctp_packet_whole(whole, 32));
	/* Malformed lengths: whole, for usrsctp to drop. */
	memcpy(odd, whole, sizeof(odd));
	odd[15] = 2;
	assert_true(pp_sctp_packet_whole(odd, sizeof(odd)));

	/* Joining: a whole record passes as it is; pieces wait for the rest;
	 * at the datagram's end a lone incomplete record goes on (a last
	 * chunk without padding), pieces of a cut packet do not. */
	{
		struct pp_sctp_join j = { 0 };
		const uint8_t *pkt;
		size_t n;

		assert_int_equal(pp_sctp_join_record(&j, whole, sizeof(whole),
		    &pkt, &n), 1);
		assert_ptr_equal(pkt, whole);
		assert_int_equal(pp_sctp_join_end(&j, &pkt, &n), 0);
		/* unpadded: 12 + 17 bytes */
		assert_int_equal(pp_sctp_join_record(&j, whole, 29, &pkt, &n), 0);
		assert_int_equal(pp_sctp_join_end(&j, &pkt, &n), 1);
		assert_int_equal(n, 29);
		assert_memory_equal(pkt, whole, 29);
		/* two pieces of three, the last one lost */
		assert_int_equal(pp_sctp_join_record(&j, whole, 13, &pkt, &n), 0);
		assert_int_equal(pp_sctp_join_record(&j, whole + 13, 10, &pkt, &n),
		    0);
		assert_int_equal(pp_sctp_join_end(&j, &pkt, &n), 0);
		/* and the next datagram starts afresh */
		assert_int_equal(pp_sctp_join_record(&j, whole, 13, &pkt, &n), 0);
		assert_int_equal(pp_sctp_join_record(&j, whole + 13,
		    sizeof(whole) - 13, &pkt, &n), 1);
		assert_int_equal(n, sizeof(whole));
		assert_memory_equal(pkt, whole, sizeof(whole));
		pp_sctp_join_free(&j);
	}
}

/*
 * Packets of up to 64 KiB, as between our peers on loopback: every one is
 * whole, and no cut the pc makes leaves a piece that looks whole, whatever
 * the messages (one big, many small bundled, sizes not a multiple of 4).
 */
static void
test_big_packets(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("big");
	size_t cut = pp_sctp_cut_size(16347);
	size_t packet = PP_SCTP_MAX_PIECES * cut - 4 * 37;
	struct chan *a1, *r;
	uint8_t *buf = malloc(200000);
	size_t total = 0;
	unsigned count = 0;

	assert_non_null(buf);
	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "big");
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_sctp_set_packet_max(f->a.sctp, packet), 0);
	assert_int_equal(pp_sctp_set_packet_max(f->b.sctp, packet), 0);
	f->net.cut = cut;
	pp_dc_set_buffered_amount_low_threshold(a1->dc, 65536);
	srand(7);
	for (unsigned k = 0; k < 400; k++) {
		size_t n = k % 3 == 0 ? 1 + (size_t)rand() % 200000 :
		    1 + (size_t)rand() % 700;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)(i * 31 + k);
		if (pp_dc_buffered_amount(a1->dc) > 4 * 65536) {
			a1->low_events = 0;
			assert_true(run_until(&f->net, low_fired, a1));
		}
		send_blocking(f, a1, 1, buf, n);
		total += n;
		count++;
	}
	wait_msgs(f, r, count);
	assert_int_equal(r->bytes, total);
	assert_true(f->net.cut_checked > 100);
	assert_true(f->net.cut_big > 10);
	print_message("  %u packets checked, %u over three records\n",
	    f->net.cut_checked, f->net.cut_big);
	free(buf);
}

/*
 * Every packet carries a correct CRC32c until the association is told the
 * peer does without (pp_sctp_set_zero_checksum); from then on that side's
 * packets carry 0, the other side's stay correct, and the data still gets
 * through: inbound checksums are not verified (DTLS authenticates).
 */
static void
test_zero_checksum(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("sums");
	struct chan *a1, *r;
	uint8_t buf[3000];

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "sums");
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_sctp_zero_checksum_ok(), 1);
	r->check_pattern = 1;
	for (unsigned k = 0; k < 20; k++) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(k, i);
		send_blocking(f, a1, 1, buf, sizeof(buf));
	}
	wait_msgs(f, r, 20);
	assert_true(f->a.sums_ok > 20);
	assert_int_equal(f->a.sums_zero, 0);
	assert_int_equal(f->a.sums_bad, 0);

	pp_sctp_set_zero_checksum(f->a.sctp);
	f->a.sums_ok = f->b.sums_ok = 0;
	for (unsigned k = 20; k < 40; k++) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = pattern(k, i);
		send_blocking(f, a1, 1, buf, sizeof(buf));
	}
	wait_msgs(f, r, 40);
	assert_int_equal(r->bytes, 40 * sizeof(buf));
	assert_int_equal(r->pattern_errors, 0);
	assert_int_equal(f->a.sums_ok, 0);
	assert_true(f->a.sums_zero > 20);
	assert_int_equal(f->a.sums_bad, 0);
	assert_true(f->b.sums_ok > 0);	/* SACKs */
	assert_int_equal(f->b.sums_zero + f->b.sums_bad, 0);
}

static void
test_transfer_1mib(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("bulk");
	enum { MSG = 65536, COUNT = 16 };
	struct chan *a1, *r;
	uint8_t *buf = malloc(MSG);

	assert_non_null(buf);
	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "bulk");
	assert_true(run_until(&f->net, is_open, a1));
	r->check_pattern = 1;
	pp_dc_set_buffered_amount_low_threshold(a1->dc, MSG);
	for (unsigned k = 0; k < COUNT; k++) {
		for (size_t i = 0; i < MSG; i++)
			buf[i] = pattern(k, i);
		/* Backpressure as an application should do it. */
		if (pp_dc_buffered_amount(a1->dc) > 4 * MSG) {
			a1->low_events = 0;
			assert_true(run_until(&f->net, low_fired, a1));
		}
		send_blocking(f, a1, 1, buf, MSG);
	}
	wait_msgs(f, r, COUNT);
	assert_int_equal(r->bytes, (size_t)MSG * COUNT);
	assert_int_equal(r->pattern_errors, 0);
	free(buf);
}

static void
test_empty_and_ppids(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("kinds");
	static const uint8_t bin[] = { 0, 1, 2 };
	struct chan *a1, *r;

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "kinds");
	assert_true(run_until(&f->net, is_open, a1));

	assert_int_equal(pp_dc_send_text(a1->dc, "", 0), 0);
	wait_msgs(f, r, 1);
	assert_int_equal(r->last_len, 0);
	assert_int_equal(r->last_binary, 0);

	assert_int_equal(pp_dc_send_binary(a1->dc, NULL, 0), 0);
	wait_msgs(f, r, 2);
	assert_int_equal(r->last_len, 0);
	assert_int_equal(r->last_binary, 1);
	assert_int_equal(r->empty_msgs, 2);

	assert_int_equal(pp_dc_send_text(a1->dc, "hello", 5), 0);
	wait_msgs(f, r, 3);
	assert_int_equal(r->last_binary, 0);
	assert_string_equal(r->last, "hello");

	assert_int_equal(pp_dc_send_binary(a1->dc, bin, sizeof(bin)), 0);
	wait_msgs(f, r, 4);
	assert_int_equal(r->last_binary, 1);
	assert_int_equal(r->last_len, 3);
	assert_memory_equal(r->last, bin, 3);
	assert_int_equal(r->text_msgs, 1);
	assert_int_equal(r->bin_msgs, 1);
	assert_int_equal(pp_dc_send(a1->dc, 1, NULL, 5), PP_EINVAL);
}

static void
test_buffered_amount_low(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("buffered");
	enum { MSG = 16384 };
	struct chan *a1, *r;
	uint8_t *buf = calloc(1, MSG);
	unsigned sent = 0;

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "buffered");
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_dc_buffered_amount(a1->dc), 0);
	pp_dc_set_buffered_amount_low_threshold(a1->dc, 32768);

	/* Without running the loop nothing is acknowledged: usrsctp's buffer
	 * fills, then our queue, until the queue refuses. */
	for (;;) {
		int rc = pp_dc_send_binary(a1->dc, buf, MSG);

		if (rc == -EAGAIN)
			break;
		assert_int_equal(rc, 0);
		sent++;
		assert_int_equal(pp_dc_buffered_amount(a1->dc), (size_t)sent * MSG);
	}
	assert_true(pp_dc_buffered_amount(a1->dc) > PP_SCTP_SEND_QUEUE_LIMIT);
	assert_int_equal(a1->low_events, 0);

	assert_true(run_until(&f->net, low_fired, a1));
	assert_int_equal(a1->low_events, 1);
	assert_true(pp_dc_buffered_amount(a1->dc) <= 32768);
	wait_msgs(f, r, sent);
	assert_int_equal(r->bytes, (size_t)sent * MSG);
	free(buf);
}

static void
test_close_channel(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("one");
	struct chan *c1, *c2, *r1, *r2, *c3, *r3;
	uint16_t id1;

	c1 = open_chan(&f->a, &init);
	init = init_label("two");
	c2 = open_chan(&f->a, &init);
	r1 = wait_remote(f, &f->b, "one");
	r2 = wait_remote(f, &f->b, "two");
	assert_true(run_until(&f->net, is_open, c2));
	id1 = pp_dc_id(c1->dc);

	/* Queued data goes out before the reset. */
	assert_int_equal(pp_dc_send_text(c1->dc, "last words", 10), 0);
	assert_int_equal(pp_dc_close(c1->dc), 0);
	assert_int_equal(pp_dc_state(c1->dc), PP_DC_CLOSING);
	assert_int_equal(pp_dc_close(c1->dc), 0);
	assert_int_equal(pp_dc_send_text(c1->dc, "late", 4), PP_ECONFLICT);
	assert_true(run_until(&f->net, is_closed, c1));
	assert_true(run_until(&f->net, is_closed, r1));
	assert_int_equal(c1->close_status, 0);
	assert_int_equal(r1->close_status, 0);
	assert_int_equal(r1->msgs, 1);
	assert_string_equal(r1->last, "last words");

	/* The other channel still works, both ways. */
	assert_int_equal(pp_dc_send_text(c2->dc, "still", 5), 0);
	assert_int_equal(pp_dc_send_text(r2->dc, "here", 4), 0);
	wait_msgs(f, r2, 1);
	wait_msgs(f, c2, 1);
	assert_string_equal(r2->last, "still");
	assert_string_equal(c2->last, "here");
	assert_int_equal(c2->closed, 0);

	/* The peer closes the other one. */
	assert_int_equal(pp_dc_close(r2->dc), 0);
	assert_true(run_until(&f->net, is_closed, c2));
	assert_true(run_until(&f->net, is_closed, r2));

	/* Both resets are done, so the first id is free again. */
	init = init_label("three");
	c3 = open_chan(&f->a, &init);
	assert_int_equal(pp_dc_id(c3->dc), id1);
	r3 = wait_remote(f, &f->b, "three");
	assert_true(run_until(&f->net, is_open, c3));
	assert_int_equal(pp_dc_send_text(c3->dc, "again", 5), 0);
	wait_msgs(f, r3, 1);
	assert_string_equal(r3->last, "again");
}

static void
test_oversize_send(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("big");
	struct chan *a1;
	uint8_t *big = calloc(1, PP_SCTP_MAX_MESSAGE + 1);

	a1 = open_chan(&f->a, &init);
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_dc_send_binary(a1->dc, big, PP_SCTP_MAX_MESSAGE + 1),
	    PP_ETOOBIG);
	/* The peer's SDP says 64 KiB. */
	pp_sctp_set_remote_max_message_size(f->a.sctp, 0);
	assert_int_equal(pp_dc_send_binary(a1->dc, big, 65537), PP_ETOOBIG);
	assert_int_equal(pp_dc_send_binary(a1->dc, big, 65536), 0);
	free(big);
}

static void
test_oversize_receive(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pp_dc_init init = init_label("greedy");
	struct chan *a1, *r, *a2, *r2;
	uint8_t *big = calloc(1, 200000);

	(void)state;
	/* a believes b takes anything; b accepts 64 KiB. */
	setup_with(f, PP_SCTP_UNLIMITED, 65536, 0);
	*state = f;
	a1 = open_chan(&f->a, &init);
	init = init_label("bystander");
	a2 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "greedy");
	r2 = wait_remote(f, &f->b, "bystander");
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_dc_send_binary(a1->dc, big, 200000), 0);
	assert_true(run_until(&f->net, is_closed, r));
	assert_int_equal(r->close_status, PP_ETOOBIG);
	assert_int_equal(r->msgs, 0);
	assert_true(run_until(&f->net, is_closed, a1));
	assert_int_equal(a1->close_status, 0);
	/* Only that channel, not the association. */
	assert_int_equal(pp_dc_send_text(a2->dc, "fine", 4), 0);
	wait_msgs(f, r2, 1);
	assert_int_equal(f->a.closed + f->b.closed, 0);
	free(big);
}

static void
test_negotiated(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("neg");
	struct chan *a1, *b1;

	init.negotiated = 1;
	init.id = 7;
	a1 = open_chan(&f->a, &init);
	b1 = open_chan(&f->b, &init);
	assert_true(run_until(&f->net, is_open, a1));
	assert_true(run_until(&f->net, is_open, b1));
	assert_int_equal(pp_dc_id(a1->dc), 7);
	/* Same id again is refused. */
	{
		struct pp_dc *dup;

		assert_int_equal(pp_dc_open(f->a.sctp, &init, &chan_ops, NULL,
		    &dup), PP_ECONFLICT);
		assert_null(dup);
	}
	assert_int_equal(pp_dc_send_text(a1->dc, "n1", 2), 0);
	assert_int_equal(pp_dc_send_text(b1->dc, "n2", 2), 0);
	wait_msgs(f, b1, 1);
	wait_msgs(f, a1, 1);
	assert_string_equal(b1->last, "n1");
	assert_string_equal(a1->last, "n2");
	/* No DCEP: the peer saw no new channel. */
	assert_int_equal(f->b.nchans, 1);
}

static int
both_closed(void *arg)
{
	struct fixture *f = arg;

	return f->a.closed && f->b.closed;
}

static void
test_abort(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("doomed");
	struct chan *a1, *r;

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "doomed");
	assert_int_equal(pp_sctp_close(f->a.sctp, 1), 0);
	assert_int_equal(pp_sctp_close(f->a.sctp, 1), PP_ECONFLICT);
	assert_int_equal(f->a.closed, 0);
	assert_true(run_until(&f->net, both_closed, f));
	assert_int_equal(f->a.closed_status, 0);
	assert_int_equal(f->b.closed_status, -ECONNRESET);
	assert_int_equal(a1->closed, 1);
	assert_int_equal(r->closed, 1);
	assert_int_equal(r->close_status, -ECONNRESET);
	assert_int_equal(pp_sctp_state(f->a.sctp), PP_SCTP_CLOSED);
	init = init_label("after");
	{
		struct pp_dc *dc;

		assert_int_equal(pp_dc_open(f->a.sctp, &init, NULL, NULL, &dc),
		    PP_ECONFLICT);
	}
}

static void
test_graceful_close(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("bye");
	struct chan *a1, *r;

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "bye");
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_dc_send_text(a1->dc, "goodbye", 7), 0);
	assert_int_equal(pp_sctp_close(f->a.sctp, 0), 0);
	assert_true(run_until(&f->net, both_closed, f));
	assert_int_equal(f->a.closed_status, 0);
	assert_int_equal(f->b.closed_status, 0);
	assert_string_equal(r->last, "goodbye");
	assert_int_equal(r->closed, 1);
}

static int
b_gone(void *arg)
{
	return ((struct fixture *)arg)->b.sctp == NULL;
}

static void
test_free_in_callback(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("suicide");
	struct chan *a1, *r;

	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "suicide");
	assert_true(run_until(&f->net, is_open, a1));
	r->free_assoc_on_message = 1;
	/* Several in one go: the rest must not reach the freed side. */
	for (int i = 0; i < 5; i++)
		assert_int_equal(pp_dc_send_text(a1->dc, "x", 1), 0);
	assert_true(run_until(&f->net, b_gone, f));
	assert_int_equal(r->msgs, 1);
	/* a notices the ABORT. */
	assert_true(run_until(&f->net, is_closed, a1));
	assert_int_equal(a1->close_status, -ECONNRESET);
}

static void
test_garbage_input(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("survivor");
	uint8_t junk[1500] = { 0 };
	struct chan *a1, *r;

	assert_int_equal(pp_sctp_input(f->b.sctp, junk, 0), PP_EINVAL);
	assert_int_equal(pp_sctp_input(f->b.sctp, junk, 70000), PP_EINVAL);
	srand(1);
	for (int i = 0; i < 2000; i++) {
		size_t len = 1 + (size_t)rand() % sizeof(junk);

		for (size_t j = 0; j < len; j++)
			junk[j] = (uint8_t)rand();
		pp_sctp_input(f->b.sctp, junk, len);
	}
	a1 = open_chan(&f->a, &init);
	r = wait_remote(f, &f->b, "survivor");
	assert_true(run_until(&f->net, is_open, a1));
	assert_int_equal(pp_dc_send_text(a1->dc, "ok", 2), 0);
	wait_msgs(f, r, 1);
}

static void
test_refused_channel(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("unwanted");
	struct chan *a1;
	struct pp_sctp_ops ops = peer_ops;

	/* b takes no channels: a's open is answered by a stream reset. */
	pp_sctp_free(f->b.sctp);
	f->b.sctp = NULL;
	pp_sctp_free(f->a.sctp);
	f->a.sctp = NULL;
	free_packets(&f->net);
	{
		struct pp_sctp_config ca, cb;

		memset(&ca, 0, sizeof(ca));
		ca.dtls_client = 1;
		memset(&cb, 0, sizeof(cb));
		ops.on_channel = NULL;
		f->a.connected = f->b.connected = 0;
		assert_int_equal(pp_sctp_new(&f->net.loop, &ca, &peer_ops, &f->a,
		    &f->a.sctp), 0);
		assert_int_equal(pp_sctp_new(&f->net.loop, &cb, &ops, &f->b,
		    &f->b.sctp), 0);
	}
	/* Opened before the association is up: goes out on COMM_UP. */
	a1 = open_chan(&f->a, &init);
	assert_int_equal(pp_sctp_start(f->a.sctp), 0);
	assert_int_equal(pp_sctp_start(f->b.sctp), 0);
	assert_true(run_until(&f->net, is_closed, a1));
	assert_int_equal(a1->close_status, PP_EDENIED);
}

static void
test_lossy_link(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("reliable");
	struct chan *a1, *r1, *a2, *r2;
	uint8_t *big = malloc(200000);

	assert_non_null(big);
	for (size_t i = 0; i < 200000; i++)
		big[i] = pattern(0, i);
	a1 = open_chan(&f->a, &init);
	init = init_label("lossy");
	init.unordered = 1;
	init.reliability = PP_DC_MAX_RETRANSMITS;
	a2 = open_chan(&f->a, &init);
	r1 = wait_remote(f, &f->b, "reliable");
	r2 = wait_remote(f, &f->b, "lossy");
	assert_true(run_until(&f->net, is_open, a2));

	/* From now on every 7th packet is lost, both ways: retransmission
	 * (fast and by usrsctp's timers on our uv timer) must hide it. */
	f->net.drop_every = 7;
	r1->check_pattern = 1;
	assert_int_equal(pp_dc_send_binary(a1->dc, big, 200000), 0);
	for (unsigned i = 0; i < 300; i++)
		send_blocking(f, a2, 0, "maybe", 5);
	wait_msgs(f, r1, 1);
	assert_int_equal(r1->last_len, 200000);
	assert_int_equal(r1->pattern_errors, 0);

	r1->check_pattern = 0;
	r1->check_seq = 1;
	r1->next_seq = 0;
	r1->msgs = 0;
	for (unsigned i = 0; i < 2000; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "seq %u", i);

		send_blocking(f, a1, 0, msg, (size_t)n);
	}
	wait_msgs(f, r1, 2000);
	assert_int_equal(r1->seq_errors, 0);
	/* Without retransmissions some of these are gone, and that is all. */
	assert_true(r2->msgs > 0);
	assert_true(r2->msgs <= 300);
	free(big);
}

static void
test_sync_transport(void **state)
{
	struct fixture *f = *state;
	struct pp_dc_init init = init_label("sync-a");
	struct chan *a1, *b1, *ra, *rb;
	uint8_t *big = malloc(100000);

	assert_non_null(big);
	for (size_t i = 0; i < 100000; i++)
		big[i] = pattern(0, i);
	a1 = open_chan(&f->a, &init);
	init = init_label("sync-b");
	b1 = open_chan(&f->b, &init);
	ra = wait_remote(f, &f->b, "sync-a");
	rb = wait_remote(f, &f->a, "sync-b");
	assert_true(run_until(&f->net, is_open, a1));
	assert_true(run_until(&f->net, is_open, b1));
	ra->check_seq = 1;
	rb->check_seq = 1;
	for (unsigned i = 0; i < 1000; i++) {
		char msg[32];
		int n = snprintf(msg, sizeof(msg), "seq %u", i);

		send_blocking(f, a1, 0, msg, (size_t)n);
		send_blocking(f, b1, 0, msg, (size_t)n);
	}
	wait_msgs(f, ra, 1000);
	wait_msgs(f, rb, 1000);
	assert_int_equal(ra->seq_errors + rb->seq_errors, 0);
	ra->check_seq = 0;
	ra->check_pattern = 1;
	ra->msgs = 0;
	assert_int_equal(pp_dc_send_binary(a1->dc, big, 100000), 0);
	wait_msgs(f, ra, 1);
	assert_int_equal(ra->pattern_errors, 0);
	assert_int_equal(pp_dc_close(a1->dc), 0);
	assert_true(run_until(&f->net, is_closed, ra));
	assert_true(run_until(&f->net, is_closed, a1));
	assert_int_equal(pp_dc_send_text(b1->dc, "after", 5), 0);
	wait_msgs(f, rb, 1001);
	free(big);
}

static void
test_peer_starts_first(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct pp_sctp_config ca, cb;

	(void)state;
	*state = f;
	assert_int_equal(uv_loop_init(&f->net.loop), 0);
	uv_idle_init(&f->net.loop, &f->net.idle);
	f->net.idle.data = &f->net;
	uv_timer_init(&f->net.loop, &f->net.tick);
	uv_timer_start(&f->net.tick, on_tick, 5, 5);
	memset(&ca, 0, sizeof(ca));
	ca.dtls_client = 1;
	memset(&cb, 0, sizeof(cb));
	peer_new(f, &f->a, &f->b, &ca);
	peer_new(f, &f->b, &f->a, &cb);
	/* Only a starts; b answers once a's INIT arrives. */
	assert_int_equal(pp_sctp_start(f->a.sctp), 0);
	assert_true(run_until(&f->net, both_connected, f));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_both_sides, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ordered_10000, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unordered_rexmit0, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_large_message, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_transfer_1mib, setup,
		    teardown),
		cmocka_unit_test(test_cut_sizes),
		cmocka_unit_test_setup_teardown(test_zero_checksum, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_big_packets, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_empty_and_ppids, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_buffered_amount_low, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_close_channel, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_oversize_send, setup,
		    teardown),
		cmocka_unit_test_teardown(test_oversize_receive, teardown),
		cmocka_unit_test_setup_teardown(test_negotiated, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_graceful_close, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_free_in_callback, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_garbage_input, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_refused_channel, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_lossy_link, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_transport, setup_sync,
		    teardown),
		cmocka_unit_test_teardown(test_peer_starts_first, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
