/*
 * The netfilter rules of the inline IPS, made with the iptables CLI.
 *
 * Every command is one of the operations below, its argv assembled from a
 * config that pp_nf_validate() accepted (instance name from a small charset,
 * numbers printed by us), run with posix_spawn and an empty environment.
 */
#include "ips/netfilter.h"

#include "base/error.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SUB "ips"
#define IPTABLES "/usr/sbin/iptables"
#define IP6TABLES "/usr/sbin/ip6tables"
/* A builtin chain can hold several stale jumps of ours (runs killed between
 * insert and delete); more than this is not ours to guess about. */
#define MAX_STALE_JUMPS 16

int
pp_nf_validate(const struct pp_nf_config *c, char *err, size_t errlen)
{
	size_t n = strnlen(c->instance, sizeof(c->instance));

	if (n == 0 || n > PP_NF_INSTANCE_MAX) {
		snprintf(err, errlen, "instance name must be 1-%d characters",
		    PP_NF_INSTANCE_MAX);
		return PP_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char ch = c->instance[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '_')) {
			snprintf(err, errlen, "instance name '%s': only letters, "
			    "digits and '_'", c->instance);
			return PP_EINVAL;
		}
	}
	if (c->mark == 0 || c->mask == 0 || (c->mark & ~c->mask) != 0) {
		snprintf(err, errlen, "mark 0x%x/0x%x: the mark must be nonzero "
		    "and inside the mask", c->mark, c->mask);
		return PP_EINVAL;
	}
	return 0;
}

int
pp_nf_have_cap(int cap)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return 0;
	if (cap < 0 || cap / 32 >= _LINUX_CAPABILITY_U32S_3)
		return 0;
	return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

int
pp_nf_mark_socket(int fd, uint32_t mark)
{
	unsigned v = mark;

	return setsockopt(fd, SOL_SOCKET, SO_MARK, &v, sizeof(v)) == 0 ? 0 :
	    -errno;
}

void
pp_nf_chain_names(const struct pp_nf_config *c, char mark[32], char out[32],
    char in[32])
{
	snprintf(mark, 32, "PP-%s-MARK", c->instance);
	snprintf(out, 32, "PP-%s-OUT", c->instance);
	snprintf(in, 32, "PP-%s-IN", c->instance);
}

/*
 * Runs bin with argv (argv[0] set here); output goes to msg.  Returns the
 * exit status (0..255), or a negative code if it could not run.
 */
static int
run(const char *bin, char **argv, char *msg, size_t msglen)
{
	static char *const envp[] = { NULL };
	posix_spawn_file_actions_t fa;
	int p[2], status, rc;
	pid_t pid;
	size_t got = 0;
	ssize_t n;

	if (msglen)
		msg[0] = '\0';
	argv[0] = (char *)(uintptr_t)bin;
	if (pipe2(p, O_CLOEXEC) != 0)
		return -errno;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		snprintf(msg, msglen, "%s: %s", bin, strerror(rc));
		return -rc;
	}
	for (;;) {
		char tmp[256];

		n = read(p[0], tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n && got + 1 < msglen; i++)
			msg[got++] = tmp[i] == '\n' ? ' ' : tmp[i];
	}
	if (msglen)
		msg[got] = '\0';
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (!WIFEXITED(status))
		return -ECHILD;
	return WEXITSTATUS(status);
}

/* The closed set of operations. */
enum op {
	OP_CHAIN_NEW,	/* -t T -N C */
	OP_CHAIN_FLUSH,	/* -t T -F C */
	OP_CHAIN_DEL,	/* -t T -X C */
	OP_CHAIN_SHOW,	/* -t T -S C: exit 0 iff it exists */
	OP_JUMP_INS,	/* -t T -I B 1 -j C */
	OP_JUMP_DEL,	/* -t T -D B -j C */
	OP_RULE_MARK,	/* -t mangle -A C -m mark ... -j CONNMARK --set-xmark */
	OP_RULE_QOUT,	/* -t filter -A C ... --ctdir ORIGINAL -j NFQUEUE */
	OP_RULE_QIN,	/* -t filter -A C ... --ctdir REPLY -j NFQUEUE */
};

static int
op(const struct pp_nf_config *c, const char *bin, enum op o, const char *table,
    const char *builtin, const char *chain, char *msg, size_t msglen)
{
	char mark[32], qnum[8];
	char *argv[32];
	int n = 1;

	snprintf(mark, sizeof(mark), "0x%x/0x%x", c->mark, c->mask);
	snprintf(qnum, sizeof(qnum), "%u", c->queue_num);
#define A(s) (argv[n++] = (char *)(uintptr_t)(s))
	A("-w"); A("10"); A("-t"); A(table);
	switch (o) {
	case OP_CHAIN_NEW: A("-N"); A(chain); break;
	case OP_CHAIN_FLUSH: A("-F"); A(chain); break;
	case OP_CHAIN_DEL: A("-X"); A(chain); break;
	case OP_CHAIN_SHOW: A("-S"); A(chain); break;
	case OP_JUMP_INS: A("-I"); A(builtin); A("1"); A("-j"); A(chain); break;
	case OP_JUMP_DEL: A("-D"); A(builtin); A("-j"); A(chain); break;
	case OP_RULE_MARK:
		A("-A"); A(chain); A("-m"); A("mark"); A("--mark"); A(mark);
		A("-j"); A("CONNMARK"); A("--set-xmark"); A(mark);
		break;
	case OP_RULE_QOUT:
	case OP_RULE_QIN:
		A("-A"); A(chain); A("-m"); A("connmark"); A("--mark"); A(mark);
		A("-m"); A("conntrack"); A("--ctdir");
		A(o == OP_RULE_QOUT ? "ORIGINAL" : "REPLY");
		A("-j"); A("NFQUEUE"); A("--queue-num"); A(qnum);
		if (c->fail_open)
			A("--queue-bypass");
		break;
	}
	A(NULL);
#undef A
	return run(bin, argv, msg, msglen);
}

struct chain {
	const char *table, *builtin;
	const char *name;
};

static void
chains(const struct pp_nf_config *c, char names[3][32], struct chain ch[3])
{
	pp_nf_chain_names(c, names[0], names[1], names[2]);
	ch[0] = (struct chain){ "mangle", "OUTPUT", names[0] };
	ch[1] = (struct chain){ "filter", "OUTPUT", names[1] };
	ch[2] = (struct chain){ "filter", "INPUT", names[2] };
}

static int
remove_family(const struct pp_nf_config *c, const char *bin)
{
	char names[3][32], msg[256];
	struct chain ch[3];
	int left = 0;

	chains(c, names, ch);
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k < MAX_STALE_JUMPS; k++)
			if (op(c, bin, OP_JUMP_DEL, ch[i].table, ch[i].builtin,
			    ch[i].name, msg, sizeof(msg)) != 0)
				break;
		op(c, bin, OP_CHAIN_FLUSH, ch[i].table, NULL, ch[i].name, msg,
		    sizeof(msg));
		op(c, bin, OP_CHAIN_DEL, ch[i].table, NULL, ch[i].name, msg,
		    sizeof(msg));
		if (op(c, bin, OP_CHAIN_SHOW, ch[i].table, NULL, ch[i].name, msg,
		    sizeof(msg)) == 0) {
			pp_warn(SUB, "netfilter: could not remove chain %s "
			    "(table %s)", ch[i].name, ch[i].table);
			left++;
		}
	}
	return left ? PP_ECONFLICT : 0;
}

static const char *
bin_of(const struct pp_nf_config *c, int v6)
{
	if (v6)
		return c->ip6tables ? c->ip6tables : IP6TABLES;
	return c->iptables ? c->iptables : IPTABLES;
}

int
pp_nf_remove(const struct pp_nf_config *c)
{
	char err[256];
	int rc;

	if (pp_nf_validate(c, err, sizeof(err)) != 0)
		return PP_EINVAL;
	rc = remove_family(c, bin_of(c, 0));
	if (c->ipv6) {
		int rc6 = remove_family(c, bin_of(c, 1));

		if (rc == 0)
			rc = rc6;
	}
	return rc;
}

static int
install_family(const struct pp_nf_config *c, const char *bin, char *err,
    size_t errlen)
{
	char names[3][32], msg[256];
	struct chain ch[3];
	int rc;

	chains(c, names, ch);
	/* Chains and their rules first, the jumps last: a half-made chain is
	 * never reachable. */
	for (int i = 0; i < 3; i++) {
		static const enum op rule[3] = { OP_RULE_MARK, OP_RULE_QOUT,
		    OP_RULE_QIN };

		if ((rc = op(c, bin, OP_CHAIN_NEW, ch[i].table, NULL, ch[i].name,
		    msg, sizeof(msg))) != 0 ||
		    (rc = op(c, bin, rule[i], ch[i].table, NULL, ch[i].name, msg,
		    sizeof(msg))) != 0)
			goto fail;
	}
	for (int i = 0; i < 3; i++) {
		if ((rc = op(c, bin, OP_JUMP_INS, ch[i].table, ch[i].builtin,
		    ch[i].name, msg, sizeof(msg))) != 0)
			goto fail;
	}
	return 0;
fail:
	snprintf(err, errlen, "%s failed (%s%d): %s", bin,
	    rc < 0 ? "error " : "exit ", rc < 0 ? -rc : rc,
	    msg[0] ? msg : "no message");
	return rc < 0 ? rc : PP_ECONFIG;
}

int
pp_nf_install(const struct pp_nf_config *c, char *err, size_t errlen)
{
	int rc;

	if ((rc = pp_nf_validate(c, err, errlen)) != 0)
		return rc;
	if (!pp_nf_have_cap(CAP_NET_ADMIN)) {
		snprintf(err, errlen, "no CAP_NET_ADMIN: cannot install the "
		    "NFQUEUE rules (run the gateway with CAP_NET_ADMIN for "
		    "inline mode, or use the IDS fallback)");
		return -EPERM;
	}
	/* Whatever a crashed run of this instance left goes first. */
	pp_nf_remove(c);
	if ((rc = install_family(c, bin_of(c, 0), err, errlen)) != 0 ||
	    (c->ipv6 && (rc = install_family(c, bin_of(c, 1), err, errlen)) != 0)) {
		pp_nf_remove(c);
		return rc;
	}
	pp_info(SUB, "netfilter: marked connections (0x%x/0x%x) queued to "
	    "NFQUEUE %u in both directions%s", c->mark, c->mask, c->queue_num,
	    c->fail_open ? " (fail-open: --queue-bypass)" : "");
	return 0;
}
