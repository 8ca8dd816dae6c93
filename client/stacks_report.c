/*
 * stacks_report.c: the text and folded forms of gcmond's "stacks" answer
 * (stacks_report.h). Called by gcmonctl.c and pygcprofiler.c. File and
 * function names come from the monitored programs: every one goes
 * through report_clean() before a terminal sees it. Never changes its
 * input; no I/O but the FILE given.
 */
#include "config.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"
#include "stacks_report.h"

static const char *stacks_report_base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s != NULL ? s + 1 : path;
}

static const char *stacks_report_str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s != NULL ? s : "?";
}

/* "file:function:line" of the leaf (the last frame) of path p. */
static void stacks_report_leaf(const json_t *p, char *buf, size_t len)
{
	const json_t *frames = json_object_get(p, "frames");
	const json_t *f = json_array_get(frames, json_array_size(frames) - 1);
	char file[256], func[256];

	if (f == NULL) {
		snprintf(buf, len, "(no Python frame: the interpreter's own, e.g. at exit)");
		return;
	}
	report_clean(file, sizeof file, stacks_report_base(
	    stacks_report_str(f, "file")));
	report_clean(func, sizeof func, stacks_report_str(f, "function"));
	snprintf(buf, len, "%s:%s:%lld", file, func,
	    (long long)json_integer_value(json_object_get(f, "line")));
}

/* "outer > ... > leaf" functions of path p, the outer ones cut to fit. */
static void stacks_report_chain(const json_t *p, char *buf, size_t len)
{
	const json_t *frames = json_object_get(p, "frames");
	size_t i, n = json_array_size(frames), used = 0, first = 0;
	char func[128];

	buf[0] = '\0';
	if (n > 6)
		first = n - 6;
	if (first > 0)
		used += (size_t)snprintf(buf, len, "... > ");
	for (i = first; i < n && used < len; i++) {
		report_clean(func, sizeof func, stacks_report_str(
		    json_array_get(frames, i), "function"));
		used += (size_t)snprintf(buf + used, len - used, "%s%s", func,
		    i + 1 < n ? " > " : "");
	}
}

static int stacks_report_cmp(const void *a, const void *b, const char *key)
{
	json_int_t x = json_integer_value(json_object_get(*(json_t *const *)a,
	    key));
	json_int_t y = json_integer_value(json_object_get(*(json_t *const *)b,
	    key));

	return x < y ? 1 : x > y ? -1 : 0;
}

static int stacks_report_by_count(const void *a, const void *b)
{
	return stacks_report_cmp(a, b, "count");
}

static int stacks_report_by_time(const void *a, const void *b)
{
	return stacks_report_cmp(a, b, "pause_ns");
}

static void stacks_report_table(FILE *out, const json_t *paths, int by_count)
{
	size_t i, n = json_array_size(paths);
	json_t **rows = malloc((n + 1) * sizeof *rows);
	char leaf[600], chain[600];

	if (rows == NULL)
		return;
	for (i = 0; i < n; i++)
		rows[i] = json_array_get(paths, i);
	qsort(rows, n, sizeof *rows, by_count ? stacks_report_by_count :
	    stacks_report_by_time);
	fprintf(out, "By %s:\n  %6s %10s %7s %4s  %s\n", by_count ?
	    "count" : "total pause", "share", "pause_ms", "count", "gen",
	    "where (file:function:line)  <- path");
	for (i = 0; i < n && i < STACKS_REPORT_TOP; i++) {
		stacks_report_leaf(rows[i], leaf, sizeof leaf);
		stacks_report_chain(rows[i], chain, sizeof chain);
		fprintf(out, "  %5.1f%% %10.1f %7lld %4lld  %s  <- %s\n",
		    100.0 * json_number_value(json_object_get(rows[i], by_count ?
		    "share_count" : "share_time")),
		    (double)json_integer_value(json_object_get(rows[i],
		    "pause_ns")) / 1e6,
		    (long long)json_integer_value(json_object_get(rows[i], "count")),
		    (long long)json_integer_value(json_object_get(rows[i],
		    "generation")), leaf, chain);
	}
	free(rows);
}

void stacks_report(FILE *out, const json_t *stacks, int quiet)
{
	const json_t *paths = json_object_get(stacks, "paths");
	json_int_t count = json_integer_value(json_object_get(stacks, "count"));

	if (count == 0 && quiet)
		return;
	fprintf(out, "\n=== WHERE THE PAUSES LAND ===\n");
	fprintf(out, "%lld collections with a Python stack (generation 2, "
	    "over the alert threshold, or sampled), %.1f ms of pause\n",
	    (long long)count, (double)json_integer_value(json_object_get(stacks,
	    "pause_ns")) / 1e6);
	if (json_integer_value(json_object_get(stacks, "dropped")) > 0)
		fprintf(out, "(%lld more were captured but refused by a full "
		    "stack ring)\n", (long long)json_integer_value(
		    json_object_get(stacks, "dropped")));
	if (json_integer_value(json_object_get(stacks, "given_up")) > 0)
		fprintf(out, "(%lld processes' stacks were given up: their "
		    "shared area was inconsistent)\n", (long long)
		    json_integer_value(json_object_get(stacks, "given_up")));
	if (count == 0)
		return;
	stacks_report_table(out, paths, 0);
	stacks_report_table(out, paths, 1);
}

static void stacks_report_tr(char *s);

/* "file:function;...;gen G" of path p, root first, into buf. */
static void stacks_report_fold_key(const json_t *p, char *buf, size_t len)
{
	const json_t *frames = json_object_get(p, "frames"), *f;
	size_t i, used = 0;
	char file[512], func[256];

	buf[0] = '\0';
	if (json_array_size(frames) == 0)	/* e.g. the collection at exit */
		used = (size_t)snprintf(buf, len, "[no Python frame];");
	json_array_foreach(frames, i, f) {
		report_clean(file, sizeof file, stacks_report_str(f, "file"));
		report_clean(func, sizeof func, stacks_report_str(f, "function"));
		stacks_report_tr(file);
		stacks_report_tr(func);
		if (used < len)
			used += (size_t)snprintf(buf + used, len - used, "%s:%s;",
			    file, func);
	}
	if (used < len)
		snprintf(buf + used, len - used, "gen %lld", (long long)
		    json_integer_value(json_object_get(p, "generation")));
}

/* ';' and ' ' separate frames and the weight: '_' in a name. */
static void stacks_report_tr(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == ';' || *s == ' ')
			*s = '_';
}

int stacks_report_folded(FILE *out, const json_t *stacks, int by_count)
{
	const json_t *paths = json_object_get(stacks, "paths"), *p, *other;
	json_t *sum = json_object(), *v;
	static char key[32768];
	const char *k;
	json_int_t w;
	size_t i;
	int n = 0;

	if (sum == NULL)
		return -1;
	json_array_foreach(paths, i, p) {
		stacks_report_fold_key(p, key, sizeof key);
		w = by_count ? json_integer_value(json_object_get(p, "count")) :
		    (json_integer_value(json_object_get(p, "pause_ns")) + 500) / 1000;
		v = json_object_get(sum, key);
		json_object_set_new(sum, key, json_integer(w +
		    (v != NULL ? json_integer_value(v) : 0)));
	}
	json_object_foreach(sum, k, v) {
		fprintf(out, "%s %lld\n", k, (long long)json_integer_value(v));
		n++;
	}
	other = json_object_get(stacks, "other");
	w = by_count ? json_integer_value(json_object_get(other, "count")) :
	    (json_integer_value(json_object_get(other, "pause_ns")) + 500) / 1000;
	if (w > 0) {
		fprintf(out, "[other] %lld\n", (long long)w);
		n++;
	}
	json_decref(sum);
	return ferror(out) ? -1 : n;
}
