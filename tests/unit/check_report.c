/*
 * check_report.c: Check suite for client/report.c, the text rendering of
 * control answers: peer strings cleaned of control bytes, and figures a
 * daemon may send in any JSON form rendered without undefined behaviour,
 * the binary watch records' lines equal to the JSON events', and the
 * launcher's stream reader (client/ctl.c) against hostile record frames.
 * Run by make check; no daemon involved (the answers are built here).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <errno.h>

#include "codec.h"
#include "ctl.h"
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

/* The line of a WATCH_EVENTS record is the line of the EVENT object
 * gcmond would have sent for it, byte for byte: the object built as
 * djson_event builds it, through the wire (dumped as server.c dumps it,
 * loaded as ctl.c loads it). */
static const struct proto_watch_event rec_rows[] = {
	{ 4242, 0, GC_MODEL_CLASSIC, 0, 0, 213456, 0, 15234, 0 },
	{ 4242, 2, GC_MODEL_CLASSIC, 0, 0, 52349999, 0, 0, 3 },
	{ 7, 1, GC_MODEL_INCREMENTAL, 0, 0, 999, 0, 1, 0 },
	{ 7, 0, GC_MODEL_FREE_THREADED, 0, 0, 1, 0, 1, 0 },
	{ 7, 2, GC_MODEL_FREE_THREADED, 0, 0, 999999, 0, 1, 0 },
	{ 7, 1, GC_MODEL_FREE_THREADED, 0, 0, 1000000, 0, 1, 0 },
	{ 7, 2, 0xfe, 0, 0, 999999999, 0, 1, 0 },
	{ 7, 9, GC_MODEL_INCREMENTAL, 0, 0, 1000000000, 0, 1, 0 },
	{ 7, 0, GC_MODEL_CLASSIC, 0, 0, 123456789012345ull, 0,
	    UINT64_MAX, UINT32_MAX },
	{ 7, 0, GC_MODEL_CLASSIC, 0, 0, 0, 0, 0, 0 },
	{ 7, 0, GC_MODEL_CLASSIC, 0, 0, 1499, 0, 0, 0 },
	{ 7, 0, GC_MODEL_CLASSIC, 0, 0, 1500, 0, 0, 0 },
	{ 7, 0, GC_MODEL_CLASSIC, 0, 0, 125, 0, 0, 0 },
};

static char *report_text_of(const json_t *ev, const struct proto_watch_event *e,
    int with_pid)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	ck_assert_ptr_nonnull(f);
	if (ev != NULL)
		report_event_line(f, ev, with_pid);
	else
		report_event_rec_line(f, e, with_pid);
	ck_assert_int_eq(fclose(f), 0);
	return text;
}

START_TEST(test_report_record_line_is_the_event_objects_line)
{
	const struct proto_watch_event *e = &rec_rows[_i];
	json_t *o = json_pack("{s:s,s:I,s:s,s:I,s:s,s:f,s:f,s:n,s:I,s:I}",
	    "type", "event", "pid", (json_int_t)e->pid, "run", "r",
	    "gen", (json_int_t)e->generation,
	    "label", proto_gen_label(e->gc_model, e->generation),
	    "time", 1765000000.25, "duration_ms", (double)e->pause_ns / 1e6,
	    "collector_ms", "collected", (json_int_t)(e->collected >
	    (uint64_t)INT64_MAX ? INT64_MAX : (json_int_t)e->collected),
	    "uncollectable", (json_int_t)e->uncollectable);
	char *js, *a, *b;
	json_t *wire;
	int with_pid;

	ck_assert_ptr_nonnull(o);
	js = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	wire = json_loads(js, JSON_REJECT_DUPLICATES, NULL);
	ck_assert_ptr_nonnull(wire);
	for (with_pid = 0; with_pid < 2; with_pid++) {
		a = report_text_of(wire, NULL, with_pid);
		b = report_text_of(NULL, e, with_pid);
		ck_assert_msg(strcmp(a, b) == 0, "JSON \"%s\" vs record \"%s\"",
		    a, b);
		free(a);
		free(b);
	}
	free(js);
	json_decref(wire);
	json_decref(o);
}
END_TEST

/* The record line formats pauses without printf: over every format's
 * range, its boundaries, its ties and random values, the text is what
 * report_event_line prints for the double gcmond would have sent. */
START_TEST(test_report_record_pauses_format_as_printf_does)
{
	static const uint64_t around[] = { 0, 1000, 1000000, 1000000000,
	    10000000000ull, 999999500, 1ull << 50, 123456789012345ull };
	struct proto_watch_event e = { 1, 2, GC_MODEL_CLASSIC, 0, 0, 0, 0, 3,
	    4 };
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0, i, k;
	FILE *fa = open_memstream(&ta, &la), *fb = open_memstream(&tb, &lb);
	json_t *o = json_pack("{s:I,s:I,s:s,s:f,s:I,s:I}", "pid", 1, "gen", 2,
	    "label", "generation 2", "duration_ms", 0.0, "collected", 3,
	    "uncollectable", 4);
	uint64_t x = 0x9e3779b97f4a7c15ull, ns;
	unsigned long n = 0;

	ck_assert_ptr_nonnull(fa);
	ck_assert_ptr_nonnull(fb);
	ck_assert_ptr_nonnull(o);
	for (i = 0; i < 300000; i++) {
		if (i < 40000) {
			ns = i;
		} else if (i < 40000 + 8 * 5000) {
			k = (i - 40000) / 5000;
			ns = around[k] + (i - 40000) % 5000 * 7 - 2500 * 7 * (around[k] > 20000);
		} else {
			x += 0x9e3779b97f4a7c15ull;	/* splitmix64 */
			ns = x;
			ns = (ns ^ (ns >> 30)) * 0xbf58476d1ce4e5b9ull;
			ns = (ns ^ (ns >> 27)) * 0x94d049bb133111ebull;
			ns ^= ns >> 31;
			ns >>= ns % 40 + 10;		/* every magnitude */
			if (i % 3 == 0)			/* a tie of "%.1fms" */
				ns = ns / 100000 * 100000 + 50000;
			else if (i % 5 == 0)		/* of "%.2fs" */
				ns = ns / 10000000 * 10000000 + 5000000;
		}
		e.pause_ns = ns;
		json_object_set_new(o, "duration_ms", json_real((double)ns / 1e6));
		report_event_line(fa, o, 1);
		report_event_rec_line(fb, &e, 1);
		n++;
	}
	ck_assert_int_eq(fclose(fa), 0);
	ck_assert_int_eq(fclose(fb), 0);
	if (la != lb || memcmp(ta, tb, la) != 0) {
		for (i = 0; i < la && i < lb && ta[i] == tb[i]; i++)
			;
		while (i > 0 && ta[i - 1] != '\n')
			i--;
		ck_abort_msg("%lu lines; first difference:\n%.120s\n%.120s", n,
		    ta + i, tb + i);
	}
	free(ta);
	free(tb);
	json_decref(o);
}
END_TEST

/* The launcher's stream reader (ctl_stream_next_any) with a hostile
 * frame: the error of what is wrong, no frame taken, no read outside
 * the buffer (ASan builds of make check would say). */
static const struct {
	const char *name;
	uint32_t nrec, rec_size;
	size_t payload;		/* bytes after the 8-byte count fields */
	int cut;		/* bytes of the frame withheld (EOF after) */
	int want;
} stream_rows[] = {
	{ "valid", 2, PROTO_WATCH_REC_SIZE, 96, 0, 1 },
	{ "short of its count", 3, PROTO_WATCH_REC_SIZE, 96, 0, -EBADMSG },
	{ "overlong", 1, PROTO_WATCH_REC_SIZE, 96, 0, -EPROTO },
	{ "count 0", 0, PROTO_WATCH_REC_SIZE, 96, 0, -EPROTO },
	{ "count 2^32-1", UINT32_MAX, PROTO_WATCH_REC_SIZE, 96, 0, -E2BIG },
	{ "record size too small", 2, 8, 96, 0, -EPROTO },
	{ "truncated by the peer's close", 2, PROTO_WATCH_REC_SIZE, 96, 5,
	    -ECONNRESET },
};

START_TEST(test_stream_reader_names_what_is_wrong_with_a_record_frame)
{
	struct proto_watch_event ev[2] = { rec_rows[0], rec_rows[1] };
	struct proto_watch_events b;
	struct ctl_stream st = { 0 };
	size_t len = PROTO_HDR_SIZE + 8 + stream_rows[_i].payload;
	json_t *obj = NULL;
	uint8_t *f;

	f = calloc(1, len + 8);
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(proto_encode_watch_events(f, len + 8, ev, 2),
	    (ssize_t)(PROTO_HDR_SIZE + 8 + 96));
	/* The header's length as the row says; the counts as it says. */
	f[0] = (uint8_t)len;
	f[1] = (uint8_t)(len >> 8);
	f[8] = (uint8_t)stream_rows[_i].nrec;
	f[9] = (uint8_t)(stream_rows[_i].nrec >> 8);
	f[10] = (uint8_t)(stream_rows[_i].nrec >> 16);
	f[11] = (uint8_t)(stream_rows[_i].nrec >> 24);
	f[12] = (uint8_t)stream_rows[_i].rec_size;
	f[13] = f[14] = f[15] = 0;
	st.buf = f;
	st.len = st.cap = len - (size_t)stream_rows[_i].cut;
	st.eof = stream_rows[_i].cut > 0;
	ck_assert_msg(ctl_stream_next_any(&st, &obj, &b) == stream_rows[_i].want,
	    "%s", stream_rows[_i].name);
	ck_assert_ptr_null(obj);
	if (stream_rows[_i].want == 1) {
		ck_assert_uint_eq(b.n, 2);
		ck_assert_uint_eq(st.off, len);
	} else {
		ck_assert_uint_eq(st.off, 0);
	}
	if (stream_rows[_i].want < 0 && stream_rows[_i].want != -ECONNRESET) {
		ck_assert_str_ne(proto_strerror(stream_rows[_i].want),
		    "unknown codec error");
	}
	/* The JSON-only reader refuses every record frame. */
	st.off = 0;
	ck_assert_int_eq(ctl_stream_next(&st, &obj), stream_rows[_i].cut ?
	    -ECONNRESET : -EPROTO);
	free(f);
}
END_TEST

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
	tcase_add_loop_test(tc, test_report_record_line_is_the_event_objects_line,
	    0, sizeof rec_rows / sizeof rec_rows[0]);
	tcase_add_test(tc, test_report_record_pauses_format_as_printf_does);
	tcase_add_loop_test(tc,
	    test_stream_reader_names_what_is_wrong_with_a_record_frame, 0,
	    sizeof stream_rows / sizeof stream_rows[0]);
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
