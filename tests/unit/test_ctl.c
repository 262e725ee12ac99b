/*
 * lib/agent/ctl: the line splitter and parsers directly, then the server on
 * a loop in this thread, driven by a small non-blocking client that runs the
 * loop whenever it waits (pump), so no test needs a second thread except the
 * ones for the blocking pp_ctl_call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "agent/ctl.h"
#include "agent/ctl_int.h"
#include "base/error.h"
#include "base/json.h"
#include "base/lines.h"

#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 5000

/* --- the pure parts ------------------------------------------------------ */

struct rec {
	char lines[16][64];
	size_t lens[16];
	int n;
	int stop_after;		/* return 1 after this many lines; 0: never */
};

static int
rec_line(void *arg, const char *line, size_t len)
{
	struct rec *r = arg;

	assert_true(r->n < 16);
	if (line == NULL) {
		assert_int_equal(len, 0);
		snprintf(r->lines[r->n], sizeof(r->lines[0]), "<TOOLONG>");
	} else {
		snprintf(r->lines[r->n], sizeof(r->lines[0]), "%.*s",
		    (int)(len < 60 ? len : 60), line);
	}
	r->lens[r->n] = len;
	r->n++;
	return r->stop_after && r->n >= r->stop_after;
}

static void
feed_str(struct pp_lines *l, struct rec *r, const char *s)
{
	assert_int_equal(pp_lines_feed(l, s, strlen(s), rec_line, r), 0);
}

static char *
filled(size_t n, char ch)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

static void
test_lines_split(void **state)
{
	static const struct {
		const char *chunks[4];
		int n;
		const char *want[4];
	} cases[] = {
		{ { "a\nbc\n" }, 2, { "a", "bc" } },
		{ { "ab", "c\r\nd", "\n" }, 2, { "abc", "d" } },
		{ { "\n", "x\r\r\n" }, 2, { "", "x\r" } },	/* one '\r' only */
		{ { "no newline yet" }, 0, { NULL } },
		{ { "{\"cmd\"", ":\"a\"}\n{", "}\n" }, 2,
		    { "{\"cmd\":\"a\"}", "{}" } },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp_lines l;
		struct rec r = { .n = 0 };

		pp_lines_init(&l, PP__CTL_LINES_CAP);
		for (int k = 0; k < 4 && cases[i].chunks[k]; k++)
			feed_str(&l, &r, cases[i].chunks[k]);
		assert_int_equal(r.n, cases[i].n);
		for (int k = 0; k < r.n; k++)
			assert_string_equal(r.lines[k], cases[i].want[k]);
		pp_lines_fini(&l);
	}
}

static void
test_lines_byte_at_a_time(void **state)
{
	const char *s = "{\"id\":1,\"cmd\":\"a\"}\r\n\nxy\n";
	struct pp_lines l;
	struct rec r = { .n = 0 };

	(void)state;
	pp_lines_init(&l, PP__CTL_LINES_CAP);
	for (size_t i = 0; s[i]; i++)
		assert_int_equal(pp_lines_feed(&l, s + i, 1, rec_line, &r),
		    0);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.lines[0], "{\"id\":1,\"cmd\":\"a\"}");
	assert_string_equal(r.lines[1], "");
	assert_string_equal(r.lines[2], "xy");
	pp_lines_fini(&l);
}

static void
test_lines_limit(void **state)
{
	struct pp_lines l;
	struct rec r = { .n = 0 };
	char *max = filled(PP_CTL_LINE_MAX, 'm');
	char *over = filled(PP_CTL_LINE_MAX + 5, 'o');

	(void)state;
	pp_lines_init(&l, PP__CTL_LINES_CAP);

	/* Exactly the limit, split over two feeds: still a line. */
	assert_int_equal(pp_lines_feed(&l, max, 1000, rec_line, &r), 0);
	assert_int_equal(pp_lines_feed(&l, max + 1000,
	    PP_CTL_LINE_MAX - 1000, rec_line, &r), 0);
	feed_str(&l, &r, "\n");
	assert_int_equal(r.n, 1);
	assert_int_equal(r.lens[0], PP_CTL_LINE_MAX);

	/* One byte over, in pieces: reported once, as soon as it is known,
	 * and the rest of it up to the newline is dropped. */
	feed_str(&l, &r, over);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.lines[1], "<TOOLONG>");
	feed_str(&l, &r, over);
	assert_int_equal(r.n, 2);
	feed_str(&l, &r, "tail of it\n{}\n");
	assert_int_equal(r.n, 3);
	assert_string_equal(r.lines[2], "{}");

	/* Over the limit with its newline in the same feed. */
	over[PP_CTL_LINE_MAX + 2] = '\n';
	feed_str(&l, &r, over);		/* "oo\n" after the newline ... */
	feed_str(&l, &r, "\n");		/* ... ends as the line "oo" */
	assert_int_equal(r.n, 5);
	assert_string_equal(r.lines[3], "<TOOLONG>");
	assert_string_equal(r.lines[4], "oo");

	pp_lines_fini(&l);
	free(max);
	free(over);
}

static void
test_lines_finish_and_stop(void **state)
{
	struct pp_lines l;
	struct rec r = { .n = 0 };
	char *over = filled(PP_CTL_LINE_MAX + 1, 'o');

	(void)state;
	pp_lines_init(&l, PP__CTL_LINES_CAP);
	feed_str(&l, &r, "tail");
	assert_int_equal(pp_lines_finish(&l, rec_line, &r), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.lines[0], "tail");
	assert_int_equal(pp_lines_finish(&l, rec_line, &r), 0);
	assert_int_equal(r.n, 1);

	/* The end of an oversized line is not a line. */
	feed_str(&l, &r, over);
	assert_int_equal(pp_lines_finish(&l, rec_line, &r), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.lines[1], "<TOOLONG>");

	/* The callback stops the feed: later lines are not delivered. */
	pp_lines_fini(&l);
	pp_lines_init(&l, PP__CTL_LINES_CAP);
	r.n = 0;
	r.stop_after = 1;
	assert_int_equal(pp_lines_feed(&l, "a\nb\n", 4, rec_line, &r), 1);
	assert_int_equal(r.n, 1);
	pp_lines_fini(&l);
	free(over);
}

static void
test_parse_request(void **state)
{
	static const struct {
		const char *line;
		int rc;
		const char *cmd;	/* on success */
		const char *id;		/* the id as JSON, or NULL */
		int has_args;
		const char *err;	/* a part of the message */
	} cases[] = {
		{ "{\"id\":7,\"cmd\":\"status\"}", 0, "status", "7", 0, NULL },
		{ "{\"cmd\":\"peers\",\"args\":{\"a\":1}}", 0, "peers", NULL, 1,
		    NULL },
		{ "{\"cmd\":\"a.b-c_9\",\"args\":null,\"id\":null}", 0,
		    "a.b-c_9", NULL, 0, NULL },
		{ "{\"id\":\"x\",\"cmd\":\"s\",\"extra\":[1]}", 0, "s",
		    "\"x\"", 0, NULL },
		{ "not json", PP_EINVAL, NULL, NULL, 0, "not JSON" },
		{ "[1,2]", PP_EINVAL, NULL, NULL, 0, "must be a JSON object" },
		{ "\"cmd\"", PP_EINVAL, NULL, NULL, 0, "must be a JSON object" },
		{ "{\"id\":3}", PP_EINVAL, NULL, "3", 0, "'cmd': missing" },
		{ "{\"id\":\"q\",\"cmd\":5}", PP_EINVAL, NULL, "\"q\"", 0,
		    "'cmd': must be a string" },
		{ "{\"cmd\":\"\"}", PP_EINVAL, NULL, NULL, 0, "'cmd'" },
		{ "{\"cmd\":\"Status\"}", PP_EINVAL, NULL, NULL, 0, "'cmd'" },
		{ "{\"cmd\":\"x\",\"args\":[1]}", PP_EINVAL, NULL, NULL, 0,
		    "'args': must be an object" },
		{ "{\"id\":[1],\"cmd\":\"x\"}", PP_EINVAL, NULL, NULL, 0,
		    "'id': must be an integer or a string" },
		{ "{\"cmd\":\"a\",\"cmd\":\"b\"}", PP_EINVAL, NULL, NULL, 0,
		    "not JSON" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pp__ctl_req req;
		char err[512] = "";
		int rc = pp__ctl_parse_request(cases[i].line,
		    strlen(cases[i].line), &req, err, sizeof(err));

		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			assert_string_equal(req.cmd, cases[i].cmd);
			assert_int_equal(req.args != NULL, cases[i].has_args);
		} else {
			assert_null(req.cmd);
			assert_non_null(strstr(err, cases[i].err));
		}
		if (cases[i].id) {
			char *s = pp_json_dump(req.id, NULL);

			assert_non_null(s);
			assert_string_equal(s, cases[i].id);
			free(s);
		} else {
			assert_null(req.id);
		}
		json_decref(req.root);
	}
}

static void
test_parse_reply(void **state)
{
	static const struct {
		const char *line;
		int rc;
		const char *result;	/* as JSON, on rc 0 */
		const char *err;
	} cases[] = {
		{ "{\"id\":1,\"ok\":true,\"result\":{\"a\":1}}", 0, "{\"a\":1}",
		    NULL },
		{ "{\"id\":1,\"ok\":true}", 0, "null", NULL },
		{ "{\"ok\":false,\"error\":\"boom\"}", PP_EINVAL, NULL, "boom" },
		{ "{\"ok\":false}", PP_EINVAL, NULL, "gave no reason" },
		{ "{\"event\":\"peer\",\"data\":{}}", 1, NULL, NULL },
		{ "{\"id\":1}", PP_EPROTO, NULL, "no boolean \"ok\"" },
		{ "[]", PP_EPROTO, NULL, "not a JSON object" },
		{ "xx", PP_EPROTO, NULL, "not JSON" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *root, *id, *result;
		char err[256] = "";
		int rc = pp__ctl_parse_reply(cases[i].line,
		    strlen(cases[i].line), &root, &id, &result, err,
		    sizeof(err));

		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			char *s = pp_json_dump(result, NULL);

			assert_string_equal(s, cases[i].result);
			free(s);
		} else {
			assert_null(result);
		}
		if (cases[i].err)
			assert_non_null(strstr(err, cases[i].err));
		json_decref(result);
		json_decref(root);
	}
}

static void
set_sun(struct sockaddr_un *sa, const char *path)
{
	assert_true(strlen(path) < sizeof(sa->sun_path));
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

/* --- the server ---------------------------------------------------------- */

struct fx {
	uv_loop_t loop;
	struct pp_ctl *ctl;
	char dir[64];
	char rundir[96];
	char path[128];
	int calls;
};

static json_t *
handler(void *ctx, const char *cmd, json_t *args, char *err, size_t errlen)
{
	struct fx *f = ctx;

	f->calls++;
	assert_non_null(args);
	assert_true(json_is_object(args));
	if (strcmp(cmd, "echo") == 0)
		return json_incref(args);
	if (strcmp(cmd, "fail") == 0) {
		snprintf(err, errlen, "fail always fails; try echo");
		return NULL;
	}
	if (strcmp(cmd, "silent-fail") == 0)
		return NULL;
	if (strcmp(cmd, "emit") == 0) {
		pp_ctl_broadcast(f->ctl, "tick", args);
		return json_string("emitted");
	}
	if (strcmp(cmd, "exit") == 0) {
		pp_ctl_free(f->ctl);
		f->ctl = NULL;
		return json_true();
	}
	snprintf(err, errlen, "unknown command '%s'", cmd);
	return NULL;
}

static int
fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/pp-ctl-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	/* run/ does not exist yet: pp_ctl_new makes it. */
	snprintf(f->rundir, sizeof(f->rundir), "%s/run", f->dir);
	snprintf(f->path, sizeof(f->path), "%s/ctl.sock", f->rundir);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	*state = f;
	return 0;
}

static int
rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
fx_teardown(void **state)
{
	struct fx *f = *state;

	pp_ctl_free(f->ctl);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void
start(struct fx *f, unsigned mode)
{
	assert_int_equal(pp_ctl_new(&f->loop, f->path, mode, handler, f,
	    &f->ctl), 0);
	assert_non_null(f->ctl);
}

static void
stop(struct fx *f)
{
	pp_ctl_free(f->ctl);
	f->ctl = NULL;
	uv_run(&f->loop, UV_RUN_DEFAULT);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits up to ms for the loop or fd to have work, then runs the loop once. */
static void
pump(struct fx *f, int fd, int ms)
{
	struct pollfd p[2] = {
		{ .fd = uv_backend_fd(&f->loop), .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};

	poll(p, fd >= 0 ? 2 : 1, ms);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

struct tc {
	int fd;
	char buf[256 * 1024];
	size_t len;
	int eof;
};

static struct tc *
tc_open(struct fx *f)
{
	struct tc *t = calloc(1, sizeof(*t));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	(void)f;
	assert_non_null(t);
	set_sun(&sa, f->path);
	t->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	assert_true(t->fd >= 0);
	assert_int_equal(connect(t->fd, (struct sockaddr *)&sa, sizeof(sa)),
	    0);
	return t;
}

static void
tc_close(struct tc *t)
{
	if (t) {
		close(t->fd);
		free(t);
	}
}

/* Sends everything, running the loop while the socket is full. */
static void
tc_send(struct fx *f, struct tc *t, const char *s, size_t len)
{
	long long deadline = now_ms() + WAIT_MS;

	while (len > 0) {
		ssize_t n = send(t->fd, s, len, MSG_NOSIGNAL);

		if (n > 0) {
			s += n;
			len -= (size_t)n;
			continue;
		}
		assert_int_equal(errno, EAGAIN);
		assert_true(now_ms() < deadline);
		pump(f, -1, 10);
	}
}

static void
tc_sends(struct fx *f, struct tc *t, const char *s)
{
	tc_send(f, t, s, strlen(s));
}

/* Reads some bytes if any; returns 0 when it would block. */
static int
tc_fill(struct tc *t)
{
	ssize_t n;

	if (t->len == sizeof(t->buf))
		return 0;
	n = recv(t->fd, t->buf + t->len, sizeof(t->buf) - t->len, 0);
	if (n > 0) {
		t->len += (size_t)n;
		return 1;
	}
	if (n == 0) {
		t->eof = 1;
		return 0;
	}
	assert_true(errno == EAGAIN || errno == ECONNRESET);
	if (errno == ECONNRESET)
		t->eof = 1;
	return 0;
}

/* The next line as a malloc'ed string, or NULL at EOF. */
static char *
tc_rawline(struct fx *f, struct tc *t)
{
	long long deadline = now_ms() + WAIT_MS;

	for (;;) {
		char *nl = memchr(t->buf, '\n', t->len);

		if (nl) {
			size_t n = (size_t)(nl - t->buf);
			char *s = malloc(n + 1);

			assert_non_null(s);
			memcpy(s, t->buf, n);
			s[n] = '\0';
			memmove(t->buf, nl + 1, t->len - n - 1);
			t->len -= n + 1;
			return s;
		}
		if (tc_fill(t))
			continue;
		if (t->eof)
			return NULL;
		if (now_ms() >= deadline)
			fail_msg("no line from the server within %d ms", WAIT_MS);
		pump(f, t->fd, 10);
	}
}

static json_t *
tc_line(struct fx *f, struct tc *t)
{
	char *s = tc_rawline(f, t);
	json_t *v = NULL;
	char err[128];

	if (s == NULL)
		fail_msg("the server closed the connection");
	assert_int_equal(pp_json_parse(s, strlen(s), PP_CTL_OUT_MAX, &v, err,
	    sizeof(err)), 0);
	free(s);
	return v;
}

static void
tc_expect_line(struct fx *f, struct tc *t, const char *want)
{
	char *s = tc_rawline(f, t);

	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

static void
tc_expect_error(struct fx *f, struct tc *t, const char *part)
{
	json_t *v = tc_line(f, t);
	const char *e = json_string_value(json_object_get(v, "error"));

	assert_true(json_is_false(json_object_get(v, "ok")));
	assert_non_null(e);
	if (strstr(e, part) == NULL)
		fail_msg("error \"%s\" does not mention \"%s\"", e, part);
	json_decref(v);
}

/* Reads to EOF, counting lines; fails if the server keeps it open. */
static int
tc_drain_to_eof(struct fx *f, struct tc *t)
{
	int lines = 0;
	char *s;

	while ((s = tc_rawline(f, t)) != NULL) {
		free(s);
		lines++;
	}
	return lines;
}

static void
test_round_trip_with_id(void **state)
{
	struct fx *f = *state;
	struct tc *t;

	start(f, 0600);
	t = tc_open(f);
	tc_sends(f, t, "{\"id\":7,\"cmd\":\"echo\",\"args\":{\"x\":[1,\"two\"]}}\n");
	tc_expect_line(f, t, "{\"id\":7,\"ok\":true,\"result\":{\"x\":[1,\"two\"]}}");
	tc_sends(f, t, "{\"id\":\"abc\",\"cmd\":\"echo\"}\n");
	tc_expect_line(f, t, "{\"id\":\"abc\",\"ok\":true,\"result\":{}}");
	/* No id, no id in the reply. */
	tc_sends(f, t, "{\"cmd\":\"echo\",\"args\":{\"s\":\"a\\nb\"}}\n");
	tc_expect_line(f, t, "{\"ok\":true,\"result\":{\"s\":\"a\\nb\"}}");
	assert_int_equal(f->calls, 3);
	tc_close(t);
}

static void
test_handler_error(void **state)
{
	struct fx *f = *state;
	struct tc *t;

	start(f, 0600);
	t = tc_open(f);
	tc_sends(f, t, "{\"id\":1,\"cmd\":\"fail\"}\n");
	tc_expect_line(f, t, "{\"id\":1,\"ok\":false,\"error\":"
	    "\"fail always fails; try echo\"}");
	tc_sends(f, t, "{\"id\":2,\"cmd\":\"silent-fail\"}\n");
	tc_expect_line(f, t, "{\"id\":2,\"ok\":false,\"error\":"
	    "\"command 'silent-fail' failed\"}");
	tc_sends(f, t, "{\"id\":3,\"cmd\":\"nope\"}\n");
	tc_expect_error(f, t, "unknown command 'nope'");
	tc_close(t);
}

static void
test_garbage_then_valid(void **state)
{
	struct fx *f = *state;
	struct tc *t;
	json_t *v;

	start(f, 0600);
	t = tc_open(f);
	tc_sends(f, t, "hello there\n");
	tc_expect_error(f, t, "not JSON");
	tc_sends(f, t, "[1,2,3]\n");
	tc_expect_error(f, t, "must be a JSON object");
	tc_sends(f, t, "{\"id\":4,\"args\":{}}\n");
	v = tc_line(f, t);
	assert_int_equal(json_integer_value(json_object_get(v, "id")), 4);
	assert_true(json_is_false(json_object_get(v, "ok")));
	json_decref(v);
	tc_sends(f, t, "{\"id\":5,\"cmd\":42}\n");
	tc_expect_error(f, t, "'cmd'");
	/* Blank lines get no reply; the connection still works. */
	tc_sends(f, t, "\n\r\n{\"id\":6,\"cmd\":\"echo\"}\n");
	tc_expect_line(f, t, "{\"id\":6,\"ok\":true,\"result\":{}}");
	assert_int_equal(f->calls, 1);
	tc_close(t);
}

/* {"id":N,"cmd":"echo","args":{"p":"xxx"}} padded to exactly len bytes. */
static char *
padded_echo(int id, size_t len)
{
	char head[64];
	int h = snprintf(head, sizeof(head),
	    "{\"id\":%d,\"cmd\":\"echo\",\"args\":{\"p\":\"", id);
	char *s = filled(len, 'x');

	assert_true(len > (size_t)h + 3);
	memcpy(s, head, (size_t)h);
	memcpy(s + len - 3, "\"}}", 3);
	return s;
}

static void
test_oversized_line(void **state)
{
	struct fx *f = *state;
	char *over = filled(PP_CTL_LINE_MAX + 100, 'z');
	char *max = padded_echo(2, PP_CTL_LINE_MAX);
	struct tc *t;
	json_t *v;

	start(f, 0600);
	t = tc_open(f);
	tc_send(f, t, over, strlen(over));
	tc_expect_error(f, t, "longer than 65536 bytes");
	tc_sends(f, t, "still the same line\n{\"id\":1,\"cmd\":\"echo\"}\n");
	tc_expect_line(f, t, "{\"id\":1,\"ok\":true,\"result\":{}}");

	/* A request of exactly PP_CTL_LINE_MAX bytes is served. */
	tc_send(f, t, max, strlen(max));
	tc_sends(f, t, "\n");
	v = tc_line(f, t);
	assert_int_equal(json_integer_value(json_object_get(v, "id")), 2);
	assert_true(json_is_true(json_object_get(v, "ok")));
	assert_int_equal(json_string_length(json_object_get(json_object_get(v,
	    "result"), "p")), PP_CTL_LINE_MAX -
	    strlen("{\"id\":2,\"cmd\":\"echo\",\"args\":{\"p\":\"\"}}"));
	json_decref(v);
	assert_int_equal(f->calls, 2);
	tc_close(t);
	free(over);
	free(max);
}

static void
test_pipelined(void **state)
{
	struct fx *f = *state;
	char batch[8192] = "";
	size_t off = 0;
	struct tc *t;

	start(f, 0600);
	t = tc_open(f);
	/* Good, failing and broken requests interleaved, one write. */
	for (int i = 1; i <= 30; i++)
		off += (size_t)snprintf(batch + off, sizeof(batch) - off,
		    i % 5 == 0 ? "{\"id\":%d,\"cmd\":\"fail\"}\n" :
		    i % 7 == 0 ? "{\"id\":%d,\"cmd\":\"\"}\n" :
		    "{\"id\":%d,\"cmd\":\"echo\",\"args\":{\"n\":%d}}\n", i, i);
	tc_send(f, t, batch, off);
	for (int i = 1; i <= 30; i++) {
		json_t *v = tc_line(f, t);

		assert_int_equal(json_integer_value(json_object_get(v, "id")),
		    i);
		assert_int_equal(json_is_true(json_object_get(v, "ok")),
		    i % 5 != 0 && i % 7 != 0);
		if (i % 5 != 0 && i % 7 != 0)
			assert_int_equal(json_integer_value(json_object_get(
			    json_object_get(v, "result"), "n")), i);
		json_decref(v);
	}
	tc_close(t);
}

static void
test_half_close(void **state)
{
	struct fx *f = *state;
	struct tc *t;

	start(f, 0600);
	t = tc_open(f);
	/* The last request without its newline, then EOF (printf | socat). */
	tc_sends(f, t, "{\"id\":1,\"cmd\":\"echo\"}\n{\"id\":2,\"cmd\":\"echo\"}");
	assert_int_equal(shutdown(t->fd, SHUT_WR), 0);
	tc_expect_line(f, t, "{\"id\":1,\"ok\":true,\"result\":{}}");
	tc_expect_line(f, t, "{\"id\":2,\"ok\":true,\"result\":{}}");
	assert_int_equal(tc_drain_to_eof(f, t), 0);
	tc_close(t);
}

static void
test_subscribe_broadcast(void **state)
{
	struct fx *f = *state;
	struct tc *a, *b;
	json_t *d;

	start(f, 0600);
	a = tc_open(f);
	b = tc_open(f);
	tc_sends(f, a, "{\"id\":1,\"cmd\":\"subscribe\"}\n");
	tc_expect_line(f, a, "{\"id\":1,\"ok\":true,\"result\":"
	    "{\"subscribed\":true}}");
	assert_int_equal(f->calls, 0);	/* ctl's own command */
	/* b has talked to the server, so it is a client by now. */
	tc_sends(f, b, "{\"id\":1,\"cmd\":\"echo\"}\n");
	tc_expect_line(f, b, "{\"id\":1,\"ok\":true,\"result\":{}}");

	d = json_pack("{s:s, s:i}", "name", "alice", "n", 1);
	pp_ctl_broadcast(f->ctl, "peer", d);
	json_decref(d);
	pp_ctl_broadcast(f->ctl, "bare", NULL);
	tc_expect_line(f, a, "{\"event\":\"peer\",\"data\":"
	    "{\"name\":\"alice\",\"n\":1}}");
	tc_expect_line(f, a, "{\"event\":\"bare\",\"data\":null}");

	/* The unsubscribed client's next line is its reply, not an event. */
	tc_sends(f, b, "{\"id\":2,\"cmd\":\"echo\"}\n");
	tc_expect_line(f, b, "{\"id\":2,\"ok\":true,\"result\":{}}");

	/* An event raised by a request precedes that request's reply. */
	tc_sends(f, a, "{\"id\":3,\"cmd\":\"emit\",\"args\":{\"k\":\"v\"}}\n");
	tc_expect_line(f, a, "{\"event\":\"tick\",\"data\":{\"k\":\"v\"}}");
	tc_expect_line(f, a, "{\"id\":3,\"ok\":true,\"result\":\"emitted\"}");
	tc_close(a);
	tc_close(b);
}

static void
test_slow_subscriber_dropped(void **state)
{
	struct fx *f = *state;
	enum { N = 160, SZ = 64 * 1024 };
	char *big = filled(SZ, 'e');
	json_t *d = json_string(big);
	struct tc *slow, *other;
	int got;

	start(f, 0600);
	slow = tc_open(f);
	tc_sends(f, slow, "{\"cmd\":\"subscribe\"}\n");
	tc_expect_line(f, slow, "{\"ok\":true,\"result\":{\"subscribed\":true}}");
	other = tc_open(f);
	tc_sends(f, other, "{\"cmd\":\"subscribe\"}\n");
	tc_expect_line(f, other, "{\"ok\":true,\"result\":{\"subscribed\":true}}");

	/* 10 MiB of events that slow does not read; other reads as they come. */
	for (int i = 0; i < N; i++) {
		char *s;

		pp_ctl_broadcast(f->ctl, "blob", d);
		s = tc_rawline(f, other);
		assert_non_null(s);
		assert_int_equal(strlen(s), SZ + 26);
		free(s);
	}
	got = tc_drain_to_eof(f, slow);
	assert_true(got < N);
	assert_true(slow->eof);

	/* The other subscriber got everything and is still served. */
	tc_sends(f, other, "{\"id\":9,\"cmd\":\"echo\"}\n");
	tc_expect_line(f, other, "{\"id\":9,\"ok\":true,\"result\":{}}");
	json_decref(d);
	free(big);
	tc_close(slow);
	tc_close(other);
}

/*
 * A client that writes requests without reading replies is not dropped: the
 * server stops reading it, so its writes block, and it is served in full once
 * it reads.  Without that the replies it left unread (8 MiB) would go past
 * PP_CTL_OUT_MAX and cost it the connection.
 */
static void
test_backpressure(void **state)
{
	struct fx *f = *state;
	enum { N = 140, SZ = 60 * 1024 };
	char *req[N];
	size_t sent_req = 0, off = 0, sent_bytes = 0;
	int received = 0, reading = 0;
	long long deadline = now_ms() + 4 * WAIT_MS, idle_since = now_ms();
	struct tc *t;

	for (int i = 0; i < N; i++) {
		req[i] = padded_echo(i, SZ);
		req[i][SZ - 1] = '\n';	/* "}}" + newline: still one object */
		req[i][SZ - 2] = '}';
		req[i][SZ - 3] = '}';
		req[i][SZ - 4] = '"';
	}
	start(f, 0600);
	t = tc_open(f);
	while (received < N) {
		int progress = 0;

		assert_true(now_ms() < deadline);
		if (sent_req < N) {
			ssize_t n = send(t->fd, req[sent_req] + off, SZ - off,
			    MSG_NOSIGNAL);

			if (n > 0) {
				progress = 1;
				sent_bytes += (size_t)n;
				off += (size_t)n;
				if (off == SZ) {
					off = 0;
					sent_req++;
				}
			} else {
				assert_int_equal(errno, EAGAIN);
			}
		}
		if (reading) {
			char *nl;

			while (tc_fill(t))
				progress = 1;
			assert_false(t->eof);
			while ((nl = memchr(t->buf, '\n', t->len)) != NULL) {
				size_t n = (size_t)(nl - t->buf) + 1;
				char want[32];
				int w = snprintf(want, sizeof(want),
				    "{\"id\":%d,\"ok\":true", received);

				assert_memory_equal(t->buf, want, (size_t)w);
				memmove(t->buf, nl + 1, t->len - n);
				t->len -= n;
				received++;
			}
		} else if (progress) {
			idle_since = now_ms();
		} else if (now_ms() - idle_since > 300) {
			/* Stalled without reading: the server held back. */
			assert_true(sent_req < N);
			reading = 1;
		}
		pump(f, reading ? t->fd : -1, progress ? 0 : 5);
	}
	assert_true(reading);
	assert_int_equal(sent_bytes, (size_t)N * SZ);
	for (int i = 0; i < N; i++)
		free(req[i]);
	tc_close(t);
}

static void
test_client_limit(void **state)
{
	struct fx *f = *state;
	struct tc *t[PP_CTL_MAX_CLIENTS], *extra;
	long long deadline;

	start(f, 0600);
	for (int i = 0; i < PP_CTL_MAX_CLIENTS; i++) {
		t[i] = tc_open(f);
		tc_sends(f, t[i], "{\"cmd\":\"echo\"}\n");
		tc_expect_line(f, t[i], "{\"ok\":true,\"result\":{}}");
	}
	extra = tc_open(f);
	tc_expect_error(f, extra, "too many control clients (limit 64)");
	assert_int_equal(tc_drain_to_eof(f, extra), 0);
	tc_close(extra);

	/* Room again once one leaves (the server sees its EOF in time). */
	tc_close(t[0]);
	deadline = now_ms() + WAIT_MS;
	for (;;) {
		json_t *v;

		assert_true(now_ms() < deadline);
		extra = tc_open(f);
		tc_sends(f, extra, "{\"id\":1,\"cmd\":\"echo\"}\n");
		v = tc_line(f, extra);
		tc_close(extra);
		if (json_is_true(json_object_get(v, "ok"))) {
			json_decref(v);
			break;
		}
		json_decref(v);
		pump(f, -1, 10);
	}
	for (int i = 1; i < PP_CTL_MAX_CLIENTS; i++)
		tc_close(t[i]);
}

static void
test_mode_and_dir(void **state)
{
	static const unsigned bad[] = { 0, 0644, 0666, 0700, 0777, 0640 };
	struct fx *f = *state;
	struct pp_ctl *c = NULL;
	struct stat st;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(pp_ctl_new(&f->loop, f->path, bad[i], handler,
		    f, &c), PP_EINVAL);
		assert_null(c);
	}
	assert_int_equal(stat(f->rundir, &st), -1);	/* nothing made */

	start(f, 0600);
	assert_int_equal(lstat(f->rundir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	stop(f);
	/* pp_ctl_free took the socket away. */
	assert_int_equal(lstat(f->path, &st), -1);
	assert_int_equal(errno, ENOENT);

	start(f, 0660);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
}

/* A socket file with nobody listening, as a killed agent leaves behind. */
static void
make_stale(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	set_sun(&sa, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
}

static void
test_stale_socket_replaced(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	struct tc *t;
	int fd;

	assert_int_equal(mkdir(f->rundir, 0700), 0);
	make_stale(f->path);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* Nobody answers there (the inode number may well be reused, so the
	 * proof of replacement is that someone answers afterwards). */
	set_sun(&sa, f->path);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), -1);
	assert_int_equal(errno, ECONNREFUSED);
	close(fd);
	start(f, 0600);
	t = tc_open(f);
	tc_sends(f, t, "{\"cmd\":\"echo\"}\n");
	tc_expect_line(f, t, "{\"ok\":true,\"result\":{}}");
	tc_close(t);
}

static void
test_live_socket_conflict(void **state)
{
	struct fx *f = *state;
	struct pp_ctl *second = (struct pp_ctl *)1;
	struct tc *t;

	start(f, 0600);
	assert_int_equal(pp_ctl_new(&f->loop, f->path, 0600, handler, f,
	    &second), PP_ECONFLICT);
	assert_null(second);
	/* The first one still owns and serves the path. */
	t = tc_open(f);
	tc_sends(f, t, "{\"cmd\":\"echo\"}\n");
	tc_expect_line(f, t, "{\"ok\":true,\"result\":{}}");
	tc_close(t);
}

static void
test_not_a_socket_left_alone(void **state)
{
	struct fx *f = *state;
	struct pp_ctl *c = NULL;
	struct stat st;
	FILE *fp;

	assert_int_equal(mkdir(f->rundir, 0700), 0);
	assert_non_null(fp = fopen(f->path, "w"));
	fputs("precious\n", fp);
	fclose(fp);
	assert_int_equal(pp_ctl_new(&f->loop, f->path, 0600, handler, f, &c),
	    -EEXIST);
	assert_null(c);
	assert_int_equal(lstat(f->path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_size, 9);
}

static void
test_exit_from_handler(void **state)
{
	struct fx *f = *state;
	struct stat st;
	struct tc *t, *sub;

	start(f, 0600);
	sub = tc_open(f);
	tc_sends(f, sub, "{\"cmd\":\"subscribe\"}\n");
	tc_expect_line(f, sub, "{\"ok\":true,\"result\":{\"subscribed\":true}}");
	t = tc_open(f);
	/* The server frees itself inside the handler; the requests after it
	 * in the same read are not served. */
	tc_sends(f, t, "{\"id\":1,\"cmd\":\"exit\"}\n{\"id\":2,\"cmd\":\"echo\"}\n");
	assert_int_equal(tc_drain_to_eof(f, t), 0);
	assert_int_equal(tc_drain_to_eof(f, sub), 0);
	assert_null(f->ctl);
	assert_int_equal(f->calls, 1);
	assert_int_equal(lstat(f->path, &st), -1);
	tc_close(t);
	tc_close(sub);
}

/* --- the blocking client ------------------------------------------------- */

struct job {
	const char *path;
	const char *cmd;
	json_t *args;
	int rc;
	json_t *result;
	char err[512];
	uv_async_t done;
};

static void
job_thread(void *arg)
{
	struct job *j = arg;

	j->rc = pp_ctl_call(j->path, j->cmd, j->args, WAIT_MS, &j->result,
	    j->err, sizeof(j->err));
	uv_async_send(&j->done);
}

static void
job_done(uv_async_t *a)
{
	uv_stop(a->loop);
}

/* Runs pp_ctl_call in a thread while the loop serves it here. */
static void
call_served(struct fx *f, struct job *j)
{
	uv_thread_t th;

	j->path = f->path;
	assert_int_equal(uv_async_init(&f->loop, &j->done, job_done), 0);
	assert_int_equal(uv_thread_create(&th, job_thread, j), 0);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_thread_join(&th), 0);
	uv_close((uv_handle_t *)&j->done, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
}

static void
test_call(void **state)
{
	struct fx *f = *state;
	struct job ok = { .cmd = "echo" }, bad = { .cmd = "fail" };
	struct job none = { .cmd = "echo" };
	char *s;

	start(f, 0600);
	ok.args = json_pack("{s:s}", "who", "cli");
	call_served(f, &ok);
	assert_int_equal(ok.rc, 0);
	s = pp_json_dump(ok.result, NULL);
	assert_string_equal(s, "{\"who\":\"cli\"}");
	free(s);
	json_decref(ok.result);
	json_decref(ok.args);

	call_served(f, &none);	/* args NULL: the handler sees {} */
	assert_int_equal(none.rc, 0);
	assert_true(json_is_object(none.result));
	assert_int_equal(json_object_size(none.result), 0);
	json_decref(none.result);

	call_served(f, &bad);
	assert_int_equal(bad.rc, PP_EINVAL);
	assert_null(bad.result);
	assert_string_equal(bad.err, "fail always fails; try echo");
	assert_int_equal(f->calls, 3);
}

static void
test_call_no_agent(void **state)
{
	struct fx *f = *state;
	json_t *r = (json_t *)1;
	char err[512], want[512];

	snprintf(want, sizeof(want), "no agent is listening on %s (is "
	    "`peerpipe gateway` running? set [agent] control or --control)",
	    f->path);
	assert_int_equal(pp_ctl_call(f->path, "status", NULL, 1000, &r, err,
	    sizeof(err)), -ENOENT);
	assert_null(r);
	assert_string_equal(err, want);

	/* A stale socket: refused, same advice. */
	assert_int_equal(mkdir(f->rundir, 0700), 0);
	make_stale(f->path);
	err[0] = '\0';
	assert_int_equal(pp_ctl_call(f->path, "status", NULL, 1000, &r, err,
	    sizeof(err)), -ECONNREFUSED);
	assert_string_equal(err, want);
}

static void
test_call_timeout(void **state)
{
	struct fx *f = *state;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	json_t *r;
	char err[512];
	long long t0;
	int fd;

	/* Listening but never answering: the connect succeeds through the
	 * backlog and the reply never comes. */
	assert_int_equal(mkdir(f->rundir, 0700), 0);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	set_sun(&sa, f->path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	t0 = now_ms();
	assert_int_equal(pp_ctl_call(f->path, "status", NULL, 200, &r, err,
	    sizeof(err)), -ETIMEDOUT);
	assert_true(now_ms() - t0 >= 200);
	assert_true(now_ms() - t0 < WAIT_MS);
	assert_non_null(strstr(err, "did not answer within 200 ms"));
	close(fd);
}

/*
 * Peer credentials, as another user (needs root to become one).  The child
 * calls and exits 0 when it saw what it expected.
 */
static void
as_nobody(struct fx *f, const gid_t *groups, size_t ngroups, int want_rc,
    const char *want_err)
{
	pid_t pid;
	int status;
	long long deadline = now_ms() + WAIT_MS;

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		json_t *r = NULL;
		char err[512] = "";
		int rc;

		if (setgroups(ngroups, groups) != 0 || setgid(65534) != 0 ||
		    setuid(65534) != 0)
			_exit(2);
		rc = pp_ctl_call(f->path, "echo", NULL, WAIT_MS, &r, err,
		    sizeof(err));
		json_decref(r);
		if (rc != want_rc || strstr(err, want_err) == NULL) {
			fprintf(stderr, "as nobody: rc %d, err \"%s\"\n", rc,
			    err);
			_exit(1);
		}
		_exit(0);
	}
	while (waitpid(pid, &status, WNOHANG) == 0) {
		assert_true(now_ms() < deadline);
		pump(f, -1, 10);
	}
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void
test_peer_credentials(void **state)
{
	struct fx *f = *state;
	struct stat st;
	gid_t sock_group;

	if (geteuid() != 0)
		skip();
	/* Let another user reach the socket at all. */
	assert_int_equal(chmod(f->dir, 0711), 0);

	start(f, 0600);
	assert_int_equal(chmod(f->rundir, 0711), 0);
	/* The kernel's gate: mode 0600 keeps nobody out. */
	as_nobody(f, NULL, 0, -EACCES, "permission denied on ");
	/* Ours, when the file's mode has been widened behind our back. */
	assert_int_equal(chmod(f->path, 0666), 0);
	as_nobody(f, NULL, 0, PP_EINVAL,
	    "uid 65534 (pid ");
	assert_int_equal(f->calls, 0);
	stop(f);

	/* 0660: members of the socket's group are welcome, also through a
	 * supplementary group; others are not. */
	start(f, 0660);
	assert_int_equal(lstat(f->path, &st), 0);
	sock_group = st.st_gid;
	as_nobody(f, &sock_group, 1, 0, "");
	assert_int_equal(f->calls, 1);
	assert_int_equal(chmod(f->path, 0666), 0);
	as_nobody(f, NULL, 0, PP_EINVAL, "may not use this control socket");
	assert_int_equal(f->calls, 1);
}

/* The commands that admit devices are the agent's own user's. */
static void
test_owner_only(void **state)
{
	json_t *none = json_object(), *rev = json_pack("{s:s}", "revoke", "x"),
	    *other = json_pack("{s:s}", "group", "staff");

	(void)state;
	assert_int_equal(pp__ctl_owner_only("invite", none), 1);
	assert_int_equal(pp__ctl_owner_only("invite", other), 1);
	assert_int_equal(pp__ctl_owner_only("invite", NULL), 1);
	assert_int_equal(pp__ctl_owner_only("invites", rev), 1);
	assert_int_equal(pp__ctl_owner_only("invites", none), 0);
	assert_int_equal(pp__ctl_owner_only("invites", NULL), 0);
	assert_int_equal(pp__ctl_owner_only("status", rev), 0);
	assert_int_equal(pp__ctl_owner_only("invitex", none), 0);
	json_decref(none);
	json_decref(rev);
	json_decref(other);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines_split),
		cmocka_unit_test(test_lines_byte_at_a_time),
		cmocka_unit_test(test_lines_limit),
		cmocka_unit_test(test_lines_finish_and_stop),
		cmocka_unit_test(test_parse_request),
		cmocka_unit_test(test_owner_only),
		cmocka_unit_test(test_parse_reply),
		T(test_round_trip_with_id),
		T(test_handler_error),
		T(test_garbage_then_valid),
		T(test_oversized_line),
		T(test_pipelined),
		T(test_half_close),
		T(test_subscribe_broadcast),
		T(test_slow_subscriber_dropped),
		T(test_backpressure),
		T(test_client_limit),
		T(test_mode_and_dir),
		T(test_stale_socket_replaced),
		T(test_live_socket_conflict),
		T(test_not_a_socket_left_alone),
		T(test_exit_from_handler),
		T(test_call),
		T(test_call_no_agent),
		T(test_call_timeout),
		T(test_peer_credentials),
	};
#undef T

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
