/*
 * The agent core: signaling, the room, one peer connection and tunnel per
 * other member, and the control API.  See agent.h.
 *
 * A peer is never torn down from inside one of its own callbacks (pc, dc or
 * tunnel): it is marked and the reaper, a zero-delay timer, frees its
 * tunnel and then its peer connection on the next loop turn.
 */
#include "agent/agent.h"

#include "agent/access.h"
#include "agent/bans.h"
#include "agent/ctl.h"
#include "agent/invite.h"
#include "base/b64.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "ice/gloop.h"
#include "identity/identity.h"
#include "ips/ips.h"
#include "rtc/pc.h"
#include "signal/client.h"
#include "signal/msg.h"
#include "tunnel/tunnel.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SUB "agent"
#define MAX_PEERS	254		/* 127.0.1.1 .. 127.0.1.254 */
#define RETRY_MIN_MS	1000
#define RETRY_MAX_MS	30000
#define REJOIN_MS	2000
#define PROBE_MS	3000
#define TURN_WAIT_MS	5000		/* offers (answers) wait for TURN credentials */
#define AUTH_WAIT_MS	5000		/* for the answer to AUTH_CHALLENGE */
#define HELD_MAX	48		/* an offer and what trickles behind it */
#define RESTART_RETRY_MS 6000		/* an ICE restart offer not answered yet */
#define SIG_CHECK_MS	3000		/* signaling must answer a ping: path lost */

enum peer_state {
	PEER_IDLE,		/* no peer connection */
	PEER_CONNECTING,
	PEER_CONNECTED,		/* tunnel ready */
	PEER_DISCONNECTED,	/* ICE lost the path; may come back */
};

struct peer {
	struct pp_agent *a;
	struct peer *next;
	char name[PP_TUN_NAME_MAX + 1];
	unsigned index;			/* 127.0.1.<index> in connect mode */
	char listen_host[64];
	int in_room;
	int offerer;
	struct pp_pc *pc;
	struct pp_tun *tun;
	enum peer_state state;
	int doomed;			/* reap the pc + tunnel */
	int awaiting_answer;
	uv_timer_t retry;
	uv_timer_t probe;		/* did a rejoining peer keep its connection? */
	uv_timer_t restart;		/* offers the ICE restart again */
	unsigned retry_ms;
	unsigned attempts;
	uint64_t state_since_ms;
	uint64_t connect_started_ms;
	int64_t setup_ms;		/* last offer/answer -> tunnel ready */
	char last_error[256];
	char identity[PP_ID_PUB_STRLEN + 1];	/* verified, or "" */
	/* the key the signaling server says it proved (v2), or "" */
	char sig_identity[PP_ID_PUB_STRLEN + 1];
	/* what the tunnel reported of the peer's offer */
	struct pp_tun_listener_info listeners[PP_TUN_MAX_PORTS];
	size_t nlisteners;
	/*
	 * SDP_STATE messages from this peer waiting for our TURN credentials:
	 * its offer came first (see on_sdp_state), then its candidates.
	 */
	json_t *held[HELD_MAX];
	unsigned nheld;
};

struct pp_agent {
	uv_loop_t *loop;
	struct pp_cfg cfg;
	enum pp_agent_mode mode;
	char control[108];
	struct pp_gloop *gl;
	struct pp_sigc *sig;
	struct pp_ctl *ctl;
	struct pp_dtls_cert *cert;
	struct pp_identity *id;
	char id_text[PP_ID_PUB_STRLEN + 1];
	struct pp_access *access;
	struct pp_bans *bans;
	/* invites: the tokens this gateway made; the one we were given */
	struct pp_invites *invites;
	struct pp_invite invite;
	int has_invite;
	struct pp_ips *ips;
	struct pp_tap_budget *tap_budget;	/* all evidence taps together */
	char ips_dir[1100];
	/* flows already cut, so the drop record that follows an alert names
	 * its peer too */
	struct { uint64_t flow; char name[PP_TUN_NAME_MAX + 1]; } cut_flows[16];
	unsigned ncut;
	struct pp_suri_service suri_svcs[PP_CFG_MAX_SERVICES];
	char state_dir[1024];
	struct pp_tun_service services[PP_CFG_MAX_SERVICES];
	char svc_host[PP_CFG_MAX_SERVICES][64];	/* pinned IP literals */
	/* pp_pc keeps these pointers: they live as long as the agent */
	const char *addrs[PP_CFG_MAX_ICE];
	struct pp_tun_forward forwards[PP_CFG_MAX_FORWARDS];
	struct pp_ice_turn turn[PP_CFG_MAX_ICE];
	char turn_host[PP_CFG_MAX_ICE][256];
	char stun_host[256];
	uint16_t stun_port;
	/*
	 * [ice] turn_from_signaling: short-lived TURN credentials from the
	 * signaling server (v2 TURN_CREDENTIALS), asked for after every join
	 * and again at 80% of their lifetime.  New peer connections get the
	 * config's relays, then these (ice_turn, rebuilt for each).
	 */
	struct pp_cfg_turn sig_turn_cfg[PP_ICE_MAX_TURN];
	struct pp_ice_turn sig_turn[PP_ICE_MAX_TURN];
	char sig_turn_host[PP_ICE_MAX_TURN][256];
	size_t nsig_turn;
	uint64_t sig_turn_expires_ms;		/* pp_now_ms() clock */
	int turn_waiting;			/* a request is out */
	int turn_unavailable_logged;
	uv_timer_t turn_timer;			/* give up waiting, or refresh */
	struct pp_ice_turn ice_turn[PP_ICE_MAX_TURN];

	struct peer *peers;
	unsigned npeers;
	uv_timer_t reaper;
	uv_timer_t rejoin;
	uv_timer_t expiry;		/* the policy's next `expires` */
	int64_t expiry_at;		/* what it waits for (Unix seconds) */
	int in_room;
	/* v2 signed join: a challenge asked for; did the server take our
	 * signature; has a v1 server been logged */
	int auth_waiting, sig_authed, sig_v1_logged;
	int stopping;
	uint64_t started_ms;
	uint64_t sig_connects;
};

static void peer_offer(struct peer *p);
static size_t ice_turn_list(struct pp_agent *a);
static void peer_restart(struct peer *p);
static int turn_hold(const struct pp_agent *a);
static int turn_parse(const struct pp_cfg_turn *c, struct pp_ice_turn *t,
    char *host, size_t hlen);

/* ---- peers ---- */

static const char *
state_name(enum peer_state s)
{
	switch (s) {
	case PEER_IDLE: return "idle";
	case PEER_CONNECTING: return "connecting";
	case PEER_CONNECTED: return "connected";
	case PEER_DISCONNECTED: return "disconnected";
	}
	return "?";
}

static void
set_state(struct peer *p, enum peer_state s)
{
	if (p->state == s)
		return;
	p->state = s;
	p->state_since_ms = pp_now_ms();
	if (p->a->ctl) {
		json_t *ev = json_pack("{s:s, s:s}", "name", p->name, "state",
		    state_name(s));

		pp_ctl_broadcast(p->a->ctl, "peer", ev);
		json_decref(ev);
	}
}

static int
consumes(const struct pp_agent *a, const char *name)
{
	if (a->cfg.npeers == 0)
		return 1;
	for (size_t i = 0; i < a->cfg.npeers; i++)
		if (strcmp(a->cfg.peers[i], name) == 0)
			return 1;
	return 0;
}

static struct peer *
peer_find(struct pp_agent *a, const char *name)
{
	for (struct peer *p = a->peers; p; p = p->next)
		if (strcmp(p->name, name) == 0)
			return p;
	return NULL;
}

static void
peer_retry_cb(uv_timer_t *h)
{
	struct peer *p = h->data;

	if (p->in_room && p->offerer && p->pc == NULL && !p->a->stopping)
		peer_offer(p);
}

static struct peer *
peer_get(struct pp_agent *a, const char *name)
{
	struct peer *p = peer_find(a, name);

	if (p != NULL)
		return p;
	if (a->npeers >= MAX_PEERS || (p = calloc(1, sizeof(*p))) == NULL) {
		pp_warn(SUB, "too many peers; %s ignored", name);
		return NULL;
	}
	p->a = a;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->index = ++a->npeers;
	p->offerer = strcmp(a->cfg.name, name) < 0;	/* v1 glare rule */
	p->retry_ms = RETRY_MIN_MS;
	p->setup_ms = -1;
	p->state_since_ms = pp_now_ms();
	if (a->mode == PP_AGENT_CONNECT &&
	    (a->cfg.bind[0] == '\0' || strcmp(a->cfg.bind, "auto") == 0))
		snprintf(p->listen_host, sizeof(p->listen_host), "127.0.1.%u",
		    p->index);
	else
		snprintf(p->listen_host, sizeof(p->listen_host), "%s",
		    a->cfg.bind[0] && strcmp(a->cfg.bind, "auto") != 0 ?
		    a->cfg.bind : "0.0.0.0");
	uv_timer_init(a->loop, &p->retry);
	p->retry.data = p;
	uv_timer_init(a->loop, &p->probe);
	p->probe.data = p;
	uv_timer_init(a->loop, &p->restart);
	p->restart.data = p;
	p->next = a->peers;
	a->peers = p;
	return p;
}

/* Frees the tunnel, then the peer connection (tunnel.h's order). */
static void
peer_release(struct peer *p)
{
	pp_tun_free(p->tun);
	p->tun = NULL;
	pp_pc_free(p->pc);
	p->pc = NULL;
	uv_timer_stop(&p->restart);
	p->doomed = 0;
	p->awaiting_answer = 0;
	p->nlisteners = 0;
	p->identity[0] = '\0';		/* verified again on the next connection */
	set_state(p, PEER_IDLE);
}

static void
schedule_retry(struct peer *p)
{
	if (!p->offerer || !p->in_room || p->a->stopping)
		return;
	uv_timer_start(&p->retry, peer_retry_cb, p->retry_ms, 0);
	pp_info(SUB, "peer %s: next attempt in %u ms", p->name, p->retry_ms);
	p->retry_ms = p->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS :
	    p->retry_ms * 2;
}

static void
reaper_cb(uv_timer_t *h)
{
	struct pp_agent *a = h->data;

	for (struct peer *p = a->peers; p; p = p->next)
		if (p->doomed) {
			peer_release(p);
			schedule_retry(p);
		}
}

/* Ends the peer connection after the current callback returns. */
static void __attribute__((format(printf, 2, 3)))
peer_doom(struct peer *p, const char *fmt, ...)
{
	va_list ap;

	if (p->doomed)
		return;
	va_start(ap, fmt);
	vsnprintf(p->last_error, sizeof(p->last_error), fmt, ap);
	va_end(ap);
	pp_warn(SUB, "peer %s: %s", p->name, p->last_error);
	p->doomed = 1;
	uv_timer_start(&p->a->reaper, reaper_cb, 0, 0);
}

/* Bans the peer (name and key), records it, and cuts its connection. */
static void
peer_ban(struct peer *p, const char *reason, json_t *evidence, json_t *pcap)
{
	struct pp_agent *a = p->a;
	json_t *arr = json_array(), *ev;
	int id;

	if (evidence)
		json_array_append(arr, evidence);
	id = pp_bans_add(a->bans, p->name, p->identity, a->cfg.ban_seconds, reason,
	    arr, pcap);
	json_decref(arr);
	ev = json_pack("{s:s, s:s, s:i, s:i, s:s}", "peer", p->name, "key",
	    p->identity, "ban_id", id, "seconds", (int)a->cfg.ban_seconds,
	    "reason", reason);
	pp_bans_event(a->bans, "ban", ev);
	json_decref(ev);
	peer_doom(p, "banned for %u s: %s", a->cfg.ban_seconds, reason);
}

/* ---- IPS ---- */

static json_t *
eve_json(const struct pp_eve_event *ev)
{
	return json_pack("{s:s, s:s, s:s, s:i, s:s, s:i, s:s, s:I, s:i, s:s, "
	    "s:s, s:i, s:s}",
	    "eve_type", ev->type == PP_EVE_DROP ? "drop" : "alert",
	    "eve_timestamp", ev->timestamp,
	    "src_ip", ev->src_ip, "src_port", ev->src_port,
	    "dest_ip", ev->dest_ip, "dest_port", ev->dest_port,
	    "proto", ev->proto == IPPROTO_UDP ? "UDP" : "TCP",
	    "flow_id", (json_int_t)ev->flow_id,
	    "signature_id", (int)ev->signature_id, "signature", ev->signature,
	    "category", ev->category, "severity", ev->severity,
	    "action", ev->action == PP_EVE_BLOCKED ? "blocked" : "allowed");
}

/*
 * The cut connection's tap as STATE/evidence/<next ban id>.pcap; its
 * description for the ban record, or NULL when there is none.
 */
static json_t *
evidence_pcap(struct pp_agent *a, struct peer *p, const struct pp_tap *tap)
{
	struct pp_pcap_info info;
	char path[1400];
	int rc;

	if (tap == NULL)
		return NULL;
	if ((rc = pp_bans_evidence_path(a->bans, pp_bans_next_id(a->bans), path,
	    sizeof(path))) < 0 || (rc = pp_tap_write_pcap(tap, path, &info)) < 0) {
		pp_err(SUB, "peer %s: evidence pcap not written: %s", p->name,
		    pp_strerror(rc));
		return NULL;
	}
	pp_bans_evidence_prune(a->bans);
	pp_info(SUB, "peer %s: evidence %s (%u packets, %llu bytes, %llu of "
	    "%llu payload bytes%s%s)", p->name, path, info.packets,
	    (unsigned long long)info.file_bytes,
	    (unsigned long long)info.payload_bytes,
	    (unsigned long long)info.seen_bytes,
	    info.complete ? "" : "; older data dropped",
	    info.budget_limited ? ", the evidence budget for all connections "
	    "([ips] evidence_total_bytes) was spent" : "");
	return json_pack("{s:s, s:i, s:I, s:I, s:I, s:b}", "path", path,
	    "packets", (int)info.packets, "bytes", (json_int_t)info.file_bytes,
	    "payload_bytes", (json_int_t)info.payload_bytes,
	    "seen_bytes", (json_int_t)info.seen_bytes,
	    "complete", info.complete);
}

/*
 * An alert: which forwarded connection was it?  Our socket to the service
 * is one end of the 5-tuple (the source when the packet went to the
 * server).  That connection is cut at once and its peer banned.
 */
static void
ips_event(const struct pp_eve_event *ev, void *ctx)
{
	struct pp_agent *a = ctx;
	enum pp_tun_proto proto = ev->proto == IPPROTO_UDP ? PP_TUN_UDP : PP_TUN_TCP;
	uint16_t ports[2];
	int nports = 0;
	json_t *fields = eve_json(ev), *pcap = NULL;
	struct peer *hit = NULL;
	struct pp_tap *tap = NULL;

	const char *svc_ip[2];
	uint16_t svc_port[2];

	/* Our end of the service connection, and the service's (either may
	 * be the packet's source). */
	if (ev->to_server != 0) {
		ports[nports] = ev->src_port;
		svc_ip[nports] = ev->dest_ip;
		svc_port[nports++] = ev->dest_port;
	}
	if (ev->to_server != 1) {
		ports[nports] = ev->dest_port;
		svc_ip[nports] = ev->src_ip;
		svc_port[nports++] = ev->src_port;
	}
	if (!ev->has_alert || ev->signature_id == 0) {
		/* a drop no rule asked for (e.g. a memcap): nobody to blame */
		pp_info(SUB, "IPS dropped a packet without a rule (%s:%u -> %s:%u)",
		    ev->src_ip, ev->src_port, ev->dest_ip, ev->dest_port);
		json_decref(fields);
		return;
	}
	/* The reaction policy: [ips] react and react_severity.  An alert it
	 * only records still names its peer. */
	if ((ev->severity > 0 && (unsigned)ev->severity > a->cfg.ips_react_severity) ||
	    (a->cfg.ips_react_blocked_only && ev->action != PP_EVE_BLOCKED)) {
		for (struct peer *p = a->peers; p && !hit; p = p->next)
			for (int i = 0; i < nports && !hit; i++)
				if (p->tun && pp_tun_owns(p->tun, proto, ports[i],
				    svc_ip[i], svc_port[i]))
					hit = p;
		if (hit)
			json_object_set_new(fields, "peer",
			    json_string(hit->name));
		pp_bans_event(a->bans, ev->type == PP_EVE_DROP ? "drop" : "alert",
		    fields);
		json_decref(fields);
		return;
	}
	for (struct peer *p = a->peers; p && !hit; p = p->next)
		for (int i = 0; i < nports && !hit; i++)
			if (p->tun && !p->doomed && pp_tun_cut(p->tun, proto,
			    ports[i], svc_ip[i], svc_port[i], &tap))
				hit = p;
	if (hit) {
		json_object_set_new(fields, "peer", json_string(hit->name));
		if (ev->flow_id) {
			unsigned k = a->ncut++ % 16;

			a->cut_flows[k].flow = ev->flow_id;
			snprintf(a->cut_flows[k].name, sizeof(a->cut_flows[k].name),
			    "%s", hit->name);
		}
	} else if (ev->flow_id) {
		for (unsigned k = 0; k < 16; k++)
			if (a->cut_flows[k].flow == ev->flow_id)
				json_object_set_new(fields, "peer",
				    json_string(a->cut_flows[k].name));
	}
	pp_bans_event(a->bans, ev->type == PP_EVE_DROP ? "drop" : "alert", fields);
	if (hit) {
		char reason[320];

		pp_bans_event(a->bans, "cut", fields);
		snprintf(reason, sizeof(reason), "IPS: %.200s (sid %u)",
		    ev->signature, ev->signature_id);
		pcap = evidence_pcap(a, hit, tap);
		pp_tap_free(tap);
		peer_ban(hit, reason, fields, pcap);
		json_decref(pcap);
	} else if (ev->type == PP_EVE_ALERT) {
		pp_info(SUB, "IPS alert %u (%s) matches no open forwarded connection "
		    "(already cut)", ev->signature_id, ev->signature);
	}
	json_decref(fields);
}

static void
ips_state(enum pp_ips_state st, const char *reason, void *ctx)
{
	struct pp_agent *a = ctx;

	if (st == PP_IPS_READY && pp_ips_get_mode(a->ips) == PP_IPS_INLINE)
		pp_info(SUB, "IPS ready (inline): service traffic flows, inspected");
	else if (st == PP_IPS_READY)
		pp_warn(SUB, "IPS ready (IDS): service traffic flows, watched; an "
		    "attack reaches the service before the gateway cuts the peer");
	else
		pp_warn(SUB, "IPS %s: %s%s", pp_ips_state_name(st), reason ? reason : "",
		    pp_ips_serving(a->ips) ? "" : " (service traffic held: fail-closed)");
	if (a->ctl) {
		json_t *ev = json_pack("{s:s, s:s}", "state", pp_ips_state_name(st),
		    "reason", reason ? reason : "");

		pp_ctl_broadcast(a->ctl, "ips", ev);
		json_decref(ev);
	}
}

static int
ips_start(struct pp_agent *a)
{
	static const struct pp_ips_ops ops = { ips_state, ips_event };
	struct pp_ips_config ic;
	char instance[17], rules[1100], err[512];
	const char *suricata = a->cfg.ips_suricata[0] ? a->cfg.ips_suricata :
	    PP_SURI_DEFAULT_BIN;
	uint32_t h = 2166136261u;
	int rc;

	for (const char *c = a->cfg.name; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	for (const char *c = a->state_dir; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	snprintf(instance, sizeof(instance), "pp%08x", h);
	snprintf(a->ips_dir, sizeof(a->ips_dir), "%s/ips", a->state_dir);
	/* The configured rules, else the installed ones, else the source tree's
	 * (a build run in place). */
	if (a->cfg.ips_rules[0]) {
		snprintf(rules, sizeof(rules), "%s", a->cfg.ips_rules);
	} else {
		snprintf(rules, sizeof(rules), "%s/peerpipe.rules",
		    PP_RULES_INSTALL_DIR);
		if (access(rules, R_OK) != 0)
			snprintf(rules, sizeof(rules), "%s/peerpipe.rules",
			    PP_RULES_DIR);
	}
	for (size_t i = 0; i < a->cfg.nservices; i++) {
		snprintf(a->suri_svcs[i].addr, sizeof(a->suri_svcs[i].addr), "%.45s",
		    a->svc_host[i]);
		a->suri_svcs[i].port = a->cfg.services[i].target_port;
		a->suri_svcs[i].kind = PP_SURI_GENERIC;
	}
	/* The IPS is on by default for a gateway that shares services: a
	 * missing Suricata is an error, not a silent downgrade (fail-closed). */
	if (access(suricata, X_OK) != 0) {
		pp_err(SUB, "IPS: %s: %s. The gateway inspects the traffic to its "
		    "services with Suricata 7 ([ips] mode = %s): install it "
		    "(scripts/install-deps.sh ips), or set `[ips] mode = off` to "
		    "share the services UNINSPECTED", suricata,
		    strerror(errno), a->cfg.ips_mode == PP_CFG_IPS_AUTO ?
		    "auto, the default" : a->cfg.ips_mode == PP_CFG_IPS_INLINE ?
		    "inline" : "ids");
		return PP_ECONFIG;
	}
	memset(&ic, 0, sizeof(ic));
	ic.suricata = suricata;
	ic.instance = instance;
	ic.state_dir = a->ips_dir;
	ic.rules_file = rules;
	ic.et_dir = a->cfg.ips_et_open[0] ? a->cfg.ips_et_open : NULL;
	ic.et_drop_priority = (int)a->cfg.ips_et_drop_priority;
	ic.services = a->suri_svcs;
	ic.nservices = a->cfg.nservices;
	ic.ids_iface = a->cfg.ips_interface[0] ? a->cfg.ips_interface : NULL;
	ic.mode = a->cfg.ips_mode == PP_CFG_IPS_INLINE ? PP_IPS_INLINE :
	    a->cfg.ips_mode == PP_CFG_IPS_IDS ? PP_IPS_IDS : PP_IPS_AUTO;
	ic.mark = 0x5000u | (h & 0x0fffu);
	ic.mark_mask = 0xffffu;
	ic.queue_num = a->cfg.ips_queue ? (uint16_t)a->cfg.ips_queue :
	    (uint16_t)(1000 + h % 20000);
	ic.fail_open = a->cfg.ips_fail_open;
	if ((rc = pp_ips_new(a->loop, &ic, &ops, a, &a->ips, err, sizeof(err))) < 0 ||
	    (rc = pp_ips_start(a->ips, err, sizeof(err))) < 0) {
		pp_err(SUB, "IPS: %s", err);
		pp_ips_free(a->ips);
		a->ips = NULL;
		return rc;
	}
	if (a->cfg.ips_evidence_bytes > 0 && (a->tap_budget =
	    pp_tap_budget_new(a->cfg.ips_evidence_total_bytes)) == NULL) {
		pp_err(SUB, "IPS: no memory for the evidence budget");
		pp_ips_free(a->ips);
		a->ips = NULL;
		return -ENOMEM;
	}
	pp_info(SUB, "IPS instance %s (netfilter chains PP-%s-*), state %s",
	    instance, instance, a->ips_dir);
	if (pp_ips_get_mode(a->ips) == PP_IPS_IDS)
		pp_warn(SUB, "IPS in IDS mode (no CAP_NET_ADMIN or no NFQUEUE): "
		    "Suricata only watches, so an attack CAN reach the service "
		    "before the gateway cuts the peer");
	if (a->cfg.ips_fail_open)
		pp_warn(SUB, "IPS fail-open configured: while Suricata is down, "
		    "service traffic flows UNINSPECTED");
	return 0;
}

/* ---- signaling ---- */

static void
sig_send(struct pp_agent *a, const char *target, const char *type, json_t *data)
{
	json_t *m;
	int rc;

	if (data == NULL)
		return;
	m = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o}", "type",
	    "SDP_NEW_STATE", "room_uuid", a->cfg.room_uuid, "room_name",
	    a->cfg.room_name, "user_name", a->cfg.name, "target_user", target,
	    "sdp_type", type, "sdp_data", data);
	if (m == NULL)
		return;
	if ((rc = pp_sigc_send(a->sig, m)) < 0)
		pp_warn(SUB, "peer %s: %s not sent: %s", target, type,
		    pp_strerror(rc));
	json_decref(m);
}

/* ---- tunnel callbacks ---- */

static void
tun_ready(void *ctx, const struct pp_tun_settings *s)
{
	struct peer *p = ctx;

	if (s->features & PP_TUN_F_RESTART)
		pp_pc_allow_restart(p->pc);	/* a lost path is restarted */
	p->setup_ms = (int64_t)(pp_now_ms() - p->connect_started_ms);
	p->retry_ms = RETRY_MIN_MS;
	p->last_error[0] = '\0';
	set_state(p, PEER_CONNECTED);
	pp_info(SUB, "peer %s: connected in %lld ms", p->name,
	    (long long)p->setup_ms);
}

static void
tun_fatal(void *ctx, const char *reason)
{
	peer_doom(ctx, "%s", reason);
}

static void
tun_listen(void *ctx, uint16_t port, enum pp_tun_proto proto, const char *addr)
{
	struct peer *p = ctx;

	/* One line a user (and a test) can act on. */
	printf("peer %s port %u/%s -> %s\n", p->name, port,
	    pp_tun_proto_name(proto), addr);
	fflush(stdout);
}

static int policy_reload(struct pp_agent *a);
static void policy_applied(struct pp_agent *a, int changed);

/*
 * A verified key the policy does not know, whose AUTH proved an invite of
 * ours: check the proof, mark the invite as being redeemed (on disk), add
 * the key to the policy (validated whole, then written atomically), admit,
 * and only then mark the invite used.  Each step is durable before the
 * next, so a crash or a failed write never leaves a half-added peer or an
 * invite that admits twice (pp_invites_reconcile settles one cut short).
 * Without a proof: the admission's refusal stands.
 */
static int
invite_redeem(struct peer *p, const uint8_t *pub, char *why, size_t whylen)
{
	struct pp_agent *a = p->a;
	const uint8_t *id, *mac;
	const char *text;
	char group[PP_INVITE_GROUP_MAX + 1], idt[23], key[PP_ID_PUB_STRLEN + 1],
	    comment[64];
	size_t len;
	json_t *ev;
	int rc, changed;

	if (p->tun == NULL || a->invites == NULL ||
	    pp_tun_peer_invite(p->tun, &id, &mac, &text, &len) < 0)
		return PP_EDENIED;
	pp_invite_id_text(id, idt);
	pp_id_pub_format(pub, key, sizeof(key));
	if ((rc = pp_invites_check(a->invites, id, mac, text, len,
	    (int64_t)time(NULL), group, sizeof(group), why, whylen)) < 0)
		return rc;
	if ((rc = pp_invites_begin(a->invites, id, p->name, key)) < 0) {
		snprintf(why, whylen, "invite %s: cannot record its use in "
		    "%s/invites.json (%s): refused, so that it stays single use",
		    idt, a->state_dir, pp_strerror(rc));
		return rc;
	}
	snprintf(comment, sizeof(comment), "invite %s", idt);
	if ((rc = pp_access_add_peer(a->access, p->name, pub, group, comment,
	    &changed, why, whylen)) < 0) {
		(void)pp_invites_abort(a->invites, id);
		return rc;
	}
	policy_applied(a, changed);
	if ((rc = pp_access_admit(a->access, p->name, pub, why, whylen)) < 0) {
		/* the entry is in force, so is the invite's use */
		(void)pp_invites_consume(a->invites, id, (int64_t)time(NULL));
		return rc;
	}
	if (pp_invites_consume(a->invites, id, (int64_t)time(NULL)) < 0)
		pp_warn(SUB, "invite %s: used, but not saved as used; the next "
		    "start settles it from the policy", idt);
	pp_info(SUB, "peer %s: admitted by invite %s: [peer %s] key = %s%s%s "
	    "added to %s; the invite is used up", p->name, idt, p->name, key,
	    group[0] ? ", groups = " : "", group,
	    pp_access_policy_path(a->access));
	ev = json_pack("{s:s, s:s, s:s, s:s}", "peer", p->name, "key", key,
	    "invite", idt, "group", group);
	pp_bans_event(a->bans, "invite", ev);
	json_decref(ev);
	return 0;
}

static int
tun_identity(void *ctx, const uint8_t *pub, char *why, size_t whylen)
{
	struct peer *p = ctx;
	int rc;

	if (p->a->bans) {
		char key[PP_ID_PUB_STRLEN + 1] = "";

		if (pub)
			pp_id_pub_format(pub, key, sizeof(key));
		if ((rc = pp_bans_check(p->a->bans, p->name, key, why, whylen)) < 0)
			return rc;
	}
	if ((rc = pp_access_admit(p->a->access, p->name, pub, why, whylen)) < 0 &&
	    (pub == NULL || (rc = invite_redeem(p, pub, why, whylen)) < 0))
		return rc;
	if (pub && p->sig_identity[0]) {
		char key[PP_ID_PUB_STRLEN + 1];

		/* The end-to-end check decides; a server that reports another
		 * key for this name is worth a line. */
		pp_id_pub_format(pub, key, sizeof(key));
		if (strcmp(key, p->sig_identity) != 0)
			pp_warn(SUB, "peer %s: verified %s end to end, but the "
			    "signaling server says it signed in with %s", p->name,
			    key, p->sig_identity);
	}
	if (pub == NULL)
		p->identity[0] = '\0';
	else
		pp_id_pub_format(pub, p->identity, sizeof(p->identity));
	return 0;
}

static int
tun_allow(void *ctx, uint16_t port, enum pp_tun_proto proto)
{
	struct peer *p = ctx;

	return pp_access_allow(p->a->access, p->name,
	    p->tun ? pp_tun_peer_identity(p->tun) : NULL, port, proto);
}

static int
tun_serving(void *ctx)
{
	struct peer *p = ctx;

	return p->a->ips == NULL || pp_ips_serving(p->a->ips);
}

static int
tun_service_socket(void *ctx, int fd)
{
	struct peer *p = ctx;

	return p->a->ips && pp_ips_get_mode(p->a->ips) == PP_IPS_INLINE ?
	    pp_ips_mark_socket(p->a->ips, fd) : 0;
}

static void peer_ban(struct peer *p, const char *reason, json_t *evidence,
    json_t *pcap);

/* The Sentinel: refused requests for many ports is a port scan (T1046). */
static void
tun_refused(void *ctx, uint16_t port, enum pp_tun_proto proto,
    const char *reason)
{
	struct peer *p = ctx;
	struct pp_agent *a = p->a;
	char why[200];
	json_t *ev;

	(void)reason;
	/* Only refusals of an admitted peer count: before that anyone (a
	 * signaling server in the middle) could speak in its name. */
	if (p->state != PEER_CONNECTED)
		return;
	if (a->bans == NULL || p->doomed || !pp_bans_scan_note(a->bans, p->name,
	    port, proto == PP_TUN_UDP, pp_now_ms() / 1000, a->cfg.scan_ports,
	    a->cfg.scan_window))
		return;
	snprintf(why, sizeof(why), "port scan: %u distinct ports refused within "
	    "%u s (MITRE T1046)", a->cfg.scan_ports, a->cfg.scan_window);
	ev = json_pack("{s:s, s:s, s:i, s:s}", "peer", p->name, "reason", why,
	    "last_port", port, "technique", "T1046");
	pp_bans_event(a->bans, "scan", ev);
	peer_ban(p, why, ev, NULL);
	json_decref(ev);
}

static const struct pp_tun_ops tun_ops = { tun_ready, tun_fatal, tun_listen,
    tun_identity, tun_allow, tun_serving, tun_service_socket, tun_refused };

/* ---- peer connection callbacks ---- */

static void
pc_candidate(void *ctx, const char *cand, const char *mid, unsigned idx)
{
	struct peer *p = ctx;

	if (cand[0] == '\0')
		return;		/* v1 peers never signal end-of-candidates */
	sig_send(p->a, p->name, "candidate", json_pack("{s:s, s:s, s:i}",
	    "candidate", cand, "sdpMid", mid, "sdpMLineIndex", (int)idx));
}

/* Where a path that came back goes now. */
static void
log_path(struct peer *p, const char *reason)
{
	struct pp_pc_status st;

	pp_pc_get_status(p->pc, &st);
	if (!st.ice.have_pair)
		return;
	pp_info(SUB, "peer %s: path back (%s): %s %s:%u -> %s %s:%u, ICE "
	    "restarts %u, channels kept", p->name, reason ? reason : "",
	    pp_ice_cand_type_name(st.ice.pair.local_type),
	    st.ice.pair.local_addr, (unsigned)st.ice.pair.local_port,
	    pp_ice_cand_type_name(st.ice.pair.remote_type),
	    st.ice.pair.remote_addr, (unsigned)st.ice.pair.remote_port,
	    st.restarts);
}

static void
restart_cb(uv_timer_t *h)
{
	struct peer *p = h->data;
	struct pp_pc_status st;

	if (p->pc == NULL || p->doomed)
		return;
	pp_pc_get_status(p->pc, &st);
	if (st.state != PP_PC_DISCONNECTED)
		return;
	/* None yet (the peer was out of the room), unanswered (lost while
	 * signaling was down, say), or its checks failed; a peer out of the
	 * room gets it when it is back (member_seen). */
	if (p->in_room && (!st.restarting || p->awaiting_answer ||
	    st.ice.state == PP_ICE_FAILED))
		peer_restart(p);
	else
		uv_timer_start(&p->restart, restart_cb, RESTART_RETRY_MS, 0);
}

/*
 * The offerer's side of an ICE restart: a new offer for the same session,
 * with TURN credentials as they are now.  Retried while the path stays
 * lost; the peer connection's bound ends it (pc.h).
 */
static void
peer_restart(struct peer *p)
{
	char err[256], *sdp;
	size_t nturn = ice_turn_list(p->a);

	if (p->pc == NULL || p->doomed)
		return;
	if (pp_pc_set_turn(p->pc, p->a->ice_turn, nturn) < 0)
		pp_warn(SUB, "peer %s: ICE restart keeps the previous TURN "
		    "servers", p->name);
	if (pp_pc_restart(p->pc, &sdp, err, sizeof(err)) < 0) {
		pp_warn(SUB, "peer %s: cannot restart ICE: %s", p->name, err);
		return;
	}
	pp_info(SUB, "peer %s: ICE restart: new offer sent", p->name);
	p->awaiting_answer = 1;
	sig_send(p->a, p->name, "offer", json_string(sdp));
	free(sdp);
	uv_timer_start(&p->restart, restart_cb, RESTART_RETRY_MS, 0);
}

static void
pc_state(void *ctx, enum pp_pc_state st, const char *reason)
{
	struct peer *p = ctx;
	struct pp_pc_status pst;

	if (p->doomed)
		return;
	if (p->tun)
		pp_tun_on_pc_state(p->tun, st);
	switch (st) {
	case PP_PC_DISCONNECTED:
		set_state(p, PEER_DISCONNECTED);
		pp_pc_get_status(p->pc, &pst);
		pp_info(SUB, "peer %s: path lost (%s); %s", p->name,
		    reason ? reason : "", !pst.restart_ok ? "waiting for it to "
		    "come back" : p->offerer ? "restarting ICE" :
		    "waiting for the peer's ICE restart");
		/*
		 * The path may have died with our network (a new address, a
		 * NAT that forgot us): then so did the signaling connection,
		 * which the restart needs, and its own pings would take 20 s
		 * or more to tell.
		 */
		if (pst.restart_ok)
			(void)pp_sigc_check(p->a->sig, SIG_CHECK_MS);
		if (pst.restart_ok && p->offerer && p->in_room)
			peer_restart(p);
		else if (pst.restart_ok && p->offerer)	/* when it is back */
			uv_timer_start(&p->restart, restart_cb, RESTART_RETRY_MS,
			    0);
		break;
	case PP_PC_CONNECTED:
		if (p->state == PEER_DISCONNECTED) {
			set_state(p, p->tun ? PEER_CONNECTED : PEER_CONNECTING);
			log_path(p, reason);
		}
		uv_timer_stop(&p->restart);
		break;
	case PP_PC_FAILED:
		peer_doom(p, "peer connection failed: %s", reason ? reason : "");
		break;
	case PP_PC_CLOSED:
		peer_doom(p, "peer connection closed: %s", reason ? reason : "");
		break;
	default:
		break;
	}
}

static void
pc_channel(void *ctx, struct pp_dc *dc)
{
	struct peer *p = ctx;

	if (p->tun && !p->doomed)
		pp_tun_on_channel(p->tun, dc);
}

static const struct pp_pc_ops pc_ops = { pc_candidate, pc_state, pc_channel };

/* The config's relays, then the signaling server's while valid. */
static size_t
ice_turn_list(struct pp_agent *a)
{
	size_t n = 0;

	for (size_t i = 0; i < a->cfg.nturn && i < PP_ICE_MAX_TURN; i++)
		a->ice_turn[n++] = a->turn[i];
	if (pp_now_ms() < a->sig_turn_expires_ms)
		for (size_t i = 0; i < a->nsig_turn && n < PP_ICE_MAX_TURN; i++)
			a->ice_turn[n++] = a->sig_turn[i];
	return n;
}

static int
peer_make_pc(struct peer *p)
{
	struct pp_agent *a = p->a;
	struct pp_pc_config pcfg;
	struct pp_tun_config tcfg;
	struct pp_tun_forward fw[PP_CFG_MAX_FORWARDS];
	size_t nfw = 0;
	int rc;

	memset(&pcfg, 0, sizeof(pcfg));
	pcfg.gloop = a->gl;
	pcfg.cert = a->cert;
	pcfg.log_name = p->name;
	if (a->stun_host[0]) {
		pcfg.ice.stun_host = a->stun_host;
		pcfg.ice.stun_port = a->stun_port;
	}
	pcfg.ice.nturn = ice_turn_list(a);
	pcfg.ice.turn = a->ice_turn;
	for (size_t i = 0; i < a->cfg.naddrs; i++)
		a->addrs[i] = a->cfg.addrs[i];
	pcfg.ice.local_addrs = a->cfg.naddrs ? a->addrs : NULL;
	pcfg.ice.nlocal_addrs = a->cfg.naddrs;
	pcfg.ice.port_min = a->cfg.port_min;
	pcfg.ice.port_max = a->cfg.port_max;
	if ((rc = pp_pc_new(&pcfg, &pc_ops, p, &p->pc)) < 0) {
		snprintf(p->last_error, sizeof(p->last_error),
		    "cannot create a peer connection: %s", pp_strerror(rc));
		return rc;
	}

	memset(&tcfg, 0, sizeof(tcfg));
	tcfg.loop = a->loop;
	tcfg.local_name = a->cfg.name;
	tcfg.peer_name = p->name;
	tcfg.offerer = p->offerer;
	if (a->cfg.compression == PP_CFG_COMP_ADAPTIVE) {
		/* v1 peers get zstd; v2 peers agree on adaptive */
		tcfg.codec = PP_CODEC_ZSTD;
		tcfg.adaptive = 1;
	} else {
		tcfg.codec = (enum pp_tun_codec)a->cfg.compression;
	}
	tcfg.identity = a->id;
	tcfg.room_uuid = a->cfg.room_uuid;
	tcfg.local_fp = pp_dtls_cert_fingerprint_text(a->cert);
	if (a->has_invite && strcmp(p->name, a->invite.gateway) == 0) {
		tcfg.invite_id = a->invite.id;
		tcfg.invite_secret = a->invite.secret;
	}
	tcfg.unreliable = a->cfg.unreliable;
	tcfg.extended = a->cfg.extended;
	tcfg.services = a->services;
	tcfg.nservices = a->cfg.nservices;
	/* the IPS's evidence: each service connection's recent bytes */
	tcfg.tap_bytes = a->ips ? a->cfg.ips_evidence_bytes : 0;
	tcfg.tap_budget = a->tap_budget;
	/* [forward] entries for this peer add fixed listeners to the
	 * automatic ones ([consume] peers limits the automatic ones only). */
	for (size_t i = 0; i < a->cfg.nforwards; i++)
		if (strcmp(a->cfg.forwards[i].peer, p->name) == 0)
			fw[nfw++] = a->forwards[i];
	tcfg.forwards = nfw ? fw : NULL;
	tcfg.nforwards = nfw;
	if (consumes(a, p->name))
		tcfg.listen_host = p->listen_host;
	if ((rc = pp_tun_new(p->pc, &tcfg, &tun_ops, p, &p->tun)) < 0) {
		pp_pc_free(p->pc);
		p->pc = NULL;
		return rc;
	}
	p->connect_started_ms = pp_now_ms();
	p->attempts++;
	set_state(p, PEER_CONNECTING);
	return 0;
}

/* A banned peer gets no connection from us, and its offers no answer. */
static int
peer_banned(struct peer *p)
{
	char why[512];

	if (p->a->bans == NULL ||
	    pp_bans_check(p->a->bans, p->name, p->identity, why, sizeof(why)) == 0)
		return 0;
	snprintf(p->last_error, sizeof(p->last_error), "%.250s", why);
	pp_debug(SUB, "%s", why);
	return 1;
}

static void
peer_offer(struct peer *p)
{
	char err[256], *sdp;

	/* turn_kick() offers once the credentials are in (or not coming) */
	if (p->pc != NULL || peer_banned(p) || turn_hold(p->a) ||
	    peer_make_pc(p) < 0)
		return;
	if (pp_pc_create_offer(p->pc, &sdp, err, sizeof(err)) < 0) {
		peer_doom(p, "cannot make an offer: %s", err);
		return;
	}
	pp_info(SUB, "peer %s: offering a connection", p->name);
	p->awaiting_answer = 1;
	sig_send(p->a, p->name, "offer", json_string(sdp));
	free(sdp);
}

static void
on_offer(struct peer *p, const char *sdp, size_t len)
{
	char err[512], *answer;

	if (p->pc != NULL && !p->doomed) {
		/* An ICE restart of this connection keeps it (and its channels). */
		(void)pp_pc_set_turn(p->pc, p->a->ice_turn, ice_turn_list(p->a));
		if (pp_pc_set_remote_offer(p->pc, sdp, len, &answer, err,
		    sizeof(err)) == 0) {
			pp_info(SUB, "peer %s: ICE restart: answered", p->name);
			sig_send(p->a, p->name, "answer", json_string(answer));
			free(answer);
			return;
		}
		pp_debug(SUB, "peer %s: %s", p->name, err);
	}
	if (p->pc != NULL) {
		/* The peer started over (new process, or it gave up the path). */
		pp_info(SUB, "peer %s: new offer replaces the current connection",
		    p->name);
		peer_release(p);
	}
	uv_timer_stop(&p->retry);
	if (peer_banned(p) || peer_make_pc(p) < 0)
		return;
	if (pp_pc_set_remote_offer(p->pc, sdp, len, &answer, err, sizeof(err)) < 0) {
		pp_warn(SUB, "peer %s: offer refused: %s", p->name, err);
		snprintf(p->last_error, sizeof(p->last_error), "offer refused: %.200s",
		    err);
		peer_release(p);
		return;
	}
	sig_send(p->a, p->name, "answer", json_string(answer));
	free(answer);
}

static void
on_sdp_state(struct pp_agent *a, json_t *data)
{
	const char *type = json_string_value(json_object_get(data, "type"));
	const char *from = json_string_value(json_object_get(data, "from"));
	json_t *sdp = json_object_get(data, "sdp_data");
	struct peer *p;
	char err[512];

	if (type == NULL || from == NULL || (p = peer_get(a, from)) == NULL)
		return;
	p->in_room = 1;
	/*
	 * An offer may overtake the credentials we asked for right behind our
	 * join (the member we joined offers as soon as it hears of us).
	 * Answered now, our side would have no relay for this whole attempt:
	 * it and what trickles behind it wait for turn_kick().
	 */
	if (p->nheld > 0 || (strcmp(type, "offer") == 0 && turn_hold(a))) {
		if (p->nheld == HELD_MAX) {
			pp_warn(SUB, "peer %s: too many messages while waiting for "
			    "TURN credentials; one dropped", p->name);
			return;
		}
		if (p->nheld == 0)
			pp_debug(SUB, "peer %s: offer waits for our TURN "
			    "credentials", p->name);
		p->held[p->nheld++] = json_incref(data);
		return;
	}
	if (strcmp(type, "offer") == 0 && json_is_string(sdp)) {
		on_offer(p, json_string_value(sdp), json_string_length(sdp));
	} else if (strcmp(type, "answer") == 0 && json_is_string(sdp)) {
		if (p->pc == NULL || !p->awaiting_answer || p->doomed)
			return;
		p->awaiting_answer = 0;
		if (pp_pc_set_remote_answer(p->pc, json_string_value(sdp),
		    json_string_length(sdp), err, sizeof(err)) < 0)
			peer_doom(p, "answer refused: %s", err);
	} else if (strcmp(type, "candidate") == 0 && json_is_object(sdp)) {
		const char *c = json_string_value(json_object_get(sdp, "candidate"));

		if (p->pc && c && !p->doomed &&
		    pp_pc_add_remote_candidate(p->pc, c, err, sizeof(err)) < 0)
			pp_debug(SUB, "peer %s: candidate ignored: %s", p->name, err);
	}
}

static void
probe_cb(uv_timer_t *h)
{
	struct peer *p = h->data;
	struct pp_pc_status st;

	if (p->tun == NULL || p->doomed || pp_tun_ping_answered(p->tun))
		return;
	pp_pc_get_status(p->pc, &st);
	if (st.restart_ok) {
		/* Its network may have changed (its signaling broke with the
		 * path), or it is a new process: an ICE restart tells, as a
		 * new process answers it with a new session (then we start
		 * over).  The answering side leaves it to the offerer. */
		pp_info(SUB, "peer %s: rejoined the room and its old connection "
		    "does not answer: %s", p->name, p->offerer ?
		    "restarting ICE" : "waiting for its ICE restart");
		if (p->offerer)
			peer_restart(p);
		return;
	}
	peer_doom(p, "rejoined the room and its old connection does not "
	    "answer: starting over");
}

/*
 * A member (re)joined.  If we still have a connection with it, either its
 * signaling dropped (server restart: the connection is fine) or it is a
 * new process (the connection is dead but may not have failed yet).  A v2
 * peer is asked over the tunnel; a connection that is not up is replaced;
 * a v1 connection that is up is kept until it fails by itself.
 */
static void
member_seen(struct pp_agent *a, const char *name, int fresh)
{
	struct peer *p;

	if (strcmp(name, a->cfg.name) == 0 || (p = peer_get(a, name)) == NULL)
		return;
	p->in_room = 1;
	if (fresh && p->pc != NULL && !p->doomed) {
		struct pp_pc_status st;

		pp_pc_get_status(p->pc, &st);
		if (p->state == PEER_CONNECTED && pp_tun_ping(p->tun) == 0)
			uv_timer_start(&p->probe, probe_cb, PROBE_MS, 0);
		else if (p->state == PEER_DISCONNECTED && st.restart_ok) {
			/* Its signaling broke with the path: restart now that
			 * offers reach it (a new process answers with a new
			 * session, and we start over then). */
			if (p->offerer)
				peer_restart(p);
		} else if (p->state != PEER_CONNECTED && p->offerer)
			peer_release(p);
	}
	if (p->offerer && p->pc == NULL && !p->doomed) {
		p->retry_ms = RETRY_MIN_MS;
		uv_timer_stop(&p->retry);
		peer_offer(p);
	}
}

/* ---- TURN credentials from signaling (v2) ---- */

static int
turn_hold(const struct pp_agent *a)
{
	return a->turn_waiting && pp_now_ms() >= a->sig_turn_expires_ms;
}

static void
drop_held(struct peer *p)
{
	for (unsigned i = 0; i < p->nheld; i++)
		json_decref(p->held[i]);
	p->nheld = 0;
}

/* Answers and offers what waited for the credentials. */
static void
turn_kick(struct pp_agent *a)
{
	for (struct peer *p = a->peers; p; p = p->next) {
		json_t *held[HELD_MAX];
		unsigned n = p->nheld;

		if (n == 0)
			continue;
		memcpy(held, p->held, n * sizeof(held[0]));
		p->nheld = 0;
		for (unsigned i = 0; i < n; i++) {
			if (!a->stopping)
				on_sdp_state(a, held[i]);
			json_decref(held[i]);
		}
	}
	for (struct peer *p = a->peers; p; p = p->next)
		if (p->in_room && p->offerer && p->pc == NULL && !p->doomed &&
		    !uv_is_active((uv_handle_t *)&p->retry))
			peer_offer(p);
}

static void turn_timer_cb(uv_timer_t *h);

static void
turn_request(struct pp_agent *a)
{
	json_t *m;

	if (!a->cfg.turn_from_signaling || a->stopping)
		return;
	m = json_pack("{s:s}", "type", "TURN_CREDENTIALS");
	if (m && pp_sigc_send(a->sig, m) == 0) {
		a->turn_waiting = 1;
		uv_timer_start(&a->turn_timer, turn_timer_cb, TURN_WAIT_MS, 0);
	}
	json_decref(m);
}

static void
turn_timer_cb(uv_timer_t *h)
{
	struct pp_agent *a = h->data;

	if (a->turn_waiting) {
		a->turn_waiting = 0;
		pp_warn(SUB, "no TURN credentials from the signaling server after "
		    "%d ms; connecting without its relays", TURN_WAIT_MS);
		turn_kick(a);
	} else if (pp_sigc_connected(a->sig) && a->in_room) {
		turn_request(a);	/* refresh before they expire */
	}
}

static void
turn_unavailable(struct pp_agent *a, const char *why)
{
	a->turn_waiting = 0;
	uv_timer_stop(&a->turn_timer);
	if (!a->turn_unavailable_logged)
		pp_warn(SUB, "the signaling server gives no TURN credentials (%s): "
		    "only the [ice] turn relays are used; remove "
		    "turn_from_signaling or configure the server's "
		    "--turn-secret-file", why);
	a->turn_unavailable_logged = 1;
	turn_kick(a);
}

/* {"username", "password", "ttl", "uris": [...]}: checked before use. */
static void
on_turn_credentials(struct pp_agent *a, json_t *data)
{
	const char *user = json_string_value(json_object_get(data, "username"));
	const char *pass = json_string_value(json_object_get(data, "password"));
	json_t *ttl = json_object_get(data, "ttl"), *uris, *u;
	uint64_t refresh;
	size_t i, n = 0;

	if (!a->turn_waiting && !a->cfg.turn_from_signaling)
		return;
	uris = json_object_get(data, "uris");
	if (user == NULL || pass == NULL || !json_is_integer(ttl) ||
	    json_integer_value(ttl) < 60 || !json_is_array(uris) ||
	    strlen(user) >= sizeof(a->sig_turn_cfg[0].username) ||
	    strlen(pass) >= sizeof(a->sig_turn_cfg[0].password)) {
		turn_unavailable(a, "malformed TURN_CREDENTIALS");
		return;
	}
	json_array_foreach(uris, i, u) {
		struct pp_cfg_turn *c = &a->sig_turn_cfg[n];

		if (n == PP_ICE_MAX_TURN || !json_is_string(u) ||
		    json_string_length(u) >= sizeof(c->url))
			continue;
		snprintf(c->url, sizeof(c->url), "%s", json_string_value(u));
		snprintf(c->username, sizeof(c->username), "%s", user);
		snprintf(c->password, sizeof(c->password), "%s", pass);
		if (turn_parse(c, &a->sig_turn[n], a->sig_turn_host[n],
		    sizeof(a->sig_turn_host[n])) < 0) {
			pp_warn(SUB, "TURN URI from the signaling server ignored: "
			    "%.100s", c->url);
			continue;
		}
		n++;
	}
	for (i = n; i < PP_ICE_MAX_TURN; i++)
		OPENSSL_cleanse(&a->sig_turn_cfg[i], sizeof(a->sig_turn_cfg[i]));
	a->nsig_turn = n;
	a->sig_turn_expires_ms = pp_now_ms() +
	    (uint64_t)json_integer_value(ttl) * 1000;
	a->turn_waiting = 0;
	refresh = (uint64_t)json_integer_value(ttl) * 800;
	uv_timer_start(&a->turn_timer, turn_timer_cb, refresh, 0);
	pp_info(SUB, "TURN credentials from signaling: %zu relay(s), valid %lld s "
	    "(refreshed in %llu s)", n, (long long)json_integer_value(ttl),
	    (unsigned long long)(refresh / 1000));
	turn_kick(a);
}

/* Joins, signed over the server's challenge when nonce is given (v2). */
static void
join_room(struct pp_agent *a, const unsigned char *nonce)
{
	json_t *m = pp_sig_join_build(a->cfg.room_uuid, a->cfg.room_name,
	    a->cfg.name, nonce ? a->id : NULL, nonce);

	a->sig_authed = nonce != NULL;
	if (m == NULL || pp_sigc_send(a->sig, m) < 0)
		pp_warn(SUB, "cannot ask to join the room");
	json_decref(m);
	/* Right behind the join.  The answer may still come after an offer
	 * from a member (it offers as soon as it hears of us): that offer
	 * waits for it (on_sdp_state). */
	turn_request(a);
}

static void rejoin_cb(uv_timer_t *h);

/*
 * v2: ask the server for a challenge, and join with it signed, so that our
 * name in the room is bound to our key (docs/signaling.md).  A v1 server
 * does not know the request: we join unsigned then.
 */
static void
join(struct pp_agent *a)
{
	json_t *m = json_pack("{s:s}", "type", "AUTH_CHALLENGE");

	a->auth_waiting = m && pp_sigc_send(a->sig, m) == 0;
	json_decref(m);
	if (!a->auth_waiting)
		join_room(a, NULL);
	else	/* every request gets a reply; this bounds a server that errs */
		uv_timer_start(&a->rejoin, rejoin_cb, AUTH_WAIT_MS, 0);
}

static void
on_auth_challenge(struct pp_agent *a, json_t *data)
{
	json_t *n = json_object_get(data, "nonce");
	unsigned char nonce[PP_SIG_NONCE_LEN];

	if (!a->auth_waiting)
		return;
	a->auth_waiting = 0;
	uv_timer_stop(&a->rejoin);
	if (!json_is_string(n) || pp_b64url_decode(json_string_value(n),
	    json_string_length(n), nonce, sizeof(nonce)) < 0) {
		pp_warn(SUB, "malformed AUTH_CHALLENGE from the signaling server; "
		    "joining without signing");
		join_room(a, NULL);
		return;
	}
	join_room(a, nonce);
}

static void
rejoin_cb(uv_timer_t *h)
{
	struct pp_agent *a = h->data;

	if (a->auth_waiting && pp_sigc_connected(a->sig) && !a->stopping) {
		a->auth_waiting = 0;
		pp_warn(SUB, "no answer to AUTH_CHALLENGE from the signaling "
		    "server in %d ms; joining without signing", AUTH_WAIT_MS);
		join_room(a, NULL);
		return;
	}
	if (pp_sigc_connected(a->sig) && !a->in_room && !a->stopping)
		join(a);
}

/* The key the signaling server says a member proved (v2 presence). */
static void
member_identity(struct pp_agent *a, const char *name, json_t *key)
{
	struct peer *p = peer_find(a, name);

	if (p != NULL)
		snprintf(p->sig_identity, sizeof(p->sig_identity), "%s",
		    json_is_string(key) && json_string_length(key) ==
		    PP_ID_PUB_STRLEN ? json_string_value(key) : "");
}

static void
sig_connected(void *ctx)
{
	struct pp_agent *a = ctx;

	a->sig_connects++;
	pp_info(SUB, "signaling connected; joining room %s", a->cfg.room_name);
	join(a);
}

static void
sig_disconnected(void *ctx, const char *why)
{
	struct pp_agent *a = ctx;

	a->in_room = 0;
	a->auth_waiting = 0;
	/* Offers held for TURN credentials are stale by the next join. */
	for (struct peer *p = a->peers; p; p = p->next)
		drop_held(p);
	pp_warn(SUB, "signaling lost (%s); peer connections stay up, "
	    "reconnecting", why ? why : "");
}

static void
sig_message(void *ctx, const char *type, json_t *data)
{
	struct pp_agent *a = ctx;
	json_t *v;
	size_t i;

	if (strcmp(type, "ROOM_JOINED") == 0 || strcmp(type, "ROOM_CREATED") == 0) {
		a->in_room = 1;
		pp_info(SUB, "in room %s as %s%s", a->cfg.room_name, a->cfg.name,
		    a->sig_authed ? " (signed in with our identity key)" : "");
		json_array_foreach(json_object_get(data, "room_members"), i, v)
			if (json_is_string(v)) {
				member_seen(a, json_string_value(v), 0);
				member_identity(a, json_string_value(v),
				    json_object_get(json_object_get(data,
				    "identities"), json_string_value(v)));
			}
	} else if (strcmp(type, "ROOM_NEW_MEMBER") == 0) {
		v = json_object_get(data, "name");
		if (json_is_string(v)) {
			member_seen(a, json_string_value(v), 1);
			member_identity(a, json_string_value(v),
			    json_object_get(data, "identity"));
		}
	} else if (strcmp(type, "AUTH_CHALLENGE") == 0) {
		on_auth_challenge(a, data);
	} else if (strcmp(type, "ROOM_MEMBER_LEFT") == 0) {
		struct peer *p;

		v = json_object_get(data, "name");
		if (json_is_string(v) &&
		    (p = peer_find(a, json_string_value(v))) != NULL) {
			/* Its tunnel may well be fine (its signaling dropped). */
			p->in_room = 0;
			drop_held(p);
			uv_timer_stop(&p->retry);
		}
	} else if (strcmp(type, "SDP_STATE") == 0) {
		on_sdp_state(a, data);
	} else if (strcmp(type, "TURN_CREDENTIALS") == 0) {
		on_turn_credentials(a, data);
	} else if (strcmp(type, "FAILED") == 0) {
		const char *why = json_string_value(json_object_get(data, "reason"));

		/* a v1 server does not know AUTH_CHALLENGE: join unsigned */
		if (a->auth_waiting && why && strcmp(why, "Unknown message") == 0) {
			a->auth_waiting = 0;
			uv_timer_stop(&a->rejoin);
			if (!a->sig_v1_logged)
				pp_warn(SUB, "the signaling server does not "
				    "authenticate (protocol v1): our name in the "
				    "room is not bound to our key there");
			a->sig_v1_logged = 1;
			join_room(a, NULL);
			return;
		}
		/*
		 * The server cannot bind one more name (its table is full of
		 * live rooms, or this connection made too many lately): our
		 * signed join would be refused forever.  Unsigned, the name is
		 * not bound to our key there, but the tunnel still proves it
		 * end to end.  A server that requires signing refuses that
		 * too, and the rejoin timer tries signing again later.
		 */
		if (why && !a->in_room && a->sig_authed &&
		    strcmp(why, PP_SIG_R_TOO_MANY_KEYS) == 0) {
			pp_warn(SUB, "the signaling server cannot bind our name %s "
			    "to our key (%s): joining without signing; peers still "
			    "verify our identity end to end", a->cfg.name, why);
			join_room(a, NULL);
			return;
		}
		if (why && !a->in_room && (strcmp(why, PP_SIG_R_NAME_BOUND) == 0 ||
		    strcmp(why, PP_SIG_R_AUTH_REQUIRED) == 0 ||
		    strcmp(why, PP_SIG_R_AUTH_FAILED) == 0))
			pp_warn(SUB, "the signaling server refused our join as %s: "
			    "%s%s", a->cfg.name, why, strcmp(why,
			    PP_SIG_R_NAME_BOUND) == 0 ? " (another device, or an "
			    "earlier identity key, holds this name in the room: "
			    "use another [agent] name, or the key in STATE/"
			    "identity.pem that first joined)" : "");
		/* a v1 server does not know the request; a v2 one may have no secret */
		if (a->turn_waiting && why && (strcmp(why, "Unknown message") == 0 ||
		    strcmp(why, "TURN credentials are not configured on this "
		    "server") == 0)) {
			turn_unavailable(a, why);
			return;
		}
		/* our join failed, so did the request behind it: asked again on rejoin */
		if (a->turn_waiting && !a->in_room && why &&
		    strcmp(why, "Conflict") == 0) {
			a->turn_waiting = 0;
			uv_timer_stop(&a->turn_timer);
		}

		pp_warn(SUB, "signaling server refused a request: %s", why ? why : "?");
		/* Our previous session may not be gone yet: try again. */
		if (!a->in_room)
			uv_timer_start(&a->rejoin, rejoin_cb, REJOIN_MS, 0);
	}
}

/* ---- control API ---- */

/* The listeners as they are now (they follow the peer's PORTS). */
static void
peer_listeners(struct peer *p)
{
	p->nlisteners = p->tun ? pp_tun_listeners(p->tun, p->listeners,
	    PP_TUN_MAX_PORTS) : 0;
}

static json_t *
peer_json(struct peer *p)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:b, s:I}", "name", p->name,
	    "state", state_name(p->state), "in_room", p->in_room, "offerer",
	    p->offerer, "since_ms", (json_int_t)p->state_since_ms);
	json_t *ls = json_array();

	if (o == NULL || ls == NULL) {
		json_decref(o);
		json_decref(ls);
		return NULL;
	}
	json_object_set_new(o, "setup_ms", json_integer(p->setup_ms));
	json_object_set_new(o, "attempts", json_integer(p->attempts));
	json_object_set_new(o, "last_error", json_string(p->last_error));
	json_object_set_new(o, "identity", p->identity[0] ?
	    json_string(p->identity) : json_null());
	json_object_set_new(o, "signaling_identity", p->sig_identity[0] ?
	    json_string(p->sig_identity) : json_null());
	if (p->pc) {
		struct pp_pc_status st;

		pp_pc_get_status(p->pc, &st);
		json_object_set_new(o, "pc_state",
		    json_string(pp_pc_state_name(st.state)));
		if (st.ice.have_pair) {
			json_object_set_new(o, "path", json_pack(
			    "{s:s, s:s, s:s, s:s, s:i, s:s, s:i, s:i}",
			    "type", st.ice.pair.remote_type == PP_ICE_CAND_RELAY ||
			    st.ice.pair.local_type == PP_ICE_CAND_RELAY ?
			    "relay" : "direct",
			    "local_type", pp_ice_cand_type_name(st.ice.pair.local_type),
			    "remote_type", pp_ice_cand_type_name(st.ice.pair.remote_type),
			    "local_addr", st.ice.pair.local_addr,
			    "local_port", st.ice.pair.local_port,
			    "remote_addr", st.ice.pair.remote_addr,
			    "remote_port", st.ice.pair.remote_port,
			    "rtt_ms", st.ice.rtt_ms));
		}
		json_object_set_new(o, "ice_restart", json_pack(
		    "{s:b, s:b, s:i, s:i, s:I}", "supported", st.restart_ok,
		    "in_progress", st.restarting, "attempts", (int)st.ice.restarts,
		    "completed", (int)st.restarts, "last_recovery_ms",
		    (json_int_t)st.last_recovery_ms));
	}
	if (p->tun) {
		struct pp_tun_stats ts;
		json_t *offered = json_array();

		pp_tun_get_stats(p->tun, &ts);
		for (size_t i = 0; i < ts.npeer_ports; i++)
			json_array_append_new(offered, json_pack("{s:i, s:s}",
			    "port", ts.peer_ports[i].port, "proto",
			    pp_tun_proto_name(ts.peer_ports[i].proto)));
		json_object_set_new(o, "tunnel", json_pack(
		    "{s:b, s:i, s:s, s:b, s:b, s:b, s:b}", "ready", ts.ready,
		    "version", ts.settings.version, "compression",
		    ts.settings.adaptive ? "adaptive" :
		    pp_tun_codec_name(ts.settings.codec), "stream",
		    ts.settings.stream, "unreliable", ts.settings.unreliable,
		    "flow", ts.settings.flow, "extended", ts.settings.extended));
		json_object_set_new(o, "offers", offered);
		json_object_set_new(o, "channels", json_integer(ts.proxies));
		json_object_set_new(o, "connections_total",
		    json_integer((json_int_t)ts.proxies_total));
		json_object_set_new(o, "bytes_in", json_integer((json_int_t)ts.bytes_in));
		json_object_set_new(o, "bytes_out",
		    json_integer((json_int_t)ts.bytes_out));
		json_object_set_new(o, "wire_in", json_integer((json_int_t)ts.wire_in));
		json_object_set_new(o, "wire_out", json_integer((json_int_t)ts.wire_out));
		json_object_set_new(o, "refused", json_integer((json_int_t)ts.refused));
		json_object_set_new(o, "udp_dropped",
		    json_integer((json_int_t)ts.udp_dropped));
	}
	peer_listeners(p);
	for (size_t i = 0; i < p->nlisteners; i++)
		json_array_append_new(ls, json_pack("{s:i, s:s, s:s}", "port",
		    p->listeners[i].port, "proto",
		    pp_tun_proto_name(p->listeners[i].proto), "addr",
		    p->listeners[i].addr));
	json_object_set_new(o, "listeners", ls);
	return o;
}

static json_t *
peers_json(struct pp_agent *a)
{
	json_t *arr = json_array();

	for (struct peer *p = a->peers; p; p = p->next)
		json_array_append_new(arr, peer_json(p));
	return arr;
}

static json_t *
services_json(struct pp_agent *a)
{
	json_t *ours = json_array(), *theirs = json_array();

	for (size_t i = 0; i < a->cfg.nservices; i++) {
		const struct pp_cfg_service *s = &a->cfg.services[i];
		char target[300];

		snprintf(target, sizeof(target), strchr(s->host, ':') ?
		    "[%s]:%u" : "%s:%u", s->host, s->target_port);
		json_array_append_new(ours, json_pack("{s:s, s:i, s:s, s:s}",
		    "name", s->name, "port", s->port, "proto",
		    pp_tun_proto_name(s->proto), "target", target));
	}
	for (struct peer *p = a->peers; p; p = p->next)
		for (size_t i = 0; peer_listeners(p), i < p->nlisteners; i++)
			json_array_append_new(theirs, json_pack(
			    "{s:s, s:i, s:s, s:s}", "peer", p->name, "port",
			    p->listeners[i].port, "proto",
			    pp_tun_proto_name(p->listeners[i].proto), "local",
			    p->listeners[i].addr));
	return json_pack("{s:o, s:o}", "shared", ours, "consumed", theirs);
}

json_t *
pp_agent_status(struct pp_agent *a)
{
	uint64_t now = pp_now_ms();
	json_t *st = json_pack("{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:b, s:b, s:I}, "
	    "s:I, s:o, s:o}",
	    "name", a->cfg.name, "identity", a->id_text,
	    "mode", a->mode == PP_AGENT_GATEWAY ? "gateway" : "connect",
	    "room", "name", a->cfg.room_name, "uuid", a->cfg.room_uuid,
	    "signaling", "url", a->cfg.url, "connected",
	    pp_sigc_connected(a->sig), "in_room", a->in_room, "connects",
	    (json_int_t)a->sig_connects,
	    "uptime_s", (json_int_t)((pp_now_ms() - a->started_ms) / 1000),
	    "peers", peers_json(a),
	    "services", services_json(a));

	if (st)
		json_object_set_new(json_object_get(st, "signaling"),
		    "authenticated", json_boolean(a->in_room && a->sig_authed));
	/* A gateway's inspection and its security events (docs/ips.md). */
	if (st && a->ips)
		json_object_set_new(st, "ips", json_pack("{s:s, s:s, s:b}",
		    "mode", pp_ips_get_mode(a->ips) == PP_IPS_INLINE ? "inline" :
		    "ids", "state", pp_ips_state_name(pp_ips_get_state(a->ips)),
		    "serving", pp_ips_serving(a->ips)));
	if (st && a->bans)
		json_object_set_new(st, "security", pp_bans_security(a->bans));
	if (st && a->cfg.turn_from_signaling)
		json_object_set_new(json_object_get(st, "signaling"), "turn",
		    json_pack("{s:i, s:I}", "relays", now < a->sig_turn_expires_ms ?
		    (int)a->nsig_turn : 0, "expires_in_s",
		    (json_int_t)(now < a->sig_turn_expires_ms ?
		    (a->sig_turn_expires_ms - now) / 1000 : 0)));
	return st;
}

static int
group_name_ok(const char *g)
{
	size_t n = strlen(g);

	if (n < 1 || n > PP_INVITE_GROUP_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((g[i] >= 'a' && g[i] <= 'z') || (g[i] >= 'A' && g[i] <= 'Z') ||
		    (g[i] >= '0' && g[i] <= '9') || g[i] == '-' || g[i] == '_' ||
		    g[i] == '.'))
			return 0;
	return 1;
}

/* `peerpipe invite`: {ttl, group, url} -> {token, id, expires, ...}. */
static json_t *
invite_create(struct pp_agent *a, json_t *args, char *err, size_t errlen)
{
	json_t *jttl = json_object_get(args, "ttl");
	const char *group = json_string_value(json_object_get(args, "group"));
	const char *url = json_string_value(json_object_get(args, "url"));
	char token[PP_INVITE_TEXT_MAX], idt[23];
	struct pp_invite inv;
	json_int_t ttl = PP_INVITE_TTL_DEFAULT;
	json_t *r;
	int rc;

	if (!pp_access_has_policy(a->access)) {
		snprintf(err, errlen, "this agent has no [agent] policy: an invite "
		    "adds the new device's key to the policy, and without one "
		    "every peer with an identity is admitted on first contact");
		return NULL;
	}
	if (jttl != NULL && (!json_is_integer(jttl) || (ttl =
	    json_integer_value(jttl)) < 1 || ttl > PP_INVITE_TTL_MAX)) {
		snprintf(err, errlen, "ttl: give seconds from 1 to %d",
		    PP_INVITE_TTL_MAX);
		return NULL;
	}
	if (group == NULL)
		group = "";
	if (group[0] && !group_name_ok(group)) {
		snprintf(err, errlen, "group \"%.80s\": use 1-63 letters, digits, "
		    "'-', '_' or '.' (a group of the policy)", group);
		return NULL;
	}
	if (url == NULL)
		url = a->cfg.url;
	if (strlen(url) > PP_INVITE_URL_MAX || (strncmp(url, "wss://", 6) != 0 &&
	    strncmp(url, "ws://", 5) != 0) || strpbrk(url, " \t\r\n") != NULL) {
		snprintf(err, errlen, "url \"%.80s\": give the signaling server as "
		    "the new device reaches it, wss://HOST:PORT/ws", url);
		return NULL;
	}
	memset(&inv, 0, sizeof(inv));
	snprintf(inv.gateway, sizeof(inv.gateway), "%s", a->cfg.name);
	pp_id_public(a->id, inv.gateway_key);
	snprintf(inv.room_name, sizeof(inv.room_name), "%s", a->cfg.room_name);
	snprintf(inv.room_uuid, sizeof(inv.room_uuid), "%s", a->cfg.room_uuid);
	snprintf(inv.url, sizeof(inv.url), "%s", url);
	if ((rc = pp_invites_create(a->invites, &inv, (unsigned)ttl, group,
	    (int64_t)time(NULL))) < 0 ||
	    (rc = pp_invite_format(&inv, token, sizeof(token))) < 0) {
		OPENSSL_cleanse(&inv, sizeof(inv));
		snprintf(err, errlen, "cannot make an invite: %s%s", pp_strerror(rc),
		    rc == PP_ELIMIT ? " (too many unexpired invites)" : "");
		return NULL;
	}
	pp_invite_id_text(inv.id, idt);
	pp_info(SUB, "invite %s made: single use, expires in %lld s%s%s", idt,
	    (long long)ttl, group[0] ? ", group " : "", group);
	r = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:s}", "token", token,
	    "id", idt, "expires", (json_int_t)inv.expires, "group", group,
	    "gateway", inv.gateway, "room", inv.room_name, "url", inv.url);
	OPENSSL_cleanse(token, sizeof(token));
	OPENSSL_cleanse(&inv, sizeof(inv));
	return r;
}

static json_t *
ctl_handle(void *ctx, const char *cmd, json_t *args, char *err, size_t errlen)
{
	struct pp_agent *a = ctx;

	(void)args;
	if (strcmp(cmd, "status") == 0)
		return pp_agent_status(a);
	if (strcmp(cmd, "peers") == 0)
		return peers_json(a);
	if (strcmp(cmd, "services") == 0)
		return services_json(a);
	if (strcmp(cmd, "bans") == 0) {
		json_t *show = json_object_get(args, "show");
		json_t *r;

		if (json_is_integer(show)) {
			json_t *pcap;

			if ((r = pp_bans_get(a->bans, (int)json_integer_value(show))) == NULL)
				snprintf(err, errlen, "no ban %lld (peerpipe bans lists "
				    "them)", (long long)json_integer_value(show));
			/* is the evidence file still there? */
			if (r && json_is_object(pcap = json_object_get(r, "pcap")))
				json_object_set_new(pcap, "present", json_boolean(
				    json_is_string(json_object_get(pcap, "path")) &&
				    access(json_string_value(json_object_get(pcap,
				    "path")), R_OK) == 0));
			return r;
		}
		return pp_bans_list(a->bans, 0);
	}
	if (strcmp(cmd, "unban") == 0) {
		const char *who = json_string_value(json_object_get(args, "target"));
		int n;

		if (who == NULL) {
			snprintf(err, errlen, "unban needs a peer name or a ban id");
			return NULL;
		}
		if ((n = pp_bans_remove(a->bans, who)) < 0) {
			snprintf(err, errlen, "no ban for \"%s\" (peerpipe bans lists "
			    "them)", who);
			return NULL;
		}
		pp_info(SUB, "unbanned %s (%d ban(s) lifted)", who, n);
		/* it may come back now: offer if it is ours to offer */
		for (struct peer *p = a->peers; p; p = p->next)
			if (strcmp(p->name, who) == 0 && p->offerer && p->in_room &&
			    p->pc == NULL)
				peer_offer(p);
		return json_pack("{s:i}", "lifted", n);
	}
	if (strcmp(cmd, "invite") == 0)
		return invite_create(a, args, err, errlen);
	if (strcmp(cmd, "invites") == 0) {
		const char *id = json_string_value(json_object_get(args, "revoke"));

		if (id == NULL)
			return pp_invites_list(a->invites, (int64_t)time(NULL));
		if (pp_invites_revoke(a->invites, id, err, errlen) < 0)
			return NULL;
		pp_info(SUB, "invite %s revoked", id);
		return json_pack("{s:s}", "revoked", id);
	}
	if (strcmp(cmd, "reload") == 0) {
		if (pp_agent_reload(a) < 0) {
			snprintf(err, errlen, "the policy has errors (see the agent's "
			    "log); the previous one stays in force");
			return NULL;
		}
		return json_pack("{s:b}", "reloaded", 1);
	}
	snprintf(err, errlen, "unknown command \"%s\" (status, peers, services, "
	    "reload, invite, invites, bans, unban, subscribe)", cmd);
	return NULL;
}

static void
ips_reloaded(int status, const char *reason, void *ctx)
{
	(void)ctx;
	if (status < 0)
		pp_warn(SUB, "IPS rules not reloaded: %s", reason ? reason : "");
	else
		pp_info(SUB, "IPS rules reloaded%s%s", reason ? ": " : "",
		    reason ? reason : "");
}

int
pp_agent_reload(struct pp_agent *a)
{
	/* The rule files may have changed too (e.g. suricata-update). */
	if (a->ips && pp_ips_reload(a->ips, ips_reloaded, a) < 0)
		pp_warn(SUB, "IPS rules not reloaded now: Suricata is not ready");
	return policy_reload(a);
}

/* Every connected peer decided again: those no longer admitted are cut,
 * the rest re-offered (closing forwarded connections now denied). */
static void
redecide_peers(struct pp_agent *a)
{
	for (struct peer *p = a->peers; p; p = p->next) {
		char why[512];

		if (p->tun == NULL || p->doomed || (p->state != PEER_CONNECTED &&
		    p->state != PEER_DISCONNECTED))
			continue;
		/* Still admitted at all (a key may have been revoked)? */
		if (pp_access_admit(a->access, p->name,
		    pp_tun_peer_identity(p->tun), why, sizeof(why)) < 0) {
			peer_doom(p, "%s", why);
			continue;
		}
		pp_tun_policy_changed(p->tun);
	}
}

static void expiry_cb(uv_timer_t *h);

/* Wakes up when the next rule expires: the policy means something else then. */
static void
arm_expiry(struct pp_agent *a)
{
	int64_t now = (int64_t)time(NULL);

	uv_timer_stop(&a->expiry);
	if ((a->expiry_at = pp_access_next_expiry(a->access, now)) <= 0)
		return;
	/* A rule applies while now < expires: wake just after it. */
	uv_timer_start(&a->expiry, expiry_cb,
	    (uint64_t)(a->expiry_at - now) * 1000 + 50, 0);
}

static void
expiry_cb(uv_timer_t *h)
{
	struct pp_agent *a = h->data;

	if ((int64_t)time(NULL) < a->expiry_at) {
		arm_expiry(a);		/* early: the wall clock was set back */
		return;
	}
	pp_info(SUB, "a rule of the policy %s expired: deciding every peer again",
	    pp_access_policy_path(a->access));
	redecide_peers(a);
	arm_expiry(a);
}

/* The policy again: peers it no longer admits are cut, the rest re-offered. */
static int
policy_reload(struct pp_agent *a)
{
	int changed, rc;

	if ((rc = pp_access_reload(a->access, &changed)) < 0)
		return rc;
	policy_applied(a, changed);
	return 0;
}

/* pp_invites_reconcile(): did the redemption of invite id_text add its
 * entry to the policy before the agent stopped? */
static int
invite_in_policy(void *ctx, const char *id_text, const char *name,
    const char *key)
{
	char comment[64];
	uint8_t pub[PP_ID_PUB_LEN];

	if (pp_id_pub_parse(key, strlen(key), pub) < 0)
		return 0;
	snprintf(comment, sizeof(comment), "invite %s", id_text);
	return pp_access_invite_entry(ctx, comment, name, pub);
}

/* A new policy is in force (reloaded, or an invite's entry added). */
static void
policy_applied(struct pp_agent *a, int changed)
{
	arm_expiry(a);
	if (changed)
		redecide_peers(a);
}

/* ---- lifetime ---- */

void
pp_agent_default_control(const char *name, char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (xdg && xdg[0] == '/')
		snprintf(out, len, "%s/peerpipe/%s.sock", xdg, name);
	else if (geteuid() == 0)
		snprintf(out, len, "/run/peerpipe/%s.sock", name);
	else
		snprintf(out, len, "/tmp/peerpipe-%u/%s.sock", (unsigned)geteuid(),
		    name);
}

void
pp_agent_default_state_dir(const char *name, char *out, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		snprintf(out, len, "/var/lib/peerpipe/%s", name);
	else if (xdg && xdg[0] == '/')
		snprintf(out, len, "%s/peerpipe/%s", xdg, name);
	else if (home && home[0] == '/')
		snprintf(out, len, "%s/.local/state/peerpipe/%s", home, name);
	else
		snprintf(out, len, "/tmp/peerpipe-%u/%s", (unsigned)geteuid(), name);
}

const char *
pp_agent_control_path(const struct pp_agent *a)
{
	return a->control;
}

static int
split_hostport(const char *s, char *host, size_t hlen, uint16_t *port)
{
	const char *colon = strrchr(s, ':');
	unsigned long v;
	char *end;

	if (colon == NULL)
		return PP_EINVAL;
	v = strtoul(colon + 1, &end, 10);
	if (*end != '\0' || v == 0 || v > 65535)
		return PP_EINVAL;
	if (s[0] == '[' && colon > s && colon[-1] == ']')
		snprintf(host, hlen, "%.*s", (int)(colon - s - 2), s + 1);
	else
		snprintf(host, hlen, "%.*s", (int)(colon - s), s);
	*port = (uint16_t)v;
	return 0;
}

/*
 * A service's target as an IP literal.  A host name is resolved once, here,
 * and the address pinned: the gateway connects to that address and nowhere
 * else for the life of the process (no per-connection lookups that a
 * changed DNS record could point elsewhere).
 */
static int
pin_address(const struct pp_cfg_service *s, char *out, size_t len)
{
	struct addrinfo hints, *res = NULL;
	struct in6_addr a6;
	struct in_addr a4;
	int rc;

	if (inet_pton(AF_INET, s->host, &a4) == 1 ||
	    inet_pton(AF_INET6, s->host, &a6) == 1) {
		snprintf(out, len, "%s", s->host);
		return 0;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = s->proto == PP_TUN_TCP ? SOCK_STREAM : SOCK_DGRAM;
	if ((rc = getaddrinfo(s->host, NULL, &hints, &res)) != 0 || res == NULL) {
		pp_err(SUB, "service %s: cannot resolve %s: %s; fix [service %s] "
		    "target", s->name, s->host, gai_strerror(rc), s->name);
		return PP_ECONFIG;
	}
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr,
		    out, (socklen_t)len);
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr,
		    out, (socklen_t)len);
	freeaddrinfo(res);
	pp_info(SUB, "service %s: %s is %s (pinned for this run)", s->name,
	    s->host, out);
	return 0;
}

/* turn:HOST:PORT[?transport=udp|tcp] or turns:HOST:PORT (TLS). */
static int
turn_parse(const struct pp_cfg_turn *c, struct pp_ice_turn *t, char *host,
    size_t hlen)
{
	char buf[512], *q;
	const char *rest;

	memset(t, 0, sizeof(*t));
	if (strncmp(c->url, "turns:", 6) == 0) {
		t->transport = PP_ICE_RELAY_TLS;
		rest = c->url + 6;
	} else if (strncmp(c->url, "turn:", 5) == 0) {
		t->transport = PP_ICE_RELAY_UDP;
		rest = c->url + 5;
	} else {
		return PP_EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", rest);
	if ((q = strchr(buf, '?')) != NULL) {
		*q++ = '\0';
		if (strcmp(q, "transport=tcp") == 0 && t->transport == PP_ICE_RELAY_UDP)
			t->transport = PP_ICE_RELAY_TCP;
		else if (strcmp(q, "transport=udp") != 0 &&
		    strcmp(q, "transport=tcp") != 0)
			return PP_EINVAL;
	}
	if (split_hostport(buf, host, hlen, &t->port) < 0)
		return PP_EINVAL;
	t->host = host;
	t->username = c->username;
	t->password = c->password;
	return 0;
}

/* The token's signaling server and room replace the config's. */
static int
use_invite(struct pp_agent *a, const char *token)
{
	char err[256], idt[23];

	if (pp_invite_parse(token, strlen(token), &a->invite, err,
	    sizeof(err)) < 0) {
		pp_err(SUB, "%s", err);
		return PP_ECONFIG;
	}
	a->has_invite = 1;
	pp_invite_id_text(a->invite.id, idt);
	if (strcmp(a->cfg.url, a->invite.url) != 0 ||
	    strcmp(a->cfg.room_uuid, a->invite.room_uuid) != 0 ||
	    strcmp(a->cfg.room_name, a->invite.room_name) != 0)
		pp_info(SUB, "invite %s: signaling %s and room %s from the "
		    "invite, not the config", idt, a->invite.url,
		    a->invite.room_name);
	snprintf(a->cfg.url, sizeof(a->cfg.url), "%s", a->invite.url);
	snprintf(a->cfg.room_uuid, sizeof(a->cfg.room_uuid), "%s",
	    a->invite.room_uuid);
	snprintf(a->cfg.room_name, sizeof(a->cfg.room_name), "%s",
	    a->invite.room_name);
	if (a->invite.expires <= (int64_t)time(NULL))
		pp_warn(SUB, "invite %s expired by our clock: %s will likely "
		    "refuse it; ask for a new one", idt, a->invite.gateway);
	else
		pp_info(SUB, "invite %s from %s: proved to it when we connect",
		    idt, a->invite.gateway);
	return 0;
}

int
pp_agent_new(uv_loop_t *loop, const struct pp_agent_config *ac,
    struct pp_agent **out)
{
	static const struct pp_sigc_ops sig_ops = { sig_connected,
	    sig_disconnected, sig_message };
	struct pp_sigc_config sc;
	struct pp_agent *a;
	int rc;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return -ENOMEM;
	a->loop = loop;
	a->cfg = *ac->cfg;
	a->mode = ac->mode;
	if (ac->invite && (rc = use_invite(a, ac->invite)) < 0) {
		free(a);
		return rc;
	}
	a->started_ms = pp_now_ms();
	if (ac->control)
		snprintf(a->control, sizeof(a->control), "%s", ac->control);
	else if (a->cfg.control[0])
		snprintf(a->control, sizeof(a->control), "%s", a->cfg.control);
	else
		pp_agent_default_control(a->cfg.name, a->control, sizeof(a->control));

	for (size_t i = 0; i < a->cfg.nservices; i++) {
		const struct pp_cfg_service *s = &a->cfg.services[i];

		if ((rc = pin_address(s, a->svc_host[i], sizeof(a->svc_host[i]))) < 0)
			goto fail;
		a->services[i].name = s->name;
		a->services[i].port = s->port;
		a->services[i].proto = s->proto;
		a->services[i].host = a->svc_host[i];
		a->services[i].target_port = s->target_port;
	}
	for (size_t i = 0; i < a->cfg.nforwards; i++) {
		const struct pp_cfg_forward *f = &a->cfg.forwards[i];

		a->forwards[i].port = f->port;
		a->forwards[i].proto = f->proto;
		a->forwards[i].listen_host = f->listen_host;
		a->forwards[i].listen_port = f->listen_port;
	}
	rc = PP_ECONFIG;
	if (a->cfg.nstun > 0 && split_hostport(a->cfg.stun[0], a->stun_host,
	    sizeof(a->stun_host), &a->stun_port) < 0) {
		pp_err(SUB, "stun server \"%s\": expected HOST:PORT", a->cfg.stun[0]);
		goto fail;
	}
	for (size_t i = 0; i < a->cfg.nturn; i++)
		if (turn_parse(&a->cfg.turn[i], &a->turn[i], a->turn_host[i],
		    sizeof(a->turn_host[i])) < 0) {
			pp_err(SUB, "turn server \"%s\": expected "
			    "turn:HOST:PORT[?transport=udp|tcp] or turns:HOST:PORT",
			    a->cfg.turn[i].url);
			goto fail;
		}
	if (a->cfg.state_dir[0])
		snprintf(a->state_dir, sizeof(a->state_dir), "%s", a->cfg.state_dir);
	else
		pp_agent_default_state_dir(a->cfg.name, a->state_dir,
		    sizeof(a->state_dir));
	{
		char path[1200], err[512];

		snprintf(path, sizeof(path), "%s/identity.pem", a->state_dir);
		if ((rc = pp_id_load_or_create(path, &a->id, err, sizeof(err))) < 0) {
			pp_err(SUB, "identity: %s", err);
			goto fail;
		}
		pp_id_public_text(a->id, a->id_text, sizeof(a->id_text));
		pp_info(SUB, "identity %s (%s)", a->id_text, path);
	}
	if ((rc = pp_access_new(&a->cfg, a->state_dir, &a->access)) < 0)
		goto fail_id;
	{
		char path[1200], why[512];

		snprintf(path, sizeof(path), "%s/invites.json", a->state_dir);
		if ((rc = pp_invites_open(path, (int64_t)time(NULL),
		    &a->invites)) < 0)
			goto fail_access;
		if (pp_invites_reconcile(a->invites, invite_in_policy, a->access,
		    (int64_t)time(NULL)) < 0)
			pp_warn(SUB, "%s: invites settled, but not saved", path);
		/* The invite tells us the gateway's key before we meet it. */
		if (a->has_invite && (rc = pp_access_pin(a->access,
		    a->invite.gateway, a->invite.gateway_key, why,
		    sizeof(why))) < 0) {
			pp_err(SUB, "invite: %s", why);
			goto fail_access;
		}
	}
	if ((rc = pp_bans_open(a->state_dir, &a->bans)) < 0)
		goto fail_access;
	if ((rc = pp_dtls_cert_new("peerpipe", &a->cert)) < 0)
		goto fail_access;
	if ((rc = pp_ctl_new(loop, a->control, a->cfg.control_mode, ctl_handle, a,
	    &a->ctl)) < 0) {
		pp_err(SUB, "control socket %s: %s", a->control, pp_strerror(rc));
		goto fail_cert;
	}
	if (a->mode == PP_AGENT_GATEWAY && a->cfg.ips_mode != PP_CFG_IPS_OFF &&
	    a->cfg.nservices > 0 && (rc = ips_start(a)) < 0)
		goto fail_ctl;
	if ((rc = pp_gloop_new(loop, &a->gl)) < 0)
		goto fail_ips;
	memset(&sc, 0, sizeof(sc));
	sc.url = a->cfg.url;
	sc.insecure = a->cfg.insecure;
	sc.ca_file = a->cfg.ca[0] ? a->cfg.ca : NULL;
	if ((rc = pp_sigc_new(loop, &sc, &sig_ops, a, &a->sig)) < 0)
		goto fail_gloop;
	uv_timer_init(loop, &a->reaper);
	a->reaper.data = a;
	uv_timer_init(loop, &a->rejoin);
	a->rejoin.data = a;
	uv_timer_init(loop, &a->turn_timer);
	a->turn_timer.data = a;
	uv_timer_init(loop, &a->expiry);
	a->expiry.data = a;
	arm_expiry(a);
	pp_info(SUB, "%s %s: room %s, %zu service(s) shared, control %s",
	    a->mode == PP_AGENT_GATEWAY ? "gateway" : "client", a->cfg.name,
	    a->cfg.room_name, a->cfg.nservices, a->control);
	*out = a;
	return 0;
	/* Handles made so far free themselves once the loop runs again. */
fail_gloop:
	pp_gloop_free(a->gl);
fail_ips:
	pp_ips_free(a->ips);
	pp_tap_budget_free(a->tap_budget);
fail_ctl:
	pp_ctl_free(a->ctl);
fail_cert:
	pp_dtls_cert_free(a->cert);
fail_access:
	pp_bans_free(a->bans);
	pp_invites_free(a->invites);
	pp_access_free(a->access);
fail_id:
	pp_id_free(a->id);
fail:
	OPENSSL_cleanse(&a->invite, sizeof(a->invite));
	free(a);
	return rc;
}

void
pp_agent_stop(struct pp_agent *a)
{
	if (a->stopping)
		return;
	a->stopping = 1;
	pp_info(SUB, "stopping: closing %u peer connection(s)", a->npeers);
	for (struct peer *p = a->peers; p; p = p->next) {
		pp_tun_free(p->tun);
		p->tun = NULL;
		if (p->pc) {
			pp_pc_close(p->pc);
			pp_pc_free(p->pc);
			p->pc = NULL;
		}
		uv_close((uv_handle_t *)&p->retry, NULL);
		uv_close((uv_handle_t *)&p->probe, NULL);
		uv_close((uv_handle_t *)&p->restart, NULL);
		drop_held(p);
	}
	pp_sigc_stop(a->sig);
	pp_ctl_free(a->ctl);
	a->ctl = NULL;
	/* after the service connections above: its chains go first */
	pp_ips_free(a->ips);
	a->ips = NULL;
	uv_close((uv_handle_t *)&a->reaper, NULL);
	uv_close((uv_handle_t *)&a->rejoin, NULL);
	uv_close((uv_handle_t *)&a->turn_timer, NULL);
	uv_close((uv_handle_t *)&a->expiry, NULL);
	pp_gloop_free(a->gl);
	a->gl = NULL;
}

void
pp_agent_free(struct pp_agent *a)
{
	struct peer *p;

	if (a == NULL)
		return;
	pp_sigc_free(a->sig);
	while ((p = a->peers) != NULL) {
		a->peers = p->next;
		drop_held(p);
		free(p);
	}
	pp_dtls_cert_free(a->cert);
	pp_id_free(a->id);
	pp_access_free(a->access);
	pp_bans_free(a->bans);
	pp_tap_budget_free(a->tap_budget);	/* open taps hold references */
	pp_invites_free(a->invites);
	OPENSSL_cleanse(&a->invite, sizeof(a->invite));
	OPENSSL_cleanse(a->sig_turn_cfg, sizeof(a->sig_turn_cfg));
	OPENSSL_cleanse(a->sig_turn, sizeof(a->sig_turn));
	free(a);
}
