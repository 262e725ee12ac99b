/*
 * Certificates for DTLS (and for the signaling server's TLS): a self-signed
 * ECDSA P-256 certificate with its key, the SHA-256 fingerprint that goes
 * into SDP ("a=fingerprint:sha-256 AB:CD:..."), and PEM files on disk.
 *
 * A pp_dtls_cert is immutable once made, so any thread may read it; make
 * and free it on one thread.  pp_dtls_new() does not keep a pointer to it
 * (OpenSSL takes its own references), so it may be freed right after.
 */
#ifndef PP_DTLS_CERT_H
#define PP_DTLS_CERT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#define PP_DTLS_FP_LEN		32	/* SHA-256 */
#define PP_DTLS_FP_STRLEN	(PP_DTLS_FP_LEN * 3 - 1)	/* "AB:CD:...:EF" */

#define PP_DTLS_CERT_CN		"peerpipe"
#define PP_DTLS_CERT_PAST_S	(24L * 3600)		/* notBefore = now - 1 day */
#define PP_DTLS_CERT_FUTURE_S	(30L * 24 * 3600)	/* notAfter = now + 30 days */
#define PP_DTLS_PEM_MAX		(64u * 1024u)		/* larger PEM files are refused */

struct pp_dtls_cert;

/*
 * Makes a fresh key and a self-signed certificate for it: random 16-byte
 * serial, valid from a day ago to 30 days ahead, subject = issuer =
 * CN=common_name (NULL means PP_DTLS_CERT_CN; at most 64 printable ASCII
 * characters).  Returns 0 and *out, PP_EINVAL for a bad name, -ENOMEM or
 * PP_EPROTO if OpenSSL fails.
 */
int pp_dtls_cert_new(const char *common_name, struct pp_dtls_cert **out);
/* NULL-safe.  The key is freed by OpenSSL, which wipes it. */
void pp_dtls_cert_free(struct pp_dtls_cert *cert);

/* SHA-256 of the DER certificate: PP_DTLS_FP_LEN bytes, valid while cert is. */
const uint8_t *pp_dtls_cert_fingerprint(const struct pp_dtls_cert *cert);
/* The same as SDP text, uppercase hex with colons; valid while cert is. */
const char *pp_dtls_cert_fingerprint_text(const struct pp_dtls_cert *cert);

/* Borrowed OpenSSL objects, e.g. for SSL_CTX_use_certificate(); never NULL. */
X509 *pp_dtls_cert_x509(const struct pp_dtls_cert *cert);
EVP_PKEY *pp_dtls_cert_pkey(const struct pp_dtls_cert *cert);

/*
 * Writes the certificate (mode 0644) and the unencrypted PKCS#8 key (mode
 * 0600) as PEM.  Each file is written to a new temporary file beside it
 * (mkstemp: O_CREAT|O_EXCL, 0600), synced and renamed over the target, so a
 * reader never sees a half-written key and an existing world-readable key
 * file is replaced rather than reused.  The cert file's mode ignores the
 * umask.  Returns 0, -errno, or PP_EINVAL when both paths are the same;
 * on failure errbuf (if not NULL) gets a line naming the file.
 */
int pp_dtls_cert_write_pem(const struct pp_dtls_cert *cert,
    const char *cert_path, const char *key_path, char *errbuf, size_t errlen);

/*
 * Loads a certificate and its key from PEM files.  The key file must be a
 * regular file with no group or other permission bits (else PP_EDENIED and
 * "KEY: private key file is accessible by group or others (mode 0644); fix
 * it with: chmod 600 KEY"); encrypted keys are refused.  The key and the
 * certificate must match.  Returns 0 and *out, or -errno, PP_EDENIED,
 * PP_ETOOBIG (over PP_DTLS_PEM_MAX) or PP_EINVAL, with a line in errbuf
 * (if not NULL) naming the file and the fix.
 */
int pp_dtls_cert_load_pem(const char *cert_path, const char *key_path,
    struct pp_dtls_cert **out, char *errbuf, size_t errlen);

/*
 * Fingerprint text <-> bytes.  Pure functions.
 * format: writes PP_DTLS_FP_STRLEN characters and a NUL.
 * parse: exactly 32 colon-separated hex pairs (either case, as RFC 8122
 * peers are not all uppercase), nothing before or after; 0 or PP_EINVAL.
 */
void pp_dtls_fp_format(const uint8_t fp[PP_DTLS_FP_LEN],
    char out[PP_DTLS_FP_STRLEN + 1]);
int pp_dtls_fp_parse(const char *text, size_t len, uint8_t fp[PP_DTLS_FP_LEN]);

#endif
