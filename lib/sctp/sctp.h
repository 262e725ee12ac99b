/*
 * SCTP association and WebRTC data channels (RFC 8831/8832) over usrsctp.
 *
 * Transport-agnostic: SCTP packets leave through ops->send_packet and come
 * back through pp_sctp_input(); DTLS sits below.  usrsctp runs in AF_CONN
 * mode without its own threads (usrsctp_init_nothreads, refcounted across
 * associations); its timers are driven by a uv_timer on the caller's loop
 * every 10 ms while any association exists.
 *
 * Thread: everything here belongs to the one loop thread that owns the
 * uv_loop_t given to pp_sctp_new(); every association of the process must
 * use that same loop.
 *
 * How usrsctp is driven: the receive-callback variant of usrsctp_socket()
 * (not upcalls), because only it reports the free space of the send buffer
 * (which gives the buffered amount), and delivers complete messages without
 * a recv loop.  usrsctp calls its callbacks synchronously from inside
 * usrsctp_connect/sendv/conninput/handle_timers; ours only record (copy the
 * packet, queue the message or event, update counters) and never call
 * usrsctp or user code.  The recorded work is then "settled" after usrsctp
 * returns: queued packets go to send_packet, messages and events to the
 * callbacks below.  So usrsctp is never re-entered and our state is never
 * touched half-way through a usrsctp call.  usrsctp finds an association
 * through a registry token (slot + generation), never a raw pointer.
 *
 * Callbacks: ops->send_packet may run from inside any pp_sctp_ and pp_dc_
 * call (sends flush at once) and from the loop.  All other callbacks
 * (on_connected, on_closed, on_channel and the channel callbacks) run only
 * from pp_sctp_input() or from the loop, never from inside the pp_ call
 * that caused them.  Callbacks may call any function here, including
 * pp_dc_close() and pp_sctp_free() on their own object.
 *
 * Ownership: the caller owns a struct pp_sctp (pp_sctp_new/pp_sctp_free).
 * The association owns its channels: a struct pp_dc is valid from
 * pp_dc_open() (or on_channel) until its on_close callback returns, or
 * until pp_sctp_free(), whichever comes first.
 *
 * Memory is bounded: outgoing messages that usrsctp cannot take yet wait in
 * a per-association queue of at most send_queue_limit bytes (pp_dc_send
 * returns -EAGAIN beyond it: wait for on_buffered_amount_low); a message
 * arriving in pieces is reassembled in at most max_message_size bytes, past
 * which its channel is closed with PP_ETOOBIG.
 */
#ifndef PP_SCTP_SCTP_H
#define PP_SCTP_SCTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PP_SCTP_PORT			5000
#define PP_SCTP_STREAMS			1024
#define PP_SCTP_MAX_MESSAGE		262144	/* what we accept by default */
#define PP_SCTP_REMOTE_MAX_DEFAULT	65536	/* RFC 8841: no attribute */
#define PP_SCTP_UNLIMITED		SIZE_MAX
#define PP_SCTP_SEND_QUEUE_LIMIT	(1024 * 1024)

struct pp_sctp;
struct pp_dc;

enum pp_sctp_state {
	PP_SCTP_NEW,		/* created, pp_sctp_start() not called yet */
	PP_SCTP_CONNECTING,
	PP_SCTP_OPEN,
	PP_SCTP_CLOSED,
};

/* An SCTP packet that fits one DTLS 1.2 AEAD record in a 1200-byte datagram
 * (13-byte record header + 8-byte explicit nonce + 16-byte tag). */
#define PP_SCTP_DEFAULT_PACKET	1160

struct pp_sctp_config {
	uint16_t local_port;		/* 0: 5000 */
	uint16_t remote_port;		/* 0: 5000 */
	/* Our DTLS role: the DTLS client opens channels on even stream ids,
	 * the server on odd ones (RFC 8832 section 6). */
	int dtls_client;
	/* Largest message we accept (our a=max-message-size); 0: 262144. */
	size_t max_message_size;
	/* The peer's a=max-message-size: 0 when the SDP has no attribute
	 * (then 65536, RFC 8841), PP_SCTP_UNLIMITED when it says 0. */
	size_t remote_max_message_size;
	/* Bytes waiting for usrsctp, per association; 0: 1 MiB. */
	size_t send_queue_limit;
	/* Inbound and outbound streams we ask for; 0: 1024. */
	uint16_t streams;
	/* Largest SCTP packet handed to send_packet (it must fit one DTLS
	 * record below); 0: PP_SCTP_DEFAULT_PACKET, at least 576. */
	size_t packet_max;
};

struct pp_sctp_ops {
	/* One SCTP packet for the peer; the buffer is only valid during the
	 * call.  The return value is ignored: SCTP retransmits. */
	int (*send_packet)(void *ctx, const uint8_t *buf, size_t len);
	/* The association is up; channels can open. */
	void (*on_connected)(struct pp_sctp *sctp, void *ctx);
	/* The association ended: 0 after a clean shutdown or pp_sctp_close(),
	 * else -ECONNRESET (peer abort or lost), -ETIMEDOUT (never came up).
	 * Every channel has had on_close before this runs. */
	void (*on_closed)(struct pp_sctp *sctp, int status, void *ctx);
	/* The peer opened a channel.  Call pp_dc_set_ops() here to receive
	 * its events; a channel left without ops is closed again.  NULL:
	 * every channel the peer opens is refused. */
	void (*on_channel)(struct pp_sctp *sctp, struct pp_dc *dc, void *ctx);
};

/*
 * Creates an association (no packet is sent yet).  cfg and ops are copied;
 * ctx is borrowed and passed to every callback.  Returns 0 with *out set, or
 * a negative code (PP_ECONFLICT when another loop already runs SCTP,
 * PP_ELIMIT past 4096 associations, -errno from usrsctp).
 */
int pp_sctp_new(uv_loop_t *loop, const struct pp_sctp_config *cfg,
    const struct pp_sctp_ops *ops, void *ctx, struct pp_sctp **out);

/* Sends INIT (both WebRTC peers do: simultaneous open).  Call once DTLS is
 * up.  Returns 0, PP_ECONFLICT if already started, or -errno. */
int pp_sctp_start(struct pp_sctp *sctp);

/* One SCTP packet from the peer (decrypted DTLS record).  Borrows buf.
 * Starts the association first if pp_sctp_start() has not been called.
 * Returns 0 or PP_EINVAL for an empty or oversized (> 65535) packet. */
int pp_sctp_input(struct pp_sctp *sctp, const uint8_t *buf, size_t len);

/*
 * Whether buf holds a whole SCTP packet: its chunks, each padded to a
 * multiple of 4 bytes as RFC 9260 3.2 requires, end exactly at its end.
 * 0 when they run past it, or stop short (the packet continues in the next
 * piece).  A packet cut into at most PP_SCTP_MAX_PIECES pieces of
 * pp_sctp_cut_size() bytes never looks whole before its last piece: every
 * cut falls at an offset that is not a multiple of 4.  Malformed chunk
 * lengths count as whole: usrsctp drops the packet.
 */
int pp_sctp_packet_whole(const uint8_t *buf, size_t len);

#define PP_SCTP_MAX_PIECES	4

/*
 * Joining the records of one datagram back into SCTP packets (a packet cut
 * by a peer of ours into up to PP_SCTP_MAX_PIECES records).  Zero it to
 * start.  pp_sctp_join_record takes one record: 1 with *pkt a whole packet
 * to hand to pp_sctp_input (the record itself, or the joined pieces; valid
 * until the next call), else 0 (kept, waiting for the next piece).  At the
 * end of the datagram pp_sctp_join_end: 1 with *pkt a lone record that only
 * looked incomplete (a foreign packet whose last chunk lacks its padding),
 * 0 when nothing is left or what is left are pieces of a cut packet, which
 * are dropped -- SCTP's checksum is not verified on input here, so a
 * packet with a piece missing must never reach it.
 */
struct pp_sctp_join {
	uint8_t *buf;
	size_t len, cap;
	unsigned records;
};

int pp_sctp_join_record(struct pp_sctp_join *j, const uint8_t *rec,
    size_t len, const uint8_t **pkt, size_t *pkt_len);
int pp_sctp_join_end(struct pp_sctp_join *j, const uint8_t **pkt,
    size_t *pkt_len);
void pp_sctp_join_free(struct pp_sctp_join *j);

/* The largest piece size <= max for cutting a packet into pieces: 1 modulo
 * 4 (see pp_sctp_packet_whole); 0 if max < 5. */
size_t pp_sctp_cut_size(size_t max);

/*
 * Changes the largest SCTP packet (as packet_max in the config), e.g. when
 * the path turns out to carry bigger datagrams (loopback).  0, PP_EINVAL
 * outside 576..65535, or -errno.
 */
int pp_sctp_set_packet_max(struct pp_sctp *sctp, size_t n);

/*
 * Zero checksums (the idea of RFC 9653, agreed in the tunnel's INIT rather
 * than in SCTP's): this process never verifies inbound SCTP checksums once
 * the stack is up (pp_sctp_zero_checksum_ok(), 1 from the first
 * pp_sctp_new on), since DTLS below has authenticated every packet; a peer
 * that says the same is sent packets whose checksum field is left 0
 * (pp_sctp_set_zero_checksum), which saves a pass over every byte sent.
 * Independent stacks (aiortc, browsers) check, and are never told to.
 */
int pp_sctp_zero_checksum_ok(void);
void pp_sctp_set_zero_checksum(struct pp_sctp *sctp);

/* The peer's a=max-message-size once the answer is known (as in config). */
void pp_sctp_set_remote_max_message_size(struct pp_sctp *sctp, size_t n);

/* Ends the association: a graceful SHUTDOWN once queued data has gone out,
 * or with abort an immediate ABORT.  Channels then get on_close and the
 * association on_closed.  Returns 0 or PP_ECONFLICT if already closed. */
int pp_sctp_close(struct pp_sctp *sctp, int abort);

/* Releases the association and its channels.  NULL-safe.  No callback runs
 * after it, except that send_packet may carry a final ABORT from inside
 * this call when the association was still up. */
void pp_sctp_free(struct pp_sctp *sctp);

enum pp_sctp_state pp_sctp_state(const struct pp_sctp *sctp);
/*
 * The association's smoothed round-trip time in ms (SCTP_STATUS: the
 * primary path's srtt, RFC 4960 6.3.1), or -1 while it is not open.  It
 * covers the whole stack below SCTP (DTLS, ICE, a TURN relay if any); 0
 * means under a millisecond.
 */
int pp_sctp_rtt_ms(const struct pp_sctp *sctp);
/*
 * Sends a HEARTBEAT now (the path below changed, e.g. after an ICE
 * restart): its answer refreshes the RTT estimate and the path's error
 * count.  PP_ECONFLICT unless open.
 */
int pp_sctp_probe(struct pp_sctp *sctp);
/*
 * The retransmission timeout now, in ms, or -1 while not open.  It doubles
 * on every timeout without an answer (data or heartbeat) up to
 * PP_SCTP_RTO_MAX_MS and falls back with the next round-trip sample: at
 * the cap, the peer has acknowledged nothing for several timeouts.
 */
int pp_sctp_rto_ms(const struct pp_sctp *sctp);
#define PP_SCTP_RTO_MAX_MS	3000
/* The largest message pp_dc_send() accepts right now. */
size_t pp_sctp_max_send_size(const struct pp_sctp *sctp);

/* ---- data channels ---- */

enum pp_dc_state {
	PP_DC_CONNECTING,
	PP_DC_OPEN,
	PP_DC_CLOSING,
	PP_DC_CLOSED,
};

enum pp_dc_reliability {
	PP_DC_RELIABLE,
	PP_DC_MAX_RETRANSMITS,	/* pr_value = retransmissions (RFC 3758 RTX) */
	PP_DC_MAX_LIFETIME,	/* pr_value = lifetime in ms (TTL) */
};

/* Zero-initialised: an ordered, reliable, in-band negotiated channel. */
struct pp_dc_init {
	const char *label;		/* NULL: "" */
	const char *protocol;		/* NULL: "" */
	int unordered;
	enum pp_dc_reliability reliability;
	uint32_t pr_value;
	uint16_t priority;		/* DCEP priority; 0: 256 (normal) */
	int negotiated;			/* nonzero: no DCEP, both sides use id */
	uint16_t id;			/* only with negotiated */
};

struct pp_dc_ops {
	void (*on_open)(struct pp_dc *dc, void *ctx);
	/* data is only valid during the call; len is 0 for empty messages. */
	void (*on_message)(struct pp_dc *dc, int binary, const uint8_t *data,
	    size_t len, void *ctx);
	/* Last callback of the channel: 0 for a clean close by either side,
	 * PP_ETOOBIG (peer sent a message over our limit), PP_EDENIED (peer
	 * refused the open), PP_ELIMIT (no such stream), or the association's
	 * status when it ended.  dc is freed when this returns. */
	void (*on_close)(struct pp_dc *dc, int status, void *ctx);
	/* The buffered amount fell from above the low-water mark to at or
	 * below it. */
	void (*on_buffered_amount_low)(struct pp_dc *dc, void *ctx);
};

/*
 * Opens a channel.  Before the association is up the channel waits; on_open
 * runs once it is usable (after our DATA_CHANNEL_OPEN is on its way, or at
 * once for negotiated channels).  ops is copied (may be NULL), ctx borrowed.
 * Returns 0 with *out set, PP_EINVAL (bad init), PP_ECONFLICT (negotiated id
 * in use, or the association closed), PP_ELIMIT (no free stream id).
 */
int pp_dc_open(struct pp_sctp *sctp, const struct pp_dc_init *init,
    const struct pp_dc_ops *ops, void *ctx, struct pp_dc **out);

/* Sets or replaces the callbacks (e.g. from on_channel). */
void pp_dc_set_ops(struct pp_dc *dc, const struct pp_dc_ops *ops, void *ctx);

/*
 * Sends one message.  Text is sent with PPID 51, binary with 53; an empty
 * message as one zero byte with PPID 56 or 57.  The message is taken whole
 * (handed to usrsctp or copied into the send queue) or not at all.  Returns
 * 0, PP_ECONFLICT (channel not open), PP_ETOOBIG (over the peer's max
 * message size or the send queue size), -EAGAIN (send queue full: wait for
 * on_buffered_amount_low), or -errno from usrsctp.
 */
int pp_dc_send(struct pp_dc *dc, int binary, const void *data, size_t len);
int pp_dc_send_text(struct pp_dc *dc, const char *text, size_t len);
int pp_dc_send_binary(struct pp_dc *dc, const void *data, size_t len);

/*
 * Bytes sent on this channel and not yet gone: those in our send queue plus
 * our estimate of those in usrsctp's send buffer (not yet acknowledged),
 * attributed to channels in send order as usrsctp reports free space.
 */
size_t pp_dc_buffered_amount(const struct pp_dc *dc);
/*
 * 1 once the peer has taken the channel: its DATA_CHANNEL_ACK (or any data,
 * an implicit one) came back, or the channel is the peer's or negotiated.
 */
int pp_dc_acknowledged(const struct pp_dc *dc);
/* Low-water mark for on_buffered_amount_low; default 0. */
void pp_dc_set_buffered_amount_low_threshold(struct pp_dc *dc, size_t n);

/* Closes the channel: queued messages are sent, then the outgoing stream is
 * reset; on_close follows.  Returns 0 (also when already closing). */
int pp_dc_close(struct pp_dc *dc);

enum pp_dc_state pp_dc_state(const struct pp_dc *dc);
uint16_t pp_dc_id(const struct pp_dc *dc);
const char *pp_dc_label(const struct pp_dc *dc);
const char *pp_dc_protocol(const struct pp_dc *dc);
int pp_dc_ordered(const struct pp_dc *dc);
struct pp_sctp *pp_dc_sctp(const struct pp_dc *dc);

#endif
