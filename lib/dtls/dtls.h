/*
 * A DTLS 1.2 endpoint (RFC 6347) for WebRTC data channels, with no transport
 * underneath: the owner feeds it datagrams received from ICE and puts the
 * datagrams it emits on the wire.  Both sides present a certificate; the
 * peer is authenticated only by the SHA-256 fingerprint of its certificate
 * as signalled in SDP (RFC 8122, RFC 8842), never by a CA chain.
 *
 * Thread: one pp_dtls belongs to the owner's loop thread; every call,
 * including pp_dtls_free(), is made on that thread, and every callback runs
 * on it, synchronously inside one of the calls below.
 *
 * Callbacks (the libuv contract): a call that fails synchronously never runs
 * a callback for that failure.  on_closed runs at most once, and after it
 * (or after pp_dtls_close()) no callback runs again.  A callback may call
 * pp_dtls_send(), pp_dtls_close() and even pp_dtls_free() on its own
 * endpoint (the free is then deferred until the call that ran the callback
 * returns).  send_packet must not feed a datagram back into the same
 * endpoint synchronously: it should queue it (pp_dtls_input() refuses
 * re-entry with PP_ECONFLICT).
 *
 * Timers: the owner drives retransmission.  After each call into an
 * endpoint, read pp_dtls_next_timeout_ms() and (re)arm a timer (a
 * uv_timer_t) for it, or stop it on -1; when it fires, call
 * pp_dtls_handle_timeout() and re-read.  OpenSSL keeps the time itself
 * (gettimeofday) and counts less than 15 ms left as expired; it also
 * retransmits on its own when input finds the timer expired.
 *
 * Fingerprint before or after: the remote fingerprint may be given at
 * creation or later (the answer SDP may arrive after the first DTLS
 * packets).  The handshake runs either way; if it ends before the
 * fingerprint is known the endpoint waits in PP_DTLS_VERIFYING, holding at
 * most PP_DTLS_EARLY_MAX records of application data (more is dropped, as
 * a lossy datagram link may), and reports nothing.  No data is delivered
 * and on_connected does not run until the peer's certificate matched.
 *
 * Memory is bounded: a handshake may take at most
 * PP_DTLS_MAX_HANDSHAKE_DATAGRAMS inbound datagrams, datagrams over
 * PP_DTLS_MAX_DATAGRAM are refused, and OpenSSL caps its own reassembly
 * buffers.
 */
#ifndef PP_DTLS_DTLS_H
#define PP_DTLS_DTLS_H

#include "dtls/cert.h"

#include <stddef.h>
#include <stdint.h>

#define PP_DTLS_DEFAULT_MTU		1200u	/* bytes of one datagram */
#define PP_DTLS_MIN_MTU			576u
#define PP_DTLS_MAX_MTU			16384u
#define PP_DTLS_MAX_DATAGRAM		65535u	/* larger input is refused */
/* Records packed into one datagram by pp_dtls_send_records(), at most. */
#define PP_DTLS_MAX_PACKED		65000u
#define PP_DTLS_DEFAULT_TIMEOUT_MS	1000u	/* RFC 6347 4.2.4.1 */
#define PP_DTLS_MIN_TIMEOUT_MS		50u	/* OpenSSL: < 15 ms is "expired" */
#define PP_DTLS_MAX_TIMEOUT_MS		60000u	/* back-off cap */
#define PP_DTLS_MAX_HANDSHAKE_DATAGRAMS	512u
#define PP_DTLS_EARLY_MAX		32u	/* records held while VERIFYING */
#define PP_DTLS_EARLY_MAX_BYTES		(64u * 1024u)

struct pp_dtls;

enum pp_dtls_role {
	PP_DTLS_CLIENT,		/* a=setup:active: sends the ClientHello */
	PP_DTLS_SERVER,		/* a=setup:passive: answers it */
};

enum pp_dtls_state {
	PP_DTLS_NEW,		/* created, not started */
	PP_DTLS_HANDSHAKING,
	PP_DTLS_VERIFYING,	/* handshake done, remote fingerprint unknown */
	PP_DTLS_CONNECTED,	/* peer verified; data flows */
	PP_DTLS_CLOSED,		/* close_notify sent or received */
	PP_DTLS_FAILED,
};

struct pp_dtls_ops {
	/* One datagram for the wire (borrowed).  Drops are fine: DTLS retransmits. */
	void (*send_packet)(void *ctx, const uint8_t *buf, size_t len);
	/* The handshake is done and the peer's certificate matched. */
	void (*on_connected)(void *ctx);
	/* One decrypted record (borrowed). */
	void (*on_data)(void *ctx, const uint8_t *buf, size_t len);
	/*
	 * The endpoint stopped without being asked to: code 0 when the peer
	 * sent close_notify, else negative: PP_EAUTH (fingerprint mismatch,
	 * no certificate), PP_EPROTO (handshake failure, fatal alert from the
	 * peer), -ETIMEDOUT (no answer to retransmissions), PP_ELIMIT,
	 * -ENOMEM.  message is one human-readable line.
	 */
	void (*on_closed)(void *ctx, int code, const char *message);
};

struct pp_dtls_config {
	enum pp_dtls_role role;
	const struct pp_dtls_cert *cert;	/* borrowed for the call only */
	/* PP_DTLS_FP_LEN bytes (copied), or NULL to give it later. */
	const uint8_t *remote_fingerprint;
	size_t mtu;			/* 0: PP_DTLS_DEFAULT_MTU */
	unsigned initial_timeout_ms;	/* 0: PP_DTLS_DEFAULT_TIMEOUT_MS, else 50.. */
	const char *log_name;		/* e.g. the peer's name; copied, may be NULL */
	const struct pp_dtls_ops *ops;	/* copied; send_packet is required */
	void *ctx;			/* passed to every callback */
};

/* Returns 0 and *out, PP_EINVAL for a bad config, -ENOMEM or PP_EPROTO. */
int pp_dtls_new(const struct pp_dtls_config *cfg, struct pp_dtls **out);
/*
 * Frees the endpoint without sending anything (call pp_dtls_close() first
 * for a polite close_notify); wipes buffered plaintext.  NULL-safe.
 */
void pp_dtls_free(struct pp_dtls *d);

/*
 * The fingerprint from the remote SDP, PP_DTLS_FP_LEN bytes (copied).  In
 * PP_DTLS_VERIFYING this verifies at once and may run on_connected and
 * on_data (the held records), or on_closed.  Setting a different value
 * once one is known is PP_ECONFLICT; setting the same one again is 0.
 */
int pp_dtls_set_remote_fingerprint(struct pp_dtls *d,
    const uint8_t fp[PP_DTLS_FP_LEN]);

/*
 * Starts the handshake: the client sends its ClientHello.  A server needs
 * no start (it answers the first ClientHello fed to pp_dtls_input()), and
 * for it this does nothing.  0, or PP_ECONFLICT for a client not in
 * PP_DTLS_NEW or an endpoint closed or failed.
 */
int pp_dtls_start(struct pp_dtls *d);

/*
 * One datagram received from the peer (borrowed).  Returns 0 when it was
 * taken (bad records in it are dropped silently, as RFC 6347 4.1.2.7 asks;
 * a failure of the connection is reported through on_closed), PP_EINVAL if
 * it is not DTLS (see pp_dtls_is_record), PP_ETOOBIG over
 * PP_DTLS_MAX_DATAGRAM, PP_ECONFLICT when closed, failed, re-entered, or a
 * client not yet started.
 */
int pp_dtls_input(struct pp_dtls *d, const uint8_t *buf, size_t len);

/*
 * Encrypts buf into exactly one record, sent as one datagram.  0, or
 * PP_ECONFLICT unless PP_DTLS_CONNECTED, PP_EINVAL for len 0, PP_ETOOBIG
 * above pp_dtls_max_payload() (nothing is sent).  Should OpenSSL fail to
 * write (out of memory), the connection fails: on_closed reports it and
 * the same code is returned.
 */
int pp_dtls_send(struct pp_dtls *d, const void *buf, size_t len);

/*
 * Encrypts buf as consecutive records of `record` bytes each (the last one
 * shorter), 1..pp_dtls_max_payload(), and sends them as one datagram when
 * they fit the packing limit (pp_dtls_set_packing), else as several.  For a
 * peer that knows to put the records of one datagram back together
 * (RFC 6347 4.1.1 allows several records in a datagram; what they carry is
 * the caller's business).  Returns as pp_dtls_send(), PP_EINVAL for a bad
 * record size.
 */
int pp_dtls_send_records(struct pp_dtls *d, const void *buf, size_t len,
    size_t record);

/* Bytes of records one datagram may carry (the MTU..PP_DTLS_MAX_PACKED);
 * a record never spans datagrams.  0 or PP_EINVAL. */
int pp_dtls_set_packing(struct pp_dtls *d, size_t max);

/* Bytes one record adds to its payload, for the cipher in use; 0 until
 * connected. */
size_t pp_dtls_record_overhead(const struct pp_dtls *d);

/* Changes the datagram size records are cut to (PP_DTLS_MIN_MTU..MAX_MTU),
 * e.g. once the path is known to carry more.  0 or PP_EINVAL. */
int pp_dtls_set_mtu(struct pp_dtls *d, size_t mtu);

/* Largest pp_dtls_send() for the MTU and the cipher; 0 until connected. */
size_t pp_dtls_max_payload(const struct pp_dtls *d);

/*
 * Sends close_notify if the handshake finished and moves to
 * PP_DTLS_CLOSED; no callback runs afterwards.  Idempotent; always 0.
 */
int pp_dtls_close(struct pp_dtls *d);

/*
 * Milliseconds until pp_dtls_handle_timeout() is due (0: now), or -1 when
 * no retransmission timer runs.
 */
long pp_dtls_next_timeout_ms(const struct pp_dtls *d);

/*
 * Retransmits the last flight if its timer expired (doubling the timer, up
 * to PP_DTLS_MAX_TIMEOUT_MS).  After 12 unanswered retransmissions the
 * handshake fails with -ETIMEDOUT through on_closed.  Returns 0 (also when
 * nothing was due), or PP_ECONFLICT when closed or failed.
 */
int pp_dtls_handle_timeout(struct pp_dtls *d);

enum pp_dtls_state pp_dtls_get_state(const struct pp_dtls *d);
const char *pp_dtls_state_name(enum pp_dtls_state state);

/*
 * RFC 7983 demultiplexing on the ICE socket: nonzero when the first byte is
 * 20..63, i.e. the datagram is DTLS (not STUN 0..3, not RTP/RTCP 128..191).
 * Pure function.
 */
int pp_dtls_is_record(const uint8_t *buf, size_t len);

#endif
