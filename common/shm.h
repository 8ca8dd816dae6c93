/*
 * shm.h: the shared area of one monitored process, which its agent writes
 * and gcmond reads (the JVM's hsperfdata model). This header is the
 * specification of the layout; the agent (agent/area.c) writes it through
 * shm_area_init() and the inline producer below, gcmond (daemon/ingest/agents.c)
 * reads it only through common/shm.c. No I/O here or in shm.c.
 *
 * Where: one file per process in the agent directory of a gcmond, which is
 * its socket path with ".d" appended (paths_agent_dir()). The agent
 * creates ".<pid>-<nonce>.tmp" there (O_EXCL, O_NOFOLLOW, mode 0600, or
 * 0660 when the directory belongs to another user), sizes it, maps it
 * MAP_SHARED, fills the header and renames it to "<pid>-<nonce>.gcmon":
 * a file under its final name is complete. gcmond maps it read-write (it
 * writes the ring's tail and nothing else), drains the ring on a short
 * timer, learns of the process's end from a pidfd, then takes the final
 * counters and unlinks the file. A restarted gcmond finds the files of
 * live processes, and of processes that ended while it was away, again.
 *
 * Layout: native byte order and alignment (both sides run on one host and
 * share atomics), every field at the fixed offset the static assertions
 * in shm.c pin. The file is:
 *
 *   0                      struct shm_header (SHM_HEADER_SIZE bytes)
 *   hello_off              a HELLO frame (protocol.h), hello_len bytes:
 *                          the identity (pid, ppid, clocks, version, GC
 *                          model, baseline, run id, argv), encoded and
 *                          decoded by codec.c as on the wire
 *   exit_off               exit_cap bytes; at a clean exit the agent may
 *                          put OBJECTS and GARBAGE frames there, then
 *                          publishes their length in exit_len (release)
 *   ring_off               ring_cap slots of struct proto_event
 *   stack_off              stack_cap slots of struct shm_stack (version 2)
 *   names_off              names_cap bytes of name records (version 2),
 *                          names_len of them published (release)
 *   req_off                req_cap slots of struct shm_request (version 3)
 *   route_off              route_cap slots of struct shm_route (version 3),
 *                          nroutes of them published (release)
 *
 * Offsets and capacities are the agent's to choose and are validated by
 * the reader against the size it mapped: every region within the file,
 * none overlapping the header, ring_cap a power of 2 within
 * [SHM_RING_MIN, SHM_RING_MAX]. Untouched pages of a tmpfs file cost no
 * memory, so the exit area is free until used.
 *
 * Ring: single producer (the GC callback, one at a time), single consumer
 * (gcmond). The producer writes slot head % cap, then stores head + 1
 * with release; the consumer loads head with acquire, copies slots out,
 * then stores tail with release. A full ring (head - tail == cap) refuses
 * the record: the producer counts it in `dropped`. Counters are updated
 * before the slot is published, so a consumer that has read up to head
 * sees counters at least as new as those records.
 *
 * Stacks (version 2): for every collection of generation 2 or more, every
 * one of at least stack_min_pause_ns (written by gcmond at attach from its
 * --alert-threshold-ms; 0 until then, when the agent uses its own default,
 * GCMON_STACK_MIN_PAUSE_MS or 50 ms) and one in GCMON_STACK_SAMPLE of the
 * others (default 0: none), the callback at "stop" walks the Python stack
 * of its thread (the same as at "start": a collection does not return to
 * Python code) and writes it into the stack ring, published like the event
 * ring (stack_head/stack_tail), BEFORE its event; the event then carries
 * PROTO_EVENT_HAS_STACK: "the next stack of the stack ring is mine", with
 * the same start_ns. A full stack ring leaves the flag off and counts
 * stacks_dropped; a stack whose event was refused by a full event ring is
 * skipped by the reader (its start_ns is older than the next flagged
 * event's). A frame is (code_id, line): code_id indexes the agent's table
 * of code objects, which holds a reference to each so an id never names
 * another code (0: unknown, table full). Names are resolved outside the
 * callback and appended to the names region by pwrite (the region is a
 * hole until used: a full filesystem is an error there, not a SIGBUS),
 * each a struct shm_name_rec followed by file_len + func_len bytes, padded
 * to 4; names_len is stored with release after the bytes. A forked child
 * republishes the names its stacks use in its own area.
 *
 * Identity across namespaces (version 3): the HELLO says where the
 * process runs (protocol.h, PROTO_HELLO_PLACE: its PID namespace, cgroup,
 * hostname, pod), and the agent holds a POSIX write lock (F_SETLK) on
 * SHM_LOCK_LEN bytes at SHM_LOCK_OFF of its file for as long as it runs
 * (PROTO_HELLO_LOCKED). The kernel drops the lock when the process ends,
 * however it ends; a forked child does not inherit it (it takes its own
 * on its own file), and exec closes the file. gcmond asks with F_GETLK,
 * which reports the holder's pid translated into gcmond's PID namespace,
 * or 0 when gcmond cannot see the holder. So when the area's namespace
 * is not gcmond's, gcmond finds the process's pid in its own namespace
 * from the lock and checks it (the NSpid line, the namespace and the
 * start time of /proc/<pid>), or, when it cannot see the process at all
 * (a sibling namespace), still drains the area and learns of the end
 * from the lock. Owners are judged by the file's owner as the kernel
 * reports it to gcmond, never by the uid the area claims (a user
 * namespace maps it). Version-2 areas carry neither: gcmond takes them
 * to be of its own namespace.
 *
 * Requests (version 3): the request ring holds one record per request a
 * middleware (gcmon.wsgi, gcmon.asgi) saw end, written by the agent's
 * request_end() with the GIL held (one producer at a time, as the event
 * ring) and published like it (req_head/req_tail); a full ring counts
 * req_dropped. start_ns and end_ns are CLOCK_MONOTONIC, the pauses'
 * clock; gc_ns and ngc are the agent's counters' growth over the request
 * (pause_ns and count summed over generations at begin and at end), which
 * gcmond checks its own join of the interval with the process's pauses
 * against. A request still open when the exit handler runs is recorded
 * then, flagged SHM_REQ_OPEN_AT_EXIT (a SIGKILLed process loses its open
 * requests: nothing runs). route_id names a slot of the route table, a
 * region the agent writes outside any request (at the first sight of a
 * route, and in a fork child for the inherited ones) and publishes by
 * storing nroutes with release: ids 1 .. nroutes - 1 are valid; 0 is
 * "other" (the table full, or no route given). Only the route's template
 * or the method and first path segment are kept: never a query string,
 * a body or a header.
 *
 * The collection in progress: gc_start_ns holds the start of the one
 * running (stored at "start"), 0 between them (stored with release after
 * the stop's counters). gcmond reads it, with the counts, before and
 * after it reads the process's memory from outside (shm_gc_mark): a
 * reading a collection ran through has pages half copied, and is never
 * a "before" or an "after" of the memory a collection unshared. An area
 * of an agent that predates it holds 0 there: every reading is quiet.
 *
 * Trust: to gcmond the whole file is hostile input. It copies the header
 * out once, bounds every index by the capacity it validated at attach
 * (never by a value re-read from the file), treats head moving backwards
 * or more than cap ahead of its own tail as a broken area, checks the
 * file's owner, the header's pid, uid and start time against /proc/<pid>,
 * and survives the file being truncated under it (SIGBUS, shm.c).
 */
#ifndef GCMON_SHM_H
#define GCMON_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "protocol.h"

#define SHM_MAGIC		"GCMONSH1"	/* 8 bytes, no NUL */
#define SHM_VERSION		3u
#define SHM_VERSION_MIN		2u		/* oldest a reader accepts */
#define SHM_HEADER_SIZE		1024u
#define SHM_RING_MIN		64u
#define SHM_RING_MAX		(1u << 20)
#define SHM_RING_DEFAULT	4096u		/* 160 KiB of slots */
#define SHM_EXIT_CAP		(256u << 10)	/* OBJECTS + GARBAGE at exit */
#define SHM_HELLO_CAP		(PROTO_MAX_ARGV + 4u * PROTO_MAX_STR + \
				 PROTO_MAX_ARGC * 4u + 1024u)
#define SHM_STACK_DEPTH		32u		/* frames kept, leaf first */
#define SHM_STACK_RING		128u		/* stack slots, a power of 2 */
#define SHM_STACK_RING_MAX	4096u
#define SHM_CODES		4096u		/* code ids: 1 .. SHM_CODES - 1 */
#define SHM_NAMES_CAP		(512u << 10)	/* the names region, a hole */
#define SHM_NAME_MAX		1024u		/* bytes of a file or function */
#define SHM_STACK_MIN_PAUSE_NS	(PROTO_PAUSE_THRESHOLD_MS * 1000000u)	/* until gcmond says */
#define SHM_REQ_RING		4096u		/* request slots, a power of 2 */
#define SHM_REQ_RING_MAX	65536u
#define SHM_ROUTES		257u		/* route ids 1 .. 256; 0: other */
#define SHM_ROUTE_NAME_MAX	124u		/* bytes of a route's name */
#define SHM_MAX_SIZE		(64u << 20)	/* any file above is refused */
#define SHM_DIR_SUFFIX		".d"		/* <socket>.d: the agent directory */
#define SHM_SUFFIX		".gcmon"
#define SHM_TMP_SUFFIX		".tmp"
#define SHM_LOCK_OFF		0		/* the liveness lock's bytes */
#define SHM_LOCK_LEN		1

/* header.state */
enum shm_state {
	SHM_STATE_LIVE = 1,	/* counting */
	SHM_STATE_EXITED = 2	/* the interpreter's exit handler ran */
};

/* header.exit_via, meaningful once state is EXITED */
enum shm_exit_via {
	SHM_EXIT_HANDLER = 0,	/* the interpreter's exit (atexit ran) */
	SHM_EXIT_OS_EXIT = 1,	/* os._exit(exit_code): no atexit, known code */
	/* gcmon.stop() (pygcprofiler detach): the process lives on, this area
	 * is final (the agent unmapped it); gcmond ends it as if the process
	 * had, and a later start() makes a new area (PROTO_HELLO_PRIOR). */
	SHM_EXIT_DETACHED = 2
};

/* Per generation, cumulative since this process's agent started (a
 * forked child starts at zero; its baseline holds what it inherited). */
struct shm_gen {
	_Atomic uint64_t count;
	_Atomic uint64_t pause_ns;
	_Atomic uint64_t max_pause_ns;
	_Atomic uint64_t collected;
	_Atomic uint64_t uncollectable;
};

struct shm_header {
	char magic[8];			/* SHM_MAGIC, written last by init */
	uint32_t version;		/* SHM_VERSION */
	uint32_t header_size;		/* SHM_HEADER_SIZE */
	uint64_t total_size;		/* the file's size */
	uint32_t hello_off, hello_len;
	uint32_t exit_off, exit_cap;
	uint32_t ring_off, ring_cap;
	/* Identity checked against /proc/<pid> before anything is believed. */
	uint32_t pid;
	uint32_t uid;			/* effective uid, as the agent sees it */
	uint64_t start_ticks;		/* /proc/<pid>/stat field 22 */
	/* Written while the process runs. */
	_Atomic uint32_t state;		/* enum shm_state */
	_Atomic uint32_t ngen;		/* highest generation seen + 1 */
	_Atomic uint64_t dropped;	/* records refused by a full ring */
	_Atomic uint64_t exit_mono_ns;	/* at the exit handler */
	_Atomic uint64_t exit_cpu_ns;	/* CPU time (user+sys) then */
	_Atomic uint64_t exit_maxrss;	/* peak RSS then, bytes */
	_Atomic uint32_t exit_len;	/* bytes of frames in the exit area */
	uint32_t reserved0;
	struct shm_gen gen[PROTO_MAX_GEN];
	/* Each index on its own cache line: two writers. */
	_Alignas(64) _Atomic uint64_t head;	/* producer */
	_Alignas(64) _Atomic uint64_t tail;	/* consumer */
	_Atomic uint64_t exit_freeze_count;	/* gc.get_freeze_count() */
	/* Version 2: stacks. */
	uint32_t stack_off, stack_cap;	/* the stack ring, stack_cap slots */
	uint32_t names_off, names_cap;	/* the names region, bytes */
	_Atomic uint64_t stacks_dropped; /* stacks refused by a full ring */
	_Atomic uint32_t names_len;	/* bytes of name records published */
	uint32_t reserved1;
	_Atomic uint64_t stack_min_pause_ns;	/* gcmond's (0: not yet) */
	_Alignas(64) _Atomic uint64_t stack_head;	/* producer */
	_Alignas(64) _Atomic uint64_t stack_tail;	/* consumer */
	_Atomic uint32_t exit_via;	/* enum shm_exit_via; before state */
	_Atomic int32_t exit_code;	/* os._exit's status & 0xff */
	char reserved_free[704 - 656];	/* 656..703: zero, unused */
	/* Version 3: requests, from byte 704. */
	uint32_t req_off, req_cap;	/* the request ring, req_cap slots */
	uint32_t route_off, route_cap;	/* the route table, route_cap slots */
	_Atomic uint64_t req_dropped;	/* requests refused by a full ring */
	_Atomic uint32_t nroutes;	/* route slots published (release) */
	uint32_t reserved2;
	_Alignas(64) _Atomic uint64_t req_head;	/* producer */
	_Alignas(64) _Atomic uint64_t req_tail;	/* consumer */
	/* The start (CLOCK_MONOTONIC) of the collection in progress, 0 when
	 * none: stored at "start", cleared after the stop's counters
	 * (release). Zero in an area of an agent that predates it, which
	 * reads as "never collecting": see shm_gc_mark(). */
	_Alignas(64) _Atomic uint64_t gc_start_ns;
	char reserved[SHM_HEADER_SIZE - 904];
};

/* One frame of a stack: which code (the agent's id), at which line. */
struct shm_frame {
	uint32_t code_id;
	uint32_t line;
};

/* A slot of the stack ring. */
struct shm_stack {
	uint64_t start_ns;		/* its event's */
	uint16_t depth;			/* frames used, at most SHM_STACK_DEPTH */
	uint16_t flags;			/* SHM_STACK_* */
	uint32_t reserved;
	struct shm_frame frame[SHM_STACK_DEPTH];	/* leaf first */
};
#define SHM_STACK_TRUNCATED	0x0001u	/* deeper than SHM_STACK_DEPTH */

/* A name record's head; the file's bytes, then the function's follow. */
struct shm_name_rec {
	uint32_t code_id;
	uint32_t first_line;		/* co_firstlineno */
	uint16_t file_len, func_len;	/* at most SHM_NAME_MAX each */
};
#define SHM_NAME_REC_SIZE(f, q)	((sizeof(struct shm_name_rec) + (f) + (q) + 3u) & ~3u)

/* A slot of the request ring (40 bytes). */
struct shm_request {
	uint64_t start_ns, end_ns;	/* CLOCK_MONOTONIC */
	uint64_t gc_ns;			/* the agent's pause counters' growth */
	uint32_t thread_id;		/* the kernel's id of its thread */
	uint32_t ngc;			/* the agent's collection count's growth */
	uint16_t route_id;		/* < nroutes, else "other" */
	uint16_t status;		/* HTTP status; 0: none sent */
	uint16_t flags;			/* SHM_REQ_* */
	uint16_t reserved;
};
#define SHM_REQ_ERROR		0x0001u	/* the application raised */
#define SHM_REQ_DISCONNECT	0x0002u	/* the client went away */
#define SHM_REQ_STREAMED	0x0004u	/* a body of several chunks */
#define SHM_REQ_OPEN_AT_EXIT	0x0008u	/* still open at the exit handler */
#define SHM_REQ_FLAGS		0x000fu

/* A slot of the route table: len bytes of UTF-8 name. */
struct shm_route {
	uint32_t len;			/* at most SHM_ROUTE_NAME_MAX */
	char name[SHM_ROUTE_NAME_MAX];
};

/* ---- producer (the agent) ------------------------------------------- */

/* Where the parts of a fresh area go: its size for a HELLO of hello_len
 * bytes and a ring of ring_cap slots (a power of 2 in range). */
size_t shm_area_size(uint32_t hello_len, uint32_t ring_cap);
/* Where its ring starts; the exit area is the SHM_EXIT_CAP bytes before. */
size_t shm_ring_off(uint32_t hello_len);
/* Where its stack ring starts, and its names region (the file's end is
 * names_off + SHM_NAMES_CAP). */
size_t shm_stack_off(uint32_t hello_len, uint32_t ring_cap);
size_t shm_names_off(uint32_t hello_len, uint32_t ring_cap);
/* Version 3: the request ring and route table, between the stack ring and
 * the names region (reserved pages: the callback's and the middleware's). */
size_t shm_req_off(uint32_t hello_len, uint32_t ring_cap);
size_t shm_route_off(uint32_t hello_len, uint32_t ring_cap);
/*
 * Lays out a zeroed area of shm_area_size() bytes at base: copies the
 * HELLO frame in, sets offsets, identity and state LIVE, and writes the
 * magic last (release). No allocation, no system call: safe in a
 * pthread_atfork child handler.
 */
void shm_area_init(void *base, size_t size, const uint8_t *hello,
    uint32_t hello_len, uint32_t ring_cap, uint32_t pid, uint32_t uid,
    uint64_t start_ticks);

static inline struct proto_event *shm_ring_slots(struct shm_header *h)
{
	return (struct proto_event *)((char *)h + h->ring_off);
}

/* One producer: a plain load and store, no read-modify-write needed. */
#define SHM_ADD(field, v) atomic_store_explicit(&(field), \
	atomic_load_explicit(&(field), memory_order_relaxed) + (v), \
	memory_order_relaxed)

/* Counts a collection and publishes its record; the hot path. */
static inline void shm_record(struct shm_header *h,
    const struct proto_event *ev)
{
	struct shm_gen *g = &h->gen[ev->generation];
	uint64_t head, tail;

	SHM_ADD(g->count, 1);
	SHM_ADD(g->pause_ns, ev->pause_ns);
	if (ev->pause_ns > atomic_load_explicit(&g->max_pause_ns,
	    memory_order_relaxed))
		atomic_store_explicit(&g->max_pause_ns, ev->pause_ns,
		    memory_order_relaxed);
	SHM_ADD(g->collected, ev->collected);
	SHM_ADD(g->uncollectable, ev->uncollectable);
	if (ev->generation >= atomic_load_explicit(&h->ngen,
	    memory_order_relaxed))
		atomic_store_explicit(&h->ngen, ev->generation + 1u,
		    memory_order_relaxed);
	head = atomic_load_explicit(&h->head, memory_order_relaxed);
	tail = atomic_load_explicit(&h->tail, memory_order_acquire);
	if (head - tail >= h->ring_cap) {
		SHM_ADD(h->dropped, 1);
		return;
	}
	shm_ring_slots(h)[head & (h->ring_cap - 1)] = *ev;
	atomic_store_explicit(&h->head, head + 1, memory_order_release);
}

/* Publishes one stack before its event: 1 if it went in, 0 if the stack
 * ring was full (counted in stacks_dropped). */
static inline int shm_record_stack(struct shm_header *h,
    const struct shm_stack *st)
{
	uint64_t head, tail;

	head = atomic_load_explicit(&h->stack_head, memory_order_relaxed);
	tail = atomic_load_explicit(&h->stack_tail, memory_order_acquire);
	if (head - tail >= h->stack_cap) {
		SHM_ADD(h->stacks_dropped, 1);
		return 0;
	}
	((struct shm_stack *)((char *)h + h->stack_off))
	    [head & (h->stack_cap - 1)] = *st;
	atomic_store_explicit(&h->stack_head, head + 1, memory_order_release);
	return 1;
}

/* Publishes one request record: 1, or 0 when the ring is full (counted
 * in req_dropped). */
static inline int shm_record_request(struct shm_header *h,
    const struct shm_request *r)
{
	uint64_t head, tail;

	head = atomic_load_explicit(&h->req_head, memory_order_relaxed);
	tail = atomic_load_explicit(&h->req_tail, memory_order_acquire);
	if (head - tail >= h->req_cap) {
		SHM_ADD(h->req_dropped, 1);
		return 0;
	}
	((struct shm_request *)((char *)h + h->req_off))
	    [head & (h->req_cap - 1)] = *r;
	atomic_store_explicit(&h->req_head, head + 1, memory_order_release);
	return 1;
}

/* ---- consumer (gcmond; pure functions over memory) -------------------- */

/* A mark of the process's collections for a reading of its memory from
 * outside (smaps_rollup): SHM_GC_BUSY while one is in progress, else
 * its collection count. Taken before and after the reading, two equal
 * marks other than SHM_GC_BUSY say no collection ran during it, so it is
 * a "before" no collection has half-unshared. */
#define SHM_GC_BUSY		UINT64_MAX

static inline uint64_t shm_gc_mark(const struct shm_header *h)
{
	uint64_t n = 0;
	unsigned g;

	if (atomic_load_explicit(&h->gc_start_ns, memory_order_acquire) != 0)
		return SHM_GC_BUSY;
	for (g = 0; g < PROTO_MAX_GEN; g++)
		n += atomic_load_explicit(&h->gen[g].count,
		    memory_order_relaxed);
	return n == SHM_GC_BUSY ? n - 1 : n;
}

/* What the reader validated at attach; later reads are bounded by it. */
struct shm_info {
	size_t size;			/* bytes mapped */
	uint32_t pid, uid;
	uint64_t start_ticks;
	uint32_t hello_off, hello_len;
	uint32_t exit_off, exit_cap;
	uint32_t ring_off, ring_cap;
	uint32_t stack_off, stack_cap;
	uint32_t names_off, names_cap;
	uint32_t req_off, req_cap;
	uint32_t route_off, route_cap;
};

/* The counters and state copied out of a live area. */
struct shm_snapshot {
	uint32_t state;
	uint64_t head;
	uint64_t exit_mono_ns, exit_cpu_ns, exit_maxrss, exit_freeze_count;
	uint32_t exit_len;
	uint32_t exit_via;		/* enum shm_exit_via */
	int32_t exit_code;		/* with SHM_EXIT_OS_EXIT, 0..255 */
	uint32_t names_len;		/* clamped to names_cap by shm_names */
	uint64_t stacks_dropped;
	struct proto_counters counters;
};

/*
 * Copies the header out of map (size bytes) and validates it: magic,
 * version, sizes, every region within size and apart from the header,
 * the ring's capacity. 0: *out is valid; -EAGAIN: not complete yet (no
 * magic); -EPROTONOSUPPORT: another version; -EBADMSG: a field out of
 * bounds; -EMSGSIZE: size below the header or above SHM_MAX_SIZE.
 */
int shm_check(const void *map, size_t size, struct shm_info *out);
/* The HELLO frame: decodes the identity from a private copy (buf, of at
 * least in->hello_len bytes; h's strings point into it). 0 or codec's. */
int shm_read_hello(const void *map, const struct shm_info *in, uint8_t *buf,
    struct proto_hello *h);
/* Counters, state and head, copied out; the generation count clamped to
 * PROTO_MAX_GEN (at least 1). */
void shm_snapshot(const void *map, struct shm_snapshot *out);
/*
 * Copies up to max records from *tail up to head (a snapshot's) into out,
 * advances *tail and publishes it in the area. The count, or -EBADMSG when
 * head is behind *tail or more than ring_cap ahead of it (a broken or
 * hostile area: stop reading it). Records keep whatever the area held:
 * the caller validates each (shm_event_valid).
 */
int shm_drain(void *map, const struct shm_info *in, uint64_t head,
    uint64_t *tail, struct proto_event *out, uint32_t max);
/*
 * The stack of the event that started at start_ns (one flagged
 * PROTO_EVENT_HAS_STACK): skips older stacks (their events were refused),
 * copies it into *out, advances *tail and publishes it. 1: *out is it
 * (depth bounded, flags checked); 0: not there (the stack is newer or
 * the ring empty); -EBADMSG: indexes inconsistent, or a bad depth.
 */
int shm_drain_stack(void *map, const struct shm_info *in, uint64_t *tail,
    uint64_t start_ns, struct shm_stack *out);
/* The consumer's starting point in the stack ring at attach. */
uint64_t shm_start_stack_tail(const void *map, const struct shm_info *in);
/* A name record, decoded from a private copy. */
struct shm_name {
	uint32_t code_id, first_line;
	char file[SHM_NAME_MAX + 1];	/* NUL-terminated copies */
	char func[SHM_NAME_MAX + 1];
};
/*
 * The name record at *off of the names region, when *off < names_len
 * (a snapshot's, clamped by the reader to names_cap): 1 and *off moved
 * past it; 0 at names_len; -EBADMSG for a record out of bounds, an id of
 * 0 or >= SHM_CODES, or a length above SHM_NAME_MAX (stop reading names).
 */
int shm_next_name(const void *map, const struct shm_info *in,
    uint32_t names_len, uint32_t *off, struct shm_name *out);
/* 1 if a record copied out of an area can be believed. */
int shm_event_valid(const struct proto_event *e);
/* The consumer's starting point when it attaches: the area's tail, or
 * head - ring_cap if the tail is out of range. */
uint64_t shm_start_tail(const void *map, const struct shm_info *in,
    uint64_t head);
/* The request ring (version 3): the consumer's starting point at attach,
 * and up to max records from *tail to the head loaded now, copied into
 * out, *tail advanced and published, *dropped the area's req_dropped.
 * The count, or -EBADMSG when head is behind *tail or more than req_cap
 * ahead. head_max, when not 0, caps the head read (records published
 * later wait for the next drain). Each record is the caller's to check
 * (shm_request_valid). */
uint64_t shm_start_req_tail(const void *map, const struct shm_info *in);
uint64_t shm_req_head(const void *map);
int shm_drain_requests(void *map, const struct shm_info *in, uint64_t head,
    uint64_t *tail, struct shm_request *out, uint32_t max,
    uint64_t *dropped);
/* 1 if a request record copied out can be believed: a start (an empty
 * slot has none), end not before it, known flags, gc_ns not above the
 * interval, a status below 1000. */
int shm_request_valid(const struct shm_request *r);
/* Published route slots, clamped to route_cap. */
uint32_t shm_nroutes(const void *map, const struct shm_info *in);
/* Route id's name copied into buf (SHM_ROUTE_NAME_MAX + 1 bytes) and
 * NUL-terminated: its length, or -EBADMSG for a length out of bounds or a
 * NUL inside; -ENOENT for an id not below nroutes (or 0). */
int shm_route_name(const void *map, const struct shm_info *in,
    uint32_t nroutes, uint32_t id, char *buf);

/* Field 22 (starttime, clock ticks since boot) of a /proc/<pid>/stat
 * text of len bytes. 0 or -EINVAL. Also used by the agent on itself. */
int shm_parse_start_ticks(const char *stat, size_t len, uint64_t *ticks);
struct flock;
/* The area's liveness lock (SHM_LOCK_OFF, SHM_LOCK_LEN) as a write lock
 * into *fl: what the agent takes with F_SETLK and gcmond asks about with
 * F_GETLK. */
void shm_lock_range(struct flock *fl);
/* The cgroup of a /proc/<pid>/cgroup text of len bytes: the path of the
 * unified hierarchy's "0::" line unless it is the root "/" (a v1 or
 * hybrid host puts containers in the v1 controllers), else the first
 * path that is not the root, else the root, else "" (into
 * *path, *path_len; borrowed from text, not NUL-terminated). Also used by
 * the agent on itself. */
void shm_parse_cgroup_path(const char *text, size_t len, const char **path,
    size_t *path_len);

#endif /* GCMON_SHM_H */
