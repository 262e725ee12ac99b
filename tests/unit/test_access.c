/*
 * lib/agent/access.c: pp_access_add_peer(), the policy entry an invite
 * adds.  A refusal must leave the policy file byte for byte as it was; a
 * success must leave a file that loads, with its mode, in force at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "agent/access.h"
#include "agent/config.h"
#include "base/error.h"
#include "policy/policy.h"
#include "identity/identity.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct fx {
	char dir[64], policy[128], state[128];
	struct pp_cfg *cfg;
	uint8_t k1[PP_ID_PUB_LEN], k2[PP_ID_PUB_LEN], k3[PP_ID_PUB_LEN];
	char t1[PP_ID_PUB_STRLEN + 1], t3[PP_ID_PUB_STRLEN + 1];
};

static void
key(uint8_t pub[PP_ID_PUB_LEN])
{
	struct pp_identity *id;

	assert_int_equal(pp_id_generate(&id), 0);
	pp_id_public(id, pub);
	pp_id_free(id);
}

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static char *
read_all(const char *path)
{
	static char buf[16384];	/* test policies are small */
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Files in the directory but the policy and state/: no temporary left. */
static int
strays(const struct fx *fx)
{
	struct dirent *d;
	DIR *dp = opendir(fx->dir);
	int n = 0;

	assert_non_null(dp);
	while ((d = readdir(dp)) != NULL)
		if (strcmp(d->d_name, ".") && strcmp(d->d_name, "..") &&
		    strcmp(d->d_name, "policy.conf") && strcmp(d->d_name, "state"))
			n++;
	closedir(dp);
	return n;
}

static struct pp_access *
setup(struct fx *fx)
{
	struct pp_access *acc;

	assert_int_equal(pp_access_new(fx->cfg, fx->state, &acc), 0);
	return acc;
}

static void
fx_init(struct fx *fx, const char *extra)
{
	char text[4096];

	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/pp-access-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->policy, sizeof(fx->policy), "%s/policy.conf", fx->dir);
	snprintf(fx->state, sizeof(fx->state), "%s/state", fx->dir);
	assert_int_equal(mkdir(fx->state, 0700), 0);
	key(fx->k1);
	key(fx->k2);
	key(fx->k3);
	pp_id_pub_format(fx->k1, fx->t1, sizeof(fx->t1));
	pp_id_pub_format(fx->k3, fx->t3, sizeof(fx->t3));
	snprintf(text, sizeof(text),
	    "[peer alice]\nkey = %s\ngroups = staff\n\n"
	    "[rule staff-ssh]\nallow = group:staff\nto = tcp/22\n\n"
	    "[tests]\nallow = alice -> tcp/22\n%s", fx->t1, extra);
	write_file(fx->policy, text);
	assert_int_equal(chmod(fx->policy, 0640), 0);
	assert_non_null(fx->cfg = calloc(1, sizeof(*fx->cfg)));
	pp_cfg_defaults(fx->cfg);
	snprintf(fx->cfg->name, sizeof(fx->cfg->name), "gw-test");
	snprintf(fx->cfg->policy, sizeof(fx->cfg->policy), "%s", fx->policy);
}

static void
fx_fini(struct fx *fx)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/known-peers", fx->state);
	unlink(path);
	rmdir(fx->state);
	unlink(fx->policy);
	rmdir(fx->dir);
	free(fx->cfg);
}

static void
test_add_peer(void **state)
{
	char why[1024], before[16384], *after;
	struct pp_access *acc;
	struct stat st;
	struct fx fx;
	int changed = -1;

	(void)state;
	fx_init(&fx, "");
	acc = setup(&fx);
	snprintf(before, sizeof(before), "%s", read_all(fx.policy));
	/* another owner than ours (root can give the file away) */
	if (geteuid() == 0)
		assert_int_equal(chown(fx.policy, 65534, 65534), 0);

	/* a new key: added after everything there, in force at once */
	assert_int_equal(pp_access_admit(acc, "laptop-1", fx.k2, why,
	    sizeof(why)), PP_EDENIED);
	assert_int_equal(pp_access_add_peer(acc, "laptop-1", fx.k2, "staff",
	    "invite AAAA", &changed, why, sizeof(why)), 0);
	assert_int_equal(changed, 1);
	assert_int_equal(pp_access_admit(acc, "laptop-1", fx.k2, why,
	    sizeof(why)), 0);
	assert_int_equal(pp_access_allow(acc, "laptop-1", fx.k2, 22, PP_TUN_TCP),
	    1);
	after = read_all(fx.policy);
	assert_memory_equal(after, before, strlen(before));
	assert_non_null(strstr(after + strlen(before), "# added by invite AAAA "
	    "at "));
	assert_non_null(strstr(after + strlen(before), "\n[peer laptop-1]\nkey = "));
	assert_non_null(strstr(after + strlen(before), "\ngroups = staff\n"));
	assert_int_equal(pp_access_invite_entry(acc, "invite AAAA", "laptop-1",
	    fx.k2), 1);
	assert_int_equal(pp_access_invite_entry(acc, "invite BBBB", "laptop-1",
	    fx.k2), 0);
	assert_int_equal(pp_access_invite_entry(acc, "invite AAAA", "laptop-1",
	    fx.k3), 0);
	/* the mode is the policy's, and no temporary file is left */
	assert_int_equal(stat(fx.policy, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	if (geteuid() == 0) {
		assert_int_equal(st.st_uid, 65534);
		assert_int_equal(st.st_gid, 65534);
	}
	assert_int_equal(strays(&fx), 0);
	/* and it loads as it is (the next start, or a reload) */
	assert_int_equal(pp_access_reload(acc, &changed), 0);
	assert_int_equal(changed, 0);
	pp_access_free(acc);
	fx_fini(&fx);
}

static void
test_add_peer_refused(void **state)
{
	char why[1024], before[16384];
	struct pp_access *acc;
	struct fx fx;
	int changed = -1;

	(void)state;
	fx_init(&fx, "");
	acc = setup(&fx);
	snprintf(before, sizeof(before), "%s", read_all(fx.policy));

	/* alice's key under another name: refused up front, naming alice,
	 * and again and again (a device retrying) without a trace */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pp_access_add_peer(acc, "laptop-2", fx.k1, "",
		    "invite CCCC", &changed, why, sizeof(why)), PP_ECONFLICT);
		assert_non_null(strstr(why, "already belongs to [peer alice]"));
		assert_string_equal(read_all(fx.policy), before);
	}
	/* an existing name */
	assert_int_equal(pp_access_add_peer(acc, "alice", fx.k2, "",
	    "invite CCCC", &changed, why, sizeof(why)), PP_ECONFLICT);
	assert_string_equal(read_all(fx.policy), before);
	assert_int_equal(strays(&fx), 0);
	assert_int_equal(pp_access_reload(acc, &changed), 0);
	pp_access_free(acc);
	fx_fini(&fx);

	/* the file was edited since it was loaded, and its [tests] fail now:
	 * appending to it would leave a file the next start refuses */
	fx_init(&fx, "");
	acc = setup(&fx);
	{
		char text[16384 + 64];

		snprintf(text, sizeof(text), "%sdeny = alice -> tcp/22\n",
		    read_all(fx.policy));
		write_file(fx.policy, text);
	}
	snprintf(before, sizeof(before), "%s", read_all(fx.policy));
	assert_int_equal(pp_access_add_peer(acc, "laptop-3", fx.k3, "staff",
	    "invite DDDD", &changed, why, sizeof(why)), PP_ECONFIG);
	assert_non_null(strstr(why, "would break the policy"));
	assert_non_null(strstr(why, "refused, the file is unchanged"));
	assert_string_equal(read_all(fx.policy), before);
	assert_int_equal(strays(&fx), 0);
	/* the policy in force is untouched */
	assert_int_equal(pp_access_admit(acc, "laptop-3", fx.k3, why,
	    sizeof(why)), PP_EDENIED);
	assert_int_equal(pp_access_admit(acc, "alice", fx.k1, why,
	    sizeof(why)), 0);
	pp_access_free(acc);
	fx_fini(&fx);
}

/* A policy at PP_POLICY_MAX_PEERS entries takes no more. */
static void
test_add_peer_limit(void **state)
{
	char why[1024], *before, *text, t[PP_ID_PUB_STRLEN + 1];
	size_t cap = 256 * (PP_POLICY_MAX_PEERS + 8), len = 0;
	struct pp_access *acc;
	uint8_t k[PP_ID_PUB_LEN];
	struct fx fx;
	int changed;

	(void)state;
	fx_init(&fx, "");
	assert_non_null(text = malloc(cap));
	assert_non_null(before = malloc(cap));
	len = (size_t)snprintf(text, cap, "%s", read_all(fx.policy));
	for (int i = 1; i < PP_POLICY_MAX_PEERS; i++) {
		key(k);
		pp_id_pub_format(k, t, sizeof(t));
		len += (size_t)snprintf(text + len, cap - len,
		    "[peer host-%04d]\nkey = %s\n", i, t);
	}
	write_file(fx.policy, text);
	acc = setup(&fx);
	assert_int_equal(pp_access_add_peer(acc, "laptop-4", fx.k3, "",
	    "invite EEEE", &changed, why, sizeof(why)), PP_ECONFIG);
	assert_non_null(strstr(why, "would break the policy"));
	{
		FILE *f = fopen(fx.policy, "r");
		size_t n;

		assert_non_null(f);
		n = fread(before, 1, cap - 1, f);
		before[n] = '\0';
		fclose(f);
	}
	assert_string_equal(before, text);
	assert_int_equal(strays(&fx), 0);
	pp_access_free(acc);
	free(text);
	free(before);
	fx_fini(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_peer),
		cmocka_unit_test(test_add_peer_refused),
		cmocka_unit_test(test_add_peer_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
