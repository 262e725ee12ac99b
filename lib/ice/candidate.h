/*
 * ICE candidate attribute values (RFC 8839 section 5.1, "candidate:..."):
 * a pure, bounded parser and its canonical printer.
 *
 * Remote candidates arrive through the signaling server before the peer is
 * authenticated, and libnice's own parser trusts its input (a missing field
 * becomes a GLib critical, an odd component id is taken as is).  Everything
 * a peer sends goes through pp_ice_cand_parse() first; only the canonical
 * form printed back by pp_ice_cand_format() reaches libnice.
 *
 * No I/O, no globals, no logging: safe from any thread, callable by fuzzers.
 */
#ifndef PP_ICE_CANDIDATE_H
#define PP_ICE_CANDIDATE_H

#include <stddef.h>
#include <stdint.h>

#define PP_ICE_CAND_MAX		512	/* bytes in one candidate value */
#define PP_ICE_FOUNDATION_MAX	32	/* RFC 8839: 1*32ice-char */
#define PP_ICE_UFRAG_MAX	256	/* RFC 8839: 4*256ice-char */
#define PP_ICE_PWD_MAX		256	/* RFC 8839: 22*256ice-char */
#define PP_ICE_ADDRSTRLEN	46	/* INET6_ADDRSTRLEN */

enum pp_ice_cand_type {
	PP_ICE_CAND_HOST,
	PP_ICE_CAND_SRFLX,
	PP_ICE_CAND_PRFLX,
	PP_ICE_CAND_RELAY,
};

enum pp_ice_proto {
	PP_ICE_PROTO_UDP,
	PP_ICE_PROTO_TCP,
};

enum pp_ice_tcptype {
	PP_ICE_TCP_NONE,	/* UDP candidates */
	PP_ICE_TCP_ACTIVE,
	PP_ICE_TCP_PASSIVE,
	PP_ICE_TCP_SO,
};

/* One parsed candidate; plain data, all strings NUL-terminated. */
struct pp_ice_cand {
	char foundation[PP_ICE_FOUNDATION_MAX + 1];
	unsigned component;		/* 1..256 */
	enum pp_ice_proto proto;
	uint32_t priority;		/* 1..2^32-1 */
	char addr[PP_ICE_ADDRSTRLEN];	/* IP literal, as inet_ntop prints it */
	uint16_t port;
	enum pp_ice_cand_type type;
	char raddr[PP_ICE_ADDRSTRLEN];	/* "" when absent */
	uint16_t rport;
	enum pp_ice_tcptype tcptype;
	char ufrag[PP_ICE_UFRAG_MAX + 1]; /* the "ufrag" extension; "" if absent */
};

/*
 * Parse one candidate value: "candidate:..." with an optional "a=" in front
 * and an optional trailing CRLF.  Unknown extension attributes (generation,
 * network-id, network-cost, ...) are checked for shape and skipped.  Only IP
 * literals are accepted: mDNS ".local" names are refused with their own
 * reason.  Returns 0, PP_ETOOBIG (over PP_ICE_CAND_MAX) or PP_EINVAL; on
 * error *why (if not NULL) gets a static phrase naming the fault.
 */
int pp_ice_cand_parse(const char *s, size_t len, struct pp_ice_cand *c,
    const char **why);

/*
 * Print c in canonical form ("candidate:F C UDP P ADDR PORT typ T ...",
 * without "a=" and CRLF).  Returns the length written (NUL not counted), or
 * PP_ETOOBIG if size is too small.
 */
int pp_ice_cand_format(const struct pp_ice_cand *c, char *buf, size_t size);

/* "host", "srflx", "prflx", "relay"; never NULL. */
const char *pp_ice_cand_type_name(enum pp_ice_cand_type type);

/*
 * Whether s (len bytes) is a valid ICE ufrag (4..256) or password (22..256)
 * made of ice-chars (ALPHA / DIGIT / "+" / "/").  Returns 0 or PP_EINVAL.
 */
int pp_ice_check_ufrag(const char *s, size_t len);
int pp_ice_check_pwd(const char *s, size_t len);

#endif
