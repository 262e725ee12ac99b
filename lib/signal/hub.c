/*
 * Rooms live in a chained hash table keyed by UUID (seeded hash: clients can
 * pick UUIDs with FAST_ROOM_EXACT, so they must not be able to pick
 * collisions).  A room holds an array of member connections in join order;
 * member counts are capped (max_members), so linear scans by name are bounded.
 */
#include "hub.h"
#include "msg.h"
#include "base/b64.h"
#include "base/error.h"
#include "base/log.h"
#include "base/random.h"
#include "identity/identity.h"
#include "turn.h"

#include <openssl/crypto.h>
#include <time.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct room {
	struct room *next;		/* hash chain */
	char uuid[PP_UUID_STRLEN + 1];
	char name[PP_SIG_NAME_MAX + 1];
	struct pp_sig_conn **members;	/* join order */
	unsigned nmembers, cap;
};

struct pp_sig_conn {
	void *ctx;
	struct room *room;		/* NULL when in no room */
	char user[PP_SIG_NAME_MAX + 1];
	/* v2 authentication */
	unsigned v2:1;			/* asked for a challenge: sees v2 fields */
	unsigned has_nonce:1;		/* a challenge is outstanding */
	unsigned authed:1;		/* joined with a verified signature */
	unsigned char nonce[PP_SIG_NONCE_LEN];
	unsigned char key[PP_SIG_KEY_LEN];
	/* new bindings this connection made in the current minute */
	int64_t bind_minute;
	unsigned nbound;
};

/*
 * A user name bound to a key in a room (by uuid) while the room has
 * members and PP_SIG_BINDING_GRACE seconds after it empties.  Hashed by the
 * uuid alone, so the bindings of a room are one chain (at most
 * PP_SIG_ROOM_MAX_BINDINGS of them, plus the other rooms' that share the
 * bucket); those of empty rooms are also on a list, oldest first, which
 * expiry and eviction take from the head.
 */
struct binding {
	struct binding *next;		/* hash chain */
	struct binding *eprev, *enext;	/* the empty list, when empty_since */
	int64_t empty_since;		/* 0: its room has members */
	char uuid[PP_UUID_STRLEN + 1];
	char name[PP_SIG_NAME_MAX + 1];
	unsigned char key[PP_SIG_KEY_LEN];
};
#define BINDING_BUCKETS 16384u

struct pp_sig_hub {
	struct pp_sig_limits limits;
	struct pp_sig_hub_ops ops;
	struct room **buckets;
	size_t nbuckets;		/* power of two */
	uint64_t seed;
	struct pp_sig_stats st;
	/* v2 TURN credentials; secret NULL when not configured */
	unsigned char *secret;
	size_t secret_len;
	char turn_uris[PP_SIG_TURN_MAX_URIS][PP_SIG_TURN_URI_MAX + 1];
	size_t nuris;
	unsigned turn_ttl;
	int64_t (*now)(void);
	/* v2 authentication */
	int require_auth;
	unsigned max_bindings;
	unsigned long nbindings;
	struct binding **bindings;	/* BINDING_BUCKETS, allocated on first use */
	struct binding *empty_head, *empty_tail;	/* oldest first */
	int64_t (*auth_now)(void);	/* NULL: time() */
};

static void bindings_room(struct pp_sig_hub *hub, const char *uuid, int live);


static size_t
bucket_of(const struct pp_sig_hub *hub, const char *uuid)
{
	uint64_t h = 1469598103934665603ull ^ hub->seed;

	for (const char *p = uuid; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return (size_t)(h & (hub->nbuckets - 1));
}

static struct room *
room_find(const struct pp_sig_hub *hub, const char *uuid)
{
	struct room *r = hub->buckets[bucket_of(hub, uuid)];

	while (r && strcmp(r->uuid, uuid) != 0)
		r = r->next;
	return r;
}

static void
rehash(struct pp_sig_hub *hub)
{
	size_t n = hub->nbuckets * 2, old = hub->nbuckets;
	struct room **b = calloc(n, sizeof(*b)), **ob = hub->buckets;

	if (b == NULL)
		return;		/* keep the current table: slower, still correct */
	hub->buckets = b;
	hub->nbuckets = n;
	for (size_t i = 0; i < old; i++) {
		while (ob[i]) {
			struct room *r = ob[i];
			size_t k = bucket_of(hub, r->uuid);

			ob[i] = r->next;
			r->next = b[k];
			b[k] = r;
		}
	}
	free(ob);
}

static struct room *
room_add(struct pp_sig_hub *hub, const char *uuid, const char *name)
{
	struct room *r = calloc(1, sizeof(*r));
	size_t k;

	if (r == NULL)
		return NULL;
	memcpy(r->uuid, uuid, sizeof(r->uuid));
	snprintf(r->name, sizeof(r->name), "%s", name);
	if (hub->st.rooms + 1 > hub->nbuckets)
		rehash(hub);
	k = bucket_of(hub, uuid);
	r->next = hub->buckets[k];
	hub->buckets[k] = r;
	hub->st.rooms++;
	bindings_room(hub, uuid, 1);
	return r;
}

static void
room_del(struct pp_sig_hub *hub, struct room *r)
{
	struct room **pp = &hub->buckets[bucket_of(hub, r->uuid)];

	while (*pp != r)
		pp = &(*pp)->next;
	*pp = r->next;
	hub->st.rooms--;
	bindings_room(hub, r->uuid, 0);
	free(r->members);
	free(r);
}

static struct pp_sig_conn *
member_find(const struct room *r, const char *user)
{
	for (unsigned i = 0; i < r->nmembers; i++)
		if (strcmp(r->members[i]->user, user) == 0)
			return r->members[i];
	return NULL;
}

static int64_t
auth_now(const struct pp_sig_hub *hub)
{
	return hub->auth_now ? hub->auth_now() : (int64_t)time(NULL);
}

static size_t
binding_bucket(const struct pp_sig_hub *hub, const char *uuid)
{
	uint64_t h = 1469598103934665603ull ^ (hub->seed * 31);

	for (const char *p = uuid; *p; p++) {
		h ^= (uint8_t)*p;
		h *= 1099511628211ull;
		h ^= h >> 29;
	}
	return (size_t)(h % BINDING_BUCKETS);
}

static struct binding *
binding_find(const struct pp_sig_hub *hub, const char *uuid, const char *name)
{
	struct binding *b;

	if (hub->bindings == NULL)
		return NULL;
	for (b = hub->bindings[binding_bucket(hub, uuid)]; b; b = b->next)
		if (strcmp(b->uuid, uuid) == 0 && strcmp(b->name, name) == 0)
			return b;
	return NULL;
}

/* How many names are bound in room uuid. */
static unsigned
bindings_in(const struct pp_sig_hub *hub, const char *uuid)
{
	unsigned n = 0;

	if (hub->bindings == NULL)
		return 0;
	for (const struct binding *b = hub->bindings[binding_bucket(hub, uuid)];
	    b; b = b->next)
		n += strcmp(b->uuid, uuid) == 0;
	return n;
}

static void
empty_unlink(struct pp_sig_hub *hub, struct binding *b)
{
	if (b->eprev)
		b->eprev->enext = b->enext;
	else
		hub->empty_head = b->enext;
	if (b->enext)
		b->enext->eprev = b->eprev;
	else
		hub->empty_tail = b->eprev;
	b->eprev = b->enext = NULL;
	b->empty_since = 0;
}

static void
binding_del(struct pp_sig_hub *hub, struct binding *b)
{
	struct binding **pp = &hub->bindings[binding_bucket(hub, b->uuid)];

	while (*pp != b)
		pp = &(*pp)->next;
	*pp = b->next;
	if (b->empty_since)
		empty_unlink(hub, b);
	hub->nbindings--;
	OPENSSL_cleanse(b, sizeof(*b));
	free(b);
}

/*
 * Room uuid got its first member (live) or lost its last: its bindings
 * leave the empty list, or join it at the tail (the clock only goes on,
 * so the list stays oldest first).
 */
static void
bindings_room(struct pp_sig_hub *hub, const char *uuid, int live)
{
	int64_t now = auth_now(hub);

	if (hub->bindings == NULL)
		return;
	if (now < 1)
		now = 1;	/* 0 means "not empty" */
	for (struct binding *b = hub->bindings[binding_bucket(hub, uuid)]; b;
	    b = b->next) {
		if (strcmp(b->uuid, uuid) != 0)
			continue;
		if (live && b->empty_since) {
			empty_unlink(hub, b);
		} else if (!live && b->empty_since == 0) {
			b->empty_since = now;
			b->eprev = hub->empty_tail;
			b->enext = NULL;
			if (hub->empty_tail)
				hub->empty_tail->enext = b;
			else
				hub->empty_head = b;
			hub->empty_tail = b;
		}
	}
}

/* Forgets the bindings of rooms empty for PP_SIG_BINDING_GRACE seconds. */
static void
bindings_expire(struct pp_sig_hub *hub)
{
	int64_t now = auth_now(hub);

	while (hub->empty_head &&
	    now - hub->empty_head->empty_since >= PP_SIG_BINDING_GRACE)
		binding_del(hub, hub->empty_head);
}

/* Whether c may make a new binding now: the table has (or can make) room,
 * the room is under its cap, and c under its rate. */
static int
binding_room_for(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const char *uuid)
{
	int64_t minute = auth_now(hub) / 60;

	if (c->bind_minute != minute) {
		c->bind_minute = minute;
		c->nbound = 0;
	}
	if (c->nbound >= PP_SIG_BINDINGS_PER_MINUTE) {
		pp_debug("signal", "a connection made %u new bindings this "
		    "minute: refused", c->nbound);
		return 0;
	}
	if (hub->nbindings >= hub->max_bindings && hub->empty_head == NULL)
		return 0;
	return bindings_in(hub, uuid) < PP_SIG_ROOM_MAX_BINDINGS;
}

static int
binding_add(struct pp_sig_hub *hub, struct pp_sig_conn *c, const char *uuid,
    const char *name, const unsigned char key[PP_SIG_KEY_LEN])
{
	struct binding *b;
	size_t k;

	if (!binding_room_for(hub, c, uuid))
		return PP_ELIMIT;
	if (hub->bindings == NULL &&
	    (hub->bindings = calloc(BINDING_BUCKETS, sizeof(*hub->bindings))) == NULL)
		return -ENOMEM;
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return -ENOMEM;
	/* Full: the oldest binding of an empty room makes way. */
	if (hub->nbindings >= hub->max_bindings) {
		pp_debug("signal", "%lu names bound: \"%s\" of empty room %s "
		    "forgotten early", hub->nbindings, hub->empty_head->name,
		    hub->empty_head->uuid);
		binding_del(hub, hub->empty_head);
	}
	snprintf(b->uuid, sizeof(b->uuid), "%s", uuid);
	snprintf(b->name, sizeof(b->name), "%s", name);
	memcpy(b->key, key, PP_SIG_KEY_LEN);
	k = binding_bucket(hub, uuid);
	b->next = hub->bindings[k];
	hub->bindings[k] = b;
	hub->nbindings++;
	c->nbound++;
	return 0;
}

/* Sends a built message; takes ownership of text. */
static int
send_text(struct pp_sig_hub *hub, struct pp_sig_conn *c, char *text, size_t len)
{
	int rc;

	if (text == NULL)
		return -ENOMEM;
	rc = hub->ops.send(c->ctx, text, len);
	free(text);
	return rc;
}

static int
send_msg(struct pp_sig_hub *hub, struct pp_sig_conn *c, const char *type,
    json_t *data)
{
	size_t len = 0;
	char *s = pp_sig_build(type, data, &len);

	return send_text(hub, c, s, len);
}

static int
reply_failed(struct pp_sig_hub *hub, struct pp_sig_conn *c, const char *reason,
    int code)
{
	size_t len = 0;
	char *s = pp_sig_build_failed(reason, &len);

	hub->st.failed++;
	(void)send_text(hub, c, s, len);
	return code;
}

/*
 * Tells every member but `except` about a member joining or leaving.  A v2
 * member also learns whether the joiner proved a key (key non-NULL):
 * "identity" in ROOM_NEW_MEMBER.  A v1 member never sees a v2 field.
 */
static void
broadcast(struct pp_sig_hub *hub, struct room *r, struct pp_sig_conn *except,
    const char *type, const char *name, const unsigned char *key)
{
	char text[PP_ID_PUB_STRLEN + 1];
	size_t len = 0, len2 = 0;
	char *s = pp_sig_build(type, json_pack("{s:s}", "name", name), &len);
	char *s2 = NULL;

	if (s == NULL)
		return;
	if (key) {
		pp_id_pub_format(key, text, sizeof(text));
		s2 = pp_sig_build(type, json_pack("{s:s, s:s}", "name", name,
		    "identity", text), &len2);
	}
	for (unsigned i = 0; i < r->nmembers; i++)
		if (r->members[i] != except)
			(void)hub->ops.send(r->members[i]->ctx,
			    s2 && r->members[i]->v2 ? s2 : s,
			    s2 && r->members[i]->v2 ? len2 : len);
	free(s);
	free(s2);
}

static int
member_add(struct room *r, struct pp_sig_conn *c, const char *user)
{
	if (r->nmembers == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 2;
		void *m = realloc(r->members, cap * sizeof(*r->members));

		if (m == NULL)
			return -ENOMEM;
		r->members = m;
		r->cap = cap;
	}
	r->members[r->nmembers++] = c;
	c->room = r;
	snprintf(c->user, sizeof(c->user), "%s", user);
	return 0;
}

/* Removes c from its room, tells the others, deletes the room when empty. */
static void
member_leave(struct pp_sig_hub *hub, struct pp_sig_conn *c)
{
	struct room *r = c->room;
	unsigned i;

	for (i = 0; i < r->nmembers && r->members[i] != c; i++)
		;
	memmove(&r->members[i], &r->members[i + 1],
	    (r->nmembers - i - 1) * sizeof(*r->members));
	r->nmembers--;
	hub->st.members--;
	c->room = NULL;
	if (r->nmembers == 0)
		room_del(hub, r);
	else
		broadcast(hub, r, c, "ROOM_MEMBER_LEFT", c->user, NULL);
	c->user[0] = '\0';
	c->authed = 0;
}

static int
do_create(struct pp_sig_hub *hub, struct pp_sig_conn *c, const char *uuid,
    const char *name, const char *user)
{
	struct room *r;

	if (hub->st.rooms >= hub->limits.max_rooms)
		return reply_failed(hub, c, PP_SIG_R_TOO_MANY_ROOMS, PP_ELIMIT);
	if ((r = room_add(hub, uuid, name)) == NULL ||
	    member_add(r, c, user) < 0) {
		if (r)
			room_del(hub, r);
		return reply_failed(hub, c, PP_SIG_R_INVALID, -ENOMEM);
	}
	hub->st.members++;
	send_msg(hub, c, "ROOM_CREATED", json_pack("{s:s}", "room_uuid", uuid));
	return 0;
}

static int
do_join(struct pp_sig_hub *hub, struct pp_sig_conn *c, struct room *r,
    const char *user)
{
	json_t *names, *data;

	if (member_find(r, user))
		return reply_failed(hub, c, PP_SIG_R_NAME_TAKEN, PP_ECONFLICT);
	if (r->nmembers >= hub->limits.max_members)
		return reply_failed(hub, c, PP_SIG_R_ROOM_FULL, PP_ELIMIT);
	if (member_add(r, c, user) < 0)
		return reply_failed(hub, c, PP_SIG_R_INVALID, -ENOMEM);
	hub->st.members++;
	names = json_array();
	for (unsigned i = 0; i < r->nmembers; i++)
		json_array_append_new(names, json_string(r->members[i]->user));
	data = json_pack("{s:o}", "room_members", names);
	if (data && c->v2) {
		/* v2: which members proved a key, and which */
		json_t *ids = json_object();
		char text[PP_ID_PUB_STRLEN + 1];

		for (unsigned i = 0; ids && i < r->nmembers; i++) {
			if (!r->members[i]->authed)
				continue;
			pp_id_pub_format(r->members[i]->key, text, sizeof(text));
			json_object_set_new(ids, r->members[i]->user,
			    json_string(text));
		}
		json_object_set_new(data, "identities", ids);
	}
	send_msg(hub, c, "ROOM_JOINED", data);
	broadcast(hub, r, c, "ROOM_NEW_MEMBER", user, c->authed ? c->key : NULL);
	return 0;
}

/*
 * LEAVE_ROOM and SDP_NEW_STATE name the sender's room and user; check that
 * they really are the sender's, in the order the v1 reasons imply.
 */
static int
check_membership(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const struct pp_sig_request *req)
{
	struct pp_sig_conn *owner;

	if (c->room == NULL)
		return reply_failed(hub, c, PP_SIG_R_CONFLICT, PP_ECONFLICT);
	if (strcmp(c->room->uuid, req->room_uuid) != 0 ||
	    strcmp(c->room->name, req->room_name) != 0)
		return reply_failed(hub, c, PP_SIG_R_BAD_ROOM, PP_ENOTFOUND);
	if ((owner = member_find(c->room, req->user_name)) == NULL)
		return reply_failed(hub, c, PP_SIG_R_BAD_USER, PP_ENOTFOUND);
	if (owner != c)
		return reply_failed(hub, c, PP_SIG_R_FORBIDDEN, PP_EDENIED);
	return 0;
}

static int
do_sdp(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const struct pp_sig_request *req)
{
	struct pp_sig_conn *target;
	json_t *data;
	int rc;

	if ((rc = check_membership(hub, c, req)) < 0)
		return rc;
	if ((target = member_find(c->room, req->target_user)) == NULL)
		return reply_failed(hub, c, PP_SIG_R_NO_TARGET, PP_ENOTFOUND);
	data = json_pack("{s:s, s:s, s:O}", "type",
	    pp_sig_sdp_type_name(req->sdp_type), "from", c->user,
	    "sdp_data", req->sdp_data);
	if (send_msg(hub, target, "SDP_STATE", data) < 0)
		return reply_failed(hub, c, PP_SIG_R_RELAY, PP_ELIMIT);
	hub->st.relayed++;
	send_msg(hub, c, "SUCCESS", NULL);
	return 0;
}

/*
 * v2: a member asks for TURN credentials.  Only members get them (in v1 the
 * room is all the admission there is); the TURN user is the member's name.
 */
static int
do_turn(struct pp_sig_hub *hub, struct pp_sig_conn *c)
{
	char username[PP_SIG_TURN_USER_MAX], password[PP_SIG_TURN_PASS_SIZE];
	json_t *uris, *data;
	int rc;

	if (c->room == NULL)
		return reply_failed(hub, c, PP_SIG_R_CONFLICT, PP_ECONFLICT);
	if (hub->secret == NULL)
		return reply_failed(hub, c, PP_SIG_R_NO_TURN, PP_ENOTFOUND);
	rc = pp_sig_turn_credential(hub->secret, hub->secret_len, c->user,
	    hub->now ? hub->now() : (int64_t)time(NULL), hub->turn_ttl, username,
	    password);
	if (rc < 0)
		return reply_failed(hub, c, PP_SIG_R_INVALID, rc);
	uris = json_array();
	for (size_t i = 0; uris && i < hub->nuris; i++)
		json_array_append_new(uris, json_string(hub->turn_uris[i]));
	data = json_pack("{s:s, s:s, s:i, s:o}", "username", username,
	    "password", password, "ttl", (int)hub->turn_ttl, "uris", uris);
	OPENSSL_cleanse(password, sizeof(password));
	if (data == NULL)
		return reply_failed(hub, c, PP_SIG_R_INVALID, -ENOMEM);
	send_msg(hub, c, "TURN_CREDENTIALS", data);
	return 0;
}

/* v2: a fresh challenge for the next signed join of this connection. */
static int
do_challenge(struct pp_sig_hub *hub, struct pp_sig_conn *c)
{
	char n[PP_B64URL_LEN(PP_SIG_NONCE_LEN) + 1];
	int rc;

	if ((rc = pp_random_bytes(c->nonce, sizeof(c->nonce))) < 0)
		return reply_failed(hub, c, PP_SIG_R_INVALID, rc);
	c->v2 = 1;
	c->has_nonce = 1;
	pp_b64url_encode(c->nonce, sizeof(c->nonce), n);
	send_msg(hub, c, "AUTH_CHALLENGE", json_pack("{s:s, s:i, s:b}", "nonce",
	    n, "pp_version", 2, "required", hub->require_auth != 0));
	return 0;
}

/*
 * Before a name goes into a room: a signed request must carry a valid
 * signature over this connection's challenge (used up either way), an
 * unsigned one is refused when the server requires authentication.
 */
static int
auth_check(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const struct pp_sig_request *req)
{
	char text[512];
	int n, ok;

	if (!req->has_id) {
		if (hub->require_auth) {
			pp_debug("signal", "unsigned join as \"%s\" refused: "
			    "authentication is required", req->user_name);
			return reply_failed(hub, c, PP_SIG_R_AUTH_REQUIRED,
			    PP_EAUTH);
		}
		return 0;
	}
	if (!c->has_nonce) {
		pp_debug("signal", "signed join as \"%s\" without a challenge",
		    req->user_name);
		return reply_failed(hub, c, PP_SIG_R_AUTH_FAILED, PP_EAUTH);
	}
	c->has_nonce = 0;
	n = pp_sig_auth_transcript(c->nonce, req->type == PP_SIG_NEW_ROOM ? "" :
	    req->room_uuid, req->room_name, req->user_name, text, sizeof(text));
	ok = n > 0 && pp_id_verify(req->id, text, (size_t)n, req->sig) == 0;
	OPENSSL_cleanse(c->nonce, sizeof(c->nonce));
	if (!ok) {
		pp_debug("signal", "signed join as \"%s\": bad signature",
		    req->user_name);
		return reply_failed(hub, c, PP_SIG_R_AUTH_FAILED, PP_EAUTH);
	}
	return 0;
}

/* The name's binding in room uuid: another key, or none, is refused. */
static int
binding_check(struct pp_sig_hub *hub, struct pp_sig_conn *c, const char *uuid,
    const struct pp_sig_request *req)
{
	const struct binding *b = binding_find(hub, uuid, req->user_name);

	if (b == NULL) {
		if (req->has_id && !binding_room_for(hub, c, uuid))
			return reply_failed(hub, c, PP_SIG_R_TOO_MANY_KEYS,
			    PP_ELIMIT);
		return 0;
	}
	if (req->has_id && CRYPTO_memcmp(b->key, req->id, PP_SIG_KEY_LEN) == 0)
		return 0;
	pp_debug("signal", "room %s: \"%s\" is bound to another key; %s join "
	    "refused", uuid, req->user_name, req->has_id ? "a signed" :
	    "an unsigned");
	return reply_failed(hub, c, PP_SIG_R_NAME_BOUND, PP_EDENIED);
}

/* After a successful join: who this member proved to be, bound if new. */
static void
auth_joined(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const struct pp_sig_request *req)
{
	if (!req->has_id)
		return;
	c->authed = 1;
	memcpy(c->key, req->id, PP_SIG_KEY_LEN);
	if (binding_find(hub, c->room->uuid, c->user) == NULL &&
	    binding_add(hub, c, c->room->uuid, c->user, c->key) < 0)
		pp_warn("signal", "room %s: cannot bind \"%s\" to its key",
		    c->room->uuid, c->user);
}

static int
dispatch(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const struct pp_sig_request *req)
{
	char uuid[PP_UUID_STRLEN + 1];
	struct room *r;
	int rc;

	bindings_expire(hub);
	switch (req->type) {
	case PP_SIG_NEW_ROOM:
		if (c->room)
			return reply_failed(hub, c, PP_SIG_R_CONFLICT, PP_ECONFLICT);
		if ((rc = auth_check(hub, c, req)) < 0)
			return rc;
		do {
			if ((rc = pp_uuid4(uuid)) < 0)
				return reply_failed(hub, c, PP_SIG_R_INVALID, rc);
		} while (room_find(hub, uuid) || binding_find(hub, uuid,
		    req->user_name));
		if ((rc = binding_check(hub, c, uuid, req)) < 0 ||
		    (rc = do_create(hub, c, uuid, req->room_name,
		    req->user_name)) < 0)
			return rc;
		auth_joined(hub, c, req);
		return 0;

	case PP_SIG_JOIN_ROOM:
	case PP_SIG_FAST_ROOM_EXACT:
		if (c->room)
			return reply_failed(hub, c, PP_SIG_R_CONFLICT, PP_ECONFLICT);
		if ((rc = auth_check(hub, c, req)) < 0)
			return rc;
		r = room_find(hub, req->room_uuid);
		if (r == NULL && req->type == PP_SIG_FAST_ROOM_EXACT) {
			if ((rc = binding_check(hub, c, req->room_uuid, req)) < 0 ||
			    (rc = do_create(hub, c, req->room_uuid,
			    req->room_name, req->user_name)) < 0)
				return rc;
			auth_joined(hub, c, req);
			return 0;
		}
		if (r == NULL || strcmp(r->name, req->room_name) != 0)
			return reply_failed(hub, c, PP_SIG_R_BAD_ROOM, PP_ENOTFOUND);
		if ((rc = binding_check(hub, c, r->uuid, req)) < 0)
			return rc;
		/* do_join announces the member: who it proved to be first */
		if (req->has_id) {
			c->authed = 1;
			memcpy(c->key, req->id, PP_SIG_KEY_LEN);
		}
		if ((rc = do_join(hub, c, r, req->user_name)) < 0) {
			c->authed = 0;
			return rc;
		}
		auth_joined(hub, c, req);
		return 0;

	case PP_SIG_AUTH_CHALLENGE:
		return do_challenge(hub, c);

	case PP_SIG_LEAVE_ROOM:
		if ((rc = check_membership(hub, c, req)) < 0)
			return rc;
		member_leave(hub, c);
		send_msg(hub, c, "SUCCESS", NULL);
		return 0;

	case PP_SIG_SDP_NEW_STATE:
		return do_sdp(hub, c, req);

	case PP_SIG_TURN_CREDENTIALS:
		return do_turn(hub, c);
	}
	return reply_failed(hub, c, PP_SIG_R_UNKNOWN, PP_EINVAL);
}

int
pp_sig_hub_input(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const char *buf, size_t len)
{
	struct pp_sig_request req;
	const char *reason;
	char err[160];
	int rc;

	hub->st.requests++;
	rc = pp_sig_parse(buf, len, hub->limits.max_message, &req, &reason, err,
	    sizeof(err));
	if (rc < 0) {
		pp_debug("signal", "refused a frame of %zu bytes: %s", len, err);
		return reply_failed(hub, c, rc == PP_ETOOBIG ? PP_SIG_R_TOO_LARGE
		    : reason, rc);
	}
	rc = dispatch(hub, c, &req);
	pp_sig_request_fini(&req);
	return rc;
}

void
pp_sig_hub_refuse(struct pp_sig_hub *hub, struct pp_sig_conn *c,
    const char *reason)
{
	hub->st.requests++;
	(void)reply_failed(hub, c, reason, PP_ELIMIT);
}

struct pp_sig_hub *
pp_sig_hub_new(const struct pp_sig_limits *limits,
    const struct pp_sig_hub_ops *ops)
{
	struct pp_sig_hub *hub = calloc(1, sizeof(*hub));

	if (hub == NULL)
		return NULL;
	hub->limits = *limits;
	hub->ops = *ops;
	hub->nbuckets = 64;
	hub->max_bindings = PP_SIG_DEFAULT_MAX_BINDINGS;
	hub->buckets = calloc(hub->nbuckets, sizeof(*hub->buckets));
	if (hub->buckets == NULL || pp_random_bytes(&hub->seed,
	    sizeof(hub->seed)) < 0) {
		free(hub->buckets);
		free(hub);
		return NULL;
	}
	return hub;
}

static void
turn_clear(struct pp_sig_hub *hub)
{
	if (hub->secret) {
		OPENSSL_cleanse(hub->secret, hub->secret_len);
		free(hub->secret);
	}
	hub->secret = NULL;
	hub->secret_len = 0;
	hub->nuris = 0;
}

int
pp_sig_hub_set_turn(struct pp_sig_hub *hub, const struct pp_sig_turn_config *cfg)
{
	char u[PP_SIG_TURN_USER_MAX], p[PP_SIG_TURN_PASS_SIZE];
	unsigned char *secret;
	int rc;

	if (cfg->nuris == 0 || cfg->nuris > PP_SIG_TURN_MAX_URIS)
		return PP_EINVAL;
	for (size_t i = 0; i < cfg->nuris; i++)
		if (!pp_sig_turn_uri_valid(cfg->uris[i]))
			return PP_EINVAL;
	/* a trial run checks the secret's length and the ttl */
	if ((rc = pp_sig_turn_credential(cfg->secret, cfg->secret_len, "check",
	    0, cfg->ttl, u, p)) < 0)
		return rc;
	OPENSSL_cleanse(p, sizeof(p));
	if ((secret = malloc(cfg->secret_len)) == NULL)
		return -ENOMEM;
	memcpy(secret, cfg->secret, cfg->secret_len);
	turn_clear(hub);
	hub->secret = secret;
	hub->secret_len = cfg->secret_len;
	for (size_t i = 0; i < cfg->nuris; i++)
		snprintf(hub->turn_uris[i], sizeof(hub->turn_uris[i]), "%s",
		    cfg->uris[i]);
	hub->nuris = cfg->nuris;
	hub->turn_ttl = cfg->ttl;
	hub->now = cfg->now;
	return 0;
}

void
pp_sig_hub_set_auth(struct pp_sig_hub *hub, const struct pp_sig_auth_config *cfg)
{
	hub->require_auth = cfg->require != 0;
	hub->max_bindings = cfg->max_bindings ? cfg->max_bindings :
	    PP_SIG_DEFAULT_MAX_BINDINGS;
	hub->auth_now = cfg->now;
}

unsigned long
pp_sig_hub_bindings(const struct pp_sig_hub *hub)
{
	return hub->nbindings;
}

void
pp_sig_hub_free(struct pp_sig_hub *hub)
{
	if (hub == NULL)
		return;
	turn_clear(hub);
	for (size_t i = 0; hub->bindings && i < BINDING_BUCKETS; i++) {
		while (hub->bindings[i]) {
			struct binding *b = hub->bindings[i];

			hub->bindings[i] = b->next;
			OPENSSL_cleanse(b, sizeof(*b));
			free(b);
		}
	}
	free(hub->bindings);
	/* Rooms only exist while they have members, and members are conns. */
	free(hub->buckets);
	free(hub);
}

struct pp_sig_conn *
pp_sig_conn_new(struct pp_sig_hub *hub, void *conn_ctx)
{
	struct pp_sig_conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->ctx = conn_ctx;
	hub->st.conns++;
	return c;
}

void
pp_sig_conn_free(struct pp_sig_hub *hub, struct pp_sig_conn *c)
{
	if (c == NULL)
		return;
	if (c->room)
		member_leave(hub, c);
	hub->st.conns--;
	free(c);
}

void
pp_sig_hub_stats(const struct pp_sig_hub *hub, struct pp_sig_stats *st)
{
	*st = hub->st;
}

const char *
pp_sig_conn_user(const struct pp_sig_conn *c)
{
	return c->room ? c->user : NULL;
}
