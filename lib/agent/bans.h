/*
 * The gateway's bans and security events (docs/ips.md, "Reaction").
 *
 * A ban keeps a peer out (by user name, and by identity key when it has
 * one) until it expires; bans live in STATE/bans.json (one JSON object a
 * line, rewritten whole on change) and so survive restarts.  Each ban keeps
 * its evidence: the eve records that caused it and, for an IPS ban, a pcap of
 * the connection in STATE/evidence/<id>.pcap (the newest
 * PP_BANS_EVIDENCE_MAX files are kept, also after their ban ended).
 *
 * Security events (alert, cut, ban, scan, unban) go to STATE/security.json,
 * one eve-compatible JSON object a line ("timestamp", "event_type":
 * "peerpipe", the 5-tuple fields Suricata uses, and a "peerpipe" object),
 * so a SIEM that ingests Suricata's eve.json takes them as they are.
 *
 * The Sentinel (MITRE T1046): a peer refused for scan_ports distinct ports
 * within scan_window seconds is scanning.
 *
 * Thread: the agent's loop thread.
 */
#ifndef PP_AGENT_BANS_H
#define PP_AGENT_BANS_H

#include <jansson.h>
#include <stdint.h>

struct pp_bans;

int pp_bans_open(const char *state_dir, struct pp_bans **out);
void pp_bans_free(struct pp_bans *b);

#define PP_BANS_EVIDENCE_MAX 256

/* Bans name (and key, "" when none) for seconds; evidence (borrowed, may be
 * NULL) is kept with it, and pcap (borrowed, may be NULL: the evidence
 * file's description) as its "pcap".  Returns the new ban's id (> 0,
 * pp_bans_next_id()) or a negative code. */
int pp_bans_add(struct pp_bans *b, const char *name, const char *key,
    unsigned seconds, const char *reason, json_t *evidence, json_t *pcap);
/* The id the next pp_bans_add() gives.  Ids are never reused while their
 * evidence file exists. */
int pp_bans_next_id(const struct pp_bans *b);
/* STATE/evidence/<id>.pcap into buf; creates the directory (0700).  0 or a
 * negative code. */
int pp_bans_evidence_path(struct pp_bans *b, int id, char *buf, size_t len);
/* Removes the oldest evidence files beyond PP_BANS_EVIDENCE_MAX. */
void pp_bans_evidence_prune(struct pp_bans *b);
/* 0 when neither name nor key (may be NULL) is banned now; else PP_EDENIED
 * with "banned until ... for ..." in why. */
int pp_bans_check(struct pp_bans *b, const char *name, const char *key,
    char *why, size_t whylen);
/* Lifts the bans of a peer name, or the ban with that id ("17").  Returns
 * how many, or PP_ENOTFOUND. */
int pp_bans_remove(struct pp_bans *b, const char *name_or_id);
/* The current bans (new reference): [{id, name, key, since, until, reason}]
 * and with evidence when with_evidence. */
json_t *pp_bans_list(struct pp_bans *b, int with_evidence);
json_t *pp_bans_get(struct pp_bans *b, int id);	/* with evidence, or NULL */

#define PP_BANS_RECENT 10
/* For status (new reference): {"counts": {EVENT: n, ...} since start,
 * "recent": the last PP_BANS_RECENT events as written, oldest first,
 * "bans": how many are in force}. */
json_t *pp_bans_security(struct pp_bans *b);

/* Appends one security event; fields (borrowed) go into its "peerpipe"
 * object, except src_ip/src_port/dest_ip/dest_port/proto, which go to the
 * top level as in eve. */
void pp_bans_event(struct pp_bans *b, const char *event, json_t *fields);

/* Sentinel: notes a refused port of peer name at now_s; 1 when that makes
 * scan_ports distinct ports within window seconds (then forgets them). */
int pp_bans_scan_note(struct pp_bans *b, const char *name, uint16_t port,
    int udp, uint64_t now_s, unsigned scan_ports, unsigned window);

#endif
