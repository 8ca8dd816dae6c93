/*
 * shm.c: lays out and reads the shared area specified in shm.h. The
 * agent calls shm_area_size()/shm_area_init() (also from its fork child
 * handler: no allocation, no system call); gcmond calls the readers,
 * which treat the area as hostile: one copy out, then validation, every
 * index bounded by what was validated at attach. No I/O; a truncated
 * file's SIGBUS is the caller's to catch (daemon/ingest/agents.c).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "shm.h"

_Static_assert(sizeof(struct shm_header) == SHM_HEADER_SIZE,
    "shm_header must be SHM_HEADER_SIZE bytes");
_Static_assert(offsetof(struct shm_header, pid) == 48, "layout");
_Static_assert(offsetof(struct shm_header, state) == 64, "layout");
_Static_assert(offsetof(struct shm_header, gen) == 112, "layout");
_Static_assert(offsetof(struct shm_header, head) == 448, "layout");
_Static_assert(offsetof(struct shm_header, tail) == 512, "layout");
_Static_assert(offsetof(struct shm_header, exit_freeze_count) == 520, "layout");
_Static_assert(offsetof(struct shm_header, stack_off) == 528, "layout");
_Static_assert(offsetof(struct shm_header, stack_min_pause_ns) == 560, "layout");
_Static_assert(offsetof(struct shm_header, stack_head) == 576, "layout");
_Static_assert(offsetof(struct shm_header, stack_tail) == 640, "layout");
_Static_assert(sizeof(struct shm_stack) == 16 + 8 * SHM_STACK_DEPTH, "stack");
_Static_assert(sizeof(struct shm_name_rec) == 12, "name record");
_Static_assert((SHM_STACK_RING & (SHM_STACK_RING - 1)) == 0, "stack ring");
_Static_assert(offsetof(struct shm_header, exit_via) == 648, "layout");
_Static_assert(offsetof(struct shm_header, exit_code) == 652, "layout");
_Static_assert(offsetof(struct shm_header, req_off) == 704, "layout");
_Static_assert(offsetof(struct shm_header, req_dropped) == 720, "layout");
_Static_assert(offsetof(struct shm_header, nroutes) == 728, "layout");
_Static_assert(offsetof(struct shm_header, req_head) == 768, "layout");
_Static_assert(offsetof(struct shm_header, req_tail) == 832, "layout");
_Static_assert(offsetof(struct shm_header, gc_start_ns) == 896, "layout");
_Static_assert(sizeof(struct shm_request) == 40, "request slot");
_Static_assert(sizeof(struct shm_route) == 128, "route slot");
_Static_assert((SHM_REQ_RING & (SHM_REQ_RING - 1)) == 0, "request ring");
_Static_assert(sizeof(struct proto_event) == PROTO_EVENT_SIZE, "slot");
_Static_assert(sizeof(struct shm_gen) == PROTO_GEN_COUNTER_SIZE, "gen");

#define SHM_ALIGN(n, a)	(((n) + (a) - 1) & ~((size_t)(a) - 1))

size_t shm_ring_off(uint32_t hello_len)
{
	return SHM_ALIGN(SHM_HEADER_SIZE + (size_t)hello_len, 4096) +
	    SHM_EXIT_CAP;
}

size_t shm_stack_off(uint32_t hello_len, uint32_t ring_cap)
{
	return SHM_ALIGN(shm_ring_off(hello_len) +
	    (size_t)ring_cap * sizeof(struct proto_event), 64);
}

size_t shm_req_off(uint32_t hello_len, uint32_t ring_cap)
{
	return SHM_ALIGN(shm_stack_off(hello_len, ring_cap) +
	    (size_t)SHM_STACK_RING * sizeof(struct shm_stack), 64);
}

size_t shm_route_off(uint32_t hello_len, uint32_t ring_cap)
{
	return SHM_ALIGN(shm_req_off(hello_len, ring_cap) +
	    (size_t)SHM_REQ_RING * sizeof(struct shm_request), 64);
}

size_t shm_names_off(uint32_t hello_len, uint32_t ring_cap)
{
	return SHM_ALIGN(shm_route_off(hello_len, ring_cap) +
	    (size_t)SHM_ROUTES * sizeof(struct shm_route), 4096);
}

size_t shm_area_size(uint32_t hello_len, uint32_t ring_cap)
{
	return shm_names_off(hello_len, ring_cap) + SHM_NAMES_CAP;
}

void shm_area_init(void *base, size_t size, const uint8_t *hello,
    uint32_t hello_len, uint32_t ring_cap, uint32_t pid, uint32_t uid,
    uint64_t start_ticks)
{
	struct shm_header *h = base;

	h->version = SHM_VERSION;
	h->header_size = SHM_HEADER_SIZE;
	h->total_size = size;
	h->hello_off = SHM_HEADER_SIZE;
	h->hello_len = hello_len;
	memcpy((char *)base + SHM_HEADER_SIZE, hello, hello_len);
	h->exit_off = (uint32_t)(shm_ring_off(hello_len) - SHM_EXIT_CAP);
	h->exit_cap = SHM_EXIT_CAP;
	h->ring_off = (uint32_t)shm_ring_off(hello_len);
	h->ring_cap = ring_cap;
	h->stack_off = (uint32_t)shm_stack_off(hello_len, ring_cap);
	h->stack_cap = SHM_STACK_RING;
	h->names_off = (uint32_t)shm_names_off(hello_len, ring_cap);
	h->names_cap = SHM_NAMES_CAP;
	h->req_off = (uint32_t)shm_req_off(hello_len, ring_cap);
	h->req_cap = SHM_REQ_RING;
	h->route_off = (uint32_t)shm_route_off(hello_len, ring_cap);
	h->route_cap = SHM_ROUTES;
	h->pid = pid;
	h->uid = uid;
	h->start_ticks = start_ticks;
	atomic_store_explicit(&h->state, SHM_STATE_LIVE, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(h->magic, SHM_MAGIC, sizeof h->magic);
}

/* [off, off + len) within [SHM_HEADER_SIZE, size). */
static int shm_region_ok(uint64_t off, uint64_t len, size_t size)
{
	return off >= SHM_HEADER_SIZE && off <= size && len <= size - off;
}

int shm_check(const void *map, size_t size, struct shm_info *out)
{
	struct shm_header h;
	uint64_t ring_bytes, stack_bytes, req_bytes, route_bytes;

	if (size < SHM_HEADER_SIZE || size > SHM_MAX_SIZE)
		return -EMSGSIZE;
	memcpy(&h, map, sizeof h);	/* once: the writer may change it */
	atomic_thread_fence(memory_order_acquire);
	if (memcmp(h.magic, SHM_MAGIC, sizeof h.magic) != 0)
		return -EAGAIN;
	if (h.version < SHM_VERSION_MIN || h.version > SHM_VERSION)
		return -EPROTONOSUPPORT;
	if (h.version < 3) {
		/* No request ring nor route table: their bytes were reserved. */
		h.req_off = h.req_cap = h.route_off = h.route_cap = 0;
	}
	ring_bytes = (uint64_t)h.ring_cap * sizeof(struct proto_event);
	stack_bytes = (uint64_t)h.stack_cap * sizeof(struct shm_stack);
	req_bytes = (uint64_t)h.req_cap * sizeof(struct shm_request);
	route_bytes = (uint64_t)h.route_cap * sizeof(struct shm_route);
	if (h.header_size != SHM_HEADER_SIZE || h.total_size != size ||
	    h.ring_cap < SHM_RING_MIN || h.ring_cap > SHM_RING_MAX ||
	    (h.ring_cap & (h.ring_cap - 1)) != 0 ||
	    h.hello_len < PROTO_HDR_SIZE || h.hello_len > SHM_HELLO_CAP ||
	    h.ring_off % _Alignof(struct proto_event) != 0 ||
	    !shm_region_ok(h.hello_off, h.hello_len, size) ||
	    !shm_region_ok(h.exit_off, h.exit_cap, size) ||
	    !shm_region_ok(h.ring_off, ring_bytes, size) ||
	    h.stack_cap < 1 || h.stack_cap > SHM_STACK_RING_MAX ||
	    (h.stack_cap & (h.stack_cap - 1)) != 0 ||
	    h.stack_off % _Alignof(struct shm_stack) != 0 ||
	    !shm_region_ok(h.stack_off, stack_bytes, size) ||
	    h.names_cap > SHM_NAMES_CAP ||
	    !shm_region_ok(h.names_off, h.names_cap, size) ||
	    (h.version >= 3 && (h.req_cap < 1 ||
	    h.req_cap > SHM_REQ_RING_MAX ||
	    (h.req_cap & (h.req_cap - 1)) != 0 ||
	    h.req_off % _Alignof(struct shm_request) != 0 ||
	    !shm_region_ok(h.req_off, req_bytes, size) ||
	    h.route_cap > SHM_ROUTES ||
	    h.route_off % _Alignof(struct shm_route) != 0 ||
	    !shm_region_ok(h.route_off, route_bytes, size))) ||
	    h.pid == 0)
		return -EBADMSG;
	out->size = size;
	out->pid = h.pid;
	out->uid = h.uid;
	out->start_ticks = h.start_ticks;
	out->hello_off = h.hello_off;
	out->hello_len = h.hello_len;
	out->exit_off = h.exit_off;
	out->exit_cap = h.exit_cap;
	out->ring_off = h.ring_off;
	out->ring_cap = h.ring_cap;
	out->stack_off = h.stack_off;
	out->stack_cap = h.stack_cap;
	out->names_off = h.names_off;
	out->names_cap = h.names_cap;
	out->req_off = h.req_off;
	out->req_cap = h.req_cap;
	out->route_off = h.route_off;
	out->route_cap = h.route_cap;
	return 0;
}

int shm_read_hello(const void *map, const struct shm_info *in, uint8_t *buf,
    struct proto_hello *h)
{
	struct proto_frame f;
	int err;

	memcpy(buf, (const char *)map + in->hello_off, in->hello_len);
	if ((err = proto_decode_header(buf, in->hello_len, 0, &f.hdr)) < 0)
		return err == -EAGAIN ? -EBADMSG : err;
	if (f.hdr.type != FRAME_HELLO || f.hdr.len != in->hello_len)
		return -EPROTO;
	f.payload = buf + PROTO_HDR_SIZE;
	f.payload_len = f.hdr.len - PROTO_HDR_SIZE;
	return proto_decode_hello(&f, h);
}

void shm_snapshot(const void *map, struct shm_snapshot *out)
{
	const struct shm_header *h = map;
	unsigned i, ngen;

	memset(out, 0, sizeof *out);
	out->head = atomic_load_explicit(&h->head, memory_order_acquire);
	out->state = atomic_load_explicit(&h->state, memory_order_acquire);
	out->exit_mono_ns = atomic_load_explicit(&h->exit_mono_ns,
	    memory_order_relaxed);
	out->exit_cpu_ns = atomic_load_explicit(&h->exit_cpu_ns,
	    memory_order_relaxed);
	out->exit_maxrss = atomic_load_explicit(&h->exit_maxrss,
	    memory_order_relaxed);
	out->exit_len = atomic_load_explicit(&h->exit_len,
	    memory_order_acquire);
	out->exit_freeze_count = atomic_load_explicit(&h->exit_freeze_count,
	    memory_order_relaxed);
	out->exit_via = atomic_load_explicit(&h->exit_via, memory_order_relaxed);
	out->exit_code = atomic_load_explicit(&h->exit_code,
	    memory_order_relaxed);
	if (out->exit_via == SHM_EXIT_DETACHED)
		out->exit_code = 0;
	else if (out->exit_via != SHM_EXIT_OS_EXIT || out->exit_code < 0 ||
	    out->exit_code > 255)
		out->exit_via = SHM_EXIT_HANDLER, out->exit_code = 0;
	out->names_len = atomic_load_explicit(&h->names_len,
	    memory_order_acquire);
	out->stacks_dropped = atomic_load_explicit(&h->stacks_dropped,
	    memory_order_relaxed);
	ngen = atomic_load_explicit(&h->ngen, memory_order_relaxed);
	if (ngen < 1)
		ngen = 1;
	if (ngen > PROTO_MAX_GEN)
		ngen = PROTO_MAX_GEN;
	out->counters.ngen = (uint8_t)ngen;
	out->counters.dropped = atomic_load_explicit(&h->dropped,
	    memory_order_relaxed);
	for (i = 0; i < ngen; i++) {
		const struct shm_gen *g = &h->gen[i];
		struct proto_gen_counters *c = &out->counters.gen[i];

		c->count = atomic_load_explicit(&g->count, memory_order_relaxed);
		c->pause_ns = atomic_load_explicit(&g->pause_ns,
		    memory_order_relaxed);
		c->max_pause_ns = atomic_load_explicit(&g->max_pause_ns,
		    memory_order_relaxed);
		c->collected = atomic_load_explicit(&g->collected,
		    memory_order_relaxed);
		c->uncollectable = atomic_load_explicit(&g->uncollectable,
		    memory_order_relaxed);
	}
}

/* Where a reader of a ring of cap slots starts: the tail the area holds,
 * unless it is ahead of head or more than a ring behind (the writer's
 * word, not to be believed), then the oldest record the ring can hold. */
static uint64_t shm_clamp_tail(uint64_t head, uint64_t tail, uint32_t cap)
{
	if (tail > head || head - tail > cap)
		tail = head >= cap ? head - cap : 0;
	return tail;
}

/*
 * The drain of the event and request rings: copies up to max records of
 * size bytes, from *tail on to head, out of the ring of cap slots (a
 * power of 2, validated) at off, then hands the slots back (*ring_tail,
 * release). The number copied, or -EBADMSG when head cannot be right.
 */
static int shm_ring_copy(void *map, uint32_t off, uint32_t cap,
    size_t size, uint64_t head, uint64_t *tail, _Atomic uint64_t *ring_tail,
    void *out, uint32_t max)
{
	const char *slots = (const char *)map + off;
	uint64_t avail, t = *tail;
	uint32_t n, i, mask = cap - 1;

	if (head < t || head - t > cap)
		return -EBADMSG;
	avail = head - t;
	n = avail < max ? (uint32_t)avail : max;
	for (i = 0; i < n; i++)
		memcpy((char *)out + (size_t)i * size,
		    slots + (size_t)((t + i) & mask) * size, size);
	*tail = t + n;
	atomic_store_explicit(ring_tail, t + n, memory_order_release);
	return (int)n;
}

uint64_t shm_start_tail(const void *map, const struct shm_info *in,
    uint64_t head)
{
	const struct shm_header *h = map;

	return shm_clamp_tail(head, atomic_load_explicit(&h->tail,
	    memory_order_relaxed), in->ring_cap);
}

int shm_drain(void *map, const struct shm_info *in, uint64_t head,
    uint64_t *tail, struct proto_event *out, uint32_t max)
{
	struct shm_header *h = map;

	return shm_ring_copy(map, in->ring_off, in->ring_cap, sizeof *out, head,
	    tail, &h->tail, out, max);
}

uint64_t shm_start_stack_tail(const void *map, const struct shm_info *in)
{
	const struct shm_header *h = map;
	uint64_t head = atomic_load_explicit(&h->stack_head,
	    memory_order_acquire);

	return shm_clamp_tail(head, atomic_load_explicit(&h->stack_tail,
	    memory_order_relaxed), in->stack_cap);
}

int shm_drain_stack(void *map, const struct shm_info *in, uint64_t *tail,
    uint64_t start_ns, struct shm_stack *out)
{
	struct shm_header *h = map;
	const struct shm_stack *slots;
	uint64_t head, t = *tail;
	int found = 0;

	head = atomic_load_explicit(&h->stack_head, memory_order_acquire);
	if (head < t || head - t > in->stack_cap)
		return -EBADMSG;
	slots = (const struct shm_stack *)((const char *)map + in->stack_off);
	while (t < head) {
		memcpy(out, &slots[t & (in->stack_cap - 1)], sizeof *out);
		if (out->start_ns > start_ns)
			break;		/* a later event's: leave it */
		t++;
		if (out->start_ns == start_ns) {
			found = 1;
			break;
		}
	}
	*tail = t;
	atomic_store_explicit(&h->stack_tail, t, memory_order_release);
	if (found && (out->depth > SHM_STACK_DEPTH ||
	    (out->flags & ~SHM_STACK_TRUNCATED) != 0))
		return -EBADMSG;
	return found;
}

int shm_next_name(const void *map, const struct shm_info *in,
    uint32_t names_len, uint32_t *off, struct shm_name *out)
{
	const char *base = (const char *)map + in->names_off;
	struct shm_name_rec rec;
	uint32_t o = *off, len = names_len;
	size_t need;

	if (len > in->names_cap)
		len = in->names_cap;
	if (o >= len)
		return 0;
	if (len - o < sizeof rec)
		return -EBADMSG;
	memcpy(&rec, base + o, sizeof rec);
	if (rec.code_id == 0 || rec.code_id >= SHM_CODES ||
	    rec.file_len > SHM_NAME_MAX || rec.func_len > SHM_NAME_MAX)
		return -EBADMSG;
	need = SHM_NAME_REC_SIZE(rec.file_len, rec.func_len);
	if (need > len - o)
		return -EBADMSG;
	out->code_id = rec.code_id;
	out->first_line = rec.first_line;
	memcpy(out->file, base + o + sizeof rec, rec.file_len);
	out->file[rec.file_len] = '\0';
	memcpy(out->func, base + o + sizeof rec + rec.file_len, rec.func_len);
	out->func[rec.func_len] = '\0';
	*off = o + (uint32_t)need;
	return 1;
}

uint64_t shm_req_head(const void *map)
{
	const struct shm_header *h = map;

	return atomic_load_explicit(&h->req_head, memory_order_acquire);
}

uint64_t shm_start_req_tail(const void *map, const struct shm_info *in)
{
	const struct shm_header *h = map;
	uint64_t head = shm_req_head(map);

	return shm_clamp_tail(head, atomic_load_explicit(&h->req_tail,
	    memory_order_relaxed), in->req_cap);
}

int shm_drain_requests(void *map, const struct shm_info *in, uint64_t head,
    uint64_t *tail, struct shm_request *out, uint32_t max,
    uint64_t *dropped)
{
	struct shm_header *h = map;

	*dropped = atomic_load_explicit(&h->req_dropped, memory_order_relaxed);
	return shm_ring_copy(map, in->req_off, in->req_cap, sizeof *out, head,
	    tail, &h->req_tail, out, max);
}

int shm_request_valid(const struct shm_request *r)
{
	return r->start_ns != 0 && r->end_ns >= r->start_ns &&
	    (r->flags & ~SHM_REQ_FLAGS) == 0 &&
	    r->gc_ns <= r->end_ns - r->start_ns && r->status <= 999;
}

uint32_t shm_nroutes(const void *map, const struct shm_info *in)
{
	const struct shm_header *h = map;
	uint32_t n = atomic_load_explicit(&h->nroutes, memory_order_acquire);

	return n < in->route_cap ? n : in->route_cap;
}

int shm_route_name(const void *map, const struct shm_info *in,
    uint32_t nroutes, uint32_t id, char *buf)
{
	struct shm_route r;

	if (id == 0 || id >= nroutes || id >= in->route_cap)
		return -ENOENT;
	memcpy(&r, (const char *)map + in->route_off + (size_t)id * sizeof r,
	    sizeof r);
	if (r.len == 0 || r.len > SHM_ROUTE_NAME_MAX ||
	    memchr(r.name, '\0', r.len) != NULL)
		return -EBADMSG;
	memcpy(buf, r.name, r.len);
	buf[r.len] = '\0';
	return (int)r.len;
}

int shm_event_valid(const struct proto_event *e)
{
	return e->generation < PROTO_MAX_GEN;
}

int shm_parse_start_ticks(const char *stat, size_t len, uint64_t *ticks)
{
	const char *p = NULL, *end = stat + len;
	unsigned field;
	uint64_t v;
	size_t i;

	/* The command name (field 2) may hold spaces and ')': fields are
	 * counted from the last ')'. */
	for (i = len; i > 0; i--) {
		if (stat[i - 1] == ')') {
			p = stat + i;
			break;
		}
	}
	if (p == NULL)
		return -EINVAL;
	for (field = 3;; field++) {	/* field 3 (state) follows ")" */
		while (p < end && *p == ' ')
			p++;
		if (field == 22)
			break;
		while (p < end && *p != ' ')
			p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return -EINVAL;
	for (v = 0; p < end && *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*ticks = v;
	return 0;
}

void shm_parse_cgroup_path(const char *text, size_t len, const char **path,
    size_t *path_len)
{
	const char *line = text, *end = text + len, *eol, *p, *q;
	size_t n;
	int unified;

	*path = "";
	*path_len = 0;
	for (; line < end; line = eol + 1) {
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			eol = end;
		/* "<id>:<controllers>:<path>"; the path may hold ':'. */
		if ((p = memchr(line, ':', (size_t)(eol - line))) != NULL &&
		    (q = memchr(p + 1, ':', (size_t)(eol - p - 1))) != NULL) {
			n = (size_t)(eol - q - 1);
			unified = p - line == 1 && line[0] == '0' && q == p + 1;
			/* A path of its own wins over the root; the unified
			 * hierarchy's over a v1 controller's. */
			if (*path_len == 0 || (n > 1 && (*path_len == 1 ||
			    unified))) {
				*path = q + 1;
				*path_len = n;
			}
			if (unified && n > 1)
				return;
		}
		if (eol == end)
			break;
	}
}

void shm_lock_range(struct flock *fl)
{
	memset(fl, 0, sizeof *fl);
	fl->l_type = F_WRLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = SHM_LOCK_OFF;
	fl->l_len = SHM_LOCK_LEN;
}
