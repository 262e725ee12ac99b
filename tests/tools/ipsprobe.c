/*
 * ipsprobe: drives lib/ips for the integration tests (tests/integration/
 * test_ips.py) and for trying the IPS by hand.  It starts the IPS (netfilter
 * rules, Suricata, eve socket, self-test) with a state dir of its own and
 * prints one JSON object per line on stdout:
 *
 *   {"event":"state","state":"ready","mode":"inline","pid":123,"reason":"..."}
 *   {"event":"alert"|"drop","sid":9000001,"action":"blocked","src_ip":...,
 *    "src_port":...,"dest_ip":...,"dest_port":...,"proto":6,"flow_id":...}
 *   {"event":"forward","port":40123,"target":"127.0.0.1:8080"}
 *   {"event":"reload","status":0,"reason":"..."}
 *   {"event":"exit"}
 *
 * --forward LPORT:HOST:PORT makes it a tiny forwarder: every connection to
 * 127.0.0.1:LPORT (0: any free port, printed) is joined to a MARKED
 * connection to HOST:PORT, so that tests can push traffic through the inline
 * path.  SIGHUP reloads the rules, SIGUSR1 reruns the self-test, SIGTERM and
 * SIGINT clean everything up (rules, Suricata, sockets) and exit 0.
 */
#include "base/error.h"
#include "base/log.h"
#include "ips/ips.h"

#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_HIGH_WATER (256u * 1024u)
#define FWD_CHUNK (16u * 1024u)

static struct {
	uv_loop_t *loop;
	struct pp_ips *ips;
	uv_signal_t sig[4];
	uv_tcp_t fwd_listener;
	int fwd_on;
	struct sockaddr_storage target;
	char target_str[80];
	int exiting;
} g;

static void
emit(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);

	if (s) {
		printf("%s\n", s);
		fflush(stdout);
		free(s);
	}
	json_decref(o);
}

static const char *
mode_name(enum pp_ips_mode m)
{
	return m == PP_IPS_INLINE ? "inline" : m == PP_IPS_IDS ? "ids" : "auto";
}

static void
on_state(enum pp_ips_state st, const char *reason, void *ctx)
{
	struct pp_suri_stats ss;

	(void)ctx;
	memset(&ss, 0, sizeof(ss));
	if (g.ips && pp_ips_suricata(g.ips))
		pp_suri_get_stats(pp_ips_suricata(g.ips), &ss);
	emit(json_pack("{s:s,s:s,s:s,s:i,s:s,s:I,s:I,s:i}", "event", "state",
	    "state", pp_ips_state_name(st), "mode",
	    g.ips ? mode_name(pp_ips_get_mode(g.ips)) : "auto", "pid", ss.pid,
	    "reason", reason, "rules_loaded", (json_int_t)ss.rules_loaded,
	    "rules_failed", (json_int_t)ss.rules_failed, "ready_ms",
	    (int)ss.ready_ms));
}

static void
on_event(const struct pp_eve_event *ev, void *ctx)
{
	(void)ctx;
	emit(json_pack("{s:s,s:s,s:I,s:s,s:i,s:s,s:i,s:i,s:i,s:I,s:s,s:s,"
	    "s:i,s:s,s:i}",
	    "event", ev->type == PP_EVE_ALERT ? "alert" : "drop",
	    "timestamp", ev->timestamp,
	    "flow_id", (json_int_t)ev->flow_id,
	    "src_ip", ev->src_ip, "src_port", ev->src_port,
	    "dest_ip", ev->dest_ip, "dest_port", ev->dest_port,
	    "proto", ev->proto, "has_alert", ev->has_alert,
	    "sid", (json_int_t)ev->signature_id,
	    "signature", ev->signature, "category", ev->category,
	    "severity", ev->severity,
	    "action", ev->action == PP_EVE_BLOCKED ? "blocked" : "allowed",
	    "to_server", ev->to_server));
}

static void
on_reload(int status, const char *reason, void *ctx)
{
	(void)ctx;
	emit(json_pack("{s:s,s:i,s:s}", "event", "reload", "status", status,
	    "reason", reason));
}

/* ---- the marked forwarder ---- */

struct side {
	struct pair *p;
	uv_tcp_t tcp;
	uv_shutdown_t sreq;
	int eof, live, reading;
};

struct pair {
	struct side a, b;	/* a: the test's client, b: marked, to target */
	uv_connect_t creq;
	struct pair *prev, *next;	/* g.pairs */
	int closing;
	unsigned handles;
};

static struct pair *pairs;

struct wreq {
	uv_write_t req;
	struct side *to;
	char data[];
};

static void side_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static struct side *
other(struct side *s)
{
	return s == &s->p->a ? &s->p->b : &s->p->a;
}

static void
on_side_closed(uv_handle_t *h)
{
	struct side *s = h->data;
	struct pair *p = s->p;

	if (--p->handles > 0)
		return;
	if (p->prev)
		p->prev->next = p->next;
	else
		pairs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	free(p);
}

static void
pair_close(struct pair *p)
{
	if (p->closing)
		return;
	p->closing = 1;
	if (p->a.live)
		uv_close((uv_handle_t *)&p->a.tcp, on_side_closed);
	if (p->b.live)
		uv_close((uv_handle_t *)&p->b.tcp, on_side_closed);
}

static void
alloc_buf(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	buf->base = malloc(FWD_CHUNK);
	buf->len = buf->base ? FWD_CHUNK : 0;
}

static void
start_reading(struct side *s)
{
	if (!s->reading && !s->eof && !s->p->closing &&
	    uv_read_start((uv_stream_t *)&s->tcp, alloc_buf, side_read) == 0)
		s->reading = 1;
}

static void
on_write(uv_write_t *req, int status)
{
	struct wreq *w = (struct wreq *)req;
	struct side *to = w->to;
	struct side *from = other(to);

	free(w);
	if (to->p->closing)
		return;
	if (status < 0) {
		pair_close(to->p);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&to->tcp) <
	    FWD_HIGH_WATER / 2)
		start_reading(from);
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
	struct side *s = req->data;

	(void)status;
	if (s->eof && other(s)->eof)
		pair_close(s->p);
}

static void
side_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct side *s = st->data;
	struct side *to = other(s);
	struct wreq *w;
	uv_buf_t b;

	if (n < 0) {
		free(buf->base);
		uv_read_stop(st);
		s->reading = 0;
		if (n != UV_EOF) {
			pair_close(s->p);
			return;
		}
		s->eof = 1;
		to->sreq.data = to;
		if (uv_shutdown(&to->sreq, (uv_stream_t *)&to->tcp,
		    on_shutdown) != 0)
			pair_close(s->p);
		return;
	}
	if (n == 0) {
		free(buf->base);
		return;
	}
	if ((w = malloc(sizeof(*w) + (size_t)n)) == NULL) {
		free(buf->base);
		pair_close(s->p);
		return;
	}
	memcpy(w->data, buf->base, (size_t)n);
	free(buf->base);
	w->to = to;
	b = uv_buf_init(w->data, (unsigned)n);
	if (uv_write(&w->req, (uv_stream_t *)&to->tcp, &b, 1, on_write) != 0) {
		free(w);
		pair_close(s->p);
		return;
	}
	if (uv_stream_get_write_queue_size((uv_stream_t *)&to->tcp) >
	    FWD_HIGH_WATER) {
		uv_read_stop(st);
		s->reading = 0;
	}
}

static void
on_target_connect(uv_connect_t *req, int status)
{
	struct pair *p = req->data;

	if (p->closing)
		return;
	if (status < 0) {
		pair_close(p);
		return;
	}
	start_reading(&p->a);
	start_reading(&p->b);
}

static void
on_fwd_accept(uv_stream_t *server, int status)
{
	struct pair *p;
	uv_os_fd_t fd;
	int rc;

	if (status < 0 || g.exiting || (p = calloc(1, sizeof(*p))) == NULL)
		return;
	p->a.p = p->b.p = p;
	if ((p->next = pairs) != NULL)
		pairs->prev = p;
	pairs = p;
	uv_tcp_init(g.loop, &p->a.tcp);
	p->a.tcp.data = &p->a;
	p->a.live = 1;
	p->handles = 1;
	if (uv_accept(server, (uv_stream_t *)&p->a.tcp) != 0) {
		pair_close(p);
		return;
	}
	if (uv_tcp_init_ex(g.loop, &p->b.tcp, g.target.ss_family) != 0) {
		pair_close(p);
		return;
	}
	p->b.tcp.data = &p->b;
	p->b.live = 1;
	p->handles++;
	/* The one line the agent will have: mark before connect. */
	if ((rc = uv_fileno((uv_handle_t *)&p->b.tcp, &fd)) != 0 ||
	    (rc = pp_ips_mark_socket(g.ips, fd)) != 0) {
		pp_err("ipsprobe", "SO_MARK: %s", pp_strerror(rc));
		pair_close(p);
		return;
	}
	p->creq.data = p;
	if (uv_tcp_connect(&p->creq, &p->b.tcp, (struct sockaddr *)&g.target,
	    on_target_connect) != 0)
		pair_close(p);
}

static int
start_forward(const char *spec)
{
	char host[64];
	unsigned lport, tport;
	struct sockaddr_in sin;
	struct sockaddr_storage ss;
	int len = sizeof(ss), rc;

	if (sscanf(spec, "%u:%63[^:]:%u", &lport, host, &tport) != 3 ||
	    lport > 65535 || tport == 0 || tport > 65535) {
		fprintf(stderr, "ipsprobe: --forward LPORT:HOST:PORT\n");
		return -1;
	}
	memset(&g.target, 0, sizeof(g.target));
	if (uv_ip4_addr(host, (int)tport, (struct sockaddr_in *)&g.target) != 0 &&
	    uv_ip6_addr(host, (int)tport, (struct sockaddr_in6 *)&g.target) != 0) {
		fprintf(stderr, "ipsprobe: %s is not an IP address\n", host);
		return -1;
	}
	snprintf(g.target_str, sizeof(g.target_str), "%s:%u", host, tport);
	uv_tcp_init(g.loop, &g.fwd_listener);
	g.fwd_on = 1;
	uv_ip4_addr("127.0.0.1", (int)lport, &sin);
	if ((rc = uv_tcp_bind(&g.fwd_listener, (struct sockaddr *)&sin, 0)) != 0 ||
	    (rc = uv_listen((uv_stream_t *)&g.fwd_listener, 64,
	    on_fwd_accept)) != 0 ||
	    (rc = uv_tcp_getsockname(&g.fwd_listener, (struct sockaddr *)&ss,
	    &len)) != 0) {
		fprintf(stderr, "ipsprobe: forward listener: %s\n",
		    uv_strerror(rc));
		return -1;
	}
	emit(json_pack("{s:s,s:i,s:s}", "event", "forward", "port",
	    ntohs(((struct sockaddr_in *)&ss)->sin_port), "target",
	    g.target_str));
	return 0;
}

/* ---- signals and main ---- */

static void
on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	if (signum == SIGHUP) {
		int rc = pp_ips_reload(g.ips, on_reload, NULL);

		if (rc != 0)
			emit(json_pack("{s:s,s:i,s:s}", "event", "reload",
			    "status", rc, "reason", pp_strerror(rc)));
		return;
	}
	if (signum == SIGUSR1) {
		pp_ips_selftest(g.ips);
		return;
	}
	if (g.exiting)
		return;
	g.exiting = 1;
	pp_ips_free(g.ips);
	g.ips = NULL;
	for (int i = 0; i < 4; i++)
		uv_close((uv_handle_t *)&g.sig[i], NULL);
	if (g.fwd_on)
		uv_close((uv_handle_t *)&g.fwd_listener, NULL);
	for (struct pair *p = pairs; p; p = p->next)
		pair_close(p);
}

static int
parse_service(const char *spec, struct pp_suri_service *s)
{
	char addr[64], kind[16] = "";
	unsigned port;
	int n;

	memset(s, 0, sizeof(*s));
	/* ADDR:PORT[:KIND], IPv6 as [ADDR]:PORT[:KIND] */
	if (spec[0] == '[')
		n = sscanf(spec, "[%63[^]]]:%u:%15s", addr, &port, kind);
	else
		n = sscanf(spec, "%63[^:]:%u:%15s", addr, &port, kind);
	if (n < 2 || port == 0 || port > 65535 || strlen(addr) >= sizeof(s->addr))
		return -1;
	memcpy(s->addr, addr, strlen(addr) + 1);
	s->port = (uint16_t)port;
	s->kind = strcmp(kind, "http") == 0 ? PP_SURI_HTTP :
	    strcmp(kind, "sql") == 0 ? PP_SURI_SQL :
	    strcmp(kind, "ssh") == 0 ? PP_SURI_SSH :
	    strcmp(kind, "dns") == 0 ? PP_SURI_DNS :
	    strcmp(kind, "smtp") == 0 ? PP_SURI_SMTP : PP_SURI_GENERIC;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: ipsprobe --instance NAME --state-dir DIR --rules FILE "
	    "--queue N\n"
	    "  [--mark HEX] [--mode auto|inline|ids] [--iface IF] [--fail-open]\n"
	    "  [--et-dir DIR] [--et-drop-priority N] [--service ADDR:PORT[:kind]]...\n"
	    "  [--forward LPORT:HOST:PORT] [--no-selftest] [--ready-timeout S]\n"
	    "  [--suricata PATH] [--log-level LEVEL] [--restart-delay MS]\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "instance", 1, NULL, 'n' }, { "state-dir", 1, NULL, 'd' },
		{ "rules", 1, NULL, 'r' }, { "queue", 1, NULL, 'q' },
		{ "mark", 1, NULL, 'm' }, { "mode", 1, NULL, 'M' },
		{ "iface", 1, NULL, 'i' }, { "fail-open", 0, NULL, 'F' },
		{ "et-dir", 1, NULL, 'e' }, { "et-drop-priority", 1, NULL, 'p' },
		{ "service", 1, NULL, 's' }, { "forward", 1, NULL, 'f' },
		{ "no-selftest", 0, NULL, 'N' }, { "ready-timeout", 1, NULL, 't' },
		{ "suricata", 1, NULL, 'S' }, { "log-level", 1, NULL, 'l' },
		{ "restart-delay", 1, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	static struct pp_suri_service services[64];
	struct pp_ips_config cfg;
	struct pp_ips_ops ops = { on_state, on_event };
	const char *forward = NULL;
	enum pp_log_level lvl;
	char err[512];
	int c, rc;
	static const int sigs[4] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1 };

	memset(&cfg, 0, sizeof(cfg));
	cfg.et_drop_priority = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n': cfg.instance = optarg; break;
		case 'd': cfg.state_dir = optarg; break;
		case 'r': cfg.rules_file = optarg; break;
		case 'q': cfg.queue_num = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'm': cfg.mark = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'M':
			cfg.mode = strcmp(optarg, "inline") == 0 ? PP_IPS_INLINE :
			    strcmp(optarg, "ids") == 0 ? PP_IPS_IDS : PP_IPS_AUTO;
			break;
		case 'i': cfg.ids_iface = optarg; break;
		case 'F': cfg.fail_open = 1; break;
		case 'e': cfg.et_dir = optarg; break;
		case 'p': cfg.et_drop_priority = atoi(optarg); break;
		case 's':
			if (cfg.nservices == 64 ||
			    parse_service(optarg, &services[cfg.nservices]) != 0) {
				fprintf(stderr, "ipsprobe: bad --service %s\n",
				    optarg);
				return 2;
			}
			cfg.nservices++;
			break;
		case 'f': forward = optarg; break;
		case 'N': cfg.no_selftest = 1; break;
		case 't': cfg.ready_timeout_ms = (unsigned)atoi(optarg) * 1000u; break;
		case 'S': cfg.suricata = optarg; break;
		case 'R': cfg.restart_min_ms = (unsigned)atoi(optarg); break;
		case 'l':
			if (pp_log_parse_level(optarg, &lvl) == 0)
				pp_log_set_level(lvl);
			break;
		default: usage(); return 2;
		}
	}
	if (!cfg.instance || !cfg.state_dir || !cfg.rules_file) {
		usage();
		return 2;
	}
	cfg.services = services;
	g.loop = uv_default_loop();
	if ((rc = pp_ips_new(g.loop, &cfg, &ops, NULL, &g.ips, err,
	    sizeof(err))) != 0) {
		fprintf(stderr, "ipsprobe: %s\n", err);
		return 2;
	}
	for (int i = 0; i < 4; i++) {
		uv_signal_init(g.loop, &g.sig[i]);
		uv_signal_start(&g.sig[i], on_signal, sigs[i]);
	}
	if ((rc = pp_ips_start(g.ips, err, sizeof(err))) != 0) {
		fprintf(stderr, "ipsprobe: %s\n", err);
		emit(json_pack("{s:s,s:s}", "event", "error", "reason", err));
		on_signal(&g.sig[0], SIGTERM);
		uv_run(g.loop, UV_RUN_DEFAULT);
		uv_loop_close(g.loop);
		return 1;
	}
	if (forward && start_forward(forward) != 0) {
		on_signal(&g.sig[0], SIGTERM);
		uv_run(g.loop, UV_RUN_DEFAULT);
		return 1;
	}
	/* Returns once SIGTERM has closed everything. */
	uv_run(g.loop, UV_RUN_DEFAULT);
	emit(json_pack("{s:s}", "event", "exit"));
	uv_loop_close(g.loop);
	return 0;
}
