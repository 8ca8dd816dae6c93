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

/* The slot of id in a table of cap (a power of 2) slots: its own, or
 * the free one where it would go. */
static struct stacks_name *stacks_slot(struct stacks_name *t, size_t cap,
    uint32_t id)
{
	size_t i = ((size_t)id * 2654435761u) & (cap - 1);

	while (t[i].id != 0 && t[i].id != id)
		i = (i + 1) & (cap - 1);
	return &t[i];
}

/* Doubles the names table (made at 64 slots). 0 or -ENOMEM. */
static int stacks_names_grow(struct stacks_proc *s)
{
	size_t cap = s->names_cap ? s->names_cap * 2 : 64, i;
	struct stacks_name *t = calloc(cap, sizeof *t);

	if (t == NULL)
		return -ENOMEM;
	for (i = 0; i < s->names_cap; i++)
		if (s->names[i].id != 0)
			*stacks_slot(t, cap, s->names[i].id) = s->names[i];
	free(s->names);
	s->names = t;
	s->names_cap = cap;
	return 0;
}

int stacks_set_name(struct stacks_proc **sp, const struct shm_name *n)
{
	struct stacks_proc *s = stacks_proc_get(sp);
	struct stacks_name *nm;
	char *file, *func;

	if (s == NULL || n->code_id == 0 || n->code_id >= SHM_CODES)
		return s == NULL ? -ENOMEM : 0;
	if (stacks_name_of(s, n->code_id) != NULL)
		return 0;	/* an id never changes code */
	if (2 * (s->names_n + 1) > s->names_cap && stacks_names_grow(s) < 0)
		return -ENOMEM;
	file = strdup(n->file);
	func = strdup(n->func);
	if (file == NULL || func == NULL) {
		free(file);
		free(func);
		return -ENOMEM;
	}
	nm = stacks_slot(s->names, s->names_cap, n->code_id);
	nm->id = n->code_id;
	nm->first_line = n->first_line;
	nm->file = file;
	nm->func = func;
	s->names_n++;
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
	for (i = 0; i < sp->names_cap; i++) {
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
	const struct stacks_name *nm;

	if (sp == NULL || sp->names_cap == 0 || id == 0)
		return NULL;
	nm = stacks_slot(sp->names, sp->names_cap, id);
	return nm->id == id ? nm : NULL;
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

