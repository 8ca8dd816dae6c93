/*
 * requests_report.c: renders gcmond's `requests` answer as text (see
 * requests_report.h): the whole, the percentiles as served and without
 * GC time, the GC delay histogram, one line per route and per worker,
 * the slowest requests with the collections that hit them. Called by
 * gcmonctl.c and pygcprofiler.c. Route names and file names come from
 * the monitored processes: every string goes through report_clean.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "report.h"
#include "requests_report.h"

#define RR_ROUTES	20	/* routes listed, most requests first */
#define RR_SLOWEST	5

static double rr_num(const json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static long long rr_int(const json_t *o, const char *k)
{
	return (long long)json_integer_value(json_object_get(o, k));
}

static const char *rr_str(char *buf, size_t len, const json_t *o,
    const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return report_clean(buf, len, s != NULL ? s : "?");
}

static void rr_pcts(FILE *out, const json_t *o)
{
	fprintf(out, "Latency (ms)    %9s %9s %9s %9s\n", "p50", "p90", "p99",
	    "p99.9");
	fprintf(out, "  as served     %9.2f %9.2f %9.2f %9.2f\n",
	    rr_num(o, "p50_ms"), rr_num(o, "p90_ms"), rr_num(o, "p99_ms"),
	    rr_num(o, "p99_9_ms"));
	fprintf(out, "  without GC    %9.2f %9.2f %9.2f %9.2f\n",
	    rr_num(o, "p50_without_gc_ms"), rr_num(o, "p90_without_gc_ms"),
	    rr_num(o, "p99_without_gc_ms"), rr_num(o, "p99_9_without_gc_ms"));
	fprintf(out, "GC adds %.2f ms to p99 (%.2f -> %.2f ms).\n",
	    rr_num(o, "gc_adds_p99_ms"), rr_num(o, "p99_without_gc_ms"),
	    rr_num(o, "p99_ms"));
}

static void rr_delay_hist(FILE *out, const json_t *h)
{
	long long prev = 0, c;
	const json_t *b;
	size_t i;

	if (!json_is_array(h))
		return;
	fprintf(out, "GC delay per request:");
	json_array_foreach(h, i, b) {
		c = rr_int(b, "count");
		if (i == 0)
			fprintf(out, " none %lld", c);
		else if (c > prev && json_is_string(json_object_get(b, "le_ms")))
			fprintf(out, " | longer %lld", c - prev);
		else if (c > prev)
			fprintf(out, " | <=%g ms %lld", rr_num(b, "le_ms"),
			    c - prev);
		prev = c;
	}
	fputc('\n', out);
}

/* Per generation, the requests it delayed and by how much; what the
 * collections that trace the old objects add to p99. */
static void rr_by_gen(FILE *out, const json_t *req)
{
	const json_t *gens = json_object_get(req, "by_generation"), *g;
	char label[64];
	int any = 0;
	size_t i;

	json_array_foreach(gens, i, g) {
		if (rr_int(g, "delayed") == 0)
			continue;
		fprintf(out, "%s%s %.1f%% by %.2f ms", any ? ", " :
		    "Delayed by generation (share, mean delay): ",
		    rr_str(label, sizeof label, g, "label"),
		    100 * rr_num(g, "delayed_share"), rr_num(g, "mean_delay_ms"));
		any = 1;
	}
	if (!any)
		return;
	fprintf(out, ".\nCollections that trace the old objects add %.2f ms to "
	    "p99 (%.2f ms without them).\n", rr_num(req, "full_adds_p99_ms"),
	    rr_num(req, "p99_without_full_ms"));
}

static void rr_slow(FILE *out, const json_t *s)
{
	const json_t *h, *st, *f;
	char route[160], file[256], func[256];
	size_t i;

	fprintf(out, "  pid %lld %s: %.2f ms (status %lld), GC %.2f ms in %lld "
	    "collection%s\n", rr_int(s, "pid"),
	    rr_str(route, sizeof route, s, "route"), rr_num(s, "latency_ms"),
	    rr_int(s, "status"), rr_num(s, "gc_ms"), rr_int(s, "collections"),
	    rr_int(s, "collections") == 1 ? "" : "s");
	json_array_foreach(json_object_get(s, "hits"), i, h) {
		fprintf(out, "      gen %lld %.2f ms at +%.2f ms",
		    rr_int(h, "generation"), rr_num(h, "pause_ms"),
		    rr_num(h, "offset_ms"));
		st = json_object_get(h, "stack");
		if ((f = json_array_get(st, 0)) != NULL)
			fprintf(out, " in %s (%s:%lld)",
			    rr_str(func, sizeof func, f, "function"),
			    rr_str(file, sizeof file, f, "file"),
			    rr_int(f, "line"));
		fputc('\n', out);
	}
}

void report_requests(FILE *out, const json_t *req)
{
	const json_t *routes, *r, *w;
	char name[160], role[32];
	size_t i;

	fprintf(out, "\n=== GC AND REQUESTS ===\n");
	if (rr_int(req, "requests") == 0) {
		fprintf(out, "No request was recorded (pygcprofiler run "
		    "--requests, or gcmon.wsgi/gcmon.asgi in the code).\n");
		return;
	}
	fprintf(out, "Requests: %lld in %lld process%s; delayed by GC: %lld "
	    "(%.1f%%), %lld collections inside them, %.2f ms of GC\n",
	    rr_int(req, "requests"), rr_int(req, "processes"),
	    rr_int(req, "processes") == 1 ? "" : "es", rr_int(req, "delayed"),
	    100 * rr_num(req, "delayed_share"),
	    rr_int(req, "collections_waited"), rr_num(req, "gc_ms"));
	if (rr_int(req, "errors") || rr_int(req, "disconnects") ||
	    rr_int(req, "open_at_exit") || rr_int(req, "dropped"))
		fprintf(out, "Of them: %lld raised, %lld disconnected, %lld open "
		    "at exit; %lld not recorded (request ring full)\n",
		    rr_int(req, "errors"), rr_int(req, "disconnects"),
		    rr_int(req, "open_at_exit"), rr_int(req, "dropped"));
	rr_pcts(out, req);
	rr_delay_hist(out, json_object_get(req, "delay_histogram"));
	rr_by_gen(out, req);
	routes = json_object_get(req, "routes");
	if (json_array_size(routes) > 0)
		fprintf(out, "%-36s %9s %8s %9s %9s %9s\n", "Route", "requests",
		    "delayed", "p99 ms", "w/o GC", "GC adds");
	json_array_foreach(routes, i, r) {
		if (i >= RR_ROUTES) {
			fprintf(out, "  (%zu more routes: gcmonctl requests "
			    "--json)\n", json_array_size(routes) - i);
			break;
		}
		fprintf(out, "  %-34.34s %9lld %7.1f%% %9.2f %9.2f %9.2f\n",
		    rr_str(name, sizeof name, r, "route"), rr_int(r, "requests"),
		    100 * rr_num(r, "delayed_share"), rr_num(r, "p99_ms"),
		    rr_num(r, "p99_without_gc_ms"), rr_num(r, "gc_adds_p99_ms"));
	}
	if (json_array_size(json_object_get(req, "workers")) > 1) {
		fprintf(out, "%-18s %9s %8s %9s %9s\n", "Worker", "requests",
		    "delayed", "p99 ms", "w/o GC");
		json_array_foreach(json_object_get(req, "workers"), i, w)
			fprintf(out, "  %-8lld %-7s %9lld %7.1f%% %9.2f %9.2f\n",
			    rr_int(w, "pid"), rr_str(role, sizeof role, w, "role"),
			    rr_int(w, "requests"),
			    100 * rr_num(w, "delayed_share"), rr_num(w, "p99_ms"),
			    rr_num(w, "p99_without_gc_ms"));
	}
	if (json_array_size(json_object_get(req, "slowest")) > 0)
		fprintf(out, "Slowest requests, with the collections that hit "
		    "them:\n");
	json_array_foreach(json_object_get(req, "slowest"), i, r) {
		if (i >= RR_SLOWEST)
			break;
		rr_slow(out, r);
	}
}
