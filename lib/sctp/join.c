/*
 * Putting an SCTP packet back together from the DTLS records of one
 * datagram (sctp.h, pp_sctp_join_*).  Pure: no usrsctp, no I/O.
 */
#include "sctp/sctp.h"

#include <stdlib.h>
#include <string.h>

#define JOIN_MAX 65535		/* an SCTP packet, at most */

int
pp_sctp_join_record(struct pp_sctp_join *j, const uint8_t *rec, size_t len,
    const uint8_t **pkt, size_t *pkt_len)
{
	if (j->len == 0 && pp_sctp_packet_whole(rec, len)) {
		*pkt = rec;
		*pkt_len = len;
		return 1;
	}
	if (j->len + len > j->cap) {
		size_t cap = j->len + len;
		uint8_t *p;

		if (cap > JOIN_MAX || (p = realloc(j->buf, cap)) == NULL) {
			j->len = 0;	/* SCTP retransmits */
			j->records = 0;
			return 0;
		}
		j->buf = p;
		j->cap = cap;
	}
	memcpy(j->buf + j->len, rec, len);
	j->len += len;
	j->records++;
	if (!pp_sctp_packet_whole(j->buf, j->len))
		return 0;
	*pkt = j->buf;
	*pkt_len = j->len;
	j->len = 0;
	j->records = 0;
	return 1;
}

int
pp_sctp_join_end(struct pp_sctp_join *j, const uint8_t **pkt,
    size_t *pkt_len)
{
	int lone = j->records == 1 && j->len > 0;

	*pkt = j->buf;
	*pkt_len = j->len;
	j->len = 0;
	j->records = 0;
	return lone;
}

void
pp_sctp_join_free(struct pp_sctp_join *j)
{
	free(j->buf);
	memset(j, 0, sizeof(*j));
}
