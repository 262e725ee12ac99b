/*
 * The signaling server's transport: WebSocket over TLS with libwebsockets on
 * the process's libuv loop, feeding the protocol hub (lib/signal/hub.h).
 *
 * Everything runs on the loop thread.  Each connection has a bounded outbound
 * queue; while it is above a high-water mark the server stops reading that
 * connection (its own flood slows only itself), and a connection whose queue
 * overflows is closed.  Frames are capped, requests are rate-limited per
 * connection, and idle connections are pinged and dropped when silent.
 */
#ifndef PP_SERVER_WSS_H
#define PP_SERVER_WSS_H

#include <uv.h>

#include "signal/hub.h"

struct pp_wss_config {
	const char *listen_addr;	/* NULL or "0.0.0.0": all interfaces */
	int port;			/* 0: ephemeral */
	const char *cert_file, *key_file;
	struct pp_sig_limits limits;
	unsigned max_clients;
	unsigned rate, burst;		/* requests/s per connection, bucket size */
	unsigned handshake_timeout;	/* seconds to finish TLS + HTTP upgrade */
	unsigned idle_timeout;		/* seconds idle before a ping; as long again for the pong */
	size_t queue_limit;		/* bytes queued towards one connection */
	/* v2 TURN credentials; NULL: requests for them get FAILED */
	const struct pp_sig_turn_config *turn;
	/* v2 authentication (signed joins); NULL: defaults (optional) */
	const struct pp_sig_auth_config *auth;
};

struct pp_wss;

/* Starts listening.  Returns 0 and *out, or a negative code (logged). */
int pp_wss_start(uv_loop_t *loop, const struct pp_wss_config *cfg,
    struct pp_wss **out);
/* The port actually bound (for --listen ADDR:0). */
int pp_wss_port(const struct pp_wss *w);
/*
 * Graceful stop: tells every client the server is going away (close 1001),
 * waits for them up to a short bound, then frees everything and calls done.
 */
void pp_wss_stop(struct pp_wss *w, void (*done)(void *arg), void *arg);
/* After the loop has run dry following pp_wss_stop(): frees w.  NULL-safe. */
void pp_wss_free(struct pp_wss *w);

#endif
