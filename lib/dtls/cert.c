/*
 * Key files are read into a bounded buffer that is wiped afterwards, not
 * through stdio, whose buffers would keep a copy of the key in freed memory.
 * Written PEM goes through a "secure memory" BIO, which wipes on free.
 */
#include "cert.h"
#include "base/error.h"
#include "base/random.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define CN_MAX	64	/* X.520 ub-common-name */

struct pp_dtls_cert {
	X509 *x509;
	EVP_PKEY *pkey;
	uint8_t fp[PP_DTLS_FP_LEN];
	char fp_text[PP_DTLS_FP_STRLEN + 1];
};


static void __attribute__((format(printf, 3, 4)))
seterr(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(errbuf, errlen, fmt, ap);
	va_end(ap);
}

void
pp_dtls_fp_format(const uint8_t fp[PP_DTLS_FP_LEN],
    char out[PP_DTLS_FP_STRLEN + 1])
{
	static const char hex[] = "0123456789ABCDEF";

	for (size_t i = 0; i < PP_DTLS_FP_LEN; i++) {
		out[i * 3] = hex[fp[i] >> 4];
		out[i * 3 + 1] = hex[fp[i] & 0x0f];
		out[i * 3 + 2] = ':';
	}
	out[PP_DTLS_FP_STRLEN] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
pp_dtls_fp_parse(const char *text, size_t len, uint8_t fp[PP_DTLS_FP_LEN])
{
	uint8_t tmp[PP_DTLS_FP_LEN];

	if (text == NULL || len != PP_DTLS_FP_STRLEN)
		return PP_EINVAL;
	for (size_t i = 0; i < PP_DTLS_FP_LEN; i++) {
		int hi = hexval(text[i * 3]), lo = hexval(text[i * 3 + 1]);

		if (hi < 0 || lo < 0)
			return PP_EINVAL;
		if (i + 1 < PP_DTLS_FP_LEN && text[i * 3 + 2] != ':')
			return PP_EINVAL;
		tmp[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(fp, tmp, sizeof(tmp));
	return 0;
}

/* Takes ownership of x509 and pkey, also on failure. */
static int
cert_wrap(X509 *x509, EVP_PKEY *pkey, struct pp_dtls_cert **out)
{
	struct pp_dtls_cert *c = calloc(1, sizeof(*c));
	unsigned int n = 0;

	if (c == NULL) {
		X509_free(x509);
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	c->x509 = x509;
	c->pkey = pkey;
	if (!X509_digest(x509, EVP_sha256(), c->fp, &n) || n != PP_DTLS_FP_LEN) {
		pp_dtls_cert_free(c);
		return PP_EPROTO;
	}
	pp_dtls_fp_format(c->fp, c->fp_text);
	*out = c;
	return 0;
}

static int
cn_valid(const char *cn)
{
	size_t len = strlen(cn);

	if (len == 0 || len > CN_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (cn[i] < 0x20 || cn[i] > 0x7e)
			return 0;
	return 1;
}

static int
set_random_serial(X509 *x)
{
	uint8_t b[16];
	BIGNUM *bn;
	int ok, err;

	if ((err = pp_random_bytes(b, sizeof(b))) < 0)
		return err;
	/* Positive (RFC 5280 4.1.2.2) and a full 16 bytes long. */
	b[0] = (uint8_t)((b[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(b, (int)sizeof(b), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : PP_EPROTO;
}

int
pp_dtls_cert_new(const char *common_name, struct pp_dtls_cert **out)
{
	const char *cn = common_name ? common_name : PP_DTLS_CERT_CN;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	X509_NAME *name;
	int err;

	*out = NULL;
	if (!cn_valid(cn))
		return PP_EINVAL;
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	if (pkey == NULL || x == NULL) {
		err = -ENOMEM;
		goto free_objs;
	}
	err = PP_EPROTO;
	if (!X509_set_version(x, X509_VERSION_3))
		goto free_objs;
	if ((err = set_random_serial(x)) < 0)
		goto free_objs;
	err = PP_EPROTO;
	if (!X509_gmtime_adj(X509_getm_notBefore(x), -PP_DTLS_CERT_PAST_S) ||
	    !X509_gmtime_adj(X509_getm_notAfter(x), PP_DTLS_CERT_FUTURE_S))
		goto free_objs;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) ||
	    !X509_set_pubkey(x, pkey) ||
	    X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto free_objs;
	ERR_clear_error();
	return cert_wrap(x, pkey, out);

free_objs:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pkey);
	return err;
}

void
pp_dtls_cert_free(struct pp_dtls_cert *cert)
{
	if (cert == NULL)
		return;
	X509_free(cert->x509);
	EVP_PKEY_free(cert->pkey);
	free(cert);
}

const uint8_t *
pp_dtls_cert_fingerprint(const struct pp_dtls_cert *cert)
{
	return cert->fp;
}

const char *
pp_dtls_cert_fingerprint_text(const struct pp_dtls_cert *cert)
{
	return cert->fp_text;
}

X509 *
pp_dtls_cert_x509(const struct pp_dtls_cert *cert)
{
	return cert->x509;
}

EVP_PKEY *
pp_dtls_cert_pkey(const struct pp_dtls_cert *cert)
{
	return cert->pkey;
}

/* ---- files ---- */

static int
write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Replaces path atomically with data: a fresh temporary file made with
 * O_CREAT|O_EXCL and mode 0600 (mkostemp), then chmod'ed to mode if that is
 * wider, synced, and renamed.
 */
static int
write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
    char *errbuf, size_t errlen)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + sizeof(".tmp-XXXXXX"));
	int fd, err;

	if (tmp == NULL)
		return -ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp-XXXXXX", sizeof(".tmp-XXXXXX"));
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
		err = -errno;
		seterr(errbuf, errlen, "%s: cannot create a file beside it: %s",
		    path, strerror(-err));
		free(tmp);
		return err;
	}
	err = 0;
	if (mode != 0600 && fchmod(fd, mode) < 0)
		err = -errno;
	else if ((err = write_all(fd, data, len)) == 0 && fsync(fd) < 0)
		err = -errno;
	if (close(fd) < 0 && err == 0)
		err = -errno;
	if (err == 0 && rename(tmp, path) < 0)
		err = -errno;
	if (err < 0) {
		seterr(errbuf, errlen, "%s: cannot write: %s", path,
		    strerror(-err));
		unlink(tmp);
	}
	free(tmp);
	return err;
}

int
pp_dtls_cert_write_pem(const struct pp_dtls_cert *cert,
    const char *cert_path, const char *key_path, char *errbuf, size_t errlen)
{
	BIO *kbio, *cbio;
	char *data;
	long len;
	int err = -ENOMEM;

	if (strcmp(cert_path, key_path) == 0) {
		seterr(errbuf, errlen, "%s: the certificate and the key need "
		    "two different files", key_path);
		return PP_EINVAL;
	}
	kbio = BIO_new(BIO_s_secmem());
	cbio = BIO_new(BIO_s_mem());
	if (kbio == NULL || cbio == NULL)
		goto free_bios;
	err = PP_EPROTO;
	if (!PEM_write_bio_PrivateKey(kbio, cert->pkey, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cbio, cert->x509)) {
		seterr(errbuf, errlen, "cannot encode the certificate as PEM");
		goto free_bios;
	}
	/* The key first: a certificate without its key is useless. */
	len = BIO_get_mem_data(kbio, &data);
	if ((err = write_file_atomic(key_path, data, (size_t)len, 0600,
	    errbuf, errlen)) < 0)
		goto free_bios;
	len = BIO_get_mem_data(cbio, &data);
	err = write_file_atomic(cert_path, data, (size_t)len, 0644, errbuf, errlen);

free_bios:
	ERR_clear_error();
	BIO_free(kbio);		/* secure memory BIO: wiped on free */
	BIO_free(cbio);
	return err;
}

/*
 * Reads a whole small file into a fresh buffer (caller wipes and frees).
 * For a key, the mode is checked on the open descriptor, so the file that
 * is checked is the file that is read.
 */
static int
read_file(const char *path, int is_key, char **out, size_t *outlen,
    char *errbuf, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, err;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
		err = -errno;
		seterr(errbuf, errlen, "%s: cannot open: %s", path, strerror(-err));
		return err;
	}
	if (fstat(fd, &st) < 0) {
		err = -errno;
		seterr(errbuf, errlen, "%s: cannot stat: %s", path, strerror(-err));
		goto close_fd;
	}
	err = PP_EINVAL;
	if (!S_ISREG(st.st_mode)) {
		seterr(errbuf, errlen, "%s: not a regular file", path);
		goto close_fd;
	}
	err = PP_EDENIED;
	if (is_key && (st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		seterr(errbuf, errlen, "%s: private key file is accessible by "
		    "group or others (mode %04o); fix it with: chmod 600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto close_fd;
	}
	err = PP_ETOOBIG;
	if (st.st_size > (off_t)PP_DTLS_PEM_MAX) {
		seterr(errbuf, errlen, "%s: larger than %u bytes", path,
		    PP_DTLS_PEM_MAX);
		goto close_fd;
	}
	err = -ENOMEM;
	/* One byte spare to notice a file that grew since fstat. */
	if ((buf = malloc(PP_DTLS_PEM_MAX + 1)) == NULL)
		goto close_fd;
	for (;;) {
		ssize_t n = read(fd, buf + len, PP_DTLS_PEM_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			seterr(errbuf, errlen, "%s: cannot read: %s", path,
			    strerror(-err));
			goto free_buf;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > PP_DTLS_PEM_MAX) {
			err = PP_ETOOBIG;
			seterr(errbuf, errlen, "%s: larger than %u bytes", path,
			    PP_DTLS_PEM_MAX);
			goto free_buf;
		}
	}
	close(fd);
	*out = buf;
	*outlen = len;
	return 0;

free_buf:
	OPENSSL_cleanse(buf, len);
	free(buf);
close_fd:
	close(fd);
	return err;
}

/* Refuses to prompt on the terminal for a passphrase. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	return -1;
}

int
pp_dtls_cert_load_pem(const char *cert_path, const char *key_path,
    struct pp_dtls_cert **out, char *errbuf, size_t errlen)
{
	char *kbuf = NULL, *cbuf = NULL;
	size_t klen = 0, clen = 0;
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *bio;
	int err;

	*out = NULL;
	if ((err = read_file(key_path, 1, &kbuf, &klen, errbuf, errlen)) < 0)
		return err;
	if ((bio = BIO_new_mem_buf(kbuf, (int)klen)) != NULL) {
		pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	OPENSSL_cleanse(kbuf, klen);
	free(kbuf);
	err = PP_EINVAL;
	if (pkey == NULL) {
		seterr(errbuf, errlen, "%s: no usable private key (expected an "
		    "unencrypted PEM key)", key_path);
		goto free_objs;
	}
	if ((err = read_file(cert_path, 0, &cbuf, &clen, errbuf, errlen)) < 0)
		goto free_objs;
	if ((bio = BIO_new_mem_buf(cbuf, (int)clen)) != NULL) {
		x = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
		BIO_free(bio);
	}
	free(cbuf);
	err = PP_EINVAL;
	if (x == NULL) {
		seterr(errbuf, errlen, "%s: no PEM certificate", cert_path);
		goto free_objs;
	}
	if (X509_check_private_key(x, pkey) != 1) {
		seterr(errbuf, errlen, "%s does not belong to the key in %s; "
		    "write both files again", cert_path, key_path);
		goto free_objs;
	}
	ERR_clear_error();
	return cert_wrap(x, pkey, out);

free_objs:
	ERR_clear_error();
	X509_free(x);
	EVP_PKEY_free(pkey);
	return err;
}
