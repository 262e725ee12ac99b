/*
 * Internals shared by the SDP parser (sdp.c), the candidate parser
 * (sdp_cand.c) and the generator (sdp_build.c).  Private to lib/sdp.
 */
#ifndef PP_SDP_SDP_INT_H
#define PP_SDP_SDP_INT_H

#include "sdp.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bounded reading: a value is a span (pointer + length), never a C string,
 * until it is copied into a field whose size was checked. */
struct span {
	const char *p;
	size_t n;
};

static inline int
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static inline int
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int
lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

static inline int
is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* SDP allows UTF-8 in a few fields, so only C0 controls and DEL are refused. */
static inline int
is_control(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

static inline int
span_is(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n == n && memcmp(s.p, lit, n) == 0;
}

/* ABNF string literals are case-insensitive; lit must be lowercase. */
static inline int
span_is_nocase(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	if (s.n != n)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (lower((unsigned char)s.p[i]) != lit[i])
			return 0;
	return 1;
}

/* Splits the next blank-separated word off *rest; 0 when none is left. */
static inline int
next_word(struct span *rest, struct span *w)
{
	while (rest->n > 0 && is_blank(*rest->p))
		rest->p++, rest->n--;
	if (rest->n == 0)
		return 0;
	w->p = rest->p;
	while (rest->n > 0 && !is_blank(*rest->p))
		rest->p++, rest->n--;
	w->n = (size_t)(rest->p - w->p);
	return 1;
}

/* A decimal number of at most 20 digits, no sign, not above max. */
static inline int
span_u64(struct span s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s.n == 0 || s.n > 20)
		return -1;
	for (size_t i = 0; i < s.n; i++) {
		unsigned d;

		if (!is_digit(s.p[i]))
			return -1;
		d = (unsigned)(s.p[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static inline int
span_port(struct span s, uint16_t *port)
{
	uint64_t v;

	if (span_u64(s, 65535, &v) < 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/* dst must have room for s.n + 1 bytes; callers check that first. */
static inline void
span_copy(char *dst, struct span s)
{
	memcpy(dst, s.p, s.n);
	dst[s.n] = '\0';
}

static inline int
pp__sdp_ice_chars(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '/')
			return 0;
	}
	return 1;
}

/* RFC 8866 token-char. */
static inline int
token_char(int c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x27) || c == 0x2a ||
	    c == 0x2b || c == 0x2d || c == 0x2e || is_digit(c) ||
	    (c >= 0x41 && c <= 0x5a) || (c >= 0x5e && c <= 0x7e);
}

static inline int
pp__sdp_token(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!token_char((unsigned char)s[i]))
			return 0;
	return 1;
}

static inline int
span_token(struct span s, size_t max)
{
	return s.n <= max && pp__sdp_token(s.p, s.n);
}

#define PP__SDP_STR_(x) #x
#define PP__SDP_STR(x) PP__SDP_STR_(x)

/*
 * Parses a candidate attribute value, the text after "candidate:".  Returns 0,
 * PP_EINVAL or PP_ETOOBIG with *why set to a static description.
 */
int pp__sdp_cand_parse(const char *s, size_t n, struct pp_sdp_candidate *c,
    const char **why);

/*
 * Moves *s and *n onto the value after "candidate:", given the string or
 * its SDP line form ("a=candidate:...", a CRLF or LF at the end allowed).
 * Returns -1 if it does not start with "candidate:".
 */
int pp__sdp_cand_value(const char **s, size_t *n);

/*
 * Checks that an m-line has what a connection needs from the transport it
 * names: ICE ufrag and password, a sha-256 fingerprint, setup not holdconn.
 * index is 0-based; messages name it 1-based.
 */
int pp__sdp_check_transport(const struct pp_sdp_media *m, size_t index,
    char *err, size_t errlen);

/* snprintf into err (which may be NULL) and return rc. */
int pp__sdp_errorf(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
