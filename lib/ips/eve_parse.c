/*
 * The eve line parser: bytes in, struct pp_eve_event out.  Everything is
 * checked against field tables before it is read; strings are copied bounded
 * and stripped of control characters.
 */
#include "ips/eve.h"

#include "base/error.h"
#include "base/json.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static int
check_ip(const char *s, size_t len)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (len == 0 || len >= PP_EVE_IP_MAX)
		return 0;
	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int
check_token(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

static const struct pp_jfield eve_fields[] = {
	{ "event_type", PP_JSTR, PP_JF_REQUIRED, 1, 32, check_token },
	{ "timestamp", PP_JSTR, PP_JF_REQUIRED, 1, PP_EVE_TS_MAX - 1, NULL },
	{ "flow_id", PP_JINT, 0, 0, 0, NULL },
	{ "src_ip", PP_JSTR, 0, 1, PP_EVE_IP_MAX - 1, check_ip },
	{ "dest_ip", PP_JSTR, 0, 1, PP_EVE_IP_MAX - 1, check_ip },
	{ "src_port", PP_JINT, 0, 0, 65535, NULL },
	{ "dest_port", PP_JINT, 0, 0, 65535, NULL },
	{ "proto", PP_JSTR, 0, 1, 15, check_token },
	{ "direction", PP_JSTR, 0, 1, 16, check_token },
	{ "alert", PP_JOBJ, 0, 0, 0, NULL },
};

/* An alert object; signature and category may be long: they are truncated. */
static const struct pp_jfield alert_fields[] = {
	{ "action", PP_JSTR, PP_JF_REQUIRED, 1, 16, check_token },
	{ "signature_id", PP_JINT, PP_JF_REQUIRED, 0, 0xffffffffLL, NULL },
	{ "gid", PP_JINT, 0, 0, 0xffffffffLL, NULL },
	{ "rev", PP_JINT, 0, 0, 0xffffffffLL, NULL },
	{ "signature", PP_JSTR, 0, 0, 0, NULL },
	{ "category", PP_JSTR, 0, 0, 0, NULL },
	{ "severity", PP_JINT, 0, 0, 255, NULL },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Bounded copy; control characters (and DEL) become '?'. */
static void
copy_str(char *dst, size_t cap, const json_t *v)
{
	const char *s = v ? json_string_value(v) : NULL;
	size_t n = s ? json_string_length(v) : 0;

	if (n >= cap)
		n = cap - 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		dst[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	dst[n] = '\0';
}

static uint8_t
proto_number(const char *s)
{
	static const struct { const char *name; uint8_t num; } names[] = {
		{ "TCP", IPPROTO_TCP }, { "UDP", IPPROTO_UDP },
		{ "ICMP", IPPROTO_ICMP }, { "IPv6-ICMP", IPPROTO_ICMPV6 },
		{ "SCTP", IPPROTO_SCTP },
	};
	unsigned v = 0;

	for (size_t i = 0; i < NELEM(names); i++)
		if (strcmp(s, names[i].name) == 0)
			return names[i].num;
	/* Suricata writes other protocols as their number. */
	for (const char *p = s; *p; p++) {
		if (*p < '0' || *p > '9' || (v = v * 10 + (unsigned)(*p - '0')) > 255)
			return 0;
	}
	return (uint8_t)v;
}

static int
parse_alert(const json_t *a, struct pp_eve_event *ev)
{
	char err[128];
	const char *action;

	if (pp_json_check(a, alert_fields, NELEM(alert_fields), err,
	    sizeof(err)) != 0)
		return PP_EINVAL;
	action = json_string_value(json_object_get(a, "action"));
	if (strcmp(action, "blocked") == 0)
		ev->action = PP_EVE_BLOCKED;
	else if (strcmp(action, "allowed") == 0)
		ev->action = PP_EVE_ALLOWED;
	else
		return PP_EINVAL;
	ev->has_alert = 1;
	ev->signature_id = (uint32_t)json_integer_value(
	    json_object_get(a, "signature_id"));
	ev->gid = (uint32_t)json_integer_value(json_object_get(a, "gid"));
	ev->rev = (uint32_t)json_integer_value(json_object_get(a, "rev"));
	ev->severity = (int)json_integer_value(json_object_get(a, "severity"));
	copy_str(ev->signature, sizeof(ev->signature),
	    json_object_get(a, "signature"));
	copy_str(ev->category, sizeof(ev->category),
	    json_object_get(a, "category"));
	return 0;
}

int
pp_eve_parse(const char *line, size_t len, struct pp_eve_event *ev)
{
	json_t *root = NULL, *v;
	const char *type, *dir;
	char err[128];
	int rc = PP_EINVAL;

	memset(ev, 0, sizeof(*ev));
	ev->to_server = -1;
	if (len > PP_EVE_LINE_MAX)
		return PP_ETOOBIG;
	if (pp_json_parse(line, len, PP_EVE_LINE_MAX, &root, err,
	    sizeof(err)) != 0)
		return PP_EINVAL;
	if (!json_is_object(root) ||
	    pp_json_check(root, eve_fields, NELEM(eve_fields), err,
	    sizeof(err)) != 0)
		goto out;
	type = json_string_value(json_object_get(root, "event_type"));
	if (strcmp(type, "alert") == 0)
		ev->type = PP_EVE_ALERT;
	else if (strcmp(type, "drop") == 0)
		ev->type = PP_EVE_DROP;
	else {
		rc = PP_ENOTFOUND;
		goto out;
	}
	/* A packet event without its addresses cannot be mapped to anything. */
	if (json_object_get(root, "src_ip") == NULL ||
	    json_object_get(root, "dest_ip") == NULL ||
	    json_object_get(root, "proto") == NULL)
		goto out;
	copy_str(ev->timestamp, sizeof(ev->timestamp),
	    json_object_get(root, "timestamp"));
	copy_str(ev->src_ip, sizeof(ev->src_ip), json_object_get(root, "src_ip"));
	copy_str(ev->dest_ip, sizeof(ev->dest_ip),
	    json_object_get(root, "dest_ip"));
	ev->src_port = (uint16_t)json_integer_value(
	    json_object_get(root, "src_port"));
	ev->dest_port = (uint16_t)json_integer_value(
	    json_object_get(root, "dest_port"));
	ev->proto = proto_number(json_string_value(json_object_get(root,
	    "proto")));
	if ((v = json_object_get(root, "flow_id")) != NULL) {
		if (json_integer_value(v) < 0)
			goto out;
		ev->flow_id = (uint64_t)json_integer_value(v);
	}
	if ((v = json_object_get(root, "direction")) != NULL) {
		dir = json_string_value(v);
		if (strcmp(dir, "to_server") == 0)
			ev->to_server = 1;
		else if (strcmp(dir, "to_client") == 0)
			ev->to_server = 0;
	}
	v = json_object_get(root, "alert");
	if (v != NULL) {
		if (parse_alert(v, ev) != 0)
			goto out;
	} else if (ev->type == PP_EVE_ALERT) {
		goto out;	/* an alert without its rule */
	}
	rc = 0;
out:
	json_decref(root);
	if (rc != 0) {
		memset(ev, 0, sizeof(*ev));
		ev->to_server = -1;
	}
	return rc;
}
