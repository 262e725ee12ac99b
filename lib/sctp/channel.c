/*
 * Data channels on an association: stream ids, DCEP (RFC 8832), the send
 * queue in front of usrsctp, reassembly, closing by stream reset, and the
 * buffered amount.  Runs only inside calls of sctp.h or while assoc.c
 * settles, never inside a usrsctp callback (except the accounting
 * functions pp__acct_*, which touch counters only).
 */
#include "sctp/internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/log.h"
#include "sctp/dcep.h"

#define SUB		"sctp"
#define ACCT_MAX	8192	/* send-order records for attribution */
#define ACCT_MSGS	256	/* messages merged into one record at most */
/*
 * usrsctp limits its send buffer in data bytes only, but each message
 * costs it a few hundred bytes more: tiny messages would let it grow far
 * past SNDBUF.  So we hand it at most this many not yet acknowledged.
 */
#define STACK_MSGS	4096
#define RX_KEEP		65536	/* reassembly buffer kept between messages */

static struct pp_ratelimit rl_drop = PP_RATELIMIT_INIT(5000, 5);
static struct pp_ratelimit rl_proto = PP_RATELIMIT_INIT(5000, 5);

/* ---- streams and channel objects ---- */

static uint16_t
stream_limit(const struct pp_sctp *a)
{
	uint16_t n = a->nstreams;

	if (a->state == PP_SCTP_OPEN) {
		if (a->out_streams < n)
			n = a->out_streams;
		if (a->in_streams < n)
			n = a->in_streams;
	}
	return n;
}

static int
sid_free(const struct pp_sctp *a, uint16_t sid)
{
	return a->streams[sid].dc == NULL && a->streams[sid].flags == 0;
}

static int
alloc_sid(struct pp_sctp *a, uint16_t *sid)
{
	uint16_t lim = stream_limit(a);

	for (uint32_t s = a->dtls_client ? 0 : 1; s < lim; s += 2) {
		if (sid_free(a, (uint16_t)s)) {
			*sid = (uint16_t)s;
			return 0;
		}
	}
	return PP_ELIMIT;
}

static char *
dup_bytes(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s != NULL) {
		if (n)
			memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static struct pp_dc *
dc_new(struct pp_sctp *a, uint16_t sid, const void *label, size_t label_len,
    const void *protocol, size_t protocol_len)
{
	struct pp_dc *dc = calloc(1, sizeof(*dc));

	if (dc == NULL)
		return NULL;
	dc->label = dup_bytes(label, label_len);
	dc->protocol = dup_bytes(protocol, protocol_len);
	if (dc->label == NULL || dc->protocol == NULL) {
		free(dc->label);
		free(dc->protocol);
		free(dc);
		return NULL;
	}
	dc->sctp = a;
	dc->sid = sid;
	dc->state = PP_DC_CONNECTING;
	if (++a->next_uid == 0)
		a->next_uid = 1;
	dc->uid = a->next_uid;
	if (a->channels_tail)
		a->channels_tail->next = dc;
	else
		a->channels = dc;
	a->channels_tail = dc;
	a->streams[sid].dc = dc;
	return dc;
}

/*
 * Drops the channel's messages that usrsctp has not started on.  One it has
 * started stays: usrsctp locks the association to that stream until the
 * message is complete.  forget: the channel is going away, so such a
 * message stops naming it.
 */
static void
drop_unsent(struct pp_dc *dc, int forget)
{
	struct pp_sctp *a = dc->sctp;
	struct pp__tx **pp = &a->tx_head, *e;

	a->tx_tail = NULL;
	while ((e = *pp) != NULL) {
		if (e->dc == dc && !e->started) {
			*pp = e->next;
			a->tx_bytes -= e->len - e->off;
			a->tx_entries--;
			if (e->counted)
				dc->q_bytes -= e->len - e->off;
			dc->tx_count--;
			free(e);
			continue;
		}
		if (e->dc == dc && forget) {
			if (e->counted)
				dc->q_bytes -= e->len - e->off;
			e->dc = NULL;
			e->counted = 0;
			dc->tx_count--;
		}
		a->tx_tail = e;
		pp = &e->next;
	}
}

static void
dc_free(struct pp_dc *dc)
{
	struct pp_sctp *a = dc->sctp;
	struct pp_dc **pp, *prev = NULL;

	drop_unsent(dc, 1);
	for (pp = &a->channels; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if (*pp == dc) {
			*pp = dc->next;
			if (a->channels_tail == dc)
				a->channels_tail = prev;
			break;
		}
	}
	if (a->streams[dc->sid].dc == dc)
		a->streams[dc->sid].dc = NULL;
	free(dc->rx);
	free(dc->label);
	free(dc->protocol);
	free(dc);
}

/* The last callback of a channel; it is freed when the callback returns. */
static void
fire_close(struct pp_dc *dc)
{
	dc->state = PP_DC_CLOSED;
	dc->pending_close = 0;
	if (dc->has_ops && dc->ops.on_close)
		dc->ops.on_close(dc, dc->close_status, dc->ctx);
	dc_free(dc);
}

static void
fire_open(struct pp_dc *dc)
{
	dc->pending_open = 0;
	if (dc->state != PP_DC_CONNECTING)
		return;
	dc->state = PP_DC_OPEN;
	if (dc->has_ops && dc->ops.on_open)
		dc->ops.on_open(dc, dc->ctx);
}

/* ---- buffered amount: attribution of usrsctp's send buffer ---- */

static int
acct_grow(struct pp_sctp *a)
{
	size_t cap = a->ring_cap ? a->ring_cap * 2 : 64;
	struct pp__acct *r;

	if (a->ring_cap >= ACCT_MAX || (r = malloc(cap * sizeof(*r))) == NULL)
		return -1;
	for (size_t i = 0; i < a->ring_len; i++)
		r[i] = a->ring[(a->ring_start + i) % a->ring_cap];
	free(a->ring);
	a->ring = r;
	a->ring_cap = cap;
	a->ring_start = 0;
	return 0;
}

/* n bytes of dc (NULL: control or empty message) went into usrsctp;
 * first: they begin a message. */
static void
acct_add(struct pp_sctp *a, struct pp_dc *dc, size_t n, int first)
{
	struct pp__acct *tail = NULL;
	uint32_t uid = dc ? dc->uid : 0;

	if (n > UINT32_MAX)
		return;
	if (a->ring_len > 0)
		tail = &a->ring[(a->ring_start + a->ring_len - 1) % a->ring_cap];
	if (tail != NULL && tail->uid == uid && tail->bytes <= UINT32_MAX - n &&
	    tail->msgs < ACCT_MSGS) {
		tail->bytes += (uint32_t)n;
	} else if (a->ring_len < a->ring_cap || acct_grow(a) == 0) {
		tail = &a->ring[(a->ring_start + a->ring_len) % a->ring_cap];
		tail->sid = dc ? dc->sid : 0;
		tail->uid = uid;
		tail->bytes = (uint32_t)n;
		tail->msgs = 0;
		a->ring_len++;
	} else {
		/* Out of records: leave the bytes uncounted.  usrsctp's free
		 * space then drains older records later than it could, so the
		 * buffered amount errs high until the sender is dry. */
		return;
	}
	if (first) {
		tail->msgs++;
		a->stack_msgs++;
	}
	a->stack_bytes += n;
	if (dc != NULL)
		dc->stack_bytes += n;
}

/* usrsctp reports in_stack_now bytes in its send buffer: what left it is
 * taken from the oldest records first. */
void
pp__acct_drain_to(struct pp_sctp *a, size_t in_stack_now)
{
	size_t drop;

	if (in_stack_now >= a->stack_bytes)
		return;
	drop = a->stack_bytes - in_stack_now;
	a->stack_bytes = in_stack_now;
	while (drop > 0 && a->ring_len > 0) {
		struct pp__acct *e = &a->ring[a->ring_start];
		size_t take = drop < e->bytes ? drop : e->bytes;

		e->bytes -= (uint32_t)take;
		drop -= take;
		if (e->uid != 0 && e->sid < a->nstreams) {
			struct pp_dc *dc = a->streams[e->sid].dc;

			if (dc != NULL && dc->uid == e->uid)
				dc->stack_bytes -= take < dc->stack_bytes ?
				    take : dc->stack_bytes;
		}
		if (e->bytes == 0) {
			/* Its messages are only known gone once all are. */
			a->stack_msgs -= e->msgs < a->stack_msgs ? e->msgs :
			    a->stack_msgs;
			a->ring_start = (a->ring_start + 1) % a->ring_cap;
			a->ring_len--;
		}
	}
}

/* Sender dry, or the association is gone: nothing of ours is in usrsctp. */
void
pp__acct_reset(struct pp_sctp *a)
{
	for (struct pp_dc *dc = a->channels; dc != NULL; dc = dc->next)
		dc->stack_bytes = 0;
	a->stack_bytes = 0;
	a->stack_msgs = 0;
	a->ring_start = 0;
	a->ring_len = 0;
}

int
pp_dc_acknowledged(const struct pp_dc *dc)
{
	return dc->on_wire && !dc->waiting_ack;
}

size_t
pp_dc_buffered_amount(const struct pp_dc *dc)
{
	return dc->q_bytes + dc->stack_bytes;
}

/* ---- send path ---- */

/* Returns bytes usrsctp took (> 0), -EAGAIN when it has no room, -errno. */
static long
tx_sendv(struct pp_sctp *a, const struct pp__tx *m, const uint8_t *data,
    size_t len)
{
	struct sctp_sendv_spa spa;
	ssize_t n;

	if (a->sock == NULL)
		return -ENOTCONN;
	memset(&spa, 0, sizeof(spa));
	spa.sendv_flags = SCTP_SEND_SNDINFO_VALID;
	spa.sendv_sndinfo.snd_sid = m->sid;
	/* Explicit EOR: usrsctp may take part of the message; the rest
	 * follows in later calls, the last one completing it. */
	spa.sendv_sndinfo.snd_flags = SCTP_EOR | m->flags;
	spa.sendv_sndinfo.snd_ppid = htonl(m->ppid);
	if (m->pr_policy != SCTP_PR_SCTP_NONE) {
		spa.sendv_flags |= SCTP_SEND_PRINFO_VALID;
		spa.sendv_prinfo.pr_policy = m->pr_policy;
		spa.sendv_prinfo.pr_value = m->pr_value;
	}
	errno = 0;
	n = usrsctp_sendv(a->sock, data, len, NULL, 0, &spa, sizeof(spa),
	    SCTP_SENDV_SPA, 0);
	if (n > 0)
		return (long)n;
	if (n == 0 || errno == EWOULDBLOCK || errno == EAGAIN)
		return -EAGAIN;
	return errno ? -errno : -EIO;
}

static void
tx_took(struct pp_sctp *a, const struct pp__tx *m, size_t n)
{
	acct_add(a, m->counted ? m->dc : NULL, n, !m->started);
}

/*
 * Hands a message to usrsctp, or queues what it cannot take yet.  The queue
 * is strictly FIFO: without I-DATA usrsctp locks the association to the
 * stream of a half-taken message, so nothing may overtake one.  The byte
 * limit is pp_dc_send's to check; DCEP messages are exempt (tiny, at most
 * two per stream).
 */
static int
tx_submit(struct pp_sctp *a, const struct pp__tx *m, const uint8_t *data,
    size_t len)
{
	struct pp__tx *e;
	size_t done = 0;

	if (a->tx_head == NULL && a->writable && a->stack_msgs < STACK_MSGS) {
		long n = tx_sendv(a, m, data, len);

		if (n == -EAGAIN) {
			a->writable = 0;
		} else if (n < 0) {
			return (int)n;
		} else {
			done = (size_t)n;
			tx_took(a, m, done);
			if (done == len)
				return 0;
			a->writable = 0;
		}
	}
	if ((e = malloc(sizeof(*e) + (len - done))) == NULL) {
		if (done > 0) {
			/* Half a message in usrsctp and no memory for the
			 * rest: the association cannot continue. */
			a->pending_down = 1;
			a->down_status = -ENOMEM;
			if (a->sock != NULL) {
				usrsctp_close(a->sock);
				a->sock = NULL;
			}
			a->state = PP_SCTP_CLOSED;
			pp__sctp_defer(a);
		}
		return -ENOMEM;
	}
	*e = *m;
	e->next = NULL;
	e->len = len - done;
	e->off = 0;
	e->started = done > 0;
	memcpy(e->data, data + done, len - done);
	if (a->tx_tail)
		a->tx_tail->next = e;
	else
		a->tx_head = e;
	a->tx_tail = e;
	a->tx_bytes += e->len;
	a->tx_entries++;
	if (e->dc != NULL) {
		e->dc->tx_count++;
		if (e->counted)
			e->dc->q_bytes += e->len;
	}
	return 0;
}

void
pp__tx_pump(struct pp_sctp *a)
{
	static struct pp_ratelimit rl = PP_RATELIMIT_INIT(5000, 5);
	struct pp__tx *e;
	unsigned skipped;

	while ((e = a->tx_head) != NULL && a->writable) {
		long n;
		size_t took;

		/* A begun message must complete: it holds the stream lock. */
		if (!e->started && a->stack_msgs >= STACK_MSGS)
			break;
		n = tx_sendv(a, e, e->data + e->off, e->len - e->off);
		if (n == -EAGAIN) {
			a->writable = 0;
			break;
		}
		if (n < 0) {
			if (pp_ratelimit_ok(&rl, &skipped))
				pp_warn(SUB, "stream %u: message dropped: %s",
				    e->sid, pp_strerror((int)n));
			took = e->len - e->off;
		} else {
			took = (size_t)n;
			tx_took(a, e, took);
			e->started = 1;
		}
		e->off += took;
		a->tx_bytes -= took;
		if (e->dc != NULL && e->counted)
			e->dc->q_bytes -= took;
		if (e->off < e->len) {
			a->writable = 0;
			break;
		}
		if ((a->tx_head = e->next) == NULL)
			a->tx_tail = NULL;
		a->tx_entries--;
		if (e->dc != NULL)
			e->dc->tx_count--;
		free(e);
	}
}

void
pp__tx_free_all(struct pp_sctp *a)
{
	struct pp__tx *e, *next;

	for (e = a->tx_head; e != NULL; e = next) {
		next = e->next;
		free(e);
	}
	a->tx_head = a->tx_tail = NULL;
	a->tx_bytes = 0;
	a->tx_entries = 0;
	for (struct pp_dc *dc = a->channels; dc != NULL; dc = dc->next) {
		dc->tx_count = 0;
		dc->q_bytes = 0;
	}
}

static void
control_header(struct pp_dc *dc, struct pp__tx *m)
{
	memset(m, 0, sizeof(*m));
	m->dc = dc;		/* so the stream reset waits for it */
	m->sid = dc->sid;
	m->ppid = PP_PPID_DCEP;
	m->pr_policy = SCTP_PR_SCTP_NONE;
}

static int
send_open(struct pp_dc *dc)
{
	struct pp_dcep_msg msg;
	struct pp__tx m;
	uint8_t *buf;
	int n, rc;

	memset(&msg, 0, sizeof(msg));
	msg.channel_type = dc->channel_type;
	msg.priority = dc->priority;
	msg.reliability = dc->reliability;
	msg.label = (const uint8_t *)dc->label;
	msg.label_len = strlen(dc->label);
	msg.protocol = (const uint8_t *)dc->protocol;
	msg.protocol_len = strlen(dc->protocol);
	if ((buf = malloc(pp_dcep_open_size(&msg))) == NULL)
		return -ENOMEM;
	if ((n = pp_dcep_build_open(&msg, buf, pp_dcep_open_size(&msg))) < 0) {
		free(buf);
		return n;
	}
	control_header(dc, &m);
	rc = tx_submit(dc->sctp, &m, buf, (size_t)n);
	free(buf);
	return rc;
}

static int
send_ack(struct pp_dc *dc)
{
	struct pp__tx m;
	uint8_t buf[1];
	int n = pp_dcep_build_ack(buf, sizeof(buf));

	if (n < 0)
		return n;
	control_header(dc, &m);
	return tx_submit(dc->sctp, &m, buf, (size_t)n);
}

/* The channel's first message on the wire: OPEN, or nothing if negotiated. */
static int
dc_go_live(struct pp_dc *dc)
{
	int rc;

	if (!dc->negotiated) {
		if ((rc = send_open(dc)) < 0)
			return rc;
		dc->waiting_ack = 1;
	}
	dc->on_wire = 1;
	dc->pending_open = 1;
	pp__sctp_defer(dc->sctp);
	return 0;
}

/* ---- closing ---- */

static int
request_reset(struct pp_sctp *a, uint16_t sid)
{
	uint32_t raw[4];	/* header + one stream id, aligned */
	struct sctp_reset_streams *srs = (struct sctp_reset_streams *)raw;
	size_t size = sizeof(*srs) + sizeof(uint16_t);

	if (a->sock == NULL)
		return -ENOTCONN;
	memset(raw, 0, sizeof(raw));
	srs->srs_assoc_id = SCTP_ALL_ASSOC;
	srs->srs_flags = SCTP_STREAM_RESET_OUTGOING;
	srs->srs_number_streams = 1;
	srs->srs_stream_list[0] = sid;
	if (usrsctp_setsockopt(a->sock, IPPROTO_SCTP, SCTP_RESET_STREAMS, srs,
	    (socklen_t)size) < 0)
		return errno ? -errno : -EIO;
	return 0;
}

/* Our half of closing: reset the outgoing stream. */
static void
do_reset(struct pp_dc *dc)
{
	struct pp_sctp *a = dc->sctp;
	int rc = request_reset(a, dc->sid);

	dc->reset_sent = 1;
	if (rc < 0) {
		pp_warn(SUB, "stream %u: cannot reset (%s); closing anyway",
		    dc->sid, pp_strerror(rc));
		a->streams[dc->sid].flags |= PP__S_STUCK;
		dc->pending_close = 1;
		pp__sctp_defer(a);
		return;
	}
	a->streams[dc->sid].flags |= PP__S_OUT_RESETTING;
	if (!dc->in_reset)
		a->streams[dc->sid].flags |= PP__S_IN_AWAIT;
}

/*
 * Starts closing.  remote: the peer reset its stream (or we refuse it), so
 * our unsent messages go; a local close sends them first (W3C closing).
 */
static void
close_start(struct pp_dc *dc, int status, int remote)
{
	struct pp_sctp *a = dc->sctp;

	if (dc->state == PP_DC_CLOSING || dc->state == PP_DC_CLOSED)
		return;
	dc->state = PP_DC_CLOSING;
	dc->close_status = status;
	dc->pending_open = 0;
	if (remote)
		drop_unsent(dc, 0);
	if (!dc->on_wire || a->state != PP_SCTP_OPEN)
		dc->pending_close = 1;
	else
		dc->reset_wanted = 1;
	pp__sctp_defer(a);
}

/* Refuses a stream the peer opened: reset it, send no ACK (RFC 8832 6). */
static void
refuse(struct pp_sctp *a, uint16_t sid)
{
	if (sid >= a->nstreams || !sid_free(a, sid))
		return;
	if (request_reset(a, sid) == 0)
		a->streams[sid].flags |= PP__S_OUT_RESETTING;
}

void
pp__dc_stream_reset(struct pp_sctp *a, uint16_t flags, const uint8_t *list,
    size_t n)
{
	size_t count = n ? n : a->nstreams;	/* empty list: every stream */

	if (flags & (SCTP_STREAM_RESET_DENIED | SCTP_STREAM_RESET_FAILED))
		pp_warn(SUB, "stream reset %s by the peer",
		    (flags & SCTP_STREAM_RESET_DENIED) ? "denied" : "failed");
	for (size_t i = 0; i < count && !a->dying; i++) {
		uint16_t sid = (uint16_t)i;
		struct pp__stream *s;
		struct pp_dc *dc;

		if (n)
			memcpy(&sid, list + i * sizeof(sid), sizeof(sid));
		if (sid >= a->nstreams)
			continue;
		s = &a->streams[sid];
		dc = s->dc;
		if (flags & SCTP_STREAM_RESET_INCOMING_SSN) {
			/* The peer will send no more on this stream. */
			s->flags &= (uint8_t)~PP__S_IN_AWAIT;
			if (dc != NULL) {
				dc->in_reset = 1;
				dc->rx_len = 0;
				dc->rx_discard = 0;
				close_start(dc, dc->waiting_ack ? PP_EDENIED : 0,
				    1);
			}
		}
		if (flags & SCTP_STREAM_RESET_OUTGOING_SSN) {
			s->flags &= (uint8_t)~PP__S_OUT_RESETTING;
			if (flags & (SCTP_STREAM_RESET_DENIED |
			    SCTP_STREAM_RESET_FAILED))
				s->flags |= PP__S_STUCK;
			if (dc != NULL && dc->reset_sent)
				fire_close(dc);
		}
	}
	a->writable = 1;
}

/* ---- receive path ---- */

static void
drop_log(uint16_t sid, const char *why)
{
	unsigned skipped;

	if (pp_ratelimit_ok(&rl_drop, &skipped))
		pp_debug(SUB, "stream %u: message dropped: %s", sid, why);
}

/* Both sides opened the same stream: the DTLS roles they assume differ. */
static void
collision(uint16_t sid)
{
	unsigned skipped;

	if (pp_ratelimit_ok(&rl_proto, &skipped))
		pp_warn(SUB, "stream %u: DATA_CHANNEL_OPEN on a stream in use, "
		    "ignored (do both sides agree on the DTLS roles?)", sid);
}

static void
dcep_open(struct pp_sctp *a, uint16_t sid, const struct pp_dcep_msg *msg)
{
	struct pp_dc *dc;
	int rc;

	if (sid >= stream_limit(a) || !sid_free(a, sid)) {
		/* Not ours to reset: it would kill the channel there. */
		collision(sid);
		return;
	}
	if ((sid & 1) == (a->dtls_client ? 0 : 1) && !a->parity_warned) {
		/* aiortc 1.4 picks parity by ICE role, not DTLS role. */
		a->parity_warned = 1;
		pp_warn(SUB, "peer opened stream %u with our parity (DTLS and "
		    "ICE roles disagree?); accepted", sid);
	}
	if (a->ops.on_channel == NULL) {
		refuse(a, sid);
		return;
	}
	dc = dc_new(a, sid, msg->label, msg->label_len, msg->protocol,
	    msg->protocol_len);
	if (dc == NULL) {
		refuse(a, sid);
		return;
	}
	dc->remote = 1;
	dc->on_wire = 1;
	dc->channel_type = msg->channel_type;
	dc->priority = msg->priority;
	dc->reliability = msg->reliability;
	dc->state = PP_DC_OPEN;
	if ((rc = send_ack(dc)) < 0)
		pp_warn(SUB, "stream %u: DATA_CHANNEL_ACK: %s", sid,
		    pp_strerror(rc));
	a->ops.on_channel(a, dc, a->ctx);
	if (a->dying || dc->state != PP_DC_OPEN)
		return;
	if (!dc->has_ops) {
		close_start(dc, 0, 0);
		return;
	}
	if (dc->ops.on_open)
		dc->ops.on_open(dc, dc->ctx);
}

static void
dcep_input(struct pp_sctp *a, uint16_t sid, struct pp_dc *dc,
    const uint8_t *data, size_t len)
{
	struct pp_dcep_msg msg;
	unsigned skipped;
	int rc;

	if ((rc = pp_dcep_parse(data, len, &msg)) < 0) {
		if (pp_ratelimit_ok(&rl_proto, &skipped))
			pp_warn(SUB, "stream %u: bad DCEP message (%zu bytes): "
			    "%s", sid, len, pp_strerror(rc));
		if (dc == NULL)
			refuse(a, sid);
		return;
	}
	if (msg.type == PP_DCEP_ACK) {
		if (dc != NULL)
			dc->waiting_ack = 0;
		return;
	}
	if (dc != NULL) {
		collision(sid);
		return;
	}
	dcep_open(a, sid, &msg);
}

static void
oversize(struct pp_dc *dc, size_t len)
{
	unsigned skipped;

	if (pp_ratelimit_ok(&rl_proto, &skipped))
		pp_warn(SUB, "stream %u: message of %zu+ bytes over our limit "
		    "%zu; closing the channel", dc->sid, len,
		    dc->sctp->max_message_size);
	dc->rx_len = 0;
	close_start(dc, PP_ETOOBIG, 0);
}

static void
deliver(struct pp_dc *dc, uint32_t ppid, const uint8_t *data, size_t len)
{
	int binary;

	switch (ppid) {
	case PP_PPID_DCEP:
		dcep_input(dc->sctp, dc->sid, dc, data, len);
		return;
	case PP_PPID_STRING:
		binary = 0;
		break;
	case PP_PPID_BINARY:
		binary = 1;
		break;
	case PP_PPID_STRING_EMPTY:
		binary = 0;
		len = 0;
		break;
	case PP_PPID_BINARY_EMPTY:
		binary = 1;
		len = 0;
		break;
	default:
		drop_log(dc->sid, "unknown PPID");
		return;
	}
	/* Data from the peer is an implicit ACK (RFC 8832 section 6). */
	dc->waiting_ack = 0;
	if (dc->pending_open)
		fire_open(dc);
	if (dc->state != PP_DC_OPEN || !dc->has_ops || !dc->ops.on_message ||
	    dc->sctp->dying)
		return;
	dc->ops.on_message(dc, binary, len ? data : (const uint8_t *)"", len,
	    dc->ctx);
}

void
pp__dc_input(struct pp_sctp *a, uint16_t sid, uint32_t ppid, int eor,
    const uint8_t *data, size_t len)
{
	struct pp_dc *dc = sid < a->nstreams ? a->streams[sid].dc : NULL;

	if (dc == NULL) {
		if (ppid == PP_PPID_DCEP && eor)
			dcep_input(a, sid, NULL, data, len);
		else
			drop_log(sid, "no channel");
		return;
	}
	if (dc->rx_discard) {
		/* The rest of a message we refused. */
		if (eor)
			dc->rx_discard = 0;
		return;
	}
	if (dc->rx_len == 0 && eor) {
		if (len > a->max_message_size)
			oversize(dc, len);
		else
			deliver(dc, ppid, data, len);
		return;
	}
	/* A piece of a message larger than usrsctp's delivery point. */
	if (dc->rx_len == 0)
		dc->rx_ppid = ppid;
	if (len > a->max_message_size - dc->rx_len) {
		oversize(dc, dc->rx_len + len);
		dc->rx_discard = !eor;
		return;
	}
	if (dc->rx_len + len > dc->rx_cap) {
		size_t cap = dc->rx_cap ? dc->rx_cap : 65536;
		uint8_t *p;

		while (cap < dc->rx_len + len)
			cap *= 2;
		if (cap > a->max_message_size)
			cap = a->max_message_size;
		if ((p = realloc(dc->rx, cap)) == NULL) {
			dc->rx_len = 0;
			dc->rx_discard = !eor;
			close_start(dc, -ENOMEM, 0);
			return;
		}
		dc->rx = p;
		dc->rx_cap = cap;
	}
	memcpy(dc->rx + dc->rx_len, data, len);
	dc->rx_len += len;
	if (!eor)
		return;
	len = dc->rx_len;
	dc->rx_len = 0;
	deliver(dc, dc->rx_ppid, dc->rx, len);
	if (dc->rx_cap > RX_KEEP && dc->rx_len == 0) {
		free(dc->rx);
		dc->rx = NULL;
		dc->rx_cap = 0;
	}
}

void
pp__dc_pd_aborted(struct pp_sctp *a, uint16_t sid)
{
	struct pp_dc *dc = sid < a->nstreams ? a->streams[sid].dc : NULL;

	if (dc != NULL) {
		dc->rx_len = 0;
		dc->rx_discard = 0;
	}
}

/* ---- association-wide transitions ---- */

void
pp__dc_assoc_up(struct pp_sctp *a)
{
	uint16_t lim = stream_limit(a);
	int rc;

	for (struct pp_dc *dc = a->channels; dc != NULL; dc = dc->next) {
		if (dc->state != PP_DC_CONNECTING || dc->on_wire)
			continue;
		if (dc->sid >= lim) {
			rc = PP_ELIMIT;
		} else if ((rc = dc_go_live(dc)) == 0) {
			continue;
		}
		dc->state = PP_DC_CLOSING;
		dc->close_status = rc;
		dc->pending_close = 1;
		pp__sctp_defer(a);
	}
}

/* Deferred channel events; runs while the association settles. */
void
pp__dc_events(struct pp_sctp *a)
{
	struct pp_dc *dc, *next;

	for (dc = a->channels; dc != NULL && !a->dying; dc = next) {
		next = dc->next;
		if (dc->pending_open) {
			fire_open(dc);
			if (a->dying)
				return;
		}
		if (dc->reset_wanted && !dc->reset_sent && dc->tx_count == 0 &&
		    a->state == PP_SCTP_OPEN)
			do_reset(dc);
		if (dc->pending_close) {
			fire_close(dc);
			continue;
		}
		if (dc->low_armed &&
		    pp_dc_buffered_amount(dc) <= dc->low_threshold) {
			dc->low_armed = 0;
			if (dc->state == PP_DC_OPEN && dc->has_ops &&
			    dc->ops.on_buffered_amount_low)
				dc->ops.on_buffered_amount_low(dc, dc->ctx);
		}
	}
}

void
pp__dc_close_all(struct pp_sctp *a, int status)
{
	while (a->channels != NULL && !a->dying) {
		struct pp_dc *dc = a->channels;

		if (dc->state != PP_DC_CLOSING || dc->close_status == 0)
			dc->close_status = status;
		fire_close(dc);
	}
}

void
pp__dc_free_all(struct pp_sctp *a)
{
	pp__tx_free_all(a);
	while (a->channels != NULL)
		dc_free(a->channels);
}

/* ---- API ---- */

int
pp_dc_open(struct pp_sctp *a, const struct pp_dc_init *init,
    const struct pp_dc_ops *ops, void *ctx, struct pp_dc **out)
{
	const char *label, *protocol;
	struct pp_dc *dc;
	uint8_t type;
	uint16_t sid;
	int rc = 0;

	*out = NULL;
	if (a == NULL || init == NULL)
		return PP_EINVAL;
	if (a->dying || a->closing || a->state == PP_SCTP_CLOSED)
		return PP_ECONFLICT;
	label = init->label ? init->label : "";
	protocol = init->protocol ? init->protocol : "";
	if (strlen(label) > UINT16_MAX || strlen(protocol) > UINT16_MAX)
		return PP_EINVAL;
	switch (init->reliability) {
	case PP_DC_RELIABLE:
		type = PP_DCEP_RELIABLE;
		break;
	case PP_DC_MAX_RETRANSMITS:
		type = PP_DCEP_REXMIT;
		break;
	case PP_DC_MAX_LIFETIME:
		type = PP_DCEP_TIMED;
		break;
	default:
		return PP_EINVAL;
	}
	if (init->unordered)
		type |= PP_DCEP_UNORDERED_BIT;
	if (init->negotiated) {
		if (init->id >= stream_limit(a))
			return PP_ELIMIT;
		if (!sid_free(a, init->id))
			return PP_ECONFLICT;
		sid = init->id;
	} else if ((rc = alloc_sid(a, &sid)) < 0) {
		return rc;
	}
	if ((dc = dc_new(a, sid, label, strlen(label), protocol,
	    strlen(protocol))) == NULL)
		return -ENOMEM;
	dc->negotiated = init->negotiated != 0;
	dc->channel_type = type;
	dc->priority = init->priority ? init->priority : 256;
	dc->reliability = init->reliability == PP_DC_RELIABLE ? 0 :
	    init->pr_value;
	pp_dc_set_ops(dc, ops, ctx);

	pp__sctp_enter(a);
	if (a->state == PP_SCTP_OPEN && (rc = dc_go_live(dc)) < 0)
		dc_free(dc);
	else
		*out = dc;
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	return rc;
}

void
pp_dc_set_ops(struct pp_dc *dc, const struct pp_dc_ops *ops, void *ctx)
{
	if (ops != NULL) {
		dc->ops = *ops;
		dc->has_ops = 1;
	} else {
		memset(&dc->ops, 0, sizeof(dc->ops));
		dc->has_ops = 0;
	}
	dc->ctx = ctx;
}

int
pp_dc_send(struct pp_dc *dc, int binary, const void *data, size_t len)
{
	static const uint8_t zero;
	struct pp_sctp *a = dc->sctp;
	struct pp__tx m;
	int rc;

	if (dc->state != PP_DC_OPEN || a->state != PP_SCTP_OPEN || a->closing ||
	    a->dying)
		return PP_ECONFLICT;
	if (data == NULL && len > 0)
		return PP_EINVAL;
	if (len > a->remote_max || len > a->send_queue_limit)
		return PP_ETOOBIG;
	memset(&m, 0, sizeof(m));
	m.dc = dc;
	m.sid = dc->sid;
	m.counted = len > 0;
	if (len == 0) {
		m.ppid = binary ? PP_PPID_BINARY_EMPTY : PP_PPID_STRING_EMPTY;
		data = &zero;
		len = 1;
	} else {
		m.ppid = binary ? PP_PPID_BINARY : PP_PPID_STRING;
	}
	/* Entries count with their overhead: many tiny messages must not
	 * outgrow the limit either. */
	if (a->tx_bytes + a->tx_entries * sizeof(struct pp__tx) + len >
	    a->send_queue_limit)
		return -EAGAIN;
	/* Ordered until the peer has answered (RFC 8832 section 6), so our
	 * data cannot overtake the DATA_CHANNEL_OPEN. */
	if ((dc->channel_type & PP_DCEP_UNORDERED_BIT) && !dc->waiting_ack)
		m.flags = SCTP_UNORDERED;
	switch (PP_DCEP_POLICY(dc->channel_type)) {
	case PP_DCEP_REXMIT:
		m.pr_policy = SCTP_PR_SCTP_RTX;
		m.pr_value = dc->reliability;
		break;
	case PP_DCEP_TIMED:
		m.pr_policy = SCTP_PR_SCTP_TTL;
		m.pr_value = dc->reliability;
		break;
	default:
		m.pr_policy = SCTP_PR_SCTP_NONE;
		break;
	}
	pp__sctp_enter(a);
	rc = tx_submit(a, &m, data, len);
	if (rc == 0 && pp_dc_buffered_amount(dc) > dc->low_threshold)
		dc->low_armed = 1;
	pp__sctp_flush(a, 0);
	pp__sctp_leave(a);
	return rc;
}

int
pp_dc_send_text(struct pp_dc *dc, const char *text, size_t len)
{
	return pp_dc_send(dc, 0, text, len);
}

int
pp_dc_send_binary(struct pp_dc *dc, const void *data, size_t len)
{
	return pp_dc_send(dc, 1, data, len);
}

void
pp_dc_set_buffered_amount_low_threshold(struct pp_dc *dc, size_t n)
{
	dc->low_threshold = n;
	if (pp_dc_buffered_amount(dc) > n)
		dc->low_armed = 1;
}

int
pp_dc_close(struct pp_dc *dc)
{
	close_start(dc, 0, 0);
	return 0;
}

enum pp_dc_state
pp_dc_state(const struct pp_dc *dc)
{
	return dc->state;
}

uint16_t
pp_dc_id(const struct pp_dc *dc)
{
	return dc->sid;
}

const char *
pp_dc_label(const struct pp_dc *dc)
{
	return dc->label;
}

const char *
pp_dc_protocol(const struct pp_dc *dc)
{
	return dc->protocol;
}

int
pp_dc_ordered(const struct pp_dc *dc)
{
	return !(dc->channel_type & PP_DCEP_UNORDERED_BIT);
}

struct pp_sctp *
pp_dc_sctp(const struct pp_dc *dc)
{
	return dc->sctp;
}
