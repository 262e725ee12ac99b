#include "base/b64.h"

#include "base/error.h"

#include <string.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void
pp_b64url_encode(const uint8_t *in, size_t n, char *out)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = alphabet[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		out[o++] = alphabet[(acc << (6 - bits)) & 0x3f];
	out[o] = '\0';
}

int
pp_b64url_decode(const char *in, size_t len, uint8_t *out, size_t n)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0;

	if (len != PP_B64URL_LEN(n))
		return PP_EINVAL;
	for (size_t i = 0; i < len; i++) {
		const char *p = in[i] ? strchr(alphabet, in[i]) : NULL;

		if (p == NULL)
			return PP_EINVAL;
		acc = (acc << 6) | (uint32_t)(p - alphabet);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	if (o != n || (acc & ((1u << bits) - 1)) != 0)
		return PP_EINVAL;
	return 0;
}
