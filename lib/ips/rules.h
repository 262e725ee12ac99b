/*
 * Rule policy: which ET Open rules become `drop` rules.
 *
 * Inline blocking needs the `drop` action; ET Open ships every rule as
 * `alert`.  The policy: a rule whose priority is <= drop_priority (1 is the
 * highest) is rewritten from `alert` to `drop`; all others stay alerts (the
 * gateway may still cut the peer on them, per its reaction policy).  A rule's
 * priority is its own `priority:` option, else its classtype's priority in
 * classification.config, else 3 (Suricata's default).  drop_priority 0 turns
 * the rewrite off; rules with `noalert` stay as they are.  Rules about a
 * protected host acting as a client, and rules on bare connection attempts,
 * are commented out (pp_rule_info).  Flowbits are followed across the whole
 * ruleset: a client-side or connection-level rule that only sets a flowbit
 * (noalert) stays on when an active rule tests that bit, and an active rule
 * that tests a bit no active rule can set is commented out as well (it could
 * never fire).  Our own ruleset (rules/peerpipe.rules) is used as written.
 *
 * The rewritten copy of ET Open is one generated file in the state dir; the
 * snapshot directory is never modified.  Pure helpers for tests, plus the
 * file-level function the supervisor uses.
 */
#ifndef PP_IPS_RULES_H
#define PP_IPS_RULES_H

#include <stddef.h>
#include <stdint.h>

#define PP_RULES_CLASS_MAX 128
#define PP_RULES_CLASSNAME_MAX 64

/* classtype -> priority, from a classification.config. */
struct pp_rules_classmap {
	size_t n;
	struct {
		char name[PP_RULES_CLASSNAME_MAX];
		int priority;
	} c[PP_RULES_CLASS_MAX];
};

/* Parses classification.config text (lines "config classification:
 * name,description,priority"); unknown lines are ignored. */
void pp_rules_classmap_parse(struct pp_rules_classmap *cm, const char *text,
    size_t len);

/*
 * The priority of one rule line (1..255), 0 if the line is not an active
 * rule (comment, blank, or not parseable).  *action gets the length of the
 * leading action keyword (e.g. 5 for "alert"), its offset in *action_off.
 */
int pp_rules_priority(const char *line, size_t len,
    const struct pp_rules_classmap *cm, size_t *action_off, size_t *action_len);

/*
 * What the policy needs from one rule line besides its priority.
 *
 * noalert: the rule only sets flowbits (`noalert;` or `flowbits:...,noalert`);
 * it detects nothing and is never turned into a drop rule, which would
 * silently drop every packet that merely sets the bit.
 *
 * client_side: the rule is about a protected host acting as a CLIENT:
 * $HOME_NET (or a *_SERVERS group, all $HOME_NET here) is the source of a
 * `flow:to_server` rule (or of a DNS rule: queries), or the destination of
 * a `flow:to_client` one -- and the server's end is NOT also such an
 * address.  A rule with $HOME_NET on both ends (Impacket WMIExec, the WINS
 * memory corruption, AD FS replication) is about an attack on a protected
 * server from inside, which is exactly how the peer appears when the
 * service runs on the gateway's host: it stays on.  On the gateway's path the client is always the
 * tunnelled peer, never a protected host; but the peer appears with the
 * gateway's own address, which is HOME_NET too when a service runs on the
 * gateway's host (loopback), so such rules (ET POLICY / HUNTING user-agent
 * rules, malware check-ins, DNS queries for odd TLDs) would fire on every
 * ordinary request and cut the peer.  The policy comments them out.
 *
 * conn_level: the rule matches a bare connection attempt (`flags` with S
 * and no `content`/`pcre`): ET's "suspicious inbound to PostgreSQL port
 * 5432", "potential SSH scan" (5 SYNs in 120 s).  Every connection through
 * the gateway comes from a peer that is authenticated and allowed that port
 * by the policy, and all peers share the gateway's address, so such rules
 * drop a legitimate peer's connections to exactly the services the gateway
 * exists to share (and their by_src thresholds count all peers together).
 * Port scans by a peer are the Sentinel's job.  The policy comments them
 * out too.
 */
#define PP_RULES_FLOWBITS_MAX 16

/*
 * flowbits: the rule's `flowbits:set|toggle,NAME` (need 0) and
 * `flowbits:isset,NAME[|NAME...]` (need 1) options, each name as its 64-bit
 * FNV-1a hash.  The names of one isset option share a group number (any one
 * of them set is enough); separate isset options must all be met.
 * flowbits_more: the rule had more than PP_RULES_FLOWBITS_MAX names (the
 * rest are not listed; the policy then never turns it off for a flowbit).
 */
struct pp_rule_flowbit {
	uint64_t name;
	uint8_t need;
	uint8_t group;
};

struct pp_rule_info {
	int noalert;
	int client_side;
	int conn_level;
	unsigned nflowbits;
	int flowbits_more;
	struct pp_rule_flowbit flowbits[PP_RULES_FLOWBITS_MAX];
};

/* Fills *ri for an active rule line; 0 if the header is not parseable
 * (then *ri is all zero). */
int pp_rules_inspect(const char *line, size_t len, struct pp_rule_info *ri);

struct pp_rules_stats {
	unsigned files, rules, dropped, alerts;
	unsigned client_side;	/* commented out, see pp_rule_info */
	unsigned conn_level;	/* commented out, see pp_rule_info */
	/* client-side or connection-level noalert rules kept on because an
	 * active rule tests a flowbit only they set (not in the two above) */
	unsigned flowbit_setters;
	/* active rules commented out: a flowbit they test is set by no rule
	 * that is on, so they could never fire */
	unsigned flowbit_off;
};

/*
 * Writes every *.rules file of dir (sorted by name) into out_path with the
 * policy applied (atomically: a temporary file renamed into place).  The
 * files are read twice: first every rule's verdict and flowbits, then the
 * output (PP_ECONFLICT when a file changed in between).  The
 * classification.config of dir is used when present, else class_fallback
 * (may be NULL).  0, or a negative code with err set.
 */
int pp_rules_write_policy(const char *dir, const char *class_fallback,
    int drop_priority, const char *out_path, struct pp_rules_stats *st,
    char *err, size_t errlen);

/* Counts the active rules of a file (for readiness checks); -errno. */
int pp_rules_count(const char *path);

#endif
