/* lib/base: errors, UUIDs, JSON field tables, rate limiting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/clock.h"
#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/random.h"

#include <errno.h>
#include <string.h>

static void
test_strerror(void **state)
{
	(void)state;
	assert_string_equal(pp_strerror(0), "success");
	assert_string_equal(pp_strerror(PP_ETOOBIG), "too large");
	assert_string_equal(pp_strerror(PP_ECONFIG), "configuration error");
	assert_string_equal(pp_strerror(-ENOENT), strerror(ENOENT));
	assert_string_equal(pp_strerror(12345), "unknown error");
}

static void
test_uuid4(void **state)
{
	char a[PP_UUID_STRLEN + 1], b[PP_UUID_STRLEN + 1];

	(void)state;
	for (int i = 0; i < 1000; i++) {
		assert_int_equal(pp_uuid4(a), 0);
		assert_int_equal(strlen(a), 36);
		assert_true(pp_uuid4_valid(a, strlen(a)));
		assert_int_equal(pp_uuid4(b), 0);
		assert_string_not_equal(a, b);
	}
}

static void
test_uuid4_valid(void **state)
{
	static const struct { const char *s; int ok; } cases[] = {
		{ "123e4567-e89b-42d3-a456-426614174000", 1 },
		{ "123e4567-e89b-42d3-8456-426614174000", 1 },
		{ "123e4567-e89b-42d3-b456-426614174000", 1 },
		{ "123E4567-E89B-42D3-A456-426614174000", 0 },	/* uppercase */
		{ "123e4567-e89b-12d3-a456-426614174000", 0 },	/* version 1 */
		{ "123e4567-e89b-42d3-c456-426614174000", 0 },	/* variant */
		{ "123e4567e89b-42d3-a456-426614174000-", 0 },
		{ "123e4567-e89b-42d3-a456-42661417400", 0 },
		{ "123e4567-e89b-42d3-a456-4266141740000", 0 },
		{ "{23e4567-e89b-42d3-a456-426614174000", 0 },
		{ "", 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(pp_uuid4_valid(cases[i].s, strlen(cases[i].s)),
		    cases[i].ok);
}

static int
only_x(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != 'x')
			return 0;
	return 1;
}

static void
test_json_check(void **state)
{
	static const struct pp_jfield table[] = {
		{ "name", PP_JSTR, PP_JF_REQUIRED, 2, 4, only_x },
		{ "port", PP_JINT, 0, 1, 65535, NULL },
		{ "on", PP_JBOOL, 0, 0, 0, NULL },
		{ "list", PP_JARR, 0, 0, 2, NULL },
	};
	static const struct { const char *json; int rc; const char *err; } cases[] = {
		{ "{\"name\":\"xx\"}", 0, "" },
		{ "{\"name\":\"xxxx\",\"port\":1,\"on\":true,\"list\":[],\"extra\":1}", 0, "" },
		{ "{}", PP_EINVAL, "field 'name': missing" },
		{ "{\"name\":null}", PP_EINVAL, "field 'name': missing" },
		{ "{\"name\":1}", PP_EINVAL, "field 'name': must be a string" },
		{ "{\"name\":\"x\"}", PP_EINVAL, "field 'name': length 1 outside 2-4" },
		{ "{\"name\":\"xxxxx\"}", PP_EINVAL, "field 'name': length 5 outside 2-4" },
		{ "{\"name\":\"xy\"}", PP_EINVAL, "field 'name': invalid characters or format" },
		{ "{\"name\":\"xx\",\"port\":0}", PP_EINVAL, "field 'port': 0 outside 1-65535" },
		{ "{\"name\":\"xx\",\"port\":\"1\"}", PP_EINVAL, "field 'port': must be an integer" },
		{ "{\"name\":\"xx\",\"on\":1}", PP_EINVAL, "field 'on': must be a boolean" },
		{ "{\"name\":\"xx\",\"list\":[1,2,3]}", PP_EINVAL, "field 'list': 3 entries outside 0-2" },
		{ "[1]", PP_EINVAL, "must be a JSON object" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[128] = "";
		json_t *v;

		assert_int_equal(pp_json_parse(cases[i].json, strlen(cases[i].json),
		    1024, &v, err, sizeof(err)), 0);
		assert_int_equal(pp_json_check(v, table, 4, err, sizeof(err)),
		    cases[i].rc);
		if (cases[i].rc)
			assert_string_equal(err, cases[i].err);
		json_decref(v);
	}
}

static void
test_json_parse(void **state)
{
	char err[128];
	json_t *v;

	(void)state;
	assert_int_equal(pp_json_parse("{\"a\":1}", 7, 6, &v, err, sizeof(err)),
	    PP_ETOOBIG);
	assert_null(v);
	assert_int_equal(pp_json_parse("{\"a\":1,\"a\":2}", 13, 100, &v, err,
	    sizeof(err)), PP_EINVAL);
	assert_int_equal(pp_json_parse("{\"a\":\"\\u0000\"}", 14, 100, &v, err,
	    sizeof(err)), PP_EINVAL);
	assert_int_equal(pp_json_parse("hello", 5, 100, &v, err, sizeof(err)),
	    PP_EINVAL);
	assert_non_null(strstr(err, "not JSON"));
	assert_int_equal(pp_json_parse("\"s\"", 3, 100, &v, err, sizeof(err)), 0);
	assert_true(json_is_string(v));
	json_decref(v);
}

static void
test_ratelimit(void **state)
{
	struct pp_ratelimit rl = PP_RATELIMIT_INIT(1000, 3);
	uint64_t now = 5000;
	unsigned skipped;

	(void)state;
	pp_clock_set_fake(&now);
	for (int i = 0; i < 3; i++)
		assert_true(pp_ratelimit_ok(&rl, &skipped));
	assert_false(pp_ratelimit_ok(&rl, &skipped));
	assert_false(pp_ratelimit_ok(&rl, &skipped));
	now += 999;
	assert_false(pp_ratelimit_ok(&rl, &skipped));
	now += 1;
	assert_true(pp_ratelimit_ok(&rl, &skipped));
	assert_int_equal(skipped, 3);
	pp_clock_set_fake(NULL);
}

static void
test_log_parse(void **state)
{
	enum pp_log_level l;
	enum pp_log_format f;

	(void)state;
	assert_int_equal(pp_log_parse_level("debug", &l), 0);
	assert_int_equal(l, PP_LOG_DEBUG);
	assert_int_equal(pp_log_parse_level("verbose", &l), PP_EINVAL);
	assert_int_equal(pp_log_parse_format("json", &f), 0);
	assert_int_equal(f, PP_LOG_JSON);
	assert_int_equal(pp_log_parse_format("xml", &f), PP_EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_uuid4),
		cmocka_unit_test(test_uuid4_valid),
		cmocka_unit_test(test_json_check),
		cmocka_unit_test(test_json_parse),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_log_parse),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
