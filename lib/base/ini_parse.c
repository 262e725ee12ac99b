/*
 * The table-driven part of PeerPipe's INI-style parsers (ini_parse.h).
 * The agent's config and the gateway's policy both go through it, so a
 * misplaced, unknown, repeated or empty key is reported alike in both.
 */
#include "base/ini_parse.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
pp_ini_init(struct pp_ini *ini, const struct pp_ini_syntax *syn,
    const char *path, char (*msg)[PP_INI_ERR_LEN], size_t max_msg,
    size_t *nmsg, char *prefix, size_t prefix_size)
{
	assert(syn->nsections <= PP_INI_MAX_SECTIONS);
	memset(ini, 0, sizeof(*ini));
	ini->syn = syn;
	ini->path = path;
	ini->msg = msg;
	ini->max_msg = max_msg;
	ini->nmsg = nmsg;
	ini->prefix = prefix;
	ini->prefix_size = prefix_size;
	prefix[0] = '\0';
}

void
pp_ini_err(struct pp_ini *ini, int line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	pp_ini_verr(ini->msg, ini->max_msg, ini->nmsg, ini->path, line, fmt, ap);
	va_end(ap);
}

#define err(ini, ...)	pp_ini_err((ini), (ini)->line, __VA_ARGS__)

/* --- the parser's tables -------------------------------------------------- */

/* The rows are the parser's own type: see PP_INI_KEY_ROW(). */
static const char *
key_name(const struct pp_ini_section *sd, size_t i)
{
	const char *const *name = (const void *)((const char *)sd->keys +
	    i * sd->row_size);

	return *name;
}

static int
key_repeats(const struct pp_ini_section *sd, size_t i)
{
	const int *repeat = (const void *)((const char *)sd->keys +
	    i * sd->row_size + sd->repeat_off);

	return *repeat;
}

static int
key_index(const struct pp_ini_section *sd, const char *key)
{
	for (size_t i = 0; i < sd->nkeys; i++)
		if (strcmp(key_name(sd, i), key) == 0)
			return (int)i;
	return -1;
}

static const struct pp_ini_section *
section_by_id(const struct pp_ini *ini, int id)
{
	for (size_t i = 0; i < ini->syn->nsections; i++)
		if (ini->syn->sections[i].id == id)
			return &ini->syn->sections[i];
	return NULL;
}

int
pp_ini_seen(const struct pp_ini *ini, const char *key)
{
	int i = ini->sd != NULL ? key_index(ini->sd, key) : -1;

	return i < 0 ? 0 : ini->key_line[i];
}

int
pp_ini_ever(const struct pp_ini *ini, int id, const char *key)
{
	const struct pp_ini_section *sd = section_by_id(ini, id);
	int i = sd != NULL ? key_index(sd, key) : -1;

	return i < 0 ? 0 : (ini->ever[sd - ini->syn->sections] >> i) & 1;
}

int
pp_ini_opened(const struct pp_ini *ini, int id)
{
	const struct pp_ini_section *sd = section_by_id(ini, id);

	return sd != NULL ? ini->opened[sd - ini->syn->sections] : 0;
}

/* --- sections ------------------------------------------------------------- */

static void
unknown_section(struct pp_ini *ini, const char *type, size_t tlen)
{
	char list[256], qb[PP_INI_QBUF];
	size_t o = 0;

	for (size_t i = 0; i < ini->syn->nsections; i++) {
		const struct pp_ini_section *sd = &ini->syn->sections[i];

		if (o < sizeof(list))	/* else cut */
			o += (size_t)snprintf(list + o, sizeof(list) - o,
			    "%s[%s%s]", i ? ", " : "", sd->name,
			    sd->named ? " NAME" : "");
	}
	err(ini, "unknown section %s: valid sections are %s",
	    pp_ini_quote(qb, sizeof(qb), type, tlen), list);
}

/* A trimmed line that starts with [. */
static void
parse_header(struct pp_ini *ini, const char *s, size_t len)
{
	const struct pp_ini_section *sd = NULL;
	struct pp_ini_header h;
	char why[PP_INI_WHY];
	int *opened;

	if (ini->sd != NULL)
		ini->syn->close(ini);
	ini->sd = NULL;
	ini->sect = 0;
	ini->sect_line = ini->line;
	memset(ini->key_line, 0, sizeof(ini->key_line));
	if (pp_ini_header(s, len, &h, why, sizeof(why)) < 0) {
		err(ini, "%s", why);
		return;
	}
	for (size_t i = 0; i < ini->syn->nsections && sd == NULL; i++)
		if (strlen(ini->syn->sections[i].name) == h.tlen &&
		    memcmp(h.type, ini->syn->sections[i].name, h.tlen) == 0)
			sd = &ini->syn->sections[i];
	if (sd == NULL) {
		unknown_section(ini, h.type, h.tlen);
		return;
	}
	if (sd->named && h.nlen == 0) {
		err(ini, "[%s] needs a name: write [%s NAME]", sd->name, sd->name);
		return;
	}
	ini->sd = sd;
	ini->sect = sd->id;
	if (sd->named) {
		if (ini->syn->open(ini, h.name, h.nlen) < 0) {
			ini->sd = NULL;
			ini->sect = 0;
		}
		return;
	}
	if (h.nlen > 0)
		err(ini, "[%s] takes no name: write [%s]", sd->name, sd->name);
	opened = &ini->opened[sd - ini->syn->sections];
	if (*opened)
		err(ini, "[%s] already opened at line %d: merge the two sections",
		    sd->name, *opened);
	else
		*opened = ini->line;
	snprintf(ini->prefix, ini->prefix_size, "[%s] ", sd->name);
}

/* --- keys ----------------------------------------------------------------- */

static void
unknown_key(struct pp_ini *ini, const char *key)
{
	const struct pp_ini_section *sd = ini->sd;
	char list[256], qb[PP_INI_QBUF], hint[96] = "";
	size_t o = 0;

	for (size_t i = 0; i < sd->nkeys && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s",
		    i ? ", " : "", key_name(sd, i));
	/* A key put under the wrong header is the usual mistake. */
	for (size_t i = 0; i < ini->syn->nsections; i++) {
		const struct pp_ini_section *other = &ini->syn->sections[i];

		if (other != sd && key_index(other, key) >= 0) {
			snprintf(hint, sizeof(hint), " (`%s` belongs in [%s%s])",
			    key, other->name, other->named ? " NAME" : "");
			break;
		}
	}
	err(ini, "unknown key %s in [%s]%s: valid keys are %s",
	    pp_ini_quote(qb, sizeof(qb), key, strlen(key)), sd->name, hint, list);
}

/* A trimmed `key = value` line; val is as large as the line. */
static void
parse_pair(struct pp_ini *ini, const char *s, size_t len, char *val)
{
	const char *v;
	char key[PP_INI_KEY_MAX], why[PP_INI_WHY];
	long vlen;
	int i;

	if (pp_ini_key(s, len, key, &v, why, sizeof(why)) < 0) {
		err(ini, "%s", why);
		return;
	}
	if (ini->sd == NULL) {
		/* Under a broken header: that was reported, and its keys
		 * would only add noise. */
		if (ini->sect_line == 0)
			err(ini, "key `%s` outside a section: put it under its "
			    "[section] header", key);
		return;
	}
	if ((i = key_index(ini->sd, key)) < 0) {
		unknown_key(ini, key);
		return;
	}
	if (ini->key_line[i] && !key_repeats(ini->sd, (size_t)i)) {
		err(ini, "%sduplicate key `%s` (first at line %d): remove one",
		    ini->prefix, key, ini->key_line[i]);
		return;
	}
	if (!ini->key_line[i])
		ini->key_line[i] = ini->line;
	/* Present, even if its value is wrong: not reported as missing too. */
	ini->ever[ini->sd - ini->syn->sections] |= 1u << i;
	if ((vlen = pp_ini_value(v, s + len, val, why, sizeof(why))) < 0) {
		err(ini, "%s", why);
		return;
	}
	if (vlen == 0) {
		err(ini, "%s%s is empty: give a value, or remove the line%s",
		    ini->prefix, key, ini->syn->empty_hint);
		return;
	}
	ini->syn->set(ini, (size_t)i, val, (size_t)vlen);
}

int
pp_ini_parse(struct pp_ini *ini, const char *text, size_t len,
    size_t file_max, size_t line_max)
{
	const char *s;
	char *buf, why[PP_INI_WHY];
	size_t off, llen;

	if (text == NULL)
		len = 0;
	if (len > file_max) {
		pp_ini_err(ini, 0, "file is %zu bytes, at most %zu: is this the "
		    "right file?", len, file_max);
		return -1;
	}
	/* Each line is copied NUL-terminated (the text need not be), and a
	 * value can be as long as its line: two buffers serve all lines. */
	if ((buf = malloc(2 * (line_max + 1))) == NULL) {
		pp_ini_err(ini, 0, "out of memory");
		return -1;
	}
	off = pp_ini_bom(text, len);
	while (pp_ini_next_line(text, len, &off, &s, &llen)) {
		ini->line++;
		/* Bytes before meaning. */
		if (pp_ini_check_bytes(s, llen, line_max, why, sizeof(why)) < 0) {
			err(ini, "%s", why);
			continue;
		}
		memcpy(buf, s, llen);
		buf[llen] = '\0';
		s = buf;
		switch (pp_ini_classify(&s, &llen)) {
		case PP_INI_BLANK:
			break;
		case PP_INI_HEADER:
			parse_header(ini, s, llen);
			break;
		case PP_INI_PAIR:
			parse_pair(ini, s, llen, buf + line_max + 1);
			break;
		}
	}
	free(buf);
	if (ini->sd != NULL)
		ini->syn->close(ini);
	return 0;
}

/* --- setters -------------------------------------------------------------- */

int
pp_ini_set_str(struct pp_ini *ini, const char *key, char *dst, size_t size,
    const char *v, size_t len)
{
	if (len >= size) {
		err(ini, "%s%s is %zu bytes long, at most %zu: shorten it",
		    ini->prefix, key, len, size - 1);
		return -1;
	}
	memcpy(dst, v, len);
	dst[len] = '\0';
	return 0;
}

int
pp_ini_set_bool(struct pp_ini *ini, const char *key, int *dst, const char *v,
    size_t len)
{
	char qb[PP_INI_QBUF];
	int b = pp_ini_bool(v, len);

	if (b < 0) {
		err(ini, "%s%s %s is not a boolean: use yes or no", ini->prefix,
		    key, pp_ini_quote(qb, sizeof(qb), v, len));
		return -1;
	}
	*dst = b;
	return 0;
}

int
pp_ini_set_uint(struct pp_ini *ini, const char *key, unsigned *dst,
    unsigned min, unsigned max, const char *v, size_t len)
{
	char qb[PP_INI_QBUF];
	unsigned long n = 0;
	size_t i;

	/* Ten digits hold any unsigned; an eleventh is out of range. */
	for (i = 0; i < len && i < 10 && v[i] >= '0' && v[i] <= '9'; i++)
		n = n * 10 + (unsigned long)(v[i] - '0');
	if (len == 0 || i != len || n < min || n > max) {
		err(ini, "%s%s %s: use a whole number from %u to %u",
		    ini->prefix, key, pp_ini_quote(qb, sizeof(qb), v, len), min,
		    max);
		return -1;
	}
	*dst = (unsigned)n;
	return 0;
}

int
pp_ini_set_port(struct pp_ini *ini, const char *key, uint16_t *dst,
    const char *v, size_t len)
{
	char why[PP_INI_WHY];

	if (pp_ini_port(key, v, len, dst, why, sizeof(why)) < 0) {
		err(ini, "%s%s", ini->prefix, why);
		return -1;
	}
	return 0;
}
