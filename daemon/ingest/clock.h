/*
 * clock.h: the one home of the clocks the aggregates read. The model has
 * no clock of its own (agg.h: the caller sets agg->now_real and
 * now_mono); whoever enters from the loop with work for it (a drain, a
 * control request, the tick, a stop) sets them here first. Reads the
 * clocks, nothing else.
 */
#ifndef GCMON_CLOCK_H
#define GCMON_CLOCK_H

#include <stdint.h>

#include "agg.h"

/* CLOCK_MONOTONIC, in ns and in ms. */
uint64_t clock_mono_ns(void);
uint64_t clock_mono_ms(void);
/* Sets a->now_real (Unix s) and a->now_mono (CLOCK_MONOTONIC s). */
void clock_now(struct agg *a);

#endif /* GCMON_CLOCK_H */
