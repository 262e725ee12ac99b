#include "error.h"

#include <string.h>

static const char *const pp_messages[] = {
	[PP_EPROTO - PP_EPROTO] = "protocol violation",
	[PP_EINVAL - PP_EPROTO] = "invalid data",
	[PP_EDENIED - PP_EPROTO] = "denied by policy",
	[PP_EAUTH - PP_EPROTO] = "authentication failed",
	[PP_ELIMIT - PP_EPROTO] = "limit reached",
	[PP_ECONFLICT - PP_EPROTO] = "conflicts with current state",
	[PP_ENOTFOUND - PP_EPROTO] = "not found",
	[PP_ETOOBIG - PP_EPROTO] = "too large",
	[PP_ECONFIG - PP_EPROTO] = "configuration error",
};

const char *
pp_strerror(int err)
{
	if (err == 0)
		return "success";
	if (err >= PP_EPROTO && err < PP_EMAX_)
		return pp_messages[err - PP_EPROTO];
	if (err < 0 && err > -4096)
		return strerror(-err);	/* glibc's strerror is thread-safe */
	return "unknown error";
}
