/*
 * check_report.c: Check suite for client/report.c, the text rendering of
 * control answers: peer strings cleaned of control bytes, and figures a
 * daemon may send in any JSON form rendered without undefined behaviour.
 * Run by make check; no daemon involved (the answers are built here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "report.h"
#include "unit.h"

static const struct {
	const char *name, *in, *want;
	size_t len;
} clean_rows[] = {
	{ "plain text unchanged", "gunicorn app:app", "gunicorn app:app", 64 },
	{ "escape and bell", "\x1b]0;x\x07", "\\x1b]0;x\\x07", 64 },
	{ "newline and DEL", "a\nb\x7f", "a\\x0ab\\x7f", 64 },
	{ "UTF-8 kept", "caf\xc3\xa9", "caf\xc3\xa9", 64 },
	{ "truncated", "abcdef", "abc", 4 },
	{ "an escape is never cut", "ab\x1b", "ab", 6 },
	{ "empty buffer room", "x", "", 1 },
};

START_TEST(test_report_clean_escapes_control_bytes)
{
	char buf[64];

	memset(buf, 'Z', sizeof buf);
	ck_assert_ptr_eq(report_clean(buf, clean_rows[_i].len,
	    clean_rows[_i].in), buf);
	ck_assert_msg(strcmp(buf, clean_rows[_i].want) == 0, "%s: got \"%s\"",
	    clean_rows[_i].name, buf);
}
END_TEST

/* Renders an event line from JSON text; the caller frees the result. */
static char *report_event_text(const char *js)
{
	json_t *ev = json_loads(js, 0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(ev);
	ck_assert_ptr_nonnull(f);
	report_event_line(f, ev, 1);
	ck_assert_int_eq(fclose(f), 0);
	json_decref(ev);
	return text;
}

START_TEST(test_report_huge_real_counts_are_not_cast)
{
	/* A count out of long long's range is unknown, not a cast's
	 * undefined value. */
	char *t = report_event_text("{\"pid\": 1e300, \"gen\": -1e19, "
	    "\"duration_ms\": 1.5, \"collected\": 4e18, \"uncollectable\": 0}");

	ck_assert_msg(strstr(t, "PID -1 | GC STOP  | Gen: -1 |") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "Collected: 4000000000000000000 |") != NULL,
	    "%s", t);
	free(t);
}
END_TEST

START_TEST(test_report_sub_microsecond_pause_prints_us_not_zero_ms)
{
	char *t = report_event_text("{\"pid\": 7, \"gen\": 0, "
	    "\"duration_ms\": 0.00042, \"collected\": 1, \"uncollectable\": 0}");

	ck_assert_msg(strstr(t, "Duration: 0.42\u00b5s |") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "0.000ms") == NULL, "%s", t);
	free(t);
}
END_TEST

/* The summary text for JSON summary, processes, pauses (may be NULL). */
static char *report_summary_text(const char *sum_js, const char *procs_js,
    const char *pauses_js)
{
	json_t *sum = json_loads(sum_js, 0, NULL);
	json_t *procs = procs_js ? json_loads(procs_js, 0, NULL) : NULL;
	json_t *pauses = pauses_js ? json_loads(pauses_js, 0, NULL) : NULL;
	struct report_opts o = { .alert_threshold_ms = 50, .pauses = pauses };
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(sum);
	ck_assert_ptr_nonnull(f);
	report_summary(f, sum, procs, NULL, &o);
	ck_assert_int_eq(fclose(f), 0);
	json_decref(sum);
	json_decref(procs);
	json_decref(pauses);
	return text;
}

/* Six scripts on two cores: 8.3 s of pauses over 28.6 process-seconds
 * and 3.49 s of CPU (the "238.17% of CPU time" of issue 12). */
#define SIX_SCRIPTS "{\"processes\": 6, \"live\": 0, \"wall_s\": 5.9, " \
    "\"cpu_s\": 3.49, \"collections\": 14776, \"seen\": 14776, " \
    "\"unseen\": 0, \"dropped\": 14742, \"gc_time_ms\": 8300.0, " \
    "\"gc_wall_pct\": 29.0, \"gc_cpu_pct\": 238.17, " \
    "\"max_rss_bytes\": 224395264, \"percentiles_ms\": {\"p50\": 0.5}, " \
    "\"generations\": [{\"gen\": 0, \"collections\": 14000, " \
    "\"seen\": 14000, \"unseen\": 0, \"percentiles_ms\": {}}]}"

/* The model's labels where they say more than the number; the
 * interpreter-measured time beside the pauses; a hostile label escaped. */
START_TEST(test_report_generations_by_model_label)
{
	char *t = report_summary_text("{\"gc_model\": \"incremental\", "
	    "\"generations\": [{\"gen\": 0, \"label\": \"generation 0\", "
	    "\"collections\": 2}, {\"gen\": 1, \"label\": "
	    "\"young+incremental\", \"collections\": 30, "
	    "\"collector_timed\": 30, \"collector_time_ms\": 4.5}, "
	    "{\"gen\": 2, \"label\": \"full\\u001b[2J\", \"collections\": 1}]}",
	    NULL, NULL);

	ck_assert_msg(strstr(t, "GC model: incremental\n") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "  Generation 0: 2 collections") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "  Generation 1 (young+incremental): 30 "
	    "collections") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "; interpreter-measured 4.5ms over 30") != NULL,
	    "%s", t);
	ck_assert_msg(strstr(t, "Generation 2 (full\\x1b[2J)") != NULL, "%s", t);
	free(t);
}
END_TEST

START_TEST(test_report_no_share_above_100_and_each_says_of_what)
{
	char *t = report_summary_text(SIX_SCRIPTS, NULL, NULL), *pct;
	double v;

	ck_assert_msg(strstr(t, "(29.00% of 28.6 process-seconds") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "of CPU time") == NULL, "%s", t);
	ck_assert_msg(strstr(t, "CPU time (processes added up): 3.49s") != NULL,
	    "%s", t);
	for (pct = strchr(t, '%'); pct != NULL; pct = strchr(pct + 1, '%')) {
		const char *p = pct;

		while (p > t && (p[-1] == '.' || (p[-1] >= '0' && p[-1] <= '9')))
			p--;
		v = strtod(p, NULL);
		ck_assert_msg(v <= 100.0, "a share of %g%%: %s", v, t);
	}
	ck_assert_msg(strstr(t, "Peak RSS (largest process): 214.0 MiB") != NULL,
	    "%s", t);
	free(t);
}
END_TEST

START_TEST(test_report_percentiles_say_how_many_pauses_when_not_all)
{
	char *t = report_summary_text(SIX_SCRIPTS, NULL, NULL);

	/* 14776 seen, 14742 dropped: 34 pauses, and the generation's
	 * count of received pauses is unknown from a summary alone. */
	ck_assert_msg(strstr(t, "p50 0.500ms p90 n/a p99 n/a p99.9 n/a "
	    "(from 34 pauses)") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "p99 from the pauses received") != NULL, "%s", t);
	free(t);
	t = report_summary_text(SIX_SCRIPTS, NULL, "{\"pauses\": 33, "
	    "\"generations\": [{\"gen\": 0, \"pauses\": 30}]}");
	ck_assert_msg(strstr(t, "(from 33 pauses)") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "p99 from 30 pauses)") != NULL, "%s", t);
	free(t);
	/* All of them: nothing to say. */
	t = report_summary_text("{\"collections\": 5, \"seen\": 5, "
	    "\"dropped\": 0, \"generations\": [{\"gen\": 0, "
	    "\"collections\": 5, \"seen\": 5}]}", NULL, NULL);
	ck_assert_msg(strstr(t, "(from ") == NULL && strstr(t, "p99 from") == NULL,
	    "%s", t);
	free(t);
}
END_TEST

START_TEST(test_report_process_tables_have_rss_and_a_short_command)
{
	static const char procs[] = "[{\"pid\": 10, \"role\": \"master\", "
	    "\"rss_bytes\": 10485760, \"argv\": [\"/usr/bin/python3\", "
	    "\"-m\", \"uvicorn\", \"--workers\", \"2\", \"app.main:application\", "
	    "\"--host\", \"127.0.0.1\"]}, {\"pid\": 11, \"role\": \"worker\", "
	    "\"rss_bytes\": null, \"argv\": [\"w\\u001b\"]}]";
	char *t = report_summary_text("{\"processes\": 2}", procs, NULL);
	json_t *arr = json_loads(procs, 0, NULL);
	char *text = NULL;
	size_t len = 0;
	FILE *f;

	ck_assert_msg(strstr(t, " RSS  COMMAND\n") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "10.0 MiB  /usr/bin/python3 -m uvicorn "
	    "--workers...\n") != NULL, "%s", t);
	ck_assert_msg(strstr(t, "n/a  w\\x1b\n") != NULL, "%s", t);
	free(t);
	ck_assert_ptr_nonnull(f = open_memstream(&text, &len));
	report_processes_table(f, arr);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_msg(strstr(text, " RSS  COMMAND\n") != NULL, "%s", text);
	ck_assert_msg(strstr(text, "10.0 MiB  /usr/bin/python3 -m uvicorn "
	    "--workers 2 app.main:applicat...\n") != NULL, "%s", text);
	free(text);
	json_decref(arr);
}
END_TEST

/* STATE says how an ended process ended. */
START_TEST(test_report_state_says_how_a_process_ended)
{
	static const char procs[] = "["
	    "{\"pid\": 20, \"state\": \"live\", \"ended_by\": null},"
	    "{\"pid\": 21, \"state\": \"ended\", \"ended_by\": \"exit\"},"
	    "{\"pid\": 22, \"state\": \"ended\", \"ended_by\": \"os._exit\","
	    " \"exit_code\": 3},"
	    "{\"pid\": 23, \"state\": \"ended\", \"ended_by\": \"abrupt\"},"
	    "{\"pid\": 24, \"state\": \"lost\", \"ended_by\": \"lost\"},"
	    "{\"pid\": 25, \"state\": \"ended\"}]";
	static const char *const want[] = { "20  live ", "21  exit ",
	    "22  _exit 3 ", "23  abrupt ", "24  lost ", "25  ended " };
	char *t = report_summary_text("{\"processes\": 6}", procs, NULL);
	size_t i;

	for (i = 0; i < sizeof want / sizeof want[0]; i++)
		ck_assert_msg(strstr(t, want[i]) != NULL, "no '%s' in %s",
		    want[i], t);
	free(t);
}
END_TEST

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_add_loop_test(tc, test_report_clean_escapes_control_bytes, 0,
	    (int)(sizeof clean_rows / sizeof clean_rows[0]));
	tcase_add_test(tc, test_report_huge_real_counts_are_not_cast);
	tcase_add_test(tc, test_report_sub_microsecond_pause_prints_us_not_zero_ms);
	tcase_add_test(tc, test_report_no_share_above_100_and_each_says_of_what);
	tcase_add_test(tc, test_report_percentiles_say_how_many_pauses_when_not_all);
	tcase_add_test(tc, test_report_process_tables_have_rss_and_a_short_command);
	tcase_add_test(tc, test_report_state_says_how_a_process_ended);
	tcase_add_test(tc, test_report_generations_by_model_label);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(report_suite, UNIT_FORK);
