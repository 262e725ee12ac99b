/*
 * A WebRTC peer connection for data channels: ICE (lib/ice) -> DTLS
 * (lib/dtls) -> SCTP (lib/sctp), negotiated with SDP (lib/sdp) offers and
 * answers and trickled candidates that the caller carries over signaling.
 *
 *   offerer:  pp_pc_create_offer() -> send it; pp_pc_set_remote_answer()
 *   answerer: pp_pc_set_remote_offer() -> send the answer it returns
 *   both:     on_local_candidate -> send; received candidates ->
 *             pp_pc_add_remote_candidate()
 *
 * Once the remote description is set, data channels can be opened (they wait
 * until the association is up) and the peer's channels arrive via on_channel.
 * The connection reports CONNECTED when the SCTP association is up, after the
 * peer's DTLS certificate matched the fingerprint in its SDP.
 *
 * Thread: the loop thread of the pp_gloop.  Callbacks run from the loop,
 * never from inside a pp_pc_* call, and may call any pp_pc_ or pp_dc_
 * function, including pp_pc_free() on their own connection.
 * Ownership: the caller owns the pp_pc; channels belong to it (see
 * lib/sctp/sctp.h) and are gone after pp_pc_free().
 */
#ifndef PP_RTC_PC_H
#define PP_RTC_PC_H

#include "dtls/cert.h"
#include "dtls/dtls.h"
#include "ice/ice.h"
#include "sctp/sctp.h"

#include <stddef.h>
#include <stdint.h>

struct pp_pc;

/*
 * Path loss and ICE restart.  Once connected, the path is watched: SCTP
 * heartbeats every second or so keep packets coming even on an idle
 * connection, so PP_PC_SILENCE_MS without any packet from the peer means
 * the path is gone: DISCONNECTED ("no packets from the peer for ...").
 * Packets again mean CONNECTED.
 *
 * With a peer that supports it (pp_pc_allow_restart(): the tunnel's INIT
 * said so), a lost path is not the end: the offerer calls pp_pc_restart()
 * and sends the offer it returns (new ICE credentials, the same session,
 * DTLS fingerprint and SCTP port, RFC 8445 section 9 / RFC 8839); the
 * answerer's pp_pc_set_remote_offer() recognises it and answers with new
 * credentials of its own.  Both sides gather again from scratch and
 * trickle.  When the new generation finds a pair the same DTLS
 * association and SCTP association carry on over it (SCTP retransmits
 * what was lost) and the state is CONNECTED again: channels survive.  If
 * the path is not back within restart_bound_ms of the last packet (the
 * answerer, which cannot restart by itself, waits PP_PC_RESTART_GRACE_MS
 * longer) the connection FAILS with that reason.  Without
 * pp_pc_allow_restart() a lost path FAILS when ICE consent expires
 * (about 10 s, libnice), as before.
 */
#define PP_PC_SILENCE_MS	4000u
#define PP_PC_RESTART_BOUND_MS	20000u
#define PP_PC_RESTART_GRACE_MS	5000u

enum pp_pc_state {
	PP_PC_NEW,
	PP_PC_CONNECTING,	/* ICE, DTLS or SCTP on its way */
	PP_PC_CONNECTED,	/* channels can carry data */
	PP_PC_DISCONNECTED,	/* ICE lost the path; may come back */
	PP_PC_FAILED,		/* for good: see the reason */
	PP_PC_CLOSED,		/* closed by either side */
};

struct pp_pc_config {
	struct pp_gloop *gloop;
	/* ICE servers, local addresses, ports; role is set by the pc. */
	struct pp_ice_config ice;
	/* Our DTLS identity, borrowed: it must outlive the pc.  NULL: a fresh one. */
	const struct pp_dtls_cert *cert;
	size_t max_message_size;	/* we accept; 0: 262144 */
	int legacy_sdp;			/* offer DTLS/SCTP + a=sctpmap */
	/* From offer/answer to CONNECTED; 0: 30000 ms. */
	unsigned connect_timeout_ms;
	unsigned silence_ms;		/* 0: PP_PC_SILENCE_MS */
	unsigned restart_bound_ms;	/* 0: PP_PC_RESTART_BOUND_MS */
	const char *log_name;		/* e.g. the peer's name; copied */
};

struct pp_pc_ops {
	/*
	 * A local candidate for the signaling channel, "candidate:...", with
	 * the sdpMid and sdpMLineIndex to send along; candidate "" means end
	 * of candidates.
	 */
	void (*on_local_candidate)(void *ctx, const char *candidate,
	    const char *mid, unsigned mline_index);
	/* reason: one line saying why, for FAILED/CLOSED/DISCONNECTED. */
	void (*on_state)(void *ctx, enum pp_pc_state state, const char *reason);
	/* The peer opened a channel: call pp_dc_set_ops() here to keep it. */
	void (*on_channel)(void *ctx, struct pp_dc *dc);
};

struct pp_pc_status {
	enum pp_pc_state state;
	/* ice.rtt_ms: the SCTP association's smoothed RTT (pp_sctp_rtt_ms())
	 * when ICE cannot tell, -1 before the association is up */
	struct pp_ice_status ice;
	enum pp_dtls_state dtls;
	enum pp_sctp_state sctp;
	int dtls_client;
	char remote_fingerprint[PP_DTLS_FP_STRLEN + 1];
	/* ICE restart: ice.restarts counts the generations started */
	int restart_ok;			/* pp_pc_allow_restart() was called */
	int restarting;			/* a restarted generation has no pair yet */
	unsigned restarts;		/* restarts that found a pair */
	int64_t last_recovery_ms;	/* last packet -> path back, of the last
					 * restart; -1: none */
};

/* Copies cfg and ops; ctx is passed to every callback. 0 or negative. */
int pp_pc_new(const struct pp_pc_config *cfg, const struct pp_pc_ops *ops,
    void *ctx, struct pp_pc **out);
/* Tears everything down at once (SCTP abort); no callback afterwards. */
void pp_pc_free(struct pp_pc *pc);

/*
 * Makes our offer (we are ICE controlling) and starts gathering.  *sdp is
 * malloc'ed; the caller frees it.  PP_ECONFLICT if not NEW.
 */
int pp_pc_create_offer(struct pp_pc *pc, char **sdp, char *err, size_t errlen);
/* The peer's answer to our offer.  PP_EINVAL with a reason in err. */
int pp_pc_set_remote_answer(struct pp_pc *pc, const char *sdp, size_t len,
    char *err, size_t errlen);
/*
 * The peer's offer: returns our answer in *answer (malloc'ed) and starts
 * gathering (we are ICE controlled).  PP_EINVAL with a reason in err; the
 * connection stays NEW and usable for another try.
 */
int pp_pc_set_remote_offer(struct pp_pc *pc, const char *sdp, size_t len,
    char **answer, char *err, size_t errlen);
/*
 * The peer is known to take ICE restarts on this connection (see "Path
 * loss and ICE restart" above).  Call once the peer said so.
 */
void pp_pc_allow_restart(struct pp_pc *pc);
/*
 * Offerer only, once connected (CONNECTED or DISCONNECTED): starts an ICE
 * restart and returns the offer to send (*sdp malloc'ed); the answer goes
 * to pp_pc_set_remote_answer() as usual.  May be called again while a
 * restart is under way (the offer lost, say): the newest one counts.
 * PP_ECONFLICT if not allowed or not the offerer, with the reason in err.
 *
 * On the answering side pp_pc_set_remote_offer() on a connection that is
 * already negotiated takes only such a restart offer; anything else is
 * PP_ECONFLICT and leaves the connection untouched (the caller may then
 * replace it with a new one).  An answer to a restart that names another
 * DTLS fingerprint is PP_ECONFLICT too: the peer has lost the session.
 */
int pp_pc_restart(struct pp_pc *pc, char **sdp, char *err, size_t errlen);
/* The TURN servers for the next restart (copied); see pp_ice_set_turn(). */
int pp_pc_set_turn(struct pp_pc *pc, const struct pp_ice_turn *turn,
    size_t nturn);
/* A trickled remote candidate; "" (or NULL) = end of candidates. */
int pp_pc_add_remote_candidate(struct pp_pc *pc, const char *candidate,
    char *err, size_t errlen);

/* Opens a channel; PP_ECONFLICT before the remote description is set. */
int pp_pc_open_channel(struct pp_pc *pc, const struct pp_dc_init *init,
    const struct pp_dc_ops *ops, void *ctx, struct pp_dc **out);

/* Closes politely (SCTP shutdown, DTLS close_notify); on_state(CLOSED) follows. */
void pp_pc_close(struct pp_pc *pc);

void pp_pc_get_status(const struct pp_pc *pc, struct pp_pc_status *st);
const char *pp_pc_state_name(enum pp_pc_state state);
/*
 * The peer is known to take SCTP packets filling a whole DTLS record (it is
 * PeerPipe v2, which says so in its INIT): on a loopback path they grow
 * from 1200 bytes to 16 KiB, a tenth of the per-packet work.  Independent
 * stacks (aiortc, Chromium) are never asked to.
 */
void pp_pc_allow_jumbo(struct pp_pc *pc);
/*
 * The peer does not check SCTP checksums either (its INIT says so): leave
 * them out (pp_sctp_set_zero_checksum).  pp_pc_zero_checksum_ok(): whether
 * we may say so ourselves.
 */
void pp_pc_allow_zero_checksum(struct pp_pc *pc);
int pp_pc_zero_checksum_ok(void);

/* The peer's a=max-message-size in effect (0: unlimited). */
size_t pp_pc_remote_max_message_size(const struct pp_pc *pc);

#endif
