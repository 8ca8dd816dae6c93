/*
 * hist.h: the pause histogram. Log-linear buckets (HdrHistogram-like):
 * below 1024 ns, 64 linear buckets of 16 ns; from 2^10 ns (1.02 us) to
 * 2^40 ns (18.3 minutes), 64 buckets per power of two, so any percentile
 * is reported within 1% of the recorded value (the bucket midpoint is at
 * most 1/128 of its value away; below 1024 ns, within 8 ns). Larger values land in the last bucket
 * and are still exact in max and sum. Fixed size, no allocation, no I/O;
 * mergeable (process -> run -> host) and serializable (sparse, for the
 * wire or a file).
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
	uint64_t min_ns;	/* UINT64_MAX while empty */
	uint64_t max_ns;
	uint64_t bucket[HIST_NBUCKETS];
};

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

/* Sparse little-endian serialization. hist_serialize returns the bytes
 * written, or 0 if cap is too small (HIST_SERIAL_MAX always suffices).
 * hist_deserialize returns 0 or -EBADMSG/-EPROTO for a bad buffer and
 * never reads outside [buf, buf + len); on error *h is unchanged.
 * Layout: u32 magic 0x67636801 ("gch", format 1), u64 count, u64 sum_ns,
 * u64 min_ns, u64 max_ns, then one (u16 bucket index, u64 count) pair per
 * nonempty bucket in increasing index order, to the end of the buffer.
 * -EBADMSG: shorter than 36 bytes or a partial pair; -EPROTO: another
 * magic, an index out of range or not increasing, a zero count, counts
 * not adding up to count, min/max not in the first/last bucket. */
#define HIST_SERIAL_MAX		(4 + 32 + HIST_NBUCKETS * 10)
size_t hist_serialize(const struct hist *h, uint8_t *buf, size_t cap);
int hist_deserialize(struct hist *h, const uint8_t *buf, size_t len);

#endif /* GCMON_HIST_H */
