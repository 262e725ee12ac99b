/*
 * Who may come in and what they may reach (docs/identity.md, policy.md).
 *
 * With a policy file: a peer is admitted only as one of its entries, a v2
 * peer by the key its [peer NAME] names, a v1 peer only through a
 * [legacy NAME]; each service port is then decided by the policy's rules.
 * Without one: every peer with a verified identity may use every service,
 * and the identity key first seen for a peer name is pinned in the state
 * directory (known-peers): the same name with another key, or with none (a
 * v2 peer stripped to v1 by a man in the middle), is refused from then on.
 * A peer without identity comes in only if [agent] legacy_peers names it.
 *
 * Thread: the agent's loop thread.  Files are read at new/reload and the
 * pin file appended to on first contact.
 */
#ifndef PP_AGENT_ACCESS_H
#define PP_AGENT_ACCESS_H

#include "agent/config.h"
#include "tunnel/proto.h"

#include <stddef.h>
#include <stdint.h>

struct pp_access;

/* Loads the policy named in cfg (if any) and the pinned keys.  Every
 * policy error is logged as FILE:LINE; PP_ECONFIG then. */
int pp_access_new(const struct pp_cfg *cfg, const char *state_dir,
    struct pp_access **out);
void pp_access_free(struct pp_access *acc);

/* Reads the policy again; on errors keeps the old one (logged).  0, or
 * PP_ECONFIG.  *changed: whether decisions may differ now. */
int pp_access_reload(struct pp_access *acc, int *changed);

/* May the peer (pub: its verified key, or NULL) come in at all?  0, or
 * PP_EDENIED with the reason and the fix in why. */
int pp_access_admit(struct pp_access *acc, const char *name,
    const uint8_t *pub, char *why, size_t whylen);

/* May it use port/proto here?  1 or 0. */
int pp_access_allow(const struct pp_access *acc, const char *name,
    const uint8_t *pub, uint16_t port, enum pp_tun_proto proto);

/* The earliest `expires` of the policy's rules after now (Unix seconds),
 * or 0 if none: decisions change then without a reload. */
int64_t pp_access_next_expiry(const struct pp_access *acc, int64_t now);

int pp_access_has_policy(const struct pp_access *acc);
/* The policy file's path ("" without one). */
const char *pp_access_policy_path(const struct pp_access *acc);

/*
 * An invited device comes in (docs/identity.md, "Invites"): adds
 * "[peer NAME] key = K (groups = G)" to the policy file, after a comment
 * "# added by COMMENT at DATE", and puts the new policy in force (*changed:
 * whether decisions may differ; the caller re-decides).  The new file is
 * parsed whole first ([tests] and limits included) and only then written,
 * under a temporary name beside the policy with its mode and owner, synced
 * and renamed over it: a refusal or a crash leaves the file as it was.
 * PP_ECONFLICT when the policy already has an entry of that name or a
 * [peer] with that key, PP_ECONFIG without a policy or when the result
 * would not load, PP_EINVAL for a name no header can hold, else 0 or
 * -errno; why says what and the fix.
 */
int pp_access_add_peer(struct pp_access *acc, const char *name,
    const uint8_t *pub, const char *group, const char *comment, int *changed,
    char *why, size_t whylen);

/* Whether the policy in force has [peer name] with key pub and its file
 * the line "# added by COMMENT at ..." pp_access_add_peer() wrote: 1 or 0.
 * At start, an invite caught half-way is settled by it. */
int pp_access_invite_entry(const struct pp_access *acc, const char *comment,
    const char *name, const uint8_t *pub);

/*
 * Pins name to pub in known-peers unless it is pinned already (the same
 * key: 0; another: PP_ECONFLICT with why).  A device pins the gateway its
 * invite names before it ever meets it.
 */
int pp_access_pin(struct pp_access *acc, const char *name, const uint8_t *pub,
    char *why, size_t whylen);

/* `peerpipe explain`: the policy's reasoning for name (by its policy entry)
 * and a service (NAME, or tcp/PORT, udp/PORT) into buf.  0 (allowed),
 * PP_EDENIED (denied), PP_ENOTFOUND (no such peer or service, said in buf),
 * or PP_ECONFLICT without policy. */
int pp_access_explain(const struct pp_access *acc, const char *name,
    const char *service, char *buf, size_t len);

#endif
