/*
 * The agent's configuration file (docs/config.md): an INI-style text with
 * [sections], "key = value" lines and # comments, parsed by a pure function
 * into a plain struct.  Every problem is reported as "FILE:LINE: what and
 * how to fix", all of them, not just the first.  No I/O besides reading the
 * file in pp_cfg_load(); thread-safe.
 *
 *   [agent]      name, control, control_mode, state_dir, policy,
 *                legacy_peers, log_level, log_format
 *   [signaling]  url, ca, insecure
 *   [room]       name, uuid
 *   [ice]        stun, turn, address (repeatable), port_min, port_max,
 *                turn_from_signaling
 *   [tunnel]     compression, unreliable, extended
 *   [service NAME]  target = HOST:PORT, proto = tcp|udp, port = offered port
 *   [consume]    bind = auto|ADDRESS, peers = NAME, NAME ...
 *   [forward NAME]  peer, port, proto, listen = ADDRESS:PORT (fixed mapping)
 *   [ips]        mode, interface, rules, et_open, et_drop_priority, queue, fail_open,
 *                react, react_severity, ban_seconds, scan_ports, scan_window,
 *                evidence_bytes, evidence_total_bytes, suricata
 */
#ifndef PP_AGENT_CONFIG_H
#define PP_AGENT_CONFIG_H

#include "tunnel/proto.h"

#include <stddef.h>
#include <stdint.h>

#define PP_CFG_MAX_SERVICES	PP_TUN_MAX_PORTS
#define PP_CFG_MAX_ICE		8
#define PP_CFG_MAX_PEERS	64
#define PP_CFG_MAX_FORWARDS	64
#define PP_CFG_MAX_ERRORS	32
#define PP_CFG_FILE_MAX		(1024 * 1024)
#define PP_CFG_LINE_MAX		4096	/* bytes, without the line ending */

enum pp_cfg_compression {	/* [tunnel] compression */
	PP_CFG_COMP_NONE = PP_CODEC_NONE,
	PP_CFG_COMP_LZ4 = PP_CODEC_LZ4,
	PP_CFG_COMP_ZSTD = PP_CODEC_ZSTD,
	PP_CFG_COMP_ZSTD_HC = PP_CODEC_ZSTD_HC,
	PP_CFG_COMP_ADAPTIVE,	/* v2 adaptive, zstd on offer to v1 peers */
};

enum pp_cfg_ips_mode {		/* [ips] mode */
	PP_CFG_IPS_OFF,		/* no inspection (explicit opt-out) */
	PP_CFG_IPS_AUTO,	/* the default: inline with CAP_NET_ADMIN, else IDS */
	PP_CFG_IPS_INLINE,
	PP_CFG_IPS_IDS,
};

struct pp_cfg_service {
	char name[64];			/* [service NAME]: letters, digits, -_. */
	uint16_t port;			/* offered to peers; default: target port */
	enum pp_tun_proto proto;	/* default tcp */
	char host[256];			/* target host (literal address or name) */
	uint16_t target_port;
	int line;			/* where its section starts */
};

struct pp_cfg_turn {
	char url[512];		/* turn:HOST:PORT[?transport=udp|tcp] or turns:... */
	char username[128];
	char password[128];
};

struct pp_cfg_forward {
	char name[64];
	char peer[PP_TUN_NAME_MAX + 1];
	uint16_t port;			/* the peer's offered port */
	enum pp_tun_proto proto;
	char listen_host[64];		/* literal address */
	uint16_t listen_port;
	int line;
};

struct pp_cfg {
	char path[4096];		/* as given to pp_cfg_load */
	/* [agent] */
	char name[PP_TUN_NAME_MAX + 1];	/* required; signaling user name rules */
	char control[108];		/* "" : default chosen by the agent */
	unsigned control_mode;		/* default 0600; 0600 or 0660 */
	char state_dir[1024];		/* "" : default chosen by the agent */
	char policy[1024];		/* access policy file (docs/policy.md); "": none */
	/* v1 peers (no identity) admitted by name when there is no policy */
	char legacy_peers[PP_CFG_MAX_PEERS][PP_TUN_NAME_MAX + 1];
	size_t nlegacy_peers;
	int log_level;			/* PP_LOG_* ; default info */
	int log_json;			/* log_format = text|json */
	/* [signaling] */
	char url[512];			/* required: wss://HOST:PORT/PATH or ws:// */
	char ca[1024];
	int insecure;
	/* [room] */
	char room_name[PP_TUN_NAME_MAX + 1];	/* required */
	char room_uuid[PP_TUN_UUID_LEN + 1];	/* required, canonical lowercase v4 */
	/* [ice] */
	char stun[PP_CFG_MAX_ICE][256];		/* HOST:PORT */
	size_t nstun;
	struct pp_cfg_turn turn[PP_CFG_MAX_ICE];
	size_t nturn;
	uint16_t port_min, port_max;		/* 0: any */
	char addrs[PP_CFG_MAX_ICE][64];		/* address = IP (repeatable): host
						 * candidates only there (else every
						 * interface but loopback) */
	size_t naddrs;
	int turn_from_signaling;		/* v2 TURN_CREDENTIALS */
	/* [tunnel] */
	enum pp_cfg_compression compression;	/* default none */
	int unreliable;
	int extended;
	/* [service NAME] ... */
	struct pp_cfg_service services[PP_CFG_MAX_SERVICES];
	size_t nservices;
	/* [consume] */
	char bind[64];			/* "auto" (per-peer 127.0.1.N) or an address; "" default */
	char peers[PP_CFG_MAX_PEERS][PP_TUN_NAME_MAX + 1];	/* empty: all */
	size_t npeers;
	/* [forward NAME] ... */
	struct pp_cfg_forward forwards[PP_CFG_MAX_FORWARDS];
	size_t nforwards;
	/* [ips] (docs/ips.md) */
	enum pp_cfg_ips_mode ips_mode;
	char ips_rules[1024];		/* "": the shipped rules/peerpipe.rules */
	char ips_suricata[1024];	/* "": /usr/bin/suricata */
	char ips_et_open[1024];		/* ET Open rules directory, "": none */
	unsigned ips_et_drop_priority;	/* ET rules of priority <= this drop; default 2 */
	unsigned ips_queue;		/* NFQUEUE number; default 0: chosen */
	int ips_fail_open;
	char ips_interface[16];		/* IDS mode: interface to watch; "": lo */
	int ips_react_blocked_only;	/* react = blocked|alerts (default alerts) */
	unsigned ips_react_severity;	/* cut+ban for severity <= this (1 high..4); 2 */
	unsigned ips_evidence_bytes;	/* tap per connection for the ban's pcap; 0 off */
	unsigned ips_evidence_total_bytes;	/* all taps together; 64 MiB */
	unsigned ban_seconds;		/* default 3600 */
	unsigned scan_ports;		/* Sentinel: refused distinct ports ... */
	unsigned scan_window;		/* ... within this many seconds: ban; 5 / 60 */
};

struct pp_cfg_errors {
	size_t n;			/* how many were found (may exceed the stored) */
	char msg[PP_CFG_MAX_ERRORS][512];	/* "FILE:LINE: ..." */
};

/* Defaults for every field (what an empty file would give, minus the required). */
void pp_cfg_defaults(struct pp_cfg *cfg);

/*
 * Parses text (len bytes, need not be NUL-terminated) named path in the
 * messages.  cfg is first reset with pp_cfg_defaults(), so the caller need
 * not.  Returns 0, or PP_ECONFIG with errs filled (cfg then holds what
 * could be read).  Pure.
 */
int pp_cfg_parse(const char *path, const char *text, size_t len,
    struct pp_cfg *cfg, struct pp_cfg_errors *errs);

/* Reads the file (at most PP_CFG_FILE_MAX) and parses it; an unreadable file
 * is one error "PATH: cannot read: why". */
int pp_cfg_load(const char *path, struct pp_cfg *cfg, struct pp_cfg_errors *errs);

#endif
