/*
 * json.h: the doc/control.md objects (SUMMARY, PROCESS, RUN, GEN, REC,
 * EVENT, ALERT, OBJECTS) built from agg.h state with jansson. Called by
 * server.c (answers, the watch stream) and log.c's callers (JSON lines).
 * No I/O. Every function returns a new reference, or NULL when out of
 * memory.
 */
#ifndef GCMON_DAEMON_JSON_H
#define GCMON_DAEMON_JSON_H

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

#endif /* GCMON_DAEMON_JSON_H */
