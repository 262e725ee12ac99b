/*
 * rtcpeer: a test peer on PeerPipe's WebRTC stack, for the interop suites.
 * It joins a room through the signaling server (protocol v1), connects to
 * one named peer and runs a scenario, then prints one line
 *   RESULT {"ok": ..., ...}
 * and exits 0 when the scenario passed.  It follows the same contract as
 * tests/interop/aiortc_peer.py and the Chromium page, so any pairing works:
 *
 *   --mode echo    send back every message on the channel it came on
 *   --mode drive   open test-ordered / test-unordered, send --count text and
 *                  binary messages (and 64 KiB / 256 KiB ones where the
 *                  peer's max-message-size allows), check every echo
 *   --mode bulk    both sides: send --bytes of binary on bulk-<name> with
 *                  backpressure, hash what the peer sends, compare SHA-256
 */
#include "base/error.h"
#include "base/log.h"
#include "rtc/pc.h"
#include "signal/client.h"

#include <getopt.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CHANNELS 8
#define BULK_CHUNK (64u * 1024u)
/* Below the association's 1 MiB send queue, so sends rarely see -EAGAIN
 * and the low-water mark (a quarter of it) is always crossed on the way down. */
#define BULK_HIGH_WATER (1024u * 1024u)
/*
 * maxRetransmits=0 may lose messages by design when a receive window
 * overflows; a small window in flight keeps the echo test meaningful.
 */
#define UNRELIABLE_WINDOW 16u

enum mode { MODE_ECHO, MODE_DRIVE, MODE_BULK };

/* An echo that usrsctp could not take yet. */
struct pending {
	struct pending *next;
	int binary;
	size_t len;
	uint8_t data[];
};

struct chan {
	struct peer *p;
	struct pending *head, *tail;
	size_t pending_bytes;
	struct pp_dc *dc;
	char label[64];
	int ordered;
	/* drive */
	unsigned sent, echoed, next_expected, cursor, lost;
	int in_order, big_sent, big_echoed;
	/* bulk */
	EVP_MD_CTX *sha;
	uint64_t bytes;
	int is_sink, ended;
};

struct peer {
	uv_loop_t loop;
	uv_timer_t deadline;
	struct pp_gloop *gl;
	struct pp_sigc *sig;
	struct pp_pc *pc;
	const char *url, *room_uuid, *room_name, *name, *peer;
	int offerer, legacy, in_room, peer_present, offered, started;
	int tamper;		/* play a MITM: change the peer's fingerprint */
	enum mode mode;
	unsigned count;
	uint64_t bulk_bytes;
	unsigned timeout_s;
	const char *local_addrs[8];
	size_t nlocal;
	struct chan ch[MAX_CHANNELS];
	int nch;
	int done, ok;
	char error[512];
	/* bulk */
	uint64_t bulk_sent;
	EVP_MD_CTX *bulk_tx_sha;
	struct chan *bulk_tx;
	int bulk_tx_done, peer_verified, we_verified;
	unsigned char peer_digest[32];
	uv_timer_t loss_timer;		/* test-unordered: quiet means lost */
};

static void finish(struct peer *p, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static uint32_t
prng(uint32_t x)
{
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return x;
}

/* Binary test message i: 4-byte big-endian index + 1..2000 deterministic bytes. */
static size_t
make_binary(unsigned i, uint8_t *buf)
{
	uint32_t s = prng(i * 2654435761u + 1);
	size_t n = 1 + s % 2000;

	buf[0] = (uint8_t)(i >> 24);
	buf[1] = (uint8_t)(i >> 16);
	buf[2] = (uint8_t)(i >> 8);
	buf[3] = (uint8_t)i;
	for (size_t k = 0; k < n; k++) {
		s = prng(s);
		buf[4 + k] = (uint8_t)s;
	}
	return 4 + n;
}

static void
print_result(struct peer *p)
{
	json_t *res = json_object(), *chans = json_object();
	char *s;

	json_object_set_new(res, "ok", json_boolean(p->ok));
	json_object_set_new(res, "impl", json_string("peerpipe-c"));
	json_object_set_new(res, "role", json_string(p->offerer ? "offer" : "answer"));
	json_object_set_new(res, "mode", json_string(p->mode == MODE_ECHO ? "echo"
	    : p->mode == MODE_DRIVE ? "drive" : "bulk"));
	for (int i = 0; i < p->nch; i++) {
		struct chan *c = &p->ch[i];

		json_object_set_new(chans, c->label, json_pack("{s:i, s:i, s:i, s:b, s:I}",
		    "sent", c->sent, "echoed", c->echoed, "lost", c->lost,
		    "in_order", c->in_order, "bytes", (json_int_t)c->bytes));
	}
	json_object_set_new(res, "channels", chans);
	if (p->pc) {
		struct pp_pc_status st;
		char pair[256];

		pp_pc_get_status(p->pc, &st);
		if (st.ice.have_pair) {
			snprintf(pair, sizeof(pair), "%s %s:%u -> %s %s:%u",
			    pp_ice_cand_type_name(st.ice.pair.local_type),
			    st.ice.pair.local_addr, st.ice.pair.local_port,
			    pp_ice_cand_type_name(st.ice.pair.remote_type),
			    st.ice.pair.remote_addr, st.ice.pair.remote_port);
			json_object_set_new(res, "selected_pair", json_string(pair));
		}
	}
	if (!p->ok)
		json_object_set_new(res, "error", json_string(p->error));
	s = json_dumps(res, JSON_COMPACT);
	printf("RESULT %s\n", s);
	fflush(stdout);
	free(s);
	json_decref(res);
}

static void
finish(struct peer *p, int ok, const char *fmt, ...)
{
	va_list ap;

	if (p->done)
		return;
	p->done = 1;
	p->ok = ok;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(p->error, sizeof(p->error), fmt, ap);
		va_end(ap);
	}
	print_result(p);
	uv_stop(&p->loop);
}

/* ---- signaling ---- */

static void
sig_send(struct peer *p, const char *sdp_type, json_t *data)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}",
	    "type", "SDP_NEW_STATE", "room_uuid", p->room_uuid,
	    "room_name", p->room_name, "user_name", p->name,
	    "target_user", p->peer, "sdp_type", sdp_type, "sdp_data", data);

	if (pp_sigc_send(p->sig, m) < 0)
		pp_warn("rtcpeer", "could not queue a %s for the peer", sdp_type);
	json_decref(m);
}

static struct chan *
chan_add(struct peer *p, struct pp_dc *dc, const char *label, int ordered)
{
	struct chan *c;

	if (p->nch == MAX_CHANNELS)
		return NULL;
	c = &p->ch[p->nch++];
	memset(c, 0, sizeof(*c));
	c->p = p;
	c->dc = dc;
	c->ordered = ordered;
	c->in_order = 1;
	snprintf(c->label, sizeof(c->label), "%s", label);
	return c;
}

static void dc_open(struct pp_dc *dc, void *ctx);
static void dc_message(struct pp_dc *dc, int binary, const uint8_t *data,
    size_t len, void *ctx);
static void dc_close(struct pp_dc *dc, int status, void *ctx);
static void dc_low(struct pp_dc *dc, void *ctx);

static const struct pp_dc_ops dc_ops = { dc_open, dc_message, dc_close, dc_low };

static int
open_chan(struct peer *p, const char *label, int unordered, int rexmit0)
{
	struct pp_dc_init init = { .label = label, .unordered = unordered };
	struct chan *c;
	int rc;

	if (rexmit0) {
		init.reliability = PP_DC_MAX_RETRANSMITS;
		init.pr_value = 0;
	}
	if ((c = chan_add(p, NULL, label, !unordered)) == NULL)
		return PP_ELIMIT;
	if ((rc = pp_pc_open_channel(p->pc, &init, &dc_ops, c, &c->dc)) < 0)
		finish(p, 0, "cannot open channel %s: %s", label, pp_strerror(rc));
	else
		pp_dc_set_buffered_amount_low_threshold(c->dc, BULK_HIGH_WATER / 8);
	return rc;
}

/* ---- drive ---- */

static struct chan *
find_chan(struct peer *p, const char *label)
{
	for (int i = 0; i < p->nch; i++)
		if (strcmp(p->ch[i].label, label) == 0)
			return &p->ch[i];
	return NULL;
}

static int
chan_complete(const struct peer *p, const struct chan *c)
{
	unsigned total = 2 * p->count;

	if (c->ordered)
		return c->cursor >= total + 2 && c->echoed == c->sent;
	return c->sent == total && c->echoed + c->lost == total;
}

static int
drive_complete(struct peer *p)
{
	struct chan *o = find_chan(p, "test-ordered"), *u = find_chan(p, "test-unordered");

	return o && u && chan_complete(p, o) && chan_complete(p, u);
}

/*
 * Sends the next messages of the sequence (text 0..count-1, binary
 * 0..count-1, then the big ones) while the channel buffers less than a
 * high-water mark; on_buffered_amount_low calls it again.
 */
static void
drive_send(struct chan *c)
{
	static const size_t big[] = { 65536, 262144 };
	static uint8_t buf[262144];
	struct peer *p = c->p;
	size_t max = pp_pc_remote_max_message_size(p->pc);
	unsigned total = 2 * p->count + (c->ordered ? 2 : 0);
	struct chan *o = find_chan(p, "test-ordered");
	int rc = 0;

	/* Phase 2: the unreliable channel runs alone, after the ordered one. */
	if (!c->ordered && !(o && chan_complete(p, o)))
		return;

	while (c->cursor < total && rc == 0 &&
	    pp_dc_buffered_amount(c->dc) < BULK_HIGH_WATER / 4 &&
	    (c->ordered || c->sent - c->echoed < UNRELIABLE_WINDOW)) {
		unsigned i = c->cursor;
		size_t n;

		if (i < p->count) {
			char text[32];

			n = (size_t)snprintf(text, sizeof(text), "msg %u", i);
			rc = pp_dc_send_text(c->dc, text, n);
		} else if (i < 2 * p->count) {
			n = make_binary(i - p->count, buf);
			rc = pp_dc_send_binary(c->dc, buf, n);
		} else {
			int k = (int)(i - 2 * p->count);

			if (max != 0 && big[k] > max) {
				pp_info("rtcpeer", "skipping a %zu-byte message: the "
				    "peer accepts at most %zu", big[k], max);
				c->cursor++;
				continue;
			}
			for (size_t j = 0; j < big[k]; j++)
				buf[j] = (uint8_t)(j * 7 + (size_t)k);
			rc = pp_dc_send_binary(c->dc, buf, big[k]);
			if (rc == 0)
				c->big_sent++;
		}
		if (rc == -EAGAIN)
			return;		/* resumed from on_buffered_amount_low */
		if (rc == 0) {
			c->sent++;
			c->cursor++;
		}
	}
	if (rc < 0)
		finish(p, 0, "sending on %s failed after %u messages: %s", c->label,
		    c->sent, pp_strerror(rc));
}

/*
 * maxRetransmits=0 may lose a message for good; after 5 s without an echo
 * the ones in flight count as lost and sending goes on.  More than 10% lost
 * fails the run.
 */
static void
loss_cb(uv_timer_t *t)
{
	struct peer *p = t->data;
	struct chan *u = find_chan(p, "test-unordered");

	if (u == NULL || u->sent == u->echoed + u->lost)
		return;
	u->lost = u->sent - u->echoed;
	pp_warn("rtcpeer", "test-unordered: %u messages lost so far", u->lost);
	if (u->lost > p->count / 5)
		finish(p, 0, "test-unordered: %u of %u messages lost", u->lost,
		    u->sent);
	else if (drive_complete(p))
		finish(p, 1, NULL);
	else
		drive_send(u);
}

static void
drive_check(struct chan *c, int binary, const uint8_t *data, size_t len)
{
	struct peer *p = c->p;
	uint8_t expect[2004];
	unsigned idx;

	if (!binary) {
		if (len < 4 || memcmp(data, "msg ", 4) != 0) {
			finish(p, 0, "%s: unexpected text echo", c->label);
			return;
		}
		idx = (unsigned)strtoul((const char *)data + 4, NULL, 10);
		/* Text i comes as i; binary as count + i, in send order. */
	} else if (len == 65536 || len == 262144) {
		for (size_t j = 0; j < len; j++)
			if (data[j] != (uint8_t)(j * 7 + (len == 262144))) {
				finish(p, 0, "%s: %zu-byte echo corrupted at %zu",
				    c->label, len, j);
				return;
			}
		idx = 2 * p->count + (len == 262144 ? 1u : 0u);
		c->big_echoed++;
	} else {
		if (len < 5) {
			finish(p, 0, "%s: short binary echo", c->label);
			return;
		}
		idx = (unsigned)data[0] << 24 | (unsigned)data[1] << 16 |
		    (unsigned)data[2] << 8 | data[3];
		if (make_binary(idx, expect) != len || memcmp(expect, data, len)) {
			finish(p, 0, "%s: binary echo %u corrupted", c->label, idx);
			return;
		}
		idx += p->count;
	}
	if (c->ordered && idx != c->next_expected && len != 65536 && len != 262144)
		c->in_order = 0;
	c->next_expected = idx + 1;
	c->echoed++;
	if (!c->ordered) {
		uv_timer_again(&p->loss_timer);
		drive_send(c);
	} else if (chan_complete(p, c)) {
		struct chan *u = find_chan(p, "test-unordered");

		if (u && u->dc) {
			uv_timer_start(&p->loss_timer, loss_cb, 5000, 5000);
			drive_send(u);
		}
	}
	if (c->ordered && !c->in_order)
		finish(p, 0, "%s: echoes out of order", c->label);
	else if (!c->ordered && c->echoed + c->lost > c->sent)
		c->lost = c->sent - c->echoed;	/* a "lost" one came late */
	else if (drive_complete(p))
		finish(p, 1, NULL);
}

/* ---- bulk ---- */

static void
bulk_pump(struct peer *p)
{
	static uint8_t buf[BULK_CHUNK];
	struct chan *c = p->bulk_tx;

	if (c == NULL || p->bulk_tx_done || pp_dc_state(c->dc) != PP_DC_OPEN)
		return;
	while (p->bulk_sent < p->bulk_bytes &&
	    pp_dc_buffered_amount(c->dc) < BULK_HIGH_WATER) {
		uint64_t left = p->bulk_bytes - p->bulk_sent;
		size_t n = left < BULK_CHUNK ? (size_t)left : BULK_CHUNK;
		uint32_t s = (uint32_t)(p->bulk_sent / BULK_CHUNK) + 7;
		int rc;

		for (size_t k = 0; k < n; k += 4) {
			s = prng(s);
			memcpy(buf + k, &s, n - k < 4 ? n - k : 4);
		}
		rc = pp_dc_send_binary(c->dc, buf, n);
		if (rc == -EAGAIN)
			return;		/* on_buffered_amount_low resumes */
		if (rc < 0) {
			finish(p, 0, "bulk send failed at %llu bytes: %s",
			    (unsigned long long)p->bulk_sent, pp_strerror(rc));
			return;
		}
		EVP_DigestUpdate(p->bulk_tx_sha, buf, n);
		p->bulk_sent += n;
		c->sent++;
		c->bytes += n;
	}
	if (p->bulk_sent == p->bulk_bytes) {
		unsigned char d[32];
		char text[128];
		unsigned dl;
		int n;

		EVP_DigestFinal_ex(p->bulk_tx_sha, d, &dl);
		n = snprintf(text, sizeof(text), "END %llu ",
		    (unsigned long long)p->bulk_bytes);
		for (unsigned i = 0; i < dl; i++)
			n += snprintf(text + n, sizeof(text) - (size_t)n, "%02x", d[i]);
		if (pp_dc_send_text(c->dc, text, (size_t)n) == 0)
			p->bulk_tx_done = 1;
	}
}

static void
bulk_maybe_done(struct peer *p)
{
	if (p->we_verified && p->peer_verified)
		finish(p, 1, NULL);
}

static void
bulk_rx(struct chan *c, int binary, const uint8_t *data, size_t len)
{
	struct peer *p = c->p;

	if (binary) {
		if (c->sha == NULL) {
			c->sha = EVP_MD_CTX_new();
			EVP_DigestInit_ex(c->sha, EVP_sha256(), NULL);
		}
		EVP_DigestUpdate(c->sha, data, len);
		c->bytes += len;
		c->echoed++;
		return;
	}
	if (len >= 8 && memcmp(data, "VERIFIED", 8) == 0) {
		p->peer_verified = 1;
		bulk_maybe_done(p);
	} else if (len > 4 && memcmp(data, "END ", 4) == 0) {
		char want[128], got[65] = "";
		unsigned char d[32];
		unsigned dl = 0;

		snprintf(want, sizeof(want), "%.*s", (int)len, (const char *)data);
		if (c->sha)
			EVP_DigestFinal_ex(c->sha, d, &dl);
		for (unsigned i = 0; i < dl; i++)
			snprintf(got + 2 * i, 3, "%02x", d[i]);
		if (strstr(want, got) == NULL || dl == 0 ||
		    strtoull(want + 4, NULL, 10) != c->bytes) {
			finish(p, 0, "bulk data from the peer does not match: %s, "
			    "got %llu bytes sha256 %s", want,
			    (unsigned long long)c->bytes, got);
			return;
		}
		pp_info("rtcpeer", "verified %llu bytes from the peer (sha256 %s)",
		    (unsigned long long)c->bytes, got);
		p->we_verified = 1;
		(void)pp_dc_send_text(c->dc, "VERIFIED", 8);
		bulk_maybe_done(p);
	}
}

/* ---- channel callbacks ---- */

static void
dc_open(struct pp_dc *dc, void *ctx)
{
	struct chan *c = ctx;
	struct peer *p = c->p;

	(void)dc;
	pp_info("rtcpeer", "channel %s open", c->label);
	if (p->mode == MODE_DRIVE && strncmp(c->label, "test-", 5) == 0)
		drive_send(c);
	if (p->mode == MODE_BULK && c == p->bulk_tx)
		bulk_pump(p);
}

/* Sends queued echoes in order; 0 when the queue is empty. */
static int
echo_flush(struct chan *c)
{
	struct pending *e;
	int rc;

	while ((e = c->head) != NULL) {
		if ((rc = pp_dc_send(c->dc, e->binary, e->data, e->len)) == -EAGAIN)
			return rc;
		if (rc < 0)
			pp_warn("rtcpeer", "echo on %s failed: %s", c->label,
			    pp_strerror(rc));
		c->head = e->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->pending_bytes -= e->len;
		free(e);
	}
	return 0;
}

static void
echo(struct chan *c, int binary, const uint8_t *data, size_t len)
{
	struct pending *e;

	c->echoed++;
	if (c->head == NULL) {
		int rc = pp_dc_send(c->dc, binary, data, len);

		if (rc != -EAGAIN) {
			if (rc < 0)
				pp_warn("rtcpeer", "echo on %s failed: %s",
				    c->label, pp_strerror(rc));
			return;
		}
	}
	/* A test tool, but still bounded: a peer that floods us fails. */
	if (c->pending_bytes + len > 64u * 1024 * 1024 ||
	    (e = malloc(sizeof(*e) + len)) == NULL) {
		finish(c->p, 0, "echo backlog on %s over 64 MiB", c->label);
		return;
	}
	e->next = NULL;
	e->binary = binary;
	e->len = len;
	memcpy(e->data, data, len);
	if (c->tail)
		c->tail->next = e;
	else
		c->head = e;
	c->tail = e;
	c->pending_bytes += len;
}

static void
dc_message(struct pp_dc *dc, int binary, const uint8_t *data, size_t len,
    void *ctx)
{
	struct chan *c = ctx;
	struct peer *p = c->p;

	(void)dc;

	switch (p->mode) {
	case MODE_ECHO:
		echo(c, binary, data, len);
		break;
	case MODE_DRIVE:
		drive_check(c, binary, data, len);
		break;
	case MODE_BULK:
		bulk_rx(c, binary, data, len);
		break;
	}
}

static void
dc_close(struct pp_dc *dc, int status, void *ctx)
{
	struct chan *c = ctx;

	(void)dc;
	pp_info("rtcpeer", "channel %s closed (%d)", c->label, status);
	c->dc = NULL;
}

static void
dc_low(struct pp_dc *dc, void *ctx)
{
	struct chan *c = ctx;

	(void)dc;
	if (c->p->mode == MODE_BULK)
		bulk_pump(c->p);
	else if (c->p->mode == MODE_ECHO)
		(void)echo_flush(c);
	else if (c->p->mode == MODE_DRIVE)
		/* The send queue is the association's: any channel draining
		 * may be what another one waits for. */
		for (int i = 0; i < c->p->nch; i++)
			if (strncmp(c->p->ch[i].label, "test-", 5) == 0 &&
			    c->p->ch[i].dc)
				drive_send(&c->p->ch[i]);
}

/* ---- peer connection callbacks ---- */

static void
pc_candidate(void *ctx, const char *cand, const char *mid, unsigned idx)
{
	struct peer *p = ctx;

	if (cand[0] == '\0')
		return;		/* v1 peers never signal end-of-candidates */
	sig_send(p, "candidate", json_pack("{s:s, s:s, s:i}", "candidate", cand,
	    "sdpMid", mid, "sdpMLineIndex", (int)idx));
}

static void
start_scenario(struct peer *p)
{
	char label[80];

	switch (p->mode) {
	case MODE_ECHO:
		break;
	case MODE_DRIVE:
		open_chan(p, "test-ordered", 0, 0);
		open_chan(p, "test-unordered", 1, 1);
		break;
	case MODE_BULK:
		snprintf(label, sizeof(label), "bulk-%s", p->name);
		if (open_chan(p, label, 0, 0) == 0) {
			p->bulk_tx = &p->ch[p->nch - 1];
			pp_dc_set_buffered_amount_low_threshold(p->bulk_tx->dc,
			    BULK_HIGH_WATER / 4);
		}
		break;
	}
}

static unsigned
echoed_total(const struct peer *p)
{
	unsigned n = 0;

	for (int i = 0; i < p->nch; i++)
		n += p->ch[i].echoed;
	return n;
}

static void
pc_state(void *ctx, enum pp_pc_state st, const char *reason)
{
	struct peer *p = ctx;

	if (st == PP_PC_CONNECTED && !p->started) {
		p->started = 1;
		start_scenario(p);
	} else if ((st == PP_PC_FAILED || st == PP_PC_CLOSED) &&
	    p->mode == MODE_ECHO && echoed_total(p) > 0) {
		/* The driver hangs up when it is done (browsers abort SCTP). */
		finish(p, 1, NULL);
	} else if (st == PP_PC_FAILED) {
		finish(p, 0, "peer connection failed: %s", reason);
	} else if (st == PP_PC_CLOSED) {
		finish(p, 0, "peer connection closed: %s", reason);
	}
}

static void
pc_channel(void *ctx, struct pp_dc *dc)
{
	struct peer *p = ctx;
	struct chan *c = chan_add(p, dc, pp_dc_label(dc), pp_dc_ordered(dc));

	if (c) {
		pp_dc_set_ops(dc, &dc_ops, c);
		pp_dc_set_buffered_amount_low_threshold(dc, BULK_HIGH_WATER / 8);
	}
}

static const struct pp_pc_ops pc_ops = { pc_candidate, pc_state, pc_channel };

static int
make_pc(struct peer *p)
{
	struct pp_pc_config cfg;
	int rc;

	memset(&cfg, 0, sizeof(cfg));
	cfg.gloop = p->gl;
	cfg.ice.local_addrs = p->nlocal ? p->local_addrs : NULL;
	cfg.ice.nlocal_addrs = p->nlocal;
	cfg.legacy_sdp = p->legacy;
	cfg.log_name = p->peer;
	if ((rc = pp_pc_new(&cfg, &pc_ops, p, &p->pc)) < 0)
		finish(p, 0, "cannot create the peer connection: %s", pp_strerror(rc));
	return rc;
}

static void
make_offer(struct peer *p)
{
	char err[256], *sdp;

	if (p->offered || make_pc(p) < 0)
		return;
	p->offered = 1;
	if (pp_pc_create_offer(p->pc, &sdp, err, sizeof(err)) < 0) {
		finish(p, 0, "cannot make an offer: %s", err);
		return;
	}
	sig_send(p, "offer", json_string(sdp));
	free(sdp);
}

/* What a man in the middle would do: swap the DTLS fingerprint. */
static char *
tampered(const char *sdp)
{
	char *copy = strdup(sdp), *fp = copy ? strstr(copy, "sha-256 ") : NULL;

	if (fp)
		fp[8] = fp[8] == 'A' ? 'B' : 'A';
	return copy;
}

static void
on_sdp_state(struct peer *p, json_t *data)
{
	const char *type = json_string_value(json_object_get(data, "type"));
	const char *from = json_string_value(json_object_get(data, "from"));
	json_t *sdp = json_object_get(data, "sdp_data");
	char err[512], *answer;

	if (type == NULL || from == NULL || strcmp(from, p->peer) != 0)
		return;
	if (sdp && p->tamper && json_is_string(sdp) &&
	    strcmp(type, "candidate") != 0) {
		char *t = tampered(json_string_value(sdp));

		sdp = json_string(t ? t : "");
		free(t);
	} else
		json_incref(sdp);
	if (strcmp(type, "offer") == 0 && !p->offerer && json_is_string(sdp)) {
		if (p->pc || make_pc(p) < 0)
			goto out;
		if (pp_pc_set_remote_offer(p->pc, json_string_value(sdp),
		    json_string_length(sdp), &answer, err, sizeof(err)) < 0) {
			/* A bad offer costs the offer, not the process. */
			pp_warn("rtcpeer", "refused an offer from %s: %s", from, err);
			pp_pc_free(p->pc);
			p->pc = NULL;
			goto out;
		}
		sig_send(p, "answer", json_string(answer));
		free(answer);
	} else if (strcmp(type, "answer") == 0 && p->offerer && p->pc &&
	    json_is_string(sdp)) {
		if (pp_pc_set_remote_answer(p->pc, json_string_value(sdp),
		    json_string_length(sdp), err, sizeof(err)) < 0) {
			finish(p, 0, "the peer's answer was refused: %s", err);
			goto out;
		}
		/* Like v1 peers, the offerer owns the control channel. */
		open_chan(p, "control-channel", 0, 0);
	} else if (strcmp(type, "candidate") == 0 && p->pc && json_is_object(sdp)) {
		const char *c = json_string_value(json_object_get(sdp, "candidate"));

		if (c && pp_pc_add_remote_candidate(p->pc, c, err, sizeof(err)) < 0)
			pp_info("rtcpeer", "%s", err);
	}
out:
	json_decref(sdp);
}

static void
sig_connected(void *ctx)
{
	struct peer *p = ctx;
	json_t *m = json_pack("{s:s, s:s, s:s, s:s}", "type", "FAST_ROOM_EXACT",
	    "room_uuid", p->room_uuid, "room_name", p->room_name,
	    "user_name", p->name);

	(void)pp_sigc_send(p->sig, m);
	json_decref(m);
}

static void
sig_disconnected(void *ctx, const char *why)
{
	(void)ctx, (void)why;
}

static void
sig_message(void *ctx, const char *type, json_t *data)
{
	struct peer *p = ctx;
	json_t *members, *v;
	size_t i;

	if (strcmp(type, "ROOM_JOINED") == 0 || strcmp(type, "ROOM_CREATED") == 0) {
		p->in_room = 1;
		members = json_object_get(data, "room_members");
		json_array_foreach(members, i, v)
			if (json_is_string(v) && strcmp(json_string_value(v), p->peer) == 0)
				p->peer_present = 1;
	} else if (strcmp(type, "ROOM_NEW_MEMBER") == 0) {
		v = json_object_get(data, "name");
		if (json_is_string(v) && strcmp(json_string_value(v), p->peer) == 0)
			p->peer_present = 1;
	} else if (strcmp(type, "SDP_STATE") == 0) {
		on_sdp_state(p, data);
	} else if (strcmp(type, "FAILED") == 0) {
		v = json_object_get(data, "reason");
		pp_warn("rtcpeer", "signaling server refused a request: %s",
		    json_is_string(v) ? json_string_value(v) : "?");
	}
	if (p->offerer && p->in_room && p->peer_present)
		make_offer(p);
}

static void
on_deadline(uv_timer_t *t)
{
	struct peer *p = t->data;

	if (p->mode == MODE_ECHO && p->pc)
		finish(p, 1, NULL);	/* echo serves until told to stop */
	else
		finish(p, 0, "timed out after %u s", p->timeout_s);
}

static void
usage(void)
{
	fprintf(stderr, "usage: rtcpeer --url URL --room-uuid UUID --room-name NAME "
	    "--name ME --peer OTHER --role offer|answer --mode echo|drive|bulk "
	    "[--count N] [--bytes N] [--timeout SECS] [--legacy-sdp] "
	    "[--local-addr IP]...\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", 1, NULL, 'u' }, { "room-uuid", 1, NULL, 'U' },
		{ "room-name", 1, NULL, 'R' }, { "name", 1, NULL, 'n' },
		{ "peer", 1, NULL, 'p' }, { "role", 1, NULL, 'r' },
		{ "mode", 1, NULL, 'm' }, { "count", 1, NULL, 'c' },
		{ "bytes", 1, NULL, 'b' }, { "timeout", 1, NULL, 't' },
		{ "legacy-sdp", 0, NULL, 'L' }, { "local-addr", 1, NULL, 'a' },
		{ "audio", 0, NULL, 'A' }, { "no-audio", 0, NULL, 'N' },
		{ "host-address", 1, NULL, 'a' },
		{ "tamper-remote-fingerprint", 0, NULL, 'T' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct pp_sigc_ops sig_ops = { sig_connected,
	    sig_disconnected, sig_message };
	struct peer *p = calloc(1, sizeof(*p));
	struct pp_sigc_config sc = { 0 };
	int ch;

	p->count = 100;
	p->timeout_s = 60;
	p->offerer = -1;
	p->mode = MODE_ECHO;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'u': p->url = optarg; break;
		case 'U': p->room_uuid = optarg; break;
		case 'R': p->room_name = optarg; break;
		case 'n': p->name = optarg; break;
		case 'p': p->peer = optarg; break;
		case 'r': p->offerer = strcmp(optarg, "offer") == 0 ? 1 :
		    strcmp(optarg, "answer") == 0 ? 0 : -1; break;
		case 'm':
			if (strcmp(optarg, "echo") == 0) p->mode = MODE_ECHO;
			else if (strcmp(optarg, "drive") == 0) p->mode = MODE_DRIVE;
			else if (strcmp(optarg, "bulk") == 0) p->mode = MODE_BULK;
			else usage();
			break;
		case 'c': p->count = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'b': p->bulk_bytes = strtoull(optarg, NULL, 10); break;
		case 't': p->timeout_s = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'L': p->legacy = 1; break;
		case 'a':
			if (p->nlocal < 8)
				p->local_addrs[p->nlocal++] = optarg;
			break;
		case 'A': case 'N': break;	/* we send no media either way */
		case 'T': p->tamper = 1; break;
		default: usage();
		}
	}
	if (!p->url || !p->room_uuid || !p->room_name || !p->name || !p->peer ||
	    p->offerer < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&p->loop);
	if (pp_gloop_new(&p->loop, &p->gl) < 0)
		return 1;
	p->bulk_tx_sha = EVP_MD_CTX_new();
	EVP_DigestInit_ex(p->bulk_tx_sha, EVP_sha256(), NULL);
	sc.url = p->url;
	sc.insecure = 1;
	sc.reconnect_min_ms = 200;
	if (pp_sigc_new(&p->loop, &sc, &sig_ops, p, &p->sig) < 0)
		return 1;
	uv_timer_init(&p->loop, &p->deadline);
	p->deadline.data = p;
	uv_timer_init(&p->loop, &p->loss_timer);
	p->loss_timer.data = p;
	uv_timer_start(&p->deadline, on_deadline, (uint64_t)p->timeout_s * 1000, 0);
	uv_run(&p->loop, UV_RUN_DEFAULT);

	/* Orderly teardown, so the sanitizers see no leak. */
	if (p->pc) {
		pp_pc_close(p->pc);
		pp_pc_free(p->pc);
	}
	pp_sigc_stop(p->sig);
	uv_close((uv_handle_t *)&p->deadline, NULL);
	uv_close((uv_handle_t *)&p->loss_timer, NULL);
	pp_gloop_free(p->gl);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	pp_sigc_free(p->sig);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	for (int i = 0; i < p->nch; i++) {
		struct pending *e;

		EVP_MD_CTX_free(p->ch[i].sha);
		while ((e = p->ch[i].head) != NULL) {
			p->ch[i].head = e->next;
			free(e);
		}
	}
	EVP_MD_CTX_free(p->bulk_tx_sha);
	uv_loop_close(&p->loop);
	{
		int ok = p->ok;

		free(p);
		return ok ? 0 : 1;
	}
}
