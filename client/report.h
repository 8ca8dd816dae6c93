/*
 * report.h: renders control answers (doc/control.md objects) as the text
 * users read: the GMEM event and alert lines, the summary, the per-process
 * table and the recommendations. The one implementation of the report,
 * shared by gcmonctl and pygcprofiler. Writes to the FILE given; no other
 * I/O; never changes its input.
 */
#ifndef GCMON_REPORT_H
#define GCMON_REPORT_H

#include <stdio.h>
#include <jansson.h>

struct report_opts {
	double alert_threshold_ms;
	const double *duration_buckets_ms;	/* ascending edges, or NULL */
	size_t nbuckets;
	int color;				/* ANSI colours */
	/* gcmond's `durations` answer ("pauses", "generations": [{"gen",
	 * "pauses"}]): how many pauses the percentiles come from. NULL:
	 * derived from the summary (seen - dropped). */
	const json_t *pauses;
};

/* "GMEM GC STOP  | Gen: 2 | Duration: 52.3ms | Collected: 15234 |
 * Uncollectable: 0", with "PID 123 | " after GMEM when with_pid. */
void report_event_line(FILE *out, const json_t *event, int with_pid);
/* The same line, byte for byte, from a WATCH_EVENTS record (codec.h). */
struct proto_watch_event;
void report_event_rec_line(FILE *out, const struct proto_watch_event *e,
    int with_pid);
/* "GMEM ALERT | Gen 2 pause 52.3ms exceeded 50.0ms threshold" (+ pid). */
void report_alert_line(FILE *out, const json_t *alert, int with_pid);

/* "=== GC MONITORING SUMMARY ===" block for a SUMMARY object; processes
 * (array of PROCESS, may be NULL) adds one line per process when there
 * are several. durations (array of {"le_ms": x|null, "count": n}, may be
 * NULL) adds the --duration-buckets histogram. Every percentile and
 * histogram not over all collections says how many pauses it is from;
 * no line gives a share above 100% or a share of an unnamed whole. */
void report_summary(FILE *out, const json_t *summary, const json_t *processes,
    const json_t *durations, const struct report_opts *o);

/* "=== GC THRESHOLD RECOMMENDATIONS ===" block for an array of REC. */
void report_recommendations(FILE *out, const json_t *recs);

/* Copies s into buf (truncated to len) with each control byte (below
 * 0x20, and 0x7f) written as \xNN: run ids, argv, type names come from
 * any allowed peer and must not reach a terminal raw. Returns buf. */
const char *report_clean(char *buf, size_t len, const char *s);

/* gcmonctl tables. */
void report_processes_table(FILE *out, const json_t *processes);
/* The CONTAINER (or POD) column of the process tables (gcmonctl
 * processes, top): shown only when a process runs in one; POD when one
 * carries Kubernetes' pod name. */
enum report_place {
	REPORT_PLACE_NONE = 0,
	REPORT_PLACE_CONTAINER,
	REPORT_PLACE_POD
};
#define REPORT_PLACE_WIDTH	24	/* the POD column's; CONTAINER's 12 */
enum report_place report_place_kind(const json_t *processes);
/* Its title, and the width its values are cut to. */
const char *report_place_title(enum report_place kind);
int report_place_width(enum report_place kind);
/* A process's value: its container id's first 12 characters, or its
 * "namespace/pod"; "-" when it has none. Cleaned, cut to the width. */
const char *report_place(char *buf, size_t len, const json_t *pr,
    enum report_place kind);
void report_runs_table(FILE *out, const json_t *runs);

/* " (young+incremental)": the "label" gcmond gives a generation (or an
 * event, an alert) under its collector model, into buf; "" when absent
 * or when it only says "generation N" again. Returns buf. */
const char *report_gen_label(char *buf, size_t len, const json_t *o);

#endif /* GCMON_REPORT_H */
