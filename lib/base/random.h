/*
 * Randomness from the OS CSPRNG (getrandom), and UUIDv4 built on it.
 */
#ifndef PP_BASE_RANDOM_H
#define PP_BASE_RANDOM_H

#include <stddef.h>

#define PP_UUID_STRLEN 36

/* Fills buf with len random bytes; returns 0 or -errno. */
int pp_random_bytes(void *buf, size_t len);
/* Writes a canonical lowercase UUIDv4 and a NUL into out[37]; 0 or -errno. */
int pp_uuid4(char out[PP_UUID_STRLEN + 1]);
/* Nonzero if s (len bytes) is a canonical lowercase UUID version 4, RFC 4122 variant. */
int pp_uuid4_valid(const char *s, size_t len);

#endif
