/*
 * JSON on top of jansson, the strict way: parsing with a size cap, and
 * validation of an object against a field table (type, length, allowed
 * characters) before anything interprets it.  Pure functions, no I/O.
 */
#ifndef PP_BASE_JSON_H
#define PP_BASE_JSON_H

#include <jansson.h>
#include <stddef.h>

enum pp_jtype {
	PP_JSTR,
	PP_JINT,
	PP_JBOOL,
	PP_JOBJ,
	PP_JARR,
	PP_JANY,
};

#define PP_JF_REQUIRED 0x1u

struct pp_jfield {
	const char *name;
	enum pp_jtype type;
	unsigned flags;
	/* PP_JSTR: length in bytes; PP_JINT: value; PP_JARR: element count.
	 * max == 0 means unbounded. */
	long long min, max;
	/* PP_JSTR only, optional: nonzero if the string is acceptable. */
	int (*check)(const char *s, size_t len);
};

/*
 * Parses len bytes into a JSON value.  Input over cap bytes is PP_ETOOBIG,
 * anything that is not JSON (or has duplicate keys or NUL in strings) is
 * PP_EINVAL with a reason in err.  On success *out holds a new reference.
 */
int pp_json_parse(const char *buf, size_t len, size_t cap, json_t **out,
    char *err, size_t errlen);

/*
 * Checks obj against a field table.  Fields not in the table are ignored
 * (forward compatibility).  Returns 0, or PP_EINVAL with "field 'x': why".
 */
int pp_json_check(const json_t *obj, const struct pp_jfield *table, size_t n,
    char *err, size_t errlen);

/* Serialises compactly; returns a malloc'ed string or NULL. */
char *pp_json_dump(const json_t *v, size_t *len);

#endif
