/* lib/policy: the gateway's access policy, parsed and decided. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "identity/identity.h"
#include "policy/policy.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_NAME	"test.policy"
#define NOW		1748736000	/* 2025-06-01T00:00:00Z */
#define T2030		1893456000	/* 2030-01-01T00:00:00Z */
#define T2025		1735689600	/* 2025-01-01T00:00:00Z */

static struct pp_policy_errors errs;	/* large: off the stack */

/* The gateway's own services, as its config would pass them. */
static const struct pp_policy_service gw_svcs[] = {
	{ "web", 80, PP_TUN_TCP },
	{ "db", 5432, PP_TUN_TCP },
	{ "dns", 53, PP_TUN_UDP },
};

/*
 * Keys are 32 bytes of one letter: A alice, B bert, C gw-office, D gw-dc,
 * G carol, E a CI runner named only by a key: subject, F a stranger.
 */
static const uint8_t *
key(char c)
{
	static uint8_t keys[26][PP_ID_PUB_LEN];

	memset(keys[c - 'A'], c, PP_ID_PUB_LEN);
	return keys[c - 'A'];
}

/* The template with every @X replaced by key X's text form; static. */
static const char *
expand(const char *tmpl)
{
	static char out[1 << 16];
	size_t o = 0;

	for (const char *s = tmpl; *s && o + PP_ID_PUB_STRLEN + 1 < sizeof(out);
	    s++) {
		if (s[0] == '@' && s[1] >= 'A' && s[1] <= 'Z') {
			pp_id_pub_format(key(s[1]), out + o, sizeof(out) - o);
			o += strlen(out + o);
			s++;
		} else {
			out[o++] = *s;
		}
	}
	out[o] = '\0';
	return out;
}

static int
parse_at(const char *tmpl, int64_t now, struct pp_policy **pol)
{
	const char *text = expand(tmpl);

	return pp_policy_parse(FILE_NAME, text, strlen(text), gw_svcs, 3, now,
	    pol, &errs);
}

static void
print_errors(void)
{
	for (size_t i = 0; i < errs.n && i < PP_POLICY_MAX_ERRORS; i++)
		print_message("  %s\n", errs.msg[i]);
}

static struct pp_policy *
must_parse(const char *tmpl)
{
	struct pp_policy *pol = NULL;
	int rc = parse_at(tmpl, NOW, &pol);

	if (rc != 0)
		print_errors();
	assert_int_equal(rc, 0);
	assert_int_equal(errs.n, 0);
	assert_non_null(pol);
	return pol;
}

static void
assert_msg(const char *msg, int line, const char *sub)
{
	char prefix[64];

	if (line > 0)
		snprintf(prefix, sizeof(prefix), FILE_NAME ":%d: ", line);
	else
		snprintf(prefix, sizeof(prefix), FILE_NAME ": ");
	if (strncmp(msg, prefix, strlen(prefix)) != 0 || strstr(msg, sub) == NULL) {
		print_message("want %s...%s\n got %s\n", prefix, sub, msg);
		fail();
	}
}

/* A realistic policy: two sites, staff, contractors, admins, a CI runner
 * known only by its key, and an old v1 scanner. */
static const char acme[] =
	"# Acme: an office gateway (gw-office), a datacenter one (gw-dc).\n"
	"[peer alice]\n"
	"key = @A\n"
	"groups = staff, remote\n"
	"\n"								/* 5 */
	"[peer bert]\n"
	"key = @B\n"
	"groups = staff, contractors, remote\n"
	"\n"
	"[peer carol]\n"						/* 10 */
	"key = @G\n"
	"groups = admins\n"
	"\n"
	"[peer gw-office]\n"
	"key = @C\n"							/* 15 */
	"groups = sites\n"
	"\n"
	"[peer gw-dc]\n"
	"key = @D\n"
	"groups = sites\n"						/* 20 */
	"\n"
	"[legacy old-scanner]\n"
	"groups = printers\n"
	"\n"
	"[service wiki]\n"						/* 25 */
	"port = 8080\n"
	"host = 10.0.0.20\n"
	"\n"
	"[service dc-db]\n"
	"port = 5432\n"							/* 30 */
	"gateway = gw-dc\n"
	"\n"
	"[rule remote-web]\n"
	"allow = group:remote\n"
	"to = service:web, service:wiki, tcp/8000-8100\n"		/* 35 */
	"\n"
	"[rule staff-db]\n"
	"allow = group:staff\n"
	"to = service:db\n"
	"\n"								/* 40 */
	"[rule no-contractor-db]\n"
	"deny = group:contractors\n"
	"to = service:db\n"
	"\n"
	"[rule office-to-dc]   # one way: gw-dc gets nothing at the office\n" /* 45 */
	"allow = peer:gw-office\n"
	"to = service:dc-db\n"
	"gateway = gw-dc\n"
	"\n"
	"[rule scanner-syslog]\n"					/* 50 */
	"allow = peer:old-scanner\n"
	"to = udp/514\n"
	"\n"
	"[rule bert-ssh]\n"
	"allow = peer:bert\n"						/* 55 */
	"to = tcp/22\n"
	"expires = 2030-01-01T00:00:00Z\n"
	"\n"
	"[rule old-rdp]\n"
	"allow = group:staff\n"						/* 60 */
	"to = tcp/3389\n"
	"expires = 2025-01-01T02:00:00+02:00\n"
	"\n"
	"[rule ci]\n"
	"allow = key:@E\n"						/* 65 */
	"to = tcp/9000\n"
	"\n"
	"[rule admins]\n"
	"allow = group:admins\n"
	"to = any\n"							/* 70 */
	"\n"
	"[rule no-telnet]\n"
	"deny = any\n"
	"to = tcp/23\n"
	"\n"								/* 75 */
	"[tests]\n"
	"allow = alice -> db\n"
	"deny = bert -> db\n"
	"allow = gw-office -> dc-db\n"
	"deny = gw-dc -> tcp/5432 on gw-office\n"			/* 80 */
	"allow = old-scanner -> udp/514\n"
	"deny = v1:alice -> db\n"
	"deny = carol -> tcp/23\n"
	"allow = key:@E -> tcp/9000\n"
	"allow = peer:carol -> service:dns\n";				/* 85 */

#define U	PP_TUN_UDP
#define T	PP_TUN_TCP
#define V1	'\0'		/* no key: a version-1 peer */
#define DEF	"default deny"

static const struct {
	const char *gw;
	const char *name;
	char key;
	enum pp_tun_proto proto;
	uint16_t port;
	int64_t now;		/* 0: NOW */
	int allow;
	const char *rule;
	int line;
	int legacy;
	const char *reason;	/* a part of it, or NULL */
} decisions[] = {
	/* groups */
	{ "gw-dc", "alice", 'A', T, 5432, 0, 1, "staff-db", 37, 0,
	    "group:staff (peer \"alice\") -> service:db (tcp/5432)" },
	{ "gw-dc", "alice", 'A', T, 80, 0, 1, "remote-web", 33, 0, "service:web" },
	/* deny wins, though the allow comes first in the file */
	{ "gw-dc", "bert", 'B', T, 5432, 0, 0, "no-contractor-db", 41, 0,
	    "group:contractors" },
	/* port range edges; the protocol counts */
	{ "gw-dc", "alice", 'A', T, 7999, 0, 0, DEF, 0, 0,
	    "no rule allows peer \"alice\" tcp/7999" },
	{ "gw-dc", "alice", 'A', T, 8000, 0, 1, "remote-web", 33, 0,
	    "tcp/8000-8100" },
	{ "gw-dc", "alice", 'A', T, 8080, 0, 1, "remote-web", 33, 0,
	    "service:wiki" },
	{ "gw-dc", "alice", 'A', T, 8100, 0, 1, "remote-web", 33, 0, NULL },
	{ "gw-dc", "alice", 'A', T, 8101, 0, 0, DEF, 0, 0, NULL },
	{ "gw-dc", "alice", 'A', U, 8000, 0, 0, DEF, 0, 0, NULL },
	/* a name with another key is not that peer */
	{ "gw-dc", "alice", 'F', T, 80, 0, 0, DEF, 0, 0,
	    "not the key of [peer alice] (line 2): it is not that peer" },
	{ "gw-dc", "alice", 'B', T, 80, 0, 0, DEF, 0, 0, "is not that peer" },
	{ "gw-dc", "bert", 'A', T, 5432, 0, 0, DEF, 0, 0, NULL },
	/* v1 peers: only [legacy] entries, and then flagged */
	{ "gw-dc", "alice", V1, T, 80, 0, 0, DEF, 0, 0,
	    "v1 peer \"alice\" has no identity key" },
	{ "gw-dc", "old-scanner", V1, U, 514, 0, 1, "scanner-syslog", 50, 1,
	    "peer:old-scanner (v1 peer \"old-scanner\")" },
	{ "gw-dc", "old-scanner", V1, T, 80, 0, 0, DEF, 0, 1, NULL },
	{ "gw-dc", "old-scanner", 'F', U, 514, 0, 0, DEF, 0, 0,
	    "matches only version-1 peers" },
	{ "gw-dc", "mallory", V1, U, 514, 0, 0, DEF, 0, 0,
	    "v1 peer \"mallory\" is not listed in a [legacy] entry" },
	/* one-way site to site */
	{ "gw-dc", "gw-office", 'C', T, 5432, 0, 1, "office-to-dc", 45, 0,
	    "service:dc-db" },
	{ "gw-office", "gw-office", 'C', T, 5432, 0, 0, DEF, 0, 0, NULL },
	{ "gw-office", "gw-dc", 'D', T, 5432, 0, 0, DEF, 0, 0, NULL },
	{ "gw-office", "gw-dc", 'D', T, 80, 0, 0, DEF, 0, 0, NULL },
	{ NULL, "gw-office", 'C', T, 5432, 0, 0, DEF, 0, 0, NULL },
	{ "", "gw-office", 'C', T, 5432, 0, 0, DEF, 0, 0, NULL },
	/* expiry: applies while now < expires */
	{ "gw-dc", "bert", 'B', T, 22, 0, 1, "bert-ssh", 54, 0, NULL },
	{ "gw-dc", "bert", 'B', T, 22, T2030 - 1, 1, "bert-ssh", 54, 0, NULL },
	{ "gw-dc", "bert", 'B', T, 22, T2030, 0, DEF, 0, 0, NULL },
	{ "gw-dc", "alice", 'A', T, 3389, 0, 0, DEF, 0, 0, NULL },
	{ "gw-dc", "alice", 'A', T, 3389, T2025 - 1, 1, "old-rdp", 59, 0, NULL },
	{ "gw-dc", "alice", 'A', T, 3389, T2025, 0, DEF, 0, 0, NULL },
	/* key: subjects, whatever the name; `any` covers them, not strangers */
	{ "gw-dc", "ci-runner", 'E', T, 9000, 0, 1, "ci", 64, 0,
	    "key:ed25519:" },
	{ "gw-dc", "alice", 'E', T, 9000, 0, 1, "ci", 64, 0, NULL },
	{ "gw-dc", "ci-runner", 'E', T, 23, 0, 0, "no-telnet", 72, 0, NULL },
	{ "gw-dc", "stranger", 'F', T, 9000, 0, 0, DEF, 0, 0,
	    "is not in the policy" },
	{ "gw-dc", "stranger", 'F', T, 23, 0, 0, DEF, 0, 0, NULL },
	/* deny any beats allow any */
	{ "gw-dc", "carol", 'G', T, 23, 0, 0, "no-telnet", 72, 0, NULL },
	{ "gw-dc", "carol", 'G', T, 3306, 0, 1, "admins", 68, 0, "-> any" },
	{ "gw-dc", "carol", 'G', U, 53, 0, 1, "admins", 68, 0, NULL },
	{ "gw-dc", "alice", 'A', T, 23, 0, 0, "no-telnet", 72, 0, NULL },
	{ "gw-dc", "old-scanner", V1, T, 23, 0, 0, "no-telnet", 72, 1, NULL },
	{ "gw-dc", "mallory", V1, T, 23, 0, 0, DEF, 0, 0, NULL },
};

static void
test_decisions(void **state)
{
	struct pp_policy *pol = must_parse(acme);

	(void)state;
	for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++) {
		struct pp_policy_peer_id who = { decisions[i].name,
		    decisions[i].key ? key(decisions[i].key) : NULL };
		struct pp_policy_decision d;
		int64_t now = decisions[i].now ? decisions[i].now : NOW;
		int rc = pp_policy_decide(pol, decisions[i].gw, &who,
		    decisions[i].proto, decisions[i].port, now, &d);

		if ((rc == 0) != decisions[i].allow ||
		    (d.verdict == PP_POLICY_ALLOW) != decisions[i].allow ||
		    strcmp(d.rule, decisions[i].rule) != 0 ||
		    d.line != decisions[i].line ||
		    d.legacy != decisions[i].legacy ||
		    (decisions[i].reason != NULL &&
		    strstr(d.reason, decisions[i].reason) == NULL)) {
			print_message("row %zu: %s %s %c %u: got rc %d %s "
			    "line %d legacy %d: %s\n", i, decisions[i].gw,
			    decisions[i].name, decisions[i].key ?
			    decisions[i].key : '-', decisions[i].port, rc,
			    d.rule, d.line, d.legacy, d.reason);
			fail();
		}
		assert_true(rc == 0 || rc == PP_EDENIED);
		/* The entry it matched, when it matched one. */
		if (decisions[i].legacy)
			assert_string_equal(d.peer, decisions[i].name);
	}
	pp_policy_free(pol);
}

static void
test_offer(void **state)
{
	static const struct pp_tun_port ports[] = {
		{ 80, PP_TUN_TCP }, { 5432, PP_TUN_TCP }, { 53, PP_TUN_UDP },
		{ 8050, PP_TUN_TCP }, { 22, PP_TUN_TCP }, { 23, PP_TUN_TCP },
	};
	static const struct {
		const char *name;
		char key;
		const char *gw;
		const char *want;	/* the offered ports, in order */
	} rows[] = {
		{ "alice", 'A', "gw-dc", "80 5432 8050" },
		{ "bert", 'B', "gw-dc", "80 8050 22" },
		{ "carol", 'G', "gw-dc", "80 5432 53 8050 22" },
		{ "gw-office", 'C', "gw-dc", "5432" },
		{ "gw-office", 'C', "gw-office", "" },
		{ "alice", 'F', "gw-dc", "" },
		{ "mallory", V1, "gw-dc", "" },
		{ "old-scanner", V1, "gw-dc", "" },
	};
	struct pp_policy *pol = must_parse(acme);

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct pp_policy_peer_id who = { rows[i].name,
		    rows[i].key ? key(rows[i].key) : NULL };
		struct pp_tun_port out[6];
		char got[64] = "";
		size_t n = pp_policy_offer(pol, rows[i].gw, &who, NOW, ports, 6,
		    out);

		for (size_t j = 0; j < n; j++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got),
			    "%s%u", j ? " " : "", out[j].port);
		if (strcmp(got, rows[i].want) != 0) {
			print_message("row %zu (%s): want \"%s\" got \"%s\"\n", i,
			    rows[i].name, rows[i].want, got);
			fail();
		}
	}
	pp_policy_free(pol);
}

static void
test_explain(void **state)
{
	struct pp_policy *pol = must_parse(acme);
	struct pp_policy_peer_id bert = { "bert", key('B') };
	struct pp_policy_peer_id alice = { "alice", key('A') };
	static char buf[8192];
	char small[120];
	int rc;

	(void)state;
	rc = pp_policy_explain(pol, "gw-dc", &bert, PP_TUN_TCP, 5432, NOW, buf,
	    sizeof(buf));
	assert_int_equal(rc, PP_EDENIED);
	assert_non_null(strstr(buf, "peer \"bert\": [peer bert] at line 6, key "
	    "ed25519:"));
	assert_non_null(strstr(buf, "groups: staff, contractors, remote\n"));
	assert_non_null(strstr(buf, "wants tcp/5432 (service db) (service "
	    "dc-db) on gateway \"gw-dc\"\n"));
	assert_non_null(strstr(buf, "  line 33: rule \"remote-web\" (allow): "
	    "peer matches, port does not (service:web, service:wiki, "
	    "tcp/8000-8100)\n"));
	assert_non_null(strstr(buf, "  line 37: rule \"staff-db\" (allow): "
	    "MATCHES: group:staff"));
	assert_non_null(strstr(buf, "  line 41: rule \"no-contractor-db\" "
	    "(deny): MATCHES: group:contractors"));
	assert_non_null(strstr(buf, "  line 45: rule \"office-to-dc\" (allow): "
	    "not this peer (peer:gw-office)\n"));
	assert_non_null(strstr(buf, "  line 59: rule \"old-rdp\" (allow): "
	    "expired at 2025-01-01T02:00:00+02:00\n"));
	assert_non_null(strstr(buf, "decision: DENY by rule "
	    "\"no-contractor-db\" (line 41): group:contractors (peer \"bert\") "
	    "-> service:db (tcp/5432)\n"));
	/* Every rule is listed, in file order. */
	assert_true(strstr(buf, "rule \"ci\"") < strstr(buf, "rule \"admins\""));

	rc = pp_policy_explain(pol, "gw-office", &alice, PP_TUN_TCP, 5432, NOW,
	    buf, sizeof(buf));
	assert_int_equal(rc, 0);
	assert_non_null(strstr(buf, "rule \"office-to-dc\" (allow): not here: "
	    "only on gateway \"gw-dc\"\n"));
	assert_non_null(strstr(buf, "decision: ALLOW by rule \"staff-db\""));

	/* A cut explanation says so. */
	rc = pp_policy_explain(pol, "gw-dc", &bert, PP_TUN_TCP, 5432, NOW, small,
	    sizeof(small));
	assert_int_equal(rc, PP_EDENIED);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_string_equal(small + sizeof(small) - 5, "...\n");
	pp_policy_free(pol);
}

static void
test_lookups(void **state)
{
	struct pp_policy *pol = must_parse(acme);
	enum pp_tun_proto pr;
	uint16_t port;
	uint8_t k[PP_ID_PUB_LEN];

	(void)state;
	assert_int_equal(pp_policy_service_find(pol, "gw-dc", "db", &pr, &port), 0);
	assert_int_equal(port, 5432);
	assert_int_equal(pp_policy_service_find(pol, "gw-dc", "dns", &pr, &port), 0);
	assert_int_equal(pr, PP_TUN_UDP);
	assert_int_equal(pp_policy_service_find(pol, "gw-dc", "dc-db", &pr,
	    &port), 0);
	assert_int_equal(pp_policy_service_find(pol, "gw-office", "dc-db", &pr,
	    &port), PP_ENOTFOUND);
	assert_int_equal(pp_policy_service_find(pol, "gw-dc", "nope", &pr,
	    &port), PP_ENOTFOUND);
	assert_int_equal(pp_policy_peer_key(pol, "bert", k), 0);
	assert_memory_equal(k, key('B'), PP_ID_PUB_LEN);
	assert_int_equal(pp_policy_peer_key(pol, "old-scanner", k), PP_EINVAL);
	assert_int_equal(pp_policy_peer_key(pol, "zed", k), PP_ENOTFOUND);
	/* 'E' is named by the ci rule's key: subject; 'B' only by an entry */
	assert_int_equal(pp_policy_names_key(pol, "gw-dc", key('E'), NOW), 1);
	assert_int_equal(pp_policy_names_key(pol, "gw-dc", key('B'), NOW), 0);
	assert_int_equal(pp_policy_names_key(pol, "gw-dc", key('F'), NOW), 0);
	assert_int_equal(pp_policy_next_expiry(pol, NOW), T2030);
	assert_int_equal(pp_policy_next_expiry(pol, T2025 - 10), T2025);
	assert_int_equal(pp_policy_next_expiry(pol, T2030), 0);
	pp_policy_free(pol);
}

static void
test_hash(void **state)
{
	struct pp_policy *a = must_parse(acme), *b, *c;
	uint8_t ha[PP_POLICY_HASH_LEN], hb[PP_POLICY_HASH_LEN];
	static char text[sizeof(acme) + 256];
	char *p;

	(void)state;
	pp_policy_hash(a, ha);
	/* Comments, blank lines, spacing and tests do not change the meaning. */
	snprintf(text, sizeof(text), "# another comment\n\n%s", acme);
	p = strstr(text, "[tests]");
	snprintf(p, sizeof(text) - (size_t)(p - text), "[tests]\n");
	b = must_parse(text);
	pp_policy_hash(b, hb);
	assert_memory_equal(ha, hb, sizeof(ha));
	/* One port of one range does. */
	snprintf(text, sizeof(text), "%s", acme);
	p = strstr(text, "8000-8100");
	memcpy(p, "8000-8101", 9);
	c = must_parse(text);
	pp_policy_hash(c, hb);
	assert_memory_not_equal(ha, hb, sizeof(ha));
	pp_policy_free(c);
	/* So do the gateway's services. */
	assert_int_equal(pp_policy_parse(FILE_NAME, expand(acme),
	    strlen(expand(acme)), gw_svcs, 3, NOW, &c, &errs), 0);
	pp_policy_hash(c, hb);
	assert_memory_equal(ha, hb, sizeof(ha));
	pp_policy_free(c);
	{
		struct pp_policy_service more[4];

		memcpy(more, gw_svcs, sizeof(gw_svcs));
		more[3] = (struct pp_policy_service){ "smtp", 25, PP_TUN_TCP };
		assert_int_equal(pp_policy_parse(FILE_NAME, expand(acme),
		    strlen(expand(acme)), more, 4, NOW, &c, &errs), 0);
		pp_policy_hash(c, hb);
		assert_memory_not_equal(ha, hb, sizeof(ha));
		pp_policy_free(c);
	}
	pp_policy_free(a);
	pp_policy_free(b);
}

/* --- errors: every class, with its line --------------------------------- */

#define PEERS	"[peer alice]\nkey = @A\ngroups = staff\n"	/* lines 1-3 */
#define RULE	PEERS "[rule r]\n"				/* line 4 */

static const struct {
	const char *text;
	size_t n;		/* errors expected */
	int line;		/* of the first */
	const char *sub;
} bad[] = {
	/* lexical (the shared INI layer) */
	{ "[peer alice\n", 1, 1, "section header without `]`" },
	{ "[tests] x\n", 1, 1, "unexpected text after `]`" },
	{ PEERS "\x01\n", 1, 4, "control character 0x01 at column 1" },
	{ PEERS "\xff\n", 1, 4, "invalid UTF-8 at column 1" },
	{ PEERS "groups\n", 1, 4, "expected `key = value`" },
	{ PEERS "Key = x\n", 1, 4, "invalid key \"Key\"" },
	{ "[peer alice]\nkey = \"@A\ngroups = a\n", 1, 2,
	    "missing closing `\"` in the value" },
	/* sections */
	{ "[peers x]\n", 1, 1, "unknown section \"peers\": valid sections are "
	    "[peer NAME], [legacy NAME], [service NAME], [rule NAME], [tests]" },
	{ "key = x\n", 1, 1, "key `key` outside a section: put it under its [section] header" },
	{ "[rule]\n", 1, 1, "[rule] needs a name: write [rule NAME]" },
	{ "[tests x]\n", 1, 1, "[tests] takes no name" },
	{ "[tests]\n[tests]\n", 1, 2, "[tests] already opened at line 1" },
	{ PEERS "colour = red\n", 1, 4, "unknown key \"colour\" in [peer]: "
	    "valid keys are key, groups" },
	{ PEERS "to = any\n", 1, 4, "(`to` belongs in [rule NAME])" },
	{ PEERS "key = @B\n", 1, 4, "peer \"alice\": duplicate key `key` "
	    "(first at line 2)" },
	/* peers */
	{ "[peer ab]\nkey = @A\n", 1, 1, "peer name \"ab\" invalid: it is the "
	    "peer's user name in the room, 4-48 characters" },
	{ "[peer alice]\ngroups = x\n", 1, 1, "peer \"alice\": key missing: "
	    "add `key = ed25519:...`" },
	{ "[peer alice]\nkey = ed25519:abc\n", 1, 2, "peer \"alice\": key "
	    "\"ed25519:abc\" is not an identity key: paste what `peerpipe id`" },
	{ PEERS "[peer bert]\nkey = @A\n", 1, 5, "peer \"bert\": key already "
	    "belongs to peer \"alice\" (line 1)" },
	{ "[legacy old-box]\nkey = @A\n", 1, 2, "legacy \"old-box\": a [legacy] "
	    "peer speaks protocol version 1 and has no key" },
	{ PEERS "[legacy alice]\n", 1, 4, "peer \"alice\" already defined at "
	    "line 1" },
	{ "[peer alice]\nkey = @A\ngroups = staff, staff\n", 1, 3,
	    "groups: \"staff\" is listed twice" },
	{ "[peer alice]\nkey = @A\ngroups = st aff\n", 1, 3,
	    "groups: \"st aff\" is not a valid group name" },
	{ "[peer alice]\nkey = @A\ngroups = a,,b\n", 1, 3,
	    "groups: empty item between commas" },
	{ "[peer alice]\nkey = @A\ngroups = a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\n",
	    1, 3, "groups: at most 16 groups per peer" },
	/* services */
	{ "[service web2]\nproto = tcp\n", 1, 1, "service \"web2\": port "
	    "missing" },
	{ "[service x]\nport = 70000\n", 1, 2, "service \"x\": port 70000 out "
	    "of range 1-65535" },
	{ "[service x]\nport = 1\nproto = sctp\n", 1, 3, "proto \"sctp\" "
	    "unknown: use tcp or udp" },
	{ "[service x]\nport = 1\nhost = 10.0.0.1:80\n", 1, 3,
	    "host \"10.0.0.1:80\" is not a host name or IP address" },
	{ "[service x]\nport = 1\ngateway = gw\n", 1, 3,
	    "gateway \"gw\" is not a valid peer name" },
	{ "[service db]\nport = 5433\n", 1, 2, "service \"db\": the gateway's "
	    "config offers service \"db\" on tcp/5432, not tcp/5433" },
	{ "[service x]\nport = 1\n[service x]\nport = 2\n", 1, 3,
	    "service \"x\" already defined at line 1" },
	{ "[service x y]\n", 1, 1, "service name \"x y\" invalid" },
	/* rules */
	{ RULE "to = any\n", 1, 4, "rule \"r\": allow or deny missing" },
	{ RULE "allow = any\n", 1, 4, "rule \"r\": to missing" },
	{ RULE "allow = any\ndeny = any\nto = any\n", 1, 6,
	    "rule \"r\": both allow and deny (the other at line 5)" },
	{ RULE "allow =\nto = any\n", 1, 5, "rule \"r\": allow is empty" },
	{ RULE "allow = alice\nto = any\n", 1, 5, "rule \"r\": allow: unknown "
	    "subject \"alice\": write peer:NAME, group:NAME" },
	{ RULE "deny = peer:alicia\nto = any\n", 1, 5, "peer \"alicia\" is not "
	    "defined: add a [peer NAME] or [legacy NAME]" },
	{ RULE "allow = group:staf\nto = any\n", 1, 5, "group \"staf\" has no "
	    "members" },
	{ RULE "allow = key:ed25519:AAAA\nto = any\n", 1, 5,
	    "\"key:ed25519:AAAA\" is not an identity key" },
	{ RULE "allow = key:@A\nto = any\n", 1, 5, "is the key of peer "
	    "\"alice\" (line 1): write peer:alice" },
	{ RULE "allow = group:staff,\nto = any\n", 1, 5,
	    "allow: empty item between commas" },
	{ RULE "allow = any\nto = web\n", 1, 6, "to: unknown object \"web\": "
	    "write service:NAME, tcp/PORT" },
	{ RULE "allow = any\nto = service:webb\n", 1, 6, "service \"webb\" is "
	    "neither in this policy nor in the gateway's config" },
	{ RULE "allow = any\nto = tcp/8100-8000\n", 1, 6,
	    "range 8100-8000 is reversed: write 8000-8100" },
	{ RULE "allow = any\nto = tcp/0\n", 1, 6, "port 0 out of range 1-65535" },
	{ RULE "allow = any\nto = udp/65536\n", 1, 6,
	    "port 65536 out of range 1-65535" },
	{ RULE "allow = any\nto = tcp/80-\n", 1, 6, "port \"\" is not a number" },
	{ RULE "allow = any\nto = icmp/1\n", 1, 6, "use tcp/PORT or udp/PORT, "
	    "tcp/LOW-HIGH" },
	{ RULE "allow = any\nto = any\nexpires = 2025-02-29T00:00:00Z\n", 1, 7,
	    "expires \"2025-02-29T00:00:00Z\" is not an RFC 3339 time" },
	{ RULE "allow = any\nto = any\nexpires = tomorrow\n", 1, 7,
	    "is not an RFC 3339 time" },
	{ RULE "allow = any\nto = any\ngateway = site-a, gw\n", 1, 7,
	    "gateway \"gw\" is not a valid peer name" },
	{ RULE "allow = any\nto = any\n[rule r]\nallow = any\nto = any\n", 1, 7,
	    "rule \"r\" already defined at line 4" },
	{ "[rule a.b-c_d]\nallow = any\nto = any\n[rule r!]\n", 1, 4,
	    "rule name \"r!\" invalid" },
	/* tests that cannot run */
	{ PEERS "[tests]\nallow = alice db\n", 1, 5, "test \"alice db\": write "
	    "`allow = PEER -> SERVICE`" },
	{ PEERS "[tests]\nallow = zed -> db\n", 1, 5, "peer \"zed\" is not in "
	    "the policy" },
	{ PEERS "[tests]\ndeny = alice -> tcp/1-2\n", 1, 5,
	    "port \"1-2\" is not a number" },
	{ PEERS "[tests]\ndeny = alice -> webb\n", 1, 5,
	    "service \"webb\" is neither" },
	{ PEERS "[tests]\ndeny = alice -> db at gw-a\n", 1, 5,
	    "unexpected \"at gw-a\" after the service" },
	{ PEERS "[tests]\ndeny = v1:al -> db\n", 1, 5,
	    "v1:\"al\" is not a valid peer name" },
};

static void
test_errors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct pp_policy *pol = (struct pp_policy *)&errs;	/* not NULL */
		int rc = parse_at(bad[i].text, NOW, &pol);

		if (rc != PP_ECONFIG || errs.n != bad[i].n) {
			print_message("case %zu: rc %d, %zu errors, want %zu:\n",
			    i, rc, errs.n, bad[i].n);
			print_errors();
			fail();
		}
		assert_null(pol);
		assert_msg(errs.msg[0], bad[i].line, bad[i].sub);
	}
}

static void
test_tests_block(void **state)
{
	static const char text[] =
	    PEERS
	    "[peer bert]\n"
	    "key = @B\n"						/* 5 */
	    "groups = contractors\n"
	    "[rule staff-db]\n"
	    "allow = group:staff\n"
	    "to = service:db\n"
	    "[rule no-contractors]\n"					/* 10 */
	    "deny = group:contractors\n"
	    "to = tcp/5432\n"
	    "[tests]\n"
	    "allow = alice -> db\n"
	    "allow = bert -> db\n"					/* 15 */
	    "deny = alice -> tcp/5432\n"
	    "allow = bert -> web\n"
	    "deny = bert -> tcp/5432 on gw-x\n";
	struct pp_policy *pol;

	(void)state;
	assert_int_equal(parse_at(text, NOW, &pol), PP_ECONFIG);
	assert_null(pol);
	print_errors();
	assert_int_equal(errs.n, 3);
	assert_string_equal(errs.msg[0], FILE_NAME ":15: test failed: allow = "
	    "bert -> db (tcp/5432): expected allow, got deny by rule "
	    "\"no-contractors\" (line 10): group:contractors (peer \"bert\") -> "
	    "tcp/5432 (tcp/5432)");
	assert_string_equal(errs.msg[1], FILE_NAME ":16: test failed: deny = "
	    "alice -> tcp/5432 (tcp/5432): expected deny, got allow by rule "
	    "\"staff-db\" (line 7): group:staff (peer \"alice\") -> service:db "
	    "(tcp/5432)");
	assert_string_equal(errs.msg[2], FILE_NAME ":17: test failed: allow = "
	    "bert -> web (tcp/80): expected allow, got deny by default deny: no "
	    "rule allows peer \"bert\" tcp/80 here");

	/* The passing ones alone load; an expired rule fails its test. */
	{
		static const char ok[] =
		    PEERS
		    "[rule r]\nallow = group:staff\nto = service:db\n"
		    "expires = 2025-06-01T00:00:00Z\n"
		    "[tests]\nallow = alice -> db\n";

		assert_int_equal(parse_at(ok, NOW - 1, &pol), 0);
		pp_policy_free(pol);
		assert_int_equal(parse_at(ok, NOW, &pol), PP_ECONFIG);
		assert_int_equal(errs.n, 1);
		assert_msg(errs.msg[0], 9, "expected allow, got deny by default "
		    "deny");
	}
	/* A broken file runs no tests: their results would mean nothing. */
	assert_int_equal(parse_at(PEERS "[rule r]\nallow = group:nope\nto = any\n"
	    "[tests]\nallow = alice -> db\n", NOW, &pol), PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 5, "group \"nope\" has no members");
}

/* Everything wrong at once is reported at once, in file order per pass. */
static void
test_many_errors(void **state)
{
	struct pp_policy *pol;

	(void)state;
	assert_int_equal(parse_at(
	    "[peer ab]\n"						/* 1 */
	    "[peer alice]\n"
	    "[service x]\n"
	    "port = 0\n"
	    "[rule r]\n"						/* 5 */
	    "allow = peer:nobody\n"
	    "to = tcp/9-1\n", NOW, &pol), PP_ECONFIG);
	print_errors();
	assert_int_equal(errs.n, 5);
	assert_msg(errs.msg[0], 1, "peer name \"ab\" invalid");
	assert_msg(errs.msg[1], 2, "peer \"alice\": key missing");
	assert_msg(errs.msg[2], 4, "port 0 out of range");
	assert_msg(errs.msg[3], 6, "peer \"nobody\" is not defined");
	assert_msg(errs.msg[4], 7, "range 9-1 is reversed");
}

static void
test_limits(void **state)
{
	size_t size = PP_POLICY_FILE_MAX + 64, o;
	char *text = malloc(size);
	struct pp_policy *pol;
	int rc;

	(void)state;
	assert_non_null(text);
	/* 1025 rules: the 1025th is refused at its header. */
	o = (size_t)snprintf(text, size, "%s", expand(PEERS));
	for (int i = 0; i < PP_POLICY_MAX_RULES + 1; i++)
		o += (size_t)snprintf(text + o, size - o,
		    "[rule r%d]\nallow = any\nto = any\n", i);
	rc = pp_policy_parse(FILE_NAME, text, o, NULL, 0, NOW, &pol, &errs);
	assert_int_equal(rc, PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 4 + 3 * PP_POLICY_MAX_RULES,
	    "too many rules: at most 1024");

	/* 1025 peers. */
	o = 0;
	for (int i = 0; i < PP_POLICY_MAX_PEERS + 1; i++)
		o += (size_t)snprintf(text + o, size - o, "[legacy peer%04d]\n", i);
	rc = pp_policy_parse(FILE_NAME, text, o, NULL, 0, NOW, &pol, &errs);
	assert_int_equal(rc, PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], PP_POLICY_MAX_PEERS + 1, "too many peers");

	/* 33 subjects in one rule. */
	o = (size_t)snprintf(text, size, "%s[rule r]\nto = any\nallow = any",
	    expand(PEERS));
	for (int i = 0; i < PP_POLICY_MAX_ITEMS; i++)
		o += (size_t)snprintf(text + o, size - o, ", group:staff");
	rc = pp_policy_parse(FILE_NAME, text, o, NULL, 0, NOW, &pol, &errs);
	assert_int_equal(rc, PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 6, "at most 32 subjects per rule");

	/* A long line, and a file over the cap (line 0: the file's). */
	memset(text, '#', PP_POLICY_LINE_MAX + 1);
	rc = pp_policy_parse(FILE_NAME, text, PP_POLICY_LINE_MAX + 1, NULL, 0,
	    NOW, &pol, &errs);
	assert_int_equal(rc, PP_ECONFIG);
	assert_msg(errs.msg[0], 1, "line is 4097 bytes long, at most 4096");
	memset(text, '\n', PP_POLICY_FILE_MAX + 1);
	rc = pp_policy_parse(FILE_NAME, text, PP_POLICY_FILE_MAX + 1, NULL, 0,
	    NOW, &pol, &errs);
	assert_int_equal(rc, PP_ECONFIG);
	assert_int_equal(errs.n, 1);
	assert_msg(errs.msg[0], 0, "file is 1048577 bytes, at most 1048576");
	/* Exactly the cap is fine (an empty policy: everything denied). */
	rc = pp_policy_parse(FILE_NAME, text, PP_POLICY_FILE_MAX, NULL, 0, NOW,
	    &pol, &errs);
	assert_int_equal(rc, 0);
	pp_policy_free(pol);
	free(text);
}

/*
 * Only an allow rule in force here makes a key known: a key named by a deny
 * rule, by a grant that expired, or by another gateway's rule is a
 * stranger, and `allow = any` does not cover it.
 */
static void
test_key_known_only_by_grants(void **state)
{
	static const char tmpl[] =
	    "[rule no-db-for-x]\n"
	    "deny = key:@X\n"
	    "to = tcp/5432\n"
	    "\n"
	    "[rule y-until-2025]\n"
	    "allow = key:@Y\n"
	    "to = tcp/22\n"
	    "expires = 2025-01-01T00:00:00Z\n"
	    "\n"
	    "[rule z-elsewhere]\n"
	    "allow = key:@Z\n"
	    "to = tcp/22\n"
	    "gateway = gw-other\n"
	    "\n"
	    "[rule w]\n"
	    "allow = key:@W\n"
	    "to = tcp/22\n"
	    "\n"
	    "[rule everyone-known]\n"
	    "allow = any\n"
	    "to = tcp/8080\n";
	struct pp_policy *pol;
	struct pp_policy_decision d;
	static const struct { char k; const char *gw; int64_t now; int known; } c[] = {
		{ 'X', "gw", NOW, 0 },
		{ 'Y', "gw", T2025 - 1, 1 },
		{ 'Y', "gw", T2025, 0 },
		{ 'Z', "gw", NOW, 0 },
		{ 'Z', "gw-other", NOW, 1 },
		{ 'W', "gw", NOW, 1 },
		{ 'V', "gw", NOW, 0 },
	};

	(void)state;
	assert_int_equal(parse_at(tmpl, T2025 - 10, &pol), 0);
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		struct pp_policy_peer_id who = { "someone", key(c[i].k) };
		int rc;

		assert_int_equal(pp_policy_names_key(pol, c[i].gw, key(c[i].k),
		    c[i].now), c[i].known);
		rc = pp_policy_decide(pol, c[i].gw, &who, PP_TUN_TCP, 8080,
		    c[i].now, &d);
		if (rc != (c[i].known ? 0 : PP_EDENIED))
			print_message("case %zu: %s\n", i, d.reason);
		assert_int_equal(rc, c[i].known ? 0 : PP_EDENIED);
	}
	pp_policy_free(pol);
}

static void
test_empty_denies(void **state)
{
	struct pp_policy *pol;
	struct pp_policy_peer_id who = { "alice", key('A') };
	struct pp_policy_decision d;

	(void)state;
	assert_int_equal(pp_policy_parse(FILE_NAME, "", 0, gw_svcs, 3, NOW,
	    &pol, &errs), 0);
	assert_int_equal(pp_policy_decide(pol, "gw", &who, PP_TUN_TCP, 80, NOW,
	    &d), PP_EDENIED);
	assert_string_equal(d.rule, "default deny");
	assert_int_equal(d.line, 0);
	pp_policy_free(pol);
	pp_policy_free(NULL);
}

static void
test_time(void **state)
{
	static const struct {
		const char *s;
		int ok;
		int64_t t;
	} rows[] = {
		{ "1970-01-01T00:00:00Z", 1, 0 },
		{ "2025-06-01T00:00:00Z", 1, NOW },
		{ "2025-06-01t00:00:00z", 1, NOW },
		{ "2025-06-01T02:00:00+02:00", 1, NOW },
		{ "2025-05-31T19:30:00-04:30", 1, NOW },
		{ "2025-06-01T00:00:00.999Z", 1, NOW },
		{ "2000-02-29T12:00:00Z", 1, 951825600 },
		{ "2024-12-31T23:59:60Z", 1, T2025 },	/* a leap second */
		{ "9999-12-31T23:59:59Z", 1, 253402300799 },
		{ "2023-02-29T00:00:00Z", 0, 0 },
		{ "1900-02-29T00:00:00Z", 0, 0 },
		{ "1969-12-31T23:59:59Z", 0, 0 },
		{ "2025-13-01T00:00:00Z", 0, 0 },
		{ "2025-06-31T00:00:00Z", 0, 0 },
		{ "2025-06-01T24:00:00Z", 0, 0 },
		{ "2025-06-01T00:60:00Z", 0, 0 },
		{ "2025-06-01T00:00:61Z", 0, 0 },
		{ "2025-06-01 00:00:00Z", 0, 0 },
		{ "2025-06-01T00:00:00", 0, 0 },
		{ "2025-06-01T00:00:00.Z", 0, 0 },
		{ "2025-06-01T00:00:00+2:00", 0, 0 },
		{ "2025-06-01T00:00:00+02:60", 0, 0 },
		{ "2025-06-01T00:00:00Z ", 0, 0 },
		{ "2025-6-01T00:00:00Z", 0, 0 },
		{ "", 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t t = -1;
		int rc = pp_policy_time_parse(rows[i].s, strlen(rows[i].s), &t);

		if ((rc == 0) != rows[i].ok || (rows[i].ok && t != rows[i].t)) {
			print_message("%s: rc %d t %lld\n", rows[i].s, rc,
			    (long long)t);
			fail();
		}
	}
}

static void
test_load(void **state)
{
	char path[] = "/tmp/pp-policy-XXXXXX";
	const char *text = expand(acme);
	struct pp_policy *pol;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(pp_policy_load(path, gw_svcs, 3, NOW, &pol, &errs), 0);
	pp_policy_free(pol);
	unlink(path);
	assert_int_equal(pp_policy_load(path, gw_svcs, 3, NOW, &pol, &errs),
	    PP_ECONFIG);
	assert_null(pol);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msg[0], ": cannot read: No such file"));
	assert_int_equal(pp_policy_load("/tmp", gw_svcs, 3, NOW, &pol, &errs),
	    PP_ECONFIG);
	assert_non_null(strstr(errs.msg[0], "/tmp: cannot read: Is a directory"));
}

/* The example in docs/policy.md loads and its tests pass. */
static void
test_doc_example(void **state)
{
	static char text[1 << 16];
	char path[1024];
	const char *begin, *end;
	struct pp_policy *pol;
	static const struct pp_policy_service svcs[] = {
		{ "web", 443, PP_TUN_TCP }, { "db", 5432, PP_TUN_TCP },
		{ "dns", 53, PP_TUN_UDP },
	};
	FILE *f;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/docs/policy.md", PP_SOURCE_DIR);
	assert_non_null(f = fopen(path, "r"));
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	assert_non_null(begin = strstr(text, "```ini\n# example: acme\n"));
	begin += 7;
	assert_non_null(end = strstr(begin, "```"));
	if (pp_policy_parse("policy.md", begin, (size_t)(end - begin), svcs, 3,
	    NOW, &pol, &errs) != 0) {
		print_errors();
		fail();
	}
	pp_policy_free(pol);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_key_known_only_by_grants),
		cmocka_unit_test(test_offer),
		cmocka_unit_test(test_explain),
		cmocka_unit_test(test_lookups),
		cmocka_unit_test(test_hash),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_tests_block),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_empty_denies),
		cmocka_unit_test(test_time),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_doc_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
