/*
 * Unpadded base64url (RFC 4648 section 5), the text form of keys, nonces and
 * signatures in protocol v2.  Pure; thread-safe.
 */
#ifndef PP_BASE_B64_H
#define PP_BASE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed for n bytes (no NUL). */
#define PP_B64URL_LEN(n)	(((n) * 8 + 5) / 6)

/* Writes PP_B64URL_LEN(n) characters and a NUL; out must hold them. */
void pp_b64url_encode(const uint8_t *in, size_t n, char *out);
/*
 * Decodes exactly n bytes from exactly PP_B64URL_LEN(n) characters; the
 * unused low bits of the last character must be zero (one text per value).
 * 0 or PP_EINVAL.
 */
int pp_b64url_decode(const char *in, size_t len, uint8_t *out, size_t n);

#endif
