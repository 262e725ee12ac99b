/*
 * Netfilter rules that send the gateway's own service connections -- and only
 * those -- through an NFQUEUE to Suricata, in both directions.
 *
 * The gateway marks each socket it opens to a service (SO_MARK, see
 * pp_nf_mark_socket) before connect().  Three chains of our own, named after
 * the instance, do the rest (iptables; ip6tables too with `ipv6`):
 *
 *   mangle OUTPUT -> PP-<inst>-MARK:
 *       -m mark --mark M/MASK -j CONNMARK --set-xmark M/MASK
 *   filter OUTPUT -> PP-<inst>-OUT:
 *       -m connmark --mark M/MASK -m conntrack --ctdir ORIGINAL -j NFQUEUE --queue-num N
 *   filter INPUT  -> PP-<inst>-IN:
 *       -m connmark --mark M/MASK -m conntrack --ctdir REPLY -j NFQUEUE --queue-num N
 *
 * Gateway -> service packets are queued once, in OUTPUT; service -> gateway
 * packets once, in INPUT, whether the service is on another host or on
 * loopback (there its replies also cross OUTPUT, but in the REPLY direction,
 * and the gateway's own packets cross INPUT in the ORIGINAL direction).
 * Without a listener on the queue the kernel drops queued packets: fail-closed.
 * `fail_open` adds --queue-bypass (the kernel accepts them instead).
 *
 * Each jump is inserted first in its builtin chain so that no earlier ACCEPT
 * bypasses the queue.  Installing first removes whatever an earlier (crashed)
 * run of the same instance left; removing is idempotent.
 *
 * The rules are made by running iptables with fixed argument vectors built
 * from a validated config (execve, empty environment, no shell): a closed set
 * of operations that can move into a privileged helper unchanged.  These
 * calls block (a few ms each): call them at start and stop, not per packet.
 * The kernel's nftables `queue` expression is not used (this machine's kernel
 * lacks it); iptables-nft translates the xt targets.
 */
#ifndef PP_IPS_NETFILTER_H
#define PP_IPS_NETFILTER_H

#include <stddef.h>
#include <stdint.h>

#define PP_NF_INSTANCE_MAX 16	/* [A-Za-z0-9_]{1,16}; chain names <= 28 */

struct pp_nf_config {
	char instance[PP_NF_INSTANCE_MAX + 1];
	uint32_t mark, mask;	/* mark != 0, (mark & ~mask) == 0 */
	uint16_t queue_num;
	int fail_open;		/* --queue-bypass */
	int ipv6;		/* also ip6tables */
	/* NULL: /usr/sbin/iptables and /usr/sbin/ip6tables. */
	const char *iptables, *ip6tables;
};

/* 0 if the config is usable, else PP_EINVAL with the reason in err. */
int pp_nf_validate(const struct pp_nf_config *c, char *err, size_t errlen);

/*
 * Nonzero if this process has capability cap (CAP_NET_ADMIN, ...) in its
 * effective set (capget).  Without CAP_NET_ADMIN the gateway cannot install
 * the rules: IDS fallback.
 */
int pp_nf_have_cap(int cap);

/*
 * Removes stale rules of the instance, then installs them.  On failure
 * nothing of ours is left and err names the failing command and iptables'
 * message.  0 or a negative code.
 */
int pp_nf_install(const struct pp_nf_config *c, char *err, size_t errlen);

/* Removes the instance's jumps and chains; absent ones are fine.  0 when
 * nothing of ours is left, else a negative code. */
int pp_nf_remove(const struct pp_nf_config *c);

/* Sets SO_MARK on a socket (before connect()).  0 or -errno. */
int pp_nf_mark_socket(int fd, uint32_t mark);

/* The chain names of an instance (for logs and tests); buffers of 32. */
void pp_nf_chain_names(const struct pp_nf_config *c, char mark[32],
    char out[32], char in[32]);

#endif
