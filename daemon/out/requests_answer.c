/*
 * requests_answer.c: the "requests" control answer (doc/control.md,
 * gcmond(8)): what GC cost the requests of a process, a run or the host;
 * per route and per worker, latency percentiles as served and without the
 * GC time, the histogram of GC delay, the slowest requests with the
 * collections that hit them. Called by control.c. No I/O; reads the
 * aggregates (requests.c sums them), never changes them.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gcmodel.h"
#include "requests_answer.h"
#include "stacks_answer.h"

static const char *const req_pct_names[AGG_NPCTS] = {
	"p50_ms", "p90_ms", "p99_ms", "p99_9_ms" };
static const char *const req_pct_nogc_names[AGG_NPCTS] = {
	"p50_without_gc_ms", "p90_without_gc_ms", "p99_without_gc_ms",
	"p99_9_without_gc_ms" };
/* Upper edges of the GC delay histogram, ms (then +Inf). */
static const double req_delay_le_ms[] = { 0.1, 0.5, 1, 2, 5, 10, 20, 50,
	100, 200, 500, 1000 };
#define REQ_NDELAY_LE	(sizeof req_delay_le_ms / sizeof req_delay_le_ms[0])

static void req_set(json_t *o, const char *k, json_t *v)
{
	if (o != NULL)
		json_object_set_new(o, k, v);	/* NULL v: not set */
}

static json_t *req_delay_hist(const struct req_sum_route *sr)
{
	json_t *arr = json_array();
	unsigned i;

	if (arr == NULL)
		return NULL;
	json_array_append_new(arr, json_pack("{s:f,s:I}", "le_ms", 0.0,
	    "count", (json_int_t)(sr->requests - sr->delayed)));
	for (i = 0; i < REQ_NDELAY_LE; i++)
		json_array_append_new(arr, json_pack("{s:f,s:I}", "le_ms",
		    req_delay_le_ms[i], "count",
		    (json_int_t)hist_compact_count_le(&sr->delay, 1,
		    (uint64_t)(req_delay_le_ms[i] * 1e6))));
	json_array_append_new(arr, json_pack("{s:s,s:I}", "le_ms", "+Inf",
	    "count", (json_int_t)sr->requests));
	return arr;
}

/* The figures of one route (or of all): counts and percentile sets. */
static json_t *req_figures(const struct req_sum_route *sr, int with_hist)
{
	json_t *o = json_object();
	double served[AGG_NPCTS], nogc[AGG_NPCTS];
	unsigned i;

	if (o == NULL)
		return NULL;
	agg_compact_pcts_ms(&sr->served, 1, served);
	agg_compact_pcts_ms(&sr->without_gc, 1, nogc);
	req_set(o, "requests", json_integer((json_int_t)sr->requests));
	req_set(o, "delayed", json_integer((json_int_t)sr->delayed));
	req_set(o, "delayed_share", json_real(sr->requests ?
	    (double)sr->delayed / (double)sr->requests : 0));
	req_set(o, "gc_ms", json_real((double)sr->gc_ns / 1e6));
	req_set(o, "collections_waited", json_integer((json_int_t)sr->ngc));
	req_set(o, "errors", json_integer((json_int_t)sr->errors));
	req_set(o, "disconnects", json_integer((json_int_t)sr->disconnects));
	req_set(o, "streamed", json_integer((json_int_t)sr->streamed));
	req_set(o, "open_at_exit", json_integer((json_int_t)sr->open_at_exit));
	req_set(o, "mean_ms", json_real(hist_compact_mean(&sr->served) / 1e6));
	req_set(o, "max_ms", json_real((double)sr->served.max_ns / 1e6));
	req_set(o, "max_gc_ms", json_real((double)sr->delay.max_ns / 1e6));
	for (i = 0; i < AGG_NPCTS; i++) {
		req_set(o, req_pct_names[i], json_real(served[i]));
		req_set(o, req_pct_nogc_names[i], json_real(nogc[i]));
	}
	req_set(o, "gc_adds_p99_ms", json_real(served[2] > nogc[2] ?
	    served[2] - nogc[2] : 0));
	if (with_hist)
		req_set(o, "delay_histogram", req_delay_hist(sr));
	return o;
}

static json_t *req_flags_json(unsigned flags)
{
	json_t *arr = json_array();

	if (flags & SHM_REQ_ERROR)
		json_array_append_new(arr, json_string("error"));
	if (flags & SHM_REQ_DISCONNECT)
		json_array_append_new(arr, json_string("disconnect"));
	if (flags & SHM_REQ_STREAMED)
		json_array_append_new(arr, json_string("streamed"));
	if (flags & SHM_REQ_OPEN_AT_EXIT)
		json_array_append_new(arr, json_string("open_at_exit"));
	return arr;
}

static json_t *req_slow_json(const struct agg_proc *p,
    const struct req_slow *s)
{
	json_t *o = json_object(), *hits = json_array(), *h;
	unsigned i;

	for (i = 0; hits != NULL && i < s->nhits; i++) {
		const struct req_hit *x = &s->hit[i];

		h = json_pack("{s:i,s:f,s:f}", "generation",
		    (int)x->pause.generation,
		    "pause_ms", (double)x->pause.pause_ns / 1e6,
		    "offset_ms", x->pause.start_ns > s->start_ns ?
		    (double)(x->pause.start_ns - s->start_ns) / 1e6 : 0.0);
		if (h != NULL && x->have_stack)
			req_set(h, "stack", stacks_frames_json(p->stacks,
			    &x->stack, 8));
		json_array_append_new(hits, h);
	}
	req_set(o, "pid", json_integer((json_int_t)p->pid));
	req_set(o, "thread_id", json_integer((json_int_t)s->thread_id));
	req_set(o, "route", json_string(requests_route_name(p->requests,
	    s->route_id)));
	req_set(o, "status", json_integer((json_int_t)s->status));
	req_set(o, "flags", req_flags_json(s->flags));
	req_set(o, "start", json_real(agg_proc_real(p, s->start_ns)));
	req_set(o, "latency_ms", json_real((double)(s->end_ns - s->start_ns) /
	    1e6));
	req_set(o, "gc_ms", json_real((double)s->gc_ns / 1e6));
	req_set(o, "collections", json_integer((json_int_t)s->ngc));
	req_set(o, "hits", hits);
	return o;
}

json_t *requests_line_json(const struct agg_proc *p,
    const struct shm_request *r, const struct req_result *res)
{
	json_t *o = json_object();

	req_set(o, "type", json_string("request"));
	req_set(o, "pid", json_integer((json_int_t)p->pid));
	req_set(o, "run", json_string(p->run->id));
	req_set(o, "route", json_string(p->requests != NULL ?
	    requests_route_name(p->requests, r->route_id) : "other"));
	req_set(o, "status", json_integer((json_int_t)r->status));
	req_set(o, "flags", req_flags_json(r->flags));
	req_set(o, "thread_id", json_integer((json_int_t)r->thread_id));
	req_set(o, "start", json_real(agg_proc_real(p, r->start_ns)));
	req_set(o, "start_mono_ns", json_integer((json_int_t)r->start_ns));
	req_set(o, "latency_ms", json_real((double)(r->end_ns - r->start_ns) /
	    1e6));
	req_set(o, "gc_ms", json_real((double)res->gc_ns / 1e6));
	req_set(o, "collections", json_integer((json_int_t)res->ngc));
	req_set(o, "joined", json_boolean(res->joined));
	return o;
}

/* What each generation did to the scope's requests, and what the
 * collections that trace the old objects add to p99. */
static void req_by_gen(json_t *o, const struct req_sum *s)
{
	unsigned model = gcmodel_of_bits(s->models), g;
	double served[AGG_NPCTS], nofull[AGG_NPCTS];
	json_t *arr = json_array();
	const struct req_gen *x;

	agg_compact_pcts_ms(&s->all.served, 1, served);
	agg_compact_pcts_ms(&s->without_full, 1, nofull);
	req_set(o, "p99_without_full_ms", json_real(nofull[2]));
	req_set(o, "full_adds_p99_ms", json_real(served[2] > nofull[2] ?
	    served[2] - nofull[2] : 0));
	for (g = 0; arr != NULL && g < s->ngen && g < PROTO_MAX_GEN; g++) {
		x = &s->gen[g];
		json_array_append_new(arr, json_pack("{s:i,s:s,s:b,s:I,s:f,"
		    "s:f,s:f}", "generation", (int)g,
		    "label", gcmodel_gen_label(model, g),
		    "full", gcmodel_traces_old(model, g, s->ngen),
		    "delayed", (json_int_t)x->delayed,
		    "delayed_share", s->all.requests ? (double)x->delayed /
		    (double)s->all.requests : 0.0,
		    "gc_ms", (double)x->gc_ns / 1e6,
		    "mean_delay_ms", x->delayed ? (double)x->gc_ns / 1e6 /
		    (double)x->delayed : 0.0));
	}
	req_set(o, "by_generation", arr);
}

struct req_slow_ref {
	const struct agg_proc *p;
	const struct req_slow *s;
};

static int req_by_latency(const void *x, const void *y)
{
	const struct req_slow_ref *a = x, *b = y;
	uint64_t la = a->s->end_ns - a->s->start_ns;
	uint64_t lb = b->s->end_ns - b->s->start_ns;

	return la == lb ? 0 : la < lb ? 1 : -1;
}

/* The processes of the scope with requests, in order. */
static const struct agg_proc **req_procs(const struct agg *a,
    const struct agg_run *r, const struct agg_proc *p, size_t *n)
{
	const struct agg_proc **v;

	if (p == NULL)
		return agg_procs_by_start(a, r, n);
	if ((v = malloc(sizeof *v)) != NULL) {
		v[0] = p;
		*n = 1;
	}
	return v;
}

/* Per worker and the slowest requests of the scope. */
static int req_per_proc(const struct agg *a, const struct agg_proc **v,
    size_t n, const char *service, json_t *workers, json_t *slowest)
{
	struct req_slow_ref *refs;
	struct req_sum s;
	size_t i, nref = 0, k;
	json_t *w;

	if ((refs = calloc(n * REQ_SLOWEST + 1, sizeof *refs)) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		const struct req_proc *rp = v[i]->requests;

		if (rp == NULL || rp->requests == 0 ||
		    !requests_of_service(v[i], service))
			continue;
		for (k = 0; rp->slow != NULL && k < rp->nslow; k++)
			refs[nref++] = (struct req_slow_ref){ v[i], &rp->slow[k] };
		if (requests_sum(a, NULL, v[i], NULL, &s) < 0)
			continue;
		w = req_figures(&s.all, 0);
		req_set(w, "pid", json_integer((json_int_t)v[i]->pid));
		req_set(w, "role", json_string(agg_role_name(agg_proc_role(v[i]))));
		json_array_append_new(workers, w);
		requests_sum_fini(&s);
	}
	qsort(refs, nref, sizeof *refs, req_by_latency);
	for (k = 0; k < nref && k < REQ_SLOWEST; k++)
		json_array_append_new(slowest, req_slow_json(refs[k].p,
		    refs[k].s));
	free(refs);
	return 0;
}

json_t *requests_answer(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, const char *service)
{
	struct req_sum *s = malloc(sizeof *s);	/* three hists per route */
	const struct agg_proc **v = NULL;
	json_t *o = NULL, *routes, *rt, *workers, *slowest;
	size_t i, n = 0;

	if (p != NULL)
		service = NULL;		/* the process is the scope */
	if (s == NULL || requests_sum(a, r, p, service, s) < 0) {
		free(s);
		return NULL;
	}
	if ((o = req_figures(&s->all, 1)) == NULL)
		goto out;
	req_set(o, "scope", json_string(p != NULL ? "process" :
	    r != NULL ? "run" : service != NULL ? "service" : "host"));
	if (r != NULL || p != NULL)
		req_set(o, "run", json_string(p != NULL ? p->run->id : r->id));
	if (service != NULL)
		req_set(o, "service", json_string(service));
	req_set(o, "processes", json_integer((json_int_t)s->nproc));
	req_set(o, "dropped", json_integer((json_int_t)s->dropped));
	req_set(o, "invalid", json_integer((json_int_t)s->invalid));
	req_set(o, "join", json_pack("{s:I,s:I,s:I}",
	    "joined", (json_int_t)s->joined,
	    "fallback", (json_int_t)s->fallback,
	    "mismatch", (json_int_t)s->mismatch));
	routes = json_array();
	for (i = 0; routes != NULL && i < s->nroute; i++) {
		rt = req_figures(&s->route[i], 1);
		req_set(rt, "route", json_string(s->route[i].name));
		json_array_append_new(routes, rt);
	}
	req_set(o, "routes", routes);
	req_by_gen(o, s);
	workers = json_array();
	slowest = json_array();
	v = req_procs(a, r, p, &n);
	if (v == NULL || workers == NULL || slowest == NULL ||
	    req_per_proc(a, v, n, service, workers, slowest) < 0) {
		json_decref(workers);
		json_decref(slowest);
		json_decref(o);
		o = NULL;
		goto out;
	}
	req_set(o, "workers", workers);
	req_set(o, "slowest", slowest);
out:
	free(v);
	requests_sum_fini(s);
	free(s);
	return o;
}
