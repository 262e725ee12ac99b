#include "clock.h"

#include <time.h>

static const uint64_t *fake_now;

void
pp_clock_set_fake(const uint64_t *fake_ms)
{
	fake_now = fake_ms;
}

uint64_t
pp_now_ms(void)
{
	struct timespec ts;

	if (fake_now)
		return *fake_now;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
