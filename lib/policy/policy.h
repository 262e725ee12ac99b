/*
 * The gateway's access policy (docs/policy.md): who may reach which of a
 * gateway's services.  A policy file names peers by identity key (or, for
 * version-1 peers, by user name in [legacy] entries), puts them in groups,
 * and grants or denies them services and port ranges in [rule] sections;
 * its [tests] are checked when it is loaded.  Default deny; deny wins.
 *
 * Pure: no I/O but reading the file in pp_policy_load(), no globals, no
 * logging; the clock is an argument.  A parsed policy is immutable, so any
 * thread may query it; the agent swaps in a new one on reload (comparing
 * pp_policy_hash()) and re-decides the connections it has open.
 *
 * Ownership: pp_policy_parse/load return a policy the caller frees with
 * pp_policy_free().  Every other pointer argument is borrowed for the call.
 */
#ifndef PP_POLICY_POLICY_H
#define PP_POLICY_POLICY_H

#include "base/ini.h"
#include "tunnel/proto.h"

#include <stddef.h>
#include <stdint.h>

#define PP_POLICY_FILE_MAX	(1024 * 1024)
#define PP_POLICY_LINE_MAX	4096	/* bytes, without the line ending */
#define PP_POLICY_MAX_PEERS	1024	/* [peer] and [legacy] together */
#define PP_POLICY_MAX_GROUPS	256	/* distinct group names */
#define PP_POLICY_MAX_PEER_GROUPS 16	/* groups = ... of one peer */
#define PP_POLICY_MAX_SERVICES	256	/* the policy's and the gateway's */
#define PP_POLICY_MAX_RULES	1024
#define PP_POLICY_MAX_ITEMS	32	/* subjects, objects, gateways of a rule */
#define PP_POLICY_MAX_TESTS	256
#define PP_POLICY_MAX_ERRORS	32
#define PP_POLICY_ITEM_MAX	63	/* service, rule and group names */
#define PP_POLICY_HASH_LEN	32	/* SHA-256 */

struct pp_policy;

/* One of the gateway's own services (its config's [service NAME]). */
struct pp_policy_service {
	const char *name;
	uint16_t port;			/* the port it offers to peers */
	enum pp_tun_proto proto;
};

struct pp_policy_errors {
	size_t n;			/* how many were found (may exceed the stored) */
	char msg[PP_POLICY_MAX_ERRORS][PP_INI_ERR_LEN];	/* "FILE:LINE: ..." */
};

/* Who is asking: what the signaling server and the v2 handshake told us. */
struct pp_policy_peer_id {
	const char *name;		/* the user name it joined the room with */
	const uint8_t *key;		/* its VERIFIED identity key
					 * (PP_ID_PUB_LEN bytes), or NULL for a
					 * version-1 peer, which has none */
};

enum pp_policy_verdict {
	PP_POLICY_DENY,
	PP_POLICY_ALLOW,
};

struct pp_policy_decision {
	enum pp_policy_verdict verdict;
	char rule[PP_POLICY_ITEM_MAX + 1];	/* the deciding rule, or "default deny" */
	int line;			/* its line; 0 for the default */
	/* The connection is a version-1 peer that matched a [legacy] entry:
	 * when verdict is ALLOW the gateway must log that it admitted it. */
	int legacy;
	char peer[PP_TUN_NAME_MAX + 1];	/* the [peer]/[legacy] entry it is, or "" */
	char reason[320];		/* one line, for logs and errors */
};

/*
 * Parses text (len bytes, need not be NUL-terminated) named path in the
 * messages.  svcs are this gateway's services (may be NULL with nsvcs 0),
 * which rules may name as service:NAME besides the policy's own [service]
 * sections; they are copied.  The [tests] are evaluated at time now (Unix
 * seconds).  Returns 0 with *out set, or PP_ECONFIG with every problem in
 * errs and *out NULL.
 */
int pp_policy_parse(const char *path, const char *text, size_t len,
    const struct pp_policy_service *svcs, size_t nsvcs, int64_t now,
    struct pp_policy **out, struct pp_policy_errors *errs);
/* Reads the file (at most PP_POLICY_FILE_MAX) and parses it; an unreadable
 * file is one error "PATH: cannot read: why". */
int pp_policy_load(const char *path, const struct pp_policy_service *svcs,
    size_t nsvcs, int64_t now, struct pp_policy **out,
    struct pp_policy_errors *errs);
void pp_policy_free(struct pp_policy *pol);	/* NULL-safe */

/*
 * May who use port/proto on the gateway named gateway at time now?  Fills
 * d and returns 0 (allow) or PP_EDENIED.  gateway NULL or "" stands for a
 * gateway no `gateway =` names.
 */
int pp_policy_decide(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, enum pp_tun_proto proto,
    uint16_t port, int64_t now, struct pp_policy_decision *d);

/*
 * The ports of ports[n] (what the gateway would offer) that who may use,
 * in order, into out (room for n).  Returns how many.  The INIT a peer
 * receives offers only these.
 */
size_t pp_policy_offer(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, int64_t now,
    const struct pp_tun_port *ports, size_t n, struct pp_tun_port *out);

/*
 * pp_policy_decide(), and a text for people (`peerpipe explain PEER
 * SERVICE`) in buf: who the peer is to the policy, every rule in file order
 * with why it does or does not apply, and the decision.  Truncated text
 * ends with "...\n".  Returns what pp_policy_decide() returns.
 */
int pp_policy_explain(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, enum pp_tun_proto proto,
    uint16_t port, int64_t now, char *buf, size_t len);

/* The port and proto of service name as seen on gateway: 0 or PP_ENOTFOUND. */
int pp_policy_service_find(const struct pp_policy *pol, const char *gateway,
    const char *name, enum pp_tun_proto *proto, uint16_t *port);

/* A peer entry's identity, for the CLI and tests: the key of [peer name]
 * (0), PP_EINVAL for a [legacy] entry, PP_ENOTFOUND. */
int pp_policy_peer_key(const struct pp_policy *pol, const char *name,
    uint8_t key[32]);

/* The [peer] entry whose key is key: its name into name (0), or
 * PP_ENOTFOUND.  An invite refuses a key that already has an entry. */
int pp_policy_key_owner(const struct pp_policy *pol, const uint8_t key[32],
    char *name, size_t len);
/* Whether an allow rule in force on gateway at now (not another gateway's,
 * not expired) names key as a `key:` subject: such a connection is known
 * without a [peer] entry.  1 or 0. */
int pp_policy_names_key(const struct pp_policy *pol, const char *gateway,
    const uint8_t key[32], int64_t now);

/*
 * SHA-256 of what the policy means (entries, services and rules in file
 * order, not comments, layout or tests): equal hashes decide alike, so a
 * reload that does not change it need not re-decide anything.
 */
void pp_policy_hash(const struct pp_policy *pol,
    uint8_t out[PP_POLICY_HASH_LEN]);

/* The earliest `expires` after now, or 0 if none: re-decide open
 * connections then, since the policy changes meaning without a reload. */
int64_t pp_policy_next_expiry(const struct pp_policy *pol, int64_t now);

/* RFC 3339 date-time ("2025-06-30T18:00:00Z", "...+02:00") to Unix
 * seconds; 0 or PP_EINVAL.  Exposed for tests. */
int pp_policy_time_parse(const char *s, size_t len, int64_t *out);

#endif
