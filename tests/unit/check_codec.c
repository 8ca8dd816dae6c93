/*
 * check_codec.c: Check suite for common/codec.c: every frame type in use
 * round trips, the retired types are refused like unknown ones, every
 * documented error is reached on purpose, and the stream
 * reader gives the same frames whatever way a stream is split. Run by
 * `make check`; it writes no file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "codec.h"
#include "frames.h"
#include "unit.h"

#define BUFSZ	(PROTO_MAX_FRAME + 64)

/* For loops: Check's ck_assert_* report each passing check to the parent
 * process, which makes hundreds of thousands of them slow. */
#define CHECK(expr) do {						\
		if (!(expr))						\
			ck_abort_msg("failed: %s", #expr);		\
	} while (0)
#define CHECK_EQ(a, b) do {						\
		unsigned long long a_ = (unsigned long long)(a);	\
		unsigned long long b_ = (unsigned long long)(b);	\
		if (a_ != b_)						\
			ck_abort_msg("failed: %s == %s (%llu != %llu)",	\
			    #a, #b, a_, b_);				\
	} while (0)

static uint8_t *buf;		/* PROTO_MAX_FRAME-sized scratch per test */
static struct proto_hello hello, hello2;

static void
setup(void)
{
	buf = calloc(1, BUFSZ);
	ck_assert_ptr_nonnull(buf);
}

static void
teardown(void)
{
	free(buf);
	buf = NULL;
}

static struct proto_frame
frame_of(const uint8_t *p, ssize_t n)
{
	struct proto_frame f;

	ck_assert_int_ge(n, (ssize_t)PROTO_HDR_SIZE);
	ck_assert_int_eq(proto_decode_header(p, (size_t)n, 0, &f.hdr), 0);
	ck_assert_uint_eq(f.hdr.len, (size_t)n);
	f.payload = p + PROTO_HDR_SIZE;
	f.payload_len = (size_t)n - PROTO_HDR_SIZE;
	return f;
}

static struct proto_str
str_of(const char *s)
{
	struct proto_str ps = { s, (uint32_t)strlen(s) };

	return ps;
}

static int
str_eq(struct proto_str a, const char *s)
{
	return a.len == strlen(s) && memcmp(a.ptr, s, a.len) == 0;
}

static void
fill_hello(struct proto_hello *h, unsigned ngen, uint32_t argc)
{
	static const char *const args[] = { "app.py", "--workers", "4",
	    "caf\xc3\xa9", "" };
	unsigned i;

	memset(h, 0, sizeof(*h));
	h->pid = 4242;
	h->ppid = 1;
	h->start_mono_ns = 123456789012345ull;
	h->clock_real_ns = 1700000000123456789ull;
	h->clock_mono_ns = 123456789999999ull;
	h->py_hexversion = 0x030b02f0;
	h->origin = ORIGIN_FORK;
	h->gc_model = GC_MODEL_CLASSIC;
	h->flags = PROTO_HELLO_BASELINE_INHERITED;
	h->reconnects = 0;	/* reserved */
	h->ngen = (uint8_t)ngen;
	for (i = 0; i < ngen && i < PROTO_MAX_GEN; i++) {
		h->base[i].collections = 10 + i;
		h->base[i].collected = 1000 * i;
		h->base[i].uncollectable = i;
		h->base[i].threshold = i == 0 ? 700 : 10;
	}
	h->run_id = str_of("run-\xe2\x82\xac-1");
	h->py_version = str_of("3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]");
	h->executable = str_of("/usr/bin/python3");
	h->argc = argc;
	for (i = 0; i < argc && i < PROTO_MAX_ARGC; i++)
		h->argv[i] = str_of(args[i % 5]);
}

/* ---- round trips -------------------------------------------------- */

static const struct { unsigned ngen; uint32_t argc; } hello_rows[] = {
	{ 1, 0 }, { 3, 1 }, { 3, 5 }, { PROTO_MAX_GEN, 17 },
};

/* A cap keeps whole characters: 1-, 2-, 3- and 4-byte ones. */
START_TEST(test_utf8_cut_keeps_whole_characters)
{
	static const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
	/* Starts: a 0, é 1, € 3, 😀 6; 10 bytes in all. */
	static const size_t want[] = { 0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10, 10 };
	size_t cap;

	for (cap = 0; cap < sizeof want / sizeof want[0]; cap++)
		ck_assert_uint_eq(proto_utf8_cut(s, 10, cap), want[cap]);
	ck_assert_uint_eq(proto_utf8_cut(NULL, 0, 0), 0);
	ck_assert_uint_eq(proto_utf8_cut("xyz", 3, 3), 3);
}
END_TEST

START_TEST(test_hello_round_trips)
{
	struct proto_frame f;
	ssize_t n;
	unsigned i;

	fill_hello(&hello, hello_rows[_i].ngen, hello_rows[_i].argc);
	n = proto_encode_hello(buf, BUFSZ, &hello);
	f = frame_of(buf, n);
	ck_assert_uint_eq(f.hdr.type, FRAME_HELLO);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.pid, 4242);
	ck_assert_uint_eq(hello2.ppid, 1);
	ck_assert_uint_eq(hello2.start_mono_ns, hello.start_mono_ns);
	ck_assert_uint_eq(hello2.clock_real_ns, hello.clock_real_ns);
	ck_assert_uint_eq(hello2.clock_mono_ns, hello.clock_mono_ns);
	ck_assert_uint_eq(hello2.py_hexversion, 0x030b02f0);
	ck_assert_uint_eq(hello2.origin, ORIGIN_FORK);
	ck_assert_uint_eq(hello2.gc_model, GC_MODEL_CLASSIC);
	ck_assert_uint_eq(hello2.flags, PROTO_HELLO_BASELINE_INHERITED);
	ck_assert_uint_eq(hello2.reconnects, 0);
	ck_assert_uint_eq(hello2.ngen, hello.ngen);
	for (i = 0; i < hello.ngen; i++) {
		ck_assert_uint_eq(hello2.base[i].collections, hello.base[i].collections);
		ck_assert_uint_eq(hello2.base[i].collected, hello.base[i].collected);
		ck_assert_uint_eq(hello2.base[i].uncollectable, hello.base[i].uncollectable);
		ck_assert_uint_eq(hello2.base[i].threshold, hello.base[i].threshold);
	}
	ck_assert(str_eq(hello2.run_id, "run-\xe2\x82\xac-1"));
	ck_assert(str_eq(hello2.py_version, "3.11.2 (main, Mar 13 2023, 12:18:29) [GCC 12.2.0]"));
	ck_assert(str_eq(hello2.executable, "/usr/bin/python3"));
	ck_assert_uint_eq(hello2.argc, hello.argc);
	for (i = 0; i < hello.argc; i++) {
		CHECK_EQ(hello2.argv[i].len, hello.argv[i].len);
		CHECK(memcmp(hello2.argv[i].ptr, hello.argv[i].ptr,
		    hello.argv[i].len) == 0);
	}
}
END_TEST

/* The service name is an optional tail: with the flag it round trips,
 * without it the frame is what it always was (an older agent's area). */
START_TEST(test_hello_service_round_trips_only_with_its_flag)
{
	struct proto_frame f;
	ssize_t with, without;

	fill_hello(&hello, 3, 2);
	without = proto_encode_hello(buf, BUFSZ, &hello);
	f = frame_of(buf, without);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.service.len, 0);
	ck_assert_ptr_null(hello2.service.ptr);

	hello.service = str_of("billing-api \xe2\x82\xac");
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), without);
	hello.flags |= PROTO_HELLO_SERVICE;
	with = proto_encode_hello(buf, BUFSZ, &hello);
	ck_assert_int_eq(with, without + 4 + (ssize_t)hello.service.len);
	f = frame_of(buf, with);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.flags,
	    PROTO_HELLO_BASELINE_INHERITED | PROTO_HELLO_SERVICE);
	ck_assert(str_eq(hello2.service, "billing-api \xe2\x82\xac"));
	ck_assert_uint_eq(hello2.argc, 2);
}
END_TEST

/* The flag promises a string: a frame that ends after argv is short, a
 * name above PROTO_MAX_ID or not UTF-8 is refused both ways. */
START_TEST(test_hello_service_flag_without_a_valid_name_is_refused)
{
	static char id[PROTO_MAX_ID + 1];
	struct proto_frame f;
	ssize_t n;

	fill_hello(&hello, 1, 0);
	n = proto_encode_hello(buf, BUFSZ, &hello);
	buf[PROTO_HDR_SIZE + 38] |= PROTO_HELLO_SERVICE;	/* hello_flags */
	f = frame_of(buf, n);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), -EBADMSG);

	memset(id, 's', sizeof(id));
	hello.flags |= PROTO_HELLO_SERVICE;
	hello.service.ptr = id;
	hello.service.len = PROTO_MAX_ID + 1;
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	hello.service = str_of("bad \xff");
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	hello.service.ptr = id;
	hello.service.len = PROTO_MAX_ID;
	n = proto_encode_hello(buf, BUFSZ, &hello);
	frames_put_le32(buf + n - 4 - PROTO_MAX_ID, PROTO_MAX_ID + 1);
	f = frame_of(buf, n);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), -E2BIG);
}
END_TEST

/* Where the process runs: an optional tail after the service, with both
 * or either; each of its strings bounded and UTF-8, a frame cut inside it
 * short at every byte. */
START_TEST(test_hello_place_round_trips_after_the_service)
{
	static char cg[PROTO_MAX_STR + 1];
	struct proto_frame f;
	ssize_t n, k;
	int svc;

	for (svc = 0; svc < 2; svc++) {
		fill_hello(&hello, 3, 1);
		if (svc) {
			hello.flags |= PROTO_HELLO_SERVICE;
			hello.service = str_of("web");
		}
		hello.flags |= PROTO_HELLO_PLACE | PROTO_HELLO_LOCKED;
		hello.pidns_ino = 4026532281u;
		hello.pidns_dev = 4;
		hello.hostname = str_of("box-1");
		hello.cgroup = str_of("/system.slice/docker-ab.scope");
		hello.pod = str_of("web-7d4b9");
		hello.pod_namespace = str_of("");
		n = proto_encode_hello(buf, BUFSZ, &hello);
		ck_assert_int_gt(n, 0);
		f = frame_of(buf, n);
		ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
		ck_assert_uint_eq(hello2.pidns_ino, 4026532281u);
		ck_assert_uint_eq(hello2.pidns_dev, 4);
		ck_assert(str_eq(hello2.hostname, "box-1"));
		ck_assert(str_eq(hello2.cgroup, "/system.slice/docker-ab.scope"));
		ck_assert(str_eq(hello2.pod, "web-7d4b9"));
		ck_assert_uint_eq(hello2.pod_namespace.len, 0);
		ck_assert_uint_eq(hello2.service.len, svc ? 3 : 0);
		for (k = PROTO_HDR_SIZE; k < n; k++) {
			frames_put_le32(buf, (uint32_t)k);
			f = frame_of(buf, k);
			ck_assert_int_ne(proto_decode_hello(&f, &hello2), 0);
		}
	}
	/* Without the flag the tail is not read, nor written. */
	hello.flags &= (uint16_t)~PROTO_HELLO_PLACE;
	k = proto_encode_hello(buf, BUFSZ, &hello);
	ck_assert_int_eq(k, n - 16 - 16 - 5 - 29 - 9);
	f = frame_of(buf, k);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.pidns_ino, 0);
	ck_assert_ptr_null(hello2.cgroup.ptr);
	/* Bounds: the cgroup at PROTO_MAX_STR, one byte more, not UTF-8. */
	hello.flags |= PROTO_HELLO_PLACE;
	memset(cg, '/', sizeof cg);
	hello.cgroup.ptr = cg;
	hello.cgroup.len = PROTO_MAX_STR;
	ck_assert_int_gt(proto_encode_hello(buf, BUFSZ, &hello), 0);
	hello.cgroup.len = PROTO_MAX_STR + 1;
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	hello.cgroup = str_of("/a");
	hello.hostname = str_of("bad \xff");
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
}
END_TEST

/* An area made after a gcmon.stop() carries what the earlier areas
 * counted, after the place; without the flag the frame ends as before. */
START_TEST(test_hello_prior_round_trips_after_the_place)
{
	struct proto_frame f;
	ssize_t n, k;
	unsigned i;

	fill_hello(&hello, 3, 1);
	hello.flags = PROTO_HELLO_PLACE | PROTO_HELLO_PRIOR;
	hello.hostname = hello.cgroup = str_of("h");
	hello.pod = hello.pod_namespace = str_of("");
	for (i = 0; i < 3; i++) {
		hello.prior[i].collections = 5 + i;
		hello.prior[i].collected = 500 * i;
		hello.prior[i].uncollectable = i;
	}
	n = proto_encode_hello(buf, BUFSZ, &hello);
	ck_assert_int_gt(n, 0);
	f = frame_of(buf, n);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert(str_eq(hello2.hostname, "h"));
	for (i = 0; i < 3; i++) {
		ck_assert_uint_eq(hello2.prior[i].collections, 5 + i);
		ck_assert_uint_eq(hello2.prior[i].collected, 500 * i);
		ck_assert_uint_eq(hello2.prior[i].uncollectable, i);
	}
	for (k = PROTO_HDR_SIZE; k < n; k++) {
		frames_put_le32(buf, (uint32_t)k);
		f = frame_of(buf, k);
		ck_assert_int_ne(proto_decode_hello(&f, &hello2), 0);
	}
	hello.flags &= (uint16_t)~PROTO_HELLO_PRIOR;
	k = proto_encode_hello(buf, BUFSZ, &hello);
	ck_assert_int_eq(k, n - 3 * 24);
	f = frame_of(buf, k);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.prior[0].collections, 0);
}
END_TEST

START_TEST(test_hello_round_trips_strings_at_their_caps)
{
	static char big[PROTO_MAX_STR], id[PROTO_MAX_ID];
	struct proto_frame f;
	unsigned i;

	memset(big, 'x', sizeof(big));
	memset(id, 'i', sizeof(id));
	fill_hello(&hello, 2, 16);
	hello.run_id.ptr = id;
	hello.run_id.len = PROTO_MAX_ID;
	hello.py_version.ptr = hello.executable.ptr = big;
	hello.py_version.len = hello.executable.len = PROTO_MAX_STR;
	/* 16 x 4096 = PROTO_MAX_ARGV exactly. */
	for (i = 0; i < 16; i++) {
		hello.argv[i].ptr = big;
		hello.argv[i].len = PROTO_MAX_STR;
	}
	f = frame_of(buf, proto_encode_hello(buf, BUFSZ, &hello));
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.run_id.len, PROTO_MAX_ID);
	ck_assert_uint_eq(hello2.argv[15].len, PROTO_MAX_STR);
}
END_TEST

START_TEST(test_hello_round_trips_max_argc)
{
	struct proto_frame f;
	unsigned i;

	fill_hello(&hello, 1, PROTO_MAX_ARGC);
	f = frame_of(buf, proto_encode_hello(buf, BUFSZ, &hello));
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
	ck_assert_uint_eq(hello2.argc, PROTO_MAX_ARGC);
	for (i = 0; i < PROTO_MAX_ARGC; i++)
		CHECK_EQ(hello2.argv[i].len, hello.argv[i].len);
}
END_TEST

static const unsigned types_rows[] = { FRAME_OBJECTS, FRAME_GARBAGE };

START_TEST(test_objects_and_garbage_round_trip)
{
	static char id[PROTO_MAX_ID];
	struct proto_type_count in[4], out;
	struct proto_types t;
	struct proto_frame f;
	size_t off = 0;
	unsigned i;

	memset(id, 'T', sizeof(id));
	in[0].count = 5; in[0].name = str_of("dict");
	in[1].count = UINT64_MAX; in[1].name = str_of("");
	in[2].count = 0; in[2].name = str_of("caf\xc3\xa9.Cls");
	in[3].count = 9; in[3].name.ptr = id; in[3].name.len = PROTO_MAX_ID;
	f = frame_of(buf, proto_encode_types(buf, BUFSZ, types_rows[_i], 77,
	    in, 4));
	ck_assert_uint_eq(f.hdr.type, types_rows[_i]);
	ck_assert_int_eq(proto_decode_types(&f, &t), 0);
	ck_assert_uint_eq(t.total, 77);
	ck_assert_uint_eq(t.n, 4);
	for (i = 0; i < 4; i++) {
		ck_assert_int_eq(proto_types_next(&t, &off, &out), 1);
		ck_assert_uint_eq(out.count, in[i].count);
		ck_assert_uint_eq(out.name.len, in[i].name.len);
		ck_assert(memcmp(out.name.ptr, in[i].name.ptr, out.name.len) == 0);
	}
	ck_assert_int_eq(proto_types_next(&t, &off, &out), 0);
	ck_assert_uint_eq(off, t.entries_len);
}
END_TEST

START_TEST(test_types_round_trip_empty)
{
	struct proto_type_count out;
	struct proto_types t;
	struct proto_frame f;
	size_t off = 0;

	f = frame_of(buf, proto_encode_types(buf, BUFSZ, FRAME_OBJECTS, 0,
	    NULL, 0));
	ck_assert_int_eq(proto_decode_types(&f, &t), 0);
	ck_assert_uint_eq(t.n, 0);
	ck_assert_int_eq(proto_types_next(&t, &off, &out), 0);
}
END_TEST

START_TEST(test_types_next_rejects_a_stray_offset)
{
	struct proto_type_count in = { 3, { "list", 4 } }, out;
	struct proto_types t;
	struct proto_frame f;
	size_t off = 1;		/* inside an entry: its "length" overruns */

	f = frame_of(buf, proto_encode_types(buf, BUFSZ, FRAME_GARBAGE, 3,
	    &in, 1));
	ck_assert_int_eq(proto_decode_types(&f, &t), 0);
	/* count bytes 1..8 then a length read from "list": far too long */
	ck_assert_int_eq(proto_types_next(&t, &off, &out), 0);
	ck_assert_uint_eq(off, 1);
}
END_TEST

START_TEST(test_control_round_trips)
{
	static const char js[] = "{\"cmd\":\"summary\",\"run\":\"\xe2\x82\xac\"}";
	struct proto_frame f;
	const char *json;
	size_t len;

	f = frame_of(buf, proto_encode_control(buf, BUFSZ, js, sizeof(js) - 1));
	ck_assert_int_eq(proto_decode_control(&f, &json, &len), 0);
	ck_assert_uint_eq(len, sizeof(js) - 1);
	ck_assert(memcmp(json, js, len) == 0);
	f = frame_of(buf, proto_encode_control(buf, BUFSZ, NULL, 0));
	ck_assert_int_eq(proto_decode_control(&f, &json, &len), 0);
	ck_assert_uint_eq(len, 0);
}
END_TEST

START_TEST(test_header_fields_are_little_endian)
{
	static char js[0x10203 - PROTO_HDR_SIZE];
	ssize_t n;

	memset(js, ' ', sizeof(js));
	n = proto_encode_control(buf, BUFSZ, js, sizeof(js));
	ck_assert_int_eq(n, 0x10203);
	ck_assert_uint_eq(buf[0], 0x03);
	ck_assert_uint_eq(buf[1], 0x02);
	ck_assert_uint_eq(buf[2], 0x01);
	ck_assert_uint_eq(buf[3], 0);
	ck_assert_uint_eq(buf[4], FRAME_CONTROL);
	ck_assert_uint_eq(buf[5], 0);
	ck_assert_uint_eq(buf[6], PROTO_VERSION);
	ck_assert_uint_eq(buf[7], 0);
}
END_TEST

/* ---- header errors ------------------------------------------------ */

static const struct {
	const char *name;
	size_t avail, max_frame;
	uint32_t len;
	uint16_t type;
	uint8_t version, flags;
	int want;
} hdr_rows[] = {
	{ "empty", 0, 0, 8, FRAME_CONTROL, PROTO_VERSION, 0, -EAGAIN },
	{ "short header", 7, 0, 8, FRAME_CONTROL, PROTO_VERSION, 0, -EAGAIN },
	{ "len 0", 8, 0, 0, FRAME_CONTROL, PROTO_VERSION, 0, -EMSGSIZE },
	{ "len below header", 8, 0, 7, FRAME_CONTROL, PROTO_VERSION, 0, -EMSGSIZE },
	{ "len header only", 8, 0, 8, FRAME_CONTROL, PROTO_VERSION, 0, 0 },
	{ "len at max", 8, 0, PROTO_MAX_FRAME, FRAME_CONTROL, PROTO_VERSION, 0, 0 },
	{ "len above max", 8, 0, PROTO_MAX_FRAME + 1, FRAME_CONTROL, PROTO_VERSION, 0, -EMSGSIZE },
	{ "len 4 GiB", 8, 0, UINT32_MAX, FRAME_CONTROL, PROTO_VERSION, 0, -EMSGSIZE },
	{ "len above small max", 8, 100, 101, FRAME_CONTROL, PROTO_VERSION, 0, -EMSGSIZE },
	{ "len at small max", 8, 100, 100, FRAME_CONTROL, PROTO_VERSION, 0, 0 },
	{ "max above protocol max", 8, SIZE_MAX, PROTO_MAX_FRAME + 1, FRAME_CONTROL, PROTO_VERSION, 0, -EMSGSIZE },
	{ "bad length beats bad version", 8, 0, 3, 0, 9, 0, -EMSGSIZE },
	{ "version 0", 8, 0, 8, FRAME_CONTROL, 0, 0, -EPROTONOSUPPORT },
	{ "version 2", 8, 0, 8, FRAME_CONTROL, 2, 0, -EPROTONOSUPPORT },
	{ "bad version beats bad type", 8, 0, 8, 0, 2, 0, -EPROTONOSUPPORT },
	{ "type 0", 8, 0, 8, 0, PROTO_VERSION, 0, -ENOMSG },
	{ "type above max", 8, 0, 8, FRAME_TYPE_MAX + 1, PROTO_VERSION, 0, -ENOMSG },
	{ "type 0xffff", 8, 0, 8, 0xffff, PROTO_VERSION, 0, -ENOMSG },
	{ "retired EVENTS", 8, 0, 40, 2, PROTO_VERSION, 0, -ENOMSG },
	{ "retired SAMPLE", 8, 0, 40, 3, PROTO_VERSION, 0, -ENOMSG },
	{ "retired BYE", 8, 0, 40, 6, PROTO_VERSION, 0, -ENOMSG },
	{ "retired, another version", 8, 0, 40, 2, 2, 0, -EPROTONOSUPPORT },
	{ "retired, length 4 GiB", 8, 0, UINT32_MAX, 6, PROTO_VERSION, 0, -EMSGSIZE },
	{ "HELLO", 8, 0, 8, FRAME_HELLO, PROTO_VERSION, 0, 0 },
	{ "OBJECTS", 8, 0, 8, FRAME_OBJECTS, PROTO_VERSION, 0, 0 },
	{ "GARBAGE", 8, 0, 8, FRAME_GARBAGE, PROTO_VERSION, 0, 0 },
	{ "flags ignored", 8, 0, 8, FRAME_HELLO, PROTO_VERSION, 0xff, 0 },
};

START_TEST(test_decode_header_rejects_bad_headers)
{
	uint8_t b[8];
	struct frame_hdr h;

	frames_put_le32(b, hdr_rows[_i].len);
	frames_put_le16(b + 4, hdr_rows[_i].type);
	b[6] = hdr_rows[_i].version;
	b[7] = hdr_rows[_i].flags;
	ck_assert_msg(proto_decode_header(b, hdr_rows[_i].avail,
	    hdr_rows[_i].max_frame, &h) == hdr_rows[_i].want, "%s",
	    hdr_rows[_i].name);
	if (hdr_rows[_i].want == 0) {
		ck_assert_uint_eq(h.len, hdr_rows[_i].len);
		ck_assert_uint_eq(h.type, hdr_rows[_i].type);
		ck_assert_uint_eq(h.flags, hdr_rows[_i].flags);
	}
}
END_TEST

/* ---- payload errors ----------------------------------------------- */

/* Builds a valid frame of type t (OBJECTS carries one entry). */
static ssize_t
build_one(unsigned t, uint8_t *p, size_t cap)
{
	struct proto_type_count tc = { 1, { "int", 3 } };

	switch (t) {
	case FRAME_HELLO:
		fill_hello(&hello, 3, 3);
		return proto_encode_hello(p, cap, &hello);
	case FRAME_OBJECTS:
	case FRAME_GARBAGE:
		return proto_encode_types(p, cap, (enum proto_frame_type)t, 1,
		    &tc, 1);
	default:
		return proto_encode_control(p, cap, "{}", 2);
	}
}

static int
decode_as(unsigned decoder, const struct proto_frame *f)
{
	struct proto_types t;
	const char *json;
	size_t len;

	switch (decoder) {
	case FRAME_HELLO:
		return proto_decode_hello(f, &hello2);
	case FRAME_OBJECTS:
	case FRAME_GARBAGE:
		return proto_decode_types(f, &t);
	default:
		return proto_decode_control(f, &json, &len);
	}
}

/* A retired type (EVENTS, SAMPLE, BYE) is refused as an unknown one is,
 * however well-formed the frame: by the header decoder, by the stream
 * reader after the good frames before it, and by every payload decoder. */
START_TEST(test_retired_type_is_refused_like_an_unknown_one)
{
	unsigned type = frames_retired_types[_i], k;
	struct proto_reader r;
	struct proto_frame f;
	struct frame_hdr h;
	uint8_t unknown[8];
	ssize_t n;

	n = proto_encode_control(buf, BUFSZ, "{}", 2);
	ck_assert_int_eq(n, PROTO_HDR_SIZE + 2);
	frames_put_le32(buf + n, 40);
	frames_put_le16(buf + n + 4, (uint16_t)type);
	buf[n + 6] = PROTO_VERSION;
	buf[n + 7] = 0;
	memcpy(unknown, buf + n, 8);
	frames_put_le16(unknown + 4, 0x63);
	ck_assert_int_eq(proto_decode_header(buf + n, 40, 0, &h), -ENOMSG);
	ck_assert_int_eq(proto_decode_header(unknown, 8, 0, &h), -ENOMSG);
	ck_assert_str_eq(proto_frame_type_name(type), "UNKNOWN");

	proto_reader_init(&r, 0);
	ck_assert_int_eq(proto_reader_feed(&r, buf, (size_t)n + 40), 0);
	ck_assert_int_eq(proto_reader_next(&r, &f), 1);
	ck_assert_uint_eq(f.hdr.type, FRAME_CONTROL);
	ck_assert_int_eq(proto_reader_next(&r, &f), -ENOMSG);
	proto_reader_fini(&r);

	f.hdr.type = (uint16_t)type;
	f.payload = buf + n + PROTO_HDR_SIZE;
	f.payload_len = 32;
	for (k = 0; k < FRAMES_NTYPES; k++)
		ck_assert_int_eq(decode_as(frames_types[k], &f), -EPROTO);
}
END_TEST

/* _i walks every (frame type, decoder) pair of different kinds. */
START_TEST(test_decoder_rejects_frame_of_another_type)
{
	unsigned type = frames_types[_i / FRAMES_NTYPES];
	unsigned dec = frames_types[_i % FRAMES_NTYPES];
	struct proto_frame f;
	int want;

	f = frame_of(buf, build_one(type, buf, BUFSZ));
	if (type == dec || (type == FRAME_OBJECTS && dec == FRAME_GARBAGE) ||
	    (type == FRAME_GARBAGE && dec == FRAME_OBJECTS))
		want = 0;
	else
		want = -EPROTO;
	ck_assert_msg(decode_as(dec, &f) == want, "%s frame, %s decoder",
	    proto_frame_type_name(type), proto_frame_type_name(dec));
}
END_TEST

/* Every proper prefix of every payload (but CONTROL, the last of
 * frames_types, where any length is a length) is short of its fields. */
START_TEST(test_decoder_rejects_every_truncation)
{
	unsigned type = frames_types[_i];
	struct proto_frame f;
	size_t full, cut;

	f = frame_of(buf, build_one(type, buf, BUFSZ));
	full = f.payload_len;
	for (cut = 0; cut < full; cut++) {
		f.payload_len = cut;
		if (decode_as(type, &f) != -EBADMSG)
			ck_abort_msg("%s cut at %zu", proto_frame_type_name(type),
			    cut);
	}
	f.payload = NULL;
	f.payload_len = 0;
	ck_assert_int_eq(decode_as(type, &f), -EBADMSG);
}
END_TEST

START_TEST(test_decoder_rejects_trailing_bytes)
{
	unsigned type = frames_types[_i];
	struct proto_frame f;
	ssize_t n = build_one(type, buf, BUFSZ);

	buf[n] = 0;
	f = frame_of(buf, n);
	f.payload_len++;
	ck_assert_msg(decode_as(type, &f) == -EPROTO, "%s",
	    proto_frame_type_name(type));
}
END_TEST

/* Offset of ngen in the payload of HELLO. */
static const struct { unsigned type; size_t ngen_off; uint8_t ngen; } ngen_rows[] = {
	{ FRAME_HELLO, 44, 0 }, { FRAME_HELLO, 44, PROTO_MAX_GEN + 1 },
	{ FRAME_HELLO, 44, 255 },
};

START_TEST(test_decoder_rejects_bad_ngen)
{
	struct proto_frame f;

	f = frame_of(buf, build_one(ngen_rows[_i].type, buf, BUFSZ));
	ck_assert_uint_eq(f.payload[ngen_rows[_i].ngen_off], 3);
	buf[PROTO_HDR_SIZE + ngen_rows[_i].ngen_off] = ngen_rows[_i].ngen;
	ck_assert_int_eq(decode_as(ngen_rows[_i].type, &f), -EPROTO);
}
END_TEST

static const struct { uint32_t n, name_len; int want; } types_err_rows[] = {
	{ 2, 3, -EBADMSG },		/* a second entry that is not there */
	{ 0, 3, -EPROTO },		/* the entry becomes trailing bytes */
	{ PROTO_MAX_TYPES, 3, -EBADMSG },
	{ PROTO_MAX_TYPES + 1, 3, -E2BIG },
	{ 1, PROTO_MAX_ID + 1, -E2BIG },
	{ 1, 4, -EBADMSG },
	{ 1, UINT32_MAX, -E2BIG },
	{ 1, 2, -EPROTO },
};

START_TEST(test_types_rejects_bad_counts_and_lengths)
{
	struct proto_frame f;
	struct proto_types t;

	f = frame_of(buf, build_one(FRAME_OBJECTS, buf, BUFSZ));
	frames_put_le32(buf + PROTO_HDR_SIZE + 8, types_err_rows[_i].n);
	frames_put_le32(buf + PROTO_HDR_SIZE + 20, types_err_rows[_i].name_len);
	ck_assert_int_eq(proto_decode_types(&f, &t), types_err_rows[_i].want);
}
END_TEST

/* Hand-built HELLO: fixed part, one baseline, then the strings and argv
 * given; lets a test write what the encoder refuses to. */
static size_t
raw_hello(uint8_t *p, const uint32_t *lens, const uint8_t *fill, size_t nstr,
    uint32_t argc)
{
	size_t off = PROTO_HDR_SIZE, i;

	memset(p, 0, PROTO_HDR_SIZE + 45 + 28);
	p[PROTO_HDR_SIZE + 44] = 1;
	off += 45 + 28;
	for (i = 0; i < nstr; i++) {
		if (i == 3) {
			frames_put_le32(p + off, argc);
			off += 4;
		}
		frames_put_le32(p + off, lens[i]);
		off += 4;
		if (lens[i] <= PROTO_MAX_FRAME) {
			memset(p + off, fill != NULL ? fill[i] : 'a', lens[i]);
			off += lens[i];
		}
	}
	if (nstr == 3) {
		frames_put_le32(p + off, argc);
		off += 4;
	}
	frames_put_le32(p, (uint32_t)off);
	frames_put_le16(p + 4, FRAME_HELLO);
	p[6] = PROTO_VERSION;
	return off;
}

START_TEST(test_hello_rejects_argv_above_total_cap)
{
	uint32_t lens[3 + 17];
	struct proto_frame f;
	size_t i, n;

	lens[0] = 1; lens[1] = 1; lens[2] = 1;
	for (i = 3; i < 20; i++)
		lens[i] = PROTO_MAX_STR;	/* 17 x 4096 > 64 KiB */
	n = raw_hello(buf, lens, NULL, 20, 17);
	f = frame_of(buf, (ssize_t)n);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), -E2BIG);
	/* and 16 of them is exactly the cap */
	n = raw_hello(buf, lens, NULL, 19, 16);
	f = frame_of(buf, (ssize_t)n);
	ck_assert_int_eq(proto_decode_hello(&f, &hello2), 0);
}
END_TEST

static const struct {
	const char *name;
	uint32_t lens[4];
	size_t nstr;
	uint32_t argc;
	int want;
} hello_err_rows[] = {
	{ "run_id above cap", { PROTO_MAX_ID + 1, 1, 1 }, 3, 0, -E2BIG },
	{ "py_version above cap", { 1, PROTO_MAX_STR + 1, 1 }, 3, 0, -E2BIG },
	{ "executable above cap", { 1, 1, PROTO_MAX_STR + 1 }, 3, 0, -E2BIG },
	{ "argv string above cap", { 1, 1, 1, PROTO_MAX_STR + 1 }, 4, 1, -E2BIG },
	{ "argc above cap", { 1, 1, 1 }, 3, PROTO_MAX_ARGC + 1, -E2BIG },
	{ "argc above bytes left", { 1, 1, 1 }, 3, 1, -EBADMSG },
	{ "argc 2 with 1 string", { 1, 1, 1, 1 }, 4, 2, -EBADMSG },
	{ "string length 4 GiB", { UINT32_MAX, 1, 1 }, 3, 0, -E2BIG },
	{ "argc 0 then a trailing string", { 1, 1, 1, 1 }, 4, 0, -EPROTO },
	{ "valid", { 0, 0, 0, 0 }, 4, 1, 0 },
};

START_TEST(test_hello_rejects_bad_strings_and_counts)
{
	struct proto_frame f;
	size_t n;

	n = raw_hello(buf, hello_err_rows[_i].lens, NULL,
	    hello_err_rows[_i].nstr, hello_err_rows[_i].argc);
	f = frame_of(buf, (ssize_t)n);
	ck_assert_msg(proto_decode_hello(&f, &hello2) == hello_err_rows[_i].want,
	    "%s", hello_err_rows[_i].name);
}
END_TEST

/* Each row is a string; whether it is strict UTF-8 without NUL. */
static const struct { const char *name, *s; size_t len; int ok; } utf8_rows[] = {
	{ "ascii", "hello", 5, 1 },
	{ "U+007F", "\x7f", 1, 1 },
	{ "U+0080", "\xc2\x80", 2, 1 },
	{ "U+07FF", "\xdf\xbf", 2, 1 },
	{ "U+0800", "\xe0\xa0\x80", 3, 1 },
	{ "U+D7FF", "\xed\x9f\xbf", 3, 1 },
	{ "U+E000", "\xee\x80\x80", 3, 1 },
	{ "U+FFFF", "\xef\xbf\xbf", 3, 1 },
	{ "U+10000", "\xf0\x90\x80\x80", 4, 1 },
	{ "U+10FFFF", "\xf4\x8f\xbf\xbf", 4, 1 },
	{ "NUL", "a\0b", 3, 0 },
	{ "lone continuation", "\x80", 1, 0 },
	{ "overlong 2-byte C0", "\xc0\x80", 2, 0 },
	{ "overlong 2-byte C1", "\xc1\xbf", 2, 0 },
	{ "overlong 3-byte", "\xe0\x9f\xbf", 3, 0 },
	{ "overlong 4-byte", "\xf0\x8f\xbf\xbf", 4, 0 },
	{ "surrogate D800", "\xed\xa0\x80", 3, 0 },
	{ "surrogate DFFF", "\xed\xbf\xbf", 3, 0 },
	{ "above U+10FFFF", "\xf4\x90\x80\x80", 4, 0 },
	{ "F5 lead", "\xf5\x80\x80\x80", 4, 0 },
	{ "FF", "\xff", 1, 0 },
	{ "truncated 2-byte", "\xc3", 1, 0 },
	{ "truncated 3-byte", "\xe2\x82", 2, 0 },
	{ "truncated 4-byte", "\xf0\x9f\x98", 3, 0 },
	{ "bad second byte", "\xc3\x41", 2, 0 },
	{ "bad third byte", "\xe2\x82\x41", 3, 0 },
	{ "bad fourth byte", "\xf0\x9f\x98\xc0", 4, 0 },
};

START_TEST(test_strings_must_be_strict_utf8)
{
	uint32_t lens[3] = { (uint32_t)utf8_rows[_i].len, 0, 0 };
	struct proto_frame f;
	const char *json;
	size_t n, len;
	int want = utf8_rows[_i].ok ? 0 : -EILSEQ;

	/* as a HELLO run_id */
	n = raw_hello(buf, lens, NULL, 3, 0);
	memcpy(buf + PROTO_HDR_SIZE + 45 + 28 + 4, utf8_rows[_i].s,
	    utf8_rows[_i].len);
	f = frame_of(buf, (ssize_t)n);
	ck_assert_msg(proto_decode_hello(&f, &hello2) == want, "hello %s",
	    utf8_rows[_i].name);
	/* as a whole CONTROL payload */
	f.hdr.type = FRAME_CONTROL;
	f.payload = (const uint8_t *)utf8_rows[_i].s;
	f.payload_len = utf8_rows[_i].len;
	ck_assert_msg(proto_decode_control(&f, &json, &len) == want,
	    "control %s", utf8_rows[_i].name);
	/* and the encoders refuse what the decoders would */
	ck_assert_msg(proto_encode_control(buf, BUFSZ, utf8_rows[_i].s,
	    utf8_rows[_i].len) == (utf8_rows[_i].ok ?
	    (ssize_t)(PROTO_HDR_SIZE + utf8_rows[_i].len) : -EINVAL),
	    "encode %s", utf8_rows[_i].name);
}
END_TEST

START_TEST(test_type_name_must_be_utf8)
{
	struct proto_frame f;
	struct proto_types t;

	f = frame_of(buf, build_one(FRAME_GARBAGE, buf, BUFSZ));
	buf[PROTO_HDR_SIZE + 24 + 1] = 0xc0;	/* "i\xc0t" */
	ck_assert_int_eq(proto_decode_types(&f, &t), -EILSEQ);
}
END_TEST

/* ---- encoder errors ----------------------------------------------- */

START_TEST(test_encoders_report_small_buffers)
{
	unsigned type = frames_types[_i];
	ssize_t n = build_one(type, buf, BUFSZ), m;
	size_t cap;

	ck_assert_int_gt(n, 0);
	for (cap = 0; cap < (size_t)n; cap++) {
		m = build_one(type, buf, cap);
		if (m != -ENOBUFS)
			ck_abort_msg("%s cap %zu: %zd",
			    proto_frame_type_name(type), cap, m);
	}
	CHECK_EQ(build_one(type, buf, (size_t)n), n);
}
END_TEST

START_TEST(test_encode_hello_rejects_what_the_format_cannot_hold)
{
	static char big[PROTO_MAX_STR + 1];

	memset(big, 'b', sizeof(big));
	fill_hello(&hello, 0, 1);
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, PROTO_MAX_GEN + 1, 1);
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, 3, PROTO_MAX_ARGC + 1);
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, 3, 1);
	hello.run_id.len = PROTO_MAX_ID + 1;
	hello.run_id.ptr = big;
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, 3, 1);
	hello.py_version.len = PROTO_MAX_STR + 1;
	hello.py_version.ptr = big;
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, 3, 1);
	hello.executable.ptr = NULL;	/* a length without bytes */
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, 3, 1);
	hello.argv[0].len = PROTO_MAX_STR + 1;
	hello.argv[0].ptr = big;
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
	fill_hello(&hello, 3, 1);
	hello.argv[0] = str_of("\xff");
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
}
END_TEST

START_TEST(test_encode_hello_rejects_argv_above_total_cap)
{
	static char big[PROTO_MAX_STR];
	unsigned i;

	memset(big, 'b', sizeof(big));
	fill_hello(&hello, 3, 17);
	for (i = 0; i < 17; i++) {
		hello.argv[i].ptr = big;
		hello.argv[i].len = PROTO_MAX_STR;
	}
	ck_assert_int_eq(proto_encode_hello(buf, BUFSZ, &hello), -EINVAL);
}
END_TEST

START_TEST(test_encode_types_rejects_what_the_format_cannot_hold)
{
	static struct proto_type_count tc[PROTO_MAX_TYPES + 1];
	static char big[PROTO_MAX_ID + 1];
	unsigned i;

	memset(big, 'n', sizeof(big));
	for (i = 0; i <= PROTO_MAX_TYPES; i++)
		tc[i].name = str_of("x");
	ck_assert_int_eq(proto_encode_types(buf, BUFSZ, FRAME_HELLO, 0, tc, 1),
	    -EINVAL);
	ck_assert_int_eq(proto_encode_types(buf, BUFSZ, FRAME_OBJECTS, 0, tc,
	    PROTO_MAX_TYPES + 1), -EINVAL);
	ck_assert_int_gt(proto_encode_types(buf, BUFSZ, FRAME_OBJECTS, 0, tc,
	    PROTO_MAX_TYPES), 0);
	ck_assert_int_eq(proto_encode_types(buf, BUFSZ, FRAME_OBJECTS, 0, NULL,
	    1), -EINVAL);
	tc[0].name.ptr = big;
	tc[0].name.len = PROTO_MAX_ID + 1;
	ck_assert_int_eq(proto_encode_types(buf, BUFSZ, FRAME_GARBAGE, 0, tc, 1),
	    -EINVAL);
}
END_TEST

START_TEST(test_encode_control_rejects_oversized_and_missing_json)
{
	char *big = malloc(PROTO_MAX_FRAME);

	ck_assert_ptr_nonnull(big);
	memset(big, ' ', PROTO_MAX_FRAME);
	ck_assert_int_eq(proto_encode_control(buf, BUFSZ, big,
	    PROTO_MAX_FRAME - PROTO_HDR_SIZE + 1), -EINVAL);
	ck_assert_int_eq(proto_encode_control(buf, BUFSZ, big,
	    PROTO_MAX_FRAME - PROTO_HDR_SIZE), (ssize_t)PROTO_MAX_FRAME);
	ck_assert_int_eq(proto_encode_control(buf, BUFSZ, big, SIZE_MAX),
	    -EINVAL);
	ck_assert_int_eq(proto_encode_control(buf, BUFSZ, NULL, 1), -EINVAL);
	free(big);
}
END_TEST

/* ---- names -------------------------------------------------------- */

START_TEST(test_strerror_names_each_error_distinctly)
{
	static const int errs[] = { 0, -EAGAIN, -EMSGSIZE, -EPROTONOSUPPORT,
	    -ENOMSG, -EBADMSG, -EPROTO, -E2BIG, -EILSEQ, -ENOBUFS, -EINVAL,
	    -ENOMEM, -ENOENT };
	size_t i, j, n = sizeof(errs) / sizeof(errs[0]);

	for (i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(proto_strerror(errs[i]));
		for (j = 0; j < i; j++)
			ck_assert_str_ne(proto_strerror(errs[i]),
			    proto_strerror(errs[j]));
	}
	ck_assert_str_eq(proto_strerror(-ENOENT), proto_strerror(-EPERM));
}
END_TEST

START_TEST(test_frame_type_names)
{
	ck_assert_str_eq(proto_frame_type_name(FRAME_HELLO), "HELLO");
	ck_assert_str_eq(proto_frame_type_name(FRAME_OBJECTS), "OBJECTS");
	ck_assert_str_eq(proto_frame_type_name(FRAME_GARBAGE), "GARBAGE");
	ck_assert_str_eq(proto_frame_type_name(FRAME_CONTROL), "CONTROL");
	ck_assert_str_eq(proto_frame_type_name(2), "UNKNOWN");	/* EVENTS */
	ck_assert_str_eq(proto_frame_type_name(3), "UNKNOWN");	/* SAMPLE */
	ck_assert_str_eq(proto_frame_type_name(6), "UNKNOWN");	/* BYE */
	ck_assert_str_eq(proto_frame_type_name(0), "UNKNOWN");
	ck_assert_str_eq(proto_frame_type_name(FRAME_TYPE_MAX + 1), "UNKNOWN");
}
END_TEST

/* ---- the stream reader -------------------------------------------- */

/* A stream of one frame of every type in use plus random ones. */
static size_t
build_stream(uint8_t *p, size_t cap, size_t *nframes)
{
	struct frames_rng r;
	size_t off = 0, k = 0;
	ssize_t n;
	unsigned t;

	frames_rng_seed(&r, 7);
	for (t = 0; t < FRAMES_NTYPES; t++, k++) {
		n = build_one(frames_types[t], p + off, cap - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
	for (t = 0; t < 3 * FRAMES_NTYPES; t++, k++) {
		n = frames_build(&r, frames_types[t % FRAMES_NTYPES], p + off,
		    cap - off);
		ck_assert_int_gt(n, 0);
		off += (size_t)n;
	}
	*nframes = k;
	return off;
}

/* Walks the frames of a stream by hand (the reference). */
static size_t
frame_at(const uint8_t *p, size_t k)
{
	size_t off = 0;

	while (k-- > 0)
		off += frames_get_le32(p + off);
	return off;
}

/* Takes every frame the reader has and checks each against the stream. */
static void
drain(struct proto_reader *r, const uint8_t *stream, size_t *k)
{
	struct proto_frame f;
	size_t at;
	int rc;

	while ((rc = proto_reader_next(r, &f)) == 1) {
		at = frame_at(stream, *k);
		CHECK_EQ(f.hdr.len, frames_get_le32(stream + at));
		CHECK_EQ(f.hdr.type, stream[at + 4]);
		CHECK_EQ(f.payload_len, f.hdr.len - PROTO_HDR_SIZE);
		CHECK(memcmp(f.payload, stream + at + PROTO_HDR_SIZE,
		    f.payload_len) == 0);
		CHECK_EQ(decode_as(f.hdr.type, &f), 0);
		(*k)++;
	}
	CHECK_EQ(rc, 0);
}

START_TEST(test_reader_takes_a_whole_stream_at_once)
{
	struct proto_reader r;
	size_t len, nframes, k = 0;

	len = build_stream(buf, BUFSZ, &nframes);
	proto_reader_init(&r, 0);
	ck_assert_int_eq(proto_reader_feed(&r, buf, len), 0);
	ck_assert_uint_eq(proto_reader_pending(&r), len);
	drain(&r, buf, &k);
	ck_assert_uint_eq(k, nframes);
	ck_assert_uint_eq(proto_reader_pending(&r), 0);
	proto_reader_fini(&r);
}
END_TEST

START_TEST(test_reader_takes_a_stream_one_byte_at_a_time)
{
	struct proto_reader r;
	size_t len, nframes, i, k = 0;

	len = build_stream(buf, BUFSZ, &nframes);
	proto_reader_init(&r, 0);
	for (i = 0; i < len; i++) {
		CHECK_EQ(proto_reader_feed(&r, buf + i, 1), 0);
		drain(&r, buf, &k);
	}
	ck_assert_uint_eq(k, nframes);
	ck_assert_uint_eq(proto_reader_pending(&r), 0);
	proto_reader_fini(&r);
}
END_TEST

START_TEST(test_reader_takes_a_stream_split_at_every_offset)
{
	struct proto_reader r;
	size_t len, nframes, cut, k;

	len = build_stream(buf, BUFSZ, &nframes);
	for (cut = 0; cut <= len; cut++) {
		k = 0;
		proto_reader_init(&r, 0);
		CHECK_EQ(proto_reader_feed(&r, buf, cut), 0);
		drain(&r, buf, &k);
		CHECK_EQ(proto_reader_feed(&r, buf + cut, len - cut), 0);
		drain(&r, buf, &k);
		CHECK_EQ(k, nframes);
		CHECK_EQ(proto_reader_pending(&r), 0);
		proto_reader_fini(&r);
	}
}
END_TEST

/* Two pieces fed before any frame is taken: still the same frames. */
START_TEST(test_reader_takes_pieces_fed_without_draining)
{
	struct proto_reader r;
	size_t len, nframes, cut, k;

	len = build_stream(buf, BUFSZ, &nframes);
	for (cut = 0; cut <= len; cut += 7) {
		k = 0;
		proto_reader_init(&r, 0);
		ck_assert_int_eq(proto_reader_feed(&r, buf, cut), 0);
		ck_assert_int_eq(proto_reader_feed(&r, buf + cut, len - cut), 0);
		drain(&r, buf, &k);
		ck_assert_uint_eq(k, nframes);
		proto_reader_fini(&r);
	}
}
END_TEST

START_TEST(test_reader_rejects_4gib_length_without_allocating)
{
	struct proto_reader r;
	struct proto_frame f;
	uint8_t hdr[8] = { 0xff, 0xff, 0xff, 0xff, FRAME_CONTROL, 0,
	    PROTO_VERSION, 0 };

	proto_reader_init(&r, 0);
	ck_assert_int_eq(proto_reader_feed(&r, hdr, sizeof(hdr)), 0);
	/* A body for it arrives: none of it is kept. */
	memset(buf, 0x55, 1 << 20);
	ck_assert_int_eq(proto_reader_feed(&r, buf, 1 << 20), 0);
	ck_assert_uint_le(r.cap, 256);
	ck_assert_uint_eq(proto_reader_pending(&r), sizeof(hdr));
	ck_assert_int_eq(proto_reader_next(&r, &f), -EMSGSIZE);
	proto_reader_fini(&r);
}
END_TEST

START_TEST(test_reader_rejects_frame_above_its_max)
{
	struct proto_reader r;
	struct proto_frame f;
	ssize_t n1, n2;

	/* a CONTROL of 10 bytes fits, a HELLO does not */
	n1 = build_one(FRAME_CONTROL, buf, BUFSZ);
	n2 = build_one(FRAME_HELLO, buf + n1, BUFSZ - (size_t)n1);
	ck_assert_int_gt(n2, 64);
	proto_reader_init(&r, 64);
	ck_assert_int_eq(proto_reader_feed(&r, buf, (size_t)(n1 + n2)), 0);
	ck_assert_int_eq(proto_reader_next(&r, &f), 1);
	ck_assert_uint_eq(f.hdr.type, FRAME_CONTROL);
	ck_assert_int_eq(proto_reader_next(&r, &f), -EMSGSIZE);
	ck_assert_uint_eq(proto_reader_pending(&r), PROTO_HDR_SIZE);
	proto_reader_fini(&r);
}
END_TEST

/* Good frames ahead of a bad header come out first, then the error, and
 * the error stays: every later feed and next returns it. */
static const struct { const char *name; uint8_t hdr[8]; int want; } bad_rows[] = {
	{ "version", { 8, 0, 0, 0, FRAME_CONTROL, 0, 2, 0 }, -EPROTONOSUPPORT },
	{ "type", { 8, 0, 0, 0, 0x63, 0, PROTO_VERSION, 0 }, -ENOMSG },
	{ "retired type", { 40, 0, 0, 0, 6, 0, PROTO_VERSION, 0 }, -ENOMSG },
	{ "length", { 4, 0, 0, 0, FRAME_CONTROL, 0, PROTO_VERSION, 0 }, -EMSGSIZE },
};

START_TEST(test_reader_error_is_sticky)
{
	struct proto_reader r;
	struct proto_frame f;
	size_t len, nframes, k = 0, step;

	for (step = 1; step <= 9; step += 8) {
		len = build_stream(buf, BUFSZ, &nframes);
		memcpy(buf + len, bad_rows[_i].hdr, 8);
		memset(buf + len + 8, 0, 32);
		len += 40;
		proto_reader_init(&r, 0);
		for (k = 0; k < len; k += step)
			(void)proto_reader_feed(&r, buf + k,
			    step < len - k ? step : len - k);
		for (k = 0; k < nframes; k++)
			CHECK_EQ(proto_reader_next(&r, &f), 1);
		ck_assert_int_eq(proto_reader_next(&r, &f), bad_rows[_i].want);
		ck_assert_int_eq(proto_reader_next(&r, &f), bad_rows[_i].want);
		ck_assert_int_eq(proto_reader_feed(&r, buf, 40),
		    bad_rows[_i].want);
		ck_assert_int_eq(proto_reader_next(&r, &f), bad_rows[_i].want);
		proto_reader_fini(&r);
	}
}
END_TEST

/* A CONTROL frame of n bytes in all, its payload spaces. */
static ssize_t
big_control(uint8_t *p, size_t n)
{
	static char js[2500000];

	ck_assert_uint_le(n - PROTO_HDR_SIZE, sizeof(js));
	memset(js, ' ', n - PROTO_HDR_SIZE);
	return proto_encode_control(p, BUFSZ, js, n - PROTO_HDR_SIZE);
}

START_TEST(test_reader_releases_a_big_buffer_when_idle)
{
	struct proto_reader r;
	struct proto_frame f;
	ssize_t n;

	n = big_control(buf, 800000);
	proto_reader_init(&r, 0);
	ck_assert_int_eq(proto_reader_feed(&r, buf, (size_t)n), 0);
	ck_assert_uint_ge(r.cap, (size_t)n);
	ck_assert_int_eq(proto_reader_next(&r, &f), 1);
	n = build_one(FRAME_OBJECTS, buf, BUFSZ);
	ck_assert_int_eq(proto_reader_feed(&r, buf, (size_t)n), 0);
	ck_assert_uint_lt(r.cap, 1024);
	ck_assert_int_eq(proto_reader_next(&r, &f), 1);
	ck_assert_uint_eq(f.hdr.type, FRAME_OBJECTS);
	proto_reader_fini(&r);
}
END_TEST

START_TEST(test_reader_fini_twice_is_harmless)
{
	struct proto_reader r;

	proto_reader_init(&r, 0);
	ck_assert_int_eq(proto_reader_feed(&r, "\x08\0\0", 3), 0);
	proto_reader_fini(&r);
	proto_reader_fini(&r);
	ck_assert_ptr_null(r.buf);
}
END_TEST

/* The address-space limit is restored before anything else runs. ASan
 * reserves terabytes of shadow memory, so this cannot run under it. */
#ifndef CHECK_ASAN
START_TEST(test_reader_reports_out_of_memory_and_it_sticks)
{
	struct proto_reader r;
	struct proto_frame f;
	struct rlimit old, lim;
	ssize_t n;
	int rc1, rc2;

	n = big_control(buf, 2400000);
	proto_reader_init(&r, 0);
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
	lim = old;
	lim.rlim_cur = 1;	/* every new mapping fails from here */
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
	rc1 = proto_reader_feed(&r, buf, (size_t)n);
	rc2 = proto_reader_next(&r, &f);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
	ck_assert_int_eq(rc1, -ENOMEM);
	ck_assert_int_eq(rc2, -ENOMEM);
	ck_assert_int_eq(proto_reader_feed(&r, buf, 1), -ENOMEM);
	proto_reader_fini(&r);
}
END_TEST
#endif

/* ---- WATCH_EVENTS: the binary watch stream's records ------------- */

static const struct proto_watch_event watch_recs[3] = {
	{ 1, 0, GC_MODEL_CLASSIC, 0, 1765000000123456789ull, 213456, 0, 15234,
	    0 },
	{ UINT32_MAX, 2, GC_MODEL_INCREMENTAL, PROTO_WATCH_COLLECTOR,
	    UINT64_MAX, UINT64_MAX, 7, UINT64_MAX, UINT32_MAX },
	{ 77, 0xffff, 0xff, 0xff, 0, 0, 0, 0, 0 },
};

static int
watch_rec_eq(const struct proto_watch_event *a,
    const struct proto_watch_event *b)
{
	return a->pid == b->pid && a->generation == b->generation &&
	    a->gc_model == b->gc_model && a->flags == b->flags &&
	    a->time_ns == b->time_ns && a->pause_ns == b->pause_ns &&
	    a->collector_ns == b->collector_ns &&
	    a->collected == b->collected &&
	    a->uncollectable == b->uncollectable;
}

START_TEST(test_watch_events_round_trip)
{
	struct proto_watch_events b;
	struct proto_watch_event e;
	struct proto_frame f;
	ssize_t n;
	uint32_t i;

	n = proto_encode_watch_events(buf, BUFSZ, watch_recs, 3);
	ck_assert_int_eq(n, (ssize_t)proto_watch_events_size(3));
	ck_assert_int_eq(n, PROTO_HDR_SIZE + 8 + 3 * PROTO_WATCH_REC_SIZE);
	f = frame_of(buf, n);
	ck_assert_uint_eq(f.hdr.type, FRAME_WATCH_EVENTS);
	ck_assert_int_eq(proto_decode_watch_events(&f, &b), 0);
	ck_assert_uint_eq(b.n, 3);
	ck_assert_uint_eq(b.rec_size, PROTO_WATCH_REC_SIZE);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(proto_watch_event_get(&b, i, &e), 0);
		ck_assert_msg(watch_rec_eq(&e, &watch_recs[i]), "record %u", i);
	}
	ck_assert_int_eq(proto_watch_event_get(&b, 3, &e), -ERANGE);
	ck_assert_int_eq(proto_watch_event_get(&b, UINT32_MAX, &e), -ERANGE);
	/* Little-endian, byte by byte: the first record's pid, the
	 * second's generation. */
	ck_assert_uint_eq(buf[16], 1);
	ck_assert_uint_eq(buf[17] | buf[18] | buf[19], 0);
	ck_assert_uint_eq(buf[16 + 48 + 4], 2);
	ck_assert_uint_eq(buf[16 + 48 + 5], 0);
}
END_TEST

/* A later gcmond's longer records: the known fields, the rest skipped. */
START_TEST(test_watch_events_longer_records_are_read_and_their_tail_skipped)
{
	struct proto_watch_events b;
	struct proto_watch_event e;
	struct proto_frame f;
	uint8_t one[PROTO_HDR_SIZE + 8 + PROTO_WATCH_REC_SIZE];
	size_t i, big = 64;

	ck_assert_int_eq(proto_encode_watch_events(one, sizeof one,
	    watch_recs, 1), (ssize_t)sizeof one);
	memset(buf, 0xee, BUFSZ);
	memcpy(buf, one, PROTO_HDR_SIZE + 8);
	for (i = 0; i < 2; i++)
		memcpy(buf + PROTO_HDR_SIZE + 8 + i * big,
		    one + PROTO_HDR_SIZE + 8, PROTO_WATCH_REC_SIZE);
	frames_put_le32(buf, (uint32_t)(PROTO_HDR_SIZE + 8 + 2 * big));
	frames_put_le32(buf + PROTO_HDR_SIZE, 2);
	frames_put_le32(buf + PROTO_HDR_SIZE + 4, (uint32_t)big);
	f = frame_of(buf, (ssize_t)(PROTO_HDR_SIZE + 8 + 2 * big));
	ck_assert_int_eq(proto_decode_watch_events(&f, &b), 0);
	ck_assert_uint_eq(b.n, 2);
	ck_assert_int_eq(proto_watch_event_get(&b, 1, &e), 0);
	ck_assert(watch_rec_eq(&e, &watch_recs[0]));
}
END_TEST

/* Hostile WATCH_EVENTS payloads, from a valid frame of two records:
 * payload_len, then nrec and rec_size as written. */
static const struct {
	const char *name;
	size_t len;
	uint32_t nrec, rec_size;
	int want;
} watch_err_rows[] = {
	{ "valid", 8 + 96, 2, 48, 0 },
	{ "empty payload", 0, 2, 48, -EBADMSG },
	{ "count only", 4, 2, 48, -EBADMSG },
	{ "no record at all", 8, 2, 48, -EBADMSG },
	{ "one byte short", 8 + 95, 2, 48, -EBADMSG },
	{ "one record short", 8 + 48, 2, 48, -EBADMSG },
	{ "one byte over", 8 + 97, 2, 48, -EPROTO },
	{ "count 0", 8 + 96, 0, 48, -EPROTO },
	{ "count 0, no records", 8, 0, 48, -EPROTO },
	{ "count above the records", 8 + 96, 3, 48, -EBADMSG },
	{ "count below the records", 8 + 96, 1, 48, -EPROTO },
	{ "count 2^32-1", 8 + 96, UINT32_MAX, 48, -E2BIG },
	{ "count wraps with the size", 8 + 96, 0x5555556, 48, -E2BIG },
	{ "count at the cap, no room", 8 + 96, PROTO_WATCH_MAX_RECS, 48,
	    -EBADMSG },
	{ "record size 0", 8 + 96, 2, 0, -EPROTO },
	{ "record size below the fields", 8 + 96, 2, 47, -EPROTO },
	{ "record size above the cap", 8 + 96, 2, PROTO_WATCH_REC_MAX + 1,
	    -E2BIG },
	{ "record size 2^32-1", 8 + 96, 2, UINT32_MAX, -E2BIG },
	{ "record size doubled, one record", 8 + 96, 1, 96, 0 },
	{ "record size doubled, two", 8 + 96, 2, 96, -EBADMSG },
};

START_TEST(test_watch_events_rejects_hostile_payloads)
{
	struct proto_watch_events b = { 0, 0, NULL };
	struct proto_frame f;
	ssize_t n;

	n = proto_encode_watch_events(buf, BUFSZ, watch_recs, 2);
	ck_assert_int_eq(n, PROTO_HDR_SIZE + 8 + 96);
	f = frame_of(buf, n);
	frames_put_le32(buf + PROTO_HDR_SIZE, watch_err_rows[_i].nrec);
	frames_put_le32(buf + PROTO_HDR_SIZE + 4, watch_err_rows[_i].rec_size);
	f.payload_len = watch_err_rows[_i].len;
	ck_assert_msg(proto_decode_watch_events(&f, &b) ==
	    watch_err_rows[_i].want, "%s: %d", watch_err_rows[_i].name,
	    proto_decode_watch_events(&f, &b));
}
END_TEST

START_TEST(test_watch_events_rejects_every_truncation_and_other_types)
{
	struct proto_watch_events b;
	struct proto_frame f;
	size_t full, cut;

	f = frame_of(buf, proto_encode_watch_events(buf, BUFSZ, watch_recs, 3));
	full = f.payload_len;
	for (cut = 0; cut < full; cut++) {
		f.payload_len = cut;
		if (proto_decode_watch_events(&f, &b) != -EBADMSG)
			ck_abort_msg("cut at %zu", cut);
	}
	f.payload = NULL;
	f.payload_len = 0;
	ck_assert_int_eq(proto_decode_watch_events(&f, &b), -EBADMSG);
	f = frame_of(buf, proto_encode_control(buf, BUFSZ, "{}", 2));
	ck_assert_int_eq(proto_decode_watch_events(&f, &b), -EPROTO);
	f = frame_of(buf, proto_encode_watch_events(buf, BUFSZ, watch_recs, 1));
	ck_assert_int_eq(proto_decode_control(&f, &(const char *){ NULL },
	    &(size_t){ 0 }), -EPROTO);
}
END_TEST

START_TEST(test_watch_events_encoder_refuses_what_the_format_cannot_hold)
{
	ck_assert_int_eq(proto_encode_watch_events(buf, BUFSZ, watch_recs, 0),
	    -EINVAL);
	ck_assert_int_eq(proto_encode_watch_events(buf, BUFSZ, NULL, 1),
	    -EINVAL);
	ck_assert_int_eq(proto_encode_watch_events(buf, BUFSZ, watch_recs,
	    PROTO_WATCH_MAX_RECS + 1), -EINVAL);
	ck_assert_int_eq(proto_encode_watch_events(buf,
	    proto_watch_events_size(2) - 1, watch_recs, 2), -ENOBUFS);
	ck_assert_uint_le(proto_watch_events_size(PROTO_WATCH_MAX_RECS),
	    PROTO_MAX_FRAME);
}
END_TEST

START_TEST(test_gen_labels_follow_the_collector_model)
{
	ck_assert_str_eq(proto_gen_label(GC_MODEL_CLASSIC, 1), "generation 1");
	ck_assert_str_eq(proto_gen_label(GC_MODEL_INCREMENTAL, 1),
	    "young+incremental");
	ck_assert_str_eq(proto_gen_label(GC_MODEL_FREE_THREADED, 0),
	    "whole heap");
	ck_assert_str_eq(proto_gen_label(0xfe, 2), "generation 2");
	ck_assert_str_eq(proto_gen_label(GC_MODEL_INCREMENTAL, 3),
	    "generation 3");
	ck_assert_str_eq(proto_gen_label(GC_MODEL_CLASSIC, 0xffff),
	    "generation ?");
}
END_TEST

static Suite *
codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *tc;

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))
	tc = tcase_create("round_trip");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_hello_round_trips, 0, N(hello_rows));
	tcase_add_test(tc, test_hello_round_trips_strings_at_their_caps);
	tcase_add_test(tc, test_utf8_cut_keeps_whole_characters);
	tcase_add_test(tc, test_hello_service_round_trips_only_with_its_flag);
	tcase_add_test(tc, test_hello_service_flag_without_a_valid_name_is_refused);
	tcase_add_test(tc, test_hello_place_round_trips_after_the_service);
	tcase_add_test(tc, test_hello_prior_round_trips_after_the_place);
	tcase_add_test(tc, test_hello_round_trips_max_argc);
	tcase_add_loop_test(tc, test_objects_and_garbage_round_trip, 0,
	    N(types_rows));
	tcase_add_test(tc, test_types_round_trip_empty);
	tcase_add_test(tc, test_types_next_rejects_a_stray_offset);
	tcase_add_test(tc, test_control_round_trips);
	tcase_add_test(tc, test_header_fields_are_little_endian);
	suite_add_tcase(s, tc);

	tc = tcase_create("decode_errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_decode_header_rejects_bad_headers, 0,
	    N(hdr_rows));
	tcase_add_loop_test(tc, test_retired_type_is_refused_like_an_unknown_one,
	    0, FRAMES_NRETIRED);
	tcase_add_loop_test(tc, test_decoder_rejects_frame_of_another_type, 0,
	    FRAMES_NTYPES * FRAMES_NTYPES);
	tcase_add_loop_test(tc, test_decoder_rejects_every_truncation, 0,
	    FRAMES_NTYPES - 1);
	tcase_add_loop_test(tc, test_decoder_rejects_trailing_bytes, 0,
	    FRAMES_NTYPES - 1);
	tcase_add_loop_test(tc, test_decoder_rejects_bad_ngen, 0, N(ngen_rows));
	tcase_add_loop_test(tc, test_types_rejects_bad_counts_and_lengths, 0,
	    N(types_err_rows));
	tcase_add_test(tc, test_hello_rejects_argv_above_total_cap);
	tcase_add_loop_test(tc, test_hello_rejects_bad_strings_and_counts, 0,
	    N(hello_err_rows));
	tcase_add_loop_test(tc, test_strings_must_be_strict_utf8, 0,
	    N(utf8_rows));
	tcase_add_test(tc, test_type_name_must_be_utf8);
	suite_add_tcase(s, tc);

	tc = tcase_create("encode_errors");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_encoders_report_small_buffers, 0,
	    FRAMES_NTYPES);
	tcase_add_test(tc, test_encode_hello_rejects_what_the_format_cannot_hold);
	tcase_add_test(tc, test_encode_hello_rejects_argv_above_total_cap);
	tcase_add_test(tc, test_encode_types_rejects_what_the_format_cannot_hold);
	tcase_add_test(tc, test_encode_control_rejects_oversized_and_missing_json);
	tcase_add_test(tc, test_strerror_names_each_error_distinctly);
	tcase_add_test(tc, test_frame_type_names);
	suite_add_tcase(s, tc);

	tc = tcase_create("watch_events");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_watch_events_round_trip);
	tcase_add_test(tc,
	    test_watch_events_longer_records_are_read_and_their_tail_skipped);
	tcase_add_loop_test(tc, test_watch_events_rejects_hostile_payloads, 0,
	    N(watch_err_rows));
	tcase_add_test(tc,
	    test_watch_events_rejects_every_truncation_and_other_types);
	tcase_add_test(tc,
	    test_watch_events_encoder_refuses_what_the_format_cannot_hold);
	tcase_add_test(tc, test_gen_labels_follow_the_collector_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("reader");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_reader_takes_a_whole_stream_at_once);
	tcase_add_test(tc, test_reader_takes_a_stream_one_byte_at_a_time);
	tcase_add_test(tc, test_reader_takes_a_stream_split_at_every_offset);
	tcase_add_test(tc, test_reader_takes_pieces_fed_without_draining);
	tcase_add_test(tc, test_reader_rejects_4gib_length_without_allocating);
	tcase_add_test(tc, test_reader_rejects_frame_above_its_max);
	tcase_add_loop_test(tc, test_reader_error_is_sticky, 0, N(bad_rows));
	tcase_add_test(tc, test_reader_releases_a_big_buffer_when_idle);
	tcase_add_test(tc, test_reader_fini_twice_is_harmless);
#ifndef CHECK_ASAN
	tcase_add_test(tc, test_reader_reports_out_of_memory_and_it_sticks);
#endif
	suite_add_tcase(s, tc);
#undef N
	return s;
}

UNIT_SUITE(codec_suite, UNIT_NOFORK_UNDER_ASAN);
