/*
 * TURN REST credentials, the scheme coturn calls `use-auth-secret`: a server
 * that shares a secret with the TURN relay hands a client
 *
 *   username = "<expiry as unix time>:<user>"
 *   password = base64(HMAC-SHA1(secret, username))
 *
 * and the relay accepts them until the expiry without knowing the client.
 * Pure functions: no I/O, no clock (the caller passes the time), no globals.
 * The secret is borrowed and never copied here.
 */
#ifndef PP_SIGNAL_TURN_H
#define PP_SIGNAL_TURN_H

#include <stddef.h>
#include <stdint.h>

#define PP_SIG_TURN_SECRET_MAX	1024	/* bytes in a shared secret */
#define PP_SIG_TURN_USER_MAX	96	/* "<expiry>:<user>" and its NUL */
#define PP_SIG_TURN_PASS_SIZE	29	/* base64 of 20 bytes, and NUL */
#define PP_SIG_TURN_MAX_URIS	8	/* what one agent can use (ICE's cap) */
#define PP_SIG_TURN_URI_MAX	255
#define PP_SIG_TURN_TTL_MIN	60
#define PP_SIG_TURN_TTL_MAX	(7u * 86400u)
#define PP_SIG_TURN_TTL_DEFAULT	86400u

/*
 * Makes one credential for `user` valid until now + ttl.  username and
 * password must hold PP_SIG_TURN_USER_MAX and PP_SIG_TURN_PASS_SIZE bytes.
 * Returns 0, PP_EINVAL (empty secret, user with ':' or too long, ttl out of
 * range) or PP_EPROTO (the HMAC failed).
 */
int pp_sig_turn_credential(const void *secret, size_t secret_len,
    const char *user, int64_t now, unsigned ttl, char *username,
    char *password);

/*
 * Nonzero if uri is a TURN URI an agent can use: turn:HOST:PORT or
 * turns:HOST:PORT, optionally ?transport=udp or ?transport=tcp, printable
 * ASCII without spaces, at most PP_SIG_TURN_URI_MAX bytes.
 */
int pp_sig_turn_uri_valid(const char *uri);

#endif
