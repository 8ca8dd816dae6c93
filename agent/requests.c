/*
 * requests.c: the requests a web server's middleware (gcmon.wsgi,
 * gcmon.asgi: agent/bootstrap/gcmon/_requests.py) sees, recorded into this
 * process's request ring (common/shm.h, "Requests"). _gcmon.c exposes
 * request_begin(), request_end() and request_route(); area.c calls the
 * agent_requests_* hooks when an area is made (a fork child republishes
 * the routes), at fork and at exit (open requests are recorded then).
 *
 * begin/end run with the GIL held, so one of them at a time, and never
 * inside a collection (the collector holds the GIL too): a table of open
 * requests indexed by the token, no lock, no allocation, no I/O, no
 * Python object but the token. A request's GC time is the growth of the
 * agent's own pause counters between its begin and its end: exact under
 * the GIL, and what gcmond's join of the interval with the pauses must
 * agree with. Routes are interned outside any request's timing: at most
 * SHM_ROUTES - 1 names, the rest "other" (id 0).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

struct req_open {
	uint64_t start_ns, gc_ns;
	uint32_t ngc, tid;
	uint32_t gen;			/* bumped at each begin: stale tokens */
	uint32_t route_id;		/* begin's, until end names one */
	int in_use;
};

static struct req_open req_open[AGENT_REQ_OPEN];
static uint16_t req_free[AGENT_REQ_OPEN];	/* a stack of free indexes */
static unsigned req_nfree;
static int req_ready;

/* The route table as published, slot i = id i; the area gets a copy. */
static struct shm_route req_routes[SHM_ROUTES];
static uint32_t req_nroutes = 1;	/* slot 0: "other" */

static _Thread_local uint32_t req_tid;

static void req_reset_open(void)
{
	unsigned i;

	for (i = 0; i < AGENT_REQ_OPEN; i++) {
		req_open[i].in_use = 0;
		req_free[i] = (uint16_t)(AGENT_REQ_OPEN - 1 - i);
	}
	req_nfree = AGENT_REQ_OPEN;
	req_ready = 1;
}

/* Pause time and collections the agent has counted, all generations. */
static void req_gc_now(const struct shm_header *h, uint64_t *ns, uint32_t *n)
{
	unsigned i, ngen = atomic_load_explicit(&h->ngen, memory_order_relaxed);
	uint64_t t = 0, c = 0;

	if (ngen > PROTO_MAX_GEN)
		ngen = PROTO_MAX_GEN;
	for (i = 0; i < ngen; i++) {
		t += atomic_load_explicit(&h->gen[i].pause_ns,
		    memory_order_relaxed);
		c += atomic_load_explicit(&h->gen[i].count,
		    memory_order_relaxed);
	}
	*ns = t;
	*n = (uint32_t)c;
}

int64_t agent_requests_begin(unsigned route_id)
{
	struct shm_header *h = agent_state.area;
	uint64_t now = agent_clock_ns(CLOCK_MONOTONIC);
	struct req_open *o;
	unsigned idx;

	if (h == NULL || agent_state.stopped)
		return -1;
	if (!req_ready)
		req_reset_open();
	if (req_nfree == 0) {
		SHM_ADD(h->req_dropped, 1);	/* more open than the table */
		return -1;
	}
	idx = req_free[--req_nfree];
	o = &req_open[idx];
	if (req_tid == 0)
		req_tid = (uint32_t)syscall(SYS_gettid);	/* once a thread */
	o->start_ns = now;
	req_gc_now(h, &o->gc_ns, &o->ngc);
	o->tid = req_tid;
	o->route_id = route_id < req_nroutes ? route_id : 0;
	o->gen++;
	o->in_use = 1;
	return ((int64_t)(o->gen & 0x7fffffu) << 16) | (int64_t)idx;
}

/* The record of open request o ending at end_ns; frees its slot. */
static int req_finish(struct shm_header *h, struct req_open *o,
    unsigned idx, uint64_t end_ns, unsigned route_id, unsigned status,
    unsigned flags)
{
	struct shm_request r;
	uint64_t gc_ns;
	uint32_t ngc;

	req_gc_now(h, &gc_ns, &ngc);
	r.start_ns = o->start_ns;
	r.end_ns = end_ns;
	r.gc_ns = gc_ns - o->gc_ns;
	if (r.gc_ns > end_ns - o->start_ns)	/* clock skew within a ns */
		r.gc_ns = end_ns - o->start_ns;
	r.ngc = ngc - o->ngc;
	r.thread_id = o->tid;
	r.route_id = (uint16_t)(route_id < req_nroutes ? route_id : 0);
	r.status = (uint16_t)(status <= 999 ? status : 0);
	r.flags = (uint16_t)(flags & SHM_REQ_FLAGS);
	r.reserved = 0;
	o->in_use = 0;
	req_free[req_nfree++] = (uint16_t)idx;
	return shm_record_request(h, &r);
}

int agent_requests_end(int64_t token, unsigned route_id, unsigned status,
    unsigned flags)
{
	uint64_t now = agent_clock_ns(CLOCK_MONOTONIC);
	struct shm_header *h = agent_state.area;
	unsigned idx = (unsigned)(token & 0xffff);
	struct req_open *o;

	if (h == NULL || token < 0 || idx >= AGENT_REQ_OPEN || !req_ready)
		return -EINVAL;
	o = &req_open[idx];
	if (!o->in_use || (o->gen & 0x7fffffu) != (uint32_t)(token >> 16))
		return -ESRCH;	/* ended already, or by the exit handler */
	return req_finish(h, o, idx, now, route_id, status,
	    flags & ~SHM_REQ_OPEN_AT_EXIT) ? 0 : -ENOSPC;
}

int agent_requests_route(const char *name, size_t len)
{
	struct shm_header *h = agent_state.area;
	struct shm_route *r;
	uint32_t i;

	if (len == 0)
		return 0;
	if (len > SHM_ROUTE_NAME_MAX)
		len = SHM_ROUTE_NAME_MAX;
	if (memchr(name, '\0', len) != NULL)
		return -EINVAL;
	for (i = 1; i < req_nroutes; i++)
		if (req_routes[i].len == len &&
		    memcmp(req_routes[i].name, name, len) == 0)
			return (int)i;
	if (req_nroutes >= SHM_ROUTES)
		return 0;		/* "other" */
	r = &req_routes[req_nroutes];
	r->len = (uint32_t)len;
	memset(r->name, 0, sizeof r->name);
	memcpy(r->name, name, len);
	if (h != NULL) {
		/* Reserved pages (area.c's fallocate): a plain store. */
		((struct shm_route *)((char *)h + h->route_off))[req_nroutes] = *r;
		atomic_store_explicit(&h->nroutes, req_nroutes + 1,
		    memory_order_release);
	}
	return (int)req_nroutes++;
}

void agent_requests_area_made(struct shm_header *h)
{
	uint32_t i;

	for (i = 1; i < req_nroutes; i++)
		((struct shm_route *)((char *)h + h->route_off))[i] =
		    req_routes[i];
	atomic_store_explicit(&h->nroutes, req_nroutes, memory_order_release);
}

void agent_requests_atfork_child(void)
{
	/* The parent's open requests are the parent's. */
	if (req_ready)
		req_reset_open();
	req_tid = 0;
}

void agent_requests_at_exit(void)
{
	struct shm_header *h = agent_state.area;
	uint64_t now = agent_clock_ns(CLOCK_MONOTONIC);
	unsigned i;

	if (h == NULL || !req_ready || agent_state.stopped)
		return;
	for (i = 0; i < AGENT_REQ_OPEN; i++)
		if (req_open[i].in_use)
			(void)req_finish(h, &req_open[i], i, now,
			    req_open[i].route_id, 0, SHM_REQ_OPEN_AT_EXIT);
}

uint32_t agent_requests_open(void)
{
	return req_ready ? AGENT_REQ_OPEN - req_nfree : 0;
}
