/*
 * peerpipe: the agent (gateway / connect) and the subcommands that talk to
 * a running agent over its control socket.  Wiring only: the work is in
 * lib/agent and lib/tunnel.
 */
#include "agent/access.h"
#include "agent/agent.h"
#include "agent/config.h"
#include "agent/ctl.h"
#include "agent/invite.h"
#include "base/error.h"
#include "base/log.h"
#include "identity/identity.h"
#include "ips/suricata.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONFIG	"/etc/peerpipe/peerpipe.conf"
#define CALL_TIMEOUT_MS	5000

static void
usage(FILE *f)
{
	fputs(
"usage: peerpipe COMMAND [options]\n"
"\n"
"Run an agent:\n"
"  gateway        share the services of the config file (and consume others')\n"
"  connect        consume the services other peers share\n"
"Check a config:\n"
"  check-config   validate the config file; errors as FILE:LINE: what and fix\n"
"Identity:\n"
"  id             print this agent's public identity (created on first use),\n"
"                 the line to paste into a gateway's policy\n"
"Ask a running agent (over its control socket):\n"
"  status         signaling, peers with their path, traffic and channels\n"
"  peers          the peers and their state\n"
"  services       services shared and consumed, with local addresses\n"
"  reload         re-read the policy (as SIGHUP does)\n"
"  invite [--ttl SECS] [--group G] [--url URL]\n"
"                 a single-use token that lets one new device join and adds\n"
"                 its key to this gateway's policy (default ttl 3600 s)\n"
"  invites [--revoke ID]  the invites this gateway made (no secrets), or\n"
"                 revoke one not used yet\n"
"  bans [--show ID]  peers banned by the IPS or the Sentinel (with evidence)\n"
"  unban NAME|ID  lift a ban\n"
"Policy:\n"
"  explain PEER SERVICE   which rule of the policy decides whether PEER may\n"
"                 use SERVICE (a name, tcp/PORT or udp/PORT) here, and why\n"
"\n"
"Options:\n"
"  -c, --config FILE      config file (default $PEERPIPE_CONFIG, else "
DEFAULT_CONFIG ")\n"
"  --control PATH         control socket (default from the config)\n"
"  --json                 status/peers/services: print JSON for scripts\n"
"  --invite-file PATH     gateway/connect: join with the invite token in PATH\n"
"                         (mode 0600; its signaling server, room and gateway\n"
"                         key replace the config's); PATH - reads stdin\n"
"  --invite TOKEN         the same with the token itself (then visible to\n"
"                         other users in the process list until the agent\n"
"                         has read it: prefer --invite-file); --invite -\n"
"                         reads it from stdin\n"
"  --log-level LEVEL      error, warn, info, debug (overrides the config)\n"
"  --log-format FORMAT    text or json (overrides the config)\n"
"  -h, --help             this text\n", f);
}

struct opts {
	const char *config;
	const char *control;
	const char *log_level;
	const char *log_format;
	const char *show;
	const char *invite;		/* the token text, read by get_invite() */
	const char *invite_file;	/* --invite-file PATH */
	const char *ttl, *group, *url;	/* invite options */
	const char *revoke;		/* invites --revoke ID */
	int json;
};

static void forget_invite(void);

static int
load_config(const char *path, struct pp_cfg *cfg)
{
	struct pp_cfg_errors *errs = calloc(1, sizeof(*errs));
	int rc;

	if (errs == NULL)
		return -1;
	if ((rc = pp_cfg_load(path, cfg, errs)) < 0) {
		size_t shown = errs->n < PP_CFG_MAX_ERRORS ? errs->n : PP_CFG_MAX_ERRORS;

		for (size_t i = 0; i < shown; i++)
			fprintf(stderr, "%s\n", errs->msg[i]);
		if (errs->n > shown)
			fprintf(stderr, "%s: ... and %zu more error(s)\n", path,
			    errs->n - shown);
	}
	free(errs);
	return rc;
}

static int
check_config(const struct opts *o)
{
	struct pp_cfg *cfg = calloc(1, sizeof(*cfg));
	int rc;

	if (cfg == NULL)
		return 1;
	if ((rc = load_config(o->config, cfg)) == 0) {
		static const char *const modes[] = { "off", "auto", "inline",
		    "ids" };
		const char *suri = cfg->ips_suricata[0] ? cfg->ips_suricata :
		    PP_SURI_DEFAULT_BIN;

		printf("%s: OK: agent \"%s\", room \"%s\", %zu service(s) shared, "
		    "%zu forward(s)", o->config, cfg->name, cfg->room_name,
		    cfg->nservices, cfg->nforwards);
		/* what a gateway of this config does about inspection */
		if (cfg->nservices > 0 && cfg->ips_mode == PP_CFG_IPS_OFF)
			printf(", IPS off (a gateway shares them uninspected)");
		else if (cfg->nservices > 0)
			printf(", IPS %s", modes[cfg->ips_mode]);
		printf("\n");
		if (cfg->nservices > 0 && cfg->ips_mode != PP_CFG_IPS_OFF &&
		    access(suri, X_OK) != 0)
			printf("%s: note: %s is not installed here: `peerpipe "
			    "gateway` with this config refuses to start (install "
			    "Suricata 7, or set `[ips] mode = off`)\n", o->config,
			    suri);
	}
	free(cfg);
	return rc == 0 ? 0 : 1;
}

static int
print_id(const struct opts *o)
{
	struct pp_cfg *cfg = calloc(1, sizeof(*cfg));
	struct pp_identity *id = NULL;
	char dir[1024], path[1200], err[512], text[PP_ID_PUB_STRLEN + 1];
	int rc;

	if (cfg == NULL || load_config(o->config, cfg) < 0) {
		free(cfg);
		return 1;
	}
	if (cfg->state_dir[0])
		snprintf(dir, sizeof(dir), "%s", cfg->state_dir);
	else
		pp_agent_default_state_dir(cfg->name, dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/identity.pem", dir);
	if ((rc = pp_id_load_or_create(path, &id, err, sizeof(err))) < 0) {
		fprintf(stderr, "peerpipe id: %s\n", err);
		free(cfg);
		return 1;
	}
	pp_id_public_text(id, text, sizeof(text));
	if (o->json)
		printf("{\"name\": \"%s\", \"identity\": \"%s\", \"key_file\": "
		    "\"%s\"}\n", cfg->name, text, path);
	else
		printf("# %s (key file %s)\n[peer %s]\nkey = %s\n", cfg->name, path,
		    cfg->name, text);
	pp_id_free(id);
	free(cfg);
	return 0;
}

static int
explain(const struct opts *o, const char *peer, const char *service)
{
	struct pp_cfg *cfg = calloc(1, sizeof(*cfg));
	struct pp_access *acc = NULL;
	char dir[1024], *buf = malloc(16384);
	int rc = 1;

	if (cfg == NULL || buf == NULL || load_config(o->config, cfg) < 0)
		goto out;
	if (cfg->policy[0] == '\0') {
		fprintf(stderr, "peerpipe explain: %s names no [agent] policy: every "
		    "peer may use every service\n", o->config);
		goto out;
	}
	if (cfg->state_dir[0])
		snprintf(dir, sizeof(dir), "%s", cfg->state_dir);
	else
		pp_agent_default_state_dir(cfg->name, dir, sizeof(dir));
	if (pp_access_new(cfg, dir, &acc) < 0)
		goto out;
	/* exit 0: allowed, 1: denied (the reasoning on stdout either way),
	 * 2: no such peer or service */
	rc = pp_access_explain(acc, peer, service, buf, 16384);
	fputs(buf, rc == 0 || rc == PP_EDENIED ? stdout : stderr);
	rc = rc == 0 ? 0 : rc == PP_EDENIED ? 1 : 2;
out:
	pp_access_free(acc);
	free(buf);
	free(cfg);
	return rc;
}

/* ---- running an agent ---- */

static uv_signal_t sigterm, sigint, sighup;
static struct pp_agent *agent;

static void
on_signal(uv_signal_t *h, int signum)
{
	(void)h;
	pp_info("peerpipe", "signal %d: stopping", signum);
	pp_agent_stop(agent);
	uv_close((uv_handle_t *)&sigterm, NULL);
	uv_close((uv_handle_t *)&sigint, NULL);
	uv_close((uv_handle_t *)&sighup, NULL);
}

static void
on_hup(uv_signal_t *h, int signum)
{
	(void)h, (void)signum;
	pp_info("peerpipe", "SIGHUP: reloading the policy");
	(void)pp_agent_reload(agent);
}

static int
run_agent(const struct opts *o, enum pp_agent_mode mode)
{
	struct pp_agent_config ac;
	struct pp_cfg *cfg = calloc(1, sizeof(*cfg));
	enum pp_log_level lvl;
	enum pp_log_format fmt;
	uv_loop_t loop;
	int rc;

	if (cfg == NULL || load_config(o->config, cfg) < 0) {
		free(cfg);
		return 1;
	}
	pp_log_set_level((enum pp_log_level)cfg->log_level);
	pp_log_set_format(cfg->log_json ? PP_LOG_JSON : PP_LOG_TEXT);
	if (o->log_level) {
		if (pp_log_parse_level(o->log_level, &lvl) < 0) {
			fprintf(stderr, "peerpipe: --log-level %s: use error, warn, "
			    "info or debug\n", o->log_level);
			free(cfg);
			return 2;
		}
		pp_log_set_level(lvl);
	}
	if (o->log_format) {
		if (pp_log_parse_format(o->log_format, &fmt) < 0) {
			fprintf(stderr, "peerpipe: --log-format %s: use text or json\n",
			    o->log_format);
			free(cfg);
			return 2;
		}
		pp_log_set_format(fmt);
	}
	signal(SIGPIPE, SIG_IGN);
	uv_loop_init(&loop);
	memset(&ac, 0, sizeof(ac));
	ac.cfg = cfg;
	ac.mode = mode;
	ac.control = o->control;
	ac.invite = o->invite;
	/* Before anything else: a SIGTERM during start-up still stops cleanly
	 * (libuv holds it until the loop runs, and the agent exists by then). */
	uv_signal_init(&loop, &sigterm);
	uv_signal_start(&sigterm, on_signal, SIGTERM);
	uv_signal_init(&loop, &sigint);
	uv_signal_start(&sigint, on_signal, SIGINT);
	uv_signal_init(&loop, &sighup);
	uv_signal_start(&sighup, on_hup, SIGHUP);
	rc = pp_agent_new(&loop, &ac, &agent);
	forget_invite();	/* the agent keeps what it parsed */
	if (rc < 0) {
		uv_close((uv_handle_t *)&sigterm, NULL);
		uv_close((uv_handle_t *)&sigint, NULL);
		uv_close((uv_handle_t *)&sighup, NULL);
		uv_run(&loop, UV_RUN_DEFAULT);
		/* the loop's own memory too (a failed start is not a leak) */
		(void)uv_loop_close(&loop);
		free(cfg);
		return 1;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	/* pp_agent_stop ran; one more turn lets closing handles finish. */
	uv_run(&loop, UV_RUN_DEFAULT);
	pp_agent_free(agent);
	uv_run(&loop, UV_RUN_DEFAULT);
	(void)uv_loop_close(&loop);
	free(cfg);
	return 0;
}

/* ---- talking to an agent ---- */

static void
human_bytes(uint64_t n, char *out, size_t len)
{
	if (n >= 10ull * 1024 * 1024 * 1024)
		snprintf(out, len, "%.1f GiB", (double)n / (1 << 30));
	else if (n >= 10ull * 1024 * 1024)
		snprintf(out, len, "%.1f MiB", (double)n / (1 << 20));
	else if (n >= 10ull * 1024)
		snprintf(out, len, "%.1f KiB", (double)n / 1024);
	else
		snprintf(out, len, "%llu B", (unsigned long long)n);
}

static const char *
jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static long long
jint(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void
print_peer(json_t *p)
{
	json_t *path = json_object_get(p, "path");
	json_t *tun = json_object_get(p, "tunnel");
	json_t *rs = json_object_get(p, "ice_restart");
	json_t *v;
	char in[32], out[32];
	size_t i;

	printf("  %-20s %-12s", jstr(p, "name"), jstr(p, "state"));
	if (path) {
		printf(" %s (%s -> %s %s:%lld, ", jstr(path, "type"),
		    jstr(path, "local_type"), jstr(path, "remote_type"),
		    jstr(path, "remote_addr"), jint(path, "remote_port"));
		if (jint(path, "rtt_ms") < 0)
			printf("rtt n/a)");
		else
			printf("rtt %lld ms)", jint(path, "rtt_ms"));
	}
	printf("\n");
	if (rs && (jint(rs, "attempts") > 0 ||
	    json_is_true(json_object_get(rs, "in_progress"))))
		printf("  %-20s ICE restarts %lld of %lld done%s, last one back "
		    "%lld ms after the path was lost\n", "", jint(rs, "completed"),
		    jint(rs, "attempts"), json_is_true(json_object_get(rs,
		    "in_progress")) ? " (one under way)" : "",
		    jint(rs, "last_recovery_ms"));
	if (tun) {
		human_bytes((uint64_t)jint(p, "bytes_in"), in, sizeof(in));
		human_bytes((uint64_t)jint(p, "bytes_out"), out, sizeof(out));
		printf("  %-20s tunnel v%lld, compression %s, %lld channel(s), "
		    "in %s, out %s, setup %lld ms\n", "", jint(tun, "version"),
		    jstr(tun, "compression"), jint(p, "channels"), in, out,
		    jint(p, "setup_ms"));
	}
	json_array_foreach(json_object_get(p, "listeners"), i, v)
		printf("  %-20s port %lld/%s -> %s\n", "", jint(v, "port"),
		    jstr(v, "proto"), jstr(v, "addr"));
	if (jstr(p, "last_error")[0])
		printf("  %-20s last error: %s\n", "", jstr(p, "last_error"));
}

static void
print_services(json_t *s)
{
	json_t *v;
	size_t i;

	printf("shared:\n");
	if (json_array_size(json_object_get(s, "shared")) == 0)
		printf("  (none)\n");
	json_array_foreach(json_object_get(s, "shared"), i, v)
		printf("  %-20s port %lld/%s -> %s\n", jstr(v, "name"),
		    jint(v, "port"), jstr(v, "proto"), jstr(v, "target"));
	printf("consumed:\n");
	if (json_array_size(json_object_get(s, "consumed")) == 0)
		printf("  (none)\n");
	json_array_foreach(json_object_get(s, "consumed"), i, v)
		printf("  peer %-15s port %lld/%s -> %s\n", jstr(v, "peer"),
		    jint(v, "port"), jstr(v, "proto"), jstr(v, "local"));
}

/* A gateway's IPS and its latest security events (security.json). */
static void
print_security(json_t *r)
{
	json_t *ips = json_object_get(r, "ips"), *sec = json_object_get(r,
	    "security"), *counts = json_object_get(sec, "counts"), *v;
	const char *k;
	size_t i;

	if (ips)
		printf("IPS: %s, %s%s\n", jstr(ips, "mode"), jstr(ips, "state"),
		    json_is_true(json_object_get(ips, "serving")) ? "" :
		    " (service traffic held: fail-closed)");
	if (sec == NULL)
		return;
	printf("security events:");
	if (json_object_size(counts) == 0)
		printf(" none");
	json_object_foreach(counts, k, v)
		printf(" %s %lld", k, (long long)json_integer_value(v));
	printf("; %lld ban(s) in force\n", jint(sec, "bans"));
	json_array_foreach(json_object_get(sec, "recent"), i, v) {
		json_t *pp = json_object_get(v, "peerpipe");
		json_t *sig = json_object_get(pp, "signature");

		printf("  %s %-5s peer %s", jstr(v, "timestamp"), jstr(pp, "event"),
		    jstr(pp, "peer"));
		if (json_object_get(v, "src_ip"))
			printf(", %s %s:%lld -> %s:%lld", jstr(v, "proto"),
			    jstr(v, "src_ip"), jint(v, "src_port"),
			    jstr(v, "dest_ip"), jint(v, "dest_port"));
		if (json_is_string(sig))
			printf(" \"%s\"", json_string_value(sig));
		else if (json_is_string(json_object_get(pp, "reason")))
			printf(": %s", jstr(pp, "reason"));
		printf("\n");
	}
}

static void
print_human(const char *cmd, json_t *r)
{
	json_t *v;
	size_t i;

	if (strcmp(cmd, "status") == 0) {
		json_t *sig = json_object_get(r, "signaling");
		json_t *room = json_object_get(r, "room");

		printf("agent %s (%s), room %s, up %lld s\n", jstr(r, "name"),
		    jstr(r, "mode"), jstr(room, "name"), jint(r, "uptime_s"));
		printf("signaling %s: %s%s\n", jstr(sig, "url"),
		    json_is_true(json_object_get(sig, "connected")) ?
		    "connected" : "reconnecting",
		    json_is_true(json_object_get(sig, "in_room")) ? ", in room" : "");
		printf("peers:\n");
		if (json_array_size(json_object_get(r, "peers")) == 0)
			printf("  (none yet)\n");
		json_array_foreach(json_object_get(r, "peers"), i, v)
			print_peer(v);
		print_services(json_object_get(r, "services"));
		print_security(r);
	} else if (strcmp(cmd, "reload") == 0) {
		printf("policy reloaded\n");
	} else if (strcmp(cmd, "invites") == 0 && json_is_array(r)) {
		if (json_array_size(r) == 0)
			printf("(no invites)\n");
		json_array_foreach(r, i, v) {
			time_t exp = (time_t)jint(v, "expires");
			char ts[32];
			struct tm tm;

			gmtime_r(&exp, &tm);
			strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("  %-22s %-8s until %s  group %s%s%s\n", jstr(v, "id"),
			    jstr(v, "state"), ts, jstr(v, "group")[0] ?
			    jstr(v, "group") : "-", jstr(v, "used_by")[0] ?
			    "  used by " : "", jstr(v, "used_by"));
		}
	} else if (strcmp(cmd, "invites") == 0) {
		printf("invite %s revoked\n", jstr(r, "revoked"));
	} else if (strcmp(cmd, "invite") == 0) {
		time_t exp = (time_t)jint(r, "expires");
		char ts[32];
		struct tm tm;

		gmtime_r(&exp, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("%s\n", jstr(r, "token"));
		fprintf(stderr, "invite %s to %s (room %s): one device, until %s%s%s."
		    "\nOn the new device, with the token in a file only its user "
		    "reads: peerpipe connect -c FILE --invite-file TOKENFILE\n",
		    jstr(r, "id"), jstr(r, "gateway"), jstr(r, "room"), ts,
		    jstr(r, "group")[0] ? ", group " : "", jstr(r, "group"));
	} else if (strcmp(cmd, "unban") == 0) {
		printf("%lld ban(s) lifted\n", jint(r, "lifted"));
	} else if (strcmp(cmd, "bans") == 0 && json_is_array(r)) {
		if (json_array_size(r) == 0)
			printf("(no bans)\n");
		json_array_foreach(r, i, v) {
			time_t until = (time_t)jint(v, "until");
			char ts[32];
			struct tm tm;

			gmtime_r(&until, &tm);
			strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
			printf("  %-4lld %-20s until %s  %s\n", jint(v, "id"),
			    jstr(v, "name"), ts, jstr(v, "reason"));
		}
	} else if (strcmp(cmd, "bans") == 0) {
		char *txt = json_dumps(r, JSON_INDENT(2));
		json_t *pcap = json_object_get(r, "pcap");

		printf("ban %lld: %s, %s\n", jint(r, "id"), jstr(r, "name"),
		    jstr(r, "reason"));
		if (json_is_object(pcap))
			printf("evidence pcap: %s (%lld packets, %lld bytes; %lld "
			    "payload bytes%s)%s\n", jstr(pcap, "path"),
			    jint(pcap, "packets"), jint(pcap, "bytes"),
			    jint(pcap, "payload_bytes"),
			    json_is_true(json_object_get(pcap, "complete")) ?
			    ", from the connection's start" : ", the last ones",
			    json_is_false(json_object_get(pcap, "present")) ?
			    " - REMOVED since (only the newest are kept)" : "");
		else
			printf("evidence pcap: none\n");
		printf("%s\n", txt ? txt : "");
		free(txt);
	} else if (strcmp(cmd, "peers") == 0) {
		if (json_array_size(r) == 0)
			printf("(no peers yet)\n");
		json_array_foreach(r, i, v)
			print_peer(v);
	} else {
		print_services(r);
	}
}

static int
ask(const struct opts *o, const char *cmd, json_t *args)
{
	char path[108], err[512];
	json_t *result = NULL;
	int rc;

	if (o->control) {
		snprintf(path, sizeof(path), "%s", o->control);
	} else {
		struct pp_cfg *cfg = calloc(1, sizeof(*cfg));

		if (cfg == NULL || load_config(o->config, cfg) < 0) {
			fprintf(stderr, "peerpipe: the control socket is named in the "
			    "config; give it with --control PATH or fix the config\n");
			free(cfg);
			return 1;
		}
		if (cfg->control[0])
			snprintf(path, sizeof(path), "%s", cfg->control);
		else
			pp_agent_default_control(cfg->name, path, sizeof(path));
		free(cfg);
	}
	if ((rc = pp_ctl_call(path, cmd, args, CALL_TIMEOUT_MS, &result, err,
	    sizeof(err))) < 0) {
		fprintf(stderr, "peerpipe %s: %s\n", cmd, err);
		return 1;
	}
	if (o->json) {
		char *s = json_dumps(result, JSON_INDENT(2) | JSON_SORT_KEYS);

		printf("%s\n", s ? s : "null");
		free(s);
	} else {
		print_human(cmd, result);
	}
	json_decref(result);
	return 0;
}

/* The token, wherever it comes from; wiped by forget_invite(). */
static char invite_buf[PP_INVITE_TEXT_MAX + 2];

/* Up to cap - 1 bytes of fd into buf (NUL-terminated): length, or -1 for
 * more than that, or -errno. */
static ssize_t
read_token(int fd, char *buf, size_t cap)
{
	size_t len = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap)
			return -1;
		/* pasted on a terminal: the line is the token, no ^D needed */
		if (isatty(fd) && memchr(buf, '\n', len) &&
		    strspn(buf, " \t\r\n") < len)
			break;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

/*
 * --invite TOKEN, --invite -, --invite-file PATH, --invite-file -: the
 * token into invite_buf, o->invite pointing there.  A token given on the
 * command line is overwritten in argv at once (other users can read a
 * process's arguments in /proc/PID/cmdline until then).  0, or -1 with
 * the reason on stderr.
 */
static int
get_invite(struct opts *o)
{
	const char *path = o->invite_file;
	struct stat st;
	ssize_t n;
	int fd;

	if (o->invite && strcmp(o->invite, "-") != 0) {
		char *arg = (char *)(uintptr_t)o->invite;

		snprintf(invite_buf, sizeof(invite_buf), "%s", arg);
		memset(arg, 'x', strlen(arg));
		o->invite = invite_buf;
		return 0;
	}
	if (o->invite || strcmp(path, "-") == 0) {
		fd = STDIN_FILENO;
		path = "standard input";
	} else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		fprintf(stderr, "peerpipe: --invite-file %s: %s\n", path,
		    strerror(errno));
		return -1;
	} else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & 077) != 0) {
		fprintf(stderr, "peerpipe: --invite-file %s: readable by other "
		    "users (mode %04o), and the token is a secret: chmod 600 %s\n",
		    path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return -1;
	}
	n = read_token(fd, invite_buf, sizeof(invite_buf));
	if (fd != STDIN_FILENO)
		close(fd);
	if (n < 0) {
		fprintf(stderr, "peerpipe: invite from %s: %s\n", path, n == -1 ?
		    "longer than any invite token: is this the token `peerpipe "
		    "invite` printed?" : strerror((int)-n));
		return -1;
	}
	o->invite = invite_buf;
	return 0;
}

static void
forget_invite(void)
{
	explicit_bzero(invite_buf, sizeof(invite_buf));
}

int
main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "config", 1, NULL, 'c' }, { "control", 1, NULL, 'C' },
		{ "json", 0, NULL, 'j' }, { "log-level", 1, NULL, 'l' },
		{ "log-format", 1, NULL, 'f' }, { "help", 0, NULL, 'h' },
		{ "show", 1, NULL, 's' },
		{ "invite", 1, NULL, 'i' }, { "ttl", 1, NULL, 't' },
		{ "group", 1, NULL, 'g' }, { "url", 1, NULL, 'u' },
		{ "revoke", 1, NULL, 'r' }, { "invite-file", 1, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o;
	const char *cmd;
	int ch;

	if (argc < 2 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	cmd = argv[1];
	memset(&o, 0, sizeof(o));
	o.config = getenv("PEERPIPE_CONFIG") ? getenv("PEERPIPE_CONFIG") :
	    DEFAULT_CONFIG;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "c:h", lopts, NULL)) != -1) {
		switch (ch) {
		case 'c': o.config = optarg; break;
		case 'C': o.control = optarg; break;
		case 'j': o.json = 1; break;
		case 'l': o.log_level = optarg; break;
		case 'f': o.log_format = optarg; break;
		case 's': o.show = optarg; break;
		case 'i': o.invite = optarg; break;
		case 'I': o.invite_file = optarg; break;
		case 't': o.ttl = optarg; break;
		case 'g': o.group = optarg; break;
		case 'u': o.url = optarg; break;
		case 'r': o.revoke = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (strcmp(cmd, "unban") == 0 || strcmp(cmd, "bans") == 0) {
		json_t *args = json_object();
		int rc;

		if (strcmp(cmd, "unban") == 0) {
			if (argc - optind != 1) {
				fprintf(stderr, "usage: peerpipe unban NAME|ID [-c FILE]\n");
				return 2;
			}
			json_object_set_new(args, "target", json_string(argv[optind]));
		} else if (o.show) {
			json_object_set_new(args, "show", json_integer(atoi(o.show)));
		}
		rc = ask(&o, cmd, args);
		json_decref(args);
		return rc;
	}
	if ((o.ttl || o.group || o.url) && strcmp(cmd, "invite") != 0) {
		fprintf(stderr, "peerpipe %s: --ttl, --group and --url are options "
		    "of `peerpipe invite`\n", cmd);
		return 2;
	}
	if ((o.invite || o.invite_file) && strcmp(cmd, "gateway") != 0 &&
	    strcmp(cmd, "connect") != 0) {
		fprintf(stderr, "peerpipe %s: --invite and --invite-file are for "
		    "`peerpipe connect` (or gateway) on the new device\n", cmd);
		return 2;
	}
	if (o.invite && o.invite_file) {
		fprintf(stderr, "peerpipe %s: give --invite or --invite-file, not "
		    "both\n", cmd);
		return 2;
	}
	if ((o.invite || o.invite_file) && get_invite(&o) < 0)
		return 2;
	if (o.revoke && strcmp(cmd, "invites") != 0) {
		fprintf(stderr, "peerpipe %s: --revoke is an option of `peerpipe "
		    "invites`\n", cmd);
		return 2;
	}
	if (strcmp(cmd, "invites") == 0) {
		json_t *args = json_object();
		int rc;

		if (optind < argc) {
			fprintf(stderr, "usage: peerpipe invites [--revoke ID] [-c "
			    "FILE]\n");
			json_decref(args);
			return 2;
		}
		if (o.revoke)
			json_object_set_new(args, "revoke", json_string(o.revoke));
		rc = ask(&o, cmd, args);
		json_decref(args);
		return rc;
	}
	if (strcmp(cmd, "invite") == 0) {
		json_t *args = json_object();
		int rc;

		if (optind < argc) {
			fprintf(stderr, "usage: peerpipe invite [--ttl SECS] [--group "
			    "G] [--url URL] [-c FILE]\n");
			json_decref(args);
			return 2;
		}
		if (o.ttl) {
			char *end;
			long v = strtol(o.ttl, &end, 10);

			if (*end != '\0' || end == o.ttl || v < 1 || v > 30 * 86400) {
				fprintf(stderr, "peerpipe invite: --ttl %s: give "
				    "seconds from 1 to %d\n", o.ttl, 30 * 86400);
				json_decref(args);
				return 2;
			}
			json_object_set_new(args, "ttl", json_integer(v));
		}
		if (o.group)
			json_object_set_new(args, "group", json_string(o.group));
		if (o.url)
			json_object_set_new(args, "url", json_string(o.url));
		rc = ask(&o, cmd, args);
		json_decref(args);
		return rc;
	}
	if (strcmp(cmd, "explain") == 0) {
		if (argc - optind != 2) {
			fprintf(stderr, "usage: peerpipe explain PEER SERVICE [-c FILE]\n");
			return 2;
		}
		return explain(&o, argv[optind], argv[optind + 1]);
	}
	if (optind < argc) {
		fprintf(stderr, "peerpipe: unexpected argument \"%s\"\n", argv[optind]);
		return 2;
	}
	if (strcmp(cmd, "gateway") == 0)
		return run_agent(&o, PP_AGENT_GATEWAY);
	if (strcmp(cmd, "connect") == 0)
		return run_agent(&o, PP_AGENT_CONNECT);
	if (strcmp(cmd, "check-config") == 0)
		return check_config(&o);
	if (strcmp(cmd, "id") == 0)
		return print_id(&o);
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "peers") == 0 ||
	    strcmp(cmd, "services") == 0 || strcmp(cmd, "reload") == 0)
		return ask(&o, cmd, NULL);
	fprintf(stderr, "peerpipe: unknown command \"%s\" (see peerpipe --help)\n",
	    cmd);
	return 2;
}
