/*
 * GLib's main-loop protocol run by libuv phases.
 *
 *   uv prepare: g_main_context_prepare + query -> the fd set and a timeout;
 *               sync the private epoll set, arm the uv timer
 *   uv poll:    libuv sleeps; the epoll fd wakes it (watch) or the timer does
 *   uv check:   harvest revents from the epoll set, g_main_context_check,
 *               g_main_context_dispatch
 *
 * Changes made to the context between our prepare and the next sleep are
 * caught two ways.  Adding or removing a poll fd, or moving a source's ready
 * time, writes GLib's own wakeup eventfd, which sits in our epoll set, so the
 * loop wakes and re-queries.  Attaching a timeout from the owner thread does
 * not write it: callers kick (pp_gloop_kick), which arms the timer at 0.
 *
 * The hazard of a foreign fd set is a reused number: libnice closes socket 12
 * and opens another that gets number 12 before we query again.  The kernel
 * dropped the old registration when the socket closed, but the number is
 * still in our table, so the new socket would never be polled.  Such a swap
 * always writes the wakeup eventfd (a poll fd was removed and one added);
 * when the harvest sees that fd readable, the next sync re-registers every fd
 * with EPOLL_CTL_MOD, and ENOENT reveals a number whose file changed.  The
 * new socket is at most one iteration late; its data waits in the socket.
 * Entries whose file survived elsewhere (a dup in another process) cannot be
 * removed by number: each registration carries a generation tag, and an
 * event with a tag we no longer hold makes us rebuild the epoll set.
 */
#include "gloop.h"
#include "base/error.h"
#include "base/log.h"

#include <glib.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define SUB "ice"

/* One descriptor in the private epoll set. */
struct reg {
	int fd;
	uint32_t events;	/* EPOLL* as registered */
	uint32_t gen;		/* tag carried in epoll data */
};

struct pp_gloop {
	uv_loop_t *loop;
	GMainContext *ctx;
	int epfd;
	int wakeup_fd;		/* GLib's wakeup eventfd; -1 if unknown */
	uv_poll_t watch;	/* epfd, readable */
	uv_prepare_t prepare;
	uv_check_t check;
	uv_timer_t timer;	/* GLib's timeout, or 0 after a kick */

	GPollFD *fds;		/* the last query, sorted by fd */
	int nfds, fds_cap;
	struct reg *regs;	/* what epfd holds, sorted by fd */
	struct reg *regs_tmp;	/* the next regs, built by sync_fds */
	int nregs, regs_cap, tmp_cap;
	struct epoll_event *evs;
	int evs_cap;
	int max_prio;
	uint32_t next_gen;

	bool prepared;		/* query done, check owed */
	bool readable;		/* watch fired since the last harvest */
	bool recheck;		/* re-register every fd: a number may be reused */
	bool rebuild;		/* epfd holds an entry we cannot remove */
	bool watching;
	bool free_requested;
	bool closing;
	unsigned dispatching;
	unsigned holds;
	int open_handles;
	struct pp_ratelimit warn_rl;
	struct pp_gloop_stats st;
};


static uint32_t
to_epoll(gushort events)
{
	uint32_t e = 0;

	if (events & G_IO_IN)
		e |= EPOLLIN;
	if (events & G_IO_OUT)
		e |= EPOLLOUT;
	if (events & G_IO_PRI)
		e |= EPOLLPRI;
	return e;
}

static gushort
from_epoll(uint32_t e)
{
	gushort r = 0;

	if (e & EPOLLIN)
		r |= G_IO_IN;
	if (e & EPOLLOUT)
		r |= G_IO_OUT;
	if (e & EPOLLPRI)
		r |= G_IO_PRI;
	if (e & EPOLLERR)
		r |= G_IO_ERR;
	if (e & EPOLLHUP)
		r |= G_IO_HUP;
	return r;
}

static void
epoll_warn(struct pp_gloop *gl, const char *what, int fd, int err)
{
	unsigned skipped;

	if (pp_ratelimit_ok(&gl->warn_rl, &skipped))
		pp_warn(SUB, "glib fd %d: epoll %s: %s (%u similar suppressed)",
		    fd, what, strerror(err), skipped);
}

static int
grow(void **arr, int *cap, int need, size_t elem)
{
	void *p;
	int n;

	if (need <= *cap)
		return 0;
	n = *cap ? *cap : 8;
	while (n < need)
		n *= 2;
	p = realloc(*arr, (size_t)n * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = n;
	return 0;
}

static void
tag(struct epoll_event *ev, int fd, uint32_t events, uint32_t gen)
{
	memset(ev, 0, sizeof(*ev));
	ev->events = events;
	ev->data.u64 = (uint64_t)gen << 32 | (uint32_t)fd;
}

/* Registers fd afresh; false if the kernel refused (closed, not pollable). */
static bool
ep_add(struct pp_gloop *gl, int fd, uint32_t events, struct reg *out)
{
	struct epoll_event ev;
	uint32_t gen = ++gl->next_gen;

	tag(&ev, fd, events, gen);
	if (epoll_ctl(gl->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		if (errno != EEXIST ||
		    epoll_ctl(gl->epfd, EPOLL_CTL_MOD, fd, &ev) != 0) {
			/*
			 * EBADF: GLib still lists a descriptor its owner
			 * closed; its source is about to go.  EPERM: a
			 * regular file, which GLib's own poll() would call
			 * always ready; no libnice source uses one.
			 */
			if (errno != EBADF)
				epoll_warn(gl, "add", fd, errno);
			return false;
		}
	}
	out->fd = fd;
	out->events = events;
	out->gen = gen;
	return true;
}

/* Updates fd's events; on ENOENT the number now names another file. */
static bool
ep_mod(struct pp_gloop *gl, struct reg *r, uint32_t events)
{
	struct epoll_event ev;

	tag(&ev, r->fd, events, r->gen);
	if (epoll_ctl(gl->epfd, EPOLL_CTL_MOD, r->fd, &ev) == 0) {
		r->events = events;
		return true;
	}
	if (errno == ENOENT)
		return ep_add(gl, r->fd, events, r);
	if (errno != EBADF)
		epoll_warn(gl, "mod", r->fd, errno);
	return false;
}

static void
ep_del(struct pp_gloop *gl, int fd)
{
	/* ENOENT/EBADF: the file closed and the kernel already dropped it. */
	if (epoll_ctl(gl->epfd, EPOLL_CTL_DEL, fd, NULL) != 0 &&
	    errno != ENOENT && errno != EBADF)
		epoll_warn(gl, "del", fd, errno);
}

/*
 * Brings the epoll set in line with the last query: both lists are sorted
 * by fd (g_main_context_query merges records of one fd), so one merge pass.
 */
static void
sync_fds(struct pp_gloop *gl)
{
	bool all = gl->recheck;
	int i = 0, j = 0, k = 0;

	gl->recheck = false;
	if (all)
		gl->st.rechecks++;
	while (i < gl->nregs || j < gl->nfds) {
		struct reg r;
		uint32_t want;

		if (j == gl->nfds ||
		    (i < gl->nregs && gl->regs[i].fd < gl->fds[j].fd)) {
			ep_del(gl, gl->regs[i++].fd);
			continue;
		}
		want = to_epoll(gl->fds[j].events);
		if (i == gl->nregs || gl->fds[j].fd < gl->regs[i].fd) {
			if (ep_add(gl, gl->fds[j].fd, want, &r))
				gl->regs_tmp[k++] = r;
			j++;
			continue;
		}
		r = gl->regs[i++];
		j++;
		if ((all || r.events != want) && !ep_mod(gl, &r, want))
			continue;
		gl->regs_tmp[k++] = r;
	}
	{
		struct reg *t = gl->regs;
		int c = gl->regs_cap;

		gl->regs = gl->regs_tmp;
		gl->regs_cap = gl->tmp_cap;
		gl->regs_tmp = t;
		gl->tmp_cap = c;
		gl->nregs = k;
	}
}

static const struct reg *
find_reg(const struct pp_gloop *gl, int fd)
{
	int lo = 0, hi = gl->nregs;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (gl->regs[mid].fd == fd)
			return &gl->regs[mid];
		if (gl->regs[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static GPollFD *
find_pollfd(const struct pp_gloop *gl, int fd)
{
	int lo = 0, hi = gl->nfds;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;

		if (gl->fds[mid].fd == fd)
			return &gl->fds[mid];
		if (gl->fds[mid].fd < fd)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/*
 * Reads what is ready in the epoll set into the query's revents.  The event
 * buffer is larger than the set, so one level-triggered epoll_wait sees all.
 */
static void
harvest(struct pp_gloop *gl)
{
	int n;

	do
		n = epoll_wait(gl->epfd, gl->evs, gl->evs_cap, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		epoll_warn(gl, "wait", gl->epfd, errno);
		return;
	}
	for (int i = 0; i < n; i++) {
		int fd = (int)(uint32_t)gl->evs[i].data.u64;
		uint32_t gen = (uint32_t)(gl->evs[i].data.u64 >> 32);
		const struct reg *r = find_reg(gl, fd);
		GPollFD *p;

		if (!r || r->gen != gen) {
			gl->rebuild = true;
			continue;
		}
		if (fd == gl->wakeup_fd)
			gl->recheck = true;
		p = find_pollfd(gl, fd);
		if (p)
			p->revents |= from_epoll(gl->evs[i].events);
	}
}

static void
on_watch(uv_poll_t *h, int status, int events)
{
	struct pp_gloop *gl = h->data;

	if (status < 0) {
		/* libuv stopped the handle; prepare starts it again. */
		pp_warn(SUB, "glib epoll watch: %s", uv_strerror(status));
		gl->watching = false;
	}
	gl->readable = true;
}

static void
on_timer(uv_timer_t *h)
{
	/* Nothing to do: the timer only ends libuv's sleep. */
}

/* A new, empty epoll set in place of the old, same number. */
static int
rebuild_epoll(struct pp_gloop *gl)
{
	int fd = epoll_create1(EPOLL_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (gl->watching) {
		uv_poll_stop(&gl->watch);
		gl->watching = false;
	}
	if (dup3(fd, gl->epfd, O_CLOEXEC) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	close(fd);
	gl->nregs = 0;
	gl->rebuild = false;
	pp_warn(SUB, "glib epoll set held a stale descriptor; rebuilt");
	return 0;
}

static void
on_prepare(uv_prepare_t *h)
{
	struct pp_gloop *gl = h->data;
	gint timeout = -1;
	int n, rc;

	gl->prepared = false;
	uv_update_time(gl->loop);
	g_main_context_prepare(gl->ctx, &gl->max_prio);
	/*
	 * Query every fd, not only those at max_prio: the epoll set then
	 * stays stable while a high-priority source is busy.  check() only
	 * updates records at max_prio or better, as after GLib's own poll.
	 */
	for (;;) {
		n = g_main_context_query(gl->ctx, G_MAXINT, &timeout, gl->fds,
		    gl->fds_cap);
		if (n <= gl->fds_cap)
			break;
		if (grow((void **)&gl->fds, &gl->fds_cap, n,
		    sizeof(*gl->fds)) != 0)
			goto nomem;
	}
	if (grow((void **)&gl->regs, &gl->regs_cap, n, sizeof(*gl->regs)) ||
	    grow((void **)&gl->regs_tmp, &gl->tmp_cap, n,
	    sizeof(*gl->regs_tmp)) ||
	    grow((void **)&gl->evs, &gl->evs_cap, n + 8, sizeof(*gl->evs)))
		goto nomem;
	gl->nfds = n;
	gl->st.nfds = (unsigned)n;

	if (gl->rebuild && (rc = rebuild_epoll(gl)) != 0)
		pp_err(SUB, "rebuilding the glib epoll set: %s", pp_strerror(rc));
	if (!gl->watching) {
		rc = uv_poll_start(&gl->watch, UV_READABLE, on_watch);
		if (rc == 0)
			gl->watching = true;
		else
			pp_err(SUB, "glib epoll watch: %s", uv_strerror(rc));
	}
	sync_fds(gl);
	gl->prepared = true;
	gl->st.iterations++;
	if (timeout < 0)
		uv_timer_stop(&gl->timer);
	else
		uv_timer_start(&gl->timer, on_timer, (uint64_t)timeout, 0);
	return;

nomem:
	pp_err(SUB, "glib poll set: out of memory; retrying in 100 ms");
	uv_timer_start(&gl->timer, on_timer, 100, 0);
}

static void
on_check(uv_check_t *h)
{
	struct pp_gloop *gl = h->data;

	if (!gl->prepared)
		return;
	gl->prepared = false;
	if (gl->readable) {
		gl->readable = false;
		harvest(gl);
	}
	if (g_main_context_check(gl->ctx, gl->max_prio, gl->fds, gl->nfds)) {
		g_main_context_push_thread_default(gl->ctx);
		gl->dispatching++;
		g_main_context_dispatch(gl->ctx);
		gl->dispatching--;
		gl->st.dispatches++;
		g_main_context_pop_thread_default(gl->ctx);
	}
}

static void
log_glib(const gchar *domain, GLogLevelFlags level, const gchar *msg,
    gpointer data)
{
	enum pp_log_level l;

	if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL))
		l = PP_LOG_ERROR;
	else if (level & G_LOG_LEVEL_WARNING)
		l = PP_LOG_WARN;
	else if (level & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO))
		l = PP_LOG_INFO;
	else
		l = PP_LOG_DEBUG;
	if (l <= pp_log_get_level())
		pp_log(l, SUB, "%s: %s", domain ? domain : "glib", msg);
}

/* libnice's warnings go to our log, not to GLib's stderr printer. */
static void
install_log_handler(void)
{
	static gsize once;

	if (g_once_init_enter(&once)) {
		GLogLevelFlags all = (GLogLevelFlags)(G_LOG_LEVEL_MASK |
		    G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION);

		g_log_set_handler("libnice", all, log_glib, NULL);
		g_log_set_handler("libnice-stun", all, log_glib, NULL);
		g_once_init_leave(&once, 1);
	}
}

/* A fresh context polls exactly one fd: its wakeup eventfd. */
static int
find_wakeup_fd(GMainContext *ctx)
{
	GPollFD pfd = { -1, 0, 0 };
	gint prio, timeout;
	int n;

	g_main_context_prepare(ctx, &prio);
	n = g_main_context_query(ctx, G_MAXINT, &timeout, &pfd, 1);
	g_main_context_check(ctx, prio, &pfd, n > 1 ? 1 : n);
	return n == 1 ? pfd.fd : -1;
}

int
pp_gloop_new(uv_loop_t *loop, struct pp_gloop **out)
{
	struct pp_gloop *gl;
	int rc;

	*out = NULL;
	gl = calloc(1, sizeof(*gl));
	if (!gl)
		return -ENOMEM;
	gl->loop = loop;
	gl->warn_rl = (struct pp_ratelimit)PP_RATELIMIT_INIT(10000, 5);
	gl->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (gl->epfd < 0) {
		rc = -errno;
		goto fail_free;
	}
	gl->ctx = g_main_context_new();
	if (!g_main_context_acquire(gl->ctx)) {
		rc = PP_ECONFLICT;	/* cannot happen to a new context */
		goto fail_ctx;
	}
	gl->wakeup_fd = find_wakeup_fd(gl->ctx);
	if (gl->wakeup_fd < 0)
		pp_warn(SUB, "glib wakeup fd not found; fd reuse is detected "
		    "only on explicit kicks");

	rc = uv_poll_init(loop, &gl->watch, gl->epfd);
	if (rc != 0)
		goto fail_acquired;
	uv_prepare_init(loop, &gl->prepare);
	uv_check_init(loop, &gl->check);
	uv_timer_init(loop, &gl->timer);
	gl->watch.data = gl->prepare.data = gl->check.data = gl;
	gl->timer.data = gl;
	gl->open_handles = 4;
	uv_prepare_start(&gl->prepare, on_prepare);
	uv_check_start(&gl->check, on_check);
	install_log_handler();
	*out = gl;
	return 0;

fail_acquired:
	g_main_context_release(gl->ctx);
fail_ctx:
	g_main_context_unref(gl->ctx);
	close(gl->epfd);
fail_free:
	free(gl);
	return rc;
}

static void
finish(struct pp_gloop *gl)
{
	int i;

	/*
	 * Let GLib complete what is already due (agents finishing
	 * nice_agent_close_async, sockets being pruned) before the context
	 * goes.  Bounded: anything waiting on the network is abandoned.
	 */
	g_main_context_push_thread_default(gl->ctx);
	for (i = 0; i < 64 && g_main_context_iteration(gl->ctx, FALSE); i++)
		;
	g_main_context_pop_thread_default(gl->ctx);

	close(gl->epfd);
	g_main_context_release(gl->ctx);
	g_main_context_unref(gl->ctx);
	free(gl->fds);
	free(gl->regs);
	free(gl->regs_tmp);
	free(gl->evs);
	free(gl);
}

static void
on_closed(uv_handle_t *h)
{
	struct pp_gloop *gl = h->data;

	if (--gl->open_handles == 0)
		finish(gl);
}

static void
start_close(struct pp_gloop *gl)
{
	gl->closing = true;
	uv_close((uv_handle_t *)&gl->prepare, on_closed);
	uv_close((uv_handle_t *)&gl->check, on_closed);
	uv_close((uv_handle_t *)&gl->timer, on_closed);
	uv_close((uv_handle_t *)&gl->watch, on_closed);
}

void
pp_gloop_free(struct pp_gloop *gl)
{
	if (!gl)
		return;
	assert(!gl->dispatching && !gl->free_requested);
	gl->free_requested = true;
	if (gl->holds == 0)
		start_close(gl);
	else
		pp_debug(SUB, "gloop: waiting for %u ICE agents to close",
		    gl->holds);
}

GMainContext *
pp_gloop_context(const struct pp_gloop *gl)
{
	return gl->ctx;
}

uv_loop_t *
pp_gloop_uv(const struct pp_gloop *gl)
{
	return gl->loop;
}

void
pp_gloop_kick(struct pp_gloop *gl)
{
	if (gl->dispatching || gl->closing)
		return;
	if (uv_is_active((uv_handle_t *)&gl->timer) &&
	    uv_timer_get_due_in(&gl->timer) == 0)
		return;
	uv_timer_start(&gl->timer, on_timer, 0, 0);
}

void
pp_gloop_stats(const struct pp_gloop *gl, struct pp_gloop_stats *st)
{
	*st = gl->st;
}

void
pp__gloop_enter(struct pp_gloop *gl)
{
	g_main_context_push_thread_default(gl->ctx);
}

void
pp__gloop_leave(struct pp_gloop *gl)
{
	g_main_context_pop_thread_default(gl->ctx);
	pp_gloop_kick(gl);
}

void
pp__gloop_hold(struct pp_gloop *gl)
{
	assert(!gl->free_requested);
	gl->holds++;
}

void
pp__gloop_release(struct pp_gloop *gl)
{
	assert(gl->holds > 0);
	if (--gl->holds == 0 && gl->free_requested && !gl->closing)
		start_close(gl);
}
