#include "lwslog.h"

#include "base/log.h"

#include <libwebsockets.h>
#include <string.h>

static void
emit(int level, const char *line)
{
	size_t n = strlen(line);

	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	/* lws calls a refused connection an error: to us it is a warning. */
	pp_log(level == LLL_ERR || level == LLL_WARN ? PP_LOG_WARN :
	    PP_LOG_DEBUG, "lws", "%.*s", (int)n, line);
}

void
pp_lws_log_init(void)
{
	lws_set_log_level(pp_log_get_level() >= PP_LOG_DEBUG ?
	    LLL_ERR | LLL_WARN | LLL_NOTICE : LLL_ERR, emit);
}
