/*
 * SDP for WebRTC data channels (RFC 8866 syntax, RFC 8839 ICE, RFC 8842 DTLS,
 * RFC 8841 SCTP): a pure parser that turns an offer or answer into a plain,
 * bounds-checked struct, a parser for one trickled "candidate:..." string, and
 * the generators of our offers and of answers to a parsed offer.
 *
 * Both data-channel formats are understood and produced: the current
 * "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" + a=sctp-port, and the
 * legacy "m=application 9 DTLS/SCTP 5000" + a=sctpmap (aiortc's default).
 *
 * No I/O, no globals, no logging; any thread may call these.  Ownership: the
 * caller owns a struct pp_sdp (usually on its stack); pp_sdp_parse() fills it
 * and allocates its media and candidate arrays, pp_sdp_fini() frees them and
 * wipes the ICE passwords (safe on a zeroed or already finished struct).  The
 * generators return a malloc'ed NUL-terminated string the caller free()s; it
 * holds our ICE password, so do not log it above debug.
 *
 * Errors: 0 or a negative code; PP_EINVAL for malformed input, PP_ETOOBIG for a
 * cap exceeded, -ENOMEM; err receives e.g.
 * "sdp line 7: a=fingerprint: expected 32 hex byte pairs for sha-256".
 * Messages never quote the input, so they are safe to log.
 */
#ifndef PP_SDP_SDP_H
#define PP_SDP_SDP_H

#include <stddef.h>
#include <stdint.h>

/* Caps: an SDP beyond any of them is refused with PP_ETOOBIG. */
#define PP_SDP_MAX_SIZE		65536	/* bytes in a whole description */
#define PP_SDP_MAX_LINES	1024
#define PP_SDP_LINE_MAX		1024	/* bytes in one line, without CRLF */
#define PP_SDP_MAX_MEDIA	16	/* m-lines */
#define PP_SDP_MAX_CANDIDATES	64	/* a=candidate lines per m-line */
#define PP_SDP_MAX_FINGERPRINTS	4	/* a=fingerprint lines per level */

/* Field sizes (without the NUL); a longer value is PP_ETOOBIG or PP_EINVAL. */
#define PP_SDP_TOKEN_MAX	32	/* media name, proto, hash name */
#define PP_SDP_FMT_MAX		512	/* the m-line's format list */
#define PP_SDP_MID_MAX		64
#define PP_SDP_UFRAG_MAX	256	/* RFC 8839: 4-256 ice-chars */
#define PP_SDP_PWD_MAX		256	/* RFC 8839: 22-256 ice-chars */
#define PP_SDP_FP_MAX		64	/* fingerprint bytes (sha-512) */
#define PP_SDP_SHA256_LEN	32
#define PP_SDP_CAND_MAX		512	/* "candidate:..." */
#define PP_SDP_FOUNDATION_MAX	32
#define PP_SDP_ADDR_MAX		253	/* an FQDN; IPv6 text is shorter */

/* Defaults used when the SDP or the generator's parameters omit them. */
#define PP_SDP_DEFAULT_SCTP_PORT	5000	/* RFC 8841 */
#define PP_SDP_DEFAULT_REMOTE_MAX_MSG	65536	/* RFC 8841, when absent */
#define PP_SDP_DEFAULT_MAX_MSG		262144	/* what we announce */
#define PP_SDP_DEFAULT_STREAMS		1024	/* legacy a=sctpmap */

enum pp_sdp_kind {
	PP_SDP_OTHER,
	PP_SDP_AUDIO,
	PP_SDP_VIDEO,
	PP_SDP_APPLICATION,
};

/* Which data-channel m-line syntax an m-line uses, if any. */
enum pp_sdp_dc {
	PP_SDP_DC_NONE,
	PP_SDP_DC_CURRENT,	/* UDP/DTLS/SCTP webrtc-datachannel */
	PP_SDP_DC_LEGACY,	/* DTLS/SCTP <port> + a=sctpmap */
};

enum pp_sdp_setup {
	PP_SDP_SETUP_NONE,	/* absent */
	PP_SDP_SETUP_ACTPASS,
	PP_SDP_SETUP_ACTIVE,	/* DTLS client */
	PP_SDP_SETUP_PASSIVE,	/* DTLS server */
	PP_SDP_SETUP_HOLDCONN,
};

enum pp_sdp_dir {
	PP_SDP_SENDRECV,	/* also when absent (RFC 8866 default) */
	PP_SDP_SENDONLY,
	PP_SDP_RECVONLY,
	PP_SDP_INACTIVE,
};

enum pp_sdp_transport {
	PP_SDP_UDP,
	PP_SDP_TCP,
	PP_SDP_TRANSPORT_OTHER,	/* a future transport: skip the candidate */
};

enum pp_sdp_cand_type {
	PP_SDP_HOST,
	PP_SDP_SRFLX,
	PP_SDP_PRFLX,
	PP_SDP_RELAY,
	PP_SDP_CAND_OTHER,	/* a future type: skip the candidate */
};

enum pp_sdp_tcptype {
	PP_SDP_TCPTYPE_NONE,
	PP_SDP_TCPTYPE_ACTIVE,
	PP_SDP_TCPTYPE_PASSIVE,
	PP_SDP_TCPTYPE_SO,
};

enum pp_sdp_addr {
	PP_SDP_ADDR_IP4,
	PP_SDP_ADDR_IP6,
	PP_SDP_ADDR_FQDN,	/* e.g. Chromium's mDNS "<uuid>.local" */
};

/* One ICE candidate (RFC 8839 section 5.1). */
struct pp_sdp_candidate {
	/*
	 * The attribute value, "candidate:<foundation> <component> ...", with
	 * runs of blanks collapsed to one space: what a browser puts in
	 * RTCIceCandidate.candidate.  The keywords the grammar matches in any
	 * case ("typ", a known candidate type, the names raddr, rport, tcptype
	 * and ufrag, the tcptype value) are written in lowercase, because
	 * libnice's nice_agent_parse_remote_candidate_sdp() matches them
	 * case-sensitively; it wants the string prefixed by "a=".  Everything
	 * else is kept as written.
	 */
	char raw[PP_SDP_CAND_MAX + 1];
	char foundation[PP_SDP_FOUNDATION_MAX + 1];
	unsigned component;		/* 1-256 */
	enum pp_sdp_transport transport;
	uint32_t priority;
	enum pp_sdp_addr addr_kind;
	char address[PP_SDP_ADDR_MAX + 1];
	uint16_t port;
	enum pp_sdp_cand_type type;
	int has_raddr, has_rport;
	enum pp_sdp_addr raddr_kind;	/* when has_raddr */
	char raddr[PP_SDP_ADDR_MAX + 1];
	uint16_t rport;
	enum pp_sdp_tcptype tcptype;
	/*
	 * The "ufrag" extension (Chromium's, naming the ICE generation the
	 * candidate belongs to), checked like a=ice-ufrag; "" when absent.
	 * Other extensions (generation, network-id, network-cost, ...) are
	 * kept in raw only.
	 */
	char ufrag[PP_SDP_UFRAG_MAX + 1];
};

struct pp_sdp_fingerprint {
	char hash[PP_SDP_TOKEN_MAX + 1];	/* lowercased: "sha-256" */
	uint8_t value[PP_SDP_FP_MAX];
	size_t len;				/* 32 for sha-256 */
};

/* ICE and DTLS parameters, found at session or media level. */
struct pp_sdp_transport_params {
	char ice_ufrag[PP_SDP_UFRAG_MAX + 1];	/* "" when absent */
	char ice_pwd[PP_SDP_PWD_MAX + 1];	/* "" when absent */
	int ice_trickle;			/* ice-options has trickle */
	enum pp_sdp_setup setup;
	size_t nfingerprints;
	struct pp_sdp_fingerprint fingerprints[PP_SDP_MAX_FINGERPRINTS];
};

struct pp_sdp_media {
	enum pp_sdp_kind kind;
	char media[PP_SDP_TOKEN_MAX + 1];	/* as written: "audio", ... */
	uint16_t port;				/* 0: rejected or disabled */
	char proto[PP_SDP_TOKEN_MAX + 1];	/* "UDP/DTLS/SCTP", ... */
	char fmt[PP_SDP_FMT_MAX + 1];		/* formats, one space apart */
	enum pp_sdp_dc dc;
	char mid[PP_SDP_MID_MAX + 1];		/* "" when absent */
	enum pp_sdp_dir direction;		/* media level, else session */
	/*
	 * Effective values: each field the m-line does not set is taken from
	 * the session level (the media level wins, RFC 8839/8842); fingerprints
	 * are taken as a set, from one level only.
	 */
	struct pp_sdp_transport_params t;
	/* Data channels.  sctp_port defaults to 5000 on a data-channel m-line
	 * (legacy: the format number); max_message_size to 65536 when absent,
	 * and 0 means "no limit" (RFC 8841).  sctp_streams: legacy sctpmap's
	 * stream count, 0 when absent. */
	uint16_t sctp_port;
	uint64_t max_message_size;
	uint16_t sctp_streams;
	/* The first a=rtpmap value of the m-line ("96 opus/48000/2"), "" if
	 * none or too long: an answer accepting the m-line as inactive names
	 * that codec (aiortc 1.4 refuses an audio answer without a codec). */
	char rtpmap[PP_SDP_TOKEN_MAX * 2 + 1];
	int end_of_candidates;
	size_t ncandidates;
	struct pp_sdp_candidate *candidates;	/* owned */
};

struct pp_sdp {
	uint64_t session_id, session_version;	/* o= */
	int ice_lite;
	int has_bundle;				/* an a=group:BUNDLE was seen */
	size_t nbundle;				/* first BUNDLE group's mids */
	char bundle[PP_SDP_MAX_MEDIA][PP_SDP_MID_MAX + 1];
	struct pp_sdp_transport_params session;	/* session level only */
	size_t nmedia;
	struct pp_sdp_media *media;		/* owned, in m-line order */
};

/*
 * Parses len bytes (LF or CRLF line endings; need not be NUL-terminated).
 * Unknown attributes and line types are ignored.  On success fills *sdp; on
 * failure leaves it empty, so pp_sdp_fini() is always safe.  err may be NULL.
 */
int pp_sdp_parse(const char *buf, size_t len, struct pp_sdp *sdp, char *err,
    size_t errlen);
/* Frees what pp_sdp_parse() allocated, wipes passwords, zeroes *sdp. */
void pp_sdp_fini(struct pp_sdp *sdp);

/*
 * Parses one trickled candidate, the "candidate" member of
 * {"candidate": "candidate:...", "sdpMid": "0", "sdpMLineIndex": 0}; the
 * SDP line form (an "a=" prefix, a CRLF or LF at the end) is also accepted.
 * Same grammar and checks as a=candidate.  Browsers signal the end of
 * candidates with an empty string: test for that first, it is refused here.
 */
int pp_sdp_parse_candidate(const char *s, size_t len,
    struct pp_sdp_candidate *c, char *err, size_t errlen);

/*
 * Whether s (n bytes, need not be NUL-terminated) is a valid ICE ufrag
 * (4-256) or password (22-256) of ice-chars, [A-Za-z0-9+/] (RFC 8839): the
 * checks of a=ice-ufrag and a=ice-pwd.  Nonzero if valid.
 */
int pp_sdp_ice_ufrag_valid(const char *s, size_t n);
int pp_sdp_ice_pwd_valid(const char *s, size_t n);

/*
 * Finds the m-line that carries data channels: the first one of either
 * format with a nonzero port.  Checks that it has what a connection needs
 * (ICE ufrag and password, a sha-256 fingerprint, a setup other than
 * holdconn) and returns its index, or a negative code with the reason in err.
 * Use it on a remote offer and on the remote answer to our offer (whose
 * single m-line is also the transport).
 */
int pp_sdp_find_datachannel(const struct pp_sdp *sdp, char *err,
    size_t errlen);
/* The first sha-256 fingerprint of an m-line (32 bytes), or NULL. */
const uint8_t *pp_sdp_sha256(const struct pp_sdp_media *m);

/* Our side of a description, for the generators.  Zero means "default". */
struct pp_sdp_params {
	const char *ice_ufrag;		/* 4-256 of [A-Za-z0-9+/] */
	const char *ice_pwd;		/* 22-256 of [A-Za-z0-9+/] */
	uint8_t fingerprint[PP_SDP_SHA256_LEN];	/* of our DTLS certificate */
	/*
	 * Offer: NONE or ACTPASS (an offer must say actpass, RFC 8842).
	 * Answer: NONE derives it from the offer: actpass -> active (we are
	 * the DTLS client, as Chromium and aiortc answer), active -> passive,
	 * passive -> active, absent -> passive (RFC 4145 default).  ACTIVE or
	 * PASSIVE may be forced where the offer allows it.
	 */
	enum pp_sdp_setup setup;
	uint16_t sctp_port;		/* 0: 5000 */
	uint64_t max_message_size;	/* 0: PP_SDP_DEFAULT_MAX_MSG */
	uint16_t sctp_streams;		/* legacy a=sctpmap; 0: 1024 */
	int legacy;			/* offer only: DTLS/SCTP + a=sctpmap */
	const char *mid;		/* offer only; NULL: "0" */
	uint64_t session_id;		/* 0: random, below 2^63 (JSEP) */
	uint64_t session_version;	/* o= version, as given */
	/* Candidates known now, "candidate:..." or "a=candidate:..." (as
	 * nice_agent_generate_local_candidate_sdp() writes them); each is
	 * parsed and written back in normalised form. */
	const char *const *candidates;
	size_t ncandidates;
	int end_of_candidates;		/* nothing will be trickled */
	/*
	 * Answer only.  0 (default): an audio or video m-line that the offer
	 * bundles with the data channel is accepted as a=inactive inside the
	 * bundle, as browsers answer when they have no track.  1: it is
	 * rejected with port 0 and left out of the bundle (JSEP's shape).
	 * aiortc 1.4 offerers cannot take that: they refuse an answer m-line
	 * without ICE credentials, and, given them, run a separate ICE
	 * transport for the rejected m-line that never gets candidates, so
	 * SCTP never starts (or, with a=end-of-candidates, the connection
	 * state turns "failed").  Measured with Debian's python3-aiortc 1.4.
	 */
	int reject_bundled_media;
};

/*
 * Our offer: one data-channel m-line, current format unless p->legacy, with
 * a=group:BUNDLE <mid>.  *out is malloc'ed (caller frees), *outlen its length.
 */
int pp_sdp_build_offer(const struct pp_sdp_params *p, char **out,
    size_t *outlen, char *err, size_t errlen);

/* What an answer decided, in offer m-line indexes. */
struct pp_sdp_answer_info {
	int dc;		/* the accepted data-channel m-line */
	/*
	 * The m-line whose transport the connection uses: the first accepted
	 * m-line of the answer's BUNDLE group (with aiortc's offer that is the
	 * audio m-line, whose ICE credentials differ from the data channel's),
	 * else dc.  Take the remote ICE ufrag/pwd, candidates, fingerprint and
	 * setup from this m-line, and send trickled candidates with its mid and
	 * index.
	 */
	int transport;
};

/*
 * An answer to a parsed offer.  One m-line per offered m-line, in order.  The
 * data-channel m-line (see pp_sdp_find_datachannel()) is accepted in the
 * offer's format (a legacy offer gets a legacy answer) with the offer's mid.
 * Audio/video m-lines bundled with it are answered as p->reject_bundled_media
 * says; every other m-line (a second data channel, unbundled or port-0 media,
 * unknown media) is rejected: port 0, same proto and formats, its a=mid,
 * a=inactive.  a=group:BUNDLE lists the accepted mids in the offer's group
 * order, and only if the offer bundled the data channel.  Fails (PP_EINVAL)
 * if the offer has no usable data-channel m-line, or its setup conflicts
 * with p->setup.  p->legacy and p->mid are ignored.  info may be NULL.
 */
int pp_sdp_build_answer(const struct pp_sdp *offer,
    const struct pp_sdp_params *p, char **out, size_t *outlen,
    struct pp_sdp_answer_info *info, char *err, size_t errlen);

const char *pp_sdp_setup_name(enum pp_sdp_setup s);

#endif
