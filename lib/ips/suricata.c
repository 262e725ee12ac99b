/*
 * The Suricata supervisor (see suricata.h).
 *
 * One `struct pp_suri` owns: the Suricata process (while it runs), a client
 * connection to Suricata's unix-command socket, and two timers (`tick`:
 * connect retries and restart backoff; `deadline`: the ready timeout, and the
 * SIGTERM -> SIGKILL escalation when stopping).  Commands go out one at a
 * time from a small queue; each reply is matched to the command at the head.
 * Handles are freed from close callbacks and the struct once the last handle
 * has closed.
 */
#include "ips/suricata.h"

#include "base/error.h"
#include "base/fsutil.h"
#include "base/json.h"
#include "base/log.h"
#include "base/clock.h"
#include "ips/ips_int.h"
#include "ips/rules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SUB "ips"
#define SURICATA_BIN PP_SURI_DEFAULT_BIN
#define CONNECT_RETRY_MS 100
#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 15000
#define STOP_GRACE_MS 5000
#define READY_TIMEOUT_MS 180000
#define MAX_FAILED_STARTS 3
#define CMD_LINE_MAX (1u << 20)	/* ruleset-failed-rules can be long */
#define CMD_QUEUE 8
#define YAML_MAX (64u * 1024u)
#define SUN_MAX (sizeof(((struct sockaddr_un *)0)->sun_path))

enum cmd {
	CMD_HELLO,
	CMD_RULESET_STATS,
	CMD_CAPTURE_MODE,
	CMD_RELOAD,
	CMD_RELOAD_STATS,
};

struct pp_suri {
	uv_loop_t *loop;
	pp_suri_state_cb cb;
	void *ctx;
	enum pp_suri_state state;

	/* config, owned copies */
	char *bin, *dir, *iface, *rules_file, *et_dir, *eve_socket;
	char canary[46];
	enum pp_suri_mode mode;
	uint16_t queue_num;
	int fail_open, et_drop_priority;
	unsigned ready_timeout_ms;
	struct pp_suri_service *services;
	size_t nservices;

	/* files in the state dir */
	char yaml[PATH_MAX], cmd_path[SUN_MAX], pidfile[PATH_MAX];
	char outfile[PATH_MAX], et_rules[PATH_MAX], threshold[PATH_MAX];

	uv_process_t proc;
	uv_pipe_t cmd;
	uv_connect_t connect_req;
	uv_timer_t tick, deadline;
	unsigned nhandles;
	unsigned proc_live:1, cmd_live:1, cmd_open:1, freeing:1, stopping:1,
	    ever_ready:1;

	struct pp_lines lines;
	enum cmd queue[CMD_QUEUE];
	unsigned qhead, qlen;
	int awaiting;		/* the head command was written */

	pp_suri_reload_cb reload_cb;
	void *reload_ctx;
	uint64_t reload_start_ms;

	unsigned backoff_ms, backoff_min_ms;
	unsigned failed_starts;	/* in a row, never READY */
	uint64_t spawn_ms;
	struct pp_suri_stats st;
	char rbuf[16384];
};

const char *
pp_suri_state_name(enum pp_suri_state st)
{
	switch (st) {
	case PP_SURI_STOPPED: return "stopped";
	case PP_SURI_STARTING: return "starting";
	case PP_SURI_READY: return "ready";
	case PP_SURI_DOWN: return "down";
	case PP_SURI_FAILED: return "failed";
	}
	return "?";
}

static void
set_state(struct pp_suri *s, enum pp_suri_state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
set_state(struct pp_suri *s, enum pp_suri_state st, const char *fmt, ...)
{
	char reason[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	s->state = st;
	pp_log(st == PP_SURI_FAILED ? PP_LOG_ERROR : st == PP_SURI_DOWN ?
	    PP_LOG_WARN : PP_LOG_INFO, SUB, "suricata %s: %s",
	    pp_suri_state_name(st), reason);
	if (s->cb && !s->freeing)
		s->cb(st, reason, s->ctx);
}

/* ---- configuration ---- */

static char *
dup_or_null(const char *v)
{
	return v ? strdup(v) : NULL;
}

static int
canon_addr(const char *in, char out[46])
{
	unsigned char buf[16];

	if (inet_pton(AF_INET, in, buf) == 1)
		return inet_ntop(AF_INET, buf, out, 46) ? 0 : PP_EINVAL;
	if (inet_pton(AF_INET6, in, buf) == 1)
		return inet_ntop(AF_INET6, buf, out, 46) ? 0 : PP_EINVAL;
	return PP_EINVAL;
}

static void
free_cfg(struct pp_suri *s)
{
	free(s->bin);
	free(s->dir);
	free(s->iface);
	free(s->rules_file);
	free(s->et_dir);
	free(s->eve_socket);
	free(s->services);
}

static int
fmt_path(char *dst, size_t cap, const char *dir, const char *name)
{
	int n = snprintf(dst, cap, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int
pp_suri_new(uv_loop_t *loop, const struct pp_suri_config *cfg,
    pp_suri_state_cb cb, void *ctx, struct pp_suri **out, char *err,
    size_t errlen)
{
	struct pp_suri *s;
	const char *paths[] = { cfg->suricata, cfg->state_dir, cfg->iface,
	    cfg->rules_file, cfg->et_dir, cfg->eve_socket };
	const char *what[] = { "suricata binary", "state dir", "interface",
	    "rules file", "ET Open directory", "eve socket" };

	*out = NULL;
	if (cfg->state_dir == NULL || cfg->rules_file == NULL ||
	    cfg->eve_socket == NULL) {
		snprintf(err, errlen, "the state dir, rules file and eve socket "
		    "are required");
		return PP_EINVAL;
	}
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (paths[i] && (!pp__ips_plain(paths[i]) ||
		    (i != 2 && paths[i][0] != '/'))) {
			snprintf(err, errlen, "%s '%s': must be an absolute path "
			    "of printable characters without quotes or "
			    "backslashes", what[i], paths[i]);
			return PP_EINVAL;
		}
	}
	if (cfg->nservices > PP_SURI_MAX_SERVICES) {
		snprintf(err, errlen, "%zu services: at most %d", cfg->nservices,
		    PP_SURI_MAX_SERVICES);
		return PP_EINVAL;
	}
	if (strlen(cfg->eve_socket) >= SUN_MAX ||
	    strlen(cfg->state_dir) + sizeof("/cmd.sock") > SUN_MAX) {
		snprintf(err, errlen, "state dir '%s' or eve socket '%s': too "
		    "long for a UNIX socket path (%zu bytes)", cfg->state_dir,
		    cfg->eve_socket, SUN_MAX - 1);
		return PP_EINVAL;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return -ENOMEM;
	s->loop = loop;
	s->cb = cb;
	s->ctx = ctx;
	s->mode = cfg->mode;
	s->queue_num = cfg->queue_num;
	s->fail_open = cfg->fail_open;
	s->et_drop_priority = cfg->et_drop_priority;
	s->ready_timeout_ms = cfg->ready_timeout_ms ? cfg->ready_timeout_ms :
	    READY_TIMEOUT_MS;
	s->bin = strdup(cfg->suricata ? cfg->suricata : SURICATA_BIN);
	s->dir = strdup(cfg->state_dir);
	s->iface = strdup(cfg->iface ? cfg->iface : "lo");
	s->rules_file = strdup(cfg->rules_file);
	s->et_dir = dup_or_null(cfg->et_dir);
	s->eve_socket = strdup(cfg->eve_socket);
	s->services = calloc(cfg->nservices ? cfg->nservices : 1,
	    sizeof(*s->services));
	if (!s->bin || !s->dir || !s->iface || !s->rules_file ||
	    (cfg->et_dir && !s->et_dir) || !s->eve_socket || !s->services) {
		free_cfg(s);
		free(s);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->nservices; i++) {
		s->services[i] = cfg->services[i];
		if (canon_addr(cfg->services[i].addr, s->services[i].addr) != 0 ||
		    cfg->services[i].port == 0) {
			snprintf(err, errlen, "service %zu: '%.46s' port %u is "
			    "not an IP address and port", i,
			    cfg->services[i].addr, cfg->services[i].port);
			free_cfg(s);
			free(s);
			return PP_EINVAL;
		}
	}
	s->nservices = cfg->nservices;
	if (canon_addr(cfg->canary_addr ? cfg->canary_addr : "127.0.0.1",
	    s->canary) != 0) {
		snprintf(err, errlen, "canary address: not an IP address");
		free_cfg(s);
		free(s);
		return PP_EINVAL;
	}
	if (fmt_path(s->yaml, sizeof(s->yaml), s->dir, "suricata.yaml") ||
	    fmt_path(s->cmd_path, sizeof(s->cmd_path), s->dir, "cmd.sock") ||
	    fmt_path(s->pidfile, sizeof(s->pidfile), s->dir, "suricata.pid") ||
	    fmt_path(s->outfile, sizeof(s->outfile), s->dir, "suricata.out") ||
	    fmt_path(s->et_rules, sizeof(s->et_rules), s->dir,
	    "et-open-policy.rules") ||
	    fmt_path(s->threshold, sizeof(s->threshold), s->dir,
	    "threshold.config")) {
		snprintf(err, errlen, "state dir '%s': path too long", s->dir);
		free_cfg(s);
		free(s);
		return PP_EINVAL;
	}
	pp_lines_init(&s->lines, CMD_LINE_MAX);
	uv_timer_init(loop, &s->tick);
	uv_timer_init(loop, &s->deadline);
	s->tick.data = s->deadline.data = s;
	s->nhandles = 2;
	s->st.rules_loaded = s->st.rules_failed = -1;
	s->backoff_min_ms = cfg->restart_min_ms ? cfg->restart_min_ms :
	    BACKOFF_MIN_MS;
	s->backoff_ms = s->backoff_min_ms;
	*out = s;
	return 0;
}

/* ---- suricata.yaml ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	int overflow;
};

static void
put(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len)
		b->overflow = 1;
	else
		b->len += (size_t)n;
}

/* "[80,8080]": the defaults plus the ports of services of that kind. */
static void
put_ports(struct pp_suri *s, struct sbuf *b, const char *name,
    const char *deflt, enum pp_suri_kind kind)
{
	put(b, "    %s: \"[%s", name, deflt);
	for (size_t i = 0; i < s->nservices; i++)
		if (s->services[i].kind == kind)
			put(b, ",%u", s->services[i].port);
	put(b, "]\"\n");
}

static const char *
existing(const char *a, const char *b)
{
	if (a && access(a, R_OK) == 0)
		return a;
	if (b && access(b, R_OK) == 0)
		return b;
	return NULL;
}

int
pp_suri_render_yaml(const struct pp_suri *cs, char *buf, size_t cap)
{
	struct pp_suri *s = (struct pp_suri *)(uintptr_t)cs;
	struct sbuf b = { buf, 0, cap, 0 };
	char et_class[PATH_MAX];
	const char *class_file, *ref_file;
	static const char *const protos_on[] = { "telnet", "rfb", "mqtt", "krb5",
	    "bittorrent-dht", "snmp", "ike", "dcerpc", "ftp", "rdp", "ssh",
	    "http2", "nfs", "tftp", "ntp", "quic", "dhcp", "sip", "pgsql" };

	if (cap == 0)
		return PP_ETOOBIG;
	snprintf(et_class, sizeof(et_class), "%s/classification.config",
	    s->et_dir ? s->et_dir : "/nonexistent");
	class_file = existing(et_class, "/etc/suricata/classification.config");
	ref_file = existing("/etc/suricata/reference.config", NULL);

	put(&b, "%%YAML 1.1\n---\n# Generated by PeerPipe (lib/ips); "
	    "rewritten at every start.  Do not edit.\n");
	put(&b, "suricata-version: \"7.0\"\n");
	/* Only the gateway's connections to its services are inspected, so
	 * the services are HOME_NET and any client (the tunnelled peer
	 * appears as the gateway itself) is EXTERNAL_NET. */
	put(&b, "vars:\n  address-groups:\n    HOME_NET: \"[");
	for (size_t i = 0; i < s->nservices; i++)
		put(&b, "%s,", s->services[i].addr);
	put(&b, "%s]\"\n", s->canary);
	put(&b, "    EXTERNAL_NET: \"any\"\n");
	{
		static const char *const home[] = { "HTTP_SERVERS",
		    "SMTP_SERVERS", "SQL_SERVERS", "DNS_SERVERS",
		    "TELNET_SERVERS", "DC_SERVERS", "DNP3_SERVER",
		    "DNP3_CLIENT", "MODBUS_CLIENT", "MODBUS_SERVER",
		    "ENIP_CLIENT", "ENIP_SERVER" };

		for (size_t i = 0; i < sizeof(home) / sizeof(home[0]); i++)
			put(&b, "    %s: \"$HOME_NET\"\n", home[i]);
		put(&b, "    AIM_SERVERS: \"$EXTERNAL_NET\"\n");
	}
	put(&b, "  port-groups:\n");
	put_ports(s, &b, "HTTP_PORTS", "80", PP_SURI_HTTP);
	put_ports(s, &b, "SSH_PORTS", "22", PP_SURI_SSH);
	put_ports(s, &b, "DNS_PORTS", "53", PP_SURI_DNS);
	put_ports(s, &b, "SMTP_PORTS", "25", PP_SURI_SMTP);
	put_ports(s, &b, "SQL_PORTS", "1433,3306,5432", PP_SURI_SQL);
	put(&b, "    SHELLCODE_PORTS: \"!80\"\n    ORACLE_PORTS: 1521\n"
	    "    DNP3_PORTS: 20000\n    MODBUS_PORTS: 502\n"
	    "    FILE_DATA_PORTS: \"[$HTTP_PORTS,110,143]\"\n"
	    "    FTP_PORTS: 21\n    GENEVE_PORTS: 6081\n"
	    "    VXLAN_PORTS: 4789\n    TEREDO_PORTS: 3544\n");

	put(&b, "default-log-dir: \"%s\"\n", s->dir);
	put(&b, "default-rule-path: \"%s\"\nrule-files:\n  - \"%s\"\n", s->dir,
	    s->rules_file);
	if (s->et_dir)
		put(&b, "  - \"%s\"\n", s->et_rules);
	if (class_file)
		put(&b, "classification-file: \"%s\"\n", class_file);
	if (ref_file)
		put(&b, "reference-config-file: \"%s\"\n", ref_file);
	put(&b, "threshold-file: \"%s\"\n", s->threshold);

	put(&b, "unix-command:\n  enabled: yes\n  filename: \"%s\"\n",
	    s->cmd_path);
	put(&b, "outputs:\n  - eve-log:\n      enabled: yes\n"
	    "      filetype: unix_stream\n      filename: \"%s\"\n"
	    "      types:\n        - alert:\n            tagged-packets: no\n"
	    "        - drop:\n            alerts: yes\n"
	    "            flows: start\n", s->eve_socket);
	put(&b, "logging:\n  default-log-level: notice\n  outputs:\n"
	    "    - console:\n        enabled: yes\n"
	    "    - file:\n        enabled: yes\n        level: info\n"
	    "        filename: suricata.log\n");
	put(&b, "stats:\n  enabled: yes\n  interval: 8\n");

	/* Local traffic has checksums the NIC would fill in: not validated.
	 * midstream: a restarted Suricata picks up connections that are
	 * already open (and can drop them) instead of passing them blind. */
	put(&b, "stream:\n  memcap: 64mb\n  checksum-validation: no\n"
	    "  midstream: true\n  inline: auto\n  reassembly:\n"
	    "    memcap: 256mb\n    depth: 1mb\n");
	/* Memcaps and other exceptions: drop the flow when fail-closed. */
	put(&b, "exception-policy: %s\n", s->fail_open ? "ignore" : "auto");
	put(&b, "host-mode: auto\nrunmode: workers\nmax-pending-packets: 1024\n");
	put(&b, "threading:\n  set-cpu-affinity: no\n");
	put(&b, "nfq:\n  mode: accept\n  fail-open: %s\n",
	    s->fail_open ? "yes" : "no");
	put(&b, "af-packet:\n  - interface: \"%s\"\n    cluster-id: %u\n"
	    "    cluster-type: cluster_flow\n    defrag: yes\n"
	    "    checksum-checks: no\n", s->iface,
	    s->queue_num ? s->queue_num : 99u);
	/* IDS: capture only the services' and the canary's packets; a busy
	 * interface (loopback of a whole host) would otherwise drown it. */
	put(&b, "    bpf-filter: \"host %s", s->canary);
	for (size_t i = 0; i < s->nservices; i++)
		put(&b, " or (host %s and port %u)", s->services[i].addr,
		    s->services[i].port);
	put(&b, "\"\n");

	put(&b, "app-layer:\n  protocols:\n");
	for (size_t i = 0; i < sizeof(protos_on) / sizeof(protos_on[0]); i++)
		put(&b, "    %s:\n      enabled: yes\n", protos_on[i]);
	put(&b, "    tls:\n      enabled: yes\n      detection-ports:\n"
	    "        dp: 443\n"
	    "    smtp:\n      enabled: yes\n"
	    "    imap:\n      enabled: detection-only\n"
	    "    smb:\n      enabled: yes\n      detection-ports:\n"
	    "        dp: 139, 445\n"
	    "    dns:\n      tcp:\n        enabled: yes\n"
	    "        detection-ports:\n          dp: 53\n"
	    "      udp:\n        enabled: yes\n"
	    "        detection-ports:\n          dp: 53\n"
	    "    http:\n      enabled: yes\n      libhtp:\n"
	    "        default-config:\n          personality: IDS\n"
	    "          request-body-limit: 100kb\n"
	    "          response-body-limit: 100kb\n"
	    "    modbus:\n      enabled: no\n"
	    "    dnp3:\n      enabled: no\n"
	    "    enip:\n      enabled: no\n");
	if (b.overflow)
		return PP_ETOOBIG;
	return (int)b.len;
}

static int
write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX];
	int fd, rc = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)) < 0)
		return -errno;
	if (len && write(fd, data, len) != (ssize_t)len)
		rc = errno ? -errno : -EIO;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static int
write_config(struct pp_suri *s, char *err, size_t errlen)
{
	char *yaml;
	int n, rc;

	if (s->et_dir) {
		struct pp_rules_stats rs;
		uint64_t t0 = pp_now_ms();

		if ((rc = pp_rules_write_policy(s->et_dir,
		    "/etc/suricata/classification.config", s->et_drop_priority,
		    s->et_rules, &rs, err, errlen)) != 0)
			return rc;
		pp_info(SUB, "ET Open: %u rules in %u files from %s, %u turned "
		    "to drop (priority <= %d), %u client-side and %u "
		    "connection-level rules off, %u such rules kept on (noalert "
		    "flowbit setters), %u off for a flowbit no active rule "
		    "sets, in %llu ms", rs.rules, rs.files, s->et_dir,
		    rs.dropped, s->et_drop_priority,
		    rs.client_side, rs.conn_level, rs.flowbit_setters,
		    rs.flowbit_off, (unsigned long long)(pp_now_ms() - t0));
	}
	if ((yaml = malloc(YAML_MAX)) == NULL)
		return -ENOMEM;
	if ((n = pp_suri_render_yaml(s, yaml, YAML_MAX)) < 0) {
		snprintf(err, errlen, "suricata.yaml larger than %u bytes",
		    (unsigned)YAML_MAX);
		free(yaml);
		return n;
	}
	rc = write_file(s->yaml, yaml, (size_t)n, 0600);
	free(yaml);
	if (rc == 0 && access(s->threshold, F_OK) != 0)
		rc = write_file(s->threshold, "", 0, 0600);
	if (rc != 0)
		snprintf(err, errlen, "%s: %s", s->yaml, strerror(-rc));
	return rc;
}

/* ---- a Suricata left running by a crashed gateway ---- */

/* The pid in our pidfile, if that process is a Suricata started with our
 * yaml (its command line names it); else 0. */
static pid_t
stale_pid(struct pp_suri *s)
{
	char buf[64], path[64], cmdline[8192];
	ssize_t n;
	long pid;
	int fd;

	if ((fd = open(s->pidfile, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, NULL, 10);
	if (pid <= 1 || pid > INT_MAX)
		return 0;
	snprintf(path, sizeof(path), "/proc/%ld/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return 0;
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	for (ssize_t i = 0; i < n; i++)
		if (cmdline[i] == '\0')
			cmdline[i] = ' ';
	cmdline[n] = '\0';
	return strstr(cmdline, s->yaml) ? (pid_t)pid : 0;
}

static void
stop_stale(struct pp_suri *s)
{
	pid_t pid = stale_pid(s);

	if (pid > 0) {
		pp_warn(SUB, "stopping Suricata pid %d left by an earlier run "
		    "(%s)", (int)pid, s->pidfile);
		kill(pid, SIGKILL);
		/* It is not our child: poll until it is gone (bounded). */
		for (int i = 0; i < 200 && kill(pid, 0) == 0 &&
		    stale_pid(s) == pid; i++)
			usleep(10000);
	}
	unlink(s->pidfile);
}

/* ---- the command socket ---- */

static void spawn(struct pp_suri *s);
static void cmd_close(struct pp_suri *s);
static void schedule_connect(struct pp_suri *s);

static void
handle_closed(struct pp_suri *s)
{
	if (--s->nhandles == 0 && s->freeing) {
		pp_lines_fini(&s->lines);
		free_cfg(s);
		free(s);
	}
}

static void
on_handle_closed(uv_handle_t *h)
{
	handle_closed(h->data);
}

static const char *
cmd_name(enum cmd c)
{
	switch (c) {
	case CMD_HELLO: return NULL;
	case CMD_RULESET_STATS:
	case CMD_RELOAD_STATS: return "ruleset-stats";
	case CMD_CAPTURE_MODE: return "capture-mode";
	case CMD_RELOAD: return "reload-rules";
	}
	return NULL;
}

static void
on_written(uv_write_t *req, int status)
{
	free(req);
	(void)status;	/* a failed write shows up as a read error/EOF */
}

static void
send_next(struct pp_suri *s)
{
	char msg[128];
	uv_write_t *w;
	uv_buf_t b;
	size_t len;
	enum cmd c;

	if (!s->cmd_open || s->awaiting || s->qlen == 0)
		return;
	c = s->queue[s->qhead];
	if (c == CMD_HELLO)
		len = (size_t)snprintf(msg, sizeof(msg), "{\"version\": \"0.2\"}");
	else
		len = (size_t)snprintf(msg, sizeof(msg),
		    "{\"command\": \"%s\"}\n", cmd_name(c));
	if ((w = malloc(sizeof(*w) + len)) == NULL) {
		cmd_close(s);
		return;
	}
	memcpy(w + 1, msg, len);
	b = uv_buf_init((char *)(w + 1), (unsigned)len);
	if (uv_write(w, (uv_stream_t *)&s->cmd, &b, 1, on_written) != 0) {
		free(w);
		cmd_close(s);
		return;
	}
	s->awaiting = 1;
}

static int
enqueue(struct pp_suri *s, enum cmd c)
{
	if (s->qlen == CMD_QUEUE)
		return PP_ELIMIT;
	s->queue[(s->qhead + s->qlen) % CMD_QUEUE] = c;
	s->qlen++;
	send_next(s);
	return 0;
}

static void
finish_reload(struct pp_suri *s, int status, const char *reason)
{
	pp_suri_reload_cb cb = s->reload_cb;

	s->reload_cb = NULL;
	if (cb)
		cb(status, reason, s->reload_ctx);
}

/* ruleset-stats: {"message": [{"id":0, "rules_loaded":N, "rules_failed":M,
 * ...}], "return": "OK"} (one element per detection engine/tenant). */
static int
parse_stats(struct pp_suri *s, json_t *msg)
{
	json_t *e;
	size_t i;
	long loaded = 0, failed = 0;

	if (!json_is_array(msg) || json_array_size(msg) == 0)
		return PP_EINVAL;
	json_array_foreach(msg, i, e) {
		json_t *l = json_object_get(e, "rules_loaded");
		json_t *f = json_object_get(e, "rules_failed");

		if (!json_is_integer(l) || !json_is_integer(f))
			return PP_EINVAL;
		loaded += (long)json_integer_value(l);
		failed += (long)json_integer_value(f);
	}
	s->st.rules_loaded = loaded;
	s->st.rules_failed = failed;
	return 0;
}

static void
on_reply(struct pp_suri *s, enum cmd c, int ok, json_t *msg)
{
	const char *mode, *want;
	char reason[256];

	switch (c) {
	case CMD_HELLO:
		if (!ok) {
			pp_warn(SUB, "suricata refused the command protocol "
			    "version 0.2");
			cmd_close(s);
			return;
		}
		if (s->state == PP_SURI_STARTING)
			enqueue(s, CMD_RULESET_STATS);
		break;
	case CMD_RULESET_STATS:
		if (!ok || parse_stats(s, msg) != 0) {
			pp_warn(SUB, "suricata: unexpected ruleset-stats reply");
			cmd_close(s);
			return;
		}
		enqueue(s, CMD_CAPTURE_MODE);
		break;
	case CMD_CAPTURE_MODE:
		mode = json_is_string(msg) ? json_string_value(msg) : "?";
		want = s->mode == PP_SURI_INLINE ? "NFQ" : "AF_PACKET_DEV";
		if (!ok || strcmp(mode, want) != 0) {
			pp_err(SUB, "suricata runs in capture mode %s, not %s; "
			    "stopping it", mode, want);
			if (s->proc_live)
				uv_process_kill(&s->proc, SIGKILL);
			return;
		}
		if (s->state != PP_SURI_STARTING)
			return;
		uv_timer_stop(&s->deadline);
		s->st.ready_ms = (unsigned)(pp_now_ms() - s->spawn_ms);
		s->ever_ready = 1;
		s->failed_starts = 0;
		s->backoff_ms = s->backoff_min_ms;
		set_state(s, PP_SURI_READY, "pid %d, %s, %ld rules loaded, %ld "
		    "failed, ready in %u ms", s->st.pid, mode, s->st.rules_loaded,
		    s->st.rules_failed, s->st.ready_ms);
		break;
	case CMD_RELOAD:
		if (!ok) {
			snprintf(reason, sizeof(reason), "reload-rules: %s",
			    json_is_string(msg) ? json_string_value(msg) :
			    "refused");
			finish_reload(s, PP_ECONFLICT, reason);
			return;
		}
		enqueue(s, CMD_RELOAD_STATS);
		break;
	case CMD_RELOAD_STATS:
		if (ok)
			parse_stats(s, msg);
		s->st.last_reload_ms = (unsigned)(pp_now_ms() - s->reload_start_ms);
		snprintf(reason, sizeof(reason), "rules reloaded in %u ms: %ld "
		    "loaded, %ld failed", s->st.last_reload_ms,
		    s->st.rules_loaded, s->st.rules_failed);
		pp_info(SUB, "suricata: %s", reason);
		finish_reload(s, 0, reason);
		break;
	}
}

static int
on_cmd_line(void *arg, const char *line, size_t len)
{
	struct pp_suri *s = arg;
	json_t *root = NULL, *ret;
	char err[128];
	enum cmd c;
	int ok;

	if (line == NULL || !s->awaiting || s->qlen == 0) {
		pp_warn(SUB, "suricata command socket: unexpected data");
		return 1;
	}
	if (pp_json_parse(line, len, CMD_LINE_MAX, &root, err,
	    sizeof(err)) != 0 || !json_is_object(root) ||
	    !json_is_string(ret = json_object_get(root, "return"))) {
		pp_warn(SUB, "suricata command socket: not a reply (%s)", err);
		json_decref(root);
		return 1;
	}
	c = s->queue[s->qhead];
	s->qhead = (s->qhead + 1) % CMD_QUEUE;
	s->qlen--;
	s->awaiting = 0;
	ok = strcmp(json_string_value(ret), "OK") == 0;
	on_reply(s, c, ok, json_object_get(root, "message"));
	json_decref(root);
	if (s->freeing || !s->cmd_open)
		return 1;
	send_next(s);
	return 0;
}

static void
on_cmd_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct pp_suri *s = h->data;

	(void)hint;
	buf->base = s->rbuf;
	buf->len = sizeof(s->rbuf);
}

static void
on_cmd_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct pp_suri *s = st->data;

	if (n < 0) {
		cmd_close(s);
		/* Still running: its socket comes back or the exit callback
		 * reports the death. */
		if (s->proc_live && !s->stopping)
			schedule_connect(s);
		return;
	}
	if (n > 0 && pp_lines_feed(&s->lines, buf->base, (size_t)n,
	    on_cmd_line, s) != 0 && s->cmd_open) {
		cmd_close(s);
		if (s->proc_live && !s->stopping)
			schedule_connect(s);
	}
}

static void
on_cmd_closed(uv_handle_t *h)
{
	struct pp_suri *s = h->data;

	s->cmd_live = 0;
	handle_closed(s);
}

static void
cmd_close(struct pp_suri *s)
{
	s->cmd_open = 0;
	s->awaiting = 0;
	s->qlen = 0;
	pp_lines_fini(&s->lines);
	if (s->reload_cb)
		finish_reload(s, -ECONNRESET, "the command connection to "
		    "Suricata closed during the reload");
	if (s->cmd_live && !uv_is_closing((uv_handle_t *)&s->cmd))
		uv_close((uv_handle_t *)&s->cmd, on_cmd_closed);
}

static void
on_cmd_connect(uv_connect_t *req, int status)
{
	struct pp_suri *s = req->data;

	if (s->freeing || s->stopping || !s->proc_live) {
		cmd_close(s);
		return;
	}
	if (status < 0) {
		cmd_close(s);
		schedule_connect(s);
		return;
	}
	s->cmd_open = 1;
	s->qhead = s->qlen = 0;
	if (uv_read_start((uv_stream_t *)&s->cmd, on_cmd_alloc, on_cmd_read) != 0) {
		cmd_close(s);
		schedule_connect(s);
		return;
	}
	enqueue(s, CMD_HELLO);
}

static void
try_connect(struct pp_suri *s)
{
	struct stat st;

	if (s->freeing || s->stopping || !s->proc_live || s->cmd_live)
		return;
	/* Suricata creates the socket once its rules are loaded. */
	if (stat(s->cmd_path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
		schedule_connect(s);
		return;
	}
	if (uv_pipe_init(s->loop, &s->cmd, 0) != 0) {
		schedule_connect(s);
		return;
	}
	s->cmd.data = s;
	s->cmd_live = 1;
	s->nhandles++;
	s->connect_req.data = s;
	uv_pipe_connect(&s->connect_req, &s->cmd, s->cmd_path, on_cmd_connect);
}

static void
on_tick(uv_timer_t *t)
{
	struct pp_suri *s = t->data;

	if (s->freeing)
		return;
	if (s->proc_live)
		try_connect(s);
	else if (s->state == PP_SURI_DOWN)
		spawn(s);
}

static void
schedule_connect(struct pp_suri *s)
{
	uv_timer_start(&s->tick, on_tick, CONNECT_RETRY_MS, 0);
}

/* ---- the process ---- */

/* The last error line Suricata printed ("E: ..."), for the reason. */
static void
last_error(struct pp_suri *s, char *out, size_t cap)
{
	char buf[8192];
	ssize_t n;
	off_t size;
	int fd;

	out[0] = '\0';
	if ((fd = open(s->outfile, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > (off_t)sizeof(buf) - 1)
		lseek(fd, size - (off_t)sizeof(buf) + 1, SEEK_SET);
	else
		lseek(fd, 0, SEEK_SET);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = '\0';
	for (char *line = buf, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if (strncmp(line, "E: ", 3) == 0 || strstr(line, "Error") ||
		    strstr(line, "error")) {
			size_t len = strnlen(line, cap - 1);

			memcpy(out, line, len);	/* cut to fit, on purpose */
			out[len] = '\0';
		}
	}
}

static void
on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
	struct pp_suri *s = p->data;
	char why[128], err[300];

	s->proc_live = 0;
	s->st.pid = 0;
	uv_close((uv_handle_t *)p, on_handle_closed);
	cmd_close(s);
	uv_timer_stop(&s->deadline);
	unlink(s->cmd_path);
	if (s->freeing || s->stopping) {
		unlink(s->pidfile);
		if (s->freeing)
			uv_close((uv_handle_t *)&s->deadline, on_handle_closed);
		return;
	}
	if (sig)
		snprintf(why, sizeof(why), "killed by signal %d", sig);
	else
		snprintf(why, sizeof(why), "exited with status %lld",
		    (long long)status);
	last_error(s, err, sizeof(err));
	unlink(s->pidfile);
	if (s->state != PP_SURI_READY && ++s->failed_starts >= MAX_FAILED_STARTS) {
		set_state(s, PP_SURI_FAILED, "%s before it was ready, %u times "
		    "in a row%s%s (see %s)", why, s->failed_starts,
		    err[0] ? "; last error: " : "", err, s->outfile);
		return;
	}
	set_state(s, PP_SURI_DOWN, "%s%s%s; restarting in %u ms", why,
	    err[0] ? "; last error: " : "", err, s->backoff_ms);
	uv_timer_start(&s->tick, on_tick, s->backoff_ms, 0);
	s->backoff_ms = s->backoff_ms * 2 > BACKOFF_MAX_MS ?
	    (s->backoff_ms > BACKOFF_MAX_MS ? s->backoff_ms : BACKOFF_MAX_MS) :
	    s->backoff_ms * 2;
	s->st.restarts++;
}

static void
on_deadline(uv_timer_t *t)
{
	struct pp_suri *s = t->data;

	if (!s->proc_live)
		return;
	if (s->stopping || s->freeing) {
		pp_warn(SUB, "suricata pid %d did not stop in %u s; killing it",
		    s->st.pid, STOP_GRACE_MS / 1000);
	} else {
		pp_err(SUB, "suricata pid %d not ready after %u s; killing it",
		    s->st.pid, s->ready_timeout_ms / 1000);
	}
	uv_process_kill(&s->proc, SIGKILL);
}

static void
spawn(struct pp_suri *s)
{
	uv_process_options_t o;
	uv_stdio_container_t stdio[3];
	char qarg[16], afarg[64];
	char *argv[16];
	int n = 0, fd, rc;

	unlink(s->cmd_path);	/* a stale one would look like readiness */
	stop_stale(s);
	if ((fd = open(s->outfile, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600)) < 0) {
		set_state(s, PP_SURI_FAILED, "%s: %s", s->outfile,
		    strerror(errno));
		return;
	}
	snprintf(qarg, sizeof(qarg), "%u", s->queue_num);
	snprintf(afarg, sizeof(afarg), "--af-packet=%s", s->iface);
#define A(x) (argv[n++] = (char *)(uintptr_t)(x))
	A(s->bin); A("-c"); A(s->yaml); A("--pidfile"); A(s->pidfile);
	A("-k"); A("none");
	if (s->mode == PP_SURI_INLINE) {
		A("-q"); A(qarg);
	} else {
		A(afarg);
	}
	A(NULL);
#undef A
	memset(&o, 0, sizeof(o));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = stdio[2].flags = UV_INHERIT_FD;
	stdio[1].data.fd = stdio[2].data.fd = fd;
	o.file = s->bin;
	o.args = argv;
	o.stdio = stdio;
	o.stdio_count = 3;
	o.exit_cb = on_proc_exit;
	s->proc.data = s;
	rc = uv_spawn(s->loop, &s->proc, &o);
	close(fd);
	if (rc != 0) {
		/* libuv wants the handle closed even when spawn failed. */
		s->nhandles++;
		uv_close((uv_handle_t *)&s->proc, on_handle_closed);
		set_state(s, PP_SURI_FAILED, "cannot run %s: %s", s->bin,
		    uv_strerror(rc));
		return;
	}
	s->nhandles++;
	s->proc_live = 1;
	s->st.pid = s->proc.pid;
	s->st.starts++;
	s->spawn_ms = pp_now_ms();
	s->ever_ready = 0;
	set_state(s, PP_SURI_STARTING, "pid %d, %s%s", s->proc.pid,
	    s->mode == PP_SURI_INLINE ? "inline on NFQUEUE " : "IDS on ",
	    s->mode == PP_SURI_INLINE ? qarg : s->iface);
	uv_timer_start(&s->deadline, on_deadline, s->ready_timeout_ms, 0);
	schedule_connect(s);
}

int
pp_suri_start(struct pp_suri *s, char *err, size_t errlen)
{
	int rc;

	if (s->proc_live || s->freeing)
		return PP_ECONFLICT;
	if ((rc = pp_mkdir_p(s->dir, 0700)) != 0) {
		snprintf(err, errlen, "state dir %s: %s", s->dir, strerror(-rc));
		return rc;
	}
	if (access(s->rules_file, R_OK) != 0) {
		rc = -errno;
		snprintf(err, errlen, "rules file %s: %s", s->rules_file,
		    strerror(errno));
		return rc;
	}
	if ((rc = write_config(s, err, errlen)) != 0)
		return rc;
	s->stopping = 0;
	s->failed_starts = 0;
	s->backoff_ms = s->backoff_min_ms;
	spawn(s);
	if (s->state == PP_SURI_FAILED) {
		snprintf(err, errlen, "cannot run %s", s->bin);
		return -ENOEXEC;
	}
	return 0;
}

int
pp_suri_reload(struct pp_suri *s, pp_suri_reload_cb cb, void *ctx)
{
	char err[256];
	int rc;

	if (s->state != PP_SURI_READY || s->reload_cb || !s->cmd_open)
		return PP_ECONFLICT;
	if (s->et_dir && (rc = pp_rules_write_policy(s->et_dir,
	    "/etc/suricata/classification.config", s->et_drop_priority,
	    s->et_rules, &(struct pp_rules_stats){ 0 }, err, sizeof(err))) != 0) {
		pp_err(SUB, "reload: %s", err);
		return rc;
	}
	if ((rc = enqueue(s, CMD_RELOAD)) != 0)
		return rc;
	s->reload_cb = cb;
	s->reload_ctx = ctx;
	s->reload_start_ms = pp_now_ms();
	return 0;
}

enum pp_suri_state
pp_suri_get_state(const struct pp_suri *s)
{
	return s->state;
}

void
pp_suri_get_stats(const struct pp_suri *s, struct pp_suri_stats *st)
{
	*st = s->st;
}

void
pp_suri_free(struct pp_suri *s)
{
	if (s == NULL || s->freeing)
		return;
	s->freeing = 1;
	s->reload_cb = NULL;
	cmd_close(s);
	uv_timer_stop(&s->tick);
	uv_close((uv_handle_t *)&s->tick, on_handle_closed);
	if (s->proc_live) {
		/* SIGTERM lets Suricata flush its logs; the deadline timer
		 * escalates, and the exit callback closes the last handles. */
		uv_process_kill(&s->proc, SIGTERM);
		uv_timer_start(&s->deadline, on_deadline, STOP_GRACE_MS, 0);
	} else {
		uv_close((uv_handle_t *)&s->deadline, on_handle_closed);
	}
}
