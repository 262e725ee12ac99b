#include "msg.h"
#include "base/b64.h"
#include "base/error.h"
#include "base/json.h"
#include "identity/identity.h"

#include <stdio.h>
#include <string.h>

static const char *const type_names[] = {
	[PP_SIG_NEW_ROOM] = "NEW_ROOM",
	[PP_SIG_JOIN_ROOM] = "JOIN_ROOM",
	[PP_SIG_FAST_ROOM_EXACT] = "FAST_ROOM_EXACT",
	[PP_SIG_LEAVE_ROOM] = "LEAVE_ROOM",
	[PP_SIG_SDP_NEW_STATE] = "SDP_NEW_STATE",
	[PP_SIG_TURN_CREDENTIALS] = "TURN_CREDENTIALS",
	[PP_SIG_AUTH_CHALLENGE] = "AUTH_CHALLENGE",
};

static const char *const sdp_type_names[] = {
	[PP_SIG_SDP_OFFER] = "offer",
	[PP_SIG_SDP_ANSWER] = "answer",
	[PP_SIG_SDP_CANDIDATE] = "candidate",
};

int
pp_sig_name_valid(const char *s, size_t len)
{
	static const char extra[] = "_+-=/ $%#@!?,;()[]";

	if (len < PP_SIG_NAME_MIN || len > PP_SIG_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9'))
			continue;
		if (c == '\0' || strchr(extra, c) == NULL)
			return 0;
	}
	return 1;
}

static int
uuid_ok(const char *s, size_t len)
{
	return pp_uuid4_valid(s, len);
}

const char *
pp_sig_sdp_type_name(enum pp_sig_sdp_type t)
{
	return sdp_type_names[t];
}

#define NAME_FIELD(n) { n, PP_JSTR, PP_JF_REQUIRED, PP_SIG_NAME_MIN, \
	PP_SIG_NAME_MAX, pp_sig_name_valid }
#define UUID_FIELD { "room_uuid", PP_JSTR, PP_JF_REQUIRED, PP_UUID_STRLEN, \
	PP_UUID_STRLEN, uuid_ok }

static int
id_ok(const char *s, size_t len)
{
	unsigned char k[PP_SIG_KEY_LEN];

	return pp_id_pub_parse(s, len, k) == 0;
}

static int
sig_ok(const char *s, size_t len)
{
	unsigned char g[PP_SIG_SIG_LEN];

	return pp_b64url_decode(s, len, g, sizeof(g)) == 0;
}

/* v2: optional on the requests that put a name in a room (both or neither) */
#define AUTH_FIELDS \
	{ "pp_id", PP_JSTR, 0, PP_ID_PUB_STRLEN, PP_ID_PUB_STRLEN, id_ok }, \
	{ "pp_sig", PP_JSTR, 0, PP_B64URL_LEN(PP_SIG_SIG_LEN), \
	    PP_B64URL_LEN(PP_SIG_SIG_LEN), sig_ok }

static const struct pp_jfield new_room_fields[] = {
	NAME_FIELD("room_name"),
	NAME_FIELD("user_name"),
	AUTH_FIELDS,
};

static const struct pp_jfield join_fields[] = {
	UUID_FIELD,
	NAME_FIELD("room_name"),
	NAME_FIELD("user_name"),
	AUTH_FIELDS,
};

static const struct pp_jfield room_fields[] = {
	UUID_FIELD,
	NAME_FIELD("room_name"),
	NAME_FIELD("user_name"),
};

static const struct pp_jfield sdp_fields[] = {
	UUID_FIELD,
	NAME_FIELD("room_name"),
	NAME_FIELD("user_name"),
	NAME_FIELD("target_user"),
	{ "sdp_type", PP_JSTR, PP_JF_REQUIRED, 1, 16, NULL },
	{ "sdp_data", PP_JANY, PP_JF_REQUIRED, 0, 0, NULL },
};

#define NFIELDS(t) (sizeof(t) / sizeof((t)[0]))

static void
copy_str(char *dst, size_t size, const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	/* Lengths were checked against the field table, so this never truncates. */
	snprintf(dst, size, "%s", v ? json_string_value(v) : "");
}

static int
parse_sdp(json_t *root, struct pp_sig_request *req, char *err, size_t errlen)
{
	const char *t = json_string_value(json_object_get(root, "sdp_type"));
	json_t *data = json_object_get(root, "sdp_data");
	unsigned i;

	for (i = 0; i < NFIELDS(sdp_type_names); i++)
		if (strcmp(t, sdp_type_names[i]) == 0)
			break;
	if (i == NFIELDS(sdp_type_names)) {
		snprintf(err, errlen, "field 'sdp_type': must be offer, answer or candidate");
		return PP_EINVAL;
	}
	req->sdp_type = (enum pp_sig_sdp_type)i;
	if (req->sdp_type == PP_SIG_SDP_CANDIDATE ? !json_is_object(data)
	    : !json_is_string(data)) {
		snprintf(err, errlen, "field 'sdp_data': must be %s for %s",
		    req->sdp_type == PP_SIG_SDP_CANDIDATE ? "an object" : "a string",
		    t);
		return PP_EINVAL;
	}
	req->sdp_data = json_incref(data);
	return 0;
}

/* pp_id and pp_sig: both or neither; their form was checked already. */
static int
parse_auth(json_t *root, struct pp_sig_request *req, char *err, size_t errlen)
{
	json_t *id = json_object_get(root, "pp_id");
	json_t *sig = json_object_get(root, "pp_sig");

	if (id == NULL && sig == NULL)
		return 0;
	if (id == NULL || sig == NULL) {
		snprintf(err, errlen, "fields 'pp_id' and 'pp_sig' go together");
		return PP_EINVAL;
	}
	if (pp_id_pub_parse(json_string_value(id), json_string_length(id),
	    req->id) < 0 || pp_b64url_decode(json_string_value(sig),
	    json_string_length(sig), req->sig, sizeof(req->sig)) < 0) {
		snprintf(err, errlen, "fields 'pp_id'/'pp_sig' malformed");
		return PP_EINVAL;
	}
	req->has_id = 1;
	return 0;
}

int
pp_sig_auth_transcript(const unsigned char nonce[PP_SIG_NONCE_LEN],
    const char *room_uuid, const char *room_name, const char *user_name,
    char *out, size_t cap)
{
	char n[PP_B64URL_LEN(PP_SIG_NONCE_LEN) + 1];
	int len;

	pp_b64url_encode(nonce, PP_SIG_NONCE_LEN, n);
	len = snprintf(out, cap, "%s\nnonce=%s\nroom-uuid=%s\nroom-name=%s\n"
	    "user=%s\n", PP_SIG_AUTH_CONTEXT, n, room_uuid, room_name, user_name);
	if (len < 0 || (size_t)len >= cap)
		return PP_ETOOBIG;
	return len;
}

int
pp_sig_parse(const char *buf, size_t len, size_t cap,
    struct pp_sig_request *req, const char **reason, char *err, size_t errlen)
{
	const struct pp_jfield *table;
	json_t *root = NULL, *type;
	size_t ntable;
	unsigned i;
	int rc;

	memset(req, 0, sizeof(*req));
	*reason = PP_SIG_R_INVALID;
	if ((rc = pp_json_parse(buf, len, cap, &root, err, errlen)) < 0)
		return rc;
	if (!json_is_object(root)) {
		snprintf(err, errlen, "message must be a JSON object");
		rc = PP_EINVAL;
		goto out;
	}
	type = json_object_get(root, "type");
	for (i = 0; json_is_string(type) && i < NFIELDS(type_names); i++)
		if (strcmp(json_string_value(type), type_names[i]) == 0)
			break;
	if (!json_is_string(type) || i == NFIELDS(type_names)) {
		*reason = PP_SIG_R_UNKNOWN;
		snprintf(err, errlen, "unknown or missing 'type'");
		rc = PP_EINVAL;
		goto out;
	}
	req->type = (enum pp_sig_type)i;
	switch (req->type) {
	case PP_SIG_NEW_ROOM:
		table = new_room_fields, ntable = NFIELDS(new_room_fields);
		break;
	case PP_SIG_SDP_NEW_STATE:
		table = sdp_fields, ntable = NFIELDS(sdp_fields);
		break;
	case PP_SIG_TURN_CREDENTIALS:
	case PP_SIG_AUTH_CHALLENGE:
		/* no fields: the room and user are the connection's own */
		table = NULL, ntable = 0;
		break;
	case PP_SIG_JOIN_ROOM:
	case PP_SIG_FAST_ROOM_EXACT:
		table = join_fields, ntable = NFIELDS(join_fields);
		break;
	default:
		table = room_fields, ntable = NFIELDS(room_fields);
		break;
	}
	if ((rc = pp_json_check(root, table, ntable, err, errlen)) < 0)
		goto out;
	copy_str(req->room_uuid, sizeof(req->room_uuid), root, "room_uuid");
	copy_str(req->room_name, sizeof(req->room_name), root, "room_name");
	copy_str(req->user_name, sizeof(req->user_name), root, "user_name");
	if (req->type == PP_SIG_SDP_NEW_STATE) {
		copy_str(req->target_user, sizeof(req->target_user), root,
		    "target_user");
		rc = parse_sdp(root, req, err, errlen);
	} else if (table == new_room_fields || table == join_fields) {
		rc = parse_auth(root, req, err, errlen);
	}
out:
	json_decref(root);
	return rc;
}

void
pp_sig_request_fini(struct pp_sig_request *req)
{
	json_decref(req->sdp_data);
	req->sdp_data = NULL;
}

char *
pp_sig_build(const char *type, json_t *data, size_t *len)
{
	json_t *o = json_object();
	char *s = NULL;

	if (o == NULL || json_object_set_new(o, "type", json_string(type)) < 0)
		goto out;
	if (data && json_object_set(o, "data", data) < 0)
		goto out;
	s = pp_json_dump(o, len);
out:
	json_decref(data);
	json_decref(o);
	return s;
}

char *
pp_sig_build_failed(const char *reason, size_t *len)
{
	return pp_sig_build("FAILED", json_pack("{s:s}", "reason", reason), len);
}

json_t *
pp_sig_join_build(const char *room_uuid, const char *room_name,
    const char *user_name, const struct pp_identity *id,
    const unsigned char *nonce)
{
	char text[512], key[PP_ID_PUB_STRLEN + 1];
	char sig[PP_B64URL_LEN(PP_SIG_SIG_LEN) + 1];
	uint8_t raw[PP_SIG_SIG_LEN];
	json_t *m;
	int n;

	m = json_pack("{s:s, s:s, s:s, s:s}", "type", "FAST_ROOM_EXACT",
	    "room_uuid", room_uuid, "room_name", room_name, "user_name",
	    user_name);
	if (m == NULL || id == NULL || nonce == NULL)
		return m;
	n = pp_sig_auth_transcript(nonce, room_uuid, room_name, user_name, text,
	    sizeof(text));
	if (n < 0 || pp_id_sign(id, text, (size_t)n, raw) < 0) {
		json_decref(m);
		return NULL;
	}
	pp_b64url_encode(raw, sizeof(raw), sig);
	pp_id_public_text(id, key, sizeof(key));
	if (json_object_set_new(m, "pp_id", json_string(key)) < 0 ||
	    json_object_set_new(m, "pp_sig", json_string(sig)) < 0) {
		json_decref(m);
		return NULL;
	}
	return m;
}
