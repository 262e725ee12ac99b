/*
 * Deciding with a parsed policy (docs/policy.md, "The decision").
 *
 * The connection is first mapped to the policy's entry for it: a [peer]
 * only by its name AND its key, a [legacy] only for a version-1 connection
 * by its name.  Then every rule that applies here and now is matched in file
 * order; a matching deny decides at once, else the first matching allow,
 * else the default deny.  decide() and explain() share one walk, so what
 * explain prints is what decide did.
 */
#include "policy/policy_int.h"
#include "base/error.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* --- a bounded text builder --------------------------------------------- */

struct sb {
	char *b;
	size_t size, o;
	int cut;
};

static void __attribute__((format(printf, 2, 3)))
sb_printf(struct sb *s, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (s == NULL || s->size == 0 || s->cut)
		return;
	va_start(ap, fmt);
	k = vsnprintf(s->b + s->o, s->size - s->o, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= s->size - s->o) {
		s->cut = 1;
		/* Say so: a cut explanation must not read as a whole one. */
		if (s->size >= 5)
			memcpy(s->b + s->size - 5, "...\n", 5);
		s->o = s->size - 1;
		return;
	}
	s->o += (size_t)k;
}

/* --- names of things ----------------------------------------------------- */

static const char *
proto_word(enum pp_tun_proto pr)
{
	return pr == PP_TUN_UDP ? "udp" : "tcp";
}

static void
key_text(const uint8_t *key, char out[PP_ID_PUB_STRLEN + 1])
{
	pp_id_pub_format(key, out, PP_ID_PUB_STRLEN + 1);
}

/* As written in the file: peer:NAME, group:NAME, key:ed25519:..., any. */
static void
subj_text(const struct pp_policy *pol, const struct pp__pol_subj *sj,
    char *out, size_t len)
{
	char k[PP_ID_PUB_STRLEN + 1];

	switch (sj->kind) {
	case PP__SUBJ_PEER:
		snprintf(out, len, "peer:%s", pol->peers[sj->idx].name);
		break;
	case PP__SUBJ_GROUP:
		snprintf(out, len, "group:%s", pol->groups[sj->idx]);
		break;
	case PP__SUBJ_KEY:
		key_text(sj->key, k);
		snprintf(out, len, "key:%s", k);
		break;
	default:
		snprintf(out, len, "any");
		break;
	}
}

static void
obj_text(const struct pp_policy *pol, const struct pp__pol_obj *ob,
    char *out, size_t len)
{
	switch (ob->kind) {
	case PP__OBJ_SERVICE:
		snprintf(out, len, "service:%s", pol->svcs[ob->idx].name);
		break;
	case PP__OBJ_PORTS:
		if (ob->lo == ob->hi)
			snprintf(out, len, "%s/%u", proto_word(ob->proto), ob->lo);
		else
			snprintf(out, len, "%s/%u-%u", proto_word(ob->proto),
			    ob->lo, ob->hi);
		break;
	default:
		snprintf(out, len, "any");
		break;
	}
}

/* --- matching ------------------------------------------------------------ */

int
pp__pol_resolve(const struct pp_policy *pol,
    const struct pp_policy_peer_id *who, char *why, size_t whylen)
{
	const char *name = who->name ? who->name : "";
	char k[PP_ID_PUB_STRLEN + 1];

	for (size_t i = 0; i < pol->npeers; i++) {
		const struct pp__pol_peer *e = &pol->peers[i];

		if (strcmp(e->name, name) != 0)
			continue;
		if (who->key == NULL && e->legacy)
			return (int)i;
		if (who->key != NULL && !e->legacy &&
		    CRYPTO_memcmp(who->key, e->key, PP_ID_PUB_LEN) == 0)
			return (int)i;
		/* The name is taken, by another kind of peer or another key:
		 * a claim, not an identity. */
		if (who->key == NULL)
			snprintf(why, whylen, "v1 peer \"%s\" has no identity "
			    "key, and [peer %s] (line %d) matches only its key",
			    name, e->name, e->line);
		else if (e->legacy)
			snprintf(why, whylen, "peer \"%s\" has an identity key, "
			    "and [legacy %s] (line %d) matches only version-1 "
			    "peers: give it a [peer] entry with its key", name,
			    e->name, e->line);
		else {
			key_text(who->key, k);
			snprintf(why, whylen, "peer \"%s\" presented key %s, not "
			    "the key of [peer %s] (line %d): it is not that peer",
			    name, k, e->name, e->line);
		}
		return -1;
	}
	if (who->key == NULL) {
		snprintf(why, whylen, "v1 peer \"%s\" is not listed in a "
		    "[legacy] entry", name);
	} else {
		key_text(who->key, k);
		snprintf(why, whylen, "peer \"%s\" with key %s is not in the "
		    "policy", name, k);
	}
	return -1;
}

/*
 * Whether an allow rule in force here (this gateway's or everyone's, not
 * expired) names this key as a key: subject: then the key is known without
 * an entry, and `any` covers it.  A deny rule, an expired grant or another
 * gateway's rule makes no one known.  Every subject is compared, in
 * constant time.
 */
static int
key_named(const struct pp_policy *pol, const uint8_t *key, const char *gw,
    int64_t now)
{
	int found = 0;

	for (size_t i = 0; i < pol->nrules; i++) {
		const struct pp__pol_rule *r = &pol->rules[i];
		int here = r->ngw == 0;

		for (size_t g = 0; g < r->ngw; g++)
			here |= strcmp(r->gw[g], gw) == 0;
		if (r->deny || !here || (r->has_expiry && now >= r->expires))
			continue;
		for (size_t j = 0; j < r->nsubj; j++)
			found |= r->subj[j].kind == PP__SUBJ_KEY &&
			    CRYPTO_memcmp(r->subj[j].key, key, PP_ID_PUB_LEN) == 0;
	}
	return found;
}

struct conn {
	const struct pp_policy_peer_id *who;
	int pi;			/* its entry, or -1 */
	int known;		/* an entry, or a key a key: subject names */
	const char *gw;		/* "" for none */
	enum pp_tun_proto proto;
	uint16_t port;
	int64_t now;
};

static int
subj_match(const struct pp_policy *pol, const struct pp__pol_subj *sj,
    const struct conn *c)
{
	const struct pp__pol_peer *e = c->pi >= 0 ? &pol->peers[c->pi] : NULL;

	switch (sj->kind) {
	case PP__SUBJ_ANY:
		return c->known;
	case PP__SUBJ_PEER:
		return c->pi >= 0 && (uint32_t)c->pi == sj->idx;
	case PP__SUBJ_GROUP:
		for (size_t i = 0; e != NULL && i < e->ngroups; i++)
			if (e->groups[i] == sj->idx)
				return 1;
		return 0;
	case PP__SUBJ_KEY:
		return c->who->key != NULL && CRYPTO_memcmp(c->who->key,
		    sj->key, PP_ID_PUB_LEN) == 0;
	}
	return 0;
}

static int
obj_match(const struct pp_policy *pol, const struct pp__pol_obj *ob,
    const struct conn *c)
{
	const struct pp__pol_service *s;

	switch (ob->kind) {
	case PP__OBJ_ANY:
		return 1;
	case PP__OBJ_PORTS:
		return ob->proto == c->proto && ob->lo <= c->port &&
		    c->port <= ob->hi;
	case PP__OBJ_SERVICE:
		s = &pol->svcs[ob->idx];
		return s->proto == c->proto && s->port == c->port &&
		    (s->gateway[0] == '\0' || strcmp(s->gateway, c->gw) == 0);
	}
	return 0;
}

enum rstate {
	R_OTHER_GATEWAY,
	R_EXPIRED,
	R_NO_SUBJECT,
	R_NO_OBJECT,
	R_MATCH,
};

static enum rstate
rule_state(const struct pp_policy *pol, const struct pp__pol_rule *r,
    const struct conn *c, int *si, int *oi)
{
	size_t i;

	*si = *oi = -1;
	if (r->ngw > 0) {
		for (i = 0; i < r->ngw; i++)
			if (strcmp(r->gw[i], c->gw) == 0)
				break;
		if (i == r->ngw)
			return R_OTHER_GATEWAY;
	}
	if (r->has_expiry && c->now >= r->expires)
		return R_EXPIRED;
	for (i = 0; i < r->nsubj && *si < 0; i++)
		if (subj_match(pol, &r->subj[i], c))
			*si = (int)i;
	if (*si < 0)
		return R_NO_SUBJECT;
	for (i = 0; i < r->nobj && *oi < 0; i++)
		if (obj_match(pol, &r->obj[i], c))
			*oi = (int)i;
	return *oi < 0 ? R_NO_OBJECT : R_MATCH;
}

/* "group:staff (peer \"alice\") -> service:db (tcp/5432)" */
static void
match_text(const struct pp_policy *pol, const struct pp__pol_rule *r,
    int si, int oi, const struct conn *c, char *out, size_t len)
{
	char st[128], ot[128];

	subj_text(pol, &r->subj[si], st, sizeof(st));
	obj_text(pol, &r->obj[oi], ot, sizeof(ot));
	snprintf(out, len, "%s (%s \"%s\") -> %s (%s/%u)", st,
	    c->who->key ? "peer" : "v1 peer", c->who->name ? c->who->name : "",
	    ot, proto_word(c->proto), c->port);
}

/* The one walk behind decide and explain; x NULL for decide. */
static int
walk(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, enum pp_tun_proto proto,
    uint16_t port, int64_t now, struct pp_policy_decision *d, struct sb *x)
{
	struct conn c;
	char why[256] = "", t[320];
	int allow_r = -1, allow_si = -1, allow_oi = -1, deny_r = -1;
	int deny_si = -1, deny_oi = -1;

	memset(d, 0, sizeof(*d));
	memset(&c, 0, sizeof(c));
	c.who = who;
	c.gw = gateway != NULL ? gateway : "";
	c.proto = proto;
	c.port = port;
	c.now = now;
	c.pi = pp__pol_resolve(pol, who, why, sizeof(why));
	c.known = c.pi >= 0 ||
	    (who->key != NULL && key_named(pol, who->key, c.gw, now));
	if (c.pi >= 0) {
		d->legacy = pol->peers[c.pi].legacy;
		snprintf(d->peer, sizeof(d->peer), "%s", pol->peers[c.pi].name);
	}

	if (x != NULL) {
		char k[PP_ID_PUB_STRLEN + 1];

		if (c.pi >= 0) {
			const struct pp__pol_peer *e = &pol->peers[c.pi];

			if (e->legacy) {
				sb_printf(x, "v1 peer \"%s\": [legacy %s] at line "
				    "%d (admitted by name only, no identity)",
				    e->name, e->name, e->line);
			} else {
				key_text(e->key, k);
				sb_printf(x, "peer \"%s\": [peer %s] at line %d, "
				    "key %s", e->name, e->name, e->line, k);
			}
			sb_printf(x, ", groups:");
			for (size_t i = 0; i < e->ngroups; i++)
				sb_printf(x, "%s %s", i ? "," : "",
				    pol->groups[e->groups[i]]);
			sb_printf(x, "%s\n", e->ngroups ? "" : " none");
		} else {
			sb_printf(x, "%s%s\n", why, c.known ? " (a key: subject "
			    "names its key)" : ": only the default deny applies");
		}
		sb_printf(x, "wants %s/%u", proto_word(proto), port);
		for (size_t i = 0; i < pol->nsvcs; i++) {
			const struct pp__pol_service *s = &pol->svcs[i];

			if (s->port == port && s->proto == proto &&
			    (s->gateway[0] == '\0' || strcmp(s->gateway, c.gw) == 0))
				sb_printf(x, " (service %s)", s->name);
		}
		sb_printf(x, " on gateway %s%s%s\n", c.gw[0] ? "\"" : "",
		    c.gw[0] ? c.gw : "(unnamed)", c.gw[0] ? "\"" : "");
		sb_printf(x, "rules, in file order (deny wins over allow):\n");
	}

	for (size_t i = 0; i < pol->nrules; i++) {
		const struct pp__pol_rule *r = &pol->rules[i];
		int si, oi;
		enum rstate st = rule_state(pol, r, &c, &si, &oi);

		if (x != NULL) {
			sb_printf(x, "  line %d: rule \"%s\" (%s): ", r->line,
			    r->name, r->deny ? "deny" : "allow");
			switch (st) {
			case R_OTHER_GATEWAY:
				sb_printf(x, "not here: only on gateway");
				for (size_t g = 0; g < r->ngw; g++)
					sb_printf(x, "%s \"%s\"", g ? "," : "",
					    r->gw[g]);
				sb_printf(x, "\n");
				break;
			case R_EXPIRED:
				sb_printf(x, "expired at %s\n", r->expires_text);
				break;
			case R_NO_SUBJECT:
				sb_printf(x, "not this peer (");
				for (size_t j = 0; j < r->nsubj; j++) {
					subj_text(pol, &r->subj[j], t, sizeof(t));
					sb_printf(x, "%s%s", j ? ", " : "", t);
				}
				sb_printf(x, ")\n");
				break;
			case R_NO_OBJECT:
				sb_printf(x, "peer matches, port does not (");
				for (size_t j = 0; j < r->nobj; j++) {
					obj_text(pol, &r->obj[j], t, sizeof(t));
					sb_printf(x, "%s%s", j ? ", " : "", t);
				}
				sb_printf(x, ")\n");
				break;
			case R_MATCH:
				match_text(pol, r, si, oi, &c, t, sizeof(t));
				sb_printf(x, "MATCHES: %s%s\n", t,
				    !r->deny && deny_r >= 0 ? " (a deny already "
				    "matched)" : r->deny && deny_r >= 0 ?
				    " (an earlier deny decides)" : !r->deny &&
				    allow_r >= 0 ? " (an earlier allow decides "
				    "unless a deny matches)" : "");
				break;
			}
		}
		if (st != R_MATCH)
			continue;
		if (r->deny && deny_r < 0) {
			deny_r = (int)i, deny_si = si, deny_oi = oi;
			if (x == NULL)
				break;	/* deny wins: nothing else can change it */
		} else if (!r->deny && allow_r < 0) {
			allow_r = (int)i, allow_si = si, allow_oi = oi;
		}
	}

	if (deny_r >= 0 || allow_r >= 0) {
		int ri = deny_r >= 0 ? deny_r : allow_r;
		const struct pp__pol_rule *r = &pol->rules[ri];

		d->verdict = deny_r >= 0 ? PP_POLICY_DENY : PP_POLICY_ALLOW;
		snprintf(d->rule, sizeof(d->rule), "%s", r->name);
		d->line = r->line;
		match_text(pol, r, deny_r >= 0 ? deny_si : allow_si,
		    deny_r >= 0 ? deny_oi : allow_oi, &c, d->reason,
		    sizeof(d->reason));
	} else {
		d->verdict = PP_POLICY_DENY;
		snprintf(d->rule, sizeof(d->rule), "default deny");
		d->line = 0;
		if (c.pi < 0 && !c.known)
			snprintf(d->reason, sizeof(d->reason), "%s", why);
		else
			snprintf(d->reason, sizeof(d->reason), "no rule allows "
			    "%s \"%s\" %s/%u here", who->key ? "peer" : "v1 peer",
			    who->name ? who->name : "", proto_word(proto), port);
	}
	if (x != NULL) {
		if (pol->nrules == 0)
			sb_printf(x, "  (no rules)\n");
		sb_printf(x, "decision: %s by %s%s%s", d->verdict ==
		    PP_POLICY_ALLOW ? "ALLOW" : "DENY", d->line ? "rule \"" : "",
		    d->rule, d->line ? "\"" : "");
		if (d->line)
			sb_printf(x, " (line %d)", d->line);
		sb_printf(x, ": %s\n", d->reason);
		if (d->verdict == PP_POLICY_ALLOW && d->legacy)
			sb_printf(x, "note: a version-1 peer, admitted by name "
			    "only: the gateway logs it\n");
	}
	return d->verdict == PP_POLICY_ALLOW ? 0 : PP_EDENIED;
}

/* --- API ----------------------------------------------------------------- */

int
pp_policy_decide(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, enum pp_tun_proto proto,
    uint16_t port, int64_t now, struct pp_policy_decision *d)
{
	return walk(pol, gateway, who, proto, port, now, d, NULL);
}

int
pp_policy_explain(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, enum pp_tun_proto proto,
    uint16_t port, int64_t now, char *buf, size_t len)
{
	struct pp_policy_decision d;
	struct sb x = { buf, len, 0, 0 };

	if (len > 0)
		buf[0] = '\0';
	return walk(pol, gateway, who, proto, port, now, &d, &x);
}

size_t
pp_policy_offer(const struct pp_policy *pol, const char *gateway,
    const struct pp_policy_peer_id *who, int64_t now,
    const struct pp_tun_port *ports, size_t n, struct pp_tun_port *out)
{
	struct pp_policy_decision d;
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		if (walk(pol, gateway, who, ports[i].proto, ports[i].port, now,
		    &d, NULL) == 0)
			out[k++] = ports[i];
	return k;
}

int
pp_policy_service_find(const struct pp_policy *pol, const char *gateway,
    const char *name, enum pp_tun_proto *proto, uint16_t *port)
{
	const char *gw = gateway != NULL ? gateway : "";

	for (size_t i = 0; i < pol->nsvcs; i++) {
		const struct pp__pol_service *s = &pol->svcs[i];

		if (strcmp(s->name, name) != 0)
			continue;
		if (s->gateway[0] != '\0' && gw[0] != '\0' &&
		    strcmp(s->gateway, gw) != 0)
			return PP_ENOTFOUND;
		*proto = s->proto;
		*port = s->port;
		return 0;
	}
	return PP_ENOTFOUND;
}

int
pp_policy_names_key(const struct pp_policy *pol, const char *gateway,
    const uint8_t key[32], int64_t now)
{
	return key_named(pol, key, gateway != NULL ? gateway : "", now);
}

int
pp_policy_peer_key(const struct pp_policy *pol, const char *name,
    uint8_t key[32])
{
	for (size_t i = 0; i < pol->npeers; i++) {
		if (strcmp(pol->peers[i].name, name) != 0)
			continue;
		if (pol->peers[i].legacy)
			return PP_EINVAL;
		memcpy(key, pol->peers[i].key, PP_ID_PUB_LEN);
		return 0;
	}
	return PP_ENOTFOUND;
}

int
pp_policy_key_owner(const struct pp_policy *pol, const uint8_t key[32],
    char *name, size_t len)
{
	for (size_t i = 0; i < pol->npeers; i++) {
		if (pol->peers[i].legacy || CRYPTO_memcmp(pol->peers[i].key, key,
		    PP_ID_PUB_LEN) != 0)
			continue;
		snprintf(name, len, "%s", pol->peers[i].name);
		return 0;
	}
	return PP_ENOTFOUND;
}

int64_t
pp_policy_next_expiry(const struct pp_policy *pol, int64_t now)
{
	int64_t next = 0;

	for (size_t i = 0; i < pol->nrules; i++) {
		const struct pp__pol_rule *r = &pol->rules[i];

		if (r->has_expiry && r->expires > now &&
		    (next == 0 || r->expires < next))
			next = r->expires;
	}
	return next;
}

void
pp_policy_hash(const struct pp_policy *pol, uint8_t out[PP_POLICY_HASH_LEN])
{
	memcpy(out, pol->hash, PP_POLICY_HASH_LEN);
}

/* --- the hash ------------------------------------------------------------ */

/* Length-prefixed, so that no two different policies serialize alike. */
static void
h_bytes(EVP_MD_CTX *md, const void *p, size_t len)
{
	uint8_t n[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16),
	    (uint8_t)(len >> 8), (uint8_t)len };

	EVP_DigestUpdate(md, n, sizeof(n));
	EVP_DigestUpdate(md, p, len);
}

static void
h_str(EVP_MD_CTX *md, const char *s)
{
	h_bytes(md, s, strlen(s));
}

static void
h_u64(EVP_MD_CTX *md, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	h_bytes(md, b, sizeof(b));
}

void
pp__pol_hash(struct pp_policy *pol)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int len = 0;

	memset(pol->hash, 0, sizeof(pol->hash));
	if (md == NULL || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		/* All-zero: never equal to a real one, so a reload re-decides. */
		EVP_MD_CTX_free(md);
		return;
	}
	h_str(md, "peerpipe-policy-1");
	h_u64(md, pol->npeers);
	for (size_t i = 0; i < pol->npeers; i++) {
		const struct pp__pol_peer *e = &pol->peers[i];

		h_str(md, e->name);
		h_u64(md, (uint64_t)e->legacy);
		h_bytes(md, e->key, sizeof(e->key));
		h_u64(md, e->ngroups);
		for (size_t g = 0; g < e->ngroups; g++)
			h_str(md, pol->groups[e->groups[g]]);
	}
	h_u64(md, pol->nsvcs);
	for (size_t i = 0; i < pol->nsvcs; i++) {
		const struct pp__pol_service *s = &pol->svcs[i];

		h_str(md, s->name);
		h_u64(md, s->port);
		h_u64(md, (uint64_t)s->proto);
		h_str(md, s->host);
		h_str(md, s->gateway);
	}
	h_u64(md, pol->nrules);
	for (size_t i = 0; i < pol->nrules; i++) {
		const struct pp__pol_rule *r = &pol->rules[i];
		char t[128];

		h_str(md, r->name);
		h_u64(md, (uint64_t)r->deny);
		h_u64(md, r->nsubj);
		for (size_t j = 0; j < r->nsubj; j++) {
			subj_text(pol, &r->subj[j], t, sizeof(t));
			h_str(md, t);
		}
		h_u64(md, r->nobj);
		for (size_t j = 0; j < r->nobj; j++) {
			obj_text(pol, &r->obj[j], t, sizeof(t));
			h_str(md, t);
		}
		h_u64(md, r->ngw);
		for (size_t g = 0; g < r->ngw; g++)
			h_str(md, r->gw[g]);
		h_u64(md, (uint64_t)r->has_expiry);
		h_u64(md, (uint64_t)r->expires);
	}
	if (EVP_DigestFinal_ex(md, pol->hash, &len) != 1 ||
	    len != PP_POLICY_HASH_LEN)
		memset(pol->hash, 0, sizeof(pol->hash));
	EVP_MD_CTX_free(md);
}
