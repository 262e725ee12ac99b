/*
 * libwebsockets glue for the signaling server.  lws calls one callback per
 * event; each WebSocket gets a `struct session` (lws's per-session data) that
 * owns the hub connection, the outbound queue and the rate-limit bucket.
 * Plain HTTP requests on the same port answer the liveness probes.
 */
#include "wss.h"

#include "base/clock.h"
#include "base/error.h"
#include "base/log.h"
#include "signal/lwslog.h"
#include "signal/msg.h"

#include <libwebsockets.h>
#include <openssl/ssl.h>
#include <stdlib.h>
#include <string.h>

#define SUB "server"

struct out_msg {
	struct out_msg *next;
	size_t len;
	unsigned char buf[];	/* LWS_PRE bytes of headroom, then the text */
};

struct session {
	struct pp_wss *w;
	struct lws *wsi;
	struct pp_sig_conn *conn;	/* NULL until ESTABLISHED */
	struct session *prev, *next;	/* all live WebSocket sessions */
	struct out_msg *head, *tail;
	size_t queued;			/* bytes in the outbound queue */
	char *rx;			/* a message arriving in fragments */
	size_t rxlen;
	double tokens;
	uint64_t refill_ms;
	uint64_t last_rx_ms;		/* anything from the client, pongs too */
	unsigned rx_paused:1, rx_oversize:1, going_away:1, doomed:1, close_sent:1;
	unsigned ping_due:1, ping_sent:1;
	/* HTTP probes only */
	const char *http_body;
};

struct pp_wss {
	struct pp_wss_config cfg;
	uv_loop_t *loop;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct pp_sig_hub *hub;
	struct session *sessions;
	unsigned nsessions;
	/* WebSockets whose wsi still exists: a closing one lingers until the
	 * client answers our close frame, and shutdown waits for that. */
	unsigned nlive;
	lws_retry_bo_t retry;
	uv_timer_t stop_timer;
	uv_timer_t idle_timer;
	uint64_t stop_deadline;
	void (*stop_done)(void *);
	void *stop_arg;
	struct pp_ratelimit rl_refused;
};

/* Outbound queue above this: stop reading the client until it drains. */
#define QUEUE_HIGH_WATER (64u * 1024u)
#define STOP_GRACE_MS 2000u

static void
session_unlink(struct session *s)
{
	struct pp_wss *w = s->w;

	if (s->prev)
		s->prev->next = s->next;
	else if (w->sessions == s)
		w->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	s->prev = s->next = NULL;
	w->nsessions--;
}

static void
session_fini(struct session *s)
{
	struct out_msg *m;

	pp_sig_conn_free(s->w->hub, s->conn);
	s->conn = NULL;
	while ((m = s->head) != NULL) {
		s->head = m->next;
		free(m);
	}
	s->tail = NULL;
	s->queued = 0;
	free(s->rx);
	s->rx = NULL;
	session_unlink(s);
}

static void
set_paused(struct session *s, int pause)
{
	if (s->rx_paused == (unsigned)!!pause)
		return;
	s->rx_paused = !!pause;
	lws_rx_flow_control(s->wsi, !pause);
}

/* The hub's send: queue one message.  Never re-enters the hub. */
static int
hub_send(void *ctx, const char *text, size_t len)
{
	struct session *s = ctx;
	struct out_msg *m;

	if (s->doomed || s->going_away)
		return PP_ECONFLICT;
	if (s->queued + len > s->w->cfg.queue_limit) {
		/* It has stopped reading: nothing more will reach it. */
		pp_warn(SUB, "closing a client whose outbound queue exceeded %zu bytes",
		    s->w->cfg.queue_limit);
		s->doomed = 1;
		lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
		return PP_ELIMIT;
	}
	if ((m = malloc(sizeof(*m) + LWS_PRE + len)) == NULL)
		return -ENOMEM;
	m->next = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, text, len);
	if (s->tail)
		s->tail->next = m;
	else
		s->head = m;
	s->tail = m;
	s->queued += len;
	if (s->queued > QUEUE_HIGH_WATER)
		set_paused(s, 1);
	lws_callback_on_writable(s->wsi);
	return 0;
}

static int
write_one(struct session *s)
{
	struct out_msg *m = s->head;

	if (m == NULL)
		return 0;
	if (lws_write(s->wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) <
	    (int)m->len)
		return -1;
	s->head = m->next;
	if (s->head == NULL)
		s->tail = NULL;
	s->queued -= m->len;
	free(m);
	if (s->queued <= QUEUE_HIGH_WATER / 2)
		set_paused(s, 0);
	if (s->head)
		lws_callback_on_writable(s->wsi);
	return 0;
}

/*
 * Keepalive, done here rather than by lws: lws 4.1 keeps one timer per
 * connection in a sorted list and walks it whenever one is set, which with
 * 10,000 clients saturates the loop at every ping round.  One sweep a second
 * over the sessions costs a few microseconds per thousand clients.
 */
static void
idle_sweep(uv_timer_t *t)
{
	struct pp_wss *w = t->data;
	uint64_t now = pp_now_ms(), idle = (uint64_t)w->cfg.idle_timeout * 1000;

	for (struct session *s = w->sessions; s; s = s->next) {
		if (s->doomed || s->going_away || now - s->last_rx_ms < idle)
			continue;
		if (now - s->last_rx_ms >= 2 * idle) {
			pp_debug(SUB, "dropping a client silent for %u s",
			    2 * w->cfg.idle_timeout);
			s->doomed = 1;
			lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK,
			    LWS_TO_KILL_ASYNC);
		} else if (!s->ping_sent) {
			s->ping_due = 1;
			lws_callback_on_writable(s->wsi);
		}
	}
}

static int
send_ping(struct session *s)
{
	unsigned char buf[LWS_PRE + 4] = { [LWS_PRE] = 'p', 'i', 'n', 'g' };

	s->ping_due = 0;
	s->ping_sent = 1;
	return lws_write(s->wsi, buf + LWS_PRE, 4, LWS_WRITE_PING) < 4 ? -1 : 0;
}

/* Token bucket: nonzero if this request may be served. */
static int
rate_ok(struct session *s)
{
	const struct pp_wss_config *cfg = &s->w->cfg;
	uint64_t now = pp_now_ms();

	s->tokens += (double)(now - s->refill_ms) * cfg->rate / 1000.0;
	if (s->tokens > cfg->burst)
		s->tokens = cfg->burst;
	s->refill_ms = now;
	if (s->tokens < 1.0)
		return 0;
	s->tokens -= 1.0;
	return 1;
}

static void
deliver(struct session *s, const char *buf, size_t len, int binary)
{
	struct pp_wss *w = s->w;
	unsigned skipped;

	if (!rate_ok(s)) {
		if (pp_ratelimit_ok(&w->rl_refused, &skipped))
			pp_info(SUB, "client over %u requests/s: refusing (%u similar "
			    "lines skipped)", w->cfg.rate, skipped);
		pp_sig_hub_refuse(w->hub, s->conn, PP_SIG_R_RATE);
		return;
	}
	if (binary) {
		pp_sig_hub_refuse(w->hub, s->conn, PP_SIG_R_INVALID);
		return;
	}
	pp_sig_hub_input(w->hub, s->conn, buf, len);
}

/*
 * A message may arrive in several callbacks.  Whole messages in one piece
 * (the common case) are handed over without a copy; fragments are collected
 * up to the size cap, and a larger message is discarded as it streams in and
 * answered once with "Message too large".
 */
static void
on_receive(struct session *s, const char *in, size_t len)
{
	size_t cap = s->w->cfg.limits.max_message;
	int first = lws_is_first_fragment(s->wsi);
	int last = lws_is_final_fragment(s->wsi) &&
	    lws_remaining_packet_payload(s->wsi) == 0;
	int binary = lws_frame_is_binary(s->wsi);

	if (first && last && s->rx == NULL && !s->rx_oversize) {
		if (len > cap)
			pp_sig_hub_refuse(s->w->hub, s->conn, PP_SIG_R_TOO_LARGE);
		else
			deliver(s, in, len, binary);
		return;
	}
	if (!s->rx_oversize) {
		if (s->rxlen + len > cap) {
			s->rx_oversize = 1;
			free(s->rx);
			s->rx = NULL;
			s->rxlen = 0;
		} else {
			char *p = realloc(s->rx, s->rxlen + len + 1);

			if (p == NULL) {
				s->rx_oversize = 1;	/* treat as too large */
			} else {
				s->rx = p;
				memcpy(s->rx + s->rxlen, in, len);
				s->rxlen += len;
			}
		}
	}
	if (!last)
		return;
	if (s->rx_oversize)
		pp_sig_hub_refuse(s->w->hub, s->conn, PP_SIG_R_TOO_LARGE);
	else
		deliver(s, s->rx, s->rxlen, binary);
	free(s->rx);
	s->rx = NULL;
	s->rxlen = 0;
	s->rx_oversize = 0;
}

/*
 * Close 1001 with a reason, written as a frame of our own: lws 4.1 drops the
 * prepared close reason when the callback returns -1 and just cuts the TLS
 * session, which clients see as an abnormal close (1006).  lws completes
 * the handshake when the client's close comes back; the timeout bounds the
 * wait for it.
 */
/* RFC 6455 close opcode; lws 4.1 keeps its name out of the public header. */
#define WRITE_CLOSE ((enum lws_write_protocol)4)

static int
send_going_away(struct session *s)
{
	static const char why[] = "server shutting down";
	unsigned char buf[LWS_PRE + 2 + sizeof(why)];

	if (s->close_sent)
		return 0;
	s->close_sent = 1;
	buf[LWS_PRE] = (unsigned char)(LWS_CLOSE_STATUS_GOINGAWAY >> 8);
	buf[LWS_PRE + 1] = (unsigned char)(LWS_CLOSE_STATUS_GOINGAWAY & 0xff);
	memcpy(buf + LWS_PRE + 2, why, sizeof(why) - 1);
	if (lws_write(s->wsi, buf + LWS_PRE, 2 + sizeof(why) - 1,
	    WRITE_CLOSE) < 0)
		return -1;
	lws_set_timeout(s->wsi, PENDING_TIMEOUT_CLOSE_ACK, 2);
	return 0;
}

static int
http_reply(struct lws *wsi, struct session *s, unsigned status,
    const char *body)
{
	unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, status, "text/plain",
	    body ? strlen(body) : 0, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
	    (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	if (body == NULL)
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	s->http_body = body;
	lws_callback_on_writable(wsi);
	return 0;
}

static int
http_body(struct lws *wsi, struct session *s)
{
	unsigned char buf[LWS_PRE + 64];
	size_t n = strlen(s->http_body);

	memcpy(buf + LWS_PRE, s->http_body, n);
	s->http_body = NULL;
	if (lws_write(wsi, buf + LWS_PRE, n, LWS_WRITE_HTTP_FINAL) < (int)n)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* The WebSocket endpoint is /ws; "/" is accepted too for old clients. */
static int
ws_path_ok(struct lws *wsi)
{
	char uri[64];

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) < 0)
		return 0;
	return strcmp(uri, "/ws") == 0 || strcmp(uri, "/") == 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct pp_wss *w = lws_context_user(lws_get_context(wsi));
	struct session *s = user;

	switch (reason) {
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		/* Idle TLS connections give their 2 x 16 KiB buffers back. */
		SSL_CTX_set_mode((SSL_CTX *)user, SSL_MODE_RELEASE_BUFFERS);
		return 0;

	case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
		if (w->stop_done || w->nsessions >= w->cfg.max_clients) {
			pp_debug(SUB, "refusing a connection: %s", w->stop_done ?
			    "shutting down" : "max clients reached");
			return 1;
		}
		return 0;

	case LWS_CALLBACK_HTTP:
		if (strcmp(in, "/") == 0)
			return http_reply(wsi, s, HTTP_STATUS_NO_CONTENT, NULL);
		if (strcmp(in, "/healthz") == 0)
			return http_reply(wsi, s, HTTP_STATUS_OK, "ok\n");
		return http_reply(wsi, s, HTTP_STATUS_NOT_FOUND, "not found\n");

	case LWS_CALLBACK_HTTP_WRITEABLE:
		return s->http_body ? http_body(wsi, s) : 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		if (!ws_path_ok(wsi))
			return 1;
		return w->nsessions >= w->cfg.max_clients;

	case LWS_CALLBACK_ESTABLISHED:
		memset(s, 0, sizeof(*s));
		s->w = w;
		s->wsi = wsi;
		s->tokens = w->cfg.burst;
		s->refill_ms = s->last_rx_ms = pp_now_ms();
		if ((s->conn = pp_sig_conn_new(w->hub, s)) == NULL)
			return -1;
		s->next = w->sessions;
		if (w->sessions)
			w->sessions->prev = s;
		w->sessions = s;
		w->nsessions++;
		w->nlive++;
		return 0;

	case LWS_CALLBACK_RECEIVE:
		s->last_rx_ms = pp_now_ms();
		s->ping_sent = 0;
		if (s->conn && !s->doomed && !s->going_away)
			on_receive(s, in, len);
		return 0;

	case LWS_CALLBACK_RECEIVE_PONG:
		s->last_rx_ms = pp_now_ms();
		s->ping_sent = 0;
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (s->conn == NULL)
			return 0;
		if (s->going_away && s->head == NULL)
			return send_going_away(s);
		if (s->ping_due)
			return send_ping(s);
		return write_one(s);

	case LWS_CALLBACK_CLOSED:
		if (s->conn)
			session_fini(s);
		return 0;

	case LWS_CALLBACK_WSI_DESTROY:
		if (s && s->w == w && s->wsi == wsi) {
			s->wsi = NULL;
			w->nlive--;
		}
		return 0;

	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	/* 1 KiB receive buffer: 3 KiB less per client; longer messages
	 * arrive in pieces, which on_receive() reassembles. */
	{ "peerpipe-signaling", callback, sizeof(struct session), 1024, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

int
pp_wss_start(uv_loop_t *loop, const struct pp_wss_config *cfg,
    struct pp_wss **out)
{
	static const struct pp_sig_hub_ops ops = { hub_send };
	struct lws_context_creation_info info;
	void *loops[1] = { loop };
	struct pp_wss *w;

	*out = NULL;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -ENOMEM;
	w->cfg = *cfg;
	w->loop = loop;
	w->rl_refused = (struct pp_ratelimit)PP_RATELIMIT_INIT(10000, 5);
	if ((w->hub = pp_sig_hub_new(&cfg->limits, &ops)) == NULL) {
		free(w);
		return -ENOMEM;
	}
	if (cfg->turn && pp_sig_hub_set_turn(w->hub, cfg->turn) < 0) {
		pp_err(SUB, "the TURN settings were refused (secret, URIs or ttl)");
		pp_sig_hub_free(w->hub);
		free(w);
		return PP_ECONFIG;
	}
	w->cfg.turn = NULL;	/* the hub has its own copy */
	if (cfg->auth)
		pp_sig_hub_set_auth(w->hub, cfg->auth);
	w->cfg.auth = NULL;
	pp_lws_log_init();

	/* No lws validity timers at all (see idle_sweep); a NULL policy would
	 * get lws's default one. */
	w->retry.secs_since_valid_ping = 0;
	w->retry.secs_since_valid_hangup = 0;

	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_LIBUV |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
	    LWS_SERVER_OPTION_VALIDATE_UTF8 |
	    LWS_SERVER_OPTION_DISABLE_IPV6;
	info.foreign_loops = loops;
	info.user = w;
	info.protocols = protocols;
	info.port = cfg->port;
	info.iface = cfg->listen_addr && strcmp(cfg->listen_addr, "0.0.0.0") ?
	    cfg->listen_addr : NULL;
	info.ssl_cert_filepath = cfg->cert_file;
	info.ssl_private_key_filepath = cfg->key_file;
	/* WebSocket over HTTP/2 is not what clients expect: stay on 1.1. */
	info.alpn = "http/1.1";
	info.timeout_secs = cfg->handshake_timeout;
	info.retry_and_idle_policy = &w->retry;
	info.timeout_secs_ah_idle = cfg->handshake_timeout;
	/* fd_limit_per_thread stays unset: below RLIMIT_NOFILE lws 4.1 finds
	 * each event's connection by scanning its table instead of indexing. */
	info.vhost_name = "peerpipe";
	/* lws clears w->ctx once the context is wholly destroyed. */
	info.pcontext = &w->ctx;

	if ((w->ctx = lws_create_context(&info)) == NULL) {
		pp_err(SUB, "cannot start the WebSocket server on %s:%d (address in "
		    "use, or unreadable certificate %s?)", info.iface ? info.iface :
		    "0.0.0.0", cfg->port, cfg->cert_file);
		pp_sig_hub_free(w->hub);
		free(w);
		return PP_ECONFIG;
	}
	w->vh = lws_get_vhost_by_name(w->ctx, "peerpipe");
	uv_timer_init(loop, &w->idle_timer);
	w->idle_timer.data = w;
	uv_timer_start(&w->idle_timer, idle_sweep, 1000, 1000);
	*out = w;
	return 0;
}

int
pp_wss_port(const struct pp_wss *w)
{
	return w->vh ? lws_get_vhost_listen_port(w->vh) : -1;
}

static void
stop_timer_closed(uv_handle_t *h)
{
	struct pp_wss *w = h->data;
	void (*done)(void *) = w->stop_done;
	void *arg = w->stop_arg;

	done(arg);
}

static void
stop_tick(uv_timer_t *t)
{
	struct pp_wss *w = t->data;

	if ((w->nsessions > 0 || w->nlive > 0) && pp_now_ms() < w->stop_deadline)
		return;
	uv_timer_stop(t);
	/* Closes what is left and the listener; the hub is empty after it. */
	lws_context_destroy(w->ctx);
	uv_close((uv_handle_t *)t, stop_timer_closed);
}

void
pp_wss_stop(struct pp_wss *w, void (*done)(void *arg), void *arg)
{
	struct pp_sig_stats st;

	pp_sig_hub_stats(w->hub, &st);
	pp_info(SUB, "shutting down: %lu clients, %lu rooms", st.conns, st.rooms);
	w->stop_done = done;
	w->stop_arg = arg;
	for (struct session *s = w->sessions; s; s = s->next) {
		s->going_away = 1;
		lws_callback_on_writable(s->wsi);
	}
	uv_timer_stop(&w->idle_timer);
	uv_close((uv_handle_t *)&w->idle_timer, NULL);
	w->stop_deadline = pp_now_ms() + STOP_GRACE_MS;
	uv_timer_init(w->loop, &w->stop_timer);
	w->stop_timer.data = w;
	uv_timer_start(&w->stop_timer, stop_tick, 0, 20);
}

void
pp_wss_free(struct pp_wss *w)
{
	if (w == NULL)
		return;
	/*
	 * With a foreign loop, lws 4.1 finishes destroying the context only
	 * when asked again after its loop handles have closed.
	 */
	if (w->ctx)
		lws_context_destroy(w->ctx);
	pp_sig_hub_free(w->hub);
	free(w);
}
