/*
 * Internals shared by the files of lib/ips (not part of its API).
 */
#ifndef PP_IPS_INT_H
#define PP_IPS_INT_H

#include "base/lines.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Nonzero if s is safe inside a double-quoted YAML scalar and an argv:
 * printable ASCII except '"' and '\\'. */
int pp__ips_plain(const char *s);

/*
 * The self-test canary (canary.c), driven by the facade (ips.c).
 *
 * Listens on addr:<ephemeral> (an IPv4 loopback address), sends a clean request over one MARKED
 * connection and, once the listener got it, "PEERPIPE-CANARY-<hex>" over a
 * second one.  Inline (expect_drop): success when the eve alert for
 * PP__CANARY_SID on the second connection's 5-tuple says "blocked" and the
 * listener has not received the canary CANARY_GRACE_MS after it.  IDS: the
 * alert alone is success.  cb runs exactly once unless freed before.
 */
#define PP__CANARY_SID 9000002u

struct pp_eve_event;
struct pp__canary;
typedef void (*pp__canary_cb)(int status, const char *reason, void *ctx);

int pp__canary_start(uv_loop_t *loop, const char *addr, uint32_t mark,
    int expect_drop,
    unsigned timeout_ms, pp__canary_cb cb, void *ctx, struct pp__canary **out);
/* Feeds an eve event; returns 1 if it belongs to the canary's connections
 * (the caller should not treat it as an attack). */
int pp__canary_eve(struct pp__canary *c, const struct pp_eve_event *ev);
void pp__canary_free(struct pp__canary *c);

#endif
