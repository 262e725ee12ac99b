/*
 * Fuzzes the policy parser and evaluator, and checks what they promise:
 * errors exactly when parsing fails (and then no policy), each message
 * "FILE:..." and NUL-terminated; on success, explain decides as decide
 * does, offer returns only what decide allows, and the hash is stable.
 */
#include "base/error.h"
#include "policy/policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW	1748736000	/* 2025-06-01T00:00:00Z */

static struct pp_policy_errors errs;	/* large: off the stack */
static char text[16384];

static const struct pp_policy_service svcs[] = {
	{ "web", 80, PP_TUN_TCP },
	{ "db", 5432, PP_TUN_TCP },
	{ "dns", 53, PP_TUN_UDP },
};

static const struct pp_tun_port ports[] = {
	{ 80, PP_TUN_TCP }, { 5432, PP_TUN_TCP }, { 53, PP_TUN_UDP },
	{ 22, PP_TUN_TCP }, { 8080, PP_TUN_TCP }, { 514, PP_TUN_UDP },
};

static void
check(int ok)
{
	if (!ok)
		abort();
}

/* The seeds' keys are 32 bytes of one letter, so those identities can
 * match; others are strangers. */
static void
query(const struct pp_policy *pol, const char *gw, const char *name, int k)
{
	uint8_t key[32];
	struct pp_policy_peer_id who = { name, k ? key : NULL };
	struct pp_policy_decision d;
	struct pp_tun_port out[6];
	size_t n;
	int rc, rc2;

	memset(key, k, sizeof(key));
	for (size_t i = 0; i < 6; i++) {
		rc = pp_policy_decide(pol, gw, &who, ports[i].proto,
		    ports[i].port, NOW, &d);
		check(rc == 0 || rc == PP_EDENIED);
		check((rc == 0) == (d.verdict == PP_POLICY_ALLOW));
		check(memchr(d.reason, '\0', sizeof(d.reason)) != NULL);
		check(d.line > 0 || strcmp(d.rule, "default deny") == 0);
		check(d.line == 0 || rc == 0 || d.verdict == PP_POLICY_DENY);
		check(!d.legacy || k == 0);
		rc2 = pp_policy_explain(pol, gw, &who, ports[i].proto,
		    ports[i].port, NOW, text, sizeof(text));
		check(rc2 == rc);
		check(strlen(text) < sizeof(text));
	}
	n = pp_policy_offer(pol, gw, &who, NOW, ports, 6, out);
	check(n <= 6);
	for (size_t i = 0; i < n; i++)
		check(pp_policy_decide(pol, gw, &who, out[i].proto, out[i].port,
		    NOW, &d) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_policy *pol = (struct pp_policy *)&errs, *again;
	uint8_t h1[PP_POLICY_HASH_LEN], h2[PP_POLICY_HASH_LEN];
	int rc = pp_policy_parse("fuzz.policy", (const char *)data, size, svcs,
	    3, NOW, &pol, &errs);

	check(rc == 0 || rc == PP_ECONFIG);
	check((rc == 0) == (errs.n == 0));
	check((rc == 0) == (pol != NULL));
	for (size_t i = 0; i < errs.n && i < PP_POLICY_MAX_ERRORS; i++) {
		check(memchr(errs.msg[i], '\0', sizeof(errs.msg[i])) != NULL);
		check(strncmp(errs.msg[i], "fuzz.policy:", 12) == 0);
	}
	if (rc != 0)
		return 0;
	query(pol, "gw-dc", "alice", 'A');
	query(pol, "gw-office", "gw-office", 'C');
	query(pol, NULL, "bert", 'A');
	query(pol, "gw-dc", "old-scanner", 0);
	query(pol, "gw-dc", "stranger", 'E');
	(void)pp_policy_next_expiry(pol, NOW);
	pp_policy_hash(pol, h1);
	check(pp_policy_parse("again", (const char *)data, size, svcs, 3, NOW,
	    &again, &errs) == 0);
	pp_policy_hash(again, h2);
	check(memcmp(h1, h2, sizeof(h1)) == 0);
	pp_policy_free(again);
	pp_policy_free(pol);
	return 0;
}
