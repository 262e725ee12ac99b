/*
 * The libnice agent behind a pp_ice.
 *
 * libnice emits its signals synchronously, also from inside API calls
 * (nice_agent_gather_candidates emits new-candidate before it returns).  So
 * every signal becomes an event on a short queue; at depth 0 (no pp_ice_*
 * call on this object in progress, i.e. inside a GLib dispatch) the queue is
 * delivered at once, otherwise a zero timer delivers it after the call.  A
 * datagram first flushes the queue, so "ready" is seen before the data that
 * follows it.
 *
 * State: nice_state is what libnice says, state what the user was told.
 * They differ only while a FAILED is held back for trickle (see ice.h).
 *
 * Teardown: pp_ice_free() disconnects every signal handler and the receive
 * callback right away, so libnice can never call into us again, and defers
 * the rest (remove the stream, close, unref) to the close callback of our
 * timer: by then no libnice frame is on the stack, whichever callback the
 * free came from.  The agent may outlive us while nice_agent_close_async
 * releases TURN allocations; the pp_gloop waits for us, not for it.
 */
#include "ice.h"
#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "sdp/sdp.h"

#include <nice/agent.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SUB "ice"
#define COMPONENT 1		/* one component: rtcp-mux/bundle */
#define MAX_EVENTS 256		/* far above any candidate count */
#define STUN_DEFAULT_PORT 3478
/*
 * libnice's conncheck timer ticks every 20 ms until it has been idle this
 * long.  Its default, 5 s, is about the consent-check period, so with
 * consent freshness the timer never stops: 50 wakeups a second for an idle
 * agent.  1 s lets it rest between checks.  It is also how long libnice
 * waits, once all checks are done, before it declares failure; with trickle
 * that decision is ours anyway (see PP_ICE_EOC_GRACE_MS).
 */
#define IDLE_TIMEOUT_MS 1000

enum ev_kind {
	EV_CANDIDATE,
	EV_GATHERED,
	EV_STATE,
};

struct ev {
	struct ev *next;
	enum ev_kind kind;
	enum pp_ice_state state;
	char text[];		/* EV_CANDIDATE */
};

struct pp_ice {
	struct pp_gloop *gl;
	NiceAgent *agent;
	guint stream;		/* the current ICE generation */
	/*
	 * The generation before a restart, kept (with its selected pair) until
	 * the new one has a pair of its own: data keeps flowing on it if the
	 * old path still works.  0: none.
	 */
	guint old_stream;
	bool gen_pair;		/* the current generation selected a pair */
	uv_timer_t retire;	/* removes old_stream outside libnice's frames */
	/* What a restart needs to build the next generation's stream. */
	uint16_t port_min, port_max;
	struct pp_ice_turn turn[PP_ICE_MAX_TURN];	/* strings owned */
	size_t nturn;
	unsigned id;		/* names this agent in logs */
	struct pp_ice_callbacks cb;
	void *arg;
	uv_timer_t defer;	/* delivers events queued during a call */
	uv_timer_t grace;	/* a held-back FAILED (see ice.h) */
	int open_handles;
	unsigned eoc_grace_ms;

	enum pp_ice_state state;	/* as reported */
	enum pp_ice_state nice_state;	/* as libnice has it */
	unsigned depth;		/* pp_ice_* calls in progress */
	bool gathering;		/* pp_ice_gather() done */
	bool gathered;		/* libnice finished gathering */
	bool closing;
	bool flushing;
	bool remote_creds;	/* the peer's credentials for this generation */
	bool remote_done;	/* end-of-candidates waiting for credentials */
	bool remote_eoc;	/* end-of-candidates given to libnice */
	bool connected_gen;	/* a pair worked in this generation */

	struct ev *evq, **evq_tail;
	unsigned nev;

	/* Remote candidates waiting for the remote credentials. */
	struct pp_sdp_candidate *pending[PP_ICE_MAX_REMOTE_CANDIDATES];
	unsigned npending;
	unsigned nremote;	/* given to libnice in this generation */

	char ufrag[PP_SDP_UFRAG_MAX + 1];
	char pwd[PP_SDP_PWD_MAX + 1];
	char remote_ufrag[PP_SDP_UFRAG_MAX + 1];

	struct pp_ratelimit refuse_rl;
	struct pp_ice_status st;
};

static atomic_uint next_id;

static const char *const state_names[] = {
	[PP_ICE_NEW] = "new",
	[PP_ICE_GATHERING] = "gathering",
	[PP_ICE_CONNECTING] = "connecting",
	[PP_ICE_CONNECTED] = "connected",
	[PP_ICE_READY] = "ready",
	[PP_ICE_FAILED] = "failed",
	[PP_ICE_DISCONNECTED] = "disconnected",
};

static const char *const type_names[] = {
	[PP_ICE_CAND_HOST] = "host",
	[PP_ICE_CAND_SRFLX] = "srflx",
	[PP_ICE_CAND_PRFLX] = "prflx",
	[PP_ICE_CAND_RELAY] = "relay",
};


const char *
pp_ice_state_name(enum pp_ice_state state)
{
	if ((unsigned)state >= sizeof(state_names) / sizeof(state_names[0]))
		return "unknown";
	return state_names[state];
}

const char *
pp_ice_cand_type_name(enum pp_ice_cand_type type)
{
	if ((unsigned)type >= sizeof(type_names) / sizeof(type_names[0]))
		return "unknown";
	return type_names[type];
}

static enum pp_ice_state
map_state(guint s)
{
	switch (s) {
	case NICE_COMPONENT_STATE_GATHERING:
		return PP_ICE_GATHERING;
	case NICE_COMPONENT_STATE_CONNECTING:
		return PP_ICE_CONNECTING;
	case NICE_COMPONENT_STATE_CONNECTED:
		return PP_ICE_CONNECTED;
	case NICE_COMPONENT_STATE_READY:
		return PP_ICE_READY;
	case NICE_COMPONENT_STATE_FAILED:
		return PP_ICE_FAILED;
	default:
		return PP_ICE_DISCONNECTED;
	}
}

static enum pp_ice_cand_type
map_type(NiceCandidateType t)
{
	switch (t) {
	case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
		return PP_ICE_CAND_SRFLX;
	case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
		return PP_ICE_CAND_PRFLX;
	case NICE_CANDIDATE_TYPE_RELAYED:
		return PP_ICE_CAND_RELAY;
	default:
		return PP_ICE_CAND_HOST;
	}
}

/* ---- event queue ---- */

static void
deliver(struct pp_ice *ice, const struct ev *e)
{
	switch (e->kind) {
	case EV_CANDIDATE:
		if (ice->cb.on_candidate)
			ice->cb.on_candidate(ice->arg, e->text);
		break;
	case EV_GATHERED:
		if (ice->cb.on_gathering_done)
			ice->cb.on_gathering_done(ice->arg);
		break;
	case EV_STATE:
		if (ice->cb.on_state)
			ice->cb.on_state(ice->arg, e->state);
		break;
	}
}

/* A callback may free the object: closing is checked after every event. */
static void
flush(struct pp_ice *ice)
{
	struct ev *e;

	if (ice->flushing)
		return;		/* the outer flush picks the new events up */
	ice->flushing = true;
	while (!ice->closing && (e = ice->evq) != NULL) {
		ice->evq = e->next;
		if (!ice->evq)
			ice->evq_tail = &ice->evq;
		ice->nev--;
		deliver(ice, e);
		free(e);
	}
	ice->flushing = false;
}

static void
drop_events(struct pp_ice *ice)
{
	struct ev *e;

	while ((e = ice->evq) != NULL) {
		ice->evq = e->next;
		free(e);
	}
	ice->evq_tail = &ice->evq;
	ice->nev = 0;
}

static void
on_defer(uv_timer_t *h)
{
	flush(h->data);
}

static void
push_event(struct pp_ice *ice, enum ev_kind kind, enum pp_ice_state state,
    const char *text)
{
	size_t len = text ? strlen(text) : 0;
	struct ev *e;

	if (ice->nev >= MAX_EVENTS) {
		pp_err(SUB, "ice %u: event queue full; event dropped", ice->id);
		return;
	}
	e = malloc(sizeof(*e) + len + 1);
	if (!e) {
		pp_err(SUB, "ice %u: out of memory; event dropped", ice->id);
		return;
	}
	e->next = NULL;
	e->kind = kind;
	e->state = state;
	memcpy(e->text, text ? text : "", len + 1);
	*ice->evq_tail = e;
	ice->evq_tail = &e->next;
	ice->nev++;
	if (ice->depth == 0)
		flush(ice);
}

/*
 * Brackets every call into libnice from our API: signals it raises meanwhile
 * wait on the queue; leave() schedules their delivery.
 */
static void
enter(struct pp_ice *ice)
{
	ice->depth++;
	pp__gloop_enter(ice->gl);
}

static void
leave(struct pp_ice *ice)
{
	pp__gloop_leave(ice->gl);
	if (--ice->depth == 0 && ice->evq && !ice->closing)
		uv_timer_start(&ice->defer, on_defer, 0, 0);
}

/* ---- libnice signals (run with the agent lock released) ---- */

static void
on_new_candidate(NiceAgent *agent, NiceCandidate *c, gpointer data)
{
	struct pp_ice *ice = data;
	gchar *sdp;
	const char *text;

	if (ice->closing || c->stream_id != ice->stream ||
	    c->component_id != COMPONENT)
		return;
	sdp = nice_agent_generate_local_candidate_sdp(agent, c);
	if (!sdp)
		return;
	text = strncmp(sdp, "a=", 2) == 0 ? sdp + 2 : sdp;
	pp_debug(SUB, "ice %u: local %s", ice->id, text);
	push_event(ice, EV_CANDIDATE, 0, text);
	g_free(sdp);
}

static void
on_gathering_done(NiceAgent *agent, guint stream, gpointer data)
{
	struct pp_ice *ice = data;

	if (ice->closing || stream != ice->stream)
		return;
	ice->gathered = true;
	pp_debug(SUB, "ice %u: gathering done", ice->id);
	push_event(ice, EV_GATHERED, 0, NULL);
}

static void
report_state(struct pp_ice *ice, enum pp_ice_state s)
{
	uint64_t now = pp_now_ms();

	if (s == ice->state)
		return;
	pp_info(SUB, "ice %u: %s -> %s", ice->id, pp_ice_state_name(ice->state),
	    pp_ice_state_name(s));
	ice->state = s;
	if (s == PP_ICE_CONNECTING)
		ice->st.checks_started_ms = now;
	else if (s == PP_ICE_CONNECTED)
		ice->st.connected_ms = now;
	else if (s == PP_ICE_READY)
		ice->st.ready_ms = now;
	push_event(ice, EV_STATE, s, NULL);
}

static void
on_grace(uv_timer_t *h)
{
	struct pp_ice *ice = h->data;

	if (ice->closing || ice->nice_state != PP_ICE_FAILED)
		return;
	pp_info(SUB, "ice %u: no working pair and no end-of-candidates after "
	    "%u ms", ice->id, ice->eoc_grace_ms);
	report_state(ice, PP_ICE_FAILED);
}

static void
on_component_state(NiceAgent *agent, guint stream, guint component,
    guint nstate, gpointer data)
{
	struct pp_ice *ice = data;
	enum pp_ice_state s = map_state(nstate);

	if (ice->closing || stream != ice->stream || component != COMPONENT)
		return;
	ice->nice_state = s;
	if (s == PP_ICE_CONNECTED || s == PP_ICE_READY)
		ice->connected_gen = true;
	if (s == PP_ICE_FAILED && !ice->remote_eoc && !ice->connected_gen) {
		if (!uv_is_active((uv_handle_t *)&ice->grace)) {
			pp_debug(SUB, "ice %u: checks failed so far; waiting "
			    "for more remote candidates", ice->id);
			uv_timer_start(&ice->grace, on_grace, ice->eoc_grace_ms,
			    0);
		}
		return;
	}
	uv_timer_stop(&ice->grace);
	report_state(ice, s);
}

/* The peer has no more candidates: a held-back FAILED is final now. */
static void
apply_remote_eoc(struct pp_ice *ice)
{
	ice->remote_eoc = true;
	nice_agent_peer_candidate_gathering_done(ice->agent, ice->stream);
	if (ice->nice_state == PP_ICE_FAILED) {
		uv_timer_stop(&ice->grace);
		report_state(ice, PP_ICE_FAILED);
	}
}

static void
describe(const NiceCandidate *c, enum pp_ice_cand_type *type,
    char addr[PP_ICE_ADDRSTRLEN], uint16_t *port)
{
	char buf[NICE_ADDRESS_STRING_LEN];

	*type = map_type(c->type);
	nice_address_to_string(&c->addr, buf);
	g_strlcpy(addr, buf, PP_ICE_ADDRSTRLEN);
	*port = (uint16_t)nice_address_get_port(&c->addr);
}

/*
 * The kernel's default UDP receive buffer (about 208 KiB, some 90 datagrams)
 * is far below SCTP's window: a burst overflows it and the loss waits for
 * usrsctp's 1 s minimum retransmission timeout (docs/bench-webrtc.md).  Give
 * the selected socket room for the window; past net.core.rmem_max only a
 * process with CAP_NET_ADMIN can (the FORCE options), else say it is capped.
 */
#define SOCKET_BUFFER (4 * 1024 * 1024)

/* 1 if the buffer is below what we wanted (capped by rmem_max). */
static int
grow_fd(int fd)
{
	static const int want = SOCKET_BUFFER;
	int got = 0;
	socklen_t len = sizeof(got);

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &want, sizeof(want)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
	return getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 &&
	    got < want ? got / 2 : 0;
}

/*
 * A relayed pair's socket is not handed out by libnice (it wraps the host
 * UDP socket that talks to the TURN server, and the relay's packets arrive
 * on that one).  Our stream's host UDP candidates name those sockets by
 * their bound address: find them among our descriptors and grow them all.
 */
static int
grow_host_sockets(struct pp_ice *ice, NiceAgent *agent)
{
	GSList *list = nice_agent_get_local_candidates(agent, ice->stream,
	    COMPONENT);
	struct sockaddr_storage want[PP_ICE_MAX_LOCAL_ADDRS * 2];
	unsigned nwant = 0;
	int capped = 0;
	DIR *d;
	struct dirent *e;

	for (GSList *l = list; l && nwant < sizeof(want) / sizeof(want[0]);
	    l = l->next) {
		const NiceCandidate *c = l->data;

		if (c->type == NICE_CANDIDATE_TYPE_HOST &&
		    c->transport == NICE_CANDIDATE_TRANSPORT_UDP)
			nice_address_copy_to_sockaddr(&c->addr,
			    (struct sockaddr *)&want[nwant++]);
	}
	g_slist_free_full(list, (GDestroyNotify)nice_candidate_free);
	if (nwant == 0 || (d = opendir("/proc/self/fd")) == NULL)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = atoi(e->d_name), type = 0;
		socklen_t tlen = sizeof(type);

		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == dirfd(d) ||
		    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 ||
		    type != SOCK_DGRAM ||
		    getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
			continue;
		for (unsigned i = 0; i < nwant; i++) {
			NiceAddress a, b;

			nice_address_set_from_sockaddr(&a, (struct sockaddr *)&ss);
			nice_address_set_from_sockaddr(&b,
			    (struct sockaddr *)&want[i]);
			if (nice_address_equal(&a, &b)) {
				capped |= grow_fd(fd);
				break;
			}
		}
	}
	closedir(d);
	return capped;
}

static void
grow_socket_buffers(struct pp_ice *ice, NiceAgent *agent)
{
	static int warned;
	GSocket *gs = nice_agent_get_selected_socket(agent, ice->stream, COMPONENT);
	int got;

	if (gs != NULL) {
		got = grow_fd(g_socket_get_fd(gs));
		g_object_unref(gs);
	} else if (ice->st.pair.local_type == PP_ICE_CAND_RELAY) {
		got = grow_host_sockets(ice, agent);
	} else {
		return;
	}
	if (got > 0 && !warned++)
		pp_warn(SUB, "UDP receive buffer capped at %d bytes (wanted %d): "
		    "raise net.core.rmem_max for full data-channel throughput",
		    got, SOCKET_BUFFER);
}

/* The new generation has its pair: the previous one is not needed. */
static void
on_retire(uv_timer_t *h)
{
	struct pp_ice *ice = h->data;

	if (ice->closing || ice->old_stream == 0)
		return;
	enter(ice);
	nice_agent_remove_stream(ice->agent, ice->old_stream);
	leave(ice);
	pp_debug(SUB, "ice %u: previous generation released", ice->id);
	ice->old_stream = 0;
}

static void
on_selected_pair(NiceAgent *agent, guint stream, guint component,
    NiceCandidate *lc, NiceCandidate *rc, gpointer data)
{
	struct pp_ice *ice = data;
	struct pp_ice_pair *p = &ice->st.pair;

	if (ice->closing || stream != ice->stream || component != COMPONENT)
		return;
	describe(lc, &p->local_type, p->local_addr, &p->local_port);
	describe(rc, &p->remote_type, p->remote_addr, &p->remote_port);
	p->proto = lc->transport == NICE_CANDIDATE_TRANSPORT_UDP ?
	    PP_ICE_PROTO_UDP : PP_ICE_PROTO_TCP;
	ice->st.have_pair = true;
	ice->st.pair_selected_ms = pp_now_ms();
	ice->gen_pair = true;
	if (ice->old_stream)
		uv_timer_start(&ice->retire, on_retire, 0, 0);
	if (p->proto == PP_ICE_PROTO_UDP)
		grow_socket_buffers(ice, agent);
	pp_info(SUB, "ice %u: selected pair %s %s:%u -> %s %s:%u (%s)", ice->id,
	    pp_ice_cand_type_name(p->local_type), p->local_addr,
	    (unsigned)p->local_port, pp_ice_cand_type_name(p->remote_type),
	    p->remote_addr, (unsigned)p->remote_port,
	    p->proto == PP_ICE_PROTO_UDP ? "udp" : "tcp");
}

static void
on_nice_recv(NiceAgent *agent, guint stream, guint component, guint len,
    gchar *buf, gpointer data)
{
	struct pp_ice *ice = data;

	if (ice->closing)
		return;
	if (ice->evq && ice->depth == 0) {
		flush(ice);
		if (ice->closing)
			return;
	}
	ice->st.rx_packets++;
	ice->st.rx_bytes += len;
	ice->st.last_recv_ms = pp_now_ms();
	if (ice->cb.on_recv)
		ice->cb.on_recv(ice->arg, (const uint8_t *)buf, len);
}

/* ---- construction ---- */

static bool
is_ip_literal(const char *s)
{
	unsigned char bin[16];

	return s && (inet_pton(AF_INET, s, bin) == 1 ||
	    inet_pton(AF_INET6, s, bin) == 1);
}

static bool
host_ok(const char *s)
{
	size_t n = s ? strnlen(s, 254) : 0;

	return n > 0 && n < 254;
}

static int
check_config(const struct pp_ice_config *cfg)
{
	if (cfg->role != PP_ICE_CONTROLLING && cfg->role != PP_ICE_CONTROLLED) {
		pp_err(SUB, "ice config: role %d is neither controlling nor "
		    "controlled", (int)cfg->role);
		return PP_ECONFIG;
	}
	if (cfg->nlocal_addrs > PP_ICE_MAX_LOCAL_ADDRS) {
		pp_err(SUB, "ice config: %zu local addresses, at most %d",
		    cfg->nlocal_addrs, PP_ICE_MAX_LOCAL_ADDRS);
		return PP_ECONFIG;
	}
	for (size_t i = 0; i < cfg->nlocal_addrs; i++) {
		if (!is_ip_literal(cfg->local_addrs[i])) {
			pp_err(SUB, "ice config: local address \"%s\" is not "
			    "an IP address", cfg->local_addrs[i] ?
			    cfg->local_addrs[i] : "(null)");
			return PP_ECONFIG;
		}
	}
	if ((cfg->port_min == 0) != (cfg->port_max == 0) ||
	    cfg->port_min > cfg->port_max) {
		pp_err(SUB, "ice config: port range %u-%u: give both ends, "
		    "low <= high (or neither)", (unsigned)cfg->port_min,
		    (unsigned)cfg->port_max);
		return PP_ECONFIG;
	}
	if (cfg->stun_host && !host_ok(cfg->stun_host)) {
		pp_err(SUB, "ice config: STUN host must be 1-253 characters");
		return PP_ECONFIG;
	}
	if (cfg->nturn > PP_ICE_MAX_TURN) {
		pp_err(SUB, "ice config: %zu TURN servers, at most %d",
		    cfg->nturn, PP_ICE_MAX_TURN);
		return PP_ECONFIG;
	}
	for (size_t i = 0; i < cfg->nturn; i++) {
		const struct pp_ice_turn *t = &cfg->turn[i];
		const char *bad = NULL;

		if (!host_ok(t->host))
			bad = "host must be 1-253 characters";
		else if (t->port == 0)
			bad = "port 0";
		else if (!t->username || !t->password)
			bad = "username and password are required";
		else if (t->transport != PP_ICE_RELAY_UDP &&
		    t->transport != PP_ICE_RELAY_TCP &&
		    t->transport != PP_ICE_RELAY_TLS)
			bad = "transport is not udp, tcp or tls";
		if (bad) {
			pp_err(SUB, "ice config: TURN server %zu (%s): %s", i + 1,
			    host_ok(t->host) ? t->host : "?", bad);
			return PP_ECONFIG;
		}
	}
	return 0;
}

static NiceRelayType
relay_type(enum pp_ice_relay_transport t)
{
	switch (t) {
	case PP_ICE_RELAY_TCP:
		return NICE_RELAY_TYPE_TURN_TCP;
	case PP_ICE_RELAY_TLS:
		return NICE_RELAY_TYPE_TURN_TLS;
	default:
		return NICE_RELAY_TYPE_TURN_UDP;
	}
}

static void
wipe_gstr(gchar *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		g_free(s);
	}
}

static int
load_local_credentials(struct pp_ice *ice)
{
	gchar *ufrag = NULL, *pwd = NULL;
	int rc = 0;

	if (!nice_agent_get_local_credentials(ice->agent, ice->stream, &ufrag,
	    &pwd))
		return PP_EPROTO;
	if (strlen(ufrag) > PP_SDP_UFRAG_MAX || strlen(pwd) > PP_SDP_PWD_MAX)
		rc = PP_EPROTO;
	else {
		g_strlcpy(ice->ufrag, ufrag, sizeof(ice->ufrag));
		g_strlcpy(ice->pwd, pwd, sizeof(ice->pwd));
	}
	g_free(ufrag);
	wipe_gstr(pwd);
	return rc;
}

static void
free_turn(struct pp_ice *ice)
{
	for (size_t i = 0; i < ice->nturn; i++) {
		struct pp_ice_turn *t = &ice->turn[i];

		free((char *)(uintptr_t)t->host);
		free((char *)(uintptr_t)t->username);
		if (t->password) {
			explicit_bzero((char *)(uintptr_t)t->password,
			    strlen(t->password));
			free((char *)(uintptr_t)t->password);
		}
	}
	memset(ice->turn, 0, sizeof(ice->turn));
	ice->nturn = 0;
}

/* Our own copies of the TURN servers (checked), for every generation. */
static int
copy_turn(struct pp_ice *ice, const struct pp_ice_turn *turn, size_t nturn)
{
	free_turn(ice);
	for (size_t i = 0; i < nturn; i++) {
		struct pp_ice_turn *t = &ice->turn[i];

		t->port = turn[i].port;
		t->transport = turn[i].transport;
		t->host = strdup(turn[i].host);
		t->username = strdup(turn[i].username);
		t->password = strdup(turn[i].password);
		ice->nturn = i + 1;
		if (!t->host || !t->username || !t->password) {
			free_turn(ice);
			return -ENOMEM;
		}
	}
	return 0;
}

/*
 * One stream of one component, as every ICE generation has it: port range,
 * TURN servers, and our receive callback.  Signals are connected once per
 * agent and filter on ice->stream.
 */
static int
add_stream(struct pp_ice *ice, guint *out)
{
	NiceAgent *a = ice->agent;
	guint id = nice_agent_add_stream(a, 1);

	*out = 0;
	if (id == 0)
		return -ENOMEM;
	nice_agent_set_stream_name(a, id, "application");
	if (ice->port_min)
		nice_agent_set_port_range(a, id, COMPONENT, ice->port_min,
		    ice->port_max);
	for (size_t i = 0; i < ice->nturn; i++) {
		const struct pp_ice_turn *t = &ice->turn[i];

		if (!nice_agent_set_relay_info(a, id, COMPONENT,
		    t->host, t->port, t->username, t->password,
		    relay_type(t->transport))) {
			pp_err(SUB, "ice config: TURN server %zu (%s) refused "
			    "by libnice", i + 1, t->host);
			nice_agent_remove_stream(a, id);
			return PP_ECONFIG;
		}
	}
	if (!nice_agent_attach_recv(a, id, COMPONENT,
	    pp_gloop_context(ice->gl), on_nice_recv, ice)) {
		nice_agent_remove_stream(a, id);
		return PP_EPROTO;
	}
	*out = id;
	return 0;
}

static int
configure(struct pp_ice *ice, const struct pp_ice_config *cfg)
{
	NiceAgent *a = ice->agent;
	int rc;

	/*
	 * UPnP would ask the LAN's router to open ports on our behalf:
	 * never, for an access gateway (and it sends SSDP multicast).
	 */
	g_object_set(a,
	    "controlling-mode", cfg->role == PP_ICE_CONTROLLING,
	    "ice-tcp", (gboolean)cfg->ice_tcp,
	    "ice-udp", TRUE,
	    "upnp", FALSE,
	    "force-relay", (gboolean)cfg->force_relay,
	    "idle-timeout", (guint)IDLE_TIMEOUT_MS,
	    NULL);
	if (cfg->stun_retransmissions)
		g_object_set(a, "stun-max-retransmissions",
		    (guint)cfg->stun_retransmissions, NULL);
	if (cfg->stun_initial_timeout_ms)
		g_object_set(a, "stun-initial-timeout",
		    (guint)cfg->stun_initial_timeout_ms, NULL);
	if (cfg->stun_host)
		g_object_set(a, "stun-server", cfg->stun_host,
		    "stun-server-port", (guint)(cfg->stun_port ?
		    cfg->stun_port : STUN_DEFAULT_PORT), NULL);
	nice_agent_set_software(a, "PeerPipe");
	for (size_t i = 0; i < cfg->nlocal_addrs; i++) {
		NiceAddress addr;

		nice_address_init(&addr);
		if (!nice_address_set_from_string(&addr, cfg->local_addrs[i]) ||
		    !nice_agent_add_local_address(a, &addr))
			return -ENOMEM;
	}
	g_signal_connect(a, "new-candidate-full", G_CALLBACK(on_new_candidate),
	    ice);
	g_signal_connect(a, "candidate-gathering-done",
	    G_CALLBACK(on_gathering_done), ice);
	g_signal_connect(a, "component-state-changed",
	    G_CALLBACK(on_component_state), ice);
	g_signal_connect(a, "new-selected-pair-full",
	    G_CALLBACK(on_selected_pair), ice);
	ice->port_min = cfg->port_min;
	ice->port_max = cfg->port_max;
	if ((rc = copy_turn(ice, cfg->turn, cfg->nturn)) < 0)
		return rc;
	if ((rc = add_stream(ice, &ice->stream)) < 0)
		return rc;
	return load_local_credentials(ice);
}

int
pp_ice_new(struct pp_gloop *gl, const struct pp_ice_config *cfg,
    const struct pp_ice_callbacks *cb, void *arg, struct pp_ice **out)
{
	struct pp_ice *ice;
	NiceAgentOption flags;
	int rc;

	*out = NULL;
	if (!cfg)
		return PP_ECONFIG;
	if ((rc = check_config(cfg)) != 0)
		return rc;
	ice = calloc(1, sizeof(*ice));
	if (!ice)
		return -ENOMEM;
	ice->gl = gl;
	ice->id = atomic_fetch_add(&next_id, 1) + 1;
	if (cb)
		ice->cb = *cb;
	ice->arg = arg;
	ice->evq_tail = &ice->evq;
	ice->state = ice->nice_state = PP_ICE_NEW;
	ice->eoc_grace_ms = cfg->eoc_grace_ms ? cfg->eoc_grace_ms :
	    PP_ICE_EOC_GRACE_MS;
	ice->st.rtt_ms = -1;
	ice->refuse_rl = (struct pp_ratelimit)PP_RATELIMIT_INIT(10000, 5);

	/*
	 * Regular nomination (RFC 8445; aggressive is deprecated), trickle,
	 * and consent freshness: a peer that stops answering is FAILED about
	 * 10 s later (libnice's consent timeout), not after a 50 s keepalive.
	 */
	flags = (NiceAgentOption)(NICE_AGENT_OPTION_REGULAR_NOMINATION |
	    NICE_AGENT_OPTION_ICE_TRICKLE | NICE_AGENT_OPTION_CONSENT_FRESHNESS);
	enter(ice);
	ice->agent = nice_agent_new_full(pp_gloop_context(gl),
	    NICE_COMPATIBILITY_RFC5245, flags);
	if (!ice->agent)
		rc = -ENOMEM;
	else
		rc = configure(ice, cfg);
	if (rc != 0) {
		if (ice->agent) {
			g_signal_handlers_disconnect_by_data(ice->agent, ice);
			g_object_unref(ice->agent);
		}
		ice->closing = true;	/* leave() must not arm the timer */
		drop_events(ice);
		leave(ice);
		free_turn(ice);
		explicit_bzero(ice->pwd, sizeof(ice->pwd));
		free(ice);
		return rc;
	}
	uv_timer_init(pp_gloop_uv(gl), &ice->defer);
	uv_timer_init(pp_gloop_uv(gl), &ice->grace);
	uv_timer_init(pp_gloop_uv(gl), &ice->retire);
	ice->defer.data = ice->grace.data = ice->retire.data = ice;
	ice->open_handles = 3;
	leave(ice);
	pp__gloop_hold(gl);
	pp_debug(SUB, "ice %u: agent created (%s)", ice->id,
	    cfg->role == PP_ICE_CONTROLLING ? "controlling" : "controlled");
	*out = ice;
	return 0;
}

static void
drop_pending(struct pp_ice *ice)
{
	for (unsigned i = 0; i < ice->npending; i++)
		free(ice->pending[i]);
	ice->npending = 0;
}

static void
on_ice_closed(uv_handle_t *h)
{
	struct pp_ice *ice = h->data;
	struct pp_gloop *gl = ice->gl;

	if (--ice->open_handles > 0)
		return;
	pp__gloop_enter(gl);
	if (ice->old_stream)
		nice_agent_remove_stream(ice->agent, ice->old_stream);
	nice_agent_remove_stream(ice->agent, ice->stream);
	/* The GTask holds the agent until TURN allocations are released. */
	nice_agent_close_async(ice->agent, NULL, NULL);
	g_object_unref(ice->agent);
	pp__gloop_leave(gl);
	pp_debug(SUB, "ice %u: closed", ice->id);
	drop_pending(ice);
	free_turn(ice);
	explicit_bzero(ice, sizeof(*ice));
	free(ice);
	pp__gloop_release(gl);
}

void
pp_ice_free(struct pp_ice *ice)
{
	if (!ice || ice->closing)
		return;
	ice->closing = true;
	drop_events(ice);
	g_signal_handlers_disconnect_by_data(ice->agent, ice);
	nice_agent_attach_recv(ice->agent, ice->stream, COMPONENT,
	    pp_gloop_context(ice->gl), NULL, NULL);
	if (ice->old_stream)
		nice_agent_attach_recv(ice->agent, ice->old_stream, COMPONENT,
		    pp_gloop_context(ice->gl), NULL, NULL);
	uv_close((uv_handle_t *)&ice->defer, on_ice_closed);
	uv_close((uv_handle_t *)&ice->grace, on_ice_closed);
	uv_close((uv_handle_t *)&ice->retire, on_ice_closed);
}

/* ---- operations ---- */

int
pp_ice_gather(struct pp_ice *ice)
{
	gboolean ok;

	if (ice->gathering)
		return PP_ECONFLICT;
	enter(ice);
	ok = nice_agent_gather_candidates(ice->agent, ice->stream);
	leave(ice);
	if (!ok) {
		pp_err(SUB, "ice %u: gathering failed: no usable local address "
		    "or free port in the configured range", ice->id);
		return -EADDRNOTAVAIL;
	}
	ice->gathering = true;
	return 0;
}

const char *
pp_ice_local_ufrag(const struct pp_ice *ice)
{
	return ice->ufrag;
}

const char *
pp_ice_local_pwd(const struct pp_ice *ice)
{
	return ice->pwd;
}

/* A copy of remote text fit for a log line: bounded, printable. */
static void
printable(char *dst, size_t size, const char *src)
{
	size_t i;

	for (i = 0; i + 1 < size && src[i]; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? src[i] : '?';
	dst[i] = '\0';
}

static int
refuse(struct pp_ice *ice, int rc, const char *why, const char *cand)
{
	char shown[97];
	unsigned skipped;

	if (pp_ratelimit_ok(&ice->refuse_rl, &skipped)) {
		printable(shown, sizeof(shown), cand);
		pp_warn(SUB, "ice %u: remote candidate refused: %s: \"%s%s\" "
		    "(%u similar suppressed)", ice->id, why, shown,
		    strlen(cand) >= sizeof(shown) ? "..." : "", skipped);
	}
	return rc;
}

/* 0.0.0.0 or ::, of an IP4 or IP6 candidate. */
static bool
unspecified(const struct pp_sdp_candidate *c)
{
	static const unsigned char zero[16];
	unsigned char bin[16];

	if (c->addr_kind == PP_SDP_ADDR_IP4)
		return inet_pton(AF_INET, c->address, bin) == 1 &&
		    memcmp(bin, zero, 4) == 0;
	return inet_pton(AF_INET6, c->address, bin) == 1 &&
	    memcmp(bin, zero, 16) == 0;
}

/*
 * What a remote candidate must be, beyond the grammar pp_sdp_parse_candidate()
 * checks, before libnice sees it.  It comes through the signaling server
 * before the peer is authenticated, and libnice's parser trusts its input: a
 * TCP candidate without tcptype is a GLib critical, an odd component id is
 * taken as is, 0.0.0.0 would have us send checks to ourselves.  NULL if the
 * candidate is fine, else the reason.
 */
static const char *
remote_fault(const struct pp_sdp_candidate *c)
{
	size_t n;

	if (c->component != COMPONENT)
		return "component is not 1 (one component: rtcp-mux)";
	if (c->addr_kind == PP_SDP_ADDR_FQDN) {
		n = strlen(c->address);
		if (n >= 6 && g_ascii_strcasecmp(c->address + n - 6,
		    ".local") == 0)
			return "mDNS (.local) candidates are not supported";
		return "connection address is a host name, not an IP address";
	}
	if (unspecified(c))
		return "unspecified connection address";
	if (c->transport == PP_SDP_TRANSPORT_OTHER)
		return "transport is neither UDP nor TCP";
	if (c->type == PP_SDP_CAND_OTHER)
		return "unknown candidate type";
	if (c->priority == 0)
		return "priority 0";
	if (c->transport == PP_SDP_UDP && c->port == 0)
		return "port 0 on a UDP candidate";
	if (c->transport == PP_SDP_TCP && c->tcptype == PP_SDP_TCPTYPE_NONE)
		return "TCP candidate without tcptype";
	if (c->transport == PP_SDP_UDP && c->tcptype != PP_SDP_TCPTYPE_NONE)
		return "tcptype on a UDP candidate";
	if (c->has_raddr != c->has_rport)
		return "raddr and rport must come together";
	if (c->has_raddr && c->raddr_kind == PP_SDP_ADDR_FQDN)
		return "raddr is not an IP address";
	/* SDP allows UTF-8 in extension values; libnice and our logs not. */
	for (const char *p = c->raw; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return "control or non-ASCII byte";
	return NULL;
}

/* Hands one checked candidate to libnice, in normalised form only. */
static int
apply_candidate(struct pp_ice *ice, const struct pp_sdp_candidate *c)
{
	char line[2 + PP_SDP_CAND_MAX + 1];
	NiceCandidate *nc;
	GSList one = { NULL, NULL };
	int n;

	snprintf(line, sizeof(line), "a=%s", c->raw);
	nc = nice_agent_parse_remote_candidate_sdp(ice->agent, ice->stream,
	    line);
	if (!nc)
		return PP_EINVAL;
	one.data = nc;
	n = nice_agent_set_remote_candidates(ice->agent, ice->stream,
	    COMPONENT, &one);
	nice_candidate_free(nc);
	if (n < 0)
		return PP_EINVAL;
	ice->nremote++;
	pp_debug(SUB, "ice %u: remote %s", ice->id, c->raw);
	return 0;
}

static void
apply_pending(struct pp_ice *ice)
{
	for (unsigned i = 0; i < ice->npending; i++) {
		const struct pp_sdp_candidate *c = ice->pending[i];

		if (c->ufrag[0] && strcmp(c->ufrag, ice->remote_ufrag) != 0)
			pp_debug(SUB, "ice %u: dropped a waiting candidate of "
			    "an earlier generation", ice->id);
		else if (apply_candidate(ice, c) != 0)
			pp_warn(SUB, "ice %u: libnice refused a validated "
			    "candidate", ice->id);
	}
	drop_pending(ice);
}

int
pp_ice_set_remote_credentials(struct pp_ice *ice, const char *ufrag,
    const char *pwd)
{
	gboolean ok;

	if (!ufrag || !pp_sdp_ice_ufrag_valid(ufrag, strnlen(ufrag,
	    PP_SDP_UFRAG_MAX + 1))) {
		pp_warn(SUB, "ice %u: remote ice-ufrag refused: 4-256 of "
		    "A-Z a-z 0-9 + /", ice->id);
		return PP_EINVAL;
	}
	if (!pwd || !pp_sdp_ice_pwd_valid(pwd, strnlen(pwd,
	    PP_SDP_PWD_MAX + 1))) {
		pp_warn(SUB, "ice %u: remote ice-pwd refused: 22-256 of "
		    "A-Z a-z 0-9 + /", ice->id);
		return PP_EINVAL;
	}
	if (ice->remote_creds) {
		if (strcmp(ufrag, ice->remote_ufrag) == 0)
			return 0;
		pp_warn(SUB, "ice %u: remote credentials changed without an "
		    "ICE restart", ice->id);
		return PP_ECONFLICT;
	}
	enter(ice);
	ok = nice_agent_set_remote_credentials(ice->agent, ice->stream, ufrag,
	    pwd);
	if (ok) {
		g_strlcpy(ice->remote_ufrag, ufrag, sizeof(ice->remote_ufrag));
		ice->remote_creds = true;
		apply_pending(ice);
		if (ice->remote_done) {
			ice->remote_done = false;
			apply_remote_eoc(ice);
		}
	}
	leave(ice);
	return ok ? 0 : PP_EINVAL;
}

int
pp_ice_add_remote_candidate(struct pp_ice *ice, const char *candidate)
{
	static const char prefix[] = "candidate: ";
	struct pp_sdp_candidate c;
	char err[160];
	const char *why;
	int rc;

	if (!candidate)
		return PP_EINVAL;
	rc = pp_sdp_parse_candidate(candidate, strnlen(candidate,
	    PP_SDP_LINE_MAX + 1), &c, err, sizeof(err));
	if (rc != 0) {
		/* The log line names the candidate already. */
		why = strncmp(err, prefix, sizeof(prefix) - 1) == 0 ?
		    err + sizeof(prefix) - 1 : err;
		return refuse(ice, rc, why, candidate);
	}
	if ((why = remote_fault(&c)) != NULL)
		return refuse(ice, PP_EINVAL, why, candidate);
	if (ice->nremote + ice->npending >= PP_ICE_MAX_REMOTE_CANDIDATES)
		return refuse(ice, PP_ELIMIT, "too many remote candidates",
		    candidate);
	if (c.ufrag[0] && ice->remote_creds &&
	    strcmp(c.ufrag, ice->remote_ufrag) != 0)
		return refuse(ice, PP_ECONFLICT, "its ufrag is not the "
		    "current remote ufrag (earlier ICE generation)", candidate);
	if (!ice->remote_creds) {
		struct pp_sdp_candidate *p = malloc(sizeof(*p));

		if (!p)
			return -ENOMEM;
		*p = c;
		ice->pending[ice->npending++] = p;
		return 0;
	}
	enter(ice);
	rc = apply_candidate(ice, &c);
	leave(ice);
	if (rc != 0)
		return refuse(ice, rc, "refused by libnice", candidate);
	return 0;
}

int
pp_ice_remote_gathering_done(struct pp_ice *ice)
{
	if (!ice->remote_creds) {
		ice->remote_done = true;
		return 0;
	}
	enter(ice);
	apply_remote_eoc(ice);
	leave(ice);
	return 0;
}

int
pp_ice_send(struct pp_ice *ice, const void *buf, size_t len)
{
	gint n;

	if (len == 0)
		return PP_EINVAL;
	if (len > PP_ICE_MAX_DATAGRAM)
		return PP_ETOOBIG;
	/*
	 * No thread-default push on this hot path: a send creates no GTask.
	 * It may start a TURN channel-bind timer, hence the kick.
	 */
	ice->depth++;
	n = nice_agent_send(ice->agent, ice->gen_pair || !ice->old_stream ?
	    ice->stream : ice->old_stream, COMPONENT, (guint)len, buf);
	ice->depth--;
	pp_gloop_kick(ice->gl);
	if (ice->evq && ice->depth == 0 && !ice->closing)
		uv_timer_start(&ice->defer, on_defer, 0, 0);
	if (n < 0) {
		ice->st.tx_errors++;
		if (!ice->st.have_pair || ice->state == PP_ICE_FAILED)
			return -ENOTCONN;
		return -EAGAIN;
	}
	ice->st.tx_packets++;
	ice->st.tx_bytes += (uint64_t)n;
	return n;
}

/* Forgets the remote side of the current generation. */
static void
reset_remote(struct pp_ice *ice)
{
	ice->remote_creds = false;
	ice->remote_done = false;
	ice->remote_eoc = false;
	ice->connected_gen = false;
	uv_timer_stop(&ice->grace);
	ice->remote_ufrag[0] = '\0';
	ice->nremote = 0;
	drop_pending(ice);
}

/*
 * Before gathering there is nothing to gather again: new credentials on
 * the same stream (libnice's own restart) are all a restart means.
 */
static int
restart_ungathered(struct pp_ice *ice)
{
	int rc;

	enter(ice);
	if (!nice_agent_restart_stream(ice->agent, ice->stream)) {
		leave(ice);
		return PP_EPROTO;
	}
	rc = load_local_credentials(ice);
	reset_remote(ice);
	leave(ice);
	return rc;
}

/*
 * After gathering, a restart is a new stream: libnice's restart keeps the
 * local candidates it gathered once, and a path usually dies because they
 * are stale (a new address, a NAT mapping gone, a relay allocation lost).
 * The generation that last had a pair stays until the new one selects one.
 */
static int
restart_gathered(struct pp_ice *ice)
{
	guint id, prev, keep;
	bool prev_pair = ice->gen_pair, prev_gathered = ice->gathered;
	int rc;

	enter(ice);
	if ((rc = add_stream(ice, &id)) < 0)
		goto out;
	/* A generation that never selected a pair is no fallback. */
	prev = ice->stream;
	keep = ice->gen_pair || ice->old_stream == 0 ? prev : ice->old_stream;
	/* Current before gathering: its first candidates come during the call. */
	ice->stream = id;
	ice->gen_pair = false;
	ice->gathered = false;
	if (!nice_agent_gather_candidates(ice->agent, id)) {
		pp_err(SUB, "ice %u: restart: gathering failed: no usable local "
		    "address or free port in the configured range", ice->id);
		ice->stream = prev;
		ice->gen_pair = prev_pair;
		ice->gathered = prev_gathered;
		nice_agent_remove_stream(ice->agent, id);
		rc = -EADDRNOTAVAIL;
		goto out;
	}
	if (ice->old_stream && ice->old_stream != keep)
		nice_agent_remove_stream(ice->agent, ice->old_stream);
	if (prev != keep)
		nice_agent_remove_stream(ice->agent, prev);
	ice->old_stream = keep;
	uv_timer_stop(&ice->retire);
	rc = load_local_credentials(ice);
	reset_remote(ice);
out:
	leave(ice);
	return rc;
}

int
pp_ice_restart(struct pp_ice *ice)
{
	int rc;

	if (ice->closing)
		return PP_ECONFLICT;
	rc = ice->gathering ? restart_gathered(ice) : restart_ungathered(ice);
	if (rc < 0)
		return rc;
	ice->st.restarts++;
	pp_info(SUB, "ice %u: restarted (generation %u)%s", ice->id,
	    ice->st.restarts, ice->gathering ? "; gathering again" : "");
	return 0;
}

int
pp_ice_set_turn(struct pp_ice *ice, const struct pp_ice_turn *turn,
    size_t nturn)
{
	struct pp_ice_config cfg;

	memset(&cfg, 0, sizeof(cfg));
	cfg.role = PP_ICE_CONTROLLED;
	cfg.turn = turn;
	cfg.nturn = nturn;
	if (check_config(&cfg) != 0)
		return PP_ECONFIG;
	return copy_turn(ice, turn, nturn);
}

enum pp_ice_state
pp_ice_get_state(const struct pp_ice *ice)
{
	return ice->state;
}

void
pp_ice_get_status(const struct pp_ice *ice, struct pp_ice_status *st)
{
	*st = ice->st;
	st->state = ice->state;
}
