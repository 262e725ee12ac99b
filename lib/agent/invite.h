/*
 * Invite tokens (docs/identity.md, "Invites"): a gateway hands a new device
 * a single-use, expiring token that carries what the device needs to find
 * and authenticate the gateway (its name and identity key, the room, the
 * signaling URL) and a secret.  The device proves it holds the secret in
 * the v2 AUTH step (an HMAC over the session transcript), and the gateway
 * then adds the device's key to its policy.
 *
 *   ppinvite1.<unpadded base64url of a JSON object>
 *
 * The codec and the MAC are pure (tests and the fuzzer call them).  The
 * store, STATE/invites.json (one JSON object a line, mode 0600, rewritten
 * whole), remembers every token the gateway made, so one that was used stays
 * used across restarts.  Thread: the agent's loop thread.
 */
#ifndef PP_AGENT_INVITE_H
#define PP_AGENT_INVITE_H

#include "tunnel/proto.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define PP_INVITE_PREFIX	"ppinvite1."
#define PP_INVITE_ID_LEN	16
#define PP_INVITE_SECRET_LEN	32
#define PP_INVITE_MAC_LEN	32
#define PP_INVITE_TEXT_MAX	2048	/* a token, prefix included */
#define PP_INVITE_URL_MAX	511
#define PP_INVITE_GROUP_MAX	63
#define PP_INVITE_TTL_DEFAULT	3600
#define PP_INVITE_TTL_MAX	(30 * 86400)
#define PP_INVITE_MAX		1024	/* tokens a store remembers */
#define PP_INVITE_MAC_CONTEXT	"peerpipe-invite-v2\n"

struct pp_invite {
	char gateway[PP_TUN_NAME_MAX + 1];	/* the gateway's user name */
	uint8_t gateway_key[PP_TUN_KEY_LEN];	/* its identity key */
	char room_name[PP_TUN_NAME_MAX + 1];
	char room_uuid[PP_TUN_UUID_LEN + 1];
	char url[PP_INVITE_URL_MAX + 1];	/* wss://... */
	uint8_t id[PP_INVITE_ID_LEN];
	uint8_t secret[PP_INVITE_SECRET_LEN];
	int64_t expires;			/* unix seconds */
};

/* The token text into out (NUL-terminated).  Length, or PP_ETOOBIG. */
int pp_invite_format(const struct pp_invite *inv, char *out, size_t cap);
/* Parses a token (surrounding spaces allowed).  0, or PP_EINVAL with the
 * reason in err.  inv is wiped on error.  Pure. */
int pp_invite_parse(const char *text, size_t len, struct pp_invite *inv,
    char *err, size_t errlen);
/* The invite id as text (unpadded base64url, 22 characters + NUL). */
void pp_invite_id_text(const uint8_t id[PP_INVITE_ID_LEN], char out[23]);

/* HMAC-SHA256(secret, PP_INVITE_MAC_CONTEXT || transcript).  Pure. */
int pp_invite_mac(const uint8_t secret[PP_INVITE_SECRET_LEN],
    const void *transcript, size_t len, uint8_t mac[PP_INVITE_MAC_LEN]);
/* 0 when mac is right (constant-time compare), else PP_EAUTH.  Pure. */
int pp_invite_mac_check(const uint8_t secret[PP_INVITE_SECRET_LEN],
    const void *transcript, size_t len, const uint8_t mac[PP_INVITE_MAC_LEN]);

/* ---- the gateway's store ---- */

struct pp_invites;

/* Opens (or starts) the store at path.  0 or a negative code. */
int pp_invites_open(const char *path, int64_t now, struct pp_invites **out);
void pp_invites_free(struct pp_invites *s);	/* NULL-safe; wipes */

/*
 * A new token: inv's gateway, key, room and url come from the caller; id,
 * secret and expires (now + ttl) are filled in; group ("" for none) is what
 * the device will be given.  Saved before it returns.  0, PP_EINVAL (ttl
 * out of 1..PP_INVITE_TTL_MAX), PP_ELIMIT (store full) or -errno.
 */
int pp_invites_create(struct pp_invites *s, struct pp_invite *inv,
    unsigned ttl, const char *group, int64_t now);

/*
 * Checks a device's proof of token id: it must be known here, its MAC over
 * the transcript right, not used and not expired.  0 with the token's group
 * in group, or PP_EAUTH / PP_EDENIED with the reason in why.  Changes
 * nothing: pp_invites_begin() and _consume() mark it used.
 */
int pp_invites_check(const struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN],
    const uint8_t mac[PP_INVITE_MAC_LEN], const void *transcript, size_t len,
    int64_t now, char *group, size_t glen, char *why, size_t whylen);
/*
 * Redemption, durable at each step (docs/identity.md, "Invites"):
 * begin marks a checked token as being redeemed by name (key text) and
 * saves it before the policy is touched; a failed save (returned) means
 * the caller refuses the device.  Then either consume (the device is in:
 * used, saved) or abort (it is not: pending again, saved).  0, PP_ENOTFOUND
 * (no such token, or not being redeemed), PP_ECONFLICT (begin: used or
 * being redeemed already), or the save's -errno.
 */
int pp_invites_begin(struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN],
    const char *name, const char *key);
int pp_invites_consume(struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN],
    int64_t now);
int pp_invites_abort(struct pp_invites *s, const uint8_t id[PP_INVITE_ID_LEN]);
/*
 * At start: every token a crash left being redeemed becomes used if
 * in_policy(ctx, id text, name, key) says the policy has the entry that
 * redemption added, else pending again.  Saved if anything changed: 0 or
 * the save's -errno.
 */
int pp_invites_reconcile(struct pp_invites *s,
    int (*in_policy)(void *ctx, const char *id_text, const char *name,
    const char *key), void *ctx, int64_t now);

/* Every invite as JSON (no secrets): id, group, created, expires, state
 * ("pending", "redeeming", "used", "expired") and for a used one used_by, used_key,
 * used_at.  A new reference, or NULL. */
json_t *pp_invites_list(const struct pp_invites *s, int64_t now);
/* Forgets a pending (or expired) invite given by its id text, and saves:
 * 0, PP_ENOTFOUND, or PP_ECONFLICT for a used one (why says what to do). */
int pp_invites_revoke(struct pp_invites *s, const char *id_text, char *why,
    size_t whylen);

#endif
