/*
 * The SDP parser.  Two passes over the bytes: the first checks only sizes and
 * characters (total size, line count, line length, control bytes), so the
 * second, which interprets, never meets an oversized or binary line.  Every
 * value is read through a span (pointer + length) and copied only after its
 * length was checked against the field it goes to.
 */
#include "sdp.h"
#include "sdp_int.h"
#include "base/error.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fmt_err(char *err, size_t errlen, const char *prefix,
    const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void
fmt_err(char *err, size_t errlen, const char *prefix, const char *fmt,
    va_list ap)
{
	int n;

	if (err == NULL || errlen == 0)
		return;
	n = snprintf(err, errlen, "%s", prefix);
	if (n >= 0 && (size_t)n < errlen)
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

int
pp__sdp_errorf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fmt_err(err, errlen, "", fmt, ap);
	va_end(ap);
	return rc;
}

/* Attributes seen at the current level, to refuse duplicates and to know
 * which effective values come from the session level. */
enum {
	SEEN_UFRAG = 1 << 0,
	SEEN_PWD = 1 << 1,
	SEEN_SETUP = 1 << 2,
	SEEN_OPTIONS = 1 << 3,
	SEEN_DIR = 1 << 4,
	SEEN_MID = 1 << 5,
	SEEN_SCTP_PORT = 1 << 6,
	SEEN_MAX_MSG = 1 << 7,
	SEEN_EOC = 1 << 8,
};

struct parser {
	struct pp_sdp *sdp;
	struct pp_sdp_media *m;			/* NULL at session level */
	struct pp_sdp_transport_params *t;	/* of the current level */
	unsigned *seen;				/* of the current level */
	unsigned session_seen;
	unsigned media_seen[PP_SDP_MAX_MEDIA];
	size_t cand_cap;			/* of m->candidates */
	enum pp_sdp_dir session_dir;
	int saw_origin;
	unsigned lineno;			/* 0: not about one line */
	char *err;
	size_t errlen;
};

static int fail(struct parser *p, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fail(struct parser *p, int rc, const char *fmt, ...)
{
	char prefix[32];
	va_list ap;

	if (p->lineno > 0)
		snprintf(prefix, sizeof(prefix), "sdp line %u: ", p->lineno);
	else
		snprintf(prefix, sizeof(prefix), "sdp: ");
	va_start(ap, fmt);
	fmt_err(p->err, p->errlen, prefix, fmt, ap);
	va_end(ap);
	return rc;
}

struct lines {
	const char *p;
	size_t left;
};

/* The next line without its LF and one CR before it; 0 at the end. */
static int
next_line(struct lines *it, struct span *line)
{
	const char *nl;
	size_t n;

	if (it->left == 0)
		return 0;
	nl = memchr(it->p, '\n', it->left);
	n = nl ? (size_t)(nl - it->p) : it->left;
	line->p = it->p;
	line->n = n;
	if (n > 0 && it->p[n - 1] == '\r')
		line->n--;
	n += nl != NULL;
	it->p += n;
	it->left -= n;
	return 1;
}

/* Pass 1: sizes and characters only. */
static int
check_shape(struct parser *p, const char *buf, size_t len)
{
	struct lines it = { buf, len };
	struct span line;

	if (len > PP_SDP_MAX_SIZE)
		return fail(p, PP_ETOOBIG, "%zu bytes exceeds the %d-byte cap",
		    len, PP_SDP_MAX_SIZE);
	while (next_line(&it, &line)) {
		p->lineno++;
		if (p->lineno > PP_SDP_MAX_LINES)
			return fail(p, PP_ETOOBIG, "more than %d lines",
			    PP_SDP_MAX_LINES);
		if (line.n > PP_SDP_LINE_MAX)
			return fail(p, PP_ETOOBIG, "longer than %d bytes",
			    PP_SDP_LINE_MAX);
		for (size_t i = 0; i < line.n; i++) {
			unsigned char c = (unsigned char)line.p[i];

			if (c == '\r')
				return fail(p, PP_EINVAL, "carriage return "
				    "not followed by line feed");
			if (is_control(c))
				return fail(p, PP_EINVAL,
				    "control character 0x%02x", c);
		}
	}
	p->lineno = 0;
	return 0;
}

static int
parse_origin(struct parser *p, struct span v)
{
	struct span w[6], extra;

	if (p->m != NULL)
		return fail(p, PP_EINVAL, "o= inside a media section");
	if (p->saw_origin)
		return fail(p, PP_EINVAL, "more than one o= line");
	for (size_t i = 0; i < 6; i++)
		if (!next_word(&v, &w[i]))
			goto bad;
	if (next_word(&v, &extra))
		goto bad;
	if (span_u64(w[1], UINT64_MAX, &p->sdp->session_id) < 0 ||
	    span_u64(w[2], UINT64_MAX, &p->sdp->session_version) < 0)
		return fail(p, PP_EINVAL, "o=: session id and version must be "
		    "decimal 64-bit numbers");
	p->saw_origin = 1;
	return 0;
bad:
	return fail(p, PP_EINVAL, "o=: expected <username> <sess-id> "
	    "<sess-version> <nettype> <addrtype> <address>");
}

static const struct {
	const char *name;
	enum pp_sdp_kind kind;
} kinds[] = {
	{ "audio", PP_SDP_AUDIO },
	{ "video", PP_SDP_VIDEO },
	{ "application", PP_SDP_APPLICATION },
};

static int
parse_fmt_list(struct parser *p, struct pp_sdp_media *m, struct span rest)
{
	struct span w;
	size_t len = 0;

	while (next_word(&rest, &w)) {
		if (!pp__sdp_token(w.p, w.n))
			return fail(p, PP_EINVAL, "m=: format is not a token");
		if (len + (len > 0) + w.n > PP_SDP_FMT_MAX)
			return fail(p, PP_ETOOBIG,
			    "m=: format list longer than %d bytes",
			    PP_SDP_FMT_MAX);
		if (len > 0)
			m->fmt[len++] = ' ';
		memcpy(m->fmt + len, w.p, w.n);
		len += w.n;
	}
	m->fmt[len] = '\0';
	return len > 0 ? 0 : fail(p, PP_EINVAL,
	    "m=: expected <media> <port> <proto> <format> ...");
}

static void
detect_datachannel(struct pp_sdp_media *m)
{
	struct span rest = { m->fmt, strlen(m->fmt) }, first;
	uint16_t port;

	if (m->kind != PP_SDP_APPLICATION || !next_word(&rest, &first))
		return;
	if (strcmp(m->proto, "UDP/DTLS/SCTP") == 0 &&
	    span_is(first, "webrtc-datachannel")) {
		m->dc = PP_SDP_DC_CURRENT;
	} else if (strcmp(m->proto, "DTLS/SCTP") == 0 &&
	    span_port(first, &port) == 0 && port != 0) {
		m->dc = PP_SDP_DC_LEGACY;
		m->sctp_port = port;
	}
}

static int
parse_media(struct parser *p, struct span v)
{
	struct pp_sdp *sdp = p->sdp;
	struct pp_sdp_media *media, *m;
	struct span name, port, proto, count = { NULL, 0 };
	const char *slash;
	int rc;

	if (sdp->nmedia == PP_SDP_MAX_MEDIA)
		return fail(p, PP_ETOOBIG, "m=: more than %d m-lines",
		    PP_SDP_MAX_MEDIA);
	media = realloc(sdp->media, (sdp->nmedia + 1) * sizeof(*media));
	if (media == NULL)
		return fail(p, -ENOMEM, "out of memory");
	sdp->media = media;
	m = &media[sdp->nmedia];
	memset(m, 0, sizeof(*m));
	sdp->nmedia++;
	p->m = m;
	p->t = &m->t;
	p->seen = &p->media_seen[sdp->nmedia - 1];
	p->cand_cap = 0;

	if (!next_word(&v, &name) || !next_word(&v, &port) ||
	    !next_word(&v, &proto))
		return fail(p, PP_EINVAL,
		    "m=: expected <media> <port> <proto> <format> ...");
	if (!span_token(name, PP_SDP_TOKEN_MAX))
		return fail(p, PP_EINVAL, "m=: media is not a token of 1-%d "
		    "characters", PP_SDP_TOKEN_MAX);
	span_copy(m->media, name);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (span_is(name, kinds[i].name))
			m->kind = kinds[i].kind;
	if ((slash = memchr(port.p, '/', port.n)) != NULL) {
		count.p = slash + 1;
		count.n = port.n - (size_t)(count.p - port.p);
		port.n = (size_t)(slash - port.p);
	}
	if (span_port(port, &m->port) < 0 ||
	    (count.p != NULL && span_u64(count, 65535, &(uint64_t){0}) < 0))
		return fail(p, PP_EINVAL, "m=: port must be 0-65535");
	for (size_t i = 0; i < proto.n; i++)
		if (!token_char((unsigned char)proto.p[i]) && proto.p[i] != '/')
			goto bad_proto;
	if (proto.n == 0 || proto.n > PP_SDP_TOKEN_MAX)
		goto bad_proto;
	span_copy(m->proto, proto);
	if ((rc = parse_fmt_list(p, m, v)) < 0)
		return rc;
	detect_datachannel(m);
	return 0;
bad_proto:
	return fail(p, PP_EINVAL, "m=: proto is not 1-%d token characters "
	    "and '/'", PP_SDP_TOKEN_MAX);
}

/* Refuses a second occurrence of an attribute at the same level. */
static int
once(struct parser *p, unsigned flag, const char *name)
{
	if (*p->seen & flag)
		return fail(p, PP_EINVAL, "a=%s: more than one at this level",
		    name);
	*p->seen |= flag;
	return 0;
}

int
pp_sdp_ice_ufrag_valid(const char *s, size_t n)
{
	return n >= 4 && n <= PP_SDP_UFRAG_MAX && pp__sdp_ice_chars(s, n);
}

int
pp_sdp_ice_pwd_valid(const char *s, size_t n)
{
	return n >= 22 && n <= PP_SDP_PWD_MAX && pp__sdp_ice_chars(s, n);
}

static int
a_ufrag(struct parser *p, const char *name, struct span v)
{
	int rc;

	if ((rc = once(p, SEEN_UFRAG, name)) < 0)
		return rc;
	if (!pp_sdp_ice_ufrag_valid(v.p, v.n))
		return fail(p, PP_EINVAL, "a=ice-ufrag: expected 4-%d "
		    "characters from [A-Za-z0-9+/]", PP_SDP_UFRAG_MAX);
	span_copy(p->t->ice_ufrag, v);
	return 0;
}

static int
a_pwd(struct parser *p, const char *name, struct span v)
{
	int rc;

	if ((rc = once(p, SEEN_PWD, name)) < 0)
		return rc;
	if (!pp_sdp_ice_pwd_valid(v.p, v.n))
		return fail(p, PP_EINVAL, "a=ice-pwd: expected 22-%d "
		    "characters from [A-Za-z0-9+/]", PP_SDP_PWD_MAX);
	span_copy(p->t->ice_pwd, v);
	return 0;
}

static int
a_options(struct parser *p, const char *name, struct span v)
{
	struct span w;

	*p->seen |= SEEN_OPTIONS;
	while (next_word(&v, &w))
		if (span_is(w, "trickle"))
			p->t->ice_trickle = 1;
	return 0;
}

static int
hex_val(int c)
{
	if (is_digit(c))
		return c - '0';
	c = lower(c);
	return (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
}

/* "AB:CD:..." into out; returns the byte count, or -1 if malformed/long. */
static int
parse_hex_pairs(struct span v, uint8_t out[PP_SDP_FP_MAX])
{
	size_t n = 0;

	for (size_t i = 0; i < v.n; i += 3) {
		int hi, lo;

		if (i + 2 > v.n || n == PP_SDP_FP_MAX)
			return -1;
		hi = hex_val((unsigned char)v.p[i]);
		lo = hex_val((unsigned char)v.p[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		if (i + 2 < v.n && v.p[i + 2] != ':')
			return -1;
		if (i + 3 == v.n)	/* trailing ':' */
			return -1;
		out[n++] = (uint8_t)(hi << 4 | lo);
	}
	return n > 0 ? (int)n : -1;
}

static const struct {
	const char *name;
	size_t len;
} hashes[] = {
	{ "md2", 16 }, { "md5", 16 }, { "sha-1", 20 }, { "sha-224", 28 },
	{ "sha-256", 32 }, { "sha-384", 48 }, { "sha-512", 64 },
};

static int
a_fingerprint(struct parser *p, const char *name, struct span v)
{
	struct pp_sdp_transport_params *t = p->t;
	struct pp_sdp_fingerprint *fp;
	struct span hash, value, extra;
	size_t i;
	int n;

	if (!next_word(&v, &hash) || !next_word(&v, &value) ||
	    next_word(&v, &extra))
		return fail(p, PP_EINVAL,
		    "a=fingerprint: expected <hash-function> <hex byte pairs>");
	if (!span_token(hash, PP_SDP_TOKEN_MAX))
		return fail(p, PP_EINVAL, "a=fingerprint: hash function is not "
		    "a token of 1-%d characters", PP_SDP_TOKEN_MAX);
	if (t->nfingerprints == PP_SDP_MAX_FINGERPRINTS)
		return fail(p, PP_ETOOBIG, "a=fingerprint: more than %d at "
		    "this level", PP_SDP_MAX_FINGERPRINTS);
	fp = &t->fingerprints[t->nfingerprints];
	for (i = 0; i < hash.n; i++)
		fp->hash[i] = (char)lower((unsigned char)hash.p[i]);
	fp->hash[i] = '\0';
	n = parse_hex_pairs(value, fp->value);
	for (i = 0; i < sizeof(hashes) / sizeof(hashes[0]); i++) {
		if (strcmp(fp->hash, hashes[i].name) != 0)
			continue;
		if (n < 0 || (size_t)n != hashes[i].len)
			goto bad_len;
		break;
	}
	if (n < 0) {
		memset(fp, 0, sizeof(*fp));
		return fail(p, PP_EINVAL, "a=fingerprint: expected hex byte "
		    "pairs separated by ':'");
	}
	fp->len = (size_t)n;
	t->nfingerprints++;
	return 0;
bad_len:
	memset(fp, 0, sizeof(*fp));
	return fail(p, PP_EINVAL, "a=fingerprint: expected %zu hex byte pairs "
	    "for %s", hashes[i].len, hashes[i].name);
}

static const char *const setup_names[] = {
	[PP_SDP_SETUP_NONE] = "none",
	[PP_SDP_SETUP_ACTPASS] = "actpass",
	[PP_SDP_SETUP_ACTIVE] = "active",
	[PP_SDP_SETUP_PASSIVE] = "passive",
	[PP_SDP_SETUP_HOLDCONN] = "holdconn",
};

const char *
pp_sdp_setup_name(enum pp_sdp_setup s)
{
	if ((unsigned)s >= sizeof(setup_names) / sizeof(setup_names[0]))
		return "?";
	return setup_names[s];
}

static int
a_setup(struct parser *p, const char *name, struct span v)
{
	int rc;

	if ((rc = once(p, SEEN_SETUP, name)) < 0)
		return rc;
	for (size_t i = PP_SDP_SETUP_ACTPASS; i <= PP_SDP_SETUP_HOLDCONN; i++) {
		if (span_is(v, setup_names[i])) {
			p->t->setup = (enum pp_sdp_setup)i;
			return 0;
		}
	}
	return fail(p, PP_EINVAL,
	    "a=setup: expected actpass, active, passive or holdconn");
}

static int
a_direction(struct parser *p, const char *name, struct span v)
{
	static const char *const dirs[] = {
		[PP_SDP_SENDRECV] = "sendrecv", [PP_SDP_SENDONLY] = "sendonly",
		[PP_SDP_RECVONLY] = "recvonly", [PP_SDP_INACTIVE] = "inactive",
	};
	enum pp_sdp_dir d = PP_SDP_SENDRECV;

	if (*p->seen & SEEN_DIR)
		return fail(p, PP_EINVAL, "a=%s: more than one direction "
		    "attribute at this level", name);
	*p->seen |= SEEN_DIR;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (strcmp(name, dirs[i]) == 0)
			d = (enum pp_sdp_dir)i;
	if (p->m)
		p->m->direction = d;
	else
		p->session_dir = d;
	return 0;
}

static int
a_end_of_candidates(struct parser *p, const char *name, struct span v)
{
	*p->seen |= SEEN_EOC;
	if (p->m)
		p->m->end_of_candidates = 1;
	return 0;
}

static int
a_ice_lite(struct parser *p, const char *name, struct span v)
{
	p->sdp->ice_lite = 1;
	return 0;
}

static int
a_group(struct parser *p, const char *name, struct span v)
{
	struct pp_sdp *sdp = p->sdp;
	struct span sem, mid;

	if (!next_word(&v, &sem) || !span_is(sem, "BUNDLE") || sdp->has_bundle)
		return 0;	/* other semantics, or a second BUNDLE group */
	sdp->has_bundle = 1;
	while (next_word(&v, &mid)) {
		if (!span_token(mid, PP_SDP_MID_MAX))
			return fail(p, PP_EINVAL, "a=group: mid is not a token "
			    "of 1-%d characters", PP_SDP_MID_MAX);
		if (sdp->nbundle == PP_SDP_MAX_MEDIA)
			return fail(p, PP_ETOOBIG, "a=group: more than %d mids "
			    "in BUNDLE", PP_SDP_MAX_MEDIA);
		span_copy(sdp->bundle[sdp->nbundle++], mid);
	}
	return 0;
}

static int
a_mid(struct parser *p, const char *name, struct span v)
{
	struct pp_sdp *sdp = p->sdp;
	int rc;

	if ((rc = once(p, SEEN_MID, name)) < 0)
		return rc;
	if (!span_token(v, PP_SDP_MID_MAX))
		return fail(p, PP_EINVAL, "a=mid: expected a token of 1-%d "
		    "characters", PP_SDP_MID_MAX);
	for (size_t i = 0; i + 1 < sdp->nmedia; i++)
		if (span_is(v, sdp->media[i].mid))
			return fail(p, PP_EINVAL, "a=mid: same as the mid of "
			    "m-line %zu", i + 1);
	span_copy(p->m->mid, v);
	return 0;
}

static int
a_sctp_port(struct parser *p, const char *name, struct span v)
{
	int rc;

	if ((rc = once(p, SEEN_SCTP_PORT, name)) < 0)
		return rc;
	if (span_port(v, &p->m->sctp_port) < 0 || p->m->sctp_port == 0)
		return fail(p, PP_EINVAL,
		    "a=sctp-port: expected a port 1-65535");
	return 0;
}

static int
a_max_message_size(struct parser *p, const char *name, struct span v)
{
	int rc;

	if ((rc = once(p, SEEN_MAX_MSG, name)) < 0)
		return rc;
	if (span_u64(v, UINT64_MAX, &p->m->max_message_size) < 0)
		return fail(p, PP_EINVAL,
		    "a=max-message-size: expected a decimal 64-bit number");
	return 0;
}

static int
a_sctpmap(struct parser *p, const char *name, struct span v)
{
	struct pp_sdp_media *m = p->m;
	struct span port, proto, streams = { NULL, 0 }, extra;
	uint16_t nport, nstreams = 0;

	if (!next_word(&v, &port) || !next_word(&v, &proto) ||
	    (next_word(&v, &streams) && next_word(&v, &extra)) ||
	    span_port(port, &nport) < 0 || nport == 0 ||
	    (streams.p != NULL && (span_port(streams, &nstreams) < 0 ||
	    nstreams == 0)))
		return fail(p, PP_EINVAL, "a=sctpmap: expected <port 1-65535> "
		    "<protocol> [<streams 1-65535>]");
	/* Only the association the m-line's format names is ours. */
	if (m->dc == PP_SDP_DC_LEGACY && nport == m->sctp_port &&
	    span_is(proto, "webrtc-datachannel"))
		m->sctp_streams = nstreams;
	return 0;
}

static int
a_candidate(struct parser *p, const char *name, struct span v)
{
	struct pp_sdp_media *m = p->m;
	struct pp_sdp_candidate *c;
	const char *why;
	int rc;

	if (m->ncandidates == PP_SDP_MAX_CANDIDATES)
		return fail(p, PP_ETOOBIG, "a=candidate: more than %d in one "
		    "m-line", PP_SDP_MAX_CANDIDATES);
	if (m->ncandidates == p->cand_cap) {
		size_t cap = p->cand_cap ? p->cand_cap * 2 : 4;

		if (cap > PP_SDP_MAX_CANDIDATES)
			cap = PP_SDP_MAX_CANDIDATES;
		c = realloc(m->candidates, cap * sizeof(*c));
		if (c == NULL)
			return fail(p, -ENOMEM, "out of memory");
		m->candidates = c;
		p->cand_cap = cap;
	}
	c = &m->candidates[m->ncandidates];
	if ((rc = pp__sdp_cand_parse(v.p, v.n, c, &why)) < 0)
		return fail(p, rc, "a=candidate: %s", why);
	m->ncandidates++;
	return 0;
}

static int
a_rtpmap(struct parser *p, const char *name, struct span v)
{
	struct pp_sdp_media *m = p->m;

	/* Kept only to be repeated in a rejecting answer: no need to fail. */
	if (m->rtpmap[0] == '\0' && v.n > 0 && v.n < sizeof(m->rtpmap))
		span_copy(m->rtpmap, v);
	return 0;
}

enum { AT_SESSION = 1, AT_MEDIA = 2, AT_BOTH = 3 };

static const struct {
	const char *name;
	unsigned where;
	int (*fn)(struct parser *, const char *, struct span);
} attrs[] = {
	{ "ice-ufrag", AT_BOTH, a_ufrag },
	{ "ice-pwd", AT_BOTH, a_pwd },
	{ "ice-options", AT_BOTH, a_options },
	{ "ice-lite", AT_SESSION, a_ice_lite },
	{ "fingerprint", AT_BOTH, a_fingerprint },
	{ "setup", AT_BOTH, a_setup },
	{ "group", AT_SESSION, a_group },
	{ "mid", AT_MEDIA, a_mid },
	{ "sendrecv", AT_BOTH, a_direction },
	{ "sendonly", AT_BOTH, a_direction },
	{ "recvonly", AT_BOTH, a_direction },
	{ "inactive", AT_BOTH, a_direction },
	{ "sctp-port", AT_MEDIA, a_sctp_port },
	{ "max-message-size", AT_MEDIA, a_max_message_size },
	{ "sctpmap", AT_MEDIA, a_sctpmap },
	{ "candidate", AT_MEDIA, a_candidate },
	{ "end-of-candidates", AT_BOTH, a_end_of_candidates },
	{ "rtpmap", AT_MEDIA, a_rtpmap },
};

static int
parse_attribute(struct parser *p, struct span v)
{
	const char *colon = memchr(v.p, ':', v.n);
	struct span name = { v.p, colon ? (size_t)(colon - v.p) : v.n };
	struct span value = { colon ? colon + 1 : v.p + v.n, 0 };
	unsigned level = p->m ? AT_MEDIA : AT_SESSION;

	value.n = (size_t)(v.p + v.n - value.p);
	if (name.n == 0)
		return fail(p, PP_EINVAL, "a=: missing attribute name");
	for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
		if (!span_is(name, attrs[i].name))
			continue;
		if (!(attrs[i].where & level))
			return 0;	/* e.g. a=mid at session level */
		return attrs[i].fn(p, attrs[i].name, value);
	}
	return 0;	/* unknown attributes are ignored */
}

static int
parse_line(struct parser *p, struct span line, int *saw_version)
{
	struct span v;

	if (line.n < 2 || line.p[1] != '=' || line.p[0] < 'a' ||
	    line.p[0] > 'z')
		return fail(p, PP_EINVAL, "expected <type>=<value>");
	v = (struct span){ line.p + 2, line.n - 2 };
	if (!*saw_version) {
		if (line.p[0] != 'v' || !span_is(v, "0"))
			return fail(p, PP_EINVAL, "expected v=0 first");
		*saw_version = 1;
		return 0;
	}
	switch (line.p[0]) {
	case 'v':
		return fail(p, PP_EINVAL, "more than one v= line");
	case 'o':
		return parse_origin(p, v);
	case 'm':
		return parse_media(p, v);
	case 'a':
		return parse_attribute(p, v);
	default:
		return 0;	/* s=, t=, c=, b=, ...: nothing we need */
	}
}

/* Gives every m-line the session-level values it does not override. */
static void
inherit(struct parser *p)
{
	const struct pp_sdp_transport_params *s = &p->sdp->session;

	for (size_t i = 0; i < p->sdp->nmedia; i++) {
		struct pp_sdp_media *m = &p->sdp->media[i];
		unsigned seen = p->media_seen[i];

		if (!(seen & SEEN_UFRAG))
			memcpy(m->t.ice_ufrag, s->ice_ufrag,
			    sizeof(s->ice_ufrag));
		if (!(seen & SEEN_PWD))
			memcpy(m->t.ice_pwd, s->ice_pwd, sizeof(s->ice_pwd));
		if (!(seen & SEEN_OPTIONS))
			m->t.ice_trickle = s->ice_trickle;
		if (!(seen & SEEN_SETUP))
			m->t.setup = s->setup;
		if (m->t.nfingerprints == 0) {
			m->t.nfingerprints = s->nfingerprints;
			memcpy(m->t.fingerprints, s->fingerprints,
			    sizeof(s->fingerprints));
		}
		if (!(seen & SEEN_DIR))
			m->direction = p->session_dir;
		if (p->session_seen & SEEN_EOC)
			m->end_of_candidates = 1;
		if (m->dc != PP_SDP_DC_NONE && m->sctp_port == 0)
			m->sctp_port = PP_SDP_DEFAULT_SCTP_PORT;
		if (!(seen & SEEN_MAX_MSG))
			m->max_message_size = PP_SDP_DEFAULT_REMOTE_MAX_MSG;
	}
}

int
pp_sdp_parse(const char *buf, size_t len, struct pp_sdp *sdp, char *err,
    size_t errlen)
{
	struct parser p;
	struct lines it = { buf, len };
	struct span line;
	int saw_version = 0, rc;

	memset(sdp, 0, sizeof(*sdp));
	memset(&p, 0, sizeof(p));
	p.sdp = sdp;
	p.t = &sdp->session;
	p.seen = &p.session_seen;
	p.err = err;
	p.errlen = errlen;
	if (err != NULL && errlen > 0)
		err[0] = '\0';

	if ((rc = check_shape(&p, buf, len)) < 0)
		goto fail;
	while (next_line(&it, &line)) {
		p.lineno++;
		if (line.n == 0)
			continue;	/* tolerated: a trailing blank line */
		if ((rc = parse_line(&p, line, &saw_version)) < 0)
			goto fail;
	}
	p.lineno = 0;
	if (!saw_version) {
		rc = fail(&p, PP_EINVAL, "empty description");
		goto fail;
	}
	if (!p.saw_origin) {
		rc = fail(&p, PP_EINVAL, "missing o= line");
		goto fail;
	}
	inherit(&p);
	return 0;
fail:
	pp_sdp_fini(sdp);
	return rc;
}

void
pp_sdp_fini(struct pp_sdp *sdp)
{
	for (size_t i = 0; sdp->media != NULL && i < sdp->nmedia; i++) {
		free(sdp->media[i].candidates);
		OPENSSL_cleanse(sdp->media[i].t.ice_pwd,
		    sizeof(sdp->media[i].t.ice_pwd));
	}
	free(sdp->media);
	OPENSSL_cleanse(sdp->session.ice_pwd, sizeof(sdp->session.ice_pwd));
	memset(sdp, 0, sizeof(*sdp));
}

const uint8_t *
pp_sdp_sha256(const struct pp_sdp_media *m)
{
	for (size_t i = 0; i < m->t.nfingerprints; i++)
		if (strcmp(m->t.fingerprints[i].hash, "sha-256") == 0)
			return m->t.fingerprints[i].value;
	return NULL;
}

int
pp__sdp_check_transport(const struct pp_sdp_media *m, size_t index,
    char *err, size_t errlen)
{
	if (m->t.ice_ufrag[0] == '\0')
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp m-line %zu: no a=ice-ufrag", index + 1);
	if (m->t.ice_pwd[0] == '\0')
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp m-line %zu: no a=ice-pwd", index + 1);
	if (pp_sdp_sha256(m) == NULL)
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp m-line %zu: no sha-256 a=fingerprint", index + 1);
	if (m->t.setup == PP_SDP_SETUP_HOLDCONN)
		return pp__sdp_errorf(err, errlen, PP_EINVAL, "sdp m-line %zu: "
		    "a=setup:holdconn refuses the DTLS connection", index + 1);
	return 0;
}

int
pp_sdp_find_datachannel(const struct pp_sdp *sdp, char *err, size_t errlen)
{
	int rc;

	for (size_t i = 0; i < sdp->nmedia; i++) {
		const struct pp_sdp_media *m = &sdp->media[i];

		if (m->dc == PP_SDP_DC_NONE || m->port == 0)
			continue;
		if ((rc = pp__sdp_check_transport(m, i, err, errlen)) < 0)
			return rc;
		return (int)i;
	}
	return pp__sdp_errorf(err, errlen, PP_EINVAL, "sdp: no data-channel "
	    "m-line (UDP/DTLS/SCTP or DTLS/SCTP with a nonzero port)");
}
