/*
 * Suricata's eve JSON events, as the gateway receives them.
 *
 * Suricata writes one JSON object per line to a UNIX stream socket that the
 * gateway itself listens on (eve-log `filetype: unix_stream`).  The reader
 * (pp_eve_reader_*) owns that listening socket and the connections Suricata
 * makes to it (one per Suricata process; a restarted Suricata reconnects); it
 * splits lines with a bounded buffer and hands each line to the pure parser
 * pp_eve_parse(), which the unit tests and fuzz/fuzz_eve.c call directly.
 *
 * Only `alert` and `drop` events become a struct pp_eve_event; anything else
 * Suricata may send (stats, flow, ...) is recognised and skipped, and lines
 * that are not eve JSON are skipped and counted.
 *
 * Threads: the reader lives on one libuv loop and calls back on it.
 */
#ifndef PP_IPS_EVE_H
#define PP_IPS_EVE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Longest eve line accepted; longer lines are discarded whole and counted. */
#define PP_EVE_LINE_MAX (64u * 1024u)

#define PP_EVE_IP_MAX 46	/* INET6_ADDRSTRLEN */
#define PP_EVE_TS_MAX 40
#define PP_EVE_SIG_MAX 256
#define PP_EVE_CAT_MAX 128

enum pp_eve_type {
	PP_EVE_ALERT,		/* event_type "alert" */
	PP_EVE_DROP,		/* event_type "drop" (a packet Suricata dropped) */
};

enum pp_eve_action {
	PP_EVE_ALLOWED,		/* alert.action "allowed": the packet went on */
	PP_EVE_BLOCKED,		/* alert.action "blocked": the packet was dropped */
};

/*
 * One parsed event; plain data, strings NUL-terminated.  Control characters
 * in strings are replaced by '?' so a field can be logged on one line.
 */
struct pp_eve_event {
	enum pp_eve_type type;
	char timestamp[PP_EVE_TS_MAX];	/* as Suricata wrote it */
	uint64_t flow_id;		/* 0 if absent */
	/* The 5-tuple of the packet that triggered the event, in the direction
	 * of that packet (see `direction`). */
	char src_ip[PP_EVE_IP_MAX];
	char dest_ip[PP_EVE_IP_MAX];
	uint16_t src_port, dest_port;	/* 0 for protocols without ports */
	uint8_t proto;			/* IPPROTO_TCP, IPPROTO_UDP, ... */
	int to_server;			/* 1: client -> server, 0: reply, -1: unknown */
	/* The rule: always set for alerts; for drops only when the drop was
	 * caused by a rule (has_alert). */
	int has_alert;
	uint32_t signature_id, gid, rev;
	char signature[PP_EVE_SIG_MAX];
	char category[PP_EVE_CAT_MAX];
	int severity;			/* 1 (high) .. 4, 0 if absent */
	enum pp_eve_action action;
};

/*
 * Parses one eve line (without its '\n').  Returns 0 for an alert or drop
 * event filled into *ev, PP_ENOTFOUND for a valid eve object of another
 * event_type (skip it), PP_ETOOBIG above PP_EVE_LINE_MAX, PP_EINVAL for
 * anything else.  Pure: no I/O, no globals.
 */
int pp_eve_parse(const char *line, size_t len, struct pp_eve_event *ev);

/* Counters since the reader was created. */
struct pp_eve_stats {
	uint64_t lines;		/* complete lines received */
	uint64_t events;	/* alert/drop events delivered */
	uint64_t skipped;	/* valid eve events of other types */
	uint64_t garbage;	/* lines that were not eve JSON, or too long */
	uint64_t connections;	/* connections accepted from Suricata */
};

struct pp_eve_reader;

typedef void (*pp_eve_cb)(const struct pp_eve_event *ev, void *ctx);

/*
 * Listens on the UNIX socket `path` (mode 0600; a stale socket file left by a
 * crashed run is replaced, any other file there is an error) and calls cb for
 * each alert/drop event.  Borrows nothing after return.  0 or a negative code.
 */
int pp_eve_reader_new(uv_loop_t *loop, const char *path, pp_eve_cb cb,
    void *ctx, struct pp_eve_reader **out);
void pp_eve_reader_stats(const struct pp_eve_reader *r, struct pp_eve_stats *st);
/*
 * Closes the listener and every connection and unlinks the socket; no
 * callback runs after this.  The memory goes once libuv has closed the
 * handles, so the caller keeps running the loop.  NULL-safe.
 */
void pp_eve_reader_free(struct pp_eve_reader *r);

#endif
