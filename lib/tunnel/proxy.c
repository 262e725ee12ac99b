/*
 * Forwarded connections: one proxy-<uuid> data channel each, joined to a
 * TCP connection or a UDP session on our side.
 *
 * Lifetime: a proxy lives in its tunnel's list from creation until
 * px_close(); its memory goes once every uv handle it owns has run its
 * close callback (handles == 0) and it has let go of its channel.  Once the
 * tunnel is freed, px->t is NULL and callbacks still in flight only finish
 * closing.
 *
 * Backpressure, socket -> channel: a TCP socket is read only while the
 * channel's buffered amount is at most PP_TUN_HIGH_WATER, START has been
 * exchanged, nothing waits in `pending` and the peer has not said PAUSE.
 * A message the association's send queue refuses (-EAGAIN) waits in
 * `pending` (one message, at most one encoded read) and the tunnel's retry
 * timer offers it again.  Channel -> socket: what the socket has not taken
 * yet is counted by libuv; above PP_TUN_WRITE_HIGH a v2 peer is told PAUSE
 * (RESUME at PP_TUN_LOW_WATER); a v1 peer cannot be paused, so past
 * PP_TUN_WRITE_HARD the connection is closed rather than buffered further.
 * UDP is lossy by nature: datagrams are dropped (and counted) when the
 * channel is backed up.
 */
#include "tunnel/tun_int.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/random.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SUB "tunnel"
#define LINGER_MS	30000	/* graceful close: longest wait for the socket to drain */
#define RETRY_MS	5
#define START_ACK_POLL_MS	5	/* v1: looking for the channel's ACK */
#define START_ACK_POLLS		200	/* a second of it at most */

struct wreq {
	uv_write_t req;
	struct proxy *px;
	uint8_t data[];
};

static void px_dc_open(struct pp_dc *dc, void *ctx);
static void px_dc_message(struct pp_dc *dc, int binary, const uint8_t *data,
    size_t len, void *ctx);
static void px_dc_close(struct pp_dc *dc, int status, void *ctx);
static void px_dc_low(struct pp_dc *dc, void *ctx);
static const struct pp_dc_ops px_dc_ops = { px_dc_open, px_dc_message,
    px_dc_close, px_dc_low };

static void px_resume(struct proxy *px);
static void px_udp_flush(struct proxy *px);

/* ---- lifetime ---- */

static void
px_unlink(struct proxy *px)
{
	struct pp_tun *t = px->t;

	if (!px->linked)
		return;
	px->linked = 0;
	if (px->prev)
		px->prev->next = px->next;
	else
		t->proxies = px->next;
	if (px->next)
		px->next->prev = px->prev;
	px->next = px->prev = NULL;
}

static void
px_maybe_free(struct proxy *px)
{
	if (px->handles > 0 || px->dc != NULL)
		return;
	if (px->t)
		px_unlink(px);
	pp_codec_free(px->codec);
	pp_tap_free(px->tap);
	free(px->pending);
	free(px->batch);
	free(px);
}

static void
px_handle_closed(uv_handle_t *h)
{
	struct proxy *px = h->data;

	px->handles--;
	px_maybe_free(px);
}

static void
close_handle(struct proxy *px, uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, px_handle_closed);
}

static void
close_handles(struct proxy *px)
{
	if (px->sock_live) {
		px->sock_live = 0;
		close_handle(px, &px->u.h);
	}
	close_handle(px, (uv_handle_t *)&px->timer);
	if (px->proto == PP_TUN_UDP)
		close_handle(px, (uv_handle_t *)&px->flush);
}

static void
on_linger(uv_timer_t *h)
{
	struct proxy *px = h->data;

	pp_debug(SUB, "proxy-%s: socket did not drain in %u s; closed",
	    px->uuid, LINGER_MS / 1000);
	close_handles(px);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct proxy *px = req->data;

	(void)status;
	px->shut_done = 1;
	if (px->closing)
		close_handles(px);
}

/*
 * Ends a proxy: lets go of the channel (closing it), closes the socket and
 * timers.  graceful: data already queued for a TCP socket is written first
 * (bounded by LINGER_MS).  Idempotent.
 */
static void
px_close(struct proxy *px, int graceful)
{
	struct pp_tun *t = px->t;

	if (px->closing)
		return;
	px->closing = 1;
	if (t && px->linked)
		t->nproxies--;
	if (px->dc) {
		pp_dc_set_ops(px->dc, NULL, NULL);
		(void)pp_dc_close(px->dc);
		px->dc = NULL;
	}
	uv_timer_stop(&px->timer);
	if (px->sock_live && px->proto == PP_TUN_TCP) {
		(void)uv_read_stop(&px->u.s);
		if (graceful && (uv_stream_get_write_queue_size(&px->u.s) > 0 ||
		    (px->shut_wr && !px->shut_done))) {
			if (!px->shut_wr) {
				px->shut_wr = 1;
				px->shutdown_req.data = px;
				if (uv_shutdown(&px->shutdown_req, &px->u.s,
				    on_shutdown) < 0)
					goto now;
			}
			uv_timer_start(&px->timer, on_linger, LINGER_MS, 0);
			return;
		}
	}
now:
	close_handles(px);
}

static struct proxy *
px_new(struct pp_tun *t, enum px_role role, enum pp_tun_proto proto,
    const char *uuid, uint16_t port)
{
	struct pp_codec_config cc;
	struct proxy *px;

	if ((px = calloc(1, sizeof(*px))) == NULL)
		return NULL;
	memset(&cc, 0, sizeof(cc));
	cc.codec = t->settings.codec;
	/* A zstd stream needs every message in order: TCP proxies only. */
	cc.stream = t->settings.stream && proto == PP_TUN_TCP;
	cc.adaptive = t->settings.adaptive;
	if (pp_codec_new(&cc, &px->codec) < 0 || (proto == PP_TUN_UDP &&
	    (px->batch = malloc(sizeof(*px->batch))) == NULL)) {
		pp_codec_free(px->codec);
		free(px);
		return NULL;
	}
	px->t = t;
	px->role = role;
	px->proto = proto;
	px->port = port;
	snprintf(px->uuid, sizeof(px->uuid), "%s", uuid);
	uv_timer_init(t->loop, &px->timer);
	px->timer.data = px;
	px->handles = 1;
	if (proto == PP_TUN_UDP) {
		pp_udpb_reset(px->batch);
		uv_timer_init(t->loop, &px->flush);
		px->flush.data = px;
		px->handles++;
	}
	px->next = t->proxies;
	if (t->proxies)
		t->proxies->prev = px;
	t->proxies = px;
	px->linked = 1;
	t->nproxies++;
	t->st.proxies_total++;
	return px;
}

struct proxy *
pp__px_find(struct pp_tun *t, const char *uuid)
{
	for (struct proxy *px = t->proxies; px; px = px->next)
		if (!px->closing && strcmp(px->uuid, uuid) == 0)
			return px;
	return NULL;
}

void
pp__px_detach_all(struct pp_tun *t)
{
	struct proxy *px;

	while ((px = t->proxies) != NULL) {
		px_close(px, 0);
		close_handles(px);	/* no lingering past the tunnel */
		px_unlink(px);
		px->t = NULL;
	}
	t->nproxies = 0;
}

/* Closes the forwarded connections to our services the peer may no longer
 * use (policy reload); returns how many. */
unsigned
pp__px_enforce(struct pp_tun *t)
{
	struct proxy *px, *next;
	unsigned n = 0;

	for (px = t->proxies; px; px = next) {
		next = px->next;
		if (px->role != PX_PROVIDER || px->closing ||
		    pp__tun_allowed(t, px->port, px->proto))
			continue;
		pp_info(SUB, "peer %s: port %u/%s no longer allowed: proxy-%s "
		    "closed", t->peer_name, px->port, pp_tun_proto_name(px->proto),
		    px->uuid);
		px_close(px, 0);
		n++;
	}
	return n;
}

/* ---- sending: socket -> channel ---- */

static void
on_retry(uv_timer_t *h)
{
	pp__px_retry_blocked(h->data);
}

static void
arm_retry(struct pp_tun *t)
{
	if (!uv_is_active((uv_handle_t *)&t->retry))
		uv_timer_start(&t->retry, on_retry, RETRY_MS, RETRY_MS);
}

/*
 * Adaptive compression weighs compression time against the time the link
 * needs: the rate at which the channel's bytes leave (sent minus what is
 * still buffered), sampled every RATE_MS while sending, smoothed.  When
 * the sender is the slow part the rate is its own, which is low, and then
 * spending CPU on zstd costs nothing that matters either.
 */
#define RATE_MS		50

static void
rate_sample(struct proxy *px)
{
	uint64_t now = pp_now_ms();
	size_t buffered;
	double drained, bps;

	if (!px->t->settings.adaptive || px->dc == NULL)
		return;
	buffered = pp_dc_buffered_amount(px->dc);
	if (px->rate_ms == 0) {
		px->rate_ms = now;
		px->rate_wire = px->wire_out;
		px->rate_buffered = buffered;
		return;
	}
	if (now - px->rate_ms < RATE_MS)
		return;
	drained = (double)(px->wire_out - px->rate_wire) +
	    (double)px->rate_buffered - (double)buffered;
	bps = drained > 0 ? drained * 1000.0 / (double)(now - px->rate_ms) : 0;
	px->rate_bps = px->rate_bps > 0 ? 0.7 * px->rate_bps + 0.3 * bps : bps;
	pp_codec_set_link_rate(px->codec, px->rate_bps);
	px->rate_ms = now;
	px->rate_wire = px->wire_out;
	px->rate_buffered = buffered;
}

static void
stop_reading(struct proxy *px)
{
	if (px->reading && px->sock_live) {
		if (px->proto == PP_TUN_TCP)
			(void)uv_read_stop(&px->u.s);
		px->reading = 0;
	}
}

/*
 * Frames and sends one message.  0 when it went out or waits in pending
 * (then reading stops until it has gone); negative after closing the proxy.
 * With room, data[-1] is ours to write: a raw message is framed in place
 * instead of copied.
 */
static int
px_send(struct proxy *px, unsigned flags, uint8_t *data, size_t len, int room)
{
	struct pp_tun *t = px->t;
	const uint8_t *msg = t->enc;
	ssize_t n;
	int rc;

	if (px->dc == NULL)
		return PP_ECONFLICT;
	n = room ? pp_codec_encode_inplace(px->codec, flags, data, len, t->enc,
	    t->enc_cap, &msg) :
	    pp_codec_encode(px->codec, flags, data, len, t->enc, t->enc_cap);
	if (n < 0) {
		pp_warn(SUB, "peer %s proxy-%s: cannot encode: %s", t->peer_name,
		    px->uuid, pp_strerror((int)n));
		px_close(px, 0);
		return (int)n;
	}
	if (px->pending == NULL &&
	    (rc = pp_dc_send_binary(px->dc, msg, (size_t)n)) != -EAGAIN) {
		if (rc < 0) {
			pp_warn(SUB, "peer %s proxy-%s: send failed: %s",
			    t->peer_name, px->uuid, pp_strerror(rc));
			px_close(px, 0);
			return rc;
		}
		t->st.wire_out += (uint64_t)n;
		px->wire_out += (uint64_t)n;
		rate_sample(px);
		if (px->proto == PP_TUN_TCP &&
		    pp_dc_buffered_amount(px->dc) > PP_TUN_HIGH_WATER)
			stop_reading(px);
		return 0;
	}
	/* Only one message ever waits: reading stops while it does, and the
	 * flag-only messages that may follow are kept as flags. */
	if (px->pending != NULL) {
		pp_warn(SUB, "peer %s proxy-%s: second pending message",
		    t->peer_name, px->uuid);
		px_close(px, 0);
		return PP_ELIMIT;
	}
	if ((px->pending = malloc((size_t)n)) == NULL) {
		px_close(px, 0);
		return -ENOMEM;
	}
	memcpy(px->pending, msg, (size_t)n);
	px->pending_len = (size_t)n;
	px->blocked = 1;
	stop_reading(px);
	arm_retry(t);
	return 0;
}

static void
send_eot(struct proxy *px)
{
	if (px->pending) {
		px->pending_eot = 1;
		return;
	}
	if (px_send(px, PP_FR_EOT, NULL, 0, 0) < 0)
		return;
	px->eot_sent = 1;
	if (px->eot_recv)
		px_close(px, 1);	/* both directions done */
}

/* v2 flow: tell the peer what our socket's backlog wants. */
static void
flow_sync(struct proxy *px)
{
	if (!px->t || !px->t->settings.flow || px->pending || px->closing ||
	    px->pause_want == px->pause_sent)
		return;
	px->pause_sent = px->pause_want;
	(void)px_send(px, px->pause_want ? PP_FR_PAUSE : PP_FR_RESUME, NULL,
	    0, 0);
}

/* Offers the pending message again; 0 when nothing waits any more. */
static int
px_try_pending(struct proxy *px)
{
	struct pp_tun *t = px->t;
	int rc;

	if (px->pending == NULL || px->dc == NULL)
		return 0;
	rc = pp_dc_send_binary(px->dc, px->pending, px->pending_len);
	if (rc == -EAGAIN)
		return rc;
	if (rc < 0) {
		px_close(px, 0);
		return rc;
	}
	t->st.wire_out += px->pending_len;
	px->wire_out += px->pending_len;
	free(px->pending);
	px->pending = NULL;
	px->blocked = 0;
	if (px->pending_eot) {
		px->pending_eot = 0;
		send_eot(px);
	}
	flow_sync(px);
	px_resume(px);
	return 0;
}

void
pp__px_retry_blocked(struct pp_tun *t)
{
	struct proxy *px, *next;
	int left = 0;

	for (px = t->proxies; px; px = next) {
		next = px->next;
		if (px->blocked && !px->closing && px_try_pending(px) == -EAGAIN)
			left = 1;
	}
	if (!left)
		uv_timer_stop(&t->retry);
}

static void
px_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct proxy *px = h->data;

	(void)hint;
	/* v1 peers read 16 KiB and may expect no more; between our own,
	 * bigger messages mean fewer of everything per byte.  One byte of
	 * room before it: px_send frames a raw message there. */
	*buf = uv_buf_init((char *)px->t->rbuf + 1, px->proto == PP_TUN_UDP ?
	    PP_UDPB_DGRAM_MAX : px->t->settings.version >= 2 ?
	    PP_TUN_READ_SIZE_V2 : PP_TUN_READ_SIZE);
}

static void
px_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct proxy *px = s->data;

	if (px->t == NULL || px->closing || n == 0)
		return;
	if (n == UV_EOF) {
		stop_reading(px);
		px->eof_local = 1;
		pp_tap_fin(px->tap, PP_TAP_FROM_SERVICE);
		send_eot(px);
		return;
	}
	if (n < 0) {
		pp_debug(SUB, "peer %s proxy-%s: socket: %s", px->t->peer_name,
		    px->uuid, uv_strerror((int)n));
		px_close(px, 0);
		return;
	}
	px->bytes_out += (uint64_t)n;
	px->t->st.bytes_out += (uint64_t)n;
	pp_tap_add(px->tap, PP_TAP_FROM_SERVICE, buf->base, (size_t)n);
	(void)px_send(px, 0, (uint8_t *)buf->base, (size_t)n, 1);
}

/* Reads the socket again if nothing holds it back. */
static void
px_resume(struct proxy *px)
{
	if (px->closing || !px->started || px->pending || px->peer_paused ||
	    px->dc == NULL)
		return;
	if (px->proto == PP_TUN_UDP) {
		px_udp_flush(px);
		return;
	}
	if (!px->sock_live || px->reading || px->eof_local ||
	    pp_dc_buffered_amount(px->dc) > PP_TUN_HIGH_WATER)
		return;
	if (uv_read_start(&px->u.s, px_alloc, px_read) == 0)
		px->reading = 1;
}

/* ---- UDP ---- */

static void
px_udp_drop(struct proxy *px)
{
	px->udp_dropped++;
	if (px->t)
		px->t->st.udp_dropped++;
}

static void
on_udp_idle(uv_timer_t *h)
{
	struct proxy *px = h->data;

	pp_debug(SUB, "proxy-%s: UDP session idle for %u s; closed", px->uuid,
	    PP_TUN_UDP_IDLE_MS / 1000);
	px_close(px, 0);
}

static void
udp_touch(struct proxy *px)
{
	if (px->started && !px->closing)
		uv_timer_start(&px->timer, on_udp_idle, PP_TUN_UDP_IDLE_MS, 0);
}

static void
px_udp_flush(struct proxy *px)
{
	if (px->batch->count == 0 || px->pending || px->dc == NULL ||
	    !px->started)
		return;
	uv_timer_stop(&px->flush);
	if (px_send(px, 0, px->batch->buf, px->batch->len, 0) == 0)
		pp_udpb_reset(px->batch);
}

static void
on_udp_flush(uv_timer_t *h)
{
	px_udp_flush(h->data);
}

/* One datagram from our side (client or service) towards the peer. */
static void
px_udp_queue(struct proxy *px, const uint8_t *data, size_t len)
{
	int rc;

	if (px->closing)
		return;
	px->bytes_out += len;
	px->t->st.bytes_out += len;
	if (px->started && (px->pending || px->peer_paused || px->dc == NULL ||
	    pp_dc_buffered_amount(px->dc) > PP_TUN_HIGH_WATER)) {
		px_udp_drop(px);
		return;
	}
	if ((rc = pp_udpb_add(px->batch, data, len)) == -ENOSPC && px->started) {
		px_udp_flush(px);
		rc = px->batch->count ? -ENOSPC : pp_udpb_add(px->batch, data, len);
	}
	if (rc < 0) {
		px_udp_drop(px);	/* before START only one batch waits */
		return;
	}
	if (!px->started)
		return;
	udp_touch(px);
	if (px->batch->len >= PP_UDPB_TARGET)
		px_udp_flush(px);
	else
		uv_timer_start(&px->flush, on_udp_flush, PP_UDPB_FLUSH_MS, 0);
}

static int
same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return 0;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (b->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return 0;
}

static void
on_open_timeout(uv_timer_t *h)
{
	struct proxy *px = h->data;
	struct pp_tun *t = px->t;
	char *json = NULL;

	pp_info(SUB, "peer %s port %u/%s: no channel %u s after BEGIN_PROXY; "
	    "giving up (TIMEOUT)", t->peer_name, px->port,
	    pp_tun_proto_name(px->proto), PP_TUN_OPEN_TIMEOUT_MS / 1000);
	if (pp_tun_failed_build(px->uuid, PP_TUN_TIMEOUT, &json) == 0)
		(void)pp__tun_ctl_send(t, json);
	px_close(px, 0);
}

/* Asks the peer for a forwarded connection; the proxy waits for its channel. */
static int
px_begin(struct proxy *px)
{
	char *json = NULL;
	int rc;

	if ((rc = pp_tun_begin_build(px->port, px->proto, px->uuid, &json)) < 0 ||
	    (rc = pp__tun_ctl_send(px->t, json)) < 0) {
		px_close(px, 0);
		return rc;
	}
	uv_timer_start(&px->timer, on_open_timeout, PP_TUN_OPEN_TIMEOUT_MS, 0);
	return 0;
}

void
pp__px_udp_datagram(struct pp_tun *t, struct listener *l,
    const struct sockaddr *from, const uint8_t *data, size_t len)
{
	struct proxy *px;
	char uuid[PP_TUN_UUID_LEN + 1];

	for (px = t->proxies; px; px = px->next)
		if (!px->closing && px->role == PX_CONSUMER && px->ul == l &&
		    same_addr(&px->client, from))
			break;
	if (px == NULL) {
		if (!t->ready || t->nproxies >= PP_TUN_MAX_PROXIES)
			return;
		pp_uuid4(uuid);
		if ((px = px_new(t, PX_CONSUMER, PP_TUN_UDP, uuid, l->port)) == NULL)
			return;
		px->ul = l;
		memcpy(&px->client, from, from->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
		if (px_begin(px) < 0)
			return;
	}
	px_udp_queue(px, data, len);
}

static void
px_udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
    const struct sockaddr *from, unsigned flags)
{
	struct proxy *px = u->data;

	if (px->t == NULL || px->closing || n <= 0 || from == NULL ||
	    (flags & UV_UDP_PARTIAL))
		return;
	pp_tap_add(px->tap, PP_TAP_FROM_SERVICE, buf->base, (size_t)n);
	px_udp_queue(px, (const uint8_t *)buf->base, (size_t)n);
}

/* Datagrams from the peer, to our client (consumer) or the service. */
static void
px_udp_deliver(struct proxy *px, const uint8_t *batch, size_t len)
{
	const uint8_t *d;
	size_t off = 0, dlen;
	int rc;

	while ((rc = pp_udpb_next(batch, len, &off, &d, &dlen)) == 1) {
		uv_buf_t b = uv_buf_init((char *)(uintptr_t)d, (unsigned)dlen);

		if (px->role == PX_CONSUMER)
			rc = uv_udp_try_send(&px->ul->u.udp, &b, 1,
			    (const struct sockaddr *)&px->client);
		else if (px->sock_live &&
		    (rc = uv_udp_try_send(&px->u.udp, &b, 1, NULL)) >= 0)
			pp_tap_add(px->tap, PP_TAP_TO_SERVICE, d, dlen);
		else if (!px->sock_live)
			rc = UV_ENOTCONN;
		if (rc < 0)
			px_udp_drop(px);
	}
	if (rc < 0)
		pp_debug(SUB, "proxy-%s: malformed UDP batch", px->uuid);
	udp_touch(px);
}

/* ---- receiving: channel -> socket ---- */

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct proxy *px = w->px;

	free(w);
	if (px->t == NULL || px->closing)
		return;
	if (status < 0) {
		pp_debug(SUB, "proxy-%s: write: %s", px->uuid, uv_strerror(status));
		px_close(px, 0);
		return;
	}
	if (px->pause_want && px->sock_live &&
	    uv_stream_get_write_queue_size(&px->u.s) <= PP_TUN_LOW_WATER) {
		px->pause_want = 0;
		flow_sync(px);
	}
}

static void
px_tcp_deliver(struct proxy *px, const uint8_t *data, size_t len)
{
	struct pp_tun *t = px->t;
	struct wreq *w;
	uv_buf_t b;
	size_t q;
	int r;

	if (!px->sock_live || px->shut_wr) {
		pp_warn(SUB, "peer %s proxy-%s: data %s; closing", t->peer_name,
		    px->uuid, px->shut_wr ? "after EOT" : "before the service "
		    "was connected");
		px_close(px, 0);
		return;
	}
	pp_tap_add(px->tap, PP_TAP_TO_SERVICE, data, len);
	/* Straight to the socket when it takes it; only the rest waits. */
	b = uv_buf_init((char *)(uintptr_t)data, (unsigned)len);	/* read only */
	if ((r = uv_try_write(&px->u.s, &b, 1)) >= 0) {
		data += r, len -= (size_t)r;
		if (len == 0)
			return;
	} else if (r != UV_EAGAIN) {
		pp_debug(SUB, "proxy-%s: write: %s", px->uuid, uv_strerror(r));
		px_close(px, 0);
		return;
	}
	if ((w = malloc(sizeof(*w) + len)) == NULL) {
		px_close(px, 0);
		return;
	}
	w->px = px;
	memcpy(w->data, data, len);
	b = uv_buf_init((char *)w->data, (unsigned)len);
	if (uv_write(&w->req, &px->u.s, &b, 1, on_write) < 0) {
		free(w);
		px_close(px, 0);
		return;
	}
	q = uv_stream_get_write_queue_size(&px->u.s);
	if (q <= PP_TUN_WRITE_HIGH)
		return;
	if (t->settings.flow) {
		px->pause_want = 1;
		flow_sync(px);
	} else if (q > PP_TUN_WRITE_HARD) {
		pp_warn(SUB, "peer %s proxy-%s: %zu bytes wait for the local "
		    "socket and a v1 peer cannot be asked to pause: closing",
		    t->peer_name, px->uuid, q);
		px_close(px, 0);
	}
}

static void
on_start_timeout(uv_timer_t *h)
{
	struct proxy *px = h->data;

	pp_warn(SUB, "peer %s port %u/%s: channel proxy-%s opened but START "
	    "never came in %u s; closing", px->t->peer_name, px->port,
	    pp_tun_proto_name(px->proto), px->uuid, PP_TUN_START_TIMEOUT_MS / 1000);
	px_close(px, 0);
}

static void
px_started(struct proxy *px)
{
	px->started = 1;
	uv_timer_stop(&px->timer);
	if (px->proto == PP_TUN_UDP)
		udp_touch(px);
	px_resume(px);
}

static void
px_dc_message(struct pp_dc *dc, int binary, const uint8_t *data, size_t len,
    void *ctx)
{
	struct proxy *px = ctx;
	struct pp_tun *t = px->t;
	const uint8_t *plain;
	unsigned flags = 0;
	ssize_t n;

	(void)dc, (void)binary;
	if (t == NULL || px->closing)
		return;
	n = pp_codec_decode_ref(px->codec, data, len, &flags, t->dec,
	    PP_FR_PLAIN_MAX, &plain);
	if (n < 0) {
		pp_warn(SUB, "peer %s proxy-%s: undecodable message (%s); closing",
		    t->peer_name, px->uuid, pp_strerror((int)n));
		px_close(px, 0);
		return;
	}
	t->st.wire_in += len;
	if (flags & PP_FR_PAUSE) {
		px->peer_paused = 1;
		stop_reading(px);
	}
	if (flags & PP_FR_RESUME) {
		px->peer_paused = 0;
		px_resume(px);
	}
	if ((flags & PP_FR_START) && px->role == PX_CONSUMER && !px->started)
		px_started(px);
	if (n > 0) {
		px->bytes_in += (uint64_t)n;
		t->st.bytes_in += (uint64_t)n;
		if (px->proto == PP_TUN_TCP)
			px_tcp_deliver(px, plain, (size_t)n);
		else
			px_udp_deliver(px, plain, (size_t)n);
		if (px->closing)
			return;
	}
	if ((flags & PP_FR_EOT) && px->proto == PP_TUN_TCP && !px->eot_recv) {
		px->eot_recv = 1;
		if (px->sock_live && !px->shut_wr) {
			pp_tap_fin(px->tap, PP_TAP_TO_SERVICE);
			px->shut_wr = 1;
			px->shutdown_req.data = px;
			if (uv_shutdown(&px->shutdown_req, &px->u.s, on_shutdown) < 0)
				px->shut_done = 1;
		}
		if (px->eot_sent)
			px_close(px, 1);
	}
}

static void
px_dc_close(struct pp_dc *dc, int status, void *ctx)
{
	struct proxy *px = ctx;

	(void)dc;
	px->dc = NULL;
	if (status != 0 && px->t)
		pp_debug(SUB, "peer %s proxy-%s: channel closed: %s",
		    px->t->peer_name, px->uuid, pp_strerror(status));
	px_close(px, 1);
	px_maybe_free(px);
}

static void
px_dc_low(struct pp_dc *dc, void *ctx)
{
	struct proxy *px = ctx;

	(void)dc;
	if (px->t == NULL || px->closing)
		return;
	if (px_try_pending(px) == 0)
		px_resume(px);
}

/* ---- consumer: our client connects ---- */

int
pp__px_accept_tcp(struct pp_tun *t, struct listener *l)
{
	struct proxy *px;
	char uuid[PP_TUN_UUID_LEN + 1];
	int rc;

	pp_uuid4(uuid);
	if ((px = px_new(t, PX_CONSUMER, PP_TUN_TCP, uuid, l->port)) == NULL)
		return -ENOMEM;
	if ((rc = uv_tcp_init(t->loop, &px->u.tcp)) < 0) {
		px_close(px, 0);
		return rc;
	}
	px->u.h.data = px;
	px->handles++;
	px->sock_live = 1;
	if ((rc = uv_accept(&l->u.s, &px->u.s)) < 0) {
		px_close(px, 0);
		return rc;
	}
	if (!t->ready || t->dead || t->nproxies > PP_TUN_MAX_PROXIES) {
		pp_warn(SUB, "peer %s port %u: connection refused (%s)",
		    t->peer_name, l->port, t->ready ? "too many connections" :
		    "tunnel not ready");
		px_close(px, 0);
		return PP_ELIMIT;
	}
	(void)uv_tcp_nodelay(&px->u.tcp, 1);
	pp_debug(SUB, "peer %s port %u/TCP: new connection, proxy-%s",
	    t->peer_name, l->port, uuid);
	return px_begin(px);
}

int
pp__px_channel(struct pp_tun *t, struct pp_dc *dc, const char *uuid)
{
	struct proxy *px = pp__px_find(t, uuid);

	if (px == NULL || px->role != PX_CONSUMER || px->dc != NULL)
		return PP_ENOTFOUND;
	px->dc = dc;
	px->opened = 1;
	pp_dc_set_ops(dc, &px_dc_ops, px);
	pp_dc_set_buffered_amount_low_threshold(dc, PP_TUN_LOW_WATER);
	/* The channel opening is the success; START must follow. */
	uv_timer_start(&px->timer, on_start_timeout, PP_TUN_START_TIMEOUT_MS, 0);
	return 0;
}

void
pp__px_result(struct pp_tun *t, int failed, const struct pp_tun_result *r)
{
	struct proxy *px;

	if (!r->channel_valid || (px = pp__px_find(t, r->uuid)) == NULL)
		return;
	if (!failed)
		return;		/* the open channel already said it */
	if (px->role == PX_CONSUMER)
		pp_info(SUB, "peer %s refused port %u/%s: %s", t->peer_name,
		    px->port, pp_tun_proto_name(px->proto), r->reason);
	else
		pp_debug(SUB, "peer %s gave up on proxy-%s: %s", t->peer_name,
		    px->uuid, r->reason);
	px_close(px, 0);
}

/* ---- provider: the peer's client wants one of our services ---- */

static void
refuse(struct pp_tun *t, const struct pp_tun_begin *b, const char *reason)
{
	char *json = NULL;

	t->st.refused++;
	if (t->ops.on_refused && b->port_valid && b->proto_valid)
		t->ops.on_refused(t->ctx, b->port, b->proto, reason);
	pp_info(SUB, "peer %s asked for port %u/%s: refused (%s)", t->peer_name,
	    b->port_valid ? b->port : 0, b->proto_valid ?
	    pp_tun_proto_name(b->proto) : "?", reason);
	if (pp_tun_failed_build(b->uuid, reason, &json) == 0)
		(void)pp__tun_ctl_send(t, json);
}

void
pp__px_begin(struct pp_tun *t, const struct pp_tun_begin *b)
{
	const struct pp_tun_service *svc;
	struct pp_dc_init init;
	struct proxy *px;
	char label[sizeof(PP_TUN_PROXY_PREFIX) + PP_TUN_UUID_LEN];
	int rc;

	if (!b->uuid_valid) {
		pp_debug(SUB, "peer %s: BEGIN_PROXY without a valid uuid ignored",
		    t->peer_name);
		return;
	}
	if (!b->port_valid) {
		refuse(t, b, PP_TUN_INVALID_PORT);
		return;
	}
	if (!b->proto_valid) {
		refuse(t, b, PP_TUN_INVALID_PROTOCOL);
		return;
	}
	if (!t->ready || (svc = pp__tun_service(t, b->port, b->proto)) == NULL ||
	    !pp__tun_allowed(t, b->port, b->proto)) {
		refuse(t, b, PP_TUN_ACCESS_DENIED);
		return;
	}
	if (t->ops.serving && !t->ops.serving(t->ctx)) {
		/* Fail closed: nothing reaches a service uninspected. */
		pp_warn(SUB, "peer %s: port %u/%s refused: the IPS is not ready",
		    t->peer_name, b->port, pp_tun_proto_name(b->proto));
		t->st.refused++;
		{
			char *json = NULL;

			if (pp_tun_failed_build(b->uuid, PP_TUN_ACCESS_DENIED,
			    &json) == 0)
				(void)pp__tun_ctl_send(t, json);
		}
		return;
	}
	if (pp__px_find(t, b->uuid) != NULL) {
		pp_debug(SUB, "peer %s: BEGIN_PROXY for proxy-%s again ignored",
		    t->peer_name, b->uuid);
		return;
	}
	if (t->nproxies >= PP_TUN_MAX_PROXIES) {
		pp_warn(SUB, "peer %s: %u forwarded connections open; refusing more",
		    t->peer_name, t->nproxies);
		refuse(t, b, PP_TUN_ACCESS_DENIED);
		return;
	}
	if ((px = px_new(t, PX_PROVIDER, b->proto, b->uuid, b->port)) == NULL)
		return;
	px->svc = svc;
	memset(&init, 0, sizeof(init));
	snprintf(label, sizeof(label), PP_TUN_PROXY_PREFIX "%s", b->uuid);
	init.label = label;
	/* Unreliable channels suit datagrams only: TCP streams stay reliable
	 * (a v1 consumer takes whatever channel carries its label). */
	if (b->proto == PP_TUN_UDP && t->settings.unreliable) {
		init.unordered = 1;
		init.reliability = PP_DC_MAX_RETRANSMITS;
		init.pr_value = 0;
	}
	if ((rc = pp_pc_open_channel(t->pc, &init, &px_dc_ops, px, &px->dc)) < 0) {
		pp_warn(SUB, "peer %s: cannot open %s: %s", t->peer_name, label,
		    pp_strerror(rc));
		px->dc = NULL;
		px_close(px, 0);
		return;
	}
	pp_dc_set_buffered_amount_low_threshold(px->dc, PP_TUN_LOW_WATER);
	pp_debug(SUB, "peer %s: %s for service %s", t->peer_name, label, svc->name);
}

static void
send_start(struct proxy *px)
{
	if (px->closing)
		return;
	if (px_send(px, PP_FR_START, NULL, 0, 0) < 0)
		return;
	px_started(px);
}

static void
on_start_delay(uv_timer_t *h)
{
	send_start(h->data);
}

/*
 * Deployed v1 consumers attach their handler a few loop turns after the
 * channel appears and drop what came before (spec).  The delay counts from
 * their ACK of the channel, which they send when the channel appears to
 * them: a consumer busy elsewhere takes the OPEN late, and a delay counted
 * from our OPEN would then be used up before it even saw the channel.
 * Without an ACK within a second, START goes after the delay anyway.
 */
static void
on_start_ack_poll(uv_timer_t *h)
{
	struct proxy *px = h->data;

	if ((px->dc && pp_dc_acknowledged(px->dc)) ||
	    ++px->start_polls >= START_ACK_POLLS)
		uv_timer_start(&px->timer, on_start_delay,
		    px->t->v1_start_delay_ms, 0);
	else
		uv_timer_start(&px->timer, on_start_ack_poll, START_ACK_POLL_MS, 0);
}

static void
service_ready(struct proxy *px)
{
	px->connected = 1;
	if (px->t->settings.version < 2)
		on_start_ack_poll(&px->timer);
	else
		send_start(px);
}

/* Our end of the service socket: its port (0 unknown), and its address
 * into ip when ip is not NULL. */
static uint16_t
local_end(const uv_handle_t *h, char ip[46])
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uv_os_fd_t fd;
	socklen_t sl = (socklen_t)len;

	if (uv_fileno(h, &fd) < 0 || getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ip)
		(void)uv_ip_name((struct sockaddr *)&ss, ip, 46);
	return ntohs(ss.ss_family == AF_INET6 ?
	    ((struct sockaddr_in6 *)&ss)->sin6_port :
	    ((struct sockaddr_in *)&ss)->sin_port);
}

/* The service socket is connected: learn our end, start the tap. */
static void
px_service_connected(struct proxy *px)
{
	struct pp_tap_flow f;

	memset(&f, 0, sizeof(f));
	px->local_port = local_end(&px->u.h, f.local_ip);
	if (px->t->tap_bytes == 0 || px->local_port == 0)
		return;
	f.udp = px->proto == PP_TUN_UDP;
	f.local_port = px->local_port;
	snprintf(f.service_ip, sizeof(f.service_ip), "%s", px->svc->host);
	f.service_port = px->svc->target_port;
	if ((px->tap = pp_tap_new(px->t->tap_bytes, &f, px->t->tap_budget)) ==
	    NULL)
		pp_warn(SUB, "peer %s proxy-%s: no memory for the evidence tap",
		    px->t->peer_name, px->uuid);
}

static struct proxy *
find_service_conn(const struct pp_tun *t, enum pp_tun_proto proto,
    uint16_t lport, const char *svc_ip, uint16_t svc_port)
{
	/* A local port alone is not unique: the kernel may give it to
	 * connections to different destinations. */
	for (struct proxy *px = t->proxies; px; px = px->next)
		if (px->role == PX_PROVIDER && !px->closing && px->proto == proto &&
		    px->local_port == lport && lport != 0 &&
		    px->svc->target_port == svc_port &&
		    strcmp(px->svc->host, svc_ip) == 0)
			return px;
	return NULL;
}

int
pp_tun_owns(const struct pp_tun *t, enum pp_tun_proto proto, uint16_t lport,
    const char *svc_ip, uint16_t svc_port)
{
	return find_service_conn(t, proto, lport, svc_ip, svc_port) != NULL;
}

int
pp_tun_cut(struct pp_tun *t, enum pp_tun_proto proto, uint16_t lport,
    const char *svc_ip, uint16_t svc_port, struct pp_tap **tap)
{
	struct proxy *px = find_service_conn(t, proto, lport, svc_ip, svc_port);

	if (tap)
		*tap = NULL;
	if (px == NULL)
		return 0;
	pp_warn(SUB, "peer %s: proxy-%s to service %s cut by the IPS",
	    t->peer_name, px->uuid, px->svc->name);
	if (tap) {
		*tap = px->tap;
		px->tap = NULL;
	}
	px_close(px, 0);
	return 1;
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct proxy *px = req->data;

	if (px->t == NULL || px->closing)
		return;
	if (status < 0) {
		pp_warn(SUB, "peer %s: service %s (%s:%u) unreachable: %s",
		    px->t->peer_name, px->svc->name, px->svc->host,
		    px->svc->target_port, uv_strerror(status));
		px_close(px, 0);
		return;
	}
	(void)uv_tcp_nodelay(&px->u.tcp, 1);
	px_service_connected(px);
	service_ready(px);
}

static void
px_dc_open(struct pp_dc *dc, void *ctx)
{
	struct proxy *px = ctx;
	struct pp_tun *t = px->t;
	struct sockaddr_storage ss;
	int rc;

	(void)dc;
	/* A channel the peer opened reports open too: the consumer's case. */
	if (t == NULL || px->closing || px->role != PX_PROVIDER)
		return;
	px->opened = 1;
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(px->svc->host, px->svc->target_port,
	    (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(px->svc->host, px->svc->target_port,
	    (struct sockaddr_in6 *)&ss) != 0) {
		pp_warn(SUB, "service %s: %s is not an IP address", px->svc->name,
		    px->svc->host);
		px_close(px, 0);
		return;
	}
	/* _ex: the socket exists now, so the IPS can mark it before connect */
	rc = px->proto == PP_TUN_TCP ?
	    uv_tcp_init_ex(t->loop, &px->u.tcp, ss.ss_family) :
	    uv_udp_init_ex(t->loop, &px->u.udp, ss.ss_family);
	if (rc < 0) {
		px_close(px, 0);
		return;
	}
	px->u.h.data = px;
	px->handles++;
	px->sock_live = 1;
	if (t->ops.service_socket) {
		uv_os_fd_t fd;

		if ((rc = uv_fileno(&px->u.h, &fd)) < 0 ||
		    (rc = t->ops.service_socket(t->ctx, fd)) < 0) {
			pp_warn(SUB, "peer %s: service %s: socket refused by the IPS "
			    "(%s); not connecting", t->peer_name, px->svc->name,
			    pp_strerror(rc));
			px_close(px, 0);
			return;
		}
	}
	if (px->proto == PP_TUN_TCP) {
		px->connect_req.data = px;
		rc = uv_tcp_connect(&px->connect_req, &px->u.tcp,
		    (struct sockaddr *)&ss, on_connect);
		/* connect() has chosen the local port: known from now on, so
		 * an IPS alert on the handshake itself maps to this proxy. */
		if (rc == 0)
			px->local_port = local_end(&px->u.h, NULL);
	} else if ((rc = uv_udp_connect(&px->u.udp, (struct sockaddr *)&ss)) == 0 &&
	    (pp__udp_sockbuf(&px->u.udp), 1) &&
	    (rc = uv_udp_recv_start(&px->u.udp, px_alloc, px_udp_recv)) == 0) {
		px_service_connected(px);
		service_ready(px);
	}
	if (rc < 0) {
		pp_warn(SUB, "peer %s: service %s (%s:%u): %s", t->peer_name,
		    px->svc->name, px->svc->host, px->svc->target_port,
		    uv_strerror(rc));
		px_close(px, 0);
	}
}
