/*
 * json.c: builds the doc/control.md objects from agg.c state for
 * server.c's answers, the watch stream and the JSON lines log. No I/O,
 * never changes the aggregates. Keys follow doc/control.md exactly: every
 * key is always present, unknown values are null.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "rules.h"

static const double djson_pcts[4] = { 50.0, 90.0, 99.0, 99.9 };
static const char *const djson_pct_names[4] = { "p50", "p90", "p99", "p99.9" };

static void djson_set(json_t *o, const char *k, json_t *v)
{
	json_object_set_new(o, k, v != NULL ? v : json_null());
}

static json_t *djson_uint(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)v);
}

static json_t *djson_ms(uint64_t ns)
{
	return json_real((double)ns / 1e6);
}

static json_t *djson_pct_hist(const struct hist *h)
{
	json_t *o = json_object();
	unsigned i;

	for (i = 0; i < 4 && o != NULL; i++)
		djson_set(o, djson_pct_names[i],
		    json_real((double)hist_percentile(h, djson_pcts[i]) / 1e6));
	return o;
}

/* Percentiles of process p's generation g (-1: all). */
static json_t *djson_pct_proc(const struct agg_proc *p, int g)
{
	json_t *o = json_object();
	unsigned i;

	for (i = 0; i < 4 && o != NULL; i++)
		djson_set(o, djson_pct_names[i],
		    json_real(agg_proc_pct_ms(p, g, djson_pcts[i])));
	return o;
}

/* [GEN] of a sum; p set: percentiles from that process. */
static json_t *djson_gens(const struct agg_sum *s, const struct agg_proc *p)
{
	json_t *a = json_array(), *o;
	unsigned g;

	for (g = 0; g < s->ngen && a != NULL; g++) {
		const struct agg_gen_sum *sg = &s->gen[g];

		if ((o = json_object()) == NULL)
			break;
		djson_set(o, "gen", json_integer(g));
		djson_set(o, "collections", djson_uint(sg->collections));
		djson_set(o, "seen", djson_uint(sg->seen));
		djson_set(o, "unseen", djson_uint(sg->unseen));
		djson_set(o, "collected", djson_uint(sg->collected));
		djson_set(o, "uncollectable", djson_uint(sg->uncollectable));
		djson_set(o, "gc_time_ms", djson_ms(sg->pause_ns));
		djson_set(o, "mean_pause_ms", json_real(sg->seen ?
		    (double)sg->pause_ns / 1e6 / (double)sg->seen : 0.0));
		djson_set(o, "max_pause_ms", djson_ms(sg->max_pause_ns));
		djson_set(o, "percentiles_ms", p != NULL ?
		    djson_pct_proc(p, (int)g) : djson_pct_hist(&sg->hist));
		json_array_append_new(a, o);
	}
	return a;
}

static void djson_python(uint32_t hex, char *buf, size_t len)
{
	unsigned level = (hex >> 4) & 0xf, serial = hex & 0xf;
	const char *tag = level == 0xa ? "a" : level == 0xb ? "b" :
	    level == 0xc ? "rc" : "";

	if (*tag != '\0')
		snprintf(buf, len, "%u.%u.%u%s%u", hex >> 24,
		    (hex >> 16) & 0xff, (hex >> 8) & 0xff, tag, serial);
	else
		snprintf(buf, len, "%u.%u.%u", hex >> 24, (hex >> 16) & 0xff,
		    (hex >> 8) & 0xff);
}

static const char *djson_role(const struct agg_proc *p)
{
	return p->origin == ORIGIN_FORK ? "worker" :
	    p->origin == ORIGIN_EXEC ? "child" : "master";
}

static const char *djson_origin(const struct agg_proc *p)
{
	return p->origin == ORIGIN_FORK ? "fork" :
	    p->origin == ORIGIN_EXEC ? "exec" : "root";
}

static const char *djson_state(const struct agg_proc *p)
{
	return p->state == AGG_LIVE ? "live" :
	    p->state == AGG_ENDED ? "ended" : "lost";
}

/* The figures SUMMARY and PROCESS share. */
static void djson_totals(json_t *o, const struct agg_sum *s,
    uint64_t *pause_ns, uint64_t *max_ns, uint64_t *coll)
{
	uint64_t seen = 0, unseen = 0, collected = 0, uncoll = 0;
	unsigned g;

	*pause_ns = *max_ns = *coll = 0;
	for (g = 0; g < s->ngen; g++) {
		*coll += s->gen[g].collections;
		seen += s->gen[g].seen;
		unseen += s->gen[g].unseen;
		collected += s->gen[g].collected;
		uncoll += s->gen[g].uncollectable;
		*pause_ns += s->gen[g].pause_ns;
		if (s->gen[g].max_pause_ns > *max_ns)
			*max_ns = s->gen[g].max_pause_ns;
	}
	if (o == NULL)
		return;
	djson_set(o, "collections", djson_uint(*coll));
	djson_set(o, "seen", djson_uint(seen));
	djson_set(o, "unseen", djson_uint(unseen));
	djson_set(o, "collected", djson_uint(collected));
	djson_set(o, "uncollectable", djson_uint(uncoll));
	djson_set(o, "mean_pause_ms", json_real(seen ?
	    (double)*pause_ns / 1e6 / (double)seen : 0.0));
}

static json_t *djson_cpu_pct(const struct agg_sum *s, uint64_t pause_ns)
{
	if (!s->have_cpu || s->cpu_s <= 0)
		return json_null();
	return json_real((double)pause_ns / 1e9 / s->cpu_s * 100);
}

json_t *djson_process(const struct agg *a, const struct agg_proc *p)
{
	struct agg_sum *s = agg_sum_new();
	json_t *o = json_object(), *argv = json_array(), *th = json_array();
	uint64_t pause_ns, max_ns, coll;
	const char *arg = p->argv;
	double wall = agg_proc_wall_s(a, p);
	char py[32];
	uint32_t i;

	if (s == NULL || o == NULL || argv == NULL || th == NULL)
		goto out_fail;
	agg_sum_process(a, p, s);
	djson_totals(NULL, s, &pause_ns, &max_ns, &coll);
	for (i = 0; i < p->argc; i++) {
		json_array_append_new(argv, json_string(arg));
		arg += strlen(arg) + 1;
	}
	for (i = 0; i < p->ngen; i++)
		json_array_append_new(th, json_integer(p->base[i].threshold));
	djson_python(p->py_hexversion, py, sizeof py);
	djson_set(o, "pid", json_integer(p->pid));
	djson_set(o, "ppid", json_integer(p->ppid));
	djson_set(o, "run", json_string(p->run->id));
	djson_set(o, "role", json_string(djson_role(p)));
	djson_set(o, "origin", json_string(djson_origin(p)));
	djson_set(o, "state", json_string(djson_state(p)));
	/* exit: its exit handlers ran; abrupt: a signal, os._exit or a
	 * crash (counted all the same); lost: its area became unreadable. */
	djson_set(o, "ended_by", p->state == AGG_LIVE ? json_null() :
	    json_string(p->state != AGG_ENDED ? "lost" :
	    p->clean_exit ? "exit" : "abrupt"));
	djson_set(o, "events", djson_uint(agg_proc_events(p)));
	djson_set(o, "argv", argv);
	djson_set(o, "executable", json_string(p->executable));
	djson_set(o, "python", json_string(py));
	djson_set(o, "start", json_real(p->start_real));
	djson_set(o, "end", p->state == AGG_LIVE ? json_null() :
	    json_real(p->end_real));
	djson_set(o, "wall_s", json_real(wall));
	djson_set(o, "cpu_s", p->have_sample ?
	    json_real((double)p->cpu_ns / 1e9) : json_null());
	djson_set(o, "rss_bytes", p->have_sample ?
	    djson_uint(p->rss_bytes) : json_null());
	djson_set(o, "max_rss_bytes", p->have_sample ?
	    djson_uint(p->max_rss_bytes) : json_null());
	djson_set(o, "collections", djson_uint(coll));
	djson_set(o, "gc_time_ms", djson_ms(pause_ns));
	djson_set(o, "gc_wall_pct", json_real(wall > 0 ?
	    (double)pause_ns / 1e9 / wall * 100 : 0.0));
	djson_set(o, "gc_cpu_pct", djson_cpu_pct(s, pause_ns));
	djson_set(o, "max_pause_ms", djson_ms(max_ns));
	djson_set(o, "p99_ms", json_real(agg_proc_pct_ms(p, -1, 99.0)));
	djson_set(o, "dropped", djson_uint(p->dropped));
	djson_set(o, "reconnects", json_integer(p->reconnects));
	djson_set(o, "thresholds", th);
	djson_set(o, "generations", djson_gens(s, p));
	free(s);
	return o;
out_fail:
	free(s);
	json_decref(o);
	json_decref(argv);
	json_decref(th);
	return NULL;
}

json_t *djson_summary(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p)
{
	struct agg_sum *s = agg_sum_new();
	uint64_t pause_ns, max_ns, coll;
	struct hist all;
	json_t *o;
	double end, wall;
	unsigned g;

	if (s == NULL || (o = json_object()) == NULL) {
		free(s);
		return NULL;
	}
	if (p != NULL)
		agg_sum_process(a, p, s);
	else if (r != NULL)
		agg_sum_run(a, r, s);
	else
		agg_sum_host(a, s);
	djson_set(o, "scope", json_string(p ? "process" : r ? "run" : "host"));
	djson_set(o, "run", p ? json_string(p->run->id) :
	    r ? json_string(r->id) : json_null());
	djson_set(o, "pid", p ? json_integer(p->pid) : json_null());
	djson_set(o, "processes", json_integer(s->nproc));
	djson_set(o, "live", json_integer(s->nlive));
	end = s->nlive > 0 || s->end == 0 ? a->now_real : s->end;
	wall = p != NULL ? agg_proc_wall_s(a, p) :
	    s->nproc > 0 && end > s->start ? end - s->start : 0.0;
	djson_set(o, "wall_s", json_real(wall));
	djson_set(o, "cpu_s", s->have_cpu ? json_real(s->cpu_s) : json_null());
	djson_totals(o, s, &pause_ns, &max_ns, &coll);
	djson_set(o, "gc_time_ms", djson_ms(pause_ns));
	djson_set(o, "max_pause_ms", djson_ms(max_ns));
	if (p != NULL) {
		djson_set(o, "percentiles_ms", djson_pct_proc(p, -1));
	} else {
		hist_init(&all);
		for (g = 0; g < s->ngen; g++)
			hist_merge(&all, &s->gen[g].hist);
		djson_set(o, "percentiles_ms", djson_pct_hist(&all));
	}
	/* Against the time the processes lived, added up: a run of four
	 * workers for 10 s had 40 s in which to collect. */
	djson_set(o, "gc_wall_pct", json_real(s->proc_wall_s > 0 ?
	    (double)pause_ns / 1e9 / s->proc_wall_s * 100 : 0.0));
	djson_set(o, "gc_cpu_pct", djson_cpu_pct(s, pause_ns));
	djson_set(o, "dropped", djson_uint(s->dropped));
	djson_set(o, "alerts", djson_uint(s->alerts));
	djson_set(o, "alert_threshold_ms",
	    djson_ms(a->cfg.alert_threshold_ns));
	djson_set(o, "rss_bytes", s->have_rss ?
	    djson_uint(s->rss_bytes) : json_null());
	djson_set(o, "max_rss_bytes", s->have_rss ?
	    djson_uint(s->max_rss_bytes) : json_null());
	djson_set(o, "generations", djson_gens(s, p));
	free(s);
	return o;
}

json_t *djson_run(const struct agg *a, const struct agg_run *r)
{
	struct agg_sum *s = agg_sum_new();
	const struct agg_proc *p, *root = NULL;
	uint64_t pause_ns, max_ns, coll;
	json_t *o;

	if (s == NULL || (o = json_object()) == NULL) {
		free(s);
		return NULL;
	}
	agg_sum_run(a, r, s);
	djson_totals(NULL, s, &pause_ns, &max_ns, &coll);
	for (p = r->head; p != NULL && root == NULL; p = p->next)
		if (p->origin == ORIGIN_ROOT)
			root = p;
	djson_set(o, "run", json_string(r->id));
	djson_set(o, "processes", json_integer(s->nproc));
	djson_set(o, "live", json_integer(r->nlive));
	djson_set(o, "start", json_real(s->start));
	djson_set(o, "end", r->nlive > 0 || s->end == 0 ? json_null() :
	    json_real(s->end));
	djson_set(o, "collections", djson_uint(coll));
	djson_set(o, "gc_time_ms", djson_ms(pause_ns));
	djson_set(o, "max_pause_ms", djson_ms(max_ns));
	djson_set(o, "root_pid", root ? json_integer(root->pid) : json_null());
	free(s);
	return o;
}

static int djson_by_start(const void *x, const void *y)
{
	const struct agg_proc *a = *(const struct agg_proc *const *)x;
	const struct agg_proc *b = *(const struct agg_proc *const *)y;

	if (a->start_real != b->start_real)
		return a->start_real < b->start_real ? -1 : 1;
	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

/* Processes of r (all when NULL) by start; *n set; free() the result. */
static const struct agg_proc **djson_list(const struct agg *a,
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
	qsort(v, *n, sizeof *v, djson_by_start);
	return v;
}

json_t *djson_processes(const struct agg *a, const struct agg_run *r)
{
	const struct agg_proc **v;
	json_t *arr;
	size_t n, i;

	if ((v = djson_list(a, r, &n)) == NULL)
		return NULL;
	if ((arr = json_array()) != NULL)
		for (i = 0; i < n; i++)
			json_array_append_new(arr, djson_process(a, v[i]));
	free(v);
	return arr;
}

json_t *djson_recommendations(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p)
{
	struct rules_rec *recs = NULL;
	struct rules_proc *rp = NULL;
	const struct agg_proc **v = NULL;
	const struct agg_proc *tp = p;
	struct rules_input in;
	struct agg_sum *s;
	json_t *arr = NULL, *o, *ev, *acts;
	size_t n = 0, i, nrec;
	uint32_t th[PROTO_MAX_GEN];
	unsigned k;

	if ((s = agg_sum_new()) == NULL)
		return NULL;
	memset(&in, 0, sizeof in);
	if (p != NULL) {
		agg_sum_process(a, p, s);
	} else {
		if (r != NULL)
			agg_sum_run(a, r, s);
		else
			agg_sum_host(a, s);
		if ((v = djson_list(a, r, &n)) == NULL)
			goto out;
		if ((rp = calloc(n ? n : 1, sizeof *rp)) == NULL)
			goto out;
		for (i = 0; i < n; i++) {
			rp[i].pid = v[i]->pid;
			rp[i].ppid = v[i]->ppid;
			rp[i].origin = v[i]->origin;
			rp[i].gen2 = v[i]->ngen > 2 ? v[i]->c[2].count : 0;
			rp[i].p99_ms = agg_proc_pct_ms(v[i], -1, 99.0);
			if (tp == NULL && v[i]->origin == ORIGIN_ROOT)
				tp = v[i];
		}
		if (tp == NULL && n > 0)
			tp = v[0];
	}
	if (tp != NULL) {
		for (k = 0; k < tp->ngen; k++)
			th[k] = tp->base[k].threshold;
		in.thresholds = th;
		in.nthresholds = tp->ngen;
	}
	in.sum = s;
	in.alert_threshold_ms = (double)a->cfg.alert_threshold_ns / 1e6;
	in.procs = rp;
	in.nprocs = n;
	if ((recs = calloc(RULES_MAX, sizeof *recs)) == NULL)
		goto out;
	nrec = rules_evaluate(&in, recs, RULES_MAX);
	if ((arr = json_array()) == NULL)
		goto out;
	for (i = 0; i < nrec; i++) {
		o = json_object();
		ev = json_object();
		acts = json_array();
		if (o == NULL || ev == NULL || acts == NULL) {
			json_decref(o);
			json_decref(ev);
			json_decref(acts);
			continue;
		}
		for (k = 0; k < recs[i].nevidence; k++)
			djson_set(ev, recs[i].evidence[k].name,
			    json_real(recs[i].evidence[k].value));
		for (k = 0; k < recs[i].nactions; k++)
			json_array_append_new(acts,
			    json_string(recs[i].actions[k]));
		djson_set(o, "rule", json_string(recs[i].rule));
		djson_set(o, "severity",
		    json_string(rules_severity_name(recs[i].severity)));
		djson_set(o, "scope", json_string(
		    p || recs[i].pid ? "process" : r ? "run" : "host"));
		djson_set(o, "run", p ? json_string(p->run->id) :
		    r ? json_string(r->id) : json_null());
		djson_set(o, "pid", p ? json_integer(p->pid) : recs[i].pid ?
		    json_integer(recs[i].pid) : json_null());
		djson_set(o, "message", json_string(recs[i].message));
		djson_set(o, "evidence", ev);
		djson_set(o, "actions", acts);
		json_array_append_new(arr, o);
	}
out:
	free(recs);
	free(rp);
	free(v);
	free(s);
	return arr;
}

json_t *djson_event(const struct agg_proc *p, const struct proto_event *e)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	djson_set(o, "type", json_string("event"));
	djson_set(o, "pid", json_integer(p->pid));
	djson_set(o, "run", json_string(p->run->id));
	djson_set(o, "gen", json_integer(e->generation));
	djson_set(o, "time", json_real(agg_proc_real(p, e->start_ns)));
	djson_set(o, "duration_ms", djson_ms(e->pause_ns));
	djson_set(o, "collector_ms", e->flags & PROTO_EVENT_HAS_COLLECTOR_NS ?
	    djson_ms(e->collector_ns) : json_null());
	djson_set(o, "collected", djson_uint(e->collected));
	djson_set(o, "uncollectable", json_integer(e->uncollectable));
	return o;
}

json_t *djson_alert(const struct agg *a, const struct agg_proc *p,
    const struct proto_event *e)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	djson_set(o, "type", json_string("alert"));
	djson_set(o, "pid", json_integer(p->pid));
	djson_set(o, "run", json_string(p->run->id));
	djson_set(o, "gen", json_integer(e->generation));
	djson_set(o, "time", json_real(agg_proc_real(p, e->start_ns)));
	djson_set(o, "duration_ms", djson_ms(e->pause_ns));
	djson_set(o, "threshold_ms", djson_ms(a->cfg.alert_threshold_ns));
	return o;
}

json_t *djson_types(const struct agg_run *r, int garbage)
{
	const struct agg_proc *p;
	const struct agg_types *t;
	json_t *arr = json_array(), *o, *types, *e;
	uint32_t i;

	for (p = r->head; p != NULL && arr != NULL; p = p->next) {
		t = garbage ? p->garbage : p->objects;
		if (t == NULL)
			continue;
		o = json_object();
		types = json_array();
		if (o == NULL || types == NULL) {
			json_decref(o);
			json_decref(types);
			continue;
		}
		for (i = 0; i < t->n; i++) {
			if ((e = json_object()) == NULL)
				continue;
			djson_set(e, "type", json_string(t->e[i].name));
			djson_set(e, "count", djson_uint(t->e[i].count));
			json_array_append_new(types, e);
		}
		djson_set(o, "pid", json_integer(p->pid));
		djson_set(o, "total", djson_uint(t->total));
		djson_set(o, "types", types);
		json_array_append_new(arr, o);
	}
	return arr;
}
