/*
 * decode_any.c: everything that reads peer bytes, driven from one entry
 * point for the fuzzer and the random test; it checks the codec against
 * itself (re-encoding, piecewise feeding) and aborts on a contradiction.
 * Test code only: one thread, static scratch space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "decode_any.h"

static uint8_t da_enc[PROTO_MAX_FRAME];
static struct proto_type_count da_tc[PROTO_MAX_TYPES];
static struct proto_hello da_hello;
static volatile uint64_t da_sink;	/* keeps the reads of every byte */
static struct proto_watch_events da_watch;
static struct proto_watch_event da_ev;

static int
da_reserved_zero(const struct proto_watch_events *b)
{
	uint32_t i;

	for (i = 0; i < b->n; i++)
		if ((b->recs[(size_t)i * b->rec_size + 44] |
		    b->recs[(size_t)i * b->rec_size + 45] |
		    b->recs[(size_t)i * b->rec_size + 46] |
		    b->recs[(size_t)i * b->rec_size + 47]) != 0)
			return 0;
	return 1;
}

static void
da_touch(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < n; i++)
		s += b[i];
	da_sink += s;
}

/* A frame that decoded must re-encode to exactly its bytes (the flags
 * byte aside, which the encoder always writes as 0). */
static void
da_same(const struct proto_frame *f, ssize_t n)
{
	if (f->payload_len > PROTO_MAX_FRAME - PROTO_HDR_SIZE &&
	    f->hdr.type == FRAME_CONTROL && n == -EINVAL)
		return;		/* a bare payload too big for any frame */
	if (n < 0 || (size_t)n != f->payload_len + PROTO_HDR_SIZE ||
	    da_enc[4] != (uint8_t)f->hdr.type || da_enc[6] != PROTO_VERSION ||
	    memcmp(da_enc + PROTO_HDR_SIZE, f->payload, f->payload_len) != 0)
		abort();
}

static int
da_frame(const struct proto_frame *f)
{
	struct proto_types t;
	const char *json;
	size_t len, off;
	uint32_t i;
	int err;

	switch (f->hdr.type) {
	case FRAME_HELLO:
		if ((err = proto_decode_hello(f, &da_hello)) != 0)
			return err;
		da_touch(da_hello.run_id.ptr, da_hello.run_id.len);
		da_touch(da_hello.py_version.ptr, da_hello.py_version.len);
		da_touch(da_hello.executable.ptr, da_hello.executable.len);
		for (i = 0; i < da_hello.argc; i++)
			da_touch(da_hello.argv[i].ptr, da_hello.argv[i].len);
		da_touch(da_hello.service.ptr, da_hello.service.len);
		da_same(f, proto_encode_hello(da_enc, sizeof(da_enc),
		    &da_hello));
		return 0;
	case FRAME_OBJECTS:
	case FRAME_GARBAGE:
		if ((err = proto_decode_types(f, &t)) != 0)
			return err;
		off = 0;
		for (i = 0; proto_types_next(&t, &off, &da_tc[i]) == 1; i++) {
			if (i >= t.n)
				abort();
			da_touch(da_tc[i].name.ptr, da_tc[i].name.len);
		}
		if (i != t.n || off != t.entries_len)
			abort();
		da_same(f, proto_encode_types(da_enc, sizeof(da_enc),
		    (enum proto_frame_type)f->hdr.type, t.total, da_tc, t.n));
		return 0;
	case FRAME_CONTROL:
		if ((err = proto_decode_control(f, &json, &len)) != 0)
			return err;
		da_touch(json, len);
		da_same(f, proto_encode_control(da_enc, sizeof(da_enc), json,
		    len));
		return 0;
	case FRAME_WATCH_EVENTS:
		if ((err = proto_decode_watch_events(f, &da_watch)) != 0)
			return err;
		for (i = 0; proto_watch_event_get(&da_watch, i, &da_ev) == 0;
		    i++)
			da_touch(&da_ev, sizeof da_ev);
		if (i != da_watch.n)
			abort();
		/* Records of today's size and zero reserved bytes re-encode
		 * to the same bytes. */
		if (da_watch.rec_size == PROTO_WATCH_REC_SIZE &&
		    da_watch.n <= PROTO_WATCH_MAX_RECS) {
			static struct proto_watch_event evs[256];

			for (i = 0; i < da_watch.n && i < 256; i++)
				proto_watch_event_get(&da_watch, i, &evs[i]);
			if (i == da_watch.n && da_reserved_zero(&da_watch))
				da_same(f, proto_encode_watch_events(da_enc,
				    sizeof(da_enc), evs, da_watch.n));
		}
		return 0;
	default:		/* type 0, a retired type, or unknown */
		return -ENOMSG;
	}
}

static uint64_t
da_hash(uint64_t h, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;	/* FNV-1a */
	return h;
}

/* Feeds data in pieces of `piece` bytes (0: all at once, else cycling
 * 1..piece) and decodes each frame; *hash covers every frame returned. */
static int
da_stream(const uint8_t *data, size_t len, size_t piece, uint64_t *hash)
{
	struct proto_reader r;
	struct proto_frame f;
	uint8_t hdr[4];
	size_t off = 0, n, k = 0;
	int rc = 0, err = 0;

	*hash = 0xcbf29ce484222325ull;
	proto_reader_init(&r, 0);
	while (off < len && err == 0) {
		n = piece == 0 ? len - off : 1 + k++ % piece;
		if (n > len - off)
			n = len - off;
		if ((err = proto_reader_feed(&r, data + off, n)) != 0)
			break;
		off += n;
		while ((rc = proto_reader_next(&r, &f)) == 1) {
			hdr[0] = (uint8_t)f.hdr.type;
			hdr[1] = (uint8_t)(f.payload_len >> 16);
			hdr[2] = (uint8_t)(f.payload_len >> 8);
			hdr[3] = (uint8_t)f.payload_len;
			*hash = da_hash(*hash, hdr, sizeof(hdr));
			*hash = da_hash(*hash, f.payload, f.payload_len);
			if ((err = da_frame(&f)) != 0)
				break;
		}
		if (rc < 0)
			err = rc;
	}
	if (err == 0 && proto_reader_pending(&r) > 0)
		err = -EAGAIN;
	proto_reader_fini(&r);
	return err;
}

int
decode_any_documented(int err)
{
	switch (err) {
	case 0:
	case -EAGAIN:
	case -EMSGSIZE:
	case -EPROTONOSUPPORT:
	case -ENOMSG:
	case -EBADMSG:
	case -EPROTO:
	case -E2BIG:
	case -EILSEQ:
		return 1;
	default:
		return 0;
	}
}

int
decode_any(const uint8_t *data, size_t len)
{
	struct proto_frame f;
	uint64_t h1, h2;
	int err, err2;

	if (len > 0) {
		/* The payload decoders on their own, on any bytes at all. */
		memset(&f, 0, sizeof(f));
		f.hdr.type = data[0];
		f.hdr.version = PROTO_VERSION;
		f.hdr.len = (uint32_t)(len - 1 + PROTO_HDR_SIZE);
		f.payload = data + 1;
		f.payload_len = len - 1;
		err = da_frame(&f);
		if (!decode_any_documented(err) || err == -EAGAIN ||
		    err == -EMSGSIZE || err == -EPROTONOSUPPORT)
			abort();
	}
	err = da_stream(data, len, 0, &h1);
	err2 = da_stream(data, len, 13, &h2);
	if (!decode_any_documented(err) || err != err2 || h1 != h2)
		abort();
	return err;
}
