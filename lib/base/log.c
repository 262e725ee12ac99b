#include "log.h"
#include "error.h"
#include "clock.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum pp_log_level log_level = PP_LOG_INFO;
static enum pp_log_format log_format = PP_LOG_TEXT;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void pp_log_set_level(enum pp_log_level level) { log_level = level; }
void pp_log_set_format(enum pp_log_format format) { log_format = format; }
enum pp_log_level pp_log_get_level(void) { return log_level; }

int
pp_log_parse_level(const char *name, enum pp_log_level *level)
{
	for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level = (enum pp_log_level)i;
			return 0;
		}
	}
	return PP_EINVAL;
}

int
pp_log_parse_format(const char *name, enum pp_log_format *format)
{
	if (strcmp(name, "text") == 0)
		*format = PP_LOG_TEXT;
	else if (strcmp(name, "json") == 0)
		*format = PP_LOG_JSON;
	else
		return PP_EINVAL;
	return 0;
}

static void
timestamp(char *buf, size_t len)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);

	snprintf(buf + n, len - n, ".%03uZ", (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

void
pp_log(enum pp_log_level level, const char *subsys, const char *fmt, ...)
{
	char msg[2048], ts[64], line[4096];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	timestamp(ts, sizeof(ts));

	if (log_format == PP_LOG_JSON) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "ts", ts,
		    "level", level_names[level], "subsys", subsys, "msg", msg);
		char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

		n = snprintf(line, sizeof(line), "%s\n", s ? s : "{}");
		free(s);
		json_decref(o);
	} else {
		n = snprintf(line, sizeof(line), "%s %-5s %s: %s\n", ts,
		    level_names[level], subsys, msg);
	}
	if (n > (int)sizeof(line) - 1)
		n = sizeof(line) - 1;
	/* One write per line so concurrent writers never interleave. */
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

int
pp_ratelimit_ok(struct pp_ratelimit *rl, unsigned *suppressed)
{
	uint64_t now = pp_now_ms();

	*suppressed = 0;
	if (now - rl->window_start_ms >= rl->interval_ms) {
		*suppressed = rl->suppressed;
		rl->window_start_ms = now;
		rl->printed = 0;
		rl->suppressed = 0;
	}
	if (rl->printed < rl->burst) {
		rl->printed++;
		return 1;
	}
	rl->suppressed++;
	return 0;
}
