/*
 * The peer connection glues four modules together; each keeps its own state
 * machine and the pc only routes between them:
 *
 *   ICE on_recv --(DTLS record?)--> pp_dtls_input --on_data--> pp_sctp_input
 *   SCTP send_packet --> pp_dtls_send --send_packet--> pp_ice_send
 *
 * and advances the connection: ICE connected -> DTLS start; DTLS verified ->
 * SCTP start; SCTP up -> CONNECTED.  State changes reach the owner from a
 * zero-delay timer, so no owner callback ever runs inside a pp_pc_* call.
 */
#include "pc.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "base/random.h"
#include "dtls/dtls.h"
#include "sctp/sctp.h"
#include "sdp/sdp.h"

#include <openssl/crypto.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "rtc"
#define DEFAULT_CONNECT_TIMEOUT_MS 30000u
#define WATCH_MS	1000u		/* how often the path's silence is checked */

struct pp_pc {
	struct pp_pc_config cfg;
	struct pp_pc_ops ops;
	void *ctx;
	char *name;
	uv_loop_t *loop;
	struct pp_dtls_cert *own_cert;	/* when cfg.cert was NULL */
	const struct pp_dtls_cert *cert;

	struct pp_ice *ice;
	struct pp_dtls *dtls;
	struct pp_sctp *sctp;
	int dtls_client;
	size_t path_mtu;		/* datagram size in use; 0 until fitted */
	int jumbo_ok;			/* the peer takes big packets */
	size_t cut;			/* record size for packets over one */
	struct pp_sctp_join join;	/* a packet's records so far */
	size_t remote_max;		/* 0: unlimited */
	uint8_t remote_fp[PP_DTLS_FP_LEN];
	char mid[PP_SDP_MID_MAX + 1];	/* for our trickled candidates */
	unsigned mline;

	/* o= of our descriptions and of the peer's (a restart keeps the id) */
	uint64_t local_sess_id, local_sess_ver;
	uint64_t remote_sess_id, remote_sess_ver;
	uint16_t remote_sctp_port;
	char remote_ufrag[PP_SDP_UFRAG_MAX + 1];
	int controlling;		/* we offered */

	/* Path watch and ICE restart (pc.h, "Path loss and ICE restart"). */
	int restart_ok;			/* pp_pc_allow_restart() */
	int restart_pending;		/* our restart offer waits for its answer */
	int restarting;			/* a restarted generation has no pair yet */
	uint64_t lost_ms;		/* last packet before the path went silent */
	uint64_t restart_started_ms;
	uint64_t restart_lost_ms;	/* lost_ms when the restart began */
	uint64_t restart_done_ms;
	unsigned stalled_ticks;		/* SCTP's RTO at its cap, in a row */
	unsigned restarts_done;
	int64_t last_recovery_ms;	/* path lost -> restored by the last restart */

	enum pp_pc_state state, notified;
	char reason[256];
	uv_timer_t dtls_timer, connect_timer, notify_timer, watch_timer;
	int open_handles;
	int depth;			/* nesting of our callbacks */
	int doomed;			/* pp_pc_free() called inside a callback */
};

static const char *const state_names[] = {
	"new", "connecting", "connected", "disconnected", "failed", "closed",
};

const char *
pp_pc_state_name(enum pp_pc_state s)
{
	return (unsigned)s < sizeof(state_names) / sizeof(state_names[0]) ?
	    state_names[s] : "?";
}

static void destroy(struct pp_pc *pc);
static void set_state(struct pp_pc *pc, enum pp_pc_state st, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

/* Brackets every entry from the loop, so a callback may free the pc. */
static void enter(struct pp_pc *pc) { pc->depth++; }

static int
leave(struct pp_pc *pc)
{
	if (--pc->depth == 0 && pc->doomed) {
		destroy(pc);
		return 1;
	}
	return 0;
}

static void
notify_cb(uv_timer_t *t)
{
	struct pp_pc *pc = t->data;
	enum pp_pc_state st = pc->state;

	if (pc->doomed || st == pc->notified || pc->ops.on_state == NULL)
		return;
	pc->notified = st;
	enter(pc);
	pc->ops.on_state(pc->ctx, st, pc->reason);
	leave(pc);
}

static void
set_state(struct pp_pc *pc, enum pp_pc_state st, const char *fmt, ...)
{
	va_list ap;

	/* FAILED and CLOSED are final. */
	if (pc->state == PP_PC_FAILED || pc->state == PP_PC_CLOSED ||
	    pc->state == st)
		return;
	pc->state = st;
	pc->reason[0] = '\0';
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(pc->reason, sizeof(pc->reason), fmt, ap);
		va_end(ap);
	}
	if (st == PP_PC_FAILED)
		pp_warn(SUB, "%s: connection failed: %s", pc->name, pc->reason);
	else
		pp_info(SUB, "%s: %s%s%s", pc->name, pp_pc_state_name(st),
		    pc->reason[0] ? ": " : "", pc->reason);
	if (st == PP_PC_CONNECTED || st == PP_PC_FAILED || st == PP_PC_CLOSED)
		uv_timer_stop(&pc->connect_timer);
	if (st == PP_PC_FAILED || st == PP_PC_CLOSED) {
		uv_timer_stop(&pc->dtls_timer);
		uv_timer_stop(&pc->watch_timer);
	}
	if (st == PP_PC_CONNECTED)
		pc->lost_ms = 0;
	uv_timer_start(&pc->notify_timer, notify_cb, 0, 0);
}

/* ---- DTLS: retransmission timer, callbacks ---- */

static void dtls_timer_cb(uv_timer_t *t);

static void
rearm_dtls(struct pp_pc *pc)
{
	long ms = pc->dtls ? pp_dtls_next_timeout_ms(pc->dtls) : -1;

	if (ms < 0)
		uv_timer_stop(&pc->dtls_timer);
	else
		uv_timer_start(&pc->dtls_timer, dtls_timer_cb, (uint64_t)ms, 0);
}

static void
dtls_timer_cb(uv_timer_t *t)
{
	struct pp_pc *pc = t->data;

	enter(pc);
	if (pc->dtls) {
		pp_dtls_handle_timeout(pc->dtls);
		rearm_dtls(pc);
	}
	leave(pc);
}

static void
dtls_send_packet(void *ctx, const uint8_t *buf, size_t len)
{
	struct pp_pc *pc = ctx;

	if (pc->ice)
		(void)pp_ice_send(pc->ice, buf, len);	/* DTLS/SCTP retransmit */
}

static void
dtls_connected(void *ctx)
{
	struct pp_pc *pc = ctx;
	int rc;

	if (pp_dtls_max_payload(pc->dtls) < PP_SCTP_DEFAULT_PACKET) {
		set_state(pc, PP_PC_FAILED, "DTLS records carry %zu bytes, fewer "
		    "than an SCTP packet (%u)", pp_dtls_max_payload(pc->dtls),
		    PP_SCTP_DEFAULT_PACKET);
		return;
	}
	pp_debug(SUB, "%s: DTLS up as %s; starting SCTP", pc->name,
	    pc->dtls_client ? "client" : "server");
	if (pp_sctp_state(pc->sctp) == PP_SCTP_NEW &&
	    (rc = pp_sctp_start(pc->sctp)) < 0)
		set_state(pc, PP_PC_FAILED, "SCTP would not start: %s",
		    pp_strerror(rc));
}

/*
 * One record.  Between our own peers on loopback an SCTP packet may span
 * the records of one datagram (sctp_send_packet); pp_sctp_join puts it
 * back together.
 */
static void
dtls_data(void *ctx, const uint8_t *buf, size_t len)
{
	struct pp_pc *pc = ctx;
	const uint8_t *pkt;
	size_t n;

	if (pc->sctp && pp_sctp_join_record(&pc->join, buf, len, &pkt, &n))
		(void)pp_sctp_input(pc->sctp, pkt, n);
}

/* The datagram ended: a lone record that only looked incomplete goes in. */
static void
part_flush(struct pp_pc *pc)
{
	const uint8_t *pkt;
	size_t n;

	if (pp_sctp_join_end(&pc->join, &pkt, &n) && pc->sctp)
		(void)pp_sctp_input(pc->sctp, pkt, n);
}

static void
dtls_closed(void *ctx, int code, const char *message)
{
	struct pp_pc *pc = ctx;

	if (code == 0)
		set_state(pc, PP_PC_CLOSED, "the peer closed the DTLS session");
	else
		set_state(pc, PP_PC_FAILED, "DTLS: %s", message);
}

static const struct pp_dtls_ops dtls_ops = {
	dtls_send_packet, dtls_connected, dtls_data, dtls_closed,
};

/* ---- SCTP callbacks ---- */

static int
sctp_send_packet(void *ctx, const uint8_t *buf, size_t len)
{
	struct pp_pc *pc = ctx;

	if (pc->dtls == NULL || pp_dtls_get_state(pc->dtls) != PP_DTLS_CONNECTED)
		return -ENOTCONN;
	if (pc->cut && len > pc->cut)
		return pp_dtls_send_records(pc->dtls, buf, len, pc->cut);
	return pp_dtls_send(pc->dtls, buf, len);
}

static int
is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

/*
 * Packet size for the path in use, once the peer is known to take big
 * packets (pp_pc_allow_jumbo: aiortc and Chromium do not).  A datagram
 * between two loopback addresses never meets a link smaller than the
 * loopback device's 64 KiB, so there an SCTP packet may be nearly that big:
 * cut into up to four DTLS records of 16 KiB (the most a record holds),
 * all in one datagram, and put back together by the peer (dtls_data).  A
 * fiftieth of the packets of the 1200 bytes used anywhere else, and
 * per-packet costs (system calls, wakeups, SACKs, an SCTP chunk walk) are
 * what limit throughput.
 */
static void
fit_path(struct pp_pc *pc)
{
	struct pp_ice_status ist;
	size_t mtu, packet = PP_SCTP_DEFAULT_PACKET, cut = 0;

	if (pc->dtls == NULL || pc->sctp == NULL ||
	    pp_dtls_get_state(pc->dtls) != PP_DTLS_CONNECTED)
		return;
	pp_ice_get_status(pc->ice, &ist);
	if (!ist.have_pair)
		return;
	mtu = pc->jumbo_ok && is_loopback(ist.pair.local_addr) &&
	    is_loopback(ist.pair.remote_addr) ? PP_DTLS_MAX_MTU : PP_DTLS_DEFAULT_MTU;
	if (mtu == pc->path_mtu)
		return;
	/* Growing: records first, then packets; shrinking: the other way. */
	if (mtu > pc->path_mtu && (pp_dtls_set_mtu(pc->dtls, mtu) < 0 ||
	    pp_dtls_set_packing(pc->dtls, mtu == PP_DTLS_DEFAULT_MTU ? mtu :
	    PP_DTLS_MAX_PACKED) < 0))
		return;
	if (mtu != PP_DTLS_DEFAULT_MTU) {
		size_t over = pp_dtls_record_overhead(pc->dtls);

		cut = pp_sctp_cut_size(pp_dtls_max_payload(pc->dtls));
		/* Four records and their overhead in one datagram. */
		packet = PP_DTLS_MAX_PACKED - PP_SCTP_MAX_PIECES * over;
		if (packet > PP_SCTP_MAX_PIECES * cut)
			packet = PP_SCTP_MAX_PIECES * cut;
	}
	pc->cut = 0;
	if (pp_sctp_set_packet_max(pc->sctp, packet) < 0 ||
	    (mtu < pc->path_mtu && (pp_dtls_set_mtu(pc->dtls, mtu) < 0 ||
	    pp_dtls_set_packing(pc->dtls, mtu) < 0)))
		return;
	pc->cut = cut;
	pp_debug(SUB, "%s: path MTU %zu, SCTP packets up to %zu bytes", pc->name,
	    mtu, packet);
	pc->path_mtu = mtu;
}

void
pp_pc_allow_jumbo(struct pp_pc *pc)
{
	pc->jumbo_ok = 1;
	enter(pc);
	if (pc->sctp && pp_sctp_state(pc->sctp) == PP_SCTP_OPEN)
		fit_path(pc);
	leave(pc);
}

void
pp_pc_allow_zero_checksum(struct pp_pc *pc)
{
	if (pc->sctp)
		pp_sctp_set_zero_checksum(pc->sctp);
}

int
pp_pc_zero_checksum_ok(void)
{
	return pp_sctp_zero_checksum_ok();
}

/* ---- path watch (pc.h, "Path loss and ICE restart") ---- */

static unsigned
restart_bound(const struct pp_pc *pc)
{
	/* The answerer cannot restart by itself: it gives the offerer's
	 * restart a little longer than the offerer does. */
	return pc->cfg.restart_bound_ms + (pc->controlling ? 0 :
	    PP_PC_RESTART_GRACE_MS);
}

/* The path stopped delivering: DISCONNECTED, and the bound starts. */
static void
path_lost(struct pp_pc *pc, const char *why)
{
	struct pp_ice_status ist;

	if (pc->state != PP_PC_CONNECTED && pc->state != PP_PC_CONNECTING)
		return;
	pp_ice_get_status(pc->ice, &ist);
	pc->lost_ms = ist.last_recv_ms ? ist.last_recv_ms : pp_now_ms();
	if (pc->restarting && pc->restart_lost_ms == 0)
		pc->restart_lost_ms = pc->lost_ms;	/* the peer was quicker */
	set_state(pc, PP_PC_DISCONNECTED, "%s", why);
}

static void
path_back(struct pp_pc *pc, const char *why)
{
	if (pc->state != PP_PC_DISCONNECTED)
		return;
	set_state(pc, pc->sctp && pp_sctp_state(pc->sctp) == PP_SCTP_OPEN ?
	    PP_PC_CONNECTED : PP_PC_CONNECTING, "%s", why);
}

/*
 * Silence is one way a path dies; the other is a path that still brings
 * the peer's packets but no longer takes ours (a NAT that dropped our
 * mapping while the peer still reaches us through its relay): then SCTP
 * gets no acknowledgement and its RTO sits at the cap.  Two ticks in a
 * row, and not just after a restart (the first new sample brings it down).
 */
static int
outbound_stalled(struct pp_pc *pc, uint64_t now)
{
	int rto = pc->sctp ? pp_sctp_rto_ms(pc->sctp) : -1;

	if (rto < PP_SCTP_RTO_MAX_MS ||
	    (pc->restart_done_ms && now - pc->restart_done_ms < 3 * WATCH_MS)) {
		pc->stalled_ticks = 0;
		return 0;
	}
	return ++pc->stalled_ticks >= 2;
}

static void
watch_cb(uv_timer_t *t)
{
	struct pp_pc *pc = t->data;
	struct pp_ice_status ist;
	uint64_t now = pp_now_ms(), last;
	char why[128];
	int stalled;

	if (pc->ice == NULL || pc->doomed)
		return;
	enter(pc);
	pp_ice_get_status(pc->ice, &ist);
	last = ist.last_recv_ms;
	stalled = outbound_stalled(pc, now);
	if (pc->state == PP_PC_CONNECTED && last != 0 &&
	    now - last >= pc->cfg.silence_ms) {
		snprintf(why, sizeof(why), "no packets from the peer for %llu ms",
		    (unsigned long long)(now - last));
		path_lost(pc, why);
	} else if (pc->state == PP_PC_CONNECTED && stalled) {
		path_lost(pc, "the peer acknowledges nothing we send (SCTP "
		    "retransmissions at their cap): a one-way path");
	} else if (pc->state == PP_PC_DISCONNECTED) {
		if (last > pc->lost_ms && now - last < pc->cfg.silence_ms &&
		    !stalled)
			path_back(pc, "packets from the peer again");
		else if (pc->restart_ok && now - pc->lost_ms >= restart_bound(pc))
			set_state(pc, PP_PC_FAILED, "path lost %llu ms ago and %s "
			    "within %u ms", (unsigned long long)(now - pc->lost_ms),
			    pc->restarting ? "the ICE restart did not restore it" :
			    "no ICE restart restored it", restart_bound(pc));
	}
	leave(pc);
}

/* A restarted generation works: the association carries on over it. */
static void
restart_done(struct pp_pc *pc)
{
	struct pp_ice_status ist;
	uint64_t now = pp_now_ms();

	pc->restarting = 0;
	pc->restart_pending = 0;
	pc->restarts_done++;
	pc->restart_done_ms = now;
	/* The path may have come back a moment before (packets on the new
	 * pair before it was selected here): measure from the loss. */
	pc->last_recovery_ms = pc->restart_lost_ms ?
	    (int64_t)(now - pc->restart_lost_ms) : 0;
	pp_ice_get_status(pc->ice, &ist);
	if (pc->restart_lost_ms)
		pp_info(SUB, "%s: ICE restart %u done in %llu ms, the path back "
		    "%lld ms after the last packet; channels kept", pc->name,
		    pc->restarts_done,
		    (unsigned long long)(now - pc->restart_started_ms),
		    (long long)pc->last_recovery_ms);
	else
		pp_info(SUB, "%s: ICE restart %u done in %llu ms; channels kept",
		    pc->name, pc->restarts_done,
		    (unsigned long long)(now - pc->restart_started_ms));
}

static void
sctp_connected(struct pp_sctp *sctp, void *ctx)
{
	struct pp_pc *pc = ctx;

	(void)sctp;
	enter(pc);
	fit_path(pc);
	set_state(pc, PP_PC_CONNECTED, NULL);
	uv_timer_start(&pc->watch_timer, watch_cb, WATCH_MS, WATCH_MS);
	leave(pc);
}

static void
sctp_closed(struct pp_sctp *sctp, int status, void *ctx)
{
	struct pp_pc *pc = ctx;

	(void)sctp;
	enter(pc);
	if (status == 0)
		set_state(pc, PP_PC_CLOSED, "the SCTP association was shut down");
	else
		set_state(pc, PP_PC_FAILED, "the SCTP association ended: %s",
		    status == -ETIMEDOUT ? "it never came up" :
		    "the peer aborted it or stopped answering");
	leave(pc);
}

static void
sctp_channel(struct pp_sctp *sctp, struct pp_dc *dc, void *ctx)
{
	struct pp_pc *pc = ctx;

	(void)sctp;
	enter(pc);
	if (pc->ops.on_channel && !pc->doomed)
		pc->ops.on_channel(pc->ctx, dc);
	leave(pc);
}

static const struct pp_sctp_ops sctp_ops = {
	sctp_send_packet, sctp_connected, sctp_closed, sctp_channel,
};

/* ---- ICE callbacks ---- */

static void
ice_candidate(void *arg, const char *candidate)
{
	struct pp_pc *pc = arg;

	enter(pc);
	if (pc->ops.on_local_candidate && !pc->doomed)
		pc->ops.on_local_candidate(pc->ctx, candidate, pc->mid, pc->mline);
	leave(pc);
}

static void
ice_gathering_done(void *arg)
{
	ice_candidate(arg, "");
}

static void
ice_state(void *arg, enum pp_ice_state st)
{
	struct pp_pc *pc = arg;
	int open;

	enter(pc);
	open = pc->sctp && pp_sctp_state(pc->sctp) == PP_SCTP_OPEN;
	switch (st) {
	case PP_ICE_CONNECTED:
	case PP_ICE_READY:
		if (pc->restarting)
			restart_done(pc);
		if (open) {
			fit_path(pc);	/* the selected pair may have changed */
			/* a fresh RTT, and an end to backed-off timers */
			if (pc->restarts_done)
				(void)pp_sctp_probe(pc->sctp);
		}
		if (pc->dtls && pp_dtls_get_state(pc->dtls) == PP_DTLS_NEW) {
			(void)pp_dtls_start(pc->dtls);
			rearm_dtls(pc);
		}
		path_back(pc, pc->restarts_done ? "path restored (ICE restart)" :
		    "path restored");
		break;
	case PP_ICE_DISCONNECTED:
		path_lost(pc, "ICE lost the path");
		break;
	case PP_ICE_FAILED:
		/*
		 * With a peer that restarts, a lost path waits for the restart
		 * (the watch enforces the bound); a restarted generation whose
		 * checks fail does too (the offerer may restart again).
		 */
		if (pc->restart_ok && open) {
			path_lost(pc, pc->restarting ? "ICE: the restarted checks "
			    "found no pair yet" : "ICE: the peer stopped answering "
			    "(consent expired)");
			break;
		}
		set_state(pc, PP_PC_FAILED, pc->state == PP_PC_CONNECTED ||
		    pc->state == PP_PC_DISCONNECTED ?
		    "ICE: the peer stopped answering (consent expired)" :
		    "ICE: no candidate pair worked (no path to the peer)");
		break;
	default:
		break;
	}
	leave(pc);
}

static void
ice_recv(void *arg, const uint8_t *buf, size_t len)
{
	struct pp_pc *pc = arg;

	if (pc->dtls == NULL || !pp_dtls_is_record(buf, len))
		return;		/* not for us (RFC 7983), or before negotiation */
	enter(pc);
	(void)pp_dtls_input(pc->dtls, buf, len);
	if (!pc->doomed) {
		part_flush(pc);
		rearm_dtls(pc);
	}
	leave(pc);
}

static const struct pp_ice_callbacks ice_cbs = {
	ice_candidate, ice_gathering_done, ice_state, ice_recv,
};

/* ---- negotiation ---- */

static void
connect_timeout_cb(uv_timer_t *t)
{
	struct pp_pc *pc = t->data;
	struct pp_ice_status ist;

	enter(pc);
	pp_ice_get_status(pc->ice, &ist);
	set_state(pc, PP_PC_FAILED, "not connected after %u ms (ICE %s, DTLS %s, "
	    "SCTP %s)", pc->cfg.connect_timeout_ms, pp_ice_state_name(ist.state),
	    pc->dtls ? pp_dtls_state_name(pp_dtls_get_state(pc->dtls)) : "-",
	    pc->sctp && pp_sctp_state(pc->sctp) == PP_SCTP_OPEN ? "open" :
	    pc->sctp ? "not up" : "-");
	leave(pc);
}

static int
start_ice(struct pp_pc *pc, enum pp_ice_role role)
{
	struct pp_ice_config ic = pc->cfg.ice;
	int rc;

	ic.role = role;
	if ((rc = pp_ice_new(pc->cfg.gloop, &ic, &ice_cbs, pc, &pc->ice)) < 0)
		pc->ice = NULL;
	return rc;
}

static void
drop_transport(struct pp_pc *pc)
{
	pp_sctp_free(pc->sctp);
	pc->sctp = NULL;
	pp_dtls_free(pc->dtls);
	pc->dtls = NULL;
	pp_ice_free(pc->ice);
	pc->ice = NULL;
}

/* The peer's ICE credentials and candidates of its transport m-line. */
static int
apply_ice(struct pp_pc *pc, const struct pp_sdp_media *t, char *err,
    size_t errlen)
{
	int rc;

	if ((rc = pp_ice_set_remote_credentials(pc->ice, t->t.ice_ufrag,
	    t->t.ice_pwd)) < 0) {
		snprintf(err, errlen, "the remote ICE credentials were refused");
		return rc;
	}
	snprintf(pc->remote_ufrag, sizeof(pc->remote_ufrag), "%s",
	    t->t.ice_ufrag);
	for (size_t i = 0; i < t->ncandidates; i++)
		(void)pp_ice_add_remote_candidate(pc->ice, t->candidates[i].raw);
	if (t->end_of_candidates || !t->t.ice_trickle)
		(void)pp_ice_remote_gathering_done(pc->ice);
	return 0;
}

/*
 * Applies the remote side of a negotiation: ICE credentials and candidates
 * of the transport m-line, then DTLS (role and expected fingerprint) and the
 * SCTP association that will run over it.
 */
static int
apply_remote(struct pp_pc *pc, const struct pp_sdp *sdp, int transport,
    int dc, char *err, size_t errlen)
{
	const struct pp_sdp_media *t = &sdp->media[transport], *d = &sdp->media[dc];
	struct pp_dtls_config dc_cfg;
	struct pp_sctp_config sc;
	const uint8_t *fp = pp_sdp_sha256(t);
	int rc;

	if (fp == NULL) {
		snprintf(err, errlen, "the remote SDP has no sha-256 fingerprint "
		    "for its transport (m-line %d)", transport);
		return PP_EINVAL;
	}
	memcpy(pc->remote_fp, fp, sizeof(pc->remote_fp));
	if ((rc = apply_ice(pc, t, err, errlen)) < 0)
		return rc;
	pc->remote_sess_id = sdp->session_id;
	pc->remote_sess_ver = sdp->session_version;
	pc->remote_sctp_port = d->sctp_port;

	memset(&dc_cfg, 0, sizeof(dc_cfg));
	dc_cfg.role = pc->dtls_client ? PP_DTLS_CLIENT : PP_DTLS_SERVER;
	dc_cfg.cert = pc->cert;
	dc_cfg.remote_fingerprint = pc->remote_fp;
	dc_cfg.log_name = pc->name;
	dc_cfg.ops = &dtls_ops;
	dc_cfg.ctx = pc;
	if ((rc = pp_dtls_new(&dc_cfg, &pc->dtls)) < 0) {
		snprintf(err, errlen, "cannot set up DTLS: %s", pp_strerror(rc));
		return rc;
	}

	pc->remote_max = d->max_message_size;
	memset(&sc, 0, sizeof(sc));
	sc.remote_port = d->sctp_port;
	sc.dtls_client = pc->dtls_client;
	sc.max_message_size = pc->cfg.max_message_size;
	sc.remote_max_message_size = d->max_message_size ? d->max_message_size
	    : PP_SCTP_UNLIMITED;
	sc.packet_max = PP_SCTP_DEFAULT_PACKET;
	if ((rc = pp_sctp_new(pc->loop, &sc, &sctp_ops, pc, &pc->sctp)) < 0) {
		snprintf(err, errlen, "cannot set up SCTP: %s", pp_strerror(rc));
		return rc;
	}
	/* ICE may already be up (the answerer's checks started with the offer). */
	{
		enum pp_ice_state ist = pp_ice_get_state(pc->ice);

		if (ist == PP_ICE_CONNECTED || ist == PP_ICE_READY) {
			(void)pp_dtls_start(pc->dtls);
			rearm_dtls(pc);
		}
	}
	return 0;
}

static void
fill_params(struct pp_pc *pc, struct pp_sdp_params *p)
{
	memset(p, 0, sizeof(*p));
	p->ice_ufrag = pp_ice_local_ufrag(pc->ice);
	p->ice_pwd = pp_ice_local_pwd(pc->ice);
	memcpy(p->fingerprint, pp_dtls_cert_fingerprint(pc->cert),
	    sizeof(p->fingerprint));
	p->session_id = pc->local_sess_id;
	p->session_version = pc->local_sess_ver;
	p->max_message_size = pc->cfg.max_message_size;
	p->legacy = pc->cfg.legacy_sdp;
}

static void
begin_connecting(struct pp_pc *pc)
{
	uv_timer_start(&pc->connect_timer, connect_timeout_cb,
	    pc->cfg.connect_timeout_ms, 0);
	set_state(pc, PP_PC_CONNECTING, NULL);
}

/* ---- ICE restart (pc.h) ---- */

void
pp_pc_allow_restart(struct pp_pc *pc)
{
	pc->restart_ok = 1;
}

int
pp_pc_set_turn(struct pp_pc *pc, const struct pp_ice_turn *turn, size_t nturn)
{
	return pc->ice ? pp_ice_set_turn(pc->ice, turn, nturn) : PP_ECONFLICT;
}

int
pp_pc_restart(struct pp_pc *pc, char **sdp, char *err, size_t errlen)
{
	struct pp_sdp_params p;
	size_t len;
	int rc;

	*sdp = NULL;
	if (!pc->controlling || pc->dtls == NULL || pc->sctp == NULL ||
	    (pc->state != PP_PC_CONNECTED && pc->state != PP_PC_DISCONNECTED)) {
		snprintf(err, errlen, "only an established connection that we "
		    "offered restarts ICE");
		return PP_ECONFLICT;
	}
	if (!pc->restart_ok) {
		snprintf(err, errlen, "the peer did not say it supports ICE "
		    "restart");
		return PP_ECONFLICT;
	}
	if ((rc = pp_ice_restart(pc->ice)) < 0) {
		snprintf(err, errlen, "ICE restart: %s", pp_strerror(rc));
		return rc;
	}
	pc->local_sess_ver++;
	fill_params(pc, &p);
	p.setup = PP_SDP_SETUP_ACTPASS;
	if ((rc = pp_sdp_build_offer(&p, sdp, &len, err, errlen)) < 0)
		return rc;
	pc->restart_pending = 1;
	pc->restarting = 1;
	pc->restart_started_ms = pp_now_ms();
	pc->restart_lost_ms = pc->lost_ms;
	return 0;
}

/*
 * The peer's offer on an established connection: only an ICE restart of
 * this very session is taken (same o= id with a higher version, same DTLS
 * fingerprint and SCTP port, new ICE credentials); anything else is
 * PP_ECONFLICT with the reason, and the connection is left as it was.
 */
static int
restart_answer(struct pp_pc *pc, const char *buf, size_t len, char **answer,
    char *err, size_t errlen)
{
	struct pp_sdp_answer_info info;
	struct pp_sdp offer, ours;
	struct pp_sdp_params p;
	const struct pp_sdp_media *d;
	const uint8_t *fp;
	const char *why = NULL;
	size_t alen;
	int dc, rc;

	memset(&ours, 0, sizeof(ours));
	if ((rc = pp_sdp_parse(buf, len, &offer, err, errlen)) < 0)
		return rc;
	if ((dc = pp_sdp_find_datachannel(&offer, err, errlen)) < 0) {
		rc = dc;
		goto out;
	}
	d = &offer.media[dc];
	fp = pp_sdp_sha256(d);
	if (!pc->restart_ok)
		why = "ICE restart is not agreed with this peer";
	else if (pc->controlling)
		why = "we offered this connection; only the offerer restarts";
	else if (pc->state != PP_PC_CONNECTED &&
	    pc->state != PP_PC_DISCONNECTED)
		why = "the connection is not established";
	else if (offer.session_id != pc->remote_sess_id ||
	    offer.session_version <= pc->remote_sess_ver)
		why = "another session (o= id, or a version not higher)";
	else if (fp == NULL || CRYPTO_memcmp(fp, pc->remote_fp,
	    sizeof(pc->remote_fp)) != 0)
		why = "another DTLS fingerprint";
	else if (d->sctp_port != pc->remote_sctp_port)
		why = "another SCTP port";
	else if (strcmp(d->t.ice_ufrag, pc->remote_ufrag) == 0)
		why = "the same ICE credentials (only ICE restarts are taken)";
	if (why != NULL) {
		snprintf(err, errlen, "not an ICE restart of this connection: %s",
		    why);
		rc = PP_ECONFLICT;
		goto out;
	}
	if ((rc = pp_ice_restart(pc->ice)) < 0) {
		snprintf(err, errlen, "ICE restart: %s", pp_strerror(rc));
		goto out;
	}
	pc->local_sess_ver++;
	fill_params(pc, &p);
	if ((rc = pp_sdp_build_answer(&offer, &p, answer, &alen, &info, err,
	    errlen)) < 0 ||
	    (rc = pp_sdp_parse(*answer, alen, &ours, err, errlen)) < 0)
		goto out;
	if ((ours.media[info.dc].t.setup == PP_SDP_SETUP_ACTIVE) !=
	    (pc->dtls_client != 0)) {
		snprintf(err, errlen, "the restart offer would swap the DTLS "
		    "roles");
		rc = PP_EINVAL;
		goto out;
	}
	if ((rc = apply_ice(pc, &offer.media[info.transport], err, errlen)) < 0)
		goto out;
	pc->remote_sess_ver = offer.session_version;
	pc->restarting = 1;
	pc->restart_started_ms = pp_now_ms();
	pc->restart_lost_ms = pc->lost_ms;
	pp_info(SUB, "%s: ICE restart asked by the peer; answering", pc->name);
out:
	if (rc < 0) {
		free(*answer);
		*answer = NULL;
	}
	pp_sdp_fini(&ours);
	pp_sdp_fini(&offer);
	return rc;
}

/* The answer to our restart offer: the same session, new ICE credentials. */
static int
restart_answered(struct pp_pc *pc, const char *buf, size_t len, char *err,
    size_t errlen)
{
	struct pp_sdp sdp;
	const struct pp_sdp_media *d;
	const uint8_t *fp;
	enum pp_sdp_setup setup;
	int dc, rc;

	if ((rc = pp_sdp_parse(buf, len, &sdp, err, errlen)) < 0)
		return rc;
	if ((dc = pp_sdp_find_datachannel(&sdp, err, errlen)) < 0) {
		rc = dc;
		goto out;
	}
	d = &sdp.media[dc];
	fp = pp_sdp_sha256(d);
	setup = d->t.setup;
	if (fp == NULL || CRYPTO_memcmp(fp, pc->remote_fp,
	    sizeof(pc->remote_fp)) != 0) {
		snprintf(err, errlen, "the answer to our ICE restart is another "
		    "DTLS session (new fingerprint): the peer lost ours");
		rc = PP_ECONFLICT;
		goto out;
	}
	if ((setup != PP_SDP_SETUP_ACTIVE && setup != PP_SDP_SETUP_PASSIVE) ||
	    (setup == PP_SDP_SETUP_PASSIVE) != (pc->dtls_client != 0)) {
		snprintf(err, errlen, "the answer to our ICE restart says "
		    "a=setup:%s, which would swap the DTLS roles",
		    pp_sdp_setup_name(setup));
		rc = PP_EINVAL;
		goto out;
	}
	if ((rc = apply_ice(pc, d, err, errlen)) < 0)
		goto out;
	pc->restart_pending = 0;
out:
	pp_sdp_fini(&sdp);
	return rc;
}

int
pp_pc_create_offer(struct pp_pc *pc, char **sdp, char *err, size_t errlen)
{
	struct pp_sdp_params p;
	size_t len;
	int rc;

	*sdp = NULL;
	if (pc->state != PP_PC_NEW || pc->ice) {
		snprintf(err, errlen, "an offer or answer was already made");
		return PP_ECONFLICT;
	}
	if ((rc = start_ice(pc, PP_ICE_CONTROLLING)) < 0) {
		snprintf(err, errlen, "cannot start ICE: %s", pp_strerror(rc));
		return rc;
	}
	fill_params(pc, &p);
	p.setup = PP_SDP_SETUP_ACTPASS;
	if ((rc = pp_sdp_build_offer(&p, sdp, &len, err, errlen)) < 0 ||
	    (rc = pp_ice_gather(pc->ice)) < 0) {
		if (rc != PP_EINVAL)
			snprintf(err, errlen, "cannot gather candidates: %s",
			    pp_strerror(rc));
		free(*sdp);
		*sdp = NULL;
		drop_transport(pc);
		return rc;
	}
	snprintf(pc->mid, sizeof(pc->mid), "0");
	pc->mline = 0;
	pc->controlling = 1;
	begin_connecting(pc);
	return 0;
}

int
pp_pc_set_remote_answer(struct pp_pc *pc, const char *buf, size_t len,
    char *err, size_t errlen)
{
	struct pp_sdp sdp;
	enum pp_sdp_setup setup;
	int dc, rc;

	if (pc->restart_pending)
		return restart_answered(pc, buf, len, err, errlen);
	if (pc->ice == NULL || pc->dtls || pc->state != PP_PC_CONNECTING) {
		snprintf(err, errlen, "no offer of ours is waiting for an answer");
		return PP_ECONFLICT;
	}
	if ((rc = pp_sdp_parse(buf, len, &sdp, err, errlen)) < 0)
		return rc;
	if ((dc = pp_sdp_find_datachannel(&sdp, err, errlen)) < 0) {
		rc = dc;
		goto out;
	}
	setup = sdp.media[dc].t.setup;
	if (setup != PP_SDP_SETUP_ACTIVE && setup != PP_SDP_SETUP_PASSIVE) {
		snprintf(err, errlen, "the answer says a=setup:%s; it must be "
		    "active or passive", pp_sdp_setup_name(setup));
		rc = PP_EINVAL;
		goto out;
	}
	pc->dtls_client = setup == PP_SDP_SETUP_PASSIVE;
	if ((rc = apply_remote(pc, &sdp, dc, dc, err, errlen)) < 0) {
		/* Unusable answer: this connection cannot recover. */
		set_state(pc, PP_PC_FAILED, "%s", err);
		pp_sctp_free(pc->sctp);
		pc->sctp = NULL;
		pp_dtls_free(pc->dtls);
		pc->dtls = NULL;
	}
out:
	pp_sdp_fini(&sdp);
	return rc;
}

int
pp_pc_set_remote_offer(struct pp_pc *pc, const char *buf, size_t len,
    char **answer, char *err, size_t errlen)
{
	struct pp_sdp_answer_info info;
	struct pp_sdp offer, ours;
	struct pp_sdp_params p;
	size_t alen;
	int rc;

	*answer = NULL;
	memset(&ours, 0, sizeof(ours));
	if (pc->dtls && pc->sctp)
		return restart_answer(pc, buf, len, answer, err, errlen);
	if (pc->state != PP_PC_NEW || pc->ice) {
		snprintf(err, errlen, "an offer or answer was already made");
		return PP_ECONFLICT;
	}
	if ((rc = pp_sdp_parse(buf, len, &offer, err, errlen)) < 0)
		return rc;
	if ((rc = pp_sdp_find_datachannel(&offer, err, errlen)) < 0)
		goto out;
	if ((rc = start_ice(pc, PP_ICE_CONTROLLED)) < 0) {
		snprintf(err, errlen, "cannot start ICE: %s", pp_strerror(rc));
		goto out;
	}
	fill_params(pc, &p);
	if ((rc = pp_sdp_build_answer(&offer, &p, answer, &alen, &info, err,
	    errlen)) < 0)
		goto fail;
	/* Our role is what the answer we just wrote says. */
	if ((rc = pp_sdp_parse(*answer, alen, &ours, err, errlen)) < 0)
		goto fail;
	pc->dtls_client = ours.media[info.dc].t.setup == PP_SDP_SETUP_ACTIVE;
	snprintf(pc->mid, sizeof(pc->mid), "%s", offer.media[info.transport].mid);
	pc->mline = (unsigned)info.transport;
	if ((rc = apply_remote(pc, &offer, info.transport, info.dc, err,
	    errlen)) < 0 || (rc = pp_ice_gather(pc->ice)) < 0)
		goto fail;
	begin_connecting(pc);
	goto out;
fail:
	free(*answer);
	*answer = NULL;
	drop_transport(pc);
out:
	pp_sdp_fini(&ours);
	pp_sdp_fini(&offer);
	return rc;
}

int
pp_pc_add_remote_candidate(struct pp_pc *pc, const char *candidate,
    char *err, size_t errlen)
{
	int rc;

	if (pc->ice == NULL) {
		snprintf(err, errlen, "a candidate came before the offer");
		return PP_ECONFLICT;
	}
	if (candidate == NULL || candidate[0] == '\0')
		return pp_ice_remote_gathering_done(pc->ice);
	if ((rc = pp_ice_add_remote_candidate(pc->ice, candidate)) < 0)
		snprintf(err, errlen, "remote candidate refused: %s",
		    pp_strerror(rc));
	return rc;
}

int
pp_pc_open_channel(struct pp_pc *pc, const struct pp_dc_init *init,
    const struct pp_dc_ops *ops, void *ctx, struct pp_dc **out)
{
	*out = NULL;
	if (pc->sctp == NULL)
		return PP_ECONFLICT;
	return pp_dc_open(pc->sctp, init, ops, ctx, out);
}

void
pp_pc_close(struct pp_pc *pc)
{
	if (pc->state == PP_PC_CLOSED || pc->state == PP_PC_FAILED)
		return;
	if (pc->sctp && pp_sctp_state(pc->sctp) == PP_SCTP_OPEN)
		(void)pp_sctp_close(pc->sctp, 0);
	if (pc->dtls)
		(void)pp_dtls_close(pc->dtls);
	set_state(pc, PP_PC_CLOSED, "closed by us");
}

void
pp_pc_get_status(const struct pp_pc *pc, struct pp_pc_status *st)
{
	memset(st, 0, sizeof(*st));
	st->state = pc->state;
	if (pc->ice)
		pp_ice_get_status(pc->ice, &st->ice);
	/* libnice keeps its check RTTs to itself; SCTP measures the same path */
	if (pc->sctp && st->ice.rtt_ms < 0)
		st->ice.rtt_ms = pp_sctp_rtt_ms(pc->sctp);
	st->dtls = pc->dtls ? pp_dtls_get_state(pc->dtls) : PP_DTLS_NEW;
	st->sctp = pc->sctp ? pp_sctp_state(pc->sctp) : PP_SCTP_NEW;
	st->dtls_client = pc->dtls_client;
	st->restart_ok = pc->restart_ok;
	st->restarting = pc->restarting;
	st->restarts = pc->restarts_done;
	st->last_recovery_ms = pc->last_recovery_ms;
	if (pc->dtls)
		pp_dtls_fp_format(pc->remote_fp, st->remote_fingerprint);
}

size_t
pp_pc_remote_max_message_size(const struct pp_pc *pc)
{
	return pc->remote_max;
}

/* ---- lifetime ---- */

static void
handle_closed(uv_handle_t *h)
{
	struct pp_pc *pc = h->data;

	if (--pc->open_handles == 0) {
		free(pc->name);
		free(pc);
	}
}

static void
destroy(struct pp_pc *pc)
{
	drop_transport(pc);
	pp_sctp_join_free(&pc->join);
	pp_dtls_cert_free(pc->own_cert);
	pc->own_cert = NULL;
	uv_close((uv_handle_t *)&pc->dtls_timer, handle_closed);
	uv_close((uv_handle_t *)&pc->connect_timer, handle_closed);
	uv_close((uv_handle_t *)&pc->notify_timer, handle_closed);
	uv_close((uv_handle_t *)&pc->watch_timer, handle_closed);
}

void
pp_pc_free(struct pp_pc *pc)
{
	if (pc == NULL || pc->doomed)
		return;
	pc->doomed = 1;
	if (pc->depth == 0)
		destroy(pc);
}

/* o= session id: random below 2^63 (JSEP), never 0. */
static uint64_t
session_id(void)
{
	uint64_t v = 0;

	if (pp_random_bytes(&v, sizeof(v)) < 0)
		v = pp_now_ms();
	v &= INT64_MAX;
	return v ? v : 1;
}

int
pp_pc_new(const struct pp_pc_config *cfg, const struct pp_pc_ops *ops,
    void *ctx, struct pp_pc **out)
{
	struct pp_pc *pc;
	int rc;

	*out = NULL;
	if (cfg->gloop == NULL)
		return PP_EINVAL;
	if ((pc = calloc(1, sizeof(*pc))) == NULL)
		return -ENOMEM;
	pc->cfg = *cfg;
	if (pc->cfg.connect_timeout_ms == 0)
		pc->cfg.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
	if (pc->cfg.max_message_size == 0)
		pc->cfg.max_message_size = PP_SDP_DEFAULT_MAX_MSG;
	if (pc->cfg.silence_ms == 0)
		pc->cfg.silence_ms = PP_PC_SILENCE_MS;
	if (pc->cfg.restart_bound_ms == 0)
		pc->cfg.restart_bound_ms = PP_PC_RESTART_BOUND_MS;
	pc->ops = *ops;
	pc->ctx = ctx;
	pc->loop = pp_gloop_uv(cfg->gloop);
	pc->name = strdup(cfg->log_name ? cfg->log_name : "peer");
	pc->cfg.log_name = NULL;
	if (pc->name == NULL) {
		free(pc);
		return -ENOMEM;
	}
	if (cfg->cert) {
		pc->cert = cfg->cert;
	} else {
		if ((rc = pp_dtls_cert_new(NULL, &pc->own_cert)) < 0) {
			free(pc->name);
			free(pc);
			return rc;
		}
		pc->cert = pc->own_cert;
	}
	uv_timer_init(pc->loop, &pc->dtls_timer);
	uv_timer_init(pc->loop, &pc->connect_timer);
	uv_timer_init(pc->loop, &pc->notify_timer);
	uv_timer_init(pc->loop, &pc->watch_timer);
	pc->dtls_timer.data = pc->connect_timer.data = pc->notify_timer.data = pc;
	pc->watch_timer.data = pc;
	pc->open_handles = 4;
	pc->local_sess_id = session_id();
	pc->last_recovery_ms = -1;
	*out = pc;
	return 0;
}
