/*
 * rules.c: the recommendations of gcmond (see rules.h for thresholds):
 * rules_input_build gathers what they look at from agg.c, then each rule
 * of rules_table is one function over that input. Called by json.c and
 * tests/unit/check_agg.c. No I/O, no clock; only rules_input_build
 * allocates; the same input gives the same output.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

const char *rules_severity_name(enum rules_severity s)
{
	switch (s) {
	case RULES_CRITICAL:
		return "critical";
	case RULES_WARNING:
		return "warning";
	default:
		return "info";
	}
}

/* The figures several rules use, computed once. */
struct rules_facts {
	struct agg_totals t;
	double max_ms, gc_pct, rate0;
};

struct rules_out {
	struct rules_rec *out;
	size_t max, n;
};

typedef void rules_fn(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o);

static struct rules_rec *rules_add(struct rules_out *o, const char *rule,
    enum rules_severity sev)
{
	struct rules_rec *r;

	if (o->n >= o->max)
		return NULL;
	r = &o->out[o->n++];
	memset(r, 0, sizeof *r);
	r->rule = rule;
	r->severity = sev;
	return r;
}

static void rules_evidence(struct rules_rec *r, const char *name, double v)
{
	if (r->nevidence < RULES_MAX_EVIDENCE) {
		r->evidence[r->nevidence].name = name;
		r->evidence[r->nevidence].value = v;
		r->nevidence++;
	}
}

static char *rules_action(struct rules_rec *r)
{
	if (r->nactions >= RULES_MAX_ACTIONS)
		return r->actions[RULES_MAX_ACTIONS - 1];
	return r->actions[r->nactions++];
}

static double rules_threshold(const struct rules_input *in, unsigned g,
    double dflt)
{
	if (in->thresholds == NULL || g >= in->nthresholds ||
	    in->thresholds[g] == 0)
		return dflt;
	return in->thresholds[g];
}

/* The gc.set_threshold() call to try: gen 0 ten times larger, so that
 * it runs a tenth as often; the older generations unchanged. */
static void rules_set_threshold(const struct rules_input *in, char *buf,
    size_t len)
{
	snprintf(buf, len, "gc.set_threshold(%.0f, %.0f, %.0f) after start-up: "
	    "gen 0 threshold x10 (now %.0f), so gen 0 runs about a tenth as often",
	    rules_threshold(in, 0, 700) * 10, rules_threshold(in, 1, 10),
	    rules_threshold(in, 2, 10), rules_threshold(in, 0, 700));
}

/* Median of v[0..n) without v[skip]; sorts a copy. */
static double rules_median_without(const double *v, size_t n, size_t skip)
{
	double tmp[64], x;
	size_t m = 0, i, j;

	for (i = 0; i < n && m < 64; i++)
		if (i != skip)
			tmp[m++] = v[i];
	if (m == 0)
		return 0;
	for (i = 1; i < m; i++) {
		x = tmp[i];
		for (j = i; j > 0 && tmp[j - 1] > x; j--)
			tmp[j] = tmp[j - 1];
		tmp[j] = x;
	}
	return m % 2 ? tmp[m / 2] : (tmp[m / 2 - 1] + tmp[m / 2]) / 2;
}

static void rules_gen2_share(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	const struct agg_sum *s = in->sum;
	uint64_t total = f->t.collections;
	struct rules_rec *r;
	double share;

	if (s->ngen < 3 || total == 0)
		return;
	share = (double)s->gen[2].collections / (double)total * 100;
	if (share <= RULES_GEN2_SHARE_PCT ||
	    (r = rules_add(o, "gen2_share", RULES_WARNING)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "Generation 2 makes %.1f%% of collections (%llu of %llu), above "
	    "%.0f%%: long-lived objects are traced again and again.", share,
	    (unsigned long long)s->gen[2].collections,
	    (unsigned long long)total, RULES_GEN2_SHARE_PCT);
	rules_evidence(r, "gen2_share_pct", share);
	rules_evidence(r, "gen2_collections", (double)s->gen[2].collections);
	rules_evidence(r, "collections", (double)total);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "gc.freeze() once initialisation is done, so the objects built "
	    "at start-up leave the collected generations");
	rules_set_threshold(in, rules_action(r), sizeof r->actions[0]);
}

static void rules_max_pause(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	struct rules_rec *r;

	if (f->max_ms <= in->alert_threshold_ms ||
	    (r = rules_add(o, "max_pause", RULES_WARNING)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "The longest pause was %.2f ms (generation %u), above the %.2f ms "
	    "alert threshold; generation 0 ran %.1f times a second.",
	    f->max_ms, f->t.max_gen, in->alert_threshold_ms, f->rate0);
	rules_evidence(r, "max_pause_ms", f->max_ms);
	rules_evidence(r, "generation", f->t.max_gen);
	rules_evidence(r, "alert_threshold_ms", in->alert_threshold_ms);
	rules_evidence(r, "gen0_per_s", f->rate0);
	rules_set_threshold(in, rules_action(r), sizeof r->actions[0]);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "reduce allocations on the hot path (fewer temporary containers, "
	    "__slots__, reuse buffers)");
	snprintf(rules_action(r), sizeof r->actions[0],
	    "gc.freeze() after start-up so that full collections have fewer "
	    "objects to trace");
}

static void rules_gc_time(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	double pause_ms = (double)f->t.pause_ns / 1e6;
	struct rules_rec *r;

	if (f->gc_pct <= RULES_GC_WALL_PCT ||
	    (r = rules_add(o, "gc_time", RULES_CRITICAL)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "Garbage collection took %.1f%% of wall time (%.1f ms in %.1f s), "
	    "above %.0f%%.", f->gc_pct, pause_ms, in->sum->proc_wall_s,
	    RULES_GC_WALL_PCT);
	rules_evidence(r, "gc_wall_pct", f->gc_pct);
	rules_evidence(r, "gc_time_ms", pause_ms);
	rules_evidence(r, "wall_s", in->sum->proc_wall_s);
	rules_set_threshold(in, rules_action(r), sizeof r->actions[0]);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "gc.freeze() after start-up, and find what allocates most "
	    "(tracemalloc)");
}

static void rules_uncollectable(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	uint64_t uncoll = f->t.uncollectable;
	struct rules_rec *r;

	(void)in;
	if (uncoll == 0 ||
	    (r = rules_add(o, "uncollectable", RULES_WARNING)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "%llu objects were uncollectable: reference cycles whose objects "
	    "have finalizers the collector cannot order.",
	    (unsigned long long)uncoll);
	rules_evidence(r, "uncollectable", (double)uncoll);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "list them with pygcprofiler --dump-garbage (gc.DEBUG_SAVEALL, "
	    "gc.garbage)");
	snprintf(rules_action(r), sizeof r->actions[0],
	    "break the cycles with weakref, or release resources explicitly "
	    "instead of in __del__");
}

static void rules_prefork_freeze(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	unsigned nforked = 0, nforked_gen2 = 0;
	struct rules_rec *r;
	size_t i;

	(void)f;
	for (i = 0; i < in->nprocs; i++) {
		if (in->procs[i].origin != ORIGIN_FORK)
			continue;
		nforked++;
		if (in->procs[i].gen2 > 0)
			nforked_gen2++;
	}
	if (nforked_gen2 < 2 ||
	    (r = rules_add(o, "prefork_freeze", RULES_WARNING)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "%u of %u forked workers each paid their own gen 2 collections: "
	    "every full collection touches the objects inherited from the "
	    "master and unshares their copy-on-write pages.", nforked_gen2,
	    nforked);
	rules_evidence(r, "forked_workers", nforked);
	rules_evidence(r, "workers_with_gen2", nforked_gen2);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "gc.freeze() in the master before fork: gunicorn --preload with a "
	    "hook, def when_ready(server): import gc; gc.freeze()");
	snprintf(rules_action(r), sizeof r->actions[0],
	    "or gc.disable() early in the master, gc.freeze() in pre_fork, "
	    "gc.enable() in post_fork");
}

/* A forked worker far from its siblings (p99 pause or gen 2 count). */
static void rules_outliers(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	double p99[64], gen2[64], med_p99, med_gen2;
	uint32_t pids[64];
	size_t i, j, m;
	struct rules_rec *r;

	(void)f;
	for (i = 0; i < in->nprocs; i++) {
		const struct rules_proc *head = &in->procs[i];
		int first = 1;

		if (head->origin != ORIGIN_FORK)
			continue;
		/* One group per parent: handle it at its first worker. */
		for (j = 0; j < i; j++)
			if (in->procs[j].origin == ORIGIN_FORK &&
			    in->procs[j].ppid == head->ppid)
				first = 0;
		if (!first)
			continue;
		for (m = 0, j = i; j < in->nprocs && m < 64; j++) {
			if (in->procs[j].origin != ORIGIN_FORK ||
			    in->procs[j].ppid != head->ppid)
				continue;
			pids[m] = in->procs[j].pid;
			p99[m] = in->procs[j].p99_ms;
			gen2[m] = (double)in->procs[j].gen2;
			m++;
		}
		if (m < RULES_MIN_SIBLINGS)
			continue;
		for (j = 0; j < m; j++) {
			int by_p99, by_gen2;

			med_p99 = rules_median_without(p99, m, j);
			med_gen2 = rules_median_without(gen2, m, j);
			by_p99 = med_p99 > 0 &&
			    p99[j] > RULES_OUTLIER_FACTOR * med_p99;
			/* A median of 0 gen 2 collections counts as 1, so
			 * that one stray full collection is not news. */
			by_gen2 = gen2[j] > RULES_OUTLIER_FACTOR *
			    (med_gen2 > 1 ? med_gen2 : 1);
			if (!by_p99 && !by_gen2)
				continue;
			if ((r = rules_add(o, "outlier_worker",
			    RULES_WARNING)) == NULL)
				return;
			r->pid = pids[j];
			snprintf(r->message, sizeof r->message,
			    "Worker %u differs from its %zu siblings: p99 pause "
			    "%.2f ms (sibling median %.2f ms), %.0f gen 2 "
			    "collections (sibling median %.1f).",
			    (unsigned)pids[j], m - 1, p99[j], med_p99, gen2[j],
			    med_gen2);
			rules_evidence(r, "pid", pids[j]);
			rules_evidence(r, "p99_ms", p99[j]);
			rules_evidence(r, "sibling_median_p99_ms", med_p99);
			rules_evidence(r, "gen2_collections", gen2[j]);
			rules_evidence(r, "sibling_median_gen2", med_gen2);
			snprintf(rules_action(r), sizeof r->actions[0],
			    "look at what worker %u serves that its siblings do "
			    "not (large requests, caches that grow)",
			    (unsigned)pids[j]);
			snprintf(rules_action(r), sizeof r->actions[0],
			    "recycle it (gunicorn --max-requests) if its heap "
			    "keeps growing");
		}
	}
}

/* In the order their recommendations are listed. */
static rules_fn *const rules_table[] = {
	rules_gen2_share,
	rules_max_pause,
	rules_gc_time,
	rules_uncollectable,
	rules_prefork_freeze,
	rules_outliers,
};

size_t rules_evaluate(const struct rules_input *in, struct rules_rec *out,
    size_t max)
{
	const struct agg_sum *s = in->sum;
	struct rules_out o = { out, max, 0 };
	struct rules_facts f;
	size_t i;

	agg_sum_totals(s, &f.t);
	f.max_ms = (double)f.t.max_pause_ns / 1e6;
	f.gc_pct = agg_gc_wall_pct(f.t.pause_ns, s->proc_wall_s);
	f.rate0 = s->proc_wall_s > 0 && s->ngen > 0 ?
	    (double)s->gen[0].seen / s->proc_wall_s : 0;
	for (i = 0; i < sizeof rules_table / sizeof rules_table[0]; i++)
		rules_table[i](in, &f, &o);
	return o.n;
}

int rules_input_build(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, struct rules_input *in)
{
	const struct agg_proc **v = NULL, *tp = p;
	struct rules_proc *rp;
	size_t n = 0, i;
	unsigned k;

	memset(in, 0, sizeof *in);
	if ((in->own_sum = agg_sum_new()) == NULL)
		return -ENOMEM;
	if (p != NULL)
		agg_sum_process(a, p, in->own_sum);
	else if (r != NULL)
		agg_sum_run(a, r, in->own_sum);
	else
		agg_sum_host(a, in->own_sum);
	/* The prefork rules compare processes: only for a run or the host. */
	if (p == NULL) {
		if ((v = agg_procs_by_start(a, r, &n)) == NULL ||
		    (in->own_procs = calloc(n ? n : 1, sizeof *rp)) == NULL)
			goto out_nomem;
		for (i = 0, rp = in->own_procs; i < n; i++, rp++) {
			rp->pid = v[i]->pid;
			rp->ppid = v[i]->ppid;
			rp->origin = v[i]->origin;
			rp->gen2 = v[i]->ngen > 2 ? v[i]->c[2].count : 0;
			rp->p99_ms = agg_proc_pct_ms(v[i], -1, 99.0);
			if (tp == NULL && v[i]->origin == ORIGIN_ROOT)
				tp = v[i];
		}
		if (tp == NULL && n > 0)
			tp = v[0];
	}
	/* The thresholds to suggest from: the process, or the run's root. */
	if (tp != NULL) {
		for (k = 0; k < tp->ngen; k++)
			in->own_thresholds[k] = tp->base[k].threshold;
		in->thresholds = in->own_thresholds;
		in->nthresholds = tp->ngen;
	}
	in->sum = in->own_sum;
	in->alert_threshold_ms = (double)a->cfg.alert_threshold_ns / 1e6;
	in->procs = in->own_procs;
	in->nprocs = n;
	free(v);
	return 0;
out_nomem:
	free(v);
	rules_input_fini(in);
	return -ENOMEM;
}

void rules_input_fini(struct rules_input *in)
{
	free(in->own_sum);
	free(in->own_procs);
	in->own_sum = NULL;
	in->own_procs = NULL;
}
