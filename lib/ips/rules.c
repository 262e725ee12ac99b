/*
 * The ET Open alert -> drop policy (see rules.h).
 */
#include "ips/rules.h"

#include "base/error.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_PRIORITY 3
#define MAX_FILES 512
#define MAX_LINE (256u * 1024u)

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

void
pp_rules_classmap_parse(struct pp_rules_classmap *cm, const char *text,
    size_t len)
{
	static const char key[] = "config classification:";
	const char *p = text, *end = text + len;

	cm->n = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *le = eol ? eol : end;
		const char *name, *c1, *c2;
		size_t nlen;
		int prio = 0;

		while (p < le && is_space(*p))
			p++;
		if ((size_t)(le - p) > sizeof(key) - 1 &&
		    memcmp(p, key, sizeof(key) - 1) == 0) {
			name = p + sizeof(key) - 1;
			while (name < le && is_space(*name))
				name++;
			c1 = memchr(name, ',', (size_t)(le - name));
			c2 = c1 ? memchr(c1 + 1, ',', (size_t)(le - c1 - 1)) : NULL;
			if (c2 != NULL) {
				for (const char *q = c2 + 1; q < le; q++) {
					if (*q >= '0' && *q <= '9')
						prio = prio * 10 + (*q - '0');
					else if (!is_space(*q))
						prio = -1000;
					if (prio > 255)
						prio = -1000;
				}
				nlen = (size_t)(c1 - name);
				while (nlen > 0 && is_space(name[nlen - 1]))
					nlen--;
				if (prio > 0 && nlen > 0 &&
				    nlen < PP_RULES_CLASSNAME_MAX &&
				    cm->n < PP_RULES_CLASS_MAX) {
					memcpy(cm->c[cm->n].name, name, nlen);
					cm->c[cm->n].name[nlen] = '\0';
					cm->c[cm->n].priority = prio;
					cm->n++;
				}
			}
		}
		p = eol ? eol + 1 : end;
	}
}

static int
class_priority(const struct pp_rules_classmap *cm, const char *name, size_t len)
{
	for (size_t i = 0; cm && i < cm->n; i++)
		if (strlen(cm->c[i].name) == len &&
		    memcmp(cm->c[i].name, name, len) == 0)
			return cm->c[i].priority;
	return 0;
}

/*
 * Walks the options between the rule's '(' and its last ')': split on ';'
 * outside double quotes, a backslash escapes the next character.
 */
/*
 * The options of a rule, one at a time: what is inside its parentheses,
 * split at each ';' (or the closing ')') that is neither quoted nor
 * escaped.  key..key+klen is the option's name without blanks around it;
 * v..ve its raw value after the ':' (empty, and has_value 0, without one).
 */
struct ropt_iter {
	const char *q, *opt, *end;
	int inq, done;
};

struct ropt {
	const char *key, *v, *ve;
	size_t klen;
	int has_value;
};

static void
ropt_begin(struct ropt_iter *it, const char *open, const char *end)
{
	it->q = it->opt = open + 1;
	it->end = end;
	it->inq = it->done = 0;
}

static int
ropt_next(struct ropt_iter *it, struct ropt *o)
{
	for (; !it->done && it->q < it->end; it->q++) {
		const char *q = it->q, *opt = it->opt, *colon, *ke;
		size_t olen;

		if (*q == '\\' && q + 1 < it->end) {
			it->q++;
			continue;
		}
		if (*q == '"') {
			it->inq = !it->inq;
			continue;
		}
		if (it->inq || (*q != ';' && *q != ')'))
			continue;
		while (opt < q && is_space(*opt))
			opt++;
		olen = q > opt ? (size_t)(q - opt) : 0;
		colon = olen ? memchr(opt, ':', olen) : NULL;
		ke = colon ? colon : q;
		while (ke > opt && is_space(ke[-1]))
			ke--;
		o->key = opt;
		o->klen = ke > opt ? (size_t)(ke - opt) : 0;
		o->has_value = colon != NULL;
		o->v = colon ? colon + 1 : q;
		o->ve = q;
		it->opt = q + 1;
		it->done = *q == ')';
		it->q++;
		return 1;
	}
	return 0;
}

int
pp_rules_priority(const char *line, size_t len,
    const struct pp_rules_classmap *cm, size_t *action_off, size_t *action_len)
{
	static const char *const actions[] = { "alert", "drop", "pass",
	    "reject", "rejectsrc", "rejectdst", "rejectboth" };
	const char *p = line, *end = line + len, *open;
	struct ropt_iter it;
	struct ropt o;
	int prio = 0, cprio = 0;
	size_t alen = 0;

	while (p < end && is_space(*p))
		p++;
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		size_t n = strlen(actions[i]);

		if ((size_t)(end - p) > n && memcmp(p, actions[i], n) == 0 &&
		    is_space(p[n]))
			alen = n;
	}
	if (alen == 0)
		return 0;
	*action_off = (size_t)(p - line);
	*action_len = alen;
	if ((open = memchr(p, '(', (size_t)(end - p))) == NULL)
		return 0;
	ropt_begin(&it, open, end);
	while (ropt_next(&it, &o)) {
		const char *v = o.v, *ve = o.ve;

		if (!o.has_value)
			continue;
		while (v < ve && is_space(*v))
			v++;
		while (ve > v && is_space(ve[-1]))
			ve--;
		if (o.klen == 8 && memcmp(o.key, "priority", 8) == 0) {
			int x = 0;

			for (const char *d = v; d < ve; d++) {
				if (*d < '0' || *d > '9' || x > 255) {
					x = 0;
					break;
				}
				x = x * 10 + (*d - '0');
			}
			if (x > 0 && x <= 255)
				prio = x;
		} else if (o.klen == 9 && memcmp(o.key, "classtype", 9) == 0) {
			cprio = class_priority(cm, v, (size_t)(ve - v));
		}
	}
	if (prio)
		return prio;
	return cprio ? cprio : DEFAULT_PRIORITY;
}

/* The value of one rule option, [v, ve), without surrounding blanks. */
static int
opt_is(const char *opt, size_t klen, const char *key)
{
	return klen == strlen(key) && memcmp(opt, key, klen) == 0;
}

static int
has_word(const char *v, const char *ve, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = v; p && p + n <= ve; p++)
		if (memcmp(p, word, n) == 0 &&
		    (p == v || p[-1] == ',' || is_space(p[-1])) &&
		    (p + n == ve || p[n] == ',' || is_space(p[n])))
			return 1;
	return 0;
}

/*
 * An address of the rule header that names the protected services only:
 * $HOME_NET, one of the *_SERVERS groups (all $HOME_NET in the generated
 * suricata.yaml), or a [list] of those.
 */
static int
home_address(const char *a, size_t n)
{
	static const char *const home[] = { "$HOME_NET", "$HTTP_SERVERS",
	    "$SMTP_SERVERS", "$SQL_SERVERS", "$DNS_SERVERS",
	    "$TELNET_SERVERS", "$DC_SERVERS" };
	const char *end = a + n;
	int any = 0;

	if (n >= 2 && a[0] == '[' && a[n - 1] == ']') {
		a++;
		end--;
	}
	while (a < end) {
		const char *c = memchr(a, ',', (size_t)(end - a));
		const char *e = c ? c : end;
		int ok = 0;

		while (a < e && is_space(*a))
			a++;
		while (e > a && is_space(e[-1]))
			e--;
		for (size_t i = 0; i < sizeof(home) / sizeof(home[0]); i++)
			ok |= (size_t)(e - a) == strlen(home[i]) &&
			    memcmp(a, home[i], (size_t)(e - a)) == 0;
		if (!ok)
			return 0;
		any = 1;
		a = c ? c + 1 : end;
	}
	return any;
}

static uint64_t
fnv1a(const char *p, const char *e)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; p < e; p++) {
		h ^= (uint8_t)*p;
		h *= 0x100000001b3ull;
	}
	return h;
}

/*
 * One flowbits option's value, [v, ve): "set,NAME", "toggle,NAME",
 * "isset,A|B" (names of an isset group), "noalert", "unset,...",
 * "isnotset,..." (neither sets nor needs a bit).
 */
static void
flowbits_opt(const char *v, const char *ve, struct pp_rule_info *ri,
    unsigned *group)
{
	const char *c = memchr(v, ',', (size_t)(ve - v)), *ce, *n;
	int need;

	while (v < ve && is_space(*v))
		v++;
	if (c == NULL)
		return;
	ce = c;
	while (ce > v && is_space(ce[-1]))
		ce--;
	if ((ce - v == 3 && memcmp(v, "set", 3) == 0) ||
	    (ce - v == 6 && memcmp(v, "toggle", 6) == 0))
		need = 0;
	else if (ce - v == 5 && memcmp(v, "isset", 5) == 0)
		need = 1;
	else
		return;
	for (n = c + 1; n < ve; ) {
		const char *sep = n, *ne;

		while (sep < ve && *sep != '|' && *sep != ',')
			sep++;
		while (n < sep && is_space(*n))
			n++;
		ne = sep;
		while (ne > n && is_space(ne[-1]))
			ne--;
		if (ne > n) {
			if (ri->nflowbits == PP_RULES_FLOWBITS_MAX) {
				ri->flowbits_more = 1;
				return;
			}
			ri->flowbits[ri->nflowbits].name = fnv1a(n, ne);
			ri->flowbits[ri->nflowbits].need = (uint8_t)need;
			ri->flowbits[ri->nflowbits].group = (uint8_t)*group;
			ri->nflowbits++;
		}
		/* "set,NAME,noalert": what follows a ',' is not a name */
		if (sep == ve || *sep == ',')
			break;
		n = sep + 1;
	}
	*group += need;
}

int
pp_rules_inspect(const char *line, size_t len, struct pp_rule_info *ri)
{
	unsigned group = 0;
	int src_home, dst_home;
	const char *p = line, *end = line + len, *tok[7], *open;
	struct ropt_iter it;
	struct ropt o;
	size_t tlen[7];
	int ntok = 0, dir = 0, syn = 0, content = 0;

	memset(ri, 0, sizeof(*ri));
	if ((open = memchr(line, '(', len)) == NULL)
		return 0;
	/* action proto src sport dir dst dport: brackets may hold blanks. */
	while (ntok < 7 && p < open) {
		int depth = 0;

		while (p < open && is_space(*p))
			p++;
		if (p == open)
			break;
		tok[ntok] = p;
		while (p < open && (depth > 0 || !is_space(*p))) {
			depth += *p == '[';
			depth -= *p == ']';
			p++;
		}
		tlen[ntok] = (size_t)(p - tok[ntok]);
		ntok++;
	}
	if (ntok != 7 || tlen[4] != 2 || memcmp(tok[4], "->", 2) != 0)
		return 0;
	ropt_begin(&it, open, end);
	while (ropt_next(&it, &o)) {
		const char *v = o.v, *q = o.ve;

		if (opt_is(o.key, o.klen, "noalert"))
			ri->noalert = 1;
		else if (opt_is(o.key, o.klen, "flowbits")) {
			if (has_word(v, q, "noalert"))
				ri->noalert = 1;
			flowbits_opt(v, q, ri, &group);
		} else if (opt_is(o.key, o.klen, "content") ||
		    opt_is(o.key, o.klen, "pcre"))
			content = 1;
		else if (opt_is(o.key, o.klen, "flags")) {
			for (const char *f = v; f < q && *f != ','; f++)
				syn |= *f == 'S';
		} else if (opt_is(o.key, o.klen, "flow")) {
			if (has_word(v, q, "to_server") ||
			    has_word(v, q, "from_client"))
				dir = 1;
			if (has_word(v, q, "to_client") ||
			    has_word(v, q, "from_server"))
				dir = 2;
		}
	}
	/* The services' side is the client: their requests (HOME_NET as the
	 * source towards the server), the answers they get (HOME_NET as the
	 * destination from the server), DNS queries from HOME_NET.  Unless the
	 * server's end is HOME_NET too: then the rule is about an attack on a
	 * protected server from inside HOME_NET -- the peer, when the service
	 * runs on the gateway's host -- and stays on. */
	src_home = home_address(tok[2], tlen[2]);
	dst_home = home_address(tok[5], tlen[5]);
	if (src_home && !dst_home && (dir == 1 || (dir == 0 &&
	    tlen[1] == 3 && memcmp(tok[1], "dns", 3) == 0)))
		ri->client_side = 1;
	if (dst_home && !src_home && dir == 2)
		ri->client_side = 1;
	/* A connection attempt alone (SYN, no payload): "inbound to port X",
	 * "N connections in T seconds" heuristics. */
	ri->conn_level = syn && !content;
	return 1;
}

static char *
slurp(const char *path, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (f == NULL)
		return NULL;
	if ((buf = malloc(cap)) == NULL) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, cap, f);
	fclose(f);
	*len = n;
	return buf;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/*
 * The policy is decided over the whole ruleset before anything is written,
 * because flowbits tie rules of different files together: pass 1 (scan)
 * records each rule's own verdict and flowbits, resolve() follows the
 * flowbits, pass 2 (emit) writes the files with the verdicts.
 */
enum rstate {
	R_ON,		/* active: alert, or drop by priority */
	R_CLIENT,	/* off: client-side */
	R_CONN,		/* off: connection-level */
	R_SETTER,	/* client-side or connection-level, kept: sets a bit */
	R_DEP,		/* off: tests a bit that no active rule sets */
};

struct rrec {
	uint32_t len;		/* the line's length, checked again in pass 2 */
	uint32_t fb0;		/* its flowbits: fb[fb0 .. fb0 + nfb) */
	uint8_t nfb;
	uint8_t state;
	uint8_t orig;		/* the state before flowbits were followed */
	uint8_t revived;	/* was brought back as a setter once */
	uint8_t noalert;
	uint8_t more;
};

struct pol {
	struct rrec *r;
	size_t nr, rcap;
	struct pp_rule_flowbit *fb;
	size_t nfb, fbcap;
};

static int
pol_add(struct pol *ps, size_t len, const struct pp_rule_info *ri)
{
	struct rrec *rr;

	if (ps->nr == ps->rcap) {
		size_t n = ps->rcap ? ps->rcap * 2 : 4096;
		struct rrec *nr = realloc(ps->r, n * sizeof(*nr));

		if (nr == NULL)
			return -ENOMEM;
		ps->r = nr;
		ps->rcap = n;
	}
	if (ps->nfb + ri->nflowbits > ps->fbcap) {
		size_t n = ps->fbcap ? ps->fbcap * 2 : 1024;
		struct pp_rule_flowbit *nf;

		while (n < ps->nfb + ri->nflowbits)
			n *= 2;
		if ((nf = realloc(ps->fb, n * sizeof(*nf))) == NULL)
			return -ENOMEM;
		ps->fb = nf;
		ps->fbcap = n;
	}
	rr = &ps->r[ps->nr++];
	rr->len = (uint32_t)len;
	rr->fb0 = (uint32_t)ps->nfb;
	rr->nfb = (uint8_t)ri->nflowbits;
	rr->state = ri->client_side ? R_CLIENT : ri->conn_level ? R_CONN : R_ON;
	rr->orig = rr->state;
	rr->revived = 0;
	rr->noalert = (uint8_t)(ri->noalert != 0);
	rr->more = (uint8_t)(ri->flowbits_more != 0);
	if (ri->nflowbits)
		memcpy(ps->fb + ps->nfb, ri->flowbits,
		    ri->nflowbits * sizeof(ri->flowbits[0]));
	ps->nfb += ri->nflowbits;
	return 0;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static int
in_set(const uint64_t *set, size_t n, uint64_t v)
{
	return bsearch(&v, set, n, sizeof(v), cmp_u64) != NULL;
}

static int
is_on(const struct rrec *rr)
{
	return rr->state == R_ON || rr->state == R_SETTER;
}

/* Every isset group of the rule has a name in have. */
static int
deps_met(const struct pol *ps, const struct rrec *rr, const uint64_t *have,
    size_t nhave)
{
	const struct pp_rule_flowbit *fb = ps->fb + rr->fb0;

	if (rr->more)
		return 1;	/* not all of its bits are known: leave it */
	for (unsigned i = 0; i < rr->nfb; i++) {
		int met = 0;

		if (!fb[i].need)
			continue;
		for (unsigned k = 0; k < rr->nfb; k++)
			met |= fb[k].need && fb[k].group == fb[i].group &&
			    in_set(have, nhave, fb[k].name);
		if (!met)
			return 0;
	}
	return 1;
}

/*
 * Follows the flowbits until nothing changes: an active rule that tests a
 * bit no active rule sets first brings back the noalert rules, turned off as
 * client-side or connection-level, that set it (they alert on nothing and
 * drop nothing, so they cannot cut a peer; they only let the active rule
 * work); a bit that still nobody sets turns the tester off too (a setter
 * brought back goes back to what it was), which may in turn leave other
 * bits unset.  A rule is brought back at most once and turned off for a
 * flowbit at most once, so this ends.
 */
static int
resolve(struct pol *ps)
{
	uint64_t *have, *want;
	size_t nhave, nwant;

	have = malloc((ps->nfb ? ps->nfb : 1) * sizeof(*have));
	want = malloc((ps->nfb ? ps->nfb : 1) * sizeof(*want));
	if (have == NULL || want == NULL) {
		free(have);
		free(want);
		return -ENOMEM;
	}
	for (;;) {
		size_t changed = 0;

		nhave = nwant = 0;
		for (size_t i = 0; i < ps->nr; i++)
			for (unsigned k = 0; is_on(&ps->r[i]) && k < ps->r[i].nfb;
			    k++)
				if (!ps->fb[ps->r[i].fb0 + k].need)
					have[nhave++] = ps->fb[ps->r[i].fb0 + k].name;
		qsort(have, nhave, sizeof(*have), cmp_u64);
		for (size_t i = 0; i < ps->nr; i++) {
			const struct rrec *rr = &ps->r[i];

			if (!is_on(rr) || deps_met(ps, rr, have, nhave))
				continue;
			for (unsigned k = 0; k < rr->nfb; k++)
				if (ps->fb[rr->fb0 + k].need &&
				    !in_set(have, nhave, ps->fb[rr->fb0 + k].name))
					want[nwant++] = ps->fb[rr->fb0 + k].name;
		}
		if (nwant == 0)
			break;
		qsort(want, nwant, sizeof(*want), cmp_u64);
		for (size_t i = 0; i < ps->nr; i++) {
			struct rrec *rr = &ps->r[i];

			if ((rr->state != R_CLIENT && rr->state != R_CONN) ||
			    !rr->noalert || rr->revived)
				continue;
			for (unsigned k = 0; k < rr->nfb; k++)
				if (!ps->fb[rr->fb0 + k].need &&
				    in_set(want, nwant, ps->fb[rr->fb0 + k].name)) {
					rr->state = R_SETTER;
					rr->revived = 1;
					changed++;
					break;
				}
		}
		if (changed)
			continue;
		for (size_t i = 0; i < ps->nr; i++)
			if (is_on(&ps->r[i]) &&
			    !deps_met(ps, &ps->r[i], have, nhave)) {
				ps->r[i].state = ps->r[i].state == R_SETTER ?
				    ps->r[i].orig : R_DEP;
				changed++;
			}
		if (changed == 0)
			break;	/* cannot happen: nwant > 0 means a tester */
	}
	free(have);
	free(want);
	return 0;
}

/* The next rule line of the file: its priority, or 0 for other lines. */
static int
next_line(FILE *in, char **line, size_t *cap, ssize_t *n,
    const struct pp_rules_classmap *cm, size_t *off, size_t *alen)
{
	if ((*n = getline(line, cap, in)) <= 0)
		return -1;
	if ((size_t)*n > MAX_LINE)
		return 0;
	return pp_rules_priority(*line, (size_t)*n, cm, off, alen);
}

static int
scan_file(const char *path, const struct pp_rules_classmap *cm,
    struct pol *ps)
{
	FILE *in = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, off, alen;
	ssize_t n;
	int prio, rc = 0;

	if (in == NULL)
		return -errno;
	while (rc == 0 &&
	    (prio = next_line(in, &line, &cap, &n, cm, &off, &alen)) >= 0) {
		struct pp_rule_info ri;

		if (prio == 0)
			continue;
		pp_rules_inspect(line, (size_t)n, &ri);
		rc = pol_add(ps, (size_t)n, &ri);
	}
	free(line);
	fclose(in);
	return rc;
}

static void
put_line(FILE *out, const char *prefix, const char *line, size_t n)
{
	if (prefix)
		fputs(prefix, out);
	fwrite(line, 1, n, out);
	if (line[n - 1] != '\n')
		fputc('\n', out);
}

static int
emit_file(FILE *out, const char *path, const struct pp_rules_classmap *cm,
    int drop_priority, const struct pol *ps, size_t *ri_next,
    struct pp_rules_stats *st)
{
	FILE *in = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, off, alen;
	ssize_t n;
	int prio, rc = 0;

	if (in == NULL)
		return -errno;
	fprintf(out, "# ---- %s\n", path);
	while ((prio = next_line(in, &line, &cap, &n, cm, &off, &alen)) >= 0) {
		const struct rrec *rr;

		if (prio == 0) {
			/* an oversized line is left out, never passed on */
			if ((size_t)n <= MAX_LINE)
				put_line(out, NULL, line, (size_t)n);
			continue;
		}
		if (*ri_next >= ps->nr || ps->r[*ri_next].len != (size_t)n) {
			rc = PP_ECONFLICT;	/* the file changed meanwhile */
			break;
		}
		rr = &ps->r[(*ri_next)++];
		st->rules++;
		switch (rr->state) {
		case R_CLIENT:
			/* Never the tunnelled peer's traffic: off. */
			put_line(out, "# peerpipe: client-side rule, off: ", line,
			    (size_t)n);
			st->client_side++;
			continue;
		case R_CONN:
			/* The Sentinel's job, and by_src counts every peer
			 * together (one source address: the gateway). */
			put_line(out, "# peerpipe: connection-level rule, off: ",
			    line, (size_t)n);
			st->conn_level++;
			continue;
		case R_DEP:
			put_line(out, "# peerpipe: flowbit dependency, off (a "
			    "flowbit it tests is set by no rule that is on): ",
			    line, (size_t)n);
			st->flowbit_off++;
			continue;
		case R_SETTER:
			/* noalert: never a drop, below */
			fputs("# peerpipe note: the next rule is client-side or "
			    "connection-level, kept on: it only sets a flowbit "
			    "an active rule tests (noalert)\n", out);
			st->flowbit_setters++;
			break;
		}
		if (drop_priority > 0 && prio <= drop_priority && !rr->noalert &&
		    alen == 5 && memcmp(line + off, "alert", 5) == 0) {
			/* "alert" -> "drop", the rest as it was. */
			fwrite(line, 1, off, out);
			fputs("drop", out);
			put_line(out, NULL, line + off + alen,
			    (size_t)n - off - alen);
			st->dropped++;
			continue;
		}
		st->alerts += alen == 5 && memcmp(line + off, "alert", 5) == 0;
		put_line(out, NULL, line, (size_t)n);
	}
	free(line);
	fclose(in);
	return rc;
}

int
pp_rules_write_policy(const char *dir, const char *class_fallback,
    int drop_priority, const char *out_path, struct pp_rules_stats *st,
    char *err, size_t errlen)
{
	struct pp_rules_classmap *cm;
	char path[4096], tmp[4096];
	char *names[MAX_FILES], *text;
	size_t nnames = 0, tlen;
	struct dirent *de;
	DIR *d;
	FILE *out = NULL;
	struct pol ps = { 0 };
	int rc = 0;

	memset(st, 0, sizeof(*st));
	if ((cm = calloc(1, sizeof(*cm))) == NULL)
		return -ENOMEM;
	snprintf(path, sizeof(path), "%s/classification.config", dir);
	if ((text = slurp(path, 1u << 20, &tlen)) == NULL && class_fallback)
		text = slurp(class_fallback, 1u << 20, &tlen);
	if (text) {
		pp_rules_classmap_parse(cm, text, tlen);
		free(text);
	}
	if ((d = opendir(dir)) == NULL) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", dir, strerror(errno));
		free(cm);
		return rc;
	}
	while ((de = readdir(d)) != NULL && nnames < MAX_FILES) {
		if (de->d_name[0] == '.' || !ends_with(de->d_name, ".rules"))
			continue;
		if ((names[nnames] = strdup(de->d_name)) == NULL) {
			rc = -ENOMEM;
			break;
		}
		nnames++;
	}
	closedir(d);
	if (rc == 0 && nnames == 0) {
		snprintf(err, errlen, "%s: no *.rules files", dir);
		rc = PP_ENOTFOUND;
	}
	if (rc == 0) {
		qsort(names, nnames, sizeof(names[0]), cmp_names);
		/* pass 1: every rule's verdict and flowbits */
		for (size_t i = 0; i < nnames && rc == 0; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			if ((rc = scan_file(path, cm, &ps)) != 0)
				snprintf(err, errlen, "%s: %s", path,
				    pp_strerror(rc));
		}
		if (rc == 0 && (rc = resolve(&ps)) != 0)
			snprintf(err, errlen, "%s: %s", dir, pp_strerror(rc));
	}
	if (rc == 0) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
		if ((out = fopen(tmp, "w")) == NULL) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		}
	}
	if (out) {
		size_t next = 0;

		fprintf(out, "# Generated by PeerPipe from %s: rules of "
		    "priority <= %d turned from alert to drop (noalert rules "
		    "excepted), client-side and connection-level rules "
		    "commented out (unless they only set a flowbit an active "
		    "rule tests), rules testing a flowbit no active rule sets "
		    "commented out.  Do not edit.\n", dir, drop_priority);
		/* pass 2: the files with the verdicts */
		for (size_t i = 0; i < nnames && rc == 0; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			rc = emit_file(out, path, cm, drop_priority, &ps, &next,
			    st);
			if (rc == PP_ECONFLICT)
				snprintf(err, errlen, "%s changed while the IPS "
				    "policy was written from it: try again",
				    path);
			else if (rc != 0)
				snprintf(err, errlen, "%s: %s", path,
				    pp_strerror(rc));
			st->files++;
		}
		if (rc == 0 && next != ps.nr) {
			rc = PP_ECONFLICT;
			snprintf(err, errlen, "%s changed while the IPS policy "
			    "was written from it: try again", dir);
		}
		if (fclose(out) != 0 && rc == 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		}
		if (rc == 0 && rename(tmp, out_path) != 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", out_path, strerror(errno));
		}
		if (rc != 0)
			unlink(tmp);
	}
	free(ps.r);
	free(ps.fb);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(cm);
	return rc;
}

int
pp_rules_count(const char *path)
{
	FILE *in = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, off, alen;
	ssize_t n;
	int count = 0;

	if (in == NULL)
		return -errno;
	while ((n = getline(&line, &cap, in)) > 0)
		count += pp_rules_priority(line, (size_t)n, NULL, &off, &alen) > 0;
	free(line);
	fclose(in);
	return count;
}
