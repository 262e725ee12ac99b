/*
 * lib/dtls: certificates, PEM files, and two DTLS endpoints wired back to
 * back through an in-memory transport (a queue per direction, with a drop
 * filter for loss) on a fake clock.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base/error.h"
#include "dtls/cert.h"
#include "dtls/dtls.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#define ARRAY_LEN(a)	(sizeof(a) / sizeof((a)[0]))
#define QMAX		1024

/*
 * The fake clock.  OpenSSL 3.0 times DTLS retransmissions with
 * gettimeofday(); this program defines its own, to which the dynamic linker
 * binds libssl, so those timers see only the time the test advances.
 */
static struct timeval fake_now = { 1700000000, 0 };

int
gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	(void)tz;
	*tv = fake_now;
	return 0;
}

static void
clock_advance(long ms)
{
	long us = fake_now.tv_usec + (ms % 1000) * 1000;

	fake_now.tv_sec += ms / 1000 + us / 1000000;
	fake_now.tv_usec = us % 1000000;
}

/* Shared across tests: making keys is the slow part. */
static struct pp_dtls_cert *cert_a, *cert_b, *cert_other;

/* ---- the in-memory transport pair ---- */

struct pkt {
	size_t len;
	uint8_t *data;
};

enum free_when { FREE_NEVER, FREE_ON_CONNECTED, FREE_ON_DATA };

struct side {
	const char *name;
	struct pp_dtls *d;
	struct pkt q[QMAX];	/* datagrams on their way to the other side */
	unsigned nq;
	unsigned sent;		/* datagrams handed to send_packet */
	unsigned drop_first;	/* drop datagrams number drop_first.. (1-based) */
	unsigned drop_count;
	unsigned connected;
	int closed;
	int close_code;
	char close_msg[512];
	unsigned nrecv;
	size_t recv_bytes;
	uint8_t last[PP_DTLS_MAX_DATAGRAM];
	size_t last_len;
	uint8_t cat[PP_DTLS_MAX_DATAGRAM];	/* every record, joined */
	size_t cat_len;
	size_t dgram_max;	/* 0: PP_DTLS_DEFAULT_MTU */
	int echo;		/* send every record back from on_data */
	int echo_rc;
	enum free_when free_when;
};

static void
side_send(void *ctx, const uint8_t *buf, size_t len)
{
	struct side *s = ctx;
	unsigned n = ++s->sent;

	assert_true(len > 0);
	assert_true(len <= (s->dgram_max ? s->dgram_max : PP_DTLS_DEFAULT_MTU));
	if (s->drop_count && n >= s->drop_first && n < s->drop_first + s->drop_count)
		return;
	assert_true(s->nq < QMAX);
	s->q[s->nq].data = malloc(len);
	assert_non_null(s->q[s->nq].data);
	memcpy(s->q[s->nq].data, buf, len);
	s->q[s->nq].len = len;
	s->nq++;
}

static void
side_connected(void *ctx)
{
	struct side *s = ctx;

	s->connected++;
	if (s->free_when == FREE_ON_CONNECTED) {
		pp_dtls_free(s->d);
		s->d = NULL;
	}
}

static void
side_data(void *ctx, const uint8_t *buf, size_t len)
{
	struct side *s = ctx;

	s->nrecv++;
	s->recv_bytes += len;
	assert_true(len <= sizeof(s->last));
	memcpy(s->last, buf, len);
	s->last_len = len;
	if (s->cat_len + len <= sizeof(s->cat)) {
		memcpy(s->cat + s->cat_len, buf, len);
		s->cat_len += len;
	}
	if (s->echo)
		s->echo_rc = pp_dtls_send(s->d, buf, len);
	if (s->free_when == FREE_ON_DATA) {
		pp_dtls_free(s->d);
		s->d = NULL;
	}
}

static void
side_closed(void *ctx, int code, const char *msg)
{
	struct side *s = ctx;

	assert_false(s->closed);	/* at most once */
	s->closed = 1;
	s->close_code = code;
	snprintf(s->close_msg, sizeof(s->close_msg), "%s", msg);
}

static const struct pp_dtls_ops side_ops = {
	.send_packet = side_send,
	.on_connected = side_connected,
	.on_data = side_data,
	.on_closed = side_closed,
};

static void
side_init(struct side *s, const char *name, enum pp_dtls_role role,
    const struct pp_dtls_cert *mine, const uint8_t *remote_fp,
    unsigned timeout_ms)
{
	struct pp_dtls_config cfg = {
		.role = role,
		.cert = mine,
		.remote_fingerprint = remote_fp,
		.initial_timeout_ms = timeout_ms,
		.log_name = name,
		.ops = &side_ops,
	};

	memset(s, 0, sizeof(*s));
	s->name = name;
	cfg.ctx = s;
	assert_int_equal(pp_dtls_new(&cfg, &s->d), 0);
	assert_non_null(s->d);
}

static void
side_fini(struct side *s)
{
	for (unsigned i = 0; i < s->nq; i++)
		free(s->q[i].data);
	s->nq = 0;
	pp_dtls_free(s->d);
	s->d = NULL;
}

/* Moves every queued datagram from `from` into `to`; returns how many. */
static unsigned
deliver(struct side *from, struct side *to)
{
	unsigned n = from->nq;
	struct pkt q[QMAX];

	/* Snapshot: input may make `to` answer into its own queue. */
	memcpy(q, from->q, n * sizeof(q[0]));
	from->nq = 0;
	for (unsigned i = 0; i < n; i++) {
		if (to->d)
			(void)pp_dtls_input(to->d, q[i].data, q[i].len);
		free(q[i].data);
	}
	return n;
}

static int
settled(const struct side *s)
{
	enum pp_dtls_state st;

	if (s->d == NULL)
		return 1;
	st = pp_dtls_get_state(s->d);
	return st == PP_DTLS_CONNECTED || st == PP_DTLS_VERIFYING ||
	    st == PP_DTLS_CLOSED || st == PP_DTLS_FAILED;
}

/* The owner's timer: -1 when not armed. */
static long
timer_of(const struct side *s)
{
	return s->d ? pp_dtls_next_timeout_ms(s->d) : -1;
}

static void
fire_due(struct side *s)
{
	if (timer_of(s) == 0)
		assert_int_equal(pp_dtls_handle_timeout(s->d), 0);
}

/*
 * Runs the pair until both sides settle or nothing moves.  When nothing is
 * in flight, time jumps to the earlier armed timer, which fires.  Returns
 * how many times it had to.
 */
static unsigned
run(struct side *a, struct side *b)
{
	unsigned fired = 0;

	for (int round = 0; round < 200; round++) {
		unsigned moved = deliver(a, b) + deliver(b, a);
		long ta, tb, next;

		if (moved)
			continue;
		if (settled(a) && settled(b))
			break;
		ta = timer_of(a);
		tb = timer_of(b);
		next = ta < 0 ? tb : tb < 0 ? ta : ta < tb ? ta : tb;
		if (next < 0)
			break;
		clock_advance(next);
		fire_due(a);
		fire_due(b);
		fired++;
	}
	/* Whatever is still in flight (answers to the last datagrams). */
	while (deliver(a, b) + deliver(b, a))
		;
	return fired;
}

static void
connect_pair(struct side *c, struct side *s, unsigned timeout_ms)
{
	side_init(c, "client", PP_DTLS_CLIENT, cert_a,
	    pp_dtls_cert_fingerprint(cert_b), timeout_ms);
	side_init(s, "server", PP_DTLS_SERVER, cert_b,
	    pp_dtls_cert_fingerprint(cert_a), timeout_ms);
	assert_int_equal(pp_dtls_start(c->d), 0);
	run(c, s);
	assert_int_equal(pp_dtls_get_state(c->d), PP_DTLS_CONNECTED);
	assert_int_equal(pp_dtls_get_state(s->d), PP_DTLS_CONNECTED);
	assert_int_equal(c->connected, 1);
	assert_int_equal(s->connected, 1);
}

/* ---- fingerprints and certificates ---- */

static void
test_fp_format(void **state)
{
	static const struct {
		uint8_t fill, first, last;
		const char *want;
	} cases[] = {
		{ 0x00, 0x00, 0x00, "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:"
		    "00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00" },
		{ 0xab, 0x0f, 0xf0, "0F:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
		    "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F0" },
		{ 0xff, 0x01, 0x9c, "01:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:"
		    "FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:FF:9C" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t fp[PP_DTLS_FP_LEN], back[PP_DTLS_FP_LEN];
		char text[PP_DTLS_FP_STRLEN + 1];

		memset(fp, cases[i].fill, sizeof(fp));
		fp[0] = cases[i].first;
		fp[PP_DTLS_FP_LEN - 1] = cases[i].last;
		pp_dtls_fp_format(fp, text);
		assert_string_equal(text, cases[i].want);
		assert_int_equal(pp_dtls_fp_parse(text, strlen(text), back), 0);
		assert_memory_equal(fp, back, sizeof(fp));
	}
}

static void
test_fp_parse(void **state)
{
	static const char good[] =
	    "0F:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
	    "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F0";
	static const struct { const char *text; int rc; } cases[] = {
		{ good, 0 },
		{ "0f:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:"
		  "ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:ab:f0", 0 },
		{ "", PP_EINVAL },
		{ "0F:AB", PP_EINVAL },
		{ "0F:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
		  "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F0:", PP_EINVAL },
		{ "0F-AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
		  "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F0", PP_EINVAL },
		{ "0G:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
		  "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F0", PP_EINVAL },
		{ " 0F:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:"
		  "AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F", PP_EINVAL },
		{ "0FAB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:A"
		  "B:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:AB:F0:", PP_EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t fp[PP_DTLS_FP_LEN];

		assert_int_equal(pp_dtls_fp_parse(cases[i].text,
		    strlen(cases[i].text), fp), cases[i].rc);
	}
}

static void
test_cert_new(void **state)
{
	const char *text = pp_dtls_cert_fingerprint_text(cert_a);
	X509 *x = pp_dtls_cert_x509(cert_a);
	EVP_PKEY *pkey = pp_dtls_cert_pkey(cert_a);
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	char cn[80], curve[32];
	size_t curvelen = 0;
	time_t now = time(NULL), t;

	(void)state;
	/* Fingerprint: SHA-256 of the DER, and its SDP text form. */
	assert_true(X509_digest(x, EVP_sha256(), md, &mdlen));
	assert_int_equal(mdlen, PP_DTLS_FP_LEN);
	assert_memory_equal(md, pp_dtls_cert_fingerprint(cert_a), mdlen);
	assert_int_equal(strlen(text), PP_DTLS_FP_STRLEN);
	for (size_t i = 0; i < PP_DTLS_FP_STRLEN; i++) {
		if (i % 3 == 2)
			assert_int_equal(text[i], ':');
		else
			assert_non_null(strchr("0123456789ABCDEF", text[i]));
	}
	/* ECDSA P-256, self-signed, CN=peerpipe, -1 day .. +30 days. */
	assert_int_equal(EVP_PKEY_get_base_id(pkey), EVP_PKEY_EC);
	assert_true(EVP_PKEY_get_utf8_string_param(pkey, "group", curve,
	    sizeof(curve), &curvelen));
	assert_string_equal(curve, "prime256v1");
	assert_int_equal(X509_get_version(x), X509_VERSION_3);
	assert_int_equal(X509_verify(x, pkey), 1);
	assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, cn, sizeof(cn)) > 0);
	assert_string_equal(cn, "peerpipe");
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x),
	    X509_get_issuer_name(x)), 0);
	t = now - 23 * 3600;
	assert_true(X509_cmp_time(X509_get0_notBefore(x), &t) < 0);
	t = now + 29L * 24 * 3600;
	assert_true(X509_cmp_time(X509_get0_notAfter(x), &t) > 0);
	t = now + 31L * 24 * 3600;
	assert_true(X509_cmp_time(X509_get0_notAfter(x), &t) < 0);
	/* Fresh each time: serial and key differ. */
	assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x),
	    X509_get0_serialNumber(pp_dtls_cert_x509(cert_b))), 0);
	assert_memory_not_equal(pp_dtls_cert_fingerprint(cert_a),
	    pp_dtls_cert_fingerprint(cert_b), PP_DTLS_FP_LEN);
}

static void
test_cert_names(void **state)
{
	static const struct { const char *cn; int rc; } cases[] = {
		{ "gateway-1", 0 },
		{ "", PP_EINVAL },
		{ "bad\nname", PP_EINVAL },
		{ "0123456789012345678901234567890123456789012345678901234567890123", 0 },
		{ "01234567890123456789012345678901234567890123456789012345678901234",
		  PP_EINVAL },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct pp_dtls_cert *c = NULL;

		assert_int_equal(pp_dtls_cert_new(cases[i].cn, &c), cases[i].rc);
		assert_true((c != NULL) == (cases[i].rc == 0));
		pp_dtls_cert_free(c);
	}
	pp_dtls_cert_free(NULL);
}

/* ---- PEM files ---- */

struct tmpdir {
	char dir[64], cert[128], key[128];
};

static void
tmpdir_make(struct tmpdir *t)
{
	snprintf(t->dir, sizeof(t->dir), "/tmp/pp-test-dtls-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	snprintf(t->cert, sizeof(t->cert), "%s/cert.pem", t->dir);
	snprintf(t->key, sizeof(t->key), "%s/key.pem", t->dir);
}

static void
tmpdir_remove(struct tmpdir *t)
{
	unlink(t->cert);
	unlink(t->key);
	assert_int_equal(rmdir(t->dir), 0);	/* no temporary files left */
}

static mode_t
mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return st.st_mode & 07777;
}

static void
test_pem_roundtrip(void **state)
{
	struct pp_dtls_cert *back = NULL;
	struct tmpdir t;
	char err[512] = "";
	int fd;

	(void)state;
	tmpdir_make(&t);
	/* An existing world-readable key file is replaced, not reused. */
	fd = open(t.key, O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);

	assert_int_equal(pp_dtls_cert_write_pem(cert_a, t.cert, t.key, err,
	    sizeof(err)), 0);
	assert_int_equal(mode_of(t.key), 0600);
	assert_int_equal(mode_of(t.cert), 0644);
	assert_int_equal(pp_dtls_cert_load_pem(t.cert, t.key, &back, err,
	    sizeof(err)), 0);
	assert_memory_equal(pp_dtls_cert_fingerprint(back),
	    pp_dtls_cert_fingerprint(cert_a), PP_DTLS_FP_LEN);
	assert_string_equal(pp_dtls_cert_fingerprint_text(back),
	    pp_dtls_cert_fingerprint_text(cert_a));
	assert_int_equal(EVP_PKEY_eq(pp_dtls_cert_pkey(back),
	    pp_dtls_cert_pkey(cert_a)), 1);
	pp_dtls_cert_free(back);

	assert_int_equal(pp_dtls_cert_write_pem(cert_a, t.key, t.key, err,
	    sizeof(err)), PP_EINVAL);
	/* Written again over itself: still 0600, now the other identity. */
	assert_int_equal(pp_dtls_cert_write_pem(cert_b, t.cert, t.key, NULL, 0), 0);
	assert_int_equal(mode_of(t.key), 0600);
	assert_int_equal(pp_dtls_cert_load_pem(t.cert, t.key, &back, NULL, 0), 0);
	assert_memory_equal(pp_dtls_cert_fingerprint(back),
	    pp_dtls_cert_fingerprint(cert_b), PP_DTLS_FP_LEN);
	pp_dtls_cert_free(back);
	tmpdir_remove(&t);
}

static void
test_pem_refused(void **state)
{
	static const struct {
		const char *what;
		mode_t key_mode;
		int mismatched;		/* cert of another key */
		int missing_key;
		int rc;
		const char *msg_has;
	} cases[] = {
		{ "0644 key", 0644, 0, 0, PP_EDENIED, "chmod 600 " },
		{ "0640 key", 0640, 0, 0, PP_EDENIED, "mode 0640" },
		{ "0602 key", 0602, 0, 0, PP_EDENIED, "group or others" },
		{ "0400 key", 0400, 0, 0, 0, NULL },
		{ "mismatched", 0600, 1, 0, PP_EINVAL, "does not belong" },
		{ "missing key", 0600, 0, 1, -ENOENT, "key.pem: cannot open" },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct pp_dtls_cert *back = (struct pp_dtls_cert *)&back;
		struct tmpdir t, other;
		char err[512] = "", want[256];

		tmpdir_make(&t);
		assert_int_equal(pp_dtls_cert_write_pem(cert_a, t.cert, t.key,
		    NULL, 0), 0);
		if (cases[i].mismatched) {
			tmpdir_make(&other);
			assert_int_equal(pp_dtls_cert_write_pem(cert_b, other.cert,
			    other.key, NULL, 0), 0);
			assert_int_equal(rename(other.cert, t.cert), 0);
			tmpdir_remove(&other);
		}
		if (cases[i].missing_key)
			assert_int_equal(unlink(t.key), 0);
		else
			assert_int_equal(chmod(t.key, cases[i].key_mode), 0);

		assert_int_equal(pp_dtls_cert_load_pem(t.cert, t.key, &back,
		    err, sizeof(err)), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_non_null(back);
			pp_dtls_cert_free(back);
		} else {
			assert_null(back);
			print_message("  %s: %s\n", cases[i].what, err);
			assert_non_null(strstr(err, cases[i].msg_has));
		}
		if (cases[i].rc == PP_EDENIED) {
			/* Names the file and the fix. */
			snprintf(want, sizeof(want), "%s: private key file", t.key);
			assert_ptr_equal(strstr(err, want), err);
			snprintf(want, sizeof(want), "chmod 600 %s", t.key);
			assert_non_null(strstr(err, want));
		}
		tmpdir_remove(&t);
	}
}

/* ---- endpoints ---- */

static void
test_is_record(void **state)
{
	static const struct { uint8_t first; size_t len; int want; } cases[] = {
		{ 0, 20, 0 }, { 1, 20, 0 }, { 3, 20, 0 },	/* STUN */
		{ 19, 20, 0 }, { 20, 20, 1 }, { 22, 13, 1 }, { 23, 1, 1 },
		{ 63, 20, 1 }, { 64, 20, 0 },			/* ZRTP */
		{ 128, 20, 0 }, { 191, 20, 0 },			/* RTP/RTCP */
		{ 22, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		uint8_t buf[20] = { cases[i].first };

		assert_int_equal(pp_dtls_is_record(buf, cases[i].len),
		    cases[i].want);
	}
	assert_int_equal(pp_dtls_is_record(NULL, 5), 0);
}

static void
test_config_refused(void **state)
{
	struct pp_dtls_ops no_send = { 0 };
	struct pp_dtls *d = (struct pp_dtls *)&d;
	const struct {
		const struct pp_dtls_cert *cert;
		const struct pp_dtls_ops *ops;
		size_t mtu;
		unsigned tmo;
		int rc;
	} cases[] = {
		{ NULL, &side_ops, 0, 0, PP_EINVAL },
		{ cert_a, NULL, 0, 0, PP_EINVAL },
		{ cert_a, &no_send, 0, 0, PP_EINVAL },
		{ cert_a, &side_ops, 100, 0, PP_EINVAL },
		{ cert_a, &side_ops, 100000, 0, PP_EINVAL },
		{ cert_a, &side_ops, 0, 3600000, PP_EINVAL },
		{ cert_a, &side_ops, 0, 10, PP_EINVAL },	/* OpenSSL: "expired" */
		{ cert_a, &side_ops, 1400, 50, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct pp_dtls_config cfg = {
			.role = PP_DTLS_CLIENT, .cert = cases[i].cert,
			.ops = cases[i].ops, .mtu = cases[i].mtu,
			.initial_timeout_ms = cases[i].tmo,
		};

		assert_int_equal(pp_dtls_new(&cfg, &d), cases[i].rc);
		assert_true((d != NULL) == (cases[i].rc == 0));
		pp_dtls_free(d);
	}
	pp_dtls_free(NULL);
}

static void
test_timer(void **state)
{
	struct side c, s;
	long ms;

	(void)state;
	side_init(&c, "client", PP_DTLS_CLIENT, cert_a, NULL, 0);
	side_init(&s, "server", PP_DTLS_SERVER, cert_b, NULL, 0);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), -1);
	assert_int_equal(pp_dtls_handle_timeout(c.d), 0);	/* nothing due */
	/* A client is started before it takes input; a server needs no start. */
	assert_int_equal(pp_dtls_input(c.d, (const uint8_t *)"\x16", 1),
	    PP_ECONFLICT);
	assert_int_equal(pp_dtls_start(s.d), 0);
	assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_NEW);
	assert_int_equal(pp_dtls_start(c.d), 0);
	assert_int_equal(pp_dtls_start(c.d), PP_ECONFLICT);
	assert_int_equal(c.sent, 1);		/* the ClientHello */
	ms = pp_dtls_next_timeout_ms(c.d);
	assert_int_equal(ms, 1000);		/* the RFC 6347 default */
	clock_advance(900);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), 100);
	assert_int_equal(pp_dtls_handle_timeout(c.d), 0);
	assert_int_equal(c.sent, 1);		/* not due yet: nothing sent */
	/* Due: retransmitted, and the next wait is doubled. */
	clock_advance(100);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), 0);
	assert_int_equal(pp_dtls_handle_timeout(c.d), 0);
	assert_int_equal(c.sent, 2);
	assert_int_equal(c.nq, 2);
	/* The same ClientHello in a record with the next sequence number. */
	assert_int_equal(c.q[0].len, c.q[1].len);
	assert_memory_equal(c.q[0].data + 13, c.q[1].data + 13, c.q[0].len - 13);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), 2000);
	assert_int_equal(pp_dtls_next_timeout_ms(s.d), -1);
	side_fini(&c);
	side_fini(&s);
}

enum fp_mode { FP_RIGHT, FP_WRONG, FP_LATER };

static const uint8_t *
fp_for(enum fp_mode m, const struct pp_dtls_cert *peer)
{
	switch (m) {
	case FP_RIGHT:	return pp_dtls_cert_fingerprint(peer);
	case FP_WRONG:	return pp_dtls_cert_fingerprint(cert_other);
	default:	return NULL;
	}
}

#define FP_MSG	"remote DTLS certificate fingerprint does not match the one in the SDP"

static void
test_handshake_fingerprints(void **state)
{
	static const struct {
		const char *name;
		enum fp_mode cfp, sfp;		/* at creation */
		enum fp_mode late_c, late_s;	/* set after the handshake */
		int client_sends;		/* before the server verified */
		enum pp_dtls_state cstate, sstate;
		unsigned cconn, sconn;		/* on_connected ran */
		int ccode, scode;		/* on_closed, 1 = not called */
		int cfpmsg, sfpmsg;		/* message is the fingerprint one */
		unsigned srecv;
	} cases[] = {
		{ "both known", FP_RIGHT, FP_RIGHT, FP_LATER, FP_LATER, 0,
		  PP_DTLS_CONNECTED, PP_DTLS_CONNECTED, 1, 1, 1, 1, 0, 0, 0 },
		{ "client expects another cert", FP_WRONG, FP_RIGHT, FP_LATER, FP_LATER, 0,
		  PP_DTLS_FAILED, PP_DTLS_FAILED, 0, 0, PP_EAUTH, PP_EPROTO, 1, 0, 0 },
		{ "server expects another cert", FP_RIGHT, FP_WRONG, FP_LATER, FP_LATER, 0,
		  PP_DTLS_FAILED, PP_DTLS_FAILED, 0, 0, PP_EPROTO, PP_EAUTH, 0, 1, 0 },
		{ "both expect another cert", FP_WRONG, FP_WRONG, FP_LATER, FP_LATER, 0,
		  PP_DTLS_FAILED, PP_DTLS_FAILED, 0, 0, PP_EAUTH, PP_EPROTO, 1, 0, 0 },
		{ "both learn late, both wrong", FP_LATER, FP_LATER, FP_WRONG, FP_WRONG, 0,
		  PP_DTLS_FAILED, PP_DTLS_FAILED, 0, 0, PP_EAUTH, PP_EAUTH, 1, 1, 0 },
		{ "both learn late, right", FP_LATER, FP_LATER, FP_RIGHT, FP_RIGHT, 0,
		  PP_DTLS_CONNECTED, PP_DTLS_CONNECTED, 1, 1, 1, 1, 0, 0, 0 },
		{ "server learns late, data held then delivered", FP_RIGHT, FP_LATER,
		  FP_LATER, FP_RIGHT, 3,
		  PP_DTLS_CONNECTED, PP_DTLS_CONNECTED, 1, 1, 1, 1, 0, 0, 3 },
		{ "server learns late, holds at most PP_DTLS_EARLY_MAX", FP_RIGHT,
		  FP_LATER, FP_LATER, FP_RIGHT, PP_DTLS_EARLY_MAX + 8,
		  PP_DTLS_CONNECTED, PP_DTLS_CONNECTED, 1, 1, 1, 1, 0, 0,
		  PP_DTLS_EARLY_MAX },
		{ "server learns late, wrong: data never delivered", FP_RIGHT, FP_LATER,
		  FP_LATER, FP_WRONG, 3,
		  PP_DTLS_CLOSED, PP_DTLS_FAILED, 1, 0, 0, PP_EAUTH, 0, 1, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct side c, s;
		char msg[64];

		print_message("  case: %s\n", cases[i].name);
		side_init(&c, "client", PP_DTLS_CLIENT, cert_a,
		    fp_for(cases[i].cfp, cert_b), 0);
		side_init(&s, "server", PP_DTLS_SERVER, cert_b,
		    fp_for(cases[i].sfp, cert_a), 0);
		assert_int_equal(pp_dtls_start(c.d), 0);
		run(&c, &s);
		for (int k = 0; k < cases[i].client_sends; k++) {
			snprintf(msg, sizeof(msg), "early %d", k);
			assert_int_equal(pp_dtls_send(c.d, msg, strlen(msg) + 1), 0);
		}
		run(&c, &s);
		assert_int_equal(s.nrecv, 0);	/* nothing before verification */
		assert_int_equal(pp_dtls_send(s.d, "x", 1),
		    pp_dtls_get_state(s.d) == PP_DTLS_CONNECTED ? 0 : PP_ECONFLICT);
		if (cases[i].late_c != FP_LATER)
			assert_int_equal(pp_dtls_set_remote_fingerprint(c.d,
			    fp_for(cases[i].late_c, cert_b)), 0);
		if (cases[i].late_s != FP_LATER)
			assert_int_equal(pp_dtls_set_remote_fingerprint(s.d,
			    fp_for(cases[i].late_s, cert_a)), 0);
		run(&c, &s);

		assert_int_equal(pp_dtls_get_state(c.d), cases[i].cstate);
		assert_int_equal(pp_dtls_get_state(s.d), cases[i].sstate);
		assert_int_equal(c.connected, cases[i].cconn);
		assert_int_equal(s.connected, cases[i].sconn);
		assert_int_equal(c.closed ? c.close_code : 1, cases[i].ccode);
		assert_int_equal(s.closed ? s.close_code : 1, cases[i].scode);
		if (c.closed)
			print_message("    client: %s\n", c.close_msg);
		if (s.closed)
			print_message("    server: %s\n", s.close_msg);
		assert_int_equal(strncmp(c.close_msg, FP_MSG, strlen(FP_MSG)) == 0,
		    cases[i].cfpmsg);
		assert_int_equal(strncmp(s.close_msg, FP_MSG, strlen(FP_MSG)) == 0,
		    cases[i].sfpmsg);
		if (cases[i].sfpmsg) {
			char want[256];

			snprintf(want, sizeof(want), "(expected %s, got %s)",
			    pp_dtls_cert_fingerprint_text(cert_other),
			    pp_dtls_cert_fingerprint_text(cert_a));
			assert_non_null(strstr(s.close_msg, want));
		}
		assert_int_equal(s.nrecv, cases[i].srecv);
		if (cases[i].srecv) {
			snprintf(msg, sizeof(msg), "early %u", cases[i].srecv - 1);
			assert_string_equal((const char *)s.last, msg);
		}
		if (cases[i].cstate != PP_DTLS_CONNECTED)
			assert_int_equal(c.nrecv, 0);
		/* The same value again is fine; another one is not. */
		if (cases[i].late_s == FP_RIGHT) {
			assert_int_equal(pp_dtls_set_remote_fingerprint(s.d,
			    pp_dtls_cert_fingerprint(cert_a)), 0);
			assert_int_equal(pp_dtls_set_remote_fingerprint(s.d,
			    pp_dtls_cert_fingerprint(cert_other)), PP_ECONFLICT);
		}
		side_fini(&c);
		side_fini(&s);
	}
}

static void
test_data(void **state)
{
	static const size_t sizes[] = { 1, 2, 100, 1000, 1100 };
	struct side c, s;
	uint8_t buf[PP_DTLS_MAX_DATAGRAM];
	size_t max;

	(void)state;
	connect_pair(&c, &s, 0);
	max = pp_dtls_max_payload(c.d);
	print_message("  max payload at MTU %u: %zu\n", PP_DTLS_DEFAULT_MTU, max);
	assert_true(max >= 1100 && max < PP_DTLS_DEFAULT_MTU);
	assert_int_equal(pp_dtls_max_payload(s.d), max);
	for (size_t i = 0; i <= ARRAY_LEN(sizes); i++) {
		size_t n = i < ARRAY_LEN(sizes) ? sizes[i] : max;
		unsigned cr = c.nrecv, sr = s.nrecv;

		for (size_t k = 0; k < n; k++)
			buf[k] = (uint8_t)(k * 7 + i);
		/* client -> server */
		assert_int_equal(pp_dtls_send(c.d, buf, n), 0);
		assert_int_equal(c.nq, 1);	/* one record, one datagram */
		run(&c, &s);
		assert_int_equal(s.nrecv, sr + 1);
		assert_int_equal(s.last_len, n);
		assert_memory_equal(s.last, buf, n);
		/* server -> client */
		buf[0] ^= 0xff;
		assert_int_equal(pp_dtls_send(s.d, buf, n), 0);
		run(&c, &s);
		assert_int_equal(c.nrecv, cr + 1);
		assert_int_equal(c.last_len, n);
		assert_memory_equal(c.last, buf, n);
	}
	/* Oversize and empty sends are refused without side effects. */
	assert_int_equal(pp_dtls_send(c.d, buf, max + 1), PP_ETOOBIG);
	assert_int_equal(pp_dtls_send(c.d, buf, sizeof(buf)), PP_ETOOBIG);
	assert_int_equal(pp_dtls_send(c.d, buf, 0), PP_EINVAL);
	assert_int_equal(c.nq, 0);
	assert_int_equal(pp_dtls_get_state(c.d), PP_DTLS_CONNECTED);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), -1);
	assert_int_equal(pp_dtls_next_timeout_ms(s.d), -1);
	assert_false(c.closed || s.closed);
	side_fini(&c);
	side_fini(&s);
}

/*
 * Records packed into one datagram (pp_dtls_send_records), bigger than
 * OpenSSL's read buffer: the receiver gets every record, in order.
 */
static void
test_packed_records(void **state)
{
	static uint8_t buf[65000];
	struct side c, s;
	size_t max, rec;

	(void)state;
	connect_pair(&c, &s, 0);
	/* Packing below the MTU is refused. */
	assert_int_equal(pp_dtls_set_packing(c.d, PP_DTLS_DEFAULT_MTU - 1),
	    PP_EINVAL);
	for (int i = 0; i < 2; i++) {
		struct side *x = i ? &s : &c;

		assert_int_equal(pp_dtls_set_mtu(x->d, PP_DTLS_MAX_MTU), 0);
		assert_int_equal(pp_dtls_set_packing(x->d, PP_DTLS_MAX_PACKED), 0);
		x->dgram_max = PP_DTLS_MAX_PACKED;
	}
	assert_int_equal(pp_dtls_set_packing(c.d, PP_DTLS_MAX_PACKED + 1),
	    PP_EINVAL);
	max = pp_dtls_max_payload(c.d);
	assert_true(max > 16000 && max < PP_DTLS_MAX_MTU);
	assert_int_equal(pp_dtls_record_overhead(c.d), PP_DTLS_MAX_MTU - max);
	rec = max - 200;	/* four and their overhead fit PP_DTLS_MAX_PACKED */
	for (size_t k = 0; k < sizeof(buf); k++)
		buf[k] = (uint8_t)(k * 13 + k / 251);
	/* Four records, one datagram. */
	assert_int_equal(pp_dtls_send_records(c.d, buf, 4 * rec, rec), 0);
	assert_int_equal(c.nq, 1);
	assert_int_equal(c.q[0].len, 4 * rec + 4 * pp_dtls_record_overhead(c.d));
	s.cat_len = 0;
	s.nrecv = 0;
	run(&c, &s);
	assert_int_equal(s.nrecv, 4);
	assert_int_equal(s.last_len, rec);
	assert_int_equal(s.cat_len, 4 * rec);
	assert_memory_equal(s.cat, buf, 4 * rec);
	/* A short last record; and bad record sizes are refused. */
	assert_int_equal(pp_dtls_send_records(s.d, buf, 2 * rec + 5, rec), 0);
	assert_int_equal(s.nq, 1);
	c.cat_len = 0;
	c.nrecv = 0;
	run(&c, &s);
	assert_int_equal(c.nrecv, 3);
	assert_int_equal(c.last_len, 5);
	assert_memory_equal(c.cat, buf, 2 * rec + 5);
	assert_int_equal(pp_dtls_send_records(c.d, buf, 100, max + 1), PP_EINVAL);
	assert_int_equal(pp_dtls_send_records(c.d, buf, 100, 0), PP_EINVAL);
	assert_int_equal(c.nq, 0);
	/* More than one datagram holds: split at record boundaries. */
	assert_int_equal(pp_dtls_send_records(c.d, buf, sizeof(buf), 1000), 0);
	assert_int_equal(c.nq, 2);
	s.cat_len = 0;
	s.nrecv = 0;
	run(&c, &s);
	assert_int_equal(s.nrecv, (sizeof(buf) + 999) / 1000);
	assert_memory_equal(s.cat, buf, sizeof(buf));
	assert_false(c.closed || s.closed);
	side_fini(&c);
	side_fini(&s);
}

/* on_data answering synchronously, as SCTP does: re-entry must be fine. */
static void
test_echo_from_callback(void **state)
{
	struct side c, s;

	(void)state;
	connect_pair(&c, &s, 0);
	s.echo = 1;
	for (int i = 0; i < 10; i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "ping %d", i);
		assert_int_equal(pp_dtls_send(c.d, msg, strlen(msg) + 1), 0);
		run(&c, &s);
		assert_int_equal(s.echo_rc, 0);
		assert_int_equal(c.nrecv, (unsigned)i + 1);
		assert_string_equal((const char *)c.last, msg);
	}
	side_fini(&c);
	side_fini(&s);
}

static void
test_retransmit(void **state)
{
	static const struct {
		const char *name;
		int server;		/* whose datagrams are dropped */
		unsigned first, count;
	} cases[] = {
		{ "client flight 1 (ClientHello)", 0, 1, 1 },
		{ "client flight 1, twice", 0, 1, 2 },
		{ "server flight 2", 1, 1, 1 },
		{ "client flight 3 (cert, finished)", 0, 2, 1 },
		{ "server last flight (finished)", 1, 2, 1 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct side c, s;
		struct side *lossy;
		unsigned fired;

		print_message("  case: lose %s\n", cases[i].name);
		side_init(&c, "client", PP_DTLS_CLIENT, cert_a,
		    pp_dtls_cert_fingerprint(cert_b), 0);
		side_init(&s, "server", PP_DTLS_SERVER, cert_b,
		    pp_dtls_cert_fingerprint(cert_a), 0);
		lossy = cases[i].server ? &s : &c;
		lossy->drop_first = cases[i].first;
		lossy->drop_count = cases[i].count;
		assert_int_equal(pp_dtls_start(c.d), 0);
		fired = run(&c, &s);
		print_message("    %u timer(s) fired, %u + %u datagrams\n",
		    fired, c.sent, s.sent);
		assert_true(fired >= 1);
		assert_true(lossy->sent > lossy->drop_first + lossy->drop_count - 1);
		assert_int_equal(pp_dtls_get_state(c.d), PP_DTLS_CONNECTED);
		assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_CONNECTED);
		assert_int_equal(c.connected, 1);
		assert_int_equal(s.connected, 1);
		assert_int_equal(pp_dtls_send(c.d, "after loss", 11), 0);
		run(&c, &s);
		assert_string_equal((const char *)s.last, "after loss");
		side_fini(&c);
		side_fini(&s);
	}
}

/* A fresh server fed junk: refused or dropped, never a crash. */
static void
test_garbage(void **state)
{
	static uint8_t big[PP_DTLS_MAX_DATAGRAM + 1] = { 22 };
	/* A plausible DTLS 1.2 record header: handshake, epoch 0. */
#define HDR(len) 22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, (len) >> 8, (len) & 0xff
	static const uint8_t hdr_only[] = { HDR(0) };
	static const uint8_t too_long[] = { HDR(0xffff), 1, 2, 3 };
	static const uint8_t bad_version[] = { 22, 0x03, 0x01, 0, 0, 0, 0, 0, 0,
	    0, 0, 0, 4, 1, 0, 0, 0 };
	static const uint8_t appdata_epoch0[] = { 23, 0xfe, 0xfd, 0, 0, 0, 0, 0,
	    0, 0, 0, 0, 4, 'a', 'b', 'c', 'd' };
	static const uint8_t hello_fragment_lie[] = { HDR(12), 1, 0xff, 0xff,
	    0xff, 0, 0, 0, 0, 0, 0, 0, 0 };
	static const uint8_t hello_junk[] = { HDR(20), 1, 0, 0, 8, 0, 0, 0, 0,
	    0, 0, 0, 8, 0xfe, 0xfd, 0xde, 0xad, 0xbe, 0xef, 0, 0 };
	static const uint8_t alert[] = { 21, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0,
	    0, 2, 2, 40 };
	static const struct {
		const char *name;
		const uint8_t *buf;
		size_t len;
		int rc;
		int fatal;	/* the server fails (on_closed) */
	} cases[] = {
		{ "empty", hdr_only, 0, PP_EINVAL, 0 },
		{ "STUN", (const uint8_t *)"\x00\x01\x00\x00", 4, PP_EINVAL, 0 },
		{ "RTP", (const uint8_t *)"\x80\x60\x00\x01", 4, PP_EINVAL, 0 },
		{ "over the cap", big, sizeof(big), PP_ETOOBIG, 0 },
		{ "one byte", hdr_only, 1, 0, 0 },
		{ "header only", hdr_only, sizeof(hdr_only), 0, 0 },
		{ "length past the end", too_long, sizeof(too_long), 0, 0 },
		{ "TLS version", bad_version, sizeof(bad_version), 0, 0 },
		{ "app data before handshake", appdata_epoch0,
		  sizeof(appdata_epoch0), 0, 1 },
		{ "message length lies", hello_fragment_lie,
		  sizeof(hello_fragment_lie), 0, 1 },
		{ "ClientHello junk", hello_junk, sizeof(hello_junk), 0, 1 },
		{ "fatal alert", alert, sizeof(alert), 0, 1 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct side c, s;

		side_init(&s, "server", PP_DTLS_SERVER, cert_b,
		    pp_dtls_cert_fingerprint(cert_a), 0);
		assert_int_equal(pp_dtls_input(s.d, cases[i].buf, cases[i].len),
		    cases[i].rc);
		print_message("  %s: rc %d, %s%s%s\n", cases[i].name, cases[i].rc,
		    pp_dtls_state_name(pp_dtls_get_state(s.d)),
		    s.closed ? ", closed: " : "", s.close_msg);
		assert_int_equal(s.closed, cases[i].fatal);
		assert_int_equal(s.connected, 0);
		if (cases[i].fatal) {
			assert_true(s.close_code < 0);
			assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_FAILED);
			assert_int_equal(pp_dtls_input(s.d, hdr_only,
			    sizeof(hdr_only)), PP_ECONFLICT);
			side_fini(&s);
			continue;
		}
		/* Junk was dropped: a real client still gets through. */
		side_init(&c, "client", PP_DTLS_CLIENT, cert_a,
		    pp_dtls_cert_fingerprint(cert_b), 0);
		assert_int_equal(pp_dtls_start(c.d), 0);
		run(&c, &s);
		assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_CONNECTED);
		assert_int_equal(pp_dtls_get_state(c.d), PP_DTLS_CONNECTED);
		/* And junk after the handshake is dropped too. */
		if (cases[i].rc == 0)
			assert_int_equal(pp_dtls_input(s.d, cases[i].buf,
			    cases[i].len), 0);
		assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_CONNECTED);
		side_fini(&c);
		side_fini(&s);
	}
#undef HDR
}

/* Nobody answers: the client backs off, then gives up. */
static void
test_give_up(void **state)
{
	struct side c;
	long wait, waited = 0, prev = 0;
	int fired = 0;

	(void)state;
	side_init(&c, "client", PP_DTLS_CLIENT, cert_a,
	    pp_dtls_cert_fingerprint(cert_b), 100);
	assert_int_equal(pp_dtls_start(c.d), 0);
	while (!c.closed && (wait = pp_dtls_next_timeout_ms(c.d)) >= 0) {
		assert_true(fired == 0 || wait == 2 * prev ||
		    wait == PP_DTLS_MAX_TIMEOUT_MS);
		prev = wait;
		waited += wait;
		clock_advance(wait);
		assert_int_equal(pp_dtls_handle_timeout(c.d), 0);
		fired++;
		assert_true(fired < 100);
	}
	print_message("  gave up after %d timers, %ld s: %s\n", fired,
	    waited / 1000, c.close_msg);
	assert_int_equal(c.close_code, -ETIMEDOUT);
	assert_int_equal(pp_dtls_get_state(c.d), PP_DTLS_FAILED);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), -1);
	assert_int_equal(c.sent, (unsigned)fired);	/* first + retransmits */
	side_fini(&c);
}

/* A flood of handshake datagrams ends the handshake instead of growing. */
static void
test_flood(void **state)
{
	uint8_t junk[64];
	struct side s;
	unsigned i;

	(void)state;
	side_init(&s, "server", PP_DTLS_SERVER, cert_b, NULL, 0);
	memset(junk, 0x5a, sizeof(junk));
	junk[0] = 22;
	for (i = 0; i < 2 * PP_DTLS_MAX_HANDSHAKE_DATAGRAMS && !s.closed; i++)
		assert_int_equal(pp_dtls_input(s.d, junk, sizeof(junk)), 0);
	assert_int_equal(i, PP_DTLS_MAX_HANDSHAKE_DATAGRAMS + 1);
	assert_int_equal(s.close_code, PP_ELIMIT);
	assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_FAILED);
	side_fini(&s);
}

static void
test_close(void **state)
{
	struct side c, s;

	(void)state;
	connect_pair(&c, &s, 0);
	assert_int_equal(pp_dtls_close(c.d), 0);
	assert_int_equal(pp_dtls_close(c.d), 0);		/* idempotent */
	assert_int_equal(pp_dtls_get_state(c.d), PP_DTLS_CLOSED);
	run(&c, &s);
	assert_int_equal(s.closed, 1);
	assert_int_equal(s.close_code, 0);
	assert_int_equal(pp_dtls_get_state(s.d), PP_DTLS_CLOSED);
	assert_int_equal(c.closed, 0);	/* no callback for what we asked */
	assert_int_equal(pp_dtls_send(c.d, "x", 1), PP_ECONFLICT);
	assert_int_equal(pp_dtls_send(s.d, "x", 1), PP_ECONFLICT);
	assert_int_equal(pp_dtls_handle_timeout(c.d), PP_ECONFLICT);
	assert_int_equal(pp_dtls_next_timeout_ms(c.d), -1);
	assert_int_equal(pp_dtls_max_payload(c.d), 0);
	side_fini(&c);
	side_fini(&s);
}

/* The owner frees the endpoint from inside its own callback. */
static void
test_free_in_callback(void **state)
{
	static const struct {
		int server;
		enum free_when when;
	} cases[] = {
		{ 1, FREE_ON_CONNECTED },
		{ 0, FREE_ON_CONNECTED },
		{ 1, FREE_ON_DATA },
		{ 0, FREE_ON_DATA },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
		struct side c, s;
		struct side *victim, *other;

		side_init(&c, "client", PP_DTLS_CLIENT, cert_a,
		    pp_dtls_cert_fingerprint(cert_b), 0);
		side_init(&s, "server", PP_DTLS_SERVER, cert_b,
		    pp_dtls_cert_fingerprint(cert_a), 0);
		victim = cases[i].server ? &s : &c;
		other = cases[i].server ? &c : &s;
		victim->free_when = cases[i].when;
		assert_int_equal(pp_dtls_start(c.d), 0);
		run(&c, &s);
		if (cases[i].when == FREE_ON_DATA) {
			assert_int_equal(pp_dtls_send(other->d, "a", 2), 0);
			assert_int_equal(pp_dtls_send(other->d, "b", 2), 0);
			run(&c, &s);
			assert_int_equal(victim->nrecv, 1);
		}
		assert_null(victim->d);
		assert_int_equal(victim->connected, 1);
		side_fini(&c);
		side_fini(&s);
	}
}

static int
group_setup(void **state)
{
	(void)state;
	if (pp_dtls_cert_new(NULL, &cert_a) < 0 ||
	    pp_dtls_cert_new(NULL, &cert_b) < 0 ||
	    pp_dtls_cert_new("someone-else", &cert_other) < 0)
		return -1;
	return 0;
}

static int
group_teardown(void **state)
{
	(void)state;
	pp_dtls_cert_free(cert_a);
	pp_dtls_cert_free(cert_b);
	pp_dtls_cert_free(cert_other);
	return 0;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fp_format),
		cmocka_unit_test(test_fp_parse),
		cmocka_unit_test(test_cert_new),
		cmocka_unit_test(test_cert_names),
		cmocka_unit_test(test_pem_roundtrip),
		cmocka_unit_test(test_pem_refused),
		cmocka_unit_test(test_is_record),
		cmocka_unit_test(test_config_refused),
		cmocka_unit_test(test_timer),
		cmocka_unit_test(test_handshake_fingerprints),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_packed_records),
		cmocka_unit_test(test_echo_from_callback),
		cmocka_unit_test(test_retransmit),
		cmocka_unit_test(test_give_up),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_flood),
		cmocka_unit_test(test_close),
		cmocka_unit_test(test_free_in_callback),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
