/*
 * Data channel framing and compression for proxy channels: the v1 flag byte
 * with per-message LZ4-frame / zstd compression at the spec's thresholds,
 * plus version-2 extensions (docs/tunnel.md): flow-control flags, a codec
 * chosen per message by the adaptive mode, and a zstd stream per channel.
 *
 * A pp_codec holds reusable (de)compression contexts and adaptive statistics
 * for ONE channel; it is not thread-safe and does no I/O.
 */
#ifndef PP_TUNNEL_FRAME_H
#define PP_TUNNEL_FRAME_H

#include "tunnel/proto.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* v1 */
#define PP_FR_COMPRESSED	0x01u
#define PP_FR_START		0x02u
#define PP_FR_EOT		0x04u
/* v2, only towards peers that negotiated them */
#define PP_FR_PAUSE		0x08u	/* flow: stop sending on this channel */
#define PP_FR_RESUME		0x10u	/* flow: go on */
#define PP_FR_CODEC_LZ4		0x20u	/* adaptive: COMPRESSED payload is lz4 */
#define PP_FR_CODEC_ZSTD	0x40u	/* adaptive: COMPRESSED payload is zstd */

/* Largest payload a decompressed message may expand to; beyond: PP_ETOOBIG. */
#define PP_FR_PLAIN_MAX		(1024 * 1024)

/* Payload sizes at or below which v1 sends uncompressed. */
#define PP_FR_LZ4_MIN		200
#define PP_FR_ZSTD_MIN		200
#define PP_FR_ZSTD_HC_MIN	150
#define PP_FR_ZSTD_LEVEL	3
#define PP_FR_ZSTD_HC_LEVEL	15

struct pp_codec;

struct pp_codec_config {
	enum pp_tun_codec codec;	/* negotiated */
	int stream;			/* settings.stream: one zstd stream per direction */
	int adaptive;			/* settings.adaptive */
};

int pp_codec_new(const struct pp_codec_config *cfg, struct pp_codec **out);
void pp_codec_free(struct pp_codec *c);	/* NULL-safe */

/* Room one encoded message of len payload bytes may need (flag byte included). */
size_t pp_codec_bound(size_t len);

/*
 * pp_codec_new: PP_EINVAL for a configuration negotiation cannot produce
 * (stream without zstd/zstd-hc, stream with adaptive).  Contexts are made
 * on first use.
 */

/*
 * Encodes one message: out[0] = flag byte (flags | what compression adds),
 * then the payload, compressed when the codec (or the adaptive choice) says
 * so and the result is smaller.  Returns the encoded length (>= 1) or a
 * negative code: PP_EINVAL when flags holds anything but START, EOT, PAUSE,
 * RESUME; PP_ETOOBIG over PP_FR_PLAIN_MAX; -ENOSPC when cap is under
 * pp_codec_bound(len).  In stream mode a message, once fed to the stream,
 * is sent COMPRESSED even if a few bytes larger (the peer's decoder must see
 * it), and after a failure the encoder returns PP_EPROTO for good.
 */
ssize_t pp_codec_encode(struct pp_codec *c, unsigned flags, const void *in,
    size_t len, uint8_t *out, size_t cap);

/*
 * As pp_codec_encode, without copying a payload that goes out as it is: in
 * must have one writable byte before it (in[-1]), where the flag byte then
 * goes, and *msg = in - 1; a compressed message is written to out, and
 * *msg = out.  in and out must not overlap.
 */
ssize_t pp_codec_encode_inplace(struct pp_codec *c, unsigned flags,
    uint8_t *in, size_t len, uint8_t *out, size_t cap, const uint8_t **msg);

/*
 * Decodes one message: *flags = its flag byte; the payload (decompressed
 * when COMPRESSED) goes to out, at most cap bytes.  Returns the payload
 * length, PP_EPROTO (empty message, corrupt data, a codec bit without
 * adaptive, compression where none was negotiated, the reserved bit 0x80,
 * a compressed payload that is not exactly one frame) or PP_ETOOBIG (the
 * payload would exceed cap or PP_FR_PLAIN_MAX).  In stream mode any error
 * leaves the incoming stream undecodable: later calls return PP_EPROTO and
 * the channel must be closed.
 */
ssize_t pp_codec_decode(struct pp_codec *c, const uint8_t *in, size_t len,
    unsigned *flags, uint8_t *out, size_t cap);

/*
 * As pp_codec_decode, without copying a payload that came uncompressed:
 * *plain = in + 1 then, else out.  Same checks and returns.
 */
ssize_t pp_codec_decode_ref(struct pp_codec *c, const uint8_t *in, size_t len,
    unsigned *flags, uint8_t *out, size_t cap, const uint8_t **plain);

/*
 * Adaptive mode: the channel's drain rate lately (bytes per second the link
 * took, measured by the caller from its buffered amount; 0: unknown) which
 * weighs compression time against transfer time.
 */
void pp_codec_set_link_rate(struct pp_codec *c, double bytes_per_sec);

/* Encoder side, every mode: payload bytes in, wire bytes out (flag bytes
 * included), and messages by how they were actually sent. */
struct pp_codec_stats {
	uint64_t in_bytes, out_bytes;		/* before / after encoding */
	uint64_t msgs_none, msgs_lz4, msgs_zstd;	/* per choice made */
};
void pp_codec_get_stats(const struct pp_codec *c, struct pp_codec_stats *st);

#endif
