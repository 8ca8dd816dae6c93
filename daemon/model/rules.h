/*
 * rules.h: gcmond's recommendations, over the numbers of agg.h: each
 * cites the figures that triggered it and says what to do. Called by
 * json.c (and check_agg). No I/O; rules_evaluate does not allocate.
 */
#ifndef GCMON_RULES_H
#define GCMON_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "requests.h"

/* The thresholds, each "above" (strictly). */
#define RULES_GEN2_SHARE_PCT	10.0	/* gen 2 share of all collections */
#define RULES_GC_WALL_PCT	5.0	/* GC time share of wall time */
#define RULES_OUTLIER_FACTOR	2.0	/* worker vs its siblings' median */
#define RULES_OUTLIER_MIN_MS	1.0	/* and a pause figure above this */
#define RULES_MIN_SIBLINGS	3	/* workers of one parent to compare */
/* prefork_freeze with measured memory: only when the forked workers'
 * gen-2 collections unshared at least this much each, on average. */
#define RULES_UNSHARED_MIN_BYTES	(4u << 20)

/*
 * The smallest sample a rule reads (man/gcmond.8, RECOMMENDATIONS): a
 * scope (or, for outlier_worker, a worker) with less wall time (its
 * processes' added up), fewer collections seen or less GC time than
 * these gets no finding from gen2_share, gc_time, outlier_worker or
 * the threshold advice: 1.5 ms of GC in a 3 ms script is no finding. A
 * worker is compared with its siblings only with RULES_MIN_WALL_S and
 * RULES_MIN_COLLECTIONS of its own, and judged an outlier only with all
 * three. max_pause, uncollectable, prefork_freeze and prefork_frozen
 * report facts that no sample size makes less true (one 60 ms pause,
 * one uncollectable cycle, a forked worker's gen 2 collection, which
 * unshares its copy-on-write pages) and fire on any sample.
 */
#define RULES_MIN_WALL_S	1.0
#define RULES_MIN_COLLECTIONS	20
#define RULES_MIN_GC_MS		10.0

/*
 * The gen 0 threshold advice (rules.c, rules_threshold_advice). Model:
 * gen 0 runs once per T0 net container allocations, so at the same
 * allocation rate its rate scales with T0 / T0'; gen 1 runs once per
 * T1 gen 0 collections and scales alike; a gen 0 pause traces at most T0
 * young objects, so its mean grows at most by T0' / T0 (gen 0 time per
 * second stays at most what it was) while gen 1 time per second falls by
 * T0 / T0'; gen 2 (gc.collect() calls, and its long-lived ratio since
 * 3.8) is taken as unchanged. T0' targets gen 0 at most RULES_GEN0_TARGET_PER_S per second of
 * process time, limited so that the estimated mean gen 0 pause stays
 * under RULES_GEN0_MAX_PAUSE_MS and T0' under RULES_GEN0_MAX_FACTOR x
 * T0; advice that would not at least halve the gen 0 rate is not given.
 */
#define RULES_GEN0_TARGET_PER_S	10.0
#define RULES_GEN0_MAX_PAUSE_MS	1.0
#define RULES_GEN0_MAX_FACTOR	100.0

/*
 * requests_gc (requests.h's figures): a scope with at least
 * RULES_MIN_REQUESTS requests where GC adds more than RULES_REQ_P99_MS
 * to their p99. What a change buys is read off the measured figures:
 * without the collections that trace the old objects in any request
 * (p99_without_full: what gc.freeze() buys at most, the frozen objects
 * being no longer traced), and with them k times rarer (the classic
 * gen 2 threshold k times higher: the share of requests they delay
 * falls k times; once below RULES_REQ_TAIL_PCT, well inside the 1% a
 * p99 leaves out, p99 is about its figure without them). k is the least
 * that brings them there, at most RULES_REQ_MAX_FACTOR.
 */
#define RULES_MIN_REQUESTS	100
#define RULES_REQ_P99_MS	1.0
#define RULES_REQ_TAIL_PCT	0.5
#define RULES_REQ_MAX_FACTOR	10

enum rules_severity { RULES_INFO = 0, RULES_WARNING, RULES_CRITICAL };

#define RULES_MAX_EVIDENCE	12
#define RULES_MAX_ACTIONS	4
#define RULES_MAX		32	/* recommendations one call returns */

struct rules_rec {
	const char *rule;		/* static: "gen2_share", ... */
	enum rules_severity severity;
	uint32_t pid;			/* the process it names, or 0 */
	char message[512];
	unsigned nevidence;
	struct {
		const char *name;	/* static */
		double value;
	} evidence[RULES_MAX_EVIDENCE];
	unsigned nactions;
	char actions[RULES_MAX_ACTIONS][640];
};

/* What the prefork rules look at, one per process of the scope. */
struct rules_proc {
	uint32_t pid, ppid;
	const void *run;		/* siblings share it (agg_run) */
	uint8_t origin;			/* enum proto_origin */
	uint8_t gc_model;		/* enum proto_gc_model (gcmodel.h) */
	int worker;			/* agg_proc_role() is AGG_ROLE_WORKER */
	uint64_t collections;		/* seen */
	uint64_t pause_ns;		/* their pause time */
	double wall_s;
	uint64_t gen2;			/* own gen 2 collections */
	double gen2_ms;			/* their pause time */
	double p99_ms, max_ms;
	uint64_t freeze_count;		/* agg_proc's */
	int mem_read;			/* its smaps_rollup was read */
	uint64_t unshared_bytes;	/* agg_proc's unshared_by_gc_bytes */
};

/* The prefork server the run's master is, for the hook to name. */
enum rules_server {
	RULES_SERVER_OTHER = 0,		/* os.fork, multiprocessing */
	RULES_SERVER_GUNICORN,
	RULES_SERVER_UWSGI
};

struct rules_input {
	const struct agg_sum *sum;	/* the scope's totals */
	double alert_threshold_ms;
	const uint32_t *thresholds;	/* the interpreter's, from its
					 * baseline; NULL: unknown */
	unsigned nthresholds;
	uint64_t freeze_count;		/* of the process, or of the run's
					 * master: >0 when gc.freeze() ran */
	enum rules_server server;	/* from the master's argv */
	const struct rules_proc *procs;
	size_t nprocs;
	const struct req_sum *req;	/* the scope's requests, or NULL */
	/* What rules_input_build allocated (rules_input_fini frees). */
	struct agg_sum *own_sum;
	struct req_sum *own_req;
	struct rules_proc *own_procs;
	uint32_t own_thresholds[PROTO_MAX_GEN];
};

/* The input of the rules for process p, run r, or the host (both NULL).
 * 0 or -ENOMEM; release with rules_input_fini. */
int rules_input_build(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, struct rules_input *in);
void rules_input_fini(struct rules_input *in);

/* Fills out[0..n) with the n <= max that apply, each record cleared
 * first, and returns n; out[n..max) is not written. */
size_t rules_evaluate(const struct rules_input *in, struct rules_rec *out,
    size_t max);

const char *rules_severity_name(enum rules_severity s);

#endif /* GCMON_RULES_H */
