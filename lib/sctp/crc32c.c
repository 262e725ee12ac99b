/*
 * SCTP's CRC32c in hardware (SSE4.2), for usrsctp's checksum offload.
 *
 * Debian's usrsctp computes the checksum in software, built without
 * optimisation: about a tenth of the data path's CPU on each side.  With
 * offload on, we fill in the checksum of every packet usrsctp hands out, and
 * usrsctp no longer verifies inbound ones -- which costs nothing here, since
 * DTLS has already authenticated every packet that reaches SCTP.
 *
 * The instruction is used only when our result is bit-identical to
 * usrsctp_crc32c() on a test packet (which also settles the byte order);
 * otherwise we fill in usrsctp_crc32c()'s own result.  Either way offload
 * stays on, so no agent verifies inbound checksums, and a peer that says so
 * (pp_sctp_set_zero_checksum) gets packets without one at all, as RFC 9653
 * does for SCTP over DTLS.  Pure functions.
 */
#include "internal.h"

#include <stdint.h>
#include <string.h>
#include <usrsctp.h>

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_hw(const uint8_t *p, size_t len)
{
	uint64_t crc = 0xffffffffu;

	while (len >= 8) {
		uint64_t v;

		memcpy(&v, p, 8);
		crc = __builtin_ia32_crc32di(crc, v);
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = __builtin_ia32_crc32qi((uint32_t)crc, *p++);
	return ~(uint32_t)crc;
}
#endif

/* 0: not set up (usrsctp computes), 1: hw as is, 2: hw byte-swapped,
 * 3: usrsctp_crc32c() */
static int mode;

int
pp__sctp_crc_offload_init(void)
{
	mode = 3;
#if defined(__x86_64__)
	if (__builtin_cpu_supports("sse4.2")) {
		uint8_t pkt[64];
		uint32_t ref, hw;

		for (unsigned i = 0; i < sizeof(pkt); i++)
			pkt[i] = (uint8_t)(i * 37 + 11);
		memset(pkt + 8, 0, 4);
		ref = usrsctp_crc32c(pkt, sizeof(pkt));
		hw = crc_hw(pkt, sizeof(pkt));
		if (hw == ref)
			mode = 1;
		else if (__builtin_bswap32(hw) == ref)
			mode = 2;
	}
#endif
	usrsctp_enable_crc32c_offload();
	return mode != 3;
}

int
pp__sctp_crc_offloaded(void)
{
	return mode != 0;
}

void
pp__sctp_crc_fill(uint8_t *pkt, size_t len)
{
	uint32_t c;

	if (mode == 0 || len < 12)
		return;
	memset(pkt + 8, 0, 4);
#if defined(__x86_64__)
	if (mode != 3) {
		c = crc_hw(pkt, len);
		if (mode == 2)
			c = __builtin_bswap32(c);
	} else
#endif
		c = usrsctp_crc32c(pkt, len);
	memcpy(pkt + 8, &c, 4);
}
