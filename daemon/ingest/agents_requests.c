/*
 * agents_requests.c: the request ring and route table of one shared area
 * (common/shm.h, "Requests"), read beside its events into the process's
 * request model (requests.c). Called by agents.c from inside its SIGBUS
 * guard (the file may be truncated under us): agents_requests_mark
 * before the drain's events (the head it loads bounds what is read after
 * them, so every pause a request overlaps is joined before it, see
 * requests.c), agents_requests_read after. Never believes the area: a
 * bad request ring is given up (that process's requests stop), its
 * events still count; a bad route name is "other".
 */
#include "config.h"

#include <errno.h>
#include <time.h>

#include "agents_requests.h"

#define AGENTS_REQ_BATCH	256u

static uint64_t agents_req_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void agents_requests_attach(void *map, const struct shm_info *in,
    struct agents_req *s, int fresh)
{
	s->tail = shm_start_req_tail(map, in);
	s->mark = s->tail;
	/* Attached again (a restarted gcmond): the pauses before now went to
	 * the gcmond before. */
	s->read_ns = fresh ? 0 : agents_req_now_ns();
	s->broken = 0;
	s->absent = in->req_cap == 0;	/* version 2: nothing to read, ever */
}

void agents_requests_mark(void *map, const struct shm_info *in,
    struct agents_req *s, struct agg_proc *p)
{
	char name[SHM_ROUTE_NAME_MAX + 1];
	uint32_t n, id;
	const struct req_proc *rp = p->requests;

	if (s->broken || s->absent)
		return;
	s->mark = shm_req_head(map);	/* before the routes: theirs first */
	n = shm_nroutes(map, in);
	/* Every pause that ended after the last drain's events were in is
	 * drained from here on: the join can see them. */
	if (n > 1 || s->mark != s->tail)
		(void)requests_serving(p, s->read_ns);	/* -ENOMEM: the agent's */
	for (id = rp != NULL ? (rp->nroutes > 1 ? rp->nroutes : 1) : 1;
	    id < n; id++) {
		if (shm_route_name(map, in, n, id, name) < 0)
			continue;	/* stays "other" */
		if (requests_set_route(p, id, name) < 0)
			break;		/* out of memory: next drain */
	}
}

void agents_requests_read(void *map, const struct shm_info *in,
    struct agents_req *s, struct agg_proc *p, agents_request_fn *request,
    void *data)
{
	static struct shm_request rec[AGENTS_REQ_BATCH];  /* one loop thread */
	struct req_result res;
	uint64_t dropped = 0;
	int n, i;

	if (s->absent)
		return;
	while (!s->broken && s->tail != s->mark) {
		n = shm_drain_requests(map, in, s->mark, &s->tail, rec,
		    AGENTS_REQ_BATCH, &dropped);
		if (n < 0) {
			s->broken = 1;
			break;
		}
		for (i = 0; i < n; i++)	/* invalid: counted, skipped */
			if (requests_add(p, &rec[i], &res) == 0 &&
			    request != NULL)
				request(data, p, &rec[i], &res);
		if (n == 0)
			break;
	}
	if (s->broken || dropped > 0)
		requests_note_area(p, dropped, s->broken);
	s->read_ns = agents_req_now_ns();
}
