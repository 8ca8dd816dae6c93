/*
 * alerts.h: gcmond's live alerts, the lines the log carries instead of
 * one line per slow pause. Fed by events.c with each event (after
 * agg_event said whether its pause is over the threshold) and ticked by
 * its timer; hands each line to log to the emit callback given at
 * alerts_new. Pure: no I/O, no clock (the caller passes now, in seconds
 * on a clock that never steps: gcmond passes CLOCK_MONOTONIC, so that a
 * wall-clock step cannot stretch or cut a window), no agg state kept
 * (copies of pid, identity and run id).
 *
 * Pause alerts are rate-limited per process: the first line, then at most
 * one line per window with the count of the pauses held back ("N more
 * pauses over X ms in the last S s"). Shape alerts look at the last
 * window_s seconds (ALERTS_SLOTS slots, events counted when they arrive)
 * and fire at most once per window per process while they hold:
 *   p99       more than 1% of a process's pauses over p99_ms (its p99 is
 *             over p99_ms), with at least ALERTS_P99_MIN_EVENTS pauses;
 *   gc_share  the process's pause time over gc_share_pct of wall time;
 *   gen2      collections of the oldest generation (gen 2 on CPython's
 *             three) over gen2_per_min per minute (never for a collector
 *             of one generation, where every collection is full). On the
 *             classic model they are the automatic full collections; on
 *             the incremental and free-threaded models only gc.collect()
 *             reaches generation 2 (gcmodel.h), so the line names them
 *             explicit full collections, and automatic ones (gen 1 there,
 *             gen 0 free-threaded) never count: their cost is caught by
 *             the pause-keyed alerts (pause, p99, gc_share), as on every
 *             model;
 *   outlier   a forked worker's max pause over outlier_factor times the
 *             median of its siblings' max (same run and parent, at least
 *             ALERTS_MIN_SIBLINGS of them with pauses in the window) and
 *             over the pause threshold.
 * gc_share and gen2 wait until the process has been seen for half a
 * window. A limit of 0 disables its alert. State of a process that has
 * had no event for a window is freed, so memory follows the live set.
 * alerts_event, alerts_tick and alerts_finish accept a NULL al (no-ops).
 */
#ifndef GCMON_ALERTS_H
#define GCMON_ALERTS_H

#include <stdint.h>

#include "agg.h"
#include "codec.h"

#define ALERTS_SLOTS		12	/* a window in 12 slots */
#define ALERTS_P99_MIN_EVENTS	100	/* pauses before p99 can fire */
#define ALERTS_MIN_SIBLINGS	2	/* other workers to compare with */

enum alerts_kind {
	ALERTS_PAUSE = 0,	/* the first pause over the threshold */
	ALERTS_REPEAT,		/* the ones held back since */
	ALERTS_P99,
	ALERTS_GC_SHARE,
	ALERTS_GEN2,
	ALERTS_OUTLIER,
	ALERTS_NKINDS
};

struct alerts_config {
	double window_s;		/* rate limit and shape window, > 0 */
	double threshold_ms;		/* the pause threshold (agg's) */
	double p99_ms;			/* 0: off */
	double gc_share_pct;		/* 0: off */
	double gen2_per_min;		/* 0: off */
	double outlier_factor;		/* 0: off */
};

/* One line to log; valid for the emit call only. */
struct alerts_line {
	enum alerts_kind kind;
	const char *run;
	uint32_t pid;
	double time;			/* pause: its Unix time; others: 0 */
	double window_s;		/* what the figures are over */
	double value;			/* pause, max, share %, per min, max ms */
	double limit;			/* the limit it crossed */
	double other;			/* p99: % over; outlier: siblings' median */
	uint64_t count;			/* repeat: held; p99: pauses; gen2:
					 * collections; outlier: siblings */
	unsigned generation;		/* pause and gen2 */
	const char *label;		/* static: gcmodel_gen_label of it */
	int explicit_full;		/* gen2: automatic collections never
					 * reach it (gcmodel_auto_full) */
	char message[224];		/* the line for humans */
	/* pause: the process and event it is about (for its stack);
	 * otherwise NULL. */
	const struct agg_proc *proc;
	const struct proto_event *event;
};

typedef void alerts_emit_fn(void *arg, const struct alerts_line *l);

struct alerts;

/* NULL when out of memory or window_s is not > 0. */
struct alerts *alerts_new(const struct alerts_config *cfg,
    alerts_emit_fn *emit, void *arg);
void alerts_free(struct alerts *al);
const char *alerts_kind_name(enum alerts_kind k);

/* One event of process p; over: agg_event said its pause is over the
 * threshold. May emit a held count and a pause alert. An allocation
 * failure loses this event for the alerts only. */
void alerts_event(struct alerts *al, const struct agg_proc *p,
    const struct proto_event *e, int over, double now);
/* Every tick: flushes held counts whose window ended, evaluates the shape
 * alerts once per slot, frees idle state. */
void alerts_tick(struct alerts *al, double now);
/* At exit: emits every held count, whatever its window. */
void alerts_finish(struct alerts *al, double now);
/* Processes with state (for tests and memory bounds). */
unsigned alerts_nprocs(const struct alerts *al);

#endif /* GCMON_ALERTS_H */
