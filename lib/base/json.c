#include "json.h"
#include "error.h"

#include <stdio.h>
#include <string.h>

int
pp_json_parse(const char *buf, size_t len, size_t cap, json_t **out,
    char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *v;

	*out = NULL;
	if (len > cap) {
		snprintf(err, errlen, "message of %zu bytes exceeds the %zu-byte limit",
		    len, cap);
		return PP_ETOOBIG;
	}
	v = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (v == NULL) {
		snprintf(err, errlen, "not JSON: %s at byte %d", jerr.text,
		    jerr.position);
		return PP_EINVAL;
	}
	*out = v;
	return 0;
}

static const char *
type_name(enum pp_jtype t)
{
	switch (t) {
	case PP_JSTR: return "a string";
	case PP_JINT: return "an integer";
	case PP_JBOOL: return "a boolean";
	case PP_JOBJ: return "an object";
	case PP_JARR: return "an array";
	case PP_JANY: return "any value";
	}
	return "?";
}

static int
type_ok(const json_t *v, enum pp_jtype t)
{
	switch (t) {
	case PP_JSTR: return json_is_string(v);
	case PP_JINT: return json_is_integer(v);
	case PP_JBOOL: return json_is_boolean(v);
	case PP_JOBJ: return json_is_object(v);
	case PP_JARR: return json_is_array(v);
	case PP_JANY: return 1;
	}
	return 0;
}

static int
check_one(const json_t *v, const struct pp_jfield *f, char *err, size_t errlen)
{
	long long x;

	if (!type_ok(v, f->type)) {
		snprintf(err, errlen, "field '%s': must be %s", f->name,
		    type_name(f->type));
		return PP_EINVAL;
	}
	switch (f->type) {
	case PP_JSTR:
		x = (long long)json_string_length(v);
		if (x < f->min || (f->max && x > f->max)) {
			snprintf(err, errlen, "field '%s': length %lld outside %lld-%lld",
			    f->name, x, f->min, f->max);
			return PP_EINVAL;
		}
		if (f->check && !f->check(json_string_value(v), (size_t)x)) {
			snprintf(err, errlen, "field '%s': invalid characters or format",
			    f->name);
			return PP_EINVAL;
		}
		break;
	case PP_JINT:
		x = (long long)json_integer_value(v);
		if ((f->min || f->max) && (x < f->min || x > f->max)) {
			snprintf(err, errlen, "field '%s': %lld outside %lld-%lld",
			    f->name, x, f->min, f->max);
			return PP_EINVAL;
		}
		break;
	case PP_JARR:
		x = (long long)json_array_size(v);
		if (x < f->min || (f->max && x > f->max)) {
			snprintf(err, errlen, "field '%s': %lld entries outside %lld-%lld",
			    f->name, x, f->min, f->max);
			return PP_EINVAL;
		}
		break;
	default:
		break;
	}
	return 0;
}

int
pp_json_check(const json_t *obj, const struct pp_jfield *table, size_t n,
    char *err, size_t errlen)
{
	if (!json_is_object(obj)) {
		snprintf(err, errlen, "must be a JSON object");
		return PP_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		const json_t *v = json_object_get(obj, table[i].name);
		int rc;

		if (v == NULL || json_is_null(v)) {
			if (table[i].flags & PP_JF_REQUIRED) {
				snprintf(err, errlen, "field '%s': missing",
				    table[i].name);
				return PP_EINVAL;
			}
			continue;
		}
		if ((rc = check_one(v, &table[i], err, errlen)) < 0)
			return rc;
	}
	return 0;
}

char *
pp_json_dump(const json_t *v, size_t *len)
{
	char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

	if (s && len)
		*len = strlen(s);
	return s;
}
