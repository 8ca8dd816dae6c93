/*
 * check_metrics.c: unit tests of daemon/out/metrics.c (with daemon/model/agg.c and
 * common/): the exposition's figures against what agg was fed, counters
 * that never go backwards when workers end, are evicted or their run
 * expires, classic buckets that are cumulative and end at _count, both
 * formats' framing, label escaping, the per-process cap, the route
 * label's bound and its sums, float
 * formatting, Accept negotiation and the service derived from argv.
 * No I/O, no sockets.
 */
#include "config.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "hello.h"
#include "metrics.h"
#include "requests.h"
#include "service.h"
#include "unit.h"

static const struct agg_config cfg = { .alert_threshold_ns = 50000000,
    .run_expiry_s = 100 };

static struct proto_hello hello_of(uint32_t pid, const char *run,
    uint8_t origin, uint64_t base0, const char *const *argv, uint32_t argc)
{
	struct proto_hello h;
	uint32_t i;

	unit_hello(&h, pid, 1, run, origin);
	h.py_hexversion = 0;
	h.base[0].collections = base0;
	h.argc = argc;
	for (i = 0; i < argc; i++) {
		h.argv[i].ptr = argv[i];
		h.argv[i].len = (uint32_t)strlen(argv[i]);
	}
	return h;
}

static const char *const gunicorn_argv[] = { "/usr/bin/python3", "-m",
    "gunicorn", "-w", "4", "-b", "127.0.0.1:8000", "app:app" };

static struct agg_proc *add(struct agg *a, uint32_t pid, const char *run,
    uint8_t origin, uint64_t base0)
{
	struct proto_hello *h = malloc(sizeof *h);
	struct agg_proc *p = NULL;
	int is_new = 0;

	ck_assert_ptr_nonnull(h);
	*h = hello_of(pid, run, origin, base0, gunicorn_argv, 8);
	ck_assert_int_eq(agg_hello(a, h, &p, &is_new), 0);
	free(h);
	return p;
}

static void count(struct agg *a, struct agg_proc *p, uint64_t c0,
    uint64_t c2, uint64_t max_ns)
{
	struct proto_counters c;

	memset(&c, 0, sizeof c);
	c.ngen = 3;
	c.gen[0].count = c0;
	c.gen[0].collected = 10 * c0;
	c.gen[0].max_pause_ns = max_ns;
	c.gen[2].count = c2;
	agg_counters(a, p, &c);
}

static void pause_of(struct agg *a, struct agg_proc *p, unsigned gen,
    uint64_t ns)
{
	struct proto_event e = { .pause_ns = ns, .generation = gen };

	agg_event(a, p, &e);
}

static char *render(struct metrics *m, struct agg *a, enum metrics_format f)
{
	char *out, *z;
	size_t len;

	ck_assert_int_eq(metrics_render(m, a, NULL, f, &out, &len), 0);
	ck_assert_ptr_nonnull(z = malloc(len + 1));
	memcpy(z, out, len);
	z[len] = '\0';
	free(out);
	return z;
}

/* The value of the sample whose name and labels are exactly series;
 * -1 if absent. */
static double value(const char *text, const char *series)
{
	size_t n = strlen(series);
	const char *l;

	for (l = text; l != NULL && *l != '\0'; l = strchr(l, '\n'),
	    l = l != NULL ? l + 1 : NULL)
		if (strncmp(l, series, n) == 0 && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

#define GUNI "service=\"gunicorn app:app\""

START_TEST(test_counters_sum_workers_without_fork_baseline)
{
	struct agg *a = agg_new(&cfg);
	struct metrics *m = metrics_new(NULL);
	struct agg_proc *master, *w1, *w2;
	char *t;

	metrics_watch(m, a);
	a->now_real = 1700000000;
	master = add(a, 10, "r", ORIGIN_ROOT, 5);
	w1 = add(a, 11, "r", ORIGIN_FORK, 5);	/* inherited: master's */
	w2 = add(a, 12, "r", ORIGIN_FORK, 5);
	count(a, master, 1, 0, 0);
	count(a, w1, 7, 1, 3000);
	count(a, w2, 9, 2, 5000);
	t = render(m, a, METRICS_PROMETHEUS);
	ck_assert_double_eq(value(t, "cpython_gc_collections_total{" GUNI
	    ",role=\"master\",generation=\"0\"}"), 6);
	ck_assert_double_eq(value(t, "cpython_gc_collections_total{" GUNI
	    ",role=\"worker\",generation=\"0\"}"), 16);
	ck_assert_double_eq(value(t, "cpython_gc_collections_total{" GUNI
	    ",role=\"worker\",generation=\"2\"}"), 3);
	ck_assert_double_eq(value(t, "cpython_gc_collected_objects_total{"
	    GUNI ",role=\"worker\",generation=\"0\"}"), 160);
	ck_assert_double_eq(value(t, "cpython_gc_processes{" GUNI
	    ",role=\"worker\"}"), 2);
	ck_assert_double_eq(value(t, "cpython_gc_pause_max_seconds{" GUNI
	    ",role=\"worker\",generation=\"0\"}"), 5e-6);
	ck_assert_ptr_null(strstr(t, "pid="));
	free(t);
	metrics_free(m);
	agg_free(a);
}
END_TEST

/* A worker ends, its record is evicted, its run expires: the service's
 * counters and histogram stay where they were. */
START_TEST(test_counters_never_go_backwards)
{
	struct agg *a = agg_new(&cfg);
	struct metrics *m = metrics_new(NULL);
	struct proto_bye bye;
	struct agg_proc *w;
	const char *c0 = "cpython_gc_collections_total{" GUNI
	    ",role=\"worker\",generation=\"0\"}";
	const char *n0 = "cpython_gc_pause_seconds_count{" GUNI
	    ",role=\"worker\",generation=\"0\"}";
	const char *b0 = "cpython_gc_pause_seconds_bucket{" GUNI
	    ",role=\"worker\",generation=\"0\",le=\"0.001\"}";
	char *t;
	uint32_t i, n = AGG_RUN_MAX_PROCS + 20;

	metrics_watch(m, a);
	a->now_real = 1700000000;
	memset(&bye, 0, sizeof bye);
	bye.mono_ns = 2000000000ull;
	for (i = 0; i < n; i++) {
		w = add(a, 100 + i, "r", ORIGIN_FORK, 3);
		pause_of(a, w, 0, 500000);		/* 0.5 ms */
		pause_of(a, w, 0, 2000000);		/* 2 ms */
		count(a, w, 2, 0, 2000000);
		if (i % 2 == 0) {
			bye.counters.ngen = 3;
			bye.counters.gen[0].count = 2;
			agg_bye(a, w, &bye);
			agg_disconnect(a, w);
		} else {
			agg_disconnect(a, w);		/* lost, never folded */
		}
		if (i == 10) {
			t = render(m, a, METRICS_PROMETHEUS);
			ck_assert_double_eq(value(t, c0), 22);
			ck_assert_double_eq(value(t, n0), 22);
			ck_assert_double_eq(value(t, b0), 11);
			free(t);
		}
	}
	t = render(m, a, METRICS_PROMETHEUS);
	ck_assert_double_eq(value(t, c0), 2.0 * n);
	ck_assert_double_eq(value(t, n0), 2.0 * n);
	ck_assert_double_eq(value(t, b0), n);
	free(t);
	a->now_real += 1000;
	ck_assert_uint_eq(agg_expire(a), 1);
	t = render(m, a, METRICS_PROMETHEUS);
	ck_assert_double_eq(value(t, c0), 2.0 * n);
	ck_assert_double_eq(value(t, n0), 2.0 * n);
	ck_assert_double_eq(value(t, b0), n);
	ck_assert_double_eq(value(t, "cpython_gc_processes{" GUNI
	    ",role=\"worker\"}"), 0);
	free(t);
	metrics_free(m);
	agg_free(a);
}
END_TEST

START_TEST(test_buckets_cumulative_and_end_at_count)
{
	struct agg *a = agg_new(&cfg);
	struct metrics *m = metrics_new(NULL);
	struct agg_proc *p;
	const char *l;
	char *t;
	double prev = 0, v, sum_s = 0;
	uint64_t ns;
	unsigned nb = 0;

	metrics_watch(m, a);
	a->now_real = 1700000000;
	p = add(a, 5, "h", ORIGIN_ROOT, 0);
	for (ns = 3000; ns < 20000000000ull; ns = ns * 3 / 2) {
		pause_of(a, p, 1, ns);
		sum_s += (double)ns;
	}
	t = render(m, a, METRICS_OPENMETRICS);
	for (l = strstr(t, "cpython_gc_pause_seconds_bucket{" GUNI
	    ",role=\"master\",generation=\"1\""); l != NULL && strncmp(l,
	    "cpython_gc_pause_seconds_bucket", 31) == 0;
	    l = strchr(l, '\n') + 1) {
		v = strtod(strchr(l, '}') + 2, NULL);
		ck_assert(v >= prev);
		prev = v;
		nb++;
	}
	ck_assert_uint_eq(nb, 20);		/* 10 us .. 10 s and +Inf */
	ck_assert_double_eq(prev, value(t, "cpython_gc_pause_seconds_count{"
	    GUNI ",role=\"master\",generation=\"1\"}"));
	ck_assert_double_eq_tol(value(t, "cpython_gc_pause_seconds_sum{" GUNI
	    ",role=\"master\",generation=\"1\"}"), sum_s / 1e9, 1e-9);
	ck_assert_double_eq(value(t, "cpython_gc_pause_seconds_bucket{" GUNI
	    ",role=\"master\",generation=\"1\",le=\"1e-05\"}"), 3);
	ck_assert_ptr_nonnull(strstr(t, "le=\"10\"}"));
	free(t);
	metrics_free(m);
	agg_free(a);
}
END_TEST

START_TEST(test_formats_frame_and_name_counters)
{
	struct agg *a = agg_new(&cfg);
	struct metrics *m = metrics_new(NULL);
	char *t;
	size_t n;

	metrics_watch(m, a);
	add(a, 5, "h", ORIGIN_ROOT, 0);
	t = render(m, a, METRICS_OPENMETRICS);
	n = strlen(t);
	ck_assert(n > 6 && strcmp(t + n - 6, "# EOF\n") == 0);
	ck_assert_ptr_nonnull(strstr(t,
	    "# TYPE cpython_gc_collections counter\n"));
	ck_assert_ptr_nonnull(strstr(t, "# TYPE gcmond_connections gauge\n"));
	free(t);
	t = render(m, a, METRICS_PROMETHEUS);
	ck_assert_ptr_null(strstr(t, "# EOF"));
	ck_assert_ptr_nonnull(strstr(t,
	    "# TYPE cpython_gc_collections_total counter\n"));
	free(t);
	metrics_free(m);
	agg_free(a);
}
END_TEST

START_TEST(test_health_series_carry_their_values)
{
	struct agg *a = agg_new(&cfg);
	struct metrics *m = metrics_new(NULL);
	struct metrics_health h = { .connections = 3, .decode_errors = 4,
	    .refused = 5, .rss_bytes = 6000, .areas = 7, .areas_refused = 8,
	    .areas_broken = 9 };
	char *out;
	size_t len;

	metrics_watch(m, a);
	ck_assert_int_eq(metrics_render(m, a, &h, METRICS_PROMETHEUS, &out,
	    &len), 0);
	ck_assert_ptr_nonnull(memmem(out, len, "\ngcmond_connections 3\n", 22));
	ck_assert_ptr_nonnull(memmem(out, len,
	    "\ngcmond_decode_errors_total 4\n", 30));
	ck_assert_ptr_nonnull(memmem(out, len,
	    "\ngcmond_refused_peers_total 5\n", 30));
	ck_assert_ptr_nonnull(memmem(out, len,
	    "\ngcmond_resident_memory_bytes 6000\n", 35));
	ck_assert_ptr_nonnull(memmem(out, len, "\ngcmond_shared_areas 7\n", 23));
	ck_assert_ptr_nonnull(memmem(out, len,
	    "\ngcmond_shared_areas_refused_total 8\n", 37));
	ck_assert_ptr_nonnull(memmem(out, len,
	    "\ngcmond_shared_areas_broken_total 9\n", 36));
	free(out);
	metrics_free(m);
	agg_free(a);
}
END_TEST

START_TEST(test_service_label_escaped)
{
	struct agg *a = agg_new(&cfg);
	struct metrics *m = metrics_new(NULL);
	struct agg_proc *p;
	char *t;

	metrics_watch(m, a);
	p = add(a, 5, "h", ORIGIN_ROOT, 0);
	ck_assert_ptr_nonnull(p->service = strdup("a\"b\\c\nd"));
	t = render(m, a, METRICS_PROMETHEUS);
	ck_assert_ptr_nonnull(strstr(t, "{service=\"a\\\"b\\\\c\\nd\","));
	free(t);
	metrics_free(m);
	agg_free(a);
}
END_TEST

START_TEST(test_per_process_only_when_asked_and_capped)
{
	struct agg *a = agg_new(&cfg);
	struct metrics_config mc = { .per_process = 2 };
	struct metrics *m = metrics_new(&mc);
	struct agg_proc *p;
	const char *s;
	char *t;
	unsigned i, n = 0;

	metrics_watch(m, a);
	for (i = 0; i < 5; i++) {
		p = add(a, 20 + i, "h", ORIGIN_FORK, 0);
		count(a, p, 1, 0, 1000 * (i + 1));
	}
	t = render(m, a, METRICS_PROMETHEUS);
	for (s = t; (s = strstr(s, "\ncpython_gc_process_pause_max_seconds{"))
	    != NULL; s++)
		n++;
	ck_assert_uint_eq(n, 2 * 3);		/* 2 processes x 3 gens */
	ck_assert_ptr_nonnull(strstr(t, "pid=\"20\",generation=\"0\"} 1e-06\n"));
	ck_assert_ptr_null(strstr(t, "pid=\"22\""));
	free(t);
	metrics_free(m);
	agg_free(a);
}
END_TEST

/* One request of p on route id (its name set first), gc_ns of GC. */
static void request_of(struct agg_proc *p, uint16_t id, const char *name,
    uint64_t gc_ns)
{
	struct shm_request r;

	if (id != 0)
		ck_assert_int_eq(requests_set_route(p, id, name), 0);
	memset(&r, 0, sizeof r);
	r.start_ns = 1000000;
	r.end_ns = 9000000;
	r.route_id = id;
	r.status = 200;
	r.gc_ns = gc_ns;
	r.ngc = gc_ns > 0;
	ck_assert_int_eq(requests_add(p, &r, NULL), 0);
}

#define RQW GUNI ",role=\"worker\""

/* --metrics-routes 2: two workers name three routes between them; the
 * first two seen keep a series, the third counts as "other"; summed over
 * route, the unlabelled figures; a worker that ends leaves its part. */
START_TEST(test_route_label_bounded_and_sums_agree)
{
	struct agg *a = agg_new(&cfg);
	struct metrics_config mc = { .routes = 2 };
	struct metrics *m = metrics_new(&mc), *plain = metrics_new(NULL);
	struct agg *b = agg_new(&cfg);
	struct agg_proc *w1, *w2, *q1, *q2;
	struct proto_bye bye;
	char *t, *u;
	int pass;

	metrics_watch(m, a);
	metrics_watch(plain, b);
	a->now_real = b->now_real = 1700000000;
	w1 = add(a, 11, "r", ORIGIN_FORK, 0);
	w2 = add(a, 12, "r", ORIGIN_FORK, 0);
	q1 = add(b, 11, "r", ORIGIN_FORK, 0);
	q2 = add(b, 12, "r", ORIGIN_FORK, 0);
	for (pass = 0; pass < 2; pass++) {
		struct agg_proc *x1 = pass ? q1 : w1, *x2 = pass ? q2 : w2;

		request_of(x1, 1, "GET /a", 0);
		request_of(x1, 1, "GET /a", 3000000);
		request_of(x1, 2, "GET /b", 0);
		request_of(x2, 1, "GET /c", 2000000);	/* a third name */
		request_of(x2, 2, "GET /a", 0);
		request_of(x2, 0, NULL, 400000);		/* unnamed */
	}
	t = render(m, a, METRICS_OPENMETRICS);
	u = render(plain, b, METRICS_OPENMETRICS);
	ck_assert_ptr_null(strstr(u, "route="));
	ck_assert_double_eq(value(t, "cpython_gc_requests_total{" RQW
	    ",route=\"GET /a\"}"), 3);
	ck_assert_double_eq(value(t, "cpython_gc_requests_total{" RQW
	    ",route=\"GET /b\"}"), 1);
	ck_assert_double_eq(value(t, "cpython_gc_requests_total{" RQW
	    ",route=\"other\"}"), 2);
	ck_assert_ptr_null(strstr(t, "GET /c"));
	ck_assert_double_eq(value(t, "cpython_gc_requests_delayed_total{" RQW
	    ",route=\"other\"}"), 2);
	ck_assert_double_eq(value(t, "cpython_gc_request_delay_seconds_bucket{"
	    RQW ",route=\"other\",le=\"0.0005\"}"), 1);
	ck_assert_double_eq(value(t, "cpython_gc_request_delay_seconds_sum{"
	    RQW ",route=\"other\"}"), 0.0024);
	ck_assert_double_eq(value(u, "cpython_gc_requests_total{" RQW "}"), 6);
	ck_assert_double_eq(value(u, "cpython_gc_requests_delayed_total{" RQW
	    "}"), 3);
	ck_assert_double_eq(value(u, "cpython_gc_request_delay_seconds_bucket{"
	    RQW ",le=\"0.0025\"}"), 5);
	ck_assert_double_eq(value(t, "cpython_gc_request_delay_seconds_bucket{"
	    RQW ",route=\"GET /a\",le=\"0.0025\"}") + value(t,
	    "cpython_gc_request_delay_seconds_bucket{" RQW ",route=\"GET /b\","
	    "le=\"0.0025\"}") + value(t, "cpython_gc_request_delay_seconds_"
	    "bucket{" RQW ",route=\"other\",le=\"0.0025\"}"), 5);
	free(t);
	/* w1 ends and its run expires: nothing goes back. */
	memset(&bye, 0, sizeof bye);
	bye.mono_ns = 2000000000ull;
	agg_bye(a, w1, &bye);
	agg_disconnect(a, w1);
	agg_bye(a, w2, &bye);
	agg_disconnect(a, w2);
	a->now_real += 1000;
	ck_assert_uint_eq(agg_expire(a), 1);
	t = render(m, a, METRICS_OPENMETRICS);
	ck_assert_double_eq(value(t, "cpython_gc_requests_total{" RQW
	    ",route=\"GET /a\"}"), 3);
	ck_assert_double_eq(value(t, "cpython_gc_requests_total{" RQW
	    ",route=\"other\"}"), 2);
	ck_assert_double_eq(value(t, "cpython_gc_request_delay_seconds_count{"
	    RQW ",route=\"GET /b\"}"), 1);
	free(t);
	free(u);
	metrics_free(m);
	metrics_free(plain);
	agg_free(a);
	agg_free(b);
}
END_TEST

static const struct { double v; const char *want; } fmt_rows[] = {
	{ 1e-5, "1e-05" }, { 0.25, "0.25" }, { 10, "10" }, { 0.1, "0.1" },
	{ 0, "0" }, { 0.298350602, "0.298350602" }, { 1.0 / 0.0, "+Inf" },
	{ 123456789012.0, "123456789012" }, { 1.0 / 3.0, "0.3333333333333333" },
};

START_TEST(test_fmt_double_shortest_round_trip)
{
	char buf[32];

	ck_assert_str_eq(metrics_fmt_double(fmt_rows[_i].v, buf, sizeof buf),
	    fmt_rows[_i].want);
	if (fmt_rows[_i].v < 1e308)
		ck_assert(strtod(buf, NULL) == fmt_rows[_i].v);
}
END_TEST

static const struct { const char *accept; enum metrics_format want; }
    accept_rows[] = {
	{ NULL, METRICS_PROMETHEUS },
	{ "text/plain", METRICS_PROMETHEUS },
	{ "*/*", METRICS_PROMETHEUS },
	{ "application/openmetrics-text;version=1.0.0,application/"
	  "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;"
	  "q=0.5,*/*;q=0.1", METRICS_OPENMETRICS },
	{ "text/plain;q=0.9, application/openmetrics-text; version=1.0.0",
	  METRICS_OPENMETRICS },
	{ "application/openmetrics-text;q=0", METRICS_PROMETHEUS },
	{ "application/openmetrics-text; q=0.0, text/plain",
	  METRICS_PROMETHEUS },
};

START_TEST(test_negotiate_by_accept)
{
	ck_assert_int_eq(metrics_negotiate(accept_rows[_i].accept),
	    accept_rows[_i].want);
}
END_TEST

static const struct { const char *argv[8]; uint32_t argc; const char *want; }
    svc_rows[] = {
	{ { "/usr/bin/python3", "-m", "gunicorn", "-w", "4", "-b",
	    "127.0.0.1:8000", "app:app" }, 8, "gunicorn app:app" },
	{ { "/usr/bin/python3", "-u", "-X", "dev", "/srv/x.py", "a:1" }, 6,
	  "x.py" },
	{ { "python3.11", "-mflask", "run" }, 3, "flask" },
	{ { "/usr/bin/python3", "/usr/bin/gunicorn", "mod.wsgi:create()" },
	  3, "gunicorn mod.wsgi:create()" },
	{ { "/usr/bin/python3", "-c", "import x; x:y" }, 3, "python -c" },
	{ { "/usr/bin/python3" }, 1, "python" },
	{ { "uwsgi", "--http", ":8000", "--module", "app:app" }, 5,
	  "uwsgi app:app" },
	{ { "python3", "-m" }, 2, "python -m" },
};

START_TEST(test_service_from_argv)
{
	struct agg *a = agg_new(&cfg);
	struct proto_hello *h = malloc(sizeof *h);
	struct agg_proc *p = NULL;
	char buf[METRICS_SERVICE_MAX];
	int is_new;

	ck_assert_ptr_nonnull(h);
	*h = hello_of(7, "s", ORIGIN_ROOT, 0, svc_rows[_i].argv,
	    svc_rows[_i].argc);
	ck_assert_int_eq(agg_hello(a, h, &p, &is_new), 0);
	ck_assert_str_eq(service_name(p, buf, sizeof buf),
	    svc_rows[_i].want);
	free(h);
	agg_free(a);
}
END_TEST

static Suite *metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *t = tcase_create("metrics");

	tcase_add_test(t, test_counters_sum_workers_without_fork_baseline);
	tcase_add_test(t, test_counters_never_go_backwards);
	tcase_add_test(t, test_buckets_cumulative_and_end_at_count);
	tcase_add_test(t, test_formats_frame_and_name_counters);
	tcase_add_test(t, test_health_series_carry_their_values);
	tcase_add_test(t, test_service_label_escaped);
	tcase_add_test(t, test_per_process_only_when_asked_and_capped);
	tcase_add_test(t, test_route_label_bounded_and_sums_agree);
	tcase_add_loop_test(t, test_fmt_double_shortest_round_trip, 0,
	    (int)(sizeof fmt_rows / sizeof fmt_rows[0]));
	tcase_add_loop_test(t, test_negotiate_by_accept, 0,
	    (int)(sizeof accept_rows / sizeof accept_rows[0]));
	tcase_add_loop_test(t, test_service_from_argv, 0,
	    (int)(sizeof svc_rows / sizeof svc_rows[0]));
	tcase_set_timeout(t, 60);
	suite_add_tcase(s, t);
	return s;
}

UNIT_SUITE(metrics_suite, UNIT_FORK);
