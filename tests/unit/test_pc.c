/*
 * lib/rtc/pc.c: two peer connections in one process on 127.0.0.1, SDP and
 * candidates handed over directly (no signaling server): they connect, open
 * channels both ways and exchange text and binary; a wrong fingerprint in
 * the answer is refused with no data delivered; malformed SDP is an error
 * and leaves the connection usable; an ICE restart moves the connection
 * to a new ICE generation with its channel still open, and offers that are
 * not a restart of it are refused without touching it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "rtc/pc.h"
#include "sdp/sdp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct side {
	struct world *w;
	struct pp_pc *pc;
	struct side *other;
	const char *name;
	enum pp_pc_state state;
	char reason[256];
	struct pp_dc *dc;
	int got_text, got_binary, opened;
	char last[64];
};

struct world {
	uv_loop_t loop;
	struct pp_gloop *gl;
	uv_timer_t deadline;
	struct side a, b;
	int (*done)(struct world *);
	int timed_out;
	int tamper_fp;		/* corrupt the answer's fingerprint */
	char offer_ufrag[PP_SDP_UFRAG_MAX + 1];	/* of a's first offer */
};

/* The value of the first a=ice-ufrag line. */
static void
ufrag_of(const char *sdp, char *out, size_t size)
{
	const char *u = strstr(sdp, "a=ice-ufrag:");

	assert_non_null(u);
	snprintf(out, size, "%.*s", (int)strcspn(u + 12, "\r\n"), u + 12);
}

static const char *const lo[] = { "127.0.0.1" };

static void
on_cand(void *ctx, const char *cand, const char *mid, unsigned idx)
{
	struct side *s = ctx;
	char err[256];

	(void)mid, (void)idx;
	if (s->other->pc)
		(void)pp_pc_add_remote_candidate(s->other->pc, cand, err, sizeof(err));
}

static void
check_done(struct world *w)
{
	if (w->done(w))
		uv_stop(&w->loop);
}

static void
on_state(void *ctx, enum pp_pc_state st, const char *reason)
{
	struct side *s = ctx;

	s->state = st;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	check_done(s->w);
}

static void
dc_open(struct pp_dc *dc, void *ctx)
{
	struct side *s = ctx;

	s->opened = 1;
	assert_int_equal(pp_dc_send_text(dc, "hello", 5), 0);
	assert_int_equal(pp_dc_send_binary(dc, "\0\1\2", 3), 0);
}

static void
dc_message(struct pp_dc *dc, int binary, const uint8_t *data, size_t len,
    void *ctx)
{
	struct side *s = ctx;

	(void)dc;
	if (binary) {
		s->got_binary++;
	} else {
		s->got_text++;
		snprintf(s->last, sizeof(s->last), "%.*s", (int)len,
		    (const char *)data);
	}
	check_done(s->w);
}

static void
dc_close(struct pp_dc *dc, int status, void *ctx)
{
	(void)dc, (void)status, (void)ctx;
}

static const struct pp_dc_ops dc_ops = { dc_open, dc_message, dc_close, NULL };

static void
on_channel(void *ctx, struct pp_dc *dc)
{
	struct side *s = ctx;

	s->dc = dc;
	pp_dc_set_ops(dc, &dc_ops, s);
	/* The opener's messages may come right after the open: both fine.
	 * (dc_open also runs for this channel, once it is usable.) */
	assert_int_equal(pp_dc_send_text(dc, "world", 5), 0);
}

static const struct pp_pc_ops pc_ops = { on_cand, on_state, on_channel };

static void
deadline_cb(uv_timer_t *t)
{
	struct world *w = t->data;

	w->timed_out = 1;
	uv_stop(&w->loop);
}

static void
setup_world(struct world *w)
{
	struct pp_pc_config cfg;

	memset(w, 0, sizeof(*w));
	assert_int_equal(uv_loop_init(&w->loop), 0);
	assert_int_equal(pp_gloop_new(&w->loop, &w->gl), 0);
	uv_timer_init(&w->loop, &w->deadline);
	w->deadline.data = w;
	memset(&cfg, 0, sizeof(cfg));
	cfg.gloop = w->gl;
	cfg.ice.local_addrs = lo;
	cfg.ice.nlocal_addrs = 1;
	cfg.connect_timeout_ms = 20000;
	w->a.w = w->b.w = w;
	w->a.other = &w->b;
	w->b.other = &w->a;
	w->a.name = "alice";
	w->b.name = "bobby";
	cfg.log_name = "alice";
	assert_int_equal(pp_pc_new(&cfg, &pc_ops, &w->a, &w->a.pc), 0);
	cfg.log_name = "bobby";
	assert_int_equal(pp_pc_new(&cfg, &pc_ops, &w->b, &w->b.pc), 0);
}

static void
run(struct world *w)
{
	uv_timer_start(&w->deadline, deadline_cb, 60000, 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&w->deadline);
	assert_false(w->timed_out);
}

static void
teardown_world(struct world *w)
{
	pp_pc_free(w->a.pc);
	pp_pc_free(w->b.pc);
	uv_close((uv_handle_t *)&w->deadline, NULL);
	pp_gloop_free(w->gl);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&w->loop), 0);
}

/* Offer from a, answer from b; a opens a channel once the answer is in. */
static void
negotiate(struct world *w, int legacy)
{
	char err[256], *offer, *answer;

	(void)legacy;
	assert_int_equal(pp_pc_create_offer(w->a.pc, &offer, err, sizeof(err)), 0);
	ufrag_of(offer, w->offer_ufrag, sizeof(w->offer_ufrag));
	assert_int_equal(pp_pc_set_remote_offer(w->b.pc, offer, strlen(offer),
	    &answer, err, sizeof(err)), 0);
	if (w->tamper_fp) {
		char *fp = strstr(answer, "sha-256 ");

		assert_non_null(fp);
		fp[8] = fp[8] == 'A' ? 'B' : 'A';
	}
	assert_int_equal(pp_pc_set_remote_answer(w->a.pc, answer, strlen(answer),
	    err, sizeof(err)), 0);
	free(offer);
	free(answer);
}

static int
both_exchanged(struct world *w)
{
	return w->a.got_text >= 1 && w->b.got_text >= 1 && w->b.got_binary >= 1;
}

static void
test_connect_and_exchange(void **state)
{
	struct pp_dc_init init = { .label = "chat" };
	struct world *w = calloc(1, sizeof(*w));
	struct pp_pc_status st;

	(void)state;
	setup_world(w);
	w->done = both_exchanged;
	negotiate(w, 0);
	assert_int_equal(pp_pc_open_channel(w->a.pc, &init, &dc_ops, &w->a,
	    &w->a.dc), 0);
	run(w);
	assert_int_equal(w->a.state, PP_PC_CONNECTED);
	assert_int_equal(w->b.state, PP_PC_CONNECTED);
	/* a got "world" from on_channel, then b's dc_open "hello": either order. */
	assert_true(strcmp(w->a.last, "world") == 0 || strcmp(w->a.last, "hello") == 0);
	assert_true(w->b.got_text >= 1);
	assert_true(w->b.got_binary >= 1);
	pp_pc_get_status(w->a.pc, &st);
	assert_true(st.ice.have_pair);
	assert_int_equal(st.ice.pair.local_type, PP_ICE_CAND_HOST);
	assert_int_equal(st.dtls, PP_DTLS_CONNECTED);
	/* the association has measured the path (loopback: 0 ms or a few) */
	assert_true(st.ice.rtt_ms >= 0 && st.ice.rtt_ms < 1000);
	/* b answered an actpass offer: it is the DTLS client. */
	assert_false(st.dtls_client);
	teardown_world(w);
	free(w);
}

static int
a_failed(struct world *w)
{
	return w->a.state == PP_PC_FAILED;
}

static void
test_wrong_fingerprint(void **state)
{
	struct pp_dc_init init = { .label = "chat" };
	struct world *w = calloc(1, sizeof(*w));

	(void)state;
	setup_world(w);
	w->done = a_failed;
	w->tamper_fp = 1;
	negotiate(w, 0);
	assert_int_equal(pp_pc_open_channel(w->a.pc, &init, &dc_ops, &w->a,
	    &w->a.dc), 0);
	run(w);
	assert_int_equal(w->a.state, PP_PC_FAILED);
	assert_non_null(strstr(w->a.reason, "fingerprint"));
	assert_int_equal(w->a.got_text + w->b.got_text, 0);
	assert_int_equal(w->a.got_binary + w->b.got_binary, 0);
	assert_int_not_equal(w->b.state, PP_PC_CONNECTED);
	teardown_world(w);
	free(w);
}

static void
test_malformed_sdp(void **state)
{
	static const char *bad[] = {
		"",
		"v=0\r\n",
		"garbage\r\nmore garbage",
		"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
		    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
	};
	struct world *w = calloc(1, sizeof(*w));
	char err[256], *answer;

	(void)state;
	setup_world(w);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_true(pp_pc_set_remote_offer(w->b.pc, bad[i], strlen(bad[i]),
		    &answer, err, sizeof(err)) < 0);
		assert_null(answer);
		assert_true(err[0] != '\0');
	}
	/* Still usable: a real offer goes through afterwards. */
	w->done = both_exchanged;
	{
		struct pp_dc_init init = { .label = "chat" };

		negotiate(w, 0);
		assert_int_equal(pp_pc_open_channel(w->a.pc, &init, &dc_ops,
		    &w->a, &w->a.dc), 0);
	}
	run(w);
	assert_int_equal(w->b.state, PP_PC_CONNECTED);
	teardown_world(w);
	free(w);
}

static void
poll_cb(uv_timer_t *t)
{
	check_done(t->data);
}

static int
restarted(struct world *w)
{
	struct pp_pc_status sa, sb;

	pp_pc_get_status(w->a.pc, &sa);
	pp_pc_get_status(w->b.pc, &sb);
	return sa.restarts >= 1 && sb.restarts >= 1;
}

static int
b_got_again(struct world *w)
{
	return strcmp(w->b.last, "again") == 0;
}

static void
test_ice_restart_keeps_channel(void **state)
{
	struct pp_dc_init init = { .label = "chat" };
	struct world *w = calloc(1, sizeof(*w));
	struct pp_pc_status st;
	struct pp_pc_config cfg;
	struct pp_pc *stranger;
	char err[256], *offer, *answer, *other;
	char ufrag[PP_SDP_UFRAG_MAX + 1];
	uv_timer_t poll;

	(void)state;
	setup_world(w);
	w->done = both_exchanged;
	negotiate(w, 0);
	assert_int_equal(pp_pc_open_channel(w->a.pc, &init, &dc_ops, &w->a,
	    &w->a.dc), 0);
	run(w);

	/* Not agreed yet: no restart offer from a, none taken by b. */
	assert_int_equal(pp_pc_restart(w->a.pc, &offer, err, sizeof(err)),
	    PP_ECONFLICT);
	assert_null(offer);
	pp_pc_allow_restart(w->a.pc);
	/* b is the answerer: it never restarts by itself */
	pp_pc_allow_restart(w->b.pc);
	assert_int_equal(pp_pc_restart(w->b.pc, &offer, err, sizeof(err)),
	    PP_ECONFLICT);

	/* Another session's offer is not a restart: refused, b untouched. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.gloop = w->gl;
	cfg.ice.local_addrs = lo;
	cfg.ice.nlocal_addrs = 1;
	assert_int_equal(pp_pc_new(&cfg, &pc_ops, &w->a, &stranger), 0);
	assert_int_equal(pp_pc_create_offer(stranger, &other, err, sizeof(err)),
	    0);
	assert_int_equal(pp_pc_set_remote_offer(w->b.pc, other, strlen(other),
	    &answer, err, sizeof(err)), PP_ECONFLICT);
	assert_null(answer);
	assert_non_null(strstr(err, "not an ICE restart"));
	free(other);
	pp_pc_free(stranger);

	pp_pc_get_status(w->a.pc, &st);
	assert_int_equal(st.state, PP_PC_CONNECTED);
	assert_int_equal(st.ice.restarts, 0);
	assert_int_equal(pp_pc_restart(w->a.pc, &offer, err, sizeof(err)), 0);
	/* the same DTLS identity and SCTP port; new ICE credentials */
	assert_non_null(strstr(offer, "a=fingerprint:sha-256 "));
	assert_non_null(strstr(offer, "a=sctp-port:5000"));
	ufrag_of(offer, ufrag, sizeof(ufrag));
	assert_string_not_equal(ufrag, w->offer_ufrag);
	assert_int_equal(pp_pc_set_remote_offer(w->b.pc, offer, strlen(offer),
	    &answer, err, sizeof(err)), 0);
	/* the same offer again is not a newer version: refused */
	assert_int_equal(pp_pc_set_remote_offer(w->b.pc, offer, strlen(offer),
	    &other, err, sizeof(err)), PP_ECONFLICT);
	assert_int_equal(pp_pc_set_remote_answer(w->a.pc, answer, strlen(answer),
	    err, sizeof(err)), 0);
	free(offer);
	free(answer);

	uv_timer_init(&w->loop, &poll);
	poll.data = w;
	uv_timer_start(&poll, poll_cb, 50, 50);
	w->done = restarted;
	run(w);
	/* the channel opened before the restart still carries messages */
	w->done = b_got_again;
	assert_int_equal(pp_dc_send_text(w->a.dc, "again", 5), 0);
	run(w);
	uv_close((uv_handle_t *)&poll, NULL);
	pp_pc_get_status(w->a.pc, &st);
	assert_int_equal(st.state, PP_PC_CONNECTED);
	assert_int_equal(st.ice.restarts, 1);
	assert_int_equal(st.restarts, 1);
	assert_true(st.ice.have_pair);
	assert_int_equal(st.dtls, PP_DTLS_CONNECTED);
	assert_true(st.restart_ok && !st.restarting);
	assert_int_equal(w->a.state, PP_PC_CONNECTED);
	assert_int_equal(w->b.state, PP_PC_CONNECTED);
	teardown_world(w);
	free(w);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_and_exchange),
		cmocka_unit_test(test_wrong_fingerprint),
		cmocka_unit_test(test_malformed_sdp),
		cmocka_unit_test(test_ice_restart_keeps_channel),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
