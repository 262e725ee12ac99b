/*
 * The lexical layer of PeerPipe's INI-style files (lib/base/ini.h).  The
 * agent's config parser and the policy parser both go through it, so a
 * file's bytes, comments, quoting and keys mean the same in both.
 */
#include "base/ini.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

void
pp_ini_verr(char (*msg)[PP_INI_ERR_LEN], size_t max, size_t *n,
    const char *path, int line, const char *fmt, va_list ap)
{
	char *m;
	size_t size = PP_INI_ERR_LEN;
	int k;

	if (*n < max) {
		m = msg[*n];
		/* Line 0: the problem is the file's, not one line's. */
		k = line > 0 ? snprintf(m, size, "%s:%d: ", path, line)
		    : snprintf(m, size, "%s: ", path);
		if (k >= 0 && (size_t)k < size)
			vsnprintf(m + k, size - (size_t)k, fmt, ap);
	}
	(*n)++;
}

/*
 * One long value must not crowd out the rest of its message, and what the
 * user typed may hold anything a terminal would interpret.
 */
const char *
pp_ini_quote(char *buf, size_t size, const char *s, size_t len)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (o > 48 && (c & 0xc0) != 0x80)
			break;
		if (c == '"' || c == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)c;
		} else if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", c);
		} else {
			buf[o++] = (char)c;
		}
	}
	buf[o++] = '"';
	if (i < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

int
pp_ini_is_space(char c)
{
	return c == ' ' || c == '\t';
}

int
pp_ini_word_eq(const char *s, size_t len, const char *w)
{
	return strlen(w) == len && strncasecmp(s, w, len) == 0;
}

int
pp_ini_bool(const char *s, size_t len)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < NELEM(yes); i++) {
		if (pp_ini_word_eq(s, len, yes[i]))
			return 1;
		if (pp_ini_word_eq(s, len, no[i]))
			return 0;
	}
	return -1;
}

/* No sign, no spaces; saturates instead of wrapping. */
int
pp_ini_num(const char *s, size_t len, unsigned long *out)
{
	unsigned long v = 0;

	if (len == 0)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v < 1000000000UL)
			v = v * 10 + (unsigned long)(s[i] - '0');
	}
	*out = v;
	return 0;
}

int
pp_ini_port(const char *what, const char *s, size_t len, uint16_t *out,
    char *why, size_t whylen)
{
	unsigned long v;
	char qb[PP_INI_QBUF];

	if (pp_ini_num(s, len, &v) < 0) {
		snprintf(why, whylen, "%s %s is not a number: use 1-65535",
		    what, pp_ini_quote(qb, sizeof(qb), s, len));
		return -1;
	}
	if (v < 1 || v > 65535) {
		snprintf(why, whylen, "%s %.*s out of range 1-65535",
		    what, (int)(len > 20 ? 20 : len), s);
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

int
pp_ini_ip_literal(const char *s, size_t len, int family)
{
	char tmp[INET6_ADDRSTRLEN + 1];
	unsigned char bin[16];

	if (len == 0 || len >= sizeof(tmp))
		return 0;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return inet_pton(family, tmp, bin) == 1;
}

int
pp_ini_host_ok(const char *s, size_t len)
{
	int digits_only = 1;

	if (len == 0 || len > 253 || s[0] == '-' || s[0] == '.')
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    c == '-' || c == '_')
			digits_only = 0;
		else if (!(c >= '0' && c <= '9') && c != '.')
			return 0;
	}
	return !digits_only || pp_ini_ip_literal(s, len, AF_INET);
}

int
pp_ini_item_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > PP_INI_ITEM_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return 0;
	}
	return 1;
}

int
pp_ini_next_item(const char **sp, const char *end, const char **item,
    size_t *ilen)
{
	const char *s = *sp, *e, *b;

	if (s == NULL)
		return 0;	/* the last item (maybe empty) was returned */
	if ((e = memchr(s, ',', (size_t)(end - s))) == NULL)
		e = end;
	for (b = e; s < b && pp_ini_is_space(*s); s++)
		;
	while (b > s && pp_ini_is_space(b[-1]))
		b--;
	*item = s;
	*ilen = (size_t)(b - s);
	*sp = e < end ? e + 1 : NULL;
	return 1;
}

/* --- lines ---------------------------------------------------------------- */

size_t
pp_ini_bom(const char *text, size_t len)
{
	/* Editors on some systems start UTF-8 files with a byte order mark. */
	return len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
}

int
pp_ini_next_line(const char *text, size_t textlen, size_t *off,
    const char **s, size_t *len)
{
	const char *nl;
	size_t llen;

	if (*off >= textlen)
		return 0;
	*s = text + *off;
	nl = memchr(*s, '\n', textlen - *off);
	llen = nl ? (size_t)(nl - *s) : textlen - *off;
	*off += llen + (nl != NULL);
	if (llen > 0 && (*s)[llen - 1] == '\r')
		llen--;
	*len = llen;
	return 1;
}

/* Length of a valid UTF-8 sequence at s (RFC 3629), or 0. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	unsigned lo = 0x80, hi = 0xbf;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4;
	else
		return 0;
	/* Overlong forms, surrogates and beyond U+10FFFF. */
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return len;
}

int
pp_ini_check_bytes(const char *s, size_t len, size_t max, char *why,
    size_t whylen)
{
	const unsigned char *u = (const unsigned char *)s;

	if (len > max) {
		snprintf(why, whylen, "line is %zu bytes long, at most %zu: "
		    "shorten it", len, max);
		return -1;
	}
	for (size_t i = 0; i < len;) {
		size_t n;

		if (u[i] == 0) {
			snprintf(why, whylen, "NUL byte at column %zu: is this "
			    "a text file?", i + 1);
			return -1;
		}
		if ((u[i] < 0x20 && u[i] != '\t') || u[i] == 0x7f) {
			snprintf(why, whylen, "control character 0x%02x at "
			    "column %zu: remove it", u[i], i + 1);
			return -1;
		}
		if ((n = utf8_seq(u + i, len - i)) == 0) {
			snprintf(why, whylen, "invalid UTF-8 at column %zu: "
			    "save the file as UTF-8", i + 1);
			return -1;
		}
		i += n;
	}
	return 0;
}

enum pp_ini_kind
pp_ini_classify(const char **sp, size_t *lenp)
{
	const char *s = *sp;
	size_t len = *lenp;

	while (len > 0 && pp_ini_is_space(*s))
		s++, len--;
	while (len > 0 && pp_ini_is_space(s[len - 1]))
		len--;
	*sp = s;
	*lenp = len;
	if (len == 0 || s[0] == '#' || s[0] == ';')
		return PP_INI_BLANK;
	return s[0] == '[' ? PP_INI_HEADER : PP_INI_PAIR;
}

int
pp_ini_header(const char *s, size_t len, struct pp_ini_header *h, char *why,
    size_t whylen)
{
	const char *rb = memchr(s, ']', len), *t, *name, *end;
	size_t tlen;

	memset(h, 0, sizeof(*h));
	if (rb == NULL) {
		snprintf(why, whylen, "section header without `]`: write "
		    "[section] or [section NAME]");
		return -1;
	}
	for (end = rb + 1; end < s + len && pp_ini_is_space(*end); end++)
		;
	if (end < s + len && *end != '#' && *end != ';') {
		snprintf(why, whylen, "unexpected text after `]`: start a "
		    "comment with #");
		return -1;
	}
	for (t = s + 1; t < rb && pp_ini_is_space(*t); t++)
		;
	for (tlen = 0; t + tlen < rb && !pp_ini_is_space(t[tlen]); tlen++)
		;
	for (name = t + tlen; name < rb && pp_ini_is_space(*name); name++)
		;
	for (end = rb; end > name && pp_ini_is_space(end[-1]); end--)
		;
	h->type = t;
	h->tlen = tlen;
	h->name = name;
	h->nlen = (size_t)(end - name);
	return 0;
}

int
pp_ini_key(const char *s, size_t len, char key[PP_INI_KEY_MAX],
    const char **value, char *why, size_t whylen)
{
	const char *eq = memchr(s, '=', len), *kend;
	char qb[PP_INI_QBUF];
	size_t klen;

	if (eq == NULL) {
		snprintf(why, whylen, "expected `key = value`, a [section] or "
		    "a # comment");
		return -1;
	}
	for (kend = eq; kend > s && pp_ini_is_space(kend[-1]); kend--)
		;
	klen = (size_t)(kend - s);
	if (klen == 0) {
		snprintf(why, whylen, "missing key before `=`");
		return -1;
	}
	for (size_t j = 0; j < klen; j++) {
		char c = s[j];

		if (klen >= PP_INI_KEY_MAX || !((c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '_')) {
			snprintf(why, whylen, "invalid key %s: keys are "
			    "lowercase letters, digits and _",
			    pp_ini_quote(qb, sizeof(qb), s, klen));
			return -1;
		}
	}
	memcpy(key, s, klen);
	key[klen] = '\0';
	*value = eq + 1;
	return 0;
}

long
pp_ini_value(const char *v, const char *end, char *out, char *why,
    size_t whylen)
{
	size_t o = 0;

	while (v < end && pp_ini_is_space(*v))
		v++;
	if (v < end && *v == '"') {
		for (v++;; v++) {
			if (v == end) {
				snprintf(why, whylen, "missing closing `\"` in "
				    "the value");
				return -1;
			}
			if (*v == '"')
				break;
			if (*v == '\\') {
				if (v + 1 == end) {
					snprintf(why, whylen, "missing closing "
					    "`\"` in the value");
					return -1;
				}
				if (v[1] != '"' && v[1] != '\\') {
					snprintf(why, whylen, "unknown escape in "
					    "quoted value: only \\\" and \\\\ "
					    "are escapes");
					return -1;
				}
				v++;
			}
			out[o++] = *v;
		}
		for (v++; v < end && pp_ini_is_space(*v); v++)
			;
		if (v < end && *v != '#' && *v != ';') {
			snprintf(why, whylen, "text after the closing `\"`: put "
			    "it inside the quotes, or start a comment with #");
			return -1;
		}
	} else {
		const char *s = v;

		/* v[-1] exists: at worst it is the '='. */
		for (; v < end; v++)
			if ((*v == '#' || *v == ';') && pp_ini_is_space(v[-1]))
				break;
		while (v > s && pp_ini_is_space(v[-1]))
			v--;
		o = (size_t)(v - s);
		memcpy(out, s, o);
	}
	out[o] = '\0';
	return (long)o;
}
