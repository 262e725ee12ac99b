/* lib/tunnel/udpbatch.c: length-prefixed UDP datagram batches. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "tunnel/udpbatch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct pp_udpb *
batch(void)
{
	struct pp_udpb *b = malloc(sizeof(*b));

	assert_non_null(b);
	pp_udpb_reset(b);
	return b;
}

/* The wire format: 4-byte big-endian length, then the datagram. */
static void
test_format(void **state)
{
	struct pp_udpb *b = batch();
	static const uint8_t want[] = { 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0,
	    0, 0, 1, 2, 'x', 'y' };
	uint8_t two[258];

	memset(two, 'x', sizeof(two));
	two[256] = 'x', two[257] = 'y';
	assert_int_equal(pp_udpb_add(b, "abc", 3), 0);
	assert_int_equal(pp_udpb_add(b, NULL, 0), 0);	/* empty datagram */
	assert_int_equal(pp_udpb_add(b, two, sizeof(two)), 0);
	assert_int_equal(b->count, 3);
	assert_int_equal(b->len, 4 + 3 + 4 + 4 + 258);
	assert_memory_equal(b->buf, want, 15);
	assert_memory_equal(b->buf + 15 + 256, want + 15, 2);
	pp_udpb_reset(b);
	assert_int_equal(b->len, 0);
	assert_int_equal(b->count, 0);
	free(b);
}

/* Filling up to exactly PP_UDPB_TARGET is fine; one byte more flushes first. */
static void
test_target(void **state)
{
	struct pp_udpb *b = batch();
	static uint8_t d[PP_UDPB_DGRAM_MAX + 1];
	size_t half = PP_UDPB_TARGET / 2 - 4;

	assert_int_equal(pp_udpb_add(b, d, half), 0);
	assert_int_equal(pp_udpb_add(b, d, half + 1), -ENOSPC);
	assert_int_equal(b->count, 1);		/* refused: unchanged */
	assert_int_equal(b->len, half + 4);
	assert_int_equal(pp_udpb_add(b, d, half), 0);
	assert_int_equal(b->len, PP_UDPB_TARGET);
	assert_int_equal(pp_udpb_add(b, d, 0), -ENOSPC);

	/* Alone, even the largest datagram fits; then nothing else does. */
	pp_udpb_reset(b);
	assert_int_equal(pp_udpb_add(b, d, PP_UDPB_DGRAM_MAX), 0);
	assert_int_equal(b->len, PP_UDPB_CAP);
	assert_int_equal(pp_udpb_add(b, d, 1), -ENOSPC);
	pp_udpb_reset(b);
	assert_int_equal(pp_udpb_add(b, d, PP_UDPB_DGRAM_MAX + 1), PP_ETOOBIG);
	assert_int_equal(b->len, 0);
	free(b);
}

static void
test_walk(void **state)
{
	struct pp_udpb *b = batch();
	const uint8_t *dg;
	size_t off = 0, dl;
	char name[8];

	for (int i = 0; i < 100; i++) {
		int n = snprintf(name, sizeof(name), "d%d", i);

		assert_int_equal(pp_udpb_add(b, name, (size_t)n), 0);
	}
	for (int i = 0; i < 100; i++) {
		int n = snprintf(name, sizeof(name), "d%d", i);

		assert_int_equal(pp_udpb_next(b->buf, b->len, &off, &dg, &dl), 1);
		assert_int_equal(dl, n);
		assert_memory_equal(dg, name, dl);
	}
	assert_int_equal(pp_udpb_next(b->buf, b->len, &off, &dg, &dl), 0);
	assert_int_equal(pp_udpb_next(b->buf, b->len, &off, &dg, &dl), 0);
	off = 0;
	assert_int_equal(pp_udpb_next(b->buf, 0, &off, &dg, &dl), 0);
	free(b);
}

static const struct {
	const char *name;
	uint8_t buf[16];
	size_t len;
	int good;	/* datagrams before the error */
} bad[] = {
	{ "length header cut", { 0, 0, 0 }, 3, 0 },
	{ "length past the end", { 0, 0, 0, 5, 'a', 'b' }, 6, 0 },
	{ "second length past the end", { 0, 0, 0, 1, 'a', 0, 0, 0, 2, 'b' }, 10, 1 },
	{ "trailing bytes", { 0, 0, 0, 1, 'a', 0 }, 6, 1 },
	{ "length near 4 GiB", { 0xff, 0xff, 0xff, 0xfc, 'a' }, 5, 0 },
	{ "length over a UDP datagram", { 0, 1, 0, 0 }, 4, 0 },
};

static void
test_walk_hostile(void **state)
{
	static uint8_t big[4 + 65508];
	const uint8_t *dg;
	size_t off, dl;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("%s\n", bad[i].name);
		off = 0;
		for (int k = 0; k < bad[i].good; k++)
			assert_int_equal(pp_udpb_next(bad[i].buf, bad[i].len, &off,
			    &dg, &dl), 1);
		assert_int_equal(pp_udpb_next(bad[i].buf, bad[i].len, &off, &dg,
		    &dl), PP_EPROTO);
		/* The rest of the batch is dropped. */
		assert_int_equal(off, bad[i].len);
		assert_int_equal(pp_udpb_next(bad[i].buf, bad[i].len, &off, &dg,
		    &dl), 0);
	}
	/* A length that fits the message but no UDP datagram: refused. */
	big[1] = 0x00, big[2] = 0xff, big[3] = 0xe4;	/* 65508 */
	off = 0;
	assert_int_equal(pp_udpb_next(big, sizeof(big), &off, &dg, &dl), PP_EPROTO);
	big[3] = 0xe3;					/* 65507 */
	off = 0;
	assert_int_equal(pp_udpb_next(big, sizeof(big) - 1, &off, &dg, &dl), 1);
	assert_int_equal(dl, PP_UDPB_DGRAM_MAX);
	/* An offset past the end is the caller's bug, not a crash. */
	off = 9;
	assert_int_equal(pp_udpb_next(big, 4, &off, &dg, &dl), PP_EPROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_target),
		cmocka_unit_test(test_walk),
		cmocka_unit_test(test_walk_hostile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
