/*
 * requests.h: what GC costs a service's requests. Per process, the
 * requests its middleware recorded (common/shm.h, "Requests") joined with
 * the process's own pauses: the GC time inside each request (the overlap
 * of its interval with the collections) and the collections it waited
 * for; per route, counts and latency histograms as served and with the GC
 * time taken out; the slowest requests with the collections that hit
 * them. Per run, pid or host, the answer of the "requests" control
 * command (requests_answer.c). Fed by agents_requests.c (records, route
 * names) and agents.c (every pause); read by control.c, metrics.c.
 * Pure: no I/O, no clock. Memory: a process that serves no request holds
 * nothing; one that does, a ring of REQ_PAUSES pauses (24 B each) until
 * it ends, and per route three compact histograms and counters.
 */
#ifndef GCMON_REQUESTS_H
#define GCMON_REQUESTS_H

#include <stddef.h>
#include <stdint.h>

#include "hist.h"
#include "shm.h"

struct agg;
struct agg_run;
struct agg_proc;

#define REQ_PAUSES		4096	/* pauses kept for the join, serving */
#define REQ_SLOWEST		10	/* slowest requests kept per process */
#define REQ_HITS		4	/* collections listed per slow request */
#define REQ_DELAYED_NS		1	/* GC time that makes a request delayed */

/* A collection, as the join needs it. */
struct req_pause {
	uint64_t start_ns, pause_ns;
	uint32_t generation;
	uint32_t has_stack;
};

/* A collection that hit a slow request; its stack if one was captured. */
struct req_hit {
	struct req_pause pause;
	int have_stack;
	struct shm_stack stack;
};

struct req_slow {
	uint64_t start_ns, end_ns, gc_ns;
	uint32_t ngc, thread_id;
	uint16_t status, flags;
	uint16_t route_id;
	unsigned nhits;
	struct req_hit hit[REQ_HITS];	/* the longest pauses, longest first */
};

struct req_route {
	char name[SHM_ROUTE_NAME_MAX + 1];	/* "" until published */
	uint64_t requests, delayed, errors, disconnects, streamed, open_at_exit;
	uint64_t gc_ns, ngc;
	struct hist_compact served;	/* end - start */
	struct hist_compact without_gc;	/* end - start - GC time */
	struct hist_compact delay;	/* GC time of every request */
};

/* The join's figures for one request (requests_join). */
struct req_join {
	uint64_t gc_ns;			/* overlap with the pauses */
	uint32_t ngc;			/* pauses overlapping it */
	uint64_t gen_ns[PROTO_MAX_GEN];	/* gc_ns by generation */
	int covered;			/* every pause since its start is kept */
	unsigned nhits;			/* of hits[], the longest pauses */
	struct req_pause hits[REQ_HITS];
};

/* What one generation's collections did to a process's requests: only
 * the joined ones (a fallback's split by generation is unknown). */
struct req_gen {
	uint64_t delayed;		/* requests it overlapped */
	uint64_t gc_ns;			/* its time inside them */
};

struct req_proc {
	struct req_pause *pause;	/* a ring of pause_cap, by start */
	unsigned pause_cap;
	uint64_t npause;		/* fed, ever */
	uint64_t evicted_end_ns;	/* end of the newest pause overwritten */
	int serving;			/* requests or routes seen */
	struct req_route *route[SHM_ROUTES];	/* by the agent's id; lazily */
	uint32_t nroutes;		/* names read: ids below are resolved */
	uint64_t requests, delayed, invalid;
	uint64_t joined, fallback;	/* GC time from the join, else the agent's */
	uint64_t mismatch;		/* the join and the agent's count differ */
	uint64_t dropped;		/* the area's req_dropped, last read */
	int given_up;			/* its request ring was bad */
	struct req_slow *slow;		/* REQ_SLOWEST, slowest first; lazily */
	unsigned nslow;
	struct req_gen gen[PROTO_MAX_GEN];
	struct req_gen full;		/* the generations that trace the old */
	/* Latency without the time of the collections that trace the old
	 * objects (gcmodel_traces_old: gen 2 on the classic collector), of
	 * every request: what freezing or rarer full collections can buy at
	 * most. A fallback request counts with its whole latency. */
	struct hist_compact without_full;
};

/*
 * The overlap of [a, b] with the n newest of the pauses in ring (cap
 * slots, the newest at index (n - 1) % cap, ordered by start and
 * disjoint: one collection at a time): its total into j->gc_ns, the
 * number of pauses that overlap into j->ngc, the longest REQ_HITS of
 * them into j->hits. covered says whether every pause that can overlap
 * [a, b] is still in the ring: the oldest kept starts at or before a, or
 * nothing was overwritten that ended after a (evicted_end_ns <= a).
 */
void requests_join(const struct req_pause *ring, unsigned cap, uint64_t n,
    uint64_t evicted_end_ns, uint64_t a, uint64_t b, struct req_join *j);

/* A pause of p (every event, in order), kept once p serves requests.
 * 0 or -ENOMEM (not kept: the requests it overlaps fall back to the
 * agent's figures). */
int requests_pause(struct agg_proc *p, const struct proto_event *e,
    int has_stack);
/* p serves requests (its area has routes or requests): its pauses are
 * kept from now on (since_ns, CLOCK_MONOTONIC: a request that started
 * earlier may overlap pauses not kept, and takes the agent's figures), in
 * a ring of REQ_PAUSES. 0 or -ENOMEM. */
int requests_serving(struct agg_proc *p, uint64_t since_ns);
/* Route id's name (from the area, validated). 0 or -ENOMEM. */
int requests_set_route(struct agg_proc *p, uint32_t id, const char *name);
/* What the join made of one request. */
struct req_result {
	uint64_t gc_ns;
	uint32_t ngc;
	int joined;			/* 1: from the join; 0: the agent's */
};
/* One request record (validated here: an invalid one is counted and
 * skipped); *out (may be NULL) says what was counted. 0, -EINVAL or
 * -ENOMEM. */
int requests_add(struct agg_proc *p, const struct shm_request *r,
    struct req_result *out);
/* What the area says besides records: req_dropped; a bad ring. */
void requests_note_area(struct agg_proc *p, uint64_t dropped, int given_up);
/* p ended: its pause ring goes (the figures stay). */
void requests_proc_end(struct agg_proc *p);
void requests_proc_free(struct req_proc *rp);
/* The name of a route of rp ("other" for 0 or unnamed). Borrowed. */
const char *requests_route_name(const struct req_proc *rp, uint32_t id);

/* A scope's figures summed (requests_sum_*): per route name merged. */
struct req_sum_route {
	char name[SHM_ROUTE_NAME_MAX + 1];
	uint64_t requests, delayed, errors, disconnects, streamed, open_at_exit;
	uint64_t gc_ns, ngc;
	/* Compact, as the processes' own: a sum of 256 routes held three
	 * dense histograms each (12 MiB) for every answer. */
	struct hist_compact served, without_gc, delay;
};

struct req_sum {
	unsigned nproc;			/* processes with requests */
	uint64_t invalid, joined, fallback, mismatch, dropped;
	struct req_sum_route all;	/* every route */
	struct req_gen gen[PROTO_MAX_GEN];	/* joined requests only */
	struct req_gen full;		/* req_proc's, summed */
	unsigned ngen;			/* generations of its processes */
	unsigned models;		/* their gcmodel_bit()s */
	struct hist_compact without_full;	/* req_proc's, summed */
	struct req_sum_route *route;	/* nroute, by requests, most first */
	size_t nroute;
};

/* Sums process p (when not NULL), else run r's processes, else every
 * process of a; of those, when service is not NULL, the ones whose
 * service_name() it is (service.h). 0 or -ENOMEM; requests_sum_fini
 * frees. */
int requests_sum(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, const char *service, struct req_sum *s);
/* Whether requests_sum of the same scope (service NULL) would count a
 * process: else that sum is all zero, and need not be made. */
int requests_any(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p);
/* Whether p is of service (NULL: of any). */
int requests_of_service(const struct agg_proc *p, const char *service);
/* Frees what s holds; s is then an empty sum. */
void requests_sum_fini(struct req_sum *s);
/* A process's figures over every route, added to *t (metrics.c). */
struct req_totals {
	uint64_t requests, delayed;
	struct hist delay;		/* GC time per request */
};
void requests_totals_add(const struct req_proc *rp, struct req_totals *t);


#endif /* GCMON_REQUESTS_H */
