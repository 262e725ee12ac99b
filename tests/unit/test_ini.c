/*
 * lib/base/ini_parse: the machinery the config and policy parsers share,
 * driven here by a small parser of its own, and the helpers beside it
 * (pp_ini_next_item, pp_ini_item_name_ok, pp_read_file).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/fsutil.h"
#include "base/ini_parse.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define MAX_MSG		8

enum { S_MAIN = 1, S_ITEM };

struct parser;
PP_INI_KEY_ROW(key, struct parser);

/* A toy file: [main] with one key of each setter, [item NAME] entries. */
struct parser {
	struct pp_ini ini;
	char msg[MAX_MSG][PP_INI_ERR_LEN];
	size_t nmsg;
	char prefix[64];
	unsigned count;
	int flag;
	char label[8];
	uint16_t port;
	int ntags;
	char items[4][PP_INI_ITEM_MAX + 1];
	size_t nitems;
	int closed[4];			/* per item: its line when closed */
	size_t nclosed;
};

static void
main_count(struct parser *p, const char *v, size_t len)
{
	pp_ini_set_uint(&p->ini, "count", &p->count, 1, 4000000000u, v, len);
}

static void
main_flag(struct parser *p, const char *v, size_t len)
{
	pp_ini_set_bool(&p->ini, "flag", &p->flag, v, len);
}

static void
main_label(struct parser *p, const char *v, size_t len)
{
	pp_ini_set_str(&p->ini, "label", p->label, sizeof(p->label), v, len);
}

static void
main_port(struct parser *p, const char *v, size_t len)
{
	pp_ini_set_port(&p->ini, "port", &p->port, v, len);
}

static void
main_tag(struct parser *p, const char *v, size_t len)
{
	(void)v, (void)len;
	p->ntags++;
}

static void
item_value(struct parser *p, const char *v, size_t len)
{
	(void)p, (void)v, (void)len;
}

static const struct key main_keys[] = {
	{ "count", main_count, 0 },
	{ "flag", main_flag, 0 },
	{ "label", main_label, 0 },
	{ "port", main_port, 0 },
	{ "tag", main_tag, 1 },
};
static const struct key item_keys[] = {
	{ "value", item_value, 0 },
};
static const struct pp_ini_section sections[] = {
	PP_INI_SECTION(S_MAIN, "main", 0, main_keys),
	PP_INI_SECTION(S_ITEM, "item", 1, item_keys),
};

static int
open_item(struct pp_ini *ini, const char *name, size_t nlen)
{
	struct parser *p = (struct parser *)ini;

	if (!pp_ini_item_name_ok(name, nlen)) {
		pp_ini_err(ini, ini->line, "bad item name");
		return -1;
	}
	if (p->nitems < NELEM(p->items)) {
		memcpy(p->items[p->nitems], name, nlen);
		p->items[p->nitems++][nlen] = '\0';
	}
	snprintf(p->prefix, sizeof(p->prefix), "item \"%.*s\": ", (int)nlen,
	    name);
	return 0;
}

static void
set_key(struct pp_ini *ini, size_t i, const char *v, size_t len)
{
	((const struct key *)ini->sd->keys)[i].set((struct parser *)ini, v, len);
}

static void
close_sect(struct pp_ini *ini)
{
	struct parser *p = (struct parser *)ini;

	if (ini->sect == S_ITEM && p->nclosed < NELEM(p->closed))
		p->closed[p->nclosed++] = ini->sect_line;
}

static const struct pp_ini_syntax syntax = {
	sections, NELEM(sections), " (hint)", open_item, set_key, close_sect,
};

static struct parser P;

static int
parse(const char *text)
{
	memset(&P, 0, sizeof(P));
	pp_ini_init(&P.ini, &syntax, "t.ini", P.msg, MAX_MSG, &P.nmsg,
	    P.prefix, sizeof(P.prefix));
	return pp_ini_parse(&P.ini, text, strlen(text), 4096, 64);
}

static void
print_msgs(void)
{
	for (size_t i = 0; i < P.nmsg && i < MAX_MSG; i++)
		print_message("  %s\n", P.msg[i]);
}

/* Each text gives exactly one message, this one. */
static const struct {
	const char *text;
	const char *msg;
} one_error[] = {
	{ "x = 1\n", "t.ini:1: key `x` outside a section: put it under its "
	    "[section] header" },
	{ "[main]\nbogus = 1\n", "t.ini:2: unknown key \"bogus\" in [main]: "
	    "valid keys are count, flag, label, port, tag" },
	{ "[main]\nvalue = 1\n", "t.ini:2: unknown key \"value\" in [main] "
	    "(`value` belongs in [item NAME]): valid keys are count, flag, "
	    "label, port, tag" },
	{ "[main]\nflag = yes\nflag = no\n", "t.ini:3: [main] duplicate key "
	    "`flag` (first at line 2): remove one" },
	{ "[main]\nlabel =\n", "t.ini:2: [main] label is empty: give a value, "
	    "or remove the line (hint)" },
	{ "[main]\nlabel = \"\"\n", "t.ini:2: [main] label is empty: give a "
	    "value, or remove the line (hint)" },
	{ "[main]\nlabel = 12345678\n", "t.ini:2: [main] label is 8 bytes "
	    "long, at most 7: shorten it" },
	{ "[main]\nflag = maybe\n", "t.ini:2: [main] flag \"maybe\" is not a "
	    "boolean: use yes or no" },
	{ "[main]\ncount = 0\n", "t.ini:2: [main] count \"0\": use a whole "
	    "number from 1 to 4000000000" },
	{ "[main]\ncount = 4000000001\n", "t.ini:2: [main] count "
	    "\"4000000001\": use a whole number from 1 to 4000000000" },
	/* Eleven digits would wrap a 32-bit unsigned: out of range, not 705. */
	{ "[main]\ncount = 00000000705\n", "t.ini:2: [main] count "
	    "\"00000000705\": use a whole number from 1 to 4000000000" },
	{ "[main]\ncount = -3\n", "t.ini:2: [main] count \"-3\": use a whole "
	    "number from 1 to 4000000000" },
	{ "[main]\nport = 70000\n", "t.ini:2: [main] port 70000 out of range "
	    "1-65535" },
	{ "[bogus]\n", "t.ini:1: unknown section \"bogus\": valid sections "
	    "are [main], [item NAME]" },
	{ "[item]\n", "t.ini:1: [item] needs a name: write [item NAME]" },
	{ "[main x]\n", "t.ini:1: [main] takes no name: write [main]" },
	{ "[main]\n[main]\n", "t.ini:2: [main] already opened at line 1: "
	    "merge the two sections" },
	{ "[item a]\nvalue = 1\nvalue = 2\n", "t.ini:3: item \"a\": duplicate "
	    "key `value` (first at line 2): remove one" },
	/* Keys under a broken or rejected header add nothing. */
	{ "[main\nbogus = 1\n", "t.ini:1: section header without `]`: write "
	    "[section] or [section NAME]" },
	{ "[nope]\nbogus = 1\n", "t.ini:1: unknown section \"nope\": valid "
	    "sections are [main], [item NAME]" },
	{ "[item b@d]\nbogus = 1\n", "t.ini:1: bad item name" },
	{ "[main]\nx\n", "t.ini:2: expected `key = value`, a [section] or a "
	    "# comment" },
	{ "[main]\n" "label = \x01\n", "t.ini:2: control character 0x01 at "
	    "column 9: remove it" },
};

static void
test_messages(void **state)
{
	(void)state;
	for (size_t i = 0; i < NELEM(one_error); i++) {
		assert_int_equal(parse(one_error[i].text), 0);
		if (P.nmsg != 1 || strcmp(P.msg[0], one_error[i].msg) != 0) {
			print_message("case %zu: want %s\n", i, one_error[i].msg);
			print_msgs();
			fail();
		}
	}
}

static void
test_values(void **state)
{
	(void)state;
	assert_int_equal(parse("# comment\n[main]\ncount = 4000000000\n"
	    "flag = On\nlabel = \"a b\"\nport = 443\ntag = x\ntag = y\n"), 0);
	print_msgs();
	assert_int_equal(P.nmsg, 0);
	assert_int_equal(P.count, 4000000000u);
	assert_int_equal(P.flag, 1);
	assert_string_equal(P.label, "a b");
	assert_int_equal(P.port, 443);
	assert_int_equal(P.ntags, 2);		/* a repeatable key */
	assert_int_equal(pp_ini_opened(&P.ini, S_MAIN), 2);
	assert_int_equal(pp_ini_opened(&P.ini, S_ITEM), 0);
	assert_true(pp_ini_ever(&P.ini, S_MAIN, "port"));
	assert_false(pp_ini_ever(&P.ini, S_ITEM, "value"));
	assert_false(pp_ini_ever(&P.ini, S_MAIN, "nokey"));
	/* A wrong value still counts as present (not reported missing). */
	assert_int_equal(parse("[main]\nport = 0\n"), 0);
	assert_int_equal(P.nmsg, 1);
	assert_true(pp_ini_ever(&P.ini, S_MAIN, "port"));
}

static void
test_sections(void **state)
{
	(void)state;
	/* Each named section is closed once, by the next header or the end
	 * of the file; pp_ini_seen() speaks of the open one. */
	assert_int_equal(parse("[item a]\nvalue = 1\n[main]\n[item b]\n"
	    "[item c]\n"), 0);
	assert_int_equal(P.nmsg, 0);
	assert_int_equal(P.nitems, 3);
	assert_string_equal(P.items[2], "c");
	assert_int_equal(P.nclosed, 3);
	assert_int_equal(P.closed[0], 1);
	assert_int_equal(P.closed[1], 4);
	assert_int_equal(P.closed[2], 5);
	assert_int_equal(parse("[item a]\n\nvalue = 1\n"), 0);
	assert_int_equal(pp_ini_seen(&P.ini, "value"), 3);
	assert_int_equal(pp_ini_seen(&P.ini, "nokey"), 0);
	/* A rejected name: no entry, nothing to close. */
	assert_int_equal(parse("[item b@d]\nvalue = 1\n"), 0);
	assert_int_equal(P.nmsg, 1);
	assert_int_equal(P.nclosed, 0);
}

static void
test_limits(void **state)
{
	char big[5000];

	(void)state;
	/* Lines over line_max (64 here), files over file_max (4096). */
	memset(big, 'a', 100);
	memcpy(big, "[main]\nlabel = ", 15);
	strcpy(big + 100, "\n");
	assert_int_equal(parse(big), 0);
	assert_int_equal(P.nmsg, 1);
	assert_string_equal(P.msg[0], "t.ini:2: line is 93 bytes long, at "
	    "most 64: shorten it");
	memset(big, '#', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(parse(big), -1);
	assert_int_equal(P.nmsg, 1);
	assert_string_equal(P.msg[0], "t.ini: file is 4999 bytes, at most "
	    "4096: is this the right file?");
	/* More messages than fit are counted, not stored. */
	assert_int_equal(parse("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"), 0);
	assert_int_equal(P.nmsg, 10);
}

static void
test_next_item(void **state)
{
	static const struct {
		const char *list;
		const char *items;	/* joined with | */
	} cases[] = {
		{ "a", "a" },
		{ " a , b\t,c ", "a|b|c" },
		{ "a,,b", "a||b" },
		{ "a,", "a|" },
		{ ",", "|" },
		{ "", "" },
		{ "  ", "" },
	};

	(void)state;
	for (size_t i = 0; i < NELEM(cases); i++) {
		const char *s = cases[i].list, *end = s + strlen(s), *it;
		char got[64] = "";
		size_t n, k = 0, count = 0;

		while (pp_ini_next_item(&s, end, &it, &n))
			k += (size_t)snprintf(got + k, sizeof(got) - k, "%s%.*s",
			    count++ ? "|" : "", (int)n, it);
		assert_true(count >= 1);	/* even "" is one (empty) item */
		assert_string_equal(got, cases[i].items);
	}
}

static void
test_item_name(void **state)
{
	char long_name[PP_INI_ITEM_MAX + 2];

	(void)state;
	assert_true(pp_ini_item_name_ok("web-1.a_b", 9));
	assert_false(pp_ini_item_name_ok("", 0));
	assert_false(pp_ini_item_name_ok("a b", 3));
	assert_false(pp_ini_item_name_ok("a/b", 3));
	memset(long_name, 'x', sizeof(long_name));
	assert_true(pp_ini_item_name_ok(long_name, PP_INI_ITEM_MAX));
	assert_false(pp_ini_item_name_ok(long_name, PP_INI_ITEM_MAX + 1));
}

static void
test_read_file(void **state)
{
	char path[] = "/tmp/pp-test-ini-XXXXXX", *buf;
	size_t len;
	int fd;

	(void)state;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, "0123456789", 10), 10);
	close(fd);
	assert_int_equal(pp_read_file(path, 10, &buf, &len), 0);
	assert_int_equal(len, 10);
	assert_memory_equal(buf, "0123456789", 10);
	free(buf);
	/* Over the cap: one byte more than allowed says so. */
	assert_int_equal(pp_read_file(path, 4, &buf, &len), 0);
	assert_int_equal(len, 5);
	free(buf);
	assert_int_equal(pp_read_file("/tmp", 4, &buf, &len), -EISDIR);
	assert_null(buf);
	unlink(path);
	assert_int_equal(pp_read_file(path, 4, &buf, &len), -ENOENT);
	assert_null(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_sections),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_next_item),
		cmocka_unit_test(test_item_name),
		cmocka_unit_test(test_read_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
