/*
 * Internals shared by assoc.c (usrsctp glue, association, settling) and
 * channel.c (channels, DCEP, send queue, buffered amount).  Not an API:
 * loop thread only, like everything in sctp.h.
 */
#ifndef PP_SCTP_INTERNAL_H
#define PP_SCTP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <usrsctp.h>

#include "sctp/sctp.h"

/* One message (or the rest of one) waiting for room in usrsctp. */
struct pp__tx {
	struct pp__tx *next;
	struct pp_dc *dc;	/* NULL: control message, or channel gone */
	uint16_t sid;
	uint16_t flags;		/* SCTP_UNORDERED */
	uint32_t ppid;		/* host order */
	uint16_t pr_policy;
	uint32_t pr_value;
	int counted;		/* counts toward dc's buffered amount */
	int started;		/* usrsctp has part of it: must complete */
	size_t len, off;	/* data[off..len) still to hand over */
	uint8_t data[];
};

/* Something usrsctp delivered, waiting to be settled. */
struct pp__rx {
	struct pp__rx *next;
	void *data;		/* malloc'ed by usrsctp; NULL: assoc down */
	size_t len;
	uint16_t sid;
	uint32_t ppid;		/* host order */
	int eor;
	int notification;
};

/* Bytes handed to usrsctp, in order, so freed space can be attributed. */
struct pp__acct {
	uint16_t sid;
	uint16_t msgs;		/* messages begun in this record */
	uint32_t uid;		/* 0: control or empty message */
	uint32_t bytes;
};

/* Per stream id. */
struct pp__stream {
	struct pp_dc *dc;
	uint8_t flags;
};
#define PP__S_OUT_RESETTING	0x01	/* our reset requested, not done */
#define PP__S_IN_AWAIT		0x02	/* we closed first; peer's reset due */
#define PP__S_STUCK		0x04	/* reset impossible: never reuse */

struct pp_dc {
	struct pp_sctp *sctp;
	struct pp_dc *next;
	uint32_t uid;		/* unique within the association, never 0 */
	uint16_t sid;
	enum pp_dc_state state;
	struct pp_dc_ops ops;
	void *ctx;
	int has_ops;
	char *label, *protocol;
	uint8_t channel_type;	/* DCEP type */
	uint16_t priority;
	uint32_t reliability;
	unsigned negotiated:1, remote:1, on_wire:1, waiting_ack:1,
	    pending_open:1, pending_close:1, reset_wanted:1, reset_sent:1,
	    low_armed:1, rx_discard:1, in_reset:1;
	int close_status;
	size_t q_bytes;		/* in our send queue */
	size_t stack_bytes;	/* estimated in usrsctp's send buffer */
	unsigned tx_count;	/* queue entries naming this channel */
	size_t low_threshold;
	/* Reassembly of a message usrsctp delivers in pieces. */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	uint32_t rx_ppid;
};

struct pp_sctp {
	uint32_t token;		/* registry slot + generation */
	unsigned depth;		/* calls of ours on the stack using it */
	unsigned dying:1, dirty:1, writable:1, in_flush:1, shutdown_req:1,
	    pending_down:1, down_done:1, closing:1, parity_warned:1;
	int down_status;
	uv_loop_t *loop;
	struct socket *sock;
	enum pp_sctp_state state;
	struct pp_sctp_ops ops;
	void *ctx;

	uint16_t local_port, remote_port;
	int dtls_client;
	size_t max_message_size;
	size_t remote_max;
	size_t send_queue_limit;
	uint16_t nstreams;		/* asked for */
	size_t packet_max;		/* bytes in one packet we send */
	uint16_t out_streams, in_streams;	/* negotiated */
	struct pp__stream *streams;	/* nstreams entries */
	struct pp_dc *channels, *channels_tail;
	uint32_t next_uid;

	/* Packets from usrsctp's output callback: [u32 len][bytes]... */
	uint8_t *out;
	size_t out_len, out_cap;
	unsigned out_dropped;
	int zero_checksum;		/* the peer takes packets without one */

	struct pp__rx *rx_head, *rx_tail;

	struct pp__tx *tx_head, *tx_tail;
	size_t tx_bytes;		/* data still to hand over */
	size_t tx_entries;

	size_t sndbuf;			/* usrsctp's send buffer size */
	size_t stack_bytes;		/* our data in it, estimated */
	size_t stack_msgs;		/* messages in it, counted high */
	struct pp__acct *ring;
	size_t ring_cap, ring_start, ring_len;
};

/* assoc.c */
void pp__sctp_enter(struct pp_sctp *a);
void pp__sctp_leave(struct pp_sctp *a);
void pp__sctp_flush(struct pp_sctp *a, int final);
void pp__sctp_defer(struct pp_sctp *a);

/* channel.c */
void pp__dc_assoc_up(struct pp_sctp *a);
void pp__dc_input(struct pp_sctp *a, uint16_t sid, uint32_t ppid, int eor,
    const uint8_t *data, size_t len);
/* list: n stream ids in host order, unaligned; n == 0 means all. */
void pp__dc_stream_reset(struct pp_sctp *a, uint16_t flags,
    const uint8_t *list, size_t n);
void pp__dc_pd_aborted(struct pp_sctp *a, uint16_t sid);
void pp__dc_events(struct pp_sctp *a);
void pp__dc_close_all(struct pp_sctp *a, int status);
void pp__dc_free_all(struct pp_sctp *a);
void pp__tx_pump(struct pp_sctp *a);
void pp__tx_free_all(struct pp_sctp *a);
void pp__acct_drain_to(struct pp_sctp *a, size_t in_stack_now);
void pp__acct_reset(struct pp_sctp *a);

/* crc32c.c: hardware SCTP checksums (usrsctp offload) when they match. */
int pp__sctp_crc_offload_init(void);
void pp__sctp_crc_fill(uint8_t *pkt, size_t len);
int pp__sctp_crc_offloaded(void);

#endif
