/*
 * The gateway's IPS: Suricata inline (or as an IDS where it must), in one
 * object the agent owns.  docs/ips.md tells the whole story.
 *
 * A `struct pp_ips` puts together:
 *   - netfilter.h: chains that queue the gateway's MARKED service connections
 *     (and nothing else) to NFQUEUE `queue_num`, both directions, fail-closed;
 *   - suricata.h: the Suricata process on that queue, its readiness, restarts
 *     and rule reloads;
 *   - eve.h: the UNIX socket Suricata's eve alerts arrive on, parsed;
 *   - the canary: each time Suricata becomes ready, a marked loopback
 *     connection proves that a drop rule drops before the IPS says READY.
 *
 * How the agent uses it (lib/agent/agent.c: ips_start, ips_event):
 *   1. pp_ips_new() + pp_ips_start() when the gateway starts; serve services
 *      only while pp_ips_serving() says so (READY; or fail-open configured).
 *   2. For every TCP/UDP socket it opens to a service: pp_ips_mark_socket(fd)
 *      BEFORE connect() (uv_tcp_init_ex + uv_fileno, then uv_tcp_connect).
 *   3. ops.event gets every alert/drop: map its 5-tuple to the connection
 *      (the gateway's local address:port of that service socket is one end,
 *      the service address:port the other; either may be the source,
 *      depending on `to_server`) and react.
 *   4. pp_ips_reload() when rules or the policy change; pp_ips_free() at exit
 *      (after closing the service connections).
 *
 * Modes: AUTO is INLINE when the process has CAP_NET_ADMIN and the rules
 * install, else IDS (AF_PACKET on `ids_iface`, alerts only: an attack can
 * reach the service before the gateway reacts; said loudly in the log).
 *
 * Threads: one libuv loop; callbacks run on it.  The config is copied.
 * Netfilter changes block for a few ms (start and free only).
 */
#ifndef PP_IPS_IPS_H
#define PP_IPS_IPS_H

#include "ips/eve.h"
#include "ips/suricata.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum pp_ips_mode {
	PP_IPS_AUTO,
	PP_IPS_INLINE,
	PP_IPS_IDS,
};

enum pp_ips_state {
	PP_IPS_STOPPED,
	PP_IPS_STARTING,	/* Suricata loading (inline: traffic blocked) */
	PP_IPS_SELFTEST,	/* Suricata ready, canary running */
	PP_IPS_READY,		/* canary passed: inspecting */
	PP_IPS_DOWN,		/* Suricata died, restarting (inline: blocked) */
	PP_IPS_FAILED,		/* gave up or the canary failed; see reason */
};

#define PP_IPS_MARK_DEFAULT 0x5050u
#define PP_IPS_MASK_DEFAULT 0xffffu

struct pp_ips_config {
	const char *instance;	/* [A-Za-z0-9_]{1,16}: chain names, unique per host */
	const char *state_dir;	/* absolute; yaml, logs, sockets (<= ~90 bytes) */
	const char *suricata;	/* NULL: /usr/bin/suricata */
	const char *rules_file;	/* rules/peerpipe.rules (absolute) */
	const char *et_dir;	/* ET Open rules dir or NULL */
	int et_drop_priority;	/* ET rules of priority <= this become drop; 0 none */
	const struct pp_suri_service *services;
	size_t nservices;
	enum pp_ips_mode mode;
	const char *ids_iface;	/* IDS: interface to sniff; NULL "lo" */
	uint32_t mark, mark_mask;	/* 0: PP_IPS_MARK_DEFAULT / _MASK_ */
	uint16_t queue_num;	/* NFQUEUE number, unique per host */
	int fail_open;		/* --queue-bypass, nfq fail-open: LOUD warning */
	int no_selftest;	/* skip the canary (tests of the failure path) */
	unsigned ready_timeout_ms;	/* 0: 180 s */
	unsigned selftest_timeout_ms;	/* 0: 10 s */
	unsigned restart_min_ms;	/* first restart backoff; 0: 250 ms */
};

struct pp_ips_ops {
	void (*state)(enum pp_ips_state st, const char *reason, void *ctx);
	/* Every alert/drop except the canary's own. */
	void (*event)(const struct pp_eve_event *ev, void *ctx);
};

struct pp_ips;

/* Validates and copies cfg.  0 or a negative code with err. */
int pp_ips_new(uv_loop_t *loop, const struct pp_ips_config *cfg,
    const struct pp_ips_ops *ops, void *ctx, struct pp_ips **out, char *err,
    size_t errlen);
/*
 * Opens the eve socket, installs the netfilter rules (inline) and starts
 * Suricata.  From here on, in inline mode, marked connections are blocked
 * until Suricata is ready.  0 or a negative code with err.
 */
int pp_ips_start(struct pp_ips *ips, char *err, size_t errlen);
/* Runs the canary again (state SELFTEST, then READY or FAILED).  Only when
 * READY or FAILED with Suricata ready; else PP_ECONFLICT. */
int pp_ips_selftest(struct pp_ips *ips);
/* Live rule reload (suricata.h); cb once, unless this returns an error. */
int pp_ips_reload(struct pp_ips *ips, pp_suri_reload_cb cb, void *ctx);
/* SO_MARK for a service socket, before connect().  0 or -errno. */
int pp_ips_mark_socket(const struct pp_ips *ips, int fd);
uint32_t pp_ips_mark(const struct pp_ips *ips);
/* The effective mode after start: PP_IPS_INLINE or PP_IPS_IDS. */
enum pp_ips_mode pp_ips_get_mode(const struct pp_ips *ips);
enum pp_ips_state pp_ips_get_state(const struct pp_ips *ips);
const char *pp_ips_state_name(enum pp_ips_state st);
/* Nonzero if service connections may be opened now: READY, or any state
 * when fail-open is configured. */
int pp_ips_serving(const struct pp_ips *ips);
struct pp_suri *pp_ips_suricata(struct pp_ips *ips);
void pp_ips_eve_stats(const struct pp_ips *ips, struct pp_eve_stats *st);
/*
 * Removes the netfilter rules at once, stops Suricata and closes the eve
 * socket; no callback after this.  Memory goes once libuv has closed the
 * handles: keep running the loop.  NULL-safe.
 */
void pp_ips_free(struct pp_ips *ips);

#endif
