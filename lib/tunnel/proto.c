/*
 * Tunnel v1 control messages and our v2 INIT fields (docs/tunnel.md).
 *
 * Two kinds of strictness live here on purpose.  The envelope is strict: a
 * control message that is not a JSON object with a string "type" is
 * PP_EPROTO, because existing peers tear the connection down for it and so
 * must we.  INIT's settings are lenient, because the spec says absent or
 * invalid settings take their defaults and invalid port entries are skipped:
 * each optional field is checked alone against its table entry and falls
 * back to its default when the check fails.
 */
#include "proto.h"

#include "base/b64.h"
#include "identity/identity.h"
#include "base/error.h"
#include "base/json.h"
#include "base/random.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

static const char *const codec_names[] = {
	[PP_CODEC_NONE] = "none",
	[PP_CODEC_LZ4] = "lz4",
	[PP_CODEC_ZSTD] = "zstd",
	[PP_CODEC_ZSTD_HC] = "zstd-hc",
};

/* Bit i of the feature mask is named feature_names[i]. */
static const char *const feature_names[] = { "flow", "adaptive", "stream",
    "ice-restart", "sctp-zero-checksum" };

const char *
pp_tun_codec_name(enum pp_tun_codec c)
{
	if ((unsigned)c >= NFIELDS(codec_names))
		return "?";
	return codec_names[c];
}

int
pp_tun_codec_parse(const char *s, enum pp_tun_codec *out)
{
	for (unsigned i = 0; s && i < NFIELDS(codec_names); i++) {
		if (strcmp(s, codec_names[i]) == 0) {
			*out = (enum pp_tun_codec)i;
			return 0;
		}
	}
	return PP_EINVAL;
}

const char *
pp_tun_proto_name(enum pp_tun_proto p)
{
	switch (p) {
	case PP_TUN_TCP: return "TCP";
	case PP_TUN_UDP: return "UDP";
	}
	return "?";
}

static int
proto_parse(const char *s, size_t len, enum pp_tun_proto *out)
{
	/* Exactly as deployed peers write them; "tcp" is not "TCP" to them. */
	if (len == 3 && memcmp(s, "TCP", 3) == 0)
		*out = PP_TUN_TCP;
	else if (len == 3 && memcmp(s, "UDP", 3) == 0)
		*out = PP_TUN_UDP;
	else
		return PP_EINVAL;
	return 0;
}

int
pp_tun_proxy_label_parse(const char *label, char uuid[PP_TUN_UUID_LEN + 1])
{
	const size_t plen = sizeof(PP_TUN_PROXY_PREFIX) - 1;

	if (label == NULL || strncmp(label, PP_TUN_PROXY_PREFIX, plen) != 0)
		return 0;
	label += plen;
	if (strlen(label) != PP_TUN_UUID_LEN ||
	    !pp_uuid4_valid(label, PP_TUN_UUID_LEN))
		return 0;
	memcpy(uuid, label, PP_TUN_UUID_LEN + 1);
	return 1;
}

/* --- parsing ------------------------------------------------------------ */

static int
uuid_ok(const char *s, size_t len)
{
	return pp_uuid4_valid(s, len);
}

static int
codec_ok(const char *s, size_t len)
{
	enum pp_tun_codec c;

	return strlen(s) == len && pp_tun_codec_parse(s, &c) == 0;
}

/* IL_user: required; too long to be anyone's name is not "lenient" territory. */
static const struct pp_jfield init_fields[] = {
	{ "IL_user", PP_JSTR, PP_JF_REQUIRED, 0, PP_TUN_NAME_MAX, NULL },
};

/* INIT's optional fields, each checked alone: a failure means "default". */
static const struct pp_jfield f_config = { "config", PP_JOBJ, 0, 0, 0, NULL };
static const struct pp_jfield f_unreliable =
	{ "unreliable_channels", PP_JBOOL, 0, 0, 0, NULL };
static const struct pp_jfield f_compression =
	{ "compression_type", PP_JSTR, 0, 1, 16, codec_ok };
static const struct pp_jfield f_extended =
	{ "extended_compression", PP_JBOOL, 0, 0, 0, NULL };
static const struct pp_jfield f_ports = { "ports", PP_JARR, 0, 0, 0, NULL };
/* Versions are small integers; 1 << 20 keeps "min of both" far from overflow. */
static const struct pp_jfield f_version =
	{ "pp_version", PP_JINT, 0, 1, 1 << 20, NULL };
static const struct pp_jfield f_features =
	{ "pp_features", PP_JARR, 0, 0, 0, NULL };
static const struct pp_jfield f_adaptive =
	{ "pp_adaptive", PP_JBOOL, 0, 0, 0, NULL };
static const struct pp_jfield f_id =
	{ "pp_id", PP_JSTR, 0, PP_ID_PUB_STRLEN, PP_ID_PUB_STRLEN, NULL };
static const struct pp_jfield f_nonce = { "pp_nonce", PP_JSTR, 0,
	PP_B64URL_LEN(PP_TUN_NONCE_LEN), PP_B64URL_LEN(PP_TUN_NONCE_LEN), NULL };
static const struct pp_jfield f_sig = { "sig", PP_JSTR, 0,
	PP_B64URL_LEN(PP_TUN_SIG_LEN), PP_B64URL_LEN(PP_TUN_SIG_LEN), NULL };

static const struct pp_jfield f_port = { "port", PP_JINT, 0, 1, 65535, NULL };
static const struct pp_jfield f_protocol =
	{ "protocol", PP_JSTR, 0, 3, 3, NULL };
static const struct pp_jfield f_uuid =
	{ "uuid", PP_JSTR, 0, PP_TUN_UUID_LEN, PP_TUN_UUID_LEN, uuid_ok };
static const struct pp_jfield f_channel =
	{ "channel-name", PP_JSTR, 0, 0, 64, NULL };
static const struct pp_jfield f_reason = { "reason", PP_JSTR, 0, 0, 0, NULL };

/* The field's value when it is present and passes its table entry, else NULL. */
static const json_t *
field(const json_t *obj, const struct pp_jfield *f)
{
	char scratch[8];
	const json_t *v;

	if (!json_is_object(obj) || (v = json_object_get(obj, f->name)) == NULL)
		return NULL;
	if (pp_json_check(obj, f, 1, scratch, sizeof(scratch)) < 0)
		return NULL;
	return json_is_null(v) ? NULL : v;
}

static int
flag_field(const json_t *obj, const struct pp_jfield *f)
{
	const json_t *v = field(obj, f);

	return v ? json_is_true(v) : 0;
}

/*
 * "PORT:PROTO" with PORT 1-65535 in plain decimal (no sign, no spaces, no
 * leading zeros: a peer that writes "0080" is not one we know) and PROTO
 * "TCP" or "UDP".
 */
static int
port_entry_parse(const json_t *v, struct pp_tun_port *out)
{
	const char *s, *colon;
	size_t len, dlen;
	unsigned long port = 0;

	if (!json_is_string(v))
		return PP_EINVAL;
	s = json_string_value(v);
	len = json_string_length(v);
	if ((colon = memchr(s, ':', len)) == NULL)
		return PP_EINVAL;
	dlen = (size_t)(colon - s);
	if (dlen == 0 || dlen > 5 || s[0] == '0')
		return PP_EINVAL;
	for (size_t i = 0; i < dlen; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PP_EINVAL;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	if (port > 65535)
		return PP_EINVAL;
	out->port = (uint16_t)port;
	return proto_parse(colon + 1, len - dlen - 1, &out->proto);
}

static int
parse_ports(const json_t *arr, struct pp_tun_init *in, char *err,
    size_t errlen)
{
	size_t i;
	const json_t *v;

	json_array_foreach(arr, i, v) {
		struct pp_tun_port p;
		size_t k;

		if (port_entry_parse(v, &p) < 0)
			continue;
		/* A duplicate would give the consumer two listeners for one port. */
		for (k = 0; k < in->nports; k++)
			if (in->ports[k].port == p.port &&
			    in->ports[k].proto == p.proto)
				break;
		if (k < in->nports)
			continue;
		if (in->nports == PP_TUN_MAX_PORTS) {
			snprintf(err, errlen, "INIT offers more than %d ports",
			    PP_TUN_MAX_PORTS);
			return PP_EPROTO;
		}
		in->ports[in->nports++] = p;
	}
	return 0;
}

static unsigned
parse_features(const json_t *arr)
{
	unsigned mask = 0;
	size_t i;
	const json_t *v;

	json_array_foreach(arr, i, v) {
		if (!json_is_string(v))
			continue;
		for (unsigned k = 0; k < NFIELDS(feature_names); k++)
			if (strcmp(json_string_value(v), feature_names[k]) == 0)
				mask |= 1u << k;
	}
	return mask;
}

static int
parse_init(const json_t *root, struct pp_tun_init *in, char *err,
    size_t errlen)
{
	const json_t *cfg, *v;

	if (pp_json_check(root, init_fields, NFIELDS(init_fields), err,
	    errlen) < 0)
		return PP_EPROTO;
	/* Length checked above, and jansson refuses NUL inside strings. */
	snprintf(in->il_user, sizeof(in->il_user), "%s",
	    json_string_value(json_object_get(root, "IL_user")));

	in->codec = PP_CODEC_NONE;
	if ((cfg = field(root, &f_config)) != NULL) {
		in->unreliable = flag_field(cfg, &f_unreliable);
		in->extended = flag_field(cfg, &f_extended);
		if ((v = field(cfg, &f_compression)) != NULL)
			(void)pp_tun_codec_parse(json_string_value(v), &in->codec);
	}
	if ((v = field(root, &f_ports)) != NULL &&
	    parse_ports(v, in, err, errlen) < 0)
		return PP_EPROTO;

	in->version = 1;
	if ((v = field(root, &f_version)) != NULL)
		in->version = (int)json_integer_value(v);
	if ((v = field(root, &f_features)) != NULL)
		in->features = parse_features(v);
	in->adaptive = flag_field(root, &f_adaptive);
	/* v2 identity: a malformed key or nonce reads as "no identity", and
	 * such a peer is then treated as unauthenticated, never as someone. */
	{
		const json_t *id = field(root, &f_id), *nonce = field(root, &f_nonce);

		if (id && nonce && in->version >= 2 &&
		    pp_id_pub_parse(json_string_value(id), json_string_length(id),
		    in->id) == 0 &&
		    pp_b64url_decode(json_string_value(nonce),
		    json_string_length(nonce), in->nonce, PP_TUN_NONCE_LEN) == 0)
			in->has_id = 1;
		else
			memset(in->id, 0, sizeof(in->id));
	}
	return 0;
}

static void
parse_begin(const json_t *root, struct pp_tun_begin *b)
{
	const json_t *v;

	if ((v = field(root, &f_uuid)) != NULL) {
		b->uuid_valid = 1;
		memcpy(b->uuid, json_string_value(v), PP_TUN_UUID_LEN + 1);
	}
	if ((v = field(root, &f_port)) != NULL) {
		b->port_valid = 1;
		b->port = (uint16_t)json_integer_value(v);
	}
	if ((v = field(root, &f_protocol)) != NULL &&
	    proto_parse(json_string_value(v), json_string_length(v),
	    &b->proto) == 0)
		b->proto_valid = 1;
}

/*
 * A peer's reason ends up in our logs: control characters become '?', and
 * truncation never splits a UTF-8 sequence.
 */
static void
copy_reason(char *dst, size_t size, const char *s, size_t len)
{
	size_t n = len < size - 1 ? len : size - 1;

	if (n < len)
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		dst[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	dst[n] = '\0';
}

static void
parse_result(const json_t *root, struct pp_tun_result *r)
{
	const json_t *v;

	if ((v = field(root, &f_channel)) != NULL)
		r->channel_valid = pp_tun_proxy_label_parse(json_string_value(v),
		    r->uuid);
	if ((v = field(root, &f_reason)) != NULL)
		copy_reason(r->reason, sizeof(r->reason), json_string_value(v),
		    json_string_length(v));
}

int
pp_tun_msg_parse(const void *buf, size_t len, struct pp_tun_msg *m,
    char *err, size_t errlen)
{
	char scratch[8];
	json_t *root = NULL;
	const json_t *type;
	const char *t;
	int rc;

	if (err == NULL || errlen == 0)
		err = scratch, errlen = sizeof(scratch);
	memset(m, 0, sizeof(*m));
	if ((rc = pp_json_parse(buf, len, PP_TUN_CTL_MAX, &root, err,
	    errlen)) < 0)
		return rc == PP_ETOOBIG ? rc : PP_EPROTO;
	type = json_object_get(root, "type");
	if (!json_is_object(root) || !json_is_string(type)) {
		snprintf(err, errlen, "control message is not a JSON object "
		    "with a string 'type'");
		rc = PP_EPROTO;
		goto out;
	}
	t = json_string_value(type);
	if (strcmp(t, "INIT") == 0) {
		m->type = PP_TUN_MSG_INIT;
		rc = parse_init(root, &m->u.init, err, errlen);
	} else if (strcmp(t, "BEGIN_PROXY") == 0) {
		m->type = PP_TUN_MSG_BEGIN_PROXY;
		parse_begin(root, &m->u.begin);
	} else if (strcmp(t, "SUCCESS") == 0 || strcmp(t, "FAILED") == 0) {
		m->type = t[0] == 'S' ? PP_TUN_MSG_SUCCESS : PP_TUN_MSG_FAILED;
		parse_result(root, &m->u.result);
	} else if (strcmp(t, "AUTH") == 0) {
		const json_t *sig = field(root, &f_sig);

		const json_t *inv = json_object_get(root, "invite");
		const json_t *iid = json_object_get(inv, "id");
		const json_t *imac = json_object_get(inv, "mac");

		m->type = PP_TUN_MSG_AUTH;
		m->u.auth.valid = sig && pp_b64url_decode(json_string_value(sig),
		    json_string_length(sig), m->u.auth.sig, PP_TUN_SIG_LEN) == 0;
		m->u.auth.has_invite = json_is_object(inv) && json_is_string(iid) &&
		    json_is_string(imac) && pp_b64url_decode(json_string_value(iid),
		    json_string_length(iid), m->u.auth.invite_id,
		    PP_TUN_INVITE_ID_LEN) == 0 &&
		    pp_b64url_decode(json_string_value(imac),
		    json_string_length(imac), m->u.auth.invite_mac,
		    PP_TUN_INVITE_MAC_LEN) == 0;
	} else if (strcmp(t, "PORTS") == 0) {
		struct pp_tun_init tmp;
		const json_t *v = field(root, &f_ports);

		m->type = PP_TUN_MSG_PORTS;
		memset(&tmp, 0, sizeof(tmp));
		if (v && (rc = parse_ports(v, &tmp, err, errlen)) < 0)
			rc = PP_EPROTO;
		memcpy(m->u.ports.ports, tmp.ports, sizeof(tmp.ports));
		m->u.ports.nports = tmp.nports;
	} else if (strcmp(t, "PING") == 0 || strcmp(t, "PONG") == 0) {
		const json_t *seq = json_object_get(root, "seq");

		m->type = t[1] == 'I' ? PP_TUN_MSG_PING : PP_TUN_MSG_PONG;
		if (json_is_integer(seq) && json_integer_value(seq) >= 0 &&
		    json_integer_value(seq) <= UINT32_MAX)
			m->u.seq = (uint32_t)json_integer_value(seq);
	} else {
		m->type = PP_TUN_MSG_UNKNOWN;
	}
out:
	if (rc < 0)
		memset(m, 0, sizeof(*m));
	json_decref(root);
	return rc;
}

/* --- negotiation -------------------------------------------------------- */

void
pp_tun_negotiate(const struct pp_tun_init *ours,
    const struct pp_tun_init *theirs, struct pp_tun_settings *out)
{
	int v1 = ours->version > 0 ? ours->version : 1;
	int v2 = theirs->version > 0 ? theirs->version : 1;

	memset(out, 0, sizeof(*out));
	out->codec = ours->codec < theirs->codec ? ours->codec : theirs->codec;
	out->extended = ours->extended && theirs->extended &&
	    (out->codec == PP_CODEC_ZSTD || out->codec == PP_CODEC_ZSTD_HC);
	out->unreliable = ours->unreliable && theirs->unreliable &&
	    !out->extended;
	out->version = v1 < v2 ? v1 : v2;
	/* A feature list means nothing from a peer that says it speaks v1. */
	if (out->version >= 2)
		out->features = ours->features & theirs->features & PP_TUN_F_ALL;
	out->stream = out->extended && (out->features & PP_TUN_F_STREAM);
	/* Stream wins over adaptive, as extended wins over unreliable: a
	 * channel-wide zstd stream cannot skip messages it never saw. */
	out->adaptive = ours->adaptive && theirs->adaptive &&
	    (out->features & PP_TUN_F_ADAPTIVE) && !out->stream;
	out->flow = (out->features & PP_TUN_F_FLOW) != 0;
}

/* --- builders ----------------------------------------------------------- */

static int
dump_to(json_t *o, char **out)
{
	*out = o ? pp_json_dump(o, NULL) : NULL;
	json_decref(o);
	return *out ? 0 : -ENOMEM;
}

/* Strings inside our own fixed-size fields: must be NUL-terminated in size. */
static int
str_in(const char *s, size_t size)
{
	return s != NULL && memchr(s, '\0', size) != NULL;
}

int
pp_tun_init_build(const struct pp_tun_init *in, char **out)
{
	json_t *o, *ports, *feats;

	*out = NULL;
	if (!str_in(in->il_user, sizeof(in->il_user)) ||
	    in->il_user[0] == '\0' || in->nports > PP_TUN_MAX_PORTS ||
	    (unsigned)in->codec >= NFIELDS(codec_names))
		return PP_EINVAL;
	for (size_t i = 0; i < in->nports; i++)
		if (in->ports[i].port == 0 || (in->ports[i].proto != PP_TUN_TCP &&
		    in->ports[i].proto != PP_TUN_UDP))
			return PP_EINVAL;
	o = json_pack("{s:s, s:s, s:{s:b, s:s, s:b}, s:[], s:i, s:[], s:b}",
	    "type", "INIT", "IL_user", in->il_user,
	    "config", "unreliable_channels", in->unreliable != 0,
	    "compression_type", pp_tun_codec_name(in->codec),
	    "extended_compression", in->extended != 0,
	    "ports",
	    "pp_version", in->version > 0 ? in->version : PP_TUN_VERSION,
	    "pp_features",
	    "pp_adaptive", in->adaptive != 0);
	if (o == NULL)
		return -ENOMEM;
	if (in->has_id) {
		char id[PP_ID_PUB_STRLEN + 1];
		char nonce[PP_B64URL_LEN(PP_TUN_NONCE_LEN) + 1];

		pp_id_pub_format(in->id, id, sizeof(id));
		pp_b64url_encode(in->nonce, PP_TUN_NONCE_LEN, nonce);
		if (json_object_set_new(o, "pp_id", json_string(id)) < 0 ||
		    json_object_set_new(o, "pp_nonce", json_string(nonce)) < 0)
			goto nomem;
	}
	ports = json_object_get(o, "ports");
	feats = json_object_get(o, "pp_features");
	for (size_t i = 0; i < in->nports; i++) {
		char s[16];

		snprintf(s, sizeof(s), "%u:%s", in->ports[i].port,
		    pp_tun_proto_name(in->ports[i].proto));
		if (json_array_append_new(ports, json_string(s)) < 0)
			goto nomem;
	}
	for (unsigned k = 0; k < NFIELDS(feature_names); k++)
		if ((in->features & (1u << k)) &&
		    json_array_append_new(feats, json_string(feature_names[k])) < 0)
			goto nomem;
	return dump_to(o, out);
nomem:
	json_decref(o);
	return -ENOMEM;
}

int
pp_tun_begin_build(uint16_t port, enum pp_tun_proto proto, const char *uuid,
    char **out)
{
	*out = NULL;
	if (port == 0 || (proto != PP_TUN_TCP && proto != PP_TUN_UDP) ||
	    uuid == NULL || !pp_uuid4_valid(uuid, strlen(uuid)))
		return PP_EINVAL;
	return dump_to(json_pack("{s:s, s:i, s:s, s:s}", "type", "BEGIN_PROXY",
	    "port", (int)port, "protocol", pp_tun_proto_name(proto),
	    "uuid", uuid), out);
}

static int
result_build(const char *type, const char *uuid, const char *reason,
    char **out)
{
	char label[sizeof(PP_TUN_PROXY_PREFIX) + PP_TUN_UUID_LEN];
	json_t *o;

	*out = NULL;
	if (uuid == NULL || !pp_uuid4_valid(uuid, strlen(uuid)))
		return PP_EINVAL;
	snprintf(label, sizeof(label), "%s%s", PP_TUN_PROXY_PREFIX, uuid);
	o = json_pack("{s:s, s:s}", "type", type, "channel-name", label);
	if (o && reason &&
	    json_object_set_new(o, "reason", json_string(reason)) < 0) {
		json_decref(o);
		return PP_EINVAL;	/* not UTF-8 */
	}
	return dump_to(o, out);
}

int
pp_tun_success_build(const char *uuid, char **out)
{
	return result_build("SUCCESS", uuid, NULL, out);
}

int
pp_tun_failed_build(const char *uuid, const char *reason, char **out)
{
	if (reason == NULL || reason[0] == '\0')
		return *out = NULL, PP_EINVAL;
	return result_build("FAILED", uuid, reason, out);
}

int
pp_tun_ping_build(int pong, uint32_t seq, char **out)
{
	*out = NULL;
	return dump_to(json_pack("{s:s, s:I}", "type", pong ? "PONG" : "PING",
	    "seq", (json_int_t)seq), out);
}

int
pp_tun_auth_build(const uint8_t sig[PP_TUN_SIG_LEN], char **out)
{
	char text[PP_B64URL_LEN(PP_TUN_SIG_LEN) + 1];

	*out = NULL;
	pp_b64url_encode(sig, PP_TUN_SIG_LEN, text);
	return dump_to(json_pack("{s:s, s:s}", "type", "AUTH", "sig", text), out);
}

int
pp_tun_auth_invite_build(const uint8_t sig[PP_TUN_SIG_LEN],
    const uint8_t id[PP_TUN_INVITE_ID_LEN],
    const uint8_t mac[PP_TUN_INVITE_MAC_LEN], char **out)
{
	char text[PP_B64URL_LEN(PP_TUN_SIG_LEN) + 1];
	char idt[PP_B64URL_LEN(PP_TUN_INVITE_ID_LEN) + 1];
	char mact[PP_B64URL_LEN(PP_TUN_INVITE_MAC_LEN) + 1];

	*out = NULL;
	pp_b64url_encode(sig, PP_TUN_SIG_LEN, text);
	pp_b64url_encode(id, PP_TUN_INVITE_ID_LEN, idt);
	pp_b64url_encode(mac, PP_TUN_INVITE_MAC_LEN, mact);
	return dump_to(json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "AUTH",
	    "sig", text, "invite", "id", idt, "mac", mact), out);
}

int
pp_tun_ports_build(const struct pp_tun_port *ports, size_t n, char **out)
{
	json_t *o, *arr;

	*out = NULL;
	if (n > PP_TUN_MAX_PORTS)
		return PP_EINVAL;
	if ((o = json_pack("{s:s, s:[]}", "type", "PORTS", "ports")) == NULL)
		return -ENOMEM;
	arr = json_object_get(o, "ports");
	for (size_t i = 0; i < n; i++) {
		char s[16];

		snprintf(s, sizeof(s), "%u:%s", ports[i].port,
		    pp_tun_proto_name(ports[i].proto));
		if (ports[i].port == 0 ||
		    json_array_append_new(arr, json_string(s)) < 0) {
			json_decref(o);
			return PP_EINVAL;
		}
	}
	return dump_to(o, out);
}

int
pp_tun_auth_transcript(const struct pp_tun_auth_view *v, char *out, size_t cap)
{
	char sn[PP_B64URL_LEN(PP_TUN_NONCE_LEN) + 1];
	char on[PP_B64URL_LEN(PP_TUN_NONCE_LEN) + 1];
	int n;

	pp_b64url_encode(v->signer_nonce, PP_TUN_NONCE_LEN, sn);
	pp_b64url_encode(v->other_nonce, PP_TUN_NONCE_LEN, on);
	/* One field a line; names and fingerprints hold no newline (names are
	 * checked by the signaling rules, fingerprints come from our SDP code). */
	n = snprintf(out, cap, "peerpipe-auth-v2\nrole=%s\nsigner=%s\nother=%s\n"
	    "room=%s\nsigner-fp=%s\nother-fp=%s\nsigner-nonce=%s\n"
	    "other-nonce=%s\n", v->offerer ? "offerer" : "answerer",
	    v->signer_name, v->other_name, v->room_uuid, v->signer_fp,
	    v->other_fp, sn, on);
	if (n < 0 || (size_t)n >= cap)
		return PP_ETOOBIG;
	return n;
}
