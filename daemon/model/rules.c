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

#include "gcmodel.h"
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
	unsigned model;			/* agg_sum_model: gcmodel.h */
	unsigned auto_gen;		/* what automatic collections report */
	double max_ms, gc_pct;
	double rate0;			/* automatic collections a second */
	int small;			/* below the RULES_MIN_* sample */
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

/* Whether a sample is too small for any rule but the single facts
 * (rules.h, RULES_MIN_*). */
static int rules_small(double wall_s, uint64_t seen, uint64_t pause_ns)
{
	return wall_s < RULES_MIN_WALL_S || seen < RULES_MIN_COLLECTIONS ||
	    (double)pause_ns / 1e6 < RULES_MIN_GC_MS;
}

/* x rounded down to two significant digits (6999.9 -> 6900, 7000). */
static double rules_round2(double x)
{
	double step = 1;

	while (x / step >= 100)
		step *= 10;
	return (double)(uint64_t)(x / step + 1e-9) * step;
}

/* What every model's threshold advice computes (rules_threshold_advice). */
struct rules_advice {
	double t0, t0new, scale;	/* threshold0 now, suggested, ratio */
	double rate, m0;		/* automatic collections/s, mean ms */
	double gc;			/* GC ms per process-second now */
	const uint32_t *th;		/* the interpreter's thresholds */
	unsigned nth;
};

/* Classic (and unknown): rules.h's model over three generations. */
static void rules_advice_classic(const struct rules_input *in,
    const struct rules_advice *v, char *buf, size_t len)
{
	double wall = in->sum->proc_wall_s, gc1, after;
	char rest[48] = "";

	gc1 = in->sum->ngen > 1 ?
	    (double)in->sum->gen[1].pause_ns / 1e6 / wall : 0;
	after = v->gc - gc1 + gc1 / v->scale;
	if (v->nth >= 3)
		snprintf(rest, sizeof rest, ", %u, %u", v->th[1], v->th[2]);
	snprintf(buf, len, "gc.set_threshold(%.0f%s) after start-up: gen 0 "
	    "threshold %.0f -> %.0f; estimated gen 0 collections %.1f -> %.1f "
	    "a second, GC time %.2f -> at most %.2f ms a second (per process-"
	    "second; mean gen 0 pause %.3f -> at most %.3f ms). Model: gen 0 "
	    "runs once per threshold allocations, so it and gen 1 run %.3g "
	    "times less often, a gen 0 pause grows at most as much, gen 2 "
	    "(gc.collect(), its long-lived ratio) is taken as unchanged; the "
	    "target is %.0f gen 0 collections a second, gen 0 pauses under "
	    "%.1f ms", v->t0new, rest, v->t0, v->t0new, v->rate,
	    v->rate / v->scale, v->gc, after, v->m0, v->m0 * v->scale,
	    v->scale, RULES_GEN0_TARGET_PER_S, RULES_GEN0_MAX_PAUSE_MS);
}

/* Incremental (3.14.0-3.14.4): threshold0 paces the young+incremental
 * collections, threshold1 the scan of the old generation; threshold2 is
 * ignored, so it is never suggested. */
static void rules_advice_incremental(const struct rules_advice *v,
    char *buf, size_t len)
{
	char rest[24] = "";

	if (v->nth >= 2)
		snprintf(rest, sizeof rest, ", %u", v->th[1]);
	snprintf(buf, len, "gc.set_threshold(%.0f%s) after start-up: "
	    "threshold0 %.0f -> %.0f; estimated young+incremental collections "
	    "%.1f -> %.1f a second (mean pause %.3f -> at most %.3f ms), GC "
	    "time %.2f ms a second taken as at most unchanged. Model: each "
	    "automatic collection is the young objects plus an increment of "
	    "the old generation, run once per threshold0 allocations; the "
	    "old generation is scanned at the pace threshold1 sets whatever "
	    "threshold0 is; threshold2 is ignored by this collector (CPython "
	    "3.14.0-3.14.4) and is left out; the target is %.0f collections "
	    "a second, pauses under %.1f ms", v->t0new, rest, v->t0,
	    v->t0new, v->rate, v->rate / v->scale, v->m0, v->m0 * v->scale,
	    v->gc, RULES_GEN0_TARGET_PER_S, RULES_GEN0_MAX_PAUSE_MS);
}

/* Free-threaded: one whole-heap collection, threshold0 only. */
static void rules_advice_free_threaded(const struct rules_advice *v,
    char *buf, size_t len)
{
	snprintf(buf, len, "gc.set_threshold(%.0f) after start-up: threshold0 "
	    "%.0f -> %.0f; estimated collections %.1f -> %.1f a second, GC "
	    "time %.2f -> about %.2f ms a second (per process-second). Model: "
	    "the free-threaded collector traces the whole heap at each "
	    "collection, so a pause stays about %.3f ms whatever threshold0 "
	    "is and GC time falls with the rate; it reads threshold0 only; "
	    "the target is %.0f collections a second", v->t0new, v->t0,
	    v->t0new, v->rate, v->rate / v->scale, v->gc, v->gc / v->scale,
	    v->m0, RULES_GEN0_TARGET_PER_S);
}

/*
 * The gc.set_threshold() call the model of rules.h suggests for the
 * scope's collector model, and what it should buy, into buf; 0 when
 * there is none to give: thresholds unknown, processes of several
 * models, automatic collections already at most RULES_GEN0_TARGET_PER_S,
 * a sample too small, or a change that would not halve their rate.
 */
static int rules_threshold_advice(const struct rules_input *in,
    const struct rules_facts *f, char *buf, size_t len)
{
	const struct agg_gen_sum *ga = &in->sum->gen[f->auto_gen];
	double wall = in->sum->proc_wall_s, k;
	struct rules_advice v;

	if (f->small || f->model == GCMODEL_MIXED || in->thresholds == NULL ||
	    in->nthresholds < 1 || in->thresholds[0] == 0 ||
	    f->auto_gen >= in->sum->ngen || ga->seen == 0 || wall <= 0 ||
	    f->rate0 <= RULES_GEN0_TARGET_PER_S)
		return 0;
	v.t0 = in->thresholds[0];
	v.m0 = agg_mean_pause_ms(ga->pause_ns, ga->seen);
	k = f->rate0 / RULES_GEN0_TARGET_PER_S;
	/* A whole-heap pause does not grow with threshold0. */
	if (f->model != GC_MODEL_FREE_THREADED && v.m0 > 0 &&
	    k > RULES_GEN0_MAX_PAUSE_MS / v.m0)
		k = RULES_GEN0_MAX_PAUSE_MS / v.m0;
	if (k > RULES_GEN0_MAX_FACTOR)
		k = RULES_GEN0_MAX_FACTOR;
	v.t0new = rules_round2(v.t0 * k);
	v.scale = v.t0new / v.t0;
	if (v.scale < 2)
		return 0;
	v.rate = f->rate0;
	v.gc = (double)f->t.pause_ns / 1e6 / wall;
	v.th = in->thresholds;
	v.nth = in->nthresholds;
	if (f->model == GC_MODEL_INCREMENTAL)
		rules_advice_incremental(&v, buf, len);
	else if (f->model == GC_MODEL_FREE_THREADED)
		rules_advice_free_threaded(&v, buf, len);
	else
		rules_advice_classic(in, &v, buf, len);
	return 1;
}

/* Adds the threshold advice to r when there is one. */
static void rules_set_threshold(const struct rules_input *in,
    const struct rules_facts *f, struct rules_rec *r)
{
	char buf[sizeof r->actions[0]];

	if (rules_threshold_advice(in, f, buf, sizeof buf))
		memcpy(rules_action(r), buf, sizeof buf);
}

/* Adds "gc.freeze() ..." (text) to r unless the scope froze already:
 * advice followed must not come back. */
static void rules_freeze_action(const struct rules_input *in,
    struct rules_rec *r, const char *text)
{
	if (in->freeze_count == 0)
		snprintf(rules_action(r), sizeof r->actions[0], "%s", text);
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

	/* Where automatic collections never reach generation 2 (gcmodel.h),
	 * its share is the program's gc.collect() calls, no sign of objects
	 * surviving into it. */
	if (f->small || s->ngen < 3 || total == 0 || !gcmodel_auto_full(f->model))
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
	rules_freeze_action(in, r, "gc.freeze() once initialisation is done, "
	    "so the objects built at start-up leave the collected generations");
	rules_set_threshold(in, f, r);
	if (r->nactions == 0)
		snprintf(rules_action(r), sizeof r->actions[0],
		    "find what keeps surviving into generation 2 (tracemalloc "
		    "snapshots compared over time)");
}

static void rules_max_pause(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	struct rules_rec *r;

	if (f->max_ms <= in->alert_threshold_ms ||
	    (r = rules_add(o, "max_pause", RULES_WARNING)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "The longest pause was %.2f ms (%s), above the %.2f ms alert "
	    "threshold; %s ran %.1f times a second.", f->max_ms,
	    gcmodel_gen_label(f->model, f->t.max_gen), in->alert_threshold_ms,
	    gcmodel_gen_label(f->model, f->auto_gen), f->rate0);
	rules_evidence(r, "max_pause_ms", f->max_ms);
	rules_evidence(r, "generation", f->t.max_gen);
	rules_evidence(r, "alert_threshold_ms", in->alert_threshold_ms);
	rules_evidence(r, f->auto_gen == 1 ? "gen1_per_s" : "gen0_per_s",
	    f->rate0);
	rules_set_threshold(in, f, r);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "reduce allocations on the hot path (fewer temporary containers, "
	    "__slots__, reuse buffers)");
	rules_freeze_action(in, r, f->model == GC_MODEL_INCREMENTAL ?
	    "gc.freeze() after start-up so that the increments of the old "
	    "generation and full collections have fewer objects to trace" :
	    f->model == GC_MODEL_FREE_THREADED ? "gc.freeze() after start-up "
	    "so that each whole-heap collection has fewer objects to trace" :
	    "gc.freeze() after start-up so that full collections have fewer "
	    "objects to trace");
}

static void rules_gc_time(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	double pause_ms = (double)f->t.pause_ns / 1e6;
	struct rules_rec *r;

	if (f->small || f->gc_pct <= RULES_GC_WALL_PCT ||
	    (r = rules_add(o, "gc_time", RULES_CRITICAL)) == NULL)
		return;
	snprintf(r->message, sizeof r->message,
	    "Garbage collection took %.1f%% of wall time (%.1f ms in %.1f "
	    "process-seconds), above %.0f%%.", f->gc_pct, pause_ms,
	    in->sum->proc_wall_s, RULES_GC_WALL_PCT);
	rules_evidence(r, "gc_wall_pct", f->gc_pct);
	rules_evidence(r, "gc_time_ms", pause_ms);
	rules_evidence(r, "proc_wall_s", in->sum->proc_wall_s);
	rules_set_threshold(in, f, r);
	rules_freeze_action(in, r, "gc.freeze() after start-up, and find what "
	    "allocates most (tracemalloc)");
	if (r->nactions == 0)
		snprintf(rules_action(r), sizeof r->actions[0],
		    "find what allocates most (tracemalloc)");
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

/* The forked workers of a scope, for the prefork rules. */
struct rules_forked {
	unsigned n, ngen2;		/* workers, those that paid gen 2 */
	uint64_t gen2, frozen;		/* their gen 2s; most objects frozen */
	double gen2_ms;
	unsigned nmem;			/* of ngen2, those with memory read */
	uint64_t unshared;		/* what their gen 2s unshared */
	uint64_t master_anon;		/* the masters' heap, for scale */
	const char *old;		/* gcmodel_old_name: "gen-2", ... */
};

#define RULES_MB(b)	((double)(b) / (1024.0 * 1024.0))

/* "N workers unshared X MB in their gen-2 collections (Y MB each, Z% of
 * the master's heap)" into buf, with the evidence of it. */
static void rules_unshared_text(const struct rules_forked *w,
    struct rules_rec *r, char *buf, size_t len)
{
	double each = RULES_MB(w->unshared) / w->nmem;
	double pct = w->master_anon > 0 ? (double)w->unshared / w->nmem /
	    (double)w->master_anon * 100 : 0;

	snprintf(buf, len, "%u workers unshared %.1f MiB in their %s "
	    "collections (%.1f MiB each, %.0f%% of the master's heap)",
	    w->nmem, RULES_MB(w->unshared), w->old, each, pct);
	rules_evidence(r, "workers_measured", w->nmem);
	rules_evidence(r, "unshared_by_gc_mb", RULES_MB(w->unshared));
	rules_evidence(r, "unshared_per_worker_mb", each);
	rules_evidence(r, "master_heap_pct", pct);
}

/* After gc.freeze() before fork: what the workers paid since. */
static void rules_prefork_frozen(const struct rules_forked *w,
    struct rules_out *o)
{
	struct rules_rec *r;
	char mem[200] = "their memory was not measured";

	if ((r = rules_add(o, "prefork_frozen", RULES_INFO)) == NULL)
		return;
	rules_evidence(r, "frozen_objects", (double)w->frozen);
	rules_evidence(r, "forked_workers", w->n);
	rules_evidence(r, "workers_with_gen2", w->ngen2);
	rules_evidence(r, "gen2_collections", (double)w->gen2);
	rules_evidence(r, "gen2_time_ms", w->gen2_ms);
	if (w->nmem > 0)
		rules_unshared_text(w, r, mem, sizeof mem);
	snprintf(r->message, sizeof r->message,
	    "gc.freeze() ran before fork (%llu objects frozen): %u of %u "
	    "forked workers paid %s collections since, %llu in all, "
	    "%.1f ms of pauses, tracing only objects made after the fork; "
	    "%s.", (unsigned long long)w->frozen, w->ngen2, w->n, w->old,
	    (unsigned long long)w->gen2, w->gen2_ms, mem);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "nothing to add before fork; if the workers' gen 2 time grows, "
	    "look at what they keep after it (caches, sessions)");
}

/* The hook that runs gc.freeze() in the master of this server. */
static const char *rules_freeze_hook_text(enum rules_server server)
{
	static const char *const hooks[] = {
		[RULES_SERVER_OTHER] = "gc.freeze() in the parent right before "
		    "os.fork() or creating the multiprocessing Pool (fork "
		    "start method), after the shared data is loaded",
		[RULES_SERVER_GUNICORN] = "gunicorn --preload, and in the "
		    "config file: def when_ready(server): import gc; "
		    "gc.freeze() (or gc.disable() at the top of the config, "
		    "gc.freeze() in pre_fork, gc.enable() in post_fork)",
		[RULES_SERVER_UWSGI] = "uWSGI without lazy-apps (the app is "
		    "loaded in the master): gc.freeze() at the end of the "
		    "WSGI module, after the app is built",
	};

	return hooks[server];
}

static void rules_freeze_hook(enum rules_server server, struct rules_rec *r)
{
	snprintf(rules_action(r), sizeof r->actions[0], "%s",
	    rules_freeze_hook_text(server));
}

static void rules_forked_collect(const struct rules_input *in,
    struct rules_forked *w)
{
	const struct rules_proc *p;
	size_t i;

	w->frozen = in->freeze_count;
	w->master_anon = in->sum->master_anon_bytes;
	w->old = gcmodel_old_name(agg_sum_model(in->sum));
	for (i = 0, p = in->procs; i < in->nprocs; i++, p++) {
		if (p->origin != ORIGIN_FORK)
			continue;
		w->n++;
		w->ngen2 += p->gen2 > 0;
		w->gen2 += p->gen2;
		w->gen2_ms += p->gen2_ms;
		if (p->freeze_count > w->frozen)
			w->frozen = p->freeze_count;
		if (p->gen2 > 0 && p->mem_read) {
			w->nmem++;
			w->unshared += p->unshared_bytes;
		}
	}
}

static void rules_prefork_freeze(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	struct rules_forked w;
	struct rules_rec *r;
	char mem[200];

	/* A fact rule (rules.h): each gen 2 a forked worker pays unshares
	 * its copy-on-write pages, however short the run; measured, below
	 * RULES_UNSHARED_MIN_BYTES a worker it is no news. */
	(void)f;
	memset(&w, 0, sizeof w);
	rules_forked_collect(in, &w);
	if (w.n > 0 && w.frozen > 0) {
		rules_prefork_frozen(&w, o);
		return;
	}
	if (w.ngen2 < 2 || (w.nmem > 0 &&
	    w.unshared < (uint64_t)RULES_UNSHARED_MIN_BYTES * w.nmem) ||
	    (r = rules_add(o, "prefork_freeze", RULES_WARNING)) == NULL)
		return;
	rules_evidence(r, "forked_workers", w.n);
	rules_evidence(r, "workers_with_gen2", w.ngen2);
	rules_evidence(r, "frozen_objects", 0);
	if (w.nmem > 0) {
		rules_unshared_text(&w, r, mem, sizeof mem);
		snprintf(r->message, sizeof r->message, "%s; gc.freeze() in "
		    "the master before fork keeps it shared.", mem);
	} else
		snprintf(r->message, sizeof r->message,
		    "%u of %u forked workers each paid their own %s "
		    "collections: every collection that traces the old "
		    "objects touches those inherited from the master and "
		    "unshares their copy-on-write pages (their memory was "
		    "not measured).", w.ngen2, w.n, w.old);
	rules_freeze_hook(in->server, r);
}

/* What outlier_worker compares, each worker against its siblings'
 * median: out of line above RULES_OUTLIER_FACTOR x that median taken as
 * at least floor (one stray full collection against none is no news). */
enum { FIG_P99, FIG_MAX, FIG_GEN2, FIG_GEN2_MS, RULES_NFIG };

static const struct {
	const char *what, *name, *median, *unit;
	double floor;
} rules_figs[RULES_NFIG] = {
	{ "p99 pause", "p99_ms", "sibling_median_p99_ms", " ms",
	    RULES_OUTLIER_MIN_MS },
	{ "max pause", "max_pause_ms", "sibling_median_max_pause_ms", " ms",
	    RULES_OUTLIER_MIN_MS },
	/* The collections that trace the old objects under the worker's
	 * model (rules_proc.gen2): "gen-2", "whole-heap"... prefixed. */
	{ " collections", "gen2_collections", "sibling_median_gen2", "",
	    1 },
	{ " pause time", "gen2_time_ms", "sibling_median_gen2_time_ms",
	    " ms", RULES_OUTLIER_MIN_MS },
};

#define RULES_GROUP_MAX	64

/* The workers of one parent in one run, big enough to compare. */
struct rules_group {
	size_t m;
	const struct rules_proc *p[RULES_GROUP_MAX];
	double fig[RULES_NFIG][RULES_GROUP_MAX];
};

static int rules_comparable(const struct rules_proc *p)
{
	return p->worker && p->wall_s >= RULES_MIN_WALL_S &&
	    p->collections >= RULES_MIN_COLLECTIONS;
}

static int rules_sibling(const struct rules_proc *a,
    const struct rules_proc *b)
{
	return rules_comparable(b) && a->run == b->run && a->ppid == b->ppid;
}

static void rules_outlier_rec(const struct rules_group *g, size_t j,
    const double med[RULES_NFIG], unsigned out_of_line,
    struct rules_out *o)
{
	const struct rules_proc *p = g->p[j];
	struct rules_rec *r;
	size_t len;
	unsigned k;

	if ((r = rules_add(o, "outlier_worker", RULES_WARNING)) == NULL)
		return;
	r->pid = p->pid;
	len = (size_t)snprintf(r->message, sizeof r->message,
	    "Worker %u is out of line with its %zu siblings:",
	    (unsigned)p->pid, g->m - 1);
	for (k = 0; k < RULES_NFIG && len < sizeof r->message; k++)
		if (out_of_line & (1u << k))
			len += (size_t)snprintf(r->message + len,
			    sizeof r->message - len, " %s%s %.*f%s (sibling "
			    "median %.*f%s);", k == FIG_GEN2 || k == FIG_GEN2_MS ?
			    gcmodel_old_name(p->gc_model) : "", rules_figs[k].what,
			    *rules_figs[k].unit ? 2 : 0, g->fig[k][j],
			    rules_figs[k].unit, *rules_figs[k].unit ? 2 : 1,
			    med[k], rules_figs[k].unit);
	if (len < sizeof r->message && len > 0)
		r->message[len - 1] = '.';
	rules_evidence(r, "pid", p->pid);
	for (k = 0; k < RULES_NFIG; k++) {
		rules_evidence(r, rules_figs[k].name, g->fig[k][j]);
		rules_evidence(r, rules_figs[k].median, med[k]);
	}
	snprintf(rules_action(r), sizeof r->actions[0],
	    "look at what worker %u serves or holds that its siblings do not "
	    "(large requests, caches that grow)", (unsigned)p->pid);
	snprintf(rules_action(r), sizeof r->actions[0],
	    "recycle it (gunicorn --max-requests) if its heap keeps growing");
}

/* Each worker of group g with enough GC time of its own to judge. */
static void rules_outlier_group(const struct rules_group *g,
    struct rules_out *o)
{
	double med[RULES_NFIG];
	unsigned k, out_of_line;
	size_t j;

	for (j = 0; j < g->m; j++) {
		if (rules_small(g->p[j]->wall_s, g->p[j]->collections,
		    g->p[j]->pause_ns))
			continue;
		out_of_line = 0;
		for (k = 0; k < RULES_NFIG; k++) {
			med[k] = rules_median_without(g->fig[k], g->m, j);
			if (g->fig[k][j] > RULES_OUTLIER_FACTOR *
			    (med[k] > rules_figs[k].floor ? med[k] :
			    rules_figs[k].floor))
				out_of_line |= 1u << k;
		}
		if (out_of_line != 0)
			rules_outlier_rec(g, j, med, out_of_line, o);
	}
}

/* A worker (forked, or spawned: agg_proc_role) far from its siblings,
 * the workers of the same parent in the same run. */
static void rules_outliers(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	struct rules_group g;
	const struct rules_proc *head, *q;
	size_t i, j;
	int first;

	if (f->small)
		return;
	for (i = 0; i < in->nprocs; i++) {
		head = &in->procs[i];
		if (!rules_comparable(head))
			continue;
		/* One group per parent: handle it at its first worker. */
		for (first = 1, j = 0; j < i && first; j++)
			first = !rules_sibling(head, &in->procs[j]);
		if (!first)
			continue;
		for (g.m = 0, j = i; j < in->nprocs && g.m < RULES_GROUP_MAX;
		    j++) {
			if (!rules_sibling(head, q = &in->procs[j]))
				continue;
			g.p[g.m] = q;
			g.fig[FIG_P99][g.m] = q->p99_ms;
			g.fig[FIG_MAX][g.m] = q->max_ms;
			g.fig[FIG_GEN2][g.m] = (double)q->gen2;
			g.fig[FIG_GEN2_MS][g.m] = q->gen2_ms;
			g.m++;
		}
		if (g.m >= RULES_MIN_SIBLINGS)
			rules_outlier_group(&g, o);
	}
}

/* The figures of requests_gc, ms and percent of the scope's requests. */
struct rules_req {
	double p99, nogc, nofull;	/* p99 served, without GC, without
					 * the collections that trace the old */
	double adds, full_adds;		/* p99 - nogc, p99 - nofull */
	double delayed_pct, full_pct;	/* delayed by GC, by those */
	double full_mean;		/* their mean delay of one request */
	const char *old;		/* gcmodel_old_name */
};

/* "generation 0 40.1% by 0.12 ms, generation 2 2.9% by 38.10 ms": the
 * share of requests each generation delayed and its mean delay. */
static void rules_req_gens(const struct req_sum *s, unsigned model,
    char *buf, size_t len)
{
	const struct req_gen *x;
	size_t used = 0;
	unsigned g;
	int n;

	buf[0] = '\0';
	for (g = 0; g < s->ngen && g < PROTO_MAX_GEN; g++) {
		if ((x = &s->gen[g])->delayed == 0)
			continue;
		n = snprintf(buf + used, len - used, "%s%s %.1f%% by %.2f ms",
		    used ? ", " : "", gcmodel_gen_label(model, g),
		    (double)x->delayed / (double)s->all.requests * 100,
		    (double)x->gc_ns / 1e6 / (double)x->delayed);
		if (n < 0 || (size_t)n >= len - used) {
			buf[used] = '\0';	/* whole entries only */
			break;
		}
		used += (size_t)n;
	}
}

/* gc.freeze(), and what it buys at most: no collection that traces the
 * old objects in any request. Not once the scope froze. */
static void rules_req_freeze(const struct rules_input *in,
    const struct rules_req *q, struct rules_rec *r)
{
	int forked = 0;
	size_t i;

	if (in->freeze_count != 0)
		return;
	for (i = 0; i < in->nprocs; i++)
		forked |= in->procs[i].origin == ORIGIN_FORK;
	snprintf(rules_action(r), sizeof r->actions[0], "%s: the objects "
	    "frozen are no longer traced by %s collections, each of them "
	    "shorter by the share of the heap built before it; at best (none "
	    "left in any request) p99 %.1f -> %.1f ms, and the %.1f%% of "
	    "requests they delayed no longer wait for them (the measured "
	    "figures without them)", forked ?
	    rules_freeze_hook_text(in->server) : "gc.freeze() once "
	    "initialisation is done", q->old, q->p99, q->nofull, q->full_pct);
}

/* Classic: gen 2's threshold k times higher, k the least that takes
 * the requests it delays out of the p99's tail (rules.h). */
static void rules_req_rarer(const struct rules_input *in,
    const struct rules_facts *f, const struct rules_req *q,
    struct rules_rec *r)
{
	const uint32_t *th = in->thresholds;
	unsigned k;
	double after;

	if (!gcmodel_auto_full(f->model) || f->model == GCMODEL_MIXED ||
	    th == NULL || in->nthresholds < 3 || th[2] == 0 ||
	    q->full_pct <= RULES_REQ_TAIL_PCT)
		return;
	k = (unsigned)(q->full_pct / RULES_REQ_TAIL_PCT);
	if (k * RULES_REQ_TAIL_PCT < q->full_pct)
		k++;
	if (k < 2)
		k = 2;
	if (k > RULES_REQ_MAX_FACTOR)
		k = RULES_REQ_MAX_FACTOR;
	after = q->full_pct / k;
	snprintf(rules_action(r), sizeof r->actions[0], "gc.set_threshold(%u, "
	    "%u, %u) after start-up: gen 2 at most %u times rarer, each "
	    "collection tracing about as much (more if the heap grows between "
	    "them): about %.2f%% of requests delayed by it instead of %.1f%%; "
	    "%s. Gen 2 also waits until the objects that reached it since the "
	    "last one are a quarter of those it held then: where that holds it "
	    "back, the threshold changes less", th[0], th[1], th[2] * k, k,
	    after, q->full_pct,
	    after <= RULES_REQ_TAIL_PCT ? "few enough to leave the p99 "
	    "(it comes down toward its figure without gen 2)" :
	    "still more than the p99 leaves out: p99 stays about where it is, "
	    "gc.freeze() is the change that reaches it");
}

static void rules_requests(const struct rules_input *in,
    const struct rules_facts *f, struct rules_out *o)
{
	const struct req_sum *s = in->req;
	double served[AGG_NPCTS], nogc[AGG_NPCTS], nofull[AGG_NPCTS], n;
	struct rules_req q;
	struct rules_rec *r;
	char gens[240];

	if (s == NULL || s->all.requests < RULES_MIN_REQUESTS)
		return;
	agg_compact_pcts_ms(&s->all.served, 1, served);
	agg_compact_pcts_ms(&s->all.without_gc, 1, nogc);
	agg_compact_pcts_ms(&s->without_full, 1, nofull);
	if (served[2] - nogc[2] <= RULES_REQ_P99_MS ||
	    (r = rules_add(o, "requests_gc", RULES_WARNING)) == NULL)
		return;
	n = (double)s->all.requests;
	q.p99 = served[2];
	q.nogc = nogc[2];
	q.nofull = nofull[2] < served[2] ? nofull[2] : served[2];
	q.adds = q.p99 - q.nogc;
	q.full_adds = q.p99 - q.nofull;
	q.delayed_pct = (double)s->all.delayed / n * 100;
	q.full_pct = (double)s->full.delayed / n * 100;
	q.full_mean = s->full.delayed ? (double)s->full.gc_ns / 1e6 /
	    (double)s->full.delayed : 0;
	q.old = gcmodel_old_name(f->model);
	rules_req_gens(s, f->model, gens, sizeof gens);
	snprintf(r->message, sizeof r->message, "GC adds %.1f ms to the p99 "
	    "of %llu requests (%.1f ms, %.1f without it) and delayed %.1f%% "
	    "of them; the share each generation delayed and by how much on "
	    "average: %s. The %s collections add %.1f ms of it (p99 %.1f ms "
	    "without them).", q.adds, (unsigned long long)s->all.requests,
	    q.p99, q.nogc, q.delayed_pct, gens[0] ? gens : "none joined",
	    q.old, q.full_adds, q.nofull);
	rules_evidence(r, "requests", n);
	rules_evidence(r, "delayed_pct", q.delayed_pct);
	rules_evidence(r, "p99_ms", q.p99);
	rules_evidence(r, "p99_without_gc_ms", q.nogc);
	rules_evidence(r, "gc_adds_p99_ms", q.adds);
	rules_evidence(r, "p99_without_full_ms", q.nofull);
	rules_evidence(r, "full_adds_p99_ms", q.full_adds);
	rules_evidence(r, "full_delayed_pct", q.full_pct);
	rules_evidence(r, "full_mean_delay_ms", q.full_mean);
	/* The collections that trace the old objects make most of it: fewer
	 * objects for them, or fewer of them; else the young ones. */
	if (q.full_adds >= q.adds / 2) {
		rules_req_freeze(in, &q, r);
		rules_req_rarer(in, f, &q, r);
	} else
		rules_set_threshold(in, f, r);
	if (r->nactions == 0)
		snprintf(rules_action(r), sizeof r->actions[0], "find what the "
		    "slowest requests allocate: gcmonctl requests --json lists "
		    "them with the collections that hit them, and the stacks "
		    "of the gen 2 and long ones");
}

/* In the order their recommendations are listed. */
static rules_fn *const rules_table[] = {
	rules_gen2_share,
	rules_max_pause,
	rules_requests,
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
	f.model = agg_sum_model(s);
	f.auto_gen = gcmodel_auto_gen(f.model);
	f.max_ms = (double)f.t.max_pause_ns / 1e6;
	f.gc_pct = agg_gc_wall_pct(f.t.pause_ns, s->proc_wall_s);
	f.rate0 = s->proc_wall_s > 0 && s->ngen > f.auto_gen ?
	    (double)s->gen[f.auto_gen].seen / s->proc_wall_s : 0;
	f.small = rules_small(s->proc_wall_s, f.t.seen, f.t.pause_ns);
	for (i = 0; i < sizeof rules_table / sizeof rules_table[0]; i++)
		rules_table[i](in, &f, &o);
	return o.n;
}

static void rules_proc_fill(const struct agg *a, const struct agg_proc *p,
    struct rules_proc *rp)
{
	unsigned g;

	rp->pid = p->pid;
	rp->ppid = p->ppid;
	rp->run = p->run;
	rp->origin = p->origin;
	rp->gc_model = p->gc_model;
	rp->worker = agg_proc_role(p) == AGG_ROLE_WORKER;
	rp->wall_s = agg_proc_wall_s(a, p);
	for (g = 0; g < p->ngen; g++) {
		rp->collections += p->c[g].count;
		rp->pause_ns += p->c[g].pause_ns;
		if ((double)p->c[g].max_pause_ns / 1e6 > rp->max_ms)
			rp->max_ms = (double)p->c[g].max_pause_ns / 1e6;
	}
	/* The collections that trace the inherited objects: gen 2 on the
	 * classic model, increments too on incremental, all free-threaded. */
	for (g = 0; g < p->ngen; g++) {
		if (gcmodel_auto_full(p->gc_model) ? g != 2 :
		    !gcmodel_traces_old(p->gc_model, g, p->ngen))
			continue;
		rp->gen2 += p->c[g].count;
		rp->gen2_ms += (double)p->c[g].pause_ns / 1e6;
	}
	rp->p99_ms = agg_proc_pct_ms(p, -1, 99.0);
	rp->freeze_count = p->freeze_count;
	rp->mem_read = p->mem_state == AGG_MEM_READ;
	rp->unshared_bytes = p->unshared_by_gc_bytes;
}

/* Which prefork server master p runs, from its command line. */
static enum rules_server rules_server_of(const struct agg_proc *p)
{
	const char *arg = p->argv;
	uint32_t i;

	for (i = 0; arg != NULL && i < p->argc; i++) {
		if (strstr(arg, "gunicorn") != NULL)
			return RULES_SERVER_GUNICORN;
		if (strstr(arg, "uwsgi") != NULL)
			return RULES_SERVER_UWSGI;
		arg += strlen(arg) + 1;
	}
	return RULES_SERVER_OTHER;
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
			rules_proc_fill(a, v[i], rp);
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
		in->freeze_count = tp->freeze_count;
		in->server = rules_server_of(tp);
	}
	/* No request in the scope: no sum (a walk of every process's
	 * routes) for the requests rule to find empty; it takes NULL as
	 * none. */
	if (requests_any(a, r, p) &&
	    ((in->own_req = malloc(sizeof *in->own_req)) == NULL ||
	    requests_sum(a, r, p, NULL, in->own_req) < 0)) {
		free(in->own_req);
		in->own_req = NULL;
		goto out_nomem;
	}
	in->req = in->own_req;
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
	if (in->own_req != NULL)
		requests_sum_fini(in->own_req);
	free(in->own_req);
	agg_sum_free(in->own_sum);
	free(in->own_procs);
	in->own_req = NULL;
	in->own_sum = NULL;
	in->own_procs = NULL;
}
