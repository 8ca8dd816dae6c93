/*
 * agg.c: per-process, per-run and per-host aggregates of gcmond (see
 * agg.h for the rules that keep totals exact and memory bounded): their
 * life cycle and sums, a process's role and memory, and the figures
 * derived from them, each computed here once (percentiles, totals over
 * generations, mean pause, GC share of wall time). Fed by agents.c, read
 * by json.c, rules.c, control.c and metrics.c. Never does I/O, never
 * reads a clock, never prints; allocates only its own records and the
 * array agg_procs_by_start returns.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "gcmodel.h"
#include "requests.h"

/* Sets the spawned flag of new process p of run r from its parent, and
 * of its exec'd children already there (with agg_proc_role, below). */
static void agg_role_link(struct agg_run *r, struct agg_proc *p);

struct agg *agg_new(const struct agg_config *cfg)
{
	struct agg *a = calloc(1, sizeof *a);

	if (a == NULL)
		return NULL;
	a->cfg = *cfg;
	LIST_INIT(&a->runs);
	return a;
}

static void agg_proc_free_hist(struct agg_proc *p)
{
	unsigned g;

	if (p->hist == NULL)
		return;
	for (g = 0; g < p->ngen; g++)
		hist_compact_fini(&p->hist[g]);
	free(p->hist);
	p->hist = NULL;
}

static void agg_proc_free(struct agg_proc *p)
{
	agg_proc_free_hist(p);
	free(p->prior);
	stacks_proc_free(p->stacks);
	requests_proc_free(p->requests);
	free(p->py_version);
	free(p->executable);
	free(p->argv);
	free(p->service);
	free(p->container);
	free(p->hostname);
	free(p->pod);
	free(p->pod_namespace);
	free(p->objects);
	free(p->garbage);
	free(p);
}

static void agg_run_free(struct agg_run *r)
{
	struct agg_proc *p, *next;
	unsigned g;

	for (p = TAILQ_FIRST(&r->procs); p != NULL; p = next) {
		next = TAILQ_NEXT(p, link);
		agg_proc_free(p);
	}
	for (g = 0; g < PROTO_MAX_GEN; g++)
		hist_compact_fini(&r->folded[g]);
	agg_sum_free(r->evicted);
	free(r->id);
	free(r);
}

void agg_free(struct agg *a)
{
	struct agg_run *r, *next;

	if (a == NULL)
		return;
	for (r = LIST_FIRST(&a->runs); r != NULL; r = next) {
		next = LIST_NEXT(r, link);
		agg_run_free(r);
	}
	agg_sum_free(a->expired);
	free(a);
}

struct agg_sum *agg_sum_new(void)
{
	return calloc(1, sizeof(struct agg_sum));	/* zero is empty */
}

void agg_sum_free(struct agg_sum *s)
{
	unsigned g;

	if (s == NULL)
		return;
	for (g = 0; g < PROTO_MAX_GEN; g++)
		hist_compact_fini(&s->hist[g]);
	free(s);
}

double agg_proc_real(const struct agg_proc *p, uint64_t mono_ns)
{
	double real = (double)p->clock_real_ns / 1e9;

	if (mono_ns >= p->clock_mono_ns)
		return real + (double)(mono_ns - p->clock_mono_ns) / 1e9;
	return real - (double)(p->clock_mono_ns - mono_ns) / 1e9;
}

double agg_proc_wall_s(const struct agg *a, const struct agg_proc *p)
{
	double end = p->state == AGG_LIVE ? a->now_real : p->end_real;

	return end > p->start_real ? end - p->start_real : 0.0;
}

const struct proto_event *agg_proc_recent(const struct agg_proc *p,
    unsigned i)
{
	if (i >= p->nrecent || i >= AGG_RECENT)
		return NULL;
	return &p->recent[(p->nrecent - 1 - i) % AGG_RECENT];
}

struct agg_run *agg_run_find(const struct agg *a, const char *id)
{
	struct agg_run *r;

	LIST_FOREACH(r, &a->runs, link)
		if (strcmp(r->id, id) == 0)
			return r;
	return NULL;
}

const struct agg_proc *agg_proc_next(const struct agg *a,
    const struct agg_run *r, const struct agg_proc *p)
{
	const struct agg_run *it;

	if (p != NULL && TAILQ_NEXT(p, link) != NULL)
		return TAILQ_NEXT(p, link);
	if (p != NULL)
		it = r != NULL ? NULL : LIST_NEXT(p->run, link);
	else
		it = r != NULL ? r : LIST_FIRST(&a->runs);
	for (; it != NULL; it = r != NULL ? NULL : LIST_NEXT(it, link))
		if (!TAILQ_EMPTY(&it->procs))
			return TAILQ_FIRST(&it->procs);
	return NULL;
}

struct agg_proc *agg_proc_find(const struct agg *a, uint32_t pid)
{
	struct agg_proc *p, *best = NULL;
	struct agg_run *r;

	LIST_FOREACH(r, &a->runs, link)
		TAILQ_FOREACH(p, &r->procs, link) {
			if (p->pid != pid)
				continue;
			/* Live first, then the latest agent start (one
			 * monotonic clock: of one process's records, a detach
			 * and an attach again, the last; start_real is the
			 * process's start for both, give or take a tick). */
			if (best == NULL ||
			    (p->state == AGG_LIVE && best->state != AGG_LIVE) ||
			    ((p->state == AGG_LIVE) == (best->state == AGG_LIVE) &&
			    p->start_mono_ns > best->start_mono_ns))
				best = p;
		}
	return best;
}

/* Grows p's generations (and histograms) to n. 0 or -ENOMEM. */
static int agg_proc_grow(struct agg_proc *p, unsigned n)
{
	struct hist_compact *h;
	unsigned g;

	if (n > PROTO_MAX_GEN)
		n = PROTO_MAX_GEN;
	if (p->hist != NULL && n <= p->ngen)
		return 0;
	if (n < p->ngen)
		n = p->ngen;
	if ((h = realloc(p->hist, n * sizeof *h)) == NULL)
		return -ENOMEM;
	for (g = p->hist != NULL ? p->ngen : 0; g < n; g++)
		hist_compact_init(&h[g]);
	p->hist = h;
	p->ngen = (uint8_t)n;
	return 0;
}

static char *agg_strdup(const struct proto_str *s, size_t cap)
{
	size_t n = proto_utf8_cut(s->ptr, s->len, cap);
	char *d;

	if ((d = malloc(n + 1)) == NULL)
		return NULL;
	if (n > 0)		/* an empty string may have no pointer */
		memcpy(d, s->ptr, n);
	d[n] = '\0';
	return d;
}

/* Moves p's histograms into its run, keeping the percentiles. */
static void agg_proc_fold(struct agg_proc *p)
{
	struct agg_run *r = p->run;
	unsigned g, i;

	if (p->hist == NULL)
		return;
	for (i = 0; i < 4; i++)
		p->pct_all_ms[i] = (double)hist_compact_percentile(p->hist,
		    p->ngen, agg_pcts[i]) / 1e6;
	for (g = 0; g < p->ngen; g++) {
		for (i = 0; i < 4; i++)
			p->pct_ms[g][i] = (double)hist_compact_percentile(
			    &p->hist[g], 1, agg_pcts[i]) / 1e6;
		/* Out of memory: the run's percentiles lose detail (nlost);
		 * its totals do not (they come from counters). */
		(void)hist_compact_merge(&r->folded[g], &p->hist[g]);
	}
	agg_proc_free_hist(p);
}

static void agg_sum_merge(struct agg_sum *d, const struct agg_sum *s)
{
	unsigned g;

	d->nproc += s->nproc;
	d->nlive += s->nlive;
	d->models |= s->models;
	if (s->ngen > d->ngen)
		d->ngen = s->ngen;
	for (g = 0; g < s->ngen; g++) {
		struct agg_gen_sum *dg = &d->gen[g];
		const struct agg_gen_sum *sg = &s->gen[g];

		dg->collections += sg->collections;
		dg->seen += sg->seen;
		dg->unseen += sg->unseen;
		dg->collected += sg->collected;
		dg->uncollectable += sg->uncollectable;
		dg->pause_ns += sg->pause_ns;
		if (sg->max_pause_ns > dg->max_pause_ns)
			dg->max_pause_ns = sg->max_pause_ns;
		dg->collector_ns += sg->collector_ns;
		dg->ncollector += sg->ncollector;
		(void)hist_compact_merge(&d->hist[g], &s->hist[g]);
	}
	d->dropped += s->dropped;
	d->alerts += s->alerts;
	d->proc_wall_s += s->proc_wall_s;
	if (s->nproc > 0 && (d->start == 0 || s->start < d->start))
		d->start = s->start;
	if (s->end > d->end)
		d->end = s->end;
	d->have_cpu |= s->have_cpu;
	d->cpu_s += s->cpu_s;
	d->have_rss |= s->have_rss;
	d->rss_bytes += s->rss_bytes;
	if (s->max_rss_bytes > d->max_rss_bytes)
		d->max_rss_bytes = s->max_rss_bytes;
	d->nmem += s->nmem;
	d->nmem_refused += s->nmem_refused;
	d->nunshared += s->nunshared;
	d->pss_bytes += s->pss_bytes;
	d->shared_bytes += s->shared_bytes;
	d->private_dirty_bytes += s->private_dirty_bytes;
	d->unshared_by_gc_bytes += s->unshared_by_gc_bytes;
	d->master_anon_bytes += s->master_anon_bytes;
	if (s->frozen_objects > d->frozen_objects)
		d->frozen_objects = s->frozen_objects;
}

static void agg_sum_mem(const struct agg_proc *p, struct agg_sum *s)
{
	if (p->freeze_count > s->frozen_objects)
		s->frozen_objects = p->freeze_count;
	if (p->mem_state == AGG_MEM_REFUSED)
		s->nmem_refused++;
	if (p->mem_state != AGG_MEM_READ)
		return;
	if (p->origin == ORIGIN_FORK) {
		s->nunshared++;
		s->unshared_by_gc_bytes += p->unshared_by_gc_bytes;
	}
	if (agg_proc_role(p) == AGG_ROLE_MASTER)
		s->master_anon_bytes += p->mem.anon_bytes;
	if (p->state != AGG_LIVE)
		return;
	s->nmem++;
	s->pss_bytes += p->mem.pss_bytes;
	s->shared_bytes += agg_mem_shared(&p->mem);
	s->private_dirty_bytes += p->mem.private_dirty_bytes;
}

/* a - b, or 0 (a hostile prior above its baseline). */
static uint64_t agg_sub0(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

/* Adds p to s. own_only: leave out a baseline inherited at fork, and
 * what earlier records of the same process counted (p->prior). */
static void agg_sum_add(const struct agg *a, const struct agg_proc *p,
    struct agg_sum *s, int own_only)
{
	int inherited = p->origin == ORIGIN_FORK ||
	    (p->hello_flags & PROTO_HELLO_BASELINE_INHERITED);
	int add_base = !(own_only && inherited);
	unsigned g;

	s->nproc++;
	if (p->state == AGG_LIVE)
		s->nlive++;
	s->models |= gcmodel_bit(p->gc_model);
	if (p->ngen > s->ngen)
		s->ngen = p->ngen;
	for (g = 0; g < p->ngen; g++) {
		struct agg_gen_sum *sg = &s->gen[g];
		const struct proto_baseline *b = &p->base[g];
		static const struct proto_baseline none;
		const struct proto_baseline *pr = g < p->nprior ?
		    &p->prior[g] : &none;
		/* Of a later area of a process, run and host totals take only
		 * what its earlier records did not count (own_only). */
		uint64_t unseen = !add_base ? 0 : own_only ?
		    agg_sub0(b->collections, pr->collections) : b->collections;

		sg->seen += p->c[g].count;
		sg->unseen += unseen;
		sg->collections += p->c[g].count + unseen;
		sg->collected += p->c[g].collected + (!add_base ? 0 : own_only ?
		    agg_sub0(b->collected, pr->collected) : b->collected);
		sg->uncollectable += p->c[g].uncollectable + (!add_base ? 0 :
		    own_only ? agg_sub0(b->uncollectable, pr->uncollectable) :
		    b->uncollectable);
		sg->pause_ns += p->c[g].pause_ns;
		if (p->c[g].max_pause_ns > sg->max_pause_ns)
			sg->max_pause_ns = p->c[g].max_pause_ns;
		sg->collector_ns += p->collector_ns[g];
		sg->ncollector += p->ncollector[g];
		if (p->hist != NULL)
			(void)hist_compact_merge(&s->hist[g], &p->hist[g]);
	}
	s->dropped += p->dropped;
	s->alerts += p->alerts;
	s->proc_wall_s += agg_proc_wall_s(a, p);
	if (s->start == 0 || p->start_real < s->start)
		s->start = p->start_real;
	if (p->state != AGG_LIVE && p->end_real > s->end)
		s->end = p->end_real;
	if (p->have_sample) {
		s->have_cpu = 1;
		s->have_rss = 1;
		s->cpu_s += (double)p->cpu_ns / 1e9;
		if (p->state == AGG_LIVE)
			s->rss_bytes += p->rss_bytes;
		if (p->max_rss_bytes > s->max_rss_bytes)
			s->max_rss_bytes = p->max_rss_bytes;
	}
	agg_sum_mem(p, s);
}

void agg_sum_process(const struct agg *a, const struct agg_proc *p,
    struct agg_sum *s)
{
	agg_sum_add(a, p, s, 0);
	if (p->state == AGG_LIVE)
		s->end = 0;
}

void agg_sum_run(const struct agg *a, const struct agg_run *r,
    struct agg_sum *s)
{
	const struct agg_proc *p;
	unsigned g;

	if (r->evicted != NULL)
		agg_sum_merge(s, r->evicted);
	TAILQ_FOREACH(p, &r->procs, link)
		agg_sum_add(a, p, s, 1);
	for (g = 0; g < PROTO_MAX_GEN; g++)
		(void)hist_compact_merge(&s->hist[g], &r->folded[g]);
	if (r->nlive > 0)
		s->end = 0;
}

void agg_sum_host(const struct agg *a, struct agg_sum *s)
{
	const struct agg_run *r;

	if (a->expired != NULL)
		agg_sum_merge(s, a->expired);
	LIST_FOREACH(r, &a->runs, link)
		agg_sum_run(a, r, s);
	if (a->nlive > 0)
		s->end = 0;
}

void agg_sum_own(const struct agg *a, const struct agg_proc *p,
    struct agg_sum *s)
{
	agg_sum_add(a, p, s, 1);
}

/* Folds the oldest ended record of r into r->evicted and frees it. */
static void agg_hook_fold(const struct agg *a, const struct agg_proc *p)
{
	if (a->hooks.fold != NULL && p->hist != NULL)
		a->hooks.fold(a->hooks.arg, a, p);
}

static void agg_run_evict(struct agg *a, struct agg_run *r)
{
	struct agg_proc *p;

	/* A record an attached area still points at stays. */
	for (p = TAILQ_FIRST(&r->procs);
	    p != NULL && (p->state == AGG_LIVE || p->nconn > 0);
	    p = TAILQ_NEXT(p, link))
		;
	if (p == NULL)
		return;
	if (r->evicted == NULL && (r->evicted = agg_sum_new()) == NULL)
		return;
	agg_hook_fold(a, p);
	agg_proc_fold(p);
	agg_sum_add(a, p, r->evicted, 1);
	if (a->hooks.forget != NULL)
		a->hooks.forget(a->hooks.arg, a, p);
	TAILQ_REMOVE(&r->procs, p, link);
	r->nproc--;
	agg_proc_free(p);
}

static struct agg_run *agg_run_get(struct agg *a, const struct proto_str *id)
{
	struct agg_run *r;

	LIST_FOREACH(r, &a->runs, link)
		if (strlen(r->id) == id->len &&
		    memcmp(r->id, id->ptr, id->len) == 0)
			return r;
	if ((r = calloc(1, sizeof *r)) == NULL)
		return NULL;
	if ((r->id = agg_strdup(id, PROTO_MAX_ID)) == NULL) {
		free(r);
		return NULL;
	}
	TAILQ_INIT(&r->procs);
	LIST_INSERT_HEAD(&a->runs, r, link);
	a->nruns++;
	return r;
}

static void agg_set_live(struct agg *a, struct agg_proc *p)
{
	if (p->state == AGG_LIVE)
		return;
	p->state = AGG_LIVE;
	p->end_real = 0;
	p->run->nlive++;
	a->nlive++;
}

static void agg_set_ended(struct agg *a, struct agg_proc *p,
    enum agg_state st, double end)
{
	if (p->state != AGG_LIVE)
		return;
	p->state = st;
	p->end_real = end;
	p->run->nlive--;
	a->nlive--;
	if (p->run->nlive == 0)
		p->run->last_end = a->now_real;
}

/* Bytes of argument s kept when used bytes of AGG_MAX_ARGV are taken
 * (used < AGG_MAX_ARGV): all of it, or what fits with its NUL, cut at
 * a character boundary so that the rest stays UTF-8. */
static size_t agg_argv_cut(const struct proto_str *s, size_t used)
{
	return proto_utf8_cut(s->ptr, s->len, AGG_MAX_ARGV - used - 1);
}

size_t agg_proc_bytes(const struct agg_proc *p)
{
	size_t n = sizeof *p, off = 0;
	uint32_t i;
	unsigned g;

	if (p->hist != NULL) {
		n += p->ngen * sizeof *p->hist;
		for (g = 0; g < p->ngen; g++)
			n += hist_compact_bytes(&p->hist[g]);
	}
	n += p->nprior * sizeof *p->prior;
	if (p->py_version != NULL)
		n += strlen(p->py_version) + 1;
	if (p->executable != NULL)
		n += strlen(p->executable) + 1;
	if (p->service != NULL)
		n += strlen(p->service) + 1;
	if (p->container != NULL)
		n += strlen(p->container) + 1;
	if (p->hostname != NULL)
		n += strlen(p->hostname) + 1;
	if (p->pod != NULL)
		n += strlen(p->pod) + 1;
	if (p->pod_namespace != NULL)
		n += strlen(p->pod_namespace) + 1;
	for (i = 0; i < p->argc; i++)
		off += strlen(p->argv + off) + 1;
	n += p->argv != NULL ? (off > 0 ? off : 1) : 0;
	if (p->objects != NULL)
		n += sizeof *p->objects;
	if (p->garbage != NULL)
		n += sizeof *p->garbage;
	return n;
}

/* A copy of s (NULL when empty) into *dst: 0 or -ENOMEM. */
static int agg_place_str(char **dst, const char *s, size_t n)
{
	char *d = NULL;

	if (n > 0) {
		if ((d = malloc(n + 1)) == NULL)
			return -ENOMEM;
		memcpy(d, s, n);
		d[n] = '\0';
	}
	free(*dst);
	*dst = d;
	return 0;
}

int agg_place(struct agg_proc *p, const struct agg_place *pl)
{
	const char *c = pl->container != NULL ? pl->container : "";

	/* What decides the figures first: they hold without the names. */
	p->ns_pid = pl->ns_pid;
	p->pidns_ino = pl->pidns_ino;
	p->unseen = pl->unseen;
	if (p->unseen)
		p->mem_state = AGG_MEM_UNSEEN;
	if (agg_place_str(&p->container, c, strlen(c)) < 0 ||
	    agg_place_str(&p->hostname, pl->hostname.ptr,
	    pl->hostname.len) < 0 ||
	    agg_place_str(&p->pod, pl->pod.ptr, pl->pod.len) < 0 ||
	    agg_place_str(&p->pod_namespace, pl->pod_namespace.ptr,
	    pl->pod_namespace.len) < 0)
		return -ENOMEM;
	return 0;
}

/* The name the program gave (gcmon.start(service=), GCMON_SERVICE);
 * without one, service_name() derives it from the command line. */
#define AGG_HAS_SERVICE(h) \
	(((h)->flags & PROTO_HELLO_SERVICE) != 0 && (h)->service.len > 0)

/* The earlier records' totals a later area of a process carries. */
static int agg_proc_prior(struct agg_proc *p, const struct proto_hello *h)
{
	if (!(h->flags & PROTO_HELLO_PRIOR))
		return 0;
	if ((p->prior = malloc(h->ngen * sizeof *p->prior)) == NULL)
		return -ENOMEM;
	memcpy(p->prior, h->prior, h->ngen * sizeof *p->prior);
	p->nprior = h->ngen;
	return 0;
}

int agg_hello(struct agg *a, const struct proto_hello *h,
    struct agg_proc **out, int *is_new)
{
	struct agg_run *r;
	struct agg_proc *p;
	size_t used = 0, n;
	uint32_t i;

	LIST_FOREACH(r, &a->runs, link)
		TAILQ_FOREACH(p, &r->procs, link)
			if (p->pid == h->pid &&
			    p->start_mono_ns == h->start_mono_ns)
				goto reconnect;
	if ((r = agg_run_get(a, &h->run_id)) == NULL)
		return -ENOMEM;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return -ENOMEM;
	p->run = r;
	p->pid = h->pid;
	p->ppid = h->ppid;
	p->start_mono_ns = h->start_mono_ns;
	p->clock_real_ns = h->clock_real_ns;
	p->clock_mono_ns = h->clock_mono_ns;
	p->py_hexversion = h->py_hexversion;
	p->origin = h->origin;
	p->gc_model = h->gc_model;
	p->hello_flags = h->flags;
	p->state = AGG_ENDED;	/* agg_set_live() below counts it */
	p->start_real = agg_proc_real(p, h->start_mono_ns);
	memcpy(p->base, h->base, h->ngen * sizeof p->base[0]);
	p->py_version = agg_strdup(&h->py_version, PROTO_MAX_STR);
	p->executable = agg_strdup(&h->executable, PROTO_MAX_STR);
	p->service = AGG_HAS_SERVICE(h) ?
	    agg_strdup(&h->service, PROTO_MAX_ID) : NULL;
	/* Only the bytes kept: a typical command line costs tens of
	 * bytes, not AGG_MAX_ARGV (agg_proc_bytes counts them). */
	for (i = 0; i < h->argc && used < AGG_MAX_ARGV; i++)
		used += agg_argv_cut(&h->argv[i], used) + 1;
	p->argv = malloc(used > 0 ? used : 1);
	if (p->py_version == NULL || p->executable == NULL ||
	    (AGG_HAS_SERVICE(h) && p->service == NULL) ||
	    agg_proc_prior(p, h) < 0 ||
	    p->argv == NULL || agg_proc_grow(p, h->ngen) < 0) {
		agg_proc_free(p);
		return -ENOMEM;
	}
	for (used = 0, i = 0; i < h->argc && used < AGG_MAX_ARGV; i++) {
		n = agg_argv_cut(&h->argv[i], used);
		memcpy(p->argv + used, h->argv[i].ptr, n);
		p->argv[used + n] = '\0';
		used += n + 1;
		p->argc++;
	}
	if (r->nproc >= AGG_RUN_MAX_PROCS)
		agg_run_evict(a, r);
	TAILQ_INSERT_TAIL(&r->procs, p, link);
	r->nproc++;
	agg_role_link(r, p);
	*is_new = 1;
	goto live;
reconnect:
	*is_new = 0;
	/* A process that ended and is attached again gets fresh histograms. */
	if (agg_proc_grow(p, p->ngen) < 0)
		return -ENOMEM;
live:
	p->reconnects = h->reconnects;
	p->nconn++;
	agg_set_live(a, p);
	*out = p;
	return 0;
}

static uint64_t agg_max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

void agg_counters(struct agg *a, struct agg_proc *p,
    const struct proto_counters *c)
{
	unsigned g;

	(void)a;
	/* Out of memory growing: the extra generations are not kept. */
	if (c->ngen > p->ngen && agg_proc_grow(p, c->ngen) < 0)
		return;
	/* Cumulative: the larger value is the newer one, whatever order
	 * they were read in. */
	p->dropped = agg_max64(p->dropped, c->dropped);
	for (g = 0; g < c->ngen && g < p->ngen; g++) {
		p->c[g].count = agg_max64(p->c[g].count, c->gen[g].count);
		p->c[g].pause_ns = agg_max64(p->c[g].pause_ns,
		    c->gen[g].pause_ns);
		p->c[g].max_pause_ns = agg_max64(p->c[g].max_pause_ns,
		    c->gen[g].max_pause_ns);
		p->c[g].collected = agg_max64(p->c[g].collected,
		    c->gen[g].collected);
		p->c[g].uncollectable = agg_max64(p->c[g].uncollectable,
		    c->gen[g].uncollectable);
	}
}

int agg_event(struct agg *a, struct agg_proc *p, const struct proto_event *e)
{
	if (e->generation < PROTO_MAX_GEN &&
	    agg_proc_grow(p, (unsigned)e->generation + 1) == 0 &&
	    e->generation < p->ngen) {
		/* Out of memory: the pause is kept in count, sum, min and
		 * max only (hist.h), and the totals come from counters. */
		(void)hist_compact_record(&p->hist[e->generation],
		    e->pause_ns);
		p->nrecorded[e->generation]++;
		if (e->flags & PROTO_EVENT_HAS_COLLECTOR_NS) {
			p->collector_ns[e->generation] += e->collector_ns;
			p->ncollector[e->generation]++;
		}
	}
	if (gcmodel_traces_old(p->gc_model, e->generation, p->ngen) &&
	    (p->mem_gc_start_ns == 0 || e->start_ns < p->mem_gc_start_ns))
		p->mem_gc_start_ns = e->start_ns;
	p->recent[p->nrecent % AGG_RECENT] = *e;
	p->nrecent++;
	a->nevents++;
	if (e->pause_ns > a->cfg.alert_threshold_ns) {
		p->alerts++;
		return 1;
	}
	return 0;
}

void agg_sample(struct agg *a, struct agg_proc *p, const struct agg_sample *s)
{
	(void)a;
	p->have_sample = 1;
	if (s->rss_bytes > 0)		/* a zombie has none: keep the last */
		p->rss_bytes = s->rss_bytes;
	if (s->rss_bytes > p->max_rss_bytes)
		p->max_rss_bytes = s->rss_bytes;
	if (s->peak_rss_bytes > p->max_rss_bytes)
		p->max_rss_bytes = s->peak_rss_bytes;
	if (s->cpu_ns > p->cpu_ns)
		p->cpu_ns = s->cpu_ns;
}

void agg_exit_info(struct agg *a, struct agg_proc *p, uint64_t cpu_ns,
    uint64_t peak_rss_bytes, uint64_t freeze_count)
{
	struct agg_sample s = { p->rss_bytes, peak_rss_bytes, cpu_ns };

	agg_sample(a, p, &s);
	p->clean_exit = 1;
	p->freeze_count = freeze_count;
}

void agg_exit_code(struct agg_proc *p, int code)
{
	p->os_exit = 1;
	p->exit_code = code;
}

void agg_exit_detached(struct agg_proc *p)
{
	p->detached = 1;
}

void agg_proc_started(struct agg_proc *p, double start_real)
{
	if (start_real > 0 && start_real < p->start_real)
		p->start_real = start_real;
}

uint64_t agg_proc_events(const struct agg_proc *p)
{
	uint64_t n = 0;
	unsigned g;

	for (g = 0; g < PROTO_MAX_GEN; g++)
		n += p->nrecorded[g];
	return n;
}

int agg_types(struct agg *a, struct agg_proc *p, int garbage,
    const struct proto_types *t)
{
	struct agg_types **slot = garbage ? &p->garbage : &p->objects;
	struct agg_types *dst;
	struct proto_type_count tc;
	size_t off = 0, n;
	uint32_t i, j;

	(void)a;
	if (*slot == NULL && (*slot = calloc(1, sizeof **slot)) == NULL)
		return -ENOMEM;
	dst = *slot;
	dst->total = t->total;
	dst->n = 0;
	/* Keep the AGG_MAX_TYPES largest, sorted by insertion. */
	while (proto_types_next(t, &off, &tc) == 1) {
		for (i = 0; i < dst->n && dst->e[i].count >= tc.count; i++)
			;
		if (i >= AGG_MAX_TYPES)
			continue;
		if (dst->n < AGG_MAX_TYPES)
			dst->n++;
		for (j = dst->n - 1; j > i; j--)
			dst->e[j] = dst->e[j - 1];
		n = tc.name.len < PROTO_MAX_ID ? tc.name.len : PROTO_MAX_ID;
		dst->e[i].count = tc.count;
		memcpy(dst->e[i].name, tc.name.ptr, n);
		dst->e[i].name[n] = '\0';
	}
	return 0;
}

void agg_bye(struct agg *a, struct agg_proc *p, const struct proto_bye *b)
{
	agg_counters(a, p, &b->counters);
	agg_set_ended(a, p, AGG_ENDED, agg_proc_real(p, b->mono_ns));
	if (p->state == AGG_ENDED) {
		agg_hook_fold(a, p);
		agg_proc_fold(p);
	}
}

int agg_disconnect(struct agg *a, struct agg_proc *p)
{
	if (p->nconn > 0)
		p->nconn--;
	if (p->nconn > 0 || p->state != AGG_LIVE)
		return 0;
	agg_set_ended(a, p, AGG_LOST, a->now_real);
	return 1;
}

unsigned agg_expire(struct agg *a)
{
	struct agg_run *r, *next;
	struct agg_sum *s;
	unsigned n = 0;
	const struct agg_proc *p;

	for (r = LIST_FIRST(&a->runs); r != NULL; r = next) {
		next = LIST_NEXT(r, link);
		TAILQ_FOREACH(p, &r->procs, link)
			if (p->nconn != 0)
				break;
		if (r->nlive > 0 || p != NULL ||
		    a->now_real - r->last_end < a->cfg.run_expiry_s)
			continue;
		if (a->expired == NULL && (a->expired = agg_sum_new()) == NULL)
			return n;
		if ((s = agg_sum_new()) == NULL)
			return n;
		agg_sum_run(a, r, s);
		s->nlive = 0;
		if (a->hooks.forget != NULL)
			TAILQ_FOREACH(p, &r->procs, link)
				a->hooks.forget(a->hooks.arg, a, p);
		agg_sum_merge(a->expired, s);
		agg_sum_free(s);
		LIST_REMOVE(r, link);
		a->nruns--;
		agg_run_free(r);
		n++;
	}
	return n;
}

/*
 * A process's role (agg_proc_role: master, worker or child) and the link
 * between an exec'd process and its monitored parent that decides it.
 */

/* Bytes of p's argv strings, NULs included. */
static size_t agg_argv_len(const struct agg_proc *p)
{
	size_t off = 0;
	uint32_t i;

	for (i = 0; i < p->argc; i++)
		off += strlen(p->argv + off) + 1;
	return off;
}

/*
 * Whether exec'd process c, child of monitored process par, runs par's
 * program as a worker: multiprocessing's spawn start method (uvicorn
 * --workers, spawn pools) ends its -c command with
 * "--multiprocessing-fork", and a program re-executing itself has its
 * parent's argv. The resource tracker and the forkserver
 * ("-c 'from multiprocessing.resource_tracker import main; ...'") have
 * neither, so they stay children; so does any other subprocess.
 */
static int agg_is_spawned(const struct agg_proc *c,
    const struct agg_proc *par)
{
	size_t off = 0, len = agg_argv_len(c);
	uint32_t i;

	if (c->origin != ORIGIN_EXEC || c->ppid != par->pid || c == par)
		return 0;
	for (i = 0; i < c->argc; off += strlen(c->argv + off) + 1, i++)
		if (strcmp(c->argv + off, "--multiprocessing-fork") == 0)
			return 1;
	return c->argc > 0 && c->argc == par->argc &&
	    len == agg_argv_len(par) && memcmp(c->argv, par->argv, len) == 0;
}

/* Sets the spawned flag of new p from its parent in run r, and of its
 * exec'd children that said HELLO before it did. */
static void agg_role_link(struct agg_run *r, struct agg_proc *p)
{
	struct agg_proc *q;

	TAILQ_FOREACH(q, &r->procs, link) {
		if (q->pid == p->ppid)
			p->spawned = (uint8_t)agg_is_spawned(p, q);
		if (q->ppid == p->pid && q->origin == ORIGIN_EXEC)
			q->spawned = (uint8_t)agg_is_spawned(q, p);
	}
}

enum agg_role agg_proc_role(const struct agg_proc *p)
{
	return p->origin == ORIGIN_FORK || p->spawned ? AGG_ROLE_WORKER :
	    p->origin == ORIGIN_EXEC ? AGG_ROLE_CHILD : AGG_ROLE_MASTER;
}

const char *agg_role_name(enum agg_role r)
{
	static const char *const names[AGG_NROLES] = {
		[AGG_ROLE_MASTER] = "master", [AGG_ROLE_WORKER] = "worker",
		[AGG_ROLE_CHILD] = "child" };

	return (unsigned)r < AGG_NROLES ? names[r] : "unknown";
}

/*
 * The memory of a process as gcmond reads it from outside (smaps_rollup,
 * through agents.c): its last reading, the few before it, and the private
 * memory its old-generation collections unshared from its parent
 * (agg_mem_read). The caller says when it read.
 */

uint64_t agg_mem_shared(const struct agg_mem *m)
{
	return m->shared_clean_bytes + m->shared_dirty_bytes;
}

uint64_t agg_mem_private(const struct agg_mem *m)
{
	return m->private_clean_bytes + m->private_dirty_bytes;
}

/* Its collections that trace the old objects (gcmodel_traces_old): on
 * classic its gen 2s, on incremental its increments too. */
static uint64_t agg_gen2_count(const struct agg_proc *p)
{
	uint64_t n = 0;
	unsigned g;

	for (g = 0; g < p->ngen; g++)
		if (gcmodel_traces_old(p->gc_model, g, p->ngen))
			n += p->c[g].count;
	return n;
}

int agg_mem_due(const struct agg_proc *p)
{
	return p->mem_state == AGG_MEM_READ && p->nmem_reads > 0 &&
	    agg_gen2_count(p) > p->mem_gen2;
}

/* Private bytes of the last read of p before mono_ns (the oldest kept
 * when none is). p has been read at least once. */
static uint64_t agg_mem_before(const struct agg_proc *p, uint64_t mono_ns)
{
	unsigned n = p->nmem_reads < AGG_MEM_READS ? p->nmem_reads :
	    AGG_MEM_READS, i, k = 0;

	for (i = 1; i <= n; i++) {
		k = (p->nmem_reads - i) % AGG_MEM_READS;
		if (p->mem_reads[k].mono_ns < mono_ns)
			break;
	}
	return p->mem_reads[k].private_bytes;
}

void agg_mem_read(struct agg *a, struct agg_proc *p, const struct agg_mem *m,
    uint64_t mono_ns, int err, int quiet)
{
	uint64_t before, after = agg_mem_private(m);
	unsigned k;

	(void)a;
	if (err == -EACCES || err == -EPERM) {
		p->mem_state = AGG_MEM_REFUSED;
		return;
	}
	if (err < 0)
		return;
	if (!quiet) {
		/* Pages half copied: the figures, not a before or after. */
		p->mem = *m;
		p->mem_state = AGG_MEM_READ;
		return;
	}
	if (agg_mem_due(p) && p->origin == ORIGIN_FORK) {
		/* Its start unknown (the ring dropped the event): the last
		 * read is the best "before" there is. */
		before = agg_mem_before(p, p->mem_gc_start_ns != 0 ?
		    p->mem_gc_start_ns : UINT64_MAX);
		if (after > before)
			p->unshared_by_gc_bytes += after - before;
	}
	k = p->nmem_reads++ % AGG_MEM_READS;
	p->mem_reads[k].mono_ns = mono_ns;
	p->mem_reads[k].private_bytes = after;
	p->mem = *m;
	p->mem_gen2 = agg_gen2_count(p);
	p->mem_gc_start_ns = 0;
	p->mem_state = AGG_MEM_READ;
}

/*
 * The figures derived from the aggregates, each in one place:
 * percentiles of a process, a histogram or a sum, totals over
 * generations, mean pause, GC share of wall time, processes by start.
 * Pure functions of agg.h's data.
 */

const double agg_pcts[AGG_NPCTS] = PROTO_PCTS;

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

unsigned agg_sum_model(const struct agg_sum *s)
{
	return gcmodel_of_bits(s->models);
}

void agg_compact_pcts_ms(const struct hist_compact *h, unsigned n,
    double out[AGG_NPCTS])
{
	unsigned i;

	for (i = 0; i < AGG_NPCTS; i++)
		out[i] = (double)hist_compact_percentile(h, n, agg_pcts[i]) /
		    1e6;
}

void agg_sum_pcts_ms(const struct agg_sum *s, double out[AGG_NPCTS])
{
	agg_compact_pcts_ms(s->hist, s->ngen, out);
}

void agg_sum_gen_pcts_ms(const struct agg_sum *s, unsigned g,
    double out[AGG_NPCTS])
{
	agg_compact_pcts_ms(&s->hist[g], 1, out);
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

	LIST_FOREACH(it, &a->runs, link)
		if (r == NULL || it == r)
			cnt += it->nproc;
	if ((v = malloc((cnt ? cnt : 1) * sizeof *v)) == NULL)
		return NULL;
	*n = 0;
	for (p = agg_proc_next(a, r, NULL); p != NULL && *n < cnt;
	    p = agg_proc_next(a, r, p))
		v[(*n)++] = p;
	qsort(v, *n, sizeof *v, agg_by_start);
	return v;
}
