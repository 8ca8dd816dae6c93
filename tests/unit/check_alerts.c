/*
 * check_alerts.c: unit tests of daemon/model/alerts.c: pause alerts rate-limited
 * per process (the first, then one count per window, the held count at
 * exit), each shape alert (p99, GC share, gen-2 storm, outlier worker)
 * just firing and just not firing, at most once per window, the window
 * expiring, idle state freed, pid reuse. The clock is the test's. No I/O.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alerts.h"
#include "unit.h"

#define T0	1700000000.0	/* a Unix time; slots line up with 60 s */
#define MS	1000000ull

#define MAX_GOT	4096
static struct alerts_line got[MAX_GOT];
static unsigned ngot;
static char got_msg[MAX_GOT][224];

static void on_line(void *arg, const struct alerts_line *l)
{
	(void)arg;
	ck_assert_uint_lt(ngot, MAX_GOT);
	got[ngot] = *l;
	memcpy(got_msg[ngot], l->message, sizeof got_msg[ngot]);
	ngot++;
}

static unsigned count_kind(enum alerts_kind k)
{
	unsigned i, n = 0;

	for (i = 0; i < ngot; i++)
		n += got[i].kind == k;
	return n;
}

static const struct alerts_line *find_kind(enum alerts_kind k, uint32_t pid)
{
	unsigned i;

	for (i = 0; i < ngot; i++)
		if (got[i].kind == k && got[i].pid == pid)
			return &got[i];
	return NULL;
}

static struct agg_run run = { .id = (char *)"svc" };

static struct agg_proc proc_of(uint32_t pid, uint32_t ppid, uint8_t origin)
{
	struct agg_proc p;

	memset(&p, 0, sizeof p);
	p.pid = pid;
	p.ppid = ppid;
	p.origin = origin;
	p.ngen = 3;
	p.start_mono_ns = 1000 + pid;
	p.run = &run;
	return p;
}

/* Everything off but what a test turns on; 60 s window, 50 ms threshold. */
static struct alerts *new_alerts(double p99, double share, double gen2,
    double factor)
{
	struct alerts_config c = { .window_s = 60, .threshold_ms = 50,
	    .p99_ms = p99, .gc_share_pct = share, .gen2_per_min = gen2,
	    .outlier_factor = factor };

	ngot = 0;
	return alerts_new(&c, on_line, NULL);
}

static void feed(struct alerts *al, const struct agg_proc *p, double now,
    uint64_t pause_ns, unsigned gen)
{
	struct proto_event e;

	memset(&e, 0, sizeof e);
	e.pause_ns = pause_ns;
	e.generation = (uint16_t)gen;
	alerts_event(al, p, &e, pause_ns > 50 * MS, now);
}

START_TEST(test_pause_alerts_first_then_one_count_per_window)
{
	struct alerts *al = new_alerts(0, 0, 0, 0);
	struct agg_proc p = proc_of(100, 1, ORIGIN_ROOT);
	unsigned i;

	feed(al, &p, T0, 10 * MS, 0);			/* under: nothing */
	ck_assert_uint_eq(ngot, 0);
	feed(al, &p, T0 + 1, 80 * MS, 2);
	ck_assert_uint_eq(ngot, 1);
	ck_assert_int_eq(got[0].kind, ALERTS_PAUSE);
	ck_assert_uint_eq(got[0].generation, 2);
	for (i = 0; i < 9; i++) {
		feed(al, &p, T0 + 2 + i, (60 + i) * MS, 1);
		alerts_tick(al, T0 + 2.5 + i);
	}
	ck_assert_uint_eq(count_kind(ALERTS_REPEAT), 0);
	alerts_tick(al, T0 + 60.5);			/* before 61: held */
	ck_assert_uint_eq(ngot, 1);
	alerts_tick(al, T0 + 61);
	ck_assert_uint_eq(ngot, 2);
	ck_assert_int_eq(got[1].kind, ALERTS_REPEAT);
	ck_assert_uint_eq(got[1].count, 9);
	ck_assert_double_eq_tol(got[1].value, 68.0, 1e-9);
	ck_assert_str_eq(got_msg[1],
	    "9 more pauses over 50 ms in the last 60 s (max 68.0 ms)");
	/* A window with nothing held says nothing and ends the limit: the
	 * next slow pause is a first again. */
	alerts_tick(al, T0 + 121);
	ck_assert_uint_eq(ngot, 2);
	feed(al, &p, T0 + 130, 70 * MS, 0);
	ck_assert_uint_eq(ngot, 3);
	ck_assert_int_eq(got[2].kind, ALERTS_PAUSE);
	alerts_free(al);
}
END_TEST

START_TEST(test_steady_slow_pauses_give_one_line_per_window)
{
	struct alerts *al = new_alerts(0, 0, 0, 0);
	struct agg_proc p = proc_of(101, 1, ORIGIN_ROOT);
	struct agg_proc q = proc_of(102, 1, ORIGIN_ROOT);
	unsigned i;

	/* 10 slow pauses a second for 10 minutes, in two processes. */
	for (i = 0; i < 6000; i++) {
		feed(al, &p, T0 + i * 0.1, 90 * MS, 0);
		feed(al, &q, T0 + i * 0.1, 90 * MS, 0);
		alerts_tick(al, T0 + i * 0.1);
	}
	/* Per process: the first, then one count per 60 s. */
	ck_assert_uint_eq(count_kind(ALERTS_PAUSE), 2);
	ck_assert_uint_ge(count_kind(ALERTS_REPEAT), 2 * 9);
	ck_assert_uint_le(count_kind(ALERTS_REPEAT), 2 * 10);
	ck_assert_uint_ge(find_kind(ALERTS_REPEAT, 102)->count, 590);
	alerts_free(al);
}
END_TEST

START_TEST(test_finish_emits_the_held_count)
{
	struct alerts *al = new_alerts(0, 0, 0, 0);
	struct agg_proc p = proc_of(103, 1, ORIGIN_ROOT);

	feed(al, &p, T0, 80 * MS, 0);
	feed(al, &p, T0 + 1, 80 * MS, 0);
	feed(al, &p, T0 + 2, 90 * MS, 0);
	alerts_finish(al, T0 + 10);
	ck_assert_uint_eq(ngot, 2);
	ck_assert_int_eq(got[1].kind, ALERTS_REPEAT);
	ck_assert_uint_eq(got[1].count, 2);
	ck_assert_str_eq(got_msg[1],
	    "2 more pauses over 50 ms in the last 10 s (max 90.0 ms)");
	alerts_free(al);
}
END_TEST

/* p99 over 20 ms: more than 1% of at least 100 pauses over it. */
static const struct { const char *name; unsigned n, nover; int fires; } p99_rows[] = {
	{ "1.5% of 200 over", 200, 3, 1 },
	{ "1.0% of 200 over", 200, 2, 0 },
	{ "20% of 99 over (too few)", 99, 20, 0 },
	{ "none over", 500, 0, 0 },
};

START_TEST(test_p99_fires_above_one_percent_over)
{
	struct alerts *al = new_alerts(20, 0, 0, 0);
	struct agg_proc p = proc_of(104, 1, ORIGIN_ROOT);
	unsigned i;

	for (i = 0; i < p99_rows[_i].n; i++)
		feed(al, &p, T0 + i * 0.01, i < p99_rows[_i].nover ? 30 * MS :
		    2 * MS, 0);
	alerts_tick(al, T0 + 10);
	ck_assert_msg(count_kind(ALERTS_P99) == (unsigned)p99_rows[_i].fires,
	    "%s", p99_rows[_i].name);
	if (p99_rows[_i].fires) {
		ck_assert_uint_eq(got[0].count, p99_rows[_i].n);
		ck_assert_double_eq_tol(got[0].value, 30.0, 1e-9);
	}
	alerts_free(al);
}
END_TEST

START_TEST(test_shape_alert_at_most_once_per_window_and_expires)
{
	struct alerts *al = new_alerts(20, 0, 0, 0);
	struct agg_proc p = proc_of(105, 1, ORIGIN_ROOT);
	unsigned i, s;

	/* 10 s of pauses, 10% slow; ticked every second. */
	for (s = 0; s < 10; s++) {
		for (i = 0; i < 20; i++)
			feed(al, &p, T0 + s + i * 0.05, i < 2 ? 40 * MS : MS, 0);
		alerts_tick(al, T0 + s + 1);
	}
	ck_assert_uint_eq(count_kind(ALERTS_P99), 1);
	/* Quiet pauses only from now: the slow ones leave the window. */
	for (s = 10; s < 140; s++) {
		for (i = 0; i < 20; i++)
			feed(al, &p, T0 + s + i * 0.05, MS, 0);
		alerts_tick(al, T0 + s + 1);
	}
	ck_assert_uint_eq(count_kind(ALERTS_P99), 1);
	/* Silence for a window: the process's state goes. */
	ck_assert_uint_eq(alerts_nprocs(al), 1);
	alerts_tick(al, T0 + 140 + 61);
	ck_assert_uint_eq(alerts_nprocs(al), 0);
	alerts_free(al);
}
END_TEST

START_TEST(test_held_p99_refires_once_per_window)
{
	struct alerts *al = new_alerts(20, 0, 0, 0);
	struct agg_proc p = proc_of(106, 1, ORIGIN_ROOT);
	unsigned i, s;

	for (s = 0; s < 200; s++) {
		for (i = 0; i < 20; i++)
			feed(al, &p, T0 + s + i * 0.05, i < 2 ? 40 * MS : MS, 0);
		alerts_tick(al, T0 + s + 1);
	}
	ck_assert_uint_eq(count_kind(ALERTS_P99), 4);	/* at 5, 65, 125, 185 s */
	alerts_free(al);
}
END_TEST

/* GC share 5%: a process paused 4 s or 2 s in 40 s. */
START_TEST(test_gc_share_fires_above_the_share_of_wall)
{
	struct alerts *al = new_alerts(0, 5, 0, 0);
	struct agg_proc hot = proc_of(107, 1, ORIGIN_ROOT);
	struct agg_proc calm = proc_of(108, 1, ORIGIN_ROOT);
	unsigned s;

	for (s = 0; s < 40; s++) {
		feed(al, &hot, T0 + s, 100 * MS, 0);	/* 10% */
		feed(al, &calm, T0 + s, 40 * MS, 0);	/* 4% */
		alerts_tick(al, T0 + s + 0.5);
	}
	ck_assert_ptr_nonnull(find_kind(ALERTS_GC_SHARE, 107));
	ck_assert_ptr_null(find_kind(ALERTS_GC_SHARE, 108));
	ck_assert_double_gt(find_kind(ALERTS_GC_SHARE, 107)->value, 5.0);
	ck_assert_double_lt(find_kind(ALERTS_GC_SHARE, 107)->value, 25.0);
	alerts_free(al);
}
END_TEST

START_TEST(test_gc_share_waits_for_half_a_window)
{
	struct alerts *al = new_alerts(0, 5, 0, 0);
	struct agg_proc p = proc_of(109, 1, ORIGIN_ROOT);
	unsigned i;

	/* A burst at start: 50% of its first 10 s, then nothing more. */
	for (i = 0; i < 10; i++) {
		feed(al, &p, T0 + i, 500 * MS, 0);
		alerts_tick(al, T0 + i + 0.5);
	}
	ck_assert_uint_eq(count_kind(ALERTS_GC_SHARE), 0);
	alerts_free(al);
}
END_TEST

/* gen-2 storm over 60/min: 80 or 20 gen-2 collections in 40 s. */
START_TEST(test_gen2_storm_counts_the_oldest_generation)
{
	struct alerts *al = new_alerts(0, 0, 60, 0);
	struct agg_proc storm = proc_of(110, 1, ORIGIN_ROOT);
	struct agg_proc calm = proc_of(111, 1, ORIGIN_ROOT);
	struct agg_proc young = proc_of(112, 1, ORIGIN_ROOT);
	const struct alerts_line *l;
	unsigned i;

	for (i = 0; i < 80; i++) {
		feed(al, &storm, T0 + i * 0.5, MS, 2);
		if (i % 4 == 0)
			feed(al, &calm, T0 + i * 0.5, MS, 2);
		feed(al, &young, T0 + i * 0.5, MS, 1);	/* not gen 2 */
		feed(al, &young, T0 + i * 0.5, MS, 0);
		alerts_tick(al, T0 + i * 0.5 + 0.1);
	}
	ck_assert_ptr_nonnull(l = find_kind(ALERTS_GEN2, 110));
	ck_assert_uint_eq(l->generation, 2);
	ck_assert_double_gt(l->value, 60.0);
	ck_assert_ptr_null(find_kind(ALERTS_GEN2, 111));
	ck_assert_ptr_null(find_kind(ALERTS_GEN2, 112));
	alerts_free(al);
}
END_TEST

/* The models where only gc.collect() reaches generation 2 (gcmodel.h):
 * automatic collections (gen 1 incremental, gen 0 free-threaded) at
 * 160/min never make a storm; explicit full ones do, and say so. */
START_TEST(test_gen2_storm_on_incremental_and_free_threaded_is_explicit_only)
{
	struct alerts *al = new_alerts(0, 0, 60, 0);
	struct agg_proc inc = proc_of(120, 1, ORIGIN_ROOT);
	struct agg_proc ft = proc_of(121, 1, ORIGIN_ROOT);
	struct agg_proc calls = proc_of(122, 1, ORIGIN_ROOT);
	const struct alerts_line *l;
	unsigned i;

	inc.gc_model = GC_MODEL_INCREMENTAL;
	calls.gc_model = GC_MODEL_INCREMENTAL;
	ft.gc_model = GC_MODEL_FREE_THREADED;
	for (i = 0; i < 80; i++) {
		feed(al, &inc, T0 + i * 0.5, 30 * MS, 1);
		feed(al, &inc, T0 + i * 0.5 + 0.01, 30 * MS, 1);
		feed(al, &ft, T0 + i * 0.5, 30 * MS, 0);
		feed(al, &ft, T0 + i * 0.5 + 0.01, 30 * MS, 0);
		feed(al, &calls, T0 + i * 0.5, MS, 2);
		alerts_tick(al, T0 + i * 0.5 + 0.1);
	}
	ck_assert_ptr_null(find_kind(ALERTS_GEN2, 120));
	ck_assert_ptr_null(find_kind(ALERTS_GEN2, 121));
	ck_assert_ptr_nonnull(l = find_kind(ALERTS_GEN2, 122));
	ck_assert_uint_eq(l->generation, 2);
	ck_assert_int_eq(l->explicit_full, 1);
	ck_assert_str_eq(l->label, "full (explicit)");
	ck_assert_msg(strstr(l->message, "explicit full collections") != NULL,
	    "%s", l->message);
	alerts_free(al);
}
END_TEST

/* A pause alert names the generation by its model's label. */
START_TEST(test_pause_alert_says_young_incremental)
{
	struct alerts *al = new_alerts(0, 0, 0, 0);
	struct agg_proc p = proc_of(130, 1, ORIGIN_ROOT);
	const struct alerts_line *l;

	p.gc_model = GC_MODEL_INCREMENTAL;
	feed(al, &p, T0, 80 * MS, 1);
	ck_assert_ptr_nonnull(l = find_kind(ALERTS_PAUSE, 130));
	ck_assert_str_eq(l->label, "young+incremental");
	ck_assert_msg(strstr(l->message, "gen 1 (young+incremental) pause") !=
	    NULL, "%s", l->message);
	alerts_free(al);
}
END_TEST

/* Workers of one master: max pauses, factor 3, threshold 50 ms. */
static const struct {
	const char *name;
	unsigned n;
	unsigned max_ms[5];
	int outlier;		/* index of the one that fires, or -1 */
} outlier_rows[] = {
	{ "one at 200 against 10-12", 4, { 10, 11, 12, 200 }, 3 },
	{ "3.5x but under the threshold", 4, { 10, 11, 12, 42 }, -1 },
	{ "over the threshold, 2.5x", 4, { 40, 44, 48, 110 }, -1 },
	{ "only two siblings of one", 3, { 10, 12, 200 }, 2 },
	{ "one sibling is not enough", 2, { 10, 200 }, -1 },
};

START_TEST(test_outlier_worker_against_its_siblings_median)
{
	struct alerts *al = new_alerts(0, 0, 0, 3);
	struct agg_proc w[5], master = proc_of(200, 1, ORIGIN_ROOT);
	unsigned i;

	feed(al, &master, T0, 500 * MS, 2);	/* the master is no sibling */
	ngot = 0;
	for (i = 0; i < outlier_rows[_i].n; i++) {
		w[i] = proc_of(201 + i, 200, ORIGIN_FORK);
		feed(al, &w[i], T0 + 1, MS, 0);
		feed(al, &w[i], T0 + 2, outlier_rows[_i].max_ms[i] * MS, 2);
	}
	ngot = 0;			/* pause alerts are not under test */
	alerts_tick(al, T0 + 6);
	if (outlier_rows[_i].outlier < 0) {
		ck_assert_msg(count_kind(ALERTS_OUTLIER) == 0, "%s",
		    outlier_rows[_i].name);
	} else {
		ck_assert_msg(count_kind(ALERTS_OUTLIER) == 1, "%s",
		    outlier_rows[_i].name);
		ck_assert_uint_eq(got[0].pid,
		    201 + (unsigned)outlier_rows[_i].outlier);
		ck_assert_uint_eq(got[0].count, outlier_rows[_i].n - 1);
	}
	alerts_free(al);
}
END_TEST

START_TEST(test_outlier_leaves_the_window)
{
	struct alerts *al = new_alerts(0, 0, 0, 3);
	struct agg_proc w[4];
	unsigned i, s;

	for (i = 0; i < 4; i++) {
		w[i] = proc_of(301 + i, 300, ORIGIN_FORK);
		feed(al, &w[i], T0, (i == 3 ? 300 : 10) * MS, 2);
	}
	alerts_tick(al, T0 + 1);
	ck_assert_uint_eq(count_kind(ALERTS_OUTLIER), 1);
	/* All four keep pausing 10 ms: after a window, no outlier. */
	for (s = 1; s < 200; s++) {
		for (i = 0; i < 4; i++)
			feed(al, &w[i], T0 + s, 10 * MS, 0);
		alerts_tick(al, T0 + s + 0.5);
	}
	ck_assert_uint_eq(count_kind(ALERTS_OUTLIER), 1);
	alerts_free(al);
}
END_TEST

START_TEST(test_reused_pid_is_a_new_process)
{
	struct alerts *al = new_alerts(0, 0, 0, 0);
	struct agg_proc p = proc_of(400, 1, ORIGIN_ROOT);

	feed(al, &p, T0, 80 * MS, 0);
	p.start_mono_ns += 1;		/* same pid, another process */
	feed(al, &p, T0 + 1, 80 * MS, 0);
	ck_assert_uint_eq(count_kind(ALERTS_PAUSE), 2);
	ck_assert_uint_eq(alerts_nprocs(al), 1);
	alerts_free(al);
}
END_TEST

START_TEST(test_many_processes_found_again_and_freed)
{
	struct alerts *al = new_alerts(0, 0, 0, 0);
	struct agg_proc p;
	unsigned i;

	for (i = 0; i < 1000; i++) {
		p = proc_of(1000 + i, 1, ORIGIN_ROOT);
		feed(al, &p, T0, 80 * MS, 0);
		feed(al, &p, T0 + 1, 80 * MS, 0);
	}
	ck_assert_uint_eq(alerts_nprocs(al), 1000);
	ck_assert_uint_eq(count_kind(ALERTS_PAUSE), 1000);
	alerts_tick(al, T0 + 62);
	ck_assert_uint_eq(count_kind(ALERTS_REPEAT), 1000);
	alerts_tick(al, T0 + 130);
	ck_assert_uint_eq(alerts_nprocs(al), 0);
	alerts_free(al);
}
END_TEST

START_TEST(test_bad_window_refused)
{
	struct alerts_config c = { .window_s = 0 };

	ck_assert_ptr_null(alerts_new(&c, on_line, NULL));
	c.window_s = -1;
	ck_assert_ptr_null(alerts_new(&c, on_line, NULL));
	/* A NULL set of alerts (gcmond after shutdown) is a no-op. */
	alerts_tick(NULL, T0);
	alerts_finish(NULL, T0);
}
END_TEST

static Suite *alerts_suite(void)
{
	Suite *s = suite_create("alerts");
	TCase *t = tcase_create("alerts");

	tcase_add_test(t, test_pause_alerts_first_then_one_count_per_window);
	tcase_add_test(t, test_steady_slow_pauses_give_one_line_per_window);
	tcase_add_test(t, test_finish_emits_the_held_count);
	tcase_add_loop_test(t, test_p99_fires_above_one_percent_over, 0,
	    sizeof p99_rows / sizeof p99_rows[0]);
	tcase_add_test(t, test_shape_alert_at_most_once_per_window_and_expires);
	tcase_add_test(t, test_held_p99_refires_once_per_window);
	tcase_add_test(t, test_gc_share_fires_above_the_share_of_wall);
	tcase_add_test(t, test_gc_share_waits_for_half_a_window);
	tcase_add_test(t, test_gen2_storm_counts_the_oldest_generation);
	tcase_add_test(t,
	    test_gen2_storm_on_incremental_and_free_threaded_is_explicit_only);
	tcase_add_test(t, test_pause_alert_says_young_incremental);
	tcase_add_loop_test(t, test_outlier_worker_against_its_siblings_median,
	    0, sizeof outlier_rows / sizeof outlier_rows[0]);
	tcase_add_test(t, test_outlier_leaves_the_window);
	tcase_add_test(t, test_reused_pid_is_a_new_process);
	tcase_add_test(t, test_many_processes_found_again_and_freed);
	tcase_add_test(t, test_bad_window_refused);
	suite_add_tcase(s, t);
	return s;
}

UNIT_SUITE(alerts_suite, UNIT_FORK);
