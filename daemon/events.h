/*
 * events.h: the fan-out of what the shared areas said (agents.c's sink):
 * each process start and end, collection and request to the stderr
 * lines, the JSON lines log, alerts.c and the watch stream; the pause
 * alert lines held until their stack's names come (alert_hold.c); and
 * the periodic summary in the log. The watchers themselves are
 * server.c's, reached through broadcast. Wired and ticked by gcmond.c.
 * Never prints except through log.c, never builds JSON (json.c does).
 */
#ifndef GCMON_EVENTS_H
#define GCMON_EVENTS_H

#include <jansson.h>

#include "agg.h"
#include "alert_hold.h"
#include "alerts.h"
#include "log.h"

#define EVENTS_SUMMARY_DEFAULT_S	60	/* periodic summary in the log */

struct shm_request;
struct req_result;

/* What the JSON lines log carries besides lifecycle and summaries. */
enum events_log {
	EVENTS_LOG_ALERTS = 0,		/* alerts (alerts.c) */
	EVENTS_LOG_ALL,			/* alerts and every collection */
	EVENTS_LOG_NONE			/* neither */
};

struct events_config {
	enum events_log log_events;
	double summary_interval_s;	/* 0: only the final summary */
	struct alerts_config alerts;
};

struct events {
	struct events_config cfg;
	struct agg *agg;
	struct log *log;
	struct alerts *alerts;		/* NULL after events_stop */
	struct alert_hold held;		/* pause lines awaiting names */
	double last_summary;		/* agg->now_real of the last one */
	/* The watch stream (server.c): o (borrowed) to the watchers of
	 * run (queued); whether anyone watches; a process ended (waits to
	 * answer); what is queued goes out (after each area's drain and
	 * each process's start or end). Each may be NULL. */
	void (*broadcast)(void *arg, json_t *o, const char *run);
	/* A collection: o (NULL unless watched_json says someone wants
	 * the JSON object) and its record for the binary watchers. */
	void (*broadcast_gc)(void *arg, json_t *o,
	    const struct proto_watch_event *rec, const char *run);
	int (*watched)(void *arg);
	int (*watched_json)(void *arg);
	void (*ended)(void *arg);
	void (*flush)(void *arg);
	void *arg;
};

/* 0, -EINVAL (cfg.alerts.window_s not > 0) or -ENOMEM. */
int events_start(struct events *ev, struct agg *agg, struct log *log);
/* Writes the held lines and the alerts' held counts (mono_s: now, on
 * the monotonic clock, in seconds); later events reach no alert. */
void events_stop(struct events *ev, double mono_s);
/* Every SRV_TICK_MS: ticks the alerts, writes the summary every
 * summary_interval_s. */
void events_tick(struct events *ev, double mono_s);
/* The summary object (host + runs) to the log, if gcmond has one.
 * final: at shutdown. */
void events_log_summary(struct events *ev, int final);

/* The sink of agents.c (data: the struct events): a process appeared,
 * one of its collections, its end, a drain of its area (held pause
 * lines), a request (a log line with --log-events all). */
void events_started(void *data, struct agg_proc *p);
void events_gc(void *data, struct agg_proc *p, const struct proto_event *e,
    int alert);
void events_ended(void *data, struct agg_proc *p);
void events_drained(void *data, struct agg_proc *p);
void events_request(void *data, struct agg_proc *p,
    const struct shm_request *r, const struct req_result *res);

#endif /* GCMON_EVENTS_H */
