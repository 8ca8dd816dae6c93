/*
 * check_hist.c: Check suite for common/hist.c: bucket layout, percentiles
 * within 1% of the exact order statistic on seeded random data, merge,
 * edge values, count_le, and the compact form
 * (equal to the full one, allocation failures, promotion, bytes held).
 * Run by `make check`;
 * it writes no file.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"
#include "unit.h"

#define NS_PER_MIN	60000000000ull
#define NSAMPLES	200000

static struct hist h1, h2, h3;
static uint64_t vals[NSAMPLES];

/* splitmix64, so every run draws the same samples. */
static uint64_t rng_state;

static uint64_t
rng_next(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double
rng_unit(void)		/* (0, 1) */
{
	return ((double)(rng_next() >> 11) + 0.5) / 9007199254740992.0;
}

static double
rng_normal(void)	/* Box-Muller */
{
	return sqrt(-2.0 * log(rng_unit())) * cos(2.0 * M_PI * rng_unit());
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t
clamp_ns(double v)
{
	if (v < 0)
		return 0;
	if (v > 10.0 * NS_PER_MIN)
		return 10 * NS_PER_MIN;
	return (uint64_t)v;
}

/* Distributions of pause times, 0 to 10 minutes. */
static uint64_t
draw(int dist)
{
	switch (dist) {
	case 0:			/* uniform over 0..10 min */
		return rng_next() % (10 * NS_PER_MIN + 1);
	case 1:			/* lognormal around 1 ms, long tail */
		return clamp_ns(1e6 * exp(2.0 * rng_normal()));
	case 2:			/* bimodal: young 50 us, full 20 ms */
		return rng_next() % 10 < 8 ? clamp_ns(5e4 + 5e3 * rng_normal()) :
		    clamp_ns(2e7 + 4e6 * rng_normal());
	case 3:			/* below and around the linear range */
		return rng_next() % 3000;
	default:		/* log-uniform 1 ns .. 10 min */
		return clamp_ns(exp(rng_unit() * log(10.0 * NS_PER_MIN)));
	}
}

static const char *const dist_names[] = {
	"uniform", "lognormal", "bimodal", "small", "log-uniform",
};

static uint64_t
exact_at(const uint64_t *sorted, size_t n, double p)
{
	double r = ceil(p / 100.0 * (double)n);
	size_t rank = r < 1 ? 1 : r > (double)n ? n : (size_t)r;

	return sorted[rank - 1];
}

START_TEST(test_percentiles_within_one_percent_of_exact)
{
	static const double ps[] = { 0, 0.1, 1, 5, 10, 25, 50, 66.6, 75, 90,
	    95, 99, 99.5, 99.9, 99.99, 100 };
	size_t i, n = NSAMPLES;

	rng_state = 0x5eed0000u + (uint64_t)_i;
	hist_init(&h1);
	for (i = 0; i < n; i++) {
		vals[i] = draw(_i);
		hist_record(&h1, vals[i]);
	}
	qsort(vals, n, sizeof(vals[0]), cmp_u64);
	ck_assert_uint_eq(h1.count, n);
	ck_assert_uint_eq(h1.min_ns, vals[0]);
	ck_assert_uint_eq(h1.max_ns, vals[n - 1]);
	for (i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		uint64_t want = exact_at(vals, n, ps[i]);
		uint64_t got = hist_percentile(&h1, ps[i]);
		uint64_t err = got > want ? got - want : want - got;

		ck_assert_msg(want < 1024 ? err <= 8 : err * 100 <= want,
		    "%s p%g: got %llu want %llu", dist_names[_i], ps[i],
		    (unsigned long long)got, (unsigned long long)want);
	}
}
END_TEST

/* The 1% proof rests on this: from 1024 ns on, a bucket is at most 1/64
 * of its lower bound wide; the buckets tile 0..UINT64_MAX. */
START_TEST(test_buckets_tile_and_are_narrow)
{
	uint64_t lo, hi, plo, phi;
	unsigned i;

	hist_bucket_range(0, &plo, &phi);
	ck_assert_uint_eq(plo, 0);
	ck_assert_uint_eq(phi, 15);
	for (i = 1; i < HIST_NBUCKETS; i++) {
		hist_bucket_range(i, &lo, &hi);
		ck_assert_uint_eq(lo, phi + 1);
		ck_assert_uint_le(lo, hi);
		ck_assert_uint_eq(hist_bucket_of(lo), i);
		ck_assert_uint_eq(hist_bucket_of(hi), i);
		if (i >= HIST_SUB && i < HIST_NBUCKETS - 1)
			ck_assert_uint_le((hi - lo + 1) * 64, lo);
		phi = hi;
	}
	ck_assert_uint_eq(phi, UINT64_MAX);
	hist_bucket_range(HIST_NBUCKETS + 5, &lo, &hi);
	ck_assert_uint_eq(hi, UINT64_MAX);
}
END_TEST

static const struct { uint64_t v; unsigned bucket; } edge_rows[] = {
	{ 0, 0 }, { 1, 0 }, { 15, 0 }, { 16, 1 }, { 1023, HIST_SUB - 1 },
	{ 1024, HIST_SUB }, { 1039, HIST_SUB }, { 1040, HIST_SUB + 1 },
	{ 2047, 2 * HIST_SUB - 1 }, { 2048, 2 * HIST_SUB },
	{ (1ull << 40) - 1, HIST_NBUCKETS - 1 }, { 1ull << 40, HIST_NBUCKETS - 1 },
	{ UINT64_MAX, HIST_NBUCKETS - 1 },
};

START_TEST(test_edge_values_land_in_their_buckets)
{
	ck_assert_uint_eq(hist_bucket_of(edge_rows[_i].v), edge_rows[_i].bucket);
	hist_init(&h1);
	hist_record(&h1, edge_rows[_i].v);
	ck_assert_uint_eq(h1.bucket[edge_rows[_i].bucket], 1);
	/* one value: every percentile is that value */
	ck_assert_uint_eq(hist_percentile(&h1, 0), edge_rows[_i].v);
	ck_assert_uint_eq(hist_percentile(&h1, 50), edge_rows[_i].v);
	ck_assert_uint_eq(hist_percentile(&h1, 100), edge_rows[_i].v);
}
END_TEST

START_TEST(test_edge_values_together)
{
	static const uint64_t v[] = { 0, 1, 1023, 1024, UINT64_MAX };
	unsigned i;

	hist_init(&h1);
	for (i = 0; i < 5; i++)
		hist_record(&h1, v[i]);
	ck_assert_uint_eq(h1.count, 5);
	ck_assert_uint_eq(h1.min_ns, 0);
	ck_assert_uint_eq(h1.max_ns, UINT64_MAX);
	ck_assert_uint_eq(h1.sum_ns, UINT64_MAX);	/* saturated */
	ck_assert_uint_eq(hist_percentile(&h1, 0), 0);
	ck_assert_uint_eq(hist_percentile(&h1, 20), 0);
	ck_assert_uint_le(hist_percentile(&h1, 40), 8);	/* 1, within 8 ns */
	ck_assert_uint_ge(hist_percentile(&h1, 60), 1015);
	ck_assert_uint_le(hist_percentile(&h1, 60), 1023);
	ck_assert_uint_ge(hist_percentile(&h1, 80), 1024);
	ck_assert_uint_le(hist_percentile(&h1, 80), 1024 + 10);
	ck_assert_uint_eq(hist_percentile(&h1, 100), UINT64_MAX);
}
END_TEST

START_TEST(test_values_above_range_keep_exact_max)
{
	hist_init(&h1);
	hist_record(&h1, 1ull << 41);
	hist_record(&h1, 1ull << 42);
	hist_record(&h1, 1ull << 43);
	ck_assert_uint_eq(h1.bucket[HIST_NBUCKETS - 1], 3);
	ck_assert_uint_eq(hist_percentile(&h1, 100), 1ull << 43);
	ck_assert_uint_eq(hist_percentile(&h1, 1), 1ull << 41);
	/* the middle one is somewhere in [min, max] */
	ck_assert_uint_ge(hist_percentile(&h1, 50), 1ull << 41);
	ck_assert_uint_le(hist_percentile(&h1, 50), 1ull << 43);
}
END_TEST

/* A bucket's midpoint can lie outside the recorded values. */
START_TEST(test_percentile_clamps_midpoint_to_min_and_max)
{
	hist_init(&h1);
	hist_record(&h1, 1024);
	hist_record(&h1, 1025);
	hist_record(&h1, 1030);		/* bucket [1024, 1039], mid 1032 */
	ck_assert_uint_eq(hist_percentile(&h1, 50), 1030);
	hist_init(&h1);
	hist_record(&h1, 1037);
	hist_record(&h1, 1038);
	hist_record(&h1, 1039);
	ck_assert_uint_eq(hist_percentile(&h1, 50), 1037);
}
END_TEST

/* calloc'd memory is an empty histogram: hist_init's, and it records
 * and takes merges the same; merging an empty one changes nothing. */
START_TEST(test_zero_memory_is_empty)
{
	struct hist *z = calloc(1, sizeof *z), *m = calloc(1, sizeof *m);
	uint64_t v;

	ck_assert_ptr_nonnull(z);
	ck_assert_ptr_nonnull(m);
	hist_init(&h1);
	ck_assert_int_eq(memcmp(z, &h1, sizeof h1), 0);
	ck_assert_uint_eq(hist_percentile(z, 50), 0);
	ck_assert_uint_eq(hist_count_le(z, UINT64_MAX), 0);
	for (v = 7; v < 5000000; v = v * 3 + 7) {
		hist_record(&h1, v);
		hist_record(z, v);
	}
	ck_assert_int_eq(memcmp(z, &h1, sizeof h1), 0);
	ck_assert_uint_eq(z->min_ns, 7);
	hist_merge(m, z);			/* into an empty one */
	ck_assert_int_eq(memcmp(m, z, sizeof *z), 0);
	hist_init(&h2);
	hist_merge(m, &h2);			/* an empty one in */
	ck_assert_int_eq(memcmp(m, z, sizeof *z), 0);
	hist_record(&h2, 3);
	hist_merge(m, &h2);
	ck_assert_uint_eq(m->min_ns, 3);
	ck_assert_uint_eq(m->count, z->count + 1);
	free(m);
	free(z);
}
END_TEST

START_TEST(test_empty_histogram_reports_zero)
{
	hist_init(&h1);
	ck_assert_uint_eq(h1.count, 0);
	ck_assert_uint_eq(hist_percentile(&h1, 50), 0);
	ck_assert(hist_mean(&h1) == 0.0);
	ck_assert_uint_eq(hist_count_le(&h1, UINT64_MAX), 0);
}
END_TEST

START_TEST(test_percentile_clamps_p)
{
	unsigned i;

	hist_init(&h1);
	for (i = 1; i <= 100; i++)
		hist_record(&h1, i * 10000ull);
	ck_assert_uint_eq(hist_percentile(&h1, -5), 10000);
	ck_assert_uint_eq(hist_percentile(&h1, NAN), 10000);
	ck_assert_uint_eq(hist_percentile(&h1, 150), 1000000);
	ck_assert_uint_eq(hist_percentile(&h1, INFINITY), 1000000);
}
END_TEST

/* Buckets disagreeing with count (a corrupt in-memory struct) still give
 * a value in [min, max] rather than reading past the array. */
START_TEST(test_percentile_survives_inconsistent_counts)
{
	hist_init(&h1);
	hist_record(&h1, 5000);
	hist_record(&h1, 9000);
	h1.count = 10;
	ck_assert_uint_eq(hist_percentile(&h1, 50), 9000);
}
END_TEST

START_TEST(test_mean_is_sum_over_count)
{
	hist_init(&h1);
	hist_record(&h1, 1000);
	hist_record(&h1, 2000);
	hist_record(&h1, 6000);
	ck_assert(fabs(hist_mean(&h1) - 3000.0) < 1e-9);
}
END_TEST

START_TEST(test_merge_equals_recording_all_in_one)
{
	size_t i;

	rng_state = 99;
	hist_init(&h1);
	hist_init(&h2);
	hist_init(&h3);
	for (i = 0; i < 50000; i++) {
		uint64_t v = draw((int)(i % 5));

		hist_record(i % 3 ? &h1 : &h2, v);
		hist_record(&h3, v);
	}
	hist_merge(&h1, &h2);
	ck_assert(memcmp(&h1, &h3, sizeof(h1)) == 0);
}
END_TEST

START_TEST(test_merge_with_empty)
{
	hist_init(&h1);
	hist_init(&h2);
	hist_record(&h2, 777);
	hist_merge(&h1, &h2);		/* into empty */
	ck_assert(memcmp(&h1, &h2, sizeof(h1)) == 0);
	hist_init(&h3);
	hist_merge(&h1, &h3);		/* empty into something */
	ck_assert(memcmp(&h1, &h2, sizeof(h1)) == 0);
}
END_TEST

START_TEST(test_merge_saturates_sum)
{
	hist_init(&h1);
	hist_init(&h2);
	hist_record(&h1, UINT64_MAX - 5);
	hist_record(&h2, 10);
	hist_merge(&h1, &h2);
	ck_assert_uint_eq(h1.sum_ns, UINT64_MAX);
	ck_assert_uint_eq(h1.count, 2);
	ck_assert_uint_eq(h1.min_ns, 10);
}
END_TEST

START_TEST(test_count_le_exact_at_bucket_edges)
{
	uint64_t lo, hi, exact;
	size_t i, n = 20000, k = 0;
	unsigned b;

	rng_state = 1234;
	hist_init(&h1);
	for (i = 0; i < n; i++) {
		vals[i] = draw(4);
		hist_record(&h1, vals[i]);
	}
	qsort(vals, n, sizeof(vals[0]), cmp_u64);
	for (b = 0; b < HIST_NBUCKETS - 1; b++) {
		hist_bucket_range(b, &lo, &hi);
		while (k < n && vals[k] <= hi)
			k++;
		ck_assert_uint_eq(hist_count_le(&h1, hi), k);
		/* inside a bucket: between the counts at its two edges */
		exact = hist_count_le(&h1, lo + (hi - lo) / 2);
		ck_assert_uint_le(exact, k);
		ck_assert_uint_ge(exact + h1.bucket[b], k);
	}
	ck_assert_uint_eq(hist_count_le(&h1, vals[0] - (vals[0] > 0)),
	    vals[0] > 0 ? 0 : 1);
	ck_assert_uint_eq(hist_count_le(&h1, vals[n - 1]), n);
	ck_assert_uint_eq(hist_count_le(&h1, UINT64_MAX), n);
}
END_TEST

START_TEST(test_count_le_below_min_is_zero)
{
	hist_init(&h1);
	hist_record(&h1, 5000);
	hist_record(&h1, 7000);
	ck_assert_uint_eq(hist_count_le(&h1, 4999), 0);
	ck_assert_uint_le(hist_count_le(&h1, 5000), 1);	/* mid-bucket */
	ck_assert_uint_eq(hist_count_le(&h1, 6000), 1);	/* empty bucket */
	ck_assert_uint_eq(hist_count_le(&h1, 7000), 2);
}
END_TEST

/* The compact form: same buckets as struct hist, so everything agrees. */

static const double cmp_ps[] = { 0, 0.1, 1, 10, 25, 50, 66.6, 75, 90, 99,
    99.5, 99.9, 99.99, 100 };

static void
assert_compact_is(const struct hist_compact *c, const struct hist *want)
{
	uint64_t v;
	size_t i;

	hist_init(&h3);
	hist_compact_add_to(&h3, c);
	ck_assert(memcmp(&h3, want, sizeof(h3)) == 0);	/* every bucket */
	ck_assert_uint_eq(c->count, want->count);
	ck_assert_uint_eq(c->sum_ns, want->sum_ns);
	ck_assert_uint_eq(c->min_ns, want->min_ns);
	ck_assert_uint_eq(c->max_ns, want->max_ns);
	for (i = 0; i < sizeof(cmp_ps) / sizeof(cmp_ps[0]); i++)
		ck_assert_uint_eq(hist_compact_percentile(c, 1, cmp_ps[i]),
		    hist_percentile(want, cmp_ps[i]));
	/* count_le at edges, inside buckets, below min and above max. */
	for (v = 1; v < (1ull << 42); v = v * 3 / 2 + 1)
		ck_assert_uint_eq(hist_compact_count_le(c, 1, v),
		    hist_count_le(want, v));
}

START_TEST(test_compact_equals_full_on_random_data)
{
	struct hist_compact c;
	size_t i;

	rng_state = 0xc0de0000u + (uint64_t)_i;
	hist_init(&h1);
	hist_compact_init(&c);
	for (i = 0; i < NSAMPLES; i++) {
		uint64_t v = draw(_i);

		hist_record(&h1, v);
		ck_assert_int_eq(hist_compact_record(&c, v), 0);
	}
	ck_assert_ptr_null(c.full);
	ck_assert_uint_eq(c.nlost, 0);
	assert_compact_is(&c, &h1);
	hist_compact_fini(&c);
}
END_TEST

/* Several compacts: their union's percentile and count_le, and adding
 * each to one struct hist, equal one struct hist that saw every value. */
START_TEST(test_compact_merge_equals_recording_all_in_one)
{
	struct hist_compact c[3];
	size_t i;
	unsigned k;

	rng_state = 7;
	hist_init(&h1);
	for (k = 0; k < 3; k++)
		hist_compact_init(&c[k]);
	for (i = 0; i < 60000; i++) {
		uint64_t v = draw((int)(i % 5));

		ck_assert_int_eq(hist_compact_record(&c[i % 3 ? 0 : 1 + i % 2],
		    v), 0);
		hist_record(&h1, v);
	}
	hist_init(&h2);
	for (k = 0; k < 3; k++)
		hist_compact_add_to(&h2, &c[k]);
	ck_assert(memcmp(&h1, &h2, sizeof(h1)) == 0);
	for (i = 0; i < sizeof(cmp_ps) / sizeof(cmp_ps[0]); i++)
		ck_assert_uint_eq(hist_compact_percentile(c, 3, cmp_ps[i]),
		    hist_percentile(&h1, cmp_ps[i]));
	/* And its values below each edge, inside buckets and on them. */
	for (i = 0; i < 2000; i++) {
		uint64_t v = i < 1000 ? draw((int)(i % 5)) :
		    (uint64_t)1 << (i % 40);

		ck_assert_uint_eq(hist_compact_count_le(c, 3, v),
		    hist_count_le(&h1, v));
	}
	for (k = 0; k < 3; k++)
		hist_compact_fini(&c[k]);
}
END_TEST

/* Compacts merged into a compact equal one struct hist that saw every
 * value; an empty one changes nothing. */
START_TEST(test_compact_merge_into_compact_is_exact)
{
	struct hist_compact c[3], d, e;
	size_t i;
	unsigned k;

	rng_state = 11 + (uint64_t)_i;
	hist_init(&h1);
	for (k = 0; k < 3; k++)
		hist_compact_init(&c[k]);
	hist_compact_init(&d);
	hist_compact_init(&e);
	for (i = 0; i < 40000; i++) {
		uint64_t v = draw((int)(i % 5));

		hist_record(&h1, v);
		ck_assert_int_eq(hist_compact_record(&c[i % 3], v), 0);
	}
	ck_assert_int_eq(hist_compact_merge(&d, &e), 0);	/* empty in */
	ck_assert_uint_eq(d.count, 0);
	ck_assert_uint_eq(hist_compact_bytes(&d), 0);
	for (k = 0; k < 3; k++)
		ck_assert_int_eq(hist_compact_merge(&d, &c[k]), 0);
	ck_assert_int_eq(hist_compact_merge(&d, &e), 0);	/* empty in */
	ck_assert_uint_eq(d.nlost, 0);
	assert_compact_is(&d, &h1);
	/* Into a promoted one, and from one. */
	ck_assert_int_eq(hist_compact_merge(&e, &c[0]), 0);
	e.chunk[0] = UINT32_MAX;		/* force a promotion */
	e.count += UINT32_MAX;
	ck_assert_int_eq(hist_compact_merge(&e, &c[0]), 0);
	ck_assert_ptr_nonnull(e.full);
	ck_assert_int_eq(hist_compact_merge(&d, &e), 0);
	ck_assert_uint_eq(d.count, h1.count + e.count);
	ck_assert_ptr_nonnull(d.full);
	for (k = 0; k < 3; k++)
		hist_compact_fini(&c[k]);
	hist_compact_fini(&d);
	hist_compact_fini(&e);
}
END_TEST

START_TEST(test_compact_empty_reports_zero_and_adds_nothing)
{
	struct hist_compact c[2];

	hist_compact_init(&c[0]);
	hist_compact_init(&c[1]);
	ck_assert_uint_eq(hist_compact_percentile(c, 2, 50), 0);
	ck_assert_uint_eq(hist_compact_percentile(c, 0, 50), 0);
	ck_assert_uint_eq(hist_compact_bytes(&c[0]), 0);
	hist_init(&h1);
	hist_init(&h2);
	hist_compact_add_to(&h1, &c[0]);
	ck_assert(memcmp(&h1, &h2, sizeof(h1)) == 0);
	/* An empty one beside a full one changes nothing. */
	ck_assert_int_eq(hist_compact_record(&c[1], 5000), 0);
	ck_assert_uint_eq(hist_compact_percentile(c, 2, 50), 5000);
	ck_assert_uint_eq(hist_compact_percentile(c, 2, 0), 5000);
	hist_compact_fini(&c[1]);
}
END_TEST

/* A chunk per octave touched, HIST_SUB u32 each; fini gives all back. */
START_TEST(test_compact_bytes_count_chunks)
{
	struct hist_compact c;
	const size_t chunk = HIST_SUB * sizeof(uint32_t);
	uint64_t v;

	hist_compact_init(&c);
	ck_assert_int_eq(hist_compact_record(&c, 3000), 0);
	ck_assert_uint_eq(hist_compact_bytes(&c), chunk);
	ck_assert_int_eq(hist_compact_record(&c, 3100), 0);	/* same octave */
	ck_assert_uint_eq(hist_compact_bytes(&c), chunk);
	/* Inserted before, after and between present chunks. */
	ck_assert_int_eq(hist_compact_record(&c, 10), 0);
	ck_assert_int_eq(hist_compact_record(&c, 1ull << 50), 0);
	ck_assert_int_eq(hist_compact_record(&c, 1000000), 0);
	ck_assert_uint_eq(hist_compact_bytes(&c), 4 * chunk);
	hist_init(&h1);
	hist_record(&h1, 3000);
	hist_record(&h1, 3100);
	hist_record(&h1, 10);
	hist_record(&h1, 1ull << 50);
	hist_record(&h1, 1000000);
	assert_compact_is(&c, &h1);
	/* Pauses from 1 us to 50 ms: the linear chunk (1000 ns is below
	 * 1024) and the 16 octaves 2^10..2^25 ns, 17 chunks, 4.25 KiB. */
	hist_compact_fini(&c);
	ck_assert_uint_eq(hist_compact_bytes(&c), 0);
	ck_assert_uint_eq(c.count, 0);
	ck_assert_uint_eq(hist_compact_percentile(&c, 1, 50), 0);
	for (v = 1000; v <= 50000000; v = v * 21 / 16)
		ck_assert_int_eq(hist_compact_record(&c, v), 0);
	ck_assert_uint_eq(hist_compact_bytes(&c), 17 * chunk);
	hist_compact_fini(&c);
}
END_TEST

/* The allocator hook: fail the n-th allocation from now on. */
static int alloc_fail_at = -1, alloc_calls;

static void *
alloc_failing(void *p, size_t n)
{
	if (alloc_fail_at >= 0 && alloc_calls++ >= alloc_fail_at)
		return NULL;
	return realloc(p, n);
}

/* Each allocation failed in turn: the histogram stays exact in count,
 * sum, min and max, counts what it lost, and its buckets hold exactly
 * the values recorded with 0. */
START_TEST(test_compact_allocation_failure_loses_only_detail)
{
	/* Chunks: A B C A D B D B; allocations in the order A B C D. */
	static const uint64_t v[] = { 3000, 10, 1ull << 45, 3000, 1000000,
	    20, 1000000, 5 };
	/* Allocation _i and all later ones fail: values lost. */
	static const uint64_t want_lost[] = { 8, 6, 3, 2, 0, 0 };
	struct hist_compact c;
	uint64_t lost = 0;
	size_t i;

	alloc_calls = 0;
	alloc_fail_at = _i;
	hist_compact_set_realloc(alloc_failing);
	hist_compact_init(&c);
	hist_init(&h1);
	hist_init(&h2);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int err = hist_compact_record(&c, v[i]);

		hist_record(&h2, v[i]);
		if (err == 0)
			hist_record(&h1, v[i]);
		else {
			ck_assert_int_eq(err, -ENOMEM);
			lost++;
		}
	}
	hist_compact_set_realloc(NULL);
	ck_assert_uint_eq(lost, want_lost[_i]);
	ck_assert_uint_eq(c.nlost, lost);
	ck_assert_uint_eq(c.count, h2.count);
	ck_assert_uint_eq(c.sum_ns, h2.sum_ns);
	ck_assert_uint_eq(c.min_ns, h2.min_ns);
	ck_assert_uint_eq(c.max_ns, h2.max_ns);
	hist_init(&h3);
	hist_compact_add_to(&h3, &c);
	ck_assert(memcmp(h3.bucket, h1.bucket, sizeof(h1.bucket)) == 0);
	ck_assert_uint_eq(h3.count, h2.count);
	/* Ranks beyond the buckets (lost values) answer max, as a struct
	 * hist whose buckets disagree with its count does. */
	for (i = 0; i < sizeof(cmp_ps) / sizeof(cmp_ps[0]); i++)
		ck_assert_uint_eq(hist_compact_percentile(&c, 1, cmp_ps[i]),
		    hist_percentile(&h3, cmp_ps[i]));
	/* With memory back, recording works again. */
	ck_assert_int_eq(hist_compact_record(&c, 3000), 0);
	ck_assert_uint_eq(c.nlost, lost);
	hist_compact_fini(&c);
	alloc_fail_at = -1;
}
END_TEST

/* A merge that cannot allocate stays exact in count, sum, min and max
 * and counts the values of the buckets it could not add as lost. */
START_TEST(test_compact_merge_allocation_failure_counts_lost)
{
	struct hist_compact src, dst;
	static const uint64_t v[] = { 10, 20, 3000, 3001, 1000000 };
	size_t i;

	hist_compact_init(&src);
	hist_compact_init(&dst);
	hist_init(&h1);
	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		ck_assert_int_eq(hist_compact_record(&src, v[i]), 0);
		hist_record(&h1, v[i]);
	}
	alloc_calls = 0;
	alloc_fail_at = 1;		/* the second chunk and later fail */
	hist_compact_set_realloc(alloc_failing);
	ck_assert_int_eq(hist_compact_merge(&dst, &src), -ENOMEM);
	ck_assert_int_eq(hist_compact_merge(&dst, &src), -ENOMEM);
	hist_compact_set_realloc(NULL);
	alloc_fail_at = -1;
	ck_assert_uint_eq(dst.count, 2 * h1.count);
	ck_assert_uint_eq(dst.sum_ns, 2 * h1.sum_ns);
	ck_assert_uint_eq(dst.min_ns, 10);
	ck_assert_uint_eq(dst.max_ns, 1000000);
	/* The first chunk (10, 20) made it each time, the rest did not. */
	ck_assert_uint_eq(dst.nlost, 2 * 3);
	hist_init(&h3);
	hist_compact_add_to(&h3, &dst);
	ck_assert_uint_eq(h3.bucket[hist_bucket_of(10)], 2);
	ck_assert_uint_eq(h3.bucket[hist_bucket_of(3000)], 0);
	hist_compact_fini(&src);
	hist_compact_fini(&dst);
}
END_TEST

/* A u32 counter never overflows: the histogram becomes a full one. */
START_TEST(test_compact_promotes_before_a_counter_overflows)
{
	struct hist_compact c;
	unsigned b = hist_bucket_of(3000);

	hist_compact_init(&c);
	ck_assert_int_eq(hist_compact_record(&c, 10), 0);
	ck_assert_int_eq(hist_compact_record(&c, 3000), 0);
	/* 2^32 - 2 more values of 3000, set directly rather than recorded. */
	c.chunk[HIST_SUB + b % HIST_SUB] = UINT32_MAX - 1;
	c.count += UINT32_MAX - 2;
	ck_assert_int_eq(hist_compact_record(&c, 3000), 0);
	ck_assert_ptr_null(c.full);
	ck_assert_uint_eq(c.chunk[HIST_SUB + b % HIST_SUB], UINT32_MAX);
	/* The 2^32nd value: no memory for the full hist, the value is lost. */
	alloc_calls = 0;
	alloc_fail_at = 0;
	hist_compact_set_realloc(alloc_failing);
	ck_assert_int_eq(hist_compact_record(&c, 3000), -ENOMEM);
	ck_assert_uint_eq(c.nlost, 1);
	ck_assert_ptr_null(c.full);
	hist_compact_set_realloc(NULL);
	alloc_fail_at = -1;
	ck_assert_int_eq(hist_compact_record(&c, 3000), 0);
	ck_assert_ptr_nonnull(c.full);
	ck_assert_ptr_null(c.chunk);
	ck_assert_uint_eq(hist_compact_bytes(&c), sizeof(struct hist));
	ck_assert_uint_eq(c.full->bucket[b], (uint64_t)UINT32_MAX + 1);
	ck_assert_uint_eq(c.full->bucket[hist_bucket_of(10)], 1);
	/* Recording and merging go on in the full hist, exactly. */
	ck_assert_int_eq(hist_compact_record(&c, 1ull << 30), 0);
	hist_init(&h1);
	hist_compact_add_to(&h1, &c);
	ck_assert_uint_eq(h1.bucket[b], (uint64_t)UINT32_MAX + 1);
	ck_assert_uint_eq(h1.bucket[hist_bucket_of(1ull << 30)], 1);
	ck_assert_uint_eq(h1.count, (uint64_t)UINT32_MAX + 4);
	ck_assert_uint_eq(hist_compact_percentile(&c, 1, 50),
	    hist_percentile(&h1, 50));
	hist_compact_fini(&c);
	ck_assert_ptr_null(c.full);
}
END_TEST

static Suite *
hist_suite(void)
{
	Suite *s = suite_create("hist");
	TCase *tc;

	tc = tcase_create("accuracy");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_percentiles_within_one_percent_of_exact, 0,
	    (int)(sizeof(dist_names) / sizeof(dist_names[0])));
	tcase_add_test(tc, test_buckets_tile_and_are_narrow);
	tcase_add_loop_test(tc, test_edge_values_land_in_their_buckets, 0,
	    (int)(sizeof(edge_rows) / sizeof(edge_rows[0])));
	tcase_add_test(tc, test_edge_values_together);
	tcase_add_test(tc, test_values_above_range_keep_exact_max);
	tcase_add_test(tc, test_percentile_clamps_midpoint_to_min_and_max);
	tcase_add_test(tc, test_zero_memory_is_empty);
	tcase_add_test(tc, test_empty_histogram_reports_zero);
	tcase_add_test(tc, test_percentile_clamps_p);
	tcase_add_test(tc, test_percentile_survives_inconsistent_counts);
	tcase_add_test(tc, test_mean_is_sum_over_count);
	suite_add_tcase(s, tc);

	tc = tcase_create("merge_and_count");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_merge_equals_recording_all_in_one);
	tcase_add_test(tc, test_merge_with_empty);
	tcase_add_test(tc, test_merge_saturates_sum);
	tcase_add_test(tc, test_count_le_exact_at_bucket_edges);
	tcase_add_test(tc, test_count_le_below_min_is_zero);
	suite_add_tcase(s, tc);

	tc = tcase_create("compact");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_compact_equals_full_on_random_data, 0,
	    (int)(sizeof(dist_names) / sizeof(dist_names[0])));
	tcase_add_test(tc, test_compact_merge_equals_recording_all_in_one);
	tcase_add_loop_test(tc, test_compact_merge_into_compact_is_exact, 0, 3);
	tcase_add_test(tc, test_compact_merge_allocation_failure_counts_lost);
	tcase_add_test(tc, test_compact_empty_reports_zero_and_adds_nothing);
	tcase_add_test(tc, test_compact_bytes_count_chunks);
	tcase_add_loop_test(tc, test_compact_allocation_failure_loses_only_detail,
	    0, 6);
	tcase_add_test(tc, test_compact_promotes_before_a_counter_overflows);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(hist_suite, UNIT_NOFORK_UNDER_ASAN);
