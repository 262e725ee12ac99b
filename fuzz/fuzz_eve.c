/*
 * Fuzzes the eve line parser (lib/ips/eve_parse.c) and the bounded line
 * splitter in front of it, the way the eve reader uses them: the input is a
 * stream, cut into lines, each line parsed.  Checks what the parser
 * promises: only its documented return codes, and on success NUL-terminated
 * strings without control characters and an alert that has its rule.
 */
#include "base/error.h"
#include "ips/eve.h"
#include "ips/ips_int.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(int ok)
{
	if (!ok)
		abort();
}

static void
check_str(const char *s, size_t cap)
{
	const char *nul = memchr(s, '\0', cap);

	check(nul != NULL);
	for (const char *p = s; p < nul; p++)
		check((unsigned char)*p >= 0x20 && *p != 0x7f);
}

static int
on_line(void *arg, const char *line, size_t len)
{
	struct pp_eve_event ev;
	int rc;

	(void)arg;
	if (line == NULL)
		return 0;
	rc = pp_eve_parse(line, len, &ev);
	check(rc == 0 || rc == PP_ENOTFOUND || rc == PP_EINVAL ||
	    rc == PP_ETOOBIG);
	if (rc != 0)
		return 0;
	check(ev.type == PP_EVE_ALERT || ev.type == PP_EVE_DROP);
	check(ev.type != PP_EVE_ALERT || ev.has_alert);
	check(ev.action == PP_EVE_ALLOWED || ev.action == PP_EVE_BLOCKED);
	check(ev.to_server >= -1 && ev.to_server <= 1);
	check(ev.src_ip[0] && ev.dest_ip[0]);
	check_str(ev.timestamp, sizeof(ev.timestamp));
	check_str(ev.src_ip, sizeof(ev.src_ip));
	check_str(ev.dest_ip, sizeof(ev.dest_ip));
	check_str(ev.signature, sizeof(ev.signature));
	check_str(ev.category, sizeof(ev.category));
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_lines l;

	/* The whole input as one line, and as a stream of lines through a
	 * splitter small enough that long lines are exercised too. */
	on_line(NULL, (const char *)data, size);
	pp_lines_init(&l, 4096);
	pp_lines_feed(&l, (const char *)data, size, on_line, NULL);
	pp_lines_fini(&l);
	return 0;
}
