/*
 * decode_any.h: run any bytes through everything that reads peer input
 * (header, stream reader, the payload decoder of each frame, the walk of
 * every entry). Shared by the fuzzer (fuzz_decoder.c) and the bounded
 * random test (tests/unit/check_decoder_random.c). Test code only.
 */
#ifndef GCMON_TESTS_DECODE_ANY_H
#define GCMON_TESTS_DECODE_ANY_H

#include <stddef.h>
#include <stdint.h>

/*
 * Decodes data as a stream of frames, stopping at the first error, and
 * decodes data + 1 as the payload of a frame of type data[0]. Returns the
 * stream's result: 0 when every frame decoded and no byte is left over,
 * -EAGAIN when a partial frame is left, else the first frame's error.
 * Aborts (a crash to the fuzzer) when the codec contradicts itself: an
 * undocumented error, a decoded frame that does not re-encode to the same
 * bytes, or a stream that decodes differently fed in small pieces.
 */
int decode_any(const uint8_t *data, size_t len);

/* 1 if err is one of the results decode_any documents, else 0. */
int decode_any_documented(int err);

#endif /* GCMON_TESTS_DECODE_ANY_H */
