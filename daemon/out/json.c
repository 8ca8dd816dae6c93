/*
 * json.c: builds the doc/control.md objects from agg.c state for
 * server.c's answers, the watch stream and the JSON lines log (and the
 * log's alert lines of alerts.c, keys in gcmond(8)). No I/O,
 * never changes the aggregates. Keys follow doc/control.md exactly: every
 * key is always present, unknown values are null.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gcmodel.h"
#include "json.h"
#include "rules.h"
#include "service.h"

/* The names of agg_pcts's percentiles. */
static const char *const djson_pct_names[AGG_NPCTS] = PROTO_PCT_NAMES;

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

static json_t *djson_pcts(const double ms[AGG_NPCTS])
{
	json_t *o = json_object();
	unsigned i;

	for (i = 0; i < AGG_NPCTS && o != NULL; i++)
		djson_set(o, djson_pct_names[i], json_real(ms[i]));
	return o;
}

/* The counts GEN and SUMMARY share. */
static void djson_counts(json_t *o, uint64_t collections, uint64_t seen,
    uint64_t unseen, uint64_t collected, uint64_t uncollectable,
    uint64_t pause_ns)
{
	djson_set(o, "collections", djson_uint(collections));
	djson_set(o, "seen", djson_uint(seen));
	djson_set(o, "unseen", djson_uint(unseen));
	djson_set(o, "collected", djson_uint(collected));
	djson_set(o, "uncollectable", djson_uint(uncollectable));
	djson_set(o, "mean_pause_ms",
	    json_real(agg_mean_pause_ms(pause_ns, seen)));
}

/* [GEN] of a sum; p set: percentiles from that process. Labelled by the
 * sum's model (gcmodel.h); the interpreter's own time beside the pauses
 * where its events carried one (3.15+), null where none did. */
static json_t *djson_gens(const struct agg_sum *s, const struct agg_proc *p)
{
	json_t *a = json_array(), *o;
	double pcts[AGG_NPCTS];
	unsigned g, model = agg_sum_model(s);

	for (g = 0; g < s->ngen && a != NULL; g++) {
		const struct agg_gen_sum *sg = &s->gen[g];

		if ((o = json_object()) == NULL)
			break;
		djson_set(o, "gen", json_integer(g));
		djson_set(o, "label", json_string(gcmodel_gen_label(model, g)));
		djson_counts(o, sg->collections, sg->seen, sg->unseen,
		    sg->collected, sg->uncollectable, sg->pause_ns);
		djson_set(o, "gc_time_ms", djson_ms(sg->pause_ns));
		djson_set(o, "max_pause_ms", djson_ms(sg->max_pause_ns));
		djson_set(o, "collector_timed", djson_uint(sg->ncollector));
		djson_set(o, "collector_time_ms", sg->ncollector > 0 ?
		    djson_ms(sg->collector_ns) : json_null());
		if (p != NULL)
			agg_proc_pcts_ms(p, (int)g, pcts);
		else
			agg_sum_gen_pcts_ms(s, g, pcts);
		djson_set(o, "percentiles_ms", djson_pcts(pcts));
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

static json_t *djson_str_or_null(const char *s)
{
	return s != NULL ? json_string(s) : json_null();
}

/* Where a process runs: pid is gcmond's view when it can see the
 * process, its own otherwise (visible false: no /proc figures). */
static void djson_place(json_t *o, const struct agg_proc *p)
{
	djson_set(o, "ns_pid", json_integer(p->ns_pid != 0 ? p->ns_pid :
	    p->pid));
	djson_set(o, "visible", json_boolean(!p->unseen));
	djson_set(o, "container", djson_str_or_null(p->container));
	djson_set(o, "pod", djson_str_or_null(p->pod));
	djson_set(o, "namespace", djson_str_or_null(p->pod_namespace));
	djson_set(o, "hostname", djson_str_or_null(p->hostname));
}

/* A process's smaps_rollup figures: null where not read; unshared only
 * for a forked process (a master's growth is its own allocation). */
static void djson_proc_mem(json_t *o, const struct agg_proc *p)
{
	int read = p->mem_state == AGG_MEM_READ;

	djson_set(o, "memory", json_string(read ? "read" :
	    p->mem_state == AGG_MEM_REFUSED ? "not readable: permission" :
	    p->mem_state == AGG_MEM_UNSEEN ? "unavailable: the process is "
	    "in a PID namespace gcmond cannot see" : "not read"));
	djson_set(o, "pss_bytes", read ?
	    djson_uint(p->mem.pss_bytes) : json_null());
	djson_set(o, "shared_bytes", read ?
	    djson_uint(agg_mem_shared(&p->mem)) : json_null());
	djson_set(o, "private_dirty_bytes", read ?
	    djson_uint(p->mem.private_dirty_bytes) : json_null());
	djson_set(o, "unshared_by_gc_bytes", read && p->origin == ORIGIN_FORK ?
	    djson_uint(p->unshared_by_gc_bytes) : json_null());
	djson_set(o, "frozen_objects", p->clean_exit ?
	    djson_uint(p->freeze_count) : json_null());
}

/* A sum's: the live processes' last readings, the forked ones' unshared
 * bytes (ended ones too), the masters' heap for scale. */
static void djson_sum_mem(json_t *o, const struct agg_sum *s)
{
	djson_set(o, "pss_bytes", s->nmem > 0 ?
	    djson_uint(s->pss_bytes) : json_null());
	djson_set(o, "shared_bytes", s->nmem > 0 ?
	    djson_uint(s->shared_bytes) : json_null());
	djson_set(o, "private_dirty_bytes", s->nmem > 0 ?
	    djson_uint(s->private_dirty_bytes) : json_null());
	djson_set(o, "unshared_by_gc_bytes", s->nunshared > 0 ?
	    djson_uint(s->unshared_by_gc_bytes) : json_null());
	djson_set(o, "unshared_processes", json_integer(s->nunshared));
	djson_set(o, "master_anon_bytes", s->master_anon_bytes > 0 ?
	    djson_uint(s->master_anon_bytes) : json_null());
	djson_set(o, "memory_refused", json_integer(s->nmem_refused));
	djson_set(o, "frozen_objects", djson_uint(s->frozen_objects));
}

json_t *djson_process(const struct agg *a, const struct agg_proc *p)
{
	struct agg_sum *s = agg_sum_new();
	json_t *o = json_object(), *argv = json_array(), *th = json_array();
	struct agg_totals t;
	const char *arg = p->argv;
	double wall = agg_proc_wall_s(a, p);
	char py[32], svc[SERVICE_NAME_MAX];
	uint32_t i;

	if (s == NULL || o == NULL || argv == NULL || th == NULL)
		goto out_fail;
	agg_sum_process(a, p, s);
	agg_sum_totals(s, &t);
	for (i = 0; i < p->argc; i++) {
		json_array_append_new(argv, json_string(arg));
		arg += strlen(arg) + 1;
	}
	for (i = 0; i < p->ngen; i++)
		json_array_append_new(th, json_integer(p->base[i].threshold));
	djson_python(p->py_hexversion, py, sizeof py);
	djson_set(o, "pid", json_integer(p->pid));
	djson_set(o, "ppid", json_integer(p->ppid));
	djson_place(o, p);
	djson_set(o, "run", json_string(p->run->id));
	djson_set(o, "role", json_string(agg_role_name(agg_proc_role(p))));
	djson_set(o, "origin", json_string(djson_origin(p)));
	djson_set(o, "state", json_string(djson_state(p)));
	/* exit: its exit handlers ran; os._exit: it called os._exit(
	 * exit_code) (billiard's and multiprocessing's workers end so);
	 * abrupt: a signal or a crash (counted all the same); lost: its area
	 * became unreadable; detach: gcmon.stop() (pygcprofiler detach), the
	 * process lives on, and an attach again is a new record. */
	djson_set(o, "ended_by", p->state == AGG_LIVE ? json_null() :
	    json_string(p->state != AGG_ENDED ? "lost" : p->detached ?
	    "detach" : !p->clean_exit ? "abrupt" : p->os_exit ? "os._exit" :
	    "exit"));
	djson_set(o, "exit_code", p->state == AGG_ENDED && p->os_exit ?
	    json_integer(p->exit_code) : json_null());
	djson_set(o, "events", djson_uint(agg_proc_events(p)));
	djson_set(o, "argv", argv);
	djson_set(o, "executable", json_string(p->executable));
	djson_set(o, "service", p->service != NULL ?
	    json_string(p->service) : json_null());
	djson_set(o, "service_label", json_string(service_name(p, svc,
	    sizeof svc)));
	djson_set(o, "python", json_string(py));
	djson_set(o, "gc_model", json_string(gcmodel_name(p->gc_model)));
	djson_set(o, "start", json_real(p->start_real));
	djson_set(o, "end", p->state == AGG_LIVE ? json_null() :
	    json_real(p->end_real));
	djson_set(o, "wall_s", json_real(wall));
	djson_set(o, "cpu_s", p->have_sample ?
	    json_real((double)p->cpu_ns / 1e9) : json_null());
	/* Unseen: only what it wrote at its exit (CPU, peak RSS). */
	djson_set(o, "rss_bytes", p->have_sample && !p->unseen ?
	    djson_uint(p->rss_bytes) : json_null());
	djson_set(o, "max_rss_bytes", p->have_sample ?
	    djson_uint(p->max_rss_bytes) : json_null());
	djson_proc_mem(o, p);
	djson_set(o, "collections", djson_uint(t.collections));
	djson_set(o, "gc_time_ms", djson_ms(t.pause_ns));
	/* Of this process's wall_s. No share of CPU time: pauses are
	 * monotonic time, waits for a core included, so pause over CPU
	 * time is no share of anything (it passed 100% on a busy host). */
	djson_set(o, "gc_wall_pct", json_real(agg_gc_wall_pct(t.pause_ns, wall)));
	djson_set(o, "max_pause_ms", djson_ms(t.max_pause_ns));
	djson_set(o, "p99_ms", json_real(agg_proc_pct_ms(p, -1, 99.0)));
	djson_set(o, "dropped", djson_uint(p->dropped));
	djson_set(o, "reconnects", json_integer(p->reconnects));
	djson_set(o, "thresholds", th);
	djson_set(o, "generations", djson_gens(s, p));
	agg_sum_free(s);
	return o;
out_fail:
	agg_sum_free(s);
	json_decref(o);
	json_decref(argv);
	json_decref(th);
	return NULL;
}

json_t *djson_summary(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p)
{
	struct agg_sum *s = agg_sum_new();
	double end, wall, pcts[AGG_NPCTS];
	struct agg_totals t;
	json_t *o;

	if (s == NULL || (o = json_object()) == NULL) {
		agg_sum_free(s);
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
	djson_set(o, "gc_model", json_string(gcmodel_name(agg_sum_model(s))));
	end = s->nlive > 0 || s->end == 0 ? a->now_real : s->end;
	wall = p != NULL ? agg_proc_wall_s(a, p) :
	    s->nproc > 0 && end > s->start ? end - s->start : 0.0;
	djson_set(o, "wall_s", json_real(wall));
	djson_set(o, "cpu_s", s->have_cpu ? json_real(s->cpu_s) : json_null());
	agg_sum_totals(s, &t);
	djson_counts(o, t.collections, t.seen, t.unseen, t.collected,
	    t.uncollectable, t.pause_ns);
	djson_set(o, "gc_time_ms", djson_ms(t.pause_ns));
	djson_set(o, "max_pause_ms", djson_ms(t.max_pause_ns));
	if (p != NULL)
		agg_proc_pcts_ms(p, -1, pcts);
	else
		agg_sum_pcts_ms(s, pcts);
	djson_set(o, "percentiles_ms", djson_pcts(pcts));
	/* Against the time the processes lived, added up (proc_wall_s,
	 * not wall_s): a run of four workers for 10 s had 40 s in which to
	 * collect. */
	djson_set(o, "proc_wall_s", json_real(s->proc_wall_s));
	djson_set(o, "gc_wall_pct",
	    json_real(agg_gc_wall_pct(t.pause_ns, s->proc_wall_s)));
	djson_set(o, "dropped", djson_uint(s->dropped));
	djson_set(o, "alerts", djson_uint(s->alerts));
	djson_set(o, "alert_threshold_ms",
	    djson_ms(a->cfg.alert_threshold_ns));
	djson_set(o, "rss_bytes", s->have_rss ?
	    djson_uint(s->rss_bytes) : json_null());
	djson_set(o, "max_rss_bytes", s->have_rss ?
	    djson_uint(s->max_rss_bytes) : json_null());
	djson_sum_mem(o, s);
	djson_set(o, "generations", djson_gens(s, p));
	agg_sum_free(s);
	return o;
}

json_t *djson_run(const struct agg *a, const struct agg_run *r)
{
	struct agg_sum *s = agg_sum_new();
	const struct agg_proc *p, *root = NULL;
	struct agg_totals t;
	json_t *o;

	if (s == NULL || (o = json_object()) == NULL) {
		agg_sum_free(s);
		return NULL;
	}
	agg_sum_run(a, r, s);
	agg_sum_totals(s, &t);
	for (p = TAILQ_FIRST(&r->procs); p != NULL && root == NULL;
	    p = TAILQ_NEXT(p, link))
		if (p->origin == ORIGIN_ROOT)
			root = p;
	djson_set(o, "run", json_string(r->id));
	djson_set(o, "processes", json_integer(s->nproc));
	djson_set(o, "live", json_integer(r->nlive));
	djson_set(o, "gc_model", json_string(gcmodel_name(agg_sum_model(s))));
	djson_set(o, "start", json_real(s->start));
	djson_set(o, "end", r->nlive > 0 || s->end == 0 ? json_null() :
	    json_real(s->end));
	djson_set(o, "collections", djson_uint(t.collections));
	djson_set(o, "gc_time_ms", djson_ms(t.pause_ns));
	djson_set(o, "max_pause_ms", djson_ms(t.max_pause_ns));
	djson_set(o, "root_pid", root ? json_integer(root->pid) : json_null());
	agg_sum_free(s);
	return o;
}

json_t *djson_processes(const struct agg *a, const struct agg_run *r)
{
	const struct agg_proc **v;
	json_t *arr;
	size_t n, i;

	if ((v = agg_procs_by_start(a, r, &n)) == NULL)
		return NULL;
	if ((arr = json_array()) != NULL)
		for (i = 0; i < n; i++)
			json_array_append_new(arr, djson_process(a, v[i]));
	free(v);
	return arr;
}

static json_t *djson_rec(const struct rules_rec *rec,
    const struct agg_run *r, const struct agg_proc *p)
{
	json_t *o = json_object(), *ev = json_object(), *acts = json_array();
	unsigned k;

	if (o == NULL || ev == NULL || acts == NULL) {
		json_decref(o);
		json_decref(ev);
		json_decref(acts);
		return NULL;
	}
	for (k = 0; k < rec->nevidence; k++)
		djson_set(ev, rec->evidence[k].name,
		    json_real(rec->evidence[k].value));
	for (k = 0; k < rec->nactions; k++)
		json_array_append_new(acts, json_string(rec->actions[k]));
	djson_set(o, "rule", json_string(rec->rule));
	djson_set(o, "severity",
	    json_string(rules_severity_name(rec->severity)));
	djson_set(o, "scope", json_string(
	    p || rec->pid ? "process" : r ? "run" : "host"));
	djson_set(o, "run", p ? json_string(p->run->id) :
	    r ? json_string(r->id) : json_null());
	djson_set(o, "pid", p ? json_integer(p->pid) : rec->pid ?
	    json_integer(rec->pid) : json_null());
	djson_set(o, "message", json_string(rec->message));
	djson_set(o, "evidence", ev);
	djson_set(o, "actions", acts);
	return o;
}

json_t *djson_recommendations(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p)
{
	struct rules_rec *recs;
	struct rules_input in;
	json_t *arr = NULL, *o;
	size_t i, nrec;

	/* Not cleared: rules_evaluate clears each record it fills, and only
	 * out[0..nrec) is read (105 KiB, a fault a page to clear). */
	if ((recs = malloc(RULES_MAX * sizeof *recs)) == NULL)
		return NULL;
	if (rules_input_build(a, r, p, &in) < 0)
		goto out;
	nrec = rules_evaluate(&in, recs, RULES_MAX);
	if ((arr = json_array()) != NULL)
		for (i = 0; i < nrec; i++)
			if ((o = djson_rec(&recs[i], r, p)) != NULL)
				json_array_append_new(arr, o);
	rules_input_fini(&in);
out:
	free(recs);
	return arr;
}

/* What EVENT and ALERT share: a collection of process p. */
static json_t *djson_collection(const char *type, const struct agg_proc *p,
    const struct proto_event *e)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	djson_set(o, "type", json_string(type));
	djson_set(o, "pid", json_integer(p->pid));
	djson_set(o, "run", json_string(p->run->id));
	djson_set(o, "gen", json_integer(e->generation));
	djson_set(o, "label", json_string(gcmodel_gen_label(p->gc_model,
	    e->generation)));
	djson_set(o, "time", json_real(agg_proc_real(p, e->start_ns)));
	djson_set(o, "duration_ms", djson_ms(e->pause_ns));
	return o;
}

json_t *djson_event(const struct agg_proc *p, const struct proto_event *e)
{
	json_t *o = djson_collection("event", p, e);

	if (o == NULL)
		return NULL;
	djson_set(o, "collector_ms", e->flags & PROTO_EVENT_HAS_COLLECTOR_NS ?
	    djson_ms(e->collector_ns) : json_null());
	djson_set(o, "collected", djson_uint(e->collected));
	djson_set(o, "uncollectable", json_integer(e->uncollectable));
	return o;
}

json_t *djson_alert(const struct agg *a, const struct agg_proc *p,
    const struct proto_event *e)
{
	json_t *o = djson_collection("alert", p, e);

	if (o != NULL)
		djson_set(o, "threshold_ms", djson_ms(a->cfg.alert_threshold_ns));
	return o;
}

json_t *djson_alert_line(const struct alerts_line *l, double now_real)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	djson_set(o, "type", json_string("alert"));
	djson_set(o, "alert", json_string(alerts_kind_name(l->kind)));
	djson_set(o, "pid", json_integer(l->pid));
	djson_set(o, "run", json_string(l->run));
	djson_set(o, "time", json_real(l->kind == ALERTS_PAUSE ? l->time :
	    now_real));
	djson_set(o, "message", json_string(l->message));
	switch (l->kind) {
	case ALERTS_PAUSE:
		djson_set(o, "gen", json_integer(l->generation));
		djson_set(o, "label", json_string(l->label));
		djson_set(o, "duration_ms", json_real(l->value));
		djson_set(o, "threshold_ms", json_real(l->limit));
		break;
	case ALERTS_REPEAT:
		djson_set(o, "count", djson_uint(l->count));
		djson_set(o, "max_ms", json_real(l->value));
		djson_set(o, "threshold_ms", json_real(l->limit));
		break;
	case ALERTS_P99:
		djson_set(o, "pauses", djson_uint(l->count));
		djson_set(o, "over_pct", json_real(l->other));
		djson_set(o, "max_ms", json_real(l->value));
		djson_set(o, "limit_ms", json_real(l->limit));
		break;
	case ALERTS_GC_SHARE:
		djson_set(o, "gc_wall_pct", json_real(l->value));
		djson_set(o, "limit_pct", json_real(l->limit));
		break;
	case ALERTS_GEN2:
		djson_set(o, "gen", json_integer(l->generation));
		djson_set(o, "label", json_string(l->label));
		djson_set(o, "explicit", json_boolean(l->explicit_full));
		djson_set(o, "collections", djson_uint(l->count));
		djson_set(o, "per_min", json_real(l->value));
		djson_set(o, "limit_per_min", json_real(l->limit));
		break;
	case ALERTS_OUTLIER:
		djson_set(o, "max_ms", json_real(l->value));
		djson_set(o, "siblings", djson_uint(l->count));
		djson_set(o, "siblings_median_ms", json_real(l->other));
		djson_set(o, "factor", json_real(l->limit));
		break;
	default:
		break;
	}
	djson_set(o, "window_s", json_real(l->window_s));
	return o;
}

json_t *djson_types(const struct agg_run *r, int garbage)
{
	const struct agg_proc *p;
	const struct agg_types *t;
	json_t *arr = json_array(), *o, *types, *e;
	uint32_t i;

	for (p = TAILQ_FIRST(&r->procs); p != NULL && arr != NULL;
	    p = TAILQ_NEXT(p, link)) {
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

/* ---- answers and stream objects (control.c, server.c) ------------------- */

json_t *djson_error(const char *code, const char *msg)
{
	return json_pack("{s:b,s:s,s:s}", "ok", 0, "error", msg, "code", code);
}

json_t *djson_ok(json_t *body)
{
	if (body != NULL &&
	    json_object_set_new(body, "ok", json_true()) < 0) {
		json_decref(body);
		return NULL;
	}
	return body;
}

json_t *djson_keyed(const char *key, json_t *value)
{
	json_t *o;

	if (key == NULL)
		return json_object();
	if (value == NULL || (o = json_object()) == NULL) {
		json_decref(value);
		return NULL;
	}
	djson_set(o, key, value);
	return o;
}

json_t *djson_ping(const struct agg *a, pid_t pid, double uptime_s)
{
	return json_pack("{s:s,s:i,s:f,s:i,s:i}", "version", PACKAGE_VERSION,
	    "pid", (int)pid, "uptime_s", uptime_s, "processes", (int)a->nlive,
	    "runs", (int)a->nruns);
}

json_t *djson_runs(const struct agg *a)
{
	json_t *arr = json_array();
	const struct agg_run *r;

	for (r = LIST_FIRST(&a->runs); r != NULL && arr != NULL;
	    r = LIST_NEXT(r, link))
		json_array_append_new(arr, djson_run(a, r));
	return arr;
}

json_t *djson_report(const struct agg *a, const struct agg_run *r)
{
	return json_pack("{s:o,s:o,s:o,s:o,s:o}",
	    "summary", djson_summary(a, r, NULL),
	    "processes", djson_processes(a, r),
	    "recommendations", djson_recommendations(a, r, NULL),
	    "objects", djson_types(r, 0), "garbage", djson_types(r, 1));
}

json_t *djson_wait(const struct agg *a, const char *run, int timed_out)
{
	const struct agg_run *r = agg_run_find(a, run);

	return djson_ok(json_pack("{s:i,s:i,s:b}", "live",
	    r ? (int)r->nlive : 0, "processes", r ? (int)r->nproc : 0,
	    "timed_out", timed_out));
}

json_t *djson_lost(uint64_t nlost)
{
	return json_pack("{s:s,s:o}", "type", "lost", "events", djson_uint(nlost));
}

json_t *djson_process_event(const struct agg *a, const struct agg_proc *p,
    const char *type)
{
	return json_pack("{s:s,s:o}", "type", type, "process",
	    djson_process(a, p));
}

json_t *djson_protocol_error(pid_t peer_pid, const char *error)
{
	return json_pack("{s:s,s:i,s:s}", "type", "protocol_error",
	    "peer_pid", (int)peer_pid, "error", error);
}

json_t *djson_log_summary(const struct agg *a, int final)
{
	return json_pack("{s:s,s:b,s:o,s:o}", "type", "summary", "final", final,
	    "summary", djson_summary(a, NULL, NULL), "runs", djson_runs(a));
}

/* The --duration-buckets table of run r from its exact per-generation
 * histograms (every pause gcmond received, whatever a watcher lost),
 * read as their union without making it. */
json_t *djson_durations(const struct agg *a, const struct agg_run *r,
    const double *le_ms, size_t n)
{
	struct agg_sum *s = agg_sum_new();
	json_t *o = json_object(), *rows = json_array(), *gens = json_array();
	uint64_t below = 0, le, total = 0;
	size_t i;
	unsigned g;

	if (s == NULL || o == NULL || rows == NULL || gens == NULL)
		goto out_fail;
	agg_sum_run(a, r, s);
	for (g = 0; g < s->ngen; g++) {
		total += s->hist[g].count;
		json_array_append_new(gens, json_pack("{s:i,s:o}", "gen", (int)g,
		    "pauses", djson_uint(s->hist[g].count)));
	}
	for (i = 0; i < n; i++) {
		le = hist_compact_count_le(s->hist, s->ngen,
		    (uint64_t)(le_ms[i] * 1e6));
		json_array_append_new(rows, json_pack("{s:f,s:o}", "le_ms",
		    le_ms[i], "count", djson_uint(le - below)));
		below = le;
	}
	json_array_append_new(rows, json_pack("{s:n,s:o}", "le_ms", "count",
	    djson_uint(total - below)));
	djson_set(o, "durations", rows);
	djson_set(o, "pauses", djson_uint(total));
	djson_set(o, "generations", gens);
	agg_sum_free(s);
	return o;
out_fail:
	agg_sum_free(s);
	json_decref(o);
	json_decref(rows);
	json_decref(gens);
	return NULL;
}
