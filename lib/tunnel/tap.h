/*
 * The evidence tap: the recent payload of one forwarded connection to a
 * service, both directions, exactly as the gateway wrote it to the service
 * and read it back (the decrypted flow), kept so that when the IPS cuts the
 * connection the gateway can store it with the ban as a pcap file
 * (docs/ips.md, "Evidence").
 *
 * Bounded: the records (payload plus a 24-byte header each) take at most
 * `cap` bytes; when a new record does not fit, the oldest go first.  The
 * memory grows with use, from 4 KiB up to cap, so a short connection costs
 * little.  A single chunk larger than cap keeps only its last bytes.
 *
 * All the taps of an agent share a budget (pp_tap_budget): the rings take
 * at most its limit together, whatever the number of connections.  A tap
 * that cannot grow within the budget keeps the ring it has: the oldest
 * records go first, as at its own cap (a chunk larger than that ring keeps
 * its last bytes; a tap without a ring yet records nothing), and the
 * capture says it is incomplete.  So the newest bytes -- what the IPS just
 * alerted on -- are what a tap holds, and memory stays bounded.
 *
 * pp_tap_write_pcap() writes the records as a classic pcap file (LINKTYPE_RAW:
 * IPv4 or IPv6 packets) on the connection's real 5-tuple, with synthetic
 * IP and TCP/UDP headers: a TCP handshake when the start of the connection is
 * still in the tap, sequence numbers that count the payload of each
 * direction (a gap shows where older data was dropped), payload cut into
 * segments of at most 1460 bytes (1440 over IPv6), FIN where a side closed,
 * correct checksums.
 *
 * Thread: not thread-safe; the tunnel's loop thread.
 */
#ifndef PP_TUNNEL_TAP_H
#define PP_TUNNEL_TAP_H

#include <stddef.h>
#include <stdint.h>

#define PP_TAP_MIN_CAP	1024u
#define PP_TAP_MAX_CAP	(16u * 1024u * 1024u)
#define PP_TAP_BUDGET_MAX	(1024u * 1024u * 1024u)

enum pp_tap_dir {
	PP_TAP_TO_SERVICE,	/* what the peer sent, written to the service */
	PP_TAP_FROM_SERVICE,	/* what the service answered */
};

/* The connection: our end of the socket to the service, and the service. */
struct pp_tap_flow {
	int udp;			/* 0: TCP */
	char local_ip[46];		/* IPv4 or IPv6 literal */
	uint16_t local_port;
	char service_ip[46];
	uint16_t service_port;
};

struct pp_tap;
struct pp_tap_budget;

/*
 * The shared budget: limit bytes for all the rings of the taps that use it
 * (PP_TAP_MIN_CAP..PP_TAP_BUDGET_MAX, clamped).  Reference counted: each
 * tap holds a reference, so the creator may free its own reference while
 * taps are still open (a proxy closing after the agent).  NULL when out of
 * memory.
 */
struct pp_tap_budget *pp_tap_budget_new(size_t limit);
/* Drops one reference; NULL-safe. */
void pp_tap_budget_free(struct pp_tap_budget *b);
/* The bytes the rings take now; how often a tap could not grow. */
size_t pp_tap_budget_used(const struct pp_tap_budget *b);
unsigned long pp_tap_budget_refusals(const struct pp_tap_budget *b);

/* cap: PP_TAP_MIN_CAP..PP_TAP_MAX_CAP (clamped).  budget: shared with other
 * taps (a reference is taken), or NULL for none.  NULL when out of memory. */
struct pp_tap *pp_tap_new(size_t cap, const struct pp_tap_flow *flow,
    struct pp_tap_budget *budget);
/* Frees the tap and gives its ring back to the budget.  NULL-safe. */
void pp_tap_free(struct pp_tap *t);
/* Records len bytes in direction dir, stamped now.  Out of memory: the
 * record is lost and the tap says so (truncated). */
void pp_tap_add(struct pp_tap *t, enum pp_tap_dir dir, const void *data,
    size_t len);
/* That side closed its direction (TCP FIN). */
void pp_tap_fin(struct pp_tap *t, enum pp_tap_dir dir);

struct pp_pcap_info {
	unsigned packets;
	uint64_t file_bytes;
	uint64_t payload_bytes;		/* payload in the file */
	uint64_t seen_bytes;		/* payload the tap was given in all */
	int complete;			/* nothing was dropped: from the start */
	int budget_limited;		/* the budget kept the tap from growing */
};
/*
 * Writes the pcap file at path (created new, mode 0600; it must not exist),
 * via a temporary file and rename.  0, or a negative code.
 */
int pp_tap_write_pcap(const struct pp_tap *t, const char *path,
    struct pp_pcap_info *info);
/* The same into a buffer: the pcap's length, or PP_ETOOBIG when it does not
 * fit (*need says how much would), or PP_EINVAL for a bad flow address. */
long pp_tap_render_pcap(const struct pp_tap *t, uint8_t *buf, size_t cap,
    size_t *need, struct pp_pcap_info *info);

#endif
