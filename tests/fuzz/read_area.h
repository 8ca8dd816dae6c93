/*
 * read_area.h: everything gcmond does with a process's shared area
 * (common/shm.c's readers), from one entry point over arbitrary bytes, for
 * the area fuzzer (fuzz_area.c) and the random test in check_shm.c. Test
 * code only; aborts when the reader contradicts itself.
 */
#ifndef GCMON_TESTS_READ_AREA_H
#define GCMON_TESTS_READ_AREA_H

#include <stddef.h>
#include <stdint.h>

/* Bytes read as an area file of the size its header claims (at least
 * len, at most READ_AREA_MAX; what data does not cover reads as zeros,
 * like a sparse file). Returns shm_check()'s verdict. */
#define READ_AREA_MAX	(1u << 20)
int read_area(const uint8_t *data, size_t len);

#endif /* GCMON_TESTS_READ_AREA_H */
