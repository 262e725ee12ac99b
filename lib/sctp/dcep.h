/*
 * DCEP, the WebRTC Data Channel Establishment Protocol (RFC 8832), and the
 * SCTP payload protocol identifiers of WebRTC data channels (RFC 8831).
 *
 * A pure codec: no I/O, no globals, no logging, callable from any thread, so
 * tests and the fuzzer call it directly.  The parser validates every length
 * against the buffer before it looks at what the length covers; a parsed
 * message points into the caller's buffer and lives as long as that buffer.
 */
#ifndef PP_SCTP_DCEP_H
#define PP_SCTP_DCEP_H

#include <stddef.h>
#include <stdint.h>

/* SCTP PPIDs (host byte order; the SCTP layer converts). */
enum {
	PP_PPID_DCEP		= 50,
	PP_PPID_STRING		= 51,
	PP_PPID_BINARY		= 53,
	PP_PPID_STRING_EMPTY	= 56,	/* carried as one zero byte */
	PP_PPID_BINARY_EMPTY	= 57,	/* carried as one zero byte */
};

/* DCEP message types. */
enum {
	PP_DCEP_ACK	= 0x02,
	PP_DCEP_OPEN	= 0x03,
};

/* DATA_CHANNEL_OPEN channel types: bit 7 = unordered, low bits = policy. */
enum {
	PP_DCEP_RELIABLE		= 0x00,
	PP_DCEP_RELIABLE_UNORDERED	= 0x80,
	PP_DCEP_REXMIT			= 0x01,	/* reliability = max retransmits */
	PP_DCEP_REXMIT_UNORDERED	= 0x81,
	PP_DCEP_TIMED			= 0x02,	/* reliability = lifetime in ms */
	PP_DCEP_TIMED_UNORDERED		= 0x82,
};
#define PP_DCEP_UNORDERED_BIT	0x80
#define PP_DCEP_POLICY(t)	((t) & 0x7f)

/* The fixed part of DATA_CHANNEL_OPEN, before label and protocol. */
#define PP_DCEP_OPEN_FIXED	12

/*
 * A parsed DCEP message.  For an ACK only `type` is meaningful.  label and
 * protocol point into the parsed buffer and are NOT NUL-terminated; they
 * never contain a NUL byte (the parser refuses one).
 */
struct pp_dcep_msg {
	uint8_t type;
	uint8_t channel_type;
	uint16_t priority;
	uint32_t reliability;
	const uint8_t *label;
	size_t label_len;
	const uint8_t *protocol;
	size_t protocol_len;
};

/*
 * Parses one DCEP message (the whole SCTP message with PPID 50).
 * Returns 0 with *msg filled, PP_EPROTO for a malformed or unknown message
 * (truncated, lengths past the end, trailing bytes, unknown type), or
 * PP_EINVAL for a well-formed OPEN with an invalid value (unknown channel
 * type, NUL in label or protocol).
 */
int pp_dcep_parse(const uint8_t *buf, size_t len, struct pp_dcep_msg *msg);

/* Size of the DATA_CHANNEL_OPEN that pp_dcep_build_open() writes for msg. */
size_t pp_dcep_open_size(const struct pp_dcep_msg *msg);

/*
 * Serialises a DATA_CHANNEL_OPEN from msg (type is ignored) into buf.
 * Returns the number of bytes written, PP_EINVAL for an unknown channel
 * type or a label/protocol longer than 65535 bytes, or PP_ETOOBIG when cap
 * is too small.
 */
int pp_dcep_build_open(const struct pp_dcep_msg *msg, uint8_t *buf, size_t cap);

/* Writes a DATA_CHANNEL_ACK (one byte).  Returns 1 or PP_ETOOBIG. */
int pp_dcep_build_ack(uint8_t *buf, size_t cap);

/* Nonzero for the six channel types of RFC 8832. */
int pp_dcep_channel_type_valid(uint8_t channel_type);

#endif
