/*
 * Internals of the control API shared by ctl.c (server and blocking client)
 * and ctl_proto.c (framing and message parsing).  Not an API.  Everything
 * here is pure: no I/O, no globals, no logging, so the unit tests drive the
 * line splitter and the parsers directly.  The splitter state belongs to
 * one connection and so to one thread.
 */
#ifndef PP_AGENT_CTL_INT_H
#define PP_AGENT_CTL_INT_H

#include <jansson.h>
#include <stddef.h>

/* Cap on a "cmd" name: names are short words such as "status". */
#define PP__CTL_CMD_MAX 64

/* Requests are '\n'-terminated lines (base/lines.h) of at most
 * PP_CTL_LINE_MAX bytes, a '\r' before the '\n' included. */
#define PP__CTL_LINES_CAP	PP_CTL_LINE_MAX

struct pp__ctl_req {
	json_t *root;		/* owns the rest; the caller decrefs it */
	json_t *id;		/* borrowed; NULL when absent or unusable */
	const char *cmd;	/* borrowed; NULL on error */
	json_t *args;		/* borrowed; NULL when absent */
};

/*
 * Parses one request line.  On error, PP_EINVAL or PP_ETOOBIG with the
 * reason in err; req->root and req->id may still be set so that the error
 * reply can echo the id.  The caller always json_decref()s req->root.
 */
int pp__ctl_parse_request(const char *line, size_t len,
    struct pp__ctl_req *req, char *err, size_t errlen);

/* {"id": id, "ok": true, "result": result}; id may be NULL, result is
 * borrowed (NULL is JSON null).  Returns a new reference or NULL. */
json_t *pp__ctl_reply_ok(json_t *id, json_t *result);
/* {"id": id, "ok": false, "error": msg} */
json_t *pp__ctl_reply_err(json_t *id, const char *msg);

/*
 * Whether a request may only come from root or the agent's own uid, not
 * from the rest of a 0660 socket's group: commands that let a new device
 * in ("invite") or change who may ("invites" with "revoke").  1 or 0.
 */
int pp__ctl_owner_only(const char *cmd, const json_t *args);

/*
 * Classifies one line read by a client.  Returns 1 for an event line (to be
 * skipped by a client waiting for a reply); 0 for ok:true with *result (new
 * reference) and *id (borrowed from *root); PP_EINVAL for ok:false with the
 * server's message in err; PP_EPROTO for a line that is neither.  *root
 * (caller decrefs) holds the parsed line whenever it is JSON.
 */
int pp__ctl_parse_reply(const char *line, size_t len, json_t **root,
    json_t **id, json_t **result, char *err, size_t errlen);

#endif
