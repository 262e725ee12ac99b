/*
 * lib/agent/invite.c: invite tokens (codec, MAC) and the gateway's store
 * (single use, expiry, persistence across a reopen).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agent/invite.h"
#include "base/b64.h"
#include "base/error.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UUID "123e4567-e89b-42d3-a456-426614174000"
#define NOW 1800000000

static void
sample(struct pp_invite *inv)
{
	memset(inv, 0, sizeof(*inv));
	snprintf(inv->gateway, sizeof(inv->gateway), "gw-office");
	for (int i = 0; i < PP_TUN_KEY_LEN; i++)
		inv->gateway_key[i] = (uint8_t)(i * 7);
	snprintf(inv->room_name, sizeof(inv->room_name), "acme room");
	snprintf(inv->room_uuid, sizeof(inv->room_uuid), UUID);
	snprintf(inv->url, sizeof(inv->url), "wss://sig.example.net:46466/ws");
	memset(inv->id, 0xa5, sizeof(inv->id));
	for (int i = 0; i < PP_INVITE_SECRET_LEN; i++)
		inv->secret[i] = (uint8_t)i;
	inv->expires = NOW + 3600;
}

/* A token as text from a JSON body, as an attacker could write one. */
static void
token_of(const char *json, char *out, size_t cap)
{
	size_t n = strlen(json);

	assert_true(sizeof(PP_INVITE_PREFIX) + PP_B64URL_LEN(n) < cap);
	memcpy(out, PP_INVITE_PREFIX, sizeof(PP_INVITE_PREFIX) - 1);
	pp_b64url_encode((const uint8_t *)json, n,
	    out + sizeof(PP_INVITE_PREFIX) - 1);
}

static void
test_codec(void **state)
{
	struct pp_invite inv, back;
	char text[PP_INVITE_TEXT_MAX], err[256], padded[PP_INVITE_TEXT_MAX + 8];
	int n;

	(void)state;
	sample(&inv);
	n = pp_invite_format(&inv, text, sizeof(text));
	assert_true(n > 0 && (size_t)n == strlen(text));
	assert_memory_equal(text, PP_INVITE_PREFIX, sizeof(PP_INVITE_PREFIX) - 1);
	assert_int_equal(pp_invite_parse(text, strlen(text), &back, err,
	    sizeof(err)), 0);
	assert_memory_equal(&inv, &back, sizeof(inv));
	/* spaces and a line end around it, as pasted */
	snprintf(padded, sizeof(padded), "  %s\r\n", text);
	assert_int_equal(pp_invite_parse(padded, strlen(padded), &back, err,
	    sizeof(err)), 0);
	assert_memory_equal(&inv, &back, sizeof(inv));
	/* too small a buffer */
	assert_int_equal(pp_invite_format(&inv, text, 40), PP_ETOOBIG);
}

static const struct {
	const char *json;	/* NULL: text is the token itself */
	const char *text;
	const char *err;	/* a part of the message */
} bad[] = {
	{ NULL, "", "does not start with" },
	{ NULL, "ppinvite2.eyJ2IjoxfQ", "does not start with" },
	{ NULL, "ppinvite1.", "damaged (not base64url)" },
	{ NULL, "ppinvite1.e", "damaged (not base64url)" },
	{ NULL, "ppinvite1.eyJ2Ijox*Q", "damaged (not base64url)" },
	{ "[1,2]", NULL, "not a JSON object" },
	{ "{\"v\":1}", NULL, "damaged or not an invite" },
	{ "{\"v\":2,\"gw\":\"gw-office\"}", NULL, "field 'v'" },
	/* every field present, one wrong at a time */
#define OKF "\"v\":1,\"room\":\"acme room\",\"uuid\":\"" UUID "\"," \
	"\"url\":\"wss://h:1/ws\",\"id\":\"paWlpaWlpaWlpaWlpaWlpQ\"," \
	"\"secret\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"exp\":5"
#define KEYF "\"key\":\"ed25519:AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK-2vcTL0tk\""
	{ "{" OKF "," KEYF ",\"gw\":\"gw\"}", NULL, "field 'gw'" },
	{ "{" OKF "," KEYF ",\"gw\":\"gw<office>\"}", NULL, "field 'gw'" },
	{ "{" OKF ",\"key\":\"ed25519:AAAA\",\"gw\":\"gw-office\"}", NULL,
	  "field 'key'" },
	{ "{\"v\":1,\"room\":\"acme room\",\"uuid\":\"" UUID "\","
	  "\"url\":\"http://h/\",\"id\":\"paWlpaWlpaWlpaWlpaWlpQ\","
	  "\"secret\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"exp\":5,"
	  KEYF ",\"gw\":\"gw-office\"}", NULL, "field 'url'" },
	{ "{\"v\":1,\"room\":\"acme room\",\"uuid\":\"" UUID "\","
	  "\"url\":\"wss://h:1/ws\",\"id\":\"paWlpaWlpaWlpaWlpaWlp!\","
	  "\"secret\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"exp\":5,"
	  KEYF ",\"gw\":\"gw-office\"}", NULL, "id or secret" },
	{ "{\"v\":1,\"room\":\"acme room\",\"uuid\":\"" UUID "\","
	  "\"url\":\"wss://h:1/ws\",\"id\":\"paWlpaWlpaWlpaWlpaWlpQ\","
	  "\"secret\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\",\"exp\":0,"
	  KEYF ",\"gw\":\"gw-office\"}", NULL, "field 'exp'" },
};

static void
test_codec_errors(void **state)
{
	char text[PP_INVITE_TEXT_MAX * 2], err[256];
	struct pp_invite inv;

	(void)state;
	/* the table's good body parses: so each case fails for its field */
	token_of("{" OKF "," KEYF ",\"gw\":\"gw-office\"}", text, sizeof(text));
	assert_int_equal(pp_invite_parse(text, strlen(text), &inv, err,
	    sizeof(err)), 0);
	assert_string_equal(inv.gateway, "gw-office");
	assert_int_equal(inv.expires, 5);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (bad[i].json)
			token_of(bad[i].json, text, sizeof(text));
		else
			snprintf(text, sizeof(text), "%s", bad[i].text);
		err[0] = '\0';
		if (pp_invite_parse(text, strlen(text), &inv, err, sizeof(err)) !=
		    PP_EINVAL || strstr(err, bad[i].err) == NULL)
			fail_msg("case %zu: got \"%s\", want \"%s\"", i, err,
			    bad[i].err);
		/* nothing half-parsed is left behind */
		for (size_t k = 0; k < sizeof(inv); k++)
			assert_int_equal(((unsigned char *)&inv)[k], 0);
	}
	/* longer than any token */
	memset(text, 'A', sizeof(text) - 1);
	text[sizeof(text) - 1] = '\0';
	memcpy(text, PP_INVITE_PREFIX, sizeof(PP_INVITE_PREFIX) - 1);
	assert_int_equal(pp_invite_parse(text, strlen(text), &inv, err,
	    sizeof(err)), PP_EINVAL);
	assert_non_null(strstr(err, "at most"));
}

/* HMAC-SHA256 with the context, against Python's hmac module. */
static void
test_mac(void **state)
{
	static const char tr[] = "peerpipe-auth-v2\nrole=offerer\n";
	static const uint8_t want[PP_INVITE_MAC_LEN] = {
		0x0a, 0x21, 0x30, 0x3f, 0xb8, 0x1b, 0x03, 0xf3, 0xc9, 0xaf, 0x73,
		0x5a, 0x13, 0x0b, 0xbf, 0x60, 0x6a, 0xf1, 0xcd, 0xd7, 0x0d, 0x53,
		0xb3, 0x84, 0x11, 0xb5, 0x5a, 0xf4, 0xbd, 0xae, 0x48, 0x6a,
	};
	uint8_t secret[PP_INVITE_SECRET_LEN], mac[PP_INVITE_MAC_LEN];

	(void)state;
	for (int i = 0; i < PP_INVITE_SECRET_LEN; i++)
		secret[i] = (uint8_t)i;
	assert_int_equal(pp_invite_mac(secret, tr, strlen(tr), mac), 0);
	assert_memory_equal(mac, want, sizeof(want));
	assert_int_equal(pp_invite_mac_check(secret, tr, strlen(tr), want), 0);
	/* another transcript (one byte less), another secret, a flipped bit */
	assert_int_equal(pp_invite_mac_check(secret, tr, strlen(tr) - 1, want),
	    PP_EAUTH);
	secret[0] ^= 1;
	assert_int_equal(pp_invite_mac_check(secret, tr, strlen(tr), want),
	    PP_EAUTH);
	secret[0] ^= 1;
	mac[31] ^= 0x80;
	assert_int_equal(pp_invite_mac_check(secret, tr, strlen(tr), mac),
	    PP_EAUTH);
}

static void
test_store(void **state)
{
	char dir[] = "/tmp/pp-invite-XXXXXX", path[128], group[64], why[512];
	static const char tr[] = "a transcript of one session\n";
	static const char tr2[] = "a transcript of another session\n";
	struct pp_invites *s;
	struct pp_invite a, b, c;
	uint8_t mac[PP_INVITE_MAC_LEN], unknown[PP_INVITE_ID_LEN];
	struct stat st;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/invites.json", dir);
	assert_int_equal(pp_invites_open(path, NOW, &s), 0);
	sample(&a);
	sample(&b);
	sample(&c);
	assert_int_equal(pp_invites_create(s, &a, 0, "", NOW), PP_EINVAL);
	assert_int_equal(pp_invites_create(s, &a, PP_INVITE_TTL_MAX + 1, "", NOW),
	    PP_EINVAL);
	assert_int_equal(pp_invites_create(s, &a, 3600, "staff", NOW), 0);
	assert_int_equal(pp_invites_create(s, &b, 60, "", NOW), 0);
	assert_int_equal(a.expires, NOW + 3600);
	assert_memory_not_equal(a.id, b.id, sizeof(a.id));
	assert_memory_not_equal(a.secret, b.secret, sizeof(a.secret));
	/* the secrets are on disk, for the owner only */
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);

	/* a right proof: accepted, with the group; nothing changes yet */
	assert_int_equal(pp_invite_mac(a.secret, tr, strlen(tr), mac), 0);
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr), NOW + 5,
	    group, sizeof(group), why, sizeof(why)), 0);
	assert_string_equal(group, "staff");
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr), NOW + 6,
	    group, sizeof(group), why, sizeof(why)), 0);
	/* the proof over another transcript (a replay into another session),
	 * or with the other token's secret */
	assert_int_equal(pp_invites_check(s, a.id, mac, tr2, strlen(tr2),
	    NOW + 5, group, sizeof(group), why, sizeof(why)), PP_EAUTH);
	assert_non_null(strstr(why, "the proof does not match"));
	assert_int_equal(pp_invites_check(s, b.id, mac, tr, strlen(tr), NOW + 5,
	    group, sizeof(group), why, sizeof(why)), PP_EAUTH);
	/* an id we never made */
	memset(unknown, 0x42, sizeof(unknown));
	assert_int_equal(pp_invites_check(s, unknown, mac, tr, strlen(tr),
	    NOW + 5, group, sizeof(group), why, sizeof(why)), PP_EDENIED);
	assert_non_null(strstr(why, "unknown to this gateway"));

	/* used once: then refused, also after the store is read again */
	assert_int_equal(pp_invites_consume(s, a.id, NOW + 7), PP_ENOTFOUND);
	assert_int_equal(pp_invites_begin(s, a.id, "laptop-1",
	    "ed25519:AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK-2vcTL0tk"), 0);
	assert_int_equal(pp_invites_begin(s, a.id, "laptop-2", "x"),
	    PP_ECONFLICT);
	assert_int_equal(pp_invites_consume(s, a.id, NOW + 7), 0);
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr), NOW + 8,
	    group, sizeof(group), why, sizeof(why)), PP_EDENIED);
	assert_non_null(strstr(why, "already used by laptop-1 (ed25519:AAcO"));
	pp_invites_free(s);
	assert_int_equal(pp_invites_open(path, NOW + 9, &s), 0);
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr), NOW + 9,
	    group, sizeof(group), why, sizeof(why)), PP_EDENIED);
	assert_non_null(strstr(why, "already used by laptop-1"));

	/* the list: states, who used it, never a secret */
	{
		json_t *l = pp_invites_list(s, NOW + 9);
		char *txt = json_dumps(l, JSON_COMPACT), sec[44], idb[23];

		assert_non_null(txt);
		assert_int_equal(json_array_size(l), 2);
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(l, 0), "state")), "used");
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(l, 0), "used_by")), "laptop-1");
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(l, 1), "state")), "pending");
		pp_b64url_encode(a.secret, sizeof(a.secret), sec);
		assert_null(strstr(txt, sec));
		free(txt);
		json_decref(l);
		/* a used invite is not revoked (its device is in the policy) */
		pp_invite_id_text(a.id, idb);
		assert_int_equal(pp_invites_revoke(s, idb, why, sizeof(why)),
		    PP_ECONFLICT);
		assert_non_null(strstr(why, "delete its [peer laptop-1]"));
		assert_int_equal(pp_invites_revoke(s, "nope", why, sizeof(why)),
		    PP_ENOTFOUND);
	}

	/* b expires after 60 s: refused at and after its expiry */
	assert_int_equal(pp_invite_mac(b.secret, tr, strlen(tr), mac), 0);
	assert_int_equal(pp_invites_check(s, b.id, mac, tr, strlen(tr), NOW + 59,
	    group, sizeof(group), why, sizeof(why)), 0);
	assert_string_equal(group, "");
	assert_int_equal(pp_invites_check(s, b.id, mac, tr, strlen(tr), NOW + 60,
	    group, sizeof(group), why, sizeof(why)), PP_EDENIED);
	assert_non_null(strstr(why, "expired at"));

	/* long after expiry the store forgets them: unknown, still refused */
	pp_invites_free(s);
	assert_int_equal(pp_invites_open(path, NOW + 3600 + 31 * 86400, &s), 0);
	assert_int_equal(pp_invites_create(s, &c, 60, "", NOW + 3600 + 31 *
	    86400), 0);
	assert_int_equal(pp_invite_mac(a.secret, tr, strlen(tr), mac), 0);
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr),
	    NOW + 3600 + 31 * 86400, group, sizeof(group), why, sizeof(why)),
	    PP_EDENIED);
	assert_non_null(strstr(why, "unknown"));
	pp_invites_free(s);

	/* a damaged line costs only itself */
	{
		FILE *f = fopen(path, "a");

		assert_non_null(f);
		fputs("{not json\n{\"id\":1}\n", f);
		fclose(f);
	}
	assert_int_equal(pp_invites_open(path, NOW + 3600 + 31 * 86400, &s), 0);
	assert_int_equal(pp_invite_mac(c.secret, tr, strlen(tr), mac), 0);
	assert_int_equal(pp_invites_check(s, c.id, mac, tr, strlen(tr),
	    NOW + 3600 + 31 * 86400 + 1, group, sizeof(group), why,
	    sizeof(why)), 0);
	/* revoked: unknown from then on, also after a reopen */
	{
		char idc[23];

		pp_invite_id_text(c.id, idc);
		assert_int_equal(pp_invites_revoke(s, idc, why, sizeof(why)), 0);
		assert_int_equal(pp_invites_check(s, c.id, mac, tr, strlen(tr),
		    NOW + 3600 + 31 * 86400 + 1, group, sizeof(group), why,
		    sizeof(why)), PP_EDENIED);
		pp_invites_free(s);
		assert_int_equal(pp_invites_open(path, NOW + 3600 + 31 * 86400,
		    &s), 0);
		assert_int_equal(pp_invites_check(s, c.id, mac, tr, strlen(tr),
		    NOW + 3600 + 31 * 86400 + 1, group, sizeof(group), why,
		    sizeof(why)), PP_EDENIED);
		assert_non_null(strstr(why, "unknown to this gateway"));
	}
	pp_invites_free(s);
	unlink(path);
	rmdir(dir);
}

static const char *reconcile_want;	/* the id the fake policy has, or NULL */

static int
in_policy(void *ctx, const char *id_text, const char *name, const char *key)
{
	(void)ctx;
	assert_string_equal(name, "laptop-1");
	assert_string_equal(key, "ed25519:k");
	return reconcile_want && strcmp(id_text, reconcile_want) == 0;
}

static const char *
state_of(struct pp_invites *s, size_t i)
{
	static char st[32];
	json_t *l = pp_invites_list(s, NOW + 10);

	snprintf(st, sizeof(st), "%s", json_string_value(json_object_get(
	    json_array_get(l, i), "state")));
	json_decref(l);
	return st;
}

/* Single use survives a crash between the steps, and a failed save. */
static void
test_redeem_durable(void **state)
{
	char dir[] = "/tmp/pp-invite-XXXXXX", path[128], tmp[160], why[512],
	    group[64], ida[23];
	static const char tr[] = "a transcript\n";
	uint8_t mac[PP_INVITE_MAC_LEN];
	struct pp_invites *s;
	struct pp_invite a, b;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/invites.json", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(pp_invites_open(path, NOW, &s), 0);
	sample(&a);
	sample(&b);
	assert_int_equal(pp_invites_create(s, &a, 3600, "", NOW), 0);
	assert_int_equal(pp_invites_create(s, &b, 3600, "", NOW), 0);
	pp_invite_id_text(a.id, ida);

	/* a crash after begin: the file says redeeming, and nothing else
	 * redeems it meanwhile */
	assert_int_equal(pp_invites_begin(s, a.id, "laptop-1", "ed25519:k"), 0);
	assert_int_equal(pp_invites_begin(s, b.id, "laptop-1", "ed25519:k"), 0);
	assert_string_equal(state_of(s, 0), "redeeming");
	assert_int_equal(pp_invite_mac(a.secret, tr, strlen(tr), mac), 0);
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr), NOW + 1,
	    group, sizeof(group), why, sizeof(why)), PP_EDENIED);
	assert_non_null(strstr(why, "being redeemed by laptop-1"));
	pp_invites_free(s);
	assert_int_equal(pp_invites_open(path, NOW + 5, &s), 0);
	assert_string_equal(state_of(s, 0), "redeeming");
	/* the start settles it: a's entry made it into the policy, b's not */
	reconcile_want = ida;
	assert_int_equal(pp_invites_reconcile(s, in_policy, NULL, NOW + 5), 0);
	assert_string_equal(state_of(s, 0), "used");
	assert_string_equal(state_of(s, 1), "pending");
	pp_invites_free(s);
	assert_int_equal(pp_invites_open(path, NOW + 6, &s), 0);
	assert_string_equal(state_of(s, 0), "used");
	assert_string_equal(state_of(s, 1), "pending");
	assert_int_equal(pp_invites_check(s, a.id, mac, tr, strlen(tr), NOW + 6,
	    group, sizeof(group), why, sizeof(why)), PP_EDENIED);
	assert_non_null(strstr(why, "already used by laptop-1"));

	/* abort: pending again, on disk too */
	assert_int_equal(pp_invites_begin(s, b.id, "laptop-1", "ed25519:k"), 0);
	assert_int_equal(pp_invites_abort(s, b.id), 0);
	assert_string_equal(state_of(s, 1), "pending");

	/* a save that fails (its temporary name is taken by a directory):
	 * begin refuses and changes nothing, in memory or on disk */
	assert_int_equal(mkdir(tmp, 0700), 0);
	assert_true(pp_invites_begin(s, b.id, "laptop-1", "ed25519:k") < 0);
	assert_string_equal(state_of(s, 1), "pending");
	assert_int_equal(pp_invites_consume(s, b.id, NOW + 7), PP_ENOTFOUND);
	assert_int_equal(rmdir(tmp), 0);
	pp_invites_free(s);
	assert_int_equal(pp_invites_open(path, NOW + 8, &s), 0);
	assert_string_equal(state_of(s, 1), "pending");
	pp_invites_free(s);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_codec),
		cmocka_unit_test(test_codec_errors),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_redeem_durable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
