/* lib/signal/msg.c: the v1 request parser and reply builders. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "signal/msg.h"
#include "signal/turn.h"

#include <stdlib.h>
#include <string.h>

#define U "123e4567-e89b-42d3-a456-426614174000"
#define ROOM "\"room_uuid\":\"" U "\",\"room_name\":\"room1\",\"user_name\":\"alice\""
#define KEY "ed25519:DtF248vKRoQ7si-lEqCy02WmJdr2VOs3pQ_aXy1VmJY"
#define SIG "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
#define SIGBAD "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB"
#define AUTHF(k, s) "\"pp_id\":\"" k "\",\"pp_sig\":\"" s "\""
#define SDP(t, d) "{\"type\":\"SDP_NEW_STATE\"," ROOM ",\"target_user\":\"bobby\"," \
	"\"sdp_type\":\"" t "\",\"sdp_data\":" d "}"

static const struct {
	const char *in;
	int rc;
	const char *reason;	/* when rc != 0 */
	int type;		/* when rc == 0 */
} cases[] = {
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"room1\",\"user_name\":\"alice\"}", 0, NULL, PP_SIG_NEW_ROOM },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM "}", 0, NULL, PP_SIG_JOIN_ROOM },
	{ "{\"type\":\"FAST_ROOM_EXACT\"," ROOM "}", 0, NULL, PP_SIG_FAST_ROOM_EXACT },
	{ "{\"type\":\"LEAVE_ROOM\"," ROOM "}", 0, NULL, PP_SIG_LEAVE_ROOM },
	{ SDP("offer", "\"v=0\\r\\n\""), 0, NULL, PP_SIG_SDP_NEW_STATE },
	/* v2: no fields; unknown ones are ignored like everywhere */
	{ "{\"type\":\"TURN_CREDENTIALS\"}", 0, NULL, PP_SIG_TURN_CREDENTIALS },
	{ "{\"type\":\"TURN_CREDENTIALS\",\"want\":[1]}", 0, NULL, PP_SIG_TURN_CREDENTIALS },
	{ "{\"type\":\"turn_credentials\"}", PP_EINVAL, PP_SIG_R_UNKNOWN, 0 },
	/* v2 signed joins: pp_id and pp_sig together, well-formed */
	{ "{\"type\":\"AUTH_CHALLENGE\"}", 0, NULL, PP_SIG_AUTH_CHALLENGE },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM "," AUTHF(KEY, SIG) "}", 0, NULL, PP_SIG_JOIN_ROOM },
	{ "{\"type\":\"FAST_ROOM_EXACT\"," ROOM "," AUTHF(KEY, SIG) "}", 0, NULL, PP_SIG_FAST_ROOM_EXACT },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"room1\",\"user_name\":\"alice\"," AUTHF(KEY, SIG) "}", 0, NULL, PP_SIG_NEW_ROOM },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM ",\"pp_id\":\"" KEY "\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM ",\"pp_sig\":\"" SIG "\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM "," AUTHF("ed448:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", SIG) "}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM "," AUTHF(KEY, "AAAA") "}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	/* the last character of a 64-byte value has 4 unused bits: must be 0 */
	{ "{\"type\":\"JOIN_ROOM\"," ROOM "," AUTHF(KEY, SIGBAD) "}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"JOIN_ROOM\"," ROOM ",\"pp_id\":7,\"pp_sig\":\"" SIG "\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ SDP("answer", "\"v=0\\r\\n\""), 0, NULL, PP_SIG_SDP_NEW_STATE },
	{ SDP("candidate", "{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 5 typ host\",\"sdpMid\":\"0\",\"sdpMLineIndex\":0}"), 0, NULL, PP_SIG_SDP_NEW_STATE },
	/* names: 4 to 48 allowed characters */
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"abc\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"a_+-=/ $%#@!?,;()[]\",\"user_name\":\"alice\"}", 0, NULL, PP_SIG_NEW_ROOM },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"123456789012345678901234567890123456789012345678\",\"user_name\":\"alice\"}", 0, NULL, PP_SIG_NEW_ROOM },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"1234567890123456789012345678901234567890123456789\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"room<1>\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"r\\u00e9sum\\u00e9\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":\"room\\u0000x\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"NEW_ROOM\",\"room_name\":12345,\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"NEW_ROOM\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	/* UUIDs: canonical lowercase v4 only */
	{ "{\"type\":\"JOIN_ROOM\",\"room_uuid\":\"123E4567-E89B-42D3-A456-426614174000\",\"room_name\":\"room1\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"JOIN_ROOM\",\"room_uuid\":\"123e4567-e89b-12d3-a456-426614174000\",\"room_name\":\"room1\",\"user_name\":\"alice\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	/* types */
	{ "{\"type\":\"HELLO\"}", PP_EINVAL, PP_SIG_R_UNKNOWN, 0 },
	{ "{\"type\":7}", PP_EINVAL, PP_SIG_R_UNKNOWN, 0 },
	{ "{\"room_name\":\"room1\"}", PP_EINVAL, PP_SIG_R_UNKNOWN, 0 },
	{ "[\"NEW_ROOM\"]", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "not json at all", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "", PP_EINVAL, PP_SIG_R_INVALID, 0 },
	/* SDP payload types */
	{ SDP("offer", "{\"sdp\":1}"), PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ SDP("candidate", "\"candidate:1\""), PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ SDP("pranswer", "\"v=0\""), PP_EINVAL, PP_SIG_R_INVALID, 0 },
	{ "{\"type\":\"SDP_NEW_STATE\"," ROOM ",\"sdp_type\":\"offer\",\"sdp_data\":\"x\"}", PP_EINVAL, PP_SIG_R_INVALID, 0 },
};

static void
test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_sig_request req;
		const char *reason = NULL;
		char err[160];
		int rc;

		rc = pp_sig_parse(cases[i].in, strlen(cases[i].in), 65536, &req,
		    &reason, err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("case %zu: rc %d, want %d (%s)", i, rc, cases[i].rc, err);
		if (rc == 0) {
			assert_int_equal(req.type, cases[i].type);
			pp_sig_request_fini(&req);
		} else {
			assert_string_equal(reason, cases[i].reason);
		}
	}
}

static void
test_parse_fields(void **state)
{
	const char *in = SDP("candidate", "{\"candidate\":\"c\",\"sdpMid\":\"0\"}");
	struct pp_sig_request req;
	const char *reason;
	char err[160];

	(void)state;
	assert_int_equal(pp_sig_parse(in, strlen(in), 65536, &req, &reason, err,
	    sizeof(err)), 0);
	assert_string_equal(req.room_uuid, U);
	assert_string_equal(req.room_name, "room1");
	assert_string_equal(req.user_name, "alice");
	assert_string_equal(req.target_user, "bobby");
	assert_int_equal(req.sdp_type, PP_SIG_SDP_CANDIDATE);
	assert_string_equal(json_string_value(json_object_get(req.sdp_data,
	    "sdpMid")), "0");
	pp_sig_request_fini(&req);
}

static void
test_parse_cap(void **state)
{
	const char *in = "{\"type\":\"NEW_ROOM\",\"room_name\":\"room1\",\"user_name\":\"alice\"}";
	struct pp_sig_request req;
	const char *reason;
	char err[160];

	(void)state;
	assert_int_equal(pp_sig_parse(in, strlen(in), 10, &req, &reason, err,
	    sizeof(err)), PP_ETOOBIG);
}

static void
test_build(void **state)
{
	size_t len;
	char *s;

	(void)state;
	s = pp_sig_build_failed(PP_SIG_R_NAME_TAKEN, &len);
	assert_string_equal(s, "{\"type\":\"FAILED\",\"data\":{\"reason\":"
	    "\"User with this usename already in the room\"}}");
	assert_int_equal(len, strlen(s));
	free(s);
	s = pp_sig_build("SUCCESS", NULL, &len);
	assert_string_equal(s, "{\"type\":\"SUCCESS\"}");
	free(s);
}

/* Golden values from Python's hmac/base64 (coturn computes the same). */
static void
test_turn_credential(void **state)
{
	char u[PP_SIG_TURN_USER_MAX], p[PP_SIG_TURN_PASS_SIZE];

	(void)state;
	assert_int_equal(pp_sig_turn_credential("s3cret", 6, "alice",
	    1700000000, 86400, u, p), 0);
	assert_string_equal(u, "1700086400:alice");
	assert_string_equal(p, "HJX0XIkrCiQCuU88Z0oeXj+QW60=");
	assert_int_equal(pp_sig_turn_credential("north", 5, "bob b", 1000000,
	    60, u, p), 0);
	assert_string_equal(u, "1000060:bob b");
	assert_string_equal(p, "UV3+asTuMFwKE2aEDzUd0mtAzd8=");
	/* refused: no secret, a ':' in the user, ttl out of range */
	assert_int_equal(pp_sig_turn_credential("", 0, "alice", 1, 86400, u, p),
	    PP_EINVAL);
	assert_string_equal(u, "");
	assert_int_equal(pp_sig_turn_credential("s", 1, "a:b", 1, 86400, u, p),
	    PP_EINVAL);
	assert_int_equal(pp_sig_turn_credential("s", 1, "alice", 1, 59, u, p),
	    PP_EINVAL);
	assert_int_equal(pp_sig_turn_credential("s", 1, "alice", 1,
	    PP_SIG_TURN_TTL_MAX + 1, u, p), PP_EINVAL);
}

static void
test_turn_uri(void **state)
{
	static const struct { const char *uri; int ok; } uris[] = {
		{ "turn:198.51.100.3:3478", 1 },
		{ "turn:relay.example.net:3478?transport=tcp", 1 },
		{ "turn:relay.example.net:3478?transport=udp", 1 },
		{ "turns:relay.example.net:5349", 1 },
		{ "turns:[2001:db8::1]:5349?transport=tcp", 1 },
		{ "turn:relay.example.net", 0 },
		{ "turn::3478", 0 },
		{ "turn:2001:db8::1:3478", 0 },
		{ "turn:relay:0", 0 },
		{ "turn:relay:65536", 0 },
		{ "turn:relay:3478x", 0 },
		{ "turn:relay:3478?transport=sctp", 0 },
		{ "stun:relay:3478", 0 },
		{ "turn:re lay:3478", 0 },
		{ "", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++)
		if (pp_sig_turn_uri_valid(uris[i].uri) != uris[i].ok)
			fail_msg("%s: want %d", uris[i].uri, uris[i].ok);
}

/* The bytes a v2 client signs to join, exactly (docs/signaling.md). */
static void
test_auth_transcript(void **state)
{
	unsigned char nonce[PP_SIG_NONCE_LEN];
	char out[512];

	(void)state;
	for (unsigned i = 0; i < sizeof(nonce); i++)
		nonce[i] = (unsigned char)i;
	assert_int_equal(pp_sig_auth_transcript(nonce, U, "room1", "alice", out,
	    sizeof(out)), 151);
	assert_string_equal(out, "peerpipe-signaling-auth-v2\n"
	    "nonce=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n"
	    "room-uuid=" U "\n"
	    "room-name=room1\n"
	    "user=alice\n");
	assert_int_equal(pp_sig_auth_transcript(nonce, "", "room1", "alice", out,
	    sizeof(out)), 151 - 36);
	assert_int_equal(pp_sig_auth_transcript(nonce, U, "room1", "alice", out,
	    151), PP_ETOOBIG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_auth_transcript),
		cmocka_unit_test(test_parse_fields),
		cmocka_unit_test(test_parse_cap),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_turn_credential),
		cmocka_unit_test(test_turn_uri),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
