/*
 * A GLib main context driven by a libuv loop, so that libnice (which only
 * knows GMainContext) runs on the project's one loop thread with no second
 * thread and no busy polling.
 *
 * Each loop iteration: a uv_prepare handle runs g_main_context_prepare() and
 * query(), and arms a uv_timer with GLib's timeout; a uv_check handle runs
 * g_main_context_check() and dispatch().  GLib's file descriptors are not
 * given to libuv one by one: they live in a private epoll set whose single fd
 * libuv watches.  libuv must never see a descriptor that someone else may
 * close under it, and libnice closes its sockets whenever it likes; with a
 * private set the kernel drops a closed socket by itself and nothing is
 * misdelivered to another libuv handle that reuses the number.  See gloop.c
 * for how a reused number is noticed.  Linux only (epoll).
 *
 * Thread: created, used and freed on the loop thread, which becomes the
 * GMainContext's owner (g_main_context_acquire) for the object's lifetime.
 * Other threads may attach sources to the context; GLib wakes the loop.
 *
 * Ownership: the caller owns the pp_gloop; it keeps the uv loop alive until
 * pp_gloop_free().  Every pp_ice made on it must be freed before that (an
 * ICE agent still closing is waited for).  Code that touches GLib objects
 * attached to the context from outside a dispatch (any callback of another
 * libuv handle) calls pp_gloop_kick() afterwards, so that a timeout it added
 * is seen before the loop next sleeps.
 */
#ifndef PP_ICE_GLOOP_H
#define PP_ICE_GLOOP_H

#include <uv.h>

typedef struct _GMainContext GMainContext;
struct pp_gloop;

/* Creates a fresh GMainContext driven by loop.  0 or a negative code. */
int pp_gloop_new(uv_loop_t *loop, struct pp_gloop **out);

/*
 * Stops driving the context and releases it.  Not from inside a GLib
 * dispatch.  Handles close asynchronously: memory is returned once the loop
 * has run their close callbacks.  NULL-safe.
 */
void pp_gloop_free(struct pp_gloop *gl);

/* Borrowed; valid until pp_gloop_free(). */
GMainContext *pp_gloop_context(const struct pp_gloop *gl);
uv_loop_t *pp_gloop_uv(const struct pp_gloop *gl);

/* Re-query GLib before the loop next sleeps (see the ownership rules). */
void pp_gloop_kick(struct pp_gloop *gl);

/* Counters for tests and `peerpipe status`. */
struct pp_gloop_stats {
	unsigned long long iterations;	/* prepare/check rounds */
	unsigned long long dispatches;	/* rounds where GLib had work */
	unsigned long long rechecks;	/* full re-registrations of the fd set */
	unsigned nfds;			/* descriptors GLib polls now */
};
void pp_gloop_stats(const struct pp_gloop *gl, struct pp_gloop_stats *st);

/*
 * Internal to lib/ice.  enter/leave bracket a call into libnice: the context
 * becomes thread-default (libnice's GTasks and resolver callbacks capture
 * it) and leave kicks unless GLib is dispatching (the next prepare sees the
 * change anyway).  hold/release count objects that still need the context;
 * pp_gloop_free() postpones the real close until the count is zero.
 */
void pp__gloop_enter(struct pp_gloop *gl);
void pp__gloop_leave(struct pp_gloop *gl);
void pp__gloop_hold(struct pp_gloop *gl);
void pp__gloop_release(struct pp_gloop *gl);

#endif
