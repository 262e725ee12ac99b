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
 * Who may connect: the socket file's mode is the gate (0600: the agent's
 * user; 0660: also the file's group, which is the agent's group or the
 * directory's set-group-id group).  Each new client's SO_PEERCRED is checked
 * against the same rule (root, our euid, and with 0660 a member of the
 * file's group via SO_PEERGROUPS) in case the file's mode was changed; a
 * refused client gets one error line and is closed.  Of the clients let
 * in, only root and the agent's own uid may run the commands that admit
 * devices ("invite", "invites" with "revoke"); the socket's group gets an
 * error reply for those.
 *
 * Thread: the loop thread.  pp_ctl_call() is a blocking client for CLIs and
 * may be called from any thread.
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
 * (an empty object when absent).  "subscribe" never reaches the handler.
 * The handler may call pp_ctl_broadcast() (the event goes out before this
 * reply) and pp_ctl_free() (this reply and the rest are then dropped).
 */
typedef json_t *(*pp_ctl_handler)(void *ctx, const char *cmd, json_t *args,
    char *err, size_t errlen);

/*
 * Listens on path with the given mode (0600 or 0660, else PP_EINVAL),
 * replacing a stale socket file (one nobody answers on); PP_ECONFLICT if
 * another process serves it; -EEXIST if path is not a socket (left alone);
 * -ENAMETOOLONG past 107 bytes.  The directory is created 0700 when
 * missing.  Failures are logged with the path and the fix.
 */
int pp_ctl_new(uv_loop_t *loop, const char *path, unsigned mode,
    pp_ctl_handler handler, void *ctx, struct pp_ctl **out);
/* Sends {"event": event, "data": data} to every subscribed client (data
 * borrowed; NULL is JSON null). */
void pp_ctl_broadcast(struct pp_ctl *c, const char *event, json_t *data);
/* Closes the listener and clients, unlinks the socket; frees once the loop
 * has run the close callbacks.  NULL-safe. */
void pp_ctl_free(struct pp_ctl *c);

/*
 * Blocking client: connects, sends one request, waits up to timeout_ms for
 * its reply (args borrowed, may be NULL).  Returns 0 with *result (new
 * reference; JSON null when the reply has none) on ok:true; PP_EINVAL with
 * the server's error in err on ok:false; PP_EPROTO for a reply that is not
 * one; PP_ETOOBIG for a request over PP_CTL_LINE_MAX or a reply over
 * PP_CTL_OUT_MAX; -errno (-ENOENT or -ECONNREFUSED: no agent runs there; -EACCES;
 * -ETIMEDOUT) with a sentence naming the path and the fix in err otherwise.
 */
int pp_ctl_call(const char *path, const char *cmd, json_t *args,
    unsigned timeout_ms, json_t **result, char *err, size_t errlen);

#endif
