/*
 * Small filesystem helpers for state and secret files.
 */
#ifndef PP_BASE_FSUTIL_H
#define PP_BASE_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* mkdir -p with the given mode for the directories it creates; 0 or -errno. */
int pp_mkdir_p(const char *path, mode_t mode);

/*
 * Reads a regular file (a directory is -EISDIR) into a new buffer *out of
 * *len bytes, not NUL-terminated, which the caller frees.  Reads at most
 * max + 1 bytes: *len > max tells the caller the file is over its cap.
 * 0 or -errno.
 */
int pp_read_file(const char *path, size_t max, char **out, size_t *len);

#endif
