/*
 * The self-test canary (see ips_int.h): proves that marked connections really
 * pass through Suricata and that a drop rule really drops.
 *
 * Everything stays on the loopback address the caller chose (one of
 * 127.0.0.0/8 per instance, so that an IDS capture filter can name it).
 * The two client sockets get the IPS mark
 * before connect(), exactly as the gateway's service connections will, so the
 * test goes through the same netfilter rules as real traffic.
 */
#include "ips/ips_int.h"

#include "base/error.h"
#include "base/log.h"
#include "base/random.h"
#include "ips/eve.h"
#include "ips/netfilter.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUB "ips"
#define GRACE_MS 300
#define NCONN 4
#define SEEN_MAX 512

enum phase { PH_CLEAN, PH_CANARY, PH_GRACE, PH_DONE };

struct client {
	struct pp__canary *c;
	uv_tcp_t tcp;
	uv_connect_t req;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	char msg[80];
	uint16_t port;		/* local port once connected */
	int live;
};

struct acc {
	struct pp__canary *c;
	uv_tcp_t tcp;
	size_t len;
	char seen[SEEN_MAX];
	int live;
};

struct pp__canary {
	uv_loop_t *loop;
	pp__canary_cb cb;
	void *ctx;
	uint32_t mark;
	char addr[16];
	int expect_drop;
	enum phase phase;
	uv_tcp_t listener;
	uint16_t lport;
	uv_timer_t timer;	/* overall timeout */
	uv_timer_t grace;
	struct client clean, canary;
	struct acc acc[NCONN];
	unsigned nhandles;
	int freeing, alerted, leaked;
	char clean_tok[48], canary_tok[48];
	char rbuf[4096];
};

static void
handle_closed(uv_handle_t *h)
{
	struct pp__canary *c = h->data;

	if (--c->nhandles == 0 && c->freeing)
		free(c);
}

static void
finish(struct pp__canary *c, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
finish(struct pp__canary *c, int status, const char *fmt, ...)
{
	char reason[384];
	va_list ap;

	if (c->phase == PH_DONE)
		return;
	c->phase = PH_DONE;
	uv_timer_stop(&c->timer);
	uv_timer_stop(&c->grace);
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	c->cb(status, reason, c->ctx);
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct acc *a = h->data;

	(void)hint;
	buf->base = a->c->rbuf;
	buf->len = sizeof(a->c->rbuf);
}

static void start_canary(struct pp__canary *c);
static void on_acc_closed(uv_handle_t *h);

static void
on_acc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct acc *a = s->data;
	struct pp__canary *c = a->c;
	size_t take;

	if (n <= 0) {
		/* The client's FIN: close, so an IDS-mode Suricata sees the
		 * whole conversation end and inspects it now. */
		if (n < 0 && !uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, on_acc_closed);
		return;
	}
	take = (size_t)n;
	if (take > sizeof(a->seen) - 1 - a->len)
		take = sizeof(a->seen) - 1 - a->len;
	memcpy(a->seen + a->len, buf->base, take);
	a->len += take;
	a->seen[a->len] = '\0';
	if (strstr(a->seen, "PEERPIPE-CANARY-") != NULL) {
		c->leaked = 1;
		if (c->expect_drop)
			finish(c, PP_EDENIED, "the canary request reached the "
			    "listener: the inline path does not drop (is "
			    "Suricata in IPS mode, is the drop rule sid %u "
			    "loaded?)", PP__CANARY_SID);
	}
	if (c->phase == PH_CLEAN && strstr(a->seen, c->clean_tok) != NULL) {
		c->phase = PH_CANARY;
		start_canary(c);
	}
}

static void
on_accept(uv_stream_t *server, int status)
{
	struct pp__canary *c = server->data;
	struct acc *a = NULL;

	if (status < 0 || c->phase == PH_DONE)
		return;
	for (int i = 0; i < NCONN; i++)
		if (!c->acc[i].live) {
			a = &c->acc[i];
			break;
		}
	if (a == NULL)
		return;
	memset(a, 0, sizeof(*a));
	a->c = c;
	if (uv_tcp_init(c->loop, &a->tcp) != 0)
		return;
	a->tcp.data = a;
	a->live = 1;
	c->nhandles++;
	if (uv_accept(server, (uv_stream_t *)&a->tcp) != 0 ||
	    uv_read_start((uv_stream_t *)&a->tcp, on_alloc, on_acc_read) != 0)
		uv_read_stop((uv_stream_t *)&a->tcp);
}

static void
on_acc_closed(uv_handle_t *h)
{
	struct acc *a = h->data;
	struct pp__canary *c = a->c;

	a->live = 0;
	if (--c->nhandles == 0 && c->freeing)
		free(c);
}

static void
on_client_closed(uv_handle_t *h)
{
	struct client *cl = h->data;
	struct pp__canary *c = cl->c;

	cl->live = 0;
	if (--c->nhandles == 0 && c->freeing)
		free(c);
}

static void
on_shut(uv_shutdown_t *req, int status)
{
	(void)req;
	(void)status;
}

/* A drop shows up as silence, not as an error.  The FIN that follows the
 * request lets an IDS (AF_PACKET) Suricata inspect the stream at once
 * instead of when the flow times out; inline, it is dropped with the flow. */
static void
on_written(uv_write_t *req, int status)
{
	struct client *cl = req->data;

	if (status == 0 && !cl->c->freeing)
		uv_shutdown(&cl->sreq, (uv_stream_t *)&cl->tcp, on_shut);
}

static void
on_connect(uv_connect_t *req, int status)
{
	struct client *cl = req->data;
	struct pp__canary *c = cl->c;
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	uv_buf_t b;

	if (c->freeing || c->phase == PH_DONE)
		return;
	if (status < 0) {
		finish(c, status, "marked loopback connection failed: %s",
		    uv_strerror(status));
		return;
	}
	if (uv_tcp_getsockname(&cl->tcp, (struct sockaddr *)&ss, &len) == 0)
		cl->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	b = uv_buf_init(cl->msg, (unsigned)strlen(cl->msg));
	cl->wreq.data = cl;
	if (uv_write(&cl->wreq, (uv_stream_t *)&cl->tcp, &b, 1, on_written) != 0)
		finish(c, PP_EINVAL, "cannot write on the marked connection");
}

static int
connect_marked(struct pp__canary *c, struct client *cl, const char *msg)
{
	struct sockaddr_in sin;
	uv_os_fd_t fd;
	int rc;

	cl->c = c;
	snprintf(cl->msg, sizeof(cl->msg), "%s", msg);
	if ((rc = uv_tcp_init_ex(c->loop, &cl->tcp, AF_INET)) != 0)
		return rc;
	cl->tcp.data = cl;
	cl->live = 1;
	c->nhandles++;
	if ((rc = uv_fileno((uv_handle_t *)&cl->tcp, &fd)) != 0 ||
	    (rc = pp_nf_mark_socket(fd, c->mark)) != 0)
		return rc;
	uv_ip4_addr(c->addr, c->lport, &sin);
	cl->req.data = cl;
	return uv_tcp_connect(&cl->req, &cl->tcp, (struct sockaddr *)&sin,
	    on_connect);
}

static void
start_canary(struct pp__canary *c)
{
	char msg[80];
	int rc;

	snprintf(msg, sizeof(msg), "%s\r\n", c->canary_tok);
	if ((rc = connect_marked(c, &c->canary, msg)) != 0)
		finish(c, rc, "canary connection: %s", pp_strerror(rc));
}

static void
on_timeout(uv_timer_t *t)
{
	struct pp__canary *c = t->data;

	if (c->phase == PH_CLEAN)
		finish(c, -ETIMEDOUT, "a clean request on a marked connection "
		    "never reached the listener: marked traffic does not pass "
		    "(Suricata not bound to the queue, or the rules are wrong)");
	else if (!c->alerted)
		finish(c, -ETIMEDOUT, "no eve alert for the canary (sid %u) "
		    "arrived: the canary rule is not loaded or eve does not "
		    "reach the gateway", PP__CANARY_SID);
}

static void
on_grace(uv_timer_t *t)
{
	struct pp__canary *c = t->data;

	if (c->leaked)
		finish(c, PP_EDENIED, "the canary reached the listener");
	else
		finish(c, 0, "clean request passed, canary dropped and "
		    "alerted (sid %u)", PP__CANARY_SID);
}

int
pp__canary_eve(struct pp__canary *c, const struct pp_eve_event *ev)
{
	int ours;

	if (c == NULL || c->canary.port == 0)
		return 0;
	ours = (ev->src_port == c->canary.port && ev->dest_port == c->lport) ||
	    (ev->dest_port == c->canary.port && ev->src_port == c->lport);
	if (!ours)
		return 0;
	if (ev->type != PP_EVE_ALERT || ev->signature_id != PP__CANARY_SID ||
	    c->phase != PH_CANARY)
		return 1;
	c->alerted = 1;
	if (!c->expect_drop) {
		finish(c, 0, "canary alerted (sid %u; IDS mode: not dropped)",
		    PP__CANARY_SID);
		return 1;
	}
	if (ev->action != PP_EVE_BLOCKED) {
		finish(c, PP_EDENIED, "the canary alert says 'allowed': "
		    "Suricata does not drop (not inline, or the rule is not "
		    "a drop rule)");
		return 1;
	}
	c->phase = PH_GRACE;
	uv_timer_start(&c->grace, on_grace, GRACE_MS, 0);
	return 1;
}

int
pp__canary_start(uv_loop_t *loop, const char *addr, uint32_t mark,
    int expect_drop,
    unsigned timeout_ms, pp__canary_cb cb, void *ctx, struct pp__canary **out)
{
	struct pp__canary *c;
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	unsigned char rnd[8];
	char hex[17], msg[80];
	int len = sizeof(ss), rc;

	*out = NULL;
	if ((rc = pp_random_bytes(rnd, sizeof(rnd))) != 0)
		return rc;
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->loop = loop;
	c->cb = cb;
	c->ctx = ctx;
	c->mark = mark;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
	c->expect_drop = expect_drop;
	snprintf(c->clean_tok, sizeof(c->clean_tok), "PEERPIPE-SELFTEST-CLEAN-%s",
	    hex);
	snprintf(c->canary_tok, sizeof(c->canary_tok), "PEERPIPE-CANARY-%s", hex);
	uv_timer_init(loop, &c->timer);
	uv_timer_init(loop, &c->grace);
	uv_tcp_init(loop, &c->listener);
	c->timer.data = c->grace.data = c->listener.data = c;
	c->nhandles = 3;
	*out = c;
	if (uv_ip4_addr(addr, 0, &sin) != 0) {
		rc = PP_EINVAL;
		goto fail;
	}
	if ((rc = uv_tcp_bind(&c->listener, (struct sockaddr *)&sin, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&c->listener, NCONN, on_accept)) != 0 ||
	    (rc = uv_tcp_getsockname(&c->listener, (struct sockaddr *)&ss,
	    &len)) != 0)
		goto fail;
	c->lport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	snprintf(msg, sizeof(msg), "%s\r\n", c->clean_tok);
	if ((rc = connect_marked(c, &c->clean, msg)) != 0)
		goto fail;
	uv_timer_start(&c->timer, on_timeout, timeout_ms, 0);
	pp_debug(SUB, "self-test: listener %s:%u", c->addr, c->lport);
	return 0;
fail:
	c->phase = PH_DONE;	/* no callback: the call failed */
	pp__canary_free(c);
	*out = NULL;
	return rc;
}

void
pp__canary_free(struct pp__canary *c)
{
	if (c == NULL || c->freeing)
		return;
	c->freeing = 1;
	c->phase = PH_DONE;
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	uv_close((uv_handle_t *)&c->grace, handle_closed);
	uv_close((uv_handle_t *)&c->listener, handle_closed);
	if (c->clean.live)
		uv_close((uv_handle_t *)&c->clean.tcp, on_client_closed);
	if (c->canary.live)
		uv_close((uv_handle_t *)&c->canary.tcp, on_client_closed);
	for (int i = 0; i < NCONN; i++)
		if (c->acc[i].live)
			uv_close((uv_handle_t *)&c->acc[i].tcp, on_acc_closed);
}
