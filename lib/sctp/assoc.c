/*
 * The SCTP association: usrsctp's process-wide state (init, timers, the
 * registry that maps usrsctp's address tokens to associations), the socket
 * of each association, and "settling": acting, outside usrsctp, on what
 * usrsctp's callbacks recorded while it ran.
 */
#include "sctp/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"

#define SUB		"sctp"
#define MAX_ASSOCS	4096		/* registry slots; token = gen << 16 | slot + 1 */
#define TICK_MS		10
#define OUT_LIMIT	(4u << 20)	/* packets waiting for send_packet */
#define SNDBUF		(256 * 1024)
#define RCVBUF		(1024 * 1024)
#define MAX_PACKET	65535
#define BULK_RX		16384	/* a message this big: SACK before delivery */
/*
 * Timers for a path that may die and come back (an ICE restart moves the
 * association to a new pair, lib/rtc): a heartbeat every second (plus
 * usrsctp's RTO and jitter) when the path is otherwise idle, so the peer
 * connection can tell a silent path from a quiet one within a few
 * seconds; retransmission backoff capped at 3 s, so data moves again
 * within 3 s of the path returning instead of up to RFC 4960's 60; a
 * minimum RTO of 400 ms instead of 1 s (Chromium's own SCTP, dcsctp, uses
 * a few hundred ms; still above the 200 ms delayed SACK of either side),
 * so a lost last packet of a
 * burst (a TURN relay's full socket buffer) stalls a transfer 0.4 s, not
 * a whole second (docs/bench-nat.md); and
 * enough failed retransmissions before the association gives up (about
 * 90 s at the cap) that ICE's consent and the restart bound decide
 * whether the peer is gone, not SCTP.
 */
#define HB_INTERVAL_MS	1000
#define RTO_MIN_MS	400
#define RTO_MAX_MS	PP_SCTP_RTO_MAX_MS
#define MAX_RXT		30

static struct {
	unsigned refs;		/* live associations */
	int stack_up;		/* usrsctp initialised and not finished */
	uv_loop_t *loop;
	uv_timer_t *timer;	/* drives usrsctp_handle_timers() */
	uv_idle_t *idle;	/* settles work deferred by our own calls */
	uint64_t last_ms;
	int settling;
	unsigned nslots;	/* high-water mark of used slots */
	struct {
		struct pp_sctp *a;
		uint16_t gen;
	} slot[MAX_ASSOCS];
} g;

static void settle_all(void);
static void assoc_down(struct pp_sctp *a, int status);

/* ---- registry: usrsctp only ever sees tokens, never our pointers ---- */

static void *
token_addr(const struct pp_sctp *a)
{
	return (void *)(uintptr_t)a->token;
}

static struct pp_sctp *
lookup(const void *addr)
{
	uintptr_t t = (uintptr_t)addr;
	unsigned idx = (unsigned)(t & 0xffff);
	struct pp_sctp *a;

	if (idx == 0 || idx > MAX_ASSOCS || t > UINT32_MAX)
		return NULL;
	a = g.slot[idx - 1].a;
	if (a == NULL || a->token != (uint32_t)t)
		return NULL;
	return a;
}

static int
reg_add(struct pp_sctp *a)
{
	for (unsigned i = 0; i < MAX_ASSOCS; i++) {
		if (g.slot[i].a != NULL)
			continue;
		/* A new generation, so a token of the slot's last owner that
		 * usrsctp still holds (a timer, a late packet) finds nothing. */
		if (++g.slot[i].gen == 0)
			g.slot[i].gen = 1;
		g.slot[i].a = a;
		a->token = (uint32_t)g.slot[i].gen << 16 | (i + 1);
		if (i + 1 > g.nslots)
			g.nslots = i + 1;
		return 0;
	}
	return PP_ELIMIT;
}

static void
reg_del(struct pp_sctp *a)
{
	unsigned idx = a->token & 0xffff;

	if (idx != 0 && g.slot[idx - 1].a == a)
		g.slot[idx - 1].a = NULL;
}

/* ---- usrsctp callbacks: record only, never call usrsctp or user code ---- */

static void
out_push(struct pp_sctp *a, const void *buf, size_t len)
{
	size_t need = a->out_len + 4 + len;
	uint32_t n = (uint32_t)len;

	if (len > MAX_PACKET || need > OUT_LIMIT) {
		a->out_dropped++;
		return;
	}
	if (need > a->out_cap) {
		size_t cap = a->out_cap ? a->out_cap : 16384;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		if ((p = realloc(a->out, cap)) == NULL) {
			a->out_dropped++;
			return;
		}
		a->out = p;
		a->out_cap = cap;
	}
	memcpy(a->out + a->out_len, &n, 4);
	memcpy(a->out + a->out_len + 4, buf, len);
	if (!a->zero_checksum)
		pp__sctp_crc_fill(a->out + a->out_len + 4, len);
	a->out_len = need;
}

static int
on_output(void *addr, void *buf, size_t len, uint8_t tos, uint8_t set_df)
{
	struct pp_sctp *a = lookup(addr);

	(void)tos, (void)set_df;
	if (a != NULL) {
		out_push(a, buf, len);
		a->dirty = 1;
	}
	return 0;
}

static int
is_sender_dry(const void *data, size_t len)
{
	struct sctp_tlv h;

	if (len < sizeof(h))
		return 0;
	memcpy(&h, data, sizeof(h));
	return h.sn_type == SCTP_SENDER_DRY_EVENT;
}

/*
 * usrsctp hands over a malloc'ed buffer we must free.  NULL data with no
 * flags means the association went down after a shutdown.
 */
static int
on_receive(struct socket *sock, union sctp_sockstore from, void *data,
    size_t len, struct sctp_rcvinfo rcv, int flags, void *ulp)
{
	struct pp_sctp *a = lookup(ulp);
	struct pp__rx *it;

	(void)sock, (void)from;
	if (a == NULL || a->dying) {
		free(data);
		return 1;
	}
	/* Accounting must see "dry" now: a send queued before we settle
	 * would otherwise be forgotten by the reset. */
	if (data != NULL && (flags & MSG_NOTIFICATION) &&
	    is_sender_dry(data, len)) {
		pp__acct_reset(a);
		a->writable = 1;
		a->dirty = 1;
		free(data);
		pp__sctp_defer(a);
		return 1;
	}
	if ((it = calloc(1, sizeof(*it))) == NULL) {
		/* Losing a message silently would corrupt the channel. */
		free(data);
		a->pending_down = 1;
		a->down_status = -ENOMEM;
		pp__sctp_defer(a);
		return 1;
	}
	it->data = data;
	it->len = data ? len : 0;
	it->sid = rcv.rcv_sid;
	it->ppid = ntohl(rcv.rcv_ppid);
	it->eor = (flags & MSG_EOR) != 0;
	it->notification = (flags & MSG_NOTIFICATION) != 0;
	if (a->rx_tail)
		a->rx_tail->next = it;
	else
		a->rx_head = it;
	a->rx_tail = it;
	pp__sctp_defer(a);
	return 1;
}

/* Called after SACKs free send-buffer space (threshold 0: every time). */
static int
on_send_space(struct socket *sock, uint32_t sb_free, void *ulp)
{
	struct pp_sctp *a = lookup(ulp);

	(void)sock;
	if (a == NULL)
		return 0;
	pp__acct_drain_to(a, sb_free >= a->sndbuf ? 0 : a->sndbuf - sb_free);
	a->writable = 1;
	a->dirty = 1;
	return 0;
}

static void on_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
on_debug(const char *fmt, ...)
{
	static struct pp_ratelimit rl = PP_RATELIMIT_INIT(1000, 20);
	unsigned skipped;
	char line[256];
	size_t n;
	va_list ap;

	if (pp_log_get_level() < PP_LOG_DEBUG || !pp_ratelimit_ok(&rl, &skipped))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	pp_debug(SUB, "usrsctp: %s", line);
}

/* ---- process-wide state ---- */

static void
free_handle(uv_handle_t *h)
{
	free(h);
}

static void
on_tick(uv_timer_t *t)
{
	uint64_t now = pp_now_ms();
	uint64_t elapsed = now - g.last_ms;

	(void)t;
	g.last_ms = now;
	if (elapsed > 0)
		usrsctp_handle_timers(elapsed > UINT32_MAX ? UINT32_MAX :
		    (uint32_t)elapsed);
	settle_all();
}

static void
on_idle(uv_idle_t *h)
{
	settle_all();
	uv_idle_stop(h);
}

static int
stack_acquire(uv_loop_t *loop)
{
	int hw;

	if (g.refs > 0) {
		if (g.loop != loop)
			return PP_ECONFLICT;
		g.refs++;
		return 0;
	}
	g.timer = malloc(sizeof(*g.timer));
	g.idle = malloc(sizeof(*g.idle));
	if (g.timer == NULL || g.idle == NULL) {
		free(g.timer);
		free(g.idle);
		g.timer = NULL;
		g.idle = NULL;
		return -ENOMEM;
	}
	if (!g.stack_up) {
		usrsctp_init_nothreads(0, on_output, on_debug);
		/* Settings are reset by init, so they come after it.  AF_CONN
		 * has one address: no ASCONF, hence no AUTH; no ECN inside
		 * DTLS (as browsers do). */
		usrsctp_sysctl_set_sctp_ecn_enable(0);
		usrsctp_sysctl_set_sctp_asconf_enable(0);
		usrsctp_sysctl_set_sctp_auth_enable(0);
		hw = pp__sctp_crc_offload_init();
		pp_debug(SUB, "SCTP checksums: ours, in %s; inbound ones "
		    "unchecked (DTLS authenticates every packet)",
		    hw ? "hardware" : "software");
		g.stack_up = 1;
	}
	uv_timer_init(loop, g.timer);
	uv_idle_init(loop, g.idle);
	uv_timer_start(g.timer, on_tick, TICK_MS, TICK_MS);
	/* SCTP timers alone must not keep a loop alive; the transport's
	 * handles (ICE sockets) do that while there is something to carry. */
	uv_unref((uv_handle_t *)g.timer);
	g.loop = loop;
	g.last_ms = pp_now_ms();
	g.refs = 1;
	return 0;
}

static void
stack_release(void)
{
	if (--g.refs > 0)
		return;
	uv_close((uv_handle_t *)g.timer, free_handle);
	uv_close((uv_handle_t *)g.idle, free_handle);
	g.timer = NULL;
	g.idle = NULL;
	g.loop = NULL;
	/* Every socket was closed with an ABORT, so nothing lingers and
	 * usrsctp can be finished; if it cannot, it stays up for reuse. */
	if (usrsctp_finish() == 0)
		g.stack_up = 0;
	else
		pp_debug(SUB, "usrsctp still busy, left initialised");
}

/* ---- entering, leaving, deferring, flushing ---- */

static void
destroy(struct pp_sctp *a)
{
	struct pp__rx *it, *next;

	pp__dc_free_all(a);
	pp__tx_free_all(a);
	for (it = a->rx_head; it != NULL; it = next) {
		next = it->next;
		free(it->data);
		free(it);
	}
	free(a->out);
	free(a->ring);
	free(a->streams);
	free(a);
	stack_release();
}

void
pp__sctp_enter(struct pp_sctp *a)
{
	a->depth++;
}

/* Frees an association pp_sctp_free() left to the outermost caller. */
void
pp__sctp_leave(struct pp_sctp *a)
{
	if (--a->depth == 0 && a->dying)
		destroy(a);
}

void
pp__sctp_defer(struct pp_sctp *a)
{
	a->dirty = 1;
	if (g.idle != NULL)
		uv_idle_start(g.idle, on_idle);
}

/*
 * Hands queued packets to send_packet.  The buffer is detached first, so
 * send_packet may feed packets back into the stack (which may queue more)
 * without invalidating what we iterate.  final: flush even though the
 * association is dying (the ABORT of pp_sctp_free).
 */
void
pp__sctp_flush(struct pp_sctp *a, int final)
{
	static struct pp_ratelimit rl = PP_RATELIMIT_INIT(5000, 3);
	unsigned skipped;

	if (a->in_flush)
		return;
	a->in_flush = 1;
	pp__sctp_enter(a);
	while (a->out_len > 0) {
		uint8_t *buf = a->out;
		size_t len = a->out_len, cap = a->out_cap, off = 0;

		a->out = NULL;
		a->out_len = a->out_cap = 0;
		while (off + 4 <= len) {
			uint32_t n;

			memcpy(&n, buf + off, 4);
			off += 4;
			if (!a->dying || final)
				a->ops.send_packet(a->ctx, buf + off, n);
			off += n;
		}
		if (a->out == NULL) {
			a->out = buf;
			a->out_cap = cap;
		} else {
			free(buf);
		}
	}
	if (a->out_dropped && pp_ratelimit_ok(&rl, &skipped))
		pp_warn(SUB, "%u outgoing packets dropped (queue over %u bytes)",
		    a->out_dropped, OUT_LIMIT);
	a->out_dropped = 0;
	a->in_flush = 0;
	pp__sctp_leave(a);
}

/* ---- notifications ---- */

static void
assoc_change(struct pp_sctp *a, const struct sctp_assoc_change *sac)
{
	switch (sac->sac_state) {
	case SCTP_COMM_UP:
		if (a->state != PP_SCTP_CONNECTING)
			break;
		a->state = PP_SCTP_OPEN;
		a->out_streams = sac->sac_outbound_streams;
		a->in_streams = sac->sac_inbound_streams;
		a->writable = 1;
		pp_info(SUB, "association up (%u outbound, %u inbound streams)",
		    a->out_streams, a->in_streams);
		if (a->ops.on_connected)
			a->ops.on_connected(a, a->ctx);
		if (!a->dying)
			pp__dc_assoc_up(a);
		break;
	case SCTP_COMM_LOST:
		assoc_down(a, -ECONNRESET);
		break;
	case SCTP_CANT_STR_ASSOC:
		assoc_down(a, -ETIMEDOUT);
		break;
	case SCTP_SHUTDOWN_COMP:
		assoc_down(a, 0);
		break;
	case SCTP_RESTART:
		pp_warn(SUB, "peer restarted the association");
		break;
	default:
		break;
	}
}

static void
notification(struct pp_sctp *a, const uint8_t *buf, size_t len)
{
	static struct pp_ratelimit rl = PP_RATELIMIT_INIT(5000, 5);
	union sctp_notification n;
	unsigned skipped;
	size_t fixed;

	if (len < sizeof(n.sn_header))
		return;
	memset(&n, 0, sizeof(n));
	memcpy(&n, buf, len < sizeof(n) ? len : sizeof(n));
	if (n.sn_header.sn_length > len)
		return;
	len = n.sn_header.sn_length;

	switch (n.sn_header.sn_type) {
	case SCTP_ASSOC_CHANGE:
		if (len >= sizeof(struct sctp_assoc_change))
			assoc_change(a, &n.sn_assoc_change);
		break;
	case SCTP_STREAM_RESET_EVENT:
		fixed = sizeof(struct sctp_stream_reset_event);
		if (len >= fixed)
			pp__dc_stream_reset(a, n.sn_strreset_event.strreset_flags,
			    buf + fixed, (len - fixed) / sizeof(uint16_t));
		break;
	case SCTP_PARTIAL_DELIVERY_EVENT:
		if (len >= sizeof(struct sctp_pdapi_event) &&
		    n.sn_pdapi_event.pdapi_indication ==
		    SCTP_PARTIAL_DELIVERY_ABORTED &&
		    n.sn_pdapi_event.pdapi_stream <= UINT16_MAX)
			pp__dc_pd_aborted(a,
			    (uint16_t)n.sn_pdapi_event.pdapi_stream);
		break;
	case SCTP_SEND_FAILED_EVENT:
		/* Normal for partially reliable channels: abandoned data. */
		if (len >= sizeof(struct sctp_send_failed_event) &&
		    pp_log_get_level() >= PP_LOG_DEBUG &&
		    pp_ratelimit_ok(&rl, &skipped))
			pp_debug(SUB, "stream %u: message not delivered (%s)",
			    n.sn_send_failed_event.ssfe_info.snd_sid,
			    (n.sn_send_failed_event.ssfe_flags & SCTP_DATA_SENT) ?
			    "abandoned" : "unsent");
		break;
	default:
		break;
	}
}

static void
assoc_down(struct pp_sctp *a, int status)
{
	if (a->down_done)
		return;
	a->down_done = 1;
	a->state = PP_SCTP_CLOSED;
	pp_info(SUB, "association closed: %s", status ? pp_strerror(status) :
	    "clean");
	pp__tx_free_all(a);
	pp__acct_reset(a);
	pp__dc_close_all(a, status);
	if (!a->dying && a->ops.on_closed)
		a->ops.on_closed(a, status, a->ctx);
}

static void
settle_rx(struct pp_sctp *a, struct pp__rx *it)
{
	if (it->notification)
		notification(a, it->data, it->len);
	else if (it->data == NULL)
		assoc_down(a, 0);
	else if (a->state == PP_SCTP_OPEN)
		pp__dc_input(a, it->sid, it->ppid, it->eor, it->data, it->len);
}

/* Acts on everything recorded for one association; user callbacks run
 * here.  Each step stops once a callback freed the association. */
static void
settle_one(struct pp_sctp *a)
{
	a->dirty = 0;
	if (a->pending_down) {
		a->pending_down = 0;
		assoc_down(a, a->down_status);
	}
	/*
	 * Bulk data: what the stack answered goes out first (the SACK for the
	 * data about to be delivered), so the peer sends on while our user
	 * writes that data out instead of waiting for it.  A small message
	 * is delivered first: its answer may ride in the same packet, and a
	 * round trip does not wait for a SACK's system call.
	 */
	if (!a->dying && a->rx_head != NULL && a->rx_head->len >= BULK_RX)
		pp__sctp_flush(a, 0);
	while (!a->dying && a->rx_head != NULL) {
		struct pp__rx *it = a->rx_head;

		if ((a->rx_head = it->next) == NULL)
			a->rx_tail = NULL;
		settle_rx(a, it);
		free(it->data);
		free(it);
	}
	if (a->dying)
		return;
	if (a->state == PP_SCTP_OPEN) {
		if (a->writable && a->tx_head != NULL)
			pp__tx_pump(a);
		if (a->shutdown_req && a->tx_head == NULL && a->sock != NULL) {
			a->shutdown_req = 0;
			if (usrsctp_shutdown(a->sock, SHUT_WR) < 0)
				pp_warn(SUB, "shutdown: %s", strerror(errno));
		}
	}
	pp__dc_events(a);
	if (!a->dying)
		pp__sctp_flush(a, 0);
}

static void
settle_all(void)
{
	int again;

	/* Nested calls (a callback feeding a packet in) leave the work to
	 * the outer loop, which looks again until nothing is dirty. */
	if (g.settling)
		return;
	g.settling = 1;
	do {
		again = 0;
		for (unsigned i = 0; i < g.nslots; i++) {
			struct pp_sctp *a = g.slot[i].a;

			if (a == NULL || !a->dirty)
				continue;
			again = 1;
			pp__sctp_enter(a);
			settle_one(a);
			pp__sctp_leave(a);
		}
	} while (again);
	g.settling = 0;
}

/* ---- socket setup ---- */

static int
sockopt(struct pp_sctp *a, int level, int name, const void *val,
    socklen_t len, const char *what)
{
	if (usrsctp_setsockopt(a->sock, level, name, val, len) < 0) {
		int err = errno ? errno : EINVAL;

		pp_warn(SUB, "setsockopt %s: %s", what, strerror(err));
		return -err;
	}
	return 0;
}

static int
configure(struct pp_sctp *a)
{
	static const uint16_t events[] = {
		SCTP_ASSOC_CHANGE, SCTP_STREAM_RESET_EVENT,
		SCTP_SEND_FAILED_EVENT, SCTP_SENDER_DRY_EVENT,
		SCTP_PARTIAL_DELIVERY_EVENT,
	};
	struct linger lg = { 1, 0 };	/* close = ABORT, nothing lingers */
	struct sctp_assoc_value av = { SCTP_FUTURE_ASSOC,
	    SCTP_ENABLE_RESET_STREAM_REQ };
	struct sctp_initmsg im;
	struct sctp_paddrparams pp;
	struct sctp_rtoinfo rto;
	struct sctp_assocparams ap;
	int on = 1, sndbuf = SNDBUF, rcvbuf = RCVBUF, rc;
	socklen_t optlen = sizeof(sndbuf);

	if (usrsctp_set_non_blocking(a->sock, 1) < 0)
		return -errno;
	memset(&im, 0, sizeof(im));
	im.sinit_num_ostreams = a->nstreams;
	im.sinit_max_instreams = a->nstreams;
	if ((rc = sockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg),
	    "SO_LINGER")) < 0 ||
	    (rc = sockopt(a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf),
	    "SO_SNDBUF")) < 0 ||
	    (rc = sockopt(a, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf),
	    "SO_RCVBUF")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_ENABLE_STREAM_RESET, &av,
	    sizeof(av), "SCTP_ENABLE_STREAM_RESET")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_NODELAY, &on, sizeof(on),
	    "SCTP_NODELAY")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_EXPLICIT_EOR, &on, sizeof(on),
	    "SCTP_EXPLICIT_EOR")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_RECVRCVINFO, &on, sizeof(on),
	    "SCTP_RECVRCVINFO")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_INITMSG, &im, sizeof(im),
	    "SCTP_INITMSG")) < 0)
		return rc;
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		struct sctp_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.se_assoc_id = SCTP_FUTURE_ASSOC;
		ev.se_type = events[i];
		ev.se_on = 1;
		if ((rc = sockopt(a, IPPROTO_SCTP, SCTP_EVENT, &ev, sizeof(ev),
		    "SCTP_EVENT")) < 0)
			return rc;
	}
	/* A fixed path MTU: DTLS below does not report one, and the packet
	 * has to fit a UDP datagram with DTLS and IP overhead.  For AF_CONN
	 * usrsctp adds its 12-byte common header to this value. */
	memset(&pp, 0, sizeof(pp));
	pp.spp_assoc_id = SCTP_FUTURE_ASSOC;
	pp.spp_flags = SPP_PMTUD_DISABLE | SPP_HB_ENABLE;
	pp.spp_pathmtu = (uint32_t)(a->packet_max - sizeof(struct sctp_common_header));
	pp.spp_hbinterval = HB_INTERVAL_MS;
	pp.spp_pathmaxrxt = MAX_RXT;
	memset(&rto, 0, sizeof(rto));
	rto.srto_assoc_id = SCTP_FUTURE_ASSOC;
	rto.srto_max = RTO_MAX_MS;
	rto.srto_min = RTO_MIN_MS;
	memset(&ap, 0, sizeof(ap));
	ap.sasoc_assoc_id = SCTP_FUTURE_ASSOC;
	ap.sasoc_asocmaxrxt = MAX_RXT;
	if ((rc = sockopt(a, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp,
	    sizeof(pp), "SCTP_PEER_ADDR_PARAMS")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_RTOINFO, &rto, sizeof(rto),
	    "SCTP_RTOINFO")) < 0 ||
	    (rc = sockopt(a, IPPROTO_SCTP, SCTP_ASSOCINFO, &ap, sizeof(ap),
	    "SCTP_ASSOCINFO")) < 0)
		return rc;
	if (usrsctp_getsockopt(a->sock, SOL_SOCKET, SO_SNDBUF, &sndbuf,
	    &optlen) < 0 || sndbuf <= 0)
		return -EINVAL;
	a->sndbuf = (size_t)sndbuf;
	return 0;
}

static struct sockaddr_conn conn_addr(const struct pp_sctp *a, uint16_t port);

int
pp_sctp_set_packet_max(struct pp_sctp *a, size_t n)
{
	struct sctp_paddrparams pp;
	struct sockaddr_conn sc;
	int rc;

	if (n < 576 || n > 65535)
		return PP_EINVAL;
	if (n == a->packet_max)
		return 0;
	/* The association's one path (AF_CONN: the peer's address). */
	memset(&pp, 0, sizeof(pp));
	sc = conn_addr(a, a->remote_port);
	memcpy(&pp.spp_address, &sc, sizeof(sc));
	pp.spp_flags = SPP_PMTUD_DISABLE;
	pp.spp_pathmtu = (uint32_t)(n - sizeof(struct sctp_common_header));
	pp__sctp_enter(a);
	rc = sockopt(a, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp),
	    "SCTP_PEER_ADDR_PARAMS");
	if (rc == 0) {
		/*
		 * With big packets a message is often a single packet, and the
		 * peer's delayed SACK (every second packet, else after 200 ms)
		 * then holds the sender's window for 200 ms at a time: a paced
		 * stream backs up.  A SACK per 16 KiB packet costs little.
		 */
		struct sctp_sack_info si;

		memset(&si, 0, sizeof(si));
		si.sack_assoc_id = SCTP_FUTURE_ASSOC;
		si.sack_delay = 200;
		si.sack_freq = n > PP_SCTP_DEFAULT_PACKET ? 1 : 2;
		(void)sockopt(a, IPPROTO_SCTP, SCTP_DELAYED_SACK, &si, sizeof(si),
		    "SCTP_DELAYED_SACK");
	}
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	if (rc == 0)
		a->packet_max = n;
	return rc;
}

int
pp_sctp_zero_checksum_ok(void)
{
	return pp__sctp_crc_offloaded();
}

void
pp_sctp_set_zero_checksum(struct pp_sctp *a)
{
	if (!a->zero_checksum)
		pp_debug(SUB, "SCTP packets to this peer go without a checksum");
	a->zero_checksum = 1;
}

int
pp_sctp_probe(struct pp_sctp *a)
{
	struct sctp_paddrparams pp;
	struct sockaddr_conn sc;
	int rc;

	if (a->state != PP_SCTP_OPEN || a->sock == NULL || a->closing)
		return PP_ECONFLICT;
	memset(&pp, 0, sizeof(pp));
	sc = conn_addr(a, a->remote_port);
	memcpy(&pp.spp_address, &sc, sizeof(sc));
	pp.spp_flags = SPP_HB_DEMAND;
	pp__sctp_enter(a);
	rc = sockopt(a, IPPROTO_SCTP, SCTP_PEER_ADDR_PARAMS, &pp, sizeof(pp),
	    "SCTP_PEER_ADDR_PARAMS");
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	return rc;
}

static struct sockaddr_conn
conn_addr(const struct pp_sctp *a, uint16_t port)
{
	struct sockaddr_conn sc;

	memset(&sc, 0, sizeof(sc));
	sc.sconn_family = AF_CONN;
	sc.sconn_port = htons(port);
	sc.sconn_addr = token_addr(a);
	return sc;
}

/* ---- API ---- */

int
pp_sctp_new(uv_loop_t *loop, const struct pp_sctp_config *cfg,
    const struct pp_sctp_ops *ops, void *ctx, struct pp_sctp **out)
{
	struct sockaddr_conn sc;
	struct pp_sctp *a;
	int rc;

	*out = NULL;
	if (loop == NULL || cfg == NULL || ops == NULL || ops->send_packet == NULL)
		return PP_EINVAL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -ENOMEM;
	a->loop = loop;
	a->ops = *ops;
	a->ctx = ctx;
	a->state = PP_SCTP_NEW;
	a->local_port = cfg->local_port ? cfg->local_port : PP_SCTP_PORT;
	a->remote_port = cfg->remote_port ? cfg->remote_port : PP_SCTP_PORT;
	a->dtls_client = cfg->dtls_client != 0;
	a->max_message_size = cfg->max_message_size ? cfg->max_message_size :
	    PP_SCTP_MAX_MESSAGE;
	a->remote_max = cfg->remote_max_message_size ?
	    cfg->remote_max_message_size : PP_SCTP_REMOTE_MAX_DEFAULT;
	a->send_queue_limit = cfg->send_queue_limit ? cfg->send_queue_limit :
	    PP_SCTP_SEND_QUEUE_LIMIT;
	a->nstreams = cfg->streams ? cfg->streams : PP_SCTP_STREAMS;
	a->packet_max = cfg->packet_max ? cfg->packet_max : PP_SCTP_DEFAULT_PACKET;
	if (a->packet_max < 576 || a->packet_max > 65535) {
		rc = PP_EINVAL;
		goto free_a;
	}
	a->writable = 1;
	if ((a->streams = calloc(a->nstreams, sizeof(*a->streams))) == NULL) {
		rc = -ENOMEM;
		goto free_a;
	}
	if ((rc = stack_acquire(loop)) < 0)
		goto free_a;
	if ((rc = reg_add(a)) < 0)
		goto release_stack;
	usrsctp_register_address(token_addr(a));
	a->sock = usrsctp_socket(AF_CONN, SOCK_STREAM, IPPROTO_SCTP, on_receive,
	    on_send_space, 0, token_addr(a));
	if (a->sock == NULL) {
		rc = errno ? -errno : -ENOMEM;
		goto unregister;
	}
	if ((rc = configure(a)) < 0)
		goto close_sock;
	sc = conn_addr(a, a->local_port);
	if (usrsctp_bind(a->sock, (struct sockaddr *)&sc, sizeof(sc)) < 0) {
		rc = -errno;
		pp_warn(SUB, "bind port %u: %s", a->local_port, strerror(errno));
		goto close_sock;
	}
	*out = a;
	return 0;

close_sock:
	usrsctp_close(a->sock);
unregister:
	usrsctp_deregister_address(token_addr(a));
	reg_del(a);
release_stack:
	stack_release();
free_a:
	free(a->streams);
	free(a);
	return rc;
}

int
pp_sctp_start(struct pp_sctp *a)
{
	struct sockaddr_conn sc;
	int rc = 0;

	if (a->state != PP_SCTP_NEW || a->dying)
		return PP_ECONFLICT;
	pp__sctp_enter(a);
	sc = conn_addr(a, a->remote_port);
	if (usrsctp_connect(a->sock, (struct sockaddr *)&sc, sizeof(sc)) < 0 &&
	    errno != EINPROGRESS) {
		rc = -errno;
		pp_warn(SUB, "connect: %s", strerror(errno));
	} else {
		a->state = PP_SCTP_CONNECTING;
	}
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	return rc;
}

int
pp_sctp_packet_whole(const uint8_t *buf, size_t len)
{
	size_t off = sizeof(struct sctp_common_header);

	if (len <= off)
		return 0;	/* no chunk yet */
	while (off < len) {
		size_t clen;

		if (len - off < 4)
			return 0;
		clen = (size_t)buf[off + 2] << 8 | buf[off + 3];
		if (clen < 4)
			return 1;
		clen = (clen + 3) & ~(size_t)3;
		if (clen > len - off)
			return 0;
		off += clen;
	}
	return 1;
}

size_t
pp_sctp_cut_size(size_t max)
{
	if (max < 5)
		return 0;
	return (max - 1) / 4 * 4 + 1;
}

int
pp_sctp_input(struct pp_sctp *a, const uint8_t *buf, size_t len)
{
	if (len == 0 || len > MAX_PACKET)
		return PP_EINVAL;
	if (a->dying || a->sock == NULL)
		return 0;
	/* The peer was quicker: a bound one-to-one socket that has not
	 * connected would answer its INIT with an ABORT. */
	if (a->state == PP_SCTP_NEW)
		pp_sctp_start(a);
	pp__sctp_enter(a);
	usrsctp_conninput(token_addr(a), buf, len, 0);
	settle_all();
	/* When nested in another settle, packets still go out now. */
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	return 0;
}

void
pp_sctp_set_remote_max_message_size(struct pp_sctp *a, size_t n)
{
	a->remote_max = n ? n : PP_SCTP_REMOTE_MAX_DEFAULT;
}

size_t
pp_sctp_max_send_size(const struct pp_sctp *a)
{
	return a->remote_max < a->send_queue_limit ? a->remote_max :
	    a->send_queue_limit;
}

enum pp_sctp_state
pp_sctp_state(const struct pp_sctp *a)
{
	return a->state;
}

/* The primary path's SCTP_STATUS; 0, or -1 when not open. */
static int
primary_status(const struct pp_sctp *a, struct sctp_status *st)
{
	socklen_t len = sizeof(*st);

	if (a->state != PP_SCTP_OPEN || a->sock == NULL)
		return -1;
	memset(st, 0, sizeof(*st));
	return usrsctp_getsockopt(a->sock, IPPROTO_SCTP, SCTP_STATUS, st,
	    &len) < 0 ? -1 : 0;
}

int
pp_sctp_rtt_ms(const struct pp_sctp *a)
{
	struct sctp_status st;

	if (primary_status(a, &st) < 0)
		return -1;
	return st.sstat_primary.spinfo_srtt > (uint32_t)INT32_MAX ? -1 :
	    (int)st.sstat_primary.spinfo_srtt;
}

int
pp_sctp_rto_ms(const struct pp_sctp *a)
{
	struct sctp_status st;

	if (primary_status(a, &st) < 0)
		return -1;
	return st.sstat_primary.spinfo_rto > (uint32_t)INT32_MAX ? -1 :
	    (int)st.sstat_primary.spinfo_rto;
}

int
pp_sctp_close(struct pp_sctp *a, int abort)
{
	if (a->dying || a->state == PP_SCTP_CLOSED || a->closing)
		return PP_ECONFLICT;
	a->closing = 1;
	pp__sctp_enter(a);
	if (!abort && a->state == PP_SCTP_OPEN) {
		/* SHUTDOWN once our queue has drained into usrsctp. */
		a->shutdown_req = 1;
	} else {
		if (a->sock != NULL) {
			usrsctp_close(a->sock);	/* SO_LINGER 0: ABORT */
			a->sock = NULL;
		}
		a->state = PP_SCTP_CLOSED;
		a->pending_down = 1;
		a->down_status = 0;
	}
	pp__sctp_defer(a);
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	return 0;
}

void
pp_sctp_free(struct pp_sctp *a)
{
	if (a == NULL || a->dying)
		return;
	a->dying = 1;
	pp__sctp_enter(a);
	if (a->sock != NULL) {
		usrsctp_close(a->sock);
		a->sock = NULL;
		pp__sctp_flush(a, 1);
	}
	usrsctp_deregister_address(token_addr(a));
	reg_del(a);
	pp__sctp_leave(a);
}
