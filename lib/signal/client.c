#include "client.h"

#include "base/error.h"
#include "base/json.h"
#include "base/log.h"
#include "base/random.h"
#include "lwslog.h"

#include <libwebsockets.h>
#include <stdlib.h>
#include <string.h>

#define SUB "signal"
#define MAX_INBOUND (1u << 20)		/* a server message, fragments summed */
#define MAX_QUEUED (1u << 20)		/* bytes waiting to be written */

struct out_msg {
	struct out_msg *next;
	size_t len;
	unsigned char buf[];		/* LWS_PRE headroom, then the text */
};

struct pp_sigc {
	uv_loop_t *loop;
	struct pp_sigc_ops ops;
	void *ctx;
	char *url;			/* parsed in place by lws_parse_uri */
	char *host;
	const char *path;
	char pathbuf[512];
	int port, tls;
	int insecure;
	char *ca_file;
	unsigned backoff_min, backoff_max, backoff;
	lws_retry_bo_t idle;

	struct lws_context *lws;
	struct lws *wsi;
	uv_timer_t retry;
	uv_timer_t check;		/* pp_sigc_check(): the pong must come */
	int ping_due, ping_out, hang_up;
	unsigned check_ms;
	int connected, stopped;
	struct out_msg *head, *tail;
	size_t queued;
	char *rx;
	size_t rxlen;
	int rx_oversize;
};

static void
drop_queue(struct pp_sigc *c)
{
	struct out_msg *m;

	while ((m = c->head) != NULL) {
		c->head = m->next;
		free(m);
	}
	c->tail = NULL;
	c->queued = 0;
}

static void connect_now(struct pp_sigc *c);

static void
retry_cb(uv_timer_t *t)
{
	connect_now(t->data);
}

static void
schedule_retry(struct pp_sigc *c)
{
	unsigned jitter = 0;

	if (c->stopped)
		return;
	(void)pp_random_bytes(&jitter, sizeof(jitter));
	/* Up to +25% jitter so a restarted server is not hit by everyone at once. */
	uv_timer_start(&c->retry, retry_cb, c->backoff + jitter % (c->backoff / 4 + 1), 0);
	c->backoff = c->backoff * 2 > c->backoff_max ? c->backoff_max : c->backoff * 2;
}

static void
lost(struct pp_sigc *c, const char *why)
{
	int was = c->connected;

	c->ping_due = c->ping_out = c->hang_up = 0;
	if (c->lws)
		uv_timer_stop(&c->check);

	c->wsi = NULL;
	c->connected = 0;
	drop_queue(c);
	free(c->rx);
	c->rx = NULL;
	c->rxlen = 0;
	c->rx_oversize = 0;
	if (c->stopped)
		return;
	if (was)
		pp_warn(SUB, "lost the signaling server %s: %s; reconnecting", c->url, why);
	else
		pp_debug(SUB, "cannot reach the signaling server: %s", why);
	if (was && c->ops.on_disconnected)
		c->ops.on_disconnected(c->ctx, why);
	schedule_retry(c);
}

static void
dispatch(struct pp_sigc *c, const char *buf, size_t len)
{
	static const struct pp_jfield shape[] = {
		{ "type", PP_JSTR, PP_JF_REQUIRED, 1, 64, NULL },
		{ "data", PP_JOBJ, 0, 0, 0, NULL },
	};
	static struct pp_ratelimit rl = PP_RATELIMIT_INIT(10000, 3);
	char err[160];
	json_t *v, *data;
	unsigned skipped;

	if (pp_json_parse(buf, len, MAX_INBOUND, &v, err, sizeof(err)) < 0 ||
	    pp_json_check(v, shape, 2, err, sizeof(err)) < 0) {
		if (pp_ratelimit_ok(&rl, &skipped))
			pp_warn(SUB, "ignoring a malformed server message: %s", err);
		json_decref(v);
		return;
	}
	data = json_object_get(v, "data");
	if (data == NULL) {
		data = json_object();
		json_object_set_new(v, "data", data);
	}
	c->ops.on_message(c->ctx, json_string_value(json_object_get(v, "type")),
	    data);
	json_decref(v);
}

static void
on_receive(struct pp_sigc *c, struct lws *wsi, const char *in, size_t len)
{
	int last = lws_is_final_fragment(wsi) &&
	    lws_remaining_packet_payload(wsi) == 0;

	if (lws_is_first_fragment(wsi) && last && c->rx == NULL) {
		dispatch(c, in, len);
		return;
	}
	if (!c->rx_oversize && c->rxlen + len <= MAX_INBOUND) {
		char *p = realloc(c->rx, c->rxlen + len);

		if (p) {
			memcpy(p + c->rxlen, in, len);
			c->rx = p;
			c->rxlen += len;
		} else {
			c->rx_oversize = 1;
		}
	} else {
		c->rx_oversize = 1;
	}
	if (!last)
		return;
	if (c->rx_oversize)
		pp_warn(SUB, "dropped a server message over %u bytes", MAX_INBOUND);
	else
		dispatch(c, c->rx, c->rxlen);
	free(c->rx);
	c->rx = NULL;
	c->rxlen = 0;
	c->rx_oversize = 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct pp_sigc *c = lws_get_opaque_user_data(wsi);
	struct out_msg *m;

	if (c == NULL || (c->wsi && wsi != c->wsi))
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		lost(c, in ? (const char *)in : "connection failed");
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->connected = 1;
		c->backoff = c->backoff_min;
		pp_info(SUB, "connected to %s", c->url);
		if (c->ops.on_connected)
			c->ops.on_connected(c->ctx);
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!c->stopped)
			on_receive(c, wsi, in, len);
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE_PONG:
		c->ping_out = 0;
		uv_timer_stop(&c->check);
		return 0;

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->stopped || c->hang_up)
			return -1;	/* closes at once, no closing handshake */
		if (c->ping_due) {
			unsigned char ping[LWS_PRE + 1];

			c->ping_due = 0;
			if (lws_write(wsi, ping + LWS_PRE, 0, LWS_WRITE_PING) < 0)
				return -1;
			if (c->head)
				lws_callback_on_writable(wsi);
			return 0;
		}
		if ((m = c->head) == NULL)
			return 0;
		if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) <
		    (int)m->len)
			return -1;
		c->head = m->next;
		if (c->head == NULL)
			c->tail = NULL;
		c->queued -= m->len;
		free(m);
		if (c->head)
			lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		lost(c, "connection closed");
		return 0;

	default:
		return 0;
	}
}

static const struct lws_protocols protocols[] = {
	{ "peerpipe-sigc", callback, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

static void
connect_now(struct pp_sigc *c)
{
	struct lws_client_connect_info ci;

	if (c->stopped)
		return;
	memset(&ci, 0, sizeof(ci));
	ci.context = c->lws;
	ci.address = c->host;
	ci.port = c->port;
	ci.path = c->path;
	ci.host = c->host;
	ci.origin = c->host;
	ci.ietf_version_or_minus_one = -1;
	ci.local_protocol_name = "peerpipe-sigc";
	ci.opaque_user_data = c;
	ci.pwsi = &c->wsi;
	ci.alpn = "http/1.1";
	ci.retry_and_idle_policy = &c->idle;
	if (c->tls) {
		ci.ssl_connection = LCCSCF_USE_SSL;
		if (c->insecure)
			ci.ssl_connection |= LCCSCF_ALLOW_SELFSIGNED |
			    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK |
			    LCCSCF_ALLOW_EXPIRED | LCCSCF_ALLOW_INSECURE;
	}
	if (lws_client_connect_via_info(&ci) == NULL) {
		/* lws may have reported CONNECTION_ERROR already (then wsi is NULL). */
		if (!uv_is_active((uv_handle_t *)&c->retry))
			lost(c, "could not start connecting");
	}
}

int
pp_sigc_new(uv_loop_t *loop, const struct pp_sigc_config *cfg,
    const struct pp_sigc_ops *ops, void *ctx, struct pp_sigc **out)
{
	struct lws_context_creation_info info;
	void *loops[1] = { loop };
	const char *proto = NULL, *path = NULL, *host = NULL;
	struct pp_sigc *c;

	*out = NULL;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->loop = loop;
	c->ops = *ops;
	c->ctx = ctx;
	c->url = strdup(cfg->url);
	c->insecure = cfg->insecure;
	c->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
	c->backoff_min = c->backoff = cfg->reconnect_min_ms ? cfg->reconnect_min_ms : 250;
	c->backoff_max = cfg->reconnect_max_ms ? cfg->reconnect_max_ms : 15000;
	c->idle.secs_since_valid_ping = (uint16_t)(cfg->ping_secs ? cfg->ping_secs : 20);
	c->idle.secs_since_valid_hangup = (uint16_t)(2 * c->idle.secs_since_valid_ping);
	if (c->url == NULL || (cfg->ca_file && c->ca_file == NULL))
		goto nomem;

	{
		/* lws_parse_uri() cuts its argument into pieces: give it a copy. */
		char *tmp = strdup(cfg->url);

		if (tmp == NULL)
			goto nomem;
		if (lws_parse_uri(tmp, &proto, &host, &c->port, &path) ||
		    (strcmp(proto, "wss") && strcmp(proto, "ws")) || !*host) {
			pp_err(SUB, "signaling URL '%s': expected wss://HOST:PORT/PATH",
			    cfg->url);
			free(tmp);
			pp_sigc_free(c);
			return PP_ECONFIG;
		}
		c->tls = strcmp(proto, "wss") == 0;
		/* lws_parse_uri drops the leading '/' of the path. */
		snprintf(c->pathbuf, sizeof(c->pathbuf), "/%s", path);
		c->path = c->pathbuf;
		c->host = strdup(host);
		free(tmp);
		if (c->host == NULL)
			goto nomem;
	}
	if (!c->tls)
		pp_warn(SUB, "%s is not TLS: signaling is readable on the path",
		    cfg->url);

	pp_lws_log_init();
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	info.foreign_loops = loops;
	info.protocols = protocols;
	info.client_ssl_ca_filepath = c->ca_file;
	info.pcontext = &c->lws;
	info.fd_limit_per_thread = 64;
	if ((c->lws = lws_create_context(&info)) == NULL) {
		pp_err(SUB, "cannot create the WebSocket client context");
		pp_sigc_free(c);
		return PP_ECONFIG;
	}
	uv_timer_init(loop, &c->retry);
	c->retry.data = c;
	uv_timer_init(loop, &c->check);
	c->check.data = c;
	connect_now(c);
	*out = c;
	return 0;
nomem:
	pp_sigc_free(c);
	return -ENOMEM;
}

int
pp_sigc_send(struct pp_sigc *c, const json_t *msg)
{
	struct out_msg *m;
	size_t len;
	char *s;

	if (!c->connected || c->wsi == NULL)
		return PP_ECONFLICT;
	if ((s = pp_json_dump(msg, &len)) == NULL)
		return -ENOMEM;
	if (c->queued + len > MAX_QUEUED) {
		free(s);
		return PP_ELIMIT;
	}
	if ((m = malloc(sizeof(*m) + LWS_PRE + len)) == NULL) {
		free(s);
		return -ENOMEM;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->buf + LWS_PRE, s, len);
	free(s);
	if (c->tail)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
	c->queued += len;
	lws_callback_on_writable(c->wsi);
	return 0;
}

static void
check_cb(uv_timer_t *t)
{
	struct pp_sigc *c = t->data;

	if (!c->ping_out || c->wsi == NULL || c->stopped)
		return;
	pp_warn(SUB, "no answer from %s to a ping within %u ms: reconnecting",
	    c->url, c->check_ms);
	/* CLIENT_CLOSED follows, and with it the reconnect; the timeout is
	 * for a socket that never turns writable again. */
	c->hang_up = 1;
	lws_callback_on_writable(c->wsi);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 1);
}

int
pp_sigc_check(struct pp_sigc *c, unsigned timeout_ms)
{
	if (!c->connected || c->wsi == NULL)
		return PP_ECONFLICT;
	if (c->ping_out)
		return 0;
	c->ping_due = c->ping_out = 1;
	c->check_ms = timeout_ms;
	uv_timer_start(&c->check, check_cb, timeout_ms, 0);
	lws_callback_on_writable(c->wsi);
	return 0;
}

int
pp_sigc_connected(const struct pp_sigc *c)
{
	return c->connected;
}

void
pp_sigc_stop(struct pp_sigc *c)
{
	if (c == NULL || c->stopped)
		return;
	c->stopped = 1;
	c->connected = 0;
	if (c->lws) {
		uv_timer_stop(&c->retry);
		uv_close((uv_handle_t *)&c->retry, NULL);
		uv_close((uv_handle_t *)&c->check, NULL);
		lws_context_destroy(c->lws);
	}
}

void
pp_sigc_free(struct pp_sigc *c)
{
	if (c == NULL)
		return;
	if (c->lws && !c->stopped)
		pp_sigc_stop(c);
	/* lws 4.1 finishes a foreign-loop context on the second call. */
	if (c->lws)
		lws_context_destroy(c->lws);
	drop_queue(c);
	free(c->rx);
	free(c->host);
	free(c->ca_file);
	free(c->url);
	free(c);
}
