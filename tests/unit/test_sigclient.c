/*
 * lib/signal/client.c against the real peerpipe-server (PP_SERVER_BIN):
 * connect, request/reply, a server message it must reject, and reconnection
 * after the server restarts on the same port.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "signal/client.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct probe {
	uv_loop_t loop;
	uv_timer_t deadline;
	struct pp_sigc *c;
	int connects, disconnects;
	char last_type[64];
	char last_uuid[64];
	int timed_out;
};

static pid_t server_pid;
static char state_dir[] = "/tmp/pp-sigclient-XXXXXX";

/* Starts the server; returns its port (reads it from the "listening" line). */
static int
start_server(int port)
{
	const char *bin = getenv("PP_SERVER_BIN");
	char listen[32], line[1024];
	int fds[2], found = 0;
	FILE *f;

	if (bin == NULL)
		fail_msg("PP_SERVER_BIN is not set (run under ctest)");
	assert_int_equal(pipe(fds), 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	server_pid = fork();
	assert_true(server_pid >= 0);
	if (server_pid == 0) {
		dup2(fds[1], 2);
		close(fds[0]);
		execl(bin, bin, "--listen", listen, "--state-dir", state_dir, NULL);
		_exit(127);
	}
	close(fds[1]);
	f = fdopen(fds[0], "r");
	while (fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "listening on wss://127.0.0.1:");

		if (p) {
			port = atoi(p + strlen("listening on wss://127.0.0.1:"));
			found = 1;
			break;
		}
	}
	fclose(f);	/* the server's later log lines go to a closed pipe: fine */
	if (!found)
		fail_msg("the server did not say where it listens");
	return port;
}

static void
stop_server(void)
{
	int status;

	kill(server_pid, SIGTERM);
	waitpid(server_pid, &status, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
on_connected(void *ctx)
{
	struct probe *p = ctx;
	json_t *m = json_pack("{s:s, s:s, s:s}", "type", "NEW_ROOM",
	    "room_name", "probe-room", "user_name", "probe");

	p->connects++;
	assert_int_equal(pp_sigc_send(p->c, m), 0);
	json_decref(m);
}

static void
on_disconnected(void *ctx, const char *why)
{
	struct probe *p = ctx;

	(void)why;
	p->disconnects++;
	uv_stop(&p->loop);
}

static void
on_message(void *ctx, const char *type, json_t *data)
{
	struct probe *p = ctx;
	const char *u = json_string_value(json_object_get(data, "room_uuid"));

	snprintf(p->last_type, sizeof(p->last_type), "%s", type);
	snprintf(p->last_uuid, sizeof(p->last_uuid), "%s", u ? u : "");
	uv_stop(&p->loop);
}

static void
on_deadline(uv_timer_t *t)
{
	struct probe *p = t->data;

	p->timed_out = 1;
	uv_stop(&p->loop);
}

/* Runs the loop until a callback stops it, or 30 s pass. */
static void
run_until_event(struct probe *p)
{
	uv_timer_start(&p->deadline, on_deadline, 30000, 0);
	uv_run(&p->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&p->deadline);
	assert_false(p->timed_out);
}

static void
test_connect_and_reconnect(void **state)
{
	static const struct pp_sigc_ops ops = { on_connected, on_disconnected,
	    on_message };
	struct pp_sigc_config cfg = { 0 };
	struct probe p;
	char url[64];
	int port;

	(void)state;
	assert_non_null(mkdtemp(state_dir));
	memset(&p, 0, sizeof(p));
	uv_loop_init(&p.loop);
	uv_timer_init(&p.loop, &p.deadline);
	p.deadline.data = &p;

	port = start_server(0);
	snprintf(url, sizeof(url), "wss://127.0.0.1:%d/ws", port);
	cfg.url = url;
	cfg.insecure = 1;
	cfg.reconnect_min_ms = 100;
	cfg.reconnect_max_ms = 500;
	assert_int_equal(pp_sigc_new(&p.loop, &cfg, &ops, &p, &p.c), 0);

	run_until_event(&p);
	assert_int_equal(p.connects, 1);
	assert_string_equal(p.last_type, "ROOM_CREATED");
	assert_int_equal(strlen(p.last_uuid), 36);

	/* The server goes away: noticed, and the client keeps trying. */
	stop_server();
	run_until_event(&p);
	assert_int_equal(p.disconnects, 1);
	assert_false(pp_sigc_connected(p.c));

	/* It comes back on the same port: the client reconnects by itself. */
	p.last_type[0] = '\0';
	start_server(port);
	run_until_event(&p);
	assert_int_equal(p.connects, 2);
	assert_string_equal(p.last_type, "ROOM_CREATED");

	pp_sigc_stop(p.c);
	uv_close((uv_handle_t *)&p.deadline, NULL);
	uv_run(&p.loop, UV_RUN_DEFAULT);
	pp_sigc_free(p.c);
	uv_run(&p.loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&p.loop), 0);
	stop_server();
}

static void
test_bad_url(void **state)
{
	static const struct pp_sigc_ops ops = { on_connected, on_disconnected,
	    on_message };
	struct pp_sigc_config cfg = { .url = "http://example.invalid/ws" };
	uv_loop_t loop;
	struct pp_sigc *c;

	(void)state;
	uv_loop_init(&loop);
	assert_int_equal(pp_sigc_new(&loop, &cfg, &ops, NULL, &c), PP_ECONFIG);
	assert_null(c);
	assert_int_equal(uv_loop_close(&loop), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_url),
		cmocka_unit_test(test_connect_and_reconnect),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
