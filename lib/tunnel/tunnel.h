/*
 * The tunnel over one peer connection (../shared/spec/tunnel-v1.md plus our
 * version 2, docs/tunnel.md): the control channel and its INIT exchange,
 * BEGIN_PROXY handling on both sides, and the forwarded TCP connections and
 * UDP sessions, each on its own proxy-<uuid> data channel.
 *
 *   provider: the ports we offer come from cfg->services; a valid request
 *             opens proxy-<uuid>, connects to the service, sends START.
 *   consumer: for each port the peer offers we listen (cfg->listen_host);
 *             an accepted connection asks BEGIN_PROXY and forwards once the
 *             channel opened and START arrived.
 *
 * Backpressure: a socket is read only while its channel's buffered amount
 * is under PP_TUN_HIGH_WATER, and peers that speak v2 "flow" tell each
 * other to pause a channel whose local socket is not draining.  Memory per
 * forwarded connection is bounded (docs/tunnel.md, "Memory").
 *
 * Thread: the loop thread of the peer connection.  Ownership: the caller
 * owns the pp_tun and the pp_pc; it forwards the pc's on_channel and
 * on_state to pp_tun_on_channel()/pp_tun_on_pc_state() and frees the
 * pp_tun BEFORE the pp_pc.  Callbacks never run from inside a pp_tun_ call.
 */
#ifndef PP_TUNNEL_TUNNEL_H
#define PP_TUNNEL_TUNNEL_H

#include "identity/identity.h"
#include "rtc/pc.h"
#include "tunnel/proto.h"
#include "tunnel/tap.h"

#include <stdint.h>
#include <uv.h>

#define PP_TUN_HIGH_WATER	(256 * 1024)	/* stop reading above */
#define PP_TUN_LOW_WATER	(64 * 1024)	/* read again at or below */
#define PP_TUN_READ_SIZE	(16 * 1024)	/* one socket read, one message (v1) */
#define PP_TUN_READ_SIZE_V2	(60 * 1024)	/* the same between v2 peers */
#define PP_TUN_WRITE_HIGH	(256 * 1024)	/* local socket backlog: PAUSE */
#define PP_TUN_WRITE_HARD	(8 * 1024 * 1024)	/* v1 peer, no flow: close */
#define PP_TUN_OPEN_TIMEOUT_MS	10000		/* BEGIN_PROXY -> channel open */
#define PP_TUN_START_TIMEOUT_MS	10000		/* channel open -> START */
#define PP_TUN_UDP_IDLE_MS	60000		/* UDP session expiry */
#define PP_TUN_MAX_PROXIES	4096		/* per peer connection */
#define PP_TUN_UDP_SOCKBUF	(4 * 1024 * 1024)	/* UDP socket buffers */

struct pp_tun;

/* A service we offer: (port, proto) as peers see it, where it really is. */
struct pp_tun_service {
	const char *name;
	uint16_t port;
	enum pp_tun_proto proto;
	const char *host;		/* literal IP address */
	uint16_t target_port;
};

/* A fixed listener for one of the peer's ports (config [forward]). */
struct pp_tun_forward {
	uint16_t port;
	enum pp_tun_proto proto;
	const char *listen_host;
	uint16_t listen_port;
};

struct pp_tun_config {
	uv_loop_t *loop;
	const char *local_name;		/* ours, checked against IL_user */
	const char *peer_name;
	int offerer;			/* we open the control channel */
	/* What we ask for in INIT (ports are filled from services). */
	enum pp_tun_codec codec;
	int adaptive;
	int unreliable;
	int extended;
	const struct pp_tun_service *services;
	size_t nservices;
	/* Consumer side: listen for the peer's ports here; NULL: do not. */
	const char *listen_host;
	/* Fixed listeners for some of the peer's ports, in addition. */
	const struct pp_tun_forward *forwards;
	size_t nforwards;
	/* Send START to a v1 consumer this long after the service connected,
	 * so deployed consumers that attach late see it; 0: 50 ms. */
	unsigned v1_start_delay_ms;
	/* v2 end-to-end authentication (docs/identity.md); NULL identity: we
	 * neither prove who we are nor check the peer. */
	const struct pp_identity *identity;	/* borrowed; outlives the tunnel */
	const char *room_uuid;
	const char *local_fp;		/* our DTLS certificate, "AB:CD:..." */
	unsigned auth_timeout_ms;	/* INIT -> AUTH; 0: 10000 */
	/* Gateway IPS evidence (tap.h): keep the last tap_bytes of each
	 * forwarded connection to a service, both directions; 0: no tap.
	 * tap_budget: what all the taps of the agent may take together
	 * (borrowed; outlives the tunnel, the taps hold references); NULL:
	 * no shared limit. */
	size_t tap_bytes;
	struct pp_tap_budget *tap_budget;
	/* An invite to prove to this peer (a gateway): our AUTH carries its
	 * id and HMAC-SHA256(secret, context || transcript).  NULL: none. */
	const uint8_t *invite_id;	/* PP_TUN_INVITE_ID_LEN */
	const uint8_t *invite_secret;	/* PP_TUN_INVITE_MAC_LEN (32) bytes */
};

struct pp_tun_ops {
	/* Both INITs are in: settings fixed; listeners are up. */
	void (*on_ready)(void *ctx, const struct pp_tun_settings *settings);
	/* The peer broke the protocol (bad or doubled INIT, a control message
	 * that is not a JSON object with a type, IL_user not ours): tear the
	 * peer connection down.  reason names what happened. */
	void (*on_fatal)(void *ctx, const char *reason);
	/* One line per listener, e.g. "peer gw port 5432/TCP -> 127.0.1.2:5432". */
	void (*on_listen)(void *ctx, uint16_t port, enum pp_tun_proto proto,
	    const char *addr);
	/*
	 * Who the peer is, before any service traffic: pub is its identity key,
	 * verified end to end (it signed this very DTLS session), or NULL for a
	 * peer without one (v1, or no identity on either side).  Return 0 to
	 * admit it, or a negative code with a sentence in why to refuse it (the
	 * connection is then torn down).  NULL: everyone is admitted.
	 */
	int (*on_identity)(void *ctx, const uint8_t *pub, char *why, size_t whylen);
	/*
	 * May the peer use our port/proto?  Asked for what we offer (INIT and,
	 * once authenticated, PORTS) and for every BEGIN_PROXY.  NULL: yes.
	 */
	int (*allow)(void *ctx, uint16_t port, enum pp_tun_proto proto);
	/* Gateway IPS hooks, all optional.  serving: may service connections
	 * be opened now (fail-closed while the IPS is not ready)?  1 or 0.
	 * service_socket: the socket about to connect to a service (mark it);
	 * negative refuses.  on_refused: a BEGIN_PROXY we refused (Sentinel). */
	int (*serving)(void *ctx);
	int (*service_socket)(void *ctx, int fd);
	void (*on_refused)(void *ctx, uint16_t port, enum pp_tun_proto proto,
	    const char *reason);
};

int pp_tun_new(struct pp_pc *pc, const struct pp_tun_config *cfg,
    const struct pp_tun_ops *ops, void *ctx, struct pp_tun **out);
/* Closes listeners, sockets and channels.  NULL-safe.  Memory of handles
 * still closing is returned once the loop has run their callbacks. */
void pp_tun_free(struct pp_tun *t);

/*
 * The answers of ops->allow may have changed (policy reload): offers the
 * peer the new list (v2, authenticated) and closes forwarded connections
 * it may no longer use.  Returns how many were closed.
 */
unsigned pp_tun_policy_changed(struct pp_tun *t);
/*
 * Closes at once the forwarded connection whose socket to the service has
 * this local port and goes to svc_ip:svc_port (the IPS saw an attack on
 * it).  1 if there was one.  tap (may be NULL): receives that connection's
 * evidence tap (the caller frees it), or NULL when it had none.
 */
int pp_tun_cut(struct pp_tun *t, enum pp_tun_proto proto, uint16_t local_port,
    const char *svc_ip, uint16_t svc_port, struct pp_tap **tap);
/* The same match without closing anything: 1 if the connection is ours
 * (to name the peer of an alert that the reaction policy only records). */
int pp_tun_owns(const struct pp_tun *t, enum pp_tun_proto proto,
    uint16_t local_port, const char *svc_ip, uint16_t svc_port);

/* The peer's identity key once verified (NULL before, or without one). */
const uint8_t *pp_tun_peer_identity(const struct pp_tun *t);

/*
 * The invite proof the peer's verified AUTH carried (from on_identity on):
 * 0 with its id, mac and the transcript it covers (borrowed, valid while
 * t lives), or PP_ENOTFOUND.  Checking it is the caller's.
 */
int pp_tun_peer_invite(const struct pp_tun *t, const uint8_t **id,
    const uint8_t **mac, const char **transcript, size_t *len);

/* From the pc's callbacks. */
void pp_tun_on_channel(struct pp_tun *t, struct pp_dc *dc);
void pp_tun_on_pc_state(struct pp_tun *t, enum pp_pc_state state);

/*
 * v2 liveness probe: sends PING on the control channel.  PP_ECONFLICT when
 * the tunnel is not ready or the peer speaks only v1 (it would ignore it).
 * pp_tun_ping_answered() is 1 once the PONG for the latest PING came.
 */
int pp_tun_ping(struct pp_tun *t);
int pp_tun_ping_answered(const struct pp_tun *t);

struct pp_tun_stats {
	int ready;
	struct pp_tun_settings settings;
	struct pp_tun_port peer_ports[PP_TUN_MAX_PORTS];	/* the peer offers */
	size_t npeer_ports;
	unsigned proxies;		/* open forwarded connections/sessions */
	uint64_t proxies_total;
	uint64_t bytes_in, bytes_out;	/* payload from / to the peer */
	uint64_t wire_in, wire_out;	/* as framed on the channels */
	uint64_t refused;		/* BEGIN_PROXY we refused */
	uint64_t udp_dropped;		/* datagrams dropped while backed up */
};
void pp_tun_get_stats(const struct pp_tun *t, struct pp_tun_stats *st);

/* The listeners, as "ADDR:PORT" strings with their port/proto (for status). */
struct pp_tun_listener_info {
	uint16_t port;
	enum pp_tun_proto proto;
	char addr[64];
};
size_t pp_tun_listeners(const struct pp_tun *t, struct pp_tun_listener_info *out,
    size_t max);

#endif
