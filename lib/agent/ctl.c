/*
 * The control API server (on the agent's loop) and its blocking client.
 *
 * Each connection is a `struct client`: a line splitter for what it sends and
 * libuv's write queue for what we send it.  Replies are written in the order
 * the requests were read because every request is answered synchronously
 * from the read callback.  Memory per client is bounded: one partial line
 * (PP_CTL_LINE_MAX) in, PP_CTL_OUT_MAX queued out; above QUEUE_HIGH_WATER we
 * stop reading its requests until it reads our replies, and events (which we
 * cannot hold back) past PP_CTL_OUT_MAX cost it the connection.
 *
 * Handles are freed only from close callbacks, and the server itself only
 * once the last of its handles has closed, so a handler may call
 * pp_ctl_free() (an "exit" command) while we are inside a read callback.
 */
#include "agent/ctl.h"

#include "agent/ctl_int.h"
#include "base/error.h"
#include "base/fsutil.h"
#include "base/json.h"
#include "base/lines.h"
#include "base/log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define SUB "ctl"

/* Queued output above this: stop reading the client's requests. */
#define QUEUE_HIGH_WATER (256u * 1024u)
#define READ_CHUNK (64u * 1024u)
#define BACKLOG 16

struct client {
	struct pp_ctl *c;
	uv_pipe_t pipe;
	uv_shutdown_t shutdown;
	struct client *prev, *next;	/* c->clients, while linked */
	struct pp_lines lines;
	/* draining: EOF seen, last replies going out; shut: uv_shutdown
	 * queued, nothing more may be written */
	unsigned linked:1, subscribed:1, paused:1, closing:1, draining:1,
	    shut:1;
	uid_t uid;			/* SO_PEERCRED at accept */
};

struct wreq {
	uv_write_t req;
	struct client *cl;
	char buf[];
};

struct pp_ctl {
	uv_loop_t *loop;
	uv_pipe_t listener;
	pp_ctl_handler handler;
	void *ctx;
	struct client *clients;
	unsigned nclients;
	unsigned nhandles;	/* open handles, the listener included */
	unsigned freeing:1, warned_groups:1, spare_busy:1;
	uv_pipe_t spare;	/* takes a connection when out of memory */
	unsigned mode;
	uid_t uid;
	gid_t gid;		/* the socket file's group (for mode 0660) */
	dev_t dev;		/* the socket file we created, so that we only */
	ino_t ino;		/* ever unlink our own */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char rbuf[READ_CHUNK];	/* libuv reads into it and we consume it
				 * before the read callback returns */
	struct pp_ratelimit rl_accept;
};

static void client_close(struct client *cl);

static void
handle_closed(struct pp_ctl *c)
{
	if (--c->nhandles == 0 && c->freeing)
		free(c);
}

static void
on_client_closed(uv_handle_t *h)
{
	struct client *cl = h->data;
	struct pp_ctl *c = cl->c;

	pp_lines_fini(&cl->lines);
	free(cl);
	handle_closed(c);
}

static void
client_unlink(struct client *cl)
{
	struct pp_ctl *c = cl->c;

	if (!cl->linked)
		return;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	cl->prev = cl->next = NULL;
	cl->linked = 0;
	c->nclients--;
}

/* Idempotent; pending writes get UV_ECANCELED before the close callback. */
static void
client_close(struct client *cl)
{
	if (cl->closing)
		return;
	cl->closing = 1;
	client_unlink(cl);
	uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
}

static size_t
queued(struct client *cl)
{
	return uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void
set_paused(struct client *cl, int pause)
{
	if (cl->closing || cl->draining || cl->paused == (unsigned)!!pause)
		return;
	cl->paused = !!pause;
	if (pause)
		uv_read_stop((uv_stream_t *)&cl->pipe);
	else if (uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0)
		client_close(cl);
}

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct client *cl = w->cl;

	free(w);
	if (cl->closing)
		return;
	if (status < 0) {
		pp_debug(SUB, "client write failed: %s", uv_strerror(status));
		client_close(cl);
		return;
	}
	if (cl->paused && queued(cl) <= QUEUE_HIGH_WATER / 2)
		set_paused(cl, 0);
}

/* Queues one line (text plus '\n'); on failure the client is closed. */
static int
send_text(struct client *cl, const char *text, size_t len)
{
	struct wreq *w;
	uv_buf_t b;
	int rc;

	if (cl->closing || cl->shut)
		return PP_ECONFLICT;
	if (queued(cl) + len + 1 > PP_CTL_OUT_MAX) {
		pp_warn(SUB, "closing a control client that left %zu bytes "
		    "unread (limit %u)", queued(cl), (unsigned)PP_CTL_OUT_MAX);
		client_close(cl);
		return PP_ELIMIT;
	}
	if ((w = malloc(sizeof(*w) + len + 1)) == NULL) {
		client_close(cl);
		return -ENOMEM;
	}
	w->cl = cl;
	memcpy(w->buf, text, len);
	w->buf[len] = '\n';
	/* jansson escapes control characters in strings, so the text has
	 * no '\n' of its own and this one ends the line. */
	b = uv_buf_init(w->buf, (unsigned)(len + 1));
	if ((rc = uv_write(&w->req, (uv_stream_t *)&cl->pipe, &b, 1,
	    on_write)) != 0) {
		free(w);
		client_close(cl);
		return rc;
	}
	if (queued(cl) > QUEUE_HIGH_WATER)
		set_paused(cl, 1);
	return 0;
}

static int
send_json(struct client *cl, json_t *msg)
{
	size_t len;
	char *s;
	int rc;

	if (msg == NULL || (s = pp_json_dump(msg, &len)) == NULL) {
		client_close(cl);
		return -ENOMEM;
	}
	rc = send_text(cl, s, len);
	free(s);
	return rc;
}

static void
reply_err(struct client *cl, json_t *id, const char *msg)
{
	json_t *r = pp__ctl_reply_err(id, msg);

	send_json(cl, r);
	json_decref(r);
}

static void
dispatch(struct client *cl, const char *line, size_t len)
{
	struct pp_ctl *c = cl->c;
	struct pp__ctl_req req;
	char err[512] = "";
	json_t *result, *args, *r;

	if (pp__ctl_parse_request(line, len, &req, err, sizeof(err)) != 0) {
		reply_err(cl, req.id, err);
		json_decref(req.root);
		return;
	}
	if (cl->uid != 0 && cl->uid != c->uid &&
	    pp__ctl_owner_only(req.cmd, req.args)) {
		snprintf(err, sizeof(err), "'%s%s' is only for root or the "
		    "agent's own user (uid %u); you are uid %u, let in through "
		    "the socket's group: run it as that user (e.g. sudo -u "
		    "'#%u' peerpipe ...)", req.cmd, strcmp(req.cmd, "invites") == 0
		    ? " --revoke" : "", (unsigned)c->uid, (unsigned)cl->uid,
		    (unsigned)c->uid);
		pp_warn(SUB, "refused '%s' from uid %u: only root or uid %u may",
		    req.cmd, (unsigned)cl->uid, (unsigned)c->uid);
		reply_err(cl, req.id, err);
		json_decref(req.root);
		return;
	}
	if (strcmp(req.cmd, "subscribe") == 0) {
		cl->subscribed = 1;
		result = json_pack("{s:b}", "subscribed", 1);
	} else {
		args = req.args ? json_incref(req.args) : json_object();
		result = c->handler(c->ctx, req.cmd, args, err, sizeof(err));
		json_decref(args);
		if (result == NULL && err[0] == '\0')
			snprintf(err, sizeof(err), "command '%s' failed",
			    req.cmd);
	}
	/* The handler may have closed this client (pp_ctl_free): then the
	 * reply has nowhere to go and send_text drops it. */
	if (result == NULL) {
		reply_err(cl, req.id, err);
	} else {
		r = pp__ctl_reply_ok(req.id, result);
		send_json(cl, r);
		json_decref(r);
		json_decref(result);
	}
	json_decref(req.root);
}

static int
on_line(void *arg, const char *line, size_t len)
{
	struct client *cl = arg;

	if (line == NULL) {
		char msg[128];

		snprintf(msg, sizeof(msg), "request line longer than %u bytes; "
		    "it was dropped", (unsigned)PP_CTL_LINE_MAX);
		reply_err(cl, NULL, msg);
	} else if (len > 0) {
		/* Blank lines are ignored: handy when typing into socat. */
		dispatch(cl, line, len);
	}
	return cl->closing;
}

static void
on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct client *cl = h->data;

	(void)hint;
	*buf = uv_buf_init(cl->c->rbuf, sizeof(cl->c->rbuf));
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	(void)status;
	client_close(req->data);
}

static void
on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct client *cl = s->data;
	int rc;

	if (n == UV_EOF) {
		/* The client has said everything: answer a last line without
		 * '\n', then close once our replies are written (uv_shutdown
		 * waits for the write queue). */
		uv_read_stop(s);
		cl->draining = 1;
		if (pp_lines_finish(&cl->lines, on_line, cl) != 0 ||
		    cl->closing)
			return;
		cl->shutdown.data = cl;
		cl->shut = 1;	/* events from now on would be refused */
		if (uv_shutdown(&cl->shutdown, s, on_shutdown) != 0)
			client_close(cl);
		return;
	}
	if (n < 0) {
		pp_debug(SUB, "client read failed: %s", uv_strerror((int)n));
		client_close(cl);
		return;
	}
	rc = pp_lines_feed(&cl->lines, buf->base, (size_t)n, on_line, cl);
	if (rc < 0)
		client_close(cl);
}

/*
 * The second gate after the socket file's mode (which the kernel checks at
 * connect): root, our own uid, and with mode 0660 members of the socket's
 * group.  It matters when the file's mode or group has been changed behind
 * our back, or the socket was passed to another process.
 */
static int
peer_allowed(struct pp_ctl *c, int fd, uid_t *uid, char *why, size_t whylen)
{
	struct ucred uc;
	socklen_t sl = sizeof(uc);
	gid_t groups[256];
	socklen_t gl = sizeof(groups);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &sl) != 0) {
		snprintf(why, whylen, "cannot read peer credentials: %s",
		    strerror(errno));
		return 0;
	}
	*uid = uc.uid;
	if (uc.uid == 0 || uc.uid == c->uid)
		return 1;
	snprintf(why, whylen, "uid %u (pid %d) may not use this control socket",
	    (unsigned)uc.uid, (int)uc.pid);
	if (c->mode != 0660)
		return 0;
	if (uc.gid == c->gid)
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &gl) != 0) {
		if (errno == ENOPROTOOPT) {
			/* A kernel before 4.13: the file's group permission,
			 * which the kernel did check, is the only gate. */
			if (!c->warned_groups)
				pp_warn(SUB, "this kernel cannot report a peer's "
				    "groups; mode 0660 relies on the socket "
				    "file's group alone");
			c->warned_groups = 1;
			return 1;
		}
		/* ERANGE: over 256 groups; refuse rather than guess. */
		return 0;
	}
	for (size_t i = 0; i < gl / sizeof(groups[0]); i++)
		if (groups[i] == c->gid)
			return 1;
	return 0;
}

/* For a client we will not serve: one error line, then close.  The socket
 * is new, so its kernel buffer takes the line whole. */
static void
reject(struct client *cl, const char *msg)
{
	json_t *r = pp__ctl_reply_err(NULL, msg);
	size_t len;
	char *s = r ? pp_json_dump(r, &len) : NULL;

	if (s != NULL) {
		char line[1024];
		uv_buf_t b;

		if (len < sizeof(line)) {
			memcpy(line, s, len);
			line[len] = '\n';
			b = uv_buf_init(line, (unsigned)(len + 1));
			(void)uv_try_write((uv_stream_t *)&cl->pipe, &b, 1);
		}
	}
	free(s);
	json_decref(r);
	client_close(cl);
}

static void
on_spare_closed(uv_handle_t *h)
{
	struct pp_ctl *c = h->data;

	c->spare_busy = 0;
	handle_closed(c);
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct pp_ctl *c = server->data;
	struct client *cl;
	char why[160];
	uv_os_fd_t fd;
	unsigned sup;

	if (status < 0) {
		if (pp_ratelimit_ok(&c->rl_accept, &sup))
			pp_warn(SUB, "accepting a control client failed: %s",
			    uv_strerror(status));
		return;
	}
	if ((cl = calloc(1, sizeof(*cl))) == NULL) {
		/* libuv stops watching the listener until we accept, so
		 * take the connection with the spare handle and hang up.
		 * (A second failure before the spare has closed stalls the
		 * listener until the next accept.) */
		pp_err(SUB, "out of memory accepting a control client");
		if (!c->spare_busy) {
			c->spare_busy = 1;
			c->nhandles++;
			uv_pipe_init(c->loop, &c->spare, 0);
			c->spare.data = c;
			(void)uv_accept(server, (uv_stream_t *)&c->spare);
			uv_close((uv_handle_t *)&c->spare, on_spare_closed);
		}
		return;
	}
	cl->c = c;
	cl->uid = (uid_t)-1;	/* nobody, until SO_PEERCRED says */
	pp_lines_init(&cl->lines, PP__CTL_LINES_CAP);
	uv_pipe_init(c->loop, &cl->pipe, 0);
	cl->pipe.data = cl;
	c->nhandles++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
		client_close(cl);
		return;
	}
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) != 0 ||
	    !peer_allowed(c, fd, &cl->uid, why, sizeof(why))) {
		pp_warn(SUB, "refused a control client: %s", why);
		reject(cl, why);
		return;
	}
	if (c->nclients >= PP_CTL_MAX_CLIENTS) {
		snprintf(why, sizeof(why), "too many control clients (limit "
		    "%d); close one and retry", PP_CTL_MAX_CLIENTS);
		if (pp_ratelimit_ok(&c->rl_accept, &sup))
			pp_warn(SUB, "%s", why);
		reject(cl, why);
		return;
	}
	if (uv_read_start((uv_stream_t *)&cl->pipe, on_alloc, on_read) != 0) {
		client_close(cl);
		return;
	}
	cl->next = c->clients;
	if (c->clients)
		c->clients->prev = cl;
	c->clients = cl;
	cl->linked = 1;
	c->nclients++;
}

/*
 * What is at path now?  0: nothing or a stale socket (removed); PP_ECONFLICT:
 * a server answers there; -EEXIST: not a socket, left alone.
 */
static int
clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		pp_err(SUB, "%s exists and is not a socket; remove it or set "
		    "another [agent] control path", path);
		return -EEXIST;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	rc = rc == 0 ? 0 : errno;
	close(fd);
	switch (rc) {
	case 0:
	case EAGAIN:	/* its backlog is full: alive, just busy */
		pp_err(SUB, "another agent already serves %s; stop it or set "
		    "another [agent] control path", path);
		return PP_ECONFLICT;
	case ECONNREFUSED:
		/* Left behind by a process that died: nobody listens. */
		pp_info(SUB, "removing the stale control socket %s", path);
		if (unlink(path) != 0 && errno != ENOENT)
			return -errno;
		return 0;
	case ENOENT:
		return 0;
	default:
		pp_err(SUB, "cannot check the existing control socket %s: %s",
		    path, strerror(rc));
		return -rc;
	}
}

static int
make_parent(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char *slash;
	int rc;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((slash = strrchr(dir, '/')) == NULL || slash == dir)
		return 0;
	*slash = '\0';
	if ((rc = pp_mkdir_p(dir, 0700)) != 0)
		pp_err(SUB, "cannot create the directory %s for the control "
		    "socket: %s", dir, strerror(-rc));
	return rc;
}

/*
 * socket + bind + chmod + listen by hand: the mode is set before listen(),
 * so there is no moment when a connection could be made under the umask's
 * mode; and libuv's pipe name handling (truncation, unlink on close) stays
 * out of the way of our own.
 */
static int
bind_listen(struct pp_ctl *c, const struct sockaddr_un *sa, int *out)
{
	struct stat st;
	int fd, rc;

	*out = -1;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		rc = errno == EADDRINUSE ? PP_ECONFLICT : -errno;
		pp_err(SUB, "cannot bind the control socket %s: %s", c->path,
		    strerror(errno));
		close(fd);
		return rc;
	}
	if (chmod(c->path, c->mode) != 0 || lstat(c->path, &st) != 0) {
		rc = -errno;
		pp_err(SUB, "cannot set mode %04o on %s: %s", c->mode, c->path,
		    strerror(errno));
		goto fail_unlink;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->gid = st.st_gid;
	if (listen(fd, BACKLOG) != 0) {
		rc = -errno;
		goto fail_unlink;
	}
	*out = fd;
	return 0;

fail_unlink:
	unlink(c->path);
	close(fd);
	return rc;
}

/* Unlinks path only if it is still the socket we created. */
static void
unlink_ours(struct pp_ctl *c)
{
	struct stat st;

	if (c->path[0] == '\0' || lstat(c->path, &st) != 0)
		return;
	if (st.st_dev == c->dev && st.st_ino == c->ino)
		unlink(c->path);
	c->path[0] = '\0';
}

static void
on_listener_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

int
pp_ctl_new(uv_loop_t *loop, const char *path, unsigned mode,
    pp_ctl_handler handler, void *ctx, struct pp_ctl **out)
{
	struct sockaddr_un sa;
	struct pp_ctl *c;
	int fd, rc;

	*out = NULL;
	if (mode != 0600 && mode != 0660) {
		pp_err(SUB, "control socket mode %04o: use 0600 (the agent's "
		    "user) or 0660 (and its group)", mode);
		return PP_EINVAL;
	}
	if (path == NULL || path[0] == '\0' || handler == NULL)
		return PP_EINVAL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		pp_err(SUB, "control socket path %s is longer than %zu bytes",
		    path, sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path));
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	c->loop = loop;
	c->handler = handler;
	c->ctx = ctx;
	c->mode = mode;
	c->uid = geteuid();
	c->rl_accept = (struct pp_ratelimit)PP_RATELIMIT_INIT(10000, 5);
	memcpy(c->path, path, strlen(path) + 1);

	if ((rc = make_parent(path)) != 0 ||
	    (rc = clear_stale(path, &sa)) != 0 ||
	    (rc = bind_listen(c, &sa, &fd)) != 0)
		goto fail_free;

	/* From here the loop knows the handle: failures close it and the
	 * memory goes in its close callback. */
	uv_pipe_init(loop, &c->listener, 0);
	c->listener.data = c;
	c->nhandles = 1;
	if ((rc = uv_pipe_open(&c->listener, fd)) != 0) {
		close(fd);
		goto fail_close;
	}
	if ((rc = uv_listen((uv_stream_t *)&c->listener, BACKLOG,
	    on_connection)) != 0)
		goto fail_close;
	pp_info(SUB, "control API on %s (mode %04o)", path, mode);
	*out = c;
	return 0;

fail_close:
	pp_err(SUB, "cannot listen on %s: %s", path, uv_strerror(rc));
	unlink_ours(c);
	c->freeing = 1;
	uv_close((uv_handle_t *)&c->listener, on_listener_closed);
	return rc;
fail_free:
	free(c);
	return rc;
}

void
pp_ctl_broadcast(struct pp_ctl *c, const char *event, json_t *data)
{
	struct client *cl, *next;
	json_t *ev;
	size_t len;
	char *s;

	if (c == NULL || c->freeing)
		return;
	ev = json_pack("{s:s, s:O}", "event", event, "data",
	    data ? data : json_null());
	if (ev == NULL || (s = pp_json_dump(ev, &len)) == NULL) {
		json_decref(ev);
		return;
	}
	json_decref(ev);
	for (cl = c->clients; cl; cl = next) {
		next = cl->next;	/* send_text may unlink cl */
		if (cl->subscribed)
			send_text(cl, s, len);
	}
	free(s);
}

void
pp_ctl_free(struct pp_ctl *c)
{
	if (c == NULL || c->freeing)
		return;
	c->freeing = 1;
	while (c->clients)
		client_close(c->clients);
	unlink_ours(c);
	uv_close((uv_handle_t *)&c->listener, on_listener_closed);
}

/* --- the blocking client ------------------------------------------------ */

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for events; 0, -ETIMEDOUT or -errno. */
static int
wait_fd(int fd, short events, long long deadline)
{
	struct pollfd p = { .fd = fd, .events = events };

	for (;;) {
		long long left = deadline - mono_ms();
		int n;

		if (left <= 0)
			return -ETIMEDOUT;
		n = poll(&p, 1, left > INT_MAX ? INT_MAX : (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static int
call_fail(int rc, const char *path, unsigned timeout_ms, char *err,
    size_t errlen)
{
	switch (rc) {
	case -ENOENT:
	case -ECONNREFUSED:
		snprintf(err, errlen, "no agent is listening on %s (is "
		    "`peerpipe gateway` running? set [agent] control or "
		    "--control)", path);
		break;
	case -EACCES:
	case -EPERM:
		snprintf(err, errlen, "permission denied on %s: the control "
		    "socket belongs to the agent's user (mode 0600) or also "
		    "its group (0660); run as that user or join the group",
		    path);
		break;
	case -ETIMEDOUT:
		snprintf(err, errlen, "the agent on %s did not answer within "
		    "%u ms", path, timeout_ms);
		break;
	case -ECONNRESET:
	case -EPIPE:
		snprintf(err, errlen, "the agent on %s closed the connection "
		    "before answering", path);
		break;
	case -ENAMETOOLONG:
		snprintf(err, errlen, "control socket path %s is too long "
		    "(at most %zu bytes)", path,
		    sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
		break;
	default:
		snprintf(err, errlen, "control socket %s: %s", path,
		    pp_strerror(rc));
		break;
	}
	return rc;
}

static int
connect_by(int fd, const struct sockaddr_un *sa, long long deadline)
{
	for (;;) {
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			return -errno;
		/* A full backlog: the agent is busy accepting.  AF_UNIX has
		 * no EINPROGRESS, so retry shortly. */
		if (mono_ms() + 10 >= deadline)
			return -ETIMEDOUT;
		poll(NULL, 0, 10);
	}
}

static int
send_all(int fd, const char *buf, size_t len, long long deadline)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		int rc;

		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN)
			return -errno;
		if ((rc = wait_fd(fd, POLLOUT, deadline)) != 0)
			return rc;
	}
	return 0;
}

/* Reads lines until the reply to our request; events are skipped. */
static int
read_reply(int fd, long long deadline, json_t **result, char *err,
    size_t errlen)
{
	size_t cap = 4096, len = 0, start = 0;
	char *buf = malloc(cap), *nl;
	int rc;

	if (buf == NULL)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		while ((nl = memchr(buf + start, '\n', len - start)) != NULL) {
			json_t *root, *id;

			rc = pp__ctl_parse_reply(buf + start,
			    (size_t)(nl - buf) - start, &root, &id, result,
			    err, errlen);
			json_decref(root);
			start = (size_t)(nl - buf) + 1;
			if (rc != 1)
				goto out;
		}
		if (start > 0) {
			memmove(buf, buf + start, len - start);
			len -= start;
			start = 0;
		}
		if (len == cap) {
			char *nb;

			if (cap >= PP_CTL_OUT_MAX) {
				snprintf(err, errlen, "the agent's reply is "
				    "over %u bytes", (unsigned)PP_CTL_OUT_MAX);
				rc = PP_ETOOBIG;
				goto out;
			}
			if ((nb = realloc(buf, cap * 2)) == NULL) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len, 0);
		if (n > 0) {
			len += (size_t)n;
			continue;
		}
		if (n == 0) {
			rc = -ECONNRESET;
			goto out;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN) {
			rc = -errno;
			goto out;
		}
		if ((rc = wait_fd(fd, POLLIN, deadline)) != 0)
			goto out;
	}
out:
	free(buf);
	return rc;
}

int
pp_ctl_call(const char *path, const char *cmd, json_t *args,
    unsigned timeout_ms, json_t **result, char *err, size_t errlen)
{
	long long deadline = mono_ms() + timeout_ms;
	struct sockaddr_un sa;
	json_t *req;
	char *text = NULL;
	size_t len;
	int fd, rc;

	*result = NULL;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return call_fail(-ENAMETOOLONG, path, timeout_ms, err, errlen);
	memcpy(sa.sun_path, path, strlen(path));

	req = json_pack("{s:i, s:s}", "id", 1, "cmd", cmd);
	if (req != NULL && args != NULL &&
	    json_object_set(req, "args", args) != 0) {
		json_decref(req);
		req = NULL;
	}
	text = req ? pp_json_dump(req, &len) : NULL;
	json_decref(req);
	if (text == NULL) {
		snprintf(err, errlen, "cannot encode the request '%s'", cmd);
		return -ENOMEM;
	}
	if (len + 1 > PP_CTL_LINE_MAX) {
		snprintf(err, errlen, "request '%s' is over %u bytes", cmd,
		    (unsigned)PP_CTL_LINE_MAX);
		free(text);
		return PP_ETOOBIG;
	}
	text[len] = '\n';	/* over the dump's NUL: sent by length */

	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	    0)) < 0) {
		rc = call_fail(-errno, path, timeout_ms, err, errlen);
		goto out_free;
	}
	if ((rc = connect_by(fd, &sa, deadline)) != 0) {
		call_fail(rc, path, timeout_ms, err, errlen);
		goto out_close;
	}
	rc = send_all(fd, text, len + 1, deadline);
	if (rc != 0 && rc != -EPIPE && rc != -ECONNRESET) {
		call_fail(rc, path, timeout_ms, err, errlen);
		goto out_close;
	}
	/* Even when the agent hung up on us it may have said why first (too
	 * many clients, a uid it does not serve): read that. */
	rc = read_reply(fd, deadline, result, err, errlen);
	if (rc < 0 && rc != PP_EINVAL && rc != PP_EPROTO && rc != PP_ETOOBIG)
		call_fail(rc, path, timeout_ms, err, errlen);
out_close:
	close(fd);
out_free:
	free(text);
	return rc;
}
