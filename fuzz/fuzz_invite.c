/*
 * Fuzzes the invite token parser (lib/agent/invite.c): whatever parses must
 * format back to a token that parses to the same invite, and the MAC of a
 * parsed secret over the input itself must check.
 */
#include "agent/invite.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_invite inv, back;
	char err[256], text[PP_INVITE_TEXT_MAX];
	uint8_t mac[PP_INVITE_MAC_LEN];

	if (pp_invite_parse((const char *)data, size, &inv, err, sizeof(err)) != 0)
		return 0;
	if (pp_invite_format(&inv, text, sizeof(text)) < 0 ||
	    pp_invite_parse(text, strlen(text), &back, err, sizeof(err)) != 0 ||
	    memcmp(&inv, &back, sizeof(inv)) != 0)
		abort();
	if (pp_invite_mac(inv.secret, data, size, mac) != 0 ||
	    pp_invite_mac_check(inv.secret, data, size, mac) != 0)
		abort();
	return 0;
}
