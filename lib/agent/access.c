/*
 * Admission and authorization for the agent: the policy when there is one,
 * pinned identity keys when there is not.  See access.h.
 */
#include "agent/access.h"

#include "base/error.h"
#include "base/log.h"
#include "identity/identity.h"
#include "policy/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SUB "access"
#define MAX_PINS 4096

struct pin {
	char name[PP_TUN_NAME_MAX + 1];
	uint8_t key[PP_ID_PUB_LEN];
};

struct pp_access {
	char gateway[PP_TUN_NAME_MAX + 1];	/* our own name, for gateway = */
	char policy_path[1024];
	struct pp_policy *policy;
	struct pp_policy_service svcs[PP_CFG_MAX_SERVICES];
	char svc_names[PP_CFG_MAX_SERVICES][64];
	size_t nsvcs;
	uint8_t hash[PP_POLICY_HASH_LEN];
	char pin_path[1200];
	struct pin *pins;
	size_t npins;
	/* [agent] legacy_peers: v1 peers admitted by name without a policy */
	char (*legacy)[PP_TUN_NAME_MAX + 1];
	size_t nlegacy;
};

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

static int
load_policy(struct pp_access *acc, struct pp_policy **out)
{
	struct pp_policy_errors *errs = calloc(1, sizeof(*errs));
	int rc;

	if (errs == NULL)
		return -ENOMEM;
	rc = pp_policy_load(acc->policy_path, acc->svcs, acc->nsvcs, now_s(), out,
	    errs);
	if (rc < 0) {
		size_t shown = errs->n < PP_POLICY_MAX_ERRORS ? errs->n :
		    PP_POLICY_MAX_ERRORS;

		for (size_t i = 0; i < shown; i++)
			pp_err(SUB, "%s", errs->msg[i]);
		if (errs->n > shown)
			pp_err(SUB, "%s: ... and %zu more", acc->policy_path,
			    errs->n - shown);
	}
	free(errs);
	return rc;
}

/* known-peers: "NAME ed25519:KEY" lines; others are skipped. */
static void
load_pins(struct pp_access *acc)
{
	char line[256];
	FILE *f = fopen(acc->pin_path, "re");

	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) && acc->npins < MAX_PINS) {
		char *sp = strrchr(line, ' '), *nl;
		struct pin *p = &acc->pins[acc->npins];

		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if (sp == NULL || (size_t)(sp - line) > PP_TUN_NAME_MAX ||
		    pp_id_pub_parse(sp + 1, strlen(sp + 1), p->key) < 0)
			continue;
		snprintf(p->name, sizeof(p->name), "%.*s", (int)(sp - line), line);
		acc->npins++;
	}
	fclose(f);
}

static int
legacy_listed(const struct pp_access *acc, const char *name)
{
	for (size_t i = 0; i < acc->nlegacy; i++)
		if (strcmp(acc->legacy[i], name) == 0)
			return 1;
	return 0;
}

static const struct pin *
pin_find(const struct pp_access *acc, const char *name)
{
	for (size_t i = 0; i < acc->npins; i++)
		if (strcmp(acc->pins[i].name, name) == 0)
			return &acc->pins[i];
	return NULL;
}

static void
pin_add(struct pp_access *acc, const char *name, const uint8_t *key)
{
	char text[PP_ID_PUB_STRLEN + 1];
	struct pin *p;
	FILE *f;
	int fd;

	if (acc->npins == MAX_PINS)
		return;
	p = &acc->pins[acc->npins++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	memcpy(p->key, key, PP_ID_PUB_LEN);
	pp_id_pub_format(key, text, sizeof(text));
	fd = open(acc->pin_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "a")) == NULL) {
		pp_warn(SUB, "%s: cannot record %s's key: %s", acc->pin_path, name,
		    strerror(errno));
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(f, "%s %s\n", name, text);
	fclose(f);
}

int
pp_access_new(const struct pp_cfg *cfg, const char *state_dir,
    struct pp_access **out)
{
	struct pp_access *acc = calloc(1, sizeof(*acc));
	int rc;

	if (acc == NULL || (acc->pins = calloc(MAX_PINS, sizeof(*acc->pins))) == NULL) {
		free(acc);
		return -ENOMEM;
	}
	snprintf(acc->gateway, sizeof(acc->gateway), "%s", cfg->name);
	for (size_t i = 0; i < cfg->nservices; i++) {
		snprintf(acc->svc_names[i], sizeof(acc->svc_names[i]), "%s",
		    cfg->services[i].name);
		acc->svcs[i].name = acc->svc_names[i];
		acc->svcs[i].port = cfg->services[i].port;
		acc->svcs[i].proto = cfg->services[i].proto;
	}
	acc->nsvcs = cfg->nservices;
	if (cfg->nlegacy_peers > 0) {
		if ((acc->legacy = calloc(cfg->nlegacy_peers,
		    sizeof(*acc->legacy))) == NULL) {
			pp_access_free(acc);
			return -ENOMEM;
		}
		memcpy(acc->legacy, cfg->legacy_peers,
		    cfg->nlegacy_peers * sizeof(*acc->legacy));
		acc->nlegacy = cfg->nlegacy_peers;
	}
	snprintf(acc->pin_path, sizeof(acc->pin_path), "%s/known-peers", state_dir);
	load_pins(acc);
	if (cfg->policy[0]) {
		snprintf(acc->policy_path, sizeof(acc->policy_path), "%s", cfg->policy);
		if ((rc = load_policy(acc, &acc->policy)) < 0) {
			pp_access_free(acc);
			return rc;
		}
		pp_policy_hash(acc->policy, acc->hash);
		pp_info(SUB, "policy %s loaded: default deny", acc->policy_path);
		if (acc->nlegacy > 0)
			pp_warn(SUB, "[agent] legacy_peers is ignored: the policy "
			    "%s decides (admit a v1 peer with [legacy NAME] there)",
			    acc->policy_path);
	} else if (cfg->nservices > 0) {
		pp_warn(SUB, "no [agent] policy: every peer in the room may reach "
		    "every service shared here; identity keys are pinned on first "
		    "contact in %s", acc->pin_path);
	}
	*out = acc;
	return 0;
}

void
pp_access_free(struct pp_access *acc)
{
	if (acc == NULL)
		return;
	pp_policy_free(acc->policy);
	free(acc->pins);
	free(acc->legacy);
	free(acc);
}

int
pp_access_has_policy(const struct pp_access *acc)
{
	return acc->policy != NULL;
}

const char *
pp_access_policy_path(const struct pp_access *acc)
{
	return acc->policy_path;
}

/* The whole policy file into a new buffer (NUL-terminated, room for
 * extra more bytes), its status in st.  0 or -errno. */
static int
read_policy(const char *path, size_t extra, char **out, size_t *outlen,
    struct stat *st)
{
	size_t len = 0;
	ssize_t n = 0;
	char *buf;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0)
		return -errno;
	if (fstat(fd, st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (!S_ISREG(st->st_mode)) {
		close(fd);
		return -EINVAL;	/* not a regular file: nothing to replace */
	}
	if ((buf = malloc(PP_POLICY_FILE_MAX + extra + 1)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (len < PP_POLICY_FILE_MAX + 1) {
		n = read(fd, buf + len, PP_POLICY_FILE_MAX + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	rc = n < 0 ? -errno : len > PP_POLICY_FILE_MAX ? -EFBIG : 0;
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return 0;
}

/*
 * Replaces path by text: a temporary file beside it with the same mode and
 * owner, synced, renamed over it, the directory synced.  A crash leaves
 * the old file or the new one, never half of either.  0 or -errno.
 */
static int
replace_file(const char *path, const char *text, size_t len,
    const struct stat *st)
{
	char tmp[PATH_MAX + 16], dir[PATH_MAX], *slash;
	struct stat ts;
	size_t off = 0;
	int fd, dfd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -errno;
	/* Owner and mode before the content: never readable by more than
	 * the policy was.  (A set-group-id directory may have given the
	 * temporary file another group than ours.) */
	if (fstat(fd, &ts) < 0 ||
	    ((ts.st_uid != st->st_uid || ts.st_gid != st->st_gid) &&
	    fchown(fd, st->st_uid, st->st_gid) < 0) ||
	    fchmod(fd, st->st_mode & 07777) < 0)
		rc = -errno;
	while (rc == 0 && off < len) {
		ssize_t n = write(fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else
			off += (size_t)n;
	}
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) != NULL) {
		*slash = '\0';
		if ((dfd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY |
		    O_CLOEXEC)) >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return 0;
}

int
pp_access_add_peer(struct pp_access *acc, const char *name, const uint8_t *pub,
    const char *group, const char *comment, int *changed, char *why,
    size_t whylen)
{
	char text[PP_ID_PUB_STRLEN + 1], date[32], owner[PP_TUN_NAME_MAX + 1],
	    real[PATH_MAX], block[512];
	struct pp_policy_errors *errs = NULL;
	struct pp_policy *pol = NULL;
	uint8_t key[PP_ID_PUB_LEN], hash[PP_POLICY_HASH_LEN];
	time_t now = time(NULL);
	size_t len, blen;
	struct stat st;
	struct tm tm;
	char *buf = NULL;
	int rc;

	*changed = 0;
	if (acc->policy == NULL) {
		snprintf(why, whylen, "there is no [agent] policy to add %s to",
		    name);
		return PP_ECONFIG;
	}
	rc = pp_policy_peer_key(acc->policy, name, key);
	if (rc == 0 || rc == PP_EINVAL) {
		snprintf(why, whylen, "the policy %s already has [%s %s]: an "
		    "invite never replaces an entry; give the new device another "
		    "[agent] name", acc->policy_path, rc == 0 ? "peer" : "legacy",
		    name);
		return PP_ECONFLICT;
	}
	pp_id_pub_format(pub, text, sizeof(text));
	/* The parser would refuse it too, but only as a line of the file. */
	if (pp_policy_key_owner(acc->policy, pub, owner, sizeof(owner)) == 0) {
		snprintf(why, whylen, "the key %s already belongs to [peer %s] in "
		    "the policy %s: an invite never gives a key a second name; "
		    "if this device is %s, give it that [agent] name", text,
		    owner, acc->policy_path, owner);
		return PP_ECONFLICT;
	}
	if (strpbrk(name, "],") != NULL || name[0] == ' ' ||
	    name[strlen(name) - 1] == ' ') {
		snprintf(why, whylen, "the name \"%s\" cannot be written as a "
		    "[peer] header (no ']', ',', or spaces at either end): give "
		    "the new device another [agent] name", name);
		return PP_EINVAL;
	}
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm);
	blen = (size_t)snprintf(block, sizeof(block), "\n# added by %s at %s\n"
	    "[peer %s]\nkey = %s\n%s%s%s", comment, date, name, text,
	    group[0] ? "groups = " : "", group, group[0] ? "\n" : "");
	if (blen >= sizeof(block))
		return PP_EINVAL;
	/* A symbolic link stays one: its target is what gets replaced. */
	if (realpath(acc->policy_path, real) == NULL ||
	    (rc = read_policy(real, blen + 1, &buf, &len, &st)) < 0) {
		rc = rc < 0 ? rc : -errno;
		snprintf(why, whylen, "cannot add [peer %s] to the policy %s: "
		    "cannot read it: %s", name, acc->policy_path, strerror(-rc));
		return rc;
	}
	if (len > 0 && buf[len - 1] != '\n')
		buf[len++] = '\n';
	memcpy(buf + len, block, blen);
	len += blen;

	/* The new file must load as it is, [tests] and limits included,
	 * before a byte of the old one changes. */
	if ((errs = calloc(1, sizeof(*errs))) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = pp_policy_parse(acc->policy_path, buf, len, acc->svcs,
	    acc->nsvcs, now_s(), &pol, errs)) < 0) {
		snprintf(why, whylen, "adding [peer %s] would break the policy "
		    "(%s%s): refused, the file is unchanged", name,
		    errs->n ? errs->msg[0] : "?", errs->n > 1 ? ", ..." : "");
		for (size_t i = 0; i < errs->n && i < PP_POLICY_MAX_ERRORS; i++)
			pp_err(SUB, "with [peer %s] added: %s", name,
			    errs->msg[i]);
		goto out;
	}
	if ((rc = replace_file(real, buf, len, &st)) < 0) {
		snprintf(why, whylen, "cannot add [peer %s] to the policy %s: %s "
		    "(the agent writes a temporary file beside it and renames "
		    "it over the policy: it needs write access to the directory "
		    "and, unless it runs as root, to own the file)", name,
		    acc->policy_path, strerror(-rc));
		goto out;
	}
	pp_policy_hash(pol, hash);
	*changed = memcmp(hash, acc->hash, sizeof(hash)) != 0;
	memcpy(acc->hash, hash, sizeof(hash));
	pp_policy_free(acc->policy);
	acc->policy = pol;
	pol = NULL;
	pp_info(SUB, "policy %s: [peer %s] added and in force", acc->policy_path,
	    name);
out:
	pp_policy_free(pol);
	free(errs);
	free(buf);
	return rc;
}

int
pp_access_invite_entry(const struct pp_access *acc, const char *comment,
    const char *name, const uint8_t *pub)
{
	char needle[128], *buf = NULL;
	uint8_t key[PP_ID_PUB_LEN];
	struct stat st;
	size_t len;
	int found;

	if (acc->policy == NULL ||
	    pp_policy_peer_key(acc->policy, name, key) != 0 ||
	    CRYPTO_memcmp(key, pub, PP_ID_PUB_LEN) != 0)
		return 0;
	if (read_policy(acc->policy_path, 0, &buf, &len, &st) < 0)
		return 0;
	snprintf(needle, sizeof(needle), "# added by %s at ", comment);
	found = strstr(buf, needle) != NULL;
	free(buf);
	return found;
}

int
pp_access_pin(struct pp_access *acc, const char *name, const uint8_t *pub,
    char *why, size_t whylen)
{
	const struct pin *pin = pin_find(acc, name);
	char have[PP_ID_PUB_STRLEN + 1], want[PP_ID_PUB_STRLEN + 1];

	if (pin && CRYPTO_memcmp(pin->key, pub, PP_ID_PUB_LEN) == 0)
		return 0;
	pp_id_pub_format(pub, want, sizeof(want));
	if (pin) {
		pp_id_pub_format(pin->key, have, sizeof(have));
		snprintf(why, whylen, "%s is pinned to %s in %s, the invite says "
		    "%s: refused (an invite from someone else, or an old pin: "
		    "delete its line if the gateway really changed its key)",
		    name, have, acc->pin_path, want);
		return PP_ECONFLICT;
	}
	pin_add(acc, name, pub);
	pp_info(SUB, "peer %s: identity %s pinned from the invite", name, want);
	return 0;
}

int
pp_access_reload(struct pp_access *acc, int *changed)
{
	struct pp_policy *pol;
	uint8_t hash[PP_POLICY_HASH_LEN];
	int rc;

	*changed = 0;
	/* known-peers may have been edited (a pin deleted on purpose) */
	acc->npins = 0;
	load_pins(acc);
	if (acc->policy_path[0] == '\0')
		return 0;
	if ((rc = load_policy(acc, &pol)) < 0) {
		pp_err(SUB, "policy %s not reloaded: the previous one stays in force",
		    acc->policy_path);
		return rc;
	}
	pp_policy_hash(pol, hash);
	*changed = memcmp(hash, acc->hash, sizeof(hash)) != 0;
	memcpy(acc->hash, hash, sizeof(hash));
	pp_policy_free(acc->policy);
	acc->policy = pol;
	pp_info(SUB, "policy %s reloaded%s", acc->policy_path,
	    *changed ? "" : " (no change in meaning)");
	return 0;
}

int64_t
pp_access_next_expiry(const struct pp_access *acc, int64_t now)
{
	return acc->policy ? pp_policy_next_expiry(acc->policy, now) : 0;
}

int
pp_access_admit(struct pp_access *acc, const char *name, const uint8_t *pub,
    char *why, size_t whylen)
{
	char have[PP_ID_PUB_STRLEN + 1], want[PP_ID_PUB_STRLEN + 1];
	uint8_t key[PP_ID_PUB_LEN];
	const struct pin *pin;
	int rc;

	if (pub)
		pp_id_pub_format(pub, have, sizeof(have));
	if (acc->policy) {
		rc = pp_policy_peer_key(acc->policy, name, key);
		if (pub && rc == 0 && CRYPTO_memcmp(key, pub, PP_ID_PUB_LEN) == 0)
			return 0;
		if (pub == NULL && rc == PP_EINVAL) {
			pp_warn(SUB, "peer %s: admitted WITHOUT identity as [legacy %s] "
			    "of the policy (a v1 peer)", name, name);
			return 0;
		}
		/* No entry of that name, but a rule names the key itself. */
		if (pub && rc == PP_ENOTFOUND &&
		    pp_policy_names_key(acc->policy, acc->gateway, pub,
		    now_s())) {
			pp_info(SUB, "peer %s: admitted as key:%s, which rules of "
			    "the policy name (no [peer %s] entry)", name, have, name);
			return 0;
		}
		if (rc == 0) {
			pp_id_pub_format(key, want, sizeof(want));
			snprintf(why, whylen, "peer %s presents %s but the policy "
			    "knows it as %s: refused (another device using its "
			    "name, or a man in the middle)", name,
			    pub ? have : "no identity", want);
		} else if (pub) {
			snprintf(why, whylen, "peer %s (%s) is not in the policy %s: "
			    "refused; to admit it add [peer %s] with key = %s",
			    name, have, acc->policy_path, name, have);
		} else {
			snprintf(why, whylen, "peer %s has no verified identity (a v1 "
			    "peer, or one stripped by a man in the middle) and the "
			    "policy %s has no [legacy %s]: refused", name,
			    acc->policy_path, name);
		}
		return PP_EDENIED;
	}
	pin = pin_find(acc, name);
	if (pin && pub && CRYPTO_memcmp(pin->key, pub, PP_ID_PUB_LEN) == 0)
		return 0;
	if (pin) {
		pp_id_pub_format(pin->key, want, sizeof(want));
		snprintf(why, whylen, "peer %s was pinned to %s and now presents %s: "
		    "refused (a man in the middle, or a new device; if the peer "
		    "really changed its key, delete its line from %s)", name, want,
		    pub ? have : "no identity", acc->pin_path);
		return PP_EDENIED;
	}
	if (pub) {
		pin_add(acc, name, pub);
		pp_info(SUB, "peer %s: identity %s pinned on first contact", name,
		    have);
		return 0;
	}
	/*
	 * No identity: a v1 peer, or a v2 peer whose INIT a man in the middle
	 * stripped.  The two look the same, so only a name the operator
	 * listed comes in.
	 */
	if (legacy_listed(acc, name)) {
		pp_warn(SUB, "peer %s: admitted WITHOUT identity as listed in "
		    "[agent] legacy_peers (a v1 peer)", name);
		return 0;
	}
	snprintf(why, whylen, "peer %s has no verified identity (a v1 peer, or "
	    "one stripped by a man in the middle): refused; to admit a v1 peer "
	    "by name, add it to [agent] legacy_peers", name);
	return PP_EDENIED;
}

int
pp_access_allow(const struct pp_access *acc, const char *name,
    const uint8_t *pub, uint16_t port, enum pp_tun_proto proto)
{
	struct pp_policy_peer_id who = { name, pub };
	struct pp_policy_decision d;

	/* Without a policy: every service to a verified (or pinned) identity,
	 * and to a v1 peer only if its name is listed; before the peer is
	 * authenticated (the INIT) that is nothing for an unlisted name. */
	if (acc->policy == NULL)
		return pub != NULL || legacy_listed(acc, name);
	if (pp_policy_decide(acc->policy, acc->gateway, &who, proto, port,
	    now_s(), &d) == 0)
		return 1;
	pp_debug(SUB, "peer %s port %u/%s: %s", name, port,
	    pp_tun_proto_name(proto), d.reason);
	return 0;
}

int
pp_access_explain(const struct pp_access *acc, const char *name,
    const char *service, char *buf, size_t len)
{
	struct pp_policy_peer_id who = { name, NULL };
	enum pp_tun_proto proto = PP_TUN_TCP;
	uint8_t key[PP_ID_PUB_LEN];
	unsigned long port = 0;
	uint16_t p16 = 0;
	int rc;

	if (acc->policy == NULL) {
		snprintf(buf, len, "no policy: every peer may use every service\n");
		return PP_ECONFLICT;
	}
	if ((rc = pp_policy_peer_key(acc->policy, name, key)) == 0)
		who.key = key;
	else if (rc != PP_EINVAL) {
		snprintf(buf, len, "%s: no [peer %s] or [legacy %s] in %s\n", name,
		    name, name, acc->policy_path);
		return PP_ENOTFOUND;
	}
	if ((strncmp(service, "tcp/", 4) == 0 || strncmp(service, "udp/", 4) == 0)) {
		char *end;

		proto = service[0] == 't' ? PP_TUN_TCP : PP_TUN_UDP;
		port = strtoul(service + 4, &end, 10);
		if (*end != '\0' || port == 0 || port > 65535) {
			snprintf(buf, len, "%s: use a service name, tcp/PORT or "
			    "udp/PORT\n", service);
			return PP_ENOTFOUND;
		}
		p16 = (uint16_t)port;
	} else if (pp_policy_service_find(acc->policy, acc->gateway, service,
	    &proto, &p16) < 0) {
		snprintf(buf, len, "%s: no such service here or in the policy\n",
		    service);
		return PP_ENOTFOUND;
	}
	return pp_policy_explain(acc->policy, acc->gateway, &who, proto, p16,
	    now_s(), buf, len);	/* 0 allowed, PP_EDENIED denied */
}
