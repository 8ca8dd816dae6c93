/*
 * hello.h: the HELLO of a made-up process, as the decoder would give it
 * (never a NULL string), for the suites that feed agg.c (check_agg,
 * check_metrics, check_control, check_requests). Test code only.
 */
#ifndef GCMON_TESTS_HELLO_H
#define GCMON_TESTS_HELLO_H

#include <stdint.h>

#include "codec.h"

/* pid, ppid, run (borrowed) and origin; three generations, CPython
 * 3.11.2 at /usr/bin/python3 running app.py, started at 1 s on the
 * monotonic clock plus pid ns, its clocks paired at Unix 1700000000 and
 * monotonic 1 s. A suite changes what it tests after the call. */
void unit_hello(struct proto_hello *h, uint32_t pid, uint32_t ppid,
    const char *run, uint8_t origin);

#endif /* GCMON_TESTS_HELLO_H */
