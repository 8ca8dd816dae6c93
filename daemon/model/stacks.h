/*
 * stacks.h: where the pauses land. Per process, the names of the agent's
 * code ids and a bounded aggregate of the distinct Python stacks behind
 * its captured collections (common/shm.h, "Stacks"); per run, pid or
 * host, the figures the "stacks" answer merges by resolved names
 * (out/stacks_answer.h). Fed by agents_stacks.c.
 * Pure: no I/O, no clock.
 */
#ifndef GCMON_STACKS_H
#define GCMON_STACKS_H

#include <stdint.h>

#include "shm.h"

struct agg;
struct agg_run;
struct agg_proc;

#define STACKS_MAX_DISTINCT	1024	/* per process; beyond: "[other]" */
#define STACKS_RECENT		16	/* the last stacks, for alert lines */

struct stacks_name {
	uint32_t id;			/* 0: a free slot */
	uint32_t first_line;
	char *file, *func;
};

struct stacks_entry {
	uint16_t generation, depth, flags;
	struct shm_frame frame[SHM_STACK_DEPTH];	/* leaf first */
	uint64_t count, pause_ns;
};

struct stacks_proc {
	/* The names published so far: open addressing on the id, grown at
	 * half full, so a process pays for the codes it named (at most
	 * SHM_CODES - 1), not for the whole id space. */
	struct stacks_name *names;
	size_t names_n, names_cap;	/* names_cap: 0 or a power of 2 */
	struct stacks_entry *e;
	size_t n, cap;
	uint64_t count, pause_ns;	/* every stack added */
	uint64_t other_count, other_pause_ns;	/* beyond STACKS_MAX_DISTINCT */
	uint64_t dropped;		/* the area's stacks_dropped, last read */
	int given_up;			/* its stack ring or names were bad */
	struct shm_stack recent[STACKS_RECENT];	/* a ring, by start_ns */
	unsigned nrecent;			/* total ever */
};

/* Counts one stack of a collection of generation gen that paused
 * pause_ns; *sp is made on first use. 0 or -ENOMEM (not counted). */
int stacks_add(struct stacks_proc **sp, const struct shm_stack *st,
    unsigned gen, uint64_t pause_ns);
/* What the area says besides stacks: its count of stacks a full stack
 * ring refused, and whether its stacks or names were given up. 0 or
 * -ENOMEM. */
int stacks_note_area(struct stacks_proc **sp, uint64_t dropped, int given_up);
/* Records the name of an id (a later one for the same id is ignored: an
 * id never changes code). 0 or -ENOMEM. */
int stacks_set_name(struct stacks_proc **sp, const struct shm_name *n);
void stacks_proc_free(struct stacks_proc *sp);
/* The stack of the event that started at start_ns, if it is one of the
 * last STACKS_RECENT added; NULL otherwise. Borrowed. */
const struct shm_stack *stacks_recent(const struct stacks_proc *sp,
    uint64_t start_ns);
/* The name of an id; NULL: unknown or not published. Borrowed. */
const struct stacks_name *stacks_name_of(const struct stacks_proc *sp,
    uint32_t id);
/* "file:function" of a frame into buf ("?:?#<id>" unresolved). */
void stacks_frame_label(const struct stacks_proc *sp,
    const struct shm_frame *f, char *buf, size_t size);

#endif /* GCMON_STACKS_H */
