/*
 * agents_stacks.h: the consumer of one shared area's stack ring and names
 * region (common/shm.h, "Stacks"), read beside its events into the
 * process's stacks aggregate (stacks.h). Called by agents.c, inside its
 * SIGBUS guard; knows nothing of agents.c.
 */
#ifndef GCMON_AGENTS_STACKS_H
#define GCMON_AGENTS_STACKS_H

#include <stdint.h>

#include "agg.h"
#include "shm.h"

/* The consumer's state of one area's stacks. */
struct agents_stk {
	uint64_t tail;			/* of the stack ring */
	uint32_t names_off;		/* name records read so far */
	int broken, names_broken;	/* given up */
};

/* agents_stacks.c, inside the SIGBUS guard: at attach, the starting
 * tail, and the threshold gcmond writes into the area; at each drain, the
 * new names and the stacks of the n events ev just copied out. */
void agents_stacks_attach(void *map, const struct shm_info *in,
    struct agents_stk *s, uint64_t min_pause_ns);
void agents_stacks_read(void *map, const struct shm_info *in,
    struct agents_stk *s, const struct shm_snapshot *snap,
    const struct proto_event *ev, int n, struct agg_proc *p);

#endif /* GCMON_AGENTS_STACKS_H */
