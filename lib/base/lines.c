/*
 * Bounded line splitting (lines.h).
 */
#include "base/lines.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
pp_lines_init(struct pp_lines *l, size_t cap)
{
	memset(l, 0, sizeof(*l));
	l->cap = cap;
}

void
pp_lines_fini(struct pp_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = 0;
	l->discarding = 0;
}

/* One '\r' before the '\n' goes: tools that speak CRLF did not mean it. */
static int
deliver(const char *line, size_t len, pp_line_fn fn, void *arg)
{
	if (len > 0 && line[len - 1] == '\r')
		len--;
	return fn(arg, line, len);
}

int
pp_lines_feed(struct pp_lines *l, const char *data, size_t n, pp_line_fn fn,
    void *arg)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		int rc;

		if (l->discarding) {
			if (nl)
				l->discarding = 0;
		} else if (l->len + take > l->cap) {
			l->len = 0;
			l->discarding = nl == NULL;
			if ((rc = fn(arg, NULL, 0)) != 0)
				return rc;
		} else if (nl && l->len == 0) {
			/* The common case: a whole line inside this read. */
			if ((rc = deliver(data, take, fn, arg)) != 0)
				return rc;
		} else {
			if (l->buf == NULL && (l->buf = malloc(l->cap)) == NULL)
				return -ENOMEM;
			memcpy(l->buf + l->len, data, take);
			l->len += take;
			if (nl) {
				size_t len = l->len;

				l->len = 0;
				if ((rc = deliver(l->buf, len, fn, arg)) != 0)
					return rc;
			}
		}
		if (nl == NULL)
			break;
		data = nl + 1;
		n -= take + 1;
	}
	return 0;
}

int
pp_lines_finish(struct pp_lines *l, pp_line_fn fn, void *arg)
{
	size_t len = l->len;

	l->len = 0;
	if (l->discarding || len == 0)
		return 0;
	return deliver(l->buf, len, fn, arg);
}
