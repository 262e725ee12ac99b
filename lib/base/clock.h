/*
 * Monotonic time for timeouts and rate limits.  A test can install a fake
 * clock (pp_clock_set_fake) so state machines run without real time passing.
 */
#ifndef PP_BASE_CLOCK_H
#define PP_BASE_CLOCK_H

#include <stdint.h>

uint64_t pp_now_ms(void);
/* Tests only: while set, pp_now_ms() returns *fake_ms. NULL restores the real clock. */
void pp_clock_set_fake(const uint64_t *fake_ms);

#endif
