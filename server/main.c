/*
 * peerpipe-server: the signaling server.  Wiring only: options, the TLS
 * certificate, signals, and the loop; the protocol is lib/signal, the
 * transport server/wss.c.
 */
#include "wss.h"

#include "base/error.h"
#include "base/log.h"
#include "base/fsutil.h"
#include "dtls/cert.h"
#include "signal/turn.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUB "server"

struct options {
	char listen_addr[64];
	int port;
	const char *cert, *key, *state_dir;
	struct pp_wss_config wss;
	/* v2 TURN credentials */
	const char *turn_secret_file;
	const char *turn_uris[PP_SIG_TURN_MAX_URIS];
	size_t nturn_uris;
	unsigned turn_ttl;
	/* v2 signed joins */
	struct pp_sig_auth_config auth;
};

static void
usage(FILE *f)
{
	fprintf(f,
"usage: peerpipe-server [options]\n"
"  --listen ADDR:PORT       where to listen (default 0.0.0.0:46466; port 0 = any free)\n"
"  --cert FILE --key FILE   TLS certificate and key (PEM); without them a\n"
"                           self-signed pair is generated in the state directory\n"
"  --state-dir DIR          where generated files live\n"
"                           (default /var/lib/peerpipe-server as root, else\n"
"                           $XDG_STATE_HOME/peerpipe-server)\n"
"  --max-clients N          concurrent WebSocket clients (default 10000)\n"
"  --max-rooms N            rooms on this server (default %u)\n"
"  --max-members N          members in one room (default %u)\n"
"  --max-message BYTES      largest client message (default %u)\n"
"  --rate N --burst N       requests per second per client and burst (default 50, 100)\n"
"  --handshake-timeout SECS time to finish TLS and the upgrade (default 10)\n"
"  --idle-timeout SECS      ping an idle client after SECS, drop it after 2xSECS (default 30)\n"
"  --turn-secret-file FILE  hand room members TURN REST credentials (v2\n"
"                           TURN_CREDENTIALS) made with the secret in FILE,\n"
"                           coturn's static-auth-secret; FILE must not be\n"
"                           readable by group or others\n"
"  --turn-uri URI           turn:HOST:PORT[?transport=udp|tcp] or turns:...,\n"
"                           repeatable (up to %u), handed out with them\n"
"  --turn-ttl SECS          how long a credential is valid (default %u)\n"
"  --require-auth           admit only clients that sign their join with an\n"
"                           identity key (v2); refuse v1 clients\n"
"  --max-bindings N         user names bound to identity keys, in all rooms\n"
"                           (default %u; when full, empty rooms' bindings\n"
"                           make way)\n"
"  --log-level LEVEL        error, warn, info (default) or debug\n"
"  --log-format FORMAT      text (default) or json\n"
"  --help\n",
	    PP_SIG_DEFAULT_MAX_ROOMS, PP_SIG_DEFAULT_MAX_MEMBERS,
	    PP_SIG_DEFAULT_MAX_MESSAGE, PP_SIG_TURN_MAX_URIS,
	    PP_SIG_TURN_TTL_DEFAULT, PP_SIG_DEFAULT_MAX_BINDINGS);
}

static int
parse_uint(const char *opt, const char *arg, unsigned long min,
    unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max) {
		fprintf(stderr, "peerpipe-server: --%s %s: expected a number from "
		    "%lu to %lu\n", opt, arg, min, max);
		return PP_EINVAL;
	}
	*out = v;
	return 0;
}

static int
parse_listen(const char *arg, struct options *o)
{
	const char *colon = strrchr(arg, ':');
	unsigned long port;

	if (colon == NULL || colon == arg ||
	    (size_t)(colon - arg) >= sizeof(o->listen_addr)) {
		fprintf(stderr, "peerpipe-server: --listen %s: expected ADDR:PORT, "
		    "e.g. 0.0.0.0:46466\n", arg);
		return PP_EINVAL;
	}
	if (parse_uint("listen", colon + 1, 0, 65535, &port) < 0)
		return PP_EINVAL;
	memcpy(o->listen_addr, arg, (size_t)(colon - arg));
	o->listen_addr[colon - arg] = '\0';
	o->port = (int)port;
	return 0;
}

static int
parse_args(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "cert", required_argument, NULL, 'c' },
		{ "key", required_argument, NULL, 'k' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "max-clients", required_argument, NULL, 'C' },
		{ "max-rooms", required_argument, NULL, 'R' },
		{ "max-members", required_argument, NULL, 'M' },
		{ "max-message", required_argument, NULL, 'm' },
		{ "rate", required_argument, NULL, 'r' },
		{ "burst", required_argument, NULL, 'b' },
		{ "handshake-timeout", required_argument, NULL, 'H' },
		{ "idle-timeout", required_argument, NULL, 'I' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "turn-secret-file", required_argument, NULL, 'S' },
		{ "turn-uri", required_argument, NULL, 'U' },
		{ "turn-ttl", required_argument, NULL, 'T' },
		{ "require-auth", no_argument, NULL, 'A' },
		{ "max-bindings", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum pp_log_level level;
	enum pp_log_format format;
	unsigned long v;
	int ch, rc = 0;

	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		const char *name = ch == '?' ? "" : longopts[0].name;

		for (unsigned i = 0; longopts[i].name; i++)
			if (longopts[i].val == ch)
				name = longopts[i].name;
		switch (ch) {
		case 'l': rc = parse_listen(optarg, o); break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 's': o->state_dir = optarg; break;
		case 'C':
			if ((rc = parse_uint(name, optarg, 1, 1000000, &v)) == 0)
				o->wss.max_clients = (unsigned)v;
			break;
		case 'R':
			if ((rc = parse_uint(name, optarg, 1, 10000000, &v)) == 0)
				o->wss.limits.max_rooms = (unsigned)v;
			break;
		case 'M':
			if ((rc = parse_uint(name, optarg, 2, 4096, &v)) == 0)
				o->wss.limits.max_members = (unsigned)v;
			break;
		case 'm':
			if ((rc = parse_uint(name, optarg, 1024, 16u << 20, &v)) == 0)
				o->wss.limits.max_message = v;
			break;
		case 'r':
			if ((rc = parse_uint(name, optarg, 1, 1000000, &v)) == 0)
				o->wss.rate = (unsigned)v;
			break;
		case 'b':
			if ((rc = parse_uint(name, optarg, 1, 1000000, &v)) == 0)
				o->wss.burst = (unsigned)v;
			break;
		case 'H':
			if ((rc = parse_uint(name, optarg, 1, 3600, &v)) == 0)
				o->wss.handshake_timeout = (unsigned)v;
			break;
		case 'I':
			if ((rc = parse_uint(name, optarg, 1, 3600, &v)) == 0)
				o->wss.idle_timeout = (unsigned)v;
			break;
		case 'L':
			if ((rc = pp_log_parse_level(optarg, &level)) == 0)
				pp_log_set_level(level);
			else
				fprintf(stderr, "peerpipe-server: --log-level %s: "
				    "expected error, warn, info or debug\n", optarg);
			break;
		case 'F':
			if ((rc = pp_log_parse_format(optarg, &format)) == 0)
				pp_log_set_format(format);
			else
				fprintf(stderr, "peerpipe-server: --log-format %s: "
				    "expected text or json\n", optarg);
			break;
		case 'S': o->turn_secret_file = optarg; break;
		case 'U':
			if (o->nturn_uris == PP_SIG_TURN_MAX_URIS) {
				fprintf(stderr, "peerpipe-server: --turn-uri: at most "
				    "%u\n", PP_SIG_TURN_MAX_URIS);
				rc = PP_EINVAL;
			} else if (!pp_sig_turn_uri_valid(optarg)) {
				fprintf(stderr, "peerpipe-server: --turn-uri %s: expected "
				    "turn:HOST:PORT or turns:HOST:PORT, optionally "
				    "?transport=udp or ?transport=tcp\n", optarg);
				rc = PP_EINVAL;
			} else {
				o->turn_uris[o->nturn_uris++] = optarg;
			}
			break;
		case 'T':
			if ((rc = parse_uint(name, optarg, PP_SIG_TURN_TTL_MIN,
			    PP_SIG_TURN_TTL_MAX, &v)) == 0)
				o->turn_ttl = (unsigned)v;
			break;
		case 'A': o->auth.require = 1; break;
		case 'B':
			if ((rc = parse_uint(name, optarg, 1, 100000000, &v)) == 0)
				o->auth.max_bindings = (unsigned)v;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return PP_EINVAL;
		}
		if (rc < 0)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "peerpipe-server: unexpected argument '%s' (see --help)\n",
		    argv[optind]);
		return PP_EINVAL;
	}
	if (!o->turn_secret_file != !o->nturn_uris) {
		fprintf(stderr, "peerpipe-server: --turn-secret-file and --turn-uri "
		    "go together: the credentials are for those relays\n");
		return PP_EINVAL;
	}
	if (!o->cert != !o->key) {
		fprintf(stderr, "peerpipe-server: --cert and --key go together: give "
		    "both, or neither to use a generated self-signed certificate\n");
		return PP_EINVAL;
	}
	return 0;
}

/*
 * Each client is one descriptor: raise the soft limit as far as allowed, and
 * keep --max-clients within it so the limit shows as a refusal at accept,
 * not as accept() failing with EMFILE.
 */
static void
fit_fd_limit(unsigned *max_clients)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur < (rlim_t)*max_clients + 64) {
		unsigned fit = rl.rlim_cur > 128 ? (unsigned)rl.rlim_cur - 64 : 64;

		pp_warn(SUB, "open files limited to %lu: serving at most %u clients "
		    "instead of %u (raise the limit with ulimit -n)",
		    (unsigned long)rl.rlim_cur, fit, *max_clients);
		*max_clients = fit;
	}
}

static int
default_state_dir(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		snprintf(buf, len, "/var/lib/peerpipe-server");
	else if (xdg && *xdg)
		snprintf(buf, len, "%s/peerpipe-server", xdg);
	else if (home && *home)
		snprintf(buf, len, "%s/.local/state/peerpipe-server", home);
	else
		return PP_ECONFIG;
	return 0;
}

/* Nonzero if the certificate in the PEM pair is still valid for a day. */
static int
load_existing(const char *cert, const char *key, char *fp, size_t fplen)
{
	struct pp_dtls_cert *c;
	char err[512];
	int ok;

	if (pp_dtls_cert_load_pem(cert, key, &c, err, sizeof(err)) < 0) {
		pp_warn(SUB, "%s; generating a new certificate", err);
		return 0;
	}
	ok = X509_cmp_time(X509_get0_notAfter(pp_dtls_cert_x509(c)),
	    &(time_t){ time(NULL) + 86400 }) > 0;
	snprintf(fp, fplen, "%s", pp_dtls_cert_fingerprint_text(c));
	pp_dtls_cert_free(c);
	return ok;
}

/* Uses the given pair, or the state directory's generated one (made on first use). */
static int
prepare_cert(struct options *o, char *cert, char *key, size_t len)
{
	char dir[PATH_MAX - 32], fp[PP_DTLS_FP_STRLEN + 1], err[512];
	struct pp_dtls_cert *c = NULL;
	int rc;

	if (o->cert) {
		snprintf(cert, len, "%s", o->cert);
		snprintf(key, len, "%s", o->key);
		if ((rc = pp_dtls_cert_load_pem(cert, key, &c, err, sizeof(err))) < 0) {
			pp_err(SUB, "%s", err);
			return rc;
		}
		pp_dtls_cert_free(c);
		return 0;
	}
	if (o->state_dir)
		snprintf(dir, sizeof(dir), "%s", o->state_dir);
	else if (default_state_dir(dir, sizeof(dir)) < 0) {
		pp_err(SUB, "no --state-dir given and neither HOME nor XDG_STATE_HOME "
		    "is set: pass --state-dir DIR or --cert/--key");
		return PP_ECONFIG;
	}
	if ((rc = pp_mkdir_p(dir, 0700)) < 0) {
		pp_err(SUB, "state directory %s: %s (choose another with --state-dir)",
		    dir, pp_strerror(rc));
		return rc;
	}
	snprintf(cert, len, "%s/server-cert.pem", dir);
	snprintf(key, len, "%s/server-key.pem", dir);
	if (access(cert, F_OK) == 0 && load_existing(cert, key, fp, sizeof(fp))) {
		pp_info(SUB, "using the self-signed certificate in %s (sha-256 %s)",
		    dir, fp);
		return 0;
	}
	if ((rc = pp_dtls_cert_new("peerpipe-server", &c)) < 0 ||
	    (rc = pp_dtls_cert_write_pem(c, cert, key, err, sizeof(err))) < 0) {
		pp_err(SUB, "cannot make a self-signed certificate in %s: %s", dir,
		    rc == PP_EPROTO || rc == -ENOMEM ? pp_strerror(rc) : err);
		pp_dtls_cert_free(c);
		return rc;
	}
	pp_info(SUB, "no --cert given: generated a self-signed certificate in %s "
	    "(sha-256 %s); clients must skip verification or pin it", dir,
	    pp_dtls_cert_fingerprint_text(c));
	pp_dtls_cert_free(c);
	return 0;
}

/*
 * The TURN secret: one line (a trailing newline is not part of it), in a
 * file only its owner can read.
 */
static int
read_secret(const char *path, unsigned char *buf, size_t *len)
{
	struct stat st;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) {
		pp_err(SUB, "--turn-secret-file %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		pp_err(SUB, "--turn-secret-file %s: not a regular file", path);
		close(fd);
		return PP_ECONFIG;
	}
	if (st.st_mode & 077) {
		pp_err(SUB, "--turn-secret-file %s: readable by others (mode %03o); "
		    "chmod 600 it", path, (unsigned)(st.st_mode & 0777));
		close(fd);
		return PP_ECONFIG;
	}
	n = read(fd, buf, PP_SIG_TURN_SECRET_MAX + 2);
	close(fd);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n <= 0 || n > PP_SIG_TURN_SECRET_MAX ||
	    memchr(buf, '\n', (size_t)n) != NULL) {
		pp_err(SUB, "--turn-secret-file %s: expected one line of 1 to %u "
		    "bytes", path, PP_SIG_TURN_SECRET_MAX);
		OPENSSL_cleanse(buf, PP_SIG_TURN_SECRET_MAX + 2);
		return PP_ECONFIG;
	}
	*len = (size_t)n;
	return 0;
}

struct server {
	uv_loop_t loop;
	uv_signal_t sigterm, sigint;
	struct pp_wss *wss;
	int stopping;
};

/* Whether addr:port can be bound now (lws cannot tell us cleanly). */
static int
can_bind(const char *addr, int port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, one = 1, rc = 0;

	if (port == 0)
		return 0;
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(addr, port, (struct sockaddr_in *)&ss) == 0)
		len = sizeof(struct sockaddr_in);
	else if (uv_ip6_addr(addr, port, (struct sockaddr_in6 *)&ss) == 0)
		len = sizeof(struct sockaddr_in6);
	else
		return 0;	/* a name: lws resolves it, and reports itself */
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

static void
stopped(void *arg)
{
	struct server *srv = arg;

	uv_close((uv_handle_t *)&srv->sigterm, NULL);
	uv_close((uv_handle_t *)&srv->sigint, NULL);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct server *srv = h->data;

	if (srv->stopping++)
		return;
	pp_info(SUB, "%s received", strsignal(signum));
	pp_wss_stop(srv->wss, stopped, srv);
}

int
main(int argc, char **argv)
{
	struct options o = {
		.listen_addr = "0.0.0.0",
		.port = 46466,
		.wss = {
			.limits = { PP_SIG_DEFAULT_MAX_ROOMS,
			    PP_SIG_DEFAULT_MAX_MEMBERS, PP_SIG_DEFAULT_MAX_MESSAGE },
			.max_clients = 10000,
			.rate = 50, .burst = 100,
			.handshake_timeout = 10,
			.idle_timeout = 30,
			.queue_limit = 1u << 20,
		},
	};
	char cert[PATH_MAX], key[PATH_MAX];
	unsigned char secret[PP_SIG_TURN_SECRET_MAX + 2];
	struct pp_sig_turn_config turn = { 0 };
	struct server srv = { 0 };
	int rc;

	o.turn_ttl = PP_SIG_TURN_TTL_DEFAULT;
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	if (o.turn_secret_file) {
		if (read_secret(o.turn_secret_file, secret, &turn.secret_len) < 0)
			return 1;
		turn.secret = secret;
		turn.uris = o.turn_uris;
		turn.nuris = o.nturn_uris;
		turn.ttl = o.turn_ttl;
		o.wss.turn = &turn;
	}
	if (prepare_cert(&o, cert, key, sizeof(cert)) < 0)
		return 1;
	fit_fd_limit(&o.wss.max_clients);
	o.wss.auth = &o.auth;
	o.wss.listen_addr = o.listen_addr;
	o.wss.port = o.port;
	o.wss.cert_file = cert;
	o.wss.key_file = key;

	if ((rc = can_bind(o.listen_addr, o.port)) < 0) {
		pp_err(SUB, "cannot listen on %s:%d: %s; pick another with "
		    "--listen ADDR:PORT", o.listen_addr, o.port, pp_strerror(rc));
		return 1;
	}
	uv_loop_init(&srv.loop);
	rc = pp_wss_start(&srv.loop, &o.wss, &srv.wss);
	OPENSSL_cleanse(secret, sizeof(secret));	/* the hub has a copy */
	if (rc < 0)
		return 1;
	pp_info(SUB, "%s", o.auth.require ? "authentication required: only "
	    "clients that sign their join with an identity key are admitted" :
	    "authentication optional: v1 clients admitted, except to names "
	    "bound to a key");
	if (o.turn_secret_file)
		pp_info(SUB, "TURN credentials for room members: %zu relay URI(s), "
		    "valid %u s", o.nturn_uris, o.turn_ttl);
	uv_signal_init(&srv.loop, &srv.sigterm);
	uv_signal_init(&srv.loop, &srv.sigint);
	srv.sigterm.data = srv.sigint.data = &srv;
	uv_signal_start(&srv.sigterm, on_signal, SIGTERM);
	uv_signal_start(&srv.sigint, on_signal, SIGINT);

	/* lws on a foreign loop reports a failed bind only by making no vhost
	 * (and cannot be stopped cleanly then): checked before, this is the
	 * race where the port was taken in between. */
	if (pp_wss_port(srv.wss) <= 0) {
		pp_err(SUB, "cannot listen on %s:%d: the address is in use or not "
		    "ours; pick another with --listen ADDR:PORT", o.listen_addr,
		    o.port);
		_exit(1);
	}
	pp_info(SUB, "listening on wss://%s:%d/ws (limits: %u clients, %u rooms, "
	    "%u members a room, %zu-byte messages, %u requests/s)", o.listen_addr,
	    pp_wss_port(srv.wss), o.wss.max_clients, o.wss.limits.max_rooms,
	    o.wss.limits.max_members, o.wss.limits.max_message, o.wss.rate);
	uv_run(&srv.loop, UV_RUN_DEFAULT);
	pp_wss_free(srv.wss);
	uv_run(&srv.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&srv.loop) != 0)
		pp_debug(SUB, "loop closed with handles still open");
	pp_info(SUB, "stopped");
	return 0;
}
