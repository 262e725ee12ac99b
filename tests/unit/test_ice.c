/*
 * lib/ice: the GLib-in-libuv loop, the checks on remote candidates (their
 * grammar is lib/sdp's, tested in test_sdp.c), and two real libnice agents
 * in one process talking over 127.0.0.1 (never any other address).  Waits
 * are bounded and poll a condition; nothing sleeps.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/clock.h"
#include "base/error.h"
#include "ice/gloop.h"
#include "ice/ice.h"
#include "sdp/sdp.h"

#include <glib.h>
#include <glib-unix.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define CONNECT_TIMEOUT_MS	20000
#define CONSENT_TIMEOUT_MS	60000	/* libnice declares loss after ~10 s */
#define MAX_SEEN		64

/* ---- fixture: one uv loop, one gloop ---- */

struct fx {
	uv_loop_t loop;
	struct pp_gloop *gl;
};

static int
setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(pp_gloop_new(&fx->loop, &fx->gl), 0);
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *fx = *state;

	pp_gloop_free(fx->gl);
	/* Every handle closes; the loop then has nothing left and returns. */
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	free(fx);
	return 0;
}

static void
on_deadline(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until pred(arg) holds or timeout_ms pass; returns pred. */
static bool
run_until(struct fx *fx, bool (*pred)(void *), void *arg, uint64_t timeout_ms)
{
	uv_timer_t deadline;
	bool expired = false;
	bool ok;

	uv_timer_init(&fx->loop, &deadline);
	deadline.data = &expired;
	uv_timer_start(&deadline, on_deadline, timeout_ms, 0);
	while (!(ok = pred(arg)) && !expired)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&deadline, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	return ok;
}

static bool
never(void *arg)
{
	(void)arg;
	return false;
}

/* ---- gloop alone ---- */

static gboolean
count_tick(gpointer data)
{
	(*(unsigned *)data)++;
	return G_SOURCE_CONTINUE;
}

/* A GLib timeout fires on time and the loop sleeps in between. */
static void
test_gloop_timeout_no_busy_poll(void **state)
{
	struct fx *fx = *state;
	struct pp_gloop_stats st;
	unsigned ticks = 0;
	GSource *src = g_timeout_source_new(100);

	g_source_set_callback(src, count_tick, &ticks, NULL);
	g_source_attach(src, pp_gloop_context(fx->gl));
	pp_gloop_kick(fx->gl);
	run_until(fx, never, NULL, 550);
	pp_gloop_stats(fx->gl, &st);
	assert_in_range(ticks, 4, 6);
	/* A busy poll would make thousands of rounds in 550 ms. */
	assert_true(st.iterations < 60);
	g_source_destroy(src);
	g_source_unref(src);
}

struct fdcase {
	struct fx *fx;
	int rfd, wfd;
	GSource *src;
	unsigned hits;
	int want_fd;
};

static gboolean
on_fd(gint fd, GIOCondition cond, gpointer data)
{
	struct fdcase *fc = data;
	char buf[16];

	(void)cond;
	if (read(fd, buf, sizeof(buf)) > 0)
		fc->hits++;
	return G_SOURCE_CONTINUE;
}

static void
watch_fd(struct fdcase *fc)
{
	fc->src = g_unix_fd_source_new(fc->rfd, G_IO_IN);
	g_source_set_callback(fc->src, G_SOURCE_FUNC(on_fd), fc,
	    NULL);
	g_source_attach(fc->src, pp_gloop_context(fc->fx->gl));
}

static void
unwatch_fd(struct fdcase *fc)
{
	g_source_destroy(fc->src);
	g_source_unref(fc->src);
	fc->src = NULL;
}

static bool
has_hit(void *arg)
{
	return ((struct fdcase *)arg)->hits > 0;
}

/*
 * From a libuv callback (outside any dispatch): close the watched pipe, open
 * another whose read end gets the same descriptor number, watch that and
 * write to it.  The new file must be polled although the number never left
 * GLib's fd set between two queries.
 */
static void
swap_pipe(uv_timer_t *t)
{
	struct fdcase *fc = t->data;
	int p[2];

	unwatch_fd(fc);
	close(fc->rfd);
	close(fc->wfd);
	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	assert_int_not_equal(p[1], fc->want_fd);
	if (p[0] != fc->want_fd) {
		assert_int_equal(dup3(p[0], fc->want_fd, O_CLOEXEC),
		    fc->want_fd);
		close(p[0]);
		p[0] = fc->want_fd;
	}
	fc->rfd = p[0];
	fc->wfd = p[1];
	watch_fd(fc);
	assert_int_equal(write(fc->wfd, "x", 1), 1);
	pp_gloop_kick(fc->fx->gl);
}

static void
test_gloop_fd_and_reuse(void **state)
{
	struct fx *fx = *state;
	struct fdcase fc = { .fx = fx };
	struct pp_gloop_stats st;
	uv_timer_t t;
	int p[2];

	assert_int_equal(pipe2(p, O_CLOEXEC | O_NONBLOCK), 0);
	fc.rfd = p[0];
	fc.wfd = p[1];
	fc.want_fd = p[0];
	watch_fd(&fc);
	pp_gloop_kick(fx->gl);
	/* Let the fd be registered, then make it readable. */
	run_until(fx, never, NULL, 30);
	assert_int_equal(write(fc.wfd, "x", 1), 1);
	assert_true(run_until(fx, has_hit, &fc, 2000));

	fc.hits = 0;
	uv_timer_init(&fx->loop, &t);
	t.data = &fc;
	uv_timer_start(&t, swap_pipe, 10, 0);
	assert_true(run_until(fx, has_hit, &fc, 2000));
	assert_int_equal(fc.rfd, fc.want_fd);
	pp_gloop_stats(fx->gl, &st);
	assert_true(st.rechecks > 0);

	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);	/* t lives on this stack */
	unwatch_fd(&fc);
	close(fc.rfd);
	close(fc.wfd);
}

static gboolean
set_flag(gpointer data)
{
	g_atomic_int_set((gint *)data, 1);
	return G_SOURCE_REMOVE;
}

struct xthread {
	GMainContext *ctx;
	gint flag;
};

static gpointer
attach_later(gpointer data)
{
	struct xthread *x = data;
	GSource *src;

	g_usleep(50 * 1000);
	src = g_idle_source_new();
	g_source_set_callback(src, set_flag, &x->flag, NULL);
	g_source_attach(src, x->ctx);
	g_source_unref(src);
	return NULL;
}

static bool
flag_set(void *arg)
{
	return g_atomic_int_get(&((struct xthread *)arg)->flag) != 0;
}

/* A source attached from another thread wakes the sleeping loop. */
static void
test_gloop_cross_thread_wakeup(void **state)
{
	struct fx *fx = *state;
	struct xthread x = { pp_gloop_context(fx->gl), 0 };
	GThread *th = g_thread_new("attach", attach_later, &x);

	assert_true(run_until(fx, flag_set, &x, 5000));
	g_thread_join(th);
}

/* ---- two agents ---- */

struct peer {
	const char *name;
	struct fx *fx;
	struct pp_ice *ice;
	struct peer *other;
	bool trickle;		/* forward candidates as they come */
	bool gathered;
	enum pp_ice_state state;
	unsigned nstates;
	enum pp_ice_state states[MAX_SEEN];
	unsigned ready_count;
	unsigned ncands;
	char cands[MAX_SEEN][PP_SDP_CAND_MAX + 1];
	unsigned nrecv;
	char last[256];
};

static void
peer_candidate(void *arg, const char *cand)
{
	struct peer *p = arg;

	assert_true(strncmp(cand, "candidate:", 10) == 0);
	if (p->ncands < MAX_SEEN)
		snprintf(p->cands[p->ncands++], sizeof(p->cands[0]), "%s", cand);
	if (p->trickle && p->other->ice)
		assert_int_equal(pp_ice_add_remote_candidate(p->other->ice,
		    cand), 0);
}

static void
peer_gathered(void *arg)
{
	struct peer *p = arg;

	p->gathered = true;
	if (p->trickle && p->other->ice)
		assert_int_equal(pp_ice_remote_gathering_done(p->other->ice), 0);
}

static void
peer_state(void *arg, enum pp_ice_state s)
{
	struct peer *p = arg;

	p->state = s;
	if (p->nstates < MAX_SEEN)
		p->states[p->nstates++] = s;
	if (s == PP_ICE_READY)
		p->ready_count++;
}

static void
peer_recv(void *arg, const uint8_t *buf, size_t len)
{
	struct peer *p = arg;

	p->nrecv++;
	if (len >= sizeof(p->last))
		len = sizeof(p->last) - 1;
	memcpy(p->last, buf, len);
	p->last[len] = '\0';
}

static const struct pp_ice_callbacks peer_cb = {
	peer_candidate, peer_gathered, peer_state, peer_recv,
};

static const char *const loopback[] = { "127.0.0.1" };

static void
peer_init(struct peer *p, struct fx *fx, const char *name,
    enum pp_ice_role role, struct peer *other)
{
	struct pp_ice_config cfg = {
		.role = role,
		.local_addrs = loopback,
		.nlocal_addrs = 1,
	};

	memset(p, 0, sizeof(*p));
	p->name = name;
	p->fx = fx;
	p->other = other;
	p->trickle = true;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, p, &p->ice), 0);
	assert_int_equal(pp_ice_get_state(p->ice), PP_ICE_NEW);
}

static void
exchange_credentials(struct peer *a, struct peer *b)
{
	assert_int_equal(pp_ice_set_remote_credentials(a->ice,
	    pp_ice_local_ufrag(b->ice), pp_ice_local_pwd(b->ice)), 0);
	assert_int_equal(pp_ice_set_remote_credentials(b->ice,
	    pp_ice_local_ufrag(a->ice), pp_ice_local_pwd(a->ice)), 0);
}

struct pair {
	struct peer *a, *b;
	unsigned ready_a, ready_b;	/* READY counts to reach */
	unsigned nrecv_a, nrecv_b;
};

static bool
both_ready(void *arg)
{
	struct pair *pr = arg;

	return pr->a->ready_count >= pr->ready_a &&
	    pr->b->ready_count >= pr->ready_b &&
	    pr->a->state == PP_ICE_READY && pr->b->state == PP_ICE_READY;
}

static bool
both_received(void *arg)
{
	struct pair *pr = arg;

	return pr->a->nrecv >= pr->nrecv_a && pr->b->nrecv >= pr->nrecv_b;
}

static bool
seen(const struct peer *p, enum pp_ice_state s)
{
	for (unsigned i = 0; i < p->nstates; i++)
		if (p->states[i] == s)
			return true;
	return false;
}

static void
ping_pong(struct fx *fx, struct peer *a, struct peer *b, const char *tag)
{
	struct pair pr = { a, b, 0, 0, a->nrecv + 1, b->nrecv + 1 };
	char ping[64], pong[64];

	snprintf(ping, sizeof(ping), "ping %s", tag);
	snprintf(pong, sizeof(pong), "pong %s", tag);
	assert_int_equal(pp_ice_send(a->ice, ping, strlen(ping)),
	    (int)strlen(ping));
	assert_int_equal(pp_ice_send(b->ice, pong, strlen(pong)),
	    (int)strlen(pong));
	assert_true(run_until(fx, both_received, &pr, 5000));
	assert_string_equal(b->last, ping);
	assert_string_equal(a->last, pong);
}

static void
assert_host_pair(const struct peer *p)
{
	struct pp_ice_status st;

	pp_ice_get_status(p->ice, &st);
	assert_int_equal(st.state, PP_ICE_READY);
	assert_true(st.have_pair);
	assert_int_equal(st.pair.local_type, PP_ICE_CAND_HOST);
	assert_int_equal(st.pair.remote_type, PP_ICE_CAND_HOST);
	assert_int_equal(st.pair.proto, PP_ICE_PROTO_UDP);
	assert_string_equal(st.pair.local_addr, "127.0.0.1");
	assert_string_equal(st.pair.remote_addr, "127.0.0.1");
	assert_true(st.pair.local_port != 0 && st.pair.remote_port != 0);
	assert_true(st.pair.local_port != st.pair.remote_port);
	assert_int_equal(st.rtt_ms, -1);
	assert_true(st.ready_ms >= st.checks_started_ms);
	assert_true(st.pair_selected_ms != 0);
}

static void
connect_pair(struct fx *fx, struct peer *a, struct peer *b)
{
	struct pair pr = { a, b, 1, 1, 0, 0 };

	peer_init(a, fx, "a", PP_ICE_CONTROLLING, b);
	peer_init(b, fx, "b", PP_ICE_CONTROLLED, a);
	exchange_credentials(a, b);
	assert_int_equal(pp_ice_gather(a->ice), 0);
	assert_int_equal(pp_ice_gather(b->ice), 0);
	assert_int_equal(pp_ice_gather(a->ice), PP_ECONFLICT);
	assert_true(run_until(fx, both_ready, &pr, CONNECT_TIMEOUT_MS));
}

static void
test_ice_connect(void **state)
{
	struct fx *fx = *state;
	struct peer a, b;
	struct pp_ice_status st;
	struct pp_gloop_stats g0, g1;
	char big[PP_ICE_MAX_DATAGRAM + 1];

	connect_pair(fx, &a, &b);
	assert_true(a.gathered && b.gathered);
	assert_true(a.ncands >= 1 && b.ncands >= 1);
	assert_non_null(strstr(a.cands[0], " 127.0.0.1 "));
	assert_non_null(strstr(a.cands[0], " typ host"));
	assert_true(seen(&a, PP_ICE_GATHERING) && seen(&a, PP_ICE_CONNECTING));
	assert_true(seen(&b, PP_ICE_CONNECTING));
	assert_string_not_equal(pp_ice_local_ufrag(a.ice),
	    pp_ice_local_ufrag(b.ice));
	assert_true(strlen(pp_ice_local_pwd(a.ice)) >= 22);

	ping_pong(fx, &a, &b, "1");
	pp_gloop_stats(fx->gl, &g0);
	run_until(fx, never, NULL, 2000);
	pp_gloop_stats(fx->gl, &g1);
	print_message("2 s connected and idle: %llu loop rounds, %llu with "
	    "GLib work\n", g1.iterations - g0.iterations,
	    g1.dispatches - g0.dispatches);
	assert_true(g1.iterations - g0.iterations < 400);
	ping_pong(fx, &a, &b, "2");
	assert_host_pair(&a);
	assert_host_pair(&b);
	pp_ice_get_status(a.ice, &st);
	assert_true(st.tx_packets >= 2 && st.rx_packets >= 2);
	assert_true(st.last_recv_ms != 0);

	assert_int_equal(pp_ice_send(a.ice, big, 0), PP_EINVAL);
	assert_int_equal(pp_ice_send(a.ice, big, sizeof(big)), PP_ETOOBIG);
	pp_ice_free(a.ice);
	pp_ice_free(b.ice);
}

/*
 * Candidates (and end-of-candidates) reach each side before the remote
 * credentials; they wait and apply when the credentials come.
 */
static bool
both_gathered(void *arg)
{
	struct pair *pr = arg;

	return pr->a->gathered && pr->b->gathered;
}

static void
test_ice_candidates_before_credentials(void **state)
{
	struct fx *fx = *state;
	struct peer a, b;
	struct pair pr = { &a, &b, 1, 1, 0, 0 };

	peer_init(&a, fx, "a", PP_ICE_CONTROLLING, &b);
	peer_init(&b, fx, "b", PP_ICE_CONTROLLED, &a);
	assert_int_equal(pp_ice_gather(a.ice), 0);
	assert_int_equal(pp_ice_gather(b.ice), 0);
	assert_true(run_until(fx, both_gathered, &pr, CONNECT_TIMEOUT_MS));
	/* Nothing can connect yet. */
	run_until(fx, never, NULL, 200);
	assert_int_equal(a.ready_count + b.ready_count, 0);

	exchange_credentials(&a, &b);
	/* The same credentials again are harmless; others need a restart. */
	assert_int_equal(pp_ice_set_remote_credentials(a.ice,
	    pp_ice_local_ufrag(b.ice), pp_ice_local_pwd(b.ice)), 0);
	assert_int_equal(pp_ice_set_remote_credentials(a.ice, "zzzz",
	    "0123456789abcdefghijkl"), PP_ECONFLICT);
	assert_true(run_until(fx, both_ready, &pr, CONNECT_TIMEOUT_MS));
	ping_pong(fx, &a, &b, "late");
	pp_ice_free(a.ice);
	pp_ice_free(b.ice);
}

static void
test_ice_restart(void **state)
{
	struct fx *fx = *state;
	struct peer a, b;
	struct pair pr = { &a, &b, 2, 2, 0, 0 };
	char old_a[PP_SDP_UFRAG_MAX + 1], old_b[PP_SDP_UFRAG_MAX + 1];
	struct pp_ice_status st;
	unsigned ncands_a, ncands_b;

	connect_pair(fx, &a, &b);
	ping_pong(fx, &a, &b, "before");
	snprintf(old_a, sizeof(old_a), "%s", pp_ice_local_ufrag(a.ice));
	snprintf(old_b, sizeof(old_b), "%s", pp_ice_local_ufrag(b.ice));
	ncands_a = a.ncands;
	ncands_b = b.ncands;

	/* a initiates; b answers the new offer with a restart of its own. */
	assert_int_equal(pp_ice_restart(a.ice), 0);
	assert_string_not_equal(pp_ice_local_ufrag(a.ice), old_a);
	assert_int_equal(pp_ice_restart(b.ice), 0);
	assert_string_not_equal(pp_ice_local_ufrag(b.ice), old_b);
	exchange_credentials(&a, &b);
	assert_true(run_until(fx, both_ready, &pr, CONNECT_TIMEOUT_MS));
	/* The local candidates were trickled again for the new generation. */
	assert_true(a.ncands > ncands_a && b.ncands > ncands_b);
	ping_pong(fx, &a, &b, "after");
	pp_ice_get_status(a.ice, &st);
	assert_int_equal(st.restarts, 1);
	assert_host_pair(&a);
	pp_ice_free(a.ice);
	pp_ice_free(b.ice);
}

static bool
failed(void *arg)
{
	return ((struct peer *)arg)->state == PP_ICE_FAILED;
}

/* The peer vanishes without a word: consent freshness notices. */
static void
test_ice_peer_gone(void **state)
{
	struct fx *fx = *state;
	struct peer a, b;
	struct pp_gloop_stats st0, st1;
	uint64_t t0;
	int rc;

	connect_pair(fx, &a, &b);
	ping_pong(fx, &a, &b, "last");
	pp_ice_free(b.ice);
	b.ice = NULL;
	t0 = pp_now_ms();
	pp_gloop_stats(fx->gl, &st0);
	assert_true(run_until(fx, failed, &a, CONSENT_TIMEOUT_MS));
	pp_gloop_stats(fx->gl, &st1);
	print_message("consent lost after %llu ms, %llu loop rounds\n",
	    (unsigned long long)(pp_now_ms() - t0),
	    st1.iterations - st0.iterations);
	/* Idle but for consent checks: the loop sleeps between them. */
	assert_true(st1.iterations - st0.iterations < 2000);
	rc = pp_ice_send(a.ice, "x", 1);
	assert_true(rc == -ENOTCONN || rc == 1);
	pp_ice_free(a.ice);
}

/* Freeing from inside a callback stops all further callbacks. */
static void
free_on_ready(void *arg, enum pp_ice_state s)
{
	struct peer *p = arg;

	peer_state(arg, s);
	if (s == PP_ICE_READY) {
		pp_ice_free(p->ice);
		p->ice = NULL;
	}
}

static bool
ice_gone(void *arg)
{
	return ((struct peer *)arg)->ice == NULL;
}

static void
test_ice_free_in_callback(void **state)
{
	struct fx *fx = *state;
	struct peer a, b;
	struct pp_ice_callbacks cb = peer_cb;
	struct pp_ice_config cfg = {
		.role = PP_ICE_CONTROLLED,
		.local_addrs = loopback,
		.nlocal_addrs = 1,
	};

	peer_init(&a, fx, "a", PP_ICE_CONTROLLING, &b);
	memset(&b, 0, sizeof(b));
	b.other = &a;
	b.trickle = true;
	cb.on_state = free_on_ready;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &cb, &b, &b.ice), 0);
	exchange_credentials(&a, &b);
	assert_int_equal(pp_ice_gather(a.ice), 0);
	assert_int_equal(pp_ice_gather(b.ice), 0);
	assert_true(run_until(fx, ice_gone, &b, CONNECT_TIMEOUT_MS));
	/* No callback after the free: READY was the last one. */
	run_until(fx, never, NULL, 300);
	assert_int_equal(b.states[b.nstates - 1], PP_ICE_READY);
	pp_ice_free(a.ice);
}

static void
test_ice_malformed_candidate(void **state)
{
	static const struct {
		const char *cand;
		int rc;
	} bad[] = {
		/* lib/sdp refuses these (its own table has the rest) */
		{ "candidate:garbage", PP_EINVAL },
		{ "", PP_EINVAL },
		{ "candidate:1 1 UDP 2013266431 127.0.0.1 40000 typ host\x1b[2J",
		  PP_EINVAL },
		/* valid SDP, but not for this agent */
		{ "candidate:1 2 UDP 2013266430 127.0.0.1 40001 typ host",
		  PP_EINVAL },	/* RTCP component: we are rtcp-mux */
		{ "candidate:1 1 UDP 2013266431 5e1f7a2b.local 40000 typ host",
		  PP_EINVAL },
		{ "candidate:1 1 UDP 1 peer.example.com 5000 typ host",
		  PP_EINVAL },
		{ "candidate:1 1 UDP 1 0.0.0.0 5000 typ host", PP_EINVAL },
		{ "candidate:1 1 UDP 1 :: 5000 typ host", PP_EINVAL },
		{ "candidate:1 1 SCTP 1 127.0.0.1 5000 typ host", PP_EINVAL },
		{ "candidate:1 1 UDP 1 127.0.0.1 5000 typ bogus", PP_EINVAL },
		{ "candidate:1 1 UDP 0 127.0.0.1 5000 typ host", PP_EINVAL },
		{ "candidate:1 1 UDP 1 127.0.0.1 0 typ host", PP_EINVAL },
		{ "candidate:1 1 TCP 1 127.0.0.1 9 typ host", PP_EINVAL },
		{ "candidate:1 1 UDP 1 127.0.0.1 5000 typ host tcptype active",
		  PP_EINVAL },
		{ "candidate:1 1 UDP 1 127.0.0.1 5000 typ host raddr 1.2.3.4",
		  PP_EINVAL },
		{ "candidate:1 1 UDP 1 127.0.0.1 5000 typ srflx raddr x "
		  "rport 1", PP_EINVAL },
		{ "candidate:1 1 UDP 1 127.0.0.1 5000 typ host network-id "
		  "caf\xc3\xa9", PP_EINVAL },
	};
	struct fx *fx = *state;
	struct peer a, b;
	struct pair pr = { &a, &b, 1, 1, 0, 0 };

	peer_init(&a, fx, "a", PP_ICE_CONTROLLING, &b);
	peer_init(&b, fx, "b", PP_ICE_CONTROLLED, &a);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pp_ice_add_remote_candidate(a.ice, bad[i].cand),
		    bad[i].rc);
		assert_int_equal(pp_ice_add_remote_candidate(b.ice, bad[i].cand),
		    bad[i].rc);
	}
	assert_int_equal(pp_ice_add_remote_candidate(a.ice, NULL), PP_EINVAL);
	assert_int_equal(pp_ice_set_remote_credentials(a.ice, "ab", "x"),
	    PP_EINVAL);
	assert_int_equal(pp_ice_set_remote_credentials(a.ice, "abcd",
	    "short"), PP_EINVAL);

	/* The agents still connect afterwards. */
	exchange_credentials(&a, &b);
	assert_int_equal(pp_ice_gather(a.ice), 0);
	assert_int_equal(pp_ice_gather(b.ice), 0);
	assert_true(run_until(fx, both_ready, &pr, CONNECT_TIMEOUT_MS));
	assert_int_equal(pp_ice_add_remote_candidate(a.ice,
	    "candidate:x y z"), PP_EINVAL);
	ping_pong(fx, &a, &b, "still");

	/* A candidate of an earlier generation is told apart by its ufrag. */
	assert_int_equal(pp_ice_add_remote_candidate(a.ice,
	    "candidate:9 1 UDP 1 127.0.0.1 9 typ host ufrag zzzz"),
	    PP_ECONFLICT);
	pp_ice_free(a.ice);
	pp_ice_free(b.ice);
}

/*
 * Every form of candidate that peers send is taken, and libnice accepts the
 * normalised text we hand it: extensions (Chromium's generation, ufrag,
 * network-id, network-cost), raddr/rport, TCP with each tcptype, the SDP
 * line form, keywords in upper case.  A GLib critical (libnice's reaction
 * to a TCP candidate whose tcptype it cannot find) fails the test.
 */
static void
test_ice_candidate_forms(void **state)
{
	static const char *const forms[] = {
		"candidate:1 1 UDP 2013266431 127.0.0.1 40000 typ host",
		"a=candidate:abc+/ 1 udp 1 127.0.0.1 9 typ host\r\n",
		/* Chromium */
		"candidate:842163049 1 udp 1677729535 127.0.0.1 50123 typ "
		"srflx raddr 0.0.0.0 rport 0 generation 0 ufrag EsAw "
		"network-id 1 network-cost 10",
		"candidate:2229654414 1 udp 2113937151 127.0.0.1 35289 typ "
		"host generation 0 ufrag EsAw network-cost 999",
		"candidate:1510613869 1 tcp 1518280447 127.0.0.1 9 typ host "
		"tcptype active generation 0 network-id 1 network-cost 10",
		/* aiortc */
		"candidate:a1b2c3d4e5f6 1 udp 2130706431 127.0.0.1 41234 "
		"typ host",
		/* libnice */
		"candidate:2 1 UDP 16777215 127.0.0.1 3478 typ relay "
		"raddr 127.0.0.1 rport 50123",
		"candidate:3 1 TCP 1518280447 ::FFFF:7F00:1 9 typ host "
		"tcptype active",
		"candidate:4 1 TCP 1518280447 127.0.0.1 40001 typ host "
		"tcptype passive",
		"candidate:5 1 TCP 1518280447 127.0.0.1 40002 typ srflx "
		"raddr 127.0.0.1 rport 40003 tcptype so",
		"candidate:6 1 UDP 1845501695 ::1 5000 typ prflx",
		/* keywords in upper case, blanks doubled */
		"candidate:7 1 udp 5 127.0.0.1 7  TYP HOST",
		"candidate:8 1 TCP 5 127.0.0.1 9 TYP HOST TCPTYPE ACTIVE",
		"candidate:10 1 TCP 5 127.0.0.1 9 typ host TCPTYPE active",
		"candidate:9 1 UDP 5 127.0.0.1 8 typ SRFLX RADDR 127.0.0.1 "
		"RPORT 8 UFRAG EsAw",
	};
	struct fx *fx = *state;
	struct peer a;
	GLogLevelFlags fatal;

	fatal = g_log_set_always_fatal(G_LOG_FATAL_MASK | G_LOG_LEVEL_CRITICAL);
	peer_init(&a, fx, "a", PP_ICE_CONTROLLING, &a);
	/* Before the credentials (they wait), and after: to libnice at once. */
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (pp_ice_add_remote_candidate(a.ice, forms[i]) != 0)
			fail_msg("form %zu refused before credentials", i);
	assert_int_equal(pp_ice_set_remote_credentials(a.ice, "EsAw",
	    "0123456789abcdefghijkl"), 0);
	assert_int_equal(pp_ice_restart(a.ice), 0);
	assert_int_equal(pp_ice_set_remote_credentials(a.ice, "EsAw",
	    "0123456789abcdefghijkl"), 0);
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		if (pp_ice_add_remote_candidate(a.ice, forms[i]) != 0)
			fail_msg("form %zu refused by libnice", i);
	pp_ice_free(a.ice);
	g_log_set_always_fatal(fatal);
}

/* Remote candidates are capped per generation, before authentication. */
static void
test_ice_remote_candidate_limit(void **state)
{
	struct fx *fx = *state;
	struct peer a, b;
	char cand[128];
	int rc = 0;
	unsigned i;

	peer_init(&a, fx, "a", PP_ICE_CONTROLLING, &b);
	for (i = 0; i < PP_ICE_MAX_REMOTE_CANDIDATES + 5; i++) {
		snprintf(cand, sizeof(cand), "candidate:%u 1 UDP %u 127.0.0.1 "
		    "%u typ host", i, 100 + i, 20000 + i);
		rc = pp_ice_add_remote_candidate(a.ice, cand);
		if (rc != 0)
			break;
	}
	assert_int_equal(rc, PP_ELIMIT);
	assert_int_equal(i, PP_ICE_MAX_REMOTE_CANDIDATES);
	pp_ice_free(a.ice);
}

static void
test_ice_config(void **state)
{
	struct fx *fx = *state;
	struct pp_ice *ice = NULL;
	const char *bad_addr[] = { "localhost" };
	const char *many[PP_ICE_MAX_LOCAL_ADDRS + 1];
	struct pp_ice_turn turn[PP_ICE_MAX_TURN + 1];
	struct pp_ice_config cfg;
	struct peer p;
	bool dummy = false;

	for (size_t i = 0; i < sizeof(many) / sizeof(many[0]); i++)
		many[i] = "127.0.0.1";
	for (size_t i = 0; i < sizeof(turn) / sizeof(turn[0]); i++)
		turn[i] = (struct pp_ice_turn){ "127.0.0.1", 3478, "u", "p",
		    PP_ICE_RELAY_UDP };

	memset(&cfg, 0, sizeof(cfg));
	cfg.role = (enum pp_ice_role)7;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	assert_null(ice);
	cfg.role = PP_ICE_CONTROLLED;
	cfg.local_addrs = bad_addr;
	cfg.nlocal_addrs = 1;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	cfg.local_addrs = many;
	cfg.nlocal_addrs = PP_ICE_MAX_LOCAL_ADDRS + 1;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	cfg.nlocal_addrs = 1;
	cfg.port_min = 5000;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	cfg.port_max = 4000;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	cfg.port_min = cfg.port_max = 0;
	cfg.turn = turn;
	cfg.nturn = PP_ICE_MAX_TURN + 1;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	cfg.nturn = 2;
	turn[1].port = 0;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	turn[1].port = 3478;
	turn[1].password = NULL;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, NULL, &ice),
	    PP_ECONFIG);
	assert_null(ice);

	/*
	 * A full config: STUN and TURN (UDP, TCP, TLS) on loopback ports
	 * where nothing listens, a port range, ice-tcp.  It gathers its host
	 * candidates in the range and tears down cleanly mid-gathering.
	 */
	turn[1] = (struct pp_ice_turn){ "127.0.0.1", 3479, "user", "pass",
	    PP_ICE_RELAY_TCP };
	turn[2] = (struct pp_ice_turn){ "127.0.0.1", 5349, "user", "pass",
	    PP_ICE_RELAY_TLS };
	cfg.nturn = 3;
	cfg.stun_host = "127.0.0.1";
	cfg.stun_port = 3480;
	cfg.port_min = 41000;
	cfg.port_max = 41999;
	cfg.ice_tcp = true;
	memset(&p, 0, sizeof(p));
	p.other = &p;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, &p, &ice), 0);
	assert_int_equal(pp_ice_gather(ice), 0);
	run_until(fx, never, &dummy, 300);
	assert_true(p.ncands >= 1);
	for (unsigned i = 0; i < p.ncands; i++) {
		struct pp_sdp_candidate c;

		assert_int_equal(pp_sdp_parse_candidate(p.cands[i],
		    strlen(p.cands[i]), &c, NULL, 0), 0);
		assert_string_equal(c.address, "127.0.0.1");
		if (c.transport == PP_SDP_UDP)
			assert_in_range(c.port, 41000, 41999);
	}
	pp_ice_free(ice);
}

/* A UDP port on 127.0.0.1 that receives checks and never answers. */
static int
silent_port(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	*port = ntohs(sin.sin_port);
	return fd;
}

static void
dead_end(struct fx *fx, struct peer *p, unsigned grace_ms, uint16_t port)
{
	struct pp_ice_config cfg = {
		.role = PP_ICE_CONTROLLING,
		.local_addrs = loopback,
		.nlocal_addrs = 1,
		.stun_retransmissions = 1,
		.stun_initial_timeout_ms = 100,
		.eoc_grace_ms = grace_ms,
	};
	char cand[128];

	memset(p, 0, sizeof(*p));
	p->other = p;
	assert_int_equal(pp_ice_new(fx->gl, &cfg, &peer_cb, p, &p->ice), 0);
	assert_int_equal(pp_ice_set_remote_credentials(p->ice, "abcd",
	    "0123456789abcdefghijkl"), 0);
	snprintf(cand, sizeof(cand), "candidate:1 1 UDP 2130706431 127.0.0.1 "
	    "%u typ host", (unsigned)port);
	assert_int_equal(pp_ice_add_remote_candidate(p->ice, cand), 0);
	assert_int_equal(pp_ice_gather(p->ice), 0);
}

/*
 * Trickle: checks that fail before the peer's end-of-candidates are not
 * yet a failure; end-of-candidates (or the grace period) makes them one.
 */
static void
test_ice_failed_waits_for_eoc(void **state)
{
	struct fx *fx = *state;
	struct peer p, q;
	uint16_t port;
	int fd = silent_port(&port);

	dead_end(fx, &p, 600000, port);
	dead_end(fx, &q, 500, port);
	/* q: no end-of-candidates ever; the grace period ends it. */
	assert_true(run_until(fx, failed, &q, 10000));
	/* p's checks failed when q's did, over a second ago; p still waits. */
	run_until(fx, never, NULL, 1000);
	assert_int_equal(p.state, PP_ICE_CONNECTING);
	assert_false(seen(&p, PP_ICE_FAILED));
	assert_int_equal(pp_ice_remote_gathering_done(p.ice), 0);
	assert_true(run_until(fx, failed, &p, 2000));
	pp_ice_free(p.ice);
	pp_ice_free(q.ice);
	close(fd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gloop_timeout_no_busy_poll,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gloop_fd_and_reuse,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_gloop_cross_thread_wakeup,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_config, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ice_remote_candidate_limit,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_connect, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_ice_candidates_before_credentials, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_malformed_candidate,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_candidate_forms,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_free_in_callback,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_failed_waits_for_eoc,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_ice_restart, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_ice_peer_gone, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
