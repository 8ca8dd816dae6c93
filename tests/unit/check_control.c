/*
 * check_control.c: unit tests of daemon/out/control.c, called directly (no
 * socket, no loop): every command answers, every key a command does not
 * take and every bad value is a bad_request naming it, unknown runs and
 * pids are not_found, and wait, watch and stop hand the connection's part
 * to the caller. Linked with agg.c, json.c and rules.c on an aggregate
 * holding one real process record.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "hello.h"
#include "unit.h"

#define DAEMON_UID	1000

static const struct agg_config cfg = { .alert_threshold_ns = 50000000,
    .run_expiry_s = 100 };
static struct agg *agg;

static void setup(void)
{
	struct proto_hello h;
	struct agg_proc *p;
	int is_new;

	ck_assert_ptr_nonnull(agg = agg_new(&cfg));
	agg->now_real = 1700000010.0;
	unit_hello(&h, 4242, 1, "r1", ORIGIN_ROOT);
	h.start_mono_ns = 1000000000ull;
	h.py_hexversion = 0;
	ck_assert_int_eq(agg_hello(agg, &h, &p, &is_new), 0);
}

static void teardown(void)
{
	agg_free(agg);
}

/* Runs request js as a peer of uid peer_uid; *ans to be finished. */
static void ask(const char *js, uid_t peer_uid, int waiting,
    struct control_answer *ans)
{
	struct control_ctx ctx = { .agg = agg, .start_real = 1700000000.0,
	    .daemon_pid = getpid(), .daemon_uid = DAEMON_UID,
	    .peer_uid = peer_uid, .waiting = waiting };

	control_request(&ctx, js, strlen(js), ans);
}

static void ask_error(const char *js, const char *code, const char *msg)
{
	struct control_answer ans;

	ask(js, DAEMON_UID, 0, &ans);
	ck_assert_msg(ans.kind == CONTROL_ERROR, "%s: not an error", js);
	ck_assert_ptr_nonnull(ans.obj);
	ck_assert(json_is_false(json_object_get(ans.obj, "ok")));
	ck_assert_str_eq(json_string_value(json_object_get(ans.obj, "code")), code);
	ck_assert_msg(strstr(json_string_value(json_object_get(ans.obj, "error")),
	    msg) != NULL, "%s: error \"%s\" lacks \"%s\"", js,
	    json_string_value(json_object_get(ans.obj, "error")), msg);
	ck_assert_ptr_null(ans.run);
	control_answer_fini(&ans);
}

/* Every command that answers at once, with the key its answer carries. */
static const struct { const char *req, *key; } answers[] = {
	{ "{\"cmd\": \"ping\"}", "version" },
	{ "{\"cmd\": \"summary\"}", "summary" },
	{ "{\"cmd\": \"summary\", \"run\": \"r1\"}", "summary" },
	{ "{\"cmd\": \"summary\", \"pid\": 4242}", "summary" },
	{ "{\"cmd\": \"processes\"}", "processes" },
	{ "{\"cmd\": \"processes\", \"run\": \"r1\"}", "processes" },
	{ "{\"cmd\": \"runs\"}", "runs" },
	{ "{\"cmd\": \"recommendations\"}", "recommendations" },
	{ "{\"cmd\": \"recommendations\", \"run\": \"r1\"}", "recommendations" },
	{ "{\"cmd\": \"recommendations\", \"pid\": 4242}", "recommendations" },
	{ "{\"cmd\": \"report\", \"run\": \"r1\"}", "garbage" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": [1]}", "durations" },
};

START_TEST(test_each_command_answers_ok)
{
	struct control_answer ans;

	ask(answers[_i].req, DAEMON_UID, 0, &ans);
	ck_assert_msg(ans.kind == CONTROL_ANSWER, "%s", answers[_i].req);
	ck_assert(json_is_true(json_object_get(ans.obj, "ok")));
	ck_assert_msg(json_object_get(ans.obj, answers[_i].key) != NULL,
	    "%s: no \"%s\"", answers[_i].req, answers[_i].key);
	control_answer_fini(&ans);
}
END_TEST

START_TEST(test_summary_scope_follows_the_request)
{
	struct control_answer ans;
	json_t *s;

	ask("{\"cmd\": \"summary\", \"pid\": 4242}", DAEMON_UID, 0, &ans);
	s = json_object_get(ans.obj, "summary");
	ck_assert_str_eq(json_string_value(json_object_get(s, "scope")), "process");
	ck_assert_int_eq(json_integer_value(json_object_get(s, "pid")), 4242);
	control_answer_fini(&ans);
	ask("{\"cmd\": \"runs\"}", DAEMON_UID, 0, &ans);
	ck_assert_int_eq(json_array_size(json_object_get(ans.obj, "runs")), 1);
	control_answer_fini(&ans);
}
END_TEST

/* Every key each command refuses, every bad value of each key. */
static const struct { const char *req, *code, *msg; } errors[] = {
	{ "", "bad_request", "not a JSON object" },
	{ "[1]", "bad_request", "not a JSON object" },
	{ "{\"cmd\": \"ping\", \"cmd\": \"ping\"}", "bad_request", "not a JSON object" },
	{ "{}", "bad_request", "\"cmd\" (a string) is missing" },
	{ "{\"cmd\": 3}", "bad_request", "\"cmd\" (a string) is missing" },
	{ "{\"cmd\": \"nope\"}", "bad_request", "unknown command \"nope\"" },
	{ "{\"cmd\": \"ping\", \"run\": \"r1\"}", "bad_request", "unknown argument \"run\"" },
	{ "{\"cmd\": \"runs\", \"pid\": 1}", "bad_request", "unknown argument \"pid\"" },
	{ "{\"cmd\": \"stop\", \"x\": 1}", "bad_request", "unknown argument \"x\"" },
	{ "{\"cmd\": \"processes\", \"pid\": 4242}", "bad_request", "unknown argument \"pid\"" },
	{ "{\"cmd\": \"report\", \"pid\": 4242}", "bad_request", "unknown argument \"pid\"" },
	{ "{\"cmd\": \"watch\", \"timeout_ms\": 5}", "bad_request", "unknown argument \"timeout_ms\"" },
	{ "{\"cmd\": \"summary\", \"min_processes\": 1}", "bad_request", "unknown argument \"min_processes\"" },
	{ "{\"cmd\": \"wait\", \"run\": \"r1\", \"pid\": 1}", "bad_request", "unknown argument \"pid\"" },
	{ "{\"cmd\": \"summary\", \"run\": 1}", "bad_request", "\"run\" must be a string" },
	{ "{\"cmd\": \"watch\", \"run\": null}", "bad_request", "\"run\" must be a string" },
	{ "{\"cmd\": \"watch\", \"events\": \"xml\"}", "bad_request", "\"events\" must be \"json\" or \"binary\"" },
	{ "{\"cmd\": \"watch\", \"events\": 1}", "bad_request", "\"events\" must be" },
	{ "{\"cmd\": \"summary\", \"events\": \"binary\"}", "bad_request", "unknown argument \"events\"" },
	{ "{\"cmd\": \"summary\", \"pid\": \"4242\"}", "bad_request", "\"pid\" must be an integer" },
	{ "{\"cmd\": \"summary\", \"pid\": 1.5}", "bad_request", "\"pid\" must be an integer" },
	{ "{\"cmd\": \"wait\", \"run\": \"r1\", \"timeout_ms\": -1}", "bad_request", "\"timeout_ms\" must be" },
	{ "{\"cmd\": \"wait\", \"run\": \"r1\", \"timeout_ms\": 60001}", "bad_request", "\"timeout_ms\" must be" },
	{ "{\"cmd\": \"wait\", \"run\": \"r1\", \"timeout_ms\": \"1\"}", "bad_request", "\"timeout_ms\" must be" },
	{ "{\"cmd\": \"wait\", \"run\": \"r1\", \"min_processes\": -1}", "bad_request", "\"min_processes\" must be" },
	{ "{\"cmd\": \"wait\", \"run\": \"r1\", \"min_processes\": 1000001}", "bad_request", "\"min_processes\" must be" },
	{ "{\"cmd\": \"wait\"}", "bad_request", "wait needs \"run\"" },
	{ "{\"cmd\": \"report\"}", "bad_request", "report needs \"run\"" },
	{ "{\"cmd\": \"summary\", \"run\": \"r1\", \"pid\": 4242}", "bad_request", "not both" },
	{ "{\"cmd\": \"summary\", \"run\": \"r9\"}", "not_found", "no run \"r9\"" },
	{ "{\"cmd\": \"report\", \"run\": \"r9\"}", "not_found", "no run \"r9\"" },
	{ "{\"cmd\": \"summary\", \"pid\": 4243}", "not_found", "no process 4243" },
	{ "{\"cmd\": \"summary\", \"pid\": 0}", "not_found", "no process 0" },
	{ "{\"cmd\": \"recommendations\", \"pid\": 4294967296}", "not_found", "no process 4294967296" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\"}", "bad_request", "durations needs \"le_ms\"" },
	{ "{\"cmd\": \"durations\", \"le_ms\": [1]}", "bad_request", "durations needs \"run\"" },
	{ "{\"cmd\": \"durations\", \"run\": \"r9\", \"le_ms\": [1]}", "not_found", "no run \"r9\"" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": []}", "bad_request", "\"le_ms\" must be" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": 1}", "bad_request", "\"le_ms\" must be" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": [5, 1]}", "bad_request", "\"le_ms\" must be" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": [0]}", "bad_request", "\"le_ms\" must be" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": [\"1\"]}", "bad_request", "\"le_ms\" must be" },
	{ "{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": [1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31,32,33]}", "bad_request", "\"le_ms\" must be" },
	{ "{\"cmd\": \"summary\", \"le_ms\": [1]}", "bad_request", "unknown argument \"le_ms\"" },
};

START_TEST(test_bad_request_named)
{
	ask_error(errors[_i].req, errors[_i].code, errors[_i].msg);
}
END_TEST

START_TEST(test_wait_is_deferred_to_the_caller)
{
	struct control_answer ans;

	ask("{\"cmd\": \"wait\", \"run\": \"later\"}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_WAIT);
	ck_assert_ptr_null(ans.obj);
	ck_assert_str_eq(ans.run, "later");
	ck_assert_int_eq(ans.wait_ms, CONTROL_WAIT_DEFAULT_MS);
	ck_assert_uint_eq(ans.wait_min, 1);
	control_answer_fini(&ans);
	ask("{\"cmd\": \"wait\", \"run\": \"r1\", \"timeout_ms\": 0, "
	    "\"min_processes\": 0}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_WAIT);
	ck_assert_int_eq(ans.wait_ms, 0);
	ck_assert_uint_eq(ans.wait_min, 0);
	control_answer_fini(&ans);
	ask("{\"cmd\": \"wait\", \"run\": \"r1\"}", DAEMON_UID, 1, &ans);
	ck_assert(ans.kind == CONTROL_ERROR);
	ck_assert_str_eq(json_string_value(json_object_get(ans.obj, "code")), "busy");
	control_answer_fini(&ans);
}
END_TEST

/* Pauses of 0.5, 2, 2, 30 ms and 2 s, in generations 0, 0, 1, 2, 2. */
static void feed_pauses(void)
{
	static const struct { uint64_t ns; uint16_t gen; } ev[] = {
		{ 500000, 0 }, { 2000000, 0 }, { 2000000, 1 },
		{ 30000000, 2 }, { 2000000000, 2 },
	};
	struct agg_proc *p = agg_proc_find(agg, 4242);
	struct proto_event e;
	size_t i;

	for (i = 0; i < sizeof ev / sizeof ev[0]; i++) {
		memset(&e, 0, sizeof e);
		e.start_ns = 2000000000ull + i * 1000000000ull;
		e.pause_ns = ev[i].ns;
		e.generation = ev[i].gen;
		agg_event(agg, p, &e);
	}
}

static long long row_count(const json_t *rows, size_t i)
{
	return json_integer_value(json_object_get(json_array_get(rows, i),
	    "count"));
}

START_TEST(test_durations_counts_each_pause_between_edges)
{
	struct control_answer ans;
	json_t *rows, *gens;

	feed_pauses();
	ask("{\"cmd\": \"durations\", \"run\": \"r1\", \"le_ms\": "
	    "[1, 5, 50, 1000]}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_ANSWER);
	rows = json_object_get(ans.obj, "durations");
	ck_assert_int_eq(json_array_size(rows), 5);
	ck_assert_int_eq(row_count(rows, 0), 1);	/* 0.5 */
	ck_assert_int_eq(row_count(rows, 1), 2);	/* 2, 2 */
	ck_assert_int_eq(row_count(rows, 2), 1);	/* 30 */
	ck_assert_int_eq(row_count(rows, 3), 0);
	ck_assert_int_eq(row_count(rows, 4), 1);	/* 2000: the rest */
	ck_assert(json_is_null(json_object_get(json_array_get(rows, 4), "le_ms")));
	ck_assert(json_real_value(json_object_get(json_array_get(rows, 1),
	    "le_ms")) == 5.0);
	ck_assert_int_eq(json_integer_value(json_object_get(ans.obj, "pauses")), 5);
	gens = json_object_get(ans.obj, "generations");
	ck_assert_int_eq(json_integer_value(json_object_get(
	    json_array_get(gens, 0), "pauses")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(
	    json_array_get(gens, 2), "pauses")), 2);
	control_answer_fini(&ans);
}
END_TEST

START_TEST(test_wait_for_no_process_answers_at_once_when_none_is_live)
{
	struct control_answer ans;
	struct proto_bye bye;

	/* A run no agent reached (its interpreter refused the agent). */
	ask("{\"cmd\": \"wait\", \"run\": \"never\", \"min_processes\": 0}",
	    DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_ANSWER);
	ck_assert(json_is_true(json_object_get(ans.obj, "ok")));
	ck_assert_int_eq(json_integer_value(json_object_get(ans.obj, "processes")), 0);
	ck_assert(json_is_false(json_object_get(ans.obj, "timed_out")));
	control_answer_fini(&ans);
	/* Once r1's one process has ended, r1 is answered at once too. */
	memset(&bye, 0, sizeof bye);
	agg_bye(agg, agg_proc_find(agg, 4242), &bye);
	ask("{\"cmd\": \"wait\", \"run\": \"r1\", \"min_processes\": 0}",
	    DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_ANSWER);
	ck_assert_int_eq(json_integer_value(json_object_get(ans.obj, "live")), 0);
	ck_assert_int_eq(json_integer_value(json_object_get(ans.obj, "processes")), 1);
	control_answer_fini(&ans);
	/* The default (one process at least) still waits for it. */
	ask("{\"cmd\": \"wait\", \"run\": \"never\"}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_WAIT);
	control_answer_fini(&ans);
}
END_TEST

START_TEST(test_watch_subscribes_one_run_or_all)
{
	struct control_answer ans;

	ask("{\"cmd\": \"watch\"}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_WATCH);
	ck_assert_ptr_null(ans.run);
	ck_assert(json_is_true(json_object_get(ans.obj, "watching")));
	ck_assert(json_is_true(json_object_get(ans.obj, "ok")));
	control_answer_fini(&ans);
	/* A run not seen yet may be watched: its processes come later. */
	ask("{\"cmd\": \"watch\", \"run\": \"later\"}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_WATCH);
	ck_assert_str_eq(ans.run, "later");
	ck_assert(ans.watch_events == CONTROL_EVENTS_JSON);
	control_answer_fini(&ans);
	/* The collections as WATCH_EVENTS records, on request only. */
	ask("{\"cmd\": \"watch\", \"run\": \"r\", \"events\": \"binary\"}",
	    DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_WATCH);
	ck_assert(ans.watch_events == CONTROL_EVENTS_BINARY);
	ck_assert_str_eq(ans.run, "r");
	control_answer_fini(&ans);
	ask("{\"cmd\": \"watch\", \"events\": \"json\"}", DAEMON_UID, 0, &ans);
	ck_assert(ans.watch_events == CONTROL_EVENTS_JSON);
	control_answer_fini(&ans);
}
END_TEST

START_TEST(test_stop_only_for_the_daemon_user_or_root)
{
	struct control_answer ans;

	ask("{\"cmd\": \"stop\"}", DAEMON_UID, 0, &ans);
	ck_assert(ans.kind == CONTROL_STOP);
	ck_assert(json_is_true(json_object_get(ans.obj, "ok")));
	control_answer_fini(&ans);
	ask("{\"cmd\": \"stop\"}", 0, 0, &ans);
	ck_assert(ans.kind == CONTROL_STOP);
	control_answer_fini(&ans);
	ask("{\"cmd\": \"stop\"}", DAEMON_UID + 1, 0, &ans);
	ck_assert(ans.kind == CONTROL_ERROR);
	ck_assert_str_eq(json_string_value(json_object_get(ans.obj, "code")),
	    "forbidden");
	control_answer_fini(&ans);
}
END_TEST

static Suite *control_suite(void)
{
	Suite *s = suite_create("control");
	TCase *tc = tcase_create("commands");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_loop_test(tc, test_each_command_answers_ok, 0,
	    sizeof answers / sizeof answers[0]);
	tcase_add_test(tc, test_summary_scope_follows_the_request);
	tcase_add_loop_test(tc, test_bad_request_named, 0,
	    sizeof errors / sizeof errors[0]);
	tcase_add_test(tc, test_wait_is_deferred_to_the_caller);
	tcase_add_test(tc, test_durations_counts_each_pause_between_edges);
	tcase_add_test(tc, test_wait_for_no_process_answers_at_once_when_none_is_live);
	tcase_add_test(tc, test_watch_subscribes_one_run_or_all);
	tcase_add_test(tc, test_stop_only_for_the_daemon_user_or_root);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(control_suite, UNIT_FORK);
