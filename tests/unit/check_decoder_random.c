/*
 * check_decoder_random.c: a bounded, deterministic fuzz of everything
 * that reads peer bytes: valid frames from tests/unit/frames.c, mutated,
 * run through decode_any (tests/fuzz/decode_any.c), which aborts on any
 * contradiction; under ASan any out-of-bounds read fails it too. Run by
 * `make check`; it writes no file.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "frames.h"
#include "../fuzz/decode_any.h"
#include "unit.h"

#define ITERATIONS	200000u
#define STREAM_MAX	(4 * FRAMES_MAX_BUILT + 64)

static uint8_t stream[STREAM_MAX];

/* Values a mutated u32 field takes: the edges of every cap. */
static const uint32_t edge_u32[] = {
	0, 1, 7, 8, 9, 255, 256, 257, PROTO_MAX_ID + 1, PROTO_MAX_STR,
	PROTO_MAX_STR + 1, PROTO_MAX_ARGC, PROTO_MAX_ARGC + 1, PROTO_MAX_TYPES,
	PROTO_MAX_TYPES + 1,
	PROTO_MAX_FRAME, PROTO_MAX_FRAME + 1, 0x7fffffffu, 0x80000000u,
	UINT32_MAX,
};

static size_t
mutate(struct frames_rng *r, uint8_t *p, size_t len, size_t first_len)
{
	size_t at, n, i;

	switch (frames_below(r, 8)) {
	case 0:			/* bit flip */
		if (len > 0)
			p[frames_below(r, len)] ^= (uint8_t)(1u << frames_below(r, 8));
		break;
	case 1:			/* byte set to 0 or 0xff */
		if (len > 0)
			p[frames_below(r, len)] = frames_below(r, 2) ? 0xff : 0;
		break;
	case 2:			/* truncation */
		return frames_below(r, len + 1);
	case 3:			/* extension with random bytes */
		n = 1 + frames_below(r, 16);
		for (i = 0; i < n && len < STREAM_MAX; i++)
			p[len++] = (uint8_t)frames_rand(r);
		break;
	case 4:			/* the first frame's length field */
		switch (frames_below(r, 4)) {
		case 0:
			frames_put_le32(p, (uint32_t)(first_len +
			    frames_below(r, 81)) - 40);
			break;
		case 1:
			frames_put_le32(p, (uint32_t)first_len +
			    (frames_below(r, 2) ? 1 : -1u));
			break;
		default:
			frames_put_le32(p, edge_u32[frames_below(r,
			    sizeof(edge_u32) / sizeof(edge_u32[0]))]);
			break;
		}
		break;
	case 5:			/* a count or string length somewhere */
		if (len >= 4) {
			at = frames_below(r, len - 3);
			frames_put_le32(p + at, edge_u32[frames_below(r,
			    sizeof(edge_u32) / sizeof(edge_u32[0]))]);
		}
		break;
	case 6:			/* type or version */
		if (len >= 8) {
			if (frames_below(r, 2))
				p[4] = (uint8_t)frames_below(r, FRAME_TYPE_MAX + 2);
			else
				p[6] = (uint8_t)frames_below(r, 3);
		}
		break;
	default:		/* ngen or another small count */
		if (len > 16) {
			at = PROTO_HDR_SIZE + frames_below(r, len - 16);
			p[at] = (uint8_t)frames_below(r, PROTO_MAX_GEN + 3);
		}
		break;
	}
	return len;
}

/* The results seen, by errno, to show the mutations reach every path. */
struct seen {
	unsigned long ok, again, msgsize, version, type, badmsg, proto, big,
	    ilseq;
};

static void
count(struct seen *s, int rc)
{
	switch (rc) {
	case 0: s->ok++; break;
	case -EAGAIN: s->again++; break;
	case -EMSGSIZE: s->msgsize++; break;
	case -EPROTONOSUPPORT: s->version++; break;
	case -ENOMSG: s->type++; break;
	case -EBADMSG: s->badmsg++; break;
	case -EPROTO: s->proto++; break;
	case -E2BIG: s->big++; break;
	case -EILSEQ: s->ilseq++; break;
	default: ck_abort_msg("undocumented result %d", rc);
	}
}

START_TEST(test_valid_frames_decode_cleanly)
{
	struct frames_rng r;
	unsigned i, t;
	ssize_t n;

	frames_rng_seed(&r, 1);
	for (i = 0; i < 5000; i++) {
		t = frames_types[i % FRAMES_NTYPES];
		n = frames_build(&r, t, stream, sizeof(stream));
		/* plain ifs: a passing ck_assert costs a write to Check */
		if (n <= 0 || decode_any(stream, (size_t)n) != 0 ||
		    decode_any(stream, (size_t)n - 1) != -EAGAIN)
			ck_abort_msg("%s #%u", proto_frame_type_name(t), i);
	}
}
END_TEST

START_TEST(test_mutated_frames_give_only_documented_errors)
{
	struct frames_rng r;
	struct seen s;
	size_t len, first_len;
	unsigned i, k, nframes, nmut;
	ssize_t n;

	memset(&s, 0, sizeof(s));
	frames_rng_seed(&r, 0x6763u);
	for (i = 0; i < ITERATIONS; i++) {
		len = 0;
		first_len = 0;
		nframes = 1 + (unsigned)frames_below(&r, 3);
		for (k = 0; k < nframes; k++) {
			n = frames_build(&r, frames_types[frames_below(&r,
			    FRAMES_NTYPES)], stream + len, sizeof(stream) - len);
			if (n <= 0)
				ck_abort_msg("frames_build: %zd", n);
			if (k == 0)
				first_len = (size_t)n;
			len += (size_t)n;
		}
		nmut = 1 + (unsigned)frames_below(&r, 3);
		for (k = 0; k < nmut; k++)
			len = mutate(&r, stream, len, first_len);
		count(&s, decode_any(stream, len));
	}
	/* Every documented outcome was reached: the mutations are not
	 * all caught by the same first check. */
	ck_assert_uint_gt(s.ok, 0);
	ck_assert_uint_gt(s.again, 0);
	ck_assert_uint_gt(s.msgsize, 0);
	ck_assert_uint_gt(s.version, 0);
	ck_assert_uint_gt(s.type, 0);
	ck_assert_uint_gt(s.badmsg, 0);
	ck_assert_uint_gt(s.proto, 0);
	ck_assert_uint_gt(s.big, 0);
	ck_assert_uint_gt(s.ilseq, 0);
}
END_TEST

/* Pure noise, short and long, through the same path. */
START_TEST(test_random_bytes_give_only_documented_errors)
{
	struct frames_rng r;
	struct seen s;
	size_t len, i;
	unsigned k;

	memset(&s, 0, sizeof(s));
	frames_rng_seed(&r, 77);
	for (k = 0; k < 20000; k++) {
		len = frames_below(&r, 96);
		for (i = 0; i < len; i++)
			stream[i] = (uint8_t)frames_rand(&r);
		if (len >= 8 && frames_below(&r, 2)) {	/* a plausible header */
			frames_put_le32(stream, (uint32_t)(8 + frames_below(&r, len - 7)));
			stream[4] = (uint8_t)frames_types[frames_below(&r,
			    FRAMES_NTYPES)];
			stream[6] = PROTO_VERSION;
		}
		count(&s, decode_any(stream, len));
	}
	ck_assert_uint_gt(s.again + s.msgsize + s.badmsg, 0);
}
END_TEST

static Suite *
decoder_random_suite(void)
{
	Suite *s = suite_create("decoder_random");
	TCase *tc = tcase_create("mutations");

	tcase_set_timeout(tc, 120);	/* slow machines under ASan */
	tcase_add_test(tc, test_valid_frames_decode_cleanly);
	tcase_add_test(tc, test_mutated_frames_give_only_documented_errors);
	tcase_add_test(tc, test_random_bytes_give_only_documented_errors);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(decoder_random_suite, UNIT_FORK);
