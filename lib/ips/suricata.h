/*
 * The Suricata supervisor: configuration, process, readiness, restarts and
 * live rule reloads of one Suricata 7 instance.
 *
 * pp_suri_start() writes `suricata.yaml` (and the ET Open policy file) into
 * the state dir and spawns `suricata -c <yaml> -q <queue>` (inline, NFQ) or
 * `suricata -c <yaml> --af-packet=<iface>` (IDS fallback).  Readiness comes
 * from Suricata's unix-command socket (JSON, `{"version": "0.2"}` handshake,
 * one command at a time, replies end with '\n'): Suricata creates that socket
 * only after its detection engine has loaded the rule files; the supervisor
 * then asks `ruleset-stats` (rules loaded/failed) and `capture-mode` (NFQ or
 * AF_PACKET_DEV, the mode we asked for) and reports READY.  No log scraping.
 * Whether packets really get dropped is proven separately by the canary
 * (canary.h): READY means "engine loaded and answering".
 *
 * If Suricata exits or dies, the state goes DOWN and it is restarted after a
 * backoff (250 ms doubling to 15 s; reset once READY).  Three starts in a row
 * that never became READY are FAILED (a broken config does not fix itself);
 * pp_suri_start() tries again.  Suricata's pid is kept in the state dir so
 * that one left running by a crashed gateway is stopped at the next start.
 *
 * Threads: everything on one libuv loop; callbacks run on it.  Ownership: the
 * config is copied; pp_suri_free() stops Suricata (SIGTERM, SIGKILL after 5 s)
 * and frees once its handles have closed, so the caller keeps the loop
 * running after it.
 */
#ifndef PP_IPS_SURICATA_H
#define PP_IPS_SURICATA_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PP_SURI_MAX_SERVICES 256
#define PP_SURI_DEFAULT_BIN "/usr/bin/suricata"

enum pp_suri_mode {
	PP_SURI_INLINE,		/* NFQ: Suricata gives every queued packet its verdict */
	PP_SURI_IDS,		/* AF_PACKET: Suricata sees copies, drops nothing */
};

enum pp_suri_state {
	PP_SURI_STOPPED,
	PP_SURI_STARTING,	/* spawned, engine loading */
	PP_SURI_READY,		/* rules loaded, answering on its command socket */
	PP_SURI_DOWN,		/* died; a restart is scheduled */
	PP_SURI_FAILED,		/* gave up; see the reason */
};

/* A protected service: its address goes into $HOME_NET, its port into the
 * port group of its kind. */
enum pp_suri_kind {
	PP_SURI_GENERIC,
	PP_SURI_HTTP,
	PP_SURI_SQL,
	PP_SURI_SSH,
	PP_SURI_DNS,
	PP_SURI_SMTP,
};

struct pp_suri_service {
	char addr[46];		/* IPv4 or IPv6 literal */
	uint16_t port;
	enum pp_suri_kind kind;
};

struct pp_suri_config {
	const char *suricata;	/* binary; NULL: PP_SURI_DEFAULT_BIN */
	const char *state_dir;	/* created 0700; holds yaml, logs, sockets */
	enum pp_suri_mode mode;
	uint16_t queue_num;	/* inline */
	const char *iface;	/* IDS; NULL: "lo" */
	int fail_open;		/* nfq fail-open, exception-policy ignore */
	const char *rules_file;	/* our ruleset (rules/peerpipe.rules); required */
	const char *et_dir;	/* ET Open directory, or NULL */
	int et_drop_priority;	/* rules.h; 0: ET Open stays alert-only */
	const char *eve_socket;	/* the UNIX socket eve lines go to (eve.h) */
	const struct pp_suri_service *services;
	size_t nservices;
	unsigned ready_timeout_ms;	/* 0: 180 s (ET Open on a slow machine) */
	unsigned restart_min_ms;	/* first restart backoff; 0: 250 ms */
	/* The self-test's loopback address (in HOME_NET; IDS: captured). */
	const char *canary_addr;	/* NULL: 127.0.0.1 */
};

/* A short, one-line, user-readable reason accompanies every change. */
typedef void (*pp_suri_state_cb)(enum pp_suri_state st, const char *reason,
    void *ctx);
/* A reload finished: status 0, or a negative code with the reason. */
typedef void (*pp_suri_reload_cb)(int status, const char *reason, void *ctx);

struct pp_suri;

struct pp_suri_stats {
	int pid;		/* 0 when not running */
	unsigned starts, restarts;
	long rules_loaded, rules_failed;	/* from ruleset-stats; -1 unknown */
	unsigned ready_ms;	/* spawn -> READY of the last start */
	unsigned last_reload_ms;
};

/* Validates and copies cfg; no process yet.  0 or PP_EINVAL (err says why). */
int pp_suri_new(uv_loop_t *loop, const struct pp_suri_config *cfg,
    pp_suri_state_cb cb, void *ctx, struct pp_suri **out, char *err,
    size_t errlen);
/* Writes the config and spawns Suricata.  0, or a negative code with err. */
int pp_suri_start(struct pp_suri *s, char *err, size_t errlen);
/*
 * Re-applies the rule policy (regenerates the ET Open file) and asks the
 * running engine to `reload-rules`; cb runs once when Suricata answered
 * (the reload is complete then).  PP_ECONFLICT when not READY or a reload
 * is in progress; cb does not run then.
 */
int pp_suri_reload(struct pp_suri *s, pp_suri_reload_cb cb, void *ctx);
enum pp_suri_state pp_suri_get_state(const struct pp_suri *s);
const char *pp_suri_state_name(enum pp_suri_state st);
void pp_suri_get_stats(const struct pp_suri *s, struct pp_suri_stats *st);
/* Writes the YAML Suricata would get into buf (for tests and --dry-run).
 * Returns its length, or a negative code. */
int pp_suri_render_yaml(const struct pp_suri *s, char *buf, size_t cap);
/* NULL-safe; no callback runs after it returns. */
void pp_suri_free(struct pp_suri *s);

#endif
