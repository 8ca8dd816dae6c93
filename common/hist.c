/*
 * hist.c: the log-linear pause histogram declared in hist.h; gcmond
 * (agg.c) records and merges it and reads percentiles from it. struct
 * hist is fixed size: it must never allocate or do I/O. struct
 * hist_compact (gcmond's per-process form) allocates its chunks, and
 * nothing else.
 *
 * Why 1%: a value v >= 1024 in octave [2^e, 2^(e+1)) lands in a bucket of
 * width w = 2^(e-6) starting at lo >= 2^e, and the bucket is reported by
 * lo + w/2, so the error is at most w/2 <= v/128 (0.79%). Below 1024 ns
 * the buckets are 16 ns wide, so the error is at most 8 ns there.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

#define HIST_LINEAR_SHIFT	4		/* 16 ns below 1024 */

void
hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

static unsigned
hist_log2(uint64_t v)
{
	return 63u - (unsigned)__builtin_clzll(v);
}

unsigned
hist_bucket_of(uint64_t v_ns)
{
	unsigned e;

	if (v_ns < (1u << HIST_MIN_SHIFT))
		return (unsigned)(v_ns >> HIST_LINEAR_SHIFT);
	e = hist_log2(v_ns);
	if (e >= HIST_MAX_SHIFT)
		return HIST_NBUCKETS - 1;
	return HIST_SUB + (e - HIST_MIN_SHIFT) * HIST_SUB +
	    (unsigned)((v_ns >> (e - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

void
hist_bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
	unsigned e, sub;
	uint64_t w;

	if (i >= HIST_NBUCKETS)
		i = HIST_NBUCKETS - 1;
	if (i < HIST_SUB) {
		*lo = (uint64_t)i << HIST_LINEAR_SHIFT;
		*hi = *lo + (1u << HIST_LINEAR_SHIFT) - 1;
		return;
	}
	e = HIST_MIN_SHIFT + (i - HIST_SUB) / HIST_SUB;
	sub = (i - HIST_SUB) % HIST_SUB;
	w = (uint64_t)1 << (e - HIST_SUB_BITS);
	*lo = ((uint64_t)1 << e) + sub * w;
	/* The last bucket also holds everything above 2^40 ns. */
	*hi = i == HIST_NBUCKETS - 1 ? UINT64_MAX : *lo + w - 1;
}

static uint64_t
hist_add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Count, sum, min and max of struct hist and hist_compact alike: n more
 * values (n > 0) of sum sum_ns, min min_ns and max max_ns. */
static void
hist_head_add(uint64_t *count, uint64_t *sum_ns, uint64_t *min_ns,
    uint64_t *max_ns, uint64_t n, uint64_t sum, uint64_t min, uint64_t max)
{
	if (*count == 0 || min < *min_ns)
		*min_ns = min;
	*count += n;
	*sum_ns = hist_add_sat(*sum_ns, sum);
	if (max > *max_ns)
		*max_ns = max;
}

static void
hist_head_record(uint64_t *count, uint64_t *sum_ns, uint64_t *min_ns,
    uint64_t *max_ns, uint64_t v_ns)
{
	hist_head_add(count, sum_ns, min_ns, max_ns, 1, v_ns, v_ns, v_ns);
}

void
hist_record(struct hist *h, uint64_t v_ns)
{
	hist_head_record(&h->count, &h->sum_ns, &h->min_ns, &h->max_ns, v_ns);
	h->bucket[hist_bucket_of(v_ns)]++;
}

static uint64_t
hist_full_bucket(const void *ctx, unsigned i)
{
	return ((const struct hist *)ctx)->bucket[i];
}

/* dst += a histogram of count values (sum, min, max) whose bucket i
 * holds bucket(ctx, i): struct hist and hist_compact alike. */
static void
hist_add(struct hist *dst, uint64_t count, uint64_t sum_ns, uint64_t min_ns,
    uint64_t max_ns, uint64_t (*bucket)(const void *ctx, unsigned i),
    const void *ctx)
{
	uint64_t b;
	unsigned i;

	if (count == 0)
		return;
	hist_head_add(&dst->count, &dst->sum_ns, &dst->min_ns, &dst->max_ns,
	    count, sum_ns, min_ns, max_ns);
	/* Only the buckets src has: a fresh dst's pages stay untouched. */
	for (i = 0; i < HIST_NBUCKETS; i++)
		if ((b = bucket(ctx, i)) != 0)
			dst->bucket[i] += b;
}

void
hist_merge(struct hist *dst, const struct hist *src)
{
	hist_add(dst, src->count, src->sum_ns, src->min_ns, src->max_ns,
	    hist_full_bucket, src);
}

/* The value that represents bucket i: the middle of its nominal width
 * (the last bucket's nominal width, not its open end). */
static uint64_t
hist_bucket_mid(unsigned i)
{
	uint64_t lo, hi;

	hist_bucket_range(i, &lo, &hi);
	if (i == HIST_NBUCKETS - 1)
		return lo + ((uint64_t)1 << (HIST_MAX_SHIFT - 1 - HIST_SUB_BITS));
	return lo + (hi - lo + 1) / 2;
}

/* Nearest rank of percentile p among count values: the smallest rank
 * with at least p% at or below; count > 0. */
static uint64_t
hist_rank(uint64_t count, double p)
{
	double r;

	if (!(p > 0))			/* also NaN */
		p = 0;
	if (p > 100)
		p = 100;
	r = ceil(p / 100.0 * (double)count);
	return r < 1 ? 1 : r >= (double)count ? count : (uint64_t)r;
}

/* The value reported for bucket i, clamped to [min, max]. */
static uint64_t
hist_bucket_value(unsigned i, uint64_t min_ns, uint64_t max_ns)
{
	uint64_t v = hist_bucket_mid(i);

	if (v < min_ns)
		v = min_ns;
	if (v > max_ns)
		v = max_ns;
	return v;
}

/*
 * The one percentile walker: percentile p of count values in [min_ns,
 * max_ns] whose bucket i holds bucket(ctx, i) of them. Chunks (HIST_SUB
 * buckets) whose bit is clear in mask are known to be empty and skipped.
 */
static uint64_t
hist_walk(uint64_t count, uint64_t min_ns, uint64_t max_ns, double p,
    uint32_t mask, uint64_t (*bucket)(const void *ctx, unsigned i),
    const void *ctx)
{
	uint64_t rank, cum = 0;
	unsigned i;

	if (count == 0)
		return 0;
	rank = hist_rank(count, p);
	if (rank == 1)
		return min_ns;		/* the order statistics we know exactly */
	if (rank == count)
		return max_ns;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		if (!(mask & (1u << (i / HIST_SUB)))) {
			i += HIST_SUB - 1;
			continue;
		}
		cum += bucket(ctx, i);
		if (cum >= rank)
			return hist_bucket_value(i, min_ns, max_ns);
	}
	/* Buckets short of count (values lost to a failed allocation). */
	return max_ns;
}

uint64_t
hist_percentile(const struct hist *h, double p)
{
	return hist_walk(h->count, h->min_ns, h->max_ns, p, UINT32_MAX,
	    hist_full_bucket, h);
}

static double
hist_mean_of(uint64_t count, uint64_t sum_ns)
{
	return count == 0 ? 0.0 : (double)sum_ns / (double)count;
}

double
hist_mean(const struct hist *h)
{
	return hist_mean_of(h->count, h->sum_ns);
}

/* Values <= v_ns of a histogram whose bucket i holds bucket(ctx, i):
 * struct hist and hist_compact alike. */
static uint64_t
hist_le(uint64_t count, uint64_t min_ns, uint64_t max_ns,
    uint64_t (*bucket)(const void *ctx, unsigned i), const void *ctx,
    uint64_t v_ns)
{
	uint64_t lo, hi, n = 0;
	unsigned i, b;

	if (count == 0 || v_ns < min_ns)
		return 0;
	if (v_ns >= max_ns)
		return count;
	b = hist_bucket_of(v_ns);
	for (i = 0; i < b; i++)
		n += bucket(ctx, i);
	hist_bucket_range(b, &lo, &hi);
	/* The bucket's values also lie within [min, max]. */
	if (lo < min_ns)
		lo = min_ns;
	if (hi > max_ns)
		hi = max_ns;
	if (v_ns >= hi)
		return n + bucket(ctx, b);
	/* Inside a bucket: assume its values are spread evenly. */
	return n + (uint64_t)((double)bucket(ctx, b) *
	    ((double)(v_ns - lo + 1) / ((double)(hi - lo) + 1.0)));
}

uint64_t
hist_count_le(const struct hist *h, uint64_t v_ns)
{
	return hist_le(h->count, h->min_ns, h->max_ns, hist_full_bucket, h,
	    v_ns);
}

/* The compact histogram (hist.h says why and how). */

static void *(*hist_realloc)(void *, size_t) = realloc;

void
hist_compact_set_realloc(void *(*fn)(void *, size_t))
{
	hist_realloc = fn != NULL ? fn : realloc;
}

void
hist_compact_init(struct hist_compact *h)
{
	memset(h, 0, sizeof(*h));
}

void
hist_compact_fini(struct hist_compact *h)
{
	free(h->chunk);
	free(h->full);
	hist_compact_init(h);
}

/* Position of chunk c in h->chunk[] (whether present or not). */
static unsigned
hist_chunk_pos(const struct hist_compact *h, unsigned c)
{
	return (unsigned)__builtin_popcount(h->chunk_mask & ((1u << c) - 1));
}

/* Counter of bucket i, 0 where its chunk is absent. */
static uint64_t
hist_compact_bucket(const struct hist_compact *h, unsigned i)
{
	unsigned c = i / HIST_SUB;

	if (h->full != NULL)
		return h->full->bucket[i];
	if (!(h->chunk_mask & (1u << c)))
		return 0;
	return h->chunk[hist_chunk_pos(h, c) * HIST_SUB + i % HIST_SUB];
}

/* Inserts a zeroed chunk c. 0 or -ENOMEM (h unchanged). */
static int
hist_compact_add_chunk(struct hist_compact *h, unsigned c)
{
	unsigned n = (unsigned)__builtin_popcount(h->chunk_mask);
	unsigned pos = hist_chunk_pos(h, c);
	uint32_t *d;

	d = hist_realloc(h->chunk, (size_t)(n + 1) * HIST_SUB * sizeof(*d));
	if (d == NULL)
		return -ENOMEM;
	memmove(d + (pos + 1) * HIST_SUB, d + pos * HIST_SUB,
	    (size_t)(n - pos) * HIST_SUB * sizeof(*d));
	memset(d + pos * HIST_SUB, 0, HIST_SUB * sizeof(*d));
	h->chunk = d;
	h->chunk_mask |= 1u << c;
	return 0;
}

/* Moves the chunks' counts into a full struct hist. 0 or -ENOMEM. */
static int
hist_compact_promote(struct hist_compact *h)
{
	struct hist *f;
	unsigned i;

	if ((f = hist_realloc(NULL, sizeof(*f))) == NULL)
		return -ENOMEM;
	memset(f, 0, sizeof(*f));
	for (i = 0; i < HIST_NBUCKETS; i++)
		f->bucket[i] = hist_compact_bucket(h, i);
	free(h->chunk);
	h->chunk = NULL;
	h->chunk_mask = 0;
	h->full = f;
	return 0;
}

/* n more values in bucket b of h (its head figures are the caller's):
 * 0, or -ENOMEM with h unchanged. */
static int
hist_compact_add_bucket(struct hist_compact *h, unsigned b, uint64_t n)
{
	unsigned c = b / HIST_SUB;
	uint32_t *slot;
	int err;

	if (h->full == NULL) {
		if (!(h->chunk_mask & (1u << c)) &&
		    (err = hist_compact_add_chunk(h, c)) < 0)
			return err;
		slot = &h->chunk[hist_chunk_pos(h, c) * HIST_SUB + b % HIST_SUB];
		if (n <= UINT32_MAX - *slot) {
			*slot += (uint32_t)n;
			return 0;
		}
		if ((err = hist_compact_promote(h)) < 0)
			return err;
	}
	h->full->bucket[b] += n;
	return 0;
}

int
hist_compact_record(struct hist_compact *h, uint64_t v_ns)
{
	int err;

	hist_head_record(&h->count, &h->sum_ns, &h->min_ns, &h->max_ns, v_ns);
	if ((err = hist_compact_add_bucket(h, hist_bucket_of(v_ns), 1)) < 0)
		h->nlost++;
	return err;
}

static uint64_t
hist_compact_bucket_of(const void *ctx, unsigned i)
{
	return hist_compact_bucket(ctx, i);
}

void
hist_compact_add_to(struct hist *dst, const struct hist_compact *src)
{
	hist_add(dst, src->count, src->sum_ns, src->min_ns, src->max_ns,
	    hist_compact_bucket_of, src);
}

int
hist_compact_merge(struct hist_compact *dst, const struct hist_compact *src)
{
	uint32_t mask = src->full != NULL ? UINT32_MAX : src->chunk_mask;
	uint64_t n;
	unsigned i;
	int err = 0;

	if (src->count == 0)
		return 0;
	hist_head_add(&dst->count, &dst->sum_ns, &dst->min_ns, &dst->max_ns,
	    src->count, src->sum_ns, src->min_ns, src->max_ns);
	dst->nlost += src->nlost;
	for (i = 0; i < HIST_NBUCKETS; i++) {
		if (!(mask & (1u << (i / HIST_SUB)))) {
			i += HIST_SUB - 1;	/* a chunk src does not have */
			continue;
		}
		/* A bucket that cannot be added is lost, as in record. */
		if ((n = hist_compact_bucket(src, i)) != 0 &&
		    hist_compact_add_bucket(dst, i, n) < 0) {
			dst->nlost += n;
			err = -ENOMEM;
		}
	}
	return err;
}

double
hist_compact_mean(const struct hist_compact *h)
{
	return hist_mean_of(h->count, h->sum_ns);
}

struct hist_compact_set {
	const struct hist_compact *h;
	unsigned n;
	uint64_t count, min_ns, max_ns;	/* of the union */
	uint32_t mask;			/* chunks any of them has */
};

/* Bucket i of the union of a set of compact histograms. */
static uint64_t
hist_compact_set_bucket(const void *ctx, unsigned i)
{
	const struct hist_compact_set *set = ctx;
	uint64_t sum = 0;
	unsigned k;

	for (k = 0; k < set->n; k++)
		sum += hist_compact_bucket(&set->h[k], i);
	return sum;
}

/* The union's count, min, max and chunks, as one struct hist of them
 * all would have them. */
static void
hist_compact_set_init(struct hist_compact_set *set,
    const struct hist_compact *h, unsigned n)
{
	unsigned k;

	set->h = h;
	set->n = n;
	set->count = 0;
	set->min_ns = UINT64_MAX;
	set->max_ns = 0;
	set->mask = 0;
	for (k = 0; k < n; k++) {
		set->count += h[k].count;
		if (h[k].count > 0 && h[k].min_ns < set->min_ns)
			set->min_ns = h[k].min_ns;
		if (h[k].max_ns > set->max_ns)
			set->max_ns = h[k].max_ns;
		set->mask |= h[k].full != NULL ? UINT32_MAX : h[k].chunk_mask;
	}
}

uint64_t
hist_compact_count_le(const struct hist_compact *h, unsigned n,
    uint64_t v_ns)
{
	struct hist_compact_set set;

	hist_compact_set_init(&set, h, n);
	return hist_le(set.count, set.min_ns, set.max_ns,
	    hist_compact_set_bucket, &set, v_ns);
}

uint64_t
hist_compact_percentile(const struct hist_compact *h, unsigned n, double p)
{
	struct hist_compact_set set;

	hist_compact_set_init(&set, h, n);
	return hist_walk(set.count, set.min_ns, set.max_ns, p, set.mask,
	    hist_compact_set_bucket, &set);
}

size_t
hist_compact_bytes(const struct hist_compact *h)
{
	if (h->full != NULL)
		return sizeof(*h->full);
	return (size_t)__builtin_popcount(h->chunk_mask) * HIST_SUB *
	    sizeof(*h->chunk);
}
