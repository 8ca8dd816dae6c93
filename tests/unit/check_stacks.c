/*
 * check_stacks.c: Check suite for daemon/model/stacks.c and stacks_answer.c:
 * distinct stacks counted once each, the per-process cap and its "other"
 * bucket, names set once, the answer merged across processes by resolved
 * names (ids differ), root first, shares, the top paths' bound; and
 * daemon/out/alert_hold.c: a pause alert line held until its stack's names
 * come, two drains at most, or its process's end. Run by make check;
 * records built by hand, no agent or daemon.
 */
#include <check.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "alert_hold.h"
#include "stacks.h"
#include "stacks_answer.h"
#include "unit.h"

static struct shm_stack st_make(const uint32_t *ids, uint16_t depth,
    uint32_t line0)
{
	struct shm_stack st;
	uint16_t i;

	memset(&st, 0, sizeof st);
	st.depth = depth;
	for (i = 0; i < depth; i++) {
		st.frame[i].code_id = ids[i];
		st.frame[i].line = line0 + i;
	}
	return st;
}

static void name_set(struct stacks_proc **sp, uint32_t id, const char *file,
    const char *func)
{
	static struct shm_name n;

	memset(&n, 0, sizeof n);
	n.code_id = id;
	snprintf(n.file, sizeof n.file, "%s", file);
	snprintf(n.func, sizeof n.func, "%s", func);
	ck_assert_int_eq(stacks_set_name(sp, &n), 0);
}

START_TEST(test_same_stack_counted_once)
{
	static const uint32_t ids[] = { 3, 2, 1 };
	struct stacks_proc *sp = NULL;
	struct shm_stack st = st_make(ids, 3, 10);

	ck_assert_int_eq(stacks_add(&sp, &st, 2, 100), 0);
	ck_assert_int_eq(stacks_add(&sp, &st, 2, 50), 0);
	ck_assert_int_eq(stacks_add(&sp, &st, 1, 7), 0);	/* another gen */
	ck_assert_uint_eq(sp->n, 2);
	ck_assert_uint_eq(sp->e[0].count, 2);
	ck_assert_uint_eq(sp->e[0].pause_ns, 150);
	ck_assert_uint_eq(sp->count, 3);
	ck_assert_uint_eq(sp->pause_ns, 157);
	stacks_proc_free(sp);
}
END_TEST

START_TEST(test_distinct_stacks_beyond_cap_go_to_other)
{
	struct stacks_proc *sp = NULL;
	struct shm_stack st;
	uint32_t id;

	for (id = 1; id <= STACKS_MAX_DISTINCT + 5; id++) {
		st = st_make(&id, 1, 1);
		ck_assert_int_eq(stacks_add(&sp, &st, 2, 10), 0);
	}
	ck_assert_uint_eq(sp->n, STACKS_MAX_DISTINCT);
	ck_assert_uint_eq(sp->other_count, 5);
	ck_assert_uint_eq(sp->other_pause_ns, 50);
	ck_assert_uint_eq(sp->count, STACKS_MAX_DISTINCT + 5);
	stacks_proc_free(sp);
}
END_TEST

START_TEST(test_name_set_once_and_bounded)
{
	struct stacks_proc *sp = NULL;
	struct shm_frame f = { 9, 4 };
	char buf[64];

	stacks_frame_label(sp, &f, buf, sizeof buf);
	ck_assert_str_eq(buf, "?:?#9");
	name_set(&sp, 9, "a.py", "first");
	name_set(&sp, 9, "b.py", "second");	/* an id never changes code */
	name_set(&sp, 0, "zero.py", "ignored");
	name_set(&sp, SHM_CODES, "big.py", "ignored");
	stacks_frame_label(sp, &f, buf, sizeof buf);
	ck_assert_str_eq(buf, "a.py:first");
	ck_assert_ptr_null(stacks_name_of(sp, 0));
	ck_assert_ptr_null(stacks_name_of(sp, SHM_CODES));
	stacks_proc_free(sp);
}
END_TEST

/* Every id of the space named, in a scattered order: each found again,
 * the table no bigger than twice what it holds. */
START_TEST(test_every_id_named_and_found)
{
	struct stacks_proc *sp = NULL;
	const struct stacks_name *nm;
	char file[32];
	uint32_t i, id;

	for (i = 1; i < SHM_CODES; i++) {
		id = (i * 1237u) % (SHM_CODES - 1) + 1;	/* 1237: coprime */
		snprintf(file, sizeof file, "f%u.py", (unsigned)id);
		name_set(&sp, id, file, "fn");
		ck_assert_uint_le(sp->names_cap, 4 * (size_t)SHM_CODES);
	}
	ck_assert_uint_eq(sp->names_n, SHM_CODES - 1);
	for (id = 1; id < SHM_CODES; id++) {
		ck_assert_ptr_nonnull(nm = stacks_name_of(sp, id));
		snprintf(file, sizeof file, "f%u.py", (unsigned)id);
		ck_assert_str_eq(nm->file, file);
	}
	ck_assert_uint_le(2 * sp->names_n, sp->names_cap);
	stacks_proc_free(sp);
}
END_TEST

static json_t *emitted[4];
static unsigned nemitted;

static void emit(void *arg, json_t *o)
{
	(void)arg;
	ck_assert_uint_lt(nemitted, 4);
	emitted[nemitted++] = o;
}

/* The leaf function of an emitted line's stack, or "" when unnamed. */
static const char *leaf(const json_t *o)
{
	const json_t *f = json_array_get(json_object_get(o, "stack"), 0);
	const char *fn = json_string_value(json_object_get(f, "function"));

	return fn != NULL ? fn : "";
}

START_TEST(test_alert_line_held_until_its_names_come)
{
	static const uint32_t ids[] = { 7, 8 };
	static struct alert_hold h;
	struct agg_proc p, q;
	struct proto_event e;
	struct shm_stack st = st_make(ids, 2, 10);
	json_t *o;
	unsigned i;

	memset(&p, 0, sizeof p);
	memset(&q, 0, sizeof q);
	p.pid = 41;
	q.pid = 42;
	memset(&e, 0, sizeof e);
	e.flags = PROTO_EVENT_HAS_STACK;
	for (i = 0; i < 3; i++) {
		st.start_ns = e.start_ns = 100 + i;
		ck_assert_int_eq(stacks_add(&p.stacks, &st, 2, 1000), 0);
		o = json_object();
		alert_hold_stack(o, &p, &e);
		ck_assert_int_eq(alert_hold_put(&h, o, &p, &e), 1);
	}
	/* Another process's drain lets none go. */
	alert_hold_drained(&h, &q, 0, emit, NULL);
	ck_assert_uint_eq(nemitted, 0);
	/* A drain without the names: still held (one of two). */
	alert_hold_drained(&h, &p, 0, emit, NULL);
	ck_assert_uint_eq(nemitted, 0);
	name_set(&p.stacks, 7, "app.py", "build");
	name_set(&p.stacks, 8, "app.py", "main");
	/* Named now: every line goes, its stack named anew. */
	alert_hold_drained(&h, &p, 0, emit, NULL);
	ck_assert_uint_eq(nemitted, 3);
	for (i = 0; i < nemitted; i++) {
		ck_assert_str_eq(leaf(emitted[i]), "build");
		json_decref(emitted[i]);
	}
	nemitted = 0;
	/* A named stack is not held at all. */
	st.start_ns = e.start_ns = 200;
	ck_assert_int_eq(stacks_add(&p.stacks, &st, 2, 1000), 0);
	o = json_object();
	alert_hold_stack(o, &p, &e);
	ck_assert_int_eq(alert_hold_put(&h, o, &p, &e), 0);
	ck_assert_str_eq(leaf(o), "build");
	json_decref(o);
	/* Names that never come: out after two drains, and at the end. */
	st.frame[0].code_id = 9;
	st.start_ns = e.start_ns = 300;
	ck_assert_int_eq(stacks_add(&p.stacks, &st, 2, 1000), 0);
	o = json_object();
	alert_hold_stack(o, &p, &e);
	ck_assert_int_eq(alert_hold_put(&h, o, &p, &e), 1);
	alert_hold_drained(&h, &p, 0, emit, NULL);
	ck_assert_uint_eq(nemitted, 0);
	alert_hold_drained(&h, &p, 0, emit, NULL);
	ck_assert_uint_eq(nemitted, 1);
	ck_assert_str_eq(leaf(emitted[0]), "?#9");
	json_decref(emitted[0]);
	nemitted = 0;
	st.start_ns = e.start_ns = 400;
	ck_assert_int_eq(stacks_add(&p.stacks, &st, 2, 1000), 0);
	o = json_object();
	alert_hold_stack(o, &p, &e);
	ck_assert_int_eq(alert_hold_put(&h, o, &p, &e), 1);
	alert_hold_drained(&h, &p, 1, emit, NULL);
	ck_assert_uint_eq(nemitted, 1);
	json_decref(emitted[0]);
	nemitted = 0;
	stacks_proc_free(p.stacks);
}
END_TEST

/* Two processes, other ids for the same code: one path in the answer. */
START_TEST(test_answer_merges_processes_by_names)
{
	static const uint32_t ids_a[] = { 1, 2 }, ids_b[] = { 7, 5 };
	static const uint32_t ids_c[] = { 8 };
	struct agg a;
	struct agg_run r;
	struct agg_proc p1, p2;
	struct shm_stack st;
	json_t *ans, *paths, *frames;

	memset(&a, 0, sizeof a);
	memset(&r, 0, sizeof r);
	memset(&p1, 0, sizeof p1);
	memset(&p2, 0, sizeof p2);
	LIST_INIT(&a.runs);
	LIST_INSERT_HEAD(&a.runs, &r, link);
	TAILQ_INIT(&r.procs);
	TAILQ_INSERT_TAIL(&r.procs, &p1, link);
	TAILQ_INSERT_TAIL(&r.procs, &p2, link);
	p1.run = p2.run = &r;
	name_set(&p1.stacks, 1, "app.py", "leaf");
	name_set(&p1.stacks, 2, "app.py", "root");
	name_set(&p2.stacks, 7, "app.py", "leaf");
	name_set(&p2.stacks, 5, "app.py", "root");
	st = st_make(ids_a, 2, 10);
	stacks_add(&p1.stacks, &st, 2, 300);
	st = st_make(ids_b, 2, 10);
	stacks_add(&p2.stacks, &st, 2, 600);
	st = st_make(ids_c, 1, 1);		/* unresolved */
	stacks_add(&p2.stacks, &st, 2, 100);
	ck_assert_int_eq(stacks_note_area(&p2.stacks, 4, 1), 0);
	ans = stacks_answer(&a, &r, NULL);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "dropped")), 4);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "given_up")), 1);
	json_decref(ans);
	ck_assert_int_eq(stacks_note_area(&p2.stacks, 0, 0), 0);
	ans = stacks_answer(&a, &r, NULL);
	ck_assert_ptr_nonnull(ans);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "count")), 3);
	paths = json_object_get(ans, "paths");
	ck_assert_uint_eq(json_array_size(paths), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(
	    json_array_get(paths, 0), "count")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(
	    json_array_get(paths, 0), "pause_ns")), 900);
	ck_assert(json_real_value(json_object_get(json_array_get(paths, 0),
	    "share_time")) == 0.9);
	frames = json_object_get(json_array_get(paths, 0), "frames");
	ck_assert_str_eq(json_string_value(json_object_get(
	    json_array_get(frames, 0), "function")), "root");	/* root first */
	ck_assert_int_eq(json_integer_value(json_object_get(
	    json_array_get(frames, 1), "line")), 10);
	frames = json_object_get(json_array_get(paths, 1), "frames");
	ck_assert_str_eq(json_string_value(json_object_get(
	    json_array_get(frames, 0), "function")), "?#8");
	json_decref(ans);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "dropped")), 0);
	/* One process only. */
	ans = stacks_answer(&a, NULL, &p1);
	ck_assert_int_eq(json_integer_value(json_object_get(ans, "count")), 1);
	json_decref(ans);
	stacks_proc_free(p1.stacks);
	stacks_proc_free(p2.stacks);
}
END_TEST

/* Beyond the top paths by time and by count, the rest is "other"; no
 * capture is lost from the totals. */
START_TEST(test_answer_bounds_paths)
{
	struct agg a;
	struct agg_run r;
	struct agg_proc p;
	struct shm_stack st;
	json_t *ans, *row;
	json_int_t sum = 0;
	uint32_t id;
	size_t i;

	memset(&a, 0, sizeof a);
	memset(&r, 0, sizeof r);
	memset(&p, 0, sizeof p);
	LIST_INIT(&a.runs);
	LIST_INSERT_HEAD(&a.runs, &r, link);
	TAILQ_INIT(&r.procs);
	TAILQ_INSERT_TAIL(&r.procs, &p, link);
	p.run = &r;
	for (id = 1; id <= 3 * STACKS_ANSWER_TOP; id++) {
		st = st_make(&id, 1, 1);
		/* slow ones are rare, frequent ones short: two top lists */
		stacks_add(&p.stacks, &st, 2, id <= STACKS_ANSWER_TOP ?
		    1000000 : 10);
		if (id > 2 * STACKS_ANSWER_TOP)
			for (i = 0; i < 5; i++)
				stacks_add(&p.stacks, &st, 2, 10);
	}
	ans = stacks_answer(&a, NULL, NULL);
	ck_assert_uint_eq(json_array_size(json_object_get(ans, "paths")),
	    2 * STACKS_ANSWER_TOP);
	json_array_foreach(json_object_get(ans, "paths"), i, row)
		sum += json_integer_value(json_object_get(row, "count"));
	sum += json_integer_value(json_object_get(json_object_get(ans,
	    "other"), "count"));
	ck_assert_int_eq(sum, json_integer_value(json_object_get(ans, "count")));
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(ans,
	    "other"), "count")), STACKS_ANSWER_TOP);
	json_decref(ans);
	stacks_proc_free(p.stacks);
}
END_TEST

static Suite *stacks_suite(void)
{
	Suite *s = suite_create("stacks");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_same_stack_counted_once);
	tcase_add_test(tc, test_distinct_stacks_beyond_cap_go_to_other);
	tcase_add_test(tc, test_name_set_once_and_bounded);
	tcase_add_test(tc, test_every_id_named_and_found);
	tcase_add_test(tc, test_alert_line_held_until_its_names_come);
	tcase_add_test(tc, test_answer_merges_processes_by_names);
	tcase_add_test(tc, test_answer_bounds_paths);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(stacks_suite, UNIT_NOFORK_UNDER_ASAN);
