/*
 * Internals shared by tunnel.c (control channel, listeners) and proxy.c
 * (forwarded connections).  Not part of the API.
 */
#ifndef PP_TUNNEL_TUN_INT_H
#define PP_TUNNEL_TUN_INT_H

#include "tunnel/frame.h"
#include "tunnel/tunnel.h"
#include "tunnel/udpbatch.h"

#include <netinet/in.h>
#include <sys/socket.h>

struct proxy;

struct listener {
	struct pp_tun *t;
	struct listener *next;
	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_udp_t udp;
	} u;
	int live;			/* u is initialised */
	enum pp_tun_proto proto;
	uint16_t port;			/* the peer's port it stands for */
	char addr[64];			/* where we listen, "IP:PORT" */
	uint8_t rbuf[PP_UDPB_DGRAM_MAX];	/* UDP receive buffer */
};

enum px_role {
	PX_CONSUMER,		/* our local client; the peer provides */
	PX_PROVIDER,		/* the peer's client; we connect the service */
};

struct proxy {
	struct pp_tun *t;		/* NULL once the tunnel is gone */
	struct proxy *next, *prev;
	char uuid[PP_TUN_UUID_LEN + 1];
	enum px_role role;
	enum pp_tun_proto proto;
	uint16_t port;			/* the port as offered */
	struct pp_dc *dc;
	struct pp_codec *codec;

	union {
		uv_handle_t h;
		uv_stream_t s;
		uv_tcp_t tcp;
		uv_udp_t udp;		/* provider: connected to the service */
	} u;
	int sock_live;			/* u is initialised and not closing */
	uv_timer_t timer;		/* open/START timeouts, START delay, UDP idle */
	uv_timer_t flush;		/* UDP: batch flush after 2 ms idle */
	int handles;			/* uv handles not yet closed */
	uv_shutdown_t shutdown_req;
	uv_connect_t connect_req;
	const struct pp_tun_service *svc;	/* provider */
	uint16_t local_port;		/* provider: our end of the service socket */
	struct pp_tap *tap;		/* provider: evidence for the IPS, or NULL */

	/* consumer UDP: the session's client and the listener it came to */
	struct listener *ul;
	struct sockaddr_storage client;
	struct pp_udpb *batch;

	uint8_t *pending;		/* one encoded message the channel refused */
	size_t pending_len;
	int pending_eot;		/* send EOT once pending has gone */

	unsigned opened : 1;		/* channel open */
	unsigned started : 1;		/* consumer: START seen; provider: sent */
	unsigned connected : 1;		/* provider: service connected */
	unsigned start_polls;		/* provider, v1: waits for the channel's ACK */
	unsigned reading : 1;
	unsigned eof_local : 1;		/* our socket hit EOF */
	unsigned eot_sent : 1;
	unsigned eot_recv : 1;
	unsigned shut_wr : 1;		/* shutdown requested */
	unsigned shut_done : 1;
	unsigned linked : 1;		/* in t->proxies */
	unsigned pause_want : 1;	/* v2 flow: our socket is backed up */
	unsigned peer_paused : 1;	/* v2 flow: the peer asked us to wait */
	unsigned pause_sent : 1;
	unsigned closing : 1;
	unsigned blocked : 1;		/* waits for send queue room */

	uint64_t bytes_in, bytes_out;
	uint64_t wire_out;
	uint64_t udp_dropped;
	/* adaptive: the channel's drain rate, sampled as messages go out */
	uint64_t rate_ms, rate_wire;
	size_t rate_buffered;
	double rate_bps;
};

struct pp_tun {
	uv_loop_t *loop;
	struct pp_pc *pc;
	struct pp_tun_ops ops;
	void *ctx;

	char local_name[PP_TUN_NAME_MAX + 1];
	char peer_name[PP_TUN_NAME_MAX + 1];
	int offerer;
	struct pp_tun_service *services;
	size_t nservices;
	struct pp_tun_forward *forwards;
	size_t nforwards;
	char *listen_host;
	unsigned v1_start_delay_ms;
	size_t tap_bytes;
	struct pp_tap_budget *tap_budget;	/* borrowed */

	struct pp_dc *ctl;
	int sent_init, got_init, ready, dead;
	/* v2 authentication */
	const struct pp_identity *identity;
	char *room_uuid, *local_fp;
	int auth_sent, authenticated;
	/* invites (docs/identity.md): the proof we add to our AUTH, and the
	 * one the peer added to its verified AUTH with the transcript */
	int has_invite, peer_has_invite;
	uint8_t invite_id[PP_TUN_INVITE_ID_LEN];
	uint8_t invite_secret[PP_TUN_INVITE_MAC_LEN];
	uint8_t peer_invite_id[PP_TUN_INVITE_ID_LEN];
	uint8_t peer_invite_mac[PP_TUN_INVITE_MAC_LEN];
	char peer_invite_text[1024];
	size_t peer_invite_len;
	unsigned auth_timeout_ms;
	uint32_t ping_seq, pong_seq;
	struct pp_tun_init ours, theirs;
	struct pp_tun_settings settings;

	struct proxy *proxies;
	unsigned nproxies;
	struct listener *listeners;

	uint8_t *enc;			/* one encoded message */
	size_t enc_cap;
	uint8_t *dec;			/* one decoded message */
	uint8_t *rbuf;			/* one socket read */

	uv_timer_t retry;		/* retries proxies the send queue refused */
	uv_timer_t auth_timer;		/* INIT -> AUTH bound */
	int freeing;

	struct pp_tun_stats st;
};

/* proxy.c */
int pp__px_accept_tcp(struct pp_tun *t, struct listener *l);
void pp__px_udp_datagram(struct pp_tun *t, struct listener *l,
    const struct sockaddr *from, const uint8_t *data, size_t len);
void pp__px_begin(struct pp_tun *t, const struct pp_tun_begin *b);
void pp__px_result(struct pp_tun *t, int failed, const struct pp_tun_result *r);
int pp__px_channel(struct pp_tun *t, struct pp_dc *dc, const char *uuid);
void pp__px_retry_blocked(struct pp_tun *t);
void pp__px_detach_all(struct pp_tun *t);
unsigned pp__px_enforce(struct pp_tun *t);
struct proxy *pp__px_find(struct pp_tun *t, const char *uuid);

/* tunnel.c */
void pp__udp_sockbuf(uv_udp_t *u);
int pp__tun_ctl_send(struct pp_tun *t, char *json);	/* takes json */
const struct pp_tun_service *pp__tun_service(const struct pp_tun *t,
    uint16_t port, enum pp_tun_proto proto);
int pp__tun_allowed(const struct pp_tun *t, uint16_t port,
    enum pp_tun_proto proto);

#endif
