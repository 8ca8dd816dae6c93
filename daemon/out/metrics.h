/*
 * metrics.h: the Prometheus / OpenMetrics exposition of gcmond's
 * aggregates (GET /metrics, served by http.c). Pure: reads agg.h's data
 * and the health figures gcmond.c hands it, writes text to memory; no
 * I/O, no clock, never prints.
 *
 * Series are keyed by (service, role), never by pid unless
 * --metrics-per-process N asks for it (at most N processes); the request
 * families also by route when --metrics-routes N asks for it (per key,
 * the first N route names seen keep a series for gcmond's life, later
 * ones count as route "other", so a key has at most N + 1). Counters
 * never go backwards while gcmond runs: a process whose record agg.c
 * folds or frees (an ended worker, an expired run) hands its figures to
 * its key's "retired" totals first, through agg's hooks (metrics_watch).
 */
#ifndef GCMON_METRICS_H
#define GCMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "service.h"

#define METRICS_MAX_KEYS	256	/* (service, role) keys kept; beyond:
					 * service "other" */
#define METRICS_SERVICE_MAX	SERVICE_NAME_MAX	/* service.h */
#define METRICS_PER_PROCESS_MAX	10000	/* cap on --metrics-per-process */
#define METRICS_ROUTES_MAX	256	/* cap on --metrics-routes */

enum metrics_format {
	METRICS_PROMETHEUS = 0,		/* text 0.0.4 */
	METRICS_OPENMETRICS		/* text 1.0.0 */
};

struct metrics_config {
	unsigned per_process;		/* 0: no per-process series */
	unsigned routes;		/* 0: no route label on the request
					 * families; else at most this many
					 * route values per key, the rest
					 * (and unnamed routes) "other" */
};

/* gcmond's own figures, gathered by its caller (server.c's, /proc's). */
struct metrics_health {
	uint64_t connections;		/* control clients open now */
	uint64_t decode_errors;		/* peers closed for a bad frame */
	uint64_t refused;		/* peers refused (client cap, uid) */
	uint64_t rss_bytes;		/* gcmond's resident set; 0: unknown */
	uint64_t areas;			/* shared areas mapped now */
	uint64_t areas_refused;		/* area files refused at attach */
	uint64_t areas_broken;		/* areas given up while read */
	uint64_t areas_refused_place;	/* ... their namespace claim failed */
	uint64_t areas_unseen;		/* mapped, process not visible */
};

struct metrics;

/* NULL on ENOMEM. */
struct metrics *metrics_new(const struct metrics_config *cfg);
void metrics_free(struct metrics *m);
/* Installs m's hooks in a (agg->hooks): call before the first HELLO. */
void metrics_watch(struct metrics *m, struct agg *a);
/* The format an Accept header asks for (NULL: none sent). */
enum metrics_format metrics_negotiate(const char *accept);
const char *metrics_content_type(enum metrics_format f);
/*
 * Renders the exposition. 0: *out (malloc'ed, the caller frees it) holds
 * *len bytes (not NUL-terminated); -ENOMEM.
 */
int metrics_render(struct metrics *m, const struct agg *a,
    const struct metrics_health *h, enum metrics_format f, char **out,
    size_t *len);
/* Shortest decimal that reads back as v ("1e-05", "0.25", "+Inf"),
 * NUL-terminated in buf (32 bytes suffice). */
const char *metrics_fmt_double(double v, char *buf, size_t len);

#endif /* GCMON_METRICS_H */
