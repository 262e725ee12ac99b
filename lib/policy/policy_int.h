/*
 * The parsed policy, shared by the parser (parse.c) and the evaluator
 * (eval.c).  Every reference is resolved to an index at parse time, so
 * evaluation does no name lookups but the peer's own.
 */
#ifndef PP_POLICY_INT_H
#define PP_POLICY_INT_H

#include "identity/identity.h"
#include "policy/policy.h"

struct pp__pol_peer {
	char name[PP_TUN_NAME_MAX + 1];
	uint8_t key[PP_ID_PUB_LEN];	/* [peer]; zero for [legacy] */
	int legacy;			/* a [legacy] entry: v1, no key */
	int line;
	uint16_t groups[PP_POLICY_MAX_PEER_GROUPS];	/* indices into groups */
	size_t ngroups;
};

struct pp__pol_service {
	char name[PP_POLICY_ITEM_MAX + 1];
	uint16_t port;
	enum pp_tun_proto proto;
	char host[256];			/* the policy's host =, or "" */
	char gateway[PP_TUN_NAME_MAX + 1];	/* "": any gateway */
	int line;			/* 0: from the gateway's own list */
};

enum pp__pol_subj_kind {
	PP__SUBJ_ANY,
	PP__SUBJ_PEER,		/* idx: peers */
	PP__SUBJ_GROUP,		/* idx: groups */
	PP__SUBJ_KEY,		/* key */
};

struct pp__pol_subj {
	enum pp__pol_subj_kind kind;
	uint32_t idx;
	uint8_t key[PP_ID_PUB_LEN];
};

enum pp__pol_obj_kind {
	PP__OBJ_ANY,
	PP__OBJ_SERVICE,	/* idx: services */
	PP__OBJ_PORTS,		/* proto, lo-hi */
};

struct pp__pol_obj {
	enum pp__pol_obj_kind kind;
	uint32_t idx;
	enum pp_tun_proto proto;
	uint16_t lo, hi;
};

struct pp__pol_rule {
	char name[PP_POLICY_ITEM_MAX + 1];
	int line;
	int deny;
	struct pp__pol_subj subj[PP_POLICY_MAX_ITEMS];
	size_t nsubj;
	struct pp__pol_obj obj[PP_POLICY_MAX_ITEMS];
	size_t nobj;
	char gw[PP_POLICY_MAX_ITEMS][PP_TUN_NAME_MAX + 1];	/* none: all */
	size_t ngw;
	int has_expiry;
	int64_t expires;		/* the rule applies while now < expires */
	char expires_text[40];		/* as written */
};

struct pp_policy {
	struct pp__pol_peer *peers;
	size_t npeers;
	char (*groups)[PP_POLICY_ITEM_MAX + 1];
	size_t ngroups;
	struct pp__pol_service *svcs;
	size_t nsvcs;
	struct pp__pol_rule *rules;
	size_t nrules;
	uint8_t hash[PP_POLICY_HASH_LEN];
};

/* The entry who is, or -1; why in why when -1 and there is a reason
 * beyond "not listed". */
int pp__pol_resolve(const struct pp_policy *pol,
    const struct pp_policy_peer_id *who, char *why, size_t whylen);
void pp__pol_hash(struct pp_policy *pol);

#endif
