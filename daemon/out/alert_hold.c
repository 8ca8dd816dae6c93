/*
 * alert_hold.c: pause alert lines held until their stack's names arrive
 * (see alert_hold.h). A bounded array: no allocation of its own, no I/O.
 */
#include "config.h"

#include "alert_hold.h"
#include "stacks_answer.h"

/* Sets "stack" on o: the top frames of st (of p), or null. */
static void alert_hold_set(json_t *o, const struct agg_proc *p,
    const struct shm_stack *st)
{
	json_t *frames = NULL;

	if (st != NULL)
		frames = stacks_frames_json(p->stacks, st, ALERT_HOLD_FRAMES);
	json_object_set_new(o, "stack", frames != NULL ? frames : json_null());
}

/* The recent stack of e's collection, or NULL when it had none or it is
 * no longer among the recent ones. */
static const struct shm_stack *alert_hold_of(const struct agg_proc *p,
    const struct proto_event *e)
{
	if (e == NULL || !(e->flags & PROTO_EVENT_HAS_STACK))
		return NULL;
	return stacks_recent(p->stacks, e->start_ns);
}

void alert_hold_stack(json_t *o, const struct agg_proc *p,
    const struct proto_event *e)
{
	alert_hold_set(o, p, alert_hold_of(p, e));
}

/* 1 if every frame a line shows has its name (or never will: id 0). */
static int alert_hold_named(const struct agg_proc *p,
    const struct shm_stack *st)
{
	unsigned i;

	for (i = 0; i < st->depth && i < ALERT_HOLD_FRAMES; i++)
		if (st->frame[i].code_id != 0 &&
		    stacks_name_of(p->stacks, st->frame[i].code_id) == NULL)
			return 0;
	return 1;
}

int alert_hold_put(struct alert_hold *h, json_t *o, const struct agg_proc *p,
    const struct proto_event *e)
{
	const struct shm_stack *st;
	unsigned i;

	if ((st = alert_hold_of(p, e)) == NULL || alert_hold_named(p, st))
		return 0;
	for (i = 0; i < ALERT_HOLD_MAX; i++)
		if (h->line[i].o == NULL) {
			h->line[i].o = o;
			h->line[i].pid = p->pid;
			h->line[i].start_ns = e->start_ns;
			h->line[i].drains = 0;
			return 1;
		}
	return 0;
}

void alert_hold_drained(struct alert_hold *h, const struct agg_proc *p,
    int ended, alert_hold_emit_fn *emit, void *arg)
{
	const struct shm_stack *st = NULL;
	unsigned i;

	for (i = 0; i < ALERT_HOLD_MAX; i++) {
		if (h->line[i].o == NULL ||
		    (p != NULL && h->line[i].pid != p->pid))
			continue;
		if (p != NULL)
			st = stacks_recent(p->stacks, h->line[i].start_ns);
		if (p != NULL && !ended &&
		    ++h->line[i].drains < ALERT_HOLD_DRAINS &&
		    (st == NULL || !alert_hold_named(p, st)))
			continue;
		/* Named anew; a stack gone from the recent ones keeps the
		 * frames it was held with. */
		if (st != NULL)
			alert_hold_set(h->line[i].o, p, st);
		emit(arg, h->line[i].o);
		h->line[i].o = NULL;
	}
}
