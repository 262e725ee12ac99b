/*
 * lib/signal/hub.c: the v1 room state machine, driven through an in-memory
 * transport.  Each step sends one request from one client and checks every
 * message each client received because of it, exactly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/b64.h"
#include "base/error.h"
#include "identity/identity.h"
#include "signal/hub.h"
#include "signal/msg.h"

#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NCLIENTS 4
#define U "123e4567-e89b-42d3-a456-426614174000"
#define U2 "223e4567-e89b-42d3-a456-426614174000"

struct client {
	struct pp_sig_conn *conn;
	char got[2048];		/* messages since the last step, '|'-separated */
	int refuse;		/* make send fail, as a full queue would */
};

static struct client clients[NCLIENTS];

static int
fake_send(void *ctx, const char *text, size_t len)
{
	struct client *c = ctx;

	if (c->refuse)
		return PP_ELIMIT;
	if (c->got[0])
		strncat(c->got, "|", sizeof(c->got) - strlen(c->got) - 1);
	strncat(c->got, text, len < sizeof(c->got) - strlen(c->got) - 1 ? len
	    : sizeof(c->got) - strlen(c->got) - 1);
	return 0;
}

static const struct pp_sig_hub_ops ops = { fake_send };

static struct pp_sig_hub *
setup_hub(unsigned max_rooms, unsigned max_members)
{
	struct pp_sig_limits lim = { max_rooms, max_members, 65536 };
	struct pp_sig_hub *hub = pp_sig_hub_new(&lim, &ops);

	assert_non_null(hub);
	memset(clients, 0, sizeof(clients));
	for (int i = 0; i < NCLIENTS; i++)
		clients[i].conn = pp_sig_conn_new(hub, &clients[i]);
	return hub;
}

static void
teardown_hub(struct pp_sig_hub *hub)
{
	struct pp_sig_stats st;

	for (int i = 0; i < NCLIENTS; i++)
		pp_sig_conn_free(hub, clients[i].conn);
	pp_sig_hub_stats(hub, &st);
	assert_int_equal(st.conns, 0);
	assert_int_equal(st.rooms, 0);
	assert_int_equal(st.members, 0);
	pp_sig_hub_free(hub);
}

struct step {
	int from;
	const char *req;
	const char *want[NCLIENTS];	/* NULL = nothing */
};

static void
run_steps(struct pp_sig_hub *hub, const struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (int k = 0; k < NCLIENTS; k++)
			clients[k].got[0] = '\0';
		pp_sig_hub_input(hub, clients[steps[i].from].conn, steps[i].req,
		    strlen(steps[i].req));
		for (int k = 0; k < NCLIENTS; k++) {
			const char *want = steps[i].want[k] ? steps[i].want[k] : "";

			if (strcmp(clients[k].got, want) != 0)
				fail_msg("step %zu (%s): client %d got\n  %s\nwant\n  %s",
				    i, steps[i].req, k, clients[k].got, want);
		}
	}
}

#define JOIN(t, u, n, user) "{\"type\":\"" t "\",\"room_uuid\":\"" u \
	"\",\"room_name\":\"" n "\",\"user_name\":\"" user "\"}"
#define FAILED(r) "{\"type\":\"FAILED\",\"data\":{\"reason\":\"" r "\"}}"
#define OK "{\"type\":\"SUCCESS\"}"

static void
test_room_lifecycle(void **state)
{
	static const struct step steps[] = {
		{ 0, JOIN("FAST_ROOM_EXACT", U, "room1", "alice"),
		  { "{\"type\":\"ROOM_CREATED\",\"data\":{\"room_uuid\":\"" U "\"}}" } },
		{ 0, JOIN("JOIN_ROOM", U, "room1", "alice"), { FAILED("Conflict") } },
		{ 1, JOIN("JOIN_ROOM", U, "roomX", "bobby"),
		  { NULL, FAILED("Invalid room name/UUID") } },
		{ 1, JOIN("JOIN_ROOM", U2, "room1", "bobby"),
		  { NULL, FAILED("Invalid room name/UUID") } },
		{ 1, JOIN("JOIN_ROOM", U, "room1", "alice"),
		  { NULL, FAILED("User with this usename already in the room") } },
		{ 1, JOIN("JOIN_ROOM", U, "room1", "bobby"),
		  { "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"bobby\"}}",
		    "{\"type\":\"ROOM_JOINED\",\"data\":{\"room_members\":[\"alice\",\"bobby\"]}}" } },
		{ 2, JOIN("FAST_ROOM_EXACT", U, "room1", "carol"),
		  { "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"carol\"}}",
		    "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"carol\"}}",
		    "{\"type\":\"ROOM_JOINED\",\"data\":{\"room_members\":[\"alice\",\"bobby\",\"carol\"]}}" } },
		/* leave: membership checks in the v1 order */
		{ 3, JOIN("LEAVE_ROOM", U, "room1", "alice"), { NULL, NULL, NULL, FAILED("Conflict") } },
		{ 1, JOIN("LEAVE_ROOM", U2, "room1", "bobby"), { NULL, FAILED("Invalid room name/UUID") } },
		{ 1, JOIN("LEAVE_ROOM", U, "room2", "bobby"), { NULL, FAILED("Invalid room name/UUID") } },
		{ 1, JOIN("LEAVE_ROOM", U, "room1", "dave1"), { NULL, FAILED("Invalid username") } },
		{ 1, JOIN("LEAVE_ROOM", U, "room1", "alice"), { NULL, FAILED("Forbidden") } },
		{ 1, JOIN("LEAVE_ROOM", U, "room1", "bobby"),
		  { "{\"type\":\"ROOM_MEMBER_LEFT\",\"data\":{\"name\":\"bobby\"}}", OK,
		    "{\"type\":\"ROOM_MEMBER_LEFT\",\"data\":{\"name\":\"bobby\"}}" } },
		/* a name freed by leaving can be taken again */
		{ 3, JOIN("JOIN_ROOM", U, "room1", "bobby"),
		  { "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"bobby\"}}", NULL,
		    "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"bobby\"}}",
		    "{\"type\":\"ROOM_JOINED\",\"data\":{\"room_members\":[\"alice\",\"carol\",\"bobby\"]}}" } },
	};
	struct pp_sig_hub *hub = setup_hub(10, 10);

	(void)state;
	run_steps(hub, steps, sizeof(steps) / sizeof(steps[0]));
	/* Disconnect counts as leaving. */
	clients[0].got[0] = clients[2].got[0] = '\0';
	pp_sig_conn_free(hub, clients[3].conn);
	clients[3].conn = NULL;
	assert_string_equal(clients[0].got,
	    "{\"type\":\"ROOM_MEMBER_LEFT\",\"data\":{\"name\":\"bobby\"}}");
	assert_string_equal(clients[2].got, clients[0].got);
	teardown_hub(hub);
}

#define SDPREQ(user, target, t, d) "{\"type\":\"SDP_NEW_STATE\",\"room_uuid\":\"" U \
	"\",\"room_name\":\"room1\",\"user_name\":\"" user "\",\"target_user\":\"" \
	target "\",\"sdp_type\":\"" t "\",\"sdp_data\":" d "}"

static void
test_relay(void **state)
{
	static const struct step steps[] = {
		{ 0, SDPREQ("alice", "bobby", "offer", "\"v=0\""), { FAILED("Conflict") } },
		{ 0, JOIN("FAST_ROOM_EXACT", U, "room1", "alice"),
		  { "{\"type\":\"ROOM_CREATED\",\"data\":{\"room_uuid\":\"" U "\"}}" } },
		{ 1, JOIN("JOIN_ROOM", U, "room1", "bobby"),
		  { "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"bobby\"}}",
		    "{\"type\":\"ROOM_JOINED\",\"data\":{\"room_members\":[\"alice\",\"bobby\"]}}" } },
		{ 0, SDPREQ("alice", "bobby", "offer", "\"v=0\\r\\n\""),
		  { OK, "{\"type\":\"SDP_STATE\",\"data\":{\"type\":\"offer\",\"from\":\"alice\",\"sdp_data\":\"v=0\\r\\n\"}}" } },
		{ 1, SDPREQ("bobby", "alice", "candidate", "{\"candidate\":\"candidate:1 1 udp 5 10.0.0.1 9 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"),
		  { "{\"type\":\"SDP_STATE\",\"data\":{\"type\":\"candidate\",\"from\":\"bobby\",\"sdp_data\":{\"candidate\":\"candidate:1 1 udp 5 10.0.0.1 9 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}}}", OK } },
		{ 0, SDPREQ("alice", "carol", "answer", "\"v=0\""), { FAILED("Not found requested user") } },
		{ 0, SDPREQ("bobby", "alice", "answer", "\"v=0\""), { FAILED("Forbidden") } },
		{ 0, SDPREQ("zelda", "bobby", "answer", "\"v=0\""), { FAILED("Invalid username") } },
		{ 0, SDPREQ("alice", "bobby", "answer", "{}"), { FAILED("Invalid data") } },
		{ 0, "{\"type\":\"PING\"}", { FAILED("Unknown message") } },
		{ 0, "garbage", { FAILED("Invalid data") } },
	};
	struct pp_sig_hub *hub = setup_hub(10, 10);

	(void)state;
	run_steps(hub, steps, sizeof(steps) / sizeof(steps[0]));
	/* The target cannot take more: the sender hears the relay failed. */
	clients[1].refuse = 1;
	clients[0].got[0] = '\0';
	pp_sig_hub_input(hub, clients[0].conn, SDPREQ("alice", "bobby", "offer",
	    "\"v=0\""), strlen(SDPREQ("alice", "bobby", "offer", "\"v=0\"")));
	assert_string_equal(clients[0].got, FAILED("Failed to transfer offer"));
	teardown_hub(hub);
}

static void
test_limits(void **state)
{
	static const struct step steps[] = {
		{ 0, JOIN("FAST_ROOM_EXACT", U, "room1", "alice"),
		  { "{\"type\":\"ROOM_CREATED\",\"data\":{\"room_uuid\":\"" U "\"}}" } },
		{ 1, JOIN("FAST_ROOM_EXACT", U2, "room2", "alice"),
		  { NULL, FAILED("Too many rooms") } },
		{ 1, "{\"type\":\"NEW_ROOM\",\"room_name\":\"room3\",\"user_name\":\"bobby\"}",
		  { NULL, FAILED("Too many rooms") } },
		{ 1, JOIN("JOIN_ROOM", U, "room1", "bobby"),
		  { "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"bobby\"}}",
		    "{\"type\":\"ROOM_JOINED\",\"data\":{\"room_members\":[\"alice\",\"bobby\"]}}" } },
		{ 2, JOIN("JOIN_ROOM", U, "room1", "carol"),
		  { NULL, NULL, FAILED("Room is full") } },
	};
	struct pp_sig_hub *hub = setup_hub(1, 2);

	(void)state;
	run_steps(hub, steps, sizeof(steps) / sizeof(steps[0]));
	teardown_hub(hub);
}

static void
test_new_room_uuid(void **state)
{
	const char *req = "{\"type\":\"NEW_ROOM\",\"room_name\":\"room1\",\"user_name\":\"alice\"}";
	struct pp_sig_hub *hub = setup_hub(10, 10);
	char join[256];
	const char *p;

	(void)state;
	pp_sig_hub_input(hub, clients[0].conn, req, strlen(req));
	p = strstr(clients[0].got, "\"room_uuid\":\"");
	assert_non_null(p);
	p += strlen("\"room_uuid\":\"");
	snprintf(join, sizeof(join), "{\"type\":\"JOIN_ROOM\",\"room_uuid\":\"%.36s\","
	    "\"room_name\":\"room1\",\"user_name\":\"bobby\"}", p);
	pp_sig_hub_input(hub, clients[1].conn, join, strlen(join));
	assert_string_equal(clients[1].got,
	    "{\"type\":\"ROOM_JOINED\",\"data\":{\"room_members\":[\"alice\",\"bobby\"]}}");
	/* Many rooms: the table grows and every room stays reachable. */
	for (int i = 2; i < NCLIENTS; i++)
		pp_sig_hub_input(hub, clients[i].conn, req, strlen(req));
	teardown_hub(hub);
}

static void
test_many_rooms(void **state)
{
	struct pp_sig_limits lim = { 100000, 4, 65536 };
	struct pp_sig_hub *hub = pp_sig_hub_new(&lim, &ops);
	static struct client many[2000];
	struct pp_sig_stats st;
	char req[256];

	(void)state;
	for (int i = 0; i < 2000; i++) {
		many[i].conn = pp_sig_conn_new(hub, &many[i]);
		snprintf(req, sizeof(req), "{\"type\":\"FAST_ROOM_EXACT\",\"room_uuid\":"
		    "\"%08x-e89b-42d3-a456-426614174000\",\"room_name\":\"room%d\","
		    "\"user_name\":\"user%d\"}", i / 2, i / 2, i);
		many[i].got[0] = '\0';
		pp_sig_hub_input(hub, many[i].conn, req, strlen(req));
		assert_non_null(strstr(many[i].got, i % 2 ? "ROOM_JOINED" : "ROOM_CREATED"));
	}
	pp_sig_hub_stats(hub, &st);
	assert_int_equal(st.rooms, 1000);
	assert_int_equal(st.members, 2000);
	for (int i = 0; i < 2000; i++)
		pp_sig_conn_free(hub, many[i].conn);
	pp_sig_hub_stats(hub, &st);
	assert_int_equal(st.rooms, 0);
	pp_sig_hub_free(hub);
}

static int64_t
fake_now(void)
{
	return 1700000000;
}

/* v2 TURN_CREDENTIALS: members only, answered FAILED without a secret. */
static void
test_turn_credentials(void **state)
{
	static const char *const uris[] = { "turn:198.51.100.3:3478",
	    "turn:198.51.100.3:3478?transport=tcp" };
	static const char *const bad_uris[] = { "turn:nowhere" };
	struct pp_sig_turn_config tc = { "s3cret", 6, uris, 2, 86400, fake_now };
	static const struct step without[] = {
		{ 0, "{\"type\":\"TURN_CREDENTIALS\"}", { FAILED("Conflict") } },
		{ 0, JOIN("FAST_ROOM_EXACT", U, "room1", "alice"),
		  { "{\"type\":\"ROOM_CREATED\",\"data\":{\"room_uuid\":\"" U "\"}}" } },
		{ 0, "{\"type\":\"TURN_CREDENTIALS\"}",
		  { FAILED("TURN credentials are not configured on this server") } },
	};
	static const struct step with[] = {
		{ 1, "{\"type\":\"TURN_CREDENTIALS\"}", { NULL, FAILED("Conflict") } },
		{ 0, "{\"type\":\"TURN_CREDENTIALS\"}",
		  { "{\"type\":\"TURN_CREDENTIALS\",\"data\":{\"username\":"
		    "\"1700086400:alice\",\"password\":\"HJX0XIkrCiQCuU88Z0oeXj+QW60=\","
		    "\"ttl\":86400,\"uris\":[\"turn:198.51.100.3:3478\","
		    "\"turn:198.51.100.3:3478?transport=tcp\"]}}" } },
	};
	struct pp_sig_hub *hub = setup_hub(10, 10);

	(void)state;
	run_steps(hub, without, sizeof(without) / sizeof(without[0]));
	tc.uris = bad_uris;
	tc.nuris = 1;
	assert_int_equal(pp_sig_hub_set_turn(hub, &tc), PP_EINVAL);
	tc.uris = uris;
	tc.nuris = 2;
	tc.ttl = 10;
	assert_int_equal(pp_sig_hub_set_turn(hub, &tc), PP_EINVAL);
	tc.ttl = 86400;
	tc.secret_len = 0;
	assert_int_equal(pp_sig_hub_set_turn(hub, &tc), PP_EINVAL);
	tc.secret_len = 6;
	assert_int_equal(pp_sig_hub_set_turn(hub, &tc), 0);
	run_steps(hub, with, sizeof(with) / sizeof(with[0]));
	teardown_hub(hub);
}

/* ---- v2 authentication: signed joins and name bindings ---- */

/* Asks client k for a challenge; returns its nonce. */
static void
challenge(struct pp_sig_hub *hub, int k, unsigned char nonce[PP_SIG_NONCE_LEN])
{
	static const char req[] = "{\"type\":\"AUTH_CHALLENGE\"}";
	json_t *v, *n;

	clients[k].got[0] = '\0';
	assert_int_equal(pp_sig_hub_input(hub, clients[k].conn, req,
	    strlen(req)), 0);
	v = json_loads(clients[k].got, 0, NULL);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "type")),
	    "AUTH_CHALLENGE");
	assert_int_equal(json_integer_value(json_object_get(json_object_get(v,
	    "data"), "pp_version")), 2);
	n = json_object_get(json_object_get(v, "data"), "nonce");
	assert_int_equal(pp_b64url_decode(json_string_value(n),
	    json_string_length(n), nonce, PP_SIG_NONCE_LEN), 0);
	json_decref(v);
}

/* A join signed by id over nonce (and over sign_room if not NULL). */
static void
signed_join(char *out, size_t cap, const char *type, const char *uuid,
    const char *room, const char *user, const struct pp_identity *id,
    const unsigned char nonce[PP_SIG_NONCE_LEN], const char *sign_room)
{
	char text[512], key[PP_ID_PUB_STRLEN + 1];
	char sig[PP_B64URL_LEN(PP_SIG_SIG_LEN) + 1];
	uint8_t raw[PP_SIG_SIG_LEN];
	int n;

	n = pp_sig_auth_transcript(nonce, uuid, sign_room ? sign_room : room,
	    user, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal(pp_id_sign(id, text, (size_t)n, raw), 0);
	pp_b64url_encode(raw, sizeof(raw), sig);
	pp_id_public_text(id, key, sizeof(key));
	snprintf(out, cap, "{\"type\":\"%s\",\"room_uuid\":\"%s\","
	    "\"room_name\":\"%s\",\"user_name\":\"%s\",\"pp_id\":\"%s\","
	    "\"pp_sig\":\"%s\"}", type, uuid, room, user, key, sig);
}

/* Sends req from client k; returns the reply's type (or FAILED reason). */
static const char *
send_req(struct pp_sig_hub *hub, int k, const char *req)
{
	static char what[256];
	json_t *v, *d;

	for (int i = 0; i < NCLIENTS; i++)
		clients[i].got[0] = '\0';
	(void)pp_sig_hub_input(hub, clients[k].conn, req, strlen(req));
	v = json_loads(clients[k].got, JSON_DISABLE_EOF_CHECK, NULL);
	assert_non_null(v);
	d = json_object_get(v, "data");
	snprintf(what, sizeof(what), "%s", strcmp(json_string_value(
	    json_object_get(v, "type")), "FAILED") == 0 ?
	    json_string_value(json_object_get(d, "reason")) :
	    json_string_value(json_object_get(v, "type")));
	json_decref(v);
	return what;
}

static void
test_auth_bindings(void **state)
{
	struct pp_identity *k1 = NULL, *k2 = NULL;
	unsigned char nonce[PP_SIG_NONCE_LEN], old[PP_SIG_NONCE_LEN];
	char req[1024], saved[1024], text1[PP_ID_PUB_STRLEN + 1],
	    text2[PP_ID_PUB_STRLEN + 1], want[512];
	struct pp_sig_hub *hub = setup_hub(10, 10);
	const char *leave = "{\"type\":\"LEAVE_ROOM\",\"room_uuid\":\"" U
	    "\",\"room_name\":\"room1\",\"user_name\":\"alice\"}";

	(void)state;
	assert_int_equal(pp_id_generate(&k1), 0);
	assert_int_equal(pp_id_generate(&k2), 0);
	pp_id_public_text(k1, text1, sizeof(text1));
	pp_id_public_text(k2, text2, sizeof(text2));

	/* alice signs with k1: in, and the name is bound to k1 */
	challenge(hub, 0, nonce);
	signed_join(req, sizeof(req), "FAST_ROOM_EXACT", U, "room1", "alice",
	    k1, nonce, NULL);
	snprintf(saved, sizeof(saved), "%s", req);
	memcpy(old, nonce, sizeof(old));
	assert_string_equal(send_req(hub, 0, req), "ROOM_CREATED");
	assert_int_equal(pp_sig_hub_bindings(hub), 1);

	/* the binding outlives the room: alice leaves, the room is gone */
	assert_string_equal(send_req(hub, 0, leave), "SUCCESS");

	/* a v1 (unsigned) join cannot take the bound name */
	assert_string_equal(send_req(hub, 1, JOIN("FAST_ROOM_EXACT", U, "room1",
	    "alice")), PP_SIG_R_NAME_BOUND);
	/* nor a signed one with another key */
	challenge(hub, 1, nonce);
	signed_join(req, sizeof(req), "FAST_ROOM_EXACT", U, "room1", "alice",
	    k2, nonce, NULL);
	assert_string_equal(send_req(hub, 1, req), PP_SIG_R_NAME_BOUND);
	/* replay: the old signed join without a challenge, then with a new
	 * one (its signature is over the old nonce) */
	assert_string_equal(send_req(hub, 1, saved), PP_SIG_R_AUTH_FAILED);
	challenge(hub, 1, nonce);
	assert_memory_not_equal(nonce, old, sizeof(old));
	assert_string_equal(send_req(hub, 1, saved), PP_SIG_R_AUTH_FAILED);
	/* a signature over another room name */
	challenge(hub, 1, nonce);
	signed_join(req, sizeof(req), "FAST_ROOM_EXACT", U, "room1", "bobby",
	    k2, nonce, "roomX");
	assert_string_equal(send_req(hub, 1, req), PP_SIG_R_AUTH_FAILED);
	/* a challenge is good for one join only */
	challenge(hub, 1, nonce);
	signed_join(req, sizeof(req), "JOIN_ROOM", U, "room1", "bobby", k2,
	    nonce, NULL);
	assert_string_equal(send_req(hub, 1, req), PP_SIG_R_BAD_ROOM);
	signed_join(req, sizeof(req), "FAST_ROOM_EXACT", U, "room1", "bobby",
	    k2, nonce, NULL);
	assert_string_equal(send_req(hub, 1, req), PP_SIG_R_AUTH_FAILED);

	/* bobby with k2 creates the room again; alice with k1 rejoins and,
	 * being v2, is told who proved which key */
	challenge(hub, 1, nonce);
	signed_join(req, sizeof(req), "FAST_ROOM_EXACT", U, "room1", "bobby",
	    k2, nonce, NULL);
	assert_string_equal(send_req(hub, 1, req), "ROOM_CREATED");
	challenge(hub, 0, nonce);
	signed_join(req, sizeof(req), "JOIN_ROOM", U, "room1", "alice", k1,
	    nonce, NULL);
	assert_string_equal(send_req(hub, 0, req), "ROOM_JOINED");
	snprintf(want, sizeof(want), "{\"type\":\"ROOM_JOINED\",\"data\":"
	    "{\"room_members\":[\"bobby\",\"alice\"],\"identities\":"
	    "{\"bobby\":\"%s\",\"alice\":\"%s\"}}}", text2, text1);
	assert_string_equal(clients[0].got, want);
	snprintf(want, sizeof(want), "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":"
	    "{\"name\":\"alice\",\"identity\":\"%s\"}}", text1);
	assert_string_equal(clients[1].got, want);
	assert_int_equal(pp_sig_hub_bindings(hub), 2);

	/* a v1 member sees only v1 messages */
	assert_string_equal(send_req(hub, 2, JOIN("JOIN_ROOM", U, "room1",
	    "carol")), "ROOM_JOINED");
	assert_string_equal(clients[2].got, "{\"type\":\"ROOM_JOINED\","
	    "\"data\":{\"room_members\":[\"bobby\",\"alice\",\"carol\"]}}");
	assert_string_equal(clients[0].got,
	    "{\"type\":\"ROOM_NEW_MEMBER\",\"data\":{\"name\":\"carol\"}}");

	/* --require-auth: unsigned joins are refused */
	pp_sig_hub_set_auth(hub, &(struct pp_sig_auth_config){ 1, 2, NULL });
	assert_string_equal(send_req(hub, 3, JOIN("JOIN_ROOM", U, "room1",
	    "dave1")), PP_SIG_R_AUTH_REQUIRED);
	/* and at most max_bindings names are bound */
	challenge(hub, 3, nonce);
	signed_join(req, sizeof(req), "JOIN_ROOM", U, "room1", "dave1", k2,
	    nonce, NULL);
	assert_string_equal(send_req(hub, 3, req), PP_SIG_R_TOO_MANY_KEYS);

	pp_id_free(k1);
	pp_id_free(k2);
	teardown_hub(hub);
}

static int64_t fake_t;

static int64_t
fake_clock(void)
{
	return fake_t;
}

/* A signed FAST_ROOM_EXACT by client k into uuid as user: the reply. */
static const char *
bind_in(struct pp_sig_hub *hub, int k, const char *uuid, const char *user,
    const struct pp_identity *id)
{
	unsigned char nonce[PP_SIG_NONCE_LEN];
	char req[1024];

	challenge(hub, k, nonce);
	signed_join(req, sizeof(req), "FAST_ROOM_EXACT", uuid, "room1", user, id,
	    nonce, NULL);
	return send_req(hub, k, req);
}

static const char *
leave_room(struct pp_sig_hub *hub, int k, const char *uuid, const char *user)
{
	char req[512];

	snprintf(req, sizeof(req), "{\"type\":\"LEAVE_ROOM\",\"room_uuid\":"
	    "\"%s\",\"room_name\":\"room1\",\"user_name\":\"%s\"}", uuid, user);
	return send_req(hub, k, req);
}

static const char *
unsigned_join(struct pp_sig_hub *hub, int k, const char *uuid,
    const char *user)
{
	char req[512];

	snprintf(req, sizeof(req), "{\"type\":\"FAST_ROOM_EXACT\",\"room_uuid\":"
	    "\"%s\",\"room_name\":\"room1\",\"user_name\":\"%s\"}", uuid, user);
	return send_req(hub, k, req);
}

static void
uuid_n(char out[PP_UUID_STRLEN + 1], unsigned n)
{
	snprintf(out, PP_UUID_STRLEN + 1, "%08x-e89b-42d3-a456-426614174000", n);
}

/*
 * Bindings live while their room has members and PP_SIG_BINDING_GRACE
 * seconds after; a full table makes way with the oldest binding of an empty
 * room; a connection binds at most PP_SIG_BINDINGS_PER_MINUTE new names a
 * minute.  (A client filling the table with joins to random rooms used to
 * lock every new signed join out for the server's life.)
 */
static void
test_binding_lifetime(void **state)
{
	struct pp_sig_hub *hub = setup_hub(100, 10);
	struct pp_identity *k1 = NULL, *k2 = NULL;
	char u[PP_UUID_STRLEN + 1], u2[PP_UUID_STRLEN + 1];
	unsigned i;

	(void)state;
	assert_int_equal(pp_id_generate(&k1), 0);
	assert_int_equal(pp_id_generate(&k2), 0);
	fake_t = 1000000;
	pp_sig_hub_set_auth(hub, &(struct pp_sig_auth_config){ 0, 4, fake_clock });

	/* the grace period: bound until it ends, free after */
	assert_string_equal(bind_in(hub, 0, U, "alice", k1), "ROOM_CREATED");
	assert_string_equal(leave_room(hub, 0, U, "alice"), "SUCCESS");
	fake_t += PP_SIG_BINDING_GRACE - 1;
	assert_string_equal(unsigned_join(hub, 1, U, "alice"),
	    PP_SIG_R_NAME_BOUND);
	assert_int_equal(pp_sig_hub_bindings(hub), 1);
	fake_t += 1;
	assert_string_equal(unsigned_join(hub, 1, U, "alice"), "ROOM_CREATED");
	assert_int_equal(pp_sig_hub_bindings(hub), 0);
	assert_string_equal(leave_room(hub, 1, U, "alice"), "SUCCESS");

	/* a room with members keeps its bindings however long it lives, and
	 * one that fills again within the grace period keeps them too */
	assert_string_equal(bind_in(hub, 0, U, "alice", k1), "ROOM_CREATED");
	assert_string_equal(bind_in(hub, 1, U, "bobby", k2), "ROOM_JOINED");
	assert_string_equal(leave_room(hub, 1, U, "bobby"), "SUCCESS");
	fake_t += 10 * PP_SIG_BINDING_GRACE;
	assert_string_equal(bind_in(hub, 1, U, "bobby", k1),
	    PP_SIG_R_NAME_BOUND);
	assert_string_equal(leave_room(hub, 0, U, "alice"), "SUCCESS");
	fake_t += PP_SIG_BINDING_GRACE / 2;
	assert_string_equal(bind_in(hub, 0, U, "alice", k1), "ROOM_CREATED");
	fake_t += PP_SIG_BINDING_GRACE;
	assert_string_equal(unsigned_join(hub, 1, U, "bobby"),
	    PP_SIG_R_NAME_BOUND);
	assert_int_equal(pp_sig_hub_bindings(hub), 2);

	/* client 2 fills the table (max 4) with rooms it leaves at once */
	for (i = 1; i <= 2; i++) {
		uuid_n(u, i);
		assert_string_equal(bind_in(hub, 2, u, "spam1", k2),
		    "ROOM_CREATED");
		assert_string_equal(leave_room(hub, 2, u, "spam1"), "SUCCESS");
		fake_t += 1;
	}
	assert_int_equal(pp_sig_hub_bindings(hub), 4);
	/* a new signed join still gets in: the oldest empty room's binding
	 * makes way, the newer one and the live room's stay */
	uuid_n(u2, 100);
	assert_string_equal(bind_in(hub, 3, u2, "carol", k1), "ROOM_CREATED");
	assert_int_equal(pp_sig_hub_bindings(hub), 4);
	uuid_n(u, 1);
	assert_string_equal(unsigned_join(hub, 2, u, "spam1"), "ROOM_CREATED");
	assert_string_equal(leave_room(hub, 2, u, "spam1"), "SUCCESS");
	uuid_n(u, 2);
	assert_string_equal(unsigned_join(hub, 2, u, "spam1"),
	    PP_SIG_R_NAME_BOUND);
	assert_string_equal(unsigned_join(hub, 2, U, "bobby"),
	    PP_SIG_R_NAME_BOUND);
	/* only live rooms' bindings left: full, and said so */
	uuid_n(u, 2);
	assert_string_equal(bind_in(hub, 2, u, "spam1", k2), "ROOM_CREATED");
	uuid_n(u, 3);
	assert_string_equal(bind_in(hub, 1, u, "dave1", k2),
	    PP_SIG_R_TOO_MANY_KEYS);
	/* (the members go: their connections close) */
	pp_sig_conn_free(hub, clients[2].conn);
	clients[2].conn = pp_sig_conn_new(hub, &clients[2]);
	pp_sig_conn_free(hub, clients[3].conn);
	clients[3].conn = pp_sig_conn_new(hub, &clients[3]);
	pp_sig_conn_free(hub, clients[0].conn);
	clients[0].conn = pp_sig_conn_new(hub, &clients[0]);

	/* one connection: PP_SIG_BINDINGS_PER_MINUTE new names a minute */
	pp_sig_hub_set_auth(hub, &(struct pp_sig_auth_config){ 0, 1000,
	    fake_clock });
	fake_t = (fake_t / 60 + 1) * 60;
	for (i = 0; i < PP_SIG_BINDINGS_PER_MINUTE; i++) {
		uuid_n(u, 1000 + i);
		assert_string_equal(bind_in(hub, 2, u, "spam2", k2),
		    "ROOM_CREATED");
		assert_string_equal(leave_room(hub, 2, u, "spam2"), "SUCCESS");
	}
	uuid_n(u, 2000);
	assert_string_equal(bind_in(hub, 2, u, "spam2", k2),
	    PP_SIG_R_TOO_MANY_KEYS);
	/* a name already bound to the key is no new binding */
	uuid_n(u, 1000);
	assert_string_equal(bind_in(hub, 2, u, "spam2", k2), "ROOM_CREATED");
	assert_string_equal(leave_room(hub, 2, u, "spam2"), "SUCCESS");
	/* another connection is not held back, nor this one a minute on */
	uuid_n(u, 2000);
	assert_string_equal(bind_in(hub, 3, u, "erin1", k1), "ROOM_CREATED");
	assert_string_equal(leave_room(hub, 3, u, "erin1"), "SUCCESS");
	fake_t += 60;
	uuid_n(u, 2001);
	assert_string_equal(bind_in(hub, 2, u, "spam2", k2), "ROOM_CREATED");
	assert_string_equal(leave_room(hub, 2, u, "spam2"), "SUCCESS");

	pp_id_free(k1);
	pp_id_free(k2);
	teardown_hub(hub);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_room_lifecycle),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_new_room_uuid),
		cmocka_unit_test(test_many_rooms),
		cmocka_unit_test(test_turn_credentials),
		cmocka_unit_test(test_auth_bindings),
		cmocka_unit_test(test_binding_lifetime),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
