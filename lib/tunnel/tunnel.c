/*
 * The tunnel over one peer connection: the control channel, the INIT
 * exchange, dispatching control messages, and the consumer listeners.  The
 * forwarded connections themselves are in proxy.c.
 */
#include "tunnel/tun_int.h"

#include "base/error.h"
#include "base/log.h"
#include "base/random.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define SUB "tunnel"

/* Ports tried when the peer's own port number is taken locally (spec). */
#define ALT_PORT_MIN	20000
#define ALT_PORT_MAX	59999

static void ctl_open(struct pp_dc *dc, void *ctx);
static void ctl_message(struct pp_dc *dc, int binary, const uint8_t *data,
    size_t len, void *ctx);
static void ctl_close(struct pp_dc *dc, int status, void *ctx);
static const struct pp_dc_ops ctl_ops = { ctl_open, ctl_message, ctl_close, NULL };

const struct pp_tun_service *
pp__tun_service(const struct pp_tun *t, uint16_t port, enum pp_tun_proto proto)
{
	for (size_t i = 0; i < t->nservices; i++)
		if (t->services[i].port == port && t->services[i].proto == proto)
			return &t->services[i];
	return NULL;
}

int
pp__tun_allowed(const struct pp_tun *t, uint16_t port, enum pp_tun_proto proto)
{
	return t->ops.allow == NULL || t->ops.allow(t->ctx, port, proto);
}

/* Our services this peer may use, as ports for INIT or PORTS. */
static size_t
offer_list(const struct pp_tun *t, struct pp_tun_port *out)
{
	size_t n = 0;

	for (size_t i = 0; i < t->nservices; i++)
		if (pp__tun_allowed(t, t->services[i].port, t->services[i].proto)) {
			out[n].port = t->services[i].port;
			out[n].proto = t->services[i].proto;
			n++;
		}
	return n;
}

int
pp__tun_ctl_send(struct pp_tun *t, char *json)
{
	int rc;

	if (json == NULL)
		return -ENOMEM;
	if (t->ctl == NULL || pp_dc_state(t->ctl) != PP_DC_OPEN)
		rc = PP_ECONFLICT;
	else
		rc = pp_dc_send_text(t->ctl, json, strlen(json));
	if (rc < 0)
		pp_warn(SUB, "peer %s: control message not sent: %s",
		    t->peer_name, pp_strerror(rc));
	free(json);
	return rc;
}

static void __attribute__((format(printf, 2, 3)))
fatal(struct pp_tun *t, const char *fmt, ...)
{
	char why[600];
	va_list ap;

	if (t->dead)
		return;
	t->dead = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pp_warn(SUB, "peer %s: %s: tearing the connection down", t->peer_name, why);
	if (t->ops.on_fatal)
		t->ops.on_fatal(t->ctx, why);
}

/* ---- listeners ---- */

/* Bursts of datagrams wait in the kernel, not on the floor, while the loop
 * is busy elsewhere (what the kernel allows; best effort). */
void
pp__udp_sockbuf(uv_udp_t *u)
{
	int n = PP_TUN_UDP_SOCKBUF;

	(void)uv_recv_buffer_size((uv_handle_t *)u, &n);
	n = PP_TUN_UDP_SOCKBUF;
	(void)uv_send_buffer_size((uv_handle_t *)u, &n);
}

static void
listener_closed(uv_handle_t *h)
{
	free(h->data);
}

static void
on_tcp_connection(uv_stream_t *s, int status)
{
	struct listener *l = s->data;

	if (status < 0) {
		pp_warn(SUB, "listener %s: %s", l->addr, uv_strerror(status));
		return;
	}
	(void)pp__px_accept_tcp(l->t, l);
}

static void
udp_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct listener *l = h->data;

	(void)hint;
	*buf = uv_buf_init((char *)l->rbuf, sizeof(l->rbuf));
}

static void
on_udp_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *buf,
    const struct sockaddr *from, unsigned flags)
{
	struct listener *l = u->data;

	(void)buf;
	if (n < 0) {
		pp_warn(SUB, "listener %s: %s", l->addr, uv_strerror((int)n));
		return;
	}
	if (from == NULL || (flags & UV_UDP_PARTIAL))
		return;		/* nothing, or a datagram over our buffer */
	pp__px_udp_datagram(l->t, l, from, l->rbuf, (size_t)n);
}

static int
make_addr(const char *host, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
		return 0;
	return PP_EINVAL;
}

/*
 * A bound socket for host:port, or -errno (-EADDRINUSE when taken).  Bound
 * by hand, not through libuv, so that trying the next port costs no handle
 * (libuv reports a taken TCP port only at uv_listen, and a handle cannot be
 * reused before its close callback).
 */
static int
bind_socket(const char *host, uint16_t port, enum pp_tun_proto proto)
{
	struct sockaddr_storage ss;
	int fd, one = 1, rc;

	if ((rc = make_addr(host, port, &ss)) < 0)
		return rc;
	fd = socket(ss.ss_family, (proto == PP_TUN_TCP ? SOCK_STREAM : SOCK_DGRAM) |
	    SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (proto == PP_TUN_TCP)
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, ss.ss_family == AF_INET ?
	    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) < 0 ||
	    (proto == PP_TUN_TCP && listen(fd, 128) < 0)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	return fd;
}

/* Listens for one of the peer's ports: its own number when free, else the
 * first free one in 20000-59999 (spec), or exactly listen_port if nonzero. */
static int
listener_add(struct pp_tun *t, const char *host, uint16_t port,
    enum pp_tun_proto proto, uint16_t fixed)
{
	struct listener *l;
	unsigned p = fixed ? fixed : port;
	int fd, rc;

	while ((fd = bind_socket(host, (uint16_t)p, proto)) == -EADDRINUSE &&
	    !fixed) {
		p = p < ALT_PORT_MIN ? ALT_PORT_MIN : p + 1;
		if (p > ALT_PORT_MAX)
			break;
	}
	if (fd < 0) {
		pp_warn(SUB, "peer %s port %u/%s: cannot listen on %s:%u: %s",
		    t->peer_name, port, pp_tun_proto_name(proto), host, p,
		    pp_strerror(fd));
		return fd;
	}
	if ((l = calloc(1, sizeof(*l))) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	l->t = t;
	l->proto = proto;
	l->port = port;
	snprintf(l->addr, sizeof(l->addr), strchr(host, ':') ? "[%s]:%u" : "%s:%u",
	    host, p);
	rc = proto == PP_TUN_TCP ? uv_tcp_init(t->loop, &l->u.tcp) :
	    uv_udp_init(t->loop, &l->u.udp);
	if (rc < 0) {
		close(fd);
		free(l);
		return rc;
	}
	l->u.h.data = l;
	if (proto == PP_TUN_TCP) {
		if ((rc = uv_tcp_open(&l->u.tcp, fd)) == 0)
			rc = uv_listen(&l->u.s, 128, on_tcp_connection);
	} else {
		if ((rc = uv_udp_open(&l->u.udp, fd)) == 0 &&
		    (pp__udp_sockbuf(&l->u.udp), 1))
			rc = uv_udp_recv_start(&l->u.udp, udp_alloc, on_udp_recv);
	}
	if (rc < 0) {
		uv_os_fd_t owned;

		/* If uv_*_open failed the handle has no fd and it is still ours
		 * to close; after a later failure uv_close closes it. */
		pp_warn(SUB, "listener %s: %s", l->addr, uv_strerror(rc));
		if (uv_fileno(&l->u.h, &owned) != 0)
			close(fd);
		uv_close(&l->u.h, listener_closed);
		return rc;
	}
	l->live = 1;
	l->next = t->listeners;
	t->listeners = l;
	pp_info(SUB, "peer %s port %u/%s -> %s", t->peer_name, port,
	    pp_tun_proto_name(proto), l->addr);
	if (t->ops.on_listen)
		t->ops.on_listen(t->ctx, port, proto, l->addr);
	return 0;
}

static int
has_listener(const struct pp_tun *t, uint16_t port, enum pp_tun_proto proto,
    const char *host)
{
	size_t hl = strlen(host);

	for (const struct listener *l = t->listeners; l; l = l->next)
		if (l->port == port && l->proto == proto &&
		    (strncmp(l->addr, host, hl) == 0 ||
		    (l->addr[0] == '[' && strncmp(l->addr + 1, host, hl) == 0)))
			return 1;
	return 0;
}

static int
offers(const struct pp_tun *t, uint16_t port, enum pp_tun_proto proto)
{
	for (size_t j = 0; j < t->theirs.nports; j++)
		if (t->theirs.ports[j].port == port &&
		    t->theirs.ports[j].proto == proto)
			return 1;
	return 0;
}

size_t
pp_tun_listeners(const struct pp_tun *t, struct pp_tun_listener_info *out,
    size_t max)
{
	size_t n = 0;

	for (const struct listener *l = t->listeners; l && n < max; l = l->next) {
		out[n].port = l->port;
		out[n].proto = l->proto;
		snprintf(out[n].addr, sizeof(out[n].addr), "%s", l->addr);
		n++;
	}
	return n;
}

/* ---- control channel ---- */

static void
send_init(struct pp_tun *t)
{
	char *json = NULL;

	if (t->sent_init)
		return;
	/* Before we know who the peer is, only what its name alone may use
	 * (a legacy v1 peer); an authenticated peer gets PORTS later. */
	t->ours.nports = offer_list(t, t->ours.ports);
	/* The SCTP stack is up by now (INIT travels on it). */
	if (!pp_pc_zero_checksum_ok())
		t->ours.features &= ~PP_TUN_F_ZEROCSUM;
	if (pp_tun_init_build(&t->ours, &json) < 0 || pp__tun_ctl_send(t, json) < 0) {
		fatal(t, "cannot send INIT");
		return;
	}
	t->sent_init = 1;
}

/* Listeners for what the peer offers us now; drops those it no longer does. */
static void
listeners_sync(struct pp_tun *t)
{
	struct listener **lp = &t->listeners, *l;

	while ((l = *lp) != NULL) {
		int keep = 0;

		for (size_t j = 0; j < t->theirs.nports; j++)
			if (t->theirs.ports[j].port == l->port &&
			    t->theirs.ports[j].proto == l->proto)
				keep = 1;
		if (keep) {
			lp = &l->next;
			continue;
		}
		pp_info(SUB, "peer %s no longer offers port %u/%s: %s closed",
		    t->peer_name, l->port, pp_tun_proto_name(l->proto), l->addr);
		*lp = l->next;
		uv_close(&l->u.h, listener_closed);
	}
	for (size_t i = 0; i < t->nforwards; i++) {
		const struct pp_tun_forward *f = &t->forwards[i];

		if (!has_listener(t, f->port, f->proto, f->listen_host) &&
		    offers(t, f->port, f->proto))
			(void)listener_add(t, f->listen_host, f->port, f->proto,
			    f->listen_port);
	}
	if (t->listen_host == NULL)
		return;
	for (size_t i = 0; i < t->theirs.nports; i++)
		if (!has_listener(t, t->theirs.ports[i].port,
		    t->theirs.ports[i].proto, t->listen_host))
			(void)listener_add(t, t->listen_host,
			    t->theirs.ports[i].port, t->theirs.ports[i].proto, 0);
}

static void
peer_ports_changed(struct pp_tun *t)
{
	t->st.npeer_ports = t->theirs.nports;
	memcpy(t->st.peer_ports, t->theirs.ports,
	    t->theirs.nports * sizeof(t->theirs.ports[0]));
	listeners_sync(t);
}

static void
become_ready(struct pp_tun *t)
{
	const struct pp_tun_settings *s = &t->settings;

	t->ready = 1;
	t->st.ready = 1;
	t->st.settings = t->settings;
	pp_info(SUB, "peer %s: tunnel v%d ready%s: compression %s%s%s%s", t->peer_name,
	    s->version, t->authenticated ? ", identity verified" : "",
	    s->adaptive ? "adaptive" : pp_tun_codec_name(s->codec),
	    s->stream ? " (stream)" : "", s->unreliable ? ", unreliable" : "",
	    s->flow ? ", flow control" : "");
	if (t->authenticated) {
		/* What this identity may use, now that we know it is who it says. */
		struct pp_tun_port ports[PP_TUN_MAX_PORTS];
		size_t n = offer_list(t, ports);
		char *json = NULL;

		if (pp_tun_ports_build(ports, n, &json) == 0)
			(void)pp__tun_ctl_send(t, json);
	}
	peer_ports_changed(t);
	if (t->ops.on_ready)
		t->ops.on_ready(t->ctx, &t->settings);
}

static void
identity_known(struct pp_tun *t, const uint8_t *pub)
{
	char why[512] = "refused by policy";

	uv_timer_stop(&t->auth_timer);
	if (t->ops.on_identity &&
	    t->ops.on_identity(t->ctx, pub, why, sizeof(why)) < 0) {
		fatal(t, "%s", why);
		return;
	}
	become_ready(t);
}

static void
auth_view(const struct pp_tun *t, int ours, struct pp_tun_auth_view *v,
    const char *peer_fp)
{
	v->offerer = ours ? t->offerer : !t->offerer;
	v->signer_name = ours ? t->local_name : t->peer_name;
	v->other_name = ours ? t->peer_name : t->local_name;
	v->room_uuid = t->room_uuid ? t->room_uuid : "";
	v->signer_fp = ours ? t->local_fp : peer_fp;
	v->other_fp = ours ? peer_fp : t->local_fp;
	v->signer_nonce = ours ? t->ours.nonce : t->theirs.nonce;
	v->other_nonce = ours ? t->theirs.nonce : t->ours.nonce;
}

/* HMAC-SHA256(secret, "peerpipe-invite-v2\n" || transcript): the same
 * construction as lib/agent/invite.c, which the gateway checks with. */
static int
invite_mac(const uint8_t *secret, const char *text, size_t len, uint8_t *mac)
{
	static const char ctx[] = "peerpipe-invite-v2\n";
	unsigned int mlen = PP_TUN_INVITE_MAC_LEN;
	uint8_t buf[sizeof(ctx) + 1024];

	if (len > 1024)
		return PP_ETOOBIG;
	memcpy(buf, ctx, sizeof(ctx) - 1);
	memcpy(buf + sizeof(ctx) - 1, text, len);
	return HMAC(EVP_sha256(), secret, PP_TUN_INVITE_MAC_LEN, buf,
	    sizeof(ctx) - 1 + len, mac, &mlen) != NULL &&
	    mlen == PP_TUN_INVITE_MAC_LEN ? 0 : PP_EINVAL;
}

static void
send_auth(struct pp_tun *t)
{
	struct pp_tun_auth_view v;
	struct pp_pc_status st;
	uint8_t sig[PP_TUN_SIG_LEN];
	char text[1024], *json = NULL;
	int n;

	pp_pc_get_status(t->pc, &st);
	auth_view(t, 1, &v, st.remote_fingerprint);
	if ((n = pp_tun_auth_transcript(&v, text, sizeof(text))) < 0 ||
	    pp_id_sign(t->identity, text, (size_t)n, sig) < 0) {
		fatal(t, "cannot send AUTH");
		return;
	}
	if (t->has_invite) {
		uint8_t mac[PP_TUN_INVITE_MAC_LEN];

		if (invite_mac(t->invite_secret, text, (size_t)n, mac) < 0 ||
		    pp_tun_auth_invite_build(sig, t->invite_id, mac, &json) < 0) {
			fatal(t, "cannot send AUTH");
			return;
		}
		pp_info(SUB, "peer %s: proving our invite in AUTH", t->peer_name);
	} else if (pp_tun_auth_build(sig, &json) < 0) {
		fatal(t, "cannot send AUTH");
		return;
	}
	if (pp__tun_ctl_send(t, json) < 0) {
		fatal(t, "cannot send AUTH");
		return;
	}
	t->auth_sent = 1;
}

static void
on_auth(struct pp_tun *t, const struct pp_tun_msg *m)
{
	struct pp_tun_auth_view v;
	struct pp_pc_status st;
	char text[1024], key[PP_ID_PUB_STRLEN + 1];
	int n;

	if (!t->got_init || !t->auth_sent || t->authenticated) {
		fatal(t, "AUTH out of order");
		return;
	}
	pp_pc_get_status(t->pc, &st);
	auth_view(t, 0, &v, st.remote_fingerprint);
	pp_id_pub_format(t->theirs.id, key, sizeof(key));
	if (!m->u.auth.valid ||
	    (n = pp_tun_auth_transcript(&v, text, sizeof(text))) < 0 ||
	    pp_id_verify(t->theirs.id, text, (size_t)n, m->u.auth.sig) < 0) {
		fatal(t, "identity check failed: %s did not sign this session "
		    "(a man in the middle between us, e.g. a signaling server "
		    "that swapped the DTLS fingerprints?)", key);
		return;
	}
	t->authenticated = 1;
	pp_info(SUB, "peer %s: identity %s verified end to end", t->peer_name, key);
	/*
	 * Only now is the INIT's author known to be our SCTP peer: a man in
	 * the middle relays INITs, and would drop packets without a checksum
	 * if it checks them (it fails the AUTH above anyway).
	 */
	if (t->settings.features & PP_TUN_F_ZEROCSUM) {
		pp_pc_allow_zero_checksum(t->pc);
		pp_info(SUB, "peer %s: SCTP packets without checksums (DTLS "
		    "authenticates them; neither side checks)", t->peer_name);
	}
	if (m->u.auth.has_invite && (size_t)n < sizeof(t->peer_invite_text)) {
		t->peer_has_invite = 1;
		memcpy(t->peer_invite_id, m->u.auth.invite_id,
		    sizeof(t->peer_invite_id));
		memcpy(t->peer_invite_mac, m->u.auth.invite_mac,
		    sizeof(t->peer_invite_mac));
		memcpy(t->peer_invite_text, text, (size_t)n);
		t->peer_invite_len = (size_t)n;
	}
	identity_known(t, t->theirs.id);
}

static void
on_auth_timeout(uv_timer_t *h)
{
	fatal(h->data, "no AUTH within %u ms of INIT",
	    ((struct pp_tun *)h->data)->auth_timeout_ms);
}

static void
on_init(struct pp_tun *t, const struct pp_tun_init *in)
{
	if (t->got_init) {
		fatal(t, "second INIT");
		return;
	}
	if (strcmp(in->il_user, t->local_name) != 0) {
		fatal(t, "INIT is meant for \"%s\", not us (\"%s\")",
		    in->il_user, t->local_name);
		return;
	}
	t->got_init = 1;
	t->theirs = *in;
	send_init(t);
	if (t->dead)
		return;
	pp_tun_negotiate(&t->ours, &t->theirs, &t->settings);
	if (t->settings.version >= 2)
		pp_pc_allow_jumbo(t->pc);	/* our own kind: big packets are fine */
	if (t->ours.has_id && t->theirs.has_id) {
		/* Ports come in PORTS once the peer knows who we are. */
		t->theirs.nports = 0;
		send_auth(t);
		uv_timer_start(&t->auth_timer, on_auth_timeout,
		    t->auth_timeout_ms, 0);
		return;
	}
	identity_known(t, NULL);
}

static void
ctl_open(struct pp_dc *dc, void *ctx)
{
	(void)dc;
	send_init(ctx);
}

static void
ctl_message(struct pp_dc *dc, int binary, const uint8_t *data, size_t len,
    void *ctx)
{
	struct pp_tun *t = ctx;
	struct pp_tun_msg *m;
	char err[160], *json = NULL;
	int rc;

	(void)dc, (void)binary;
	if (t->dead)
		return;
	if ((m = malloc(sizeof(*m))) == NULL)
		return;
	if ((rc = pp_tun_msg_parse(data, len, m, err, sizeof(err))) < 0) {
		free(m);
		fatal(t, "bad control message: %s", err);
		return;
	}
	switch (m->type) {
	case PP_TUN_MSG_INIT:
		on_init(t, &m->u.init);
		break;
	case PP_TUN_MSG_AUTH:
		on_auth(t, m);
		break;
	case PP_TUN_MSG_PORTS:
		if (!t->authenticated) {
			fatal(t, "PORTS before AUTH");
			break;
		}
		memcpy(t->theirs.ports, m->u.ports.ports, sizeof(t->theirs.ports));
		t->theirs.nports = m->u.ports.nports;
		if (t->ready)
			peer_ports_changed(t);
		break;
	case PP_TUN_MSG_BEGIN_PROXY:
		pp__px_begin(t, &m->u.begin);
		break;
	case PP_TUN_MSG_SUCCESS:
	case PP_TUN_MSG_FAILED:
		pp__px_result(t, m->type == PP_TUN_MSG_FAILED, &m->u.result);
		break;
	case PP_TUN_MSG_PING:
		if (pp_tun_ping_build(1, m->u.seq, &json) == 0)
			(void)pp__tun_ctl_send(t, json);
		break;
	case PP_TUN_MSG_PONG:
		t->pong_seq = m->u.seq;
		break;
	case PP_TUN_MSG_UNKNOWN:
		pp_debug(SUB, "peer %s: control message of unknown type ignored",
		    t->peer_name);
		break;
	}
	free(m);
}

static void
ctl_close(struct pp_dc *dc, int status, void *ctx)
{
	struct pp_tun *t = ctx;

	(void)dc;
	t->ctl = NULL;
	if (!t->freeing)
		fatal(t, "control channel closed (%s)",
		    status ? pp_strerror(status) : "by the peer");
}

static void
on_channel_refused(struct pp_tun *t, struct pp_dc *dc, const char *why)
{
	pp_warn(SUB, "peer %s: channel \"%s\" refused: %s", t->peer_name,
	    pp_dc_label(dc), why);
	pp_dc_set_ops(dc, NULL, NULL);
	(void)pp_dc_close(dc);
}

void
pp_tun_on_channel(struct pp_tun *t, struct pp_dc *dc)
{
	const char *label = pp_dc_label(dc);
	char uuid[PP_TUN_UUID_LEN + 1];

	if (t->dead) {
		on_channel_refused(t, dc, "connection is being torn down");
	} else if (strcmp(label, PP_TUN_CTL_LABEL) == 0) {
		if (t->offerer || t->ctl != NULL) {
			on_channel_refused(t, dc, "we already have a control channel");
			return;
		}
		t->ctl = dc;
		pp_dc_set_ops(dc, &ctl_ops, t);
		send_init(t);
	} else if (pp_tun_proxy_label_parse(label, uuid)) {
		if (!t->ready)
			on_channel_refused(t, dc, "before INIT");
		else if (pp__px_channel(t, dc, uuid) < 0)
			on_channel_refused(t, dc, "we did not ask for it");
	} else {
		on_channel_refused(t, dc, "unknown label");
	}
}

void
pp_tun_on_pc_state(struct pp_tun *t, enum pp_pc_state state)
{
	struct pp_dc_init init;
	int rc;

	if (state != PP_PC_CONNECTED || !t->offerer || t->ctl != NULL || t->dead)
		return;
	/* Like v1 peers, the offerer owns the control channel. */
	memset(&init, 0, sizeof(init));
	init.label = PP_TUN_CTL_LABEL;
	if ((rc = pp_pc_open_channel(t->pc, &init, &ctl_ops, t, &t->ctl)) < 0)
		fatal(t, "cannot open the control channel: %s", pp_strerror(rc));
}

/* ---- lifetime ---- */

static void
tun_closed(uv_handle_t *h)
{
	struct pp_tun *t = h->data;

	free(t->enc);
	free(t->dec);
	free(t->rbuf);
	OPENSSL_cleanse(t->invite_secret, sizeof(t->invite_secret));
	free(t);
}

/* Our own copies, held through the API's const pointers. */
static void
free_const(const void *p)
{
	free((void *)(uintptr_t)p);
}

static char *
dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int
pp_tun_new(struct pp_pc *pc, const struct pp_tun_config *cfg,
    const struct pp_tun_ops *ops, void *ctx, struct pp_tun **out)
{
	struct pp_tun *t;
	size_t i;

	if (cfg->nservices > PP_TUN_MAX_PORTS || cfg->local_name == NULL ||
	    cfg->peer_name == NULL)
		return PP_EINVAL;
	if ((t = calloc(1, sizeof(*t))) == NULL)
		return -ENOMEM;
	t->loop = cfg->loop;
	t->pc = pc;
	if (ops)
		t->ops = *ops;
	t->ctx = ctx;
	snprintf(t->local_name, sizeof(t->local_name), "%s", cfg->local_name);
	snprintf(t->peer_name, sizeof(t->peer_name), "%s", cfg->peer_name);
	t->offerer = cfg->offerer;
	t->v1_start_delay_ms = cfg->v1_start_delay_ms ? cfg->v1_start_delay_ms : 50;
	t->tap_bytes = cfg->tap_bytes;
	t->tap_budget = cfg->tap_budget;
	t->enc_cap = pp_codec_bound(PP_UDPB_CAP);
	t->enc = malloc(t->enc_cap);
	t->dec = malloc(PP_FR_PLAIN_MAX);
	t->rbuf = malloc(1 + PP_UDPB_DGRAM_MAX);	/* px_alloc */
	t->services = calloc(cfg->nservices + 1, sizeof(*t->services));
	t->forwards = calloc(cfg->nforwards + 1, sizeof(*t->forwards));
	t->listen_host = dup_or_null(cfg->listen_host);
	if (!t->enc || !t->dec || !t->rbuf || !t->services || !t->forwards ||
	    (cfg->listen_host && !t->listen_host))
		goto nomem;
	for (i = 0; i < cfg->nservices; i++) {
		t->services[i] = cfg->services[i];
		t->services[i].name = strdup(cfg->services[i].name);
		t->services[i].host = strdup(cfg->services[i].host);
		t->nservices++;
		if (!t->services[i].name || !t->services[i].host)
			goto nomem;
		t->ours.ports[i].port = cfg->services[i].port;
		t->ours.ports[i].proto = cfg->services[i].proto;
	}
	t->ours.nports = cfg->nservices;
	for (i = 0; i < cfg->nforwards; i++) {
		t->forwards[i] = cfg->forwards[i];
		t->forwards[i].listen_host = strdup(cfg->forwards[i].listen_host);
		t->nforwards++;
		if (!t->forwards[i].listen_host)
			goto nomem;
	}
	snprintf(t->ours.il_user, sizeof(t->ours.il_user), "%s", cfg->peer_name);
	t->ours.codec = cfg->codec;
	t->ours.unreliable = cfg->unreliable;
	t->ours.extended = cfg->extended;
	t->ours.version = PP_TUN_VERSION;
	t->ours.features = PP_TUN_F_ALL;
	t->ours.adaptive = cfg->adaptive;
	t->auth_timeout_ms = cfg->auth_timeout_ms ? cfg->auth_timeout_ms : 10000;
	if (cfg->identity && cfg->local_fp) {
		t->identity = cfg->identity;
		t->room_uuid = dup_or_null(cfg->room_uuid ? cfg->room_uuid : "");
		t->local_fp = strdup(cfg->local_fp);
		if (!t->room_uuid || !t->local_fp ||
		    pp_random_bytes(t->ours.nonce, sizeof(t->ours.nonce)) < 0)
			goto nomem;
		pp_id_public(cfg->identity, t->ours.id);
		t->ours.has_id = 1;
		if (cfg->invite_id && cfg->invite_secret) {
			t->has_invite = 1;
			memcpy(t->invite_id, cfg->invite_id, sizeof(t->invite_id));
			memcpy(t->invite_secret, cfg->invite_secret,
			    sizeof(t->invite_secret));
		}
	}
	uv_timer_init(t->loop, &t->retry);
	t->retry.data = t;
	uv_timer_init(t->loop, &t->auth_timer);
	t->auth_timer.data = t;
	*out = t;
	return 0;
nomem:
	t->freeing = 1;
	uv_timer_init(t->loop, &t->retry);
	t->retry.data = t;
	uv_timer_init(t->loop, &t->auth_timer);
	t->auth_timer.data = t;
	pp_tun_free(t);
	return -ENOMEM;
}

void
pp_tun_free(struct pp_tun *t)
{
	struct listener *l;

	if (t == NULL)
		return;
	t->freeing = 1;
	if (t->ctl) {
		pp_dc_set_ops(t->ctl, NULL, NULL);
		(void)pp_dc_close(t->ctl);
		t->ctl = NULL;
	}
	pp__px_detach_all(t);
	while ((l = t->listeners) != NULL) {
		t->listeners = l->next;
		uv_close(&l->u.h, listener_closed);
	}
	for (size_t i = 0; i < t->nservices; i++) {
		free_const(t->services[i].name);
		free_const(t->services[i].host);
	}
	for (size_t i = 0; i < t->nforwards; i++)
		free_const(t->forwards[i].listen_host);
	free(t->services);
	free(t->forwards);
	free(t->listen_host);
	free(t->room_uuid);
	free(t->local_fp);
	uv_close((uv_handle_t *)&t->auth_timer, NULL);
	uv_close((uv_handle_t *)&t->retry, tun_closed);
}

int
pp_tun_peer_invite(const struct pp_tun *t, const uint8_t **id,
    const uint8_t **mac, const char **transcript, size_t *len)
{
	if (!t->authenticated || !t->peer_has_invite)
		return PP_ENOTFOUND;
	*id = t->peer_invite_id;
	*mac = t->peer_invite_mac;
	*transcript = t->peer_invite_text;
	*len = t->peer_invite_len;
	return 0;
}

const uint8_t *
pp_tun_peer_identity(const struct pp_tun *t)
{
	return t->authenticated ? t->theirs.id : NULL;
}

unsigned
pp_tun_policy_changed(struct pp_tun *t)
{
	unsigned closed = pp__px_enforce(t);

	if (t->ready && t->authenticated) {
		struct pp_tun_port ports[PP_TUN_MAX_PORTS];
		size_t n = offer_list(t, ports);
		char *json = NULL;

		if (pp_tun_ports_build(ports, n, &json) == 0)
			(void)pp__tun_ctl_send(t, json);
	}
	return closed;
}

int
pp_tun_ping(struct pp_tun *t)
{
	char *json = NULL;
	int rc;

	if (!t->ready || t->dead || t->theirs.version < 2)
		return PP_ECONFLICT;
	if ((rc = pp_tun_ping_build(0, ++t->ping_seq, &json)) < 0)
		return rc;
	return pp__tun_ctl_send(t, json);
}

int
pp_tun_ping_answered(const struct pp_tun *t)
{
	return t->ping_seq != 0 && t->pong_seq == t->ping_seq;
}

void
pp_tun_get_stats(const struct pp_tun *t, struct pp_tun_stats *st)
{
	*st = t->st;
	st->proxies = t->nproxies;
}
