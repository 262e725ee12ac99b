/* lib/tunnel/proto.c: v1 control messages, our v2 INIT fields, negotiation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "identity/identity.h"
#include "tunnel/proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define U "123e4567-e89b-42d3-a456-426614174000"
#define ERRLEN 256

static int
parse(const char *s, struct pp_tun_msg *m)
{
	char err[ERRLEN];

	return pp_tun_msg_parse(s, strlen(s), m, err, sizeof(err));
}

/* --- INIT ----------------------------------------------------------------- */

#define CFG(u, c, e) "\"config\":{\"unreliable_channels\":" u \
	",\"compression_type\":" c ",\"extended_compression\":" e "}"

static const struct init_case {
	const char *name, *in;
	int rc;
	const char *user;
	int unreliable;
	enum pp_tun_codec codec;
	int extended;
	size_t nports;
	int version;
	unsigned features;
	int adaptive;
} init_cases[] = {
	{ "v1 as the spec writes it",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\"," CFG("true", "\"zstd\"", "true")
	  ",\"ports\":[\"12345:TCP\",\"5353:UDP\"]}",
	  0, "bob", 1, PP_CODEC_ZSTD, 1, 2, 1, 0, 0 },
	{ "no config, no ports: defaults",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\"}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "config not an object: defaults",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"config\":[1,2],\"ports\":\"80:TCP\"}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "invalid settings take their defaults one by one",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\"," CFG("1", "\"lz5\"", "\"yes\"") "}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "one invalid setting does not spoil the others",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\"," CFG("null", "\"zstd-hc\"", "true") "}",
	  0, "bob", 0, PP_CODEC_ZSTD_HC, 1, 0, 1, 0, 0 },
	{ "compression names are case-sensitive",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\"," CFG("false", "\"LZ4\"", "false") "}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "lz4",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\"," CFG("false", "\"lz4\"", "false") "}",
	  0, "bob", 0, PP_CODEC_LZ4, 0, 0, 1, 0, 0 },
	{ "invalid port entries are skipped",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"ports\":[\"0:TCP\",\"65536:TCP\","
	  "\"80:tcp\",\"80\",\":TCP\",\"80:\",\"080:TCP\",\"+80:TCP\",\" 80:TCP\","
	  "\"80:TCP \",\"80:SCTP\",80,null,[\"80:TCP\"],\"99999999999:TCP\","
	  "\"65535:UDP\",\"1:TCP\"]}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 2, 1, 0, 0 },
	{ "duplicate ports count once",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"ports\":[\"80:TCP\",\"80:TCP\",\"80:UDP\"]}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 2, 1, 0, 0 },
	{ "v2 fields",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"pp_version\":2,"
	  "\"pp_features\":[\"flow\",\"adaptive\",\"stream\"],\"pp_adaptive\":true}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 2,
	  PP_TUN_F_FLOW | PP_TUN_F_ADAPTIVE | PP_TUN_F_STREAM, 1 },
	{ "v2: every feature, ICE restart and zero checksums included",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"pp_version\":2,"
	  "\"pp_features\":[\"ice-restart\",\"flow\",\"sctp-zero-checksum\","
	  "\"adaptive\",\"stream\"]}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 2, PP_TUN_F_ALL, 0 },
	{ "v2: unknown features and non-strings ignored",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"pp_version\":3,"
	  "\"pp_features\":[\"teleport\",7,\"stream\",\"FLOW\",{}],\"pp_adaptive\":1}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 3, PP_TUN_F_STREAM, 0 },
	{ "v2: invalid version and features take defaults",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"pp_version\":0,"
	  "\"pp_features\":\"flow\"}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "v2: version as a string is invalid",
	  "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"pp_version\":\"2\"}",
	  0, "bob", 0, PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "IL_user of 48 bytes",
	  "{\"type\":\"INIT\",\"IL_user\":\"123456789012345678901234567890123456789012345678\"}",
	  0, "123456789012345678901234567890123456789012345678", 0,
	  PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	{ "IL_user missing", "{\"type\":\"INIT\",\"ports\":[]}", PP_EPROTO, NULL, 0, 0, 0, 0, 0, 0, 0 },
	{ "IL_user null", "{\"type\":\"INIT\",\"IL_user\":null}", PP_EPROTO, NULL, 0, 0, 0, 0, 0, 0, 0 },
	{ "IL_user not a string", "{\"type\":\"INIT\",\"IL_user\":42}", PP_EPROTO, NULL, 0, 0, 0, 0, 0, 0, 0 },
	{ "IL_user of 49 bytes",
	  "{\"type\":\"INIT\",\"IL_user\":\"1234567890123456789012345678901234567890123456789\"}",
	  PP_EPROTO, NULL, 0, 0, 0, 0, 0, 0, 0 },
};

static void
test_init_table(void **state)
{
	for (size_t i = 0; i < sizeof(init_cases) / sizeof(init_cases[0]); i++) {
		const struct init_case *c = &init_cases[i];
		struct pp_tun_msg m;
		const struct pp_tun_init *in = &m.u.init;

		print_message("init: %s\n", c->name);
		assert_int_equal(parse(c->in, &m), c->rc);
		if (c->rc != 0)
			continue;
		assert_int_equal(m.type, PP_TUN_MSG_INIT);
		assert_string_equal(in->il_user, c->user);
		assert_int_equal(in->unreliable, c->unreliable);
		assert_int_equal(in->codec, c->codec);
		assert_int_equal(in->extended, c->extended);
		assert_int_equal(in->nports, c->nports);
		assert_int_equal(in->version, c->version);
		assert_int_equal(in->features, c->features);
		assert_int_equal(in->adaptive, c->adaptive);
	}
}

static void
test_init_ports(void **state)
{
	struct pp_tun_msg m;

	assert_int_equal(parse("{\"type\":\"INIT\",\"IL_user\":\"bob\",\"ports\":"
	    "[\"bad\",\"12345:TCP\",\"5353:UDP\",\"65535:TCP\"]}", &m), 0);
	assert_int_equal(m.u.init.nports, 3);
	assert_int_equal(m.u.init.ports[0].port, 12345);
	assert_int_equal(m.u.init.ports[0].proto, PP_TUN_TCP);
	assert_int_equal(m.u.init.ports[1].port, 5353);
	assert_int_equal(m.u.init.ports[1].proto, PP_TUN_UDP);
	assert_int_equal(m.u.init.ports[2].port, 65535);
}

/* 50 valid entries are fine, 51 are not; invalid ones do not count. */
static void
test_init_port_limit(void **state)
{
	for (int n = PP_TUN_MAX_PORTS; n <= PP_TUN_MAX_PORTS + 1; n++) {
		char buf[4096];
		struct pp_tun_msg m;
		int off;

		off = snprintf(buf, sizeof(buf),
		    "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"ports\":[\"0:TCP\"");
		for (int i = 0; i < n; i++)
			off += snprintf(buf + off, sizeof(buf) - (size_t)off,
			    ",\"%d:UDP\",\"x\"", 1000 + i);
		snprintf(buf + off, sizeof(buf) - (size_t)off, "]}");
		if (n == PP_TUN_MAX_PORTS) {
			assert_int_equal(parse(buf, &m), 0);
			assert_int_equal(m.u.init.nports, PP_TUN_MAX_PORTS);
			assert_int_equal(m.u.init.ports[49].port, 1049);
		} else {
			assert_int_equal(parse(buf, &m), PP_EPROTO);
		}
	}
}

/* --- the envelope ---------------------------------------------------------- */

static const struct env_case {
	const char *in;
	int rc;
	enum pp_tun_msg_type type;
} env_cases[] = {
	{ "{\"type\":\"HELLO\",\"x\":1}", 0, PP_TUN_MSG_UNKNOWN },
	{ "{\"type\":\"\"}", 0, PP_TUN_MSG_UNKNOWN },
	{ "{\"type\":\"init\",\"IL_user\":\"bob\"}", 0, PP_TUN_MSG_UNKNOWN },
	{ "{\"type\":\"SUCCESS\"}", 0, PP_TUN_MSG_SUCCESS },
	{ "{\"type\":\"FAILED\"}", 0, PP_TUN_MSG_FAILED },
	{ "{\"type\":\"BEGIN_PROXY\"}", 0, PP_TUN_MSG_BEGIN_PROXY },
	{ "{\"type\":\"PING\",\"seq\":3}", 0, PP_TUN_MSG_PING },
	{ "{\"type\":\"PONG\",\"seq\":-1}", 0, PP_TUN_MSG_PONG },
	{ "{}", PP_EPROTO, 0 },
	{ "{\"type\":1}", PP_EPROTO, 0 },
	{ "{\"type\":null}", PP_EPROTO, 0 },
	{ "{\"type\":[\"INIT\"]}", PP_EPROTO, 0 },
	{ "[{\"type\":\"INIT\"}]", PP_EPROTO, 0 },
	{ "\"INIT\"", PP_EPROTO, 0 },
	{ "42", PP_EPROTO, 0 },
	{ "null", PP_EPROTO, 0 },
	{ "", PP_EPROTO, 0 },
	{ "{\"type\":\"INIT\"", PP_EPROTO, 0 },
	{ "{\"type\":\"INIT\",\"type\":\"INIT\",\"IL_user\":\"bob\"}", PP_EPROTO, 0 },
	{ "{\"type\":\"IN\\u0000IT\"}", PP_EPROTO, 0 },
	{ "{\"type\":\"HELLO\"} trailing", PP_EPROTO, 0 },
};

static void
test_ping_pong(void **state)
{
	struct pp_tun_msg m;
	char *text = NULL;

	(void)state;
	assert_int_equal(pp_tun_ping_build(0, 4000000000u, &text), 0);
	assert_int_equal(parse(text, &m), 0);
	assert_int_equal(m.type, PP_TUN_MSG_PING);
	assert_int_equal(m.u.seq, 4000000000u);
	free(text);
	assert_int_equal(pp_tun_ping_build(1, 9, &text), 0);
	assert_int_equal(parse(text, &m), 0);
	assert_int_equal(m.type, PP_TUN_MSG_PONG);
	assert_int_equal(m.u.seq, 9);
	free(text);
	/* a negative or absent seq reads as 0, never as a huge number */
	assert_int_equal(parse("{\"type\":\"PONG\",\"seq\":-1}", &m), 0);
	assert_int_equal(m.u.seq, 0);
	assert_int_equal(parse("{\"type\":\"PING\",\"seq\":4294967296}", &m), 0);
	assert_int_equal(m.u.seq, 0);
}

/* v2 authentication: INIT's identity fields, AUTH, PORTS, the transcript. */
static void
test_v2_auth_messages(void **state)
{
	struct pp_identity *id;
	struct pp_tun_init in;
	struct pp_tun_msg m;
	struct pp_tun_port ports[2] = { { 5432, PP_TUN_TCP }, { 53, PP_TUN_UDP } };
	uint8_t sig[PP_TUN_SIG_LEN];
	char *text = NULL;

	(void)state;
	assert_int_equal(pp_id_generate(&id), 0);
	memset(&in, 0, sizeof(in));
	snprintf(in.il_user, sizeof(in.il_user), "gw-office");
	in.version = 2;
	in.has_id = 1;
	pp_id_public(id, in.id);
	memset(in.nonce, 0xab, sizeof(in.nonce));
	assert_int_equal(pp_tun_init_build(&in, &text), 0);
	assert_non_null(strstr(text, "\"pp_id\":\"ed25519:"));
	assert_int_equal(parse(text, &m), 0);
	assert_int_equal(m.type, PP_TUN_MSG_INIT);
	assert_true(m.u.init.has_id);
	assert_memory_equal(m.u.init.id, in.id, PP_TUN_KEY_LEN);
	assert_memory_equal(m.u.init.nonce, in.nonce, PP_TUN_NONCE_LEN);
	free(text);
	/* an identity in a v1 INIT, or a malformed nonce: no identity at all */
	assert_int_equal(parse("{\"type\":\"INIT\",\"IL_user\":\"bob1\","
	    "\"pp_id\":\"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"pp_nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}", &m), 0);
	assert_false(m.u.init.has_id);
	assert_int_equal(parse("{\"type\":\"INIT\",\"IL_user\":\"bob1\","
	    "\"pp_version\":2,"
	    "\"pp_id\":\"ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"pp_nonce\":\"AAAA\"}", &m), 0);
	assert_false(m.u.init.has_id);

	/* AUTH round trip; a short or bad signature is not valid */
	memset(sig, 0x5a, sizeof(sig));
	assert_int_equal(pp_tun_auth_build(sig, &text), 0);
	assert_int_equal(parse(text, &m), 0);
	assert_int_equal(m.type, PP_TUN_MSG_AUTH);
	assert_true(m.u.auth.valid);
	assert_memory_equal(m.u.auth.sig, sig, sizeof(sig));
	free(text);
	assert_int_equal(parse("{\"type\":\"AUTH\",\"sig\":\"AAAA\"}", &m), 0);
	assert_false(m.u.auth.valid);
	assert_false(m.u.auth.has_invite);
	/* AUTH with an invite proof; a malformed one counts as none */
	{
		uint8_t iid[PP_TUN_INVITE_ID_LEN], mac[PP_TUN_INVITE_MAC_LEN];

		memset(iid, 0x11, sizeof(iid));
		memset(mac, 0x22, sizeof(mac));
		assert_int_equal(pp_tun_auth_invite_build(sig, iid, mac, &text), 0);
		assert_int_equal(parse(text, &m), 0);
		assert_int_equal(m.type, PP_TUN_MSG_AUTH);
		assert_true(m.u.auth.valid);
		assert_true(m.u.auth.has_invite);
		assert_memory_equal(m.u.auth.invite_id, iid, sizeof(iid));
		assert_memory_equal(m.u.auth.invite_mac, mac, sizeof(mac));
		free(text);
		assert_int_equal(parse("{\"type\":\"AUTH\",\"sig\":\"AAAA\","
		    "\"invite\":{\"id\":\"AAAA\",\"mac\":7}}", &m), 0);
		assert_false(m.u.auth.has_invite);
		assert_int_equal(parse("{\"type\":\"AUTH\",\"sig\":\"AAAA\","
		    "\"invite\":\"ESERERERERERERERERERER\"}", &m), 0);
		assert_false(m.u.auth.has_invite);
	}

	/* PORTS round trip */
	assert_int_equal(pp_tun_ports_build(ports, 2, &text), 0);
	assert_int_equal(parse(text, &m), 0);
	assert_int_equal(m.type, PP_TUN_MSG_PORTS);
	assert_int_equal(m.u.ports.nports, 2);
	assert_int_equal(m.u.ports.ports[1].port, 53);
	assert_int_equal(m.u.ports.ports[1].proto, PP_TUN_UDP);
	free(text);
	pp_id_free(id);
}

static void
test_v2_transcript(void **state)
{
	static const uint8_t n1[PP_TUN_NONCE_LEN] = { 1 }, n2[PP_TUN_NONCE_LEN] = { 2 };
	struct pp_tun_auth_view mine = { 1, "alice-1", "gw-office",
	    "123e4567-e89b-42d3-a456-426614174000", "AA:BB", "CC:DD", n1, n2 };
	struct pp_tun_auth_view theirs_view_of_me = { 1, "alice-1", "gw-office",
	    "123e4567-e89b-42d3-a456-426614174000", "AA:BB", "CC:DD", n1, n2 };
	struct pp_tun_auth_view mitm = mine;
	struct pp_identity *id;
	uint8_t pub[PP_ID_PUB_LEN], sig[PP_ID_SIG_LEN];
	char a[1024], b[1024];
	int na, nb;

	(void)state;
	na = pp_tun_auth_transcript(&mine, a, sizeof(a));
	assert_true(na > 0);
	/* the exact text (docs/identity.md) */
	assert_string_equal(a, "peerpipe-auth-v2\nrole=offerer\nsigner=alice-1\n"
	    "other=gw-office\nroom=123e4567-e89b-42d3-a456-426614174000\n"
	    "signer-fp=AA:BB\nother-fp=CC:DD\n"
	    "signer-nonce=AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
	    "other-nonce=AgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n");
	nb = pp_tun_auth_transcript(&theirs_view_of_me, b, sizeof(b));
	assert_int_equal(na, nb);
	assert_int_equal(pp_id_generate(&id), 0);
	pp_id_public(id, pub);
	assert_int_equal(pp_id_sign(id, a, (size_t)na, sig), 0);
	assert_int_equal(pp_id_verify(pub, b, (size_t)nb, sig), 0);
	/* a man in the middle's certificate on one side: the views differ */
	mitm.other_fp = "EE:FF";
	nb = pp_tun_auth_transcript(&mitm, b, sizeof(b));
	assert_int_equal(pp_id_verify(pub, b, (size_t)nb, sig), PP_EAUTH);
	/* too small a buffer is refused, never cut */
	assert_int_equal(pp_tun_auth_transcript(&mine, a, 40), PP_ETOOBIG);
	pp_id_free(id);
}

static void
test_envelope_table(void **state)
{
	for (size_t i = 0; i < sizeof(env_cases) / sizeof(env_cases[0]); i++) {
		struct pp_tun_msg m;

		print_message("envelope: %s\n", env_cases[i].in);
		assert_int_equal(parse(env_cases[i].in, &m), env_cases[i].rc);
		if (env_cases[i].rc == 0)
			assert_int_equal(m.type, env_cases[i].type);
	}
}

static void
test_size_cap(void **state)
{
	size_t n = PP_TUN_CTL_MAX + 1;
	char *buf = malloc(n);
	struct pp_tun_msg m;
	char err[ERRLEN];

	assert_non_null(buf);
	/* Valid JSON just over the cap: refused for its size alone. */
	memset(buf, ' ', n);
	memcpy(buf, "{\"type\":\"HELLO\"}", 16);
	assert_int_equal(pp_tun_msg_parse(buf, n, &m, err, sizeof(err)),
	    PP_ETOOBIG);
	assert_int_equal(pp_tun_msg_parse(buf, n - 1, &m, err, sizeof(err)), 0);
	assert_int_equal(m.type, PP_TUN_MSG_UNKNOWN);
	/* No error buffer is fine. */
	assert_int_equal(pp_tun_msg_parse("[]", 2, &m, NULL, 0), PP_EPROTO);
	free(buf);
}

/* --- BEGIN_PROXY, SUCCESS, FAILED ------------------------------------------ */

static const struct begin_case {
	const char *in;
	int uuid_valid, port_valid, proto_valid;
	uint16_t port;
	enum pp_tun_proto proto;
} begin_cases[] = {
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":5432,\"protocol\":\"TCP\",\"uuid\":\"" U "\"}",
	  1, 1, 1, 5432, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":1,\"protocol\":\"UDP\",\"uuid\":\"" U "\"}",
	  1, 1, 1, 1, PP_TUN_UDP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":65535,\"protocol\":\"TCP\",\"uuid\":\"" U "\"}",
	  1, 1, 1, 65535, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":0,\"protocol\":\"TCP\",\"uuid\":\"" U "\"}",
	  1, 0, 1, 0, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":65536,\"protocol\":\"TCP\",\"uuid\":\"" U "\"}",
	  1, 0, 1, 0, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":\"5432\",\"protocol\":\"TCP\",\"uuid\":\"" U "\"}",
	  1, 0, 1, 0, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":5432.0,\"protocol\":\"TCP\",\"uuid\":\"" U "\"}",
	  1, 0, 1, 0, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":-1,\"protocol\":\"tcp\",\"uuid\":\"" U "\"}",
	  1, 0, 0, 0, 0 },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"protocol\":\"SCTP\",\"uuid\":\"" U "\"}",
	  1, 1, 0, 22, 0 },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"uuid\":\"" U "\"}",
	  1, 1, 0, 22, 0 },
	/* uuids: canonical lowercase v4 only */
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"protocol\":\"TCP\",\"uuid\":\"123E4567-E89B-42D3-A456-426614174000\"}",
	  0, 1, 1, 22, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"protocol\":\"TCP\",\"uuid\":\"123e4567-e89b-12d3-a456-426614174000\"}",
	  0, 1, 1, 22, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"protocol\":\"TCP\",\"uuid\":\"123e4567e89b42d3a456426614174000\"}",
	  0, 1, 1, 22, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"protocol\":\"TCP\",\"uuid\":\"{" U "}\"}",
	  0, 1, 1, 22, PP_TUN_TCP },
	{ "{\"type\":\"BEGIN_PROXY\",\"port\":22,\"protocol\":\"TCP\"}",
	  0, 1, 1, 22, PP_TUN_TCP },
};

static void
test_begin_table(void **state)
{
	for (size_t i = 0; i < sizeof(begin_cases) / sizeof(begin_cases[0]); i++) {
		const struct begin_case *c = &begin_cases[i];
		struct pp_tun_msg m;

		print_message("begin: %s\n", c->in);
		assert_int_equal(parse(c->in, &m), 0);
		assert_int_equal(m.type, PP_TUN_MSG_BEGIN_PROXY);
		assert_int_equal(m.u.begin.uuid_valid, c->uuid_valid);
		assert_int_equal(m.u.begin.port_valid, c->port_valid);
		assert_int_equal(m.u.begin.proto_valid, c->proto_valid);
		if (c->uuid_valid)
			assert_string_equal(m.u.begin.uuid, U);
		else
			assert_string_equal(m.u.begin.uuid, "");
		if (c->port_valid)
			assert_int_equal(m.u.begin.port, c->port);
		if (c->proto_valid)
			assert_int_equal(m.u.begin.proto, c->proto);
	}
}

static const struct result_case {
	const char *in;
	enum pp_tun_msg_type type;
	int valid;
	const char *reason;
} result_cases[] = {
	{ "{\"type\":\"SUCCESS\",\"channel-name\":\"proxy-" U "\"}",
	  PP_TUN_MSG_SUCCESS, 1, "" },
	{ "{\"type\":\"FAILED\",\"channel-name\":\"proxy-" U "\",\"reason\":\"ACCESS_DENIED\"}",
	  PP_TUN_MSG_FAILED, 1, "ACCESS_DENIED" },
	{ "{\"type\":\"FAILED\",\"channel-name\":\"proxy-" U "\",\"reason\":7}",
	  PP_TUN_MSG_FAILED, 1, "" },
	{ "{\"type\":\"FAILED\",\"channel-name\":\"control-channel\",\"reason\":\"TIMEOUT\"}",
	  PP_TUN_MSG_FAILED, 0, "TIMEOUT" },
	{ "{\"type\":\"SUCCESS\",\"channel-name\":\"" U "\"}", PP_TUN_MSG_SUCCESS, 0, "" },
	{ "{\"type\":\"SUCCESS\",\"channel-name\":\"proxy-" U "x\"}", PP_TUN_MSG_SUCCESS, 0, "" },
	{ "{\"type\":\"SUCCESS\",\"channel-name\":\"Proxy-" U "\"}", PP_TUN_MSG_SUCCESS, 0, "" },
	{ "{\"type\":\"SUCCESS\",\"channel-name\":\"proxy-123E4567-E89B-42D3-A456-426614174000\"}",
	  PP_TUN_MSG_SUCCESS, 0, "" },
	{ "{\"type\":\"SUCCESS\",\"channel-name\":42}", PP_TUN_MSG_SUCCESS, 0, "" },
	{ "{\"type\":\"SUCCESS\"}", PP_TUN_MSG_SUCCESS, 0, "" },
	/* a peer's reason reaches our logs: no control characters, truncated
	 * to 63 bytes without splitting a UTF-8 sequence */
	{ "{\"type\":\"FAILED\",\"channel-name\":\"proxy-" U "\",\"reason\":\"a\\nb\\u001b[31m\"}",
	  PP_TUN_MSG_FAILED, 1, "a?b?[31m" },
	{ "{\"type\":\"FAILED\",\"channel-name\":\"proxy-" U "\",\"reason\":"
	  "\"12345678901234567890123456789012345678901234567890123456789012\\u00e9\"}",
	  PP_TUN_MSG_FAILED, 1,
	  "12345678901234567890123456789012345678901234567890123456789012" },
	{ "{\"type\":\"FAILED\",\"channel-name\":\"proxy-" U "\",\"reason\":"
	  "\"1234567890123456789012345678901234567890123456789012345678901\\u00e9\"}",
	  PP_TUN_MSG_FAILED, 1,
	  "1234567890123456789012345678901234567890123456789012345678901\xc3\xa9" },
};

static void
test_result_table(void **state)
{
	for (size_t i = 0; i < sizeof(result_cases) / sizeof(result_cases[0]); i++) {
		const struct result_case *c = &result_cases[i];
		struct pp_tun_msg m;

		print_message("result: %s\n", c->in);
		assert_int_equal(parse(c->in, &m), 0);
		assert_int_equal(m.type, c->type);
		assert_int_equal(m.u.result.channel_valid, c->valid);
		assert_string_equal(m.u.result.uuid, c->valid ? U : "");
		assert_string_equal(m.u.result.reason, c->reason);
	}
}

static void
test_proxy_label(void **state)
{
	char uuid[PP_TUN_UUID_LEN + 1] = "untouched";

	assert_int_equal(pp_tun_proxy_label_parse("proxy-" U, uuid), 1);
	assert_string_equal(uuid, U);
	assert_int_equal(pp_tun_proxy_label_parse("proxy-", uuid), 0);
	assert_int_equal(pp_tun_proxy_label_parse("proxy-" U "0", uuid), 0);
	assert_int_equal(pp_tun_proxy_label_parse("proxy" U, uuid), 0);
	assert_int_equal(pp_tun_proxy_label_parse(PP_TUN_CTL_LABEL, uuid), 0);
	assert_int_equal(pp_tun_proxy_label_parse("", uuid), 0);
	assert_int_equal(pp_tun_proxy_label_parse(NULL, uuid), 0);
}

static void
test_names(void **state)
{
	static const char *const names[] = { "none", "lz4", "zstd", "zstd-hc" };
	enum pp_tun_codec c;

	for (int i = 0; i < 4; i++) {
		assert_string_equal(pp_tun_codec_name((enum pp_tun_codec)i), names[i]);
		assert_int_equal(pp_tun_codec_parse(names[i], &c), 0);
		assert_int_equal(c, i);
	}
	assert_int_equal(pp_tun_codec_parse("zstd_hc", &c), PP_EINVAL);
	assert_int_equal(pp_tun_codec_parse("", &c), PP_EINVAL);
	assert_int_equal(pp_tun_codec_parse(NULL, &c), PP_EINVAL);
	assert_string_equal(pp_tun_codec_name((enum pp_tun_codec)9), "?");
	assert_string_equal(pp_tun_proto_name(PP_TUN_TCP), "TCP");
	assert_string_equal(pp_tun_proto_name(PP_TUN_UDP), "UDP");
}

/* --- negotiation ----------------------------------------------------------- */

#define F_ALL PP_TUN_F_ALL
#define F_FLOW PP_TUN_F_FLOW
#define F_AD PP_TUN_F_ADAPTIVE
#define F_ST PP_TUN_F_STREAM

/* One side's offer: codec, extended, unreliable, version, features, adaptive. */
struct offer {
	enum pp_tun_codec codec;
	int ext, unrel, version;
	unsigned features;
	int adaptive;
};

static const struct neg_case {
	const char *name;
	struct offer a, b;
	struct pp_tun_settings want;	/* codec ext unrel ver feat stream adapt flow */
} neg_cases[] = {
	{ "codec: the lower index wins",
	  { PP_CODEC_ZSTD_HC, 0, 0, 1, 0, 0 }, { PP_CODEC_LZ4, 0, 0, 1, 0, 0 },
	  { PP_CODEC_LZ4, 0, 0, 1, 0, 0, 0, 0 } },
	{ "codec: none with anything is none",
	  { PP_CODEC_NONE, 0, 0, 1, 0, 0 }, { PP_CODEC_ZSTD, 0, 0, 1, 0, 0 },
	  { PP_CODEC_NONE, 0, 0, 1, 0, 0, 0, 0 } },
	{ "codec: zstd and zstd-hc give zstd",
	  { PP_CODEC_ZSTD_HC, 0, 0, 1, 0, 0 }, { PP_CODEC_ZSTD, 0, 0, 1, 0, 0 },
	  { PP_CODEC_ZSTD, 0, 0, 1, 0, 0, 0, 0 } },
	{ "extended: both asked, zstd",
	  { PP_CODEC_ZSTD, 1, 0, 1, 0, 0 }, { PP_CODEC_ZSTD, 1, 0, 1, 0, 0 },
	  { PP_CODEC_ZSTD, 1, 0, 1, 0, 0, 0, 0 } },
	{ "extended: both asked, zstd-hc",
	  { PP_CODEC_ZSTD_HC, 1, 0, 1, 0, 0 }, { PP_CODEC_ZSTD_HC, 1, 0, 1, 0, 0 },
	  { PP_CODEC_ZSTD_HC, 1, 0, 1, 0, 0, 0, 0 } },
	{ "extended: not with lz4",
	  { PP_CODEC_LZ4, 1, 0, 1, 0, 0 }, { PP_CODEC_ZSTD, 1, 0, 1, 0, 0 },
	  { PP_CODEC_LZ4, 0, 0, 1, 0, 0, 0, 0 } },
	{ "extended: not with none",
	  { PP_CODEC_NONE, 1, 0, 1, 0, 0 }, { PP_CODEC_NONE, 1, 0, 1, 0, 0 },
	  { PP_CODEC_NONE, 0, 0, 1, 0, 0, 0, 0 } },
	{ "extended: one side only",
	  { PP_CODEC_ZSTD, 1, 0, 1, 0, 0 }, { PP_CODEC_ZSTD, 0, 0, 1, 0, 0 },
	  { PP_CODEC_ZSTD, 0, 0, 1, 0, 0, 0, 0 } },
	{ "unreliable: both asked",
	  { PP_CODEC_NONE, 0, 1, 1, 0, 0 }, { PP_CODEC_LZ4, 0, 1, 1, 0, 0 },
	  { PP_CODEC_NONE, 0, 1, 1, 0, 0, 0, 0 } },
	{ "unreliable: one side only",
	  { PP_CODEC_NONE, 0, 1, 1, 0, 0 }, { PP_CODEC_NONE, 0, 0, 1, 0, 0 },
	  { PP_CODEC_NONE, 0, 0, 1, 0, 0, 0, 0 } },
	{ "unreliable: suppressed by extended",
	  { PP_CODEC_ZSTD, 1, 1, 1, 0, 0 }, { PP_CODEC_ZSTD_HC, 1, 1, 1, 0, 0 },
	  { PP_CODEC_ZSTD, 1, 0, 1, 0, 0, 0, 0 } },
	{ "unreliable: kept when extended fails for lz4",
	  { PP_CODEC_LZ4, 1, 1, 1, 0, 0 }, { PP_CODEC_ZSTD, 1, 1, 1, 0, 0 },
	  { PP_CODEC_LZ4, 0, 1, 1, 0, 0, 0, 0 } },
	{ "v2: features intersected",
	  { PP_CODEC_LZ4, 0, 0, 2, F_FLOW | F_AD, 0 }, { PP_CODEC_LZ4, 0, 0, 2, F_FLOW | F_ST, 0 },
	  { PP_CODEC_LZ4, 0, 0, 2, F_FLOW, 0, 0, 1 } },
	{ "v2: version is the minimum; a v1 peer's features count for nothing",
	  { PP_CODEC_ZSTD, 1, 0, 2, F_ALL, 1 }, { PP_CODEC_ZSTD, 1, 0, 1, F_ALL, 1 },
	  { PP_CODEC_ZSTD, 1, 0, 1, 0, 0, 0, 0 } },
	{ "v2: a newer peer",
	  { PP_CODEC_LZ4, 0, 0, 3, F_ALL, 0 }, { PP_CODEC_LZ4, 0, 0, 2, F_ALL, 0 },
	  { PP_CODEC_LZ4, 0, 0, 2, F_ALL, 0, 0, 1 } },
	{ "v2: unknown feature bits dropped",
	  { PP_CODEC_LZ4, 0, 0, 2, 0xf00 | F_FLOW, 0 }, { PP_CODEC_LZ4, 0, 0, 2, 0xf00 | F_FLOW, 0 },
	  { PP_CODEC_LZ4, 0, 0, 2, F_FLOW, 0, 0, 1 } },
	{ "stream: extended and both have it",
	  { PP_CODEC_ZSTD, 1, 0, 2, F_ST, 0 }, { PP_CODEC_ZSTD_HC, 1, 0, 2, F_ST, 0 },
	  { PP_CODEC_ZSTD, 1, 0, 2, F_ST, 1, 0, 0 } },
	{ "stream: not without extended",
	  { PP_CODEC_ZSTD, 0, 0, 2, F_ST, 0 }, { PP_CODEC_ZSTD, 1, 0, 2, F_ST, 0 },
	  { PP_CODEC_ZSTD, 0, 0, 2, F_ST, 0, 0, 0 } },
	{ "stream: not with lz4 (extended off)",
	  { PP_CODEC_LZ4, 1, 0, 2, F_ST, 0 }, { PP_CODEC_ZSTD, 1, 0, 2, F_ST, 0 },
	  { PP_CODEC_LZ4, 0, 0, 2, F_ST, 0, 0, 0 } },
	{ "stream: one side lacks the feature (extended alone, per message)",
	  { PP_CODEC_ZSTD, 1, 1, 2, F_ST, 0 }, { PP_CODEC_ZSTD, 1, 1, 2, F_FLOW, 0 },
	  { PP_CODEC_ZSTD, 1, 0, 2, 0, 0, 0, 0 } },
	{ "adaptive: both asked and both have it",
	  { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 1 }, { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 1 },
	  { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 0, 1, 0 } },
	{ "adaptive: one side did not ask",
	  { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 1 }, { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 0 },
	  { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 0, 0, 0 } },
	{ "adaptive: asked, one side lacks the feature",
	  { PP_CODEC_ZSTD, 0, 0, 2, F_AD, 1 }, { PP_CODEC_ZSTD, 0, 0, 2, 0, 1 },
	  { PP_CODEC_ZSTD, 0, 0, 2, 0, 0, 0, 0 } },
	{ "adaptive: stream wins",
	  { PP_CODEC_ZSTD, 1, 0, 2, F_ALL, 1 }, { PP_CODEC_ZSTD, 1, 0, 2, F_ALL, 1 },
	  { PP_CODEC_ZSTD, 1, 0, 2, F_ALL, 1, 0, 1 } },
	{ "adaptive: kept when extended is off",
	  { PP_CODEC_ZSTD, 0, 1, 2, F_ALL, 1 }, { PP_CODEC_ZSTD, 1, 1, 2, F_ALL, 1 },
	  { PP_CODEC_ZSTD, 0, 1, 2, F_ALL, 0, 1, 1 } },
	{ "flow alone",
	  { PP_CODEC_NONE, 0, 0, 2, F_FLOW, 0 }, { PP_CODEC_NONE, 0, 0, 2, F_ALL, 0 },
	  { PP_CODEC_NONE, 0, 0, 2, F_FLOW, 0, 0, 1 } },
	{ "version 0 (unset) counts as 1",
	  { PP_CODEC_NONE, 0, 0, 0, F_ALL, 0 }, { PP_CODEC_NONE, 0, 0, 2, F_ALL, 0 },
	  { PP_CODEC_NONE, 0, 0, 1, 0, 0, 0, 0 } },
};

static void
offer_to_init(const struct offer *o, struct pp_tun_init *in)
{
	memset(in, 0, sizeof(*in));
	snprintf(in->il_user, sizeof(in->il_user), "peer");
	in->codec = o->codec;
	in->extended = o->ext;
	in->unreliable = o->unrel;
	in->version = o->version;
	in->features = o->features;
	in->adaptive = o->adaptive;
}

static void
check_settings(const struct pp_tun_settings *got,
    const struct pp_tun_settings *want)
{
	assert_int_equal(got->codec, want->codec);
	assert_int_equal(got->extended, want->extended);
	assert_int_equal(got->unreliable, want->unreliable);
	assert_int_equal(got->version, want->version);
	assert_int_equal(got->features, want->features);
	assert_int_equal(got->stream, want->stream);
	assert_int_equal(got->adaptive, want->adaptive);
	assert_int_equal(got->flow, want->flow);
}

static void
test_negotiate_table(void **state)
{
	for (size_t i = 0; i < sizeof(neg_cases) / sizeof(neg_cases[0]); i++) {
		const struct neg_case *c = &neg_cases[i];
		struct pp_tun_init a, b;
		struct pp_tun_settings s;

		print_message("negotiate: %s\n", c->name);
		offer_to_init(&c->a, &a);
		offer_to_init(&c->b, &b);
		pp_tun_negotiate(&a, &b, &s);
		check_settings(&s, &c->want);
		/* Both sides must come to the same settings. */
		pp_tun_negotiate(&b, &a, &s);
		check_settings(&s, &c->want);
	}
}

/* --- builders -------------------------------------------------------------- */

static void
test_init_roundtrip(void **state)
{
	struct pp_tun_init in;
	struct pp_tun_msg m;
	char *s;

	memset(&in, 0, sizeof(in));
	snprintf(in.il_user, sizeof(in.il_user), "alice_1");
	in.unreliable = 1;
	in.codec = PP_CODEC_ZSTD_HC;
	in.extended = 1;
	in.ports[0] = (struct pp_tun_port){ 22, PP_TUN_TCP };
	in.ports[1] = (struct pp_tun_port){ 5353, PP_TUN_UDP };
	in.ports[2] = (struct pp_tun_port){ 65535, PP_TUN_UDP };
	in.nports = 3;
	in.version = PP_TUN_VERSION;
	in.features = PP_TUN_F_FLOW | PP_TUN_F_STREAM | PP_TUN_F_RESTART |
	    PP_TUN_F_ZEROCSUM;
	in.adaptive = 1;
	assert_int_equal(pp_tun_init_build(&in, &s), 0);
	assert_non_null(strstr(s, "\"type\":\"INIT\""));
	assert_non_null(strstr(s, "\"compression_type\":\"zstd-hc\""));
	assert_non_null(strstr(s, "\"ports\":[\"22:TCP\",\"5353:UDP\",\"65535:UDP\"]"));
	assert_non_null(strstr(s,
	    "\"pp_features\":[\"flow\",\"stream\",\"ice-restart\","
	    "\"sctp-zero-checksum\"]"));
	assert_null(strchr(s, ' '));	/* compact */
	assert_int_equal(parse(s, &m), 0);
	free(s);
	assert_int_equal(m.type, PP_TUN_MSG_INIT);
	assert_string_equal(m.u.init.il_user, in.il_user);
	assert_int_equal(m.u.init.unreliable, 1);
	assert_int_equal(m.u.init.codec, PP_CODEC_ZSTD_HC);
	assert_int_equal(m.u.init.extended, 1);
	assert_int_equal(m.u.init.nports, 3);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(m.u.init.ports[i].port, in.ports[i].port);
		assert_int_equal(m.u.init.ports[i].proto, in.ports[i].proto);
	}
	assert_int_equal(m.u.init.version, PP_TUN_VERSION);
	assert_int_equal(m.u.init.features, in.features);
	assert_int_equal(m.u.init.adaptive, 1);

	/* v1 defaults: the v2 fields are still written. */
	memset(&in, 0, sizeof(in));
	snprintf(in.il_user, sizeof(in.il_user), "bob");
	assert_int_equal(pp_tun_init_build(&in, &s), 0);
	assert_string_equal(s, "{\"type\":\"INIT\",\"IL_user\":\"bob\",\"config\":"
	    "{\"unreliable_channels\":false,\"compression_type\":\"none\","
	    "\"extended_compression\":false},\"ports\":[],\"pp_version\":2,"
	    "\"pp_features\":[],\"pp_adaptive\":false}");
	assert_int_equal(parse(s, &m), 0);
	free(s);
	assert_int_equal(m.u.init.version, PP_TUN_VERSION);
	assert_int_equal(m.u.init.features, 0);
}

static void
test_init_build_invalid(void **state)
{
	struct pp_tun_init in;
	char *s = (char *)"x";

	memset(&in, 0, sizeof(in));
	assert_int_equal(pp_tun_init_build(&in, &s), PP_EINVAL);	/* no user */
	assert_null(s);
	snprintf(in.il_user, sizeof(in.il_user), "bob");
	in.nports = PP_TUN_MAX_PORTS + 1;
	assert_int_equal(pp_tun_init_build(&in, &s), PP_EINVAL);
	in.nports = 1;
	in.ports[0].port = 0;
	assert_int_equal(pp_tun_init_build(&in, &s), PP_EINVAL);
	in.ports[0].port = 80;
	in.codec = (enum pp_tun_codec)4;
	assert_int_equal(pp_tun_init_build(&in, &s), PP_EINVAL);
	in.codec = PP_CODEC_NONE;
	memset(in.il_user, 'a', sizeof(in.il_user));	/* no NUL */
	assert_int_equal(pp_tun_init_build(&in, &s), PP_EINVAL);
}

static void
test_other_builders(void **state)
{
	struct pp_tun_msg m;
	char *s;

	assert_int_equal(pp_tun_begin_build(5432, PP_TUN_UDP, U, &s), 0);
	assert_string_equal(s, "{\"type\":\"BEGIN_PROXY\",\"port\":5432,"
	    "\"protocol\":\"UDP\",\"uuid\":\"" U "\"}");
	assert_int_equal(parse(s, &m), 0);
	free(s);
	assert_int_equal(m.type, PP_TUN_MSG_BEGIN_PROXY);
	assert_true(m.u.begin.uuid_valid && m.u.begin.port_valid &&
	    m.u.begin.proto_valid);
	assert_int_equal(m.u.begin.port, 5432);
	assert_int_equal(m.u.begin.proto, PP_TUN_UDP);
	assert_string_equal(m.u.begin.uuid, U);

	assert_int_equal(pp_tun_success_build(U, &s), 0);
	assert_string_equal(s, "{\"type\":\"SUCCESS\",\"channel-name\":\"proxy-" U "\"}");
	assert_int_equal(parse(s, &m), 0);
	free(s);
	assert_int_equal(m.type, PP_TUN_MSG_SUCCESS);
	assert_int_equal(m.u.result.channel_valid, 1);
	assert_string_equal(m.u.result.uuid, U);

	assert_int_equal(pp_tun_failed_build(U, PP_TUN_ACCESS_DENIED, &s), 0);
	assert_string_equal(s, "{\"type\":\"FAILED\",\"channel-name\":\"proxy-" U
	    "\",\"reason\":\"ACCESS_DENIED\"}");
	assert_int_equal(parse(s, &m), 0);
	free(s);
	assert_int_equal(m.type, PP_TUN_MSG_FAILED);
	assert_int_equal(m.u.result.channel_valid, 1);
	assert_string_equal(m.u.result.reason, PP_TUN_ACCESS_DENIED);

	assert_int_equal(pp_tun_begin_build(0, PP_TUN_TCP, U, &s), PP_EINVAL);
	assert_int_equal(pp_tun_begin_build(80, PP_TUN_TCP, "nope", &s), PP_EINVAL);
	assert_int_equal(pp_tun_begin_build(80, (enum pp_tun_proto)7, U, &s), PP_EINVAL);
	assert_int_equal(pp_tun_success_build(NULL, &s), PP_EINVAL);
	assert_int_equal(pp_tun_success_build("123E4567-E89B-42D3-A456-426614174000",
	    &s), PP_EINVAL);
	assert_int_equal(pp_tun_failed_build(U, "", &s), PP_EINVAL);
	assert_int_equal(pp_tun_failed_build(U, NULL, &s), PP_EINVAL);
	assert_int_equal(pp_tun_failed_build(U, "bad \xff utf-8", &s), PP_EINVAL);
	assert_null(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_table),
		cmocka_unit_test(test_init_ports),
		cmocka_unit_test(test_init_port_limit),
		cmocka_unit_test(test_envelope_table),
		cmocka_unit_test(test_ping_pong),
		cmocka_unit_test(test_v2_auth_messages),
		cmocka_unit_test(test_v2_transcript),
		cmocka_unit_test(test_size_cap),
		cmocka_unit_test(test_begin_table),
		cmocka_unit_test(test_result_table),
		cmocka_unit_test(test_proxy_label),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_negotiate_table),
		cmocka_unit_test(test_init_roundtrip),
		cmocka_unit_test(test_init_build_invalid),
		cmocka_unit_test(test_other_builders),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
