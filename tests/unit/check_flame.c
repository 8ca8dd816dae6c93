/*
 * check_flame.c: Check suite for client/flame.c, pygcprofiler's flame
 * graph rows: far-off event times are skipped without an out-of-range
 * cast, the row array never grows past PGP_MAX_FLAME_ROWS, and the folded
 * file says what was added. Run by make check; writes one temp file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgp.h"
#include "unit.h"

static struct pgp_opts opts;
static struct pgp_run run;

static void flame_setup(void)
{
	memset(&opts, 0, sizeof opts);
	opts.flame_bucket_s = 1.0;
	opts.buckets[0] = 1;
	opts.buckets[1] = 5;
	opts.nbuckets = 2;
	memset(&run, 0, sizeof run);
	run.o = &opts;
	run.start_real = 1000.0;
}

static void flame_teardown(void)
{
	free(run.flame);
}

START_TEST(test_flame_far_off_time_is_skipped)
{
	flame_add(&run, 1e300, 0, 0, 1.0);
	ck_assert_uint_eq(run.flame_skipped, 1);
	ck_assert_uint_eq(run.nflame, 0);
}
END_TEST

START_TEST(test_flame_rows_never_exceed_the_cap)
{
	flame_add(&run, run.start_real + 15000.5, 0, 0, 1.0);
	ck_assert_uint_eq(run.nflame, 15001);
	/* Doubling would reach 30002 rows. */
	flame_add(&run, run.start_real + 15001.5, 1, 2, 2.0);
	ck_assert_uint_eq(run.nflame, PGP_MAX_FLAME_ROWS);
	flame_add(&run, run.start_real + PGP_MAX_FLAME_ROWS - 0.5, 0, 0, 1.0);
	ck_assert_uint_eq(run.flame_skipped, 0);
	ck_assert(run.flame[PGP_MAX_FLAME_ROWS - 1].ms[0][0] == 1.0);
	flame_add(&run, run.start_real + PGP_MAX_FLAME_ROWS + 0.5, 0, 0, 1.0);
	ck_assert_uint_eq(run.flame_skipped, 1);
	ck_assert_uint_eq(run.nflame, PGP_MAX_FLAME_ROWS);
}
END_TEST

START_TEST(test_flame_file_has_one_folded_line_per_cell)
{
	char path[] = "/tmp/check_flame-XXXXXX", text[256];
	size_t n;
	FILE *f;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	close(fd);
	run.ngen_seen = 3;
	flame_add(&run, run.start_real + 0.2, 0, 0, 0.5);
	flame_add(&run, run.start_real + 0.3, 1, 0, 0.0004);	/* 0.4 us: 1 */
	flame_add(&run, run.start_real + 2.4, 0, 0, 1.0006);	/* rounds up */
	flame_add(&run, run.start_real + 2.5, 2, 2, 7.25);
	ck_assert_int_eq(flame_write_file(&run, path), 0);
	f = fopen(path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof text - 1, f);
	text[n] = '\0';
	fclose(f);
	unlink(path);
	ck_assert_str_eq(text, "T+0s;Gen 0;<1ms 500\nT+0s;Gen 1;<1ms 1\n"
	    "T+2s;Gen 0;<1ms 1001\nT+2s;Gen 2;>=5ms 7250\n");
}
END_TEST

static Suite *flame_suite(void)
{
	Suite *s = suite_create("flame");
	TCase *tc = tcase_create("flame");

	tcase_add_checked_fixture(tc, flame_setup, flame_teardown);
	tcase_add_test(tc, test_flame_far_off_time_is_skipped);
	tcase_add_test(tc, test_flame_rows_never_exceed_the_cap);
	tcase_add_test(tc, test_flame_file_has_one_folded_line_per_cell);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(flame_suite, UNIT_FORK);
