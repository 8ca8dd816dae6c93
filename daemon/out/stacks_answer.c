/*
 * stacks_answer.c: the "stacks" control answer (doc/control.md): the
 * stacks of a process, a run or the host merged by resolved names (code
 * ids differ between processes), the top paths by time and by count, the
 * rest as "other". Called by control.c, and for alert lines by
 * alert_hold.c. No I/O; reads the aggregates, never changes them.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stacks_answer.h"

static json_t *stacks_frame_json(const struct stacks_proc *sp,
    const struct shm_frame *f)
{
	const struct stacks_name *nm = stacks_name_of(sp, f->code_id);
	char unknown[32];

	snprintf(unknown, sizeof unknown, "?#%u", (unsigned)f->code_id);
	return json_pack("{s:s,s:s,s:I}", "file", nm ? nm->file : "?",
	    "function", nm ? nm->func : unknown, "line", (json_int_t)f->line);
}

json_t *stacks_frames_json(const struct stacks_proc *sp,
    const struct shm_stack *st, unsigned max)
{
	json_t *arr = json_array();
	unsigned i;

	for (i = 0; arr != NULL && i < st->depth && i < max; i++)
		if (json_array_append_new(arr, stacks_frame_json(sp,
		    &st->frame[i])) < 0) {
			json_decref(arr);
			return NULL;
		}
	return arr;
}

/* ---- the answer: merged by names ---------------------------------------- */

struct stacks_merged {
	json_t *frames;			/* root first, leaf last */
	unsigned generation;
	int truncated, keep;
	uint64_t count, pause_ns;
};

struct stacks_merge {
	json_t *index;			/* key -> position in m */
	struct stacks_merged *m;
	size_t n, cap;
	uint64_t count, pause_ns, other_count, other_pause_ns;
	uint64_t dropped;
	unsigned given_up;
};

/* The merge key of e: generation, then every frame's names and line. */
static char *stacks_key(const struct stacks_proc *sp,
    const struct stacks_entry *e)
{
	size_t cap = 32 + (size_t)e->depth * (2 * SHM_NAME_MAX + 48), len;
	char *key = malloc(cap), label[2 * SHM_NAME_MAX + 24];
	unsigned i;

	if (key == NULL)
		return NULL;
	len = (size_t)snprintf(key, cap, "%u/%u", (unsigned)e->generation,
	    (unsigned)e->flags);
	for (i = 0; i < e->depth && len < cap; i++) {
		stacks_frame_label(sp, &e->frame[i], label, sizeof label);
		len += (size_t)snprintf(key + len, cap - len, "\x1e%s:%u",
		    label, (unsigned)e->frame[i].line);
	}
	return key;
}

static int stacks_merge_entry(struct stacks_merge *g,
    const struct stacks_proc *sp, const struct stacks_entry *e)
{
	struct stacks_merged *x;
	char *key = stacks_key(sp, e);
	json_t *pos;
	int i;

	if (key == NULL)
		return -ENOMEM;
	if ((pos = json_object_get(g->index, key)) != NULL) {
		x = &g->m[json_integer_value(pos)];
		goto add;
	}
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 64;

		if ((x = realloc(g->m, cap * sizeof *x)) == NULL)
			goto out_key;
		g->m = x;
		g->cap = cap;
	}
	x = &g->m[g->n];
	memset(x, 0, sizeof *x);
	x->generation = e->generation;
	x->truncated = (e->flags & SHM_STACK_TRUNCATED) != 0;
	if ((x->frames = json_array()) == NULL)
		goto out_key;
	for (i = (int)e->depth - 1; i >= 0; i--)
		if (json_array_append_new(x->frames, stacks_frame_json(sp,
		    &e->frame[i])) < 0)
			goto out_frames;
	if (json_object_set_new(g->index, key,
	    json_integer((json_int_t)g->n)) < 0)
		goto out_frames;
	g->n++;
add:
	free(key);
	x->count += e->count;
	x->pause_ns += e->pause_ns;
	return 0;
out_frames:
	json_decref(x->frames);
out_key:
	free(key);
	return -ENOMEM;
}

static int stacks_merge_proc(struct stacks_merge *g, const struct agg_proc *p)
{
	const struct stacks_proc *sp = p->stacks;
	size_t i;

	if (sp == NULL)
		return 0;
	g->count += sp->count;
	g->pause_ns += sp->pause_ns;
	g->other_count += sp->other_count;
	g->other_pause_ns += sp->other_pause_ns;
	g->dropped += sp->dropped;
	g->given_up += sp->given_up ? 1u : 0u;
	for (i = 0; i < sp->n; i++)
		if (stacks_merge_entry(g, sp, &sp->e[i]) < 0)
			return -ENOMEM;
	return 0;
}

static const struct stacks_merged *stacks_sort_base;

static int stacks_by_time(const void *a, const void *b)
{
	const struct stacks_merged *x = &stacks_sort_base[*(const size_t *)a];
	const struct stacks_merged *y = &stacks_sort_base[*(const size_t *)b];

	if (x->pause_ns != y->pause_ns)
		return x->pause_ns < y->pause_ns ? 1 : -1;
	return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static int stacks_by_count(const void *a, const void *b)
{
	const struct stacks_merged *x = &stacks_sort_base[*(const size_t *)a];
	const struct stacks_merged *y = &stacks_sort_base[*(const size_t *)b];

	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return x->pause_ns < y->pause_ns ? 1 : x->pause_ns > y->pause_ns ? -1 : 0;
}

static double stacks_share(uint64_t part, uint64_t whole)
{
	return whole ? (double)part / (double)whole : 0.0;
}

/* Keeps the top STACKS_ANSWER_TOP by time and by count, in time order;
 * the rest joins "other". */
static json_t *stacks_paths(struct stacks_merge *g)
{
	size_t *ord = malloc((g->n + 1) * sizeof *ord), i;
	json_t *paths = json_array(), *row;
	struct stacks_merged *x;

	if (ord == NULL || paths == NULL)
		goto out_fail;
	for (i = 0; i < g->n; i++)
		ord[i] = i;
	stacks_sort_base = g->m;
	qsort(ord, g->n, sizeof *ord, stacks_by_count);
	for (i = 0; i < g->n && i < STACKS_ANSWER_TOP; i++)
		g->m[ord[i]].keep = 1;
	qsort(ord, g->n, sizeof *ord, stacks_by_time);
	for (i = 0; i < g->n; i++) {
		x = &g->m[ord[i]];
		if (i >= STACKS_ANSWER_TOP && !x->keep) {
			g->other_count += x->count;
			g->other_pause_ns += x->pause_ns;
			continue;
		}
		row = json_pack("{s:I,s:I,s:I,s:f,s:f,s:b,s:O}",
		    "generation", (json_int_t)x->generation,
		    "count", (json_int_t)x->count,
		    "pause_ns", (json_int_t)x->pause_ns,
		    "share_time", stacks_share(x->pause_ns, g->pause_ns),
		    "share_count", stacks_share(x->count, g->count),
		    "truncated", x->truncated, "frames", x->frames);
		if (json_array_append_new(paths, row) < 0)
			goto out_fail;
	}
	free(ord);
	return paths;
out_fail:
	free(ord);
	json_decref(paths);
	return NULL;
}

json_t *stacks_answer(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p)
{
	struct stacks_merge g;
	const struct agg_proc *q;
	json_t *paths, *ans = NULL;
	size_t i;
	int err = 0;

	memset(&g, 0, sizeof g);
	if ((g.index = json_object()) == NULL)
		return NULL;
	if (p != NULL)
		err = stacks_merge_proc(&g, p);
	else
		for (q = agg_proc_next(a, r, NULL); q != NULL && err == 0;
		    q = agg_proc_next(a, r, q))
			err = stacks_merge_proc(&g, q);
	if (err == 0 && (paths = stacks_paths(&g)) != NULL)
		ans = json_pack("{s:I,s:I,s:{s:I,s:I},s:I,s:I,s:o}",
		    "count", (json_int_t)g.count,
		    "pause_ns", (json_int_t)g.pause_ns,
		    "other", "count", (json_int_t)g.other_count,
		    "pause_ns", (json_int_t)g.other_pause_ns,
		    "dropped", (json_int_t)g.dropped,
		    "given_up", (json_int_t)g.given_up, "paths", paths);
	for (i = 0; i < g.n; i++)
		json_decref(g.m[i].frames);
	free(g.m);
	json_decref(g.index);
	return ans;
}
