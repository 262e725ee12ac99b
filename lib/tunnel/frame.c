/*
 * Proxy channel framing: the flag byte and per-message compression.
 *
 * Decoding sees hostile bytes, so every path is bounded by the caller's
 * capacity (never more than PP_FR_PLAIN_MAX):
 *  - zstd frames: the declared content size is checked before any work and
 *    the frame is decoded in one pass straight into the caller's buffer,
 *    which needs no window allocation whatever the frame header claims;
 *  - LZ4 frames: the declared content size is checked likewise; LZ4F sizes
 *    its internal buffers from the header's block size (at most 4 MiB + 128
 *    KiB, a format limit), so a context that was asked for blocks above 256
 *    KiB is dropped after the message instead of being kept for the channel;
 *  - the v2 zstd stream: the decoder's window is capped (STREAM_WLOG) and
 *    each message's output is bounded like the others.
 * Compression contexts are created on first use, so a channel pays only for
 * the codecs it actually meets.
 */
#include "frame.h"
#include "base/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <zstd.h>
#include <zstd_errors.h>

/*
 * The v2 stream's window: 128 KiB.  Measured on our own sources sent as 16
 * KiB messages, windowLog 20 instead of 17 gains about 1% of ratio and
 * costs 1 MiB more per channel and direction; level 15's default tables
 * (about 64 MiB per encoder) are capped the same way.
 */
#define STREAM_WLOG		17
/* Stream mode: smaller messages go raw (and stay out of the stream). */
#define STREAM_MIN		64

/*
 * Adaptive mode (the heuristic is described in docs/tunnel.md, "Adaptive
 * compression"):
 *  - messages under ADAPT_MIN go raw: frame overhead eats what is saved;
 *  - a message "shrinks enough" when it loses at least 1/ADAPT_GAIN;
 *  - after a message that did not, the next ADAPT_SKIP << (failures - 1)
 *    bytes (capped at ADAPT_SKIP_MAX_SHIFT doublings) go raw without any
 *    attempt, then one message is probed with lz4, the cheapest trial, and
 *    a success returns to the normal choice;
 *  - before trying a large message (>= ADAPT_SAMPLE_MIN), ADAPT_SAMPLE
 *    bytes spread over it are counted: ADAPT_RANDOM or more distinct values
 *    out of 256 (uniform random data gives about 162, text about 40-70)
 *    counts as a failure without compressing anything;
 *  - the link rate picks the codec: under ADAPT_SLOW bytes/s compression
 *    time hides behind transfer time, so zstd (level 3 under 5 MB/s, 2
 *    under 12 MB/s, else 1); at ADAPT_FAST or more the link outruns lz4 on
 *    one core, so none; otherwise (and when the rate is unknown) lz4.
 */
#define ADAPT_MIN		128
#define ADAPT_GAIN		8
#define ADAPT_SKIP		(64 * 1024)
#define ADAPT_SKIP_MAX_SHIFT	5
#define ADAPT_SAMPLE_MIN	1024
#define ADAPT_SAMPLE		256
#define ADAPT_RANDOM		144
#define ADAPT_SLOW		(20e6)
#define ADAPT_FAST		(400e6)

/* Flags a caller may ask for; the codec sets the others itself. */
#define CALLER_FLAGS	(PP_FR_START | PP_FR_EOT | PP_FR_PAUSE | PP_FR_RESUME)
#define CODEC_BITS	(PP_FR_CODEC_LZ4 | PP_FR_CODEC_ZSTD)
#define KNOWN_FLAGS	(CALLER_FLAGS | CODEC_BITS | PP_FR_COMPRESSED)

enum choice { CH_NONE, CH_LZ4, CH_ZSTD };

struct pp_codec {
	struct pp_codec_config cfg;
	ZSTD_CCtx *zc;		/* per-message frames, or the outgoing stream */
	ZSTD_DCtx *zd;		/* per-message frames, or the incoming stream */
	LZ4F_cctx *lc;
	LZ4F_dctx *ld;
	int enc_broken, dec_broken;	/* stream state lost: channel is done */
	/* adaptive */
	double link_rate;
	size_t skip;		/* bytes still to send raw without trying */
	unsigned fails;		/* consecutive messages that did not shrink */
	struct pp_codec_stats st;
};

static const LZ4F_preferences_t lz4_prefs_base = {
	.frameInfo = { .blockSizeID = LZ4F_max64KB,
	    .blockMode = LZ4F_blockIndependent },
	.compressionLevel = 0,
};

int
pp_codec_new(const struct pp_codec_config *cfg, struct pp_codec **out)
{
	struct pp_codec *c;

	*out = NULL;
	if ((unsigned)cfg->codec > PP_CODEC_ZSTD_HC)
		return PP_EINVAL;
	/* What negotiation can produce; anything else is a caller bug. */
	if (cfg->stream && (cfg->adaptive || cfg->codec < PP_CODEC_ZSTD))
		return PP_EINVAL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->cfg = *cfg;
	*out = c;
	return 0;
}

void
pp_codec_free(struct pp_codec *c)
{
	if (c == NULL)
		return;
	ZSTD_freeCCtx(c->zc);
	ZSTD_freeDCtx(c->zd);
	LZ4F_freeCompressionContext(c->lc);
	LZ4F_freeDecompressionContext(c->ld);
	free(c);
}

void
pp_codec_set_link_rate(struct pp_codec *c, double bytes_per_sec)
{
	/* NaN and negatives mean "unknown", as 0 does. */
	c->link_rate = bytes_per_sec > 0 ? bytes_per_sec : 0;
}

void
pp_codec_get_stats(const struct pp_codec *c, struct pp_codec_stats *st)
{
	*st = c->st;
}

size_t
pp_codec_bound(size_t len)
{
	LZ4F_preferences_t prefs = lz4_prefs_base;
	size_t b = len, x;

	/* Encoding refuses these anyway; do not let the sums wrap. */
	if (len > PP_FR_PLAIN_MAX)
		return len == (size_t)-1 ? len : len + 1;
	prefs.frameInfo.contentSize = len;
	if ((x = LZ4F_compressFrameBound(len, &prefs)) > b)
		b = x;
	/* Stream flushes add block headers; 64 covers a frame header too. */
	if ((x = ZSTD_compressBound(len) + 64) > b)
		b = x;
	return 1 + b;
}

/* --- contexts ----------------------------------------------------------- */

static int
need_zc(struct pp_codec *c)
{
	int level = c->cfg.codec == PP_CODEC_ZSTD_HC ? PP_FR_ZSTD_HC_LEVEL :
	    PP_FR_ZSTD_LEVEL;

	if (c->zc)
		return 0;
	if ((c->zc = ZSTD_createCCtx()) == NULL)
		return -ENOMEM;
	if (!c->cfg.stream)
		return 0;
	if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc,
	    ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_windowLog,
	    STREAM_WLOG)) ||
	    (c->cfg.codec == PP_CODEC_ZSTD_HC &&
	    (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_hashLog,
	    STREAM_WLOG)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_chainLog,
	    STREAM_WLOG)))))
		return -EIO;
	return 0;
}

static int
need_zd(struct pp_codec *c)
{
	if (c->zd)
		return 0;
	if ((c->zd = ZSTD_createDCtx()) == NULL)
		return -ENOMEM;
	/* Per-message frames decode in one pass and never use a window
	 * buffer; the stream does, and the peer's header picks its size. */
	if (c->cfg.stream && ZSTD_isError(ZSTD_DCtx_setParameter(c->zd,
	    ZSTD_d_windowLogMax, STREAM_WLOG)))
		return -EIO;
	return 0;
}

static int
need_lc(struct pp_codec *c)
{
	if (c->lc == NULL &&
	    LZ4F_isError(LZ4F_createCompressionContext(&c->lc, LZ4F_VERSION)))
		return c->lc = NULL, -ENOMEM;
	return 0;
}

static int
need_ld(struct pp_codec *c)
{
	if (c->ld == NULL &&
	    LZ4F_isError(LZ4F_createDecompressionContext(&c->ld, LZ4F_VERSION)))
		return c->ld = NULL, -ENOMEM;
	return 0;
}

/* --- compressors: the compressed size, 0 when not smaller, or < 0 -------- */

static ssize_t
lz4_compress(struct pp_codec *c, const uint8_t *in, size_t len, uint8_t *dst,
    size_t dcap)
{
	LZ4F_preferences_t prefs = lz4_prefs_base;
	size_t h, n, e;
	int rc;

	if ((rc = need_lc(c)) < 0)
		return rc;
	/* Python's lz4.frame writes the size too; it lets decoders refuse
	 * oversized messages before decoding them. */
	prefs.frameInfo.contentSize = len;
	h = LZ4F_compressBegin(c->lc, dst, dcap, &prefs);
	if (LZ4F_isError(h))
		return -EIO;
	n = LZ4F_compressUpdate(c->lc, dst + h, dcap - h, in, len, NULL);
	if (LZ4F_isError(n))
		return -EIO;
	e = LZ4F_compressEnd(c->lc, dst + h + n, dcap - h - n, NULL);
	if (LZ4F_isError(e))
		return -EIO;
	return h + n + e < len ? (ssize_t)(h + n + e) : 0;
}

static ssize_t
zstd_compress(struct pp_codec *c, const uint8_t *in, size_t len, uint8_t *dst,
    int level)
{
	size_t n;
	int rc;

	if ((rc = need_zc(c)) < 0)
		return rc;
	/* Room for len - 1 bytes only: zstd gives up as soon as the output
	 * cannot be smaller, which is what v1 wants anyway. */
	n = ZSTD_compressCCtx(c->zc, dst, len - 1, in, len, level);
	if (ZSTD_isError(n))
		return ZSTD_getErrorCode(n) == ZSTD_error_dstSize_tooSmall ?
		    0 : -EIO;
	return (ssize_t)n;
}

static ssize_t
stream_compress(struct pp_codec *c, const uint8_t *in, size_t len,
    uint8_t *dst, size_t dcap)
{
	ZSTD_inBuffer ib = { in, len, 0 };
	ZSTD_outBuffer ob = { dst, dcap, 0 };
	size_t r;
	int rc;

	if ((rc = need_zc(c)) < 0)
		return rc;
	do {
		r = ZSTD_compressStream2(c->zc, &ob, &ib, ZSTD_e_flush);
		if (ZSTD_isError(r) || (r != 0 && ob.pos == ob.size)) {
			/* Half a message went into the stream: the peer can
			 * never decode what follows. */
			c->enc_broken = 1;
			return -EIO;
		}
	} while (r != 0);
	if (ob.pos == 0) {
		/* Cannot happen (a flush writes a block header at least), but
		 * "raw" after feeding the stream would desynchronise it. */
		c->enc_broken = 1;
		return -EIO;
	}
	return (ssize_t)ob.pos;
}

/* --- adaptive ------------------------------------------------------------ */

static int
looks_random(const uint8_t *p, size_t len)
{
	uint8_t seen[32] = { 0 };
	size_t step = len / ADAPT_SAMPLE;
	unsigned distinct = 0;

	for (size_t i = 0; i < ADAPT_SAMPLE; i++) {
		uint8_t b = p[i * step];

		if (!(seen[b >> 3] & (1u << (b & 7)))) {
			seen[b >> 3] |= (uint8_t)(1u << (b & 7));
			distinct++;
		}
	}
	return distinct >= ADAPT_RANDOM;
}

static void
adapt_failed(struct pp_codec *c)
{
	unsigned shift;

	if (c->fails < ADAPT_SKIP_MAX_SHIFT + 1)
		c->fails++;
	shift = c->fails - 1;
	c->skip = (size_t)ADAPT_SKIP << shift;
}

static enum choice
adapt_pick(struct pp_codec *c, int *level)
{
	double r = c->link_rate;

	*level = 1;
	if (r >= ADAPT_FAST)
		return CH_NONE;
	if (r > 0 && r < ADAPT_SLOW && c->cfg.codec >= PP_CODEC_ZSTD) {
		*level = r < 5e6 ? 3 : r < 12e6 ? 2 : 1;
		return CH_ZSTD;
	}
	return CH_LZ4;
}

/* The adaptive encoder: returns the compressed size (0: send raw). */
static ssize_t
adapt_compress(struct pp_codec *c, const uint8_t *in, size_t len,
    uint8_t *dst, size_t dcap, enum choice *ch)
{
	enum choice pick;
	ssize_t n;
	int level = 1, probing = c->fails > 0;

	*ch = CH_NONE;
	if (c->cfg.codec == PP_CODEC_NONE || len < ADAPT_MIN)
		return 0;
	if (c->skip > 0) {
		c->skip -= len < c->skip ? len : c->skip;
		return 0;
	}
	if (!probing && len >= ADAPT_SAMPLE_MIN && looks_random(in, len)) {
		adapt_failed(c);
		return 0;
	}
	pick = probing ? CH_LZ4 : adapt_pick(c, &level);
	if (pick == CH_NONE)
		return 0;
	n = pick == CH_LZ4 ? lz4_compress(c, in, len, dst, dcap) :
	    zstd_compress(c, in, len, dst, level);
	if (n < 0)
		return n;
	if (n == 0 || (size_t)n > len - len / ADAPT_GAIN) {
		adapt_failed(c);
		if (n == 0)
			return 0;
	} else {
		c->fails = 0;
	}
	*ch = pick;
	return n;
}

/* --- encode -------------------------------------------------------------- */

/*
 * The encoder's choice: the length of a compressed message written to out
 * (flag byte included), 0 for a raw one (the caller frames it), or an error.
 */
static ssize_t
encode(struct pp_codec *c, unsigned flags, const uint8_t *src, size_t len,
    uint8_t *out, size_t cap)
{
	enum choice ch = CH_NONE;
	ssize_t n = 0;

	if (flags & ~CALLER_FLAGS)
		return PP_EINVAL;
	if (len > PP_FR_PLAIN_MAX)
		return PP_ETOOBIG;
	if (cap < pp_codec_bound(len))
		return -ENOSPC;
	if (c->enc_broken)
		return PP_EPROTO;

	if (c->cfg.adaptive) {
		n = adapt_compress(c, src, len, out + 1, cap - 1, &ch);
	} else if (c->cfg.stream) {
		if (len >= STREAM_MIN)
			n = stream_compress(c, src, len, out + 1, cap - 1);
		ch = CH_ZSTD;
	} else {
		switch (c->cfg.codec) {
		case PP_CODEC_NONE:
			break;
		case PP_CODEC_LZ4:
			if (len > PP_FR_LZ4_MIN)
				n = lz4_compress(c, src, len, out + 1, cap - 1);
			ch = CH_LZ4;
			break;
		case PP_CODEC_ZSTD:
			if (len > PP_FR_ZSTD_MIN)
				n = zstd_compress(c, src, len, out + 1,
				    PP_FR_ZSTD_LEVEL);
			ch = CH_ZSTD;
			break;
		case PP_CODEC_ZSTD_HC:
			if (len > PP_FR_ZSTD_HC_MIN)
				n = zstd_compress(c, src, len, out + 1,
				    PP_FR_ZSTD_HC_LEVEL);
			ch = CH_ZSTD;
			break;
		}
	}
	if (n < 0)
		return n;
	c->st.in_bytes += len;
	if (n == 0) {
		c->st.msgs_none++;
		c->st.out_bytes += 1 + len;
		return 0;
	}
	flags |= PP_FR_COMPRESSED;
	if (c->cfg.adaptive)
		flags |= ch == CH_LZ4 ? PP_FR_CODEC_LZ4 : PP_FR_CODEC_ZSTD;
	out[0] = (uint8_t)flags;
	if (ch == CH_LZ4)
		c->st.msgs_lz4++;
	else
		c->st.msgs_zstd++;
	c->st.out_bytes += 1 + (size_t)n;
	return 1 + n;
}

ssize_t
pp_codec_encode(struct pp_codec *c, unsigned flags, const void *in,
    size_t len, uint8_t *out, size_t cap)
{
	ssize_t n = encode(c, flags, in, len, out, cap);

	if (n != 0)
		return n;
	/* Raw: the compressors may have scribbled on out already. */
	out[0] = (uint8_t)flags;
	if (len)
		memcpy(out + 1, in, len);
	return (ssize_t)(1 + len);
}

ssize_t
pp_codec_encode_inplace(struct pp_codec *c, unsigned flags, uint8_t *in,
    size_t len, uint8_t *out, size_t cap, const uint8_t **msg)
{
	ssize_t n = encode(c, flags, in, len, out, cap);

	if (n > 0)
		*msg = out;
	if (n != 0)
		return n;
	in[-1] = (uint8_t)flags;
	*msg = in - 1;
	return (ssize_t)(1 + len);
}

/* --- decode -------------------------------------------------------------- */

static ssize_t
lz4_decompress(struct pp_codec *c, const uint8_t *p, size_t n, uint8_t *out,
    size_t cap)
{
	LZ4F_decompressOptions_t opt = { .stableDst = 1 };
	LZ4F_frameInfo_t fi;
	size_t hsz = n, hint, pos = 0;
	ssize_t rc;

	if ((rc = need_ld(c)) < 0)
		return rc;
	LZ4F_resetDecompressionContext(c->ld);
	hint = LZ4F_getFrameInfo(c->ld, &fi, p, &hsz);
	if (LZ4F_isError(hint))
		return PP_EPROTO;
	if (fi.contentSize > cap)
		return PP_ETOOBIG;
	p += hsz, n -= hsz;
	while (hint != 0 && n > 0) {
		size_t dsz = cap - pos, ssz = n;

		hint = LZ4F_decompress(c->ld, out + pos, &dsz, p, &ssz, &opt);
		if (LZ4F_isError(hint)) {
			rc = PP_EPROTO;
			goto out;
		}
		pos += dsz, p += ssz, n -= ssz;
		if (hint != 0 && dsz == 0 && ssz == 0) {
			rc = pos == cap ? PP_ETOOBIG : PP_EPROTO;
			goto out;
		}
	}
	if (hint != 0)		/* out of input: truncated, or out of room */
		rc = pos == cap ? PP_ETOOBIG : PP_EPROTO;
	else if (n != 0)	/* one frame per message */
		rc = PP_EPROTO;
	else
		rc = (ssize_t)pos;
out:
	if (fi.blockSizeID > LZ4F_max256KB) {
		/* Do not keep up to 8 MiB of buffers a peer asked for. */
		LZ4F_freeDecompressionContext(c->ld);
		c->ld = NULL;
	}
	return rc;
}

static ssize_t
zstd_decompress(struct pp_codec *c, const uint8_t *p, size_t n, uint8_t *out,
    size_t cap)
{
	unsigned long long fcs = ZSTD_getFrameContentSize(p, n);
	size_t r;
	int rc;

	if (fcs == ZSTD_CONTENTSIZE_ERROR)
		return PP_EPROTO;
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs > cap)
		return PP_ETOOBIG;
	r = ZSTD_findFrameCompressedSize(p, n);
	if (ZSTD_isError(r) || r != n)	/* truncated, or more than one frame */
		return PP_EPROTO;
	if ((rc = need_zd(c)) < 0)
		return rc;
	r = ZSTD_decompressDCtx(c->zd, out, cap, p, n);
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall ?
		    PP_ETOOBIG : PP_EPROTO;
	return (ssize_t)r;
}

/*
 * One message of the incoming stream.  The sender flushed after each
 * message, so when the input is used up and the output is not full, all of
 * it has come out.  A full output is probed with one spare byte: anything
 * more is over the cap.
 */
static ssize_t
stream_decompress(struct pp_codec *c, const uint8_t *p, size_t n,
    uint8_t *out, size_t cap)
{
	ZSTD_inBuffer ib = { p, n, 0 };
	ZSTD_outBuffer ob = { out, cap, 0 };
	ssize_t rc;

	if ((rc = need_zd(c)) < 0)
		return rc;
	for (;;) {
		size_t in0 = ib.pos, out0 = ob.pos, r;

		if (ob.pos == ob.size) {
			uint8_t spare;
			ZSTD_outBuffer sb = { &spare, 1, 0 };

			r = ZSTD_decompressStream(c->zd, &sb, &ib);
			if (ZSTD_isError(r)) {
				rc = PP_EPROTO;
				break;
			}
			if (sb.pos != 0) {
				rc = PP_ETOOBIG;
				break;
			}
			if (ib.pos == ib.size)
				return (ssize_t)ob.pos;
			if (ib.pos == in0) {
				rc = PP_EPROTO;
				break;
			}
			continue;
		}
		r = ZSTD_decompressStream(c->zd, &ob, &ib);
		if (ZSTD_isError(r)) {
			rc = PP_EPROTO;
			break;
		}
		if (ib.pos == ib.size && ob.pos < ob.size)
			return (ssize_t)ob.pos;
		if (ib.pos == in0 && ob.pos == out0) {
			rc = PP_EPROTO;
			break;
		}
	}
	c->dec_broken = 1;
	return rc;
}

ssize_t
pp_codec_decode(struct pp_codec *c, const uint8_t *in, size_t len,
    unsigned *flags, uint8_t *out, size_t cap)
{
	const uint8_t *plain;
	ssize_t n = pp_codec_decode_ref(c, in, len, flags, out, cap, &plain);

	if (n > 0 && plain != out)
		memcpy(out, plain, (size_t)n);
	return n;
}

ssize_t
pp_codec_decode_ref(struct pp_codec *c, const uint8_t *in, size_t len,
    unsigned *flags, uint8_t *out, size_t cap, const uint8_t **plain)
{
	const uint8_t *p;
	size_t n;
	unsigned f, codec_bits;

	*flags = 0;
	if (len == 0)
		return PP_EPROTO;
	p = in + 1, n = len - 1;
	f = in[0];
	*flags = f;
	if (cap > PP_FR_PLAIN_MAX)
		cap = PP_FR_PLAIN_MAX;
	if (f & ~KNOWN_FLAGS)
		return PP_EPROTO;
	if (c->dec_broken)
		return PP_EPROTO;
	codec_bits = f & CODEC_BITS;
	if (codec_bits && (!c->cfg.adaptive || !(f & PP_FR_COMPRESSED)))
		return PP_EPROTO;
	*plain = out;
	if (!(f & PP_FR_COMPRESSED)) {
		if (n > cap)
			return PP_ETOOBIG;
		*plain = p;
		return (ssize_t)n;
	}
	if (n == 0 || c->cfg.codec == PP_CODEC_NONE)
		return PP_EPROTO;
	if (c->cfg.adaptive) {
		if (codec_bits == PP_FR_CODEC_LZ4)
			return lz4_decompress(c, p, n, out, cap);
		/* Exactly one codec bit, and none stronger than negotiated. */
		if (codec_bits == PP_FR_CODEC_ZSTD &&
		    c->cfg.codec >= PP_CODEC_ZSTD)
			return zstd_decompress(c, p, n, out, cap);
		return PP_EPROTO;
	}
	if (c->cfg.stream)
		return stream_decompress(c, p, n, out, cap);
	if (c->cfg.codec == PP_CODEC_LZ4)
		return lz4_decompress(c, p, n, out, cap);
	return zstd_decompress(c, p, n, out, cap);
}
