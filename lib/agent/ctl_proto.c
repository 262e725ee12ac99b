/*
 * Control API messages: the request and reply parsers (ctl_int.h).  Pure
 * functions over bytes; requests are split into lines by base/lines.h.
 */
#include "agent/ctl_int.h"

#include "agent/ctl.h"
#include "base/error.h"
#include "base/json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int
cmd_chars_ok(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '_' || ch == '.'))
			return 0;
	}
	return 1;
}

int
pp__ctl_owner_only(const char *cmd, const json_t *args)
{
	if (strcmp(cmd, "invite") == 0)
		return 1;
	return strcmp(cmd, "invites") == 0 && args != NULL &&
	    json_object_get(args, "revoke") != NULL;
}

int
pp__ctl_parse_request(const char *line, size_t len, struct pp__ctl_req *req,
    char *err, size_t errlen)
{
	static const struct pp_jfield fields[] = {
		{ "cmd", PP_JSTR, PP_JF_REQUIRED, 1, PP__CTL_CMD_MAX,
		    cmd_chars_ok },
		{ "args", PP_JOBJ, 0, 0, 0, NULL },
	};
	char why[200];
	json_t *id;
	int rc;

	memset(req, 0, sizeof(*req));
	if ((rc = pp_json_parse(line, len, PP_CTL_LINE_MAX, &req->root, why,
	    sizeof(why))) != 0) {
		snprintf(err, errlen, "request is %s", why);
		return rc;
	}
	if (!json_is_object(req->root)) {
		snprintf(err, errlen, "request must be a JSON object such as "
		    "{\"id\": 1, \"cmd\": \"status\"}");
		return PP_EINVAL;
	}
	/* The id first, so that every later error can be matched to its
	 * request.  Only what a client can compare is echoed. */
	id = json_object_get(req->root, "id");
	if (id != NULL && !json_is_null(id)) {
		if (!json_is_integer(id) && !json_is_string(id)) {
			snprintf(err, errlen, "request: field 'id': must be an "
			    "integer or a string");
			return PP_EINVAL;
		}
		req->id = id;
	}
	if ((rc = pp_json_check(req->root, fields,
	    sizeof(fields) / sizeof(fields[0]), why, sizeof(why))) != 0) {
		snprintf(err, errlen, "request: %s (\"cmd\" is a command name "
		    "of a-z 0-9 - _ . such as \"status\"; \"args\" an object)",
		    why);
		return rc;
	}
	req->cmd = json_string_value(json_object_get(req->root, "cmd"));
	req->args = json_object_get(req->root, "args");
	if (json_is_null(req->args))
		req->args = NULL;
	return 0;
}

json_t *
pp__ctl_reply_ok(json_t *id, json_t *result)
{
	json_t *r = json_object();

	if (r == NULL)
		return NULL;
	if ((id && json_object_set(r, "id", id) != 0) ||
	    json_object_set_new(r, "ok", json_true()) != 0 ||
	    json_object_set(r, "result", result ? result : json_null()) != 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

json_t *
pp__ctl_reply_err(json_t *id, const char *msg)
{
	json_t *r = json_object();

	if (r == NULL)
		return NULL;
	if ((id && json_object_set(r, "id", id) != 0) ||
	    json_object_set_new(r, "ok", json_false()) != 0 ||
	    json_object_set_new(r, "error", json_string(msg)) != 0) {
		json_decref(r);
		return NULL;
	}
	return r;
}

int
pp__ctl_parse_reply(const char *line, size_t len, json_t **root, json_t **id,
    json_t **result, char *err, size_t errlen)
{
	char why[200];
	json_t *ok, *msg;

	*root = *id = *result = NULL;
	if (pp_json_parse(line, len, PP_CTL_OUT_MAX, root, why,
	    sizeof(why)) != 0) {
		snprintf(err, errlen, "the agent's reply is %s", why);
		return PP_EPROTO;
	}
	if (!json_is_object(*root)) {
		snprintf(err, errlen, "the agent's reply is not a JSON object");
		return PP_EPROTO;
	}
	if (json_object_get(*root, "event") != NULL)
		return 1;
	*id = json_object_get(*root, "id");
	ok = json_object_get(*root, "ok");
	if (json_is_true(ok)) {
		*result = json_object_get(*root, "result");
		*result = json_incref(*result ? *result : json_null());
		return 0;
	}
	if (json_is_false(ok)) {
		msg = json_object_get(*root, "error");
		snprintf(err, errlen, "%s", json_is_string(msg) ?
		    json_string_value(msg) : "the agent gave no reason");
		return PP_EINVAL;
	}
	snprintf(err, errlen, "the agent's reply has no boolean \"ok\"");
	return PP_EPROTO;
}
