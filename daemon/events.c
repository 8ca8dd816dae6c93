/*
 * events.c: the fan-out of each drained event (see events.h). Watchers
 * get every event and alert; the log, alerts.c's lines and the events
 * only with --log-events all.
 */
#include "config.h"

#include <errno.h>

#include "clock.h"
#include "events.h"
#include "json.h"
#include "requests_answer.h"

static int events_watched(const struct events *ev)
{
	return ev->watched != NULL && ev->watched(ev->arg);
}

static void events_broadcast(struct events *ev, json_t *o, const char *run)
{
	if (ev->broadcast != NULL)
		ev->broadcast(ev->arg, o, run);
}

static void events_flush(struct events *ev)
{
	if (ev->flush != NULL)
		ev->flush(ev->arg);
}

static void events_process(struct events *ev, struct agg_proc *p,
    const char *type)
{
	json_t *o;

	if (ev->log->fd < 0 && !events_watched(ev))
		return;
	if ((o = djson_process_event(ev->agg, p, type)) == NULL)
		return;
	events_broadcast(ev, o, p->run->id);
	events_flush(ev);
	log_json(ev->log, o);
	json_decref(o);
}

/* A held alert line whose names came (alert_hold.c): to the log. */
static void events_emit_held(void *arg, json_t *o)
{
	struct events *ev = arg;

	log_json(ev->log, o);
	json_decref(o);
}

/* An alert line of alerts.c: stderr (unless --quiet) and the log; a
 * pause line's stack by its names, held until they come. */
static void events_on_alert(void *arg, const struct alerts_line *l)
{
	struct events *ev = arg;
	json_t *o;

	log_info(ev->log, "pid %u (run %s) %s alert: %s", (unsigned)l->pid,
	    l->run, alerts_kind_name(l->kind), l->message);
	if (ev->log->fd < 0 || ev->cfg.log_events == EVENTS_LOG_NONE ||
	    (o = djson_alert_line(l, ev->agg->now_real)) == NULL)
		return;
	if (l->kind == ALERTS_PAUSE && l->proc != NULL) {
		alert_hold_stack(o, l->proc, l->event);
		if (alert_hold_put(&ev->held, o, l->proc, l->event))
			return;
	}
	log_json(ev->log, o);
	json_decref(o);
}

int events_start(struct events *ev, struct agg *agg, struct log *log)
{
	ev->agg = agg;
	ev->log = log;
	ev->last_summary = agg->now_real;
	if (!(ev->cfg.alerts.window_s > 0))
		return -EINVAL;
	if ((ev->alerts = alerts_new(&ev->cfg.alerts, events_on_alert,
	    ev)) == NULL)
		return -ENOMEM;
	return 0;
}

void events_stop(struct events *ev, double mono_s)
{
	if (ev->alerts == NULL)
		return;
	clock_now(ev->agg);
	alert_hold_drained(&ev->held, NULL, 1, events_emit_held, ev);
	alerts_finish(ev->alerts, mono_s);	/* held counts */
	alerts_free(ev->alerts);
	ev->alerts = NULL;
}

void events_log_summary(struct events *ev, int final)
{
	json_t *o;

	if (ev->log->fd < 0)
		return;		/* no log: a summary is two sums for nothing */
	clock_now(ev->agg);
	if ((o = djson_log_summary(ev->agg, final)) != NULL)
		log_json(ev->log, o);
	json_decref(o);
}

void events_tick(struct events *ev, double mono_s)
{
	alerts_tick(ev->alerts, mono_s);
	if (ev->cfg.summary_interval_s > 0 &&
	    ev->agg->now_real - ev->last_summary >= ev->cfg.summary_interval_s) {
		ev->last_summary = ev->agg->now_real;
		if (ev->log->fd >= 0 && !LIST_EMPTY(&ev->agg->runs))
			events_log_summary(ev, 0);
	}
}

void events_started(void *data, struct agg_proc *p)
{
	events_process(data, p, "process_start");
}

/* The WATCH_EVENTS record of e (protocol.h): what djson_event says, in
 * integers; the wall-clock start in ns from the process's clock pair. */
static void events_record(const struct agg_proc *p, const struct proto_event *e,
    struct proto_watch_event *rec)
{
	rec->pid = p->pid;
	rec->generation = e->generation;
	rec->gc_model = p->gc_model;
	rec->flags = e->flags & PROTO_EVENT_HAS_COLLECTOR_NS ?
	    PROTO_WATCH_COLLECTOR : 0;
	rec->time_ns = e->start_ns >= p->clock_mono_ns ?
	    p->clock_real_ns + (e->start_ns - p->clock_mono_ns) :
	    p->clock_real_ns - (p->clock_mono_ns - e->start_ns);
	rec->pause_ns = e->pause_ns;
	rec->collector_ns = rec->flags ? e->collector_ns : 0;
	rec->collected = e->collected;
	rec->uncollectable = e->uncollectable;
}

void events_gc(void *data, struct agg_proc *p, const struct proto_event *e,
    int alert)
{
	struct events *ev = data;
	int watched = events_watched(ev);
	int logged = ev->log->fd >= 0 && ev->cfg.log_events == EVENTS_LOG_ALL;
	/* Binary watchers alone need no JSON object: that is their point. */
	int json = watched && (ev->watched_json == NULL ||
	    ev->watched_json(ev->arg));
	struct proto_watch_event rec;
	json_t *o = NULL;

	log_event(ev->log, p->pid, e, alert);
	alerts_event(ev->alerts, p, e, alert, ev->agg->now_mono);
	if (json || logged)
		o = djson_event(p, e);
	if (watched && ev->broadcast_gc != NULL) {
		events_record(p, e, &rec);
		ev->broadcast_gc(ev->arg, json ? o : NULL, &rec, p->run->id);
	} else if (watched && o != NULL) {
		events_broadcast(ev, o, p->run->id);
	}
	if (logged && o != NULL)
		log_json(ev->log, o);
	json_decref(o);
	if (alert && watched && (o = djson_alert(ev->agg, p, e)) != NULL) {
		alert_hold_stack(o, p, e);
		events_broadcast(ev, o, p->run->id);
		json_decref(o);
	}
}

void events_ended(void *data, struct agg_proc *p)
{
	struct events *ev = data;

	alert_hold_drained(&ev->held, p, 1, events_emit_held, ev);
	log_info(ev->log, "pid %u (run %s) %s", (unsigned)p->pid, p->run->id,
	    p->state == AGG_ENDED ? "ended" :
	    "lost (its shared area could not be read to the end)");
	events_process(ev, p, "process_end");
	if (ev->ended != NULL)
		ev->ended(ev->arg);
}

void events_drained(void *data, struct agg_proc *p)
{
	struct events *ev = data;

	alert_hold_drained(&ev->held, p, 0, events_emit_held, ev);
	events_flush(ev);
}

void events_request(void *data, struct agg_proc *p,
    const struct shm_request *r, const struct req_result *res)
{
	struct events *ev = data;
	json_t *o;

	if (ev->log->fd < 0 || ev->cfg.log_events != EVENTS_LOG_ALL ||
	    (o = requests_line_json(p, r, res)) == NULL)
		return;
	log_json(ev->log, o);
	json_decref(o);
}
