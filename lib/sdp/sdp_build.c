/*
 * The SDP generator: our offers, and answers to a parsed offer.  Everything
 * that goes into the text is checked first (ICE credentials, mid, each
 * candidate through the same parser as a=candidate), so no parameter can
 * inject a line.
 */
#include "sdp.h"
#include "sdp_int.h"
#include "base/error.h"
#include "base/random.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing output buffer; it holds our ICE password, so it is wiped when
 * it moves or is dropped. */
struct sbuf {
	char *p;
	size_t len, cap;
	int rc;
};

static void sb_line(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Appends one formatted line and CRLF. */
static void
sb_line(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	size_t need;
	int n;

	if (b->rc < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->rc = -EINVAL;
		return;
	}
	need = b->len + (size_t)n + 3;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 2048;
		char *np;

		while (cap < need)
			cap *= 2;
		if ((np = malloc(cap)) == NULL) {
			b->rc = -ENOMEM;
			return;
		}
		if (b->p != NULL) {
			memcpy(np, b->p, b->len);
			OPENSSL_cleanse(b->p, b->cap);
			free(b->p);
		}
		b->p = np;
		b->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	memcpy(b->p + b->len, "\r\n", 3);
	b->len += 2;
}

static void
sb_drop(struct sbuf *b)
{
	if (b->p != NULL) {
		OPENSSL_cleanse(b->p, b->cap);
		free(b->p);
	}
	memset(b, 0, sizeof(*b));
}

static int
sb_finish(struct sbuf *b, char **out, size_t *outlen, char *err,
    size_t errlen)
{
	int rc = b->rc;

	if (rc < 0) {
		sb_drop(b);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "sdp: %s", pp_strerror(rc));
		return rc;
	}
	if (b->len > PP_SDP_MAX_SIZE) {
		sb_drop(b);
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "sdp: the description would "
			    "exceed the %d-byte cap", PP_SDP_MAX_SIZE);
		return PP_ETOOBIG;
	}
	*out = b->p;
	if (outlen != NULL)
		*outlen = b->len;
	return 0;
}

/* "candidate:..." or "a=candidate:..." from the caller, parsed. */
static int
local_candidate(const char *s, struct pp_sdp_candidate *c, const char **why)
{
	size_t n = strnlen(s, PP_SDP_LINE_MAX + 1);

	if (n > PP_SDP_LINE_MAX) {
		*why = "longer than " PP__SDP_STR(PP_SDP_LINE_MAX) " bytes";
		return PP_ETOOBIG;
	}
	if (pp__sdp_cand_value(&s, &n) < 0) {
		*why = "must start with \"candidate:\"";
		return PP_EINVAL;
	}
	return pp__sdp_cand_parse(s, n, c, why);
}

static int
check_params(const struct pp_sdp_params *p, char *err, size_t errlen)
{
	struct pp_sdp_candidate c;
	const char *why;
	int rc;

	if (p->ice_ufrag == NULL || !pp_sdp_ice_ufrag_valid(p->ice_ufrag,
	    strnlen(p->ice_ufrag, PP_SDP_UFRAG_MAX + 1)))
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp params: ice_ufrag: expected 4-%d characters from "
		    "[A-Za-z0-9+/]", PP_SDP_UFRAG_MAX);
	if (p->ice_pwd == NULL || !pp_sdp_ice_pwd_valid(p->ice_pwd,
	    strnlen(p->ice_pwd, PP_SDP_PWD_MAX + 1)))
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp params: ice_pwd: expected 22-%d characters from "
		    "[A-Za-z0-9+/]", PP_SDP_PWD_MAX);
	if (p->ncandidates > PP_SDP_MAX_CANDIDATES)
		return pp__sdp_errorf(err, errlen, PP_ETOOBIG,
		    "sdp params: more than %d candidates",
		    PP_SDP_MAX_CANDIDATES);
	if (p->ncandidates > 0 && p->candidates == NULL)
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp params: candidates is NULL");
	for (size_t i = 0; i < p->ncandidates; i++) {
		if (p->candidates[i] == NULL)
			return pp__sdp_errorf(err, errlen, PP_EINVAL,
			    "sdp params: candidate %zu is NULL", i);
		if ((rc = local_candidate(p->candidates[i], &c, &why)) < 0)
			return pp__sdp_errorf(err, errlen, rc,
			    "sdp params: candidate %zu: %s", i, why);
	}
	return 0;
}

static int
session_id(const struct pp_sdp_params *p, uint64_t *id)
{
	int rc;

	if (p->session_id != 0) {
		*id = p->session_id;
		return 0;
	}
	do {
		if ((rc = pp_random_bytes(id, sizeof(*id))) < 0)
			return rc;
		*id &= INT64_MAX;	/* JSEP: below 2^63 */
	} while (*id == 0);
	return 0;
}

/* bundle: the mids of a=group:BUNDLE, space-separated, or NULL for none. */
static void
session_header(struct sbuf *b, uint64_t id, uint64_t version,
    const char *bundle)
{
	sb_line(b, "v=0");
	sb_line(b, "o=- %" PRIu64 " %" PRIu64 " IN IP4 127.0.0.1", id, version);
	sb_line(b, "s=-");
	sb_line(b, "t=0 0");
	if (bundle != NULL)
		sb_line(b, "a=group:BUNDLE %s", bundle);
	sb_line(b, "a=msid-semantic: WMS");
}

/* Candidates and ICE/DTLS attributes; parameters were checked already. */
static void
transport_attrs(struct sbuf *b, const struct pp_sdp_params *p,
    enum pp_sdp_setup setup)
{
	char fp[PP_SDP_SHA256_LEN * 3];
	struct pp_sdp_candidate c;
	const char *why;

	for (size_t i = 0; i < p->ncandidates; i++)
		if (local_candidate(p->candidates[i], &c, &why) == 0)
			sb_line(b, "a=%s", c.raw);
	if (p->end_of_candidates)
		sb_line(b, "a=end-of-candidates");
	sb_line(b, "a=ice-ufrag:%s", p->ice_ufrag);
	sb_line(b, "a=ice-pwd:%s", p->ice_pwd);
	sb_line(b, "a=ice-options:trickle");
	for (size_t i = 0; i < PP_SDP_SHA256_LEN; i++)
		snprintf(fp + i * 3, 4, "%02X%s", p->fingerprint[i],
		    i + 1 < PP_SDP_SHA256_LEN ? ":" : "");
	sb_line(b, "a=fingerprint:sha-256 %s", fp);
	sb_line(b, "a=setup:%s", pp_sdp_setup_name(setup));
}

static void
datachannel_section(struct sbuf *b, const struct pp_sdp_params *p,
    enum pp_sdp_dc dc, const char *mid, enum pp_sdp_setup setup)
{
	unsigned port = p->sctp_port ? p->sctp_port : PP_SDP_DEFAULT_SCTP_PORT;
	uint64_t max_msg = p->max_message_size ? p->max_message_size :
	    PP_SDP_DEFAULT_MAX_MSG;
	unsigned streams = p->sctp_streams ? p->sctp_streams :
	    PP_SDP_DEFAULT_STREAMS;

	if (dc == PP_SDP_DC_LEGACY)
		sb_line(b, "m=application 9 DTLS/SCTP %u", port);
	else
		sb_line(b, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel");
	sb_line(b, "c=IN IP4 0.0.0.0");
	transport_attrs(b, p, setup);
	if (mid[0] != '\0')
		sb_line(b, "a=mid:%s", mid);
	if (dc == PP_SDP_DC_LEGACY)
		sb_line(b, "a=sctpmap:%u webrtc-datachannel %u", port, streams);
	else
		sb_line(b, "a=sctp-port:%u", port);
	sb_line(b, "a=max-message-size:%" PRIu64, max_msg);
}

int
pp_sdp_build_offer(const struct pp_sdp_params *p, char **out, size_t *outlen,
    char *err, size_t errlen)
{
	const char *mid = p->mid ? p->mid : "0";
	size_t midlen = strnlen(mid, PP_SDP_MID_MAX + 1);
	struct sbuf b = { 0 };
	uint64_t id;
	int rc;

	*out = NULL;
	if ((rc = check_params(p, err, errlen)) < 0)
		return rc;
	if (midlen > PP_SDP_MID_MAX || !pp__sdp_token(mid, midlen))
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp params: mid: expected a token of 1-%d characters",
		    PP_SDP_MID_MAX);
	if (p->setup != PP_SDP_SETUP_NONE && p->setup != PP_SDP_SETUP_ACTPASS)
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp params: setup: an offer must say actpass (RFC 8842)");
	if ((rc = session_id(p, &id)) < 0)
		return pp__sdp_errorf(err, errlen, rc,
		    "sdp: random session id: %s", pp_strerror(rc));
	session_header(&b, id, p->session_version, mid);
	datachannel_section(&b, p,
	    p->legacy ? PP_SDP_DC_LEGACY : PP_SDP_DC_CURRENT, mid,
	    PP_SDP_SETUP_ACTPASS);
	return sb_finish(&b, out, outlen, err, errlen);
}

/* Our DTLS role in an answer (see sdp.h). */
static int
answer_setup(enum pp_sdp_setup offered, enum pp_sdp_setup wanted,
    enum pp_sdp_setup *setup)
{
	enum pp_sdp_setup derived;

	switch (offered) {
	case PP_SDP_SETUP_ACTPASS:
		derived = PP_SDP_SETUP_ACTIVE;
		break;
	case PP_SDP_SETUP_ACTIVE:
	case PP_SDP_SETUP_NONE:		/* RFC 4145: the offerer is active */
		derived = PP_SDP_SETUP_PASSIVE;
		break;
	case PP_SDP_SETUP_PASSIVE:
		derived = PP_SDP_SETUP_ACTIVE;
		break;
	default:
		return -1;
	}
	if (wanted == PP_SDP_SETUP_NONE) {
		*setup = derived;
		return 0;
	}
	if ((wanted != PP_SDP_SETUP_ACTIVE && wanted != PP_SDP_SETUP_PASSIVE) ||
	    (offered != PP_SDP_SETUP_ACTPASS && wanted != derived))
		return -1;
	*setup = wanted;
	return 0;
}

/* How the answer treats each offered m-line. */
enum { ANSWER_REJECT, ANSWER_DC, ANSWER_INACTIVE };

struct plan {
	int dc, transport;
	unsigned char how[PP_SDP_MAX_MEDIA];
	size_t nbundle;
	const char *bundle[PP_SDP_MAX_MEDIA];	/* mids, offer group order */
};

static int
find_mid(const struct pp_sdp *offer, const char *mid)
{
	if (mid[0] == '\0')
		return -1;
	for (size_t i = 0; i < offer->nmedia; i++)
		if (strcmp(offer->media[i].mid, mid) == 0)
			return (int)i;
	return -1;
}

static int
in_bundle(const struct pp_sdp *offer, const char *mid)
{
	if (mid[0] == '\0')
		return 0;
	for (size_t i = 0; i < offer->nbundle; i++)
		if (strcmp(offer->bundle[i], mid) == 0)
			return 1;
	return 0;
}

static int
plan_answer(const struct pp_sdp *offer, const struct pp_sdp_params *p,
    struct plan *pl, char *err, size_t errlen)
{
	unsigned char listed[PP_SDP_MAX_MEDIA] = { 0 };
	int rc;

	memset(pl, 0, sizeof(*pl));
	if ((pl->dc = pp_sdp_find_datachannel(offer, err, errlen)) < 0)
		return pl->dc;
	pl->how[pl->dc] = ANSWER_DC;
	pl->transport = pl->dc;
	if (!in_bundle(offer, offer->media[pl->dc].mid))
		return 0;
	for (size_t i = 0; i < offer->nmedia; i++) {
		const struct pp_sdp_media *m = &offer->media[i];

		if (!p->reject_bundled_media && (int)i != pl->dc &&
		    (m->kind == PP_SDP_AUDIO || m->kind == PP_SDP_VIDEO) &&
		    m->port != 0 && in_bundle(offer, m->mid))
			pl->how[i] = ANSWER_INACTIVE;
	}
	for (size_t j = 0; j < offer->nbundle; j++) {
		int i = find_mid(offer, offer->bundle[j]);

		if (i < 0 || pl->how[i] == ANSWER_REJECT || listed[i])
			continue;
		listed[i] = 1;
		pl->bundle[pl->nbundle++] = offer->media[i].mid;
	}
	/* The data channel is listed, so the group is not empty. */
	pl->transport = find_mid(offer, pl->bundle[0]);
	if (pl->transport != pl->dc &&
	    (rc = pp__sdp_check_transport(&offer->media[pl->transport],
	    (size_t)pl->transport, err, errlen)) < 0)
		return rc;
	return 0;
}

static int
has_format(const char *list, const char *fmt, size_t n)
{
	for (const char *w = list; *w != '\0'; ) {
		size_t len = strcspn(w, " ");

		if (len == n && memcmp(w, fmt, n) == 0)
			return 1;
		w += len;
		w += *w == ' ';
	}
	return 0;
}

/*
 * An audio or video m-line we take into the bundle but never use.  aiortc
 * 1.4 checks every answer m-line as if it were in use: it wants the ICE and
 * DTLS attributes, a=rtcp-mux and a codec it knows, so the offer's first
 * a=rtpmap is repeated.
 */
static void
inactive_section(struct sbuf *b, const struct pp_sdp_params *p,
    const struct pp_sdp_media *m, enum pp_sdp_setup setup)
{
	size_t n = strcspn(m->rtpmap, " ");
	int rtpmap = n > 0 && m->rtpmap[n] == ' ' &&
	    has_format(m->fmt, m->rtpmap, n);

	if (!rtpmap)
		n = strcspn(m->fmt, " ");
	sb_line(b, "m=%s 9 %s %.*s", m->media, m->proto, (int)n,
	    rtpmap ? m->rtpmap : m->fmt);
	sb_line(b, "c=IN IP4 0.0.0.0");
	transport_attrs(b, p, setup);
	sb_line(b, "a=mid:%s", m->mid);
	sb_line(b, "a=inactive");
	sb_line(b, "a=rtcp-mux");
	if (rtpmap)
		sb_line(b, "a=rtpmap:%s", m->rtpmap);
}

/* An m-line we refuse (RFC 8866 section 5.14, JSEP section 5.3.1). */
static void
rejected_section(struct sbuf *b, const struct pp_sdp_media *m)
{
	sb_line(b, "m=%s 0 %s %s", m->media, m->proto, m->fmt);
	sb_line(b, "c=IN IP4 0.0.0.0");
	if (m->mid[0] != '\0')
		sb_line(b, "a=mid:%s", m->mid);
	sb_line(b, "a=inactive");
}

int
pp_sdp_build_answer(const struct pp_sdp *offer, const struct pp_sdp_params *p,
    char **out, size_t *outlen, struct pp_sdp_answer_info *info, char *err,
    size_t errlen)
{
	char group[PP_SDP_MAX_MEDIA * (PP_SDP_MID_MAX + 1)];
	const struct pp_sdp_media *tm;
	enum pp_sdp_setup setup;
	struct sbuf b = { 0 };
	struct plan pl;
	uint64_t id;
	int rc;

	*out = NULL;
	if ((rc = check_params(p, err, errlen)) < 0)
		return rc;
	if ((rc = plan_answer(offer, p, &pl, err, errlen)) < 0)
		return rc;
	tm = &offer->media[pl.transport];
	if (answer_setup(tm->t.setup, p->setup, &setup) < 0)
		return pp__sdp_errorf(err, errlen, PP_EINVAL,
		    "sdp: offer m-line %d says a=setup:%s, which does not "
		    "allow setup %s",
		    pl.transport + 1, pp_sdp_setup_name(tm->t.setup),
		    pp_sdp_setup_name(p->setup));
	if ((rc = session_id(p, &id)) < 0)
		return pp__sdp_errorf(err, errlen, rc,
		    "sdp: random session id: %s", pp_strerror(rc));

	for (size_t i = 0, len = 0; i < pl.nbundle; i++)
		len += (size_t)snprintf(group + len, sizeof(group) - len,
		    "%s%s", i > 0 ? " " : "", pl.bundle[i]);
	session_header(&b, id, p->session_version,
	    pl.nbundle > 0 ? group : NULL);
	for (size_t i = 0; i < offer->nmedia; i++) {
		const struct pp_sdp_media *m = &offer->media[i];

		switch (pl.how[i]) {
		case ANSWER_DC:
			datachannel_section(&b, p, m->dc, m->mid, setup);
			break;
		case ANSWER_INACTIVE:
			inactive_section(&b, p, m, setup);
			break;
		default:
			rejected_section(&b, m);
			break;
		}
	}
	if ((rc = sb_finish(&b, out, outlen, err, errlen)) < 0)
		return rc;
	if (info != NULL) {
		info->dc = pl.dc;
		info->transport = pl.transport;
	}
	return 0;
}
