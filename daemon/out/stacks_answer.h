/*
 * stacks_answer.h: the "stacks" control answer and the frames of a stack
 * as JSON (doc/control.md), built from the model's stacks (stacks.h).
 * Called by control.c, alert_hold.c and requests_answer.c.
 */
#ifndef GCMON_STACKS_ANSWER_H
#define GCMON_STACKS_ANSWER_H

#include <jansson.h>

#include "agg.h"
#include "stacks.h"

#define STACKS_ANSWER_TOP	100	/* paths answered: top by time + by count */

/* The "stacks" answer's body for process p, else run r, else every
 * process of a (doc/control.md). NULL: out of memory. */
json_t *stacks_answer(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p);
/* Up to max frames of st (leaf first) as [{"file","function","line"}]. */
json_t *stacks_frames_json(const struct stacks_proc *sp,
    const struct shm_stack *st, unsigned max);

#endif /* GCMON_STACKS_ANSWER_H */
