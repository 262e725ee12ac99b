/*
 * Rule policy: which ET Open rules become `drop` rules.
 *
 * Inline blocking needs the `drop` action; ET Open ships every rule as
 * `alert`.  The policy: a rule whose priority is <= drop_priority (1 is the
 * highest) is rewritten from `alert` to `drop`; all others stay alerts (the
 * gateway may still cut the peer on them, per its reaction policy).  A rule's
 * priority is its own `priority:` option, else its classtype's priority in
 * classification.config, else 3 (Suricata's default).  drop_priority 0 turns
 * the rewrite off.  Our own ruleset (rules/peerpipe.rules) is used as written.
 *
 * The rewritten copy of ET Open is one generated file in the state dir; the
 * snapshot directory is never modified.  Pure helpers for tests, plus the
 * file-level function the supervisor uses.
 */
#ifndef PP_IPS_RULES_H
#define PP_IPS_RULES_H

#include <stddef.h>

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

struct pp_rules_stats {
	unsigned files, rules, dropped, alerts;
};

/*
 * Writes every *.rules file of dir (sorted by name) into out_path with the
 * policy applied (atomically: a temporary file renamed into place).  The
 * classification.config of dir is used when present, else class_fallback
 * (may be NULL).  0, or a negative code with err set.
 */
int pp_rules_write_policy(const char *dir, const char *class_fallback,
    int drop_priority, const char *out_path, struct pp_rules_stats *st,
    char *err, size_t errlen);

/* Counts the active rules of a file (for readiness checks); -errno. */
int pp_rules_count(const char *path);

#endif
