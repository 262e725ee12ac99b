/*
 * Signaling client: one WebSocket (wss://) connection to a peerpipe-server,
 * kept up by itself.  It reconnects with exponential backoff when the server
 * restarts or the network drops, pings to notice a dead path, and hands every
 * server message (already parsed and shape-checked) to on_message.  What to
 * send after a (re)connect — joining the room again — is the caller's, in
 * on_connected.
 *
 * Owned by the loop thread.  Callbacks run on it and may call pp_sigc_send().
 * Lifetime: pp_sigc_new(), ... pp_sigc_stop() (no callback runs after it),
 * let the loop run until lws has closed its handles, pp_sigc_free().
 */
#ifndef PP_SIGNAL_CLIENT_H
#define PP_SIGNAL_CLIENT_H

#include <jansson.h>
#include <uv.h>

struct pp_sigc;

struct pp_sigc_config {
	const char *url;		/* wss://HOST:PORT/PATH (ws:// for tests) */
	int insecure;			/* accept any server certificate */
	const char *ca_file;		/* else verify with this CA (NULL: system CAs) */
	unsigned reconnect_min_ms;	/* 0: 250 */
	unsigned reconnect_max_ms;	/* 0: 15000 */
	unsigned ping_secs;		/* 0: 20; hang up after twice as long */
};

struct pp_sigc_ops {
	void (*on_connected)(void *ctx);
	/* The connection went away; a reconnect is already scheduled. */
	void (*on_disconnected)(void *ctx, const char *why);
	/* {"type": T, "data": D}: type and data (an object, maybe empty) borrowed. */
	void (*on_message)(void *ctx, const char *type, json_t *data);
};

/* Starts connecting.  Copies cfg (and its strings) and ops.  0 or negative. */
int pp_sigc_new(uv_loop_t *loop, const struct pp_sigc_config *cfg,
    const struct pp_sigc_ops *ops, void *ctx, struct pp_sigc **out);

/*
 * Queues one message (serialised now; msg stays the caller's).  Returns 0,
 * PP_ECONFLICT while not connected, PP_ELIMIT when the queue is full.
 */
int pp_sigc_send(struct pp_sigc *c, const json_t *msg);

int pp_sigc_connected(const struct pp_sigc *c);

/*
 * The network may have changed under us (a peer-to-peer path just died):
 * pings the server now, and if no pong comes within timeout_ms, drops the
 * connection and reconnects (on_disconnected, then on_connected) instead
 * of waiting for the idle ping.  PP_ECONFLICT while not connected.
 */
int pp_sigc_check(struct pp_sigc *c, unsigned timeout_ms);

/* Closes the connection for good; no callback runs after this. NULL-safe. */
void pp_sigc_stop(struct pp_sigc *c);
/* After the loop has run once more following pp_sigc_stop(). NULL-safe. */
void pp_sigc_free(struct pp_sigc *c);

#endif
