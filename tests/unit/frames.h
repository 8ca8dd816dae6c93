/*
 * frames.h: valid frames of every type in use, built from a seeded PRNG, for
 * the codec tests (check_codec, check_decoder_random) and the fuzz seed
 * corpus. Test code only; it must never be linked into gcmon itself.
 */
#ifndef GCMON_TESTS_FRAMES_H
#define GCMON_TESTS_FRAMES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"

/* splitmix64: small, seedable, the same sequence on every platform. */
struct frames_rng {
	uint64_t state;
};

void frames_rng_seed(struct frames_rng *r, uint64_t seed);
uint64_t frames_rand(struct frames_rng *r);
/* Uniform in [0, n); 0 when n is 0. */
uint64_t frames_below(struct frames_rng *r, uint64_t n);

/* The frame types in use, and the retired ones (EVENTS, SAMPLE, BYE:
 * reserved numbers that every decoder refuses, protocol.h). */
#define FRAMES_NTYPES		4u
#define FRAMES_NRETIRED		3u
extern const unsigned frames_types[FRAMES_NTYPES];
extern const unsigned frames_retired_types[FRAMES_NRETIRED];

/*
 * Writes one valid frame of the given type (one of frames_types)
 * with random contents into buf: sizes are small, except that now and
 * then a string sits exactly at its cap. Returns its length or the
 * encoder's negative errno (-ENOBUFS when cap is too small; 16 KiB is
 * always enough).
 */
#define FRAMES_MAX_BUILT	(16u << 10)
ssize_t frames_build(struct frames_rng *r, unsigned type, uint8_t *buf,
    size_t cap);

/* Random valid UTF-8 (1- to 4-byte sequences, no NUL) of exactly len
 * bytes into s. */
void frames_utf8(struct frames_rng *r, char *s, size_t len);

void frames_put_le16(uint8_t *p, uint16_t v);
void frames_put_le32(uint8_t *p, uint32_t v);
void frames_put_le64(uint8_t *p, uint64_t v);
uint32_t frames_get_le32(const uint8_t *p);

#endif /* GCMON_TESTS_FRAMES_H */
