/*
 * Invite tokens: the codec, the MAC and the gateway's store.  See invite.h.
 */
#include "agent/invite.h"

#include "base/b64.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/random.h"
#include "identity/identity.h"
#include "signal/msg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SUB "invite"
#define PREFIX_LEN (sizeof(PP_INVITE_PREFIX) - 1)
/* Used or expired tokens are forgotten this long after they expired. */
#define KEEP_AFTER_EXPIRY (30 * 86400)

/* ---- codec ---- */

void
pp_invite_id_text(const uint8_t id[PP_INVITE_ID_LEN], char out[23])
{
	pp_b64url_encode(id, PP_INVITE_ID_LEN, out);
}

int
pp_invite_format(const struct pp_invite *inv, char *out, size_t cap)
{
	char key[PP_ID_PUB_STRLEN + 1], id[23];
	char secret[PP_B64URL_LEN(PP_INVITE_SECRET_LEN) + 1];
	size_t len, need;
	json_t *o;
	char *js;

	pp_id_pub_format(inv->gateway_key, key, sizeof(key));
	pp_invite_id_text(inv->id, id);
	pp_b64url_encode(inv->secret, PP_INVITE_SECRET_LEN, secret);
	o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "v", 1,
	    "gw", inv->gateway, "key", key, "room", inv->room_name, "uuid",
	    inv->room_uuid, "url", inv->url, "id", id, "secret", secret, "exp",
	    (json_int_t)inv->expires);
	OPENSSL_cleanse(secret, sizeof(secret));
	js = o ? pp_json_dump(o, &len) : NULL;
	json_decref(o);
	if (js == NULL)
		return -ENOMEM;
	need = PREFIX_LEN + PP_B64URL_LEN(len);
	if (need + 1 > cap || need + 1 > PP_INVITE_TEXT_MAX) {
		OPENSSL_cleanse(js, len);
		free(js);
		return PP_ETOOBIG;
	}
	memcpy(out, PP_INVITE_PREFIX, PREFIX_LEN);
	pp_b64url_encode((const uint8_t *)js, len, out + PREFIX_LEN);
	OPENSSL_cleanse(js, len);
	free(js);
	return (int)need;
}

static int
url_ok(const char *s, size_t len)
{
	if (len < 6 || (strncmp(s, "wss://", 6) != 0 && strncmp(s, "ws://", 5) != 0))
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return 0;
	return 1;
}

static int
uuid_ok(const char *s, size_t len)
{
	return pp_uuid4_valid(s, len);
}

static int
key_ok(const char *s, size_t len)
{
	uint8_t k[PP_TUN_KEY_LEN];

	return pp_id_pub_parse(s, len, k) == 0;
}

static const struct pp_jfield token_fields[] = {
	{ "v", PP_JINT, PP_JF_REQUIRED, 1, 1, NULL },
	{ "gw", PP_JSTR, PP_JF_REQUIRED, PP_SIG_NAME_MIN, PP_SIG_NAME_MAX,
	    pp_sig_name_valid },
	{ "key", PP_JSTR, PP_JF_REQUIRED, PP_ID_PUB_STRLEN, PP_ID_PUB_STRLEN,
	    key_ok },
	{ "room", PP_JSTR, PP_JF_REQUIRED, PP_SIG_NAME_MIN, PP_SIG_NAME_MAX,
	    pp_sig_name_valid },
	{ "uuid", PP_JSTR, PP_JF_REQUIRED, PP_TUN_UUID_LEN, PP_TUN_UUID_LEN,
	    uuid_ok },
	{ "url", PP_JSTR, PP_JF_REQUIRED, 6, PP_INVITE_URL_MAX, url_ok },
	{ "id", PP_JSTR, PP_JF_REQUIRED, PP_B64URL_LEN(PP_INVITE_ID_LEN),
	    PP_B64URL_LEN(PP_INVITE_ID_LEN), NULL },
	{ "secret", PP_JSTR, PP_JF_REQUIRED, PP_B64URL_LEN(PP_INVITE_SECRET_LEN),
	    PP_B64URL_LEN(PP_INVITE_SECRET_LEN), NULL },
	{ "exp", PP_JINT, PP_JF_REQUIRED, 1, 253402300799LL, NULL },
};

static const char *
jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

int
pp_invite_parse(const char *text, size_t len, struct pp_invite *inv,
    char *err, size_t errlen)
{
	size_t blen, jlen;
	uint8_t *js = NULL;
	json_t *o = NULL;
	char why[160];
	int rc = PP_EINVAL;

	memset(inv, 0, sizeof(*inv));
	while (len > 0 && (*text == ' ' || *text == '\t' || *text == '\n' ||
	    *text == '\r'))
		text++, len--;
	while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\t' ||
	    text[len - 1] == '\n' || text[len - 1] == '\r'))
		len--;
	if (len > PP_INVITE_TEXT_MAX) {
		snprintf(err, errlen, "invite token: %zu characters, at most %d: "
		    "is this the whole token?", len, PP_INVITE_TEXT_MAX);
		return PP_EINVAL;
	}
	if (len < PREFIX_LEN || memcmp(text, PP_INVITE_PREFIX, PREFIX_LEN) != 0) {
		snprintf(err, errlen, "invite token: does not start with \"%s\": "
		    "copy the whole line `peerpipe invite` printed",
		    PP_INVITE_PREFIX);
		return PP_EINVAL;
	}
	text += PREFIX_LEN;
	blen = len - PREFIX_LEN;
	/* base64url length n*8/6 rounded up: 1 left over is never valid */
	jlen = blen * 6 / 8;
	if (blen == 0 || PP_B64URL_LEN(jlen) != blen ||
	    (js = malloc(jlen + 1)) == NULL ||
	    pp_b64url_decode(text, blen, js, jlen) < 0) {
		snprintf(err, errlen, "invite token: damaged (not base64url): "
		    "copy the whole line again");
		goto out;
	}
	if (pp_json_parse((const char *)js, jlen, PP_INVITE_TEXT_MAX, &o, why,
	    sizeof(why)) < 0 || !json_is_object(o) ||
	    pp_json_check(o, token_fields, sizeof(token_fields) /
	    sizeof(token_fields[0]), why, sizeof(why)) < 0) {
		if (o && !json_is_object(o))
			snprintf(why, sizeof(why), "not a JSON object");
		snprintf(err, errlen, "invite token: damaged or not an invite "
		    "(%s)", why);
		goto out;
	}
	snprintf(inv->gateway, sizeof(inv->gateway), "%s", jstr(o, "gw"));
	(void)pp_id_pub_parse(jstr(o, "key"), strlen(jstr(o, "key")),
	    inv->gateway_key);
	snprintf(inv->room_name, sizeof(inv->room_name), "%s", jstr(o, "room"));
	snprintf(inv->room_uuid, sizeof(inv->room_uuid), "%s", jstr(o, "uuid"));
	snprintf(inv->url, sizeof(inv->url), "%s", jstr(o, "url"));
	inv->expires = (int64_t)json_integer_value(json_object_get(o, "exp"));
	if (pp_b64url_decode(jstr(o, "id"), strlen(jstr(o, "id")), inv->id,
	    PP_INVITE_ID_LEN) < 0 || pp_b64url_decode(jstr(o, "secret"),
	    strlen(jstr(o, "secret")), inv->secret, PP_INVITE_SECRET_LEN) < 0) {
		snprintf(err, errlen, "invite token: damaged (its id or secret is "
		    "not base64url)");
		goto out;
	}
	rc = 0;
out:
	if (o) {
		/* The secret's text lives in the parsed object too: jansson's
		 * own heap copy, which it shows us only as const. */
		json_t *sv = json_object_get(o, "secret");

		if (json_is_string(sv))
			OPENSSL_cleanse((void *)(uintptr_t)json_string_value(sv),
			    json_string_length(sv));
		json_decref(o);
	}
	if (js) {
		OPENSSL_cleanse(js, jlen);
		free(js);
	}
	if (rc < 0)
		OPENSSL_cleanse(inv, sizeof(*inv));
	return rc;
}

int
pp_invite_mac(const uint8_t secret[PP_INVITE_SECRET_LEN], const void *transcript,
    size_t len, uint8_t mac[PP_INVITE_MAC_LEN])
{
	size_t clen = sizeof(PP_INVITE_MAC_CONTEXT) - 1;
	unsigned int mlen = PP_INVITE_MAC_LEN;
	uint8_t *buf = malloc(clen + len + 1);
	int ok;

	if (buf == NULL)
		return -ENOMEM;
	memcpy(buf, PP_INVITE_MAC_CONTEXT, clen);
	memcpy(buf + clen, transcript, len);
	ok = HMAC(EVP_sha256(), secret, PP_INVITE_SECRET_LEN, buf, clen + len,
	    mac, &mlen) != NULL && mlen == PP_INVITE_MAC_LEN;
	free(buf);
	return ok ? 0 : PP_EINVAL;
}

int
pp_invite_mac_check(const uint8_t secret[PP_INVITE_SECRET_LEN],
    const void *transcript, size_t len, const uint8_t mac[PP_INVITE_MAC_LEN])
{
	uint8_t want[PP_INVITE_MAC_LEN];
	int rc;

	if ((rc = pp_invite_mac(secret, transcript, len, want)) < 0)
		return rc;
	rc = CRYPTO_memcmp(want, mac, PP_INVITE_MAC_LEN) == 0 ? 0 : PP_EAUTH;
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}

/* ---- the store ---- */

struct entry {
	uint8_t id[PP_INVITE_ID_LEN];
	uint8_t secret[PP_INVITE_SECRET_LEN];
	char group[PP_INVITE_GROUP_MAX + 1];
	int64_t created, expires, used_at;	/* used_at 0: not used */
	/* Being redeemed by used_by (used_key): on disk before the policy is
	 * touched, so a crash in between is settled at the next start. */
	int redeeming;
	char used_by[PP_TUN_NAME_MAX + 1];
	char used_key[PP_ID_PUB_STRLEN + 1];
};

struct pp_invites {
	char path[1200];
	struct entry *e;
	size_t n;
};

static void
utc(int64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *
entry_json(const struct entry *e)
{
	char id[23], secret[PP_B64URL_LEN(PP_INVITE_SECRET_LEN) + 1];
	json_t *o;

	pp_invite_id_text(e->id, id);
	pp_b64url_encode(e->secret, PP_INVITE_SECRET_LEN, secret);
	o = json_pack("{s:s, s:s, s:s, s:I, s:I}", "id", id, "secret", secret,
	    "group", e->group, "created", (json_int_t)e->created, "expires",
	    (json_int_t)e->expires);
	OPENSSL_cleanse(secret, sizeof(secret));
	if (o && e->used_at)
		json_object_update_new(o, json_pack("{s:I, s:s, s:s}", "used_at",
		    (json_int_t)e->used_at, "used_by", e->used_by, "used_key",
		    e->used_key));
	else if (o && e->redeeming)
		json_object_update_new(o, json_pack("{s:i, s:s, s:s}", "redeeming",
		    1, "used_by", e->used_by, "used_key", e->used_key));
	return o;
}

/* Written whole under a temporary name and renamed: never half a file. */
static int
save(const struct pp_invites *s)
{
	char tmp[1300];
	FILE *f;
	int fd, rc = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", s->path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
	    (f = fdopen(fd, "w")) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		pp_err(SUB, "%s: cannot write: %s", tmp, strerror(-rc));
		return rc;
	}
	for (size_t i = 0; i < s->n; i++) {
		json_t *o = entry_json(&s->e[i]);
		char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

		if (line == NULL)
			rc = -ENOMEM;
		else
			fprintf(f, "%s\n", line);
		if (line) {
			OPENSSL_cleanse(line, strlen(line));
			free(line);
		}
		json_decref(o);
	}
	if (fflush(f) != 0 || fsync(fileno(f)) != 0)
		rc = -EIO;
	if (fclose(f) != 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, s->path) < 0)
		rc = -errno;
	if (rc < 0) {
		pp_err(SUB, "%s: cannot write: %s", s->path, pp_strerror(rc));
		unlink(tmp);
	}
	return rc;
}

static int
entry_parse(const char *line, struct entry *e)
{
	static const struct pp_jfield fields[] = {
		{ "id", PP_JSTR, PP_JF_REQUIRED, 22, 22, NULL },
		{ "secret", PP_JSTR, PP_JF_REQUIRED, 43, 43, NULL },
		{ "group", PP_JSTR, PP_JF_REQUIRED, 0, PP_INVITE_GROUP_MAX, NULL },
		{ "created", PP_JINT, PP_JF_REQUIRED, 0, 0, NULL },
		{ "expires", PP_JINT, PP_JF_REQUIRED, 0, 0, NULL },
		{ "used_at", PP_JINT, 0, 0, 0, NULL },
		{ "used_by", PP_JSTR, 0, 0, PP_TUN_NAME_MAX, NULL },
		{ "used_key", PP_JSTR, 0, 0, PP_ID_PUB_STRLEN, NULL },
		{ "redeeming", PP_JINT, 0, 0, 1, NULL },
	};
	char err[160];
	json_t *o = NULL;
	int rc = PP_EINVAL;

	memset(e, 0, sizeof(*e));
	if (pp_json_parse(line, strlen(line), 4096, &o, err, sizeof(err)) < 0 ||
	    !json_is_object(o) || pp_json_check(o, fields, sizeof(fields) /
	    sizeof(fields[0]), err, sizeof(err)) < 0 ||
	    pp_b64url_decode(jstr(o, "id"), 22, e->id, PP_INVITE_ID_LEN) < 0 ||
	    pp_b64url_decode(jstr(o, "secret"), 43, e->secret,
	    PP_INVITE_SECRET_LEN) < 0)
		goto out;
	snprintf(e->group, sizeof(e->group), "%s", jstr(o, "group"));
	e->created = (int64_t)json_integer_value(json_object_get(o, "created"));
	e->expires = (int64_t)json_integer_value(json_object_get(o, "expires"));
	e->used_at = (int64_t)json_integer_value(json_object_get(o, "used_at"));
	e->redeeming = e->used_at == 0 &&
	    json_integer_value(json_object_get(o, "redeeming")) == 1;
	if (jstr(o, "used_by"))
		snprintf(e->used_by, sizeof(e->used_by), "%s", jstr(o, "used_by"));
	if (jstr(o, "used_key"))
		snprintf(e->used_key, sizeof(e->used_key), "%s",
		    jstr(o, "used_key"));
	rc = 0;
out:
	json_decref(o);
	return rc;
}

/* Forgets tokens long expired (used or not): they are refused anyway. */
static int
prune(struct pp_invites *s, int64_t now)
{
	size_t j = 0;
	int changed = 0;

	for (size_t i = 0; i < s->n; i++) {
		if (s->e[i].expires + KEEP_AFTER_EXPIRY < now) {
			changed = 1;
			continue;
		}
		s->e[j++] = s->e[i];
	}
	if (j < s->n)
		OPENSSL_cleanse(&s->e[j], (s->n - j) * sizeof(s->e[0]));
	s->n = j;
	return changed;
}

int
pp_invites_open(const char *path, int64_t now, struct pp_invites **out)
{
	struct pp_invites *s = calloc(1, sizeof(*s));
	char line[4096];
	FILE *f;

	if (s == NULL || (s->e = calloc(PP_INVITE_MAX, sizeof(*s->e))) == NULL) {
		free(s);
		return -ENOMEM;
	}
	snprintf(s->path, sizeof(s->path), "%s", path);
	if ((f = fopen(path, "re")) != NULL) {
		while (s->n < PP_INVITE_MAX && fgets(line, sizeof(line), f)) {
			/* a damaged line costs only itself */
			if (entry_parse(line, &s->e[s->n]) == 0)
				s->n++;
		}
		OPENSSL_cleanse(line, sizeof(line));
		fclose(f);
	}
	if (prune(s, now))
		(void)save(s);
	*out = s;
	return 0;
}

void
pp_invites_free(struct pp_invites *s)
{
	if (s == NULL)
		return;
	OPENSSL_cleanse(s->e, PP_INVITE_MAX * sizeof(*s->e));
	free(s->e);
	free(s);
}

int
pp_invites_create(struct pp_invites *s, struct pp_invite *inv, unsigned ttl,
    const char *group, int64_t now)
{
	struct entry *e;
	int rc;

	if (ttl < 1 || ttl > PP_INVITE_TTL_MAX || strlen(group) >
	    PP_INVITE_GROUP_MAX)
		return PP_EINVAL;
	(void)prune(s, now);
	if (s->n == PP_INVITE_MAX)
		return PP_ELIMIT;
	e = &s->e[s->n];
	memset(e, 0, sizeof(*e));
	if ((rc = pp_random_bytes(e->id, sizeof(e->id))) < 0 ||
	    (rc = pp_random_bytes(e->secret, sizeof(e->secret))) < 0)
		return rc;
	snprintf(e->group, sizeof(e->group), "%s", group);
	e->created = now;
	e->expires = now + ttl;
	s->n++;
	if ((rc = save(s)) < 0) {
		OPENSSL_cleanse(e, sizeof(*e));
		s->n--;
		return rc;
	}
	memcpy(inv->id, e->id, sizeof(inv->id));
	memcpy(inv->secret, e->secret, sizeof(inv->secret));
	inv->expires = e->expires;
	return 0;
}

static struct entry *
find(const struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN])
{
	for (size_t i = 0; i < s->n; i++)
		if (CRYPTO_memcmp(s->e[i].id, id, PP_INVITE_ID_LEN) == 0)
			return &s->e[i];
	return NULL;
}

int
pp_invites_check(const struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN],
    const uint8_t mac[PP_INVITE_MAC_LEN], const void *transcript, size_t len,
    int64_t now, char *group, size_t glen, char *why, size_t whylen)
{
	const struct entry *e = find(s, id);
	char idt[23], when[32];

	pp_invite_id_text(id, idt);
	if (e == NULL) {
		snprintf(why, whylen, "invite %s is unknown to this gateway (made "
		    "by another gateway, or expired long ago): refused", idt);
		return PP_EDENIED;
	}
	/* The proof first: without the secret, nothing else is told. */
	if (pp_invite_mac_check(e->secret, transcript, len, mac) < 0) {
		snprintf(why, whylen, "invite %s: the proof does not match (a "
		    "wrong or altered token, or a man in the middle): refused",
		    idt);
		return PP_EAUTH;
	}
	if (e->used_at) {
		utc(e->used_at, when, sizeof(when));
		snprintf(why, whylen, "invite %s was already used by %s (%s) at "
		    "%s: an invite admits one device; make a new one with "
		    "`peerpipe invite`", idt, e->used_by, e->used_key, when);
		return PP_EDENIED;
	}
	if (e->redeeming) {
		snprintf(why, whylen, "invite %s is being redeemed by %s (%s): an "
		    "invite admits one device", idt, e->used_by, e->used_key);
		return PP_EDENIED;
	}
	if (now >= e->expires) {
		utc(e->expires, when, sizeof(when));
		snprintf(why, whylen, "invite %s expired at %s: make a new one "
		    "with `peerpipe invite`", idt, when);
		return PP_EDENIED;
	}
	snprintf(group, glen, "%s", e->group);
	return 0;
}

int
pp_invites_begin(struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN],
    const char *name, const char *key)
{
	struct entry *e = find(s, id);
	int rc;

	if (e == NULL)
		return PP_ENOTFOUND;
	if (e->used_at || e->redeeming)
		return PP_ECONFLICT;
	e->redeeming = 1;
	snprintf(e->used_by, sizeof(e->used_by), "%s", name);
	snprintf(e->used_key, sizeof(e->used_key), "%s", key);
	if ((rc = save(s)) < 0) {
		/* not on disk: as if never begun, and the caller refuses */
		e->redeeming = 0;
		e->used_by[0] = e->used_key[0] = '\0';
	}
	return rc;
}

int
pp_invites_abort(struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN])
{
	struct entry *e = find(s, id);

	if (e == NULL || !e->redeeming)
		return PP_ENOTFOUND;
	e->redeeming = 0;
	e->used_by[0] = e->used_key[0] = '\0';
	/* If this save fails the file still says redeeming: the next start
	 * finds no policy entry for it and makes it pending again. */
	return save(s);
}

int
pp_invites_consume(struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN],
    int64_t now)
{
	struct entry *e = find(s, id);

	if (e == NULL || !e->redeeming)
		return PP_ENOTFOUND;
	/* Used from now on in memory whatever the save says: the file says
	 * redeeming and the policy has the entry, which the next start
	 * reads as used. */
	e->redeeming = 0;
	e->used_at = now;
	return save(s);
}

int
pp_invites_reconcile(struct pp_invites *s,
    int (*in_policy)(void *ctx, const char *id_text, const char *name,
    const char *key), void *ctx, int64_t now)
{
	int changed = 0;

	for (size_t i = 0; i < s->n; i++) {
		struct entry *e = &s->e[i];
		char idt[23];

		if (!e->redeeming)
			continue;
		pp_invite_id_text(e->id, idt);
		e->redeeming = 0;
		if (in_policy(ctx, idt, e->used_by, e->used_key)) {
			e->used_at = now;
			pp_info(SUB, "invite %s: its redemption by %s was cut "
			    "short, but the policy has the entry: used", idt,
			    e->used_by);
		} else {
			pp_info(SUB, "invite %s: its redemption by %s was cut "
			    "short before the policy changed: pending again",
			    idt, e->used_by);
			e->used_by[0] = e->used_key[0] = '\0';
		}
		changed++;
	}
	return changed ? save(s) : 0;
}

json_t *
pp_invites_list(const struct pp_invites *s, int64_t now)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < s->n; i++) {
		const struct entry *e = &s->e[i];
		char id[23];
		json_t *o;

		pp_invite_id_text(e->id, id);
		o = json_pack("{s:s, s:s, s:I, s:I, s:s}", "id", id, "group",
		    e->group, "created", (json_int_t)e->created, "expires",
		    (json_int_t)e->expires, "state", e->used_at ? "used" :
		    e->redeeming ? "redeeming" : now >= e->expires ? "expired" :
		    "pending");
		if (o && e->used_at)
			json_object_update_new(o, json_pack("{s:s, s:s, s:I}",
			    "used_by", e->used_by, "used_key", e->used_key,
			    "used_at", (json_int_t)e->used_at));
		json_array_append_new(arr, o);
	}
	return arr;
}

int
pp_invites_revoke(struct pp_invites *s, const char *id_text, char *why,
    size_t whylen)
{
	uint8_t id[PP_INVITE_ID_LEN];
	struct entry *e;

	if (pp_b64url_decode(id_text, strlen(id_text), id, sizeof(id)) < 0 ||
	    (e = find(s, id)) == NULL) {
		snprintf(why, whylen, "no invite %.40s here (peerpipe invites "
		    "lists them)", id_text);
		return PP_ENOTFOUND;
	}
	if (e->used_at) {
		snprintf(why, whylen, "invite %s was already used by %s: to "
		    "revoke that device, delete its [peer %s] from the policy "
		    "and reload", id_text, e->used_by, e->used_by);
		return PP_ECONFLICT;
	}
	OPENSSL_cleanse(e, sizeof(*e));
	memmove(e, e + 1, (size_t)(&s->e[s->n] - (e + 1)) * sizeof(*e));
	s->n--;
	OPENSSL_cleanse(&s->e[s->n], sizeof(s->e[0]));
	return save(s);
}
