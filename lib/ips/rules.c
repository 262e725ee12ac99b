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
int
pp_rules_priority(const char *line, size_t len,
    const struct pp_rules_classmap *cm, size_t *action_off, size_t *action_len)
{
	static const char *const actions[] = { "alert", "drop", "pass",
	    "reject", "rejectsrc", "rejectdst", "rejectboth" };
	const char *p = line, *end = line + len, *open, *opt;
	int prio = 0, cprio = 0, inq = 0;
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
	opt = open + 1;
	for (const char *q = open + 1; q < end; q++) {
		if (*q == '\\' && q + 1 < end) {
			q++;
			continue;
		}
		if (*q == '"') {
			inq = !inq;
			continue;
		}
		if (inq || (*q != ';' && *q != ')'))
			continue;
		/* One option: [opt, q). */
		while (opt < q && is_space(*opt))
			opt++;
		{
			size_t olen = q > opt ? (size_t)(q - opt) : 0;
			const char *colon = olen ? memchr(opt, ':', olen) : NULL;
			size_t klen = colon ? (size_t)(colon - opt) : 0;
			const char *v = colon ? colon + 1 : NULL;
			const char *ve = q;

			if (v) {
				while (v < ve && is_space(*v))
					v++;
				while (ve > v && is_space(ve[-1]))
					ve--;
			}
			if (klen == 8 && memcmp(opt, "priority", 8) == 0) {
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
			} else if (klen == 9 && memcmp(opt, "classtype", 9) == 0) {
				cprio = class_priority(cm, v, (size_t)(ve - v));
			}
		}
		opt = q + 1;
		if (*q == ')')
			break;
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

int
pp_rules_inspect(const char *line, size_t len, struct pp_rule_info *ri)
{
	const char *p = line, *end = line + len, *tok[7], *open, *opt;
	size_t tlen[7];
	int ntok = 0, inq = 0, dir = 0, syn = 0, content = 0;

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
	opt = open + 1;
	for (const char *q = open + 1; q < end; q++) {
		if (*q == '\\' && q + 1 < end) {
			q++;
			continue;
		}
		if (*q == '"') {
			inq = !inq;
			continue;
		}
		if (inq || (*q != ';' && *q != ')'))
			continue;
		while (opt < q && is_space(*opt))
			opt++;
		{
			size_t olen = q > opt ? (size_t)(q - opt) : 0;
			const char *colon = olen ? memchr(opt, ':', olen) : NULL;
			const char *ke = colon ? colon : q;
			const char *v = colon ? colon + 1 : q;

			while (ke > opt && is_space(ke[-1]))
				ke--;
			if (opt_is(opt, (size_t)(ke - opt), "noalert"))
				ri->noalert = 1;
			else if (opt_is(opt, (size_t)(ke - opt), "flowbits") &&
			    has_word(v, q, "noalert"))
				ri->noalert = 1;
			else if (opt_is(opt, (size_t)(ke - opt), "content") ||
			    opt_is(opt, (size_t)(ke - opt), "pcre"))
				content = 1;
			else if (opt_is(opt, (size_t)(ke - opt), "flags")) {
				for (const char *f = v; f < q && *f != ','; f++)
					syn |= *f == 'S';
			} else if (opt_is(opt, (size_t)(ke - opt), "flow")) {
				if (has_word(v, q, "to_server") ||
				    has_word(v, q, "from_client"))
					dir = 1;
				if (has_word(v, q, "to_client") ||
				    has_word(v, q, "from_server"))
					dir = 2;
			}
		}
		opt = q + 1;
		if (*q == ')')
			break;
	}
	/* The services' side is the client: their requests (HOME_NET as the
	 * source towards the server), the answers they get (HOME_NET as the
	 * destination from the server), DNS queries from HOME_NET. */
	if (home_address(tok[2], tlen[2]) && (dir == 1 || (dir == 0 &&
	    tlen[1] == 3 && memcmp(tok[1], "dns", 3) == 0)))
		ri->client_side = 1;
	if (home_address(tok[5], tlen[5]) && dir == 2)
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

static int
policy_file(FILE *out, const char *path, const struct pp_rules_classmap *cm,
    int drop_priority, struct pp_rules_stats *st)
{
	FILE *in = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (in == NULL)
		return -errno;
	fprintf(out, "# ---- %s\n", path);
	while ((n = getline(&line, &cap, in)) > 0) {
		size_t off, alen;
		int prio;

		if ((size_t)n > MAX_LINE)
			continue;
		prio = pp_rules_priority(line, (size_t)n, cm, &off, &alen);
		if (prio > 0) {
			struct pp_rule_info ri;

			st->rules++;
			pp_rules_inspect(line, (size_t)n, &ri);
			if (ri.client_side) {
				/* Never the tunnelled peer's traffic: off. */
				fputs("# peerpipe: client-side rule, off: ", out);
				fwrite(line, 1, (size_t)n, out);
				if (line[n - 1] != '\n')
					fputc('\n', out);
				st->client_side++;
				continue;
			}
			if (ri.conn_level) {
				/* The Sentinel's job, and by_src counts every peer
				 * together (one source address: the gateway). */
				fputs("# peerpipe: connection-level rule, off: ",
				    out);
				fwrite(line, 1, (size_t)n, out);
				if (line[n - 1] != '\n')
					fputc('\n', out);
				st->conn_level++;
				continue;
			}
			if (drop_priority > 0 && prio <= drop_priority &&
			    !ri.noalert &&
			    alen == 5 && memcmp(line + off, "alert", 5) == 0) {
				/* "alert" -> "drop", the rest as it was. */
				fwrite(line, 1, off, out);
				fputs("drop", out);
				fwrite(line + off + alen, 1,
				    (size_t)n - off - alen, out);
				st->dropped++;
				if (line[n - 1] != '\n')
					fputc('\n', out);
				continue;
			}
			st->alerts += alen == 5 &&
			    memcmp(line + off, "alert", 5) == 0;
		}
		fwrite(line, 1, (size_t)n, out);
		if (line[n - 1] != '\n')
			fputc('\n', out);
	}
	free(line);
	fclose(in);
	return 0;
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
		snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
		if ((out = fopen(tmp, "w")) == NULL) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		}
	}
	if (out) {
		fprintf(out, "# Generated by PeerPipe from %s: rules of "
		    "priority <= %d turned from alert to drop (noalert rules "
		    "excepted), client-side and connection-level rules "
		    "commented out.  Do not edit.\n", dir, drop_priority);
		for (size_t i = 0; i < nnames && rc == 0; i++) {
			snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
			if ((rc = policy_file(out, path, cm, drop_priority, st)) != 0)
				snprintf(err, errlen, "%s: %s", path,
				    strerror(-rc));
			st->files++;
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
