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

static Suite *report_suite(void)
{
	Suite *s = suite_create("report");
	TCase *tc = tcase_create("report");

	tcase_add_loop_test(tc, test_report_clean_escapes_control_bytes, 0,
	    (int)(sizeof clean_rows / sizeof clean_rows[0]));
	tcase_add_test(tc, test_report_huge_real_counts_are_not_cast);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(report_suite, UNIT_FORK);
