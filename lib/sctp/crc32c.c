/*
 * SCTP's CRC32c in hardware (SSE4.2), for usrsctp's checksum offload.
 *
 * Debian's usrsctp computes the checksum in software, built without
 * optimisation: about a tenth of the data path's CPU on each side.  With
 * offload on, we fill in the checksum of every packet usrsctp hands out, and
 * usrsctp no longer verifies inbound ones -- which costs nothing here, since
 * DTLS has already authenticated every packet that reaches SCTP.
 *
 * Offload is used only when the CPU has the instruction AND our result is
 * bit-identical to usrsctp_crc32c() on a test packet (which also settles the
 * byte order); otherwise usrsctp keeps doing it.  Pure functions.
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

static int mode;	/* 0: usrsctp computes, 1: store as is, 2: byte-swapped */

int
pp__sctp_crc_offload_init(void)
{
#if defined(__x86_64__)
	uint8_t pkt[64];
	uint32_t ref, hw;

	if (!__builtin_cpu_supports("sse4.2"))
		return 0;
	for (unsigned i = 0; i < sizeof(pkt); i++)
		pkt[i] = (uint8_t)(i * 37 + 11);
	memset(pkt + 8, 0, 4);
	ref = usrsctp_crc32c(pkt, sizeof(pkt));
	hw = crc_hw(pkt, sizeof(pkt));
	if (hw == ref)
		mode = 1;
	else if (__builtin_bswap32(hw) == ref)
		mode = 2;
	else
		return 0;
	usrsctp_enable_crc32c_offload();
	return 1;
#else
	return 0;
#endif
}

void
pp__sctp_crc_fill(uint8_t *pkt, size_t len)
{
#if defined(__x86_64__)
	uint32_t c;

	if (mode == 0 || len < 12)
		return;
	memset(pkt + 8, 0, 4);
	c = crc_hw(pkt, len);
	if (mode == 2)
		c = __builtin_bswap32(c);
	memcpy(pkt + 8, &c, 4);
#else
	(void)pkt, (void)len;
#endif
}
