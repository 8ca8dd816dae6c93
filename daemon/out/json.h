/*
 * json.h: the doc/control.md objects (SUMMARY, PROCESS, RUN, GEN, REC,
 * EVENT, ALERT, OBJECTS) built from agg.h state with jansson. Called by
 * control.c (answers), events.c (the watch stream and the JSON lines
 * log) and server.c (errors it answers itself); with stacks_answer.c and
 * requests_answer.c, the only daemon files that build JSON.
 * No I/O. Every function returns a new reference, or NULL when out of
 * memory; "steals" marks an argument whose reference it takes.
 */
#ifndef GCMON_DAEMON_JSON_H
#define GCMON_DAEMON_JSON_H

#include <sys/types.h>

#include <jansson.h>

#include "agg.h"
#include "alerts.h"

json_t *djson_process(const struct agg *a, const struct agg_proc *p);
/* scope: run r, process p, or the host when both are NULL. */
json_t *djson_summary(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p);
json_t *djson_run(const struct agg *a, const struct agg_run *r);
/* [PROCESS] of run r (all runs when NULL), ordered by start. */
json_t *djson_processes(const struct agg *a, const struct agg_run *r);
/* [REC] for run r, process p, or the host. */
json_t *djson_recommendations(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p);
json_t *djson_event(const struct agg_proc *p, const struct proto_event *e);
json_t *djson_alert(const struct agg *a, const struct agg_proc *p,
    const struct proto_event *e);
/* A log line of alerts.c: {"type": "alert", "alert": kind, ...}; its
 * "time" is the pause's, or now_real (Unix s) for the other kinds. */
json_t *djson_alert_line(const struct alerts_line *l, double now_real);
/* [{"pid", "total", "types"}] of run r's OBJECTS (garbage 0) or GARBAGE. */
json_t *djson_types(const struct agg_run *r, int garbage);


/* Answers (doc/control.md). */
json_t *djson_error(const char *code, const char *msg);
/* body (steals) with "ok": true; NULL if body is NULL. */
json_t *djson_ok(json_t *body);
/* {key: value} (steals value; NULL if it is NULL); key NULL: {}. */
json_t *djson_keyed(const char *key, json_t *value);
json_t *djson_ping(const struct agg *a, pid_t pid, double uptime_s);
/* [RUN], newest first. */
json_t *djson_runs(const struct agg *a);
/* The report answer's body for run r. */
json_t *djson_report(const struct agg *a, const struct agg_run *r);
/* {"durations": [{"le_ms", "count"}] (n edges, then le_ms null: the
 * rest), "pauses", "generations": [{"gen", "pauses"}]} of run r: its
 * pauses at or below each edge and above the one before, from the
 * run's per-generation histograms (exact at bucket edges, within one
 * histogram bucket, 1/64 of an octave, elsewhere). */
json_t *djson_durations(const struct agg *a, const struct agg_run *r,
    const double *le_ms, size_t n);
/* The whole answer to a wait on run (it may be unknown). */
json_t *djson_wait(const struct agg *a, const char *run, int timed_out);

/* Stream and log objects. */
json_t *djson_lost(uint64_t nlost);
/* type: "process_start" or "process_end". */
json_t *djson_process_event(const struct agg *a, const struct agg_proc *p,
    const char *type);
json_t *djson_protocol_error(pid_t peer_pid, const char *error);
json_t *djson_log_summary(const struct agg *a, int final);

#endif /* GCMON_DAEMON_JSON_H */
