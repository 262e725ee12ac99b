/* Fuzzes the signaling v1 request parser and the hub that acts on it. */
#include "signal/hub.h"
#include "signal/msg.h"

#include <stdint.h>
#include <stdlib.h>

static int
sink(void *ctx, const char *text, size_t len)
{
	(void)ctx, (void)text, (void)len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pp_sig_limits lim = { 4, 3, 65536 };
	static const struct pp_sig_hub_ops ops = { sink };
	struct pp_sig_request req;
	const char *reason;
	char err[160];
	struct pp_sig_hub *hub;
	struct pp_sig_conn *a, *b;

	if (pp_sig_parse((const char *)data, size, 65536, &req, &reason, err,
	    sizeof(err)) == 0)
		pp_sig_request_fini(&req);

	/* The same bytes, split at newlines, as a conversation of two clients. */
	hub = pp_sig_hub_new(&lim, &ops);
	if (hub == NULL)
		return 0;
	a = pp_sig_conn_new(hub, NULL);
	b = pp_sig_conn_new(hub, NULL);
	for (size_t start = 0, i = 0, n = 0; i <= size; i++) {
		if (i == size || data[i] == '\n') {
			pp_sig_hub_input(hub, (n++ & 1) ? b : a,
			    (const char *)data + start, i - start);
			start = i + 1;
		}
	}
	pp_sig_conn_free(hub, a);
	pp_sig_conn_free(hub, b);
	pp_sig_hub_free(hub);
	return 0;
}
