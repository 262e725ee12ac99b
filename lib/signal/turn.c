#include "turn.h"
#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
pp_sig_turn_credential(const void *secret, size_t secret_len,
    const char *user, int64_t now, unsigned ttl, char *username,
    char *password)
{
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	int n;

	username[0] = password[0] = '\0';
	if (secret_len == 0 || secret_len > PP_SIG_TURN_SECRET_MAX ||
	    user == NULL || user[0] == '\0' || strchr(user, ':') != NULL ||
	    ttl < PP_SIG_TURN_TTL_MIN || ttl > PP_SIG_TURN_TTL_MAX || now < 0)
		return PP_EINVAL;
	n = snprintf(username, PP_SIG_TURN_USER_MAX, "%lld:%s",
	    (long long)(now + ttl), user);
	if (n < 0 || n >= PP_SIG_TURN_USER_MAX) {
		username[0] = '\0';
		return PP_EINVAL;
	}
	if (HMAC(EVP_sha1(), secret, (int)secret_len, (const unsigned char *)username,
	    (size_t)n, mac, &maclen) == NULL || maclen != 20) {
		OPENSSL_cleanse(mac, sizeof(mac));
		return PP_EPROTO;
	}
	/* 20 bytes -> 28 characters and a NUL */
	EVP_EncodeBlock((unsigned char *)password, mac, (int)maclen);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int
pp_sig_turn_uri_valid(const char *uri)
{
	const char *p, *colon, *q;
	size_t len = strlen(uri);
	char *end;
	long port;

	if (len == 0 || len > PP_SIG_TURN_URI_MAX)
		return 0;
	for (p = uri; *p; p++)
		if (*p <= ' ' || *p > '~')
			return 0;
	if (strncmp(uri, "turns:", 6) == 0)
		p = uri + 6;
	else if (strncmp(uri, "turn:", 5) == 0)
		p = uri + 5;
	else
		return 0;
	q = strchr(p, '?');
	if (q && strcmp(q, "?transport=udp") != 0 && strcmp(q, "?transport=tcp") != 0)
		return 0;
	/* the port follows the last ':' before the query */
	colon = NULL;
	for (const char *s = p; *s && s != q; s++)
		if (*s == ':')
			colon = s;
	if (colon == NULL || colon == p)
		return 0;
	if (p[0] == '[' ? colon[-1] != ']' : memchr(p, ':', (size_t)(colon - p)) != NULL)
		return 0;
	port = strtol(colon + 1, &end, 10);
	if (end == colon + 1 || (q ? end != q : *end != '\0') || port < 1 ||
	    port > 65535)
		return 0;
	return 1;
}
