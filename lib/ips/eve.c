/*
 * The eve socket: the gateway listens, Suricata connects and writes lines.
 *
 * Suricata connects once per process (and again after a restart), so a small
 * number of connections is allowed; each has its own bounded line buffer.
 * Handles are freed from close callbacks only, and the reader itself once the
 * last handle has closed (the pattern of agent/ctl.c).
 */
#include "ips/eve.h"

#include "base/error.h"
#include "base/log.h"
#include "ips/ips_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SUB "ips"
#define MAX_CONNS 4
#define READ_CHUNK (64u * 1024u)

struct conn {
	struct pp_eve_reader *r;
	uv_pipe_t pipe;
	struct conn *next;
	struct pp_lines lines;
	int closing;
};

struct pp_eve_reader {
	uv_loop_t *loop;
	uv_pipe_t listener;
	pp_eve_cb cb;
	void *ctx;
	struct conn *conns;
	unsigned nconns;
	unsigned nhandles;
	int freeing;
	struct pp_eve_stats st;
	struct pp_ratelimit rl;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char rbuf[READ_CHUNK];
};

static void on_listener_closed(uv_handle_t *h);

static void
handle_closed(struct pp_eve_reader *r)
{
	if (--r->nhandles == 0 && r->freeing)
		free(r);
}

static void
on_conn_closed(uv_handle_t *h)
{
	struct conn *c = h->data;
	struct pp_eve_reader *r = c->r;

	pp_lines_fini(&c->lines);
	free(c);
	handle_closed(r);
}

static void
conn_close(struct conn *c)
{
	struct pp_eve_reader *r = c->r;

	if (c->closing)
		return;
	c->closing = 1;
	for (struct conn **pp = &r->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			r->nconns--;
			break;
		}
	}
	uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
}

static int
on_line(void *arg, const char *line, size_t len)
{
	struct conn *c = arg;
	struct pp_eve_reader *r = c->r;
	struct pp_eve_event ev;
	unsigned supp;
	int rc;

	if (line == NULL) {
		r->st.garbage++;
		if (pp_ratelimit_ok(&r->rl, &supp))
			pp_warn(SUB, "eve: a line over %u bytes skipped",
			    (unsigned)PP_EVE_LINE_MAX);
		return 0;
	}
	r->st.lines++;
	if (len == 0)
		return 0;
	rc = pp_eve_parse(line, len, &ev);
	if (rc == PP_ENOTFOUND) {
		r->st.skipped++;
		return 0;
	}
	if (rc != 0) {
		r->st.garbage++;
		if (pp_ratelimit_ok(&r->rl, &supp))
			pp_warn(SUB, "eve: a line that is not an eve event "
			    "skipped (%zu bytes)%s", len,
			    supp ? " (and earlier ones)" : "");
		return 0;
	}
	r->st.events++;
	r->cb(&ev, r->ctx);
	/* The callback may have freed the reader. */
	return r->freeing ? 1 : 0;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct conn *c = h->data;

	(void)hint;
	buf->base = c->r->rbuf;
	buf->len = sizeof(c->r->rbuf);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct conn *c = s->data;

	if (n < 0) {
		if (n != UV_EOF)
			pp_debug(SUB, "eve: read: %s", uv_strerror((int)n));
		conn_close(c);
		return;
	}
	if (n == 0 || c->closing)
		return;
	if (pp_lines_feed(&c->lines, buf->base, (size_t)n, on_line, c) < 0)
		conn_close(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct pp_eve_reader *r = server->data;
	struct conn *c;

	if (status < 0 || r->freeing)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->r = r;
	pp_lines_init(&c->lines, PP_EVE_LINE_MAX);
	if (uv_pipe_init(r->loop, &c->pipe, 0) != 0) {
		free(c);
		return;
	}
	c->pipe.data = c;
	r->nhandles++;
	c->next = r->conns;
	r->conns = c;
	r->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) != 0) {
		conn_close(c);
		return;
	}
	if (r->nconns > MAX_CONNS) {
		pp_warn(SUB, "eve: more than %d writers on %s; refused one",
		    MAX_CONNS, r->path);
		conn_close(c);
		return;
	}
	r->st.connections++;
	pp_debug(SUB, "eve: Suricata connected to %s", r->path);
	if (uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read) != 0)
		conn_close(c);
}

/* Removes a socket file left by a crashed run; refuses anything else. */
static int
unlink_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	return unlink(path) == 0 ? 0 : -errno;
}

int
pp_eve_reader_new(uv_loop_t *loop, const char *path, pp_eve_cb cb, void *ctx,
    struct pp_eve_reader **out)
{
	struct pp_eve_reader *r;
	int rc;

	*out = NULL;
	if (strlen(path) >= sizeof(r->path))
		return -ENAMETOOLONG;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return -ENOMEM;
	r->loop = loop;
	r->cb = cb;
	r->ctx = ctx;
	r->rl = (struct pp_ratelimit)PP_RATELIMIT_INIT(10000, 5);
	memcpy(r->path, path, strlen(path) + 1);
	if ((rc = unlink_stale(path)) != 0)
		goto fail_free;
	if ((rc = uv_pipe_init(loop, &r->listener, 0)) != 0)
		goto fail_free;
	r->listener.data = r;
	r->nhandles = 1;
	if ((rc = uv_pipe_bind(&r->listener, path)) != 0 ||
	    (rc = chmod(path, 0600) != 0 ? -errno : 0) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&r->listener, MAX_CONNS,
	    on_connection)) != 0) {
		unlink(path);
		/* Freed by the close callback, once the loop runs. */
		r->freeing = 1;
		uv_close((uv_handle_t *)&r->listener, on_listener_closed);
		return rc;
	}
	*out = r;
	return 0;
fail_free:
	free(r);
	return rc;
}

static void
on_listener_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

void
pp_eve_reader_stats(const struct pp_eve_reader *r, struct pp_eve_stats *st)
{
	*st = r->st;
}

void
pp_eve_reader_free(struct pp_eve_reader *r)
{
	if (r == NULL || r->freeing)
		return;
	r->freeing = 1;
	while (r->conns)
		conn_close(r->conns);
	unlink(r->path);
	uv_close((uv_handle_t *)&r->listener, on_listener_closed);
}
