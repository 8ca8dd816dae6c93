/*
 * metrics.c: renders gcmond's aggregates as Prometheus text 0.0.4 or
 * OpenMetrics text 1.0.0 (metrics.h), and keeps the figures of
 * processes agg.c lets go so that counters never go backwards. Called
 * by http.c (render) and by agg.c's hooks (fold, forget). Never does
 * I/O, never reads a clock, never prints.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gcmodel.h"
#include "metrics.h"
#include "requests.h"
#include "service.h"

enum { METRICS_NROLES = 3 };

/* The classic buckets, in seconds (10 us to 10 s). */
static const double metrics_le_s[] = {
	1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2,
	2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10
};

#define METRICS_NLE	(sizeof metrics_le_s / sizeof metrics_le_s[0])

/* What the request families print for one route of a key
 * (--metrics-routes): counted at render, so additive. */
struct metrics_req_series {
	uint64_t requests, delayed;
	uint64_t count, sum_ns;		/* of the GC delay histogram */
	uint64_t le[METRICS_NLE];	/* its buckets, cumulative */
};

struct metrics_route {
	char name[SHM_ROUTE_NAME_MAX + 1];
	struct metrics_req_series retired;	/* processes let go */
};

struct metrics_key {
	char service[METRICS_SERVICE_MAX];
	const char *role;		/* agg_proc_role's, static */
	struct agg_sum *retired;	/* figures of processes let go */
	struct req_totals *req_retired;	/* ... their requests */
	struct metrics_route *route;	/* --metrics-routes: nroute, in the
					 * order first seen; never shrinks */
	unsigned nroute, route_cap;
};

struct metrics {
	struct metrics_config cfg;
	unsigned nkeys;
	struct metrics_key keys[METRICS_MAX_KEYS];
};

/* What one render sees of the live aggregates, per key. */
struct metrics_view {
	struct agg_sum *now[METRICS_MAX_KEYS];	/* processes in agg */
	struct req_totals *req_now[METRICS_MAX_KEYS];	/* their requests */
	/* --metrics-routes: by the key's route index, nroute_now of them */
	struct metrics_req_series *route_now[METRICS_MAX_KEYS];
	unsigned nroute_now[METRICS_MAX_KEYS];
	uint64_t live_max_ns[METRICS_MAX_KEYS][PROTO_MAX_GEN];
	unsigned nlive[METRICS_MAX_KEYS];
	uint8_t ngen[METRICS_MAX_KEYS];
};

struct metrics_buf {
	char *p;
	size_t len, cap;
	int err;
};

struct metrics *metrics_new(const struct metrics_config *cfg)
{
	struct metrics *m = calloc(1, sizeof *m);

	if (m != NULL && cfg != NULL)
		m->cfg = *cfg;
	return m;
}

void metrics_free(struct metrics *m)
{
	unsigned i;

	if (m == NULL)
		return;
	for (i = 0; i < m->nkeys; i++) {
		agg_sum_free(m->keys[i].retired);
		free(m->keys[i].req_retired);
		free(m->keys[i].route);
	}
	free(m);
}

/* The key of p: found, or added (service "other" once the table is
 * nearly full, so that every role still has room). Never fails: the
 * table is fixed-size. */
static unsigned metrics_key_of(struct metrics *m, const struct agg_proc *p)
{
	char svc[METRICS_SERVICE_MAX];
	const char *role = agg_role_name(agg_proc_role(p));
	unsigned i;

	service_name(p, svc, sizeof svc);
	for (;;) {
		for (i = 0; i < m->nkeys; i++)
			if (m->keys[i].role == role &&
			    strcmp(m->keys[i].service, svc) == 0)
				return i;
		if (m->nkeys < METRICS_MAX_KEYS - METRICS_NROLES ||
		    strcmp(svc, "other") == 0)
			break;
		snprintf(svc, sizeof svc, "other");
	}
	i = m->nkeys++;
	snprintf(m->keys[i].service, sizeof m->keys[i].service, "%s", svc);
	m->keys[i].role = role;
	return i;
}

/* A zeroed request total, or NULL. */
static struct req_totals *metrics_req_new(void)
{
	return calloc(1, sizeof(struct req_totals));	/* zero is empty */
}

/* The top of the last whole bucket at or below le_s, the value whose
 * count_le is exact (so additive across processes): 0 when no bucket
 * lies wholly below it. */
static uint64_t metrics_le_edge_ns(double le_s)
{
	uint64_t v_ns = (uint64_t)(le_s * 1e9 + 0.5), lo, hi;

	hist_bucket_range(hist_bucket_of(v_ns), &lo, &hi);
	if (hi == v_ns)
		return v_ns;
	return lo == 0 ? 0 : lo - 1;
}

/* The index of route name among key k's (--metrics-routes): found, or
 * added while the key has fewer than cfg.routes names besides "other",
 * else "other"'s (added whatever the count: the bound is N named routes
 * and "other"). -ENOMEM. */
static int metrics_route_of(struct metrics *m, unsigned k, const char *name)
{
	struct metrics_key *key = &m->keys[k];
	struct metrics_route *nr;
	unsigned i, cap, other;

	for (;;) {
		for (other = 0, i = 0; i < key->nroute; i++) {
			if (strcmp(key->route[i].name, name) == 0)
				return (int)i;
			other |= strcmp(key->route[i].name, "other") == 0;
		}
		if (key->nroute - other < m->cfg.routes ||
		    strcmp(name, "other") == 0)
			break;
		name = "other";
	}
	if (key->nroute == key->route_cap) {
		cap = key->route_cap ? key->route_cap * 2 : 8;
		if ((nr = realloc(key->route, cap * sizeof *nr)) == NULL)
			return -ENOMEM;
		key->route = nr;
		key->route_cap = cap;
	}
	nr = &key->route[key->nroute];
	memset(nr, 0, sizeof *nr);
	snprintf(nr->name, sizeof nr->name, "%s", name);
	return (int)key->nroute++;
}

static void metrics_req_series_add(struct metrics_req_series *s,
    const struct req_route *rt)
{
	uint64_t v_ns;
	unsigned i;

	s->requests += rt->requests;
	s->delayed += rt->delayed;
	s->count += rt->delay.count;
	s->sum_ns += rt->delay.sum_ns;
	for (i = 0; i < METRICS_NLE; i++)
		if ((v_ns = metrics_le_edge_ns(metrics_le_s[i])) != 0)
			s->le[i] += hist_compact_count_le(&rt->delay, 1, v_ns);
}

/* Route i of p, the series it adds to in key k: the key's retired
 * (now == NULL) or the view's (*now, *nnow grown as the key's routes
 * grow). 0 or -ENOMEM. */
static int metrics_route_add(struct metrics *m, unsigned k,
    const struct req_proc *rp, unsigned i, struct metrics_req_series **now,
    unsigned *nnow)
{
	struct metrics_req_series *ns;
	int j;

	if ((j = metrics_route_of(m, k, requests_route_name(rp, i))) < 0)
		return j;
	if (now == NULL) {
		metrics_req_series_add(&m->keys[k].route[j].retired,
		    rp->route[i]);
		return 0;
	}
	if ((unsigned)j >= *nnow) {
		if ((ns = realloc(*now, m->keys[k].route_cap *
		    sizeof *ns)) == NULL)
			return -ENOMEM;
		memset(ns + *nnow, 0, (m->keys[k].route_cap - *nnow) *
		    sizeof *ns);
		*now = ns;
		*nnow = m->keys[k].route_cap;
	}
	metrics_req_series_add(&(*now)[j], rp->route[i]);
	return 0;
}

/* Every route of p that served requests into key k's series (see
 * metrics_route_add). 0 or -ENOMEM. */
static int metrics_routes_add(struct metrics *m, unsigned k,
    const struct req_proc *rp, struct metrics_req_series **now,
    unsigned *nnow)
{
	unsigned i;
	int err;

	if (m->cfg.routes == 0)
		return 0;
	for (i = 0; i < SHM_ROUTES; i++)
		if (rp->route[i] != NULL && rp->route[i]->requests > 0 &&
		    (err = metrics_route_add(m, k, rp, i, now, nnow)) < 0)
			return err;
	return 0;
}

static struct agg_sum *metrics_retired(struct metrics *m,
    const struct agg_proc *p)
{
	struct metrics_key *k = &m->keys[metrics_key_of(m, p)];

	if (k->retired == NULL)
		k->retired = agg_sum_new();
	return k->retired;		/* NULL: out of memory, figures lost */
}

/* agg hook: p's histograms leave it for its run's. */
static void metrics_on_fold(void *arg, const struct agg *a,
    const struct agg_proc *p)
{
	struct agg_sum *s = metrics_retired(arg, p);
	unsigned g;

	(void)a;
	if (s == NULL)
		return;
	for (g = 0; g < p->ngen; g++)
		(void)hist_compact_merge(&s->hist[g], &p->hist[g]);
	if (p->ngen > s->ngen)
		s->ngen = p->ngen;
}

/* agg hook: p's record is freed; its counters (and any histogram not
 * folded yet) become its key's. */
static void metrics_on_forget(void *arg, const struct agg *a,
    const struct agg_proc *p)
{
	struct metrics *m = arg;
	struct agg_sum *s = metrics_retired(m, p);
	struct metrics_key *k;
	unsigned ki;

	if (s != NULL)
		agg_sum_own(a, p, s);
	if (p->requests == NULL || p->requests->requests == 0)
		return;
	k = &m->keys[ki = metrics_key_of(m, p)];
	/* Out of memory: figures lost. */
	(void)metrics_routes_add(m, ki, p->requests, NULL, NULL);
	if (k->req_retired == NULL && (k->req_retired = metrics_req_new()) == NULL)
		return;
	requests_totals_add(p->requests, k->req_retired);
}

void metrics_watch(struct metrics *m, struct agg *a)
{
	a->hooks.fold = metrics_on_fold;
	a->hooks.forget = metrics_on_forget;
	a->hooks.arg = m;
}

/* The q of one element of an Accept list ("type;version=1.0.0;q=0.5"),
 * 1 when absent. */
static double metrics_accept_q(const char *s, size_t n)
{
	const char *q;

	for (q = s; (q = memchr(q, ';', n - (size_t)(q - s))) != NULL; ) {
		q++;
		q += strspn(q, " ");
		if ((size_t)(q - s) + 2 <= n && q[0] == 'q' && q[1] == '=')
			return strtod(q + 2, NULL);
	}
	return 1;
}

enum metrics_format metrics_negotiate(const char *accept)
{
	const char *s = accept;
	static const char om[] = "application/openmetrics-text";
	size_t n;

	while (s != NULL && *s != '\0') {
		s += strspn(s, " ,");
		n = strcspn(s, ",");
		if (n >= sizeof om - 1 && strncasecmp(s, om, sizeof om - 1) == 0
		    && metrics_accept_q(s, n) > 0)
			return METRICS_OPENMETRICS;
		s += n;
	}
	return METRICS_PROMETHEUS;
}

const char *metrics_content_type(enum metrics_format f)
{
	return f == METRICS_OPENMETRICS ?
	    "application/openmetrics-text; version=1.0.0; charset=utf-8" :
	    "text/plain; version=0.0.4; charset=utf-8";
}

const char *metrics_fmt_double(double v, char *buf, size_t len)
{
	int prec;

	if (v != v)
		snprintf(buf, len, "NaN");
	else if (v > 1.7976931348623157e308)
		snprintf(buf, len, "+Inf");
	else if (v < -1.7976931348623157e308)
		snprintf(buf, len, "-Inf");
	else
		for (prec = 1; prec <= 17; prec++) {
			snprintf(buf, len, "%.*g", prec, v);
			if (strtod(buf, NULL) == v)
				break;
		}
	/* 10, not 1e+01: whole numbers below 2^53 in full. */
	if (strchr(buf, 'e') != NULL && v >= 1 && v < 9007199254740992.0 &&
	    v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu", (unsigned long long)v);
	return buf;
}

/* ---- output ------------------------------------------------------------ */

static void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t want;
	char *np;
	int n;

	if (b->err)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->err = -EINVAL;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		want = b->cap * 2 + (size_t)n + 1;
		if ((np = realloc(b->p, want)) == NULL) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = want;
	}
}

/* A label value, escaped as both formats want (\\, \", \n). */
static void metrics_put_value(struct metrics_buf *b, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\' || *s == '"')
			metrics_printf(b, "\\%c", *s);
		else if (*s == '\n')
			metrics_printf(b, "\\n");
		else
			metrics_printf(b, "%c", *s);
	}
}

/* HELP and TYPE of a family. OpenMetrics names a counter family
 * without its _total suffix; Prometheus 0.0.4 with it. */
static void metrics_family(struct metrics_buf *b, enum metrics_format f,
    const char *name, const char *type, const char *help)
{
	size_t n = strlen(name);

	if (f == METRICS_OPENMETRICS && strcmp(type, "counter") == 0 &&
	    n > 6 && strcmp(name + n - 6, "_total") == 0)
		n -= 6;
	metrics_printf(b, "# HELP %.*s %s\n# TYPE %.*s %s\n", (int)n, name,
	    help, (int)n, name, type);
}

/* name{service="..",role=".."[,generation="g"][,le=".."]} */
static void metrics_series(struct metrics_buf *b, const char *name,
    const struct metrics_key *k, int gen, const char *le)
{
	metrics_printf(b, "%s{service=\"", name);
	metrics_put_value(b, k->service);
	metrics_printf(b, "\",role=\"%s\"", k->role);
	if (gen >= 0)
		metrics_printf(b, ",generation=\"%d\"", gen);
	if (le != NULL)
		metrics_printf(b, ",le=\"%s\"", le);
	metrics_printf(b, "} ");
}

/* name{service="..",role="..",route=".."[,le=".."]} */
static void metrics_series_route(struct metrics_buf *b, const char *name,
    const struct metrics_key *k, const char *route, const char *le)
{
	metrics_printf(b, "%s{service=\"", name);
	metrics_put_value(b, k->service);
	metrics_printf(b, "\",role=\"%s\",route=\"", k->role);
	metrics_put_value(b, route);
	metrics_printf(b, "\"");
	if (le != NULL)
		metrics_printf(b, ",le=\"%s\"", le);
	metrics_printf(b, "} ");
}

/* ---- the view of one render -------------------------------------------- */

static void metrics_view_free(struct metrics_view *v)
{
	unsigned i;

	for (i = 0; i < METRICS_MAX_KEYS; i++) {
		agg_sum_free(v->now[i]);
		free(v->req_now[i]);
		free(v->route_now[i]);
	}
	free(v);
}

/* Sums every process agg holds by key, and what is live. */
static struct metrics_view *metrics_view_new(struct metrics *m,
    const struct agg *a)
{
	struct metrics_view *v = calloc(1, sizeof *v);
	const struct agg_run *r;
	const struct agg_proc *p;
	unsigned k, g;

	if (v == NULL)
		return NULL;
	LIST_FOREACH(r, &a->runs, link)
		TAILQ_FOREACH(p, &r->procs, link) {
			k = metrics_key_of(m, p);
			if (v->now[k] == NULL &&
			    (v->now[k] = agg_sum_new()) == NULL) {
				metrics_view_free(v);
				return NULL;
			}
			agg_sum_own(a, p, v->now[k]);
			if (p->requests != NULL && p->requests->requests > 0) {
				if (v->req_now[k] == NULL &&
				    (v->req_now[k] = metrics_req_new()) == NULL) {
					metrics_view_free(v);
					return NULL;
				}
				requests_totals_add(p->requests, v->req_now[k]);
				if (metrics_routes_add(m, k, p->requests,
				    &v->route_now[k], &v->nroute_now[k]) < 0) {
					metrics_view_free(v);
					return NULL;
				}
			}
			if (p->state != AGG_LIVE)
				continue;
			v->nlive[k]++;
			for (g = 0; g < p->ngen; g++)
				if (p->c[g].max_pause_ns >
				    v->live_max_ns[k][g])
					v->live_max_ns[k][g] =
					    p->c[g].max_pause_ns;
		}
	for (k = 0; k < m->nkeys; k++) {
		if (v->now[k] != NULL)
			v->ngen[k] = v->now[k]->ngen;
		if (m->keys[k].retired != NULL &&
		    m->keys[k].retired->ngen > v->ngen[k])
			v->ngen[k] = m->keys[k].retired->ngen;
	}
	return v;
}

/* Generation g's part of one of a key's sums (retired or now); NULL
 * when that part is empty. */
static const struct agg_gen_sum *metrics_gen_part(const struct agg_sum *s,
    unsigned g)
{
	return s != NULL ? &s->gen[g] : NULL;
}

enum metrics_field { MF_COLLECTIONS, MF_COLLECTED, MF_UNCOLLECTABLE };

static uint64_t metrics_field(const struct agg_gen_sum *gs,
    enum metrics_field f)
{
	if (gs == NULL)
		return 0;
	return f == MF_COLLECTIONS ? gs->collections :
	    f == MF_COLLECTED ? gs->collected : gs->uncollectable;
}

static void metrics_counter_by_gen(struct metrics_buf *b,
    const struct metrics *m, const struct metrics_view *v,
    const char *name, enum metrics_field f)
{
	unsigned k, g;

	for (k = 0; k < m->nkeys; k++)
		for (g = 0; g < v->ngen[k]; g++) {
			metrics_series(b, name, &m->keys[k], (int)g, NULL);
			metrics_printf(b, "%llu\n", (unsigned long long)(
			    metrics_field(metrics_gen_part(m->keys[k].retired,
			    g), f) + metrics_field(metrics_gen_part(v->now[k],
			    g), f)));
		}
}

/* Values counted at le: the pauses in buckets wholly at or below it
 * (exact, so additive across the retired and live parts: a bucket
 * never goes backwards when a process moves from one to the other). */
static uint64_t metrics_count_le(const struct agg_sum *s, unsigned g,
    double le_s)
{
	uint64_t v_ns = metrics_le_edge_ns(le_s);

	if (s == NULL || v_ns == 0)
		return 0;
	return hist_compact_count_le(&s->hist[g], 1, v_ns);
}

static uint64_t metrics_hist_u64(const struct agg_sum *s, unsigned g,
    int sum)
{
	if (s == NULL)
		return 0;
	return sum ? s->hist[g].sum_ns : s->hist[g].count;
}

static void metrics_histogram(struct metrics_buf *b, const struct metrics *m,
    const struct metrics_view *v)
{
	const struct agg_sum *old, *now;
	char le[32];
	unsigned k, g, i;

	for (k = 0; k < m->nkeys; k++) {
		old = m->keys[k].retired;
		now = v->now[k];
		for (g = 0; g < v->ngen[k]; g++) {
			for (i = 0; i < sizeof metrics_le_s /
			    sizeof metrics_le_s[0]; i++) {
				metrics_series(b, "cpython_gc_pause_seconds_bucket",
				    &m->keys[k], (int)g, metrics_fmt_double(
				    metrics_le_s[i], le, sizeof le));
				metrics_printf(b, "%llu\n", (unsigned long long)
				    (metrics_count_le(old, g, metrics_le_s[i]) +
				    metrics_count_le(now, g, metrics_le_s[i])));
			}
			metrics_series(b, "cpython_gc_pause_seconds_bucket",
			    &m->keys[k], (int)g, "+Inf");
			metrics_printf(b, "%llu\n", (unsigned long long)(
			    metrics_hist_u64(old, g, 0) +
			    metrics_hist_u64(now, g, 0)));
			metrics_series(b, "cpython_gc_pause_seconds_count",
			    &m->keys[k], (int)g, NULL);
			metrics_printf(b, "%llu\n", (unsigned long long)(
			    metrics_hist_u64(old, g, 0) +
			    metrics_hist_u64(now, g, 0)));
			metrics_series(b, "cpython_gc_pause_seconds_sum",
			    &m->keys[k], (int)g, NULL);
			metrics_printf(b, "%s\n", metrics_fmt_double((double)(
			    metrics_hist_u64(old, g, 1) +
			    metrics_hist_u64(now, g, 1)) / 1e9, le, sizeof le));
		}
	}
}

/* A counter by (service, role) of the uint64_t at field of struct agg_sum:
 * what the key's ended processes left (retired) plus its live ones, so
 * that it never goes back when a process ends. */
static void metrics_kept_counter(struct metrics_buf *b, enum metrics_format f,
    const struct metrics *m, const struct metrics_view *v, const char *name,
    const char *help, size_t field)
{
	const struct agg_sum *sums[2];
	uint64_t n, x;
	unsigned k, i;

	metrics_family(b, f, name, "counter", help);
	for (k = 0; k < m->nkeys; k++) {
		sums[0] = m->keys[k].retired;
		sums[1] = v->now[k];
		for (n = 0, i = 0; i < 2; i++) {
			if (sums[i] == NULL)
				continue;
			memcpy(&x, (const char *)sums[i] + field, sizeof x);
			n += x;
		}
		metrics_series(b, name, &m->keys[k], -1, NULL);
		metrics_printf(b, "%llu\n", (unsigned long long)n);
	}
}

/* Gauges and counters by (service, role): processes live now, their
 * RSS, events dropped, memory unshared. */
static void metrics_by_role(struct metrics_buf *b, enum metrics_format f,
    const struct metrics *m, const struct metrics_view *v)
{
	unsigned k;

	metrics_family(b, f, "cpython_gc_processes", "gauge",
	    "Monitored Python processes alive now.");
	for (k = 0; k < m->nkeys; k++) {
		metrics_series(b, "cpython_gc_processes", &m->keys[k], -1, NULL);
		metrics_printf(b, "%u\n", v->nlive[k]);
	}
	metrics_family(b, f, "cpython_gc_resident_memory_bytes", "gauge",
	    "Resident set of the live processes, summed (last sample).");
	for (k = 0; k < m->nkeys; k++) {
		metrics_series(b, "cpython_gc_resident_memory_bytes",
		    &m->keys[k], -1, NULL);
		metrics_printf(b, "%llu\n", (unsigned long long)(v->now[k] !=
		    NULL ? v->now[k]->rss_bytes : 0));
	}
	metrics_kept_counter(b, f, m, v, "cpython_gc_dropped_events_total",
	    "Collections whose detail was dropped (ring full); still in "
	    "cpython_gc_collections_total, not in cpython_gc_pause_seconds.",
	    offsetof(struct agg_sum, dropped));
	metrics_kept_counter(b, f, m, v, "cpython_gc_unshared_bytes_total",
	    "Private memory forked workers' gen-2 collections copied from "
	    "their parent (smaps_rollup), ended workers included.",
	    offsetof(struct agg_sum, unshared_by_gc_bytes));
}

static void metrics_pause_max(struct metrics_buf *b, enum metrics_format f,
    const struct metrics *m, const struct metrics_view *v)
{
	char num[32];
	unsigned k, g;

	metrics_family(b, f, "cpython_gc_pause_max_seconds", "gauge",
	    "Longest pause of any live process since it started.");
	for (k = 0; k < m->nkeys; k++)
		for (g = 0; g < v->ngen[k] && v->nlive[k] > 0; g++) {
			metrics_series(b, "cpython_gc_pause_max_seconds",
			    &m->keys[k], (int)g, NULL);
			metrics_printf(b, "%s\n", metrics_fmt_double(
			    (double)v->live_max_ns[k][g] / 1e9, num,
			    sizeof num));
		}
}

/* The collector model of each key's processes that gcmond still holds
 * (gcmodel.h: classic, incremental, free-threaded, or mixed), as a label
 * of its own: the generation labels of the other series stay numbers. */
static void metrics_model_info(struct metrics_buf *b, enum metrics_format f,
    const struct metrics *m, const struct metrics_view *v)
{
	unsigned k;

	metrics_family(b, f, "cpython_gc_model_info", "gauge",
	    "The collector model of the service's processes: classic, "
	    "incremental (3.14.0-3.14.4), free-threaded, or mixed.");
	for (k = 0; k < m->nkeys; k++) {
		if (v->now[k] == NULL || v->now[k]->nproc == 0)
			continue;
		metrics_printf(b, "cpython_gc_model_info{service=\"");
		metrics_put_value(b, m->keys[k].service);
		metrics_printf(b, "\",role=\"%s\",model=\"%s\"} 1\n",
		    m->keys[k].role, gcmodel_name(agg_sum_model(v->now[k])));
	}
}

/* Per-process series (--metrics-per-process N): the first N live
 * processes, in the order agg holds them. */
static void metrics_per_process(struct metrics_buf *b, enum metrics_format f,
    const struct metrics *m, const struct agg *a)
{
	const struct agg_run *r;
	const struct agg_proc *p;
	char svc[METRICS_SERVICE_MAX], num[32];
	unsigned n = 0, g;

	if (m->cfg.per_process == 0)
		return;
	metrics_family(b, f, "cpython_gc_process_pause_max_seconds", "gauge",
	    "Longest pause of one live process since it started "
	    "(--metrics-per-process).");
	LIST_FOREACH(r, &a->runs, link)
		TAILQ_FOREACH(p, &r->procs, link) {
			if (p->state != AGG_LIVE)
				continue;
			if (n++ >= m->cfg.per_process)
				return;
			service_name(p, svc, sizeof svc);
			for (g = 0; g < p->ngen; g++) {
				metrics_printf(b, "cpython_gc_process_pause_max_"
				    "seconds{service=\"");
				metrics_put_value(b, svc);
				/* Per process only: a label per container or
				 * pod is the cardinality the user asked for. */
				if (p->container != NULL) {
					metrics_printf(b, "\",container=\"");
					metrics_put_value(b, p->container);
				}
				if (p->pod != NULL) {
					metrics_printf(b, "\",pod=\"");
					metrics_put_value(b, p->pod);
				}
				metrics_printf(b, "\",role=\"%s\",pid=\"%u\","
				    "generation=\"%u\"} %s\n", agg_role_name(agg_proc_role(p)),
				    (unsigned)p->pid, g, metrics_fmt_double(
				    (double)p->c[g].max_pause_ns / 1e9, num,
				    sizeof num));
			}
		}
}

static void metrics_health(struct metrics_buf *b, enum metrics_format f,
    const struct agg *a, const struct metrics_health *h)
{
	const struct {
		const char *name, *type, *help;
		uint64_t value;
	} rows[] = {
		{ "gcmond_connections", "gauge",
		  "Control clients connected to gcmond.", h ? h->connections : 0 },
		{ "gcmond_decode_errors_total", "counter",
		  "Peers closed for data that did not decode.",
		  h ? h->decode_errors : 0 },
		{ "gcmond_refused_peers_total", "counter",
		  "Peers refused (client cap reached, user not allowed).",
		  h ? h->refused : 0 },
		{ "gcmond_events_ingested_total", "counter",
		  "Collection events gcmond has taken in.", a->nevents },
		{ "gcmond_resident_memory_bytes", "gauge",
		  "gcmond's own resident set.", h ? h->rss_bytes : 0 },
		{ "gcmond_shared_areas", "gauge",
		  "Shared areas of monitored processes mapped now.",
		  h ? h->areas : 0 },
		{ "gcmond_shared_areas_refused_total", "counter",
		  "Area files refused (owner, layout, pid or start time).",
		  h ? h->areas_refused : 0 },
		{ "gcmond_shared_areas_refused_namespace_total", "counter",
		  "Area files refused because their claim of another PID "
		  "namespace did not check out (lock holder, NSpid, start "
		  "time).", h ? h->areas_refused_place : 0 },
		{ "gcmond_shared_areas_unseen", "gauge",
		  "Areas mapped now whose process is in a PID namespace "
		  "gcmond cannot see (no /proc figures).",
		  h ? h->areas_unseen : 0 },
		{ "gcmond_shared_areas_broken_total", "counter",
		  "Areas given up while read (truncated, inconsistent).",
		  h ? h->areas_broken : 0 },
	};
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		metrics_family(b, f, rows[i].name, rows[i].type, rows[i].help);
		metrics_printf(b, "%s %llu\n", rows[i].name,
		    (unsigned long long)rows[i].value);
	}
}

/* Requests (requests.h) by (service, role): counted, delayed by GC, and
 * the histogram of the GC time inside each; only keys that served any. */
static uint64_t metrics_req_le(const struct req_totals *t, double le_s)
{
	uint64_t v_ns = metrics_le_edge_ns(le_s);	/* whole buckets */

	if (t == NULL || v_ns == 0)
		return 0;
	return hist_count_le(&t->delay, v_ns);
}

/* The request families by (service, role, route) (--metrics-routes):
 * each key's routes, retired plus live. */
static void metrics_requests_by_route(struct metrics_buf *b,
    enum metrics_format f, const struct metrics *m,
    const struct metrics_view *v)
{
	static const char *const fam[] = { "cpython_gc_requests_total",
	    "cpython_gc_requests_delayed_total" };
	const struct metrics_req_series *old, *now;
	const struct metrics_key *key;
	char le[32];
	unsigned k, j, i, x;

#define MRR_SUM(field) ((unsigned long long)(old->field + \
	(now ? now->field : 0)))
	for (x = 0; x < 3; x++) {
		if (x == 0)
			metrics_family(b, f, fam[0], "counter",
			    "Requests the gcmon middlewares recorded.");
		else if (x == 1)
			metrics_family(b, f, fam[1], "counter",
			    "Requests a collection of their process delayed.");
		else
			metrics_family(b, f, "cpython_gc_request_delay_seconds",
			    "histogram", "GC time inside each request (0 for "
			    "those no collection hit).");
		for (k = 0; k < m->nkeys; k++)
			for (key = &m->keys[k], j = 0; j < key->nroute; j++) {
				old = &key->route[j].retired;
				now = j < v->nroute_now[k] ?
				    &v->route_now[k][j] : NULL;
				if (x < 2) {
					metrics_series_route(b, fam[x], key,
					    key->route[j].name, NULL);
					metrics_printf(b, "%llu\n", x == 0 ?
					    MRR_SUM(requests) :
					    MRR_SUM(delayed));
					continue;
				}
				for (i = 0; i < METRICS_NLE; i++) {
					metrics_series_route(b,
					    "cpython_gc_request_delay_seconds_"
					    "bucket", key, key->route[j].name,
					    metrics_fmt_double(metrics_le_s[i],
					    le, sizeof le));
					metrics_printf(b, "%llu\n",
					    MRR_SUM(le[i]));
				}
				metrics_series_route(b,
				    "cpython_gc_request_delay_seconds_bucket",
				    key, key->route[j].name, "+Inf");
				metrics_printf(b, "%llu\n", MRR_SUM(count));
				metrics_series_route(b,
				    "cpython_gc_request_delay_seconds_count",
				    key, key->route[j].name, NULL);
				metrics_printf(b, "%llu\n", MRR_SUM(count));
				metrics_series_route(b,
				    "cpython_gc_request_delay_seconds_sum",
				    key, key->route[j].name, NULL);
				metrics_printf(b, "%s\n", metrics_fmt_double(
				    (double)MRR_SUM(sum_ns) / 1e9, le,
				    sizeof le));
			}
	}
#undef MRR_SUM
}

static void metrics_requests(struct metrics_buf *b, enum metrics_format f,
    const struct metrics *m, const struct metrics_view *v)
{
	const struct req_totals *old, *now;
	char le[32];
	unsigned k, i;
	int any = 0;

	for (k = 0; k < m->nkeys; k++)
		any |= m->keys[k].req_retired != NULL || v->req_now[k] != NULL;
	if (!any)
		return;
	if (m->cfg.routes > 0) {
		metrics_requests_by_route(b, f, m, v);
		return;
	}
#define MR_SUM(field) ((unsigned long long)((old ? old->field : 0) + \
	(now ? now->field : 0)))
	metrics_family(b, f, "cpython_gc_requests_total", "counter",
	    "Requests the gcmon middlewares recorded.");
	for (k = 0; k < m->nkeys; k++) {
		old = m->keys[k].req_retired;
		now = v->req_now[k];
		if (old == NULL && now == NULL)
			continue;
		metrics_series(b, "cpython_gc_requests_total", &m->keys[k], -1,
		    NULL);
		metrics_printf(b, "%llu\n", MR_SUM(requests));
	}
	metrics_family(b, f, "cpython_gc_requests_delayed_total", "counter",
	    "Requests a collection of their process delayed.");
	for (k = 0; k < m->nkeys; k++) {
		old = m->keys[k].req_retired;
		now = v->req_now[k];
		if (old == NULL && now == NULL)
			continue;
		metrics_series(b, "cpython_gc_requests_delayed_total",
		    &m->keys[k], -1, NULL);
		metrics_printf(b, "%llu\n", MR_SUM(delayed));
	}
	metrics_family(b, f, "cpython_gc_request_delay_seconds", "histogram",
	    "GC time inside each request (0 for those no collection hit).");
	for (k = 0; k < m->nkeys; k++) {
		old = m->keys[k].req_retired;
		now = v->req_now[k];
		if (old == NULL && now == NULL)
			continue;
		for (i = 0; i < sizeof metrics_le_s / sizeof metrics_le_s[0]; i++) {
			metrics_series(b, "cpython_gc_request_delay_seconds_bucket",
			    &m->keys[k], -1, metrics_fmt_double(metrics_le_s[i],
			    le, sizeof le));
			metrics_printf(b, "%llu\n", (unsigned long long)(
			    metrics_req_le(old, metrics_le_s[i]) +
			    metrics_req_le(now, metrics_le_s[i])));
		}
		metrics_series(b, "cpython_gc_request_delay_seconds_bucket",
		    &m->keys[k], -1, "+Inf");
		metrics_printf(b, "%llu\n", MR_SUM(delay.count));
		metrics_series(b, "cpython_gc_request_delay_seconds_count",
		    &m->keys[k], -1, NULL);
		metrics_printf(b, "%llu\n", MR_SUM(delay.count));
		metrics_series(b, "cpython_gc_request_delay_seconds_sum",
		    &m->keys[k], -1, NULL);
		metrics_printf(b, "%s\n", metrics_fmt_double((double)
		    MR_SUM(delay.sum_ns) / 1e9, le, sizeof le));
	}
#undef MR_SUM
}

int metrics_render(struct metrics *m, const struct agg *a,
    const struct metrics_health *h, enum metrics_format f, char **out,
    size_t *len)
{
	struct metrics_buf b = { NULL, 0, 0, 0 };
	struct metrics_view *v;

	*out = NULL;
	*len = 0;
	if ((v = metrics_view_new(m, a)) == NULL)
		return -ENOMEM;
	if ((b.p = malloc(b.cap = 16384)) == NULL) {
		metrics_view_free(v);
		return -ENOMEM;
	}
	metrics_family(&b, f, "cpython_gc_collections_total", "counter",
	    "Collections, as gc.get_stats() counts them.");
	metrics_counter_by_gen(&b, m, v, "cpython_gc_collections_total",
	    MF_COLLECTIONS);
	metrics_family(&b, f, "cpython_gc_collected_objects_total", "counter",
	    "Objects the collections freed.");
	metrics_counter_by_gen(&b, m, v, "cpython_gc_collected_objects_total",
	    MF_COLLECTED);
	metrics_family(&b, f, "cpython_gc_uncollectable_objects_total",
	    "counter", "Objects found uncollectable.");
	metrics_counter_by_gen(&b, m, v,
	    "cpython_gc_uncollectable_objects_total", MF_UNCOLLECTABLE);
	metrics_family(&b, f, "cpython_gc_pause_seconds", "histogram",
	    "Pauses of the collections gcmond saw.");
	metrics_histogram(&b, m, v);
	metrics_pause_max(&b, f, m, v);
	metrics_by_role(&b, f, m, v);
	metrics_model_info(&b, f, m, v);
	metrics_requests(&b, f, m, v);
	metrics_per_process(&b, f, m, a);
	metrics_health(&b, f, a, h);
	if (f == METRICS_OPENMETRICS)
		metrics_printf(&b, "# EOF\n");
	metrics_view_free(v);
	if (b.err < 0) {
		free(b.p);
		return b.err;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}
