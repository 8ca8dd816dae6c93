/*
 * clock.c: the clocks of the aggregates (see clock.h).
 */
#include "config.h"

#include <time.h>

#include "clock.h"

uint64_t clock_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t clock_mono_ms(void)
{
	return clock_mono_ns() / 1000000u;
}

void clock_now(struct agg *a)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	a->now_real = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	a->now_mono = (double)clock_mono_ns() / 1e9;
}
