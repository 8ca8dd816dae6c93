/*
 * alert_hold.h: the pause alert lines of the JSON log carry the paused
 * collection's Python stack ("stack", leaf first). The agent publishes
 * the names of new code objects just after the collection (a pending
 * call: never in the GC callback), so a drain can see a stack before its
 * names. Such a line is held here until a later drain of its process has
 * the names, two drains at most or the process's end, then written with
 * whatever is known. Called by events.c; never writes itself.
 */
#ifndef GCMON_ALERT_HOLD_H
#define GCMON_ALERT_HOLD_H

#include <stdint.h>

#include <jansson.h>

#include "agg.h"

#define ALERT_HOLD_MAX		32	/* lines held at once; beyond: now */
#define ALERT_HOLD_DRAINS	2	/* drains a line waits for its names */
#define ALERT_HOLD_FRAMES	5	/* frames of the stack in a line */

struct alert_hold {
	struct {
		json_t *o;		/* NULL: a free slot */
		uint32_t pid;
		uint64_t start_ns;	/* its collection's */
		unsigned drains;
	} line[ALERT_HOLD_MAX];
};

typedef void alert_hold_emit_fn(void *arg, json_t *o);

/* Sets "stack" on o: the top frames of e's stack in p, or null. */
void alert_hold_stack(json_t *o, const struct agg_proc *p,
    const struct proto_event *e);
/* Takes o (an alert line about e of p, "stack" set) when a frame of its
 * stack is not named yet: 1, held; 0, the caller writes it now. */
int alert_hold_put(struct alert_hold *h, json_t *o, const struct agg_proc *p,
    const struct proto_event *e);
/* After a drain of p (ended: its last): each line of p whose names are
 * in, or that waited long enough, gets its stack again and goes to emit,
 * which takes it. p NULL: every line (gcmond stops). */
void alert_hold_drained(struct alert_hold *h, const struct agg_proc *p,
    int ended, alert_hold_emit_fn *emit, void *arg);

#endif /* GCMON_ALERT_HOLD_H */
