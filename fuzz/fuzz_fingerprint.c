/* Fuzzes the SDP fingerprint text parser and checks the format round trip. */
#include "dtls/cert.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t fp[PP_DTLS_FP_LEN], again[PP_DTLS_FP_LEN];
	char text[PP_DTLS_FP_STRLEN + 1];

	if (pp_dtls_fp_parse((const char *)data, size, fp) != 0)
		return 0;
	pp_dtls_fp_format(fp, text);
	if (pp_dtls_fp_parse(text, strlen(text), again) != 0 ||
	    memcmp(fp, again, sizeof(fp)) != 0)
		abort();	/* what we write must read back the same */
	return 0;
}
