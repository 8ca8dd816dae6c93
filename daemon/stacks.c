/*
 * stacks.c: where the pauses land (see stacks.h): per process, the names
 * of code ids and a bounded aggregate of distinct stacks; the "stacks"
 * aggregate is here (linked wherever agg.c is), the answer merged across
 * processes by resolved names is stacks_answer.c's. Fed by
 * agents_stacks.c, read by control.c and check_stacks. No I/O, no clock,
 * never reads a shared area itself.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "stacks.h"

static struct stacks_proc *stacks_proc_get(struct stacks_proc **sp)
{
	if (*sp == NULL)
		*sp = calloc(1, sizeof **sp);
	return *sp;
}

int stacks_add(struct stacks_proc **sp, const struct shm_stack *st,
    unsigned gen, uint64_t pause_ns)
{
	struct stacks_proc *s = stacks_proc_get(sp);
	struct stacks_entry *e;
	size_t i, fbytes;

	if (s == NULL)
		return -ENOMEM;
	s->recent[s->nrecent++ % STACKS_RECENT] = *st;
	fbytes = (size_t)st->depth * sizeof st->frame[0];
	for (i = 0; i < s->n; i++) {
		e = &s->e[i];
		if (e->generation == gen && e->depth == st->depth &&
		    e->flags == st->flags &&
		    memcmp(e->frame, st->frame, fbytes) == 0)
			goto found;
	}
	if (s->n == STACKS_MAX_DISTINCT) {
		s->other_count++;
		s->other_pause_ns += pause_ns;
		goto total;
	}
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;

		if ((e = realloc(s->e, cap * sizeof *e)) == NULL)
			return -ENOMEM;
		s->e = e;
		s->cap = cap;
	}
	e = &s->e[s->n++];
	memset(e, 0, sizeof *e);
	e->generation = (uint16_t)gen;
	e->depth = st->depth;
	e->flags = st->flags;
	memcpy(e->frame, st->frame, fbytes);
found:
	e->count++;
	e->pause_ns += pause_ns;
total:
	s->count++;
	s->pause_ns += pause_ns;
	return 0;
}

int stacks_note_area(struct stacks_proc **sp, uint64_t dropped, int given_up)
{
	struct stacks_proc *s;

	if (dropped == 0 && !given_up && *sp == NULL)
		return 0;	/* nothing to say: no record made */
	if ((s = stacks_proc_get(sp)) == NULL)
		return -ENOMEM;
	s->dropped = dropped;
	s->given_up |= given_up;
	return 0;
}

int stacks_set_name(struct stacks_proc **sp, const struct shm_name *n)
{
	struct stacks_proc *s = stacks_proc_get(sp);
	struct stacks_name *nm;

	if (s == NULL || n->code_id == 0 || n->code_id >= SHM_CODES)
		return s == NULL ? -ENOMEM : 0;
	if (s->names == NULL &&
	    (s->names = calloc(SHM_CODES, sizeof *s->names)) == NULL)
		return -ENOMEM;
	nm = &s->names[n->code_id];
	if (nm->file != NULL)
		return 0;
	nm->file = strdup(n->file);
	nm->func = strdup(n->func);
	if (nm->file == NULL || nm->func == NULL) {
		free(nm->file);
		free(nm->func);
		nm->file = nm->func = NULL;
		return -ENOMEM;
	}
	nm->first_line = n->first_line;
	return 0;
}

const struct shm_stack *stacks_recent(const struct stacks_proc *sp,
    uint64_t start_ns)
{
	unsigned i;

	for (i = 0; sp != NULL && i < STACKS_RECENT && i < sp->nrecent; i++)
		if (sp->recent[i].start_ns == start_ns)
			return &sp->recent[i];
	return NULL;
}

void stacks_proc_free(struct stacks_proc *sp)
{
	size_t i;

	if (sp == NULL)
		return;
	for (i = 0; sp->names != NULL && i < SHM_CODES; i++) {
		free(sp->names[i].file);
		free(sp->names[i].func);
	}
	free(sp->names);
	free(sp->e);
	free(sp);
}

const struct stacks_name *stacks_name_of(const struct stacks_proc *sp,
    uint32_t id)
{
	if (sp == NULL || sp->names == NULL || id == 0 || id >= SHM_CODES ||
	    sp->names[id].file == NULL)
		return NULL;
	return &sp->names[id];
}

void stacks_frame_label(const struct stacks_proc *sp,
    const struct shm_frame *f, char *buf, size_t size)
{
	const struct stacks_name *nm = stacks_name_of(sp, f->code_id);

	if (nm != NULL)
		snprintf(buf, size, "%s:%s", nm->file, nm->func);
	else
		snprintf(buf, size, "?:?#%u", (unsigned)f->code_id);
}

