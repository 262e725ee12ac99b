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

/* The peer's a=max-message-size in effect (0: unlimited). */
size_t pp_pc_remote_max_message_size(const struct pp_pc *pc);

#endif
