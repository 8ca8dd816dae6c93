/*
 * hist.h: the pause histogram. Log-linear buckets (HdrHistogram-like):
 * below 1024 ns, 64 linear buckets of 16 ns; from 2^10 ns (1.02 us) to
 * 2^40 ns (18.3 minutes), 64 buckets per power of two, so any percentile
 * is reported within 1% of the recorded value (the bucket midpoint is at
 * most 1/128 of its value away; below 1024 ns, within 8 ns). Larger values land in the last bucket
 * and are still exact in max and sum. Fixed size, no allocation, no I/O;
 * mergeable (process -> run -> host).
 */
#ifndef GCMON_HIST_H
#define GCMON_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS		6
#define HIST_SUB		(1u << HIST_SUB_BITS)	/* buckets per octave */
#define HIST_MIN_SHIFT		10			/* 1024 ns */
#define HIST_MAX_SHIFT		40			/* 2^40 ns */
#define HIST_NBUCKETS \
	(HIST_SUB + (HIST_MAX_SHIFT - HIST_MIN_SHIFT) * HIST_SUB)

struct hist {
	uint64_t count;
	uint64_t sum_ns;	/* saturates at UINT64_MAX (584 years) */
	uint64_t min_ns;	/* meaningless while count is 0 */
	uint64_t max_ns;
	uint64_t bucket[HIST_NBUCKETS];
};

/* Empty is all zero: a calloc'd histogram needs no init, and its pages
 * stay untouched until a value (recorded or merged) lands in them (each
 * first touch of a page is a page fault). */
void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v_ns);
/* dst += src; dst may not be src. */
void hist_merge(struct hist *dst, const struct hist *src);
/* Value at percentile p (0..100): within 1% of the exact order
 * statistic for values in range, clamped to [min, max]; 0 if empty. */
uint64_t hist_percentile(const struct hist *h, double p);
/* Mean in ns, 0 if empty. */
double hist_mean(const struct hist *h);
/* Number of recorded values <= v_ns, exact at bucket edges, approximate
 * (within one bucket) elsewhere; for the --duration-buckets table. */
uint64_t hist_count_le(const struct hist *h, uint64_t v_ns);

/* Bucket index of a value, and the [lo, hi] range of values it holds. */
unsigned hist_bucket_of(uint64_t v_ns);
void hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi);

/*
 * The compact histogram: a process's histogram in gcmond, where a live
 * process must cost a few KiB, not the 15.9 KB of a struct hist. Same
 * buckets as struct hist (so hist_compact_add_to is exact), grouped in
 * HIST_NCHUNKS chunks of HIST_SUB u32 counters (chunk 0: the linear
 * buckets below 1024 ns; chunk c >= 1: the octave 2^(9+c) ns). A chunk
 * is allocated when its first value arrives; the present chunks live in
 * one array, in chunk order (chunk_mask says which are present), so a
 * process whose pauses span 16 octaves holds 16 x 256 bytes.
 *
 * A u32 counter about to overflow (2^32 values in one bucket) promotes
 * the histogram to a full struct hist (u64 counters, 15.9 KB): nothing
 * is ever saturated or approximated. An allocation that fails returns
 * -ENOMEM; that value is still exact in count, sum, min and max, and is
 * counted in nlost (it is in no bucket, so percentiles see it only
 * through count and max: hist_percentile answers max for ranks beyond
 * the buckets).
 */
#define HIST_NCHUNKS		(HIST_NBUCKETS / HIST_SUB)	/* 31 */

struct hist_compact {
	uint64_t count;		/* every value, also the lost ones */
	uint64_t sum_ns;	/* saturates, as in struct hist */
	uint64_t min_ns;	/* meaningless while count is 0 */
	uint64_t max_ns;
	uint64_t nlost;		/* values in no bucket (allocation failed) */
	uint32_t chunk_mask;	/* bit c set: chunk c is in chunk[] */
	uint32_t *chunk;	/* popcount(chunk_mask) x HIST_SUB counters */
	struct hist *full;	/* after promotion: its buckets; chunk NULL */
};

void hist_compact_init(struct hist_compact *h);
/* Frees what h holds; h is then empty, as after hist_compact_init. */
void hist_compact_fini(struct hist_compact *h);
/* 0, or -ENOMEM: the value counts in count/sum/min/max and nlost. */
int hist_compact_record(struct hist_compact *h, uint64_t v_ns);
/* dst += src, exactly (dst->count also counts src's lost values). */
void hist_compact_add_to(struct hist *dst, const struct hist_compact *src);
/* dst += src (dst may not be src): 0, or -ENOMEM, when the values of
 * a bucket that could not be allocated count in dst->nlost (dst stays
 * exact in count, sum, min and max). */
int hist_compact_merge(struct hist_compact *dst,
    const struct hist_compact *src);
/* hist_mean of h added to an empty struct hist, without the hist. */
double hist_compact_mean(const struct hist_compact *h);
/* Values <= v_ns in the union of h[0..n-1]: what hist_count_le gives
 * for them all added to one struct hist. */
uint64_t hist_compact_count_le(const struct hist_compact *h, unsigned n,
    uint64_t v_ns);
/* Percentile p of the union of the n histograms h[0..n-1]: the value
 * hist_percentile gives for them all added to one struct hist. */
uint64_t hist_compact_percentile(const struct hist_compact *h, unsigned n,
    double p);
/* Heap bytes h holds (chunks or the promoted hist), not sizeof(*h). */
size_t hist_compact_bytes(const struct hist_compact *h);
/*
 * The allocator of chunks and promoted hists, for tests that make
 * allocations fail (as jansson's json_set_alloc_funcs): realloc
 * semantics, and what it returns must be freeable by free(). NULL
 * restores realloc. Global: set it before any histogram exists.
 */
void hist_compact_set_realloc(void *(*fn)(void *, size_t));

#endif /* GCMON_HIST_H */
