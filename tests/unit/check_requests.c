/*
 * check_requests.c: Check suite for daemon/model/requests.c and
 * requests_answer.c, and the request ring's readers in common/shm.c: the
 * overlap of a request with its process's pauses (inside, straddling,
 * before, after, zero-length, the ring overwritten), the join against
 * the agent's counters (joined, fallback, mismatch), delayed counts,
 * percentiles as served and without GC, the slowest requests and their
 * hits, the answer's keys and sums across processes by route name; a
 * hostile request ring (head behind or beyond the tail, bad records, bad
 * route names) refused. Run by make check; no agent or daemon.
 */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "hello.h"
#include "requests.h"
#include "requests_answer.h"
#include "rules.h"
#include "shm.h"
#include "unit.h"

#define MS	1000000ull

static const struct agg_config cfg = { .alert_threshold_ns = 50 * MS,
    .run_expiry_s = 100 };

static struct agg_proc *proc_add(struct agg *a, uint32_t pid, const char *run)
{
	struct proto_hello h;
	struct agg_proc *p = NULL;
	int is_new = 0;

	unit_hello(&h, pid, 1, run, ORIGIN_FORK);
	h.start_mono_ns = 1000 + pid;
	h.clock_mono_ns = 0;
	h.argc = 0;
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	return p;
}

static void pause_add(struct agg_proc *p, unsigned gen, uint64_t start_ns,
    uint64_t pause_ns)
{
	struct proto_event e;

	memset(&e, 0, sizeof e);
	e.start_ns = start_ns;
	e.pause_ns = pause_ns;
	e.generation = (uint16_t)gen;
	ck_assert_int_eq(requests_pause(p, &e, 0), 0);
}

static struct shm_request req_of(uint64_t a, uint64_t b, uint16_t route,
    uint64_t gc_ns, uint32_t ngc)
{
	struct shm_request r;

	memset(&r, 0, sizeof r);
	r.start_ns = a;
	r.end_ns = b;
	r.route_id = route;
	r.status = 200;
	r.gc_ns = gc_ns;
	r.ngc = ngc;
	r.thread_id = 7;
	return r;
}

/* Pauses at [10,12) [20,25) [30,31) [40,50) ms. */
static const struct req_pause ring4[] = {
	{ 10 * MS, 2 * MS, 0, 0 }, { 20 * MS, 5 * MS, 1, 0 },
	{ 30 * MS, 1 * MS, 0, 0 }, { 40 * MS, 10 * MS, 2, 0 },
};

static const struct {
	const char *name;
	uint64_t a, b, gc_ns;
	uint32_t ngc;
	uint32_t longest_gen;
} join_rows[] = {
	{ "between pauses", 13 * MS, 19 * MS, 0, 0, 0 },
	{ "one inside", 19 * MS, 26 * MS, 5 * MS, 1, 1 },
	{ "all inside", 0, 60 * MS, 18 * MS, 4, 2 },
	{ "straddles a start", 22 * MS, 35 * MS, 4 * MS, 2, 1 },
	{ "straddles an end", 45 * MS, 55 * MS, 5 * MS, 1, 2 },
	{ "ends where one starts", 31 * MS, 40 * MS, 0, 0, 0 },
	{ "starts where one ends", 50 * MS, 70 * MS, 0, 0, 0 },
	{ "within one pause", 41 * MS, 42 * MS, 1 * MS, 1, 2 },
	{ "after every pause", 60 * MS, 61 * MS, 0, 0, 0 },
};

START_TEST(test_join_overlap_of_interval_and_pauses)
{
	struct req_join j;

	requests_join(ring4, 4, 4, 0, join_rows[_i].a, join_rows[_i].b, &j);
	ck_assert_msg(j.gc_ns == join_rows[_i].gc_ns, "%s: gc_ns %llu",
	    join_rows[_i].name, (unsigned long long)j.gc_ns);
	ck_assert_msg(j.ngc == join_rows[_i].ngc, "%s: ngc %u",
	    join_rows[_i].name, j.ngc);
	ck_assert_msg(j.covered, "%s: covered", join_rows[_i].name);
	if (j.ngc > 0)
		ck_assert_msg(j.hits[0].generation == join_rows[_i].longest_gen,
		    "%s: longest first", join_rows[_i].name);
	ck_assert_uint_eq(j.nhits, j.ngc < REQ_HITS ? j.ngc : REQ_HITS);
}
END_TEST

START_TEST(test_join_ring_wrapped_is_not_covered)
{
	struct req_pause ring[2];
	struct req_join j;

	/* 4 pauses through a ring of 2: [30,31) and [40,50) are kept, the
	 * newest overwritten one ended at 25 ms. */
	ring[0] = ring4[2];
	ring[1] = ring4[3];
	requests_join(ring, 2, 4, 25 * MS, 0, 60 * MS, &j);
	ck_assert(!j.covered);
	ck_assert_uint_eq(j.gc_ns, 11 * MS);
	requests_join(ring, 2, 4, 25 * MS, 26 * MS, 60 * MS, &j);
	ck_assert(j.covered);
	ck_assert_uint_eq(j.gc_ns, 11 * MS);
	ck_assert_uint_eq(j.ngc, 2);
}
END_TEST

START_TEST(test_requests_joined_delayed_and_percentiles)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 100, "r");
	struct shm_request r;
	struct req_sum s;
	double served[4], nogc[4];
	uint64_t i, t;

	ck_assert_int_eq(requests_serving(p, 0), 0);
	ck_assert_int_eq(requests_set_route(p, 1, "GET /x"), 0);
	/* 100 requests of 1 ms each, back to back from 1 s; the last 2 hit
	 * a 40 ms pause each: served 41 ms, without GC 1 ms. */
	for (i = 0; i < 100; i++) {
		t = 1000 * MS + i * 100 * MS;
		if (i >= 98) {
			pause_add(p, 2, t + MS / 2, 40 * MS);
			r = req_of(t, t + 41 * MS, 1, 40 * MS, 1);
		} else {
			r = req_of(t, t + MS, 1, 0, 0);
		}
		ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	}
	ck_assert_uint_eq(p->requests->requests, 100);
	ck_assert_uint_eq(p->requests->delayed, 2);
	ck_assert_uint_eq(p->requests->joined, 100);
	ck_assert_uint_eq(p->requests->fallback, 0);
	ck_assert_int_eq(requests_sum(a, NULL, p, NULL, &s), 0);
	agg_compact_pcts_ms(&s.all.served, 1, served);
	agg_compact_pcts_ms(&s.all.without_gc, 1, nogc);
	ck_assert(fabs(served[0] - 1.0) < 0.02);	/* p50 */
	ck_assert(fabs(served[2] - 41.0) < 0.5);	/* p99: a hit one */
	ck_assert(fabs(nogc[2] - 1.0) < 0.02);		/* GC taken out */
	ck_assert(fabs(nogc[3] - 1.0) < 0.02);
	ck_assert_uint_eq(s.nroute, 1);
	ck_assert_str_eq(s.route[0].name, "GET /x");
	ck_assert_uint_eq(s.all.gc_ns, 80 * MS);
	requests_sum_fini(&s);
	/* The slowest kept, with the pause that hit it. */
	ck_assert_uint_eq(p->requests->nslow, REQ_SLOWEST);
	ck_assert_uint_eq(p->requests->slow[0].end_ns -
	    p->requests->slow[0].start_ns, 41 * MS);
	ck_assert_uint_eq(p->requests->slow[0].nhits, 1);
	ck_assert_uint_eq(p->requests->slow[0].hit[0].pause.pause_ns, 40 * MS);
	agg_free(a);
}
END_TEST

START_TEST(test_request_older_than_the_kept_pauses_takes_the_agents)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 104, "r");
	struct shm_request r;

	/* Pauses kept from 100 ms on: a request from 50 ms may have waited
	 * for one before (the agent says 2 ms in 1), and is not joined. */
	ck_assert_int_eq(requests_serving(p, 100 * MS), 0);
	pause_add(p, 0, 120 * MS, MS);
	r = req_of(50 * MS, 130 * MS, 0, 3 * MS, 2);
	ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	ck_assert_uint_eq(p->requests->fallback, 1);
	ck_assert_uint_eq(p->requests->mismatch, 0);
	ck_assert_uint_eq(p->requests->route[0]->gc_ns, 3 * MS);
	/* One from 110 ms: all its pauses are kept. */
	r = req_of(110 * MS, 130 * MS, 0, MS, 1);
	ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	ck_assert_uint_eq(p->requests->joined, 1);
	agg_free(a);
}
END_TEST

START_TEST(test_join_disagreeing_with_agent_falls_back)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 101, "r");
	struct shm_request r;

	ck_assert_int_eq(requests_serving(p, 0), 0);
	pause_add(p, 0, 10 * MS, MS);
	/* The agent saw 2 collections (one dropped by a full event ring):
	 * its figures are used, and the disagreement counted. */
	r = req_of(5 * MS, 20 * MS, 0, 3 * MS, 2);
	ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	ck_assert_uint_eq(p->requests->fallback, 1);
	ck_assert_uint_eq(p->requests->mismatch, 1);
	ck_assert_uint_eq(p->requests->route[0]->gc_ns, 3 * MS);
	/* Agreeing: joined. */
	r = req_of(9 * MS, 12 * MS, 0, MS, 1);
	ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	ck_assert_uint_eq(p->requests->joined, 1);
	agg_free(a);
}
END_TEST

static const struct {
	const char *name;
	uint64_t a, b, gc_ns;
	uint16_t flags, status;
} bad_rows[] = {
	{ "no start (an empty slot)", 0, 5, 0, 0, 200 },
	{ "ends before it starts", 10, 5, 0, 0, 200 },
	{ "more GC than time", 10, 20, 11, 0, 200 },
	{ "unknown flag", 10, 20, 0, 0x100, 200 },
	{ "status above 999", 10, 20, 0, 0, 1000 },
};

START_TEST(test_invalid_records_counted_not_used)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 102, "r");
	struct shm_request r = req_of(bad_rows[_i].a, bad_rows[_i].b, 0,
	    bad_rows[_i].gc_ns, 0);

	r.flags = bad_rows[_i].flags;
	r.status = bad_rows[_i].status;
	ck_assert_msg(requests_add(p, &r, NULL) == -EINVAL, "%s", bad_rows[_i].name);
	ck_assert_uint_eq(p->requests->invalid, 1);
	ck_assert_uint_eq(p->requests->requests, 0);
	agg_free(a);
}
END_TEST

START_TEST(test_route_names_made_valid_utf8)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 103, "r");

	ck_assert_int_eq(requests_set_route(p, 1, "GET /caf\xc3\xa9"), 0);
	ck_assert_int_eq(requests_set_route(p, 2, "GET /\xff\xc3(\xed\xa0\x80"), 0);
	ck_assert_str_eq(requests_route_name(p->requests, 1), "GET /caf\xc3\xa9");
	ck_assert_str_eq(requests_route_name(p->requests, 2), "GET /?\?(?\?\?");
	agg_free(a);
}
END_TEST

START_TEST(test_answer_sums_processes_by_route_name)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 200, "run1");
	struct agg_proc *q = proc_add(a, 201, "run1");
	struct shm_request r;
	json_t *ans, *routes, *rt;
	size_t i;

	/* The same name under different ids in the two processes. */
	ck_assert_int_eq(requests_set_route(p, 1, "GET /a"), 0);
	ck_assert_int_eq(requests_set_route(q, 1, "GET /b"), 0);
	ck_assert_int_eq(requests_set_route(q, 2, "GET /a"), 0);
	r = req_of(MS, (2 + 1) * MS, 1, 0, 0);
	r.flags = SHM_REQ_ERROR;
	ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	r = req_of(MS, (3 + 1) * MS, 2, 0, 0);
	ck_assert_int_eq(requests_add(q, &r, NULL), 0);
	r = req_of(MS, (4 + 1) * MS, 1, 0, 0);
	ck_assert_int_eq(requests_add(q, &r, NULL), 0);
	r = req_of(MS, (4 + 1) * MS, 9, 0, 0);		/* an id never named */
	ck_assert_int_eq(requests_add(q, &r, NULL), 0);
	ans = requests_answer(a, agg_run_find(a, "run1"), NULL, NULL);
	ck_assert_ptr_nonnull(ans);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "requests")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "delayed")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "errors")), 1);
	ck_assert(json_is_number(json_object_get(ans, "p99_ms")));
	ck_assert(json_is_number(json_object_get(ans, "p99_without_gc_ms")));
	ck_assert_int_eq(json_array_size(json_object_get(ans, "workers")), 2);
	routes = json_object_get(ans, "routes");
	ck_assert_int_eq(json_array_size(routes), 3);
	rt = json_array_get(routes, 0);		/* most requests first */
	ck_assert_str_eq(json_string_value(json_object_get(rt, "route")),
	    "GET /a");
	ck_assert_int_eq(json_integer_value(json_object_get(rt, "requests")), 2);
	json_array_foreach(routes, i, rt)
		ck_assert_ptr_nonnull(json_object_get(rt, "route"));
	json_decref(ans);
	agg_free(a);
}
END_TEST

/* ---- the request ring, hostile --------------------------------------- */

struct area {
	void *map;
	size_t size;
	struct shm_info in;
};

static void area_make(struct area *a)
{
	uint8_t hello[4096];
	struct proto_hello h;
	ssize_t n;

	memset(&h, 0, sizeof h);
	h.pid = 42;
	h.ngen = 1;
	n = proto_encode_hello(hello, sizeof hello, &h);
	ck_assert_int_gt(n, 0);
	a->size = shm_area_size((uint32_t)n, SHM_RING_MIN);
	a->map = calloc(1, a->size);
	ck_assert_ptr_nonnull(a->map);
	shm_area_init(a->map, a->size, hello, (uint32_t)n, SHM_RING_MIN, 42,
	    0, 1);
	ck_assert_int_eq(shm_check(a->map, a->size, &a->in), 0);
}

START_TEST(test_request_ring_round_trip_and_hostile_heads)
{
	struct area a;
	struct shm_header *h;
	struct shm_request r = req_of(1, 5, 0, 1, 1), out[4];
	uint64_t tail, dropped;

	area_make(&a);
	h = a.map;
	ck_assert_uint_eq(a.in.req_cap, SHM_REQ_RING);
	ck_assert_int_eq(shm_record_request(h, &r), 1);
	ck_assert_int_eq(shm_record_request(h, &r), 1);
	tail = shm_start_req_tail(a.map, &a.in);
	ck_assert_int_eq(shm_drain_requests(a.map, &a.in, shm_req_head(a.map),
	    &tail, out, 4, &dropped), 2);
	ck_assert_uint_eq(out[1].end_ns, 5);
	ck_assert(shm_request_valid(&out[0]));
	/* A head behind the tail, or more than a ring ahead: refused. */
	ck_assert_int_eq(shm_drain_requests(a.map, &a.in, 1, &tail, out, 4,
	    &dropped), -EBADMSG);
	ck_assert_int_eq(shm_drain_requests(a.map, &a.in,
	    tail + SHM_REQ_RING + 1, &tail, out, 4, &dropped), -EBADMSG);
	/* A full ring counts what it refuses. */
	atomic_store(&h->req_head, tail + SHM_REQ_RING);
	ck_assert_int_eq(shm_record_request(h, &r), 0);
	ck_assert_uint_eq(atomic_load(&h->req_dropped), 1);
	/* A request capacity that is no power of 2: not an area. */
	h->req_cap = 3;
	ck_assert_int_eq(shm_check(a.map, a.size, &a.in), -EBADMSG);
	free(a.map);
}
END_TEST

START_TEST(test_route_names_bounded_and_checked)
{
	struct area a;
	struct shm_header *h;
	struct shm_route *slots;
	char buf[SHM_ROUTE_NAME_MAX + 1];

	area_make(&a);
	h = a.map;
	slots = (struct shm_route *)((char *)a.map + a.in.route_off);
	slots[1].len = 6;
	memcpy(slots[1].name, "GET /x", 6);
	slots[2].len = SHM_ROUTE_NAME_MAX + 1;	/* too long */
	slots[3].len = 3;
	memcpy(slots[3].name, "a\0b", 3);	/* a NUL inside */
	atomic_store(&h->nroutes, 1000);	/* beyond the table */
	ck_assert_uint_eq(shm_nroutes(a.map, &a.in), SHM_ROUTES);
	ck_assert_int_eq(shm_route_name(a.map, &a.in, 4, 1, buf), 6);
	ck_assert_str_eq(buf, "GET /x");
	ck_assert_int_eq(shm_route_name(a.map, &a.in, 4, 2, buf), -EBADMSG);
	ck_assert_int_eq(shm_route_name(a.map, &a.in, 4, 3, buf), -EBADMSG);
	ck_assert_int_eq(shm_route_name(a.map, &a.in, 4, 0, buf), -ENOENT);
	ck_assert_int_eq(shm_route_name(a.map, &a.in, 4, 4, buf), -ENOENT);
	free(a.map);
}
END_TEST

/* n requests of 1 ms, 100 ms apart from 1 s; of each 100, the first
 * `full` wait for a gen 2 pause of full_ms, the next `young` for a gen 0
 * pause of young_ms (the agent's counters agree: all joined). */
static void feed_gens(struct agg_proc *p, unsigned n, unsigned full,
    double full_ms, unsigned young, double young_ms)
{
	struct shm_request r;
	uint64_t t, gc;
	unsigned i, k;

	ck_assert_int_eq(requests_serving(p, 0), 0);
	for (i = 0; i < n; i++) {
		t = 1000 * MS + (uint64_t)i * 100 * MS;
		k = i % 100;
		gc = k < full ? (uint64_t)(full_ms * 1e6) : k < full + young ?
		    (uint64_t)(young_ms * 1e6) : 0;
		if (gc > 0)
			pause_add(p, k < full ? 2 : 0, t + MS / 2, gc);
		r = req_of(t, t + MS + gc, 0, gc, gc > 0);
		ck_assert_int_eq(requests_add(p, &r, NULL), 0);
	}
}

START_TEST(test_delay_by_generation_and_without_full)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 100, "g");
	double served[4], nogc[4], nofull[4];
	struct req_sum s;

	/* 2% wait 40 ms for gen 2, 30% wait 0.2 ms for gen 0. */
	feed_gens(p, 1000, 2, 40, 30, 0.2);
	ck_assert_int_eq(requests_sum(a, NULL, p, NULL, &s), 0);
	ck_assert_uint_eq(s.ngen, 3);
	ck_assert_uint_eq(s.gen[2].delayed, 20);
	ck_assert_uint_eq(s.gen[2].gc_ns, 20 * 40 * MS);
	ck_assert_uint_eq(s.gen[0].delayed, 300);
	ck_assert_uint_eq(s.gen[0].gc_ns, 300 * 200000ull);
	ck_assert_uint_eq(s.gen[1].delayed, 0);
	ck_assert_uint_eq(s.full.delayed, 20);	/* classic: gen 2 only */
	agg_compact_pcts_ms(&s.all.served, 1, served);
	agg_compact_pcts_ms(&s.all.without_gc, 1, nogc);
	agg_compact_pcts_ms(&s.without_full, 1, nofull);
	ck_assert(fabs(served[2] - 41.0) < 0.5);
	ck_assert(fabs(nogc[2] - 1.0) < 0.02);
	ck_assert(fabs(nofull[2] - 1.2) < 0.03);	/* gen 0 stays in */
	requests_sum_fini(&s);
	agg_free(a);
}
END_TEST

static const struct rules_rec *rec_of(const struct rules_rec *v, size_t n,
    const char *rule)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(v[i].rule, rule) == 0)
			return &v[i];
	return NULL;
}

static double evidence_of(const struct rules_rec *r, const char *name)
{
	unsigned i;

	for (i = 0; i < r->nevidence; i++)
		if (strcmp(r->evidence[i].name, name) == 0)
			return r->evidence[i].value;
	ck_abort_msg("no evidence %s", name);
	return 0;
}

/* The recommendations of the scope of p (run: with siblings). */
static size_t recs_of(struct agg *a, struct agg_run *run,
    struct agg_proc *p, struct rules_rec *out)
{
	struct rules_input in;
	size_t n;

	ck_assert_int_eq(rules_input_build(a, run, run ? NULL : p, &in), 0);
	ck_assert_ptr_nonnull(in.req);
	n = rules_evaluate(&in, out, RULES_MAX);
	rules_input_fini(&in);
	return n;
}

START_TEST(test_rule_full_collections_in_requests)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 100, "g");
	struct rules_rec *out = calloc(RULES_MAX, sizeof *out);
	const struct rules_rec *r;
	size_t n;

	p->base[0].threshold = 700;
	p->base[1].threshold = 10;
	p->base[2].threshold = 10;
	feed_gens(p, 1000, 2, 40, 30, 0.2);
	n = recs_of(a, NULL, p, out);
	ck_assert_ptr_nonnull(r = rec_of(out, n, "requests_gc"));
	ck_assert(fabs(evidence_of(r, "requests") - 1000) < 1e-9);
	ck_assert(fabs(evidence_of(r, "full_delayed_pct") - 2.0) < 1e-9);
	ck_assert(fabs(evidence_of(r, "delayed_pct") - 32.0) < 1e-9);
	ck_assert(fabs(evidence_of(r, "full_mean_delay_ms") - 40.0) < 1e-9);
	ck_assert(fabs(evidence_of(r, "p99_without_full_ms") - 1.2) < 0.03);
	ck_assert(evidence_of(r, "full_adds_p99_ms") > 39);
	ck_assert_msg(strstr(r->message, "generation 0 30.0% by 0.20 ms, "
	    "generation 2 2.0% by 40.00 ms") != NULL, "%s", r->message);
	/* Freeze first, what it buys from the measured p99 without gen 2;
	 * then gen 2 four times rarer: 2% / 4 = 0.5%, out of the tail. */
	ck_assert_uint_eq(r->nactions, 2);
	ck_assert_msg(strstr(r->actions[0], "gc.freeze() once "
	    "initialisation is done") != NULL, "%s", r->actions[0]);
	ck_assert_msg(strstr(r->actions[0], "-> 1.2") != NULL, "%s",
	    r->actions[0]);
	ck_assert_msg(strstr(r->actions[1], "gc.set_threshold(700, 10, 40)") !=
	    NULL && strstr(r->actions[1], "about 0.50% of requests") != NULL &&
	    strstr(r->actions[1], "few enough to leave the p99") != NULL,
	    "%s", r->actions[1]);
	/* Frozen already: the advice followed does not come back. */
	p->freeze_count = 5000;
	n = recs_of(a, NULL, p, out);
	ck_assert_ptr_nonnull(r = rec_of(out, n, "requests_gc"));
	ck_assert_uint_eq(r->nactions, 1);
	ck_assert(strstr(r->actions[0], "gc.set_threshold") != NULL);
	free(out);
	agg_free(a);
}
END_TEST

START_TEST(test_rule_requests_quiet_when_gc_leaves_p99_alone)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *p = proc_add(a, 100, "q");
	struct agg_proc *y = proc_add(a, 101, "y");
	struct agg_proc *f = proc_add(a, 102, "f");
	struct rules_rec *out = calloc(RULES_MAX, sizeof *out);
	const struct rules_rec *r;
	size_t n;

	/* 0.5% delayed by 40 ms: inside the 1% p99 leaves out. */
	feed_gens(p, 1000, 0, 0, 1, 40);
	ck_assert_ptr_null(rec_of(out, recs_of(a, NULL, p, out), "requests_gc"));
	/* Gen 0 makes the tail: no freeze, no gen 2 threshold. */
	feed_gens(y, 1000, 0, 0, 5, 8);
	n = recs_of(a, NULL, y, out);
	ck_assert_ptr_nonnull(r = rec_of(out, n, "requests_gc"));
	ck_assert(evidence_of(r, "full_adds_p99_ms") < 1e-9);
	ck_assert(strstr(r->actions[0], "gc.freeze") == NULL);
	ck_assert(strstr(r->actions[0], "slowest requests") != NULL);
	/* Too few requests to say. */
	feed_gens(f, RULES_MIN_REQUESTS - 1, 50, 40, 0, 0);
	ck_assert_ptr_null(rec_of(out, recs_of(a, NULL, f, out), "requests_gc"));
	free(out);
	agg_free(a);
}
END_TEST

/* A scope with no request has no requests sum at all: the rule takes
 * the NULL as none, and the 64 KiB of zeros are not made. */
START_TEST(test_scope_without_requests_has_no_sum)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *quiet = proc_add(a, 100, "quiet");
	struct agg_proc *busy = proc_add(a, 101, "busy");
	struct rules_input in;

	feed_gens(busy, 10, 0, 0, 1, 1);
	ck_assert(!requests_any(a, NULL, quiet));
	ck_assert(!requests_any(a, agg_run_find(a, "quiet"), NULL));
	ck_assert(requests_any(a, NULL, busy));
	ck_assert(requests_any(a, agg_run_find(a, "busy"), NULL));
	ck_assert(requests_any(a, NULL, NULL));		/* the host */
	ck_assert_int_eq(rules_input_build(a, NULL, quiet, &in), 0);
	ck_assert_ptr_null(in.req);
	rules_input_fini(&in);
	ck_assert_int_eq(rules_input_build(a, agg_run_find(a, "busy"), NULL,
	    &in), 0);
	ck_assert_ptr_nonnull(in.req);
	ck_assert_uint_eq(in.req->all.requests, 10);
	rules_input_fini(&in);
	agg_free(a);
}
END_TEST

static Suite *requests_suite(void)
{
	Suite *s = suite_create("requests");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_join_overlap_of_interval_and_pauses, 0,
	    (int)(sizeof join_rows / sizeof join_rows[0]));
	tcase_add_test(tc, test_join_ring_wrapped_is_not_covered);
	tcase_add_test(tc, test_requests_joined_delayed_and_percentiles);
	tcase_add_test(tc, test_join_disagreeing_with_agent_falls_back);
	tcase_add_test(tc, test_request_older_than_the_kept_pauses_takes_the_agents);
	tcase_add_loop_test(tc, test_invalid_records_counted_not_used, 0,
	    (int)(sizeof bad_rows / sizeof bad_rows[0]));
	tcase_add_test(tc, test_route_names_made_valid_utf8);
	tcase_add_test(tc, test_answer_sums_processes_by_route_name);
	tcase_add_test(tc, test_request_ring_round_trip_and_hostile_heads);
	tcase_add_test(tc, test_route_names_bounded_and_checked);
	tcase_add_test(tc, test_delay_by_generation_and_without_full);
	tcase_add_test(tc, test_rule_full_collections_in_requests);
	tcase_add_test(tc, test_rule_requests_quiet_when_gc_leaves_p99_alone);
	tcase_add_test(tc, test_scope_without_requests_has_no_sum);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(requests_suite, UNIT_NOFORK_UNDER_ASAN);
