/*
 * Long-term peer identities (protocol v2, docs/identity.md): an Ed25519 key
 * pair per agent, created on first start in a file only its owner may read,
 * and the text form of a public key that people paste into a policy:
 *
 *   ed25519:<43 characters of unpadded base64url of the 32-byte key>
 *
 * Thread-safe; the key pair is immutable once loaded.  Secrets are wiped on
 * free and on error paths.
 */
#ifndef PP_IDENTITY_IDENTITY_H
#define PP_IDENTITY_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#define PP_ID_PUB_LEN		32
#define PP_ID_SIG_LEN		64
#define PP_ID_PUB_PREFIX	"ed25519:"
#define PP_ID_PUB_STRLEN	(sizeof(PP_ID_PUB_PREFIX) - 1 + 43)

struct pp_identity;

/*
 * Loads the key pair from path, or creates it there (mode 0600, directory
 * 0700 created when missing) when the file does not exist.  A key file that
 * group or others may read, or that is not a PEM Ed25519 private key, is
 * PP_ECONFIG with the reason and the fix in err.
 */
int pp_id_load_or_create(const char *path, struct pp_identity **out,
    char *err, size_t errlen);
/* A fresh key pair in memory only (tests, throw-away agents). */
int pp_id_generate(struct pp_identity **out);
void pp_id_free(struct pp_identity *id);	/* NULL-safe; wipes */

void pp_id_public(const struct pp_identity *id, uint8_t pub[PP_ID_PUB_LEN]);
/* "ed25519:..." into out (at least PP_ID_PUB_STRLEN + 1 bytes). */
void pp_id_public_text(const struct pp_identity *id, char *out, size_t len);

/* Signs msg; 0 or a negative code. */
int pp_id_sign(const struct pp_identity *id, const void *msg, size_t len,
    uint8_t sig[PP_ID_SIG_LEN]);
/* 0 when sig is pub's signature of msg, else PP_EAUTH.  Pure. */
int pp_id_verify(const uint8_t pub[PP_ID_PUB_LEN], const void *msg, size_t len,
    const uint8_t sig[PP_ID_SIG_LEN]);

/* Text form <-> raw key.  parse: 0 or PP_EINVAL.  Pure. */
int pp_id_pub_parse(const char *text, size_t len, uint8_t pub[PP_ID_PUB_LEN]);
void pp_id_pub_format(const uint8_t pub[PP_ID_PUB_LEN], char *out, size_t len);

#endif
