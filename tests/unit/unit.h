/*
 * unit.h: what every Check suite under tests/unit/ shares: the one main()
 * (unit.c) and the sanitizer test. A suite file builds its Suite and names
 * it once with UNIT_SUITE(); unit.c runs it and turns the failures into
 * the exit status make check reads. Test code only.
 */
#ifndef GCMON_TESTS_UNIT_H
#define GCMON_TESTS_UNIT_H

#include <check.h>

#if defined(__SANITIZE_ADDRESS__)
#define CHECK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CHECK_ASAN 1
#endif
#endif

enum unit_flags {
	UNIT_FORK = 0,
	/* Under ASan, run the tests in one process unless CK_FORK is set: a
	 * fork costs ~70 ms there. Only for suites whose tests share no
	 * state that outlives them (ASan aborts on any memory error anyway). */
	UNIT_NOFORK_UNDER_ASAN = 1,
};

struct unit_def {
	Suite *(*build)(void);
	enum unit_flags flags;
};

/* The suite this program runs: each check_<module>.c defines it once. */
extern const struct unit_def unit_def;

#define UNIT_SUITE(build, flags) \
	const struct unit_def unit_def = { (build), (flags) }

#endif /* GCMON_TESTS_UNIT_H */
