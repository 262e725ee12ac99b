/*
 * Logging: one call with a level and a subsystem.
 *
 * Text ("2026-11-25T03:46:27.123Z info  server: message") or one JSON object a
 * line ({"ts":...,"level":...,"subsys":...,"msg":...}), always to stderr.
 * Configure once at start-up from the loop thread; pp_log() itself may be
 * called from any thread (each line is written with a single write()).
 */
#ifndef PP_BASE_LOG_H
#define PP_BASE_LOG_H

#include <stdint.h>

enum pp_log_level {
	PP_LOG_ERROR,
	PP_LOG_WARN,
	PP_LOG_INFO,
	PP_LOG_DEBUG,
};

enum pp_log_format {
	PP_LOG_TEXT,
	PP_LOG_JSON,
};

void pp_log_set_level(enum pp_log_level level);
void pp_log_set_format(enum pp_log_format format);
enum pp_log_level pp_log_get_level(void);
/* "error", "warn", "info", "debug" -> level; returns 0 or PP_EINVAL. */
int pp_log_parse_level(const char *name, enum pp_log_level *level);
int pp_log_parse_format(const char *name, enum pp_log_format *format);

void pp_log(enum pp_log_level level, const char *subsys, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * Rate limiting for per-packet or per-message logs: at most `burst` lines per
 * `interval_ms`; the first line after a quiet period says how many were
 * suppressed.  One struct per call site, owned by one thread.
 */
struct pp_ratelimit {
	uint64_t window_start_ms;
	unsigned interval_ms;
	unsigned burst;
	unsigned printed;
	unsigned suppressed;
};
#define PP_RATELIMIT_INIT(ms, n) { 0, (ms), (n), 0, 0 }
/* Returns nonzero when the caller may log; *suppressed gets the count skipped. */
int pp_ratelimit_ok(struct pp_ratelimit *rl, unsigned *suppressed);

#define pp_err(sub, ...)   pp_log(PP_LOG_ERROR, sub, __VA_ARGS__)
#define pp_warn(sub, ...)  pp_log(PP_LOG_WARN, sub, __VA_ARGS__)
#define pp_info(sub, ...)  pp_log(PP_LOG_INFO, sub, __VA_ARGS__)
#define pp_debug(sub, ...) \
	do { if (pp_log_get_level() >= PP_LOG_DEBUG) \
		pp_log(PP_LOG_DEBUG, sub, __VA_ARGS__); } while (0)

#endif
