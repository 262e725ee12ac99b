/*
 * Small filesystem helpers for state and secret files.
 */
#ifndef PP_BASE_FSUTIL_H
#define PP_BASE_FSUTIL_H

#include <sys/types.h>

/* mkdir -p with the given mode for the directories it creates; 0 or -errno. */
int pp_mkdir_p(const char *path, mode_t mode);

#endif
