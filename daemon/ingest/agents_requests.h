/*
 * agents_requests.h: the consumer of one shared area's request ring and
 * route table (common/shm.h, "Requests"), read beside its events into the
 * process's request model (requests.h). Called by agents.c, inside its
 * SIGBUS guard; knows nothing of agents.c.
 */
#ifndef GCMON_AGENTS_REQUESTS_H
#define GCMON_AGENTS_REQUESTS_H

#include <stdint.h>

#include "agg.h"
#include "requests.h"
#include "shm.h"

/* The consumer's state of one area's requests. */
struct agents_req {
	uint64_t tail;			/* of the request ring */
	uint64_t mark;			/* its head, read before the events */
	uint64_t read_ns;		/* when the last drain's events were in */
	int broken;			/* given up */
	int absent;			/* a version-2 area: no ring at all */
};

/* Where each request read goes, with what the join made of it (the
 * agents_sink's, server.c's); data is the sink's. */
typedef void agents_request_fn(void *data, struct agg_proc *p,
    const struct shm_request *r, const struct req_result *res);

/* agents_requests.c, inside the SIGBUS guard: at attach, the starting
 * tail (fresh: no event of the area was consumed before, so every pause
 * is still to come); at each drain, before the events the ring's head and the new
 * route names, after them the requests up to that head. */
void agents_requests_attach(void *map, const struct shm_info *in,
    struct agents_req *s, int fresh);
void agents_requests_mark(void *map, const struct shm_info *in,
    struct agents_req *s, struct agg_proc *p);
void agents_requests_read(void *map, const struct shm_info *in,
    struct agents_req *s, struct agg_proc *p, agents_request_fn *request,
    void *data);

#endif /* GCMON_AGENTS_REQUESTS_H */
