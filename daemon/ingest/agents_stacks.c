/*
 * agents_stacks.c: the stack ring and names region of one shared area
 * (common/shm.h, "Stacks"), read beside its events: the stack of each
 * event flagged PROTO_EVENT_HAS_STACK and every new name record go into
 * the process's stacks aggregate (stacks.c). Called by agents.c from
 * inside its SIGBUS guard (the file may be truncated under us). Never
 * believes the area: a bad stack ring or names region is given up (that
 * process's stacks or names stop), its events still count.
 */
#include "config.h"

#include <errno.h>
#include <stdatomic.h>

#include "agents_stacks.h"
#include "stacks.h"

void agents_stacks_attach(void *map, const struct shm_info *in,
    struct agents_stk *s, uint64_t min_pause_ns)
{
	struct shm_header *h = map;

	s->tail = shm_start_stack_tail(map, in);
	s->names_off = 0;
	s->broken = 0;
	s->names_broken = 0;
	/* The one field gcmond writes besides the tails: its threshold. */
	atomic_store_explicit(&h->stack_min_pause_ns, min_pause_ns,
	    memory_order_relaxed);
}

static void agents_stacks_names(void *map, const struct shm_info *in,
    struct agents_stk *s, uint32_t names_len, struct agg_proc *p)
{
	static struct shm_name n;	/* one loop thread; 2 KiB */
	int ret;

	while (!s->names_broken &&
	    (ret = shm_next_name(map, in, names_len, &s->names_off, &n)) != 0) {
		if (ret < 0)
			s->names_broken = 1;
		else if (stacks_set_name(&p->stacks, &n) < 0)
			break;		/* out of memory: retried next drain */
	}
}

void agents_stacks_read(void *map, const struct shm_info *in,
    struct agents_stk *s, const struct shm_snapshot *snap,
    const struct proto_event *ev, int n, struct agg_proc *p)
{
	struct shm_stack st;
	int i, ret;

	/* Names first: a stack published before this drain finds its own. */
	agents_stacks_names(map, in, s, snap->names_len, p);
	for (i = 0; i < n && !s->broken; i++) {
		if (!(ev[i].flags & PROTO_EVENT_HAS_STACK) ||
		    !shm_event_valid(&ev[i]))
			continue;
		ret = shm_drain_stack(map, in, &s->tail, ev[i].start_ns, &st);
		if (ret < 0)
			s->broken = 1;
		else if (ret > 0)
			(void)stacks_add(&p->stacks, &st, ev[i].generation,
			    ev[i].pause_ns);	/* out of memory: not counted */
	}
	/* Names published after the snapshot wait for the next drain. */
	(void)stacks_note_area(&p->stacks, snap->stacks_dropped,
	    s->broken || s->names_broken);
}
