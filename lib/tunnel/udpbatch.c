/*
 * UDP batches: [4-byte big-endian length][datagram] repeated.  The reader
 * trusts nothing: every length is checked against what is left of the
 * message before the datagram is handed out.
 */
#include "udpbatch.h"
#include "base/error.h"

#include <errno.h>
#include <string.h>

void
pp_udpb_reset(struct pp_udpb *b)
{
	b->len = 0;
	b->count = 0;
}

int
pp_udpb_add(struct pp_udpb *b, const void *dgram, size_t len)
{
	uint8_t *p;

	if (len > PP_UDPB_DGRAM_MAX)
		return PP_ETOOBIG;
	/* Alone, any datagram fits (PP_UDPB_CAP); with others, the target. */
	if (b->len > 0 && b->len + 4 + len > PP_UDPB_TARGET)
		return -ENOSPC;
	p = b->buf + b->len;
	p[0] = (uint8_t)(len >> 24);
	p[1] = (uint8_t)(len >> 16);
	p[2] = (uint8_t)(len >> 8);
	p[3] = (uint8_t)len;
	if (len)
		memcpy(p + 4, dgram, len);
	b->len += 4 + len;
	b->count++;
	return 0;
}

int
pp_udpb_next(const uint8_t *buf, size_t len, size_t *off,
    const uint8_t **dgram, size_t *dlen)
{
	size_t left, n;

	if (*off == len)
		return 0;
	if (*off > len || (left = len - *off) < 4)
		goto bad;
	n = (size_t)buf[*off] << 24 | (size_t)buf[*off + 1] << 16 |
	    (size_t)buf[*off + 2] << 8 | buf[*off + 3];
	/* No UDP datagram is larger; a peer claiming one is lying. */
	if (n > PP_UDPB_DGRAM_MAX || n > left - 4)
		goto bad;
	*dgram = buf + *off + 4;
	*dlen = n;
	*off += 4 + n;
	return 1;
bad:
	/* The rest of the batch cannot be trusted: the next call says "end". */
	*off = len;
	return PP_EPROTO;
}
