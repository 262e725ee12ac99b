/*
 * The agent's local control API: JSON over a UNIX stream socket, one object
 * per line each way (docs/control-api.md).
 *
 *   request:  {"id": N, "cmd": "status", "args": {...}}
 *   reply:    {"id": N, "ok": true, "result": ...}
 *             {"id": N, "ok": false, "error": "what went wrong and the fix"}
 *   event:    {"event": "peer", "data": {...}}   (after {"cmd": "subscribe"})
 *
 * The server lives on the agent's libuv loop and calls one handler per
 * request; a client sends requests in order and gets replies in order.
 * Requests over PP_CTL_LINE_MAX bytes, or that are not JSON objects with a
 * string "cmd", get an error reply and the connection stays usable.  At
 * most PP_CTL_MAX_CLIENTS at once; a client that does not read its replies
 * past PP_CTL_OUT_MAX bytes is disconnected.
 *
 * Thread: the loop thread.  pp_ctl_call() is a blocking client for CLIs.
 */
#ifndef PP_AGENT_CTL_H
#define PP_AGENT_CTL_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

#define PP_CTL_LINE_MAX		(64 * 1024)
#define PP_CTL_OUT_MAX		(4 * 1024 * 1024)
#define PP_CTL_MAX_CLIENTS	64

struct pp_ctl;

/*
 * Handles one request: return a new reference to the result (any JSON) or
 * NULL with a message in err (the client gets ok:false).  args is borrowed
 * (an empty object when absent).
 */
typedef json_t *(*pp_ctl_handler)(void *ctx, const char *cmd, json_t *args,
    char *err, size_t errlen);

/*
 * Listens on path with the given mode (0600 or 0660), replacing a stale
 * socket file (one nobody answers on); PP_ECONFLICT if another process
 * serves it.  The directory is created 0700 when missing.
 */
int pp_ctl_new(uv_loop_t *loop, const char *path, unsigned mode,
    pp_ctl_handler handler, void *ctx, struct pp_ctl **out);
/* Sends an event to every subscribed client (ev borrowed). */
void pp_ctl_broadcast(struct pp_ctl *c, const char *event, json_t *data);
/* Closes the listener and clients, unlinks the socket; frees once the loop
 * has run the close callbacks.  NULL-safe. */
void pp_ctl_free(struct pp_ctl *c);

/*
 * Blocking client: connects, sends one request, waits up to timeout_ms for
 * its reply.  Returns 0 with *result (new reference) on ok:true; PP_EINVAL
 * with the server's error in err on ok:false; -errno (e.g. -ENOENT: no agent
 * runs there, -ECONNREFUSED) with a sentence in err otherwise.
 */
int pp_ctl_call(const char *path, const char *cmd, json_t *args,
    unsigned timeout_ms, json_t **result, char *err, size_t errlen);

#endif
