/*
 * The policy file (docs/policy.md).
 *
 * Three passes.  The first reads the lines (through lib/base/ini_parse.h,
 * the same rules as the agent's config), checks each value as it comes
 * and stores the entries; rules keep their subject and object lists as text,
 * because they may name peers, groups and services declared further down.
 * The second resolves those lists into indices, so that a typo in a rule is
 * a load error rather than a rule that silently matches nobody.  The third,
 * only when nothing else was wrong, runs the [tests] through the evaluator.
 * Every problem is reported as "FILE:LINE: what and how to fix".
 */
#include "policy/policy_int.h"
#include "base/error.h"
#include "base/fsutil.h"
#include "base/ini_parse.h"
#include "signal/msg.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))
#define QBUF		PP_INI_QBUF

#define NAME_RULE	"4-48 characters: letters, digits, space and _+-=/$%%#@!?,;()[]"
#define ITEM_RULE	PP_INI_ITEM_RULE
_Static_assert(PP_POLICY_ITEM_MAX == PP_INI_ITEM_MAX, "one rule for names");
#define ID_HINT		"paste what `peerpipe id` prints on that peer " \
			"(ed25519: and 43 characters)"

enum sect {		/* pp_ini's section ids */
	S_NONE,		/* 0: no open section */
	S_PEER,
	S_LEGACY,
	S_SERVICE,
	S_RULE,
	S_TESTS,
};

struct parser;
PP_INI_KEY_ROW(key, struct parser);

/* What a rule needs beyond the first pass (parallel to pol->rules). */
struct raw_rule {
	char *subj;		/* allow = or deny = */
	int subj_line;
	char *to;
	int to_line;
};

struct raw_test {
	int line;
	int allow;		/* expected */
	char *text;
};

struct parser {
	struct pp_ini ini;	/* first: pp_ini's callbacks get &p->ini */
	struct pp_policy *pol;
	int64_t now;
	size_t ngw_svcs;		/* the first pol->svcs are the gateway's */
	/* The open entry: the last of its array, or a spare one when it
	 * cannot be stored, so that its values are still checked. */
	struct pp__pol_peer *peer;
	struct pp__pol_service *svc;
	struct pp__pol_rule *rule;
	struct raw_rule *raw;
	struct pp__pol_peer spare_peer;
	struct pp__pol_service spare_svc;
	struct pp__pol_rule spare_rule;
	struct raw_rule spare_raw;
	int svc_merged;			/* the open [service] is a gateway's */
	size_t cap_peers, cap_groups, cap_svcs, cap_rules, cap_raws, cap_tests;
	size_t npeers_seen, nsvcs_seen, nrules_seen, ntests_seen;
	int groups_full;
	struct raw_rule *raws;
	struct raw_test *tests;
	size_t ntests;
	int nomem;
	char prefix[128];	/* "rule \"x\": " */
};

/* --- messages ----------------------------------------------------------- */

#define err_at(p, line, ...)	pp_ini_err(&(p)->ini, (line), __VA_ARGS__)
#define err(p, ...)	err_at((p), (p)->ini.line, __VA_ARGS__)

static const char *
q(char *buf, size_t size, const char *s, size_t len)
{
	return pp_ini_quote(buf, size, s, len);
}

/* --- small helpers ------------------------------------------------------ */

static int
grow(struct parser *p, void **arr, size_t *cap, size_t n, size_t elsize)
{
	void *a;
	size_t ncap;

	if (n < *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 8;
	if ((a = realloc(*arr, ncap * elsize)) == NULL) {
		if (!p->nomem)
			err_at(p, 0, "out of memory");
		p->nomem = 1;
		return -1;
	}
	memset((char *)a + *cap * elsize, 0, (ncap - *cap) * elsize);
	*arr = a;
	*cap = ncap;
	return 0;
}

static int
name_eq(const char *stored, const char *s, size_t len)
{
	return strlen(stored) == len && memcmp(stored, s, len) == 0;
}

/*
 * Splits a comma list; calls fn for each trimmed item (an empty one is
 * reported here).  Returns how many items there were.
 */
static size_t
each_item(struct parser *p, const char *key, const char *v, size_t len,
    void (*fn)(struct parser *p, const char *s, size_t len, void *arg),
    void *arg)
{
	const char *s = v, *a;
	size_t alen, n = 0;

	while (pp_ini_next_item(&s, v + len, &a, &alen)) {
		if (alen == 0)
			err(p, "%s%s: empty item between commas: remove the "
			    "extra comma", p->prefix, key);
		else
			fn(p, a, alen, arg), n++;
	}
	return n;
}

static int
peer_index(const struct pp_policy *pol, const char *s, size_t len)
{
	for (size_t i = 0; i < pol->npeers; i++)
		if (name_eq(pol->peers[i].name, s, len))
			return (int)i;
	return -1;
}

static int
group_index(const struct pp_policy *pol, const char *s, size_t len)
{
	for (size_t i = 0; i < pol->ngroups; i++)
		if (name_eq(pol->groups[i], s, len))
			return (int)i;
	return -1;
}

static int
service_index(const struct pp_policy *pol, const char *s, size_t len)
{
	for (size_t i = 0; i < pol->nsvcs; i++)
		if (name_eq(pol->svcs[i].name, s, len))
			return (int)i;
	return -1;
}

static const char *
proto_word(enum pp_tun_proto pr)
{
	return pr == PP_TUN_UDP ? "udp" : "tcp";
}

/* --- RFC 3339 ------------------------------------------------------------ */

static int
digits(const char *s, size_t n, int *out)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Leap years in [1970, y). */
static int64_t
leaps_since_1970(int y)
{
	int64_t a = y - 1, b = 1969;

	return (a / 4 - a / 100 + a / 400) - (b / 4 - b / 100 + b / 400);
}

int
pp_policy_time_parse(const char *s, size_t len, int64_t *out)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	size_t i = 19;
	int64_t days;

	/* YYYY-MM-DDTHH:MM:SS, then [.FRACTION], then Z or +HH:MM / -HH:MM */
	if (len < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':' ||
	    digits(s, 4, &y) < 0 || digits(s + 5, 2, &mo) < 0 ||
	    digits(s + 8, 2, &d) < 0 || digits(s + 11, 2, &h) < 0 ||
	    digits(s + 14, 2, &mi) < 0 || digits(s + 17, 2, &sec) < 0)
		return PP_EINVAL;
	if (s[i] == '.') {
		size_t f = ++i;

		while (i < len && s[i] >= '0' && s[i] <= '9')
			i++;
		if (i == f)
			return PP_EINVAL;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		sign = s[i] == '-' ? -1 : 1;
		if (len - i != 6 || s[i + 3] != ':' ||
		    digits(s + i + 1, 2, &oh) < 0 ||
		    digits(s + i + 4, 2, &om) < 0 || oh > 23 || om > 59)
			return PP_EINVAL;
		i += 6;
	} else {
		return PP_EINVAL;
	}
	if (i != len)
		return PP_EINVAL;
	/* Before 1970 cannot be an expiry anyone means. */
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 ||
	    d > mdays[mo - 1] + (mo == 2 && leap(y)) || h > 23 || mi > 59 ||
	    sec > 60)
		return PP_EINVAL;
	days = (int64_t)(y - 1970) * 365 + leaps_since_1970(y) + d - 1;
	for (int m = 1; m < mo; m++)
		days += mdays[m - 1] + (m == 2 && leap(y));
	/* A leap second (:60) counts as the next second, as POSIX time does. */
	*out = days * 86400 + h * 3600 + mi * 60 + sec -
	    sign * (oh * 3600 + om * 60);
	return 0;
}

/* --- setters ------------------------------------------------------------- */

static void
peer_key(struct parser *p, const char *v, size_t len)
{
	struct pp_policy *pol = p->pol;
	char qb[QBUF];

	if (pp_id_pub_parse(v, len, p->peer->key) < 0) {
		memset(p->peer->key, 0, sizeof(p->peer->key));
		err(p, "%skey %s is not an identity key: " ID_HINT, p->prefix,
		    q(qb, sizeof(qb), v, len));
		return;
	}
	/* A key is one device: two entries with it would make the name a
	 * matter of which entry the evaluator meets first. */
	for (size_t i = 0; i < pol->npeers; i++) {
		const struct pp__pol_peer *o = &pol->peers[i];

		if (o != p->peer && !o->legacy &&
		    memcmp(o->key, p->peer->key, PP_ID_PUB_LEN) == 0) {
			err(p, "%skey already belongs to peer \"%s\" (line %d): "
			    "each device has its own key; put both names' "
			    "groups on one entry", p->prefix, o->name, o->line);
			return;
		}
	}
}

static void
legacy_key(struct parser *p, const char *v, size_t len)
{
	(void)v, (void)len;
	err(p, "%sa [legacy] peer speaks protocol version 1 and has no key: "
	    "for a peer with an identity key write [peer %s] instead",
	    p->prefix, p->peer->name);
}

static void
add_group(struct parser *p, const char *s, size_t len, void *arg)
{
	struct pp_policy *pol = p->pol;
	struct pp__pol_peer *e = p->peer;
	char qb[QBUF];
	int g;

	(void)arg;
	if (!pp_ini_item_name_ok(s, len)) {
		err(p, "%sgroups: %s is not a valid group name: use " ITEM_RULE,
		    p->prefix, q(qb, sizeof(qb), s, len));
		return;
	}
	if ((g = group_index(pol, s, len)) < 0) {
		if (pol->ngroups == PP_POLICY_MAX_GROUPS) {
			if (!p->groups_full)
				err(p, "too many groups: at most %d in a policy",
				    PP_POLICY_MAX_GROUPS);
			p->groups_full = 1;
			return;
		}
		if (grow(p, (void **)&pol->groups, &p->cap_groups,
		    pol->ngroups, sizeof(pol->groups[0])) < 0)
			return;
		memcpy(pol->groups[pol->ngroups], s, len);
		pol->groups[pol->ngroups][len] = '\0';
		g = (int)pol->ngroups++;
	}
	for (size_t i = 0; i < e->ngroups; i++) {
		if (e->groups[i] == g) {
			err(p, "%sgroups: %s is listed twice: remove one",
			    p->prefix, q(qb, sizeof(qb), s, len));
			return;
		}
	}
	if (e->ngroups == PP_POLICY_MAX_PEER_GROUPS) {
		err(p, "%sgroups: at most %d groups per peer", p->prefix,
		    PP_POLICY_MAX_PEER_GROUPS);
		return;
	}
	e->groups[e->ngroups++] = (uint16_t)g;
}

static void
peer_groups(struct parser *p, const char *v, size_t len)
{
	each_item(p, "groups", v, len, add_group, NULL);
}

static void
service_port(struct parser *p, const char *v, size_t len)
{
	pp_ini_set_port(&p->ini, "port", &p->svc->port, v, len);
}

static int
parse_proto(const char *v, size_t len, enum pp_tun_proto *out)
{
	if (pp_ini_word_eq(v, len, "tcp"))
		*out = PP_TUN_TCP;
	else if (pp_ini_word_eq(v, len, "udp"))
		*out = PP_TUN_UDP;
	else
		return -1;
	return 0;
}

static void
service_proto(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	if (parse_proto(v, len, &p->svc->proto) < 0)
		err(p, "%sproto %s unknown: use tcp or udp", p->prefix,
		    q(qb, sizeof(qb), v, len));
}

static void
service_host(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	if (len >= 2 && v[0] == '[' && v[len - 1] == ']')
		v++, len -= 2;
	if (!pp_ini_host_ok(v, len) && !pp_ini_ip_literal(v, len, AF_INET6)) {
		err(p, "%shost %s is not a host name or IP address (no port "
		    "here: write it in `port =`)", p->prefix,
		    q(qb, sizeof(qb), v, len));
		return;
	}
	memcpy(p->svc->host, v, len);	/* host_ok bounded it to 253 */
	p->svc->host[len] = '\0';
}

static void
service_gateway(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	if (!pp_sig_name_valid(v, len)) {
		err(p, "%sgateway %s is not a valid peer name: use " NAME_RULE,
		    p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	memcpy(p->svc->gateway, v, len);
	p->svc->gateway[len] = '\0';
}

static void
rule_subjects(struct parser *p, int deny, const char *v, size_t len)
{
	int other = p->ini.key_line[deny ? 0 : 1];	/* allow is key 0, deny 1 */

	if (other) {
		err(p, "%sboth allow and deny (the other at line %d): a rule "
		    "does one of them; split it into two rules", p->prefix,
		    other);
		return;
	}
	p->rule->deny = deny;
	free(p->raw->subj);
	if ((p->raw->subj = strndup(v, len)) == NULL && !p->nomem) {
		err_at(p, 0, "out of memory");
		p->nomem = 1;
	}
	p->raw->subj_line = p->ini.line;
}

static void
rule_allow(struct parser *p, const char *v, size_t len)
{
	rule_subjects(p, 0, v, len);
}

static void
rule_deny(struct parser *p, const char *v, size_t len)
{
	rule_subjects(p, 1, v, len);
}

static void
rule_to(struct parser *p, const char *v, size_t len)
{
	free(p->raw->to);
	if ((p->raw->to = strndup(v, len)) == NULL && !p->nomem) {
		err_at(p, 0, "out of memory");
		p->nomem = 1;
	}
	p->raw->to_line = p->ini.line;
}

static void
add_gateway(struct parser *p, const char *s, size_t len, void *arg)
{
	struct pp__pol_rule *r = p->rule;
	char qb[QBUF];

	(void)arg;
	if (!pp_sig_name_valid(s, len)) {
		err(p, "%sgateway %s is not a valid peer name: use " NAME_RULE,
		    p->prefix, q(qb, sizeof(qb), s, len));
		return;
	}
	if (r->ngw == PP_POLICY_MAX_ITEMS) {
		err(p, "%sgateway: at most %d gateways per rule", p->prefix,
		    PP_POLICY_MAX_ITEMS);
		return;
	}
	memcpy(r->gw[r->ngw], s, len);
	r->gw[r->ngw++][len] = '\0';
}

static void
rule_gateway(struct parser *p, const char *v, size_t len)
{
	p->rule->ngw = 0;
	each_item(p, "gateway", v, len, add_gateway, NULL);
}

static void
rule_expires(struct parser *p, const char *v, size_t len)
{
	struct pp__pol_rule *r = p->rule;
	char qb[QBUF];

	if (len >= sizeof(r->expires_text) ||
	    pp_policy_time_parse(v, len, &r->expires) < 0) {
		err(p, "%sexpires %s is not an RFC 3339 time (1970-9999): write "
		    "it like 2025-06-30T18:00:00Z or 2025-06-30T20:00:00+02:00",
		    p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	r->has_expiry = 1;
	memcpy(r->expires_text, v, len);
	r->expires_text[len] = '\0';
}

static void
add_test(struct parser *p, int allow, const char *v, size_t len)
{
	struct raw_test *t;

	if (++p->ntests_seen > PP_POLICY_MAX_TESTS) {
		if (p->ntests_seen == PP_POLICY_MAX_TESTS + 1)
			err(p, "too many tests: at most %d", PP_POLICY_MAX_TESTS);
		return;
	}
	if (grow(p, (void **)&p->tests, &p->cap_tests, p->ntests,
	    sizeof(*p->tests)) < 0)
		return;
	t = &p->tests[p->ntests];
	if ((t->text = strndup(v, len)) == NULL) {
		if (!p->nomem)
			err_at(p, 0, "out of memory");
		p->nomem = 1;
		return;
	}
	t->line = p->ini.line;
	t->allow = allow;
	p->ntests++;
}

static void
tests_allow(struct parser *p, const char *v, size_t len)
{
	add_test(p, 1, v, len);
}

static void
tests_deny(struct parser *p, const char *v, size_t len)
{
	add_test(p, 0, v, len);
}

/* --- the section tables -------------------------------------------------- */

static const struct key peer_keys[] = {
	{ "key", peer_key, 0 },
	{ "groups", peer_groups, 0 },
};
static const struct key legacy_keys[] = {
	{ "key", legacy_key, 0 },
	{ "groups", peer_groups, 0 },
};
static const struct key service_keys[] = {
	{ "port", service_port, 0 },
	{ "proto", service_proto, 0 },
	{ "host", service_host, 0 },
	{ "gateway", service_gateway, 0 },
};
static const struct key rule_keys[] = {
	{ "allow", rule_allow, 0 },	/* index 0: rule_subjects() */
	{ "deny", rule_deny, 0 },	/* index 1 */
	{ "to", rule_to, 0 },
	{ "gateway", rule_gateway, 0 },
	{ "expires", rule_expires, 0 },
};
static const struct key tests_keys[] = {
	{ "allow", tests_allow, 1 },
	{ "deny", tests_deny, 1 },
};

static const struct pp_ini_section sections[] = {
	PP_INI_SECTION(S_PEER, "peer", 1, peer_keys),
	PP_INI_SECTION(S_LEGACY, "legacy", 1, legacy_keys),
	PP_INI_SECTION(S_SERVICE, "service", 1, service_keys),
	PP_INI_SECTION(S_RULE, "rule", 1, rule_keys),
	PP_INI_SECTION(S_TESTS, "tests", 0, tests_keys),
};

#define seen(p, key)	pp_ini_seen(&(p)->ini, (key))

/* --- sections ------------------------------------------------------------ */

static void
close_peer(struct parser *p)
{
	if (p->ini.sect == S_PEER && !seen(p, "key"))
		err_at(p, p->ini.sect_line, "%skey missing: add `key = "
		    "ed25519:...`: " ID_HINT, p->prefix);
}

static void
close_service(struct parser *p)
{
	struct pp_policy *pol = p->pol;
	struct pp__pol_service *s = p->svc;

	if (!seen(p, "port")) {
		err_at(p, p->ini.sect_line, "%sport missing: add `port = N`, the "
		    "port the gateway offers it on", p->prefix);
		return;
	}
	if (!p->svc_merged || s->port == 0)
		return;
	/* Named like one of the gateway's own services: the same thing or
	 * a contradiction, never a silent override of the gateway's config. */
	for (size_t i = 0; i < p->ngw_svcs; i++) {
		struct pp__pol_service *g = &pol->svcs[i];

		if (strcmp(g->name, s->name) != 0)
			continue;
		if (g->port != s->port || g->proto != s->proto) {
			err_at(p, seen(p, "port"), "%sthe gateway's config "
			    "offers service \"%s\" on %s/%u, not %s/%u: make "
			    "them agree or rename one", p->prefix, g->name,
			    proto_word(g->proto), g->port, proto_word(s->proto),
			    s->port);
			return;
		}
		snprintf(g->host, sizeof(g->host), "%s", s->host);
		snprintf(g->gateway, sizeof(g->gateway), "%s", s->gateway);
		g->line = s->line;
	}
}

static void
close_rule(struct parser *p)
{
	if (!seen(p, "allow") && !seen(p, "deny"))
		err_at(p, p->ini.sect_line, "%sallow or deny missing: add "
		    "`allow = group:NAME` (or peer:NAME, key:..., any), or "
		    "`deny = ...`", p->prefix);
	if (!seen(p, "to"))
		err_at(p, p->ini.sect_line, "%sto missing: add "
		    "`to = service:NAME` (or tcp/PORT, udp/PORT, tcp/LOW-HIGH, "
		    "any)", p->prefix);
}

/* pp_ini's close callback. */
static void
close_section(struct pp_ini *ini)
{
	struct parser *p = (struct parser *)ini;

	if (p->ini.sect == S_PEER)
		close_peer(p);
	else if (p->ini.sect == S_SERVICE)
		close_service(p);
	else if (p->ini.sect == S_RULE)
		close_rule(p);
}

/* [peer NAME] and [legacy NAME] share one name space: a name is one peer. */
static void
open_peer(struct parser *p, const char *name, size_t nlen)
{
	struct pp_policy *pol = p->pol;
	int i = peer_index(pol, name, nlen);

	p->peer = &p->spare_peer;
	if (i >= 0) {
		err(p, "peer \"%s\" already defined at line %d: give each "
		    "peer one entry", pol->peers[i].name, pol->peers[i].line);
	} else if (++p->npeers_seen > PP_POLICY_MAX_PEERS) {
		if (p->npeers_seen == PP_POLICY_MAX_PEERS + 1)
			err(p, "too many peers: at most %d [peer] and [legacy] "
			    "entries", PP_POLICY_MAX_PEERS);
	} else if (grow(p, (void **)&pol->peers, &p->cap_peers, pol->npeers,
	    sizeof(*pol->peers)) == 0) {
		p->peer = &pol->peers[pol->npeers++];
	}
	memset(p->peer, 0, sizeof(*p->peer));
	memcpy(p->peer->name, name, nlen);
	p->peer->legacy = p->ini.sect == S_LEGACY;
	p->peer->line = p->ini.line;
	snprintf(p->prefix, sizeof(p->prefix), "%s \"%s\": ", p->ini.sd->name,
	    p->peer->name);
}

static void
open_service(struct parser *p, const char *name, size_t nlen)
{
	struct pp_policy *pol = p->pol;
	int i = service_index(pol, name, nlen);

	p->svc = &p->spare_svc;
	p->svc_merged = 0;
	if (i >= 0 && (size_t)i < p->ngw_svcs && pol->svcs[i].line == 0) {
		/* Checked against the gateway's at the end of the section. */
		p->svc_merged = 1;
	} else if (i >= 0) {
		err(p, "service \"%s\" already defined at line %d: give each "
		    "service its own name", pol->svcs[i].name, pol->svcs[i].line);
	} else if (++p->nsvcs_seen + p->ngw_svcs > PP_POLICY_MAX_SERVICES) {
		if (p->nsvcs_seen + p->ngw_svcs == PP_POLICY_MAX_SERVICES + 1)
			err(p, "too many services: at most %d with the "
			    "gateway's own", PP_POLICY_MAX_SERVICES);
	} else if (grow(p, (void **)&pol->svcs, &p->cap_svcs, pol->nsvcs,
	    sizeof(*pol->svcs)) == 0) {
		p->svc = &pol->svcs[pol->nsvcs++];
	}
	memset(p->svc, 0, sizeof(*p->svc));
	memcpy(p->svc->name, name, nlen);
	p->svc->proto = PP_TUN_TCP;
	p->svc->line = p->ini.line;
	snprintf(p->prefix, sizeof(p->prefix), "service \"%s\": ", p->svc->name);
}

static void
open_rule(struct parser *p, const char *name, size_t nlen)
{
	struct pp_policy *pol = p->pol;

	p->rule = &p->spare_rule;
	p->raw = &p->spare_raw;
	for (size_t i = 0; i < pol->nrules; i++) {
		if (name_eq(pol->rules[i].name, name, nlen)) {
			err(p, "rule \"%s\" already defined at line %d: give "
			    "each rule its own name (decisions name it)",
			    pol->rules[i].name, pol->rules[i].line);
			goto fill;
		}
	}
	if (++p->nrules_seen > PP_POLICY_MAX_RULES) {
		if (p->nrules_seen == PP_POLICY_MAX_RULES + 1)
			err(p, "too many rules: at most %d", PP_POLICY_MAX_RULES);
	} else if (grow(p, (void **)&p->raws, &p->cap_raws, pol->nrules,
	    sizeof(*p->raws)) == 0 && grow(p, (void **)&pol->rules,
	    &p->cap_rules, pol->nrules, sizeof(*pol->rules)) == 0) {
		p->rule = &pol->rules[pol->nrules];
		p->raw = &p->raws[pol->nrules];
		pol->nrules++;
	}
fill:
	if (p->raw == &p->spare_raw) {
		free(p->spare_raw.subj);
		free(p->spare_raw.to);
		memset(&p->spare_raw, 0, sizeof(p->spare_raw));
	}
	memset(p->rule, 0, sizeof(*p->rule));
	memcpy(p->rule->name, name, nlen);
	p->rule->line = p->ini.line;
	snprintf(p->prefix, sizeof(p->prefix), "rule \"%s\": ", p->rule->name);
}

/* [peer NAME], [legacy NAME], [service NAME], [rule NAME]: pp_ini's open
 * callback. */
static int
open_named(struct pp_ini *ini, const char *name, size_t nlen)
{
	struct parser *p = (struct parser *)ini;
	const char *sect = ini->sd->name;
	char qb[QBUF];

	if (ini->sect == S_PEER || ini->sect == S_LEGACY) {
		if (!pp_sig_name_valid(name, nlen)) {
			err(p, "%s name %s invalid: it is the peer's user name "
			    "in the room, " NAME_RULE, sect,
			    q(qb, sizeof(qb), name, nlen));
			return -1;
		}
		open_peer(p, name, nlen);
		return 0;
	}
	if (!pp_ini_item_name_ok(name, nlen)) {
		err(p, "%s name %s invalid: use " ITEM_RULE, sect,
		    q(qb, sizeof(qb), name, nlen));
		return -1;
	}
	if (ini->sect == S_SERVICE)
		open_service(p, name, nlen);
	else
		open_rule(p, name, nlen);
	return 0;
}

/* Key i of the open section (pp_ini's set callback). */
static void
set_key(struct pp_ini *ini, size_t i, const char *v, size_t len)
{
	((const struct key *)ini->sd->keys)[i].set((struct parser *)ini, v, len);
}

static const struct pp_ini_syntax syntax = {
	sections, NELEM(sections), "",
	open_named, set_key, close_section,
};

/* --- pass 2: rules' subjects and objects -------------------------------- */

struct resolve {
	struct pp__pol_rule *rule;
	const char *key;
	int full;
};

static void
add_subject(struct parser *p, const char *s, size_t len, void *arg)
{
	struct resolve *rs = arg;
	struct pp__pol_rule *r = rs->rule;
	struct pp_policy *pol = p->pol;
	struct pp__pol_subj sj;
	char qb[QBUF];
	int i;

	memset(&sj, 0, sizeof(sj));
	if (pp_ini_word_eq(s, len, "any")) {
		sj.kind = PP__SUBJ_ANY;
	} else if (len > 5 && memcmp(s, "peer:", 5) == 0) {
		if ((i = peer_index(pol, s + 5, len - 5)) < 0) {
			err(p, "%speer %s is not defined: add a [peer NAME] or "
			    "[legacy NAME] section for it", p->prefix,
			    q(qb, sizeof(qb), s + 5, len - 5));
			return;
		}
		sj.kind = PP__SUBJ_PEER;
		sj.idx = (uint32_t)i;
	} else if (len > 6 && memcmp(s, "group:", 6) == 0) {
		if ((i = group_index(pol, s + 6, len - 6)) < 0) {
			err(p, "%sgroup %s has no members: no [peer] or [legacy] "
			    "lists it in `groups =` (a typo?)", p->prefix,
			    q(qb, sizeof(qb), s + 6, len - 6));
			return;
		}
		sj.kind = PP__SUBJ_GROUP;
		sj.idx = (uint32_t)i;
	} else if (len > 4 && memcmp(s, "key:", 4) == 0) {
		if (pp_id_pub_parse(s + 4, len - 4, sj.key) < 0) {
			err(p, "%s%s is not an identity key: after key: " ID_HINT,
			    p->prefix, q(qb, sizeof(qb), s, len));
			return;
		}
		/* One spelling per identity: a key that has an entry is
		 * that entry, and only with its name. */
		for (size_t k = 0; k < pol->npeers; k++) {
			if (!pol->peers[k].legacy && memcmp(pol->peers[k].key,
			    sj.key, PP_ID_PUB_LEN) == 0) {
				err(p, "%s%s is the key of peer \"%s\" (line %d): "
				    "write peer:%s", p->prefix,
				    q(qb, sizeof(qb), s, len), pol->peers[k].name,
				    pol->peers[k].line, pol->peers[k].name);
				return;
			}
		}
		sj.kind = PP__SUBJ_KEY;
	} else {
		err(p, "%s%s: unknown subject %s: write peer:NAME, group:NAME, "
		    "key:ed25519:... or any", p->prefix, rs->key,
		    q(qb, sizeof(qb), s, len));
		return;
	}
	if (r->nsubj == PP_POLICY_MAX_ITEMS) {
		if (!rs->full)
			err(p, "%s%s: at most %d subjects per rule: use a group",
			    p->prefix, rs->key, PP_POLICY_MAX_ITEMS);
		rs->full = 1;
		return;
	}
	r->subj[r->nsubj++] = sj;
}

/*
 * tcp/PORT, udp/PORT, tcp/LOW-HIGH: 0 or -1 with why.  range: whether a
 * range is allowed here.
 */
static int
parse_ports(const char *s, size_t len, int range, enum pp_tun_proto *proto,
    uint16_t *lo, uint16_t *hi, char *why, size_t whylen)
{
	const char *slash = memchr(s, '/', len), *a, *dash;
	size_t alen;

	if (slash == NULL || parse_proto(s, (size_t)(slash - s), proto) < 0) {
		snprintf(why, whylen, "use tcp/PORT or udp/PORT%s", range ?
		    ", tcp/LOW-HIGH" : "");
		return -1;
	}
	a = slash + 1;
	alen = len - (size_t)(a - s);
	dash = range ? memchr(a, '-', alen) : NULL;
	if (dash == NULL) {
		if (pp_ini_port("port", a, alen, lo, why, whylen) < 0)
			return -1;
		*hi = *lo;
		return 0;
	}
	if (pp_ini_port("port", a, (size_t)(dash - a), lo, why, whylen) < 0 ||
	    pp_ini_port("port", dash + 1, alen - (size_t)(dash + 1 - a), hi,
	    why, whylen) < 0)
		return -1;
	if (*lo > *hi) {
		snprintf(why, whylen, "range %u-%u is reversed: write %u-%u",
		    *lo, *hi, *hi, *lo);
		return -1;
	}
	return 0;
}

static void
add_object(struct parser *p, const char *s, size_t len, void *arg)
{
	struct resolve *rs = arg;
	struct pp__pol_rule *r = rs->rule;
	struct pp__pol_obj ob;
	char qb[QBUF], why[PP_INI_WHY];
	int i;

	memset(&ob, 0, sizeof(ob));
	if (pp_ini_word_eq(s, len, "any")) {
		ob.kind = PP__OBJ_ANY;
	} else if (len > 8 && memcmp(s, "service:", 8) == 0) {
		if ((i = service_index(p->pol, s + 8, len - 8)) < 0) {
			err(p, "%sservice %s is neither in this policy nor in "
			    "the gateway's config: add a [service NAME] section "
			    "(port, proto)", p->prefix,
			    q(qb, sizeof(qb), s + 8, len - 8));
			return;
		}
		ob.kind = PP__OBJ_SERVICE;
		ob.idx = (uint32_t)i;
	} else if (memchr(s, '/', len) != NULL) {
		if (parse_ports(s, len, 1, &ob.proto, &ob.lo, &ob.hi, why,
		    sizeof(why)) < 0) {
			err(p, "%sto: %s: %s", p->prefix,
			    q(qb, sizeof(qb), s, len), why);
			return;
		}
		ob.kind = PP__OBJ_PORTS;
	} else {
		err(p, "%sto: unknown object %s: write service:NAME, tcp/PORT, "
		    "udp/PORT, tcp/LOW-HIGH or any", p->prefix,
		    q(qb, sizeof(qb), s, len));
		return;
	}
	if (r->nobj == PP_POLICY_MAX_ITEMS) {
		if (!rs->full)
			err(p, "%sto: at most %d objects per rule: use a port "
			    "range", p->prefix, PP_POLICY_MAX_ITEMS);
		rs->full = 1;
		return;
	}
	r->obj[r->nobj++] = ob;
}

static void
resolve_rules(struct parser *p)
{
	struct pp_policy *pol = p->pol;

	for (size_t i = 0; i < pol->nrules; i++) {
		struct pp__pol_rule *r = &pol->rules[i];
		struct raw_rule *raw = &p->raws[i];
		struct resolve rs = { r, r->deny ? "deny" : "allow", 0 };

		snprintf(p->prefix, sizeof(p->prefix), "rule \"%s\": ", r->name);
		if (raw->subj != NULL) {
			p->ini.line = raw->subj_line;
			each_item(p, rs.key, raw->subj, strlen(raw->subj),
			    add_subject, &rs);
		}
		if (raw->to != NULL) {
			rs.key = "to";
			rs.full = 0;
			p->ini.line = raw->to_line;
			each_item(p, "to", raw->to, strlen(raw->to), add_object,
			    &rs);
		}
	}
}

/* --- pass 3: tests ------------------------------------------------------- */

/* "alice -> db", "v1:bob -> tcp/22 on site-b", "key:ed25519:... -> udp/53" */
static void
run_test(struct parser *p, const struct raw_test *t)
{
	struct pp_policy *pol = p->pol;
	const char *s = t->text, *arrow = strstr(s, "->"), *a, *b, *o, *oe;
	const char *gw = NULL;
	struct pp_policy_peer_id who = { NULL, NULL };
	struct pp_policy_decision d;
	enum pp_tun_proto proto;
	uint16_t port, hi;
	char qb[QBUF], why[PP_INI_WHY], name[PP_TUN_NAME_MAX + 1] = "";
	char gwname[PP_TUN_NAME_MAX + 1], objdesc[96];
	uint8_t key[PP_ID_PUB_LEN];
	int i, rc;

	p->ini.line = t->line;
	snprintf(p->prefix, sizeof(p->prefix), "test %s: ",
	    q(qb, sizeof(qb), s, strlen(s)));
	if (arrow == NULL) {
		err(p, "%swrite `%s = PEER -> SERVICE` (or -> tcp/PORT, "
		    "optionally `on GATEWAY`)", p->prefix, t->allow ? "allow" :
		    "deny");
		return;
	}
	/* The subject: who connects. */
	for (a = s; pp_ini_is_space(*a); a++)
		;
	for (b = arrow; b > a && pp_ini_is_space(b[-1]); b--)
		;
	if (b - a > 3 && memcmp(a, "v1:", 3) == 0) {
		if (!pp_sig_name_valid(a + 3, (size_t)(b - a - 3))) {
			err(p, "%sv1:%s is not a valid peer name: " NAME_RULE,
			    p->prefix, q(qb, sizeof(qb), a + 3,
			    (size_t)(b - a - 3)));
			return;
		}
		memcpy(name, a + 3, (size_t)(b - a - 3));
		name[b - a - 3] = '\0';
		who.name = name;
	} else if (b - a > 4 && memcmp(a, "key:", 4) == 0) {
		if (pp_id_pub_parse(a + 4, (size_t)(b - a - 4), key) < 0) {
			err(p, "%s%s is not an identity key: " ID_HINT,
			    p->prefix, q(qb, sizeof(qb), a, (size_t)(b - a)));
			return;
		}
		who.name = "";
		who.key = key;
	} else {
		if (b - a > 5 && memcmp(a, "peer:", 5) == 0)
			a += 5;
		if ((i = peer_index(pol, a, (size_t)(b - a))) < 0) {
			err(p, "%speer %s is not in the policy: test an entry, "
			    "or v1:NAME / key:ed25519:... for a stranger",
			    p->prefix, q(qb, sizeof(qb), a, (size_t)(b - a)));
			return;
		}
		who.name = pol->peers[i].name;
		who.key = pol->peers[i].legacy ? NULL : pol->peers[i].key;
	}
	/* The object: one service or port, then `on GATEWAY`. */
	for (o = arrow + 2; pp_ini_is_space(*o); o++)
		;
	for (oe = o; *oe && !pp_ini_is_space(*oe); oe++)
		;
	for (a = oe; pp_ini_is_space(*a); a++)
		;
	if (*a != '\0') {
		if (strncmp(a, "on", 2) != 0 || !pp_ini_is_space(a[2])) {
			err(p, "%sunexpected %s after the service: write "
			    "`on GATEWAY` to test on one gateway", p->prefix,
			    q(qb, sizeof(qb), a, strlen(a)));
			return;
		}
		for (a += 3; pp_ini_is_space(*a); a++)
			;
		if (!pp_sig_name_valid(a, strlen(a))) {
			err(p, "%sgateway %s is not a valid peer name: " NAME_RULE,
			    p->prefix, q(qb, sizeof(qb), a, strlen(a)));
			return;
		}
		snprintf(gwname, sizeof(gwname), "%s", a);
		gw = gwname;
	}
	if (memchr(o, '/', (size_t)(oe - o)) != NULL) {
		if (parse_ports(o, (size_t)(oe - o), 0, &proto, &port, &hi, why,
		    sizeof(why)) < 0) {
			err(p, "%s%s", p->prefix, why);
			return;
		}
		snprintf(objdesc, sizeof(objdesc), "%s/%u", proto_word(proto),
		    port);
	} else {
		if (oe - o > 8 && memcmp(o, "service:", 8) == 0)
			o += 8;
		if ((i = service_index(pol, o, (size_t)(oe - o))) < 0) {
			err(p, "%sservice %s is neither in this policy nor in the "
			    "gateway's config", p->prefix,
			    q(qb, sizeof(qb), o, (size_t)(oe - o)));
			return;
		}
		proto = pol->svcs[i].proto;
		port = pol->svcs[i].port;
		if (gw == NULL && pol->svcs[i].gateway[0])
			gw = pol->svcs[i].gateway;
		snprintf(objdesc, sizeof(objdesc), "%s/%u", proto_word(proto),
		    port);
	}
	rc = pp_policy_decide(pol, gw, &who, proto, port, p->now, &d);
	if ((rc == 0) == t->allow)
		return;
	if (d.line > 0)
		err(p, "test failed: %s = %s (%s%s%s): expected %s, got %s by "
		    "rule \"%s\" (line %d): %s", t->allow ? "allow" : "deny",
		    t->text, objdesc, gw ? " on " : "", gw ? gw : "",
		    t->allow ? "allow" : "deny", rc == 0 ? "allow" : "deny",
		    d.rule, d.line, d.reason);
	else
		err(p, "test failed: %s = %s (%s%s%s): expected allow, got deny "
		    "by default deny: %s", t->allow ? "allow" : "deny", t->text,
		    objdesc, gw ? " on " : "", gw ? gw : "", d.reason);
}

/* --- API ----------------------------------------------------------------- */

static void
import_services(struct parser *p, const struct pp_policy_service *svcs,
    size_t n)
{
	struct pp_policy *pol = p->pol;

	for (size_t i = 0; i < n; i++) {
		struct pp__pol_service *s;
		size_t len = svcs[i].name ? strlen(svcs[i].name) : 0;

		/* The gateway's config validated these; a name this parser
		 * could not print back, or a second one, is skipped. */
		if (!pp_ini_item_name_ok(svcs[i].name, len) || svcs[i].port == 0 ||
		    service_index(pol, svcs[i].name, len) >= 0)
			continue;
		if (pol->nsvcs == PP_POLICY_MAX_SERVICES) {
			err_at(p, 0, "the gateway offers more than %d services",
			    PP_POLICY_MAX_SERVICES);
			return;
		}
		if (grow(p, (void **)&pol->svcs, &p->cap_svcs, pol->nsvcs,
		    sizeof(*pol->svcs)) < 0)
			return;
		s = &pol->svcs[pol->nsvcs++];
		memcpy(s->name, svcs[i].name, len);
		s->port = svcs[i].port;
		s->proto = svcs[i].proto == PP_TUN_UDP ? PP_TUN_UDP : PP_TUN_TCP;
	}
	p->ngw_svcs = pol->nsvcs;
}

static void
parser_fini(struct parser *p)
{
	struct pp_policy *pol = p->pol;

	if (p->raws != NULL)
		for (size_t i = 0; i < pol->nrules; i++) {
			free(p->raws[i].subj);
			free(p->raws[i].to);
		}
	free(p->raws);
	free(p->spare_raw.subj);
	free(p->spare_raw.to);
	for (size_t i = 0; i < p->ntests; i++)
		free(p->tests[i].text);
	free(p->tests);
}

int
pp_policy_parse(const char *path, const char *text, size_t len,
    const struct pp_policy_service *svcs, size_t nsvcs, int64_t now,
    struct pp_policy **out, struct pp_policy_errors *errs)
{
	struct parser p;

	*out = NULL;
	memset(&p, 0, sizeof(p));
	memset(errs, 0, sizeof(*errs));
	pp_ini_init(&p.ini, &syntax, path != NULL ? path : "(policy)",
	    errs->msg, PP_POLICY_MAX_ERRORS, &errs->n, p.prefix,
	    sizeof(p.prefix));
	p.now = now;
	if ((p.pol = calloc(1, sizeof(*p.pol))) == NULL) {
		err_at(&p, 0, "out of memory");
		return PP_ECONFIG;
	}
	if (svcs != NULL)
		import_services(&p, svcs, nsvcs);
	if (pp_ini_parse(&p.ini, text, len, PP_POLICY_FILE_MAX,
	    PP_POLICY_LINE_MAX) < 0)
		goto fail;
	resolve_rules(&p);
	if (errs->n == 0) {
		pp__pol_hash(p.pol);
		for (size_t i = 0; i < p.ntests; i++)
			run_test(&p, &p.tests[i]);
	}
	if (errs->n != 0)
		goto fail;
	parser_fini(&p);
	*out = p.pol;
	return 0;

fail:
	parser_fini(&p);
	pp_policy_free(p.pol);
	return PP_ECONFIG;
}

void
pp_policy_free(struct pp_policy *pol)
{
	if (pol == NULL)
		return;
	free(pol->peers);
	free(pol->groups);
	free(pol->svcs);
	free(pol->rules);
	free(pol);
}

int
pp_policy_load(const char *path, const struct pp_policy_service *svcs,
    size_t nsvcs, int64_t now, struct pp_policy **out,
    struct pp_policy_errors *errs)
{
	char *buf;
	size_t len;
	int rc;

	*out = NULL;
	if ((rc = pp_read_file(path, PP_POLICY_FILE_MAX, &buf, &len)) < 0) {
		memset(errs, 0, sizeof(*errs));
		snprintf(errs->msg[0], sizeof(errs->msg[0]), "%s: cannot read: %s",
		    path, strerror(-rc));
		errs->n = 1;
		return PP_ECONFIG;
	}
	rc = pp_policy_parse(path, buf, len, svcs, nsvcs, now, out, errs);
	free(buf);
	return rc;
}
