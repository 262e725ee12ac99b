/*
 * The agent's configuration file (docs/config.md).
 *
 * One pass over the lines, run by lib/base/ini_parse.h: each line is first
 * checked as bytes (length, NUL, control characters, UTF-8) and only then
 * split into a [section] header or a "key = value" pair, looked up in the
 * tables below; each value goes through its key's setter, which validates
 * it completely before storing it.  Checks that need a whole section (a
 * service's target, duplicate ports) run when the section closes, and
 * checks that need the whole file (required keys) at the end.
 * Every problem is recorded and parsing goes on, so the user sees them all.
 */
#include "agent/config.h"
#include "base/error.h"
#include "base/fsutil.h"
#include "base/ini.h"
#include "base/ini_parse.h"
#include "base/log.h"
#include "base/random.h"
#include "signal/msg.h"
#include "tunnel/tap.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/* The signaling server's rule for user and room names, for messages (it
 * goes inside printf formats, hence the %%). */
#define NAME_RULE	"4-48 characters: letters, digits, space and _+-=/$%%#@!?,;()[]"
#define UUID_HINT	"generate one with `cat /proc/sys/kernel/random/uuid`"

enum sect {		/* pp_ini's section ids */
	S_NONE,		/* 0: no open section */
	S_AGENT,
	S_SIGNALING,
	S_ROOM,
	S_ICE,
	S_TUNNEL,
	S_SERVICE,
	S_CONSUME,
	S_FORWARD,
	S_IPS,
};

struct parser;
PP_INI_KEY_ROW(key, struct parser);

struct parser {
	struct pp_ini ini;	/* first: pp_ini's callbacks get &p->ini */
	struct pp_cfg *cfg;
	/* The open [service] or [forward]: an entry of cfg, or the spare
	 * one when it cannot be stored (over the limit, duplicate name) so
	 * that its keys are still checked. */
	struct pp_cfg_service *svc;
	struct pp_cfg_forward *fwd;
	struct pp_cfg_service spare_svc;
	struct pp_cfg_forward spare_fwd;
	size_t nsvc_seen, nfwd_seen;
	int port_min_line, port_max_line;
	char prefix[96];	/* "[agent] " or "service \"db\": " */
};

/* --- messages ----------------------------------------------------------- */

#define err_at(p, line, ...)	pp_ini_err(&(p)->ini, (line), __VA_ARGS__)
#define err(p, ...)	err_at((p), (p)->ini.line, __VA_ARGS__)

/* User text inside a message: quoted, escaped, cut (lib/base/ini.h). */
static const char *
q(char *buf, size_t size, const char *s, size_t len)
{
	return pp_ini_quote(buf, size, s, len);
}

#define QBUF	PP_INI_QBUF

/* --- small value checks ------------------------------------------------ */

/*
 * HOST:PORT, [IPV6]:PORT, or without the port when need_port is 0 (*port
 * is then 0).  literal: HOST must be an IP address, not a name.  The host
 * goes to host without brackets.
 */
static int
parse_hostport(const char *s, size_t len, int need_port, int literal,
    char *host, size_t hostsize, uint16_t *port, char *why, size_t whylen)
{
	const char *h = s, *colon = NULL, *rb;
	size_t hlen;
	char qb[QBUF];
	int v6 = 0;

	*port = 0;
	if (len > 0 && s[0] == '[') {
		rb = memchr(s, ']', len);
		if (rb == NULL) {
			snprintf(why, whylen, "missing `]` after the IPv6 address");
			return -1;
		}
		h = s + 1;
		hlen = (size_t)(rb - h);
		if (!pp_ini_ip_literal(h, hlen, AF_INET6)) {
			snprintf(why, whylen, "%s is not an IPv6 address",
			    q(qb, sizeof(qb), h, hlen));
			return -1;
		}
		v6 = 1;
		if (rb + 1 < s + len) {
			if (rb[1] != ':') {
				snprintf(why, whylen, "expected `:PORT` after `]`");
				return -1;
			}
			colon = rb + 1;
		}
	} else {
		colon = memchr(s, ':', len);
		if (colon != NULL && memchr(colon + 1, ':',
		    len - (size_t)(colon + 1 - s)) != NULL) {
			snprintf(why, whylen, "IPv6 addresses need brackets, "
			    "like [2001:db8::1]:%s", need_port ? "5432" : "46466");
			return -1;
		}
		hlen = colon ? (size_t)(colon - s) : len;
		if (hlen == 0) {
			snprintf(why, whylen, "missing host before `:PORT`");
			return -1;
		}
		if (literal ? !pp_ini_ip_literal(h, hlen, AF_INET) :
		    !pp_ini_host_ok(h, hlen)) {
			snprintf(why, whylen, literal ?
			    "%s is not an IP address (a name is not allowed here)" :
			    "%s is not a host name or IP address",
			    q(qb, sizeof(qb), h, hlen));
			return -1;
		}
	}
	if (colon == NULL) {
		if (need_port) {
			snprintf(why, whylen, "missing `:PORT` after the %s",
			    v6 ? "address" : "host");
			return -1;
		}
	} else if (pp_ini_port("port", colon + 1,
	    len - (size_t)(colon + 1 - s), port, why, whylen) < 0) {
		return -1;
	}
	if (hlen >= hostsize) {
		snprintf(why, whylen, "host is %zu bytes long, at most %zu",
		    hlen, hostsize - 1);
		return -1;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	return 0;
}

/* --- setters: each checks one value completely before storing it ------- */

/* The shared setters (lib/base/ini_parse.h), on this parser's state. */
#define set_str(p, ...)		pp_ini_set_str(&(p)->ini, __VA_ARGS__)
#define set_bool(p, ...)	pp_ini_set_bool(&(p)->ini, __VA_ARGS__)
#define set_uint(p, ...)	pp_ini_set_uint(&(p)->ini, __VA_ARGS__)
#define set_port(p, ...)	pp_ini_set_port(&(p)->ini, __VA_ARGS__)

static void
set_name(struct parser *p, const char *key, char *dst, size_t size,
    const char *v, size_t len)
{
	char qb[QBUF];

	if (!pp_sig_name_valid(v, len)) {
		err(p, "%s%s %s is not a valid name: use " NAME_RULE, p->prefix,
		    key, q(qb, sizeof(qb), v, len));
		return;
	}
	set_str(p, key, dst, size, v, len);
}

static void
set_proto(struct parser *p, enum pp_tun_proto *dst, const char *v, size_t len)
{
	char qb[QBUF];

	if (pp_ini_word_eq(v, len, "tcp"))
		*dst = PP_TUN_TCP;
	else if (pp_ini_word_eq(v, len, "udp"))
		*dst = PP_TUN_UDP;
	else
		err(p, "%sproto %s unknown: use tcp or udp", p->prefix,
		    q(qb, sizeof(qb), v, len));
}

static void
agent_name(struct parser *p, const char *v, size_t len)
{
	set_name(p, "name", p->cfg->name, sizeof(p->cfg->name), v, len);
}

static void
agent_control(struct parser *p, const char *v, size_t len)
{
	set_str(p, "control", p->cfg->control, sizeof(p->cfg->control), v, len);
}

static void
agent_control_mode(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	/* Nothing wider: the socket hands out control of the tunnels. */
	if (pp_ini_word_eq(v, len, "0600") || pp_ini_word_eq(v, len, "600"))
		p->cfg->control_mode = 0600;
	else if (pp_ini_word_eq(v, len, "0660") ||
	    pp_ini_word_eq(v, len, "660"))
		p->cfg->control_mode = 0660;
	else
		err(p, "%scontrol_mode %s not allowed: use 0600 (owner only) "
		    "or 0660 (owner and group)", p->prefix,
		    q(qb, sizeof(qb), v, len));
}

static void
agent_state_dir(struct parser *p, const char *v, size_t len)
{
	set_str(p, "state_dir", p->cfg->state_dir, sizeof(p->cfg->state_dir),
	    v, len);
}

static void
agent_policy(struct parser *p, const char *v, size_t len)
{
	set_str(p, "policy", p->cfg->policy, sizeof(p->cfg->policy), v, len);
}

/* Lowercase copy for the pp_log parsers, which take exact words. */
static void
lower(char *dst, size_t size, const char *v, size_t len)
{
	size_t i;

	for (i = 0; i < len && i + 1 < size; i++)
		dst[i] = (v[i] >= 'A' && v[i] <= 'Z') ? (char)(v[i] - 'A' + 'a') : v[i];
	dst[i] = '\0';
}

static void
agent_log_level(struct parser *p, const char *v, size_t len)
{
	enum pp_log_level lv;
	char w[16], qb[QBUF];

	lower(w, sizeof(w), v, len);
	if (len >= sizeof(w) || pp_log_parse_level(w, &lv) < 0)
		err(p, "%slog_level %s unknown: use error, warn, info or debug",
		    p->prefix, q(qb, sizeof(qb), v, len));
	else
		p->cfg->log_level = (int)lv;
}

static void
agent_log_format(struct parser *p, const char *v, size_t len)
{
	enum pp_log_format f;
	char w[16], qb[QBUF];

	lower(w, sizeof(w), v, len);
	if (len >= sizeof(w) || pp_log_parse_format(w, &f) < 0)
		err(p, "%slog_format %s unknown: use text or json", p->prefix,
		    q(qb, sizeof(qb), v, len));
	else
		p->cfg->log_json = f == PP_LOG_JSON;
}

static void
signaling_url(struct parser *p, const char *v, size_t len)
{
	const char *a;
	size_t skip, alen;
	char host[256], why[160], qb[QBUF];
	uint16_t port;

	if (len >= 6 && strncmp(v, "wss://", 6) == 0)
		skip = 6;
	else if (len >= 5 && strncmp(v, "ws://", 5) == 0)
		skip = 5;
	else {
		err(p, "%surl %s must start with wss:// (or ws:// without TLS), "
		    "like wss://signal.example.com:46466/ws", p->prefix,
		    q(qb, sizeof(qb), v, len));
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (pp_ini_is_space(v[i])) {
			err(p, "%surl %s contains a space: write it as %%20",
			    p->prefix, q(qb, sizeof(qb), v, len));
			return;
		}
	}
	a = v + skip;
	alen = strcspn(a, "/?#");
	if (alen > len - skip)
		alen = len - skip;
	if (alen == 0) {
		err(p, "%surl %s has no host: like wss://signal.example.com:46466/ws",
		    p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	if (memchr(a, '@', alen) != NULL) {
		err(p, "%surl %s: user names in the url are not supported",
		    p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	if (parse_hostport(a, alen, 0, 0, host, sizeof(host), &port, why,
	    sizeof(why)) < 0) {
		err(p, "%surl %s: %s", p->prefix, q(qb, sizeof(qb), v, len), why);
		return;
	}
	set_str(p, "url", p->cfg->url, sizeof(p->cfg->url), v, len);
}

static void
signaling_ca(struct parser *p, const char *v, size_t len)
{
	set_str(p, "ca", p->cfg->ca, sizeof(p->cfg->ca), v, len);
}

static void
signaling_insecure(struct parser *p, const char *v, size_t len)
{
	set_bool(p, "insecure", &p->cfg->insecure, v, len);
}

static void
room_name(struct parser *p, const char *v, size_t len)
{
	set_name(p, "name", p->cfg->room_name, sizeof(p->cfg->room_name), v, len);
}

static void
room_uuid(struct parser *p, const char *v, size_t len)
{
	char low[PP_TUN_UUID_LEN + 1], qb[QBUF];

	if (pp_uuid4_valid(v, len)) {
		set_str(p, "uuid", p->cfg->room_uuid, sizeof(p->cfg->room_uuid),
		    v, len);
		return;
	}
	/* The server compares UUIDs as strings: say so rather than fold. */
	lower(low, sizeof(low), v, len);
	if (len == PP_TUN_UUID_LEN && pp_uuid4_valid(low, len))
		err(p, "%suuid %s must be lowercase: write %s", p->prefix,
		    q(qb, sizeof(qb), v, len), low);
	else
		err(p, "%suuid %s is not a canonical UUID version 4 "
		    "(like 123e4567-e89b-42d3-a456-426614174000): " UUID_HINT,
		    p->prefix, q(qb, sizeof(qb), v, len));
}

static void
ice_stun(struct parser *p, const char *v, size_t len)
{
	struct pp_cfg *c = p->cfg;
	char host[256], why[160], qb[QBUF];
	uint16_t port;

	/* The URI form others use; we store HOST:PORT. */
	if (len > 5 && strncmp(v, "stun:", 5) == 0)
		v += 5, len -= 5;
	if (parse_hostport(v, len, 1, 0, host, sizeof(host), &port, why,
	    sizeof(why)) < 0) {
		err(p, "%sstun %s: %s", p->prefix, q(qb, sizeof(qb), v, len), why);
		return;
	}
	if (c->nstun == PP_CFG_MAX_ICE) {
		err(p, "%sstun: at most %d servers: remove some", p->prefix,
		    PP_CFG_MAX_ICE);
		return;
	}
	if (set_str(p, "stun", c->stun[c->nstun], sizeof(c->stun[0]), v, len) == 0)
		c->nstun++;
}

/* turn:HOST:PORT[?transport=udp|tcp] or turns:HOST:PORT[?transport=tcp] */
static int
turn_url_ok(const char *u, size_t len, char *why, size_t whylen)
{
	const char *hp, *qm;
	size_t hlen;
	char host[256];
	uint16_t port;
	int tls;

	if (len > 6 && strncmp(u, "turns:", 6) == 0)
		tls = 1, hp = u + 6;
	else if (len > 5 && strncmp(u, "turn:", 5) == 0)
		tls = 0, hp = u + 5;
	else {
		snprintf(why, whylen, "must start with turn: or turns:");
		return -1;
	}
	hlen = len - (size_t)(hp - u);
	qm = memchr(hp, '?', hlen);
	if (qm != NULL) {
		size_t qlen = len - (size_t)(qm - u);

		hlen = (size_t)(qm - hp);
		if (!pp_ini_word_eq(qm, qlen, "?transport=tcp") &&
		    (tls || !pp_ini_word_eq(qm, qlen, "?transport=udp"))) {
			snprintf(why, whylen, tls ? "turns: takes no parameter "
			    "but ?transport=tcp" : "the only parameter is "
			    "?transport=udp or ?transport=tcp");
			return -1;
		}
	}
	return parse_hostport(hp, hlen, 1, 0, host, sizeof(host), &port, why,
	    whylen);
}

/*
 * turn = URL USER PASSWORD: the URL and the user name are the first two
 * words; the password is the rest of the value, so it may contain spaces.
 * Messages never echo the password.
 */
static void
ice_turn(struct parser *p, const char *v, size_t len)
{
	struct pp_cfg *c = p->cfg;
	struct pp_cfg_turn *t;
	const char *end = v + len, *u = v, *user, *pw;
	size_t ulen, userlen, pwlen;
	char why[160], qb[QBUF];

	ulen = strcspn(u, " \t");
	for (user = u + ulen; user < end && pp_ini_is_space(*user); user++)
		;
	userlen = strcspn(user, " \t");
	for (pw = user + userlen; pw < end && pp_ini_is_space(*pw); pw++)
		;
	pwlen = (size_t)(end - pw);
	if (turn_url_ok(u, ulen, why, sizeof(why)) < 0) {
		err(p, "%sturn %s: %s", p->prefix, q(qb, sizeof(qb), u, ulen), why);
		return;
	}
	if (userlen == 0 || pwlen == 0) {
		err(p, "%sturn %s: missing user name and password: write "
		    "`turn = URL USER PASSWORD`", p->prefix,
		    q(qb, sizeof(qb), u, ulen));
		return;
	}
	if (c->nturn == PP_CFG_MAX_ICE) {
		err(p, "%sturn: at most %d servers: remove some", p->prefix,
		    PP_CFG_MAX_ICE);
		return;
	}
	t = &c->turn[c->nturn];
	if (set_str(p, "turn url", t->url, sizeof(t->url), u, ulen) < 0 ||
	    set_str(p, "turn user name", t->username, sizeof(t->username),
	    user, userlen) < 0 ||
	    set_str(p, "turn password", t->password, sizeof(t->password),
	    pw, pwlen) < 0) {
		memset(t, 0, sizeof(*t));
		return;
	}
	c->nturn++;
}

/* address = IP: gather host candidates on this address only (repeatable). */
static void
ice_address(struct parser *p, const char *v, size_t len)
{
	struct pp_cfg *c = p->cfg;
	char qb[QBUF];

	if (!pp_ini_ip_literal(v, len, AF_INET) &&
	    !pp_ini_ip_literal(v, len, AF_INET6)) {
		err(p, "%saddress %s: use an IP address of this host, like "
		    "192.0.2.10", p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	if (c->naddrs == PP_CFG_MAX_ICE) {
		err(p, "%saddress: at most %d addresses: remove some", p->prefix,
		    PP_CFG_MAX_ICE);
		return;
	}
	if (set_str(p, "address", c->addrs[c->naddrs], sizeof(c->addrs[0]), v,
	    len) == 0)
		c->naddrs++;
}

static void
ice_turn_from_signaling(struct parser *p, const char *v, size_t len)
{
	set_bool(p, "turn_from_signaling", &p->cfg->turn_from_signaling, v, len);
}

static void
ice_port_min(struct parser *p, const char *v, size_t len)
{
	p->port_min_line = p->ini.line;
	set_port(p, "port_min", &p->cfg->port_min, v, len);
}

static void
ice_port_max(struct parser *p, const char *v, size_t len)
{
	p->port_max_line = p->ini.line;
	set_port(p, "port_max", &p->cfg->port_max, v, len);
}

static void
tunnel_compression(struct parser *p, const char *v, size_t len)
{
	static const struct {
		const char *name;
		enum pp_cfg_compression c;
	} names[] = {
		{ "none", PP_CFG_COMP_NONE },
		{ "lz4", PP_CFG_COMP_LZ4 },
		{ "zstd", PP_CFG_COMP_ZSTD },
		{ "zstd-hc", PP_CFG_COMP_ZSTD_HC },
		{ "adaptive", PP_CFG_COMP_ADAPTIVE },
	};
	char qb[QBUF];

	for (size_t i = 0; i < NELEM(names); i++) {
		if (pp_ini_word_eq(v, len, names[i].name)) {
			p->cfg->compression = names[i].c;
			return;
		}
	}
	err(p, "%scompression %s unknown: use none, lz4, zstd, zstd-hc or "
	    "adaptive", p->prefix, q(qb, sizeof(qb), v, len));
}

static void
tunnel_unreliable(struct parser *p, const char *v, size_t len)
{
	set_bool(p, "unreliable", &p->cfg->unreliable, v, len);
}

static void
tunnel_extended(struct parser *p, const char *v, size_t len)
{
	set_bool(p, "extended", &p->cfg->extended, v, len);
}

static void
service_target(struct parser *p, const char *v, size_t len)
{
	struct pp_cfg_service *s = p->svc;
	char why[160], qb[QBUF];

	if (parse_hostport(v, len, 1, 0, s->host, sizeof(s->host),
	    &s->target_port, why, sizeof(why)) < 0)
		err(p, "%starget %s: %s", p->prefix, q(qb, sizeof(qb), v, len),
		    why);
}

static void
service_proto(struct parser *p, const char *v, size_t len)
{
	set_proto(p, &p->svc->proto, v, len);
}

static void
service_port(struct parser *p, const char *v, size_t len)
{
	set_port(p, "port", &p->svc->port, v, len);
}

static void
consume_bind(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	if (pp_ini_word_eq(v, len, "auto")) {
		snprintf(p->cfg->bind, sizeof(p->cfg->bind), "auto");
		return;
	}
	/* An IPv6 address may come in brackets as elsewhere; store it bare. */
	if (len >= 2 && v[0] == '[' && v[len - 1] == ']' &&
	    pp_ini_ip_literal(v + 1, len - 2, AF_INET6))
		v++, len -= 2;
	if (!pp_ini_ip_literal(v, len, AF_INET) &&
	    !pp_ini_ip_literal(v, len, AF_INET6)) {
		err(p, "%sbind %s: use auto or an IP address like 127.0.0.1",
		    p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	set_str(p, "bind", p->cfg->bind, sizeof(p->cfg->bind), v, len);
}

/*
 * A list of user names (peers = NAME, NAME ...): names are trimmed, so a
 * name with a comma or with spaces at either end cannot be listed
 * (docs/config.md says so).
 */
static void
name_list(struct parser *p, const char *key, char (*names)[PP_TUN_NAME_MAX + 1],
    size_t *count, const char *v, size_t len)
{
	const char *s = v, *a;
	char qb[QBUF];
	size_t n, i;
	int full = 0;

	while (pp_ini_next_item(&s, v + len, &a, &n)) {
		if (n == 0) {
			err(p, "%s%s: empty name between commas: remove the "
			    "extra comma", p->prefix, key);
			continue;
		}
		if (!pp_sig_name_valid(a, n)) {
			err(p, "%s%s: %s is not a valid user name: use "
			    NAME_RULE, p->prefix, key, q(qb, sizeof(qb), a, n));
			continue;
		}
		for (i = 0; i < *count; i++)
			if (strlen(names[i]) == n && memcmp(names[i], a, n) == 0)
				break;
		if (i < *count) {
			err(p, "%s%s: %s is listed twice: remove one", p->prefix,
			    key, q(qb, sizeof(qb), a, n));
		} else if (*count == PP_CFG_MAX_PEERS) {
			if (!full)
				err(p, "%s%s: at most %d names", p->prefix, key,
				    PP_CFG_MAX_PEERS);
			full = 1;
		} else {
			memcpy(names[*count], a, n);
			names[(*count)++][n] = '\0';
		}
	}
}

static void
consume_peers(struct parser *p, const char *v, size_t len)
{
	name_list(p, "peers", p->cfg->peers, &p->cfg->npeers, v, len);
}

/* Version-1 peers (no identity) admitted by name without a policy. */
static void
agent_legacy_peers(struct parser *p, const char *v, size_t len)
{
	name_list(p, "legacy_peers", p->cfg->legacy_peers,
	    &p->cfg->nlegacy_peers, v, len);
}

static void
forward_peer(struct parser *p, const char *v, size_t len)
{
	set_name(p, "peer", p->fwd->peer, sizeof(p->fwd->peer), v, len);
}

static void
forward_port(struct parser *p, const char *v, size_t len)
{
	set_port(p, "port", &p->fwd->port, v, len);
}

static void
forward_proto(struct parser *p, const char *v, size_t len)
{
	set_proto(p, &p->fwd->proto, v, len);
}

static void
forward_listen(struct parser *p, const char *v, size_t len)
{
	struct pp_cfg_forward *f = p->fwd;
	char why[160], qb[QBUF];

	if (parse_hostport(v, len, 1, 1, f->listen_host, sizeof(f->listen_host),
	    &f->listen_port, why, sizeof(why)) < 0)
		err(p, "%slisten %s: %s", p->prefix, q(qb, sizeof(qb), v, len),
		    why);
}

/* --- the section tables -------------------------------------------------- */

static const struct key agent_keys[] = {
	{ "name", agent_name, 0 },
	{ "control", agent_control, 0 },
	{ "control_mode", agent_control_mode, 0 },
	{ "state_dir", agent_state_dir, 0 },
	{ "policy", agent_policy, 0 },
	{ "legacy_peers", agent_legacy_peers, 0 },
	{ "log_level", agent_log_level, 0 },
	{ "log_format", agent_log_format, 0 },
};
static const struct key signaling_keys[] = {
	{ "url", signaling_url, 0 },
	{ "ca", signaling_ca, 0 },
	{ "insecure", signaling_insecure, 0 },
};
static const struct key room_keys[] = {
	{ "name", room_name, 0 },
	{ "uuid", room_uuid, 0 },
};
static const struct key ice_keys[] = {
	{ "stun", ice_stun, 1 },
	{ "turn", ice_turn, 1 },
	{ "address", ice_address, 1 },
	{ "port_min", ice_port_min, 0 },
	{ "port_max", ice_port_max, 0 },
	{ "turn_from_signaling", ice_turn_from_signaling, 0 },
};
static const struct key tunnel_keys[] = {
	{ "compression", tunnel_compression, 0 },
	{ "unreliable", tunnel_unreliable, 0 },
	{ "extended", tunnel_extended, 0 },
};
static const struct key service_keys[] = {
	{ "target", service_target, 0 },
	{ "proto", service_proto, 0 },
	{ "port", service_port, 0 },
};
static const struct key consume_keys[] = {
	{ "bind", consume_bind, 0 },
	{ "peers", consume_peers, 0 },
};
static const struct key forward_keys[] = {
	{ "peer", forward_peer, 0 },
	{ "port", forward_port, 0 },
	{ "proto", forward_proto, 0 },
	{ "listen", forward_listen, 0 },
};

static void
ips_mode(struct parser *p, const char *v, size_t len)
{
	static const char *const names[] = { "off", "auto", "inline", "ids" };
	char qb[QBUF];

	for (size_t i = 0; i < NELEM(names); i++)
		if (pp_ini_word_eq(v, len, names[i])) {
			p->cfg->ips_mode = (enum pp_cfg_ips_mode)i;
			return;
		}
	err(p, "%smode %s unknown: use off, auto, inline or ids", p->prefix,
	    q(qb, sizeof(qb), v, len));
}

static void
ips_rules(struct parser *p, const char *v, size_t len)
{
	set_str(p, "rules", p->cfg->ips_rules, sizeof(p->cfg->ips_rules), v, len);
}

static void
ips_et_open(struct parser *p, const char *v, size_t len)
{
	set_str(p, "et_open", p->cfg->ips_et_open, sizeof(p->cfg->ips_et_open),
	    v, len);
}

static void
ips_et_drop_priority(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "et_drop_priority", &p->cfg->ips_et_drop_priority, 0, 4, v, len);
}

static void
ips_queue(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "queue", &p->cfg->ips_queue, 0, 65535, v, len);
}

static void
ips_fail_open(struct parser *p, const char *v, size_t len)
{
	set_bool(p, "fail_open", &p->cfg->ips_fail_open, v, len);
}

static void
ips_ban_seconds(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "ban_seconds", &p->cfg->ban_seconds, 1, 365u * 86400, v, len);
}

static void
ips_scan_ports(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "scan_ports", &p->cfg->scan_ports, 2, 1000, v, len);
}

static void
ips_scan_window(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "scan_window", &p->cfg->scan_window, 1, 86400, v, len);
}

static void
ips_react(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	if (pp_ini_word_eq(v, len, "alerts"))
		p->cfg->ips_react_blocked_only = 0;
	else if (pp_ini_word_eq(v, len, "blocked"))
		p->cfg->ips_react_blocked_only = 1;
	else
		err(p, "%sreact %s unknown: use alerts (cut on every alert) or "
		    "blocked (only when Suricata dropped the packet)", p->prefix,
		    q(qb, sizeof(qb), v, len));
}

static void
ips_react_severity(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "react_severity", &p->cfg->ips_react_severity, 1, 4, v, len);
}

static void
ips_interface(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	/* IFNAMSIZ: 15 characters, no '/', no whitespace */
	for (size_t i = 0; i < len; i++)
		if (v[i] == '/' || v[i] == ' ' || v[i] == '\t' || len > 15) {
			err(p, "%sinterface %s is not a network interface name "
			    "(like eth0)", p->prefix, q(qb, sizeof(qb), v, len));
			return;
		}
	set_str(p, "interface", p->cfg->ips_interface,
	    sizeof(p->cfg->ips_interface), v, len);
}

static void
ips_evidence_bytes(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "evidence_bytes", &p->cfg->ips_evidence_bytes, 0,
	    PP_TAP_MAX_CAP, v, len);
	if (p->cfg->ips_evidence_bytes > 0 &&
	    p->cfg->ips_evidence_bytes < PP_TAP_MIN_CAP)
		err(p, "%sevidence_bytes %u: use 0 (no pcap evidence) or at "
		    "least %u", p->prefix, p->cfg->ips_evidence_bytes,
		    PP_TAP_MIN_CAP);
}

static void
ips_evidence_total_bytes(struct parser *p, const char *v, size_t len)
{
	set_uint(p, "evidence_total_bytes", &p->cfg->ips_evidence_total_bytes,
	    PP_TAP_MIN_CAP, PP_TAP_BUDGET_MAX, v, len);
}

static void
ips_suricata(struct parser *p, const char *v, size_t len)
{
	char qb[QBUF];

	if (len == 0 || v[0] != '/') {
		err(p, "%ssuricata %s: give the absolute path of the suricata "
		    "program", p->prefix, q(qb, sizeof(qb), v, len));
		return;
	}
	set_str(p, "suricata", p->cfg->ips_suricata,
	    sizeof(p->cfg->ips_suricata), v, len);
}

static const struct key ips_keys[] = {
	{ "evidence_bytes", ips_evidence_bytes, 0 },
	{ "evidence_total_bytes", ips_evidence_total_bytes, 0 },
	{ "suricata", ips_suricata, 0 },
	{ "interface", ips_interface, 0 },
	{ "react", ips_react, 0 },
	{ "react_severity", ips_react_severity, 0 },
	{ "mode", ips_mode, 0 },
	{ "rules", ips_rules, 0 },
	{ "et_open", ips_et_open, 0 },
	{ "et_drop_priority", ips_et_drop_priority, 0 },
	{ "queue", ips_queue, 0 },
	{ "fail_open", ips_fail_open, 0 },
	{ "ban_seconds", ips_ban_seconds, 0 },
	{ "scan_ports", ips_scan_ports, 0 },
	{ "scan_window", ips_scan_window, 0 },
};

static const struct pp_ini_section sections[] = {
	PP_INI_SECTION(S_AGENT, "agent", 0, agent_keys),
	PP_INI_SECTION(S_SIGNALING, "signaling", 0, signaling_keys),
	PP_INI_SECTION(S_ROOM, "room", 0, room_keys),
	PP_INI_SECTION(S_ICE, "ice", 0, ice_keys),
	PP_INI_SECTION(S_TUNNEL, "tunnel", 0, tunnel_keys),
	PP_INI_SECTION(S_SERVICE, "service", 1, service_keys),
	PP_INI_SECTION(S_CONSUME, "consume", 0, consume_keys),
	PP_INI_SECTION(S_FORWARD, "forward", 1, forward_keys),
	PP_INI_SECTION(S_IPS, "ips", 0, ips_keys),
};

#define seen(p, key)	pp_ini_seen(&(p)->ini, (key))

/* --- sections ------------------------------------------------------------ */

static void
close_service(struct parser *p)
{
	struct pp_cfg *c = p->cfg;
	struct pp_cfg_service *s = p->svc;
	int at = seen(p, "port") ? seen(p, "port") : seen(p, "target");

	if (!seen(p, "target")) {
		err_at(p, p->ini.sect_line, "%starget missing: add `target = "
		    "HOST:PORT`, the address the service listens on", p->prefix);
		return;
	}
	if (s->target_port == 0 || (seen(p, "port") && s->port == 0))
		return;	/* already reported */
	if (!seen(p, "port"))
		s->port = s->target_port;
	if (s == &p->spare_svc)
		return;
	for (size_t i = 0; c->services + i < s; i++) {
		const struct pp_cfg_service *o = &c->services[i];

		if (o->port == s->port && o->proto == s->proto) {
			err_at(p, at, "%sport %u/%s already offered by service "
			    "\"%s\" (line %d): give one of them another `port =`",
			    p->prefix, s->port, s->proto == PP_TUN_UDP ?
			    "udp" : "tcp", o->name, o->line);
			return;
		}
	}
}

static void
close_forward(struct parser *p)
{
	struct pp_cfg *c = p->cfg;
	struct pp_cfg_forward *f = p->fwd;
	static const struct {
		const char *key, *hint;
	} req[] = {
		{ "peer", "`peer = NAME`, the user name of the peer to reach" },
		{ "port", "`port = N`, the port that peer offers" },
		{ "listen", "`listen = ADDRESS:PORT`, where to accept connections" },
	};
	int missing = 0;

	for (size_t i = 0; i < NELEM(req); i++) {
		if (!seen(p, req[i].key)) {
			err_at(p, p->ini.sect_line, "%s%s missing: add %s",
			    p->prefix, req[i].key, req[i].hint);
			missing = 1;
		}
	}
	if (missing || f == &p->spare_fwd || f->listen_port == 0)
		return;
	for (size_t i = 0; c->forwards + i < f; i++) {
		const struct pp_cfg_forward *o = &c->forwards[i];

		if (o->listen_port == f->listen_port && o->proto == f->proto &&
		    strcmp(o->listen_host, f->listen_host) == 0) {
			err_at(p, seen(p, "listen"), "%slisten address already "
			    "used by forward \"%s\" (line %d): choose another "
			    "port", p->prefix, o->name, o->line);
			return;
		}
	}
}

/* pp_ini's close callback. */
static void
close_section(struct pp_ini *ini)
{
	struct parser *p = (struct parser *)ini;

	if (p->ini.sect == S_SERVICE)
		close_service(p);
	else if (p->ini.sect == S_FORWARD)
		close_forward(p);
}

/* [service NAME] and [forward NAME]: pp_ini's open callback. */
static int
open_named(struct pp_ini *ini, const char *name, size_t nlen)
{
	struct parser *p = (struct parser *)ini;
	struct pp_cfg *c = p->cfg;
	char *dst, qb[QBUF];
	int *line;

	if (!pp_ini_item_name_ok(name, nlen)) {
		err(p, "%s name %s invalid: use " PP_INI_ITEM_RULE,
		    ini->sd->name, q(qb, sizeof(qb), name, nlen));
		return -1;
	}
	if (p->ini.sect == S_SERVICE) {
		for (size_t i = 0; i < c->nservices; i++) {
			if (strlen(c->services[i].name) == nlen &&
			    memcmp(c->services[i].name, name, nlen) == 0) {
				err(p, "service \"%s\" already defined at line %d: "
				    "give each service its own name",
				    c->services[i].name, c->services[i].line);
				p->svc = &p->spare_svc;
				goto fill;
			}
		}
		if (++p->nsvc_seen > PP_CFG_MAX_SERVICES) {
			if (p->nsvc_seen == PP_CFG_MAX_SERVICES + 1)
				err(p, "too many services: at most %d per agent",
				    PP_CFG_MAX_SERVICES);
			p->svc = &p->spare_svc;
		} else {
			p->svc = &c->services[c->nservices++];
		}
	} else {
		for (size_t i = 0; i < c->nforwards; i++) {
			if (strlen(c->forwards[i].name) == nlen &&
			    memcmp(c->forwards[i].name, name, nlen) == 0) {
				err(p, "forward \"%s\" already defined at line %d: "
				    "give each forward its own name",
				    c->forwards[i].name, c->forwards[i].line);
				p->fwd = &p->spare_fwd;
				goto fill;
			}
		}
		if (++p->nfwd_seen > PP_CFG_MAX_FORWARDS) {
			if (p->nfwd_seen == PP_CFG_MAX_FORWARDS + 1)
				err(p, "too many forwards: at most %d per agent",
				    PP_CFG_MAX_FORWARDS);
			p->fwd = &p->spare_fwd;
		} else {
			p->fwd = &c->forwards[c->nforwards++];
		}
	}
fill:
	if (p->ini.sect == S_SERVICE) {
		memset(p->svc, 0, sizeof(*p->svc));
		p->svc->proto = PP_TUN_TCP;
		dst = p->svc->name, line = &p->svc->line;
	} else {
		memset(p->fwd, 0, sizeof(*p->fwd));
		p->fwd->proto = PP_TUN_TCP;
		dst = p->fwd->name, line = &p->fwd->line;
	}
	memcpy(dst, name, nlen);	/* pp_ini_item_name_ok() bounded it */
	dst[nlen] = '\0';
	*line = p->ini.line;
	snprintf(p->prefix, sizeof(p->prefix), "%s \"%s\": ", p->ini.sd->name,
	    dst);
	return 0;
}

/* Key i of the open section (pp_ini's set callback). */
static void
set_key(struct pp_ini *ini, size_t i, const char *v, size_t len)
{
	((const struct key *)ini->sd->keys)[i].set((struct parser *)ini, v, len);
}

static const struct pp_ini_syntax syntax = {
	sections, NELEM(sections), " for the default",
	open_named, set_key, close_section,
};

static void
check_required(struct parser *p)
{
	struct pp_cfg *c = p->cfg;
	int agent = pp_ini_opened(&p->ini, S_AGENT);
	int signaling = pp_ini_opened(&p->ini, S_SIGNALING);
	int room = pp_ini_opened(&p->ini, S_ROOM);

	if (!pp_ini_ever(&p->ini, S_AGENT, "name"))
		err_at(p, agent, "[agent] name missing: add `name = ...`%s, this "
		    "peer's user name in the room (" NAME_RULE ")",
		    agent ? "" : " under [agent]");
	if (!pp_ini_ever(&p->ini, S_SIGNALING, "url"))
		err_at(p, signaling, "[signaling] url missing: add "
		    "`url = wss://HOST:46466/ws`%s",
		    signaling ? "" : " under [signaling]");
	if (!pp_ini_ever(&p->ini, S_ROOM, "name"))
		err_at(p, room, "[room] name missing: add `name = ...`%s, the "
		    "room's name (" NAME_RULE ")", room ? "" : " under [room]");
	if (!pp_ini_ever(&p->ini, S_ROOM, "uuid"))
		err_at(p, room, "[room] uuid missing: add `uuid = ...`%s ("
		    UUID_HINT ")", room ? "" : " under [room]");
	if (p->port_min_line && !p->port_max_line)
		err_at(p, p->port_min_line, "[ice] port_min without port_max: "
		    "add `port_max = ...` too");
	else if (p->port_max_line && !p->port_min_line)
		err_at(p, p->port_max_line, "[ice] port_max without port_min: "
		    "add `port_min = ...` too");
	else if (c->port_min && c->port_max && c->port_min > c->port_max)
		err_at(p, p->port_max_line, "[ice] port_max %u is below "
		    "port_min %u: swap them", c->port_max, c->port_min);
}

/* --- API ----------------------------------------------------------------- */

void
pp_cfg_defaults(struct pp_cfg *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->control_mode = 0600;
	cfg->log_level = PP_LOG_INFO;
	cfg->log_json = 0;
	cfg->compression = PP_CFG_COMP_NONE;
	cfg->ips_et_drop_priority = 2;	/* = react_severity: what cuts, drops */
	cfg->ban_seconds = 3600;
	cfg->ips_react_severity = 2;	/* priority 3 (ET INFO ...): recorded only */
	cfg->ips_mode = PP_CFG_IPS_AUTO;
	cfg->ips_evidence_bytes = 65536;
	cfg->ips_evidence_total_bytes = 64u * 1024u * 1024u;
	cfg->scan_ports = 5;
	cfg->scan_window = 60;
}

int
pp_cfg_parse(const char *path, const char *text, size_t len,
    struct pp_cfg *cfg, struct pp_cfg_errors *errs)
{
	struct parser p;

	memset(&p, 0, sizeof(p));
	memset(errs, 0, sizeof(*errs));
	pp_cfg_defaults(cfg);
	pp_ini_init(&p.ini, &syntax, path != NULL ? path : "(config)",
	    errs->msg, PP_CFG_MAX_ERRORS, &errs->n, p.prefix,
	    sizeof(p.prefix));
	p.cfg = cfg;
	snprintf(cfg->path, sizeof(cfg->path), "%s", p.ini.path);
	if (pp_ini_parse(&p.ini, text, len, PP_CFG_FILE_MAX,
	    PP_CFG_LINE_MAX) < 0)
		return PP_ECONFIG;
	check_required(&p);
	return errs->n ? PP_ECONFIG : 0;
}

int
pp_cfg_load(const char *path, struct pp_cfg *cfg, struct pp_cfg_errors *errs)
{
	char *buf;
	size_t len;
	int rc;

	if ((rc = pp_read_file(path, PP_CFG_FILE_MAX, &buf, &len)) < 0) {
		pp_cfg_defaults(cfg);
		snprintf(cfg->path, sizeof(cfg->path), "%s", path);
		memset(errs, 0, sizeof(*errs));
		snprintf(errs->msg[0], sizeof(errs->msg[0]), "%s: cannot read: %s",
		    path, strerror(-rc));
		errs->n = 1;
		return PP_ECONFIG;
	}
	rc = pp_cfg_parse(path, buf, len, cfg, errs);
	free(buf);
	return rc;
}
