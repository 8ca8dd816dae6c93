/*
 * prompt.c: pygcprofiler's --prompt: the run's measured figures and
 * gcmond's findings, worded so they can be pasted into an assistant as
 * is; and the command line as a shell would read it (also for the start
 * banner). Called by pygcprofiler.c; reads the daemon's `report` answer,
 * writes only into the text it returns or the FILE it is given.
 */
#include "config.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "pgp.h"
#include "report.h"

/* Shell-quotes one word into out when it needs it. */
static void prompt_put_quoted(FILE *out, const char *w)
{
	const char *p;
	int plain = *w != '\0';

	for (p = w; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("@%+=:,./_-", *p))
			plain = 0;
	if (plain) {
		fputs(w, out);
		return;
	}
	fputc('\'', out);
	for (p = w; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", out);
		else
			fputc(*p, out);
	}
	fputc('\'', out);
}

void prompt_print_command(FILE *out, const struct pgp_opts *o)
{
	int i;

	if (!o->exec)
		prompt_put_quoted(out, o->python);
	if (o->module)
		fputs(" -m", out);
	for (i = 0; i < o->nprog; i++) {
		if (i > 0 || !o->exec)
			fputc(' ', out);
		prompt_put_quoted(out, o->prog[i]);
	}
}

static double prompt_getnum(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* What a collector model named by gcmond means, for the reader of the
 * prompt, who may not know it (daemon/model/gcmodel.h has the details). */
static const char *prompt_model_note(const char *model)
{
	if (strcmp(model, "incremental") == 0)
		return "CPython 3.14.0-3.14.4: every automatic collection is "
		    "the young generation plus an increment of the old one, "
		    "reported as generation 1; generation 2 is only "
		    "gc.collect(); threshold2 is ignored";
	if (strcmp(model, "free-threaded") == 0)
		return "free-threaded build: one stop-the-world collection of "
		    "the whole heap, reported as generation 0; only "
		    "threshold0 is read";
	if (strcmp(model, "classic") == 0)
		return "three generations, automatic collections of each";
	return "processes of several models, or not known";
}

/* One line a generation, with its model's label and, on 3.15+, the
 * interpreter's own measure of the collector's time. */
static void prompt_put_gens(FILE *f, const json_t *gens)
{
	const json_t *g;
	const char *l;
	size_t i;

	json_array_foreach(gens, i, g) {
		/* The label where it says more than the number. */
		l = json_string_value(json_object_get(g, "label"));
		if (l != NULL && strncmp(l, "generation ", 11) == 0)
			l = NULL;
		fprintf(f, "  generation %lld%s%s%s: %lld collections, %.1f ms, "
		    "max %.1f ms, %lld objects collected",
		    (long long)json_integer_value(json_object_get(g, "gen")),
		    l ? " (" : "", l ? l : "", l ? ")" : "",
		    (long long)json_integer_value(json_object_get(g, "collections")),
		    prompt_getnum(g, "gc_time_ms"), prompt_getnum(g, "max_pause_ms"),
		    (long long)json_integer_value(json_object_get(g, "collected")));
		if (json_integer_value(json_object_get(g, "collector_timed")) > 0)
			fprintf(f, "; the interpreter measured %.1f ms of "
			    "collector time over %lld of them", prompt_getnum(g,
			    "collector_time_ms"), (long long)json_integer_value(
			    json_object_get(g, "collector_timed")));
		fputc('\n', f);
	}
}

/* The run as a whole: command, interpreter, totals, generations. */
static void prompt_put_run(FILE *f, const struct pgp_run *r,
    const json_t *sum, const json_t *procs)
{
	const json_t *g, *th;
	size_t i;

	fputs("Command: ", f);
	prompt_print_command(f, r->o);
	fprintf(f, "\nPython: %s\n", json_string_value(json_object_get(
	    json_array_get(procs, 0), "python")) ? json_string_value(
	    json_object_get(json_array_get(procs, 0), "python")) : "unknown");
	if (json_is_string(json_object_get(sum, "gc_model")))
		fprintf(f, "GC model: %s (%s)\n", json_string_value(
		    json_object_get(sum, "gc_model")), prompt_model_note(
		    json_string_value(json_object_get(sum, "gc_model"))));
	fprintf(f, "Processes: %zu; wall time %.1f s\n",
	    json_array_size(procs), prompt_getnum(sum, "wall_s"));
	fprintf(f, "Collections: %lld in total; GC time %.1f ms (%.2f%% of wall "
	    "time); mean pause %.3f ms; max pause %.1f ms; p99 %.2f ms\n",
	    (long long)json_integer_value(json_object_get(sum, "collections")),
	    prompt_getnum(sum, "gc_time_ms"), prompt_getnum(sum, "gc_wall_pct"),
	    prompt_getnum(sum, "mean_pause_ms"),
	    prompt_getnum(sum, "max_pause_ms"),
	    prompt_getnum(json_object_get(sum, "percentiles_ms"), "p99"));
	prompt_put_gens(f, json_object_get(sum, "generations"));
	fprintf(f, "Pauses over the %.1f ms alert threshold: %lld\n",
	    r->o->alert_ms,
	    (long long)json_integer_value(json_object_get(sum, "alerts")));
	fprintf(f, "Uncollectable objects: %lld\n",
	    (long long)json_integer_value(json_object_get(sum, "uncollectable")));
	th = json_object_get(json_array_get(procs, 0), "thresholds");
	if (json_array_size(th) > 0) {
		fputs("gc.get_threshold(): (", f);
		json_array_foreach(th, i, g)
			fprintf(f, "%s%lld", i ? ", " : "",
			    (long long)json_integer_value(g));
		fputs(")\n", f);
	}
}

/* Each process when there are several, then the daemon's findings. */
static void prompt_put_details(FILE *f, const json_t *procs,
    const json_t *recs)
{
	const json_t *p, *rec;
	size_t i;

	if (json_array_size(procs) > 1) {
		fputs("Per process:\n", f);
		json_array_foreach(procs, i, p)
			fprintf(f, "  %s pid %lld: %lld collections, GC time "
			    "%.1f ms, max pause %.1f ms, p99 %.2f ms\n",
			    json_string_value(json_object_get(p, "role")) ?
			    json_string_value(json_object_get(p, "role")) : "?",
			    (long long)json_integer_value(json_object_get(p, "pid")),
			    (long long)json_integer_value(json_object_get(p,
			    "collections")), prompt_getnum(p, "gc_time_ms"),
			    prompt_getnum(p, "max_pause_ms"),
			    prompt_getnum(p, "p99_ms"));
	}
	if (json_array_size(recs) > 0) {
		fputs("The tool's findings:\n", f);
		json_array_foreach(recs, i, rec)
			fprintf(f, "  - %s\n", json_string_value(json_object_get(
			    rec, "message")) ? json_string_value(json_object_get(
			    rec, "message")) : "?");
	}
}

/* What GC cost the requests (--requests), when any was recorded. */
static void prompt_put_requests(FILE *f, const json_t *req)
{
	const json_t *rt;
	const char *name;
	char clean[256];
	size_t i;

	if (json_integer_value(json_object_get(req, "requests")) <= 0)
		return;
	fprintf(f, "Requests served: %lld, of which %lld (%.1f%%) waited for a "
	    "collection; latency p50 %.2f ms, p99 %.2f ms as served, p99 %.2f "
	    "ms without the GC time (GC adds %.2f ms to p99).\n",
	    (long long)json_integer_value(json_object_get(req, "requests")),
	    (long long)json_integer_value(json_object_get(req, "delayed")),
	    100 * prompt_getnum(req, "delayed_share"),
	    prompt_getnum(req, "p50_ms"), prompt_getnum(req, "p99_ms"),
	    prompt_getnum(req, "p99_without_gc_ms"),
	    prompt_getnum(req, "gc_adds_p99_ms"));
	json_array_foreach(json_object_get(req, "routes"), i, rt) {
		if (i >= 10)
			break;
		fputs("  route ", f);
		name = json_string_value(json_object_get(rt, "route"));
		/* A process's own bytes: no control byte reaches the terminal. */
		prompt_put_quoted(f, report_clean(clean, sizeof clean,
		    name != NULL ? name : "?"));
		fprintf(f, ": %lld requests, %.1f%% delayed, p99 %.2f ms, "
		    "without GC %.2f ms\n",
		    (long long)json_integer_value(json_object_get(rt, "requests")),
		    100 * prompt_getnum(rt, "delayed_share"),
		    prompt_getnum(rt, "p99_ms"),
		    prompt_getnum(rt, "p99_without_gc_ms"));
	}
	json_array_foreach(json_object_get(req, "by_generation"), i, rt) {
		if (json_integer_value(json_object_get(rt, "delayed")) <= 0)
			continue;
		name = json_string_value(json_object_get(rt, "label"));
		fprintf(f, "  %s collections delayed %.1f%% of requests by "
		    "%.2f ms on average\n", report_clean(clean, sizeof clean,
		    name != NULL ? name : "?"),
		    100 * prompt_getnum(rt, "delayed_share"),
		    prompt_getnum(rt, "mean_delay_ms"));
	}
	if (json_object_get(req, "p99_without_full_ms") != NULL)
		fprintf(f, "  without the collections that trace the old objects "
		    "p99 would be %.2f ms (they add %.2f ms to it)\n",
		    prompt_getnum(req, "p99_without_full_ms"),
		    prompt_getnum(req, "full_adds_p99_ms"));
}

char *prompt_build(const struct pgp_run *r)
{
	const json_t *procs = json_object_get(r->report, "processes");
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fputs("I run a Python service and measured its garbage collector with "
	    "gcmon (pygcprofiler). Help me reduce GC pauses and GC time "
	    "without changing what the program computes.\n\n", f);
	prompt_put_run(f, r, json_object_get(r->report, "summary"), procs);
	prompt_put_details(f, procs,
	    json_object_get(r->report, "recommendations"));
	if (r->requests != NULL)
		prompt_put_requests(f, r->requests);
	fputs("\nPlease: 1) explain what these figures say about my "
	    "allocation pattern; 2) propose concrete changes (gc.freeze() "
	    "after start-up in a prefork server, gc.set_threshold() values, "
	    "fewer reference cycles, object pooling) with code; 3) say how to "
	    "verify each change with the same measurement.\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}
