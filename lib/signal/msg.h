/*
 * Signaling protocol v1 messages, and the v2 additions (docs/signaling.md): a pure parser that turns
 * one client text frame into a validated request, and the builders of the
 * server's replies and events.  No I/O, no globals, no logging: tests and the
 * fuzzer call these directly.
 */
#ifndef PP_SIGNAL_MSG_H
#define PP_SIGNAL_MSG_H

#include <jansson.h>
#include <stddef.h>

#include "base/random.h"

#define PP_SIG_NAME_MIN 4
#define PP_SIG_NAME_MAX 48

enum pp_sig_type {
	PP_SIG_NEW_ROOM,
	PP_SIG_JOIN_ROOM,
	PP_SIG_FAST_ROOM_EXACT,
	PP_SIG_LEAVE_ROOM,
	PP_SIG_SDP_NEW_STATE,
	/* v2 (docs/signaling.md): only clients that know it ever send it */
	PP_SIG_TURN_CREDENTIALS,
	PP_SIG_AUTH_CHALLENGE,
};

enum pp_sig_sdp_type {
	PP_SIG_SDP_OFFER,
	PP_SIG_SDP_ANSWER,
	PP_SIG_SDP_CANDIDATE,
};

/* The exact FAILED reasons of protocol v1; existing clients match on them. */
#define PP_SIG_R_UNKNOWN	"Unknown message"
#define PP_SIG_R_INVALID	"Invalid data"
#define PP_SIG_R_CONFLICT	"Conflict"
#define PP_SIG_R_BAD_ROOM	"Invalid room name/UUID"
#define PP_SIG_R_NAME_TAKEN	"User with this usename already in the room"
#define PP_SIG_R_BAD_USER	"Invalid username"
#define PP_SIG_R_FORBIDDEN	"Forbidden"
#define PP_SIG_R_NO_TARGET	"Not found requested user"
#define PP_SIG_R_RELAY		"Failed to transfer offer"
/* Our additions, for limits the v1 spec does not name. */
#define PP_SIG_R_ROOM_FULL	"Room is full"
#define PP_SIG_R_TOO_MANY_ROOMS	"Too many rooms"
#define PP_SIG_R_TOO_LARGE	"Message too large"
#define PP_SIG_R_RATE		"Rate limit exceeded"
/* v2 */
#define PP_SIG_R_NO_TURN	"TURN credentials are not configured on this server"
#define PP_SIG_R_AUTH_REQUIRED	"Authentication required: sign the join with an identity key (protocol v2)"
#define PP_SIG_R_AUTH_FAILED	"Authentication failed"
#define PP_SIG_R_NAME_BOUND	"User name is bound to another identity key in this room"
#define PP_SIG_R_TOO_MANY_KEYS	"Too many bound names on this server"

/* v2 signed joins (docs/signaling.md, "Authentication") */
#define PP_SIG_KEY_LEN		32	/* Ed25519 public key */
#define PP_SIG_SIG_LEN		64	/* Ed25519 signature */
#define PP_SIG_NONCE_LEN	32	/* the server's challenge */
#define PP_SIG_AUTH_CONTEXT	"peerpipe-signaling-auth-v2"

/* A parsed request.  Plain struct; sdp_data is a reference owned by it. */
struct pp_sig_request {
	enum pp_sig_type type;
	char room_uuid[PP_UUID_STRLEN + 1];
	char room_name[PP_SIG_NAME_MAX + 1];
	char user_name[PP_SIG_NAME_MAX + 1];
	char target_user[PP_SIG_NAME_MAX + 1];
	enum pp_sig_sdp_type sdp_type;
	json_t *sdp_data;
	/* v2: NEW_ROOM, JOIN_ROOM, FAST_ROOM_EXACT signed with pp_id/pp_sig */
	int has_id;
	unsigned char id[PP_SIG_KEY_LEN];
	unsigned char sig[PP_SIG_SIG_LEN];
};

/*
 * Parses one frame.  Returns 0 with *req filled, or a negative code with
 * *reason set to the v1 FAILED reason to answer with (PP_SIG_R_UNKNOWN for an
 * unknown or missing type, PP_SIG_R_INVALID for anything else) and a
 * human-readable detail in err.  Release with pp_sig_request_fini().
 */
int pp_sig_parse(const char *buf, size_t len, size_t cap,
    struct pp_sig_request *req, const char **reason, char *err, size_t errlen);
void pp_sig_request_fini(struct pp_sig_request *req);

/*
 * What a v2 client signs to join (docs/signaling.md): five lines, each
 * ended by '\n' -- the context, the server's nonce (base64url), the room's
 * uuid ("" for NEW_ROOM), the room's name and the user name.  Returns the
 * length written (NUL-terminated), or PP_ETOOBIG when cap is too small.
 * Pure.
 */
int pp_sig_auth_transcript(const unsigned char nonce[PP_SIG_NONCE_LEN],
    const char *room_uuid, const char *room_name, const char *user_name,
    char *out, size_t cap);

/*
 * Client side: a FAST_ROOM_EXACT request (a new reference), signed with id
 * over the challenge nonce when id and nonce are both given (else a plain
 * v1 request).  NULL on allocation or signing failure.
 */
struct pp_identity;
json_t *pp_sig_join_build(const char *room_uuid, const char *room_name,
    const char *user_name, const struct pp_identity *id,
    const unsigned char *nonce);

/* Nonzero if s is a valid user or room name (4-48 allowed characters). */
int pp_sig_name_valid(const char *s, size_t len);
const char *pp_sig_sdp_type_name(enum pp_sig_sdp_type t);

/*
 * Server-to-client messages: {"type": T, "data": D}, data omitted when NULL.
 * Takes ownership of data.  Returns a malloc'ed string (length in *len) or NULL.
 */
char *pp_sig_build(const char *type, json_t *data, size_t *len);
char *pp_sig_build_failed(const char *reason, size_t *len);

#endif
