/*
 * The agent core: one signaling connection, one room, and a tunnel to each
 * other member of the room (docs/agent.md).  It joins the room (and joins
 * again after the signaling server comes back), makes or answers the peer
 * connections by the v1 glare rule (the smaller user name offers), rebuilds
 * a peer connection that failed, and serves the local control API
 * (lib/agent/ctl.h) with its status.
 *
 * Peer connections survive the signaling server going away: data flows
 * peer to peer, so a signaling restart costs nothing but a rejoin.
 *
 * Thread: the loop thread; the desktop app runs it on a worker thread and
 * talks to it only through the control socket.  Ownership: the caller owns
 * the agent and the loop.  To end: pp_agent_stop(), run the loop until it
 * has nothing left (uv_run returns), then pp_agent_free().
 */
#ifndef PP_AGENT_AGENT_H
#define PP_AGENT_AGENT_H

#include "agent/config.h"

#include <jansson.h>
#include <uv.h>

struct pp_agent;

enum pp_agent_mode {
	PP_AGENT_GATEWAY,	/* shares services; consumer listeners on [consume] bind */
	PP_AGENT_CONNECT,	/* consumes; listeners on 127.0.1.N per peer */
};

struct pp_agent_config {
	const struct pp_cfg *cfg;	/* copied */
	enum pp_agent_mode mode;
	const char *control;		/* socket path; NULL: from cfg or default */
	/* An invite token (docs/identity.md, "Invites"): its signaling URL and
	 * room replace the config's, its gateway's key is pinned, and the
	 * invite is proved to that gateway.  NULL: none. */
	const char *invite;
};

/*
 * Validates what the config leaves to us (STUN/TURN addresses), opens the
 * control socket and starts connecting.  0, or a negative code with the
 * reason logged (PP_ECONFLICT: another agent serves the control socket).
 */
int pp_agent_new(uv_loop_t *loop, const struct pp_agent_config *ac,
    struct pp_agent **out);
/* Leaves the room, closes peer connections politely, closes the control
 * socket; on_stopped follows. */
void pp_agent_stop(struct pp_agent *a);
void pp_agent_free(struct pp_agent *a);	/* NULL-safe, after on_stopped */

/*
 * Reads the policy again (SIGHUP, `peerpipe reload`): peers it no longer
 * admits are cut, ports it no longer allows are closed and offered no more,
 * permitted connections go on.  0, or PP_ECONFIG (errors logged; the old
 * policy stays).
 */
int pp_agent_reload(struct pp_agent *a);

/* The control socket path in use. */
const char *pp_agent_control_path(const struct pp_agent *a);

/* What `peerpipe status` shows (a new reference); see docs/control-api.md. */
json_t *pp_agent_status(struct pp_agent *a);

/* The default control socket for an agent named name. */
void pp_agent_default_control(const char *name, char *out, size_t len);
/* The default state directory (identity key, bans): /var/lib/peerpipe/NAME
 * for root, else $XDG_STATE_HOME/peerpipe/NAME or ~/.local/state/... */
void pp_agent_default_state_dir(const char *name, char *out, size_t len);

#endif
