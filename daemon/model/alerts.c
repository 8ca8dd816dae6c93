/*
 * alerts.c: rate-limited pause alerts and the shape alerts of a sliding
 * window (see alerts.h). Called by events.c from the event loop; never
 * does I/O, never reads a clock, never changes agg state. Processes are
 * found by pid in a hash table (checked against their start time) and
 * listed per run for the sibling comparison.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "alerts.h"
#include "gcmodel.h"

struct alerts_slot {
	int64_t idx;			/* absolute slot number */
	uint32_t n, nover, nfull;
	uint64_t pause_ns, max_ns;
};

struct alerts_proc {
	struct alerts_proc *hnext;	/* hash chain */
	LIST_ENTRY(alerts_proc) link;	/* in its run */
	struct alerts_run *run;
	uint32_t pid, ppid;
	uint64_t start_id;
	int worker;
	unsigned full_gen;		/* the oldest generation */
	uint8_t gc_model;		/* agg_proc's */
	double first_seen, last_event;
	int rl_open;			/* a pause alert window is running */
	double rl_start;
	uint64_t held, held_max_ns;
	double fired[ALERTS_NKINDS];	/* when each shape alert last fired */
	struct alerts_slot slot[ALERTS_SLOTS];
};

struct alerts_run {
	LIST_ENTRY(alerts_run) link;	/* in alerts->runs */
	LIST_HEAD(alerts_procs, alerts_proc) procs;
	unsigned nproc;
	char id[];
};

struct alerts_win {
	uint64_t n, nover, nfull, pause_ns, max_ns;
};

struct alerts_sib {
	uint32_t ppid;
	uint64_t max_ns;
	struct alerts_proc *ap;
};

struct alerts {
	struct alerts_config cfg;
	double slot_s;
	alerts_emit_fn *emit;
	void *arg;
	struct alerts_proc **bucket;
	unsigned nbucket, nproc;
	LIST_HEAD(alerts_runs, alerts_run) runs;
	int64_t last_eval;
	struct alerts_sib *sib;		/* scratch for the outlier check */
	unsigned nsib;
};

static const char *const alerts_names[ALERTS_NKINDS] = {
	"pause", "pause_repeat", "p99", "gc_share", "gen2_storm", "outlier"
};

const char *alerts_kind_name(enum alerts_kind k)
{
	return (unsigned)k < ALERTS_NKINDS ? alerts_names[k] : "unknown";
}

struct alerts *alerts_new(const struct alerts_config *cfg,
    alerts_emit_fn *emit, void *arg)
{
	struct alerts *al;

	if (!(cfg->window_s > 0) || emit == NULL)
		return NULL;
	if ((al = calloc(1, sizeof *al)) == NULL)
		return NULL;
	LIST_INIT(&al->runs);
	al->nbucket = 64;
	if ((al->bucket = calloc(al->nbucket, sizeof *al->bucket)) == NULL) {
		free(al);
		return NULL;
	}
	al->cfg = *cfg;
	al->slot_s = cfg->window_s / ALERTS_SLOTS;
	al->emit = emit;
	al->arg = arg;
	al->last_eval = INT64_MIN;
	return al;
}

void alerts_free(struct alerts *al)
{
	struct alerts_run *r, *rn;
	struct alerts_proc *ap, *an;

	if (al == NULL)
		return;
	for (r = LIST_FIRST(&al->runs); r != NULL; r = rn) {
		rn = LIST_NEXT(r, link);
		for (ap = LIST_FIRST(&r->procs); ap != NULL; ap = an) {
			an = LIST_NEXT(ap, link);
			free(ap);
		}
		free(r);
	}
	free(al->bucket);
	free(al->sib);
	free(al);
}

unsigned alerts_nprocs(const struct alerts *al)
{
	return al->nproc;
}

/* floor(now / slot_s), without libm's floor: gcmond needs libm for
 * nothing else, and each shared object costs every start. */
static int64_t alerts_slot_of(const struct alerts *al, double now)
{
	double q = now / al->slot_s;
	int64_t s = (int64_t)q;		/* toward zero */

	return (double)s > q ? s - 1 : s;
}

static struct alerts_proc **alerts_chain(struct alerts *al, uint32_t pid)
{
	return &al->bucket[(pid * 2654435761u) & (al->nbucket - 1)];
}

/* Doubles the table when it is full; failing keeps the old one. */
static void alerts_grow(struct alerts *al)
{
	struct alerts_proc **old = al->bucket, *ap, *an, **chain;
	unsigned i, n = al->nbucket;

	if (al->nproc < al->nbucket)
		return;
	if ((al->bucket = calloc(n * 2, sizeof *al->bucket)) == NULL) {
		al->bucket = old;
		return;
	}
	al->nbucket = n * 2;
	for (i = 0; i < n; i++)
		for (ap = old[i]; ap != NULL; ap = an) {
			an = ap->hnext;
			chain = alerts_chain(al, ap->pid);
			ap->hnext = *chain;
			*chain = ap;
		}
	free(old);
}

static void alerts_proc_remove(struct alerts *al, struct alerts_proc *ap)
{
	struct alerts_proc **pp = alerts_chain(al, ap->pid);
	struct alerts_run *r = ap->run;

	while (*pp != ap)
		pp = &(*pp)->hnext;
	*pp = ap->hnext;
	LIST_REMOVE(ap, link);
	al->nproc--;
	free(ap);
	if (--r->nproc > 0)
		return;
	LIST_REMOVE(r, link);
	free(r);
}

static struct alerts_run *alerts_run_get(struct alerts *al, const char *id)
{
	struct alerts_run *r;
	size_t len = strlen(id);

	LIST_FOREACH(r, &al->runs, link)
		if (strcmp(r->id, id) == 0)
			return r;
	if ((r = calloc(1, sizeof *r + len + 1)) == NULL)
		return NULL;
	memcpy(r->id, id, len + 1);
	LIST_INIT(&r->procs);
	LIST_INSERT_HEAD(&al->runs, r, link);
	return r;
}

static struct alerts_proc *alerts_proc_get(struct alerts *al,
    const struct agg_proc *p, double now)
{
	struct alerts_proc *ap, **chain;
	struct alerts_run *r;
	unsigned i;

	for (ap = *alerts_chain(al, p->pid); ap != NULL; ap = ap->hnext)
		if (ap->pid == p->pid)
			break;
	if (ap != NULL && ap->start_id == p->start_mono_ns &&
	    strcmp(ap->run->id, p->run->id) == 0)
		return ap;
	if (ap != NULL)		/* the pid was reused: a new process */
		alerts_proc_remove(al, ap);
	if ((r = alerts_run_get(al, p->run->id)) == NULL)
		return NULL;
	if ((ap = calloc(1, sizeof *ap)) == NULL) {
		if (r->nproc == 0) {
			LIST_REMOVE(r, link);	/* just made */
			free(r);
		}
		return NULL;
	}
	ap->pid = p->pid;
	ap->ppid = p->ppid;
	ap->start_id = p->start_mono_ns;
	ap->worker = p->origin == ORIGIN_FORK;
	ap->full_gen = p->ngen > 0 ? p->ngen - 1u : 0;
	ap->gc_model = p->gc_model;
	ap->first_seen = now;
	for (i = 0; i < ALERTS_SLOTS; i++)
		ap->slot[i].idx = INT64_MIN;
	ap->run = r;
	LIST_INSERT_HEAD(&r->procs, ap, link);
	r->nproc++;
	alerts_grow(al);
	chain = alerts_chain(al, ap->pid);
	ap->hnext = *chain;
	*chain = ap;
	al->nproc++;
	return ap;
}

static void alerts_window(const struct alerts_proc *ap, int64_t cur,
    struct alerts_win *w)
{
	const struct alerts_slot *s;
	unsigned i;

	memset(w, 0, sizeof *w);
	for (i = 0; i < ALERTS_SLOTS; i++) {
		s = &ap->slot[i];
		if (s->idx > cur || s->idx <= cur - ALERTS_SLOTS)
			continue;
		w->n += s->n;
		w->nover += s->nover;
		w->nfull += s->nfull;
		w->pause_ns += s->pause_ns;
		if (s->max_ns > w->max_ns)
			w->max_ns = s->max_ns;
	}
}

static void alerts_line_init(const struct alerts *al,
    const struct alerts_proc *ap, enum alerts_kind kind,
    struct alerts_line *l)
{
	memset(l, 0, sizeof *l);
	l->kind = kind;
	l->run = ap->run->id;
	l->pid = ap->pid;
	l->window_s = al->cfg.window_s;
}

/* A shape alert fires at most once per window per process. */
static void alerts_fire(struct alerts *al, struct alerts_proc *ap,
    struct alerts_line *l, double now)
{
	if (ap->fired[l->kind] != 0 && now < ap->fired[l->kind] + al->cfg.window_s)
		return;
	ap->fired[l->kind] = now;
	al->emit(al->arg, l);
}

/* The held count of a window that has ended (or of any, with force). */
static void alerts_flush(struct alerts *al, struct alerts_proc *ap,
    double now, int force)
{
	struct alerts_line l;

	if (!ap->rl_open || (!force && now < ap->rl_start + al->cfg.window_s))
		return;
	if (ap->held == 0) {
		ap->rl_open = 0;
		return;
	}
	alerts_line_init(al, ap, ALERTS_REPEAT, &l);
	l.window_s = now - ap->rl_start;
	l.count = ap->held;
	l.value = (double)ap->held_max_ns / 1e6;
	l.limit = al->cfg.threshold_ms;
	snprintf(l.message, sizeof l.message, "%llu more pauses over %g ms "
	    "in the last %.0f s (max %.1f ms)", (unsigned long long)l.count,
	    l.limit, l.window_s, l.value);
	al->emit(al->arg, &l);
	/* The window goes on: a steady stream is one line per window. */
	ap->held = ap->held_max_ns = 0;
	ap->rl_start = now;
}

void alerts_event(struct alerts *al, const struct agg_proc *p,
    const struct proto_event *e, int over, double now)
{
	struct alerts_proc *ap;
	struct alerts_slot *s;
	struct alerts_line l;
	int64_t cur;

	if (al == NULL || (ap = alerts_proc_get(al, p, now)) == NULL)
		return;
	cur = alerts_slot_of(al, now);
	s = &ap->slot[(uint64_t)cur % ALERTS_SLOTS];
	if (s->idx != cur) {
		memset(s, 0, sizeof *s);
		s->idx = cur;
	}
	s->n++;
	s->pause_ns += e->pause_ns;
	if (e->pause_ns > s->max_ns)
		s->max_ns = e->pause_ns;
	if (al->cfg.p99_ms > 0 && (double)e->pause_ns / 1e6 > al->cfg.p99_ms)
		s->nover++;
	if (e->generation == ap->full_gen && ap->full_gen > 0)
		s->nfull++;
	ap->last_event = now;
	alerts_flush(al, ap, now, 0);
	if (!over)
		return;
	if (ap->rl_open) {
		ap->held++;
		if (e->pause_ns > ap->held_max_ns)
			ap->held_max_ns = e->pause_ns;
		return;
	}
	ap->rl_open = 1;
	ap->rl_start = now;
	alerts_line_init(al, ap, ALERTS_PAUSE, &l);
	l.time = agg_proc_real(p, e->start_ns);
	l.value = (double)e->pause_ns / 1e6;
	l.limit = al->cfg.threshold_ms;
	l.generation = e->generation;
	l.label = gcmodel_gen_label(p->gc_model, e->generation);
	l.proc = p;
	l.event = e;
	/* The label only where it says more than the number. */
	if (strncmp(l.label, "generation ", 11) == 0)
		snprintf(l.message, sizeof l.message, "gen %u pause %.1f ms "
		    "over %g ms", l.generation, l.value, l.limit);
	else
		snprintf(l.message, sizeof l.message, "gen %u (%s) pause %.1f "
		    "ms over %g ms", l.generation, l.label, l.value, l.limit);
	al->emit(al->arg, &l);
}

/* p99, GC share and gen-2 rate of one process. */
static void alerts_shape(struct alerts *al, struct alerts_proc *ap,
    double now, int64_t cur)
{
	const struct alerts_config *c = &al->cfg;
	struct alerts_win w;
	struct alerts_line l;
	double wstart = (double)(cur - ALERTS_SLOTS + 1) * al->slot_s;
	double covered = now - (ap->first_seen > wstart ? ap->first_seen : wstart);
	double v;

	alerts_window(ap, cur, &w);
	if (c->p99_ms > 0 && w.n >= ALERTS_P99_MIN_EVENTS && w.nover * 100 > w.n) {
		alerts_line_init(al, ap, ALERTS_P99, &l);
		l.count = w.n;
		l.other = (double)w.nover * 100 / (double)w.n;
		l.value = (double)w.max_ns / 1e6;
		l.limit = c->p99_ms;
		snprintf(l.message, sizeof l.message, "p99 pause over %g ms in "
		    "the last %g s: %.1f%% of %llu pauses over it (max %.1f ms)",
		    l.limit, l.window_s, l.other, (unsigned long long)l.count,
		    l.value);
		alerts_fire(al, ap, &l, now);
	}
	if (now - ap->first_seen < c->window_s / 2 || !(covered > 0))
		return;
	v = (double)w.pause_ns / 1e9 / covered * 100;
	if (c->gc_share_pct > 0 && v > c->gc_share_pct) {
		alerts_line_init(al, ap, ALERTS_GC_SHARE, &l);
		l.value = v;
		l.limit = c->gc_share_pct;
		snprintf(l.message, sizeof l.message, "GC took %.1f%% of wall "
		    "time in the last %g s (limit %g%%)", v, l.window_s, l.limit);
		alerts_fire(al, ap, &l, now);
	}
	v = (double)w.nfull / covered * 60;
	if (c->gen2_per_min > 0 && v > c->gen2_per_min) {
		alerts_line_init(al, ap, ALERTS_GEN2, &l);
		l.value = v;
		l.limit = c->gen2_per_min;
		l.count = w.nfull;
		l.generation = ap->full_gen;
		l.label = gcmodel_gen_label(ap->gc_model, ap->full_gen);
		l.explicit_full = !gcmodel_auto_full(ap->gc_model);
		snprintf(l.message, sizeof l.message, "gen-%u storm%s: %llu "
		    "collections in the last %g s, %.1f/min (limit %g/min)",
		    l.generation, l.explicit_full ? " of explicit full "
		    "collections (gc.collect())" : "",
		    (unsigned long long)l.count, l.window_s, v, l.limit);
		alerts_fire(al, ap, &l, now);
	}
}

static int alerts_by_ppid_max(const void *x, const void *y)
{
	const struct alerts_sib *a = x, *b = y;

	if (a->ppid != b->ppid)
		return a->ppid < b->ppid ? -1 : 1;
	return a->max_ns < b->max_ns ? -1 : a->max_ns > b->max_ns;
}

/* Element j of sorted s[0..k) without s[i]. */
static double alerts_without(const struct alerts_sib *s, unsigned i,
    unsigned j)
{
	return (double)s[j < i ? j : j + 1].max_ns;
}

/* Each worker of a group (sorted by max) against its siblings' median. */
static void alerts_outlier_group(struct alerts *al, struct alerts_sib *s,
    unsigned k, double now)
{
	struct alerts_line l;
	unsigned i, m = k - 1;
	double med, max_ms;

	for (i = 0; i < k; i++) {
		med = m % 2 ? alerts_without(s, i, m / 2) :
		    (alerts_without(s, i, m / 2 - 1) +
		    alerts_without(s, i, m / 2)) / 2;
		max_ms = (double)s[i].max_ns / 1e6;
		if (!((double)s[i].max_ns > al->cfg.outlier_factor * med) ||
		    !(max_ms > al->cfg.threshold_ms))
			continue;
		alerts_line_init(al, s[i].ap, ALERTS_OUTLIER, &l);
		l.value = max_ms;
		l.other = med / 1e6;
		l.limit = al->cfg.outlier_factor;
		l.count = m;
		snprintf(l.message, sizeof l.message, "max pause %.1f ms is over "
		    "%gx the median of its %u siblings' max (%.1f ms) in the "
		    "last %g s", max_ms, l.limit, m, l.other, l.window_s);
		alerts_fire(al, s[i].ap, &l, now);
	}
}

static void alerts_outliers(struct alerts *al, struct alerts_run *r,
    double now, int64_t cur)
{
	struct alerts_proc *ap;
	struct alerts_win w;
	struct alerts_sib *ns;
	unsigned n = 0, i, j;

	if (r->nproc > al->nsib) {
		if ((ns = realloc(al->sib, r->nproc * sizeof *ns)) == NULL)
			return;
		al->sib = ns;
		al->nsib = r->nproc;
	}
	LIST_FOREACH(ap, &r->procs, link) {
		if (!ap->worker)
			continue;
		alerts_window(ap, cur, &w);
		if (w.n == 0)
			continue;
		al->sib[n].ppid = ap->ppid;
		al->sib[n].max_ns = w.max_ns;
		al->sib[n++].ap = ap;
	}
	qsort(al->sib, n, sizeof *al->sib, alerts_by_ppid_max);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && al->sib[j].ppid == al->sib[i].ppid; j++)
			;
		if (j - i > ALERTS_MIN_SIBLINGS)
			alerts_outlier_group(al, al->sib + i, j - i, now);
	}
}

void alerts_tick(struct alerts *al, double now)
{
	struct alerts_run *r, *rn;
	struct alerts_proc *ap, *an;
	int64_t cur;
	int eval;

	if (al == NULL)
		return;
	cur = alerts_slot_of(al, now);
	eval = cur != al->last_eval;
	al->last_eval = cur;
	LIST_FOREACH(r, &al->runs, link) {
		LIST_FOREACH(ap, &r->procs, link) {
			alerts_flush(al, ap, now, 0);
			if (eval)
				alerts_shape(al, ap, now, cur);
		}
		if (eval && al->cfg.outlier_factor > 0)
			alerts_outliers(al, r, now, cur);
	}
	/* Idle for a window: nothing left to count or to say. */
	for (r = LIST_FIRST(&al->runs); r != NULL; r = rn) {
		rn = LIST_NEXT(r, link);	/* r goes with its last process */
		for (ap = LIST_FIRST(&r->procs); ap != NULL; ap = an) {
			an = LIST_NEXT(ap, link);
			if (!ap->rl_open && now - ap->last_event >= al->cfg.window_s)
				alerts_proc_remove(al, ap);
		}
	}
}

void alerts_finish(struct alerts *al, double now)
{
	struct alerts_run *r;
	struct alerts_proc *ap;

	if (al == NULL)
		return;
	LIST_FOREACH(r, &al->runs, link)
		LIST_FOREACH(ap, &r->procs, link)
			alerts_flush(al, ap, now, 1);
}
