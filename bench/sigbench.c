/*
 * sigbench: load client for peerpipe-server (signaling protocol v1).
 *
 * N WebSocket-over-TLS clients, all on one libuv loop driven through the
 * libwebsockets client API, paired in rooms of two.  The run goes through
 * fixed phases and prints figures (it is a benchmark, not a test):
 *
 *   connect  open N connections, at most --connect-batch TLS handshakes in
 *            flight; client 2p sends NEW_ROOM, client 2p+1 JOIN_ROOMs the
 *            uuid from ROOM_CREATED.
 *   idle     hold all of them quiet for --idle seconds, then read the
 *            server's VmRSS (--server-pid) against the 0-client baseline.
 *   relay    for each rate in --rate, the pairs send SDP_NEW_STATE offers to
 *            each other at that aggregate rate for --duration seconds (after
 *            a --warmup).  The offer carries CLOCK_MONOTONIC stamps taken
 *            when the pacer scheduled it and when it was handed to lws; the
 *            peer computes one-way latency sender -> server -> receiver on
 *            the same clock.
 *   close    close every connection and read the server's RSS once more.
 *
 * One thread (the uv loop) owns every structure here.  The client's own CPU
 * and loop stalls are reported next to the latency so a client-bound run
 * is visible as such.
 */
#include "base/log.h"

#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define SUB "sigbench"

#define TXQ_MAX		16	/* offers one client may have waiting for WRITEABLE */
#define MAX_RATES	8
#define MAX_RETRIES	3	/* connection attempts per client */
#define TX_MAX		(64 * 1024)
#define RX_MAX		(64 * 1024)
#define DRAIN_MS	3000	/* wait for in-flight offers after a relay phase */
#define TICK_MS		1

enum cstate {
	C_NEW,		/* not yet (re)tried */
	C_CONNECTING,
	C_OPEN,
	C_DEAD,		/* failed for good or closed */
};

enum ctl {
	CTL_NONE,
	CTL_NEW_ROOM,
	CTL_JOIN_ROOM,
};

struct client {
	struct lws *wsi;
	uint32_t idx;
	uint8_t state;
	uint8_t ctl;		/* control request waiting for WRITEABLE */
	uint8_t tries;
	uint8_t closing;
	uint8_t txq_head, txq_n;
	uint32_t outstanding;	/* requests not yet answered */
	uint64_t t_connect;
	uint64_t txq[TXQ_MAX];	/* scheduled send time of each queued offer */
	/*
	 * Write times of offers awaiting SUCCESS: the server answers a
	 * connection's requests in order.  Once the ring is full, further
	 * offers go untimed until it drains (ack_skip), to keep FIFO matching.
	 */
	uint64_t ackq[TXQ_MAX];
	uint8_t ack_head, ack_n;
	uint16_t ack_skip;
	char *rx;		/* reassembly of a fragmented message */
	size_t rx_len;
};

struct pair {
	char uuid[40];
	uint8_t created, joined, dead;
};

struct lat {
	uint64_t *v;
	size_t n, cap;
};

struct phase {
	unsigned rate;
	uint64_t t_start, t_measure, t_end;	/* warmup, window, end (ns) */
	uint64_t scheduled;	/* all offers the pacer emitted this phase */
	uint64_t written;	/* all offers handed to lws this phase */
	uint64_t received;	/* all SDP_STATE of this phase */
	uint64_t w_written;	/* same, restricted to the measured window */
	uint64_t w_received;
	uint64_t backlog_drops;	/* pacer found the sender's queue full */
	uint64_t acks, failed;
	uint64_t max_gap_ns;	/* longest pause between two loop ticks */
	struct lat lat_write;	/* handed to lws -> received by peer */
	struct lat lat_sched;	/* scheduled by pacer -> received by peer */
	struct lat lat_ack;	/* handed to lws -> SUCCESS back (round trip) */
	struct lat lat_queue;	/* scheduled by pacer -> handed to lws (client side) */
	double cli_cpu, srv_cpu;	/* share of one core over the window */
	double other_cpu;	/* every other process on the machine, in cores */
	long srv_rss_kb;
};

enum stage {
	S_BASELINE,
	S_CONNECT,
	S_IDLE,
	S_RELAY,
	S_DRAIN,
	S_CLOSE,
	S_SETTLE,
	S_DONE,
};

struct opts {
	char host[256];
	char path[256];
	int port;
	unsigned clients;
	unsigned rates[MAX_RATES];
	unsigned nrates;
	double duration, warmup, idle;
	unsigned connect_batch;
	double connect_timeout;
	unsigned sdp_bytes;
	int server_pid;
	const char *protocol;
	int lws_log;
};

static struct opts o;
static uv_loop_t loop;
static uv_timer_t tick_timer;
static uv_signal_t sigint_h, sigterm_h;
static struct lws_context *ctx;
static struct client *clients;
static struct pair *pairs;
static unsigned npairs;
static unsigned *active;	/* indices of joined pairs */
static unsigned nactive;
static enum stage stage;
static uint64_t stage_deadline;
static uint64_t last_tick;
static int interrupted;

/* connect phase */
static unsigned next_fresh, inflight, n_open, n_failed_for_good, n_dropped;
static unsigned n_joined, n_pairs_failed;
static uint64_t n_conn_errors;
static unsigned *retryq;
static unsigned retry_n;
static struct lat lat_handshake;
static uint64_t t_connect_start, t_connect_end;

/* relay phase */
static struct phase phases[MAX_RATES];
static unsigned cur;
static uint64_t pace_seq, offer_seq;

/* errors by reason, for the report */
#define MAX_REASONS 8
static struct {
	char reason[64];
	uint64_t n;
} reasons[MAX_REASONS];
static uint64_t failed_total, unexpected_total;

/* resource samples */
static long srv_rss0_kb = -1, srv_hwm0_kb = -1, srv_rss_idle_kb = -1;
static long srv_rss_after_kb = -1, srv_hwm_kb = -1;
static long cli_rss0_kb = -1, cli_rss_idle_kb = -1;
static unsigned held_at_idle;
static double srv_cpu_t0 = -1, srv_cpu_connect = -1, srv_cpu_idle = -1;
static uint64_t t_idle_start;

static char pad_json[TX_MAX];	/* JSON-escaped SDP filler */
static unsigned char txbuf[LWS_PRE + TX_MAX];

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
lat_add(struct lat *l, uint64_t v)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 4096;
		uint64_t *nv = realloc(l->v, ncap * sizeof(*nv));

		if (nv == NULL)
			return;	/* drop the sample rather than the run */
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n++] = v;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in milliseconds; sorts the samples. */
static double
lat_pct_ms(struct lat *l, double p)
{
	size_t k;

	if (l->n == 0)
		return -1;
	qsort(l->v, l->n, sizeof(l->v[0]), cmp_u64);
	k = (size_t)(p / 100.0 * (double)l->n + 0.999999);
	if (k == 0)
		k = 1;
	if (k > l->n)
		k = l->n;
	return (double)l->v[k - 1] / 1e6;
}

/* VmRSS / VmHWM in kB of pid (0 = ourselves); -1 if unreadable. */
static long
proc_status_kb(int pid, const char *key)
{
	char path[64], line[256];
	size_t klen = strlen(key);
	long v = -1;
	FILE *f;

	if (pid > 0)
		snprintf(path, sizeof(path), "/proc/%d/status", pid);
	else
		snprintf(path, sizeof(path), "/proc/self/status");
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtol(line + klen + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

/* utime + stime of pid in seconds; -1 if unreadable. */
static double
proc_cpu_s(int pid)
{
	char path[64], buf[1024];
	unsigned long long ut, st;
	const char *p;
	size_t n;
	FILE *f;

	if (pid <= 0) {
		struct rusage ru;

		getrusage(RUSAGE_SELF, &ru);
		return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	}
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: skip past the last ')' */
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	/* fields 3..13 then utime (14) and stime (15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy CPU time of the whole machine (all cores) in seconds; -1 if unknown. */
static double
machine_busy_s(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -1;
	/* cpu  user nice system idle iowait irq softirq steal */
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n != 8)
		return -1;
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
	    (double)sysconf(_SC_CLK_TCK);
}

static void
note_reason(const char *r)
{
	failed_total++;
	for (unsigned i = 0; i < MAX_REASONS; i++) {
		if (reasons[i].n && strcmp(reasons[i].reason, r) == 0) {
			reasons[i].n++;
			return;
		}
		if (reasons[i].n == 0) {
			snprintf(reasons[i].reason, sizeof(reasons[i].reason), "%s", r);
			reasons[i].n = 1;
			return;
		}
	}
}

static void
user_name(char *buf, size_t len, unsigned idx)
{
	snprintf(buf, len, "bench-%c-%u", (idx & 1) ? 'b' : 'a', idx / 2);
}

/* ---- connections ---- */

static void
pair_dead(unsigned p)
{
	if (!pairs[p].dead) {
		pairs[p].dead = 1;
		if (!pairs[p].joined)
			n_pairs_failed++;
	}
}

/*
 * No lws keepalive on our side: in lws 4.1 each connection's validity timer
 * sits in one sorted list per thread and every (re)arm walks it, O(clients).
 * The runs are far shorter than any ping interval anyway.
 */
static const lws_retry_bo_t no_keepalive = {
	.secs_since_valid_ping = 0,
	.secs_since_valid_hangup = 0,
};

static void
start_connect(struct client *c)
{
	struct lws_client_connect_info i;
	char hostport[300];

	memset(&i, 0, sizeof(i));
	snprintf(hostport, sizeof(hostport), "%s:%d", o.host, o.port);
	i.context = ctx;
	i.address = o.host;
	i.port = o.port;
	i.ssl_connection = LCCSCF_USE_SSL | LCCSCF_ALLOW_SELFSIGNED |
	    LCCSCF_SKIP_SERVER_CERT_HOSTNAME_CHECK | LCCSCF_ALLOW_INSECURE |
	    LCCSCF_ALLOW_EXPIRED;
	i.path = o.path;
	i.host = hostport;
	i.origin = hostport;
	i.protocol = o.protocol;
	i.alpn = "http/1.1";
	i.ietf_version_or_minus_one = -1;
	i.userdata = c;
	i.pwsi = &c->wsi;
	i.retry_and_idle_policy = &no_keepalive;

	c->state = C_CONNECTING;
	c->tries++;
	c->t_connect = now_ns();
	inflight++;
	if (lws_client_connect_via_info(&i) == NULL && c->state == C_CONNECTING) {
		/* failed synchronously without reaching our callback */
		c->state = C_NEW;
		c->wsi = NULL;
		inflight--;
		n_conn_errors++;
		if (c->tries < MAX_RETRIES) {
			retryq[retry_n++] = c->idx;
		} else {
			c->state = C_DEAD;
			n_failed_for_good++;
			pair_dead(c->idx / 2);
		}
	}
}

static void
pump_connects(void)
{
	while (inflight < o.connect_batch && !interrupted) {
		unsigned idx;

		if (next_fresh < o.clients)
			idx = next_fresh++;
		else if (retry_n > 0)
			idx = retryq[--retry_n];
		else
			break;
		start_connect(&clients[idx]);
	}
}

static void
want_write(struct client *c)
{
	if (c->wsi != NULL && c->state == C_OPEN)
		lws_callback_on_writable(c->wsi);
}

static void
on_established(struct client *c)
{
	unsigned p = c->idx / 2;

	inflight--;
	n_open++;
	c->state = C_OPEN;
	lat_add(&lat_handshake, now_ns() - c->t_connect);
	if ((c->idx & 1) == 0) {
		c->ctl = CTL_NEW_ROOM;
		want_write(c);
	} else if (pairs[p].created) {
		c->ctl = CTL_JOIN_ROOM;
		want_write(c);
	}
	/* else: JOIN_ROOM goes out when the creator's ROOM_CREATED arrives */
}

static void
on_gone(struct client *c, const char *why)
{
	unsigned p = c->idx / 2;

	if (c->state == C_CONNECTING) {
		inflight--;
		n_conn_errors++;
		if (c->tries < MAX_RETRIES && !interrupted && stage == S_CONNECT) {
			if (n_conn_errors <= 5)
				pp_warn(SUB, "client %u: connect failed (%s), retrying",
				    c->idx, why ? why : "?");
			c->state = C_NEW;
			c->wsi = NULL;
			retryq[retry_n++] = c->idx;
			return;
		}
		pp_warn(SUB, "client %u: connect failed (%s), giving up", c->idx,
		    why ? why : "?");
		n_failed_for_good++;
		pair_dead(p);
	} else if (c->state == C_OPEN) {
		n_open--;
		if (!c->closing) {
			n_dropped++;
			if (n_dropped <= 5)
				pp_warn(SUB, "client %u: connection closed by server (%s)",
				    c->idx, why ? why : "?");
			pair_dead(p);
		}
	}
	c->state = C_DEAD;
	c->wsi = NULL;
	free(c->rx);
	c->rx = NULL;
	c->rx_len = 0;
}

/* ---- messages ---- */

static int
write_ctl(struct client *c)
{
	char me[64], room[64];
	unsigned p = c->idx / 2;
	int n;

	user_name(me, sizeof(me), c->idx);
	snprintf(room, sizeof(room), "bench-room-%u", p);
	if (c->ctl == CTL_NEW_ROOM)
		n = snprintf((char *)txbuf + LWS_PRE, TX_MAX,
		    "{\"type\":\"NEW_ROOM\",\"room_name\":\"%s\",\"user_name\":\"%s\"}",
		    room, me);
	else
		n = snprintf((char *)txbuf + LWS_PRE, TX_MAX,
		    "{\"type\":\"JOIN_ROOM\",\"room_uuid\":\"%s\",\"room_name\":\"%s\","
		    "\"user_name\":\"%s\"}", pairs[p].uuid, room, me);
	c->ctl = CTL_NONE;
	c->outstanding++;
	return lws_write(c->wsi, txbuf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n;
}

static int
write_offer(struct client *c)
{
	char me[64], peer[64], room[64];
	unsigned p = c->idx / 2;
	uint64_t sched, wr;
	struct phase *ph = &phases[cur];
	int n;

	sched = c->txq[c->txq_head];
	c->txq_head = (uint8_t)((c->txq_head + 1) % TXQ_MAX);
	c->txq_n--;
	user_name(me, sizeof(me), c->idx);
	user_name(peer, sizeof(peer), c->idx ^ 1u);
	snprintf(room, sizeof(room), "bench-room-%u", p);
	wr = now_ns();
	n = snprintf((char *)txbuf + LWS_PRE, TX_MAX,
	    "{\"type\":\"SDP_NEW_STATE\",\"room_uuid\":\"%s\",\"room_name\":\"%s\","
	    "\"user_name\":\"%s\",\"target_user\":\"%s\",\"sdp_type\":\"offer\","
	    "\"sdp_data\":\"v=0\\r\\no=- %" PRIu64 " 2 IN IP4 127.0.0.1\\r\\n"
	    "a=x-bench:%u:%" PRIu64 ":%" PRIu64 "\\r\\n%s\"}",
	    pairs[p].uuid, room, me, peer, offer_seq++, cur, sched, wr, pad_json);
	if (n < 0 || n >= TX_MAX)
		return 1;
	c->outstanding++;
	if (c->ack_n < TXQ_MAX && c->ack_skip == 0) {
		c->ackq[(c->ack_head + c->ack_n) % TXQ_MAX] = wr;
		c->ack_n++;
	} else {
		c->ack_skip++;
	}
	ph->written++;
	if (sched >= ph->t_measure && sched < ph->t_end) {
		ph->w_written++;
		lat_add(&ph->lat_queue, wr - sched);
	}
	return lws_write(c->wsi, txbuf + LWS_PRE, (size_t)n, LWS_WRITE_TEXT) < n;
}

static int
on_writeable(struct client *c)
{
	int rc = 0;

	if (c->closing) {
		lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	if (c->ctl != CTL_NONE)
		rc = write_ctl(c);
	else if (c->txq_n > 0)
		rc = write_offer(c);
	if (rc)
		return -1;
	if (c->ctl != CTL_NONE || c->txq_n > 0)
		lws_callback_on_writable(c->wsi);
	return 0;
}

static void
on_sdp_state(struct client *c, json_t *data, uint64_t t_rx)
{
	const char *sdp = json_string_value(json_object_get(data, "sdp_data"));
	const char *from = json_string_value(json_object_get(data, "from"));
	char peer[64];
	const char *m;
	unsigned ph_i;
	uint64_t sched, wr;
	struct phase *ph;

	user_name(peer, sizeof(peer), c->idx ^ 1u);
	if (sdp == NULL || from == NULL || strcmp(from, peer) != 0 ||
	    (m = strstr(sdp, "a=x-bench:")) == NULL ||
	    sscanf(m, "a=x-bench:%u:%" SCNu64 ":%" SCNu64, &ph_i, &sched, &wr) != 3 ||
	    ph_i >= o.nrates) {
		unexpected_total++;
		return;
	}
	ph = &phases[ph_i];
	ph->received++;
	if (sched >= ph->t_measure && sched < ph->t_end) {
		ph->w_received++;
		lat_add(&ph->lat_write, t_rx - wr);
		lat_add(&ph->lat_sched, t_rx - sched);
	}
}

/* A reply to an offer: times the round trip when it was tracked. */
static void
ack_done(struct client *c, uint64_t t_rx, struct phase *ph)
{
	uint64_t wr;

	if (c->ack_n > 0) {
		wr = c->ackq[c->ack_head];
		c->ack_head = (uint8_t)((c->ack_head + 1) % TXQ_MAX);
		c->ack_n--;
		if (ph != NULL && wr >= ph->t_measure && wr < ph->t_end)
			lat_add(&ph->lat_ack, t_rx - wr);
	} else if (c->ack_skip > 0) {
		c->ack_skip--;
	}
}

static void
on_message(struct client *c, const char *buf, size_t len, uint64_t t_rx)
{
	json_error_t jerr;
	json_t *msg, *data;
	const char *type;
	unsigned p = c->idx / 2;

	msg = json_loadb(buf, len, 0, &jerr);
	if (msg == NULL || (type = json_string_value(json_object_get(msg, "type"))) == NULL) {
		unexpected_total++;
		json_decref(msg);
		return;
	}
	data = json_object_get(msg, "data");

	if (strcmp(type, "SDP_STATE") == 0) {
		on_sdp_state(c, data, t_rx);
	} else if (strcmp(type, "SUCCESS") == 0) {
		if (c->outstanding)
			c->outstanding--;
		if (stage == S_RELAY || stage == S_DRAIN) {
			phases[cur].acks++;
			ack_done(c, t_rx, &phases[cur]);
		}
	} else if (strcmp(type, "ROOM_CREATED") == 0) {
		const char *u = json_string_value(json_object_get(data, "room_uuid"));

		if (c->outstanding)
			c->outstanding--;
		if (u == NULL || strlen(u) >= sizeof(pairs[p].uuid)) {
			unexpected_total++;
			pair_dead(p);
		} else {
			snprintf(pairs[p].uuid, sizeof(pairs[p].uuid), "%s", u);
			pairs[p].created = 1;
			if (clients[c->idx | 1u].state == C_OPEN) {
				clients[c->idx | 1u].ctl = CTL_JOIN_ROOM;
				want_write(&clients[c->idx | 1u]);
			}
		}
	} else if (strcmp(type, "ROOM_JOINED") == 0) {
		if (c->outstanding)
			c->outstanding--;
		if (!pairs[p].joined && !pairs[p].dead) {
			pairs[p].joined = 1;
			n_joined++;
			active[nactive++] = p;
		}
	} else if (strcmp(type, "FAILED") == 0) {
		const char *r = json_string_value(json_object_get(data, "reason"));

		if (c->outstanding)
			c->outstanding--;
		note_reason(r ? r : "(no reason)");
		if (stage == S_RELAY || stage == S_DRAIN) {
			phases[cur].failed++;
			ack_done(c, t_rx, NULL);
		}
		else if (!pairs[p].joined)
			pair_dead(p);
	} else if (strcmp(type, "ROOM_NEW_MEMBER") == 0 ||
	    strcmp(type, "ROOM_MEMBER_LEFT") == 0) {
		/* events, not replies */
	} else {
		unexpected_total++;
	}
	json_decref(msg);
}

static int
on_receive(struct client *c, struct lws *wsi, const char *in, size_t len)
{
	uint64_t t_rx = now_ns();
	int done = lws_is_final_fragment(wsi) &&
	    lws_remaining_packet_payload(wsi) == 0;

	if (c->rx == NULL && done) {
		on_message(c, in, len, t_rx);
		return 0;
	}
	if (c->rx == NULL && (c->rx = malloc(RX_MAX)) == NULL)
		return -1;
	if (c->rx_len + len > RX_MAX) {
		pp_warn(SUB, "client %u: message over %d bytes", c->idx, RX_MAX);
		return -1;
	}
	memcpy(c->rx + c->rx_len, in, len);
	c->rx_len += len;
	if (done) {
		on_message(c, c->rx, c->rx_len, t_rx);
		free(c->rx);
		c->rx = NULL;
		c->rx_len = 0;
	}
	return 0;
}

static int
callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct client *c = user;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (c != NULL)
			on_established(c);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c != NULL)
			on_gone(c, in ? (const char *)in : "connection error");
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c != NULL)
			on_gone(c, "closed");
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c != NULL)
			return on_receive(c, wsi, in, len);
		break;
	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c != NULL && c->state == C_OPEN)
			return on_writeable(c);
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ "peerpipe-bench", callback, 0, 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 },
};

/* ---- phases ---- */

static void
close_all(void)
{
	for (unsigned i = 0; i < o.clients; i++) {
		struct client *c = &clients[i];

		if (c->state == C_OPEN) {
			c->closing = 1;
			lws_callback_on_writable(c->wsi);
		}
	}
}

static void
pace(uint64_t now)
{
	struct phase *ph = &phases[cur];
	uint64_t due;

	if (nactive == 0)
		return;
	/* offer k is due at t_start + k / rate: 0..due-1 are due by now */
	due = (uint64_t)((double)(now - ph->t_start) / 1e9 * ph->rate) + 1;
	while (pace_seq < due) {
		uint64_t k = pace_seq++;
		unsigned p = active[k % nactive];
		unsigned who = 2 * p + (unsigned)((k / nactive) & 1);
		struct client *c = &clients[who];
		/* the moment it was due, not now: a late tick counts against us */
		uint64_t sched = ph->t_start + (uint64_t)((double)k * 1e9 / ph->rate);

		ph->scheduled++;
		if (pairs[p].dead || c->state != C_OPEN || c->txq_n == TXQ_MAX) {
			ph->backlog_drops++;
			continue;
		}
		c->txq[(c->txq_head + c->txq_n) % TXQ_MAX] = sched;
		c->txq_n++;
		lws_callback_on_writable(c->wsi);
	}
}

static void
start_relay(unsigned i, uint64_t now)
{
	struct phase *ph = &phases[i];

	cur = i;
	pace_seq = 0;
	ph->rate = o.rates[i];
	ph->t_start = now;
	ph->t_measure = now + (uint64_t)(o.warmup * 1e9);
	ph->t_end = ph->t_measure + (uint64_t)(o.duration * 1e9);
	ph->cli_cpu = -1;
	ph->srv_cpu = -1;
	stage = S_RELAY;
	pp_info(SUB, "relay phase %u: %u offers/s for %.1f s (+%.1f s warmup) "
	    "over %u pairs", i + 1, ph->rate, o.duration, o.warmup, nactive);
}

static void
print_report(void);

static double cpu_c0, cpu_s0, cpu_m0;

static void
tick(uv_timer_t *t)
{
	uint64_t now = now_ns();
	struct phase *ph = &phases[cur];

	if (stage == S_RELAY || stage == S_DRAIN) {
		uint64_t gap = now - last_tick;

		if (now >= ph->t_measure && now < ph->t_end + DRAIN_MS * 1000000ull) {
			if (gap > ph->max_gap_ns)
				ph->max_gap_ns = gap;
		}
	}
	last_tick = now;

	if (interrupted && stage < S_CLOSE) {
		pp_warn(SUB, "interrupted: closing connections");
		close_all();
		stage = S_CLOSE;
		stage_deadline = now + 5000000000ull;
	}

	switch (stage) {
	case S_BASELINE:
		if (o.server_pid > 0) {
			srv_rss0_kb = proc_status_kb(o.server_pid, "VmRSS");
			srv_hwm0_kb = proc_status_kb(o.server_pid, "VmHWM");
		}
		cli_rss0_kb = proc_status_kb(0, "VmRSS");
		if (o.server_pid > 0)
			srv_cpu_t0 = proc_cpu_s(o.server_pid);
		pp_info(SUB, "baseline: server RSS %ld kB with 0 clients; connecting %u "
		    "clients, %u handshakes in flight at most", srv_rss0_kb, o.clients,
		    o.connect_batch);
		t_connect_start = now;
		stage = S_CONNECT;
		stage_deadline = now + (uint64_t)(o.connect_timeout * 1e9);
		/* FALLTHROUGH */
	case S_CONNECT:
		pump_connects();
		if ((next_fresh == o.clients && retry_n == 0 && inflight == 0 &&
		    n_joined + n_pairs_failed >= npairs) || now > stage_deadline) {
			t_connect_end = now;
			if (now > stage_deadline)
				pp_warn(SUB, "connect phase timed out after %.0f s",
				    o.connect_timeout);
			pp_info(SUB, "connected %u/%u, %u/%u rooms paired in %.1f s; idle %.1f s",
			    n_open, o.clients, n_joined, npairs,
			    (double)(now - t_connect_start) / 1e9, o.idle);
			stage = S_IDLE;
			stage_deadline = now + (uint64_t)(o.idle * 1e9);
			t_idle_start = now;
			if (srv_cpu_t0 >= 0) {
				double c = proc_cpu_s(o.server_pid);

				srv_cpu_connect = c - srv_cpu_t0;
				srv_cpu_t0 = c;
			}
		} else {
			static uint64_t last_progress;

			if (now - last_progress > 2000000000ull) {
				last_progress = now;
				pp_info(SUB, "connecting: %u open, %u in flight, %u paired, "
				    "%" PRIu64 " errors", n_open, inflight, n_joined,
				    n_conn_errors);
			}
		}
		break;
	case S_IDLE:
		if (now < stage_deadline)
			break;
		held_at_idle = n_open;
		if (srv_cpu_t0 >= 0 && now > t_idle_start)
			srv_cpu_idle = (proc_cpu_s(o.server_pid) - srv_cpu_t0) /
			    ((double)(now - t_idle_start) / 1e9);
		if (o.server_pid > 0)
			srv_rss_idle_kb = proc_status_kb(o.server_pid, "VmRSS");
		cli_rss_idle_kb = proc_status_kb(0, "VmRSS");
		pp_info(SUB, "idle: %u connections held, server RSS %ld kB", held_at_idle,
		    srv_rss_idle_kb);
		if (o.nrates == 0 || nactive == 0) {
			close_all();
			stage = S_CLOSE;
			stage_deadline = now + 5000000000ull;
			break;
		}
		start_relay(0, now);
		/* FALLTHROUGH */
	case S_RELAY:
		ph = &phases[cur];
		if (ph->cli_cpu < 0 && now >= ph->t_measure) {
			ph->cli_cpu = 0;
			cpu_c0 = proc_cpu_s(0);
			cpu_s0 = o.server_pid > 0 ? proc_cpu_s(o.server_pid) : -1;
			cpu_m0 = machine_busy_s();
		}
		if (now < ph->t_end) {
			pace(now);
			break;
		}
		{
			double win = (double)(now - ph->t_measure) / 1e9;

			ph->cli_cpu = (proc_cpu_s(0) - cpu_c0) / win;
			if (cpu_s0 >= 0)
				ph->srv_cpu = (proc_cpu_s(o.server_pid) - cpu_s0) / win;
			ph->other_cpu = -1;
			if (cpu_m0 >= 0 && cpu_s0 >= 0) {
				ph->other_cpu = (machine_busy_s() - cpu_m0) / win -
				    ph->cli_cpu - ph->srv_cpu;
				/* sampled a moment apart, in clock ticks: noise */
				if (ph->other_cpu < 0)
					ph->other_cpu = 0;
			}
		}
		stage = S_DRAIN;
		stage_deadline = now + DRAIN_MS * 1000000ull;
		break;
	case S_DRAIN: {
		int queued = 0;

		ph = &phases[cur];
		if (ph->received < ph->written || ph->acks + ph->failed < ph->written)
			queued = 1;
		if (queued && now < stage_deadline)
			break;
		if (o.server_pid > 0)
			ph->srv_rss_kb = proc_status_kb(o.server_pid, "VmRSS");
		pp_info(SUB, "relay phase %u done: %" PRIu64 " written, %" PRIu64
		    " received, %" PRIu64 " acks, %" PRIu64 " failed", cur + 1,
		    ph->written, ph->received, ph->acks, ph->failed);
		if (cur + 1 < o.nrates && !interrupted) {
			start_relay(cur + 1, now);
			break;
		}
		close_all();
		stage = S_CLOSE;
		stage_deadline = now + 5000000000ull;
		break;
	}
	case S_CLOSE:
		if (n_open > 0 && now < stage_deadline)
			break;
		stage = S_SETTLE;
		stage_deadline = now + 1000000000ull;
		break;
	case S_SETTLE:
		if (now < stage_deadline)
			break;
		if (o.server_pid > 0) {
			srv_rss_after_kb = proc_status_kb(o.server_pid, "VmRSS");
			srv_hwm_kb = proc_status_kb(o.server_pid, "VmHWM");
		}
		stage = S_DONE;
		print_report();
		uv_timer_stop(&tick_timer);
		uv_close((uv_handle_t *)&tick_timer, NULL);
		uv_close((uv_handle_t *)&sigint_h, NULL);
		uv_close((uv_handle_t *)&sigterm_h, NULL);
		/* with a foreign loop this completes asynchronously, on this loop */
		lws_context_destroy(ctx);
		break;
	case S_DONE:
		break;
	}
}

static void
on_signal(uv_signal_t *h, int signum)
{
	if (interrupted++)
		return;
	pp_warn(SUB, "signal %d: stopping", signum);
}

/* ---- report ---- */

static void
fmt_kb(char *buf, size_t len, long kb)
{
	if (kb < 0)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%.1f MiB", (double)kb / 1024.0);
}

static void
print_report(void)
{
	char a[32], b[32], c[32];
	double conn_s = (double)(t_connect_end - t_connect_start) / 1e9;

	printf("\n== sigbench: %u clients in %u rooms of 2, wss://%s:%d%s, offer sdp %u B ==\n",
	    o.clients, npairs, o.host, o.port, o.path, o.sdp_bytes);

	printf("\n-- connect --\n");
	printf("connections held           %u / %u (%u failed for good, %" PRIu64
	    " connect errors incl. retried, %u dropped by server later)\n",
	    held_at_idle, o.clients, n_failed_for_good, n_conn_errors, n_dropped);
	printf("rooms paired               %u / %u\n", n_joined, npairs);
	printf("connect + pair time        %.1f s (%.0f handshakes/s, %u in flight max)\n",
	    conn_s, conn_s > 0 ? (double)lat_handshake.n / conn_s : 0.0,
	    o.connect_batch);
	printf("handshake latency          p50 %.1f ms  p99 %.1f ms  max %.1f ms"
	    " (TCP+TLS+WS upgrade, under load)\n",
	    lat_pct_ms(&lat_handshake, 50), lat_pct_ms(&lat_handshake, 99),
	    lat_pct_ms(&lat_handshake, 100));
	if (srv_cpu_connect >= 0 && conn_s > 0)
		printf("server CPU, connecting     %.1f s in %.1f s (%.0f%% of a core;"
		    " %.2f ms a client incl. NEW_ROOM/JOIN_ROOM)\n",
		    srv_cpu_connect, conn_s, 100 * srv_cpu_connect / conn_s,
		    o.clients ? 1000 * srv_cpu_connect / o.clients : 0.0);
	if (srv_cpu_idle >= 0)
		printf("server CPU, idle           %.1f%% of a core over %.0f s with %u"
		    " quiet clients (keepalive, timers)\n", 100 * srv_cpu_idle, o.idle,
		    held_at_idle);

	printf("\n-- memory (server VmRSS, /proc/%d/status) --\n", o.server_pid);
	fmt_kb(a, sizeof(a), srv_rss0_kb);
	fmt_kb(b, sizeof(b), srv_rss_idle_kb);
	printf("server RSS, 0 clients      %s (reference)\n", a);
	printf("server RSS, %5u idle     %s\n", held_at_idle, b);
	if (srv_rss0_kb >= 0 && srv_rss_idle_kb >= 0 && held_at_idle > 0)
		printf("server RSS per idle client %.1f KiB (target < 20 KiB)\n",
		    (double)(srv_rss_idle_kb - srv_rss0_kb) / held_at_idle);
	for (unsigned i = 0; i < o.nrates; i++) {
		if (phases[i].srv_rss_kb > 0 && held_at_idle > 0 && srv_rss0_kb >= 0) {
			fmt_kb(a, sizeof(a), phases[i].srv_rss_kb);
			printf("server RSS after %5u/s   %s (%.1f KiB/client)\n",
			    phases[i].rate, a,
			    (double)(phases[i].srv_rss_kb - srv_rss0_kb) / held_at_idle);
		}
	}
	fmt_kb(a, sizeof(a), srv_rss_after_kb);
	fmt_kb(b, sizeof(b), srv_hwm_kb);
	fmt_kb(c, sizeof(c), srv_hwm0_kb);
	printf("server RSS, all closed     %s (1 s after the last close)\n", a);
	printf("server peak RSS (VmHWM)    %s (was %s at start)\n", b, c);
	if (cli_rss0_kb >= 0 && cli_rss_idle_kb >= 0 && held_at_idle > 0)
		printf("sigbench RSS per client    %.1f KiB (the lws+OpenSSL client side,"
		    " for comparison)\n",
		    (double)(cli_rss_idle_kb - cli_rss0_kb) / held_at_idle);

	printf("\n-- relay: SDP_NEW_STATE offer -> SDP_STATE at the peer, one-way, "
	    "same CLOCK_MONOTONIC --\n");
	printf("%8s %7s %7s | %6s %6s %6s %7s | %7s %7s %7s | %6s %4s | %4s %5s %4s %5s %6s\n",
	    "target/s", "sent/s", "deliv/s", "p50", "p90", "p99", "max",
	    "e2e p99", "cliq99", "ack p99", "undlv", "fail", "srv", "us/of",
	    "cli", "other", "stall");
	for (unsigned i = 0; i < o.nrates; i++) {
		struct phase *ph = &phases[i];
		double d = o.duration;

		if (ph->t_start == 0)
			continue;
		printf("%8u %7.0f %7.0f | %6.2f %6.2f %6.2f %7.2f | %7.2f %7.2f %7.2f |"
		    " %6" PRIu64 " %4" PRIu64 " | %3.0f%% %5.0f %3.0f%% %4.0f%% %6.1f\n",
		    ph->rate, (double)ph->w_written / d, (double)ph->w_received / d,
		    lat_pct_ms(&ph->lat_write, 50), lat_pct_ms(&ph->lat_write, 90),
		    lat_pct_ms(&ph->lat_write, 99), lat_pct_ms(&ph->lat_write, 100),
		    lat_pct_ms(&ph->lat_sched, 99), lat_pct_ms(&ph->lat_queue, 99),
		    lat_pct_ms(&ph->lat_ack, 99),
		    ph->w_written - ph->w_received, ph->failed,
		    ph->srv_cpu * 100,
		    ph->w_written ? ph->srv_cpu * d * 1e6 / (double)ph->w_written : 0.0,
		    ph->cli_cpu * 100, ph->other_cpu * 100,
		    (double)ph->max_gap_ns / 1e6);
	}
	printf("  Times in ms (-1: no sample).  p50..max: offer handed to lws at the"
	    " sender -> SDP_STATE\n"
	    "  parsed at the peer.  e2e p99: from the moment the pacer scheduled it,"
	    " so it adds the\n"
	    "  client's own queueing; cliq99: that queueing alone.  ack p99: offer ->"
	    " SUCCESS back at\n"
	    "  the sender.  undlv: offers of the window not delivered within %d s"
	    " after it.  srv, cli,\n"
	    "  other: CPU of the server, of sigbench, and of every other process on"
	    " the machine, in %%\n"
	    "  of one core.  us/of: server CPU microseconds per offer relayed (offer"
	    " in, SUCCESS and\n"
	    "  SDP_STATE out).  stall: longest gap between two 1 ms client ticks.\n",
	    DRAIN_MS / 1000);
	for (unsigned i = 0; i < o.nrates; i++) {
		struct phase *ph = &phases[i];

		if (ph->t_start == 0)
			continue;
		if (ph->cli_cpu > 0.85)
			printf("  NOTE %u/s: sigbench used %.0f%% of a core: the client, not"
			    " only the server, limits this figure.\n", ph->rate,
			    ph->cli_cpu * 100);
		if (ph->srv_cpu > 0.85)
			printf("  NOTE %u/s: the server used %.0f%% of a core (one loop"
			    " thread): it is saturated.\n", ph->rate, ph->srv_cpu * 100);
		if (ph->other_cpu > 0.25)
			printf("  NOTE %u/s: other processes used %.0f%% of a core during"
			    " the window: figures are skewed.\n", ph->rate,
			    ph->other_cpu * 100);
		if (ph->backlog_drops)
			printf("  NOTE %u/s: %" PRIu64 " offers not sent (sender queue full or"
			    " pair gone).\n", ph->rate, ph->backlog_drops);
	}

	printf("\n-- errors --\n");
	printf("FAILED replies             %" PRIu64 "\n", failed_total);
	for (unsigned i = 0; i < MAX_REASONS && reasons[i].n; i++)
		printf("  %-40s %" PRIu64 "\n", reasons[i].reason, reasons[i].n);
	printf("unexpected messages        %" PRIu64 "\n", unexpected_total);
	fflush(stdout);
}

/* ---- setup ---- */

static int
parse_url(const char *url)
{
	const char *p = url, *h, *colon, *slash;
	size_t hl;

	if (strncmp(p, "wss://", 6) != 0) {
		fprintf(stderr, "sigbench: --url %s: only wss://HOST:PORT/PATH is supported\n",
		    url);
		return -1;
	}
	h = p + 6;
	slash = strchr(h, '/');
	colon = memchr(h, ':', slash ? (size_t)(slash - h) : strlen(h));
	if (colon == NULL) {
		fprintf(stderr, "sigbench: --url %s: the port is required\n", url);
		return -1;
	}
	hl = (size_t)(colon - h);
	if (hl == 0 || hl >= sizeof(o.host))
		return -1;
	memcpy(o.host, h, hl);
	o.host[hl] = '\0';
	o.port = atoi(colon + 1);
	if (o.port <= 0 || o.port > 65535) {
		fprintf(stderr, "sigbench: --url %s: port out of range 1-65535\n", url);
		return -1;
	}
	snprintf(o.path, sizeof(o.path), "%s", slash ? slash : "/");
	return 0;
}

static int
parse_rates(const char *s)
{
	char *copy = strdup(s), *tok, *save = NULL;

	o.nrates = 0;
	if (copy == NULL)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		long v = strtol(tok, NULL, 10);

		if (v <= 0 || v > 1000000 || o.nrates == MAX_RATES) {
			fprintf(stderr, "sigbench: --rate %s: want up to %d rates of 1-1000000"
			    " msgs/s, comma separated\n", s, MAX_RATES);
			free(copy);
			return -1;
		}
		o.rates[o.nrates++] = (unsigned)v;
	}
	free(copy);
	return 0;
}

static void
usage(void)
{
	fprintf(stderr,
	    "usage: sigbench --url wss://HOST:PORT/ws [options]\n"
	    "  --clients N          concurrent clients, even (default 1000)\n"
	    "  --rate R[,R...]      aggregate offers/s per relay phase (default 1000,5000)\n"
	    "  --duration S         measured seconds per relay phase (default 5)\n"
	    "  --warmup S           unmeasured seconds before each phase (default 1)\n"
	    "  --idle S             seconds all clients stay quiet before RSS (default 3)\n"
	    "  --connect-batch K    TLS handshakes in flight at most (default 200)\n"
	    "  --connect-timeout S  give up connecting after S seconds (default 120)\n"
	    "  --sdp-bytes B        size of each offer's sdp_data (default 800)\n"
	    "  --server-pid PID     read the server's RSS and CPU from /proc\n"
	    "  --protocol NAME      WebSocket subprotocol to ask for (default none)\n"
	    "  --lws-log MASK       libwebsockets log mask (default 1 = errors)\n");
}

static void
build_pad(void)
{
	/* sdp-like filler, JSON-escaped: 40-byte lines "a=x-pad:xxx...\r\n" */
	size_t n = 0, body = 0;

	pad_json[0] = '\0';
	while (body + 40 <= o.sdp_bytes && n + 48 < sizeof(pad_json)) {
		memcpy(pad_json + n, "a=x-pad:0123456789abcdef0123456789abcd\\r\\n", 42);
		n += 42;
		body += 40;
	}
	pad_json[n] = '\0';
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "clients", required_argument, NULL, 'n' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "warmup", required_argument, NULL, 'w' },
		{ "idle", required_argument, NULL, 'i' },
		{ "connect-batch", required_argument, NULL, 'b' },
		{ "connect-timeout", required_argument, NULL, 't' },
		{ "sdp-bytes", required_argument, NULL, 's' },
		{ "server-pid", required_argument, NULL, 'p' },
		{ "protocol", required_argument, NULL, 'P' },
		{ "lws-log", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct lws_context_creation_info info;
	void *foreign_loops[1];
	const char *url = NULL;
	int ch, rc = 0;

	o.clients = 1000;
	o.duration = 5;
	o.warmup = 1;
	o.idle = 3;
	o.connect_batch = 200;
	o.connect_timeout = 120;
	o.sdp_bytes = 800;
	o.lws_log = LLL_ERR;
	parse_rates("1000,5000");

	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'u': url = optarg; break;
		case 'n': o.clients = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': if (parse_rates(optarg)) return 2; break;
		case 'd': o.duration = strtod(optarg, NULL); break;
		case 'w': o.warmup = strtod(optarg, NULL); break;
		case 'i': o.idle = strtod(optarg, NULL); break;
		case 'b': o.connect_batch = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': o.connect_timeout = strtod(optarg, NULL); break;
		case 's': o.sdp_bytes = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'p': o.server_pid = atoi(optarg); break;
		case 'P': o.protocol = optarg; break;
		case 'L': o.lws_log = atoi(optarg); break;
		default: usage(); return ch == 'h' ? 0 : 2;
		}
	}
	if (url == NULL || parse_url(url)) {
		usage();
		return 2;
	}
	if (o.clients < 2 || o.clients % 2 || o.clients > 1000000) {
		fprintf(stderr, "sigbench: --clients %u: want an even number 2-1000000\n",
		    o.clients);
		return 2;
	}
	if (o.duration <= 0 || o.duration > 600 || o.warmup < 0 || o.idle < 0 ||
	    o.connect_batch == 0 || o.sdp_bytes > TX_MAX / 2) {
		fprintf(stderr, "sigbench: --duration 0-600 s, --connect-batch >= 1,"
		    " --sdp-bytes <= %d\n", TX_MAX / 2);
		return 2;
	}
	build_pad();

	npairs = o.clients / 2;
	clients = calloc(o.clients, sizeof(*clients));
	pairs = calloc(npairs, sizeof(*pairs));
	active = calloc(npairs, sizeof(*active));
	retryq = calloc(o.clients, sizeof(*retryq));
	if (!clients || !pairs || !active || !retryq) {
		pp_err(SUB, "out of memory for %u clients", o.clients);
		return 1;
	}
	for (unsigned i = 0; i < o.clients; i++)
		clients[i].idx = i;

	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < o.clients + 64)
			pp_warn(SUB, "ulimit -n is %llu, below %u clients + 64: raise it"
			    " (ulimit -n %u) or connections will fail",
			    (unsigned long long)rl.rlim_cur, o.clients, o.clients + 64);
	}

	lws_set_log_level(o.lws_log, NULL);
	uv_loop_init(&loop);
	uv_signal_init(&loop, &sigint_h);
	uv_signal_start(&sigint_h, on_signal, SIGINT);
	uv_signal_init(&loop, &sigterm_h);
	uv_signal_start(&sigterm_h, on_signal, SIGTERM);

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_LIBUV;
	foreign_loops[0] = &loop;
	info.foreign_loops = foreign_loops;
	info.pcontext = &ctx;
	info.timeout_secs = 30;
	/* every handshake in flight holds one header buffer */
	info.max_http_header_pool = (unsigned short)(o.connect_batch + 16 > 65535 ?
	    65535 : o.connect_batch + 16);
	/*
	 * No fd_limit_per_thread: in lws 4.1 a value below ulimit -n switches
	 * the fd -> wsi lookup to a linear scan on every event.  The table is
	 * sized from ulimit -n instead.
	 */
	ctx = lws_create_context(&info);
	if (ctx == NULL) {
		pp_err(SUB, "lws_create_context failed (libwebsockets-evlib_uv missing?)");
		return 1;
	}

	uv_timer_init(&loop, &tick_timer);
	uv_timer_start(&tick_timer, tick, 0, TICK_MS);
	last_tick = now_ns();
	uv_run(&loop, UV_RUN_DEFAULT);
	if (stage != S_DONE) {
		pp_err(SUB, "loop ended before the run finished");
		rc = 1;
	}
	/*
	 * With a foreign loop, lws 4.1 completes the destroy only when asked
	 * again once its loop handles have closed (it clears ctx when done).
	 */
	if (ctx != NULL) {
		lws_context_destroy(ctx);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	if (uv_loop_close(&loop) != 0)
		pp_debug(SUB, "loop closed with handles still open");

	for (unsigned i = 0; i < o.clients; i++)
		free(clients[i].rx);
	for (unsigned i = 0; i < o.nrates; i++) {
		free(phases[i].lat_write.v);
		free(phases[i].lat_sched.v);
		free(phases[i].lat_ack.v);
		free(phases[i].lat_queue.v);
	}
	free(lat_handshake.v);
	free(clients);
	free(pairs);
	free(active);
	free(retryq);
	if (interrupted)
		rc = 1;
	return rc || n_joined == 0;
}
