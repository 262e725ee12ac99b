/*
 * ICE candidates (RFC 8839 section 5.1), from an a=candidate line or from a
 * trickled "candidate:..." string: one grammar, one set of checks.
 */
#include "sdp.h"
#include "sdp_int.h"
#include "base/error.h"

#include <arpa/inet.h>
#include <string.h>

/* RFC 1123 host name; the last label must not be all digits (not an IP). */
static int
hostname_ok(struct span s)
{
	size_t label = 0;
	int alpha = 0;

	if (s.n == 0 || s.n > PP_SDP_ADDR_MAX)
		return 0;
	for (size_t i = 0; i < s.n; i++) {
		int c = (unsigned char)s.p[i];

		if (c == '.') {
			if (label == 0 || s.p[i - 1] == '-')
				return 0;
			label = 0;
			alpha = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return 0;
		if ((c == '-' && label == 0) || ++label > 63)
			return 0;
		alpha |= !is_digit(c);
	}
	return label > 0 && s.p[s.n - 1] != '-' && alpha;
}

static int
parse_address(struct span s, char dst[PP_SDP_ADDR_MAX + 1],
    enum pp_sdp_addr *kind)
{
	unsigned char bin[16];
	char buf[PP_SDP_ADDR_MAX + 1];

	if (s.n == 0 || s.n > PP_SDP_ADDR_MAX)
		return -1;
	span_copy(buf, s);
	if (inet_pton(AF_INET, buf, bin) == 1)
		*kind = PP_SDP_ADDR_IP4;
	else if (inet_pton(AF_INET6, buf, bin) == 1)
		*kind = PP_SDP_ADDR_IP6;
	else if (hostname_ok(s))
		*kind = PP_SDP_ADDR_FQDN;
	else
		return -1;
	memcpy(dst, buf, s.n + 1);
	return 0;
}

/*
 * The normalised text in c->raw, built word by word while parsing: one space
 * between words, keywords in lowercase (see struct pp_sdp_candidate).  When
 * it outgrows raw, overflow is set and parsing goes on, so a malformed value
 * is still called malformed rather than too long.
 */
struct raw {
	struct pp_sdp_candidate *c;
	size_t len;
	int overflow;
};

static void
raw_word(struct raw *r, struct span w, int lowercase)
{
	const char *sep = r->len == 0 ? "candidate:" : " ";
	size_t seplen = strlen(sep);
	char *dst;

	if (r->overflow || r->len + seplen + w.n > PP_SDP_CAND_MAX) {
		r->overflow = 1;
		return;
	}
	dst = r->c->raw + r->len;
	memcpy(dst, sep, seplen);
	dst += seplen;
	for (size_t i = 0; i < w.n; i++) {
		int ch = (unsigned char)w.p[i];

		dst[i] = (char)(lowercase ? lower(ch) : ch);
	}
	r->len += seplen + w.n;
	r->c->raw[r->len] = '\0';
}

#define CAND_SYNTAX "expected <foundation> <component> <transport> " \
	"<priority> <address> <port> typ <type>"

static int
cand_extensions(struct span rest, struct raw *r, const char **why)
{
	struct pp_sdp_candidate *c = r->c;
	struct span name, value;
	int known;

	while (next_word(&rest, &name)) {
		if (!next_word(&rest, &value)) {
			*why = "extension attribute without a value";
			return PP_EINVAL;
		}
		known = 1;
		if (span_is_nocase(name, "typ")) {
			/* Consumers that take the last "typ" would see
			 * another type than we checked. */
			*why = "more than one typ";
			return PP_EINVAL;
		} else if (span_is_nocase(name, "raddr")) {
			if (c->has_raddr) {
				*why = "more than one raddr";
				return PP_EINVAL;
			}
			if (parse_address(value, c->raddr,
			    &c->raddr_kind) < 0) {
				*why = "raddr is neither an IP address nor a "
				    "host name";
				return PP_EINVAL;
			}
			c->has_raddr = 1;
		} else if (span_is_nocase(name, "rport")) {
			if (c->has_rport) {
				*why = "more than one rport";
				return PP_EINVAL;
			}
			if (span_port(value, &c->rport) < 0) {
				*why = "rport must be 0-65535";
				return PP_EINVAL;
			}
			c->has_rport = 1;
		} else if (span_is_nocase(name, "tcptype")) {
			if (span_is_nocase(value, "active"))
				c->tcptype = PP_SDP_TCPTYPE_ACTIVE;
			else if (span_is_nocase(value, "passive"))
				c->tcptype = PP_SDP_TCPTYPE_PASSIVE;
			else if (span_is_nocase(value, "so"))
				c->tcptype = PP_SDP_TCPTYPE_SO;
			else {
				*why = "tcptype must be active, passive or so";
				return PP_EINVAL;
			}
		} else if (span_is_nocase(name, "ufrag")) {
			if (c->ufrag[0] != '\0') {
				*why = "more than one ufrag";
				return PP_EINVAL;
			}
			if (!pp_sdp_ice_ufrag_valid(value.p, value.n)) {
				*why = "ufrag must be 4-"
				    PP__SDP_STR(PP_SDP_UFRAG_MAX)
				    " characters from [A-Za-z0-9+/]";
				return PP_EINVAL;
			}
			span_copy(c->ufrag, value);
		} else {
			/* generation, network-id, network-cost, ... */
			known = 0;
		}
		raw_word(r, name, known);
		raw_word(r, value, span_is_nocase(name, "tcptype"));
	}
	return 0;
}

int
pp__sdp_cand_parse(const char *s, size_t n, struct pp_sdp_candidate *c,
    const char **why)
{
	static const char *const types[] = {
		[PP_SDP_HOST] = "host", [PP_SDP_SRFLX] = "srflx",
		[PP_SDP_PRFLX] = "prflx", [PP_SDP_RELAY] = "relay",
	};
	struct span rest = { s, n }, w[8];
	struct raw r = { c, 0, 0 };
	uint64_t v;
	int rc;

	memset(c, 0, sizeof(*c));
	for (size_t i = 0; i < n; i++) {
		if (is_control((unsigned char)s[i])) {
			*why = "control character";
			return PP_EINVAL;
		}
	}
	for (size_t i = 0; i < 8; i++) {
		if (!next_word(&rest, &w[i])) {
			*why = CAND_SYNTAX;
			return PP_EINVAL;
		}
	}
	if (w[0].n == 0 || w[0].n > PP_SDP_FOUNDATION_MAX ||
	    !pp__sdp_ice_chars(w[0].p, w[0].n)) {
		*why = "foundation must be 1-"
		    PP__SDP_STR(PP_SDP_FOUNDATION_MAX)
		    " characters from [A-Za-z0-9+/]";
		return PP_EINVAL;
	}
	span_copy(c->foundation, w[0]);
	if (span_u64(w[1], 256, &v) < 0 || v == 0) {
		*why = "component id must be 1-256";
		return PP_EINVAL;
	}
	c->component = (unsigned)v;
	if (!span_token(w[2], PP_SDP_TOKEN_MAX)) {
		*why = "transport is not a token";
		return PP_EINVAL;
	}
	c->transport = span_is_nocase(w[2], "udp") ? PP_SDP_UDP :
	    span_is_nocase(w[2], "tcp") ? PP_SDP_TCP : PP_SDP_TRANSPORT_OTHER;
	if (span_u64(w[3], UINT32_MAX, &v) < 0) {
		*why = "priority must be 0-4294967295";
		return PP_EINVAL;
	}
	c->priority = (uint32_t)v;
	if (parse_address(w[4], c->address, &c->addr_kind) < 0) {
		*why = "connection address is neither an IP address nor a "
		    "host name";
		return PP_EINVAL;
	}
	if (span_port(w[5], &c->port) < 0) {
		*why = "port must be 0-65535";
		return PP_EINVAL;
	}
	if (!span_is_nocase(w[6], "typ")) {
		*why = CAND_SYNTAX;
		return PP_EINVAL;
	}
	if (!span_token(w[7], PP_SDP_TOKEN_MAX)) {
		*why = "candidate type is not a token";
		return PP_EINVAL;
	}
	c->type = PP_SDP_CAND_OTHER;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (span_is_nocase(w[7], types[i]))
			c->type = (enum pp_sdp_cand_type)i;

	/* "typ" and a known type are keywords; the rest is kept as written. */
	for (size_t i = 0; i < 8; i++)
		raw_word(&r, w[i],
		    i == 6 || (i == 7 && c->type != PP_SDP_CAND_OTHER));
	if ((rc = cand_extensions(rest, &r, why)) < 0)
		return rc;
	if (r.overflow) {
		*why = "longer than " PP__SDP_STR(PP_SDP_CAND_MAX) " bytes";
		return PP_ETOOBIG;
	}
	return 0;
}

int
pp__sdp_cand_value(const char **s, size_t *n)
{
	static const char prefix[] = "candidate:";

	if (*n >= 2 && memcmp(*s, "a=", 2) == 0)
		*s += 2, *n -= 2;
	if (*n >= 1 && (*s)[*n - 1] == '\n') {
		(*n)--;
		if (*n >= 1 && (*s)[*n - 1] == '\r')
			(*n)--;
	}
	if (*n < sizeof(prefix) - 1 ||
	    memcmp(*s, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	*s += sizeof(prefix) - 1;
	*n -= sizeof(prefix) - 1;
	return 0;
}

int
pp_sdp_parse_candidate(const char *s, size_t len, struct pp_sdp_candidate *c,
    char *err, size_t errlen)
{
	const char *why;
	int rc;

	memset(c, 0, sizeof(*c));
	if (len > PP_SDP_LINE_MAX)
		return pp__sdp_errorf(err, errlen, PP_ETOOBIG,
		    "candidate: longer than %d bytes", PP_SDP_LINE_MAX);
	if (pp__sdp_cand_value(&s, &len) < 0)
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "candidate: must start with \"candidate:\"");
	if ((rc = pp__sdp_cand_parse(s, len, c, &why)) < 0) {
		memset(c, 0, sizeof(*c));
		return pp__sdp_errorf(err, errlen, rc, "candidate: %s", why);
	}
	return 0;
}
