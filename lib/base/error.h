/*
 * PeerPipe error convention.
 *
 * Every function that can fail returns int: 0 on success, or a negative code.
 * System failures are -errno; protocol, policy and limit failures are the
 * PP_E* codes below.  pp_strerror() names either kind.  Thread-safe.
 */
#ifndef PP_BASE_ERROR_H
#define PP_BASE_ERROR_H

enum {
	PP_EPROTO = -10000,	/* peer violated the protocol */
	PP_EINVAL,		/* invalid data from a peer or a user */
	PP_EDENIED,		/* refused by policy */
	PP_EAUTH,		/* authentication failed */
	PP_ELIMIT,		/* a configured limit was reached */
	PP_ECONFLICT,		/* the request conflicts with current state */
	PP_ENOTFOUND,		/* no such object */
	PP_ETOOBIG,		/* input larger than its documented cap */
	PP_ECONFIG,		/* configuration error */
	PP_EMAX_			/* keep last */
};

/* Returns a static string; never NULL. */
const char *pp_strerror(int err);

#endif
