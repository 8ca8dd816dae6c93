/*
 * frames.c: builds random valid frames for the codec tests and the fuzz
 * corpus through the real encoders (so a frame built here is what the
 * agent would send). Test code only; never linked into gcmon.
 */
#include <errno.h>
#include <string.h>

#include "frames.h"

const unsigned frames_types[FRAMES_NTYPES] = {
	FRAME_HELLO, FRAME_OBJECTS, FRAME_GARBAGE, FRAME_CONTROL,
};
const unsigned frames_retired_types[FRAMES_NRETIRED] = { 2, 3, 6 };

void
frames_rng_seed(struct frames_rng *r, uint64_t seed)
{
	r->state = seed;
}

uint64_t
frames_rand(struct frames_rng *r)
{
	uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

uint64_t
frames_below(struct frames_rng *r, uint64_t n)
{
	return n == 0 ? 0 : frames_rand(r) % n;
}

void
frames_put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

void
frames_put_le32(uint8_t *p, uint32_t v)
{
	frames_put_le16(p, (uint16_t)v);
	frames_put_le16(p + 2, (uint16_t)(v >> 16));
}

void
frames_put_le64(uint8_t *p, uint64_t v)
{
	frames_put_le32(p, (uint32_t)v);
	frames_put_le32(p + 4, (uint32_t)(v >> 32));
}

uint32_t
frames_get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

void
frames_utf8(struct frames_rng *r, char *s, size_t len)
{
	/* U+0041 'A', U+00E9, U+20AC, U+1F600, and the extreme code points
	 * U+007F, U+0080, U+FFFF, U+10FFFF. */
	static const char *const seqs[] = {
		"A", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"\x7f", "\xc2\x80", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
	};
	size_t off = 0;

	while (off < len) {
		const char *q = seqs[frames_below(r, 8)];
		size_t n = strlen(q);

		if (n > len - off)
			q = "z", n = 1;
		memcpy(s + off, q, n);
		off += n;
	}
}

/* Length of a random string for a field capped at cap: usually short,
 * sometimes empty, sometimes exactly at the cap. */
static uint32_t
frames_str_len(struct frames_rng *r, uint32_t cap, uint32_t usual)
{
	switch (frames_below(r, 16)) {
	case 0:
		return 0;
	case 1:
		return cap;
	default:
		return (uint32_t)frames_below(r, usual + 1);
	}
}

ssize_t
frames_build(struct frames_rng *r, unsigned type, uint8_t *buf, size_t cap)
{
	/* One pool for every string of a frame; test code is one thread. */
	static char pool[FRAMES_MAX_BUILT];
	static struct proto_hello h;
	struct proto_type_count tc[12];
	size_t used = 0;
	uint32_t i, n;

#define FRAMES_STR(dst, cap_, usual) do {				\
		(dst).len = frames_str_len(r, (cap_), (usual));		\
		frames_utf8(r, pool + used, (dst).len);			\
		(dst).ptr = pool + used;				\
		used += (dst).len;					\
	} while (0)

	switch (type) {
	case FRAME_HELLO:
		memset(&h, 0, sizeof(h));
		h.pid = (uint32_t)frames_rand(r);
		h.ppid = (uint32_t)frames_rand(r);
		h.start_mono_ns = frames_rand(r);
		h.clock_real_ns = frames_rand(r);
		h.clock_mono_ns = frames_rand(r);
		h.py_hexversion = 0x030b00f0u;
		h.origin = (uint8_t)frames_below(r, 3);
		h.gc_model = (uint8_t)frames_below(r, 3);
		h.flags = (uint16_t)frames_below(r, 16);	/* SERVICE too */
		h.reconnects = 0;	/* reserved */
		h.ngen = (uint8_t)(1 + frames_below(r, PROTO_MAX_GEN));
		for (i = 0; i < h.ngen; i++) {
			h.base[i].collections = frames_below(r, 100);
			h.base[i].collected = frames_below(r, 10000);
			h.base[i].uncollectable = frames_below(r, 2);
			h.base[i].threshold = (uint32_t)frames_below(r, 2000);
		}
		FRAMES_STR(h.run_id, PROTO_MAX_ID, 40);
		FRAMES_STR(h.py_version, PROTO_MAX_STR, 80);
		FRAMES_STR(h.executable, PROTO_MAX_STR, 40);
		h.argc = (uint32_t)frames_below(r, 9);
		for (i = 0; i < h.argc; i++)
			FRAMES_STR(h.argv[i], i == 0 ? PROTO_MAX_STR : 64, 24);
		if (h.flags & PROTO_HELLO_SERVICE)
			FRAMES_STR(h.service, PROTO_MAX_ID, 16);
		return proto_encode_hello(buf, cap, &h);
	case FRAME_OBJECTS:
	case FRAME_GARBAGE:
		n = (uint32_t)frames_below(r, 13);
		for (i = 0; i < n; i++) {
			tc[i].count = frames_below(r, 1u << 24);
			FRAMES_STR(tc[i].name, PROTO_MAX_ID, 24);
		}
		return proto_encode_types(buf, cap, (enum proto_frame_type)type,
		    frames_rand(r) >> 16, tc, n);
	case FRAME_CONTROL:
		n = (uint32_t)frames_below(r, 64);
		memcpy(pool, "{\"cmd\":\"summary\",\"x\":\"", 22);
		frames_utf8(r, pool + 22, n);
		memcpy(pool + 22 + n, "\"}", 2);
		return proto_encode_control(buf, cap, pool, 24 + n);
	default:
		return -EINVAL;
	}
#undef FRAMES_STR
}
