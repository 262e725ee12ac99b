/*
 * Fuzzes proxy channel decoding and UDP batches.
 *
 * Input: one configuration byte (bits 0-1: codec; bits 2-3: 0 per message,
 * 1 stream, 2 adaptive; bits 4-6 pick the decode capacity), then messages,
 * each a 2-byte big-endian length and that many bytes, decoded in order by
 * one pp_codec (so the stream's state carries across them).  Each message
 * is also walked as a UDP batch, and re-encoded by a sender of the same
 * configuration whose output must decode to it again.
 */
#include "base/error.h"
#include "tunnel/frame.h"
#include "tunnel/udpbatch.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[PP_FR_PLAIN_MAX];
static uint8_t wire[PP_FR_PLAIN_MAX + 4096];
static uint8_t back[PP_FR_PLAIN_MAX];

static void
walk_udp(const uint8_t *p, size_t n)
{
	const uint8_t *dg;
	size_t off = 0, dl, total = 0;
	int rc;

	while ((rc = pp_udpb_next(p, n, &off, &dg, &dl)) == 1) {
		if (dg < p || dg + dl > p + n || dl > PP_UDPB_DGRAM_MAX)
			abort();
		total += 4 + dl;
	}
	if ((rc != 0 && rc != PP_EPROTO) || off != n ||
	    (rc == 0 && total != n))
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t caps[] = { PP_FR_PLAIN_MAX, 0, 1, 200, 4096, 16384,
	    65536, PP_FR_PLAIN_MAX };
	struct pp_codec_config cfg;
	struct pp_codec *rx = NULL, *tx = NULL, *rx2 = NULL;
	size_t cap;

	if (size < 1)
		return 0;
	cfg.codec = (enum pp_tun_codec)(data[0] & 3);
	cfg.stream = (data[0] >> 2 & 3) == 1;
	cfg.adaptive = (data[0] >> 2 & 3) == 2;
	cap = caps[data[0] >> 4 & 7];
	if (cfg.stream && cfg.codec < PP_CODEC_ZSTD)
		cfg.codec = PP_CODEC_ZSTD;
	if (pp_codec_new(&cfg, &rx) < 0 || pp_codec_new(&cfg, &tx) < 0 ||
	    pp_codec_new(&cfg, &rx2) < 0)
		abort();
	pp_codec_set_link_rate(tx, (double)(data[0] >> 7) * 1e6);
	data++, size--;

	while (size >= 2) {
		size_t n = (size_t)data[0] << 8 | data[1];
		unsigned flags;
		ssize_t r, e, d;

		data += 2, size -= 2;
		if (n > size)
			n = size;
		r = pp_codec_decode(rx, data, n, &flags, out, cap);
		if (r >= 0 && (size_t)r > cap)
			abort();
		if (r < 0 && r != PP_EPROTO && r != PP_ETOOBIG)
			abort();
		walk_udp(data, n);

		/* The sender's side: whatever we send comes back intact. */
		e = pp_codec_encode(tx, n ? data[0] & 0x1e : 0, data, n, wire,
		    sizeof(wire));
		if (e < 1)
			abort();
		d = pp_codec_decode(rx2, wire, (size_t)e, &flags, back,
		    sizeof(back));
		if (d != (ssize_t)n || (n && memcmp(back, data, n) != 0))
			abort();
		data += n, size -= n;
	}
	pp_codec_free(rx);
	pp_codec_free(tx);
	pp_codec_free(rx2);
	return 0;
}
