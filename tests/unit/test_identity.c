/*
 * lib/identity: Ed25519 identities, their text form and their key files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "base/error.h"
#include "identity/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void
test_sign_verify(void **state)
{
	struct pp_identity *a, *b;
	uint8_t pa[PP_ID_PUB_LEN], pb[PP_ID_PUB_LEN], sig[PP_ID_SIG_LEN];
	const char msg[] = "fingerprint|alice|bob|room|nonce";

	(void)state;
	assert_int_equal(pp_id_generate(&a), 0);
	assert_int_equal(pp_id_generate(&b), 0);
	pp_id_public(a, pa);
	pp_id_public(b, pb);
	assert_memory_not_equal(pa, pb, PP_ID_PUB_LEN);
	assert_int_equal(pp_id_sign(a, msg, sizeof(msg), sig), 0);
	assert_int_equal(pp_id_verify(pa, msg, sizeof(msg), sig), 0);
	/* another key, another message, a flipped bit: all refused */
	assert_int_equal(pp_id_verify(pb, msg, sizeof(msg), sig), PP_EAUTH);
	assert_int_equal(pp_id_verify(pa, msg, sizeof(msg) - 1, sig), PP_EAUTH);
	sig[10] ^= 1;
	assert_int_equal(pp_id_verify(pa, msg, sizeof(msg), sig), PP_EAUTH);
	pp_id_free(a);
	pp_id_free(b);
}

static void
test_text_form(void **state)
{
	struct pp_identity *a;
	uint8_t pub[PP_ID_PUB_LEN], back[PP_ID_PUB_LEN];
	char text[PP_ID_PUB_STRLEN + 1], bad[PP_ID_PUB_STRLEN + 2];

	(void)state;
	assert_int_equal(pp_id_generate(&a), 0);
	pp_id_public(a, pub);
	pp_id_public_text(a, text, sizeof(text));
	assert_int_equal(strlen(text), PP_ID_PUB_STRLEN);
	assert_int_equal(strncmp(text, "ed25519:", 8), 0);
	assert_int_equal(pp_id_pub_parse(text, strlen(text), back), 0);
	assert_memory_equal(pub, back, PP_ID_PUB_LEN);

	/* known vector: 32 zero bytes */
	memset(pub, 0, sizeof(pub));
	pp_id_pub_format(pub, text, sizeof(text));
	assert_string_equal(text, "ed25519:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	/* 0xff... uses the url alphabet, no padding */
	memset(pub, 0xff, sizeof(pub));
	pp_id_pub_format(pub, text, sizeof(text));
	assert_string_equal(text, "ed25519:__________________________________________8");
	assert_int_equal(pp_id_pub_parse(text, strlen(text), back), 0);
	assert_memory_equal(pub, back, PP_ID_PUB_LEN);

	/* wrong prefix, length, alphabet, non-canonical trailing bits */
	snprintf(bad, sizeof(bad), "ED25519:%s", text + 8);
	assert_int_equal(pp_id_pub_parse(bad, strlen(bad), back), PP_EINVAL);
	assert_int_equal(pp_id_pub_parse(text, strlen(text) - 1, back), PP_EINVAL);
	snprintf(bad, sizeof(bad), "%s", text);
	bad[20] = '+';
	assert_int_equal(pp_id_pub_parse(bad, strlen(bad), back), PP_EINVAL);
	snprintf(bad, sizeof(bad), "%s", text);
	bad[strlen(bad) - 1] = '9';	/* 0x3d: low bits set */
	assert_int_equal(pp_id_pub_parse(bad, strlen(bad), back), PP_EINVAL);
	pp_id_free(a);
}

static void
test_key_file(void **state)
{
	char dir[] = "/tmp/pp-idtest-XXXXXX", path[256], err[256];
	struct pp_identity *a, *b;
	uint8_t pa[PP_ID_PUB_LEN], pb[PP_ID_PUB_LEN];
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub/identity.pem", dir);
	assert_int_equal(pp_id_load_or_create(path, &a, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* the second start loads the same identity */
	assert_int_equal(pp_id_load_or_create(path, &b, err, sizeof(err)), 0);
	pp_id_public(a, pa);
	pp_id_public(b, pb);
	assert_memory_equal(pa, pb, PP_ID_PUB_LEN);
	pp_id_free(b);
	/* readable by others: refused, with the fix */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(pp_id_load_or_create(path, &b, err, sizeof(err)),
	    PP_ECONFIG);
	assert_non_null(strstr(err, "chmod 600"));
	/* not a key */
	assert_int_equal(chmod(path, 0600), 0);
	assert_non_null(f = fopen(path, "w"));
	fputs("not a key\n", f);
	fclose(f);
	assert_int_equal(pp_id_load_or_create(path, &b, err, sizeof(err)),
	    PP_ECONFIG);
	assert_non_null(strstr(err, "not a PEM Ed25519"));
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
	pp_id_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_verify),
		cmocka_unit_test(test_text_form),
		cmocka_unit_test(test_key_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
