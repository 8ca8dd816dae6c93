/*
 * check_stacks_report.c: Check suite for client/stacks_report.c: folded
 * lines root first with the generation and the weight (pause µs or
 * count), the same path at other lines merged, separators and control
 * bytes in names neutralised, "[other]" and "[no Python frame]", and the
 * table's leaf and share. Run by make check; answers built by hand.
 */
#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stacks_report.h"
#include "unit.h"

static const char *answer_json =
    "{\"count\": 6, \"pause_ns\": 9000000,"
    " \"other\": {\"count\": 1, \"pause_ns\": 1000000},"
    " \"paths\": ["
    "  {\"generation\": 2, \"count\": 2, \"pause_ns\": 4000000,"
    "   \"share_time\": 0.444, \"share_count\": 0.333, \"truncated\": false,"
    "   \"frames\": [{\"file\": \"app.py\", \"function\": \"<module>\", \"line\": 1},"
    "               {\"file\": \"app.py\", \"function\": \"build\", \"line\": 7}]},"
    "  {\"generation\": 2, \"count\": 1, \"pause_ns\": 2000000,"
    "   \"share_time\": 0.222, \"share_count\": 0.167, \"truncated\": false,"
    "   \"frames\": [{\"file\": \"app.py\", \"function\": \"<module>\", \"line\": 1},"
    "               {\"file\": \"app.py\", \"function\": \"build\", \"line\": 9}]},"
    "  {\"generation\": 0, \"count\": 1, \"pause_ns\": 1500000,"
    "   \"share_time\": 0.167, \"share_count\": 0.167, \"truncated\": false,"
    "   \"frames\": [{\"file\": \"my app;x.py\", \"function\": \"f g\\u001b\", \"line\": 3}]},"
    "  {\"generation\": 2, \"count\": 1, \"pause_ns\": 500000,"
    "   \"share_time\": 0.056, \"share_count\": 0.167, \"truncated\": false,"
    "   \"frames\": []}]}";

/* What out got, NUL-terminated, in a static buffer. */
static char *render(int folded, int by_count, int *n)
{
	static char buf[8192];
	json_error_t err;
	json_t *ans = json_loads(answer_json, 0, &err);
	FILE *f = fmemopen(buf, sizeof buf - 1, "w");

	ck_assert_msg(ans != NULL, "%s", err.text);
	ck_assert_ptr_nonnull(f);
	memset(buf, 0, sizeof buf);
	if (folded)
		*n = stacks_report_folded(f, ans, by_count);
	else
		stacks_report(f, ans, 0);
	fclose(f);
	json_decref(ans);
	return buf;
}

START_TEST(test_folded_by_time_merges_lines_root_first)
{
	int n;
	char *out = render(1, 0, &n);

	ck_assert_int_eq(n, 4);
	ck_assert_ptr_nonnull(strstr(out, "app.py:<module>;app.py:build;gen 2 6000\n"));
	ck_assert_ptr_nonnull(strstr(out, "[no Python frame];gen 2 500\n"));
	ck_assert_ptr_nonnull(strstr(out, "[other] 1000\n"));
}
END_TEST

START_TEST(test_folded_by_count)
{
	int n;
	char *out = render(1, 1, &n);

	ck_assert_int_eq(n, 4);
	ck_assert_ptr_nonnull(strstr(out, "app.py:<module>;app.py:build;gen 2 3\n"));
	ck_assert_ptr_nonnull(strstr(out, "[other] 1\n"));
}
END_TEST

/* A name holding ';', ' ' or a control byte cannot split a frame, end
 * the stack early or reach a terminal raw. */
START_TEST(test_folded_neutralises_separators)
{
	int n;
	char *out = render(1, 0, &n);

	ck_assert_ptr_nonnull(strstr(out, "my_app_x.py:f_g\\x1b;gen 0 1500\n"));
	ck_assert_ptr_null(strchr(out, '\x1b'));
}
END_TEST

START_TEST(test_table_shows_leaf_and_share)
{
	int n;
	char *out = render(0, 0, &n);

	ck_assert_ptr_nonnull(strstr(out, "=== WHERE THE PAUSES LAND ==="));
	ck_assert_ptr_nonnull(strstr(out, "By total pause:"));
	ck_assert_ptr_nonnull(strstr(out, "By count:"));
	ck_assert_ptr_nonnull(strstr(out, " 44.4%        4.0       2    2  "
	    "app.py:build:7  <- <module> > build\n"));
	ck_assert_ptr_nonnull(strstr(out, "(no Python frame"));
	ck_assert_ptr_null(strchr(out, '\x1b'));
}
END_TEST

static Suite *stacks_report_suite(void)
{
	Suite *s = suite_create("stacks_report");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_folded_by_time_merges_lines_root_first);
	tcase_add_test(tc, test_folded_by_count);
	tcase_add_test(tc, test_folded_neutralises_separators);
	tcase_add_test(tc, test_table_shows_leaf_and_share);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(stacks_report_suite, UNIT_NOFORK_UNDER_ASAN);
