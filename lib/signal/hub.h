/*
 * The signaling hub: rooms, members and relay of protocol v1, and the v2
 * additions (TURN_CREDENTIALS, signed joins with name bindings), as a state
 * machine with no network underneath.  The transport (server/wss.c, or a test)
 * attaches one pp_sig_conn per WebSocket, feeds it every text frame with
 * pp_sig_hub_input(), and delivers what the hub hands to ops->send.
 *
 * Owned by one thread (the server's loop thread); nothing here locks.
 * ops->send is called synchronously from inside pp_sig_hub_input() and
 * pp_sig_conn_free(); it must queue, never re-enter the hub.
 */
#ifndef PP_SIGNAL_HUB_H
#define PP_SIGNAL_HUB_H

#include <stddef.h>
#include <stdint.h>

struct pp_sig_hub;
struct pp_sig_conn;

struct pp_sig_limits {
	unsigned max_rooms;	/* rooms on this server */
	unsigned max_members;	/* members in one room */
	size_t max_message;	/* bytes in one client frame */
};

#define PP_SIG_DEFAULT_MAX_ROOMS	100000u
#define PP_SIG_DEFAULT_MAX_MEMBERS	64u
#define PP_SIG_DEFAULT_MAX_MESSAGE	(64u * 1024u)

struct pp_sig_hub_ops {
	/*
	 * Queue one text message for the connection whose transport context is
	 * conn_ctx.  Borrows text.  Returns 0, or a negative code if it cannot
	 * be delivered (the connection's queue is full or it is closing).
	 */
	int (*send)(void *conn_ctx, const char *text, size_t len);
};

struct pp_sig_stats {
	unsigned long conns, rooms, members;
	unsigned long long requests, failed, relayed;
};

/* Copies limits and ops.  NULL on allocation failure. */
struct pp_sig_hub *pp_sig_hub_new(const struct pp_sig_limits *limits,
    const struct pp_sig_hub_ops *ops);
/* Frees the hub; all its connections must have been freed first. */
void pp_sig_hub_free(struct pp_sig_hub *hub);

/* A new connection with the transport's context; NULL on allocation failure. */
struct pp_sig_conn *pp_sig_conn_new(struct pp_sig_hub *hub, void *conn_ctx);
/* Disconnect: counts as leaving its room (others get ROOM_MEMBER_LEFT). NULL-safe. */
void pp_sig_conn_free(struct pp_sig_hub *hub, struct pp_sig_conn *conn);

/*
 * One text frame from the connection.  Always answers it with exactly one
 * reply through ops->send.  Returns 0 if the request succeeded, or the
 * negative code of why it was refused (for logs and counters only).
 */
int pp_sig_hub_input(struct pp_sig_hub *hub, struct pp_sig_conn *conn,
    const char *buf, size_t len);

/* Answers a frame the transport refused before parsing (too large, rate). */
void pp_sig_hub_refuse(struct pp_sig_hub *hub, struct pp_sig_conn *conn,
    const char *reason);

void pp_sig_hub_stats(const struct pp_sig_hub *hub, struct pp_sig_stats *st);

/*
 * v2 TURN_CREDENTIALS (docs/signaling.md): what a member of a room is given.
 * Without pp_sig_hub_set_turn() the hub answers FAILED PP_SIG_R_NO_TURN.
 */
struct pp_sig_turn_config {
	const void *secret;		/* shared with coturn's static-auth-secret */
	size_t secret_len;		/* 1..PP_SIG_TURN_SECRET_MAX */
	const char *const *uris;	/* turn:/turns: URIs handed out as given */
	size_t nuris;			/* 1..PP_SIG_TURN_MAX_URIS */
	unsigned ttl;			/* seconds the credential is valid */
	/* The wall clock (unix seconds); NULL: time().  Tests set a fake. */
	int64_t (*now)(void);
};

/*
 * Copies cfg (the secret into memory wiped when the hub is freed or the
 * config replaced).  Returns 0, PP_EINVAL for a config that
 * pp_sig_turn_credential() or pp_sig_turn_uri_valid() would refuse, or
 * -ENOMEM.
 */
int pp_sig_hub_set_turn(struct pp_sig_hub *hub,
    const struct pp_sig_turn_config *cfg);

/*
 * v2 authentication (docs/signaling.md): a client that asks AUTH_CHALLENGE
 * gets a nonce and may sign its join with its identity key.  The first key
 * that signs for a user name in a room binds the name to it while the room
 * has members and PP_SIG_BINDING_GRACE seconds after it empties: the name
 * is refused to any other key and to unsigned (v1) joins.  At most
 * max_bindings names are bound; when the table is full the oldest binding
 * of an empty room makes way for a new one.  One connection makes at most
 * PP_SIG_BINDINGS_PER_MINUTE new bindings a minute, one room holds at most
 * PP_SIG_ROOM_MAX_BINDINGS.  require: refuse unsigned joins.
 */
struct pp_sig_auth_config {
	int require;
	unsigned max_bindings;		/* 0: PP_SIG_DEFAULT_MAX_BINDINGS */
	/* The clock for the grace period and the rate (unix seconds); NULL:
	 * time().  Tests set a fake. */
	int64_t (*now)(void);
};
#define PP_SIG_DEFAULT_MAX_BINDINGS	100000u
#define PP_SIG_BINDING_GRACE		600	/* seconds after a room empties */
#define PP_SIG_BINDINGS_PER_MINUTE	16u	/* new ones, per connection */
#define PP_SIG_ROOM_MAX_BINDINGS	256u	/* names bound in one room */
void pp_sig_hub_set_auth(struct pp_sig_hub *hub,
    const struct pp_sig_auth_config *cfg);
/* How many names are bound to keys. */
unsigned long pp_sig_hub_bindings(const struct pp_sig_hub *hub);

/* The room and user name of a connection, or NULL when it is in no room. */
const char *pp_sig_conn_user(const struct pp_sig_conn *conn);

#endif
