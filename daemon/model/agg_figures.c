/*
 * agg_figures.c: the figures derived from gcmond's aggregates, each in one
 * place: percentiles of a process, a histogram or a sum, totals over
 * generations, mean pause, GC share of wall time, processes by start.
 * Called by json.c, rules.c, metrics.c and report builders; pure
 * functions of agg.h's data (no I/O, no clock, no allocation but the
 * array agg_procs_by_start returns).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "gcmodel.h"

const double agg_pcts[AGG_NPCTS] = { 50.0, 90.0, 99.0, 99.9 };

double agg_proc_pct_ms(const struct agg_proc *p, int g, double pct)
{
	unsigned i;

	if (g >= (int)p->ngen)
		return 0;
	if (p->hist != NULL && g >= 0)
		return (double)hist_compact_percentile(&p->hist[g], 1, pct) / 1e6;
	if (p->hist != NULL)
		return (double)hist_compact_percentile(p->hist, p->ngen,
		    pct) / 1e6;
	for (i = 0; i < AGG_NPCTS; i++)
		if (agg_pcts[i] == pct)
			return g < 0 ? p->pct_all_ms[i] : p->pct_ms[g][i];
	return 0;
}

void agg_proc_pcts_ms(const struct agg_proc *p, int g,
    double out[AGG_NPCTS])
{
	unsigned i;

	for (i = 0; i < AGG_NPCTS; i++)
		out[i] = agg_proc_pct_ms(p, g, agg_pcts[i]);
}

void agg_hist_pcts_ms(const struct hist *h, double out[AGG_NPCTS])
{
	unsigned i;

	for (i = 0; i < AGG_NPCTS; i++)
		out[i] = (double)hist_percentile(h, agg_pcts[i]) / 1e6;
}

unsigned agg_sum_model(const struct agg_sum *s)
{
	return gcmodel_of_bits(s->models);
}

void agg_sum_pcts_ms(const struct agg_sum *s, double out[AGG_NPCTS])
{
	struct hist *all = malloc(sizeof *all);	/* 16 KB: not on the stack */
	unsigned g, i;

	if (all == NULL) {
		for (i = 0; i < AGG_NPCTS; i++)
			out[i] = 0;
		return;
	}
	hist_init(all);
	for (g = 0; g < s->ngen; g++)
		hist_merge(all, &s->gen[g].hist);
	agg_hist_pcts_ms(all, out);
	free(all);
}

void agg_sum_totals(const struct agg_sum *s, struct agg_totals *t)
{
	const struct agg_gen_sum *sg;
	unsigned g;

	memset(t, 0, sizeof *t);
	for (g = 0; g < s->ngen; g++) {
		sg = &s->gen[g];
		t->collections += sg->collections;
		t->seen += sg->seen;
		t->unseen += sg->unseen;
		t->collected += sg->collected;
		t->uncollectable += sg->uncollectable;
		t->pause_ns += sg->pause_ns;
		if (sg->max_pause_ns > t->max_pause_ns) {
			t->max_pause_ns = sg->max_pause_ns;
			t->max_gen = g;
		}
	}
}

double agg_mean_pause_ms(uint64_t pause_ns, uint64_t seen)
{
	return seen ? (double)pause_ns / 1e6 / (double)seen : 0.0;
}

double agg_gc_wall_pct(uint64_t pause_ns, double wall_s)
{
	double pct = wall_s > 0 ? (double)pause_ns / 1e9 / wall_s * 100 : 0.0;

	return pct < 100 ? pct : 100;
}

static int agg_by_start(const void *x, const void *y)
{
	const struct agg_proc *a = *(const struct agg_proc *const *)x;
	const struct agg_proc *b = *(const struct agg_proc *const *)y;

	if (a->start_real != b->start_real)
		return a->start_real < b->start_real ? -1 : 1;
	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

const struct agg_proc **agg_procs_by_start(const struct agg *a,
    const struct agg_run *r, size_t *n)
{
	const struct agg_run *it;
	const struct agg_proc *p, **v;
	size_t cnt = 0;

	for (it = a->runs; it != NULL; it = it->next)
		if (r == NULL || it == r)
			cnt += it->nproc;
	if ((v = malloc((cnt ? cnt : 1) * sizeof *v)) == NULL)
		return NULL;
	*n = 0;
	for (it = a->runs; it != NULL; it = it->next)
		if (r == NULL || it == r)
			for (p = it->head; p != NULL && *n < cnt; p = p->next)
				v[(*n)++] = p;
	qsort(v, *n, sizeof *v, agg_by_start);
	return v;
}
