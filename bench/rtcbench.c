/*
 * rtcbench: figures for PeerPipe's WebRTC data channels on 127.0.0.1, next to
 * raw loopback TCP measured in the same run.  A benchmark prints numbers; it
 * passes or fails nothing (see docs/bench-webrtc.md for the figures and how
 * to read them).
 *
 *   throughput  per cell (channels x message size): two forked processes,
 *               each with its own uv loop + pp_gloop + pp_pc (so each peer
 *               can have a core, as in reality), SDP and candidates carried
 *               as newline-delimited JSON over a socketpair.  The offerer
 *               opens N reliable ordered channels and pushes messages of one
 *               size with backpressure (buffered amount under a high-water
 *               mark, resumed from on_buffered_amount_low) until --bytes or
 *               --seconds; the answerer counts.  Wall time is the receiver's,
 *               first message to last; CPU is getrusage(RUSAGE_SELF) of both
 *               processes over the transfer, summed.  Alongside: 100-ms
 *               periods the sender could hand nothing over (stalls), UDP
 *               datagrams the kernel dropped for a full receive buffer, and
 *               the cores other work used meanwhile, so that a disturbed
 *               figure shows as such.
 *   tcp         the same sizes and byte count over one loopback TCP
 *               connection between two processes, blocking send()/recv() of
 *               one message size per call: the reference.
 *   setup       offer created -> first channel open on the offerer, --runs
 *               times, in one process (two pcs on one loop) and/or forked
 *               (two processes, socketpair signaling): p50/p90/p99, with the
 *               offerer's ICE, DTLS and SCTP states polled after every loop
 *               iteration to time each phase.
 *
 * The coordinating process never touches the WebRTC stack (no GLib, no
 * usrsctp state to inherit across fork()); every measurement runs in fresh
 * children that report one JSON line each through a pipe.  Children exit
 * with _exit() once they have reported: tearing the stack down politely is
 * not what is measured, and a peer that vanishes is fine for its partner.
 *
 * Everything binds 127.0.0.1 only.
 */
#include "base/error.h"
#include "base/log.h"
#include "rtc/pc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#ifndef PP_BUILD_TYPE
#define PP_BUILD_TYPE "unknown"
#endif

#define MAX_CH		16
#define MAX_SIZES	8
#define MAX_MSG		(256u * 1024u)	/* what our peer accepts by default */
#define SIG_LINE_MAX	(256u * 1024u)
#define WATCHDOG_MS	100

static const char *const lo[] = { "127.0.0.1" };

struct opts {
	uint64_t bytes;			/* per throughput cell */
	double seconds;			/* the sender stops after this long */
	size_t sizes[MAX_SIZES];
	int nsizes;
	int chans[MAX_SIZES];
	int nchans;
	int runs;			/* setup runs per mode */
	int repeat;			/* throughput cells: median of */
	size_t high_water;		/* per association, split among channels */
	int udp_buf;			/* experiment: 0 = leave libnice's sockets */
	int no_jumbo;			/* keep 1200-byte packets on loopback */
	int do_tput, do_tcp, setup_inproc, setup_fork;
	enum pp_log_level log_level;
};

static struct opts o;

/* ---- small helpers ---- */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double
tv_s(const struct timeval *tv)
{
	return (double)tv->tv_sec + (double)tv->tv_usec / 1e6;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return tv_s(&ru.ru_utime) + tv_s(&ru.ru_stime);
}

/* Busy and total jiffies of the whole machine, from /proc/stat. */
static int
read_busy(double *busy_s)
{
	unsigned long long v[10] = { 0 }, total = 0;
	FILE *f = fopen("/proc/stat", "r");
	int n;

	if (f == NULL)
		return -1;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
	    &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	fclose(f);
	if (n < 8)
		return -1;
	/* guest time is already in user; idle (3) and iowait (4) are not busy */
	for (int i = 0; i < 8; i++)
		if (i != 3 && i != 4)
			total += v[i];
	*busy_s = (double)total / (double)sysconf(_SC_CLK_TCK);
	return 0;
}

static void
loadavg(char *buf, size_t len)
{
	FILE *f = fopen("/proc/loadavg", "r");

	buf[0] = '\0';
	if (f) {
		if (fgets(buf, (int)len, f) == NULL)
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/*
 * Datagrams the kernel dropped because a UDP socket's receive buffer was
 * full, machine-wide (/proc/net/snmp Udp RcvbufErrors); -1 if unknown.
 */
static long long
udp_rcvbuf_errors(void)
{
	char hdr[1024], val[1024], *hs = NULL, *vs = NULL;
	FILE *f = fopen("/proc/net/snmp", "r");
	long long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(hdr, sizeof(hdr), f))
		if (strncmp(hdr, "Udp:", 4) == 0) {
			if (fgets(val, sizeof(val), f) == NULL)
				break;
			for (char *h = strtok_r(hdr, " \n", &hs),
			    *x = strtok_r(val, " \n", &vs); h && x;
			    h = strtok_r(NULL, " \n", &hs),
			    x = strtok_r(NULL, " \n", &vs))
				if (strcmp(h, "RcvbufErrors") == 0)
					v = strtoll(x, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

/*
 * --udp-buf experiment: SO_RCVBUF/SO_SNDBUF on this process's IPv4 UDP
 * sockets (libnice's), which lib/ice leaves at the system default.  Capped
 * by net.core.rmem_max / wmem_max.
 */
static void
grow_udp_buffers(int bytes)
{
	for (int fd = 3; fd < 1024; fd++) {
		struct sockaddr_storage ss;
		socklen_t tl = sizeof(int), sl = sizeof(ss);
		int type;

		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
		    type != SOCK_DGRAM ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
		    ss.ss_family != AF_INET)
			continue;
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	}
}

static int
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };

			(void)poll(&pf, 1, 1000);
			continue;
		}
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One JSON object as one line (a pipe keeps writes < PIPE_BUF whole). */
static void
send_json(int fd, json_t *m)
{
	char *s = json_dumps(m, JSON_COMPACT);
	size_t n;

	json_decref(m);
	if (s == NULL)
		return;
	n = strlen(s);
	s[n] = '\n';	/* json_dumps' NUL: replaced, the length is known */
	(void)write_all(fd, s, n + 1);
	free(s);
}

/*
 * Where the setup time goes, seen from the offerer: seconds from the offer
 * to ICE connected, DTLS connected (peer verified), SCTP up; 0 = not yet.
 * Polled after every loop iteration (a uv_check handle), so sub-ms.
 */
struct phases {
	double ice, dtls, sctp;
};

static void
phases_poll(const struct pp_pc *pc, double t0, struct phases *ph)
{
	struct pp_pc_status st;
	double t = now_s() - t0;

	pp_pc_get_status(pc, &st);
	if (ph->ice == 0 && (st.ice.state == PP_ICE_CONNECTED ||
	    st.ice.state == PP_ICE_READY))
		ph->ice = t;
	if (ph->dtls == 0 && st.dtls == PP_DTLS_CONNECTED)
		ph->dtls = t;
	if (ph->sctp == 0 && st.sctp == PP_SCTP_OPEN)
		ph->sctp = t;
}

/* ---- a WebRTC peer in its own process ---- */

struct rpeer;

struct rchan {
	struct rpeer *p;
	struct pp_dc *dc;
};

struct rpeer {
	uv_loop_t loop;
	struct pp_gloop *gl;
	struct pp_pc *pc;
	uv_pipe_t sig;
	int sigfd, resfd;
	uv_timer_t deadline, watchdog;
	uv_check_t chk;
	char *rx;
	size_t rxlen;
	int sender;
	int nch, nopen;
	size_t msg;
	uint64_t target;		/* bytes; 0: setup only */
	struct rchan ch[MAX_CH];
	int done;
	/* sender */
	double t_offer, t_answer, t_open;
	struct phases ph;
	uint8_t *buf;
	uint64_t sent, last_sent;
	unsigned rr;
	int tx_finished;
	double t_tx0, cpu_tx0;
	unsigned long long eagain, stalls, missed;
	/* receiver */
	uint64_t got, msgs, first_len;
	double t_first, t_last, cpu_first;
};

static void
rp_fail(struct rpeer *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
rp_fail(struct rpeer *p, const char *fmt, ...)
{
	char err[512];
	va_list ap;

	if (p->done)
		return;
	p->done = 1;
	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
	send_json(p->resfd, json_pack("{s:s, s:b, s:s}", "role",
	    p->sender ? "tx" : "rx", "ok", 0, "error", err));
	uv_stop(&p->loop);
}

static void
sig_send(struct rpeer *p, json_t *m)
{
	send_json(p->sigfd, m);
}

static void pump(struct rpeer *p);

static void
tx_report(struct rpeer *p)
{
	double cpu = p->t_tx0 > 0 ? cpu_s() - p->cpu_tx0 : 0;
	struct pp_pc_status st;

	p->done = 1;
	pp_pc_get_status(p->pc, &st);
	send_json(p->resfd, json_pack("{s:s, s:b, s:f, s:f, s:f, s:f, s:f, s:f, "
	    "s:I, s:I, s:I, s:I, s:I}", "role", "tx", "ok", 1, "cpu", cpu,
	    "setup", p->t_open - p->t_offer, "answer", p->t_answer - p->t_offer,
	    "ice", p->ph.ice, "dtls", p->ph.dtls, "sctp", p->ph.sctp,
	    "sent", (json_int_t)p->sent, "eagain", (json_int_t)p->eagain,
	    "stalls", (json_int_t)p->stalls, "missed", (json_int_t)p->missed,
	    "dg_out", (json_int_t)st.ice.tx_packets,
	    "dg_in", (json_int_t)st.ice.rx_packets));
	uv_stop(&p->loop);
}

static void
rx_check(struct rpeer *p)
{
	struct pp_pc_status st;
	double cpu;

	if (p->done || p->got < p->target || p->got == 0)
		return;
	cpu = cpu_s() - p->cpu_first;
	p->done = 1;
	sig_send(p, json_pack("{s:s}", "t", "done"));
	pp_pc_get_status(p->pc, &st);
	send_json(p->resfd, json_pack("{s:s, s:b, s:f, s:f, s:I, s:I, s:I, s:I, "
	    "s:I}",
	    "role", "rx", "ok", 1, "wall", p->t_last - p->t_first, "cpu", cpu,
	    "bytes", (json_int_t)p->got, "timed_bytes",
	    (json_int_t)(p->got - p->first_len), "msgs", (json_int_t)p->msgs,
	    "dg_out", (json_int_t)st.ice.tx_packets,
	    "dg_in", (json_int_t)st.ice.rx_packets));
	/* Stay until the sender has read "done" and gone (EOF on signaling). */
}

static void
dc_open(struct pp_dc *dc, void *ctx)
{
	struct rchan *c = ctx;
	struct rpeer *p = c->p;

	(void)dc;
	if (!p->sender)
		return;
	if (p->nopen++ == 0) {
		p->t_open = now_s();
		phases_poll(p->pc, p->t_offer, &p->ph);
		uv_check_stop(&p->chk);
		if (p->target == 0) {
			tx_report(p);
			return;
		}
	}
	if (p->nopen == p->nch)
		pump(p);
}

static void
dc_message(struct pp_dc *dc, int binary, const uint8_t *data, size_t len,
    void *ctx)
{
	struct rchan *c = ctx;
	struct rpeer *p = c->p;

	(void)dc, (void)binary, (void)data;
	if (p->sender)
		return;
	p->t_last = now_s();
	if (p->msgs++ == 0) {
		p->t_first = p->t_last;
		p->cpu_first = cpu_s();
		p->first_len = len;
	}
	p->got += len;
	if (p->got >= p->target)
		rx_check(p);
}

static void
dc_close(struct pp_dc *dc, int status, void *ctx)
{
	struct rchan *c = ctx;

	(void)dc;
	c->dc = NULL;
	if (!c->p->done)
		rp_fail(c->p, "a channel closed during the run: %s",
		    pp_strerror(status));
}

static void
dc_low(struct pp_dc *dc, void *ctx)
{
	struct rchan *c = ctx;

	(void)dc;
	pump(c->p);
}

static const struct pp_dc_ops dc_ops = {
	dc_open, dc_message, dc_close, dc_low,
};

/*
 * Round robin over the channels, one message each, while each buffers less
 * than its share of the high-water mark.  Stops at the byte count or when
 * --seconds have passed since the first message, then tells the receiver
 * the total.
 */
static void
pump(struct rpeer *p)
{
	size_t hw = o.high_water / (size_t)p->nch;
	unsigned since_clock = 0;

	if (!p->sender || p->done || p->tx_finished || p->nopen < p->nch)
		return;
	if (p->t_tx0 == 0) {
		p->t_tx0 = now_s();
		p->cpu_tx0 = cpu_s();
	}
	while (p->sent < p->target) {
		int progress = 0;

		for (int k = 0; k < p->nch && p->sent < p->target; k++) {
			struct rchan *c = &p->ch[p->rr++ % (unsigned)p->nch];
			int rc;

			if (c->dc == NULL)
				return;		/* rp_fail already ran */
			if (pp_dc_buffered_amount(c->dc) >= hw)
				continue;
			rc = pp_dc_send_binary(c->dc, p->buf, p->msg);
			if (rc == -EAGAIN) {
				p->eagain++;
				return;		/* on_buffered_amount_low resumes */
			}
			if (rc < 0) {
				rp_fail(p, "send failed after %" PRIu64 " bytes: %s",
				    p->sent, pp_strerror(rc));
				return;
			}
			p->sent += p->msg;
			progress = 1;
		}
		if (!progress)
			return;
		if (++since_clock >= 64) {
			since_clock = 0;
			if (now_s() - p->t_tx0 >= o.seconds)
				p->target = p->sent;
		}
	}
	p->tx_finished = 1;
	sig_send(p, json_pack("{s:s, s:I}", "t", "total", "bytes",
	    (json_int_t)p->sent));
}

static void
chk_cb(uv_check_t *h)
{
	struct rpeer *p = h->data;

	if (p->pc)
		phases_poll(p->pc, p->t_offer, &p->ph);
}

/*
 * Every WATCHDOG_MS: no message taken since the last tick is a stall (on
 * loopback: SCTP waiting for a retransmission timeout after a datagram was
 * dropped).  A channel at or below its low-water mark with sending blocked
 * would mean on_buffered_amount_low was missed: counted, and resumed.
 */
static void
watchdog_cb(uv_timer_t *t)
{
	struct rpeer *p = t->data;
	size_t low = o.high_water / (size_t)p->nch / 4;

	if (p->sent == p->last_sent && p->t_tx0 > 0 && !p->tx_finished &&
	    !p->done) {
		uint64_t before = p->sent;
		int at_low = 0;

		p->stalls++;
		for (int i = 0; i < p->nch; i++)
			if (p->ch[i].dc && pp_dc_buffered_amount(p->ch[i].dc) <= low)
				at_low = 1;
		if (at_low) {
			pump(p);
			if (p->sent != before)
				p->missed++;
		}
	}
	p->last_sent = p->sent;
}

static void
deadline_cb(uv_timer_t *t)
{
	struct rpeer *p = t->data;

	rp_fail(p, "no result after the deadline (sent %" PRIu64 ", got %" PRIu64
	    ")", p->sent, p->got);
}

static void
pc_candidate(void *ctx, const char *cand, const char *mid, unsigned idx)
{
	struct rpeer *p = ctx;

	(void)mid, (void)idx;
	sig_send(p, json_pack("{s:s, s:s}", "t", "cand", "c", cand));
}

static void
pc_state(void *ctx, enum pp_pc_state st, const char *reason)
{
	struct rpeer *p = ctx;

	if (st == PP_PC_CONNECTED && o.udp_buf > 0)
		grow_udp_buffers(o.udp_buf);
	if (st == PP_PC_FAILED || st == PP_PC_CLOSED)
		rp_fail(p, "peer connection %s: %s", pp_pc_state_name(st), reason);
}

static void
pc_channel(void *ctx, struct pp_dc *dc)
{
	struct rpeer *p = ctx;
	struct rchan *c;

	if (p->nch == MAX_CH)
		return;		/* left without ops: closed again */
	c = &p->ch[p->nch++];
	c->p = p;
	c->dc = dc;
	pp_dc_set_ops(dc, &dc_ops, c);
}

static const struct pp_pc_ops pc_ops = { pc_candidate, pc_state, pc_channel };

static void
open_channels(struct rpeer *p, int n)
{
	for (int i = 0; i < n; i++) {
		struct pp_dc_init init = { .label = "bench" };
		struct rchan *c = &p->ch[i];
		int rc;

		c->p = p;
		if ((rc = pp_pc_open_channel(p->pc, &init, &dc_ops, c, &c->dc)) < 0) {
			rp_fail(p, "cannot open a channel: %s", pp_strerror(rc));
			return;
		}
		pp_dc_set_buffered_amount_low_threshold(c->dc,
		    o.high_water / (size_t)n / 4);
	}
	p->nch = n;
}

static void
on_sig_line(struct rpeer *p, const char *line, size_t len)
{
	json_t *m = json_loadb(line, len, 0, NULL);
	const char *t = json_string_value(json_object_get(m, "t"));
	char err[512], *answer;

	if (t == NULL) {
		rp_fail(p, "bad signaling line");
	} else if (strcmp(t, "offer") == 0 && !p->sender) {
		const char *sdp = json_string_value(json_object_get(m, "sdp"));

		if (sdp == NULL || pp_pc_set_remote_offer(p->pc, sdp, strlen(sdp),
		    &answer, err, sizeof(err)) < 0) {
			rp_fail(p, "offer refused: %s", sdp ? err : "no sdp");
		} else {
			sig_send(p, json_pack("{s:s, s:s}", "t", "answer", "sdp",
			    answer));
			free(answer);
		}
	} else if (strcmp(t, "answer") == 0 && p->sender) {
		const char *sdp = json_string_value(json_object_get(m, "sdp"));

		p->t_answer = now_s();
		if (sdp == NULL || pp_pc_set_remote_answer(p->pc, sdp, strlen(sdp),
		    err, sizeof(err)) < 0)
			rp_fail(p, "answer refused: %s", sdp ? err : "no sdp");
		else
			open_channels(p, p->nch);
	} else if (strcmp(t, "cand") == 0) {
		const char *c = json_string_value(json_object_get(m, "c"));

		(void)pp_pc_add_remote_candidate(p->pc, c ? c : "", err,
		    sizeof(err));
	} else if (strcmp(t, "total") == 0 && !p->sender) {
		p->target = (uint64_t)json_integer_value(json_object_get(m, "bytes"));
		rx_check(p);
	} else if (strcmp(t, "done") == 0 && p->sender) {
		tx_report(p);
	}
	json_decref(m);
}

static void
sig_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct rpeer *p = h->data;

	(void)hint;
	buf->base = p->rx + p->rxlen;
	buf->len = SIG_LINE_MAX - p->rxlen;
}

static void
sig_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct rpeer *p = s->data;
	char *nl;

	(void)buf;
	if (n < 0) {
		/* The partner is gone: normal for the receiver once done, and
		 * for the answerer of a setup run at any time. */
		if (!p->done && (p->sender || p->target > 0))
			rp_fail(p, "signaling closed early: %s", uv_strerror((int)n));
		uv_stop(&p->loop);
		return;
	}
	p->rxlen += (size_t)n;
	while (!p->done && (nl = memchr(p->rx, '\n', p->rxlen)) != NULL) {
		size_t len = (size_t)(nl - p->rx);

		on_sig_line(p, p->rx, len);
		memmove(p->rx, nl + 1, p->rxlen - len - 1);
		p->rxlen -= len + 1;
	}
	if (p->rxlen == SIG_LINE_MAX)
		rp_fail(p, "signaling line over %u bytes", SIG_LINE_MAX);
}

/*
 * One side of a throughput cell or a forked setup run.  Reports one JSON
 * line on resfd; never returns.
 */
static void __attribute__((noreturn))
rtc_child(int sender, int nch, size_t msg, uint64_t bytes, int sigfd,
    int resfd, double timeout_s)
{
	struct rpeer *p = calloc(1, sizeof(*p));
	struct pp_pc_config cfg;
	char err[512], *offer;
	int rc;

	if (p == NULL || (p->rx = malloc(SIG_LINE_MAX)) == NULL ||
	    (p->buf = calloc(1, msg ? msg : 1)) == NULL)
		_exit(1);
	p->sender = sender;
	p->nch = sender ? nch : 0;	/* the receiver counts on_channel */
	p->msg = msg;
	p->target = bytes;
	p->sigfd = sigfd;
	p->resfd = resfd;
	for (size_t i = 0; i < msg; i++)
		p->buf[i] = (uint8_t)(i * 131u + 7u);
	uv_loop_init(&p->loop);
	if ((rc = pp_gloop_new(&p->loop, &p->gl)) < 0) {
		rp_fail(p, "pp_gloop_new: %s", pp_strerror(rc));
		_exit(1);
	}
	uv_pipe_init(&p->loop, &p->sig, 0);
	p->sig.data = p;
	if (uv_pipe_open(&p->sig, sigfd) < 0 ||
	    uv_read_start((uv_stream_t *)&p->sig, sig_alloc, sig_read) < 0) {
		rp_fail(p, "cannot read the signaling socket");
		_exit(1);
	}
	uv_timer_init(&p->loop, &p->deadline);
	uv_timer_init(&p->loop, &p->watchdog);
	uv_check_init(&p->loop, &p->chk);
	p->deadline.data = p->watchdog.data = p->chk.data = p;
	uv_timer_start(&p->deadline, deadline_cb, (uint64_t)(timeout_s * 1000), 0);
	if (sender && bytes > 0)
		uv_timer_start(&p->watchdog, watchdog_cb, WATCHDOG_MS, WATCHDOG_MS);

	memset(&cfg, 0, sizeof(cfg));
	cfg.gloop = p->gl;
	cfg.ice.local_addrs = lo;
	cfg.ice.nlocal_addrs = 1;
	cfg.log_name = sender ? "tx" : "rx";
	if ((rc = pp_pc_new(&cfg, &pc_ops, p, &p->pc)) < 0) {
		rp_fail(p, "pp_pc_new: %s", pp_strerror(rc));
		_exit(1);
	}
	if (!o.no_jumbo)
		pp_pc_allow_jumbo(p->pc);	/* both ends are ours */
	if (sender) {
		uv_check_start(&p->chk, chk_cb);
		p->t_offer = now_s();
		if (pp_pc_create_offer(p->pc, &offer, err, sizeof(err)) < 0) {
			rp_fail(p, "create_offer: %s", err);
			_exit(1);
		}
		sig_send(p, json_pack("{s:s, s:s}", "t", "offer", "sdp", offer));
		free(offer);
	}
	uv_run(&p->loop, UV_RUN_DEFAULT);
	_exit(0);
}

/* ---- raw TCP reference ---- */

static void __attribute__((noreturn))
tcp_rx_child(int lfd, size_t msg, uint64_t bytes, int resfd)
{
	uint8_t *buf = malloc(msg);
	uint64_t got = 0, first = 0;
	double t_first = 0, t_last = 0, cpu0 = 0;
	int fd = accept(lfd, NULL, NULL);

	close(lfd);
	if (fd < 0 || buf == NULL) {
		send_json(resfd, json_pack("{s:s, s:b, s:s}", "role", "rx", "ok", 0,
		    "error", "accept failed"));
		_exit(1);
	}
	while (got < bytes) {
		ssize_t n = recv(fd, buf, msg, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		t_last = now_s();
		if (got == 0) {
			t_first = t_last;
			cpu0 = cpu_s();
			first = (uint64_t)n;
		}
		got += (uint64_t)n;
	}
	if (got < bytes) {
		send_json(resfd, json_pack("{s:s, s:b, s:s}", "role", "rx", "ok", 0,
		    "error", "TCP stream ended early"));
		_exit(1);
	}
	send_json(resfd, json_pack("{s:s, s:b, s:f, s:f, s:I, s:I}", "role", "rx",
	    "ok", 1, "wall", t_last - t_first, "cpu", cpu_s() - cpu0,
	    "bytes", (json_int_t)got, "timed_bytes", (json_int_t)(got - first)));
	(void)send(fd, "k", 1, MSG_NOSIGNAL);
	_exit(0);
}

static void __attribute__((noreturn))
tcp_tx_child(const struct sockaddr_in *sin, size_t msg, uint64_t bytes,
    int resfd)
{
	uint8_t *buf = calloc(1, msg);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint64_t sent = 0;
	double cpu0;
	char k;

	if (buf == NULL || fd < 0 ||
	    connect(fd, (const struct sockaddr *)sin, sizeof(*sin)) < 0) {
		send_json(resfd, json_pack("{s:s, s:b, s:s}", "role", "tx", "ok", 0,
		    "error", "connect failed"));
		_exit(1);
	}
	cpu0 = cpu_s();
	while (sent < bytes) {
		size_t off = 0;

		while (off < msg) {
			ssize_t n = send(fd, buf + off, msg - off, MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				_exit(1);
			off += (size_t)n;
		}
		sent += msg;
	}
	(void)recv(fd, &k, 1, 0);	/* the receiver has it all */
	send_json(resfd, json_pack("{s:s, s:b, s:f, s:I}", "role", "tx", "ok", 1,
	    "cpu", cpu_s() - cpu0, "sent", (json_int_t)sent));
	_exit(0);
}

/* ---- in-process setup: two pcs on one loop ---- */

struct ip_side {
	struct ipw *w;
	struct pp_pc *pc;
	struct ip_side *other;
	struct pp_dc *dc;
};

struct ipw {
	uv_loop_t loop;
	struct pp_gloop *gl;
	uv_timer_t deadline;
	uv_check_t chk;
	struct ip_side a, b;
	double t0;
	struct phases ph;
	int opened, failed;
	char why[256];
};

static void
ip_cand(void *ctx, const char *cand, const char *mid, unsigned idx)
{
	struct ip_side *s = ctx;
	char err[256];

	(void)mid, (void)idx;
	if (s->other->pc)
		(void)pp_pc_add_remote_candidate(s->other->pc, cand, err, sizeof(err));
}

static void
ip_state(void *ctx, enum pp_pc_state st, const char *reason)
{
	struct ip_side *s = ctx;

	if (st == PP_PC_FAILED || st == PP_PC_CLOSED) {
		s->w->failed = 1;
		snprintf(s->w->why, sizeof(s->w->why), "%s", reason);
		uv_stop(&s->w->loop);
	}
}

static void
ip_open(struct pp_dc *dc, void *ctx)
{
	struct ip_side *s = ctx;

	(void)dc;
	if (s == &s->w->a) {
		phases_poll(s->pc, s->w->t0, &s->w->ph);
		s->w->opened = 1;
		uv_stop(&s->w->loop);
	}
}

static void
ip_msg(struct pp_dc *dc, int binary, const uint8_t *data, size_t len, void *ctx)
{
	(void)dc, (void)binary, (void)data, (void)len, (void)ctx;
}

static void
ip_close(struct pp_dc *dc, int status, void *ctx)
{
	struct ip_side *s = ctx;

	(void)dc, (void)status;
	s->dc = NULL;
}

static const struct pp_dc_ops ip_dc_ops = { ip_open, ip_msg, ip_close, NULL };

static void
ip_channel(void *ctx, struct pp_dc *dc)
{
	struct ip_side *s = ctx;

	s->dc = dc;
	pp_dc_set_ops(dc, &ip_dc_ops, s);
}

static const struct pp_pc_ops ip_ops = { ip_cand, ip_state, ip_channel };

static void
ip_chk(uv_check_t *h)
{
	struct ipw *w = h->data;

	if (w->a.pc && !w->opened)
		phases_poll(w->a.pc, w->t0, &w->ph);
}

static void
ip_deadline(uv_timer_t *t)
{
	struct ipw *w = t->data;

	w->failed = 1;
	snprintf(w->why, sizeof(w->why), "no channel after 30 s");
	uv_stop(&w->loop);
}

/* One connection: returns 0 and the times (seconds from the offer). */
static int
ip_run(struct ipw *w, double *setup, struct phases *ph, double *pcnew)
{
	struct pp_dc_init init = { .label = "bench" };
	struct pp_pc_config cfg;
	char err[256], *offer, *answer;
	double t0;
	int rc = -1;

	memset(&cfg, 0, sizeof(cfg));
	cfg.gloop = w->gl;
	cfg.ice.local_addrs = lo;
	cfg.ice.nlocal_addrs = 1;
	w->opened = w->failed = 0;
	memset(&w->ph, 0, sizeof(w->ph));
	w->a.dc = w->b.dc = NULL;
	t0 = now_s();
	if (pp_pc_new(&cfg, &ip_ops, &w->a, &w->a.pc) < 0 ||
	    pp_pc_new(&cfg, &ip_ops, &w->b, &w->b.pc) < 0)
		goto out;
	*pcnew = (now_s() - t0) / 2;

	t0 = w->t0 = now_s();
	if (pp_pc_create_offer(w->a.pc, &offer, err, sizeof(err)) < 0)
		goto out;
	rc = pp_pc_set_remote_offer(w->b.pc, offer, strlen(offer), &answer, err,
	    sizeof(err));
	free(offer);
	if (rc < 0)
		goto out;
	rc = pp_pc_set_remote_answer(w->a.pc, answer, strlen(answer), err,
	    sizeof(err));
	free(answer);
	if (rc < 0 || pp_pc_open_channel(w->a.pc, &init, &ip_dc_ops, &w->a,
	    &w->a.dc) < 0) {
		rc = -1;
		goto out;
	}
	uv_timer_start(&w->deadline, ip_deadline, 30000, 0);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	uv_timer_stop(&w->deadline);
	if (!w->opened) {
		rc = -1;
		goto out;
	}
	*setup = now_s() - t0;
	*ph = w->ph;
	rc = 0;
out:
	pp_pc_free(w->a.pc);
	pp_pc_free(w->b.pc);
	w->a.pc = w->b.pc = NULL;
	/* Let ICE agents and handles of this run close before the next. */
	for (int i = 0; i < 20; i++)
		uv_run(&w->loop, UV_RUN_NOWAIT);
	return rc;
}

static void __attribute__((noreturn))
setup_inproc_child(int runs, int resfd)
{
	struct ipw *w = calloc(1, sizeof(*w));
	json_t *setup = json_array(), *ice = json_array(), *dtls = json_array(),
	    *sctp = json_array(), *pcnew = json_array();

	if (w == NULL || uv_loop_init(&w->loop) < 0 ||
	    pp_gloop_new(&w->loop, &w->gl) < 0)
		_exit(1);
	uv_timer_init(&w->loop, &w->deadline);
	uv_check_init(&w->loop, &w->chk);
	uv_check_start(&w->chk, ip_chk);
	w->deadline.data = w->chk.data = w;
	w->a.w = w->b.w = w;
	w->a.other = &w->b;
	w->b.other = &w->a;
	for (int i = -1; i < runs; i++) {	/* run -1 warms up, not counted */
		struct phases ph = { 0, 0, 0 };
		double s = 0, pn = 0;

		if (ip_run(w, &s, &ph, &pn) < 0) {
			send_json(resfd, json_pack("{s:s, s:b, s:s}", "role", "setup",
			    "ok", 0, "error", w->why[0] ? w->why : "run failed"));
			_exit(1);
		}
		if (i < 0)
			continue;
		json_array_append_new(setup, json_real(s));
		json_array_append_new(ice, json_real(ph.ice));
		json_array_append_new(dtls, json_real(ph.dtls));
		json_array_append_new(sctp, json_real(ph.sctp));
		json_array_append_new(pcnew, json_real(pn));
	}
	/* Over PIPE_BUF, but this child is the only writer of its pipe. */
	send_json(resfd, json_pack("{s:s, s:b, s:o, s:o, s:o, s:o, s:o}", "role",
	    "setup", "ok", 1, "setup", setup, "ice", ice, "dtls", dtls,
	    "sctp", sctp, "pcnew", pcnew));
	_exit(0);
}

/* ---- the coordinator ---- */

enum kind { K_RTC, K_TCP, K_SETUP_FORK, K_SETUP_INPROC };

struct res {
	int ok;
	char err[512];
	double wall, cpu_tx, cpu_rx;
	uint64_t bytes, timed_bytes;
	double setup, answer;
	struct phases ph;
	unsigned long long eagain, stalls, missed, udp_drops;
	unsigned long long tx_dg_out, rx_dg_out;	/* datagrams each side sent */
	double others;		/* cores busy with other work during the run */
	json_t *arrays;		/* in-process setup: the raw samples */
};

static double
jnum(json_t *m, const char *k)
{
	return json_number_value(json_object_get(m, k));
}

static void
take_line(struct res *r, const char *line)
{
	json_t *m = json_loads(line, 0, NULL);
	const char *role = json_string_value(json_object_get(m, "role"));

	if (role == NULL) {
		json_decref(m);
		return;
	}
	if (!json_is_true(json_object_get(m, "ok"))) {
		const char *e = json_string_value(json_object_get(m, "error"));

		if (r->err[0] == '\0')
			snprintf(r->err, sizeof(r->err), "%s: %s", role, e ? e : "?");
		r->ok = 0;
	} else if (strcmp(role, "rx") == 0) {
		r->wall = jnum(m, "wall");
		r->cpu_rx = jnum(m, "cpu");
		r->bytes = (uint64_t)json_integer_value(json_object_get(m, "bytes"));
		r->timed_bytes = (uint64_t)json_integer_value(json_object_get(m,
		    "timed_bytes"));
		r->rx_dg_out = (unsigned long long)json_integer_value(
		    json_object_get(m, "dg_out"));
	} else if (strcmp(role, "tx") == 0) {
		r->cpu_tx = jnum(m, "cpu");
		r->setup = jnum(m, "setup");
		r->answer = jnum(m, "answer");
		r->ph.ice = jnum(m, "ice");
		r->ph.dtls = jnum(m, "dtls");
		r->ph.sctp = jnum(m, "sctp");
		r->eagain = (unsigned long long)json_integer_value(json_object_get(m,
		    "eagain"));
		r->stalls = (unsigned long long)json_integer_value(json_object_get(m,
		    "stalls"));
		r->missed = (unsigned long long)json_integer_value(json_object_get(m,
		    "missed"));
		r->tx_dg_out = (unsigned long long)json_integer_value(
		    json_object_get(m, "dg_out"));
	} else if (strcmp(role, "setup") == 0) {
		r->arrays = json_incref(m);
	}
	json_decref(m);
}

/*
 * Forks the children of one measurement and collects their lines.  The
 * children are killed (by pid) when they overrun timeout_s.
 */
static void
run(enum kind kind, int nch, size_t msg, uint64_t bytes, double timeout_s,
    struct res *r)
{
	int sp[2] = { -1, -1 }, rp[2], lfd = -1;
	struct sockaddr_in sin;
	pid_t pid[2] = { -1, -1 };
	double busy0 = 0, busy1 = 0, t0, ours = 0, deadline;
	long long drops0, drops1;
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);

	memset(r, 0, sizeof(*r));
	r->ok = 1;
	if (buf == NULL || pipe(rp) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0) {
		snprintf(r->err, sizeof(r->err), "pipe/socketpair: %s",
		    strerror(errno));
		r->ok = 0;
		free(buf);
		return;
	}
	if (kind == K_TCP) {
		socklen_t sl = sizeof(sin);

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
		    listen(lfd, 1) < 0 ||
		    getsockname(lfd, (struct sockaddr *)&sin, &sl) < 0) {
			snprintf(r->err, sizeof(r->err), "listen: %s",
			    strerror(errno));
			r->ok = 0;
			close(rp[0]);
			close(rp[1]);
			close(sp[0]);
			close(sp[1]);
			goto out;
		}
	}
	fflush(stdout);
	fflush(stderr);
	(void)read_busy(&busy0);
	drops0 = udp_rcvbuf_errors();
	t0 = now_s();
	for (int i = 0; i < (kind == K_SETUP_INPROC ? 1 : 2); i++) {
		if ((pid[i] = fork()) < 0) {
			snprintf(r->err, sizeof(r->err), "fork: %s", strerror(errno));
			r->ok = 0;
			break;
		}
		if (pid[i] > 0)
			continue;
		/* child i: 0 = receiver/answerer, 1 = sender/offerer */
		close(rp[0]);
		close(sp[i == 0 ? 1 : 0]);
		switch (kind) {
		case K_RTC:
		case K_SETUP_FORK:
			if (lfd >= 0)
				close(lfd);
			rtc_child(i == 1, nch, msg, kind == K_RTC ? bytes : 0,
			    sp[i == 0 ? 0 : 1], rp[1], timeout_s);
		case K_TCP:
			if (i == 0)
				tcp_rx_child(lfd, msg, bytes, rp[1]);
			close(lfd);
			tcp_tx_child(&sin, msg, bytes, rp[1]);
		case K_SETUP_INPROC:
			setup_inproc_child(nch, rp[1]);
		}
	}
	close(rp[1]);
	close(sp[0]);
	close(sp[1]);
	sp[0] = sp[1] = -1;
	if (lfd >= 0)
		close(lfd);
	lfd = -1;
	/* Collect lines until every child has closed the pipe. */
	deadline = now_s() + timeout_s + 5;
	for (;;) {
		struct pollfd pf = { rp[0], POLLIN, 0 };
		double left = deadline - now_s();
		ssize_t n;

		if (left <= 0) {
			snprintf(r->err, sizeof(r->err), "timed out after %.0f s",
			    timeout_s + 5);
			r->ok = 0;
			for (int i = 0; i < 2; i++)
				if (pid[i] > 0)
					kill(pid[i], SIGKILL);
			break;
		}
		if (poll(&pf, 1, (int)(left * 1000) + 1) <= 0)
			continue;
		if (len == cap) {
			char *nb = realloc(buf, cap * 2);

			if (nb == NULL)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(rp[0], buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(rp[0]);
	for (int i = 0; i < 2; i++) {
		struct rusage ru;
		int status;

		if (pid[i] <= 0)
			continue;
		while (wait4(pid[i], &status, 0, &ru) < 0 && errno == EINTR)
			;
		ours += tv_s(&ru.ru_utime) + tv_s(&ru.ru_stime);
	}
	(void)read_busy(&busy1);
	drops1 = udp_rcvbuf_errors();
	if (drops0 >= 0 && drops1 >= drops0)
		r->udp_drops = (unsigned long long)(drops1 - drops0);
	if (now_s() - t0 > 0.05 && busy1 > busy0)
		r->others = (busy1 - busy0 - ours) / (now_s() - t0);
	if (r->others < 0)
		r->others = 0;	/* jiffies vs rusage rounding */
	/* Lines: each child wrote whole ones. */
	{
		char *s = buf, *nl;

		while ((nl = memchr(s, '\n', len - (size_t)(s - buf))) != NULL) {
			*nl = '\0';
			take_line(r, s);
			s = nl + 1;
		}
	}
	if (r->ok && kind != K_SETUP_INPROC && kind != K_SETUP_FORK &&
	    r->wall <= 0) {
		snprintf(r->err, sizeof(r->err), "no result from the receiver");
		r->ok = 0;
	}
	if (r->ok && kind == K_SETUP_FORK && r->setup <= 0) {
		snprintf(r->err, sizeof(r->err), "no result from the offerer");
		r->ok = 0;
	}
out:
	if (lfd >= 0)
		close(lfd);
	free(buf);
}

static double
gbps(const struct res *r)
{
	return r->wall > 0 ? (double)r->timed_bytes * 8 / r->wall / 1e9 : 0;
}

static double
cpu_per_gb(const struct res *r)
{
	return r->bytes ? (r->cpu_tx + r->cpu_rx) / ((double)r->bytes / 1e9) : 0;
}

static int
cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of a sorted array. */
static double
pct(const double *v, int n, int p)
{
	int k = (p * n + 99) / 100 - 1;

	return n == 0 ? 0 : v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

/* Of several tries of one cell: the median by throughput. */
static int
cmp_res(const void *a, const void *b)
{
	double x = gbps(a), y = gbps(b);

	return x < y ? -1 : x > y;
}

static void
measure_cell(enum kind kind, int nch, size_t msg, struct res *out)
{
	struct res tries[16];
	int n = 0, reps = o.repeat > 16 ? 16 : o.repeat;
	double timeout = o.seconds * 3 + 60;

	for (int i = 0; i < reps; i++) {
		run(kind, nch, msg, o.bytes, timeout, &tries[n]);
		if (!tries[n].ok) {
			*out = tries[n];
			return;
		}
		n++;
	}
	qsort(tries, (size_t)n, sizeof(tries[0]), cmp_res);
	*out = tries[n / 2];
}

static void
fmt_size(char *b, size_t len, size_t n)
{
	if (n % 1024 == 0)
		snprintf(b, len, "%zu KiB", n / 1024);
	else
		snprintf(b, len, "%zu B", n);
}

static void
print_header(void)
{
	char model[256] = "?", line[512], date[64], la[128];
	FILE *f = fopen("/proc/cpuinfo", "r");
	struct utsname u;
	time_t t = time(NULL);

	if (f) {
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "model name", 10) == 0) {
				char *c = strchr(line, ':');

				if (c) {
					snprintf(model, sizeof(model), "%s", c + 2);
					model[strcspn(model, "\n")] = '\0';
				}
				break;
			}
		fclose(f);
	}
	uname(&u);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
	loadavg(la, sizeof(la));
	printf("rtcbench: PeerPipe WebRTC data channels vs raw TCP, 127.0.0.1 only\n");
	printf("  date      %s\n", date);
	printf("  machine   %ld CPUs (%s), %s %s %s\n", sysconf(_SC_NPROCESSORS_ONLN),
	    model, u.sysname, u.release, u.machine);
	printf("  build     %s%s; OpenSSL %s, libuv %s\n", PP_BUILD_TYPE,
#if defined(__SANITIZE_ADDRESS__)
	    " + ASan",
#else
	    "",
#endif
	    OpenSSL_version(OPENSSL_VERSION), uv_version_string());
	printf("  loadavg   %s (before)\n", la);
	printf("  params    %" PRIu64 " MiB or %.0f s per throughput cell, "
	    "median of %d; high-water %zu KiB per association; "
	    "%d setup runs\n", o.bytes >> 20, o.seconds, o.repeat,
	    o.high_water >> 10, o.runs);
	if (o.udp_buf > 0)
		printf("  EXPERIMENT  --udp-buf %d: libnice's UDP sockets get "
		    "SO_RCVBUF/SO_SNDBUF %d once connected\n", o.udp_buf,
		    o.udp_buf);
	fflush(stdout);
}

static void
throughput(void)
{
	struct res tcp[MAX_SIZES];
	int ns = o.nsizes < MAX_SIZES ? o.nsizes : MAX_SIZES;

	printf("\nThroughput: one association, N reliable ordered channels, "
	    "sender and receiver in separate processes.\n"
	    "  Gbit/s: payload bits / the receiver's first-to-last message "
	    "time.  CPU: both processes' user+sys over the\n"
	    "  transfer, per 10^9 payload bytes.  stalls: 100-ms periods the "
	    "sender could not hand over anything.\n"
	    "  drops: UDP datagrams the kernel dropped for a full receive "
	    "buffer (whole machine).  others: cores busy\n"
	    "  with unrelated work meanwhile (/proc/stat).  TCP: one loopback "
	    "connection, blocking send()/recv() of one\n"
	    "  message size per call, same byte count, measured in this run.\n\n");
	printf("%-2s %-6s | %7s %7s %6s %6s %6s | %7s %7s %6s | %6s\n",
	    "ch", "msg", "Gbit/s", "CPU s/GB", "stalls", "drops", "others",
	    "TCP Gb/s", "TCP s/GB", "others", "x TCP");
	printf("-----------------------------------------------------------------"
	    "-----------------------------\n");
	fflush(stdout);
	for (int s = 0; s < ns; s++) {
		if (o.do_tcp)
			measure_cell(K_TCP, 1, o.sizes[s], &tcp[s]);
		else
			memset(&tcp[s], 0, sizeof(tcp[s]));
	}
	for (int c = 0; c < o.nchans; c++) {
		for (int s = 0; s < ns; s++) {
			struct res r, *t = &tcp[s];
			char sz[32], tg[16] = "-", tc[16] = "-", to[16] = "-",
			    ratio[16] = "-";

			fmt_size(sz, sizeof(sz), o.sizes[s]);
			measure_cell(K_RTC, o.chans[c], o.sizes[s], &r);
			if (o.do_tcp && t->ok) {
				snprintf(tg, sizeof(tg), "%.2f", gbps(t));
				snprintf(tc, sizeof(tc), "%.2f", cpu_per_gb(t));
				snprintf(to, sizeof(to), "%.2f", t->others);
			} else if (o.do_tcp) {
				snprintf(tg, sizeof(tg), "FAIL");
			}
			if (!r.ok) {
				printf("%-2d %-6s | FAILED: %s\n", o.chans[c], sz, r.err);
				fflush(stdout);
				continue;
			}
			if (o.do_tcp && t->ok && gbps(t) > 0)
				snprintf(ratio, sizeof(ratio), "%.3f",
				    gbps(&r) / gbps(t));
			printf("%-2d %-6s | %7.3f %8.2f %6llu %6llu %6.2f | %8s "
			    "%8s %6s | %6s", o.chans[c], sz, gbps(&r),
			    cpu_per_gb(&r), r.stalls, r.udp_drops, r.others, tg, tc,
			    to, ratio);
			if (r.bytes < o.bytes)
				printf("  (%" PRIu64 " MiB in %.0f s)", r.bytes >> 20,
				    o.seconds);
			if (r.missed)
				printf("  (%llu missed low-water callbacks)",
				    r.missed);
			printf("\n");
			if (o.log_level >= PP_LOG_INFO)
				printf("          cpu tx %.2f s rx %.2f s, wall %.2f s, "
				    "%" PRIu64 " MiB, EAGAIN %llu; datagrams: "
				    "sender %llu, receiver %llu\n", r.cpu_tx,
				    r.cpu_rx, r.wall, r.bytes >> 20, r.eagain,
				    r.tx_dg_out, r.rx_dg_out);
			fflush(stdout);
		}
	}
	for (int s = 0; s < ns && o.do_tcp; s++)
		if (!tcp[s].ok)
			printf("TCP %zu: FAILED: %s\n", o.sizes[s], tcp[s].err);
}

/* Samples of the setup runs: column 0 the total, then the phases. */
enum { S_TOTAL, S_ANSWER, S_ICE, S_DTLS, S_SCTP, S_N };

static void
print_dist(const char *mode, double *v[S_N], int n, int have_answer)
{
	for (int k = 0; k < S_N; k++)
		qsort(v[k], (size_t)n, sizeof(double), cmp_dbl);
	printf("%-8s %4d | %6.1f %6.1f %6.1f %6.1f %6.1f |", mode, n,
	    pct(v[S_TOTAL], n, 50) * 1e3, pct(v[S_TOTAL], n, 90) * 1e3,
	    pct(v[S_TOTAL], n, 99) * 1e3, v[S_TOTAL][0] * 1e3,
	    v[S_TOTAL][n - 1] * 1e3);
	if (have_answer)
		printf(" %6.1f", pct(v[S_ANSWER], n, 50) * 1e3);
	else
		printf(" %6s", "-");
	printf(" %6.1f %6.1f %6.1f\n", pct(v[S_ICE], n, 50) * 1e3,
	    pct(v[S_DTLS], n, 50) * 1e3, pct(v[S_SCTP], n, 50) * 1e3);
	fflush(stdout);
}

static void
setup(void)
{
	static const char *const keys[S_N] = { "setup", NULL, "ice", "dtls",
	    "sctp" };
	int n = o.runs, m;
	double *v[S_N], pcn[1024];
	struct res r;

	for (int k = 0; k < S_N; k++)
		if ((v[k] = calloc((size_t)n, sizeof(double))) == NULL)
			return;
	printf("\nSetup: pp_pc_create_offer() -> first channel open on the "
	    "offerer, ms.\n"
	    "  in-proc: both pcs on one loop, SDP and candidates handed over by "
	    "direct calls (1 warm-up run not counted);\n"
	    "  forked:  two fresh processes per run, signaling as JSON lines "
	    "over a socketpair.\n"
	    "  Medians of the phases, from the offer: answer back, ICE "
	    "connected, DTLS connected (peer verified), SCTP up.\n\n");
	printf("%-8s %4s | %6s %6s %6s %6s %6s | %6s %6s %6s %6s\n", "mode",
	    "runs", "p50", "p90", "p99", "min", "max", "answer", "ICE", "DTLS",
	    "SCTP");
	printf("-----------------------------------------------------------------"
	    "-------------\n");
	if (o.setup_inproc) {
		run(K_SETUP_INPROC, n, 0, 0, 30.0 * n + 60, &r);
		if (!r.ok || r.arrays == NULL) {
			printf("%-8s FAILED: %s\n", "in-proc", r.err);
		} else {
			json_t *pn = json_object_get(r.arrays, "pcnew");

			m = (int)json_array_size(json_object_get(r.arrays, "setup"));
			if (m > n)
				m = n;
			for (int k = 0; k < S_N; k++)
				for (int i = 0; i < m; i++)
					v[k][i] = keys[k] ? json_number_value(
					    json_array_get(json_object_get(r.arrays,
					    keys[k]), (size_t)i)) : 0;
			for (int i = 0; i < m; i++)
				pcn[i] = json_number_value(json_array_get(pn,
				    (size_t)i));
			if (m > 0) {
				print_dist("in-proc", v, m, 0);
				qsort(pcn, (size_t)m, sizeof(double), cmp_dbl);
				printf("%-8s      (pp_pc_new before the offer, not "
				    "counted: p50 %.2f ms per pc, certificate "
				    "included)\n", "", pct(pcn, m, 50) * 1e3);
			}
			json_decref(r.arrays);
		}
	}
	if (o.setup_fork) {
		m = 0;
		for (int i = -1; i < n; i++) {
			run(K_SETUP_FORK, 1, 0, 0, 30, &r);
			if (!r.ok) {
				printf("%-8s run %d FAILED: %s\n", "forked", i, r.err);
				continue;
			}
			if (i < 0)
				continue;	/* warm-up */
			v[S_TOTAL][m] = r.setup;
			v[S_ANSWER][m] = r.answer;
			v[S_ICE][m] = r.ph.ice;
			v[S_DTLS][m] = r.ph.dtls;
			v[S_SCTP][m] = r.ph.sctp;
			m++;
		}
		if (m > 0)
			print_dist("forked", v, m, 1);
	}
	for (int k = 0; k < S_N; k++)
		free(v[k]);
}

/* "1024", "16K", "1M", "1G" */
static uint64_t
parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);

	switch (*end) {
	case 'k': case 'K': v *= 1024; break;
	case 'm': case 'M': v *= 1024 * 1024; break;
	case 'g': case 'G': v *= 1024.0 * 1024 * 1024; break;
	default: break;
	}
	return v > 0 ? (uint64_t)v : 0;
}

static int
parse_list(const char *arg, int is_size)
{
	char *copy = strdup(arg), *save = NULL;
	int n = 0;

	if (copy == NULL)
		return -1;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		uint64_t v = parse_size(t);

		if (n == MAX_SIZES || v == 0 ||
		    (is_size && v > MAX_MSG) || (!is_size && v > MAX_CH)) {
			fprintf(stderr, "rtcbench: bad list item \"%s\" (sizes 1..%u "
			    "bytes, channels 1..%d, at most %d items)\n", t,
			    MAX_MSG, MAX_CH, MAX_SIZES);
			free(copy);
			return -1;
		}
		if (is_size)
			o.sizes[n++] = (size_t)v;
		else
			o.chans[n++] = (int)v;
	}
	free(copy);
	if (is_size)
		o.nsizes = n;
	else
		o.nchans = n;
	return n > 0 ? 0 : -1;
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: rtcbench [options]\n"
	    "  --bytes N        bytes per throughput cell (default 256M; K/M/G)\n"
	    "  --seconds S      the sender stops after S seconds (default 10)\n"
	    "  --sizes LIST     message sizes (default 1K,16K,64K; max 256K)\n"
	    "  --channels LIST  channel counts (default 1,4; max %d)\n"
	    "  --repeat N       run each throughput cell N times, report the "
	    "median (default 3)\n"
	    "  --runs N         setup runs per mode (default 100)\n"
	    "  --setup MODE     inproc, fork, both (default) or none\n"
	    "  --high-water N   buffered bytes per association before waiting "
	    "(default 1M)\n"
	    "  --udp-buf N      experiment: set SO_RCVBUF/SO_SNDBUF of libnice's "
	    "sockets to N\n"
	    "                   once connected (lib/ice does not; default off)\n"
	    "  --no-throughput  setup only\n"
	    "  --no-tcp         skip the TCP reference\n"
	    "  --no-jumbo       keep 1200-byte SCTP packets on loopback (as towards\n"
	    "                   other stacks; default: 16 KiB, as between our agents)\n"
	    "  --log-level L    library log level in the peers (default error; "
	    "info also prints per-cell details)\n", MAX_CH);
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "bytes", required_argument, NULL, 'b' },
		{ "seconds", required_argument, NULL, 's' },
		{ "sizes", required_argument, NULL, 'S' },
		{ "channels", required_argument, NULL, 'c' },
		{ "repeat", required_argument, NULL, 'r' },
		{ "runs", required_argument, NULL, 'n' },
		{ "setup", required_argument, NULL, 'u' },
		{ "high-water", required_argument, NULL, 'w' },
		{ "udp-buf", required_argument, NULL, 'B' },
		{ "no-throughput", no_argument, NULL, 'T' },
		{ "no-tcp", no_argument, NULL, 'C' },
		{ "no-jumbo", no_argument, NULL, 'J' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char la[128];
	double t0 = now_s();
	int ch;

	o.bytes = 256u << 20;
	o.seconds = 10;
	o.runs = 100;
	o.repeat = 3;
	o.high_water = 1u << 20;
	o.do_tput = o.do_tcp = o.setup_inproc = o.setup_fork = 1;
	o.log_level = PP_LOG_ERROR;
	(void)parse_list("1K,16K,64K", 1);
	(void)parse_list("1,4", 0);
	while ((ch = getopt_long(argc, argv, "h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'b': o.bytes = parse_size(optarg); break;
		case 's': o.seconds = strtod(optarg, NULL); break;
		case 'S': if (parse_list(optarg, 1) < 0) return 2; break;
		case 'c': if (parse_list(optarg, 0) < 0) return 2; break;
		case 'r': o.repeat = atoi(optarg); break;
		case 'n': o.runs = atoi(optarg); break;
		case 'u':
			o.setup_inproc = strcmp(optarg, "inproc") == 0 ||
			    strcmp(optarg, "both") == 0;
			o.setup_fork = strcmp(optarg, "fork") == 0 ||
			    strcmp(optarg, "both") == 0;
			if (!o.setup_inproc && !o.setup_fork &&
			    strcmp(optarg, "none") != 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'w': o.high_water = (size_t)parse_size(optarg); break;
		case 'B': o.udp_buf = (int)parse_size(optarg); break;
		case 'T': o.do_tput = 0; break;
		case 'C': o.do_tcp = 0; break;
		case 'J': o.no_jumbo = 1; break;
		case 'l':
			if (pp_log_parse_level(optarg, &o.log_level) < 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc || o.bytes == 0 || o.seconds <= 0 || o.runs < 1 ||
	    o.runs > 1024 || o.repeat < 1 || o.repeat > 16 ||
	    o.high_water < 64 * 1024 || o.high_water > (64u << 20) ||
	    o.udp_buf < 0 || o.udp_buf > (64 << 20)) {
		fprintf(stderr, "rtcbench: bad arguments (runs 1..1024, repeat "
		    "1..16, high-water 64K..64M)\n");
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	pp_log_set_level(o.log_level);
	print_header();
	if (o.do_tput)
		throughput();
	if (o.setup_inproc || o.setup_fork)
		setup();
	loadavg(la, sizeof(la));
	printf("\n  loadavg   %s (after); total %.0f s\n", la, now_s() - t0);
	return 0;
}
