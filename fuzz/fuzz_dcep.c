/*
 * Fuzzes the DCEP parser (RFC 8832).  Whatever parses must survive a round
 * trip: building it again gives the same bytes, parsing those the same
 * message.
 */
#include "sctp/dcep.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_dcep_msg msg, again;
	uint8_t *buf;
	int n;

	if (pp_dcep_parse(data, size, &msg) < 0 || msg.type != PP_DCEP_OPEN)
		return 0;
	if ((buf = malloc(pp_dcep_open_size(&msg))) == NULL)
		return 0;
	n = pp_dcep_build_open(&msg, buf, pp_dcep_open_size(&msg));
	if (n < 0 || (size_t)n != size)
		abort();
	/* Reliable types drop the reliability value; all else is kept. */
	if (PP_DCEP_POLICY(msg.channel_type) != PP_DCEP_RELIABLE &&
	    memcmp(buf, data, size) != 0)
		abort();
	if (pp_dcep_parse(buf, (size_t)n, &again) != 0 ||
	    again.channel_type != msg.channel_type ||
	    again.priority != msg.priority ||
	    again.reliability != msg.reliability ||
	    again.label_len != msg.label_len ||
	    again.protocol_len != msg.protocol_len ||
	    (msg.label_len && memcmp(again.label, msg.label, msg.label_len)) ||
	    (msg.protocol_len &&
	    memcmp(again.protocol, msg.protocol, msg.protocol_len)))
		abort();
	free(buf);
	return 0;
}
