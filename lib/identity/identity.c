/*
 * Ed25519 identities on OpenSSL 3 (EVP_PKEY_ED25519).  See identity.h.
 */
#include "identity/identity.h"

#include "base/b64.h"
#include "base/error.h"
#include "base/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

struct pp_identity {
	EVP_PKEY *key;
	uint8_t pub[PP_ID_PUB_LEN];
};

void
pp_id_pub_format(const uint8_t pub[PP_ID_PUB_LEN], char *out, size_t len)
{
	char buf[PP_ID_PUB_STRLEN + 1];
	size_t plen = sizeof(PP_ID_PUB_PREFIX) - 1;

	memcpy(buf, PP_ID_PUB_PREFIX, plen);
	pp_b64url_encode(pub, PP_ID_PUB_LEN, buf + plen);
	snprintf(out, len, "%s", buf);
}

int
pp_id_pub_parse(const char *text, size_t len, uint8_t pub[PP_ID_PUB_LEN])
{
	size_t plen = sizeof(PP_ID_PUB_PREFIX) - 1;

	if (len < plen || memcmp(text, PP_ID_PUB_PREFIX, plen) != 0)
		return PP_EINVAL;
	return pp_b64url_decode(text + plen, len - plen, pub, PP_ID_PUB_LEN);
}

static int
from_key(EVP_PKEY *key, struct pp_identity **out)
{
	struct pp_identity *id;
	size_t len = PP_ID_PUB_LEN;

	if ((id = calloc(1, sizeof(*id))) == NULL)
		return -ENOMEM;
	if (EVP_PKEY_get_raw_public_key(key, id->pub, &len) != 1 ||
	    len != PP_ID_PUB_LEN) {
		free(id);
		return PP_EINVAL;
	}
	id->key = key;
	*out = id;
	return 0;
}

int
pp_id_generate(struct pp_identity **out)
{
	EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	int rc;

	if (key == NULL)
		return -ENOMEM;
	if ((rc = from_key(key, out)) < 0)
		EVP_PKEY_free(key);
	return rc;
}

static int
load(const char *path, struct pp_identity **out, char *err, size_t errlen)
{
	struct stat st;
	EVP_PKEY *key;
	FILE *f;
	int fd, rc;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s: not a regular file", path);
		return PP_ECONFIG;
	}
	if (st.st_mode & 077) {
		close(fd);
		snprintf(err, errlen, "%s: the identity key is readable by others "
		    "(mode %04o): chmod 600 %s", path, (unsigned)(st.st_mode & 07777),
		    path);
		return PP_ECONFIG;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(key);
		snprintf(err, errlen, "%s: not a PEM Ed25519 private key: move it "
		    "away and a new identity is created", path);
		return PP_ECONFIG;
	}
	if ((rc = from_key(key, out)) < 0)
		EVP_PKEY_free(key);
	return rc;
}

static int
create(const char *path, struct pp_identity **out, char *err, size_t errlen)
{
	char dir[4096], tmp[4200];
	struct pp_identity *id;
	FILE *f;
	int fd, rc;

	snprintf(dir, sizeof(dir), "%s", path);
	if ((rc = pp_mkdir_p(dirname(dir), 0700)) < 0) {
		snprintf(err, errlen, "%s: cannot create its directory: %s", path,
		    pp_strerror(rc));
		return rc;
	}
	if ((rc = pp_id_generate(&id)) < 0)
		return rc;
	/* Written whole under a temporary name, then renamed: a crash never
	 * leaves half a key where the next start would refuse it. */
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0 ||
	    (f = fdopen(fd, "w")) == NULL) {
		rc = -errno;
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "%s: cannot write: %s", tmp, pp_strerror(rc));
		pp_id_free(id);
		return rc;
	}
	rc = PEM_write_PrivateKey(f, id->key, NULL, NULL, 0, NULL, NULL) == 1 &&
	    fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -EIO;
	if (fclose(f) != 0)
		rc = -EIO;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		snprintf(err, errlen, "%s: cannot write: %s", path, pp_strerror(rc));
		pp_id_free(id);
		return rc;
	}
	*out = id;
	return 0;
}

int
pp_id_load_or_create(const char *path, struct pp_identity **out, char *err,
    size_t errlen)
{
	int rc = load(path, out, err, errlen);

	if (rc == -ENOENT)
		return create(path, out, err, errlen);
	if (rc < 0 && rc != PP_ECONFIG)
		snprintf(err, errlen, "%s: cannot read: %s", path, pp_strerror(rc));
	return rc;
}

void
pp_id_free(struct pp_identity *id)
{
	if (id == NULL)
		return;
	EVP_PKEY_free(id->key);		/* OpenSSL wipes the private part */
	OPENSSL_cleanse(id, sizeof(*id));
	free(id);
}

void
pp_id_public(const struct pp_identity *id, uint8_t pub[PP_ID_PUB_LEN])
{
	memcpy(pub, id->pub, PP_ID_PUB_LEN);
}

void
pp_id_public_text(const struct pp_identity *id, char *out, size_t len)
{
	pp_id_pub_format(id->pub, out, len);
}

int
pp_id_sign(const struct pp_identity *id, const void *msg, size_t len,
    uint8_t sig[PP_ID_SIG_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	size_t siglen = PP_ID_SIG_LEN;
	int ok;

	if (md == NULL)
		return -ENOMEM;
	ok = EVP_DigestSignInit(md, NULL, NULL, NULL, id->key) == 1 &&
	    EVP_DigestSign(md, sig, &siglen, msg, len) == 1 &&
	    siglen == PP_ID_SIG_LEN;
	EVP_MD_CTX_free(md);
	return ok ? 0 : PP_EINVAL;
}

int
pp_id_verify(const uint8_t pub[PP_ID_PUB_LEN], const void *msg, size_t len,
    const uint8_t sig[PP_ID_SIG_LEN])
{
	EVP_PKEY *key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub,
	    PP_ID_PUB_LEN);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	ok = key && md && EVP_DigestVerifyInit(md, NULL, NULL, NULL, key) == 1 &&
	    EVP_DigestVerify(md, sig, PP_ID_SIG_LEN, msg, len) == 1;
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(key);
	/* A failed check leaves errors queued, which SSL_get_error() of an
	 * unrelated DTLS connection on this thread would then misread. */
	if (!ok)
		ERR_clear_error();
	return ok ? 0 : PP_EAUTH;
}
