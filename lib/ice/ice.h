/*
 * ICE for one peer connection: a libnice agent (RFC 8445 full mode, RFC 7675
 * consent freshness, trickle) with one stream of one component, as WebRTC
 * data channels use it (bundle + rtcp-mux).  Local candidates are trickled to
 * a callback as SDP attribute values; remote candidates may be added one by
 * one at any time, also before the remote credentials are known (they wait,
 * bounded).  Datagrams go up through on_recv and down through pp_ice_send.
 * Remote candidates are parsed by lib/sdp (pp_sdp_parse_candidate()) and
 * checked for what this agent supports before libnice sees them, in their
 * normalised form only.
 *
 * Thread: everything runs on the loop thread of the pp_gloop given to
 * pp_ice_new().  Callbacks never run from inside a pp_ice_* call: events
 * that libnice raises during a call are queued and delivered from the loop
 * right after, in order, and before any datagram that follows them.
 *
 * Ownership: the caller owns the pp_ice and frees it with pp_ice_free(),
 * which may be called from inside any of its callbacks; no callback runs
 * after it.  Strings passed in are borrowed (copied when kept); strings
 * passed to callbacks are borrowed for the duration of the call.  The local
 * password is a secret: it is wiped on free and never logged by us (libnice's
 * own debug output, enabled with NICE_DEBUG, prints it at debug level).
 */
#ifndef PP_ICE_ICE_H
#define PP_ICE_ICE_H

#include "ice/gloop.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pp_ice;

#define PP_ICE_MAX_REMOTE_CANDIDATES 25	/* per ICE generation (libnice's cap) */
#define PP_ICE_MAX_LOCAL_ADDRS	16
#define PP_ICE_MAX_TURN		8	/* NICE_CANDIDATE_MAX_TURN_SERVERS */
#define PP_ICE_MAX_DATAGRAM	65535	/* bytes in one pp_ice_send() */
#define PP_ICE_ADDRSTRLEN	46	/* INET6_ADDRSTRLEN */

enum pp_ice_role {
	PP_ICE_CONTROLLED,
	PP_ICE_CONTROLLING,
};

enum pp_ice_state {
	PP_ICE_NEW,		/* before pp_ice_gather() */
	PP_ICE_GATHERING,
	PP_ICE_CONNECTING,	/* connectivity checks running */
	PP_ICE_CONNECTED,	/* a pair works; sending is possible */
	PP_ICE_READY,		/* a pair is nominated; checks are done */
	PP_ICE_FAILED,		/* no pair worked, or consent was lost */
	PP_ICE_DISCONNECTED,
};

/*
 * On FAILED with trickle ICE: libnice 0.1.21 ignores end-of-candidates and
 * fails as soon as the pairs it has so far failed.  Before the first working
 * pair of a generation we hold that back (state stays CONNECTING) until the
 * peer's end-of-candidates, or eoc_grace_ms without a pair; candidates that
 * come meanwhile revive the checks.  Consent loss is reported at once.
 */
#define PP_ICE_EOC_GRACE_MS 10000

enum pp_ice_relay_transport {
	PP_ICE_RELAY_UDP,
	PP_ICE_RELAY_TCP,
	PP_ICE_RELAY_TLS,
};

struct pp_ice_turn {
	const char *host;	/* IP literal or DNS name (libnice resolves) */
	uint16_t port;
	const char *username;
	const char *password;
	enum pp_ice_relay_transport transport;
};

struct pp_ice_config {
	enum pp_ice_role role;
	const char *stun_host;	/* NULL: no STUN server */
	uint16_t stun_port;	/* 0: 3478 */
	const struct pp_ice_turn *turn;
	size_t nturn;		/* <= PP_ICE_MAX_TURN */
	/*
	 * IP literals to gather host candidates on.  None: every interface
	 * but loopback (libnice's choice).  List 127.0.0.1 to get loopback.
	 */
	const char *const *local_addrs;
	size_t nlocal_addrs;	/* <= PP_ICE_MAX_LOCAL_ADDRS */
	uint16_t port_min, port_max;	/* host ports; both 0: any */
	bool ice_tcp;		/* RFC 6544 candidates too (default off) */
	bool force_relay;	/* only relayed candidates */
	/*
	 * STUN transaction timing, 0 for libnice's defaults: retransmissions
	 * (7) for gathering and checks; the first timeout (200 ms) for
	 * STUN/TURN gathering (checks use max(500 ms, 20 ms x pairs)).
	 */
	unsigned stun_retransmissions;
	unsigned stun_initial_timeout_ms;
	unsigned eoc_grace_ms;		/* 0: PP_ICE_EOC_GRACE_MS */
};

struct pp_ice_callbacks {
	/* A local candidate, "candidate:..." (no "a=", no CRLF). */
	void (*on_candidate)(void *arg, const char *candidate);
	/* Local gathering finished: signal end-of-candidates. */
	void (*on_gathering_done)(void *arg);
	void (*on_state)(void *arg, enum pp_ice_state state);
	/* One datagram from the peer; buf is valid during the call only. */
	void (*on_recv)(void *arg, const uint8_t *buf, size_t len);
};

enum pp_ice_cand_type {
	PP_ICE_CAND_HOST,
	PP_ICE_CAND_SRFLX,
	PP_ICE_CAND_PRFLX,
	PP_ICE_CAND_RELAY,
};

enum pp_ice_proto {
	PP_ICE_PROTO_UDP,
	PP_ICE_PROTO_TCP,
};

/* Where a pair's candidates came from, for `peerpipe status`. */
struct pp_ice_pair {
	enum pp_ice_cand_type local_type, remote_type;
	enum pp_ice_proto proto;
	char local_addr[PP_ICE_ADDRSTRLEN];
	uint16_t local_port;
	char remote_addr[PP_ICE_ADDRSTRLEN];
	uint16_t remote_port;
};

struct pp_ice_status {
	enum pp_ice_state state;
	bool have_pair;
	struct pp_ice_pair pair;	/* valid if have_pair */
	/*
	 * libnice 0.1.21 keeps check round-trip times to itself: rtt_ms is
	 * -1, and the timestamps below (pp_now_ms(), 0 = never) stand in.
	 */
	int rtt_ms;
	uint64_t checks_started_ms;	/* last entry into CONNECTING */
	uint64_t connected_ms;		/* last entry into CONNECTED */
	uint64_t ready_ms;		/* last entry into READY */
	uint64_t pair_selected_ms;	/* libnice picked the current pair */
	uint64_t last_recv_ms;		/* last datagram from the peer */
	uint64_t rx_packets, rx_bytes, tx_packets, tx_bytes;
	uint64_t tx_errors;		/* pp_ice_send() failures */
	unsigned restarts;
};

/*
 * Creates the agent and its stream; nothing is sent before pp_ice_gather().
 * Copies cfg and cb.  Returns 0, PP_ECONFIG for a bad config (logged with
 * the field), or -ENOMEM.
 */
int pp_ice_new(struct pp_gloop *gl, const struct pp_ice_config *cfg,
    const struct pp_ice_callbacks *cb, void *arg, struct pp_ice **out);

/* Stops all callbacks at once; the agent closes in the background. */
void pp_ice_free(struct pp_ice *ice);

/* Starts gathering: on_candidate per candidate, then on_gathering_done. */
int pp_ice_gather(struct pp_ice *ice);

/* The current local credentials; they change on pp_ice_restart(). */
const char *pp_ice_local_ufrag(const struct pp_ice *ice);
const char *pp_ice_local_pwd(const struct pp_ice *ice);

/*
 * The peer's ice-ufrag (4..256) and ice-pwd (22..256 ice-chars).  Applies
 * the candidates waiting for them.  PP_EINVAL for malformed values.
 */
int pp_ice_set_remote_credentials(struct pp_ice *ice, const char *ufrag,
    const char *pwd);

/*
 * One remote candidate, "candidate:..." or "a=candidate:...".  Returns 0,
 * PP_EINVAL (malformed; or not what we support: a host name or mDNS
 * ".local" address, not component 1, a transport other than UDP/TCP, an
 * unknown type, a byte outside printable ASCII; logged with the reason),
 * PP_ETOOBIG, PP_ECONFLICT (its "ufrag" names an earlier ICE generation),
 * or PP_ELIMIT (PP_ICE_MAX_REMOTE_CANDIDATES reached).  A refused candidate
 * leaves the agent as it was.
 */
int pp_ice_add_remote_candidate(struct pp_ice *ice, const char *candidate);

/*
 * The peer signalled end-of-candidates (a=end-of-candidates, an empty
 * trickled candidate, or an SDP without the trickle option: all of its
 * candidates came with it).  Lets checks conclude in FAILED at once.
 */
int pp_ice_remote_gathering_done(struct pp_ice *ice);

/*
 * Sends one datagram on the selected pair.  Returns the bytes sent, or
 * -ENOTCONN (no pair yet, or failed), -EAGAIN (the socket refused it, e.g.
 * a TURN-TCP connection is full; a datagram may be dropped), PP_EINVAL
 * (len 0) or PP_ETOOBIG (len > PP_ICE_MAX_DATAGRAM).
 */
int pp_ice_send(struct pp_ice *ice, const void *buf, size_t len);

/*
 * ICE restart (RFC 8445 section 9): new local credentials, remote
 * candidates and credentials forgotten, checks start over once the peer's
 * new credentials arrive.  Both sides call it (the one initiating and the
 * one answering).  After pp_ice_gather() it is a new generation gathered
 * from scratch (host addresses as they are now, new server-reflexive
 * mappings, new relay allocations), trickled through on_candidate and
 * on_gathering_done; the previous generation's selected pair keeps
 * carrying data until the new generation selects one, then it is released.
 * on_state then follows the new generation (gathering, connecting, ...).
 */
int pp_ice_restart(struct pp_ice *ice);

/*
 * The TURN servers for the next restart (credentials from signaling may
 * have been renewed since pp_ice_new()).  Copied.  PP_ECONFIG as
 * pp_ice_new() for a bad entry, or -ENOMEM.
 */
int pp_ice_set_turn(struct pp_ice *ice, const struct pp_ice_turn *turn,
    size_t nturn);

enum pp_ice_state pp_ice_get_state(const struct pp_ice *ice);
void pp_ice_get_status(const struct pp_ice *ice, struct pp_ice_status *st);
const char *pp_ice_state_name(enum pp_ice_state state);
/* "host", "srflx", "prflx", "relay"; never NULL. */
const char *pp_ice_cand_type_name(enum pp_ice_cand_type type);

#endif
