/*
 * check_shm.c: Check suite for common/shm.c, the shared area of a
 * monitored process: layout round trip, every malformed header refused,
 * the ring's producer (shm_record) and consumer (shm_drain) including a
 * full ring and hostile indexes, the stack ring and the names region
 * (found, skipped, full, hostile), the HELLO read back, /proc/<pid>/stat's
 * start time. Run by make check; no process or file involved.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frames.h"
#include "shm.h"
#include "unit.h"
#include "../fuzz/read_area.h"

#define RING	64u

struct area {
	void *map;
	size_t size;
	uint8_t hello[FRAMES_MAX_BUILT];
	ssize_t hello_len;
};

static void area_make(struct area *a, uint32_t ring)
{
	struct frames_rng r;

	frames_rng_seed(&r, 42);
	a->hello_len = frames_build(&r, FRAME_HELLO, a->hello, sizeof a->hello);
	ck_assert_int_gt(a->hello_len, 0);
	a->size = shm_area_size((uint32_t)a->hello_len, ring);
	a->map = calloc(1, a->size);
	ck_assert_ptr_nonnull(a->map);
	shm_area_init(a->map, a->size, a->hello, (uint32_t)a->hello_len, ring,
	    1234, 1000, 99);
}

static struct proto_event shm_ev(uint64_t i)
{
	struct proto_event e;

	memset(&e, 0, sizeof e);
	e.start_ns = i;
	e.pause_ns = i * 3 + 1;
	e.collected = i * 7;
	e.generation = (uint16_t)(i % 3);
	return e;
}

START_TEST(test_area_round_trip)
{
	struct area a;
	struct shm_info in;
	struct proto_hello *h = malloc(sizeof *h);
	uint8_t *buf;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	ck_assert_uint_eq(in.pid, 1234);
	ck_assert_uint_eq(in.uid, 1000);
	ck_assert_uint_eq(in.start_ticks, 99);
	ck_assert_uint_eq(in.ring_cap, RING);
	ck_assert_uint_eq(in.hello_len, (uint32_t)a.hello_len);
	buf = malloc(in.hello_len);
	ck_assert_int_eq(shm_read_hello(a.map, &in, buf, h), 0);
	free(buf);
	free(h);
	free(a.map);
}
END_TEST

/* Each row breaks one header field; shm_check must say which error. */
static const struct {
	const char *name;
	size_t off;
	uint64_t value;
	unsigned width;
	int want;
} bad_rows[] = {
	{ "no magic yet", 0, 0, 8, -EAGAIN },
	{ "another version", 8, 1, 4, -EPROTONOSUPPORT },
	{ "header size", 12, 512, 4, -EBADMSG },
	{ "total size", 16, 1, 8, -EBADMSG },
	{ "hello beyond the file", 24, 0xfffffff0u, 4, -EBADMSG },
	{ "hello inside the header", 24, 16, 4, -EBADMSG },
	{ "hello length huge", 28, 0xffffffffu, 4, -EBADMSG },
	{ "exit area beyond the file", 36, 0x7fffffffu, 4, -EBADMSG },
	{ "ring beyond the file", 40, 0xfffffff0u, 4, -EBADMSG },
	{ "ring misaligned", 40, 4097, 4, -EBADMSG },
	{ "ring not a power of 2", 44, 100, 4, -EBADMSG },
	{ "ring too small", 44, 2, 4, -EBADMSG },
	{ "ring huge", 44, 1u << 30, 4, -EBADMSG },
	{ "pid 0", 48, 0, 4, -EBADMSG },
	{ "stack ring beyond the file", 528, 0xfffffff0u, 4, -EBADMSG },
	{ "stack ring misaligned", 528, 4097, 4, -EBADMSG },
	{ "stack ring inside the header", 528, 64, 4, -EBADMSG },
	{ "stack ring empty", 532, 0, 4, -EBADMSG },
	{ "stack ring not a power of 2", 532, 100, 4, -EBADMSG },
	{ "stack ring huge", 532, 1u << 20, 4, -EBADMSG },
	{ "names beyond the file", 536, 0xfffffff0u, 4, -EBADMSG },
	{ "names region huge", 540, SHM_NAMES_CAP * 2u, 4, -EBADMSG },
};

START_TEST(test_check_refuses_each_bad_field)
{
	struct area a;
	struct shm_info in;

	area_make(&a, RING);
	memcpy((char *)a.map + bad_rows[_i].off, &bad_rows[_i].value,
	    bad_rows[_i].width);
	ck_assert_msg(shm_check(a.map, a.size, &in) == bad_rows[_i].want,
	    "%s: %d", bad_rows[_i].name, shm_check(a.map, a.size, &in));
	free(a.map);
}
END_TEST

START_TEST(test_check_refuses_sizes)
{
	struct area a;
	struct shm_info in;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, SHM_HEADER_SIZE - 1, &in), -EMSGSIZE);
	ck_assert_int_eq(shm_check(a.map, (size_t)SHM_MAX_SIZE + 1, &in),
	    -EMSGSIZE);
	/* A file shorter than the header says: the regions do not fit. */
	ck_assert_int_eq(shm_check(a.map, a.size - 4096, &in), -EBADMSG);
	free(a.map);
}
END_TEST

START_TEST(test_hello_of_another_type_refused)
{
	struct area a;
	struct shm_info in;
	struct proto_hello *h = malloc(sizeof *h);
	uint8_t *buf;

	area_make(&a, RING);
	((uint8_t *)a.map)[SHM_HEADER_SIZE + 4] = FRAME_OBJECTS;
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	buf = malloc(in.hello_len);
	ck_assert_int_eq(shm_read_hello(a.map, &in, buf, h), -EPROTO);
	free(buf);
	free(h);
	free(a.map);
}
END_TEST

START_TEST(test_record_then_drain_in_order_and_full_ring_counts_drops)
{
	struct area a;
	struct shm_info in;
	struct shm_snapshot snap;
	struct proto_event e, out[RING];
	uint64_t tail = 0, i;
	int n;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	for (i = 0; i < RING + 10; i++) {
		e = shm_ev(i);
		shm_record(a.map, &e);
	}
	shm_snapshot(a.map, &snap);
	ck_assert_uint_eq(snap.head, RING);
	ck_assert_uint_eq(snap.counters.dropped, 10);
	ck_assert_uint_eq(snap.counters.ngen, 3);
	ck_assert_uint_eq(snap.counters.gen[0].count +
	    snap.counters.gen[1].count + snap.counters.gen[2].count, RING + 10);
	n = shm_drain(a.map, &in, snap.head, &tail, out, RING);
	ck_assert_int_eq(n, (int)RING);
	ck_assert_uint_eq(tail, RING);
	for (i = 0; i < RING; i++) {
		ck_assert_uint_eq(out[i].start_ns, i);
		ck_assert(shm_event_valid(&out[i]));
	}
	/* Room again: the next record is stored, not dropped. */
	e = shm_ev(1000);
	shm_record(a.map, &e);
	shm_snapshot(a.map, &snap);
	ck_assert_uint_eq(snap.counters.dropped, 10);
	ck_assert_int_eq(shm_drain(a.map, &in, snap.head, &tail, out, RING), 1);
	ck_assert_uint_eq(out[0].start_ns, 1000);
	free(a.map);
}
END_TEST

/* The mark a memory reading is taken between: busy while a collection
 * is in progress, else a count that any collection moves. */
START_TEST(test_gc_mark_says_busy_and_moves_with_each_collection)
{
	struct area a;
	struct proto_event e = shm_ev(7);
	struct shm_header *h;
	uint64_t m0, m1;

	area_make(&a, RING);
	h = a.map;
	m0 = shm_gc_mark(a.map);
	ck_assert_uint_eq(m0, 0);
	atomic_store(&h->gc_start_ns, 5);	/* the agent's "start" */
	ck_assert_uint_eq(shm_gc_mark(a.map), SHM_GC_BUSY);
	shm_record(a.map, &e);			/* its "stop" */
	atomic_store(&h->gc_start_ns, 0);
	m1 = shm_gc_mark(a.map);
	ck_assert_uint_ne(m1, SHM_GC_BUSY);
	ck_assert_uint_eq(m1, m0 + 1);
	free(a.map);
}
END_TEST

START_TEST(test_drain_refuses_hostile_heads)
{
	struct area a;
	struct shm_info in;
	struct proto_event out[RING];
	uint64_t tail = 100;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	ck_assert_int_eq(shm_drain(a.map, &in, 99, &tail, out, RING), -EBADMSG);
	ck_assert_int_eq(shm_drain(a.map, &in, 100 + RING + 1, &tail, out,
	    RING), -EBADMSG);
	ck_assert_uint_eq(tail, 100);
	ck_assert_int_eq(shm_drain(a.map, &in, 100 + RING, &tail, out, 8), 8);
	ck_assert_uint_eq(tail, 108);
	free(a.map);
}
END_TEST

START_TEST(test_start_tail_is_bounded)
{
	struct area a;
	struct shm_info in;
	struct shm_header *h;

	area_make(&a, RING);
	h = a.map;
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	atomic_store(&h->tail, 5);
	ck_assert_uint_eq(shm_start_tail(a.map, &in, 10), 5);
	atomic_store(&h->tail, 50);	/* ahead of head: hostile */
	ck_assert_uint_eq(shm_start_tail(a.map, &in, 10), 0);
	atomic_store(&h->tail, 1);	/* more than a ring behind */
	ck_assert_uint_eq(shm_start_tail(a.map, &in, 1000), 1000 - RING);
	free(a.map);
}
END_TEST

START_TEST(test_event_generation_bounded)
{
	struct proto_event e = shm_ev(0);

	e.generation = PROTO_MAX_GEN - 1;
	ck_assert(shm_event_valid(&e));
	e.generation = PROTO_MAX_GEN;
	ck_assert(!shm_event_valid(&e));
}
END_TEST

static const struct {
	const char *stat;
	int want;
	uint64_t ticks;
} stat_rows[] = {
	{ "42 (python3) S 1 42 42 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 "
	  "123456 1000 10", 0, 123456 },
	{ "42 (a b) c)) S 1 42 42 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 "
	  "77 1000 10", 0, 77 },
	{ "42 (python3) S 1 42", -EINVAL, 0 },
	{ "no parenthesis at all", -EINVAL, 0 },
	{ "42 (x) S 1 42 42 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 "
	  "99999999999999999999999", -EINVAL, 0 },
};

START_TEST(test_parse_start_ticks)
{
	uint64_t t = 0;

	ck_assert_int_eq(shm_parse_start_ticks(stat_rows[_i].stat,
	    strlen(stat_rows[_i].stat), &t), stat_rows[_i].want);
	if (stat_rows[_i].want == 0)
		ck_assert_uint_eq(t, stat_rows[_i].ticks);
}
END_TEST

/* Random damage to a valid area's header, identity and ring indexes, as
 * the fuzzer does (fuzz_area.c) but in every make check: the reader
 * refuses or reads, never crashes or contradicts itself (read_area
 * aborts on that). */
START_TEST(test_random_damage_is_refused_or_read)
{
	static const size_t hot[] = { 8, 16, 24, 28, 32, 36, 40, 44, 48, 68,
	    448, 512, 528, 532, 536, 540, 552, 576, 640, SHM_HEADER_SIZE,
	    SHM_HEADER_SIZE + 4 };
	struct frames_rng r;
	struct area a;
	uint8_t buf[4096];
	size_t len, off;
	unsigned i, k, nflip, ok = 0;

	area_make(&a, RING);
	frames_rng_seed(&r, 2026);
	for (i = 0; i < 20000; i++) {
		len = SHM_HEADER_SIZE + (size_t)a.hello_len;
		memcpy(buf, a.map, len);
		nflip = 1 + (unsigned)frames_below(&r, 4);
		for (k = 0; k < nflip; k++) {
			off = frames_below(&r, 2) ? hot[frames_below(&r,
			    sizeof hot / sizeof hot[0])] + frames_below(&r, 8) :
			    frames_below(&r, len);
			buf[off] = (uint8_t)frames_rand(&r);
		}
		if (frames_below(&r, 8) == 0)
			len = frames_below(&r, len);
		if (read_area(buf, len) == 0)
			ok++;
	}
	/* Not all refused: damage to the ring indexes or argv still reads. */
	ck_assert_uint_gt(ok, 100);
	free(a.map);
}
END_TEST

/* How the process ended, as the snapshot reads it: an os._exit code only
 * with SHM_EXIT_OS_EXIT and within 0..255, else the exit handler's end. */
static const struct {
	const char *name;
	uint32_t via;
	int32_t code;
	uint32_t want_via;
	int32_t want_code;
} exit_rows[] = {
	{ "exit handler", SHM_EXIT_HANDLER, 0, SHM_EXIT_HANDLER, 0 },
	{ "os._exit(3)", SHM_EXIT_OS_EXIT, 3, SHM_EXIT_OS_EXIT, 3 },
	{ "os._exit(255)", SHM_EXIT_OS_EXIT, 255, SHM_EXIT_OS_EXIT, 255 },
	{ "code above 255", SHM_EXIT_OS_EXIT, 256, SHM_EXIT_HANDLER, 0 },
	{ "negative code", SHM_EXIT_OS_EXIT, -1, SHM_EXIT_HANDLER, 0 },
	{ "unknown way", 7, 3, SHM_EXIT_HANDLER, 0 },
	{ "code without the way", SHM_EXIT_HANDLER, 9, SHM_EXIT_HANDLER, 0 },
};

START_TEST(test_snapshot_bounds_the_exit_code)
{
	struct shm_snapshot snap;
	struct shm_header *h;
	struct area a;

	area_make(&a, RING);
	h = a.map;
	atomic_store(&h->exit_via, exit_rows[_i].via);
	atomic_store(&h->exit_code, exit_rows[_i].code);
	shm_snapshot(a.map, &snap);
	ck_assert_msg(snap.exit_via == exit_rows[_i].want_via &&
	    snap.exit_code == exit_rows[_i].want_code, "%s: via %u code %d",
	    exit_rows[_i].name, snap.exit_via, snap.exit_code);
	free(a.map);
}
END_TEST

static struct shm_stack shm_st(uint64_t start_ns, uint16_t depth)
{
	struct shm_stack st;
	uint16_t i;

	memset(&st, 0, sizeof st);
	st.start_ns = start_ns;
	st.depth = depth;
	for (i = 0; i < depth; i++) {
		st.frame[i].code_id = i + 1u;
		st.frame[i].line = 10u * i;
	}
	return st;
}

/* The stack of an event is found by its start; an older one (its event
 * was refused) is skipped, a newer one left for its own event. */
START_TEST(test_stack_found_by_its_event)
{
	struct area a;
	struct shm_info in;
	struct shm_stack st = shm_st(5, 3), out;
	uint64_t tail;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	tail = shm_start_stack_tail(a.map, &in);
	ck_assert_int_eq(shm_record_stack(a.map, &st), 1);
	st = shm_st(7, 2);
	ck_assert_int_eq(shm_record_stack(a.map, &st), 1);
	st = shm_st(9, SHM_STACK_DEPTH);
	st.flags = SHM_STACK_TRUNCATED;
	ck_assert_int_eq(shm_record_stack(a.map, &st), 1);
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 7, &out), 1);
	ck_assert_uint_eq(out.depth, 2);
	ck_assert_uint_eq(out.frame[1].code_id, 2);
	ck_assert_uint_eq(tail, 2);
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 8, &out), 0);
	ck_assert_uint_eq(tail, 2);
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 9, &out), 1);
	ck_assert_uint_eq(out.flags, SHM_STACK_TRUNCATED);
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 10, &out), 0);
	ck_assert_uint_eq(tail, 3);
	free(a.map);
}
END_TEST

START_TEST(test_full_stack_ring_counts_drops)
{
	struct area a;
	struct shm_info in;
	struct shm_snapshot snap;
	struct shm_stack st = shm_st(1, 1);
	unsigned i;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	for (i = 0; i < SHM_STACK_RING; i++)
		ck_assert_int_eq(shm_record_stack(a.map, &st), 1);
	ck_assert_int_eq(shm_record_stack(a.map, &st), 0);
	shm_snapshot(a.map, &snap);
	ck_assert_uint_eq(snap.stacks_dropped, 1);
	free(a.map);
}
END_TEST

START_TEST(test_drain_stack_refuses_hostile_slots)
{
	struct area a;
	struct shm_info in;
	struct shm_header *h;
	struct shm_stack st = shm_st(5, 1), out;
	uint64_t tail = 0;

	area_make(&a, RING);
	h = a.map;
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	st.depth = SHM_STACK_DEPTH + 1;
	shm_record_stack(a.map, &st);
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 5, &out), -EBADMSG);
	st = shm_st(6, 1);
	st.flags = 0x80;
	shm_record_stack(a.map, &st);
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 6, &out), -EBADMSG);
	tail = 5;		/* head (2) behind our tail */
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 6, &out), -EBADMSG);
	atomic_store(&h->stack_head, 1000);
	tail = 2;		/* head more than the capacity ahead */
	ck_assert_int_eq(shm_drain_stack(a.map, &in, &tail, 6, &out), -EBADMSG);
	ck_assert_uint_le(1000 - shm_start_stack_tail(a.map, &in), in.stack_cap);
	free(a.map);
}
END_TEST

/* Appends a name record at *off of the names region. */
static void shm_put_name(struct area *a, const struct shm_info *in,
    uint32_t *off, uint32_t id, uint16_t flen, uint16_t qlen)
{
	struct shm_name_rec rec = { id, 7, flen, qlen };
	char *p = (char *)a->map + in->names_off + *off;

	memcpy(p, &rec, sizeof rec);
	memset(p + sizeof rec, 'f', flen);
	memset(p + sizeof rec + flen, 'q', qlen);
	*off += SHM_NAME_REC_SIZE(flen, qlen);
}

START_TEST(test_names_read_back)
{
	static struct shm_name n;
	struct area a;
	struct shm_info in;
	uint32_t len = 0, off = 0;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	shm_put_name(&a, &in, &len, 1, 5, 3);
	shm_put_name(&a, &in, &len, SHM_CODES - 1, SHM_NAME_MAX, SHM_NAME_MAX);
	ck_assert_int_eq(shm_next_name(a.map, &in, len, &off, &n), 1);
	ck_assert_uint_eq(n.code_id, 1);
	ck_assert_uint_eq(n.first_line, 7);
	ck_assert_str_eq(n.file, "fffff");
	ck_assert_str_eq(n.func, "qqq");
	ck_assert_int_eq(shm_next_name(a.map, &in, len, &off, &n), 1);
	ck_assert_uint_eq(strlen(n.file), SHM_NAME_MAX);
	ck_assert_int_eq(shm_next_name(a.map, &in, len, &off, &n), 0);
	ck_assert_uint_eq(off, len);
	free(a.map);
}
END_TEST

/* Each row is one hostile record after a good one: refused, never read
 * beyond the published length or the region. */
static const struct {
	const char *name;
	uint32_t id;
	uint16_t flen, qlen;
	int32_t len_delta;	/* published length minus the record's end */
} bad_names[] = {
	{ "id 0", 0, 1, 1, 0 },
	{ "id beyond the table", SHM_CODES, 1, 1, 0 },
	{ "file too long", 1, SHM_NAME_MAX + 1, 1, 0 },
	{ "function too long", 1, 1, 60000, 0 },
	{ "record past the published length", 1, 8, 8, -4 },
	{ "a head cut short", 1, 0, 0, -6 },
};

START_TEST(test_names_refuse_hostile_records)
{
	static struct shm_name n;
	struct area a;
	struct shm_info in;
	uint32_t len = 0, off = 0;

	area_make(&a, RING);
	ck_assert_int_eq(shm_check(a.map, a.size, &in), 0);
	shm_put_name(&a, &in, &len, 1, 2, 2);
	shm_put_name(&a, &in, &len, bad_names[_i].id, bad_names[_i].flen < 2000 ?
	    bad_names[_i].flen : 0, bad_names[_i].qlen < 2000 ?
	    bad_names[_i].qlen : 0);
	/* the claimed lengths, whatever was written */
	memcpy((char *)a.map + in.names_off + SHM_NAME_REC_SIZE(2, 2) + 8,
	    &bad_names[_i].flen, 2);
	memcpy((char *)a.map + in.names_off + SHM_NAME_REC_SIZE(2, 2) + 10,
	    &bad_names[_i].qlen, 2);
	len = (uint32_t)((int32_t)len + bad_names[_i].len_delta);
	ck_assert_int_eq(shm_next_name(a.map, &in, len, &off, &n), 1);
	ck_assert_msg(shm_next_name(a.map, &in, len, &off, &n) == -EBADMSG,
	    "%s", bad_names[_i].name);
	/* a published length beyond the region is bounded by it */
	off = 0;
	ck_assert_int_eq(shm_next_name(a.map, &in, UINT32_MAX, &off, &n), 1);
	free(a.map);
}
END_TEST

static Suite *shm_suite(void)
{
	Suite *s = suite_create("shm");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_area_round_trip);
	tcase_add_test(tc, test_gc_mark_says_busy_and_moves_with_each_collection);
	tcase_add_loop_test(tc, test_check_refuses_each_bad_field, 0,
	    (int)(sizeof bad_rows / sizeof bad_rows[0]));
	tcase_add_test(tc, test_check_refuses_sizes);
	tcase_add_test(tc, test_hello_of_another_type_refused);
	tcase_add_test(tc,
	    test_record_then_drain_in_order_and_full_ring_counts_drops);
	tcase_add_test(tc, test_drain_refuses_hostile_heads);
	tcase_add_test(tc, test_start_tail_is_bounded);
	tcase_add_test(tc, test_event_generation_bounded);
	tcase_add_test(tc, test_random_damage_is_refused_or_read);
	tcase_add_test(tc, test_stack_found_by_its_event);
	tcase_add_test(tc, test_full_stack_ring_counts_drops);
	tcase_add_test(tc, test_drain_stack_refuses_hostile_slots);
	tcase_add_test(tc, test_names_read_back);
	tcase_add_loop_test(tc, test_names_refuse_hostile_records, 0,
	    sizeof bad_names / sizeof bad_names[0]);
	tcase_add_loop_test(tc, test_parse_start_ticks, 0,
	    (int)(sizeof stat_rows / sizeof stat_rows[0]));
	tcase_add_loop_test(tc, test_snapshot_bounds_the_exit_code, 0,
	    (int)(sizeof exit_rows / sizeof exit_rows[0]));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(shm_suite, UNIT_NOFORK_UNDER_ASAN);
