/*
 * codec.c: encoder, decoder and stream reader of the frames that
 * protocol.h specifies; the agent encodes HELLO, OBJECTS and GARBAGE into
 * its shared area, gcmond decodes them from it, and gcmond and the
 * control clients encode, decode and stream CONTROL; gcmond encodes the
 * binary watch's WATCH_EVENTS and pygcprofiler decodes it. Every byte read
 * from a peer or an area goes through the bounds-checked cursor below.
 * It must never do I/O, print, trust a length before checking it, or
 * allocate anything but the reader's buffer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define PROTO_BASELINE_SIZE	28u	/* 3 x u64, u32 */
#define PROTO_HELLO_FIXED	45u	/* fields before the baselines */
#define PROTO_TYPE_MIN_SIZE	12u	/* u64 count, u32 name length */
#define PROTO_READER_MIN_CAP	256u
#define PROTO_READER_KEEP_CAP	(64u << 10)	/* free more than this when idle */

/* Little-endian accessors: frames are read byte by byte, never cast. */
static uint16_t
get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t
get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	    (uint32_t)p[3] << 24;
}

static uint64_t
get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void
put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void
put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

size_t
proto_utf8_cut(const char *s, size_t len, size_t cap)
{
	size_t n = cap;

	if (len <= cap)
		return len;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing
 * above U+10FFFF; NUL is refused too since strings carry none.
 */
static bool
codec_utf8_valid(const uint8_t *s, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = s[i];
		size_t n, k;
		uint8_t lo = 0x80, hi = 0xbf;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1;
		else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			if (c == 0xe0)
				lo = 0xa0;	/* overlong below U+0800 */
			else if (c == 0xed)
				hi = 0x9f;	/* surrogates U+D800..U+DFFF */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			if (c == 0xf0)
				lo = 0x90;	/* overlong below U+10000 */
			else if (c == 0xf4)
				hi = 0x8f;	/* above U+10FFFF */
		} else
			return false;	/* 0x80..0xc1 and 0xf5..0xff */
		if (n > len - i - 1)
			return false;
		for (k = 1; k <= n; k++) {
			uint8_t b = s[i + k];

			if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xbf))
				return false;
		}
		i += n + 1;
	}
	return true;
}

/* A bounds-checked read position; the first error sticks. */
struct codec_cursor {
	const uint8_t *p;
	size_t len;
	size_t off;
	int err;
};

static void
codec_cursor_init(struct codec_cursor *c, const uint8_t *p, size_t len)
{
	c->p = p;
	c->len = len;
	c->off = 0;
	c->err = 0;
}

static size_t
codec_left(const struct codec_cursor *c)
{
	return c->len - c->off;
}

static void
codec_fail(struct codec_cursor *c, int err)
{
	if (c->err == 0)
		c->err = err;
}

/* Returns the n bytes at the cursor and moves past them, or NULL. */
static const uint8_t *
codec_take(struct codec_cursor *c, size_t n)
{
	const uint8_t *p;

	if (c->err != 0)
		return NULL;
	if (n > codec_left(c)) {
		codec_fail(c, -EBADMSG);
		return NULL;
	}
	p = c->p + c->off;
	c->off += n;
	return p;
}

static uint8_t
codec_u8(struct codec_cursor *c)
{
	const uint8_t *p = codec_take(c, 1);

	return p != NULL ? p[0] : 0;
}

static uint16_t
codec_u16(struct codec_cursor *c)
{
	const uint8_t *p = codec_take(c, 2);

	return p != NULL ? get_le16(p) : 0;
}

static uint32_t
codec_u32(struct codec_cursor *c)
{
	const uint8_t *p = codec_take(c, 4);

	return p != NULL ? get_le32(p) : 0;
}

static uint64_t
codec_u64(struct codec_cursor *c)
{
	const uint8_t *p = codec_take(c, 8);

	return p != NULL ? get_le64(p) : 0;
}

/* STR: the cap is checked before the remaining bytes, so an oversized
 * length is -E2BIG whether or not its bytes follow. */
static void
codec_str(struct codec_cursor *c, uint32_t cap, struct proto_str *out)
{
	uint32_t n = codec_u32(c);
	const uint8_t *p;

	out->ptr = NULL;
	out->len = 0;
	if (c->err != 0)
		return;
	if (n > cap) {
		codec_fail(c, -E2BIG);
		return;
	}
	if ((p = codec_take(c, n)) == NULL)
		return;
	if (!codec_utf8_valid(p, n)) {
		codec_fail(c, -EILSEQ);
		return;
	}
	out->ptr = (const char *)p;
	out->len = n;
}

/* Every byte must be accounted for. */
static int
codec_finish(struct codec_cursor *c)
{
	if (c->err != 0)
		return c->err;
	return codec_left(c) != 0 ? -EPROTO : 0;
}

const char *
proto_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EAGAIN:
		return "incomplete frame";
	case -EMSGSIZE:
		return "frame length out of range";
	case -EPROTONOSUPPORT:
		return "unsupported protocol version";
	case -ENOMSG:
		return "unknown or retired frame type";
	case -EBADMSG:
		return "truncated frame payload";
	case -EPROTO:
		return "malformed frame payload";
	case -E2BIG:
		return "count or string above its limit";
	case -EILSEQ:
		return "string not valid UTF-8 or holds a NUL";
	case -ENOBUFS:
		return "output buffer too small";
	case -EINVAL:
		return "value not representable in the wire format";
	case -ENOMEM:
		return "out of memory";
	case -ERANGE:
		return "record index out of range";
	default:
		return "unknown codec error";
	}
}

/* The types in use; the retired ones (protocol.h) have no name here and
 * are unknown like any other. */
static const char *const codec_type_names[FRAME_TYPE_MAX + 1] = {
	[FRAME_HELLO] = "HELLO",
	[FRAME_OBJECTS] = "OBJECTS",
	[FRAME_GARBAGE] = "GARBAGE",
	[FRAME_CONTROL] = "CONTROL",
	[FRAME_WATCH_EVENTS] = "WATCH_EVENTS",
};

static bool
codec_type_known(unsigned type)
{
	return type <= FRAME_TYPE_MAX && codec_type_names[type] != NULL;
}

const char *
proto_frame_type_name(unsigned type)
{
	return codec_type_known(type) ? codec_type_names[type] : "UNKNOWN";
}

int
proto_decode_header(const uint8_t *buf, size_t avail, size_t max_frame,
    struct frame_hdr *h)
{
	if (max_frame == 0 || max_frame > PROTO_MAX_FRAME)
		max_frame = PROTO_MAX_FRAME;
	if (avail < PROTO_HDR_SIZE)
		return -EAGAIN;
	h->len = get_le32(buf);
	h->type = get_le16(buf + 4);
	h->version = buf[6];
	h->flags = buf[7];
	/* Length first: a peer's length is checked before anything is
	 * buffered for it, whatever else is wrong with the header. */
	if (h->len < PROTO_HDR_SIZE || h->len > max_frame)
		return -EMSGSIZE;
	if (h->version != PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (!codec_type_known(h->type))
		return -ENOMSG;	/* type 0, a retired type, or above the last */
	return 0;
}

static void
codec_frame_cursor(struct codec_cursor *c, const struct proto_frame *f)
{
	codec_cursor_init(c, f->payload, f->payload != NULL ? f->payload_len : 0);
}

int
proto_decode_hello(const struct proto_frame *f, struct proto_hello *out)
{
	struct codec_cursor c;
	uint32_t i, total = 0;

	if (f->hdr.type != FRAME_HELLO)
		return -EPROTO;
	codec_frame_cursor(&c, f);
	out->pid = codec_u32(&c);
	out->ppid = codec_u32(&c);
	out->start_mono_ns = codec_u64(&c);
	out->clock_real_ns = codec_u64(&c);
	out->clock_mono_ns = codec_u64(&c);
	out->py_hexversion = codec_u32(&c);
	out->origin = codec_u8(&c);
	out->gc_model = codec_u8(&c);
	out->flags = codec_u16(&c);
	out->reconnects = codec_u32(&c);
	out->ngen = codec_u8(&c);
	if (c.err != 0)
		return c.err;
	if (out->ngen == 0 || out->ngen > PROTO_MAX_GEN)
		return -EPROTO;
	for (i = 0; i < out->ngen; i++) {
		out->base[i].collections = codec_u64(&c);
		out->base[i].collected = codec_u64(&c);
		out->base[i].uncollectable = codec_u64(&c);
		out->base[i].threshold = codec_u32(&c);
	}
	codec_str(&c, PROTO_MAX_ID, &out->run_id);
	codec_str(&c, PROTO_MAX_STR, &out->py_version);
	codec_str(&c, PROTO_MAX_STR, &out->executable);
	out->argc = codec_u32(&c);
	if (c.err != 0)
		return c.err;
	if (out->argc > PROTO_MAX_ARGC)
		return -E2BIG;
	if (out->argc > codec_left(&c) / 4)
		return -EBADMSG;
	for (i = 0; i < out->argc && c.err == 0; i++) {
		codec_str(&c, PROTO_MAX_STR, &out->argv[i]);
		total += out->argv[i].len;
		if (total > PROTO_MAX_ARGV)
			return -E2BIG;
	}
	out->service.ptr = NULL;
	out->service.len = 0;
	if (out->flags & PROTO_HELLO_SERVICE)
		codec_str(&c, PROTO_MAX_ID, &out->service);
	out->pidns_ino = out->pidns_dev = 0;
	memset(&out->hostname, 0, sizeof out->hostname);
	out->cgroup = out->pod = out->pod_namespace = out->hostname;
	if (out->flags & PROTO_HELLO_PLACE) {
		out->pidns_ino = codec_u64(&c);
		out->pidns_dev = codec_u64(&c);
		codec_str(&c, PROTO_MAX_ID, &out->hostname);
		codec_str(&c, PROTO_MAX_STR, &out->cgroup);
		codec_str(&c, PROTO_MAX_ID, &out->pod);
		codec_str(&c, PROTO_MAX_ID, &out->pod_namespace);
	}
	memset(out->prior, 0, sizeof out->prior);
	for (i = 0; (out->flags & PROTO_HELLO_PRIOR) && i < out->ngen; i++) {
		out->prior[i].collections = codec_u64(&c);
		out->prior[i].collected = codec_u64(&c);
		out->prior[i].uncollectable = codec_u64(&c);
	}
	return codec_finish(&c);
}

int
proto_decode_types(const struct proto_frame *f, struct proto_types *out)
{
	struct codec_cursor c;
	struct proto_str name;
	uint32_t i;
	size_t start;

	if (f->hdr.type != FRAME_OBJECTS && f->hdr.type != FRAME_GARBAGE)
		return -EPROTO;
	codec_frame_cursor(&c, f);
	out->total = codec_u64(&c);
	out->n = codec_u32(&c);
	out->entries = NULL;
	out->entries_len = 0;
	if (c.err != 0)
		return c.err;
	if (out->n > PROTO_MAX_TYPES)
		return -E2BIG;
	if (out->n > codec_left(&c) / PROTO_TYPE_MIN_SIZE)
		return -EBADMSG;
	start = c.off;
	/* Validate every entry now so that proto_types_next() cannot fail. */
	for (i = 0; i < out->n && c.err == 0; i++) {
		(void)codec_u64(&c);
		codec_str(&c, PROTO_MAX_ID, &name);
	}
	if (c.err != 0)
		return c.err;
	out->entries = c.p + start;
	out->entries_len = c.off - start;
	return codec_finish(&c);
}

int
proto_decode_control(const struct proto_frame *f, const char **json,
    size_t *len)
{
	size_t n = f->payload != NULL ? f->payload_len : 0;

	if (f->hdr.type != FRAME_CONTROL)
		return -EPROTO;
	if (!codec_utf8_valid(f->payload, n))
		return -EILSEQ;
	*json = (const char *)f->payload;
	*len = n;
	return 0;
}

int
proto_decode_watch_events(const struct proto_frame *f,
    struct proto_watch_events *out)
{
	struct codec_cursor c;
	uint32_t n, size;

	if (f->hdr.type != FRAME_WATCH_EVENTS)
		return -EPROTO;
	codec_frame_cursor(&c, f);
	n = codec_u32(&c);
	size = codec_u32(&c);
	if (c.err != 0)
		return c.err;
	if (n > PROTO_WATCH_MAX_RECS || size > PROTO_WATCH_REC_MAX)
		return -E2BIG;
	if (n == 0 || size < PROTO_WATCH_REC_SIZE)
		return -EPROTO;
	/* Against what remains, by division: n * size cannot wrap. */
	if (n > codec_left(&c) / size)
		return -EBADMSG;
	if (codec_left(&c) != (size_t)n * size)
		return -EPROTO;
	out->n = n;
	out->rec_size = size;
	out->recs = c.p + c.off;
	return 0;
}

int
proto_watch_event_get(const struct proto_watch_events *b, uint32_t i,
    struct proto_watch_event *out)
{
	const uint8_t *p;

	if (b->recs == NULL || i >= b->n)
		return -ERANGE;
	p = b->recs + (size_t)i * b->rec_size;
	out->pid = get_le32(p);
	out->generation = get_le16(p + 4);
	out->gc_model = p[6];
	out->flags = p[7];
	out->time_ns = get_le64(p + 8);
	out->pause_ns = get_le64(p + 16);
	out->collector_ns = get_le64(p + 24);
	out->collected = get_le64(p + 32);
	out->uncollectable = get_le32(p + 40);
	return 0;
}

int
proto_types_next(const struct proto_types *t, size_t *off,
    struct proto_type_count *out)
{
	struct codec_cursor c;

	if (t->entries == NULL || *off >= t->entries_len)
		return 0;
	/* Already validated by proto_decode_types; checked again anyway so
	 * that a caller's stray offset cannot read outside the entries. */
	codec_cursor_init(&c, t->entries, t->entries_len);
	c.off = *off;
	out->count = codec_u64(&c);
	codec_str(&c, PROTO_MAX_ID, &out->name);
	if (c.err != 0)
		return 0;
	*off = c.off;
	return 1;
}

/* Encoding: sizes are computed and checked first, then written once. */

static bool
codec_str_ok(const struct proto_str *s, uint32_t cap)
{
	if (s->len > cap || (s->len > 0 && s->ptr == NULL))
		return false;
	return codec_utf8_valid((const uint8_t *)s->ptr, s->len);
}

static uint8_t *
codec_put_hdr(uint8_t *p, size_t len, enum proto_frame_type type)
{
	put_le32(p, (uint32_t)len);
	put_le16(p + 4, (uint16_t)type);
	p[6] = PROTO_VERSION;
	p[7] = 0;
	return p + PROTO_HDR_SIZE;
}

static uint8_t *
codec_put_str(uint8_t *p, const struct proto_str *s)
{
	put_le32(p, s->len);
	if (s->len > 0)
		memcpy(p + 4, s->ptr, s->len);
	return p + 4 + s->len;
}

/* The caps make every frame but CONTROL fit PROTO_MAX_FRAME, so those
 * encoders need no check of the total. */
_Static_assert(PROTO_HDR_SIZE + PROTO_HELLO_FIXED +
    PROTO_MAX_GEN * PROTO_BASELINE_SIZE + 12 + PROTO_MAX_ID +
    2 * PROTO_MAX_STR + 4 + PROTO_MAX_ARGC * 4 + PROTO_MAX_ARGV <=
    PROTO_MAX_FRAME, "largest HELLO above PROTO_MAX_FRAME");
_Static_assert(PROTO_HDR_SIZE + 12 +
    (uint64_t)PROTO_MAX_TYPES * (PROTO_TYPE_MIN_SIZE + PROTO_MAX_ID) <=
    PROTO_MAX_FRAME, "largest OBJECTS above PROTO_MAX_FRAME");

static ssize_t
codec_check_size(size_t size, size_t cap)
{
	return size > cap ? -ENOBUFS : 0;
}

/* The size of h's frame, or -EINVAL when a field is out of its bounds. */
static ssize_t
codec_hello_size(const struct proto_hello *h)
{
	size_t size, argv_total = 0;
	uint32_t i;

	if (h->ngen == 0 || h->ngen > PROTO_MAX_GEN || h->argc > PROTO_MAX_ARGC)
		return -EINVAL;
	if (!codec_str_ok(&h->run_id, PROTO_MAX_ID) ||
	    !codec_str_ok(&h->py_version, PROTO_MAX_STR) ||
	    !codec_str_ok(&h->executable, PROTO_MAX_STR))
		return -EINVAL;
	for (i = 0; i < h->argc; i++) {
		if (!codec_str_ok(&h->argv[i], PROTO_MAX_STR))
			return -EINVAL;
		argv_total += h->argv[i].len;
	}
	if (argv_total > PROTO_MAX_ARGV)
		return -EINVAL;
	if ((h->flags & PROTO_HELLO_SERVICE) &&
	    !codec_str_ok(&h->service, PROTO_MAX_ID))
		return -EINVAL;
	size = PROTO_HDR_SIZE + PROTO_HELLO_FIXED +
	    (size_t)h->ngen * PROTO_BASELINE_SIZE +
	    12 + h->run_id.len + h->py_version.len + h->executable.len +
	    4 + (size_t)h->argc * 4 + argv_total;
	if (h->flags & PROTO_HELLO_SERVICE)
		size += 4 + (size_t)h->service.len;
	if ((h->flags & PROTO_HELLO_PLACE) &&
	    (!codec_str_ok(&h->hostname, PROTO_MAX_ID) ||
	    !codec_str_ok(&h->cgroup, PROTO_MAX_STR) ||
	    !codec_str_ok(&h->pod, PROTO_MAX_ID) ||
	    !codec_str_ok(&h->pod_namespace, PROTO_MAX_ID)))
		return -EINVAL;
	if (h->flags & PROTO_HELLO_PLACE)
		size += 16 + 16 + (size_t)h->hostname.len + h->cgroup.len +
		    h->pod.len + h->pod_namespace.len;
	if (h->flags & PROTO_HELLO_PRIOR)
		size += (size_t)h->ngen * 24;
	return (ssize_t)size;
}

ssize_t
proto_encode_hello(uint8_t *buf, size_t cap, const struct proto_hello *h)
{
	ssize_t n = codec_hello_size(h), err;
	size_t size;
	uint32_t i;
	uint8_t *p;

	if (n < 0)
		return n;
	size = (size_t)n;
	if ((err = codec_check_size(size, cap)) != 0)
		return err;
	p = codec_put_hdr(buf, size, FRAME_HELLO);
	put_le32(p, h->pid);
	put_le32(p + 4, h->ppid);
	put_le64(p + 8, h->start_mono_ns);
	put_le64(p + 16, h->clock_real_ns);
	put_le64(p + 24, h->clock_mono_ns);
	put_le32(p + 32, h->py_hexversion);
	p[36] = h->origin;
	p[37] = h->gc_model;
	put_le16(p + 38, h->flags);
	put_le32(p + 40, h->reconnects);
	p[44] = h->ngen;
	p += 45;
	for (i = 0; i < h->ngen; i++) {
		put_le64(p, h->base[i].collections);
		put_le64(p + 8, h->base[i].collected);
		put_le64(p + 16, h->base[i].uncollectable);
		put_le32(p + 24, h->base[i].threshold);
		p += PROTO_BASELINE_SIZE;
	}
	p = codec_put_str(p, &h->run_id);
	p = codec_put_str(p, &h->py_version);
	p = codec_put_str(p, &h->executable);
	put_le32(p, h->argc);
	p += 4;
	for (i = 0; i < h->argc; i++)
		p = codec_put_str(p, &h->argv[i]);
	if (h->flags & PROTO_HELLO_SERVICE)
		p = codec_put_str(p, &h->service);
	if (h->flags & PROTO_HELLO_PLACE) {
		put_le64(p, h->pidns_ino);
		put_le64(p + 8, h->pidns_dev);
		p = codec_put_str(p + 16, &h->hostname);
		p = codec_put_str(p, &h->cgroup);
		p = codec_put_str(p, &h->pod);
		p = codec_put_str(p, &h->pod_namespace);
	}
	for (i = 0; (h->flags & PROTO_HELLO_PRIOR) && i < h->ngen; i++) {
		put_le64(p, h->prior[i].collections);
		put_le64(p + 8, h->prior[i].collected);
		put_le64(p + 16, h->prior[i].uncollectable);
		p += 24;
	}
	return (ssize_t)size;
}

ssize_t
proto_encode_types(uint8_t *buf, size_t cap, enum proto_frame_type type,
    uint64_t total, const struct proto_type_count *entries, uint32_t n)
{
	size_t size = PROTO_HDR_SIZE + 12;
	uint32_t i;
	uint8_t *p;
	ssize_t err;

	if ((type != FRAME_OBJECTS && type != FRAME_GARBAGE) ||
	    n > PROTO_MAX_TYPES || (n > 0 && entries == NULL))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!codec_str_ok(&entries[i].name, PROTO_MAX_ID))
			return -EINVAL;
		size += PROTO_TYPE_MIN_SIZE + entries[i].name.len;
	}
	if ((err = codec_check_size(size, cap)) != 0)
		return err;

	p = codec_put_hdr(buf, size, type);
	put_le64(p, total);
	put_le32(p + 8, n);
	p += 12;
	for (i = 0; i < n; i++) {
		put_le64(p, entries[i].count);
		p = codec_put_str(p + 8, &entries[i].name);
	}
	return (ssize_t)size;
}

ssize_t
proto_encode_control(uint8_t *buf, size_t cap, const char *json, size_t len)
{
	size_t size;
	uint8_t *p;
	ssize_t err;

	if (len > PROTO_MAX_FRAME - PROTO_HDR_SIZE || (len > 0 && json == NULL))
		return -EINVAL;
	if (!codec_utf8_valid((const uint8_t *)json, len))
		return -EINVAL;
	size = PROTO_HDR_SIZE + len;
	if ((err = codec_check_size(size, cap)) != 0)
		return err;
	p = codec_put_hdr(buf, size, FRAME_CONTROL);
	if (len > 0)
		memcpy(p, json, len);
	return (ssize_t)size;
}

size_t
proto_watch_events_size(uint32_t n)
{
	return PROTO_HDR_SIZE + 8 + (size_t)n * PROTO_WATCH_REC_SIZE;
}

ssize_t
proto_encode_watch_events(uint8_t *buf, size_t cap,
    const struct proto_watch_event *ev, uint32_t n)
{
	size_t size;
	uint8_t *p;
	uint32_t i;
	ssize_t err;

	if (n == 0 || n > PROTO_WATCH_MAX_RECS || ev == NULL)
		return -EINVAL;
	size = proto_watch_events_size(n);
	if ((err = codec_check_size(size, cap)) != 0)
		return err;
	p = codec_put_hdr(buf, size, FRAME_WATCH_EVENTS);
	put_le32(p, n);
	put_le32(p + 4, PROTO_WATCH_REC_SIZE);
	p += 8;
	for (i = 0; i < n; i++, p += PROTO_WATCH_REC_SIZE) {
		put_le32(p, ev[i].pid);
		put_le16(p + 4, ev[i].generation);
		p[6] = ev[i].gc_model;
		p[7] = ev[i].flags;
		put_le64(p + 8, ev[i].time_ns);
		put_le64(p + 16, ev[i].pause_ns);
		put_le64(p + 24, ev[i].collector_ns);
		put_le64(p + 32, ev[i].collected);
		put_le32(p + 40, ev[i].uncollectable);
		put_le32(p + 44, 0);
	}
	return (ssize_t)size;
}

const char *
proto_gen_label(unsigned m, unsigned gen)
{
	static const char *const plain[PROTO_MAX_GEN] = { "generation 0",
	    "generation 1", "generation 2", "generation 3", "generation 4",
	    "generation 5", "generation 6", "generation 7" };
	static const char *const incremental[3] = { "young (explicit)",
	    "young+incremental", "full (explicit)" };
	static const char *const free_threaded[3] = { "whole heap",
	    "whole heap (explicit gen 1)", "full (explicit)" };

	if (m == GC_MODEL_INCREMENTAL && gen < 3)
		return incremental[gen];
	if (m == GC_MODEL_FREE_THREADED && gen < 3)
		return free_threaded[gen];
	return gen < PROTO_MAX_GEN ? plain[gen] : "generation ?";
}

/*
 * The stream reader. Invariant: every complete header in [off, len) has
 * been validated, and no byte after a bad header is ever buffered, so the
 * buffer only grows for a frame whose length has been checked.
 */

void
proto_reader_init(struct proto_reader *r, size_t max_frame)
{
	if (max_frame == 0 || max_frame > PROTO_MAX_FRAME)
		max_frame = PROTO_MAX_FRAME;
	r->buf = NULL;
	r->len = 0;
	r->off = 0;
	r->cap = 0;
	r->max_frame = max_frame;
	r->err = 0;
}

void
proto_reader_fini(struct proto_reader *r)
{
	free(r->buf);
	r->buf = NULL;
	r->len = r->off = r->cap = 0;
}

size_t
proto_reader_pending(const struct proto_reader *r)
{
	return r->len - r->off;
}

static int
proto_reader_reserve(struct proto_reader *r, size_t need)
{
	size_t ncap;
	uint8_t *nbuf;

	if (need <= r->cap)
		return 0;
	/* Double for runs of small frames, but never beyond what one frame
	 * plus the frames already buffered can use. */
	ncap = r->cap * 2;
	if (ncap < PROTO_READER_MIN_CAP)
		ncap = PROTO_READER_MIN_CAP;
	if (ncap < need || ncap > need + r->max_frame)
		ncap = need;
	if ((nbuf = realloc(r->buf, ncap)) == NULL)
		return -ENOMEM;
	r->buf = nbuf;
	r->cap = ncap;
	return 0;
}

static int
proto_reader_append(struct proto_reader *r, const uint8_t *data, size_t n,
    size_t need)
{
	int err;

	if ((err = proto_reader_reserve(r, need)) != 0) {
		r->err = err;		/* bytes are lost: the stream is bad */
		return err;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	return 0;
}

int
proto_reader_feed(struct proto_reader *r, const void *data, size_t n)
{
	const uint8_t *d = data;
	struct frame_hdr h = { 0 };
	size_t pos, have, take, end;
	int err;

	if (r->err != 0)
		return r->err;
	if (r->off > 0) {
		memmove(r->buf, r->buf + r->off, r->len - r->off);
		r->len -= r->off;
		r->off = 0;
	}
	if (r->len == 0 && r->cap > PROTO_READER_KEEP_CAP) {
		free(r->buf);	/* one big frame should not pin its buffer */
		r->buf = NULL;
		r->cap = 0;
	}

	/* Find the frame that the new bytes continue. */
	pos = 0;
	for (;;) {
		if (r->len - pos < PROTO_HDR_SIZE)
			break;
		if (proto_decode_header(r->buf + pos, r->len - pos,
		    r->max_frame, &h) != 0)
			return 0;	/* next() reports it; keep nothing more */
		if (h.len > r->len - pos)
			break;
		pos += h.len;
	}

	while (n > 0) {
		/* Complete the header at pos, else the frame it announces. */
		have = r->len - pos;
		end = pos + (have < PROTO_HDR_SIZE ? PROTO_HDR_SIZE : h.len);
		take = end - r->len;
		if (take > n)
			take = n;
		if ((err = proto_reader_append(r, d, take, end)) != 0)
			return err;
		d += take;
		n -= take;
		if (have < PROTO_HDR_SIZE) {
			if (r->len < end)
				break;		/* all fed: header still partial */
			if (proto_decode_header(r->buf + pos, PROTO_HDR_SIZE,
			    r->max_frame, &h) != 0)
				return 0;	/* drop the rest of a bad stream */
			continue;	/* h is valid: its body may be buffered */
		}
		if (r->len == end)
			pos = end;
	}
	return 0;
}

int
proto_reader_next(struct proto_reader *r, struct proto_frame *f)
{
	struct frame_hdr h;
	size_t avail;
	int err;

	if (r->err != 0)
		return r->err;
	avail = r->len - r->off;
	if (avail < PROTO_HDR_SIZE)
		return 0;
	if ((err = proto_decode_header(r->buf + r->off, avail, r->max_frame,
	    &h)) != 0) {
		r->err = err;
		return err;
	}
	if (h.len > avail)
		return 0;
	f->hdr = h;
	f->payload = r->buf + r->off + PROTO_HDR_SIZE;
	f->payload_len = h.len - PROTO_HDR_SIZE;
	r->off += h.len;
	return 1;
}
