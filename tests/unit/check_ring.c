/*
 * check_ring.c: Check suite for agent/ring.h, the agent's SPSC ring:
 * capacity rounding, fill, wrap, full -> refused, order kept, and a real
 * producer and consumer thread. Run by make check; no Python involved.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "ring.h"
#include "unit.h"

static struct proto_event ring_ev(uint64_t i)
{
	struct proto_event e = { 0 };

	e.start_ns = i;
	e.pause_ns = i * 3 + 1;
	e.collected = ~i;
	e.generation = (uint16_t)(i % 3);
	return e;
}

START_TEST(test_ring_capacity_rounds_up_to_power_of_two)
{
	static const struct { uint64_t want, cap; } rows[] = {
		{ 0, 2 }, { 1, 2 }, { 2, 2 }, { 3, 4 }, { 16, 16 }, { 17, 32 },
		{ 16384, 16384 }, { 16385, 32768 },
		{ (uint64_t)RING_MAX_CAPACITY * 4, RING_MAX_CAPACITY },
	};

	ck_assert_uint_eq(ring_round_capacity(rows[_i].want), rows[_i].cap);
}
END_TEST

START_TEST(test_ring_fill_then_full_refuses)
{
	struct ring r;
	struct proto_event e, out[64];
	uint64_t i;

	ck_assert_int_eq(ring_init(&r, 16), 0);
	ck_assert_uint_eq(ring_capacity(&r), 16);
	for (i = 0; i < 16; i++) {
		e = ring_ev(i);
		ck_assert_int_eq(ring_push(&r, &e), 0);
	}
	ck_assert_uint_eq(ring_count(&r), 16);
	e = ring_ev(99);
	ck_assert_int_eq(ring_push(&r, &e), -ENOBUFS);
	ck_assert_uint_eq(ring_count(&r), 16);
	/* The refused record is gone; the 16 stored come back in order. */
	ck_assert_uint_eq(ring_pop(&r, out, 64), 16);
	for (i = 0; i < 16; i++) {
		ck_assert_uint_eq(out[i].start_ns, i);
		ck_assert_uint_eq(out[i].pause_ns, i * 3 + 1);
		ck_assert_uint_eq(out[i].collected, ~i);
	}
	ck_assert_uint_eq(ring_pop(&r, out, 64), 0);
	ring_fini(&r);
}
END_TEST

START_TEST(test_ring_wraps_and_keeps_order)
{
	struct ring r;
	struct proto_event e, out[3];
	uint64_t next_in = 0, next_out = 0;
	uint32_t n, i;
	int round;

	ck_assert_int_eq(ring_init(&r, 8), 0);
	/* Push 5, pop 3, many times: indices pass the capacity often. */
	for (round = 0; round < 1000; round++) {
		for (i = 0; i < 5 && ring_count(&r) < 8; i++) {
			e = ring_ev(next_in++);
			ck_assert_int_eq(ring_push(&r, &e), 0);
		}
		n = ring_pop(&r, out, 3);
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(out[i].start_ns, next_out++);
	}
	while ((n = ring_pop(&r, out, 3)) > 0)
		for (i = 0; i < n; i++)
			ck_assert_uint_eq(out[i].start_ns, next_out++);
	ck_assert_uint_eq(next_in, next_out);
	ck_assert_uint_gt(next_in, 1000);
	ring_fini(&r);
}
END_TEST

START_TEST(test_ring_reset_empties)
{
	struct ring r;
	struct proto_event e = ring_ev(1), out[4];

	ck_assert_int_eq(ring_init(&r, 4), 0);
	ck_assert_int_eq(ring_push(&r, &e), 0);
	ck_assert_int_eq(ring_push(&r, &e), 0);
	ring_reset(&r);
	ck_assert_uint_eq(ring_count(&r), 0);
	ck_assert_uint_eq(ring_pop(&r, out, 4), 0);
	ring_fini(&r);
}
END_TEST

#define SPSC_N	2000000u

struct spsc {
	struct ring r;
	uint64_t pushed, dropped;	/* the producer's; read after join */
	atomic_int finished;
};

static void *spsc_producer(void *arg)
{
	struct spsc *s = arg;
	struct proto_event e;
	uint64_t i;

	for (i = 0; i < SPSC_N; i++) {
		e = ring_ev(i);
		if (ring_push(&s->r, &e) == 0)
			s->pushed++;
		else
			s->dropped++;
	}
	atomic_store_explicit(&s->finished, 1, memory_order_release);
	return NULL;
}

START_TEST(test_ring_spsc_threads_lose_nothing_but_drops)
{
	static struct spsc s;
	struct proto_event out[256];
	pthread_t t;
	uint64_t got = 0, last = 0, n, i;
	int first = 1, bad = 0, finished;

	s.pushed = s.dropped = 0;
	atomic_init(&s.finished, 0);
	ck_assert_int_eq(ring_init(&s.r, 1024), 0);
	ck_assert_int_eq(pthread_create(&t, NULL, spsc_producer, &s), 0);
	/* Each record must arrive whole and later than the one before. */
	for (;;) {
		finished = atomic_load_explicit(&s.finished,
		    memory_order_acquire);
		n = ring_pop(&s.r, out, 256);
		for (i = 0; i < n; i++) {
			if (out[i].pause_ns != out[i].start_ns * 3 + 1 ||
			    out[i].collected != ~out[i].start_ns ||
			    (!first && out[i].start_ns <= last))
				bad++;
			last = out[i].start_ns;
			first = 0;
		}
		got += n;
		if (n == 0 && finished)
			break;	/* finished was read before this empty pop */
		if (n == 0)
			sched_yield();
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(bad, 0);
	ck_assert_uint_eq(got, s.pushed);
	ck_assert_uint_eq(s.pushed + s.dropped, SPSC_N);
	ck_assert_uint_gt(got, 0);
	ring_fini(&s.r);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_ring_capacity_rounds_up_to_power_of_two,
	    0, 9);
	tcase_add_test(tc, test_ring_fill_then_full_refuses);
	tcase_add_test(tc, test_ring_wraps_and_keeps_order);
	tcase_add_test(tc, test_ring_reset_empties);
	tcase_add_test(tc, test_ring_spsc_threads_lose_nothing_but_drops);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(ring_suite, UNIT_FORK);
