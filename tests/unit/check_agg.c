/*
 * check_agg.c: unit tests of daemon/model/agg.c and daemon/model/rules.c (linked with
 * common/ only): exact totals through reconnects and drops, fork
 * baselines kept out of run totals, histogram folding, bounded records,
 * expiry, memory per live process (<= 16 KiB), the role of exec'd
 * processes, and every recommendation just below and just above its
 * threshold and its sample minimums. No I/O, no sockets.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "gcmodel.h"
#include "hello.h"
#include "rules.h"
#include "unit.h"

static const struct agg_config cfg = { .alert_threshold_ns = 50000000,
    .run_expiry_s = 100 };

static struct proto_hello hello_of(uint32_t pid, uint32_t ppid,
    const char *run, uint8_t origin, uint64_t base0)
{
	struct proto_hello h;

	unit_hello(&h, pid, ppid, run, origin);
	h.base[0].collections = base0;
	h.base[0].collected = 2 * base0;
	h.base[0].threshold = 700;
	h.base[1].threshold = 10;
	h.base[2].threshold = 10;
	return h;
}

static struct proto_counters counters_of(uint64_t c0, uint64_t c1,
    uint64_t c2, uint64_t dropped)
{
	struct proto_counters c;

	memset(&c, 0, sizeof c);
	c.ngen = 3;
	c.dropped = dropped;
	c.gen[0].count = c0;
	c.gen[1].count = c1;
	c.gen[2].count = c2;
	c.gen[0].pause_ns = c0 * 1000;
	c.gen[0].max_pause_ns = c0 ? 1000 : 0;
	c.gen[0].collected = c0 * 3;
	return c;
}

static struct agg_proc *add(struct agg *a, uint32_t pid, uint32_t ppid,
    const char *run, uint8_t origin, uint64_t base0)
{
	struct proto_hello h = hello_of(pid, ppid, run, origin, base0);
	struct agg_proc *p = NULL;
	int is_new = 0;

	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	ck_assert_int_eq(is_new, 1);
	return p;
}

/* Generation g of sum s holds exactly want's values, bucket by bucket. */
static void assert_sum_hist_is(const struct agg_sum *s, unsigned g,
    const struct hist *want)
{
	struct hist *h = calloc(1, sizeof *h);

	ck_assert_ptr_nonnull(h);
	hist_compact_add_to(h, &s->hist[g]);
	ck_assert(memcmp(h, want, sizeof *h) == 0);
	ck_assert_uint_eq(s->hist[g].nlost, 0);
	free(h);
}

static uint64_t total(const struct agg_sum *s)
{
	uint64_t t = 0;
	unsigned g;

	for (g = 0; g < s->ngen; g++)
		t += s->gen[g].collections;
	return t;
}

START_TEST(test_totals_exact_through_reconnect_and_drops)
{
	struct agg *a = agg_new(&cfg);
	struct proto_hello h = hello_of(10, 1, "r", ORIGIN_ROOT, 4);
	struct proto_counters c;
	struct proto_event e = { .pause_ns = 1000, .generation = 0 };
	struct agg_proc *p, *q;
	struct agg_sum *s;
	int is_new, i;

	a->now_real = 1700000000;
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	ck_assert_int_eq(is_new, 1);
	/* 10 collections, 3 of them dropped: only 7 records arrive. */
	for (i = 0; i < 7; i++)
		agg_event(a, p, &e);
	c = counters_of(10, 0, 0, 3);
	agg_counters(a, p, &c);
	/* The connection drops, the agent comes back: same identity. */
	ck_assert_int_eq(agg_disconnect(a, p), 1);
	ck_assert_int_eq(p->state, AGG_LOST);
	h.reconnects = 1;
	ck_assert_int_eq(agg_hello(a, &h, &q, &is_new), 0);
	ck_assert_int_eq(is_new, 0);
	ck_assert_ptr_eq(p, q);
	ck_assert_int_eq(p->state, AGG_LIVE);
	/* Counters continue, they do not restart. */
	c = counters_of(15, 1, 0, 3);
	agg_counters(a, p, &c);
	/* A stale frame from the old connection never lowers a total. */
	c = counters_of(12, 0, 0, 3);
	agg_counters(a, p, &c);
	s = agg_sum_new();
	agg_sum_process(a, p, s);
	ck_assert_uint_eq(s->gen[0].collections, 4 + 15);
	ck_assert_uint_eq(s->gen[0].seen, 15);
	ck_assert_uint_eq(s->gen[0].unseen, 4);
	ck_assert_uint_eq(s->gen[0].collected, 8 + 45);
	ck_assert_uint_eq(s->gen[1].collections, 1);
	ck_assert_uint_eq(s->dropped, 3);
	ck_assert_uint_eq(s->hist[0].count, 7);
	ck_assert_uint_eq(a->nlive, 1);
	agg_sum_free(s);
	agg_free(a);
}
END_TEST

/* A detach and an attach again: two records of one process. The second's
 * baseline holds what the first counted (its prior); the process alone
 * is its gc.get_stats(), the run counts each collection once. */
START_TEST(test_attach_again_counts_each_collection_once)
{
	struct agg *a = agg_new(&cfg);
	struct proto_hello h = hello_of(300, 1, "r", ORIGIN_ROOT, 4);
	struct proto_counters c;
	struct proto_bye bye;
	struct agg_proc *p1, *p2;
	struct agg_sum *s;
	int is_new;

	a->now_real = 1700000000;
	ck_assert_int_eq(agg_hello(a, &h, &p1, &is_new), 0);
	c = counters_of(10, 2, 1, 0);
	memset(&bye, 0, sizeof bye);
	bye.counters = c;
	bye.mono_ns = h.start_mono_ns + 1000;
	agg_exit_detached(p1);
	agg_bye(a, p1, &bye);
	/* Detached, 6 gen-0 collections unseen, then attached again. */
	h.start_mono_ns += 5000;
	h.flags |= PROTO_HELLO_PRIOR;
	h.base[0].collections = 4 + 10 + 6;
	h.base[0].collected = 8 + 30 + 1;
	h.base[1].collections = 2;
	h.base[2].collections = 1;
	h.prior[0].collections = 4 + 10;
	h.prior[0].collected = 8 + 30;
	h.prior[1].collections = 2;
	h.prior[2].collections = 1;
	ck_assert_int_eq(agg_hello(a, &h, &p2, &is_new), 0);
	ck_assert_int_eq(is_new, 1);
	ck_assert_ptr_ne(p1, p2);
	c = counters_of(7, 0, 0, 0);
	agg_counters(a, p2, &c);
	ck_assert_ptr_eq(agg_proc_find(a, 300), p2);
	s = agg_sum_new();
	agg_sum_process(a, p2, s);
	ck_assert_uint_eq(total(s), 20 + 2 + 1 + 7);
	ck_assert_uint_eq(s->gen[0].collected, 39 + 21);
	agg_sum_free(s);
	s = agg_sum_new();
	agg_sum_run(a, agg_run_find(a, "r"), s);
	ck_assert_uint_eq(total(s), 20 + 2 + 1 + 7);
	ck_assert_uint_eq(s->gen[0].unseen, 4 + 6);
	ck_assert_uint_eq(s->gen[0].seen, 10 + 7);
	ck_assert_uint_eq(s->gen[0].collected, 39 + 21);
	ck_assert_uint_eq(s->nlive, 1);
	agg_sum_free(s);
	/* Ended too: still the later record by its pid. */
	bye.counters = c;
	agg_bye(a, p2, &bye);
	ck_assert_ptr_eq(agg_proc_find(a, 300), p2);
	ck_assert_int_eq(p1->detached, 1);
	agg_free(a);
}
END_TEST

START_TEST(test_fork_baseline_not_double_counted_in_run)
{
	struct agg *a = agg_new(&cfg);
	struct proto_counters c;
	struct agg_proc *m, *w1, *w2;
	struct agg_sum *s;

	a->now_real = 1700000000;
	m = add(a, 100, 1, "svc", ORIGIN_ROOT, 5);
	c = counters_of(3, 1, 0, 0);
	agg_counters(a, m, &c);
	/* Workers inherit the master's 5 + 3 gen 0 collections. */
	w1 = add(a, 101, 100, "svc", ORIGIN_FORK, 8);
	w2 = add(a, 102, 100, "svc", ORIGIN_FORK, 8);
	c = counters_of(2, 0, 1, 0);
	agg_counters(a, w1, &c);
	agg_counters(a, w2, &c);
	s = agg_sum_new();
	agg_sum_run(a, agg_run_find(a, "svc"), s);
	ck_assert_uint_eq(total(s), 5 + 3 + 1 + 2 * (2 + 1));
	ck_assert_uint_eq(s->gen[0].unseen, 5);
	ck_assert_uint_eq(s->nproc, 3);
	agg_sum_free(s);
	/* The worker alone counts what it inherited: its gc.get_stats(). */
	s = agg_sum_new();
	agg_sum_process(a, w1, s);
	ck_assert_uint_eq(s->gen[0].collections, 8 + 2);
	agg_sum_free(s);
	s = agg_sum_new();
	agg_sum_host(a, s);
	ck_assert_uint_eq(total(s), 5 + 3 + 1 + 2 * (2 + 1));
	agg_sum_free(s);
	agg_free(a);
}
END_TEST

static struct agg_mem mem_of(uint64_t private_mb)
{
	struct agg_mem m;

	memset(&m, 0, sizeof m);
	m.rss_bytes = 300u << 20;
	m.private_dirty_bytes = private_mb << 20;
	m.shared_dirty_bytes = (300u << 20) - m.private_dirty_bytes;
	m.anon_bytes = 290u << 20;
	return m;
}

static struct proto_event gen2_at(uint64_t start_ns)
{
	struct proto_event e;

	memset(&e, 0, sizeof e);
	e.start_ns = start_ns;
	e.pause_ns = 300000000;
	e.generation = 2;
	return e;
}

/* A full collection longer than the reads kept (a big heap on a loaded
 * machine, a short --sample-interval): every read during it says it was
 * not quiet, so "before" is still the read from before it, and a read
 * that is not quiet is never taken for "after" either. */
START_TEST(test_unshared_ignores_reads_a_collection_ran_through)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *w;
	struct proto_counters c;
	struct proto_event e;
	struct agg_mem r;
	unsigned i;

	a->now_real = 1700000000;
	(void)add(a, 100, 1, "svc", ORIGIN_ROOT, 0);
	w = add(a, 101, 100, "svc", ORIGIN_FORK, 0);
	r = mem_of(2);
	agg_mem_read(a, w, &r, 10, 0, 1);	/* before: 2 MB private */
	for (i = 0; i < 3 * AGG_MEM_READS; i++) {
		r = mem_of(2 + i);		/* pages being copied */
		agg_mem_read(a, w, &r, 30 + i, 0, 0);
	}
	ck_assert_uint_eq(w->mem.private_dirty_bytes + w->mem.private_clean_bytes,
	    (uint64_t)(1 + 3 * AGG_MEM_READS) << 20);
	e = gen2_at(20);
	agg_event(a, w, &e);
	c = counters_of(0, 0, 1, 0);
	agg_counters(a, w, &c);
	ck_assert_int_eq(agg_mem_due(w), 1);
	/* The next collection already under way at the first read after. */
	r = mem_of(150);
	agg_mem_read(a, w, &r, 200, 0, 0);
	ck_assert_uint_eq(w->unshared_by_gc_bytes, 0);
	ck_assert_int_eq(agg_mem_due(w), 1);
	r = mem_of(102);
	agg_mem_read(a, w, &r, 300, 0, 1);
	ck_assert_uint_eq(w->unshared_by_gc_bytes, 100u << 20);
	ck_assert_int_eq(agg_mem_due(w), 0);
	agg_free(a);
}
END_TEST

/* Only a read that is not quiet yet: nothing to measure from. */
START_TEST(test_unshared_needs_a_quiet_read_before)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *w;
	struct proto_counters c;
	struct agg_mem r;

	a->now_real = 1700000000;
	(void)add(a, 100, 1, "svc", ORIGIN_ROOT, 0);
	w = add(a, 101, 100, "svc", ORIGIN_FORK, 0);
	r = mem_of(50);
	agg_mem_read(a, w, &r, 10, 0, 0);
	ck_assert_int_eq(w->mem_state, AGG_MEM_READ);
	c = counters_of(0, 0, 1, 0);
	agg_counters(a, w, &c);
	ck_assert_int_eq(agg_mem_due(w), 0);
	r = mem_of(80);
	agg_mem_read(a, w, &r, 20, 0, 1);	/* the baseline, not an after */
	ck_assert_uint_eq(w->unshared_by_gc_bytes, 0);
	agg_free(a);
}
END_TEST

START_TEST(test_unshared_counts_from_the_read_before_each_gen2)
{
	struct agg *a = agg_new(&cfg);
	struct agg_proc *m, *w;
	struct proto_counters c;
	struct proto_event e;
	struct agg_mem r;
	struct agg_sum *s;

	a->now_real = 1700000000;
	m = add(a, 100, 1, "svc", ORIGIN_ROOT, 0);
	w = add(a, 101, 100, "svc", ORIGIN_FORK, 0);
	r = mem_of(2);
	agg_mem_read(a, m, &r, 10, 0, 1);
	agg_mem_read(a, w, &r, 10, 0, 1);		/* before: 2 MB private */
	ck_assert_int_eq(agg_mem_due(w), 0);
	/* A sample read lands during the collection (pages half copied),
	 * then the collection's event: "before" is still the read at 10. */
	r = mem_of(60);
	agg_mem_read(a, w, &r, 30, 0, 1);
	e = gen2_at(20);
	agg_event(a, w, &e);
	c = counters_of(0, 0, 1, 0);
	agg_counters(a, w, &c);
	ck_assert_int_eq(agg_mem_due(w), 1);
	r = mem_of(102);
	agg_mem_read(a, w, &r, 40, 0, 1);
	ck_assert_uint_eq(w->unshared_by_gc_bytes, 100u << 20);
	ck_assert_int_eq(agg_mem_due(w), 0);
	/* No gen-2 since: growth is the worker's own, not the collector's. */
	r = mem_of(150);
	agg_mem_read(a, w, &r, 50, 0, 1);
	ck_assert_uint_eq(w->unshared_by_gc_bytes, 100u << 20);
	/* A shrink across a gen-2 counts 0, never less. */
	e = gen2_at(55);
	agg_event(a, w, &e);
	c = counters_of(0, 0, 2, 0);
	agg_counters(a, w, &c);
	r = mem_of(120);
	agg_mem_read(a, w, &r, 60, 0, 1);
	ck_assert_uint_eq(w->unshared_by_gc_bytes, 100u << 20);
	/* A master's growth across its gen-2 is its own allocation. */
	e = gen2_at(15);
	agg_event(a, m, &e);
	c = counters_of(0, 0, 1, 0);
	agg_counters(a, m, &c);
	r = mem_of(90);
	agg_mem_read(a, m, &r, 20, 0, 1);
	ck_assert_uint_eq(m->unshared_by_gc_bytes, 0);
	/* A refused read is kept as such; a process gone changes nothing. */
	agg_mem_read(a, w, &r, 70, -ESRCH, 1);
	ck_assert_int_eq(w->mem_state, AGG_MEM_READ);
	agg_mem_read(a, w, &r, 70, -EACCES, 1);
	ck_assert_int_eq(w->mem_state, AGG_MEM_REFUSED);
	s = agg_sum_new();
	agg_sum_run(a, agg_run_find(a, "svc"), s);
	ck_assert_uint_eq(s->unshared_by_gc_bytes, 0);	/* refused now */
	ck_assert_uint_eq(s->nmem_refused, 1);
	ck_assert_uint_eq(s->master_anon_bytes, 290u << 20);
	agg_sum_free(s);
	agg_free(a);
}
END_TEST

START_TEST(test_histograms_fold_into_run_on_bye)
{
	struct agg *a = agg_new(&cfg);
	struct proto_event e = { .generation = 1 };
	struct proto_bye bye;
	struct agg_proc *p1, *p2;
	struct agg_sum *s;
	struct hist want;
	double p99;
	int i;

	a->now_real = 1700000000;
	hist_init(&want);
	p1 = add(a, 1, 0, "h", ORIGIN_ROOT, 0);
	p2 = add(a, 2, 0, "h", ORIGIN_ROOT, 0);
	for (i = 1; i <= 1000; i++) {
		e.pause_ns = (uint64_t)i * 1000;
		agg_event(a, i % 2 ? p1 : p2, &e);
		hist_record(&want, e.pause_ns);
	}
	p99 = agg_proc_pct_ms(p1, 1, 99.0);
	memset(&bye, 0, sizeof bye);
	bye.mono_ns = 2000000000ull;
	bye.counters = counters_of(0, 500, 0, 0);
	agg_bye(a, p1, &bye);
	ck_assert_int_eq(p1->state, AGG_ENDED);
	ck_assert_ptr_null(p1->hist);
	/* The ended process keeps its percentiles. */
	ck_assert_double_eq_tol(agg_proc_pct_ms(p1, 1, 99.0), p99, 1e-9);
	s = agg_sum_new();
	agg_sum_run(a, agg_run_find(a, "h"), s);
	ck_assert_uint_eq(s->hist[1].count, 1000);
	ck_assert_uint_eq(hist_compact_percentile(&s->hist[1], 1, 99.0),
	    hist_percentile(&want, 99.0));
	ck_assert_uint_eq(hist_compact_percentile(&s->hist[1], 1, 50.0),
	    hist_percentile(&want, 50.0));
	ck_assert_uint_eq(s->nlive, 1);
	agg_sum_free(s);
	agg_free(a);
}
END_TEST

START_TEST(test_records_bounded_and_totals_kept)
{
	struct agg *a = agg_new(&cfg);
	struct proto_counters c = counters_of(1, 0, 0, 0);
	struct agg_run *r;
	struct agg_proc *p;
	struct agg_sum *s;
	uint32_t i, n = AGG_RUN_MAX_PROCS + 50;

	a->now_real = 1700000000;
	for (i = 0; i < n; i++) {
		p = add(a, 1000 + i, 1, "big", ORIGIN_EXEC, 2);
		agg_counters(a, p, &c);
		agg_disconnect(a, p);
	}
	r = agg_run_find(a, "big");
	ck_assert_uint_le(r->nproc, AGG_RUN_MAX_PROCS);
	s = agg_sum_new();
	agg_sum_run(a, r, s);
	ck_assert_uint_eq(s->nproc, n);
	ck_assert_uint_eq(total(s), (uint64_t)n * 3);
	agg_sum_free(s);
	/* Expiry: gone from the runs, kept in the host totals. */
	a->now_real += 50;
	ck_assert_uint_eq(agg_expire(a), 0);
	a->now_real += 100;
	ck_assert_uint_eq(agg_expire(a), 1);
	ck_assert_ptr_null(agg_run_find(a, "big"));
	s = agg_sum_new();
	agg_sum_host(a, s);
	ck_assert_uint_eq(total(s), (uint64_t)n * 3);
	agg_sum_free(s);
	agg_free(a);
}
END_TEST

START_TEST(test_live_run_never_expires)
{
	struct agg *a = agg_new(&cfg);

	a->now_real = 1700000000;
	add(a, 5, 1, "live", ORIGIN_ROOT, 0);
	a->now_real += 1e6;
	ck_assert_uint_eq(agg_expire(a), 0);
	ck_assert_ptr_nonnull(agg_run_find(a, "live"));
	agg_free(a);
}
END_TEST

START_TEST(test_alert_above_threshold_only)
{
	struct agg *a = agg_new(&cfg);
	struct proto_event e = { .pause_ns = 50000000 };
	struct agg_proc *p;

	a->now_real = 1700000000;
	p = add(a, 5, 1, "al", ORIGIN_ROOT, 0);
	ck_assert_int_eq(agg_event(a, p, &e), 0);
	e.pause_ns++;
	ck_assert_int_eq(agg_event(a, p, &e), 1);
	ck_assert_uint_eq(p->alerts, 1);
	/* A generation beyond what HELLO said grows the process. */
	e.generation = 5;
	agg_event(a, p, &e);
	ck_assert_uint_eq(p->ngen, 6);
	agg_free(a);
}
END_TEST

/* splitmix64: the same pauses every run. */
static uint64_t mem_rng = 42;

static uint64_t mem_next(void)
{
	uint64_t z = (mem_rng += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Log-uniform over 1 us .. 50 ms: every octave of a typical service. */
static uint64_t mem_pause(void)
{
	double u = (double)(mem_next() >> 11) / 9007199254740992.0;

	return (uint64_t)(1000.0 * exp(u * log(50000.0)));
}

/* The target: a live process costs gcmond <= 16 KiB, and its
 * percentiles are the ones a full histogram of its pauses gives. */
START_TEST(test_live_process_fits_in_16_kib)
{
	static struct hist want[3], all;
	struct agg *a = agg_new(&cfg);
	struct proto_event e = { 0 };
	struct proto_bye bye;
	struct agg_proc *p;
	struct agg_sum *s;
	size_t live_bytes;
	int i, g;

	a->now_real = 1700000000;
	p = add(a, 5, 1, "mem", ORIGIN_ROOT, 0);
	hist_init(&all);
	for (g = 0; g < 3; g++)
		hist_init(&want[g]);
	for (i = 0; i < 90000; i++) {
		e.generation = (uint32_t)(i % 3);
		e.pause_ns = mem_pause();
		e.start_ns = 1000000000ull + (uint64_t)i * 1000000;
		agg_event(a, p, &e);
		hist_record(&want[i % 3], e.pause_ns);
		hist_record(&all, e.pause_ns);
	}
	live_bytes = agg_proc_bytes(p);
	ck_assert_msg(live_bytes <= 16384, "a live process holds %zu bytes",
	    live_bytes);
	/* 17 chunks of 256 bytes per generation (hist.h), all present. */
	ck_assert_uint_eq(live_bytes, sizeof *p + 3 * sizeof *p->hist +
	    3 * 17 * HIST_SUB * sizeof(uint32_t) + sizeof "3.11.2" +
	    sizeof "/usr/bin/python3" + sizeof "app.py");
	for (g = 0; g < 3; g++) {
		ck_assert_double_eq(agg_proc_pct_ms(p, g, 50.0),
		    (double)hist_percentile(&want[g], 50.0) / 1e6);
		ck_assert_double_eq(agg_proc_pct_ms(p, g, 99.9),
		    (double)hist_percentile(&want[g], 99.9) / 1e6);
	}
	ck_assert_double_eq(agg_proc_pct_ms(p, -1, 99.0),
	    (double)hist_percentile(&all, 99.0) / 1e6);
	/* The sums see every bucket. */
	s = agg_sum_new();
	agg_sum_process(a, p, s);
	for (g = 0; g < 3; g++)
		assert_sum_hist_is(s, g, &want[g]);
	agg_sum_free(s);
	/* BYE gives the histograms back and keeps the percentiles. */
	memset(&bye, 0, sizeof bye);
	bye.mono_ns = 2000000000ull;
	bye.counters = counters_of(30000, 30000, 30000, 0);
	agg_bye(a, p, &bye);
	ck_assert_ptr_null(p->hist);
	ck_assert_uint_eq(agg_proc_bytes(p), sizeof *p + sizeof "3.11.2" +
	    sizeof "/usr/bin/python3" + sizeof "app.py");
	ck_assert_double_eq(agg_proc_pct_ms(p, 2, 99.9),
	    (double)hist_percentile(&want[2], 99.9) / 1e6);
	ck_assert_double_eq(agg_proc_pct_ms(p, -1, 99.0),
	    (double)hist_percentile(&all, 99.0) / 1e6);
	s = agg_sum_new();
	agg_sum_run(a, agg_run_find(a, "mem"), s);
	for (g = 0; g < 3; g++)
		assert_sum_hist_is(s, g, &want[g]);
	agg_sum_free(s);
	agg_free(a);
}
END_TEST

/* argv costs its own bytes, up to AGG_MAX_ARGV, never AGG_MAX_ARGV
 * for a short command line; arguments beyond the cap are not kept. */
START_TEST(test_argv_holds_only_its_bytes)
{
	struct agg *a = agg_new(&cfg);
	struct proto_hello h = hello_of(78, 1, "argv", ORIGIN_ROOT, 0);
	static char arg[1500];
	struct agg_proc *p;
	size_t base, off = 0;
	uint32_t i;
	int is_new;

	memset(arg, 'x', sizeof arg);
	h.argc = 0;
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	base = sizeof *p + 3 * sizeof *p->hist + sizeof "3.11.2" +
	    sizeof "/usr/bin/python3";
	ck_assert_uint_eq(p->argc, 0);
	ck_assert_uint_eq(agg_proc_bytes(p), base + 1);
	/* Four of 1500 bytes: the third is cut, the fourth not kept. */
	h.pid = 79;
	h.start_mono_ns++;
	h.argc = 4;
	for (i = 0; i < 4; i++) {
		h.argv[i].ptr = arg;
		h.argv[i].len = sizeof arg;
	}
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	ck_assert_uint_eq(p->argc, 3);
	for (i = 0; i < p->argc; i++)
		off += strlen(p->argv + off) + 1;
	ck_assert_uint_eq(off, AGG_MAX_ARGV);
	ck_assert_uint_eq(strlen(p->argv + 2 * (sizeof arg + 1)),
	    AGG_MAX_ARGV - 2 * (sizeof arg + 1) - 1);
	ck_assert_uint_eq(agg_proc_bytes(p), base + AGG_MAX_ARGV);
	agg_free(a);
}
END_TEST

START_TEST(test_long_argv_cut_at_character_boundary)
{
	struct agg *a = agg_new(&cfg);
	struct proto_hello h = hello_of(77, 1, "argv", ORIGIN_ROOT, 0);
	static char arg[6001];
	struct agg_proc *p;
	size_t len, i;
	int is_new;

	/* "a" then 3000 two-byte characters: the cut falls inside one. */
	arg[0] = 'a';
	for (i = 1; i + 1 < sizeof arg; i += 2) {
		arg[i] = (char)0xc3;
		arg[i + 1] = (char)0xa9;
	}
	h.argv[0].ptr = arg;
	h.argv[0].len = sizeof arg - 1;
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	len = strlen(p->argv);
	ck_assert_uint_lt(len, AGG_MAX_ARGV);
	ck_assert_uint_eq((len - 1) % 2, 0);
	ck_assert_int_eq((unsigned char)p->argv[len - 1], 0xa9);
	agg_free(a);
}
END_TEST

/* ---- rules ---------------------------------------------------------------- */

static int has_rule(const struct rules_rec *r, size_t n, const char *rule)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(r[i].rule, rule) == 0)
			return 1;
	return 0;
}

/* Whether any action of any recommendation contains text. */
static int has_action(const struct rules_rec *r, size_t n, const char *text)
{
	size_t i;
	unsigned k;

	for (i = 0; i < n; i++)
		for (k = 0; k < r[i].nactions; k++)
			if (strstr(r[i].actions[k], text) != NULL)
				return 1;
	return 0;
}

/* A scope of 100 collections over 100 s (20 ms of GC unless a row says
 * otherwise); each row changes one figure. */
static const struct {
	const char *name, *rule;
	uint64_t gen2;			/* of the collections */
	uint64_t max_pause_ns;
	uint64_t pause_ns;		/* over the wall time */
	uint64_t uncollectable;
	double wall_s;			/* 0: 100 s */
	uint64_t ncoll;			/* 0: 100 */
	int want;
} rule_rows[] = {
	{ "gen2 10% (not above)", "gen2_share", 10, 1000, 20000000, 0, 0, 0, 0 },
	{ "gen2 11%", "gen2_share", 11, 1000, 20000000, 0, 0, 0, 1 },
	{ "max pause at threshold", "max_pause", 0, 50000000, 20000000, 0, 0,
	    0, 0 },
	{ "max pause 1 ns above", "max_pause", 0, 50000001, 20000000, 0, 0, 0,
	    1 },
	{ "gc time 5%", "gc_time", 0, 1000, 5000000000ull, 0, 0, 0, 0 },
	{ "gc time 5.001%", "gc_time", 0, 1000, 5001000000ull, 0, 0, 0, 1 },
	{ "no uncollectable", "uncollectable", 0, 1000, 1000, 0, 0, 0, 0 },
	{ "one uncollectable", "uncollectable", 0, 1000, 1000, 1, 0, 0, 1 },
	/* The minimums of rules.h: 1.5 ms of GC in a 3 ms script (50%)
	 * is no finding, nor is a share of too few collections. */
	{ "gc time 50% of 3 ms", "gc_time", 0, 500000, 1500000, 0, 0.003, 0,
	    0 },
	{ "gc time 50% of 0.99 s", "gc_time", 0, 500000, 495000000, 0, 0.99,
	    0, 0 },
	{ "gc time 50% of 1 s", "gc_time", 0, 500000, 500000000, 0, 1.0, 0,
	    1 },
	{ "gc time 9.99 ms of 0.1 s", "gc_time", 0, 500000, 9990000, 0, 0.1,
	    0, 0 },
	{ "gc time 10% under 10 ms", "gc_time", 0, 500000, 9990000, 0, 1.0,
	    0, 0 },
	{ "gc time 10% at 10 ms", "gc_time", 0, 500000, 100000000, 0, 1.0, 0,
	    1 },
	{ "gen2 50% of 19 collections", "gen2_share", 9, 1000, 20000000, 0, 0,
	    19, 0 },
	{ "gen2 50% of 20 collections", "gen2_share", 10, 1000, 20000000, 0, 0,
	    20, 1 },
	{ "gen2 50% in 9.99 ms of GC", "gen2_share", 50, 1000, 9990000, 0, 0,
	    0, 0 },
	/* Single facts fire on any sample. */
	{ "60 ms pause in 0.1 s", "max_pause", 0, 60000000, 60000000, 0, 0.1,
	    3, 1 },
	{ "uncollectable in 3 ms", "uncollectable", 0, 1000, 1000, 1, 0.003,
	    1, 1 },
};

START_TEST(test_rule_thresholds)
{
	struct agg_sum *s = agg_sum_new();
	static const uint32_t th[3] = { 700, 10, 10 };
	struct rules_rec out[RULES_MAX];
	struct rules_input in;
	uint64_t ncoll = rule_rows[_i].ncoll ? rule_rows[_i].ncoll : 100;
	size_t n, i;

	s->ngen = 3;
	s->nproc = 1;
	s->proc_wall_s = rule_rows[_i].wall_s ? rule_rows[_i].wall_s : 100;
	s->gen[0].collections = s->gen[0].seen = ncoll - rule_rows[_i].gen2;
	s->gen[2].collections = s->gen[2].seen = rule_rows[_i].gen2;
	s->gen[0].max_pause_ns = rule_rows[_i].max_pause_ns;
	s->gen[0].pause_ns = rule_rows[_i].pause_ns;
	s->gen[1].uncollectable = rule_rows[_i].uncollectable;
	memset(&in, 0, sizeof in);
	in.sum = s;
	in.alert_threshold_ms = 50;
	in.thresholds = th;
	in.nthresholds = 3;
	n = rules_evaluate(&in, out, RULES_MAX);
	ck_assert_msg(has_rule(out, n, rule_rows[_i].rule) == rule_rows[_i].want,
	    "%s", rule_rows[_i].name);
	for (i = 0; i < n; i++) {
		ck_assert_msg(out[i].nevidence > 0 && out[i].nactions > 0 &&
		    out[i].message[0] != '\0', "%s: %s cites nothing",
		    rule_rows[_i].name, out[i].rule);
		if (strcmp(out[i].rule, "gc_time") == 0)
			ck_assert_int_eq(out[i].severity, RULES_CRITICAL);
	}
	agg_sum_free(s);
}
END_TEST

/* Threshold advice, carried by max_pause over 100 s: gen 0 at rate0 a
 * second with mean pause m0_us, 10 gen 1 and 10 gen 2 collections of
 * 100 ms each (10 ms a second each: gen 1's falls with gen 0's rate,
 * gen 2's is taken as unchanged). */
static const struct {
	const char *name;
	uint32_t t0;			/* 0: thresholds unknown */
	double rate0, m0_us;
	const char *want[3];		/* each in one action; none: no advice */
} thr_rows[] = {
	{ "3.11, 100/s, 50 us", 700, 100, 50,
	    { "gc.set_threshold(7000, 10, 10)", "threshold 700 -> 7000; "
	    "estimated gen 0 collections 100.0 -> 10.0 a second",
	    "GC time 25.00 -> at most 16.00 ms a second" } },
	{ "3.13's 2000, 100/s, 50 us", 2000, 100, 50,
	    { "gc.set_threshold(20000, 10, 10)", "threshold 2000 -> 20000",
	    "100.0 -> 10.0 a second" } },
	{ "pause-bound: 250 us", 700, 100, 250,
	    { "gc.set_threshold(2800, 10, 10)", "0.250 -> at most 1.000 ms",
	    "100.0 -> 25.0 a second" } },
	{ "factor-bound: 5000/s, 1 us", 700, 5000, 1,
	    { "gc.set_threshold(70000, 10, 10)", "5000.0 -> 50.0 a second",
	    NULL } },
	{ "already 10/s", 700, 10, 50, { NULL } },
	{ "15/s: less than halved", 700, 15, 50, { NULL } },
	{ "thresholds unknown", 0, 100, 50, { NULL } },
};

START_TEST(test_threshold_advice)
{
	struct agg_sum *s = agg_sum_new();
	uint32_t th[3] = { thr_rows[_i].t0, 10, 10 };
	struct rules_rec out[RULES_MAX];
	struct rules_input in;
	size_t n;
	unsigned k;

	s->ngen = 3;
	s->nproc = 1;
	s->proc_wall_s = 100;
	s->gen[0].collections = s->gen[0].seen =
	    (uint64_t)(thr_rows[_i].rate0 * 100);
	s->gen[0].pause_ns = (uint64_t)(thr_rows[_i].rate0 * 100 *
	    thr_rows[_i].m0_us * 1000);
	s->gen[0].max_pause_ns = 60000000;
	s->gen[1].collections = s->gen[1].seen = 10;
	s->gen[1].pause_ns = 1000000000;
	s->gen[2].collections = s->gen[2].seen = 10;
	s->gen[2].pause_ns = 1000000000;
	memset(&in, 0, sizeof in);
	in.sum = s;
	in.alert_threshold_ms = 50;
	in.thresholds = thr_rows[_i].t0 ? th : NULL;
	in.nthresholds = thr_rows[_i].t0 ? 3 : 0;
	n = rules_evaluate(&in, out, RULES_MAX);
	ck_assert_msg(has_rule(out, n, "max_pause"), "%s", thr_rows[_i].name);
	if (thr_rows[_i].want[0] == NULL)
		ck_assert_msg(!has_action(out, n, "set_threshold"),
		    "%s: advice given", thr_rows[_i].name);
	for (k = 0; k < 3 && thr_rows[_i].want[k] != NULL; k++)
		ck_assert_msg(has_action(out, n, thr_rows[_i].want[k]),
		    "%s: no \"%s\"", thr_rows[_i].name, thr_rows[_i].want[k]);
	/* Never the old fixed advice. */
	ck_assert(!has_action(out, n, "x10"));
	agg_sum_free(s);
}
END_TEST

/* The same scope under each collector model (gcmodel.h): automatic
 * collections (gen 0, gen 1 on incremental) at 100 a second with mean
 * pause m0_us over 100 s, 3000 gen 2 collections (23% of all: gen2_share
 * on classic), one 60 ms pause; thresholds th. */
static const struct {
	const char *name;
	unsigned models;		/* gcmodel_bit()s of the scope */
	unsigned auto_gen;
	double m0_us;
	uint32_t th[3];
	const char *want;		/* in an action; NULL: no advice */
	const char *never;		/* in no action */
	int gen2_share;			/* the rule fires */
} model_rows[] = {
	{ "classic 3.13", 1u << GC_MODEL_CLASSIC, 0, 50, { 2000, 10, 10 },
	    "gc.set_threshold(20000, 10, 10)", NULL, 1 },
	{ "incremental: no threshold2", 1u << GC_MODEL_INCREMENTAL, 1, 50,
	    { 2000, 10, 0 }, "gc.set_threshold(20000, 10) after start-up: "
	    "threshold0 2000 -> 20000; estimated young+incremental collections "
	    "100.0 -> 10.0", "10, 0)", 0 },
	{ "free-threaded: threshold0 only, pause not bound", 1u <<
	    GC_MODEL_FREE_THREADED, 0, 5000, { 2000, 10, 10 },
	    "gc.set_threshold(20000) after start-up", "20000, 10", 0 },
	{ "classic with 5 ms pauses: pause-bound, none", 1u << GC_MODEL_CLASSIC,
	    0, 5000, { 2000, 10, 10 }, NULL, NULL, 1 },
	{ "mixed: none", (1u << GC_MODEL_CLASSIC) | (1u << GC_MODEL_INCREMENTAL),
	    0, 50, { 2000, 10, 10 }, NULL, NULL, 1 },
};

START_TEST(test_rules_follow_the_collector_model)
{
	struct agg_sum *s = agg_sum_new();
	struct rules_rec out[RULES_MAX];
	struct rules_input in;
	unsigned ag = model_rows[_i].auto_gen;
	size_t n;

	s->ngen = 3;
	s->nproc = 1;
	s->models = model_rows[_i].models;
	s->proc_wall_s = 100;
	s->gen[ag].collections = s->gen[ag].seen = 10000;
	s->gen[ag].pause_ns = (uint64_t)(10000 * model_rows[_i].m0_us * 1000);
	s->gen[ag].max_pause_ns = 60000000;
	s->gen[2].collections = s->gen[2].seen = 3000;
	s->gen[2].pause_ns = 3000000000ull;
	memset(&in, 0, sizeof in);
	in.sum = s;
	in.alert_threshold_ms = 50;
	in.thresholds = model_rows[_i].th;
	in.nthresholds = 3;
	n = rules_evaluate(&in, out, RULES_MAX);
	ck_assert_msg(has_rule(out, n, "max_pause"), "%s", model_rows[_i].name);
	ck_assert_msg(has_rule(out, n, "gen2_share") == model_rows[_i].gen2_share,
	    "%s: gen2_share", model_rows[_i].name);
	if (model_rows[_i].want == NULL)
		ck_assert_msg(!has_action(out, n, "set_threshold"),
		    "%s: advice given", model_rows[_i].name);
	else
		ck_assert_msg(has_action(out, n, model_rows[_i].want),
		    "%s: no \"%s\"", model_rows[_i].name, model_rows[_i].want);
	if (model_rows[_i].never != NULL)
		ck_assert_msg(!has_action(out, n, model_rows[_i].never),
		    "%s: \"%s\" given", model_rows[_i].name,
		    model_rows[_i].never);
	agg_sum_free(s);
}
END_TEST

/* Labels, and a scope's set of models (gcmodel.h). */
START_TEST(test_gcmodel_labels_and_scopes)
{
	ck_assert_str_eq(gcmodel_gen_label(GC_MODEL_CLASSIC, 1), "generation 1");
	ck_assert_str_eq(gcmodel_gen_label(GC_MODEL_INCREMENTAL, 1),
	    "young+incremental");
	ck_assert_str_eq(gcmodel_gen_label(GC_MODEL_INCREMENTAL, 2),
	    "full (explicit)");
	ck_assert_str_eq(gcmodel_gen_label(GC_MODEL_FREE_THREADED, 0),
	    "whole heap");
	ck_assert_str_eq(gcmodel_gen_label(GCMODEL_MIXED, 1), "generation 1");
	ck_assert_str_eq(gcmodel_gen_label(200, 9), "generation ?");
	ck_assert_uint_eq(gcmodel_of_bits(gcmodel_bit(GC_MODEL_INCREMENTAL)),
	    GC_MODEL_INCREMENTAL);
	ck_assert_uint_eq(gcmodel_of_bits(gcmodel_bit(GC_MODEL_CLASSIC) |
	    gcmodel_bit(GC_MODEL_FREE_THREADED)), GCMODEL_MIXED);
	ck_assert_uint_eq(gcmodel_of_bits(0), GCMODEL_UNKNOWN);
	ck_assert_uint_eq(gcmodel_of_bits(gcmodel_bit(77)), GCMODEL_UNKNOWN);
	ck_assert_str_eq(gcmodel_name(gcmodel_of_bits(gcmodel_bit(77) |
	    gcmodel_bit(GC_MODEL_CLASSIC))), "mixed");
	ck_assert(gcmodel_traces_old(GC_MODEL_INCREMENTAL, 1, 3));
	ck_assert(!gcmodel_traces_old(GC_MODEL_CLASSIC, 1, 3));
	ck_assert(gcmodel_traces_old(GC_MODEL_FREE_THREADED, 0, 3));
}
END_TEST

/* A master (pid 1) and four workers (11..14) over 100 s; each row
 * changes worker 14 or the freeze counts. Siblings: p99 1 ms, max pause
 * 30, 41, 52 ms, gen 2 time 5 ms. */
static const struct {
	const char *name, *rule;
	double p99_last;
	uint64_t gen2_last;
	unsigned nforked_gen2;		/* workers (of 4) paying gen 2 */
	double max_last, gen2_ms_last;
	uint64_t master_frozen, worker_frozen;
	uint8_t origin;			/* of the workers */
	int want;
} fork_rows[] = {
	{ "one worker pays gen 2", "prefork_freeze", 1, 0, 1, 45, 5, 0, 0,
	    ORIGIN_FORK, 0 },
	{ "two workers pay gen 2", "prefork_freeze", 1, 0, 2, 45, 5, 0, 0,
	    ORIGIN_FORK, 1 },
	{ "p99 2x siblings (not above)", "outlier_worker", 2.0, 0, 0, 45, 5,
	    0, 0, ORIGIN_FORK, 0 },
	{ "p99 above 2x siblings", "outlier_worker", 2.01, 0, 0, 45, 5, 0, 0,
	    ORIGIN_FORK, 1 },
	{ "gen2 2x siblings (not above)", "outlier_worker", 1, 4, 4, 45, 5, 0,
	    0, ORIGIN_FORK, 0 },
	{ "gen2 above 2x siblings", "outlier_worker", 1, 5, 4, 45, 5, 0, 0,
	    ORIGIN_FORK, 1 },
	/* Issue 12: 312.6 ms at most against 30-52 ms. */
	{ "max 312.6 vs 30-52 ms", "outlier_worker", 1, 0, 0, 312.6, 5, 0, 0,
	    ORIGIN_FORK, 1 },
	{ "max 2x sibling median (not above)", "outlier_worker", 1, 0, 0, 82,
	    5, 0, 0, ORIGIN_FORK, 0 },
	{ "gen2 time above 2x siblings", "outlier_worker", 1, 0, 0, 45, 10.01,
	    0, 0, ORIGIN_FORK, 1 },
	{ "gen2 time 2x siblings (not above)", "outlier_worker", 1, 0, 0, 45,
	    10, 0, 0, ORIGIN_FORK, 0 },
	{ "spawned workers compared too", "outlier_worker", 1, 0, 0, 312.6, 5,
	    0, 0, ORIGIN_EXEC, 1 },
	/* gc.freeze() before fork: the warning goes, the result shows. */
	{ "master froze: no warning", "prefork_freeze", 1, 0, 2, 45, 5, 5000,
	    0, ORIGIN_FORK, 0 },
	{ "master froze: result", "prefork_frozen", 1, 0, 2, 45, 5, 5000, 0,
	    ORIGIN_FORK, 1 },
	{ "workers inherited frozen: no warning", "prefork_freeze", 1, 0, 2,
	    45, 5, 0, 5000, ORIGIN_FORK, 0 },
	{ "workers inherited frozen: result", "prefork_frozen", 1, 0, 2, 45,
	    5, 0, 5000, ORIGIN_FORK, 1 },
	{ "not frozen: no result", "prefork_frozen", 1, 0, 2, 45, 5, 0, 0,
	    ORIGIN_FORK, 0 },
};

/* Four forked workers, each measured: unshared_mb each, gunicorn's
 * master holding 166 MiB (issue 14's figures). */
static size_t prefork_measured(uint64_t unshared_mb, uint64_t frozen,
    struct rules_rec *out)
{
	static struct agg_sum s;
	static struct rules_proc procs[5];
	struct rules_input in;
	size_t i;

	memset(&s, 0, sizeof s);
	memset(procs, 0, sizeof procs);
	s.ngen = 3;
	s.master_anon_bytes = 166u << 20;
	procs[0].pid = 1;
	procs[0].origin = ORIGIN_ROOT;
	procs[0].freeze_count = frozen;
	for (i = 1; i < 5; i++) {
		procs[i].pid = 10 + (uint32_t)i;
		procs[i].ppid = 1;
		procs[i].origin = ORIGIN_FORK;
		procs[i].worker = 1;
		procs[i].gen2 = 1;
		procs[i].mem_read = 1;
		procs[i].unshared_bytes = unshared_mb << 20;
	}
	memset(&in, 0, sizeof in);
	in.sum = &s;
	in.alert_threshold_ms = 50;
	in.freeze_count = frozen;
	in.server = RULES_SERVER_GUNICORN;
	in.procs = procs;
	in.nprocs = 5;
	return rules_evaluate(&in, out, RULES_MAX);
}

START_TEST(test_prefork_freeze_gives_the_measured_figures)
{
	struct rules_rec out[RULES_MAX];
	size_t n, i;

	n = prefork_measured(78, 0, out);
	ck_assert(has_rule(out, n, "prefork_freeze"));
	for (i = 0; i < n && strcmp(out[i].rule, "prefork_freeze") != 0; i++)
		;
	ck_assert_msg(strstr(out[i].message, "4 workers unshared 312.0 MiB in "
	    "their gen-2 collections (78.0 MiB each, 47% of the master's "
	    "heap)") != NULL, "%s", out[i].message);
	ck_assert(has_action(out, n, "when_ready"));
	/* Below 4 MiB a worker: no finding. */
	n = prefork_measured(3, 0, out);
	ck_assert(!has_rule(out, n, "prefork_freeze"));
	n = prefork_measured(4, 0, out);
	ck_assert(has_rule(out, n, "prefork_freeze"));
	/* Frozen: the measured result, no advice. */
	n = prefork_measured(1, 5000, out);
	ck_assert(!has_rule(out, n, "prefork_freeze"));
	ck_assert(has_rule(out, n, "prefork_frozen"));
	for (i = 0; i < n && strcmp(out[i].rule, "prefork_frozen") != 0; i++)
		;
	ck_assert_msg(strstr(out[i].message, "4 workers unshared 4.0 MiB")
	    != NULL, "%s", out[i].message);
}
END_TEST

START_TEST(test_prefork_rules)
{
	struct agg_sum *s = agg_sum_new();
	struct rules_rec out[RULES_MAX];
	struct rules_proc procs[5];
	struct rules_input in;
	size_t n, i;

	s->ngen = 3;
	s->proc_wall_s = 100;
	s->gen[0].collections = s->gen[0].seen = 500;
	s->gen[0].pause_ns = 100000000;
	s->gen[2].collections = s->gen[2].seen = 100;	/* gen2_share fires */
	memset(procs, 0, sizeof procs);
	procs[0].pid = 1;
	procs[0].origin = ORIGIN_ROOT;
	procs[0].freeze_count = fork_rows[_i].master_frozen;
	for (i = 1; i < 5; i++) {
		procs[i].pid = 10 + (uint32_t)i;
		procs[i].ppid = 1;
		procs[i].origin = fork_rows[_i].origin;
		procs[i].worker = 1;
		procs[i].wall_s = 25;
		procs[i].collections = 100;
		procs[i].pause_ns = 20000000;
		procs[i].p99_ms = 1;
		procs[i].max_ms = 30 + 11 * (double)(i - 1);
		procs[i].gen2_ms = 5;
		procs[i].freeze_count = fork_rows[_i].worker_frozen;
		procs[i].gen2 = i <= fork_rows[_i].nforked_gen2 ?
		    (fork_rows[_i].nforked_gen2 == 4 ? 2 : 1) : 0;
	}
	procs[4].p99_ms = fork_rows[_i].p99_last;
	procs[4].max_ms = fork_rows[_i].max_last;
	procs[4].gen2_ms = fork_rows[_i].gen2_ms_last;
	procs[4].pause_ns = (uint64_t)(fork_rows[_i].max_last * 1e6);
	if (fork_rows[_i].gen2_last)
		procs[4].gen2 = fork_rows[_i].gen2_last;
	memset(&in, 0, sizeof in);
	in.sum = s;
	in.alert_threshold_ms = 500;
	in.procs = procs;
	in.nprocs = 5;
	in.freeze_count = fork_rows[_i].master_frozen;
	n = rules_evaluate(&in, out, RULES_MAX);
	ck_assert_msg(has_rule(out, n, fork_rows[_i].rule) == fork_rows[_i].want,
	    "%s", fork_rows[_i].name);
	for (i = 0; i < n; i++) {
		if (strcmp(out[i].rule, "outlier_worker") != 0)
			continue;
		ck_assert_uint_eq(out[i].pid, 14);
		/* The message says which figure, against what. */
		if (fork_rows[_i].max_last > 300)
			ck_assert_msg(strstr(out[i].message, "max pause 312.60 ms "
			    "(sibling median 41.00 ms).") != NULL, "%s",
			    out[i].message);
		if (fork_rows[_i].gen2_last > 4)
			ck_assert_msg(strstr(out[i].message, "gen-2 collections 5 "
			    "(sibling median 2.0)") != NULL, "%s", out[i].message);
	}
	/* On the incremental model the same figures are its old-generation
	 * collections (increments and full), and say so. */
	if (fork_rows[_i].gen2_last > 4) {
		for (i = 1; i < 5; i++)
			procs[i].gc_model = GC_MODEL_INCREMENTAL;
		n = rules_evaluate(&in, out, RULES_MAX);
		for (i = 0; i < n; i++)
			if (strcmp(out[i].rule, "outlier_worker") == 0)
				ck_assert_msg(strstr(out[i].message,
				    "old-generation (increment or full) "
				    "collections 5") != NULL, "%s",
				    out[i].message);
		ck_assert(has_rule(out, n, "outlier_worker"));
	}
	/* Advice followed does not come back: no "gc.freeze()" to do when
	 * the master froze (gen2_share fires here). */
	ck_assert(has_rule(out, n, "gen2_share"));
	ck_assert_int_eq(has_action(out, n, "gc.freeze()"),
	    fork_rows[_i].master_frozen == 0);
	agg_sum_free(s);
}
END_TEST

/* Roles of exec'd processes: pid 20 exec'd by master 1 (run "r"). */
static const struct {
	const char *name;
	const char *argv[4];
	int parent_first;		/* the master said HELLO first */
	int parent_known;		/* the master is monitored at all */
	const char *want;
} role_rows[] = {
	{ "spawn worker (uvicorn --workers)", { "/usr/bin/python3", "-c",
	    "from multiprocessing.spawn import spawn_main; spawn_main("
	    "tracker_fd=5, pipe_handle=7)", "--multiprocessing-fork" }, 1, 1,
	    "worker" },
	{ "spawn worker before its master", { "/usr/bin/python3", "-c",
	    "from multiprocessing.spawn import spawn_main; spawn_main()",
	    "--multiprocessing-fork" }, 0, 1, "worker" },
	{ "resource tracker", { "/usr/bin/python3", "-c",
	    "from multiprocessing.resource_tracker import main;main(5)", NULL },
	    1, 1, "child" },
	{ "forkserver", { "/usr/bin/python3", "-c",
	    "from multiprocessing.forkserver import main; main(6, 7)", NULL },
	    1, 1, "child" },
	{ "the same program again", { "/usr/bin/python3", "app.py", NULL }, 1,
	    1, "worker" },
	{ "another script", { "/usr/bin/python3", "tool.py", NULL }, 1, 1,
	    "child" },
	{ "spawn child of an unmonitored parent", { "/usr/bin/python3", "-c",
	    "x", "--multiprocessing-fork" }, 1, 0, "child" },
};

static struct agg_proc *add_argv(struct agg *a, uint32_t pid, uint32_t ppid,
    uint8_t origin, const char *const *argv)
{
	struct proto_hello h = hello_of(pid, ppid, "r", origin, 0);
	struct agg_proc *p = NULL;
	int is_new = 0;

	for (h.argc = 0; h.argc < 4 && argv[h.argc] != NULL; h.argc++) {
		h.argv[h.argc].ptr = argv[h.argc];
		h.argv[h.argc].len = (uint32_t)strlen(argv[h.argc]);
	}
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	return p;
}

START_TEST(test_roles)
{
	static const char *const master_argv[4] = { "/usr/bin/python3",
	    "app.py", NULL };
	struct agg *a = agg_new(&cfg);
	struct agg_proc *m = NULL, *c, *f;

	a->now_real = 1700000000;
	if (role_rows[_i].parent_first && role_rows[_i].parent_known)
		m = add_argv(a, 1, 0, ORIGIN_ROOT, master_argv);
	c = add_argv(a, 20, 1, ORIGIN_EXEC, role_rows[_i].argv);
	if (!role_rows[_i].parent_first && role_rows[_i].parent_known)
		m = add_argv(a, 1, 0, ORIGIN_ROOT, master_argv);
	f = add_argv(a, 21, 1, ORIGIN_FORK, master_argv);
	ck_assert_msg(strcmp(agg_role_name(agg_proc_role(c)), role_rows[_i].want) == 0,
	    "%s: %s", role_rows[_i].name, agg_role_name(agg_proc_role(c)));
	ck_assert_str_eq(agg_role_name(agg_proc_role(f)), "worker");
	if (m != NULL)
		ck_assert_str_eq(agg_role_name(agg_proc_role(m)), "master");
	agg_free(a);
}
END_TEST

/* A service name only with its flag; it is kept and counted. */
START_TEST(test_service_name_kept_only_with_its_flag)
{
	struct agg *a = agg_new(&cfg);
	struct proto_hello h = hello_of(80, 1, "svc", ORIGIN_ROOT, 0);
	struct agg_proc *p;
	size_t without;
	int is_new;

	ck_assert_ptr_nonnull(a);
	h.service.ptr = "billing-api";
	h.service.len = 11;
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	ck_assert_ptr_null(p->service);
	without = agg_proc_bytes(p);
	h.pid = 81;
	h.start_mono_ns++;
	h.flags |= PROTO_HELLO_SERVICE;
	ck_assert_int_eq(agg_hello(a, &h, &p, &is_new), 0);
	ck_assert_str_eq(p->service, "billing-api");
	ck_assert_uint_eq(agg_proc_bytes(p), without + sizeof "billing-api");
	agg_free(a);
}
END_TEST

static Suite *agg_suite(void)
{
	Suite *s = suite_create("agg");
	TCase *t = tcase_create("agg");
	TCase *r = tcase_create("rules");

	tcase_add_test(t, test_totals_exact_through_reconnect_and_drops);
	tcase_add_test(t, test_fork_baseline_not_double_counted_in_run);
	tcase_add_test(t, test_attach_again_counts_each_collection_once);
	tcase_add_test(t, test_unshared_counts_from_the_read_before_each_gen2);
	tcase_add_test(t, test_unshared_ignores_reads_a_collection_ran_through);
	tcase_add_test(t, test_unshared_needs_a_quiet_read_before);
	tcase_add_test(t, test_prefork_freeze_gives_the_measured_figures);
	tcase_add_test(t, test_histograms_fold_into_run_on_bye);
	tcase_add_test(t, test_records_bounded_and_totals_kept);
	tcase_add_test(t, test_live_run_never_expires);
	tcase_add_test(t, test_alert_above_threshold_only);
	tcase_add_test(t, test_long_argv_cut_at_character_boundary);
	tcase_add_test(t, test_live_process_fits_in_16_kib);
	tcase_add_test(t, test_argv_holds_only_its_bytes);
	tcase_add_test(t, test_service_name_kept_only_with_its_flag);
	tcase_add_loop_test(t, test_roles, 0,
	    (int)(sizeof role_rows / sizeof role_rows[0]));
	tcase_set_timeout(t, 60);
	tcase_add_loop_test(r, test_rule_thresholds, 0,
	    (int)(sizeof rule_rows / sizeof rule_rows[0]));
	tcase_add_loop_test(r, test_threshold_advice, 0,
	    (int)(sizeof thr_rows / sizeof thr_rows[0]));
	tcase_add_loop_test(r, test_rules_follow_the_collector_model, 0,
	    (int)(sizeof model_rows / sizeof model_rows[0]));
	tcase_add_test(r, test_gcmodel_labels_and_scopes);
	tcase_add_loop_test(r, test_prefork_rules, 0,
	    (int)(sizeof fork_rows / sizeof fork_rows[0]));
	suite_add_tcase(s, t);
	suite_add_tcase(s, r);
	return s;
}

UNIT_SUITE(agg_suite, UNIT_FORK);
