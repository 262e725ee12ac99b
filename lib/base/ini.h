/*
 * The lexical layer shared by PeerPipe's INI-style files (the agent's config,
 * docs/config.md, and the gateway's policy, docs/policy.md): lines, byte
 * checks, [section NAME] headers, `key = value` pairs with quoted values and
 * # ; comments, and the small value checks both need.  What the sections and
 * keys mean stays with each parser.
 *
 * Pure functions over bytes: no I/O, no globals, no logging; thread-safe.
 * Functions that can reject their input write why (a complete sentence for a
 * "FILE:LINE: why" message) into a caller's buffer of PP_INI_WHY bytes.
 */
#ifndef PP_BASE_INI_H
#define PP_BASE_INI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define PP_INI_ERR_LEN	512	/* one "FILE:LINE: ..." message */
#define PP_INI_WHY	160	/* a why buffer */
#define PP_INI_QBUF	80	/* a pp_ini_quote() buffer */
#define PP_INI_KEY_MAX	32	/* key buffer, NUL included */

/*
 * Appends "PATH:LINE: " (or "PATH: " for line 0, a whole-file problem) and
 * the formatted text to msg[*n] if *n < max; counts it in *n either way, so
 * the caller can say how many were found.
 */
void pp_ini_verr(char (*msg)[PP_INI_ERR_LEN], size_t max, size_t *n,
    const char *path, int line, const char *fmt, va_list ap)
    __attribute__((format(printf, 6, 0)));

/*
 * User text for a message: quoted, with quotes, backslashes and control
 * bytes escaped, cut after about 48 bytes (at a character boundary) with
 * "...".  buf is PP_INI_QBUF bytes; returns buf.
 */
const char *pp_ini_quote(char *buf, size_t size, const char *s, size_t len);

int pp_ini_is_space(char c);				/* space or tab */
int pp_ini_word_eq(const char *s, size_t len, const char *w);	/* any case */
/* 1 (yes true on 1), 0 (no false off 0), any case; -1 if not a boolean. */
int pp_ini_bool(const char *s, size_t len);
/* Decimal digits only, saturating near 1e10; 0 or -1. */
int pp_ini_num(const char *s, size_t len, unsigned long *out);
/* A port 1-65535; what names it in why ("port 70000 out of range 1-65535"). */
int pp_ini_port(const char *what, const char *s, size_t len, uint16_t *out,
    char *why, size_t whylen);
/* Nonzero if s is an IP literal of family (AF_INET, AF_INET6). */
int pp_ini_ip_literal(const char *s, size_t len, int family);
/* Nonzero if s is a DNS name or an IPv4 literal (dotted digits must be one). */
int pp_ini_host_ok(const char *s, size_t len);

/* Names of the entries a file defines ([service NAME], [rule NAME], a
 * group): they appear in logs, messages and the control API. */
#define PP_INI_ITEM_MAX		63
#define PP_INI_ITEM_RULE	"1-63 letters, digits, `-`, `_` or `.`"
int pp_ini_item_name_ok(const char *s, size_t len);	/* nonzero if so */

/*
 * A comma list (`peers = a, b`): the next item from *s up to end, trimmed,
 * in *item, *ilen (empty between two commas: the caller says so); advances
 * *s, which is NULL after the last.  Returns 0 when the list is done.  An
 * empty value is one empty item, "a," two items.
 */
int pp_ini_next_item(const char **s, const char *end, const char **item,
    size_t *ilen);

/* --- lines ---------------------------------------------------------------- */

/* Bytes to skip at the start of the text: a UTF-8 byte order mark. */
size_t pp_ini_bom(const char *text, size_t len);
/*
 * The next line at *off (LF or CRLF ending removed) in *s, *len; advances
 * *off.  Returns 0 when there is no line left.
 */
int pp_ini_next_line(const char *text, size_t textlen, size_t *off,
    const char **s, size_t *len);
/* Bytes before meaning: at most max bytes, no NUL or control byte but tab,
 * valid UTF-8.  0, or -1 with why. */
int pp_ini_check_bytes(const char *s, size_t len, size_t max, char *why,
    size_t whylen);

enum pp_ini_kind {
	PP_INI_BLANK,		/* empty or a comment */
	PP_INI_HEADER,		/* starts with [ */
	PP_INI_PAIR,		/* anything else: meant as key = value */
};
/* Trims spaces and tabs at both ends of *s, *len and says what it is. */
enum pp_ini_kind pp_ini_classify(const char **s, size_t *len);

struct pp_ini_header {
	const char *type;	/* the section word: [TYPE NAME] */
	size_t tlen;
	const char *name;	/* the rest, trimmed; nlen 0 when absent */
	size_t nlen;
};
/* A trimmed line that starts with [.  0, or -1 with why. */
int pp_ini_header(const char *s, size_t len, struct pp_ini_header *h,
    char *why, size_t whylen);

/*
 * The key of a trimmed `key = value` line, checked (lowercase letters,
 * digits, _; shorter than PP_INI_KEY_MAX) and copied NUL-terminated to key;
 * *value points after the `=`.  0, or -1 with why.
 */
int pp_ini_key(const char *s, size_t len, char key[PP_INI_KEY_MAX],
    const char **value, char *why, size_t whylen);
/*
 * The value from v to end: quoted ("..." with \" and \\) or bare up to a #
 * or ; that follows a space, trimmed.  Written NUL-terminated to out (at
 * least end - v + 1 bytes).  Returns its length, or -1 with why.
 * v[-1] must be readable (it is the `=`).
 */
long pp_ini_value(const char *v, const char *end, char *out, char *why,
    size_t whylen);

#endif
