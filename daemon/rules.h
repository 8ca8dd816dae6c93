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

/* The thresholds, each "above" (strictly). */
#define RULES_GEN2_SHARE_PCT	10.0	/* gen 2 share of all collections */
#define RULES_GC_WALL_PCT	5.0	/* GC time share of wall time */
#define RULES_OUTLIER_FACTOR	2.0	/* worker vs its siblings' median */
#define RULES_MIN_SIBLINGS	3	/* forked siblings to compare */

enum rules_severity { RULES_INFO = 0, RULES_WARNING, RULES_CRITICAL };

#define RULES_MAX_EVIDENCE	8
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
	char actions[RULES_MAX_ACTIONS][320];
};

/* What the prefork rules look at, one per process of the scope. */
struct rules_proc {
	uint32_t pid, ppid;
	uint8_t origin;			/* enum proto_origin */
	uint64_t gen2;			/* own gen 2 collections */
	double p99_ms;
};

struct rules_input {
	const struct agg_sum *sum;	/* the scope's totals */
	double alert_threshold_ms;
	const uint32_t *thresholds;	/* gc.get_threshold(), or NULL */
	unsigned nthresholds;
	const struct rules_proc *procs;
	size_t nprocs;
	/* What rules_input_build allocated (rules_input_fini frees). */
	struct agg_sum *own_sum;
	struct rules_proc *own_procs;
	uint32_t own_thresholds[PROTO_MAX_GEN];
};

/* The input of the rules for process p, run r, or the host (both NULL).
 * 0 or -ENOMEM; release with rules_input_fini. */
int rules_input_build(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, struct rules_input *in);
void rules_input_fini(struct rules_input *in);

/* Fills out[0..max) and returns how many apply. */
size_t rules_evaluate(const struct rules_input *in, struct rules_rec *out,
    size_t max);

const char *rules_severity_name(enum rules_severity s);

#endif /* GCMON_RULES_H */
