/* lib/tunnel/frame.c: the flag byte, v1 compression, the v2 stream and adaptive modes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "tunnel/frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <zstd.h>

#define BIG (PP_FR_PLAIN_MAX + 4096)

/*
 * Interop vectors: the same 384-byte HTTP-ish text compressed by the tools
 * existing peers use (Debian python3-lz4 0.20 / python3-zstandard, and the
 * lz4 1.9.4 / zstd 1.5.4 command line tools reading stdin).  They differ in
 * what the frame header carries: content size or not, checksums, window.
 */
static const uint8_t v_py_lz4[] = {
	0x04, 0x22, 0x4d, 0x18, 0x68, 0x40, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x57, 0x91, 0x00, 0x00, 0x00, 0xf6, 0x1a, 0x48, 0x54, 0x54,
	0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30, 0x30, 0x20, 0x4f, 0x4b,
	0x0d, 0x0a, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e, 0x74, 0x2d, 0x54, 0x79,
	0x70, 0x65, 0x3a, 0x20, 0x74, 0x65, 0x78, 0x74, 0x2f, 0x70, 0x6c, 0x61,
	0x69, 0x6e, 0x1a, 0x00, 0xf1, 0x27, 0x4c, 0x65, 0x6e, 0x67, 0x74, 0x68,
	0x3a, 0x20, 0x32, 0x34, 0x30, 0x0d, 0x0a, 0x0d, 0x0a, 0x6c, 0x69, 0x6e,
	0x65, 0x20, 0x30, 0x30, 0x3a, 0x20, 0x74, 0x68, 0x65, 0x20, 0x71, 0x75,
	0x69, 0x63, 0x6b, 0x20, 0x62, 0x72, 0x6f, 0x77, 0x6e, 0x20, 0x66, 0x6f,
	0x78, 0x20, 0x6a, 0x75, 0x6d, 0x70, 0x73, 0x20, 0x6f, 0x76, 0x65, 0x72,
	0x1f, 0x00, 0x83, 0x6c, 0x61, 0x7a, 0x79, 0x20, 0x64, 0x6f, 0x67, 0x35,
	0x00, 0x1f, 0x31, 0x35, 0x00, 0x21, 0x1f, 0x32, 0x35, 0x00, 0x21, 0x1f,
	0x33, 0x35, 0x00, 0x21, 0x1f, 0x34, 0x35, 0x00, 0x21, 0x1f, 0x35, 0x35,
	0x00, 0x16, 0x50, 0x20, 0x64, 0x6f, 0x67, 0x0a, 0x00, 0x00, 0x00, 0x00,
};
static const uint8_t v_py_zstd3[] = {
	0x28, 0xb5, 0x2f, 0xfd, 0x60, 0x80, 0x00, 0xed, 0x03, 0x00, 0xc2, 0x06,
	0x19, 0x1d, 0x50, 0x6d, 0x75, 0x36, 0x22, 0x0b, 0x7e, 0xa4, 0x32, 0xa1,
	0x74, 0x4b, 0x8d, 0xad, 0x50, 0x52, 0xb3, 0xc4, 0xbd, 0x7c, 0x0b, 0x42,
	0x32, 0xb0, 0x32, 0x66, 0x99, 0xb5, 0xd7, 0x03, 0x46, 0xd0, 0x98, 0x23,
	0x19, 0x9f, 0x2a, 0x4d, 0x84, 0x76, 0x22, 0x2f, 0x99, 0x90, 0xc8, 0x71,
	0x49, 0x36, 0xce, 0x14, 0x09, 0x29, 0xfe, 0x58, 0xc0, 0x28, 0xf2, 0x7d,
	0xfa, 0x4e, 0xf5, 0xcb, 0x30, 0xaa, 0xa5, 0x96, 0x32, 0xed, 0xee, 0x69,
	0x87, 0xf7, 0xc0, 0xb0, 0x89, 0x73, 0x69, 0x69, 0xfb, 0x6e, 0xe7, 0xf4,
	0x00, 0xcd, 0xdb, 0x2c, 0x09, 0x6a, 0x19, 0x10, 0x57, 0x6d, 0x67, 0x01,
	0xb6, 0x24, 0xde, 0x2b, 0x04, 0x08, 0x00, 0x03, 0x53, 0x02, 0xce, 0x0b,
	0x38, 0x59, 0xc0, 0x29, 0x01, 0xe7, 0x62, 0xe5, 0xb8, 0x09, 0x25, 0x60,
	0x7a, 0x9b, 0x65,
};
static const uint8_t v_py_zstd15_cksum[] = {
	0x28, 0xb5, 0x2f, 0xfd, 0x64, 0x80, 0x00, 0xd5, 0x03, 0x00, 0xc2, 0x46,
	0x18, 0x19, 0x50, 0xd7, 0x03, 0xff, 0xf6, 0x16, 0x32, 0x23, 0x42, 0x15,
	0xef, 0xa0, 0xf8, 0x6c, 0xd4, 0x2a, 0x5f, 0xae, 0x8d, 0x70, 0x32, 0x5b,
	0x42, 0xc6, 0x07, 0x05, 0x31, 0xd0, 0x19, 0xe9, 0xc7, 0xbd, 0x8f, 0xc1,
	0xd8, 0x6f, 0xda, 0x33, 0xab, 0xd2, 0x26, 0xef, 0x34, 0xe4, 0x99, 0xd3,
	0x58, 0xe3, 0x94, 0x73, 0xb5, 0xcb, 0x5f, 0xda, 0x5e, 0xa5, 0xf4, 0xcf,
	0x17, 0xc3, 0x08, 0xa3, 0x24, 0xa8, 0x57, 0x69, 0x47, 0xf9, 0x93, 0x7c,
	0x19, 0x6c, 0x09, 0xbb, 0xfb, 0xed, 0xf5, 0x2d, 0xcf, 0x02, 0x3b, 0xff,
	0xce, 0xda, 0x80, 0x11, 0x51, 0x5c, 0x4a, 0xea, 0x33, 0x98, 0xc2, 0x62,
	0xed, 0x11, 0x08, 0x20, 0x30, 0x43, 0x7b, 0x9b, 0x12, 0xe7, 0xc5, 0xc9,
	0xe2, 0x94, 0x74, 0x2e, 0xc6, 0x71, 0x13, 0x08, 0x98, 0xde, 0x7c, 0x19,
	0x84, 0xae, 0xe4, 0xea,
};
static const uint8_t v_cli_lz4[] = {
	0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7, 0x91, 0x00, 0x00, 0x00, 0xf6,
	0x1a, 0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x20, 0x32, 0x30,
	0x30, 0x20, 0x4f, 0x4b, 0x0d, 0x0a, 0x43, 0x6f, 0x6e, 0x74, 0x65, 0x6e,
	0x74, 0x2d, 0x54, 0x79, 0x70, 0x65, 0x3a, 0x20, 0x74, 0x65, 0x78, 0x74,
	0x2f, 0x70, 0x6c, 0x61, 0x69, 0x6e, 0x1a, 0x00, 0xf1, 0x27, 0x4c, 0x65,
	0x6e, 0x67, 0x74, 0x68, 0x3a, 0x20, 0x32, 0x34, 0x30, 0x0d, 0x0a, 0x0d,
	0x0a, 0x6c, 0x69, 0x6e, 0x65, 0x20, 0x30, 0x30, 0x3a, 0x20, 0x74, 0x68,
	0x65, 0x20, 0x71, 0x75, 0x69, 0x63, 0x6b, 0x20, 0x62, 0x72, 0x6f, 0x77,
	0x6e, 0x20, 0x66, 0x6f, 0x78, 0x20, 0x6a, 0x75, 0x6d, 0x70, 0x73, 0x20,
	0x6f, 0x76, 0x65, 0x72, 0x1f, 0x00, 0x83, 0x6c, 0x61, 0x7a, 0x79, 0x20,
	0x64, 0x6f, 0x67, 0x35, 0x00, 0x1f, 0x31, 0x35, 0x00, 0x21, 0x1f, 0x32,
	0x35, 0x00, 0x21, 0x1f, 0x33, 0x35, 0x00, 0x21, 0x1f, 0x34, 0x35, 0x00,
	0x21, 0x1f, 0x35, 0x35, 0x00, 0x16, 0x50, 0x20, 0x64, 0x6f, 0x67, 0x0a,
	0x00, 0x00, 0x00, 0x00, 0xd9, 0x80, 0x68, 0x08,
};
static const uint8_t v_cli_zstd[] = {
	0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x58, 0xed, 0x03, 0x00, 0xc2, 0x06, 0x19,
	0x1d, 0x50, 0x6d, 0x75, 0x36, 0x22, 0x0b, 0x7e, 0xa4, 0x32, 0xa1, 0x74,
	0x4b, 0x8d, 0xad, 0x50, 0x52, 0xb3, 0xc4, 0xbd, 0x7c, 0x0b, 0x42, 0x32,
	0xb0, 0x32, 0x66, 0x99, 0xb5, 0xd7, 0x03, 0x46, 0xd0, 0x98, 0x23, 0x19,
	0x9f, 0x2a, 0x4d, 0x84, 0x76, 0x22, 0x2f, 0x99, 0x90, 0xc8, 0x71, 0x49,
	0x36, 0xce, 0x14, 0x09, 0x29, 0xfe, 0x58, 0xc0, 0x28, 0xf2, 0x7d, 0xfa,
	0x4e, 0xf5, 0xcb, 0x30, 0xaa, 0xa5, 0x96, 0x32, 0xed, 0xee, 0x69, 0x87,
	0xf7, 0xc0, 0xb0, 0x89, 0x73, 0x69, 0x69, 0xfb, 0x6e, 0xe7, 0xf4, 0x00,
	0xcd, 0xdb, 0x2c, 0x09, 0x6a, 0x19, 0x10, 0x57, 0x6d, 0x67, 0x01, 0xb6,
	0x24, 0xde, 0x2b, 0x04, 0x08, 0x00, 0x03, 0x53, 0x02, 0xce, 0x0b, 0x38,
	0x59, 0xc0, 0x29, 0x01, 0xe7, 0x62, 0xe5, 0xb8, 0x09, 0x25, 0x60, 0x7a,
	0x9b, 0x65, 0x84, 0xae, 0xe4, 0xea,
};

#define LINE(n) "line " n ": the quick brown fox jumps over the lazy dog\n"
static const char vec_plain[] =
	"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 240\r\n\r\n"
	LINE("00") LINE("01") LINE("02") LINE("03") LINE("04") LINE("05");

/* --- helpers ----------------------------------------------------------- */

static uint8_t *
xmalloc(size_t n)
{
	uint8_t *p = malloc(n);

	assert_non_null(p);
	return p;
}

/* Deterministic incompressible bytes (xorshift64*). */
static void
fill_random(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
		p[i] = (uint8_t)((x * 0x2545F4914F6CDD1DULL) >> 56);
	}
}

/* Compressible text that is not one short loop (varies line by line). */
static void
fill_text(uint8_t *p, size_t n, unsigned seed)
{
	static const char *const words[] = { "GET ", "/index.html ", "HTTP/1.1\r\n",
	    "Host: example.org\r\n", "Accept: */*\r\n", "user-agent ",
	    "cookie=abc; ", "{\"id\": ", "\"name\": \"x\", ", "1234, " };
	size_t i = 0;

	while (i < n) {
		const char *w = words[(seed = seed * 1103515245u + 12345u) >> 16 & 7];
		size_t l = strlen(w);

		if (l > n - i)
			l = n - i;
		memcpy(p + i, w, l);
		i += l;
	}
}

/* Random letters a-p: half compressible, and never the same twice. */
static void
fill_letters(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		p[i] = (uint8_t)('a' + (seed >> 16 & 15));
	}
}

static struct pp_codec *
codec(enum pp_tun_codec k, int stream, int adaptive)
{
	struct pp_codec_config cfg = { k, stream, adaptive };
	struct pp_codec *c;

	assert_int_equal(pp_codec_new(&cfg, &c), 0);
	assert_non_null(c);
	return c;
}

/*
 * The same message again through the copy-free calls: framed in place in
 * the byte before the payload when raw, decoded by reference when raw.
 */
static void
roundtrip_inplace(struct pp_codec *tx, struct pp_codec *rx, unsigned flags,
    const uint8_t *in, size_t len)
{
	size_t cap = pp_codec_bound(len);
	uint8_t *room = xmalloc(len + 1), *wire = xmalloc(cap);
	uint8_t *out = xmalloc(len + 1);
	const uint8_t *msg, *plain;
	ssize_t n, m;
	unsigned f;

	room[0] = 0xee;
	if (len)
		memcpy(room + 1, in, len);
	n = pp_codec_encode_inplace(tx, flags, room + 1, len, wire, cap, &msg);
	assert_true(n >= 1);
	if (msg[0] & PP_FR_COMPRESSED) {
		assert_ptr_equal(msg, wire);
	} else {
		assert_ptr_equal(msg, room);
		assert_int_equal(n, len + 1);
	}
	if (len)	/* the payload itself is never touched */
		assert_memory_equal(room + 1, in, len);
	m = pp_codec_decode_ref(rx, msg, (size_t)n, &f, out, len + 1, &plain);
	assert_int_equal(m, len);
	assert_int_equal(f, msg[0]);
	assert_ptr_equal(plain, (f & PP_FR_COMPRESSED) ? out : msg + 1);
	if (len)
		assert_memory_equal(plain, in, len);
	free(room);
	free(wire);
	free(out);
}

/* Encodes with tx, decodes with rx, checks payload and flags; returns the wire length. */
static size_t
roundtrip(struct pp_codec *tx, struct pp_codec *rx, unsigned flags,
    const uint8_t *in, size_t len, unsigned *wire_flags)
{
	size_t cap = pp_codec_bound(len);
	uint8_t *wire = xmalloc(cap), *out = xmalloc(len + 1);
	ssize_t n, m;
	unsigned f;

	n = pp_codec_encode(tx, flags, in, len, wire, cap);
	assert_true(n >= 1);
	*wire_flags = wire[0];
	m = pp_codec_decode(rx, wire, (size_t)n, &f, out, len + 1);
	assert_int_equal(m, len);
	assert_int_equal(f, wire[0]);
	assert_int_equal(f & ~(PP_FR_COMPRESSED | PP_FR_CODEC_LZ4 | PP_FR_CODEC_ZSTD),
	    flags);
	if (len)
		assert_memory_equal(out, in, len);
	free(wire);
	free(out);
	return (size_t)n;
}

/* --- v1 per-message compression ----------------------------------------- */

static const struct {
	enum pp_tun_codec codec;
	size_t len;
	int compressed;
} thresholds[] = {
	{ PP_CODEC_NONE, 0, 0 }, { PP_CODEC_NONE, 201, 0 }, { PP_CODEC_NONE, 65536, 0 },
	{ PP_CODEC_LZ4, 0, 0 }, { PP_CODEC_LZ4, 150, 0 }, { PP_CODEC_LZ4, 151, 0 },
	{ PP_CODEC_LZ4, 200, 0 }, { PP_CODEC_LZ4, 201, 1 }, { PP_CODEC_LZ4, 16384, 1 },
	{ PP_CODEC_ZSTD, 150, 0 }, { PP_CODEC_ZSTD, 151, 0 }, { PP_CODEC_ZSTD, 200, 0 },
	{ PP_CODEC_ZSTD, 201, 1 }, { PP_CODEC_ZSTD, 16384, 1 },
	{ PP_CODEC_ZSTD_HC, 1, 0 }, { PP_CODEC_ZSTD_HC, 150, 0 },
	{ PP_CODEC_ZSTD_HC, 151, 1 }, { PP_CODEC_ZSTD_HC, 200, 1 },
	{ PP_CODEC_ZSTD_HC, 201, 1 }, { PP_CODEC_ZSTD_HC, 16384, 1 },
	{ PP_CODEC_LZ4, PP_FR_PLAIN_MAX, 1 }, { PP_CODEC_ZSTD, PP_FR_PLAIN_MAX, 1 },
};

static void
test_thresholds(void **state)
{
	uint8_t *text = xmalloc(PP_FR_PLAIN_MAX);

	/* Highly repetitive: compresses at every size the codecs try. */
	for (size_t i = 0; i < PP_FR_PLAIN_MAX; i++)
		text[i] = (uint8_t)"abcabcabd"[i % 9];
	for (size_t i = 0; i < sizeof(thresholds) / sizeof(thresholds[0]); i++) {
		struct pp_codec *tx = codec(thresholds[i].codec, 0, 0);
		struct pp_codec *rx = codec(thresholds[i].codec, 0, 0);
		unsigned f;
		size_t n;

		print_message("%s %zu\n", pp_tun_codec_name(thresholds[i].codec),
		    thresholds[i].len);
		n = roundtrip(tx, rx, 0, text, thresholds[i].len, &f);
		assert_int_equal(!!(f & PP_FR_COMPRESSED), thresholds[i].compressed);
		if (thresholds[i].compressed)
			assert_true(n < 1 + thresholds[i].len);
		else
			assert_int_equal(n, 1 + thresholds[i].len);
		pp_codec_free(tx);
		pp_codec_free(rx);
	}
	free(text);
}

static void
test_incompressible(void **state)
{
	uint8_t rnd[4000];

	fill_random(rnd, sizeof(rnd), 7);
	for (int k = PP_CODEC_NONE; k <= PP_CODEC_ZSTD_HC; k++) {
		struct pp_codec *tx = codec((enum pp_tun_codec)k, 0, 0);
		struct pp_codec *rx = codec((enum pp_tun_codec)k, 0, 0);
		struct pp_codec_stats st;
		unsigned f;

		for (size_t len = 151; len <= sizeof(rnd); len *= 2) {
			assert_int_equal(roundtrip(tx, rx, 0, rnd, len, &f), 1 + len);
			assert_int_equal(f, 0);
		}
		pp_codec_get_stats(tx, &st);
		assert_int_equal(st.msgs_none, 5);
		assert_int_equal(st.msgs_lz4 + st.msgs_zstd, 0);
		assert_true(st.in_bytes + 5 == st.out_bytes);
		pp_codec_free(tx);
		pp_codec_free(rx);
	}
}

/* The copy-free calls, for every mode, on text, random data and nothing. */
static void
test_inplace(void **state)
{
	static const struct { enum pp_tun_codec k; int stream, adaptive; } m[] = {
		{ PP_CODEC_NONE, 0, 0 }, { PP_CODEC_LZ4, 0, 0 },
		{ PP_CODEC_ZSTD, 0, 0 }, { PP_CODEC_ZSTD_HC, 0, 0 },
		{ PP_CODEC_ZSTD, 1, 0 }, { PP_CODEC_ZSTD, 0, 1 },
	};
	uint8_t text[20000], rnd[20000];

	(void)state;
	fill_letters(text, sizeof(text), 3);
	fill_random(rnd, sizeof(rnd), 9);
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		struct pp_codec *tx = codec(m[i].k, m[i].stream, m[i].adaptive);
		struct pp_codec *rx = codec(m[i].k, m[i].stream, m[i].adaptive);

		for (int r = 0; r < 3; r++) {
			roundtrip_inplace(tx, rx, 0, text, sizeof(text));
			roundtrip_inplace(tx, rx, PP_FR_EOT, rnd, sizeof(rnd));
			roundtrip_inplace(tx, rx, PP_FR_START, text, 0);
			roundtrip_inplace(tx, rx, 0, text, 100);
		}
		pp_codec_free(tx);
		pp_codec_free(rx);
	}
}

/* Caller flags survive, compressed or not; codec-owned bits are refused. */
static void
test_flags(void **state)
{
	static const unsigned ok[] = { 0, PP_FR_START, PP_FR_EOT, PP_FR_PAUSE,
	    PP_FR_RESUME, PP_FR_START | PP_FR_EOT | PP_FR_PAUSE | PP_FR_RESUME };
	static const unsigned bad[] = { PP_FR_COMPRESSED, PP_FR_CODEC_LZ4,
	    PP_FR_CODEC_ZSTD, 0x80, 0x100, PP_FR_START | PP_FR_COMPRESSED };
	struct pp_codec *tx = codec(PP_CODEC_ZSTD, 0, 0);
	struct pp_codec *rx = codec(PP_CODEC_ZSTD, 0, 0);
	uint8_t text[1000], wire[2000];
	unsigned f;

	fill_text(text, sizeof(text), 1);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		roundtrip(tx, rx, ok[i], text, sizeof(text), &f);
		assert_int_equal(f, ok[i] | PP_FR_COMPRESSED);
		roundtrip(tx, rx, ok[i], text, 10, &f);
		assert_int_equal(f, ok[i]);
		roundtrip(tx, rx, ok[i], NULL, 0, &f);
		assert_int_equal(f, ok[i]);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pp_codec_encode(tx, bad[i], text, 10, wire,
		    sizeof(wire)), PP_EINVAL);
	pp_codec_free(tx);
	pp_codec_free(rx);
}

static void
test_encode_limits(void **state)
{
	struct pp_codec *c = codec(PP_CODEC_LZ4, 0, 0);
	struct pp_codec_config bad[] = {
		{ (enum pp_tun_codec)4, 0, 0 },
		{ PP_CODEC_LZ4, 1, 0 },		/* stream needs zstd */
		{ PP_CODEC_NONE, 1, 0 },
		{ PP_CODEC_ZSTD, 1, 1 },	/* stream and adaptive */
	};
	uint8_t *buf = xmalloc(BIG), *wire = xmalloc(pp_codec_bound(BIG));
	struct pp_codec *x;

	memset(buf, 'a', BIG);
	assert_int_equal(pp_codec_encode(c, 0, buf, PP_FR_PLAIN_MAX + 1, wire,
	    pp_codec_bound(BIG)), PP_ETOOBIG);
	assert_int_equal(pp_codec_encode(c, 0, buf, 1000, wire,
	    pp_codec_bound(1000) - 1), -ENOSPC);
	assert_true(pp_codec_bound(0) >= 1);
	assert_true(pp_codec_bound(1000) > 1000);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		x = (struct pp_codec *)buf;
		assert_int_equal(pp_codec_new(&bad[i], &x), PP_EINVAL);
		assert_null(x);
	}
	pp_codec_free(NULL);
	pp_codec_free(c);
	free(buf);
	free(wire);
}

/* --- decoding hostile input ---------------------------------------------- */

static ssize_t
decode1(enum pp_tun_codec k, int stream, int adaptive, const uint8_t *in,
    size_t len, size_t cap)
{
	struct pp_codec *c = codec(k, stream, adaptive);
	uint8_t *out = xmalloc(cap ? cap : 1);
	unsigned f;
	ssize_t n = pp_codec_decode(c, in, len, &f, out, cap);

	free(out);
	pp_codec_free(c);
	return n;
}

/* flag byte + payload */
static uint8_t *
msg(unsigned flags, const void *p, size_t n)
{
	uint8_t *m = xmalloc(n + 1);

	m[0] = (uint8_t)flags;
	if (n)
		memcpy(m + 1, p, n);
	return m;
}

static void
test_decode_protocol_errors(void **state)
{
	static const uint8_t garbage[] = "this is not a compressed frame";
	static const struct {
		const char *name;
		enum pp_tun_codec codec;
		int adaptive;
		unsigned flags;
		const uint8_t *payload;
		size_t len;
	} cases[] = {
		{ "compressed without a codec", PP_CODEC_NONE, 0, PP_FR_COMPRESSED, v_py_lz4, sizeof(v_py_lz4) },
		{ "compressed, empty payload", PP_CODEC_LZ4, 0, PP_FR_COMPRESSED, NULL, 0 },
		{ "reserved bit", PP_CODEC_NONE, 0, 0x80, garbage, 4 },
		{ "codec bit without adaptive", PP_CODEC_LZ4, 0, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4, v_py_lz4, sizeof(v_py_lz4) },
		{ "codec bit, not compressed", PP_CODEC_LZ4, 1, PP_FR_CODEC_LZ4, garbage, 4 },
		{ "adaptive: no codec bit", PP_CODEC_ZSTD, 1, PP_FR_COMPRESSED, v_py_zstd3, sizeof(v_py_zstd3) },
		{ "adaptive: both codec bits", PP_CODEC_ZSTD, 1, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4 | PP_FR_CODEC_ZSTD, v_py_zstd3, sizeof(v_py_zstd3) },
		{ "adaptive: zstd over an lz4 negotiation", PP_CODEC_LZ4, 1, PP_FR_COMPRESSED | PP_FR_CODEC_ZSTD, v_py_zstd3, sizeof(v_py_zstd3) },
		{ "adaptive: lz4 over none", PP_CODEC_NONE, 1, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4, v_py_lz4, sizeof(v_py_lz4) },
		{ "lz4: garbage", PP_CODEC_LZ4, 0, PP_FR_COMPRESSED, garbage, sizeof(garbage) },
		{ "lz4: a zstd frame", PP_CODEC_LZ4, 0, PP_FR_COMPRESSED, v_py_zstd3, sizeof(v_py_zstd3) },
		{ "zstd: garbage", PP_CODEC_ZSTD, 0, PP_FR_COMPRESSED, garbage, sizeof(garbage) },
		{ "zstd: an lz4 frame", PP_CODEC_ZSTD_HC, 0, PP_FR_COMPRESSED, v_py_lz4, sizeof(v_py_lz4) },
		{ "stream: garbage", PP_CODEC_ZSTD, 0, PP_FR_COMPRESSED, garbage, sizeof(garbage) },
	};
	uint8_t *m;

	assert_int_equal(decode1(PP_CODEC_NONE, 0, 0, garbage, 0, 100), PP_EPROTO);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int stream = strncmp(cases[i].name, "stream", 6) == 0;

		print_message("%s\n", cases[i].name);
		m = msg(cases[i].flags, cases[i].payload, cases[i].len);
		assert_int_equal(decode1(cases[i].codec, stream, cases[i].adaptive,
		    m, cases[i].len + 1, 4096), PP_EPROTO);
		free(m);
	}
}

/* Every truncation, and one frame followed by anything, is PP_EPROTO. */
static void
test_truncated_and_trailing(void **state)
{
	static const struct {
		enum pp_tun_codec codec;
		const uint8_t *v;
		size_t len;
	} vs[] = {
		{ PP_CODEC_LZ4, v_py_lz4, sizeof(v_py_lz4) },
		{ PP_CODEC_LZ4, v_cli_lz4, sizeof(v_cli_lz4) },
		{ PP_CODEC_ZSTD, v_py_zstd3, sizeof(v_py_zstd3) },
		{ PP_CODEC_ZSTD, v_cli_zstd, sizeof(v_cli_zstd) },
		{ PP_CODEC_ZSTD, v_py_zstd15_cksum, sizeof(v_py_zstd15_cksum) },
	};

	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		uint8_t *twice = xmalloc(2 * vs[i].len + 1), *m;

		for (size_t n = 1; n < vs[i].len; n++) {
			m = msg(PP_FR_COMPRESSED, vs[i].v, n);
			assert_int_equal(decode1(vs[i].codec, 0, 0, m, n + 1, 4096),
			    PP_EPROTO);
			free(m);
		}
		twice[0] = PP_FR_COMPRESSED;
		memcpy(twice + 1, vs[i].v, vs[i].len);
		memcpy(twice + 1 + vs[i].len, vs[i].v, vs[i].len);
		assert_int_equal(decode1(vs[i].codec, 0, 0, twice,
		    1 + 2 * vs[i].len, 4096), PP_EPROTO);
		twice[1 + vs[i].len] = 0;
		assert_int_equal(decode1(vs[i].codec, 0, 0, twice,
		    2 + vs[i].len, 4096), PP_EPROTO);
		/* The intact frame decodes (so the failures above are real). */
		assert_int_equal(decode1(vs[i].codec, 0, 0, twice,
		    1 + vs[i].len, 4096), sizeof(vec_plain) - 1);
		free(twice);
	}
}

/* A checksummed frame with a flipped payload byte is caught. */
static void
test_checksum(void **state)
{
	static const struct {
		enum pp_tun_codec codec;
		const uint8_t *v;
		size_t len;
	} vs[] = {
		{ PP_CODEC_LZ4, v_cli_lz4, sizeof(v_cli_lz4) },	/* content checksum */
		{ PP_CODEC_ZSTD, v_py_zstd15_cksum, sizeof(v_py_zstd15_cksum) },
	};

	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		/* Byte 40 is a literal in both frames. */
		uint8_t *m = msg(PP_FR_COMPRESSED, vs[i].v, vs[i].len);

		m[1 + 40] ^= 0x20;
		assert_int_equal(decode1(vs[i].codec, 0, 0, m, vs[i].len + 1,
		    4096), PP_EPROTO);
		free(m);
	}
}

static void
test_interop_vectors(void **state)
{
	static const struct {
		const char *name;
		enum pp_tun_codec codec;
		const uint8_t *v;
		size_t len;
	} vs[] = {
		{ "python lz4.frame", PP_CODEC_LZ4, v_py_lz4, sizeof(v_py_lz4) },
		{ "lz4 CLI", PP_CODEC_LZ4, v_cli_lz4, sizeof(v_cli_lz4) },
		{ "python zstandard level 3", PP_CODEC_ZSTD, v_py_zstd3, sizeof(v_py_zstd3) },
		{ "python zstandard level 15", PP_CODEC_ZSTD_HC, v_py_zstd15_cksum, sizeof(v_py_zstd15_cksum) },
		{ "zstd CLI (no content size)", PP_CODEC_ZSTD, v_cli_zstd, sizeof(v_cli_zstd) },
	};

	for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
		struct pp_codec *c = codec(vs[i].codec, 0, 0);
		uint8_t *m = msg(PP_FR_COMPRESSED | PP_FR_EOT, vs[i].v, vs[i].len);
		uint8_t out[1024];
		unsigned f;

		print_message("%s\n", vs[i].name);
		/* The same context, twice: reuse must not leak state. */
		for (int k = 0; k < 2; k++) {
			assert_int_equal(pp_codec_decode(c, m, vs[i].len + 1, &f, out,
			    sizeof(out)), sizeof(vec_plain) - 1);
			assert_int_equal(f, PP_FR_COMPRESSED | PP_FR_EOT);
			assert_memory_equal(out, vec_plain, sizeof(vec_plain) - 1);
		}
		/* Exactly the plain size fits; one byte less does not. */
		assert_int_equal(decode1(vs[i].codec, 0, 0, m, vs[i].len + 1,
		    sizeof(vec_plain) - 1), sizeof(vec_plain) - 1);
		assert_int_equal(decode1(vs[i].codec, 0, 0, m, vs[i].len + 1,
		    sizeof(vec_plain) - 2), PP_ETOOBIG);
		/* Adaptive peers mark the codec; the payload is the same. */
		m[0] = PP_FR_COMPRESSED | (vs[i].codec == PP_CODEC_LZ4 ?
		    PP_FR_CODEC_LZ4 : PP_FR_CODEC_ZSTD);
		assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 1, m, vs[i].len + 1,
		    1024), sizeof(vec_plain) - 1);
		free(m);
		pp_codec_free(c);
	}
}

/* Frames made here with the libraries, to reach cases the tools do not. */
static size_t
make_lz4(uint8_t *dst, size_t cap, const uint8_t *src, size_t n,
    unsigned long long content_size, LZ4F_blockSizeID_t bs,
    LZ4F_blockMode_t mode)
{
	LZ4F_preferences_t p;
	size_t r;

	memset(&p, 0, sizeof(p));
	p.frameInfo.contentSize = content_size;
	p.frameInfo.blockSizeID = bs;
	p.frameInfo.blockMode = mode;
	r = LZ4F_compressFrame(dst, cap, src, n, &p);
	assert_false(LZ4F_isError(r));
	return r;
}

static size_t
make_zstd(uint8_t *dst, size_t cap, const uint8_t *src, size_t n,
    int content_size)
{
	ZSTD_CCtx *z = ZSTD_createCCtx();
	size_t r;

	ZSTD_CCtx_setParameter(z, ZSTD_c_contentSizeFlag, content_size);
	r = ZSTD_compress2(z, dst, cap, src, n);
	assert_false(ZSTD_isError(r));
	ZSTD_freeCCtx(z);
	return r;
}

/* Linked blocks across several 64 KiB blocks decode straight into out. */
static void
test_lz4_linked_blocks(void **state)
{
	size_t n = 300000, cap = LZ4F_compressFrameBound(n, NULL) + 64;
	uint8_t *src = xmalloc(n), *wire = xmalloc(cap + 1), *out = xmalloc(n);
	struct pp_codec *c = codec(PP_CODEC_LZ4, 0, 0);
	unsigned f;
	size_t w;

	fill_text(src, n, 3);
	w = make_lz4(wire + 1, cap, src, n, 0, LZ4F_max64KB, LZ4F_blockLinked);
	wire[0] = PP_FR_COMPRESSED;
	assert_int_equal(pp_codec_decode(c, wire, w + 1, &f, out, n), n);
	assert_memory_equal(out, src, n);
	/* 4 MiB blocks: decoded too, and the context is not kept. */
	w = make_lz4(wire + 1, cap, src, n, n, LZ4F_max4MB, LZ4F_blockIndependent);
	assert_int_equal(pp_codec_decode(c, wire, w + 1, &f, out, n), n);
	assert_memory_equal(out, src, n);
	assert_int_equal(pp_codec_decode(c, wire, w + 1, &f, out, n - 1),
	    PP_ETOOBIG);
	pp_codec_free(c);
	free(src);
	free(wire);
	free(out);
}

/* Bombs: a small message that expands past the cap is PP_ETOOBIG, whether
 * or not its header admits the size. */
static void
test_bombs(void **state)
{
	size_t n = 2 * PP_FR_PLAIN_MAX, cap = ZSTD_compressBound(n) + 64;
	uint8_t *zeros = calloc(1, n), *wire = xmalloc(cap + 1);
	size_t w;
	/* zstd frame headers claiming 2^60 bytes, and a 1 GiB window */
	static const uint8_t huge_fcs[] = { PP_FR_COMPRESSED, 0x28, 0xb5, 0x2f,
	    0xfd, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0x29, 0, 0, 'h', 'e', 'l', 'l',
	    'o' };
	static const uint8_t huge_window[] = { PP_FR_COMPRESSED, 0x28, 0xb5, 0x2f,
	    0xfd, 0x00, 0xa0, 0x29, 0x00, 0x00, 'h', 'e', 'l', 'l', 'o' };

	assert_non_null(zeros);
	wire[0] = PP_FR_COMPRESSED;
	w = make_zstd(wire + 1, cap, zeros, n, 1);
	assert_true(w < 1024);
	assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 0, wire, w + 1, BIG), PP_ETOOBIG);
	w = make_zstd(wire + 1, cap, zeros, n, 0);
	assert_int_equal(ZSTD_getFrameContentSize(wire + 1, w),
	    ZSTD_CONTENTSIZE_UNKNOWN);
	assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 0, wire, w + 1, BIG), PP_ETOOBIG);
	/* Under the hard cap but over the caller's buffer: the same. */
	w = make_zstd(wire + 1, cap, zeros, 5000, 0);
	assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 0, wire, w + 1, 4999), PP_ETOOBIG);
	assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 0, wire, w + 1, 5000), 5000);

	w = make_lz4(wire + 1, cap, zeros, n, n, LZ4F_max64KB, LZ4F_blockLinked);
	assert_int_equal(decode1(PP_CODEC_LZ4, 0, 0, wire, w + 1, BIG), PP_ETOOBIG);
	w = make_lz4(wire + 1, cap, zeros, n, 0, LZ4F_max4MB, LZ4F_blockIndependent);
	assert_int_equal(decode1(PP_CODEC_LZ4, 0, 0, wire, w + 1, BIG), PP_ETOOBIG);
	w = make_lz4(wire + 1, cap, zeros, 5000, 0, LZ4F_max64KB, LZ4F_blockLinked);
	assert_int_equal(decode1(PP_CODEC_LZ4, 0, 0, wire, w + 1, 4999), PP_ETOOBIG);
	assert_int_equal(decode1(PP_CODEC_LZ4, 0, 0, wire, w + 1, 5000), 5000);

	assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 0, huge_fcs, sizeof(huge_fcs),
	    BIG), PP_ETOOBIG);
	/* One pass needs no window: the claim costs nothing per message... */
	assert_int_equal(decode1(PP_CODEC_ZSTD, 0, 0, huge_window,
	    sizeof(huge_window), 100), 5);
	/* ...but the stream would have to keep it: refused. */
	assert_int_equal(decode1(PP_CODEC_ZSTD, 1, 0, huge_window,
	    sizeof(huge_window), 100), PP_EPROTO);

	/* Uncompressed payloads obey the caps too. */
	memset(wire, 0, 101);
	assert_int_equal(decode1(PP_CODEC_NONE, 0, 0, wire, 101, 99), PP_ETOOBIG);
	assert_int_equal(decode1(PP_CODEC_NONE, 0, 0, wire, 101, 100), 100);
	free(zeros);
	free(wire);
}

/* --- v2: the zstd stream -------------------------------------------------- */

static void
test_stream(void **state)
{
	for (int k = PP_CODEC_ZSTD; k <= PP_CODEC_ZSTD_HC; k++) {
		struct pp_codec *tx = codec((enum pp_tun_codec)k, 1, 0);
		struct pp_codec *rx = codec((enum pp_tun_codec)k, 1, 0);
		struct pp_codec *fresh = codec((enum pp_tun_codec)k, 1, 0);
		uint8_t text[8192], small[10], rnd[3000];
		size_t first, again;
		unsigned f;

		fill_letters(text, sizeof(text), 11);
		fill_random(rnd, sizeof(rnd), 5);
		memset(small, 'x', sizeof(small));
		first = roundtrip(tx, rx, 0, text, sizeof(text), &f);
		assert_int_equal(f, PP_FR_COMPRESSED);
		/* Small messages go raw, outside the stream, in between. */
		assert_int_equal(roundtrip(tx, rx, PP_FR_PAUSE, small, sizeof(small),
		    &f), 1 + sizeof(small));
		assert_int_equal(f, PP_FR_PAUSE);
		/* The same text again refers back across messages: tiny. */
		again = roundtrip(tx, rx, 0, text, sizeof(text), &f);
		assert_int_equal(f, PP_FR_COMPRESSED);
		assert_true(again < 64);
		assert_true(again * 10 < first);
		/* Random data costs a few bytes of framing at most. */
		assert_true(roundtrip(tx, rx, 0, rnd, sizeof(rnd), &f) <=
		    1 + sizeof(rnd) + 32);
		for (unsigned i = 0; i < 20; i++) {
			fill_text(text, 1000 + i * 300, 100 + i);
			roundtrip(tx, rx, 0, text, 1000 + i * 300, &f);
		}
		/* A message of the stream means nothing to a fresh decoder:
		 * the stream is one per channel and direction. */
		{
			uint8_t wire[9000], out[9000];
			ssize_t n = pp_codec_encode(tx, 0, text, 4000, wire,
			    sizeof(wire));
			ssize_t m;

			assert_true(n > 1);
			m = pp_codec_decode(fresh, wire, (size_t)n, &f, out,
			    sizeof(out));
			assert_int_equal(m, PP_EPROTO);
			/* ...and once broken, it stays broken: even a raw
			 * message, fine on a healthy stream, is refused. */
			assert_int_equal(pp_codec_decode(rx, (const uint8_t *)"\0a",
			    2, &f, out, sizeof(out)), 1);
			assert_int_equal(pp_codec_decode(fresh, (const uint8_t *)"\0a",
			    2, &f, out, sizeof(out)), PP_EPROTO);
			m = pp_codec_decode(rx, wire, (size_t)n, &f, out,
			    sizeof(out));
			assert_int_equal(m, 4000);
			assert_memory_equal(out, text, 4000);
		}
		pp_codec_free(tx);
		pp_codec_free(rx);
		pp_codec_free(fresh);
	}
}

/* A stream message expanding past the caller's cap: PP_ETOOBIG, then dead. */
static void
test_stream_bomb(void **state)
{
	struct pp_codec *tx = codec(PP_CODEC_ZSTD, 1, 0);
	struct pp_codec *rx = codec(PP_CODEC_ZSTD, 1, 0);
	size_t n = 100000;
	uint8_t *zeros = calloc(1, n), *wire = xmalloc(pp_codec_bound(n));
	uint8_t *out = xmalloc(n);
	ssize_t w;
	unsigned f;

	assert_non_null(zeros);
	w = pp_codec_encode(tx, 0, zeros, n, wire, pp_codec_bound(n));
	assert_true(w > 1 && w < 200);
	assert_int_equal(pp_codec_decode(rx, wire, (size_t)w, &f, out, n - 1),
	    PP_ETOOBIG);
	assert_int_equal(pp_codec_decode(rx, wire, 1, &f, out, n), PP_EPROTO);
	pp_codec_free(rx);
	/* Exactly the cap is fine. */
	rx = codec(PP_CODEC_ZSTD, 1, 0);
	assert_int_equal(pp_codec_decode(rx, wire, (size_t)w, &f, out, n), n);
	pp_codec_free(tx);
	pp_codec_free(rx);
	free(zeros);
	free(wire);
	free(out);
}

/* --- v2: adaptive --------------------------------------------------------- */

static void
test_adaptive_choices(void **state)
{
	static const struct {
		const char *name;
		enum pp_tun_codec codec;
		double rate;
		unsigned want;		/* flags on a text message */
	} cases[] = {
		{ "unknown rate: lz4", PP_CODEC_ZSTD_HC, 0, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4 },
		{ "50 MB/s: lz4", PP_CODEC_ZSTD, 50e6, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4 },
		{ "19 MB/s: zstd", PP_CODEC_ZSTD, 19e6, PP_FR_COMPRESSED | PP_FR_CODEC_ZSTD },
		{ "1 MB/s: zstd", PP_CODEC_ZSTD_HC, 1e6, PP_FR_COMPRESSED | PP_FR_CODEC_ZSTD },
		{ "1 MB/s but only lz4 negotiated", PP_CODEC_LZ4, 1e6, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4 },
		{ "1 GB/s: none", PP_CODEC_ZSTD, 1e9, 0 },
		{ "negative rate means unknown", PP_CODEC_ZSTD, -5, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4 },
		{ "nothing negotiated", PP_CODEC_NONE, 1e6, 0 },
	};
	uint8_t text[16384];

	fill_text(text, sizeof(text), 21);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_codec *tx = codec(cases[i].codec, 0, 1);
		struct pp_codec *rx = codec(cases[i].codec, 0, 1);
		struct pp_codec_stats st;
		unsigned f;
		size_t n;

		print_message("%s\n", cases[i].name);
		pp_codec_set_link_rate(tx, cases[i].rate);
		n = roundtrip(tx, rx, PP_FR_START, text, sizeof(text), &f);
		assert_int_equal(f, PP_FR_START | cases[i].want);
		if (cases[i].want)
			assert_true(n < sizeof(text) / 2);
		/* Small messages always go raw. */
		roundtrip(tx, rx, 0, text, 127, &f);
		assert_int_equal(f, 0);
		pp_codec_get_stats(tx, &st);
		assert_int_equal(st.msgs_none, cases[i].want ? 1 : 2);
		assert_int_equal(st.msgs_lz4, !!(cases[i].want & PP_FR_CODEC_LZ4));
		assert_int_equal(st.msgs_zstd, !!(cases[i].want & PP_FR_CODEC_ZSTD));
		assert_true(st.in_bytes == sizeof(text) + 127);
		assert_true(st.out_bytes == n + 128);
		pp_codec_free(tx);
		pp_codec_free(rx);
	}
}

/*
 * Random data goes raw and then costs nothing: the next 64 KiB are not even
 * tried (text among them goes raw too), then one lz4 probe finds the text
 * compressible again.
 */
static void
test_adaptive_backoff(void **state)
{
	struct pp_codec *tx = codec(PP_CODEC_ZSTD, 0, 1);
	struct pp_codec *rx = codec(PP_CODEC_ZSTD, 0, 1);
	uint8_t rnd[16384], text[16384], small_rnd[500];
	struct pp_codec_stats st;
	unsigned f;

	fill_random(rnd, sizeof(rnd), 99);
	fill_random(small_rnd, sizeof(small_rnd), 98);
	fill_text(text, sizeof(text), 5);
	pp_codec_set_link_rate(tx, 2e6);	/* slow: zstd when it compresses */
	/* Caught by the byte sample, without compressing. */
	assert_int_equal(roundtrip(tx, rx, 0, rnd, sizeof(rnd), &f),
	    1 + sizeof(rnd));
	assert_int_equal(f, 0);
	/* 4 x 16 KiB skipped, whatever they hold. */
	for (int i = 0; i < 4; i++) {
		roundtrip(tx, rx, 0, text, sizeof(text), &f);
		assert_int_equal(f, 0);
	}
	/* The probe: lz4, and a success. */
	roundtrip(tx, rx, 0, text, sizeof(text), &f);
	assert_int_equal(f, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4);
	/* Back to the normal choice for this link. */
	roundtrip(tx, rx, 0, text, sizeof(text), &f);
	assert_int_equal(f, PP_FR_COMPRESSED | PP_FR_CODEC_ZSTD);

	/* Too small for the sample: a trial finds it, then two failures in a
	 * row double the skip (64 KiB, then 128 KiB). */
	roundtrip(tx, rx, 0, small_rnd, sizeof(small_rnd), &f);
	assert_int_equal(f, 0);
	for (int i = 0; i < 4; i++)
		roundtrip(tx, rx, 0, text, sizeof(text), &f);
	roundtrip(tx, rx, 0, small_rnd, sizeof(small_rnd), &f);	/* probe fails */
	for (int i = 0; i < 8; i++) {
		roundtrip(tx, rx, 0, text, sizeof(text), &f);
		assert_int_equal(f, 0);
	}
	roundtrip(tx, rx, 0, text, sizeof(text), &f);
	assert_int_equal(f, PP_FR_COMPRESSED | PP_FR_CODEC_LZ4);
	pp_codec_get_stats(tx, &st);
	assert_int_equal(st.msgs_lz4, 2);
	assert_int_equal(st.msgs_zstd, 1);
	assert_int_equal(st.msgs_none, 1 + 4 + 1 + 4 + 1 + 8);
	pp_codec_free(tx);
	pp_codec_free(rx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_thresholds),
		cmocka_unit_test(test_incompressible),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_inplace),
		cmocka_unit_test(test_encode_limits),
		cmocka_unit_test(test_decode_protocol_errors),
		cmocka_unit_test(test_truncated_and_trailing),
		cmocka_unit_test(test_checksum),
		cmocka_unit_test(test_interop_vectors),
		cmocka_unit_test(test_lz4_linked_blocks),
		cmocka_unit_test(test_bombs),
		cmocka_unit_test(test_stream),
		cmocka_unit_test(test_stream_bomb),
		cmocka_unit_test(test_adaptive_choices),
		cmocka_unit_test(test_adaptive_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
