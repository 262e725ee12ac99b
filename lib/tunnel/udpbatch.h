/*
 * UDP datagram batches (tunnel v1): a message carries datagrams, each
 * prefixed with its length as a 4-byte big-endian integer.  A batch is
 * flushed at about PP_UDPB_TARGET bytes or after 2 ms idle (the caller's
 * timer).  Pure; no I/O.
 */
#ifndef PP_TUNNEL_UDPBATCH_H
#define PP_TUNNEL_UDPBATCH_H

#include <stddef.h>
#include <stdint.h>

#define PP_UDPB_TARGET		16384		/* flush when the next would pass it */
#define PP_UDPB_DGRAM_MAX	65507		/* largest UDP payload (IPv4) */
#define PP_UDPB_CAP		(4 + PP_UDPB_DGRAM_MAX)	/* one big datagram alone */
#define PP_UDPB_FLUSH_MS	2

struct pp_udpb {
	size_t len;
	unsigned count;
	uint8_t buf[PP_UDPB_CAP];
};

void pp_udpb_reset(struct pp_udpb *b);
/*
 * Appends one datagram.  Returns 0; -ENOSPC when the batch is not empty and
 * the datagram would take it past PP_UDPB_TARGET (flush, reset, add again);
 * PP_ETOOBIG over PP_UDPB_DGRAM_MAX.
 */
int pp_udpb_add(struct pp_udpb *b, const void *dgram, size_t len);

/*
 * Walks a received batch: *off starts at 0.  Returns 1 with the next
 * datagram in *dgram and *dlen, 0 at the end, PP_EPROTO when a length runs past
 * the end or exceeds PP_UDPB_DGRAM_MAX (the rest of the batch is dropped:
 * *off is set to len, so the next call returns 0).
 */
int pp_udpb_next(const uint8_t *buf, size_t len, size_t *off,
    const uint8_t **dgram, size_t *dlen);

#endif
