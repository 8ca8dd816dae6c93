/*
 * requests.c: the per-process request model and its join with the
 * process's pauses (requests.h). Fed by agents_requests.c and agents.c,
 * summed for requests_answer.c and metrics.c. Pure: no I/O, no clock.
 *
 * The join: a collection stops the whole interpreter, so a request's GC
 * time is the overlap of its interval with its process's pauses. Pauses
 * arrive before the requests that overlap them (agents.c reads the
 * request ring's head before draining the events, and a request ends
 * only after the collections inside it finished: both need the GIL), so
 * each request is joined once, when it arrives. The agent's own counters
 * (gc_ns, ngc of the record) say the same thing from inside; where the
 * join cannot see every pause (its ring overwrote some, or a full event
 * ring dropped them) the agent's figures are used and counted as a
 * fallback, and a disagreement where both can see is counted as a
 * mismatch.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "gcmodel.h"
#include "requests.h"
#include "service.h"

#define REQ_SUM_MAX_ROUTES	256	/* distinct names answered, then "other" */

void requests_join(const struct req_pause *ring, unsigned cap, uint64_t n,
    uint64_t evicted_end_ns, uint64_t a, uint64_t b, struct req_join *j)
{
	uint64_t i, kept = n < cap ? n : cap, lo, hi, ov;
	const struct req_pause *q;
	unsigned k;

	memset(j, 0, sizeof *j);
	j->covered = evicted_end_ns <= a;
	for (i = 0; i < kept; i++) {
		q = &ring[(n - 1 - i) % cap];		/* newest first */
		if (q->start_ns + q->pause_ns <= a) {
			j->covered = 1;		/* older ones end earlier still */
			break;
		}
		if (q->start_ns >= b)
			continue;		/* after the request */
		lo = q->start_ns > a ? q->start_ns : a;
		hi = q->start_ns + q->pause_ns < b ? q->start_ns + q->pause_ns : b;
		ov = hi > lo ? hi - lo : 0;
		if (ov == 0 && q->pause_ns != 0)
			continue;
		j->gc_ns += ov;
		j->gen_ns[q->generation < PROTO_MAX_GEN ? q->generation :
		    PROTO_MAX_GEN - 1] += ov;
		j->ngc++;
		/* The longest REQ_HITS, longest first (insertion). */
		for (k = j->nhits; k > 0 && j->hits[k - 1].pause_ns <
		    q->pause_ns; k--)
			if (k < REQ_HITS)
				j->hits[k] = j->hits[k - 1];
		if (k < REQ_HITS) {
			j->hits[k] = *q;
			if (j->nhits < REQ_HITS)
				j->nhits++;
		}
	}
}

static struct req_proc *requests_of(struct agg_proc *p)
{
	if (p->requests == NULL &&
	    (p->requests = calloc(1, sizeof *p->requests)) != NULL)
		hist_compact_init(&p->requests->without_full);
	return p->requests;
}

/* Grows (or makes) the ring to cap slots, keeping its order. */
static int requests_ring(struct req_proc *rp, unsigned cap)
{
	struct req_pause *nr;
	uint64_t i, kept;

	if (rp->pause_cap >= cap)
		return 0;
	if ((nr = calloc(cap, sizeof *nr)) == NULL)
		return -ENOMEM;
	kept = rp->npause < rp->pause_cap ? rp->npause : rp->pause_cap;
	for (i = 0; i < kept; i++)
		nr[(rp->npause - kept + i) % cap] =
		    rp->pause[(rp->npause - kept + i) % rp->pause_cap];
	free(rp->pause);
	rp->pause = nr;
	rp->pause_cap = cap;
	return 0;
}

int requests_pause(struct agg_proc *p, const struct proto_event *e,
    int has_stack)
{
	struct req_proc *rp;
	struct req_pause *q;

	if ((rp = p->requests) == NULL || !rp->serving)
		return 0;	/* serves no request: nothing to join */
	if (p->state != AGG_LIVE ||
	    (rp->pause == NULL && requests_ring(rp, REQ_PAUSES) < 0))
		return -ENOMEM;
	q = &rp->pause[rp->npause % rp->pause_cap];
	if (rp->npause >= rp->pause_cap &&
	    q->start_ns + q->pause_ns > rp->evicted_end_ns)
		rp->evicted_end_ns = q->start_ns + q->pause_ns;
	q->start_ns = e->start_ns;
	q->pause_ns = e->pause_ns;
	q->generation = e->generation;
	q->has_stack = has_stack != 0;
	rp->npause++;
	return 0;
}

int requests_serving(struct agg_proc *p, uint64_t since_ns)
{
	struct req_proc *rp = requests_of(p);

	if (rp == NULL)
		return -ENOMEM;
	if (!rp->serving && rp->pause == NULL)
		rp->evicted_end_ns = since_ns;	/* nothing kept before */
	rp->serving = 1;
	return p->state == AGG_LIVE ? requests_ring(rp, REQ_PAUSES) : 0;
}

static struct req_route *requests_route(struct req_proc *rp, uint32_t id)
{
	struct req_route *rt;

	if (id >= SHM_ROUTES)
		id = 0;
	if ((rt = rp->route[id]) != NULL)
		return rt;
	if ((rt = calloc(1, sizeof *rt)) == NULL)
		return NULL;
	hist_compact_init(&rt->served);
	hist_compact_init(&rt->without_gc);
	hist_compact_init(&rt->delay);
	rp->route[id] = rt;
	return rt;
}

/* Copies name (n bytes) into out as valid UTF-8: a byte that starts no
 * well-formed sequence becomes '?', so that every answer can carry it. */
static void requests_utf8(char *out, const char *name, size_t n)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0, o = 0, len, k;

	while (i < n) {
		len = s[i] < 0x80 ? 1 : (s[i] & 0xe0) == 0xc0 && s[i] >= 0xc2 ? 2 :
		    (s[i] & 0xf0) == 0xe0 ? 3 :
		    (s[i] & 0xf8) == 0xf0 && s[i] <= 0xf4 ? 4 : 0;
		for (k = 1; len > 1 && k < len; k++)
			if (i + k >= n || (s[i + k] & 0xc0) != 0x80)
				len = 0;
		/* Overlong 3-byte forms, surrogates, beyond U+10FFFF. */
		if (len == 3 && ((s[i] == 0xe0 && s[i + 1] < 0xa0) ||
		    (s[i] == 0xed && s[i + 1] >= 0xa0)))
			len = 0;
		if (len == 4 && ((s[i] == 0xf0 && s[i + 1] < 0x90) ||
		    (s[i] == 0xf4 && s[i + 1] >= 0x90)))
			len = 0;
		if (len == 0) {
			out[o++] = '?';
			i++;
			continue;
		}
		memcpy(out + o, s + i, len);
		o += len;
		i += len;
	}
	out[o] = '\0';
}

int requests_set_route(struct agg_proc *p, uint32_t id, const char *name)
{
	struct req_proc *rp = requests_of(p);
	struct req_route *rt;
	size_t n = strlen(name);

	if (rp == NULL || id == 0 || id >= SHM_ROUTES)
		return rp == NULL ? -ENOMEM : -EINVAL;
	if ((rt = requests_route(rp, id)) == NULL)
		return -ENOMEM;
	if (rt->name[0] == '\0') {	/* an id never changes name */
		if (n > SHM_ROUTE_NAME_MAX)
			n = SHM_ROUTE_NAME_MAX;
		requests_utf8(rt->name, name, n);
	}
	if (id >= rp->nroutes)
		rp->nroutes = id + 1;
	return 0;
}

const char *requests_route_name(const struct req_proc *rp, uint32_t id)
{
	if (id == 0 || id >= SHM_ROUTES || rp->route[id] == NULL ||
	    rp->route[id]->name[0] == '\0')
		return "other";
	return rp->route[id]->name;
}

/* Keeps r among the slowest (by latency) of rp, with its hits. */
static void requests_keep_slow(const struct agg_proc *p, struct req_proc *rp,
    const struct shm_request *r, uint64_t gc_ns, uint32_t ngc,
    const struct req_join *j)
{
	uint64_t lat = r->end_ns - r->start_ns;
	struct req_slow *s;
	const struct shm_stack *st;
	unsigned k, i;

	for (k = rp->nslow; k > 0 && rp->slow[k - 1].end_ns -
	    rp->slow[k - 1].start_ns < lat; k--)
		;
	if (k >= REQ_SLOWEST || (rp->slow == NULL &&
	    (rp->slow = calloc(REQ_SLOWEST, sizeof *rp->slow)) == NULL))
		return;
	memmove(&rp->slow[k + 1], &rp->slow[k], (REQ_SLOWEST - k - 1) *
	    sizeof rp->slow[0]);
	if (rp->nslow < REQ_SLOWEST)
		rp->nslow++;
	s = &rp->slow[k];
	memset(s, 0, sizeof *s);
	s->start_ns = r->start_ns;
	s->end_ns = r->end_ns;
	s->gc_ns = gc_ns;
	s->ngc = ngc;
	s->thread_id = r->thread_id;
	s->status = r->status;
	s->flags = r->flags;
	s->route_id = r->route_id;
	s->nhits = j->covered ? j->nhits : 0;
	for (i = 0; i < s->nhits; i++) {
		s->hit[i].pause = j->hits[i];
		st = j->hits[i].has_stack ? stacks_recent(p->stacks,
		    j->hits[i].start_ns) : NULL;
		if (st != NULL) {
			s->hit[i].have_stack = 1;
			s->hit[i].stack = *st;
		}
	}
}

/* A joined request's time by generation into rp->gen; returns the part
 * the collections that trace the old objects took (gcmodel.h). */
static uint64_t requests_by_gen(const struct agg_proc *p, struct req_proc *rp,
    const struct req_join *j)
{
	uint64_t full = 0;
	unsigned g;

	for (g = 0; g < PROTO_MAX_GEN; g++) {
		if (j->gen_ns[g] < REQ_DELAYED_NS)
			continue;
		rp->gen[g].delayed++;
		rp->gen[g].gc_ns += j->gen_ns[g];
		if (gcmodel_traces_old(p->gc_model, g, p->ngen))
			full += j->gen_ns[g];
	}
	if (full >= REQ_DELAYED_NS) {
		rp->full.delayed++;
		rp->full.gc_ns += full;
	}
	return full;
}

int requests_add(struct agg_proc *p, const struct shm_request *r,
    struct req_result *out)
{
	struct req_proc *rp = requests_of(p);
	struct req_route *rt;
	struct req_join j;
	uint64_t gc_ns, lat;
	uint32_t ngc;
	int joined;

	if (rp == NULL)
		return -ENOMEM;
	if (!shm_request_valid(r)) {
		rp->invalid++;
		return -EINVAL;
	}
	rp->serving = 1;
	lat = r->end_ns - r->start_ns;
	if (rp->pause != NULL)
		requests_join(rp->pause, rp->pause_cap, rp->npause,
		    rp->evicted_end_ns, r->start_ns, r->end_ns, &j);
	else
		memset(&j, 0, sizeof j), j.covered = 1;	/* none seen */
	if ((joined = j.covered && j.ngc == r->ngc)) {
		gc_ns = j.gc_ns;
		ngc = j.ngc;
		rp->joined++;
	} else {
		/* Pauses the join cannot see: the agent's counters. */
		if (j.covered)
			rp->mismatch++;
		gc_ns = r->gc_ns;
		ngc = r->ngc;
		rp->fallback++;
	}
	if (gc_ns > lat)
		gc_ns = lat;
	if ((rt = requests_route(rp, r->route_id < rp->nroutes ?
	    r->route_id : 0)) == NULL)
		return -ENOMEM;
	rp->requests++;
	rt->requests++;
	if (gc_ns >= REQ_DELAYED_NS) {
		rp->delayed++;
		rt->delayed++;
	}
	rt->errors += (r->flags & SHM_REQ_ERROR) != 0;
	rt->disconnects += (r->flags & SHM_REQ_DISCONNECT) != 0;
	rt->streamed += (r->flags & SHM_REQ_STREAMED) != 0;
	rt->open_at_exit += (r->flags & SHM_REQ_OPEN_AT_EXIT) != 0;
	rt->gc_ns += gc_ns;
	rt->ngc += ngc;
	/* A failed chunk allocation still counts (hist.h: nlost). */
	(void)hist_compact_record(&rt->served, lat);
	(void)hist_compact_record(&rt->without_gc, lat - gc_ns);
	(void)hist_compact_record(&rt->delay, gc_ns);
	(void)hist_compact_record(&rp->without_full,
	    lat - (joined ? requests_by_gen(p, rp, &j) : 0));
	requests_keep_slow(p, rp, r, gc_ns, ngc, &j);
	if (out != NULL) {
		out->gc_ns = gc_ns;
		out->ngc = ngc;
		out->joined = joined;
	}
	return 0;
}

void requests_note_area(struct agg_proc *p, uint64_t dropped, int given_up)
{
	struct req_proc *rp = p->requests;

	if (rp == NULL && dropped == 0 && !given_up)
		return;
	if (rp == NULL && (rp = requests_of(p)) == NULL)
		return;
	rp->dropped = dropped;
	rp->given_up |= given_up;
}

void requests_proc_end(struct agg_proc *p)
{
	struct req_proc *rp = p->requests;

	if (rp == NULL)
		return;
	free(rp->pause);
	rp->pause = NULL;
	rp->pause_cap = 0;
}

void requests_proc_free(struct req_proc *rp)
{
	unsigned i;

	if (rp == NULL)
		return;
	for (i = 0; i < SHM_ROUTES; i++) {
		if (rp->route[i] == NULL)
			continue;
		hist_compact_fini(&rp->route[i]->served);
		hist_compact_fini(&rp->route[i]->without_gc);
		hist_compact_fini(&rp->route[i]->delay);
		free(rp->route[i]);
	}
	hist_compact_fini(&rp->without_full);
	free(rp->pause);
	free(rp->slow);
	free(rp);
}

/* ---- sums ---------------------------------------------------------------- */

static void requests_sum_route_init(struct req_sum_route *sr, const char *name)
{
	memset(sr, 0, sizeof *sr);
	snprintf(sr->name, sizeof sr->name, "%s", name);
}

static void requests_sum_route_add(struct req_sum_route *sr,
    const struct req_route *rt)
{
	sr->requests += rt->requests;
	sr->delayed += rt->delayed;
	sr->errors += rt->errors;
	sr->disconnects += rt->disconnects;
	sr->streamed += rt->streamed;
	sr->open_at_exit += rt->open_at_exit;
	sr->gc_ns += rt->gc_ns;
	sr->ngc += rt->ngc;
	/* Out of memory: detail lost (nlost), the counts stay exact. */
	(void)hist_compact_merge(&sr->served, &rt->served);
	(void)hist_compact_merge(&sr->without_gc, &rt->without_gc);
	(void)hist_compact_merge(&sr->delay, &rt->delay);
}

static struct req_sum_route *requests_sum_find(struct req_sum *s,
    const char *name, size_t *cap)
{
	struct req_sum_route *nr;
	size_t i;

	for (i = 0; i < s->nroute; i++)
		if (strcmp(s->route[i].name, name) == 0)
			return &s->route[i];
	if (s->nroute >= REQ_SUM_MAX_ROUTES && strcmp(name, "other") != 0)
		return requests_sum_find(s, "other", cap);
	if (s->nroute == *cap) {
		*cap = *cap ? *cap * 2 : 8;
		if ((nr = realloc(s->route, *cap * sizeof *nr)) == NULL)
			return NULL;
		s->route = nr;
	}
	requests_sum_route_init(&s->route[s->nroute], name);
	return &s->route[s->nroute++];
}

/* Whether p has anything for a sum: a request, an invalid or a dropped one. */
static int requests_proc_has(const struct agg_proc *p)
{
	const struct req_proc *rp = p->requests;

	return rp != NULL && (rp->requests != 0 || rp->invalid != 0 ||
	    rp->dropped != 0);
}

static int requests_sum_proc(const struct agg_proc *p, struct req_sum *s,
    size_t *cap)
{
	const struct req_proc *rp = p->requests;
	struct req_sum_route *sr;
	unsigned i;

	if (!requests_proc_has(p))
		return 0;
	s->nproc++;
	s->invalid += rp->invalid;
	s->joined += rp->joined;
	s->fallback += rp->fallback;
	s->mismatch += rp->mismatch;
	s->dropped += rp->dropped;
	for (i = 0; i < PROTO_MAX_GEN; i++) {
		s->gen[i].delayed += rp->gen[i].delayed;
		s->gen[i].gc_ns += rp->gen[i].gc_ns;
	}
	s->full.delayed += rp->full.delayed;
	s->full.gc_ns += rp->full.gc_ns;
	(void)hist_compact_merge(&s->without_full, &rp->without_full);
	if (p->ngen > s->ngen)
		s->ngen = p->ngen;
	s->models |= gcmodel_bit(p->gc_model);
	for (i = 0; i < SHM_ROUTES; i++) {
		if (rp->route[i] == NULL || rp->route[i]->requests == 0)
			continue;
		if ((sr = requests_sum_find(s, requests_route_name(rp, i),
		    cap)) == NULL)
			return -ENOMEM;
		requests_sum_route_add(sr, rp->route[i]);
		requests_sum_route_add(&s->all, rp->route[i]);
	}
	return 0;
}

static int requests_by_count(const void *x, const void *y)
{
	const struct req_sum_route *a = x, *b = y;

	if (a->requests != b->requests)
		return a->requests < b->requests ? 1 : -1;
	return strcmp(a->name, b->name);
}

int requests_of_service(const struct agg_proc *p, const char *service)
{
	char buf[SERVICE_NAME_MAX + 1];

	return service == NULL ||
	    strcmp(service_name(p, buf, sizeof buf), service) == 0;
}

int requests_any(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p)
{
	const struct agg_proc *q;

	if (p != NULL)
		return requests_proc_has(p);
	for (q = agg_proc_next(a, r, NULL); q != NULL;
	    q = agg_proc_next(a, r, q))
		if (requests_proc_has(q))
			return 1;
	return 0;
}

int requests_sum(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, const char *service, struct req_sum *s)
{
	const struct agg_proc *q;
	size_t cap = 0;
	int err = 0;

	memset(s, 0, sizeof *s);
	requests_sum_route_init(&s->all, "all");
	if (p != NULL)
		err = requests_sum_proc(p, s, &cap);
	else
		for (q = agg_proc_next(a, r, NULL); q != NULL && err == 0;
		    q = agg_proc_next(a, r, q))
			if (requests_of_service(q, service))
				err = requests_sum_proc(q, s, &cap);
	if (err < 0) {
		requests_sum_fini(s);
		return err;
	}
	if (s->nroute > 1)
		qsort(s->route, s->nroute, sizeof s->route[0], requests_by_count);
	return 0;
}

static void requests_sum_route_fini(struct req_sum_route *sr)
{
	hist_compact_fini(&sr->served);
	hist_compact_fini(&sr->without_gc);
	hist_compact_fini(&sr->delay);
}

void requests_sum_fini(struct req_sum *s)
{
	size_t i;

	for (i = 0; i < s->nroute; i++)
		requests_sum_route_fini(&s->route[i]);
	free(s->route);
	requests_sum_route_fini(&s->all);
	hist_compact_fini(&s->without_full);
	memset(s, 0, sizeof *s);
}

void requests_totals_add(const struct req_proc *rp, struct req_totals *t)
{
	unsigned i;

	if (rp == NULL)
		return;
	t->requests += rp->requests;
	t->delayed += rp->delayed;
	for (i = 0; i < SHM_ROUTES; i++)
		if (rp->route[i] != NULL)
			hist_compact_add_to(&t->delay, &rp->route[i]->delay);
}
