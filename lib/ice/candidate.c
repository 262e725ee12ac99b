/*
 * The grammar (RFC 8839 section 5.1):
 *
 *   candidate:<foundation> <component-id> <transport> <priority>
 *       <connection-address> <port> typ <cand-type>
 *       [raddr <addr> rport <port>] *(<ext-name> <ext-value>)
 *
 * The whole value is length-checked and byte-checked first (printable ASCII
 * and single spaces only), then split into tokens by a bounded reader that
 * never looks past the end.  Nothing is copied out before it is validated.
 */
#include "candidate.h"
#include "base/error.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct reader {
	const char *p, *end;
};

struct token {
	const char *s;
	size_t len;
};

static const char *const type_names[] = {
	[PP_ICE_CAND_HOST] = "host",
	[PP_ICE_CAND_SRFLX] = "srflx",
	[PP_ICE_CAND_PRFLX] = "prflx",
	[PP_ICE_CAND_RELAY] = "relay",
};

static const char *const tcptype_names[] = {
	[PP_ICE_TCP_NONE] = "",
	[PP_ICE_TCP_ACTIVE] = "active",
	[PP_ICE_TCP_PASSIVE] = "passive",
	[PP_ICE_TCP_SO] = "so",
};


const char *
pp_ice_cand_type_name(enum pp_ice_cand_type type)
{
	if ((unsigned)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "unknown";
	return type_names[type];
}

/*
 * Returns 0 with the next token, 1 at the end, or -1 on an empty token
 * (leading, trailing or doubled space).
 */
static int
next_token(struct reader *r, struct token *t)
{
	const char *sp;

	if (r->p == r->end)
		return 1;
	sp = memchr(r->p, ' ', (size_t)(r->end - r->p));
	t->s = r->p;
	t->len = sp ? (size_t)(sp - r->p) : (size_t)(r->end - r->p);
	if (t->len == 0)
		return -1;
	r->p = sp ? sp + 1 : r->end;
	if (sp && r->p == r->end)
		return -1;		/* trailing space */
	return 0;
}

static bool
tok_eq(const struct token *t, const char *lit)
{
	size_t n = strlen(lit);

	return t->len == n && memcmp(t->s, lit, n) == 0;
}

static bool
tok_caseeq(const struct token *t, const char *lit)
{
	size_t n = strlen(lit);

	if (t->len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char a = t->s[i], b = lit[i];

		if (a >= 'a' && a <= 'z')
			a = (char)(a - 'a' + 'A');
		if (b >= 'a' && b <= 'z')
			b = (char)(b - 'a' + 'A');
		if (a != b)
			return false;
	}
	return true;
}

static bool
is_ice_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || ch == '+' || ch == '/';
}

static bool
ice_chars(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!is_ice_char(s[i]))
			return false;
	return true;
}

/* Decimal of 1..maxdigits digits, no sign, value <= max. */
static bool
tok_uint(const struct token *t, size_t maxdigits, uint64_t max, uint64_t *v)
{
	uint64_t acc = 0;

	if (t->len == 0 || t->len > maxdigits)
		return false;
	for (size_t i = 0; i < t->len; i++) {
		if (t->s[i] < '0' || t->s[i] > '9')
			return false;
		acc = acc * 10 + (uint64_t)(t->s[i] - '0');
	}
	if (acc > max)
		return false;
	*v = acc;
	return true;
}

static bool
tok_port(const struct token *t, uint16_t *port)
{
	uint64_t v;

	if (!tok_uint(t, 5, 65535, &v))
		return false;
	*port = (uint16_t)v;
	return true;
}

/*
 * An IPv4 or IPv6 literal, printed back in canonical form.  Zone ids
 * ("fe80::1%eth0") are refused: they mean nothing to the peer.
 */
static bool
tok_ip(const struct token *t, char out[PP_ICE_ADDRSTRLEN], bool *unspec)
{
	char tmp[PP_ICE_ADDRSTRLEN];
	unsigned char bin[sizeof(struct in6_addr)];
	int af;

	if (t->len == 0 || t->len >= sizeof(tmp))
		return false;
	memcpy(tmp, t->s, t->len);
	tmp[t->len] = '\0';
	af = memchr(tmp, ':', t->len) ? AF_INET6 : AF_INET;
	if (inet_pton(af, tmp, bin) != 1)
		return false;
	if (!inet_ntop(af, bin, out, PP_ICE_ADDRSTRLEN))
		return false;
	if (unspec) {
		static const unsigned char zero[sizeof(struct in6_addr)];

		*unspec = memcmp(bin, zero, af == AF_INET ? 4 : 16) == 0;
	}
	return true;
}

static bool
tok_has_suffix(const struct token *t, const char *suffix)
{
	size_t n = strlen(suffix);

	if (t->len < n)
		return false;
	for (size_t i = 0; i < n; i++) {
		char a = t->s[t->len - n + i];

		if (a >= 'A' && a <= 'Z')
			a = (char)(a - 'A' + 'a');
		if (a != suffix[i])
			return false;
	}
	return true;
}

static int
fail(const char **why, const char *reason, int err)
{
	if (why)
		*why = reason;
	return err;
}

/* The next mandatory field; `missing` names it when the value ends early. */
static int
field(struct reader *r, struct token *t, const char *missing,
    const char **why)
{
	int rc = next_token(r, t);

	if (rc > 0)
		return fail(why, missing, PP_EINVAL);
	if (rc < 0)
		return fail(why, "empty field (stray space)", PP_EINVAL);
	return 0;
}

/* The extension attributes after "typ <type>", as name/value pairs. */
static int
parse_extensions(struct reader *r, struct pp_ice_cand *c, const char **why)
{
	struct token name, val;
	bool have_raddr = false, have_rport = false, have_tcptype = false;
	int rc;

	while ((rc = next_token(r, &name)) == 0) {
		if (next_token(r, &val) != 0)
			return fail(why, "extension attribute without a value",
			    PP_EINVAL);
		if (tok_eq(&name, "raddr")) {
			if (have_raddr)
				return fail(why, "duplicate raddr", PP_EINVAL);
			if (!tok_ip(&val, c->raddr, NULL))
				return fail(why, "raddr is not an IP address",
				    PP_EINVAL);
			have_raddr = true;
		} else if (tok_eq(&name, "rport")) {
			if (have_rport)
				return fail(why, "duplicate rport", PP_EINVAL);
			if (!tok_port(&val, &c->rport))
				return fail(why, "rport is not a port number",
				    PP_EINVAL);
			have_rport = true;
		} else if (tok_eq(&name, "tcptype")) {
			if (have_tcptype)
				return fail(why, "duplicate tcptype", PP_EINVAL);
			if (tok_eq(&val, "active"))
				c->tcptype = PP_ICE_TCP_ACTIVE;
			else if (tok_eq(&val, "passive"))
				c->tcptype = PP_ICE_TCP_PASSIVE;
			else if (tok_eq(&val, "so"))
				c->tcptype = PP_ICE_TCP_SO;
			else
				return fail(why, "unknown tcptype", PP_EINVAL);
			have_tcptype = true;
		} else if (tok_eq(&name, "ufrag")) {
			if (c->ufrag[0])
				return fail(why, "duplicate ufrag", PP_EINVAL);
			if (pp_ice_check_ufrag(val.s, val.len) != 0)
				return fail(why, "ufrag extension is not a valid "
				    "ICE ufrag", PP_EINVAL);
			memcpy(c->ufrag, val.s, val.len);
			c->ufrag[val.len] = '\0';
		}
		/* Other extensions (generation, network-id, ...) are ignored. */
	}
	if (rc < 0)
		return fail(why, "empty field (stray space)", PP_EINVAL);
	if (have_raddr != have_rport)
		return fail(why, "raddr and rport must come together", PP_EINVAL);
	if (c->proto == PP_ICE_PROTO_TCP && !have_tcptype)
		return fail(why, "TCP candidate without tcptype", PP_EINVAL);
	if (c->proto == PP_ICE_PROTO_UDP && have_tcptype)
		return fail(why, "tcptype on a UDP candidate", PP_EINVAL);
	return 0;
}

int
pp_ice_cand_parse(const char *s, size_t len, struct pp_ice_cand *c,
    const char **why)
{
	static const char prefix[] = "candidate:";
	struct reader r;
	struct token t;
	uint64_t v;
	bool unspec;

	if (len > PP_ICE_CAND_MAX)
		return fail(why, "candidate longer than 512 bytes", PP_ETOOBIG);
	if (len >= 1 && s[len - 1] == '\n')
		len--;
	if (len >= 1 && s[len - 1] == '\r')
		len--;
	if (len >= 2 && s[0] == 'a' && s[1] == '=') {
		s += 2;
		len -= 2;
	}
	if (len < sizeof(prefix) - 1 || memcmp(s, prefix, sizeof(prefix) - 1))
		return fail(why, "does not start with \"candidate:\"", PP_EINVAL);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return fail(why, "control or non-ASCII byte", PP_EINVAL);

	memset(c, 0, sizeof(*c));
	r.p = s + sizeof(prefix) - 1;
	r.end = s + len;

	if (field(&r, &t, "no foundation", why))
		return PP_EINVAL;
	if (t.len > PP_ICE_FOUNDATION_MAX || !ice_chars(t.s, t.len))
		return fail(why, "foundation is not 1-32 ice-chars", PP_EINVAL);
	memcpy(c->foundation, t.s, t.len);

	if (field(&r, &t, "ends after the foundation (no component id)", why))
		return PP_EINVAL;
	if (!tok_uint(&t, 3, 256, &v) || v == 0)
		return fail(why, "component id is not 1-256", PP_EINVAL);
	c->component = (unsigned)v;

	if (field(&r, &t, "ends before the transport", why))
		return PP_EINVAL;
	if (tok_caseeq(&t, "UDP"))
		c->proto = PP_ICE_PROTO_UDP;
	else if (tok_caseeq(&t, "TCP"))
		c->proto = PP_ICE_PROTO_TCP;
	else
		return fail(why, "transport is neither UDP nor TCP", PP_EINVAL);

	if (field(&r, &t, "ends before the priority", why))
		return PP_EINVAL;
	if (!tok_uint(&t, 10, UINT32_MAX, &v) || v == 0)
		return fail(why, "priority is not 1-4294967295", PP_EINVAL);
	c->priority = (uint32_t)v;

	if (field(&r, &t, "ends before the connection address", why))
		return PP_EINVAL;
	if (!tok_ip(&t, c->addr, &unspec)) {
		if (tok_has_suffix(&t, ".local"))
			return fail(why, "mDNS (.local) candidates are not "
			    "supported", PP_EINVAL);
		return fail(why, "connection address is not an IP address",
		    PP_EINVAL);
	}
	if (unspec)
		return fail(why, "unspecified connection address", PP_EINVAL);

	if (field(&r, &t, "ends before the port", why))
		return PP_EINVAL;
	if (!tok_port(&t, &c->port))
		return fail(why, "port is not 0-65535", PP_EINVAL);

	if (field(&r, &t, "ends before \"typ\"", why))
		return PP_EINVAL;
	if (!tok_eq(&t, "typ"))
		return fail(why, "\"typ\" expected after the port", PP_EINVAL);
	if (field(&r, &t, "ends before the candidate type", why))
		return PP_EINVAL;
	if (tok_eq(&t, "host"))
		c->type = PP_ICE_CAND_HOST;
	else if (tok_eq(&t, "srflx"))
		c->type = PP_ICE_CAND_SRFLX;
	else if (tok_eq(&t, "prflx"))
		c->type = PP_ICE_CAND_PRFLX;
	else if (tok_eq(&t, "relay"))
		c->type = PP_ICE_CAND_RELAY;
	else
		return fail(why, "unknown candidate type", PP_EINVAL);

	if (parse_extensions(&r, c, why) != 0)
		return PP_EINVAL;
	/* Active TCP candidates carry port 9 or 0 (RFC 6544); UDP never 0. */
	if (c->port == 0 && c->proto == PP_ICE_PROTO_UDP)
		return fail(why, "port 0 on a UDP candidate", PP_EINVAL);
	return 0;
}

int
pp_ice_cand_format(const struct pp_ice_cand *c, char *buf, size_t size)
{
	int n, m = 0;

	n = snprintf(buf, size, "candidate:%s %u %s %u %s %u typ %s",
	    c->foundation, c->component,
	    c->proto == PP_ICE_PROTO_TCP ? "TCP" : "UDP",
	    (unsigned)c->priority, c->addr, (unsigned)c->port,
	    pp_ice_cand_type_name(c->type));
	if (n < 0 || (size_t)n >= size)
		return PP_ETOOBIG;
	if (c->raddr[0]) {
		m = snprintf(buf + n, size - (size_t)n, " raddr %s rport %u",
		    c->raddr, (unsigned)c->rport);
		if (m < 0 || (size_t)m >= size - (size_t)n)
			return PP_ETOOBIG;
		n += m;
	}
	if (c->proto == PP_ICE_PROTO_TCP &&
	    (unsigned)c->tcptype < sizeof(tcptype_names) / sizeof(tcptype_names[0])) {
		m = snprintf(buf + n, size - (size_t)n, " tcptype %s",
		    tcptype_names[c->tcptype]);
		if (m < 0 || (size_t)m >= size - (size_t)n)
			return PP_ETOOBIG;
		n += m;
	}
	return n;
}

int
pp_ice_check_ufrag(const char *s, size_t len)
{
	if (len < 4 || len > PP_ICE_UFRAG_MAX || !ice_chars(s, len))
		return PP_EINVAL;
	return 0;
}

int
pp_ice_check_pwd(const char *s, size_t len)
{
	if (len < 22 || len > PP_ICE_PWD_MAX || !ice_chars(s, len))
		return PP_EINVAL;
	return 0;
}
