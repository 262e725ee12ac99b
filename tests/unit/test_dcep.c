/* DCEP codec (RFC 8832 section 5): golden bytes, round trips, bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/error.h"
#include "sctp/dcep.h"

/* DATA_CHANNEL_OPEN, partial reliable rexmit unordered, priority 256,
 * 3 retransmits, label "chat", protocol "json" (RFC 8832 figure 1). */
static const uint8_t golden_open[] = {
	0x03, 0x81, 0x01, 0x00, 0x00, 0x00, 0x00, 0x03,
	0x00, 0x04, 0x00, 0x04, 'c', 'h', 'a', 't', 'j', 's', 'o', 'n',
};

static void
test_golden_open(void **state)
{
	struct pp_dcep_msg msg;
	uint8_t buf[64];
	int n;

	(void)state;
	assert_int_equal(pp_dcep_parse(golden_open, sizeof(golden_open), &msg), 0);
	assert_int_equal(msg.type, PP_DCEP_OPEN);
	assert_int_equal(msg.channel_type, PP_DCEP_REXMIT_UNORDERED);
	assert_int_equal(msg.priority, 256);
	assert_int_equal(msg.reliability, 3);
	assert_int_equal(msg.label_len, 4);
	assert_memory_equal(msg.label, "chat", 4);
	assert_int_equal(msg.protocol_len, 4);
	assert_memory_equal(msg.protocol, "json", 4);

	n = pp_dcep_build_open(&msg, buf, sizeof(buf));
	assert_int_equal(n, sizeof(golden_open));
	assert_memory_equal(buf, golden_open, sizeof(golden_open));
}

static void
test_roundtrip_each_type(void **state)
{
	static const struct {
		uint8_t type;
		uint32_t reliability;	/* as sent */
		uint32_t parsed;	/* as the receiver sees it */
	} cases[] = {
		{ PP_DCEP_RELIABLE, 0, 0 },
		{ PP_DCEP_RELIABLE_UNORDERED, 0, 0 },
		{ PP_DCEP_RELIABLE, 77, 0 },		/* ignored when reliable */
		{ PP_DCEP_REXMIT, 0, 0 },
		{ PP_DCEP_REXMIT_UNORDERED, 5, 5 },
		{ PP_DCEP_TIMED, 1500, 1500 },
		{ PP_DCEP_TIMED_UNORDERED, 0xffffffffu, 0xffffffffu },
	};
	static const char *labels[] = { "", "a", "label with spaces \xc3\xa9" };
	static const char *protocols[] = { "", "proto", "x" };

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (size_t j = 0; j < 3; j++) {
			struct pp_dcep_msg in, out;
			uint8_t buf[128];
			int n;

			memset(&in, 0, sizeof(in));
			in.channel_type = cases[i].type;
			in.priority = (uint16_t)(128 * (j + 1));
			in.reliability = cases[i].reliability;
			in.label = (const uint8_t *)labels[j];
			in.label_len = strlen(labels[j]);
			in.protocol = (const uint8_t *)protocols[j];
			in.protocol_len = strlen(protocols[j]);
			n = pp_dcep_build_open(&in, buf, sizeof(buf));
			assert_int_equal(n, (int)pp_dcep_open_size(&in));
			assert_int_equal(pp_dcep_parse(buf, (size_t)n, &out), 0);
			assert_int_equal(out.type, PP_DCEP_OPEN);
			assert_int_equal(out.channel_type, cases[i].type);
			assert_int_equal(out.priority, in.priority);
			assert_int_equal(out.reliability, cases[i].parsed);
			assert_int_equal(out.label_len, in.label_len);
			assert_int_equal(out.protocol_len, in.protocol_len);
			if (in.label_len)
				assert_memory_equal(out.label, in.label,
				    in.label_len);
			if (in.protocol_len)
				assert_memory_equal(out.protocol, in.protocol,
				    in.protocol_len);
		}
	}
}

static void
test_ack(void **state)
{
	static const uint8_t ack[] = { 0x02 };
	struct pp_dcep_msg msg;
	uint8_t buf[1];

	(void)state;
	assert_int_equal(pp_dcep_parse(ack, sizeof(ack), &msg), 0);
	assert_int_equal(msg.type, PP_DCEP_ACK);
	assert_int_equal(pp_dcep_build_ack(buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], PP_DCEP_ACK);
	assert_int_equal(pp_dcep_build_ack(buf, 0), PP_ETOOBIG);
}

static void
test_bad_input(void **state)
{
	static const struct {
		const char *name;
		uint8_t bytes[24];
		size_t len;
		int want;
	} cases[] = {
		{ "empty", { 0 }, 0, PP_EPROTO },
		{ "unknown message type", { 0x04 }, 1, PP_EPROTO },
		{ "ack with trailing byte", { 0x02, 0x00 }, 2, PP_EPROTO },
		{ "open type only", { 0x03 }, 1, PP_EPROTO },
		{ "open truncated in reliability",
		    { 0x03, 0x00, 0x01, 0x00, 0x00, 0x00 }, 6, PP_EPROTO },
		{ "open header only, no lengths",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00 }, 9, PP_EPROTO },
		{ "label length past end",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x05, 0x00, 0x00,
		    'a', 'b' }, 14, PP_EPROTO },
		{ "label length 0xffff",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0xff, 0xff, 0x00, 0x00,
		    'a' }, 13, PP_EPROTO },
		{ "protocol length past end",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x03,
		    'a', 'b', 'c' }, 15, PP_EPROTO },
		{ "trailing byte after protocol",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x01, 0x00, 0x01,
		    'a', 'b', 'c' }, 15, PP_EPROTO },
		{ "unknown channel type",
		    { 0x03, 0x03, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00 },
		    12, PP_EINVAL },
		{ "channel type 0x7f",
		    { 0x03, 0x7f, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x00 },
		    12, PP_EINVAL },
		{ "NUL in label",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x02, 0x00, 0x00,
		    'a', 0x00 }, 14, PP_EINVAL },
		{ "NUL in protocol",
		    { 0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0x01,
		    0x00 }, 13, PP_EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_dcep_msg msg;
		int rc = pp_dcep_parse(cases[i].bytes, cases[i].len, &msg);

		if (rc != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].name, rc,
			    cases[i].want);
	}
}

static void
test_build_limits(void **state)
{
	struct pp_dcep_msg msg;
	uint8_t buf[16];

	(void)state;
	memset(&msg, 0, sizeof(msg));
	msg.channel_type = PP_DCEP_RELIABLE;
	msg.label = (const uint8_t *)"label";
	msg.label_len = 5;
	assert_int_equal(pp_dcep_build_open(&msg, buf, 16), PP_ETOOBIG);
	msg.label_len = 4;
	assert_int_equal(pp_dcep_build_open(&msg, buf, 16), 16);
	msg.channel_type = 0x05;
	assert_int_equal(pp_dcep_build_open(&msg, buf, 16), PP_EINVAL);
	msg.channel_type = PP_DCEP_RELIABLE;
	msg.label_len = 70000;
	assert_int_equal(pp_dcep_build_open(&msg, buf, 16), PP_EINVAL);
	assert_int_equal(pp_dcep_channel_type_valid(0x80), 1);
	assert_int_equal(pp_dcep_channel_type_valid(0x83), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_open),
		cmocka_unit_test(test_roundtrip_each_type),
		cmocka_unit_test(test_ack),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_build_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
