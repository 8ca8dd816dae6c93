/*
 * report.c: the text rendering of control answers (doc/control.md): the
 * GMEM event and alert lines, the summary, the per-process table and the
 * recommendations. Called by gcmonctl and pygcprofiler; writes only to
 * the FILE it is given, never changes its input, never exits.
 *
 * Every key of an object may be missing or null (an older or newer daemon,
 * a process that has not sent a sample yet): such a figure prints "n/a",
 * never a crash or a made-up zero.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "protocol.h"
#include "report.h"

#define REPORT_NA	"n/a"

/* A number whether jansson holds it as integer or real; NAN if absent. */
static double report_num(const json_t *o, const char *key)
{
	const json_t *v = o ? json_object_get(o, key) : NULL;

	if (v == NULL || !json_is_number(v))
		return NAN;
	return json_number_value(v);
}

static long long report_int(const json_t *o, const char *key, long long dflt)
{
	const json_t *v = o ? json_object_get(o, key) : NULL;

	if (v == NULL)
		return dflt;
	if (json_is_integer(v))
		return (long long)json_integer_value(v);
	/* In range before the cast: out of it, the conversion is undefined. */
	if (json_is_real(v) && fabs(json_real_value(v)) < 9.2e18)
		return (long long)json_real_value(v);
	return dflt;
}

static const char *report_str(const json_t *o, const char *key, const char *dflt)
{
	const json_t *v = o ? json_object_get(o, key) : NULL;

	return json_is_string(v) ? json_string_value(v) : dflt;
}

const char *report_clean(char *buf, size_t len, const char *s)
{
	size_t off = 0;

	if (len == 0)
		return buf;
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f) {
			if (len - off <= 4)
				break;
			snprintf(buf + off, len - off, "\\x%02x", ch);
			off += 4;
		} else {
			if (len - off <= 1)
				break;
			buf[off++] = (char)ch;
		}
	}
	buf[off] = '\0';
	return buf;
}

/* report_str, cleaned into buf. */
static const char *report_cstr(char *buf, size_t len, const json_t *o,
    const char *key, const char *dflt)
{
	return report_clean(buf, len, report_str(o, key, dflt));
}

/* " (young+incremental)" for label l, into buf; "" when NULL or when it
 * only says "generation N" again. */
static const char *report_label(char *buf, size_t len, const char *l)
{
	char clean[64];

	if (l == NULL || strncmp(l, "generation ", 11) == 0)
		snprintf(buf, len, "%s", "");
	else
		snprintf(buf, len, " (%s)", report_clean(clean, sizeof clean, l));
	return buf;
}

/* " (young+incremental)": the "label" gcmond gives a generation under
 * its collector model, into buf; "" when absent or when it only says
 * "generation N" again. */
const char *report_gen_label(char *buf, size_t len, const json_t *o)
{
	return report_label(buf, len, report_str(o, "label", NULL));
}

/* The original tool's duration format: 0.213ms, 52.3ms, 1.25s; below
 * 1 us, where "%.3fms" would print 0.000ms, microseconds: 0.42us. */
static const char *report_fmt_ms(char *buf, size_t len, double ms)
{
	if (!isfinite(ms))
		snprintf(buf, len, "%s", REPORT_NA);
	else if (ms > 0 && ms < 0.001)
		snprintf(buf, len, "%.2f\u00b5s", ms * 1000.0);
	else if (ms < 1.0)
		snprintf(buf, len, "%.3fms", ms);
	else if (ms < 1000.0)
		snprintf(buf, len, "%.1fms", ms);
	else
		snprintf(buf, len, "%.2fs", ms / 1000.0);
	return buf;
}

static const char *report_fmt_count(char *buf, size_t len, long long n)
{
	if (n < 0)
		snprintf(buf, len, "%s", REPORT_NA);
	else
		snprintf(buf, len, "%lld", n);
	return buf;
}

static const char *report_fmt_bytes(char *buf, size_t len, double bytes)
{
	if (!isfinite(bytes) || bytes < 0)
		snprintf(buf, len, "%s", REPORT_NA);
	else if (bytes >= 1024.0 * 1024 * 1024)
		snprintf(buf, len, "%.2f GiB", bytes / (1024.0 * 1024 * 1024));
	else
		snprintf(buf, len, "%.1f MiB", bytes / (1024.0 * 1024));
	return buf;
}

static void report_pid_prefix(FILE *out, const json_t *o, int with_pid)
{
	fputs("GMEM ", out);
	if (with_pid)
		fprintf(out, "PID %lld | ", report_int(o, "pid", -1));
}

/* The GC STOP line, whichever form the event came in. */
static void report_gc_stop(FILE *out, long long gen, const char *label,
    double ms, long long collected, long long uncollectable)
{
	char d[32], l[80];

	fprintf(out, "GC STOP  | Gen: %lld%s | Duration: %s | Collected: %lld | "
	    "Uncollectable: %lld\n", gen, report_label(l, sizeof l, label),
	    report_fmt_ms(d, sizeof d, ms), collected, uncollectable);
}

void report_event_line(FILE *out, const json_t *event, int with_pid)
{
	report_pid_prefix(out, event, with_pid);
	report_gc_stop(out, report_int(event, "gen", -1),
	    report_str(event, "label", NULL), report_num(event, "duration_ms"),
	    report_int(event, "collected", 0),
	    report_int(event, "uncollectable", 0));
}

/* ---- the same line from a WATCH_EVENTS record, without printf -------
 *
 * The launcher prints one a collection: printf's parsing and its double
 * formatting were most of what a collection cost it. From the integers
 * of the record, the text is report_gc_stop's for the EVENT object
 * gcmond would have sent (djson_event), byte for byte: a pause is
 * rounded to the unit of its format as printf rounds the double
 * pause_ns / 1e6, which for an integer count of ns differs only at an
 * exact tie (or past 2^50 ns, where the double is coarser than 1 ns):
 * those few go through report_fmt_ms itself. check_report compares the
 * two over ranges of every format. */

static char *report_put(char *p, const char *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define REPORT_PUT(p, lit)	report_put((p), (lit), sizeof(lit) - 1)

static char *report_put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

/* v / 10^digits with digits decimals ("1.250"). */
static char *report_put_fixed(char *p, uint64_t v, unsigned digits)
{
	char frac[4];
	unsigned i;

	for (i = digits; i > 0; i--) {
		frac[i - 1] = (char)('0' + v % 10);
		v /= 10;
	}
	p = report_put_u64(p, v);
	*p++ = '.';
	return report_put(p, frac, digits);
}

/* The pause as report_fmt_ms((double)ns / 1e6) writes it. */
static char *report_put_pause(char *p, uint64_t ns)
{
	static const struct {
		uint64_t below;		/* ns */
		uint64_t unit;		/* ns a last digit */
		unsigned digits;
		const char *suffix;
		size_t suffix_len;
	} fmts[] = {
		{ 1000, 10, 2, "\u00b5s", sizeof("\u00b5s") - 1 },
		{ 1000000, 1000, 3, "ms", 2 },
		{ 1000000000, 100000, 1, "ms", 2 },
		{ UINT64_MAX, 10000000, 2, "s", 1 },
	};
	char d[32];
	size_t i = 0;

	if (ns > 0)
		while (ns >= fmts[i].below)
			i++;
	else
		i = 1;				/* 0: "0.000ms" */
	if (ns >= (1ull << 50) || ns % fmts[i].unit == fmts[i].unit / 2) {
		report_fmt_ms(d, sizeof d, (double)ns / 1e6);
		return report_put(p, d, strlen(d));
	}
	p = report_put_fixed(p, (ns + fmts[i].unit / 2) / fmts[i].unit,
	    fmts[i].digits);
	return report_put(p, fmts[i].suffix, fmts[i].suffix_len);
}

void report_event_rec_line(FILE *out, const struct proto_watch_event *e,
    int with_pid)
{
	const char *label = proto_gen_label(e->gc_model, e->generation);
	char line[256], clean[64], *p = line;
	size_t n;

	p = REPORT_PUT(p, "GMEM ");
	if (with_pid) {
		p = REPORT_PUT(p, "PID ");
		p = report_put_u64(p, e->pid);
		p = REPORT_PUT(p, " | ");
	}
	p = REPORT_PUT(p, "GC STOP  | Gen: ");
	p = report_put_u64(p, e->generation);
	if (strncmp(label, "generation ", 11) != 0) {
		report_clean(clean, sizeof clean, label);
		n = strlen(clean);
		p = REPORT_PUT(p, " (");
		p = report_put(p, clean, n);
		*p++ = ')';
	}
	p = REPORT_PUT(p, " | Duration: ");
	p = report_put_pause(p, e->pause_ns);
	p = REPORT_PUT(p, " | Collected: ");
	p = report_put_u64(p, e->collected > (uint64_t)INT64_MAX ?
	    (uint64_t)INT64_MAX : e->collected);
	p = REPORT_PUT(p, " | Uncollectable: ");
	p = report_put_u64(p, e->uncollectable);
	*p++ = '\n';
	fwrite(line, 1, (size_t)(p - line), out);
}

void report_alert_line(FILE *out, const json_t *alert, int with_pid)
{
	char d[32], l[80];

	report_pid_prefix(out, alert, with_pid);
	fprintf(out, "ALERT | Gen %lld%s pause %s exceeded %.1fms threshold\n",
	    report_int(alert, "gen", -1), report_gen_label(l, sizeof l, alert),
	    report_fmt_ms(d, sizeof d, report_num(alert, "duration_ms")),
	    report_num(alert, "threshold_ms"));
}

/* " (from N pauses)" when n is known and not every collection; with
 * n < 0, unknown: " (from the pauses received)". */
static void report_from(FILE *out, long long n, long long collections)
{
	if (n == -2)
		fputs(" (from the pauses received, not all)", out);
	else if (n >= 0 && n != collections)
		fprintf(out, " (from %lld pause%s)", n, n == 1 ? "" : "s");
}

/* How many pauses the summary's histograms hold: gcmond's count (a
 * `durations` answer) if given, else the pauses seen less those the
 * agents dropped; -1 if unknown. */
static long long report_npauses(const json_t *summary, const json_t *pauses)
{
	long long seen = report_int(summary, "seen", -1);

	if (pauses != NULL)
		return report_int(pauses, "pauses", -1);
	return seen < 0 ? -1 : seen - report_int(summary, "dropped", 0);
}

static void report_percentiles(FILE *out, const json_t *pct, long long n,
    long long collections)
{
	static const char *const keys[] = PROTO_PCT_NAMES;
	char d[32];
	size_t i;

	fputs("Pause percentiles:", out);
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
		fprintf(out, " %s %s", keys[i],
		    report_fmt_ms(d, sizeof d, report_num(pct, keys[i])));
	report_from(out, n, collections);
	fputc('\n', out);
}

/* The "pauses" row of generation g in a `durations` answer, or NULL. */
static const json_t *report_gen_pauses(const json_t *pauses, long long g)
{
	const json_t *e;
	size_t i;

	json_array_foreach(json_object_get(pauses, "generations"), i, e)
		if (report_int(e, "gen", -1) == g)
			return e;
	return NULL;
}

static void report_generations(FILE *out, const json_t *gens,
    const json_t *pauses, long long dropped)
{
	char t[32], m[32], p[32], l[80];
	const json_t *g;
	long long n, gen;
	size_t i;

	fputs("\nCollections by generation:\n", out);
	json_array_foreach(gens, i, g) {
		long long unseen = report_int(g, "unseen", 0);

		gen = report_int(g, "gen", (long long)i);
		if (pauses != NULL)
			n = report_int(report_gen_pauses(pauses, gen), "pauses", -1);
		else
			n = dropped > 0 ? -2 : report_int(g, "seen", -1);

		fprintf(out, "  Generation %lld%s: %lld collections (GC time %s, "
		    "max %s, p99 %s", gen, report_gen_label(l, sizeof l, g),
		    report_int(g, "collections", 0),
		    report_fmt_ms(t, sizeof t, report_num(g, "gc_time_ms")),
		    report_fmt_ms(m, sizeof m, report_num(g, "max_pause_ms")),
		    report_fmt_ms(p, sizeof p,
			report_num(json_object_get(g, "percentiles_ms"), "p99")));
		if (unseen > 0)
			fprintf(out, "; %lld before the agent loaded", unseen);
		if (report_int(g, "collector_timed", 0) > 0)
			fprintf(out, "; interpreter-measured %s over %lld",
			    report_fmt_ms(t, sizeof t,
			    report_num(g, "collector_time_ms")),
			    report_int(g, "collector_timed", 0));
		if (n == -2)
			fputs("; p99 from the pauses received", out);
		else if (n >= 0 && n != report_int(g, "collections", -1))
			fprintf(out, "; p99 from %lld pause%s", n,
			    n == 1 ? "" : "s");
		fputs(")\n", out);
	}
}

/* "<1ms", "1-5ms", ">=100ms": the original tool's labels. */
static void report_bucket_label(char *buf, size_t len, const json_t *durations,
    size_t i)
{
	double hi = report_num(json_array_get(durations, i), "le_ms");
	double lo = i > 0 ?
	    report_num(json_array_get(durations, i - 1), "le_ms") : NAN;

	if (isfinite(hi) && i == 0)
		snprintf(buf, len, "<%gms", hi);
	else if (isfinite(hi))
		snprintf(buf, len, "%g-%gms", lo, hi);
	else if (isfinite(lo))
		snprintf(buf, len, ">=%gms", lo);
	else
		snprintf(buf, len, "all");
}

static void report_durations(FILE *out, const json_t *durations,
    long long collections)
{
	long long total = 0, n;
	const json_t *d;
	char label[64];
	size_t i;

	json_array_foreach(durations, i, d)
		total += report_int(d, "count", 0);
	fputs("\nPause durations", out);
	report_from(out, total, collections);
	fputs(":\n", out);
	json_array_foreach(durations, i, d) {
		report_bucket_label(label, sizeof label, durations, i);
		n = report_int(d, "count", 0);
		fprintf(out, "  %-12s %8lld  %5.1f%%\n", label, n,
		    total > 0 ? 100.0 * (double)n / (double)total : 0.0);
	}
}

static void report_gen_counts(char *buf, size_t len, const json_t *gens)
{
	const json_t *g;
	size_t i, off = 0;
	int n;

	buf[0] = '\0';
	json_array_foreach(gens, i, g) {
		n = snprintf(buf + off, len - off, "%s%lld", i ? "/" : "",
		    report_int(g, "collections", 0));
		if (n < 0 || (size_t)n >= len - off)
			break;
		off += (size_t)n;
	}
	if (off == 0)
		snprintf(buf, len, "%s", REPORT_NA);
}

/* argv joined with spaces, cleaned, cut to width columns with "..." */
static const char *report_command(char *buf, size_t len, const json_t *argv,
    size_t width)
{
	char arg[512];
	const json_t *a;
	size_t i, off = 0, n;

	buf[0] = '\0';
	json_array_foreach(argv, i, a) {
		report_clean(arg, sizeof arg, json_is_string(a) ?
		    json_string_value(a) : "?");
		n = strlen(arg);
		if (off + (i > 0) + n >= len)
			n = len - off - (i > 0) - 1;
		if (i > 0 && off + 1 < len)
			buf[off++] = ' ';
		memcpy(buf + off, arg, n);
		off += n;
		buf[off] = '\0';
		if (off + 1 >= len)
			break;
	}
	if (off == 0)
		snprintf(buf, len, "?");
	if (width >= 4 && strlen(buf) > width)
		snprintf(buf + width - 3, len - (width - 3), "...");
	return buf;
}

/* A memory figure of process pr: "denied" when gcmond was refused its
 * smaps_rollup (never a 0 it did not read), n/a when not read. */
static const char *report_mem_bytes(char *buf, size_t len, const json_t *pr,
    const char *key)
{
	const char *mem = report_str(pr, "memory", "");

	if (strcmp(mem, "not readable: permission") == 0) {
		snprintf(buf, len, "denied");
		return buf;
	}
	return report_fmt_bytes(buf, len, report_num(pr, key));
}

/* unshared_by_gc_bytes; "-" for a process not forked (no parent to
 * share with). */
static const char *report_unshared(char *buf, size_t len, const json_t *pr)
{
	if (strcmp(report_str(pr, "origin", ""), "fork") != 0) {
		snprintf(buf, len, "-");
		return buf;
	}
	return report_mem_bytes(buf, len, pr, "unshared_by_gc_bytes");
}

/* The summary's memory lines: what the live processes hold, what the
 * forked workers' gen-2 collections unshared, what was refused. */
static void report_memory(FILE *out, const json_t *s)
{
	char a[32], b[32], c[32];
	long long nun = report_int(s, "unshared_processes", 0);
	long long refused = report_int(s, "memory_refused", 0);
	long long frozen = report_int(s, "frozen_objects", 0);
	double un = report_num(s, "unshared_by_gc_bytes");
	double heap = report_num(s, "master_anon_bytes");

	if (isfinite(report_num(s, "pss_bytes")))
		fprintf(out, "Memory of the live processes: PSS %s, shared %s, "
		    "private dirty %s\n", report_fmt_bytes(a, sizeof a,
		    report_num(s, "pss_bytes")), report_fmt_bytes(b, sizeof b,
		    report_num(s, "shared_bytes")), report_fmt_bytes(c,
		    sizeof c, report_num(s, "private_dirty_bytes")));
	if (nun > 0 && isfinite(un)) {
		fprintf(out, "Unshared by gen-2 collections: %s in %lld forked "
		    "workers (%s each", report_fmt_bytes(a, sizeof a, un), nun,
		    report_fmt_bytes(b, sizeof b, un / (double)nun));
		if (isfinite(heap) && heap > 0)
			fprintf(out, "; master's heap %s", report_fmt_bytes(c,
			    sizeof c, heap));
		fputs(")\n", out);
	}
	if (frozen > 0)
		fprintf(out, "Frozen objects (gc.freeze): %lld\n", frozen);
	if (refused > 0)
		fprintf(out, "Memory not readable: %lld processes (permission: "
		    "gcmond needs CAP_SYS_PTRACE or their user)\n", refused);
}

/* The STATE column: live, lost, or how an ended process ended (gcmond's
 * ended_by): "exit" (its exit handlers ran), "_exit N" (os._exit(N), as
 * billiard's and multiprocessing's workers end), "abrupt" (a signal or a
 * crash), "detach" (gcmon.stop(): it lives on). */
static const char *report_state(char *buf, size_t len, const json_t *pr)
{
	const char *state = report_str(pr, "state", "?");
	const char *by = report_str(pr, "ended_by", NULL);

	if (strcmp(state, "ended") != 0 || by == NULL)
		return report_clean(buf, len, state);
	if (strcmp(by, "os._exit") == 0 &&
	    json_is_integer(json_object_get(pr, "exit_code")))
		snprintf(buf, len, "_exit %lld", report_int(pr, "exit_code", 0));
	else
		report_clean(buf, len, by);
	return buf;
}

#define REPORT_COMMAND_WIDTH	40	/* a command wider is cut, "..." */
#define REPORT_GCMONCTL_COMMAND_WIDTH	60	/* its table has room */

static void report_process_lines(FILE *out, const json_t *processes)
{
	char gens[96], t[32], m[32], p[32], rss[32], role[32], state[32];
	char cmd[512], un[32];
	const json_t *pr;
	size_t i;

	fputs("\nPer process (collections gen0/gen1/...; UNSHARED: private "
	    "memory its gen-2 collections copied from its parent; RSS: the "
	    "last sample, or at exit):\n", out);
	fprintf(out, "  %-7s %8s  %-9s  %-20s %10s %10s %10s %10s %10s  %s\n",
	    "ROLE", "PID", "STATE", "COLLECTIONS", "GC TIME", "MAX PAUSE",
	    "P99", "UNSHARED", "RSS", "COMMAND");
	json_array_foreach(processes, i, pr) {
		report_gen_counts(gens, sizeof gens,
		    json_object_get(pr, "generations"));
		fprintf(out, "  %-7s %8lld  %-9s  %-20s %10s %10s %10s %10s "
		    "%10s  %s\n",
		    report_cstr(role, sizeof role, pr, "role", "?"),
		    report_int(pr, "pid", -1),
		    report_state(state, sizeof state, pr), gens,
		    report_fmt_ms(t, sizeof t, report_num(pr, "gc_time_ms")),
		    report_fmt_ms(m, sizeof m, report_num(pr, "max_pause_ms")),
		    report_fmt_ms(p, sizeof p, report_num(pr, "p99_ms")),
		    report_unshared(un, sizeof un, pr),
		    report_fmt_bytes(rss, sizeof rss, report_num(pr, "rss_bytes")),
		    report_command(cmd, sizeof cmd, json_object_get(pr, "argv"),
			REPORT_COMMAND_WIDTH));
	}
}

/* "Total GC time: 8.30s (29.00% of 28.6 process-seconds)": the share is
 * over the processes' wall times added up (gc_wall_pct), so the line
 * names that whole, found from the share itself. CPU time is printed
 * beside it with no share: pauses are monotonic time, waits for a core
 * included, so pause over CPU time is no fraction and can pass 100%. */
static void report_gc_time(FILE *out, const json_t *summary)
{
	double gc_ms = report_num(summary, "gc_time_ms");
	double pct = report_num(summary, "gc_wall_pct");
	double cpu = report_num(summary, "cpu_s");
	double proc_s = 0;
	char a[32];

	if (isfinite(pct) && pct > 0 && isfinite(gc_ms) && gc_ms > 0)
		proc_s = gc_ms / 1000.0 * 100.0 / pct;
	fprintf(out, "Total GC time: %s", report_fmt_ms(a, sizeof a, gc_ms));
	if (proc_s > 0)
		fprintf(out, " (%.2f%% of %.*f process-seconds: the processes' "
		    "wall times added up)", pct, proc_s < 1 ? 3 : 1, proc_s);
	else if (isfinite(pct))
		fprintf(out, " (%.2f%% of the processes' wall times)", pct);
	fputc('\n', out);
	if (isfinite(cpu))
		fprintf(out, "CPU time (processes added up): %.2fs\n", cpu);
}

void report_summary(FILE *out, const json_t *summary, const json_t *processes,
    const json_t *durations, const struct report_opts *o)
{
	char a[32], b[32];
	long long nproc = report_int(summary, "processes", -1);
	long long unseen = report_int(summary, "unseen", 0);
	long long dropped = report_int(summary, "dropped", 0);
	long long ncoll = report_int(summary, "collections", -1);
	const json_t *pauses = o ? o->pauses : NULL;
	double thr = report_num(summary, "alert_threshold_ms");

	if (!isfinite(thr) && o)
		thr = o->alert_threshold_ms;
	fputs("\n=== GC MONITORING SUMMARY ===\n", out);
	if (nproc > 1 || json_array_size(processes) > 1)
		fprintf(out, "Processes: %lld (%lld still live)\n", nproc,
		    report_int(summary, "live", 0));
	fprintf(out, "Wall time: %.1fs\n", report_num(summary, "wall_s"));
	if (report_str(summary, "gc_model", NULL) != NULL)
		fprintf(out, "GC model: %s\n", report_cstr(a, sizeof a,
		    summary, "gc_model", "?"));
	fprintf(out, "Total GC collections: %s",
	    report_fmt_count(a, sizeof a, ncoll));
	if (unseen > 0)
		fprintf(out, " (%lld before the agent loaded, pauses not seen)",
		    unseen);
	fputc('\n', out);
	report_gc_time(out, summary);
	fprintf(out, "Average GC duration: %s\n",
	    report_fmt_ms(a, sizeof a, report_num(summary, "mean_pause_ms")));
	fprintf(out, "Maximum GC duration: %s\n",
	    report_fmt_ms(a, sizeof a, report_num(summary, "max_pause_ms")));
	report_percentiles(out, json_object_get(summary, "percentiles_ms"),
	    report_npauses(summary, pauses), ncoll);
	fprintf(out, "Objects collected: %lld, uncollectable: %lld\n",
	    report_int(summary, "collected", 0),
	    report_int(summary, "uncollectable", 0));
	fprintf(out, "Pauses over %.1fms: %lld\n", thr,
	    report_int(summary, "alerts", 0));
	if (isfinite(report_num(summary, "max_rss_bytes")))
		fprintf(out, "Peak RSS (largest process): %s\n",
		    report_fmt_bytes(b, sizeof b,
		    report_num(summary, "max_rss_bytes")));
	report_memory(out, summary);
	if (dropped > 0)
		fprintf(out, "Dropped events: %lld (totals stay exact; detail "
		    "of those pauses lost)\n", dropped);
	report_generations(out, json_object_get(summary, "generations"),
	    pauses, dropped);
	if (durations && json_array_size(durations) > 0)
		report_durations(out, durations, ncoll);
	if (processes && json_array_size(processes) > 1)
		report_process_lines(out, processes);
}

void report_recommendations(FILE *out, const json_t *recs)
{
	char msg[2048];
	const json_t *r, *act;
	size_t i, j;

	fputs("\n=== GC THRESHOLD RECOMMENDATIONS ===\n", out);
	if (!json_is_array(recs) || json_array_size(recs) == 0) {
		fputs("- No changes recommended: the measured collections stay "
		    "within every rule's limits.\n", out);
		return;
	}
	json_array_foreach(recs, i, r) {
		const char *scope = report_str(r, "scope", "run");

		fprintf(out, "- [%s] %s", report_cstr(msg, 16, r, "severity",
		    "info"), report_cstr(msg + 16, sizeof msg - 16, r, "message",
		    "(no message)"));
		if (strcmp(scope, "process") == 0)
			fprintf(out, " (pid %lld)", report_int(r, "pid", -1));
		fputc('\n', out);
		json_array_foreach(json_object_get(r, "actions"), j, act)
			if (json_is_string(act))
				fprintf(out, "    -> %s\n", report_clean(msg,
				    sizeof msg, json_string_value(act)));
	}
}

enum report_place report_place_kind(const json_t *processes)
{
	enum report_place kind = REPORT_PLACE_NONE;
	const json_t *pr;
	size_t i;

	json_array_foreach(processes, i, pr) {
		if (report_str(pr, "pod", NULL) != NULL)
			return REPORT_PLACE_POD;
		if (report_str(pr, "container", NULL) != NULL)
			kind = REPORT_PLACE_CONTAINER;
	}
	return kind;
}

const char *report_place_title(enum report_place kind)
{
	return kind == REPORT_PLACE_POD ? "POD" : "CONTAINER";
}

int report_place_width(enum report_place kind)
{
	return kind == REPORT_PLACE_POD ? REPORT_PLACE_WIDTH : 12;
}

const char *report_place(char *buf, size_t len, const json_t *pr,
    enum report_place kind)
{
	const char *pod = report_str(pr, "pod", NULL);
	const char *ns = report_str(pr, "namespace", NULL);
	const char *ctr = report_str(pr, "container", NULL);
	char raw[2 * PROTO_MAX_ID + 2];
	size_t w = (size_t)report_place_width(kind);

	if (kind == REPORT_PLACE_POD && pod != NULL)
		snprintf(raw, sizeof raw, "%s%s%s", ns ? ns : "", ns ? "/" : "",
		    pod);
	else if (kind != REPORT_PLACE_NONE && ctr != NULL)
		snprintf(raw, sizeof raw, "%s", ctr);
	else
		snprintf(raw, sizeof raw, "-");
	report_clean(buf, len < w + 1 ? len : w + 1, raw);
	return buf;
}

void report_processes_table(FILE *out, const json_t *processes)
{
	char t[32], m[32], p[32], c[32], rss[32], role[32], state[32], py[64];
	char cmd[512], pss[32], un[32], model[32], place[64];
	enum report_place kind = report_place_kind(processes);
	int w = report_place_width(kind);
	const json_t *pr;
	size_t i;

	fprintf(out, "%8s %8s ", "PID", "PPID");
	if (kind != REPORT_PLACE_NONE)
		fprintf(out, "%-*s ", w, report_place_title(kind));
	fprintf(out, "%-7s %-9s %-8s %-13s %11s %10s %10s %10s %10s "
	    "%10s %10s  %s\n", "ROLE", "STATE", "PYTHON",
	    "GC MODEL", "COLLECTIONS", "GC TIME", "MAX PAUSE", "P99", "PSS", "UNSHARED",
	    "RSS", "COMMAND");
	json_array_foreach(processes, i, pr) {
		fprintf(out, "%8lld %8lld ", report_int(pr, "pid", -1),
		    report_int(pr, "ppid", -1));
		if (kind != REPORT_PLACE_NONE)
			fprintf(out, "%-*s ", w, report_place(place,
			    sizeof place, pr, kind));
		fprintf(out, "%-7s %-9s %-8s %-13s %11s %10s %10s "
		    "%10s %10s %10s %10s  %s\n",
		    report_cstr(role, sizeof role, pr, "role", "?"),
		    report_state(state, sizeof state, pr),
		    report_cstr(py, sizeof py, pr, "python", "?"),
		    report_cstr(model, sizeof model, pr, "gc_model", "?"),
		    report_fmt_count(c, sizeof c,
			report_int(pr, "collections", -1)),
		    report_fmt_ms(t, sizeof t, report_num(pr, "gc_time_ms")),
		    report_fmt_ms(m, sizeof m, report_num(pr, "max_pause_ms")),
		    report_fmt_ms(p, sizeof p, report_num(pr, "p99_ms")),
		    report_mem_bytes(pss, sizeof pss, pr, "pss_bytes"),
		    report_unshared(un, sizeof un, pr),
		    report_fmt_bytes(rss, sizeof rss, report_num(pr, "rss_bytes")),
		    report_command(cmd, sizeof cmd, json_object_get(pr, "argv"),
			REPORT_GCMONCTL_COMMAND_WIDTH));
	}
}

void report_runs_table(FILE *out, const json_t *runs)
{
	char t[32], m[32], c[32], run[256];
	const json_t *r;
	size_t i;

	fprintf(out, "%-24s %6s %5s %11s %10s %10s %9s\n", "RUN", "PROCS",
	    "LIVE", "COLLECTIONS", "GC TIME", "MAX PAUSE", "ROOT PID");
	json_array_foreach(runs, i, r) {
		long long root = report_int(r, "root_pid", -1);

		fprintf(out, "%-24s %6lld %5lld %11s %10s %10s ",
		    report_cstr(run, sizeof run, r, "run", "?"),
		    report_int(r, "processes", 0),
		    report_int(r, "live", 0),
		    report_fmt_count(c, sizeof c,
			report_int(r, "collections", -1)),
		    report_fmt_ms(t, sizeof t, report_num(r, "gc_time_ms")),
		    report_fmt_ms(m, sizeof m, report_num(r, "max_pause_ms")));
		if (root >= 0)
			fprintf(out, "%9lld\n", root);
		else
			fprintf(out, "%9s\n", REPORT_NA);
	}
}
