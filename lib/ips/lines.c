/*
 * Bounded line splitting for the eve stream and Suricata's command socket.
 */
#include "ips/ips_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void
pp__ips_lines_init(struct pp__ips_lines *l, size_t cap)
{
	memset(l, 0, sizeof(*l));
	l->cap = cap;
}

void
pp__ips_lines_fini(struct pp__ips_lines *l)
{
	free(l->buf);
	l->buf = NULL;
	l->len = 0;
}

int
pp__ips_lines_feed(struct pp__ips_lines *l, const char *data, size_t n,
    pp__ips_line_fn fn, void *arg)
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
			if ((rc = fn(arg, data, take)) != 0)
				return rc;
		} else {
			if (l->buf == NULL && (l->buf = malloc(l->cap)) == NULL)
				return -ENOMEM;
			memcpy(l->buf + l->len, data, take);
			l->len += take;
			if (nl) {
				size_t len = l->len;

				l->len = 0;
				if ((rc = fn(arg, l->buf, len)) != 0)
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
pp__ips_plain(const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	for (; *s; s++)
		if (*s < 0x20 || *s > 0x7e || *s == '"' || *s == '\\')
			return 0;
	return 1;
}
