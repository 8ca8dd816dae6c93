/*
 * protocol.h: the frame format of gcmon, specified here; common/codec.c
 * implements it and nothing else may hand-craft frames. No I/O here.
 *
 * Where frames travel:
 *   - gcmond's SOCK_STREAM Unix socket, which is for control clients only
 *     (gcmonctl, the launcher): every frame there is CONTROL, and a peer
 *     whose first frame is anything else is cut off.
 *   - the shared area of a monitored process (common/shm.h, the
 *     specification of that transport): the agent's identity is a HELLO
 *     frame in it, and what it counted at exit is OBJECTS and GARBAGE
 *     frames in its exit area. The ring's records and the counters are
 *     native structs there (struct proto_event, struct proto_counters in
 *     codec.h), not frames.
 *
 * Every integer of a frame is little-endian and read byte by byte (never
 * cast a buffer to a struct). A stream is a sequence of frames; each
 * starts with the 8-byte header below.
 *
 *   offset size  field
 *   0      4     len      total frame length in bytes, header included
 *   4      2     type     enum proto_frame_type
 *   6      1     version  PROTO_VERSION
 *   7      1     flags    0 (reserved; a receiver ignores it)
 *
 * A frame shorter than the header or longer than PROTO_MAX_FRAME, of an
 * unknown or retired type or another version is a protocol error: the
 * receiver closes that one connection (or refuses that area). Payloads
 * are the concatenation of the fields listed with each type below, in
 * order, with no padding. A payload shorter than its fields say is an
 * error (-EBADMSG); bytes after the last field are an error too, so that
 * every byte is accounted for.
 *
 * Strings (STR): u32 byte length, then that many bytes of UTF-8, no NUL
 * inside and no terminator. A string longer than its cap, or not valid
 * UTF-8, is an error. The agent encodes undecodable bytes with
 * backslashreplace so it never has to write invalid UTF-8.
 *
 * Frame types and payloads:
 *
 * HELLO (agent -> gcmond, in the shared area; never on the socket):
 *   u32 pid, u32 ppid
 *   u64 start_mono_ns    CLOCK_MONOTONIC when the agent started in this
 *                        process; (pid, start_mono_ns) identifies it
 *   u64 clock_real_ns    CLOCK_REALTIME and
 *   u64 clock_mono_ns    CLOCK_MONOTONIC read back to back: converts event
 *                        times to wall-clock time
 *   u32 py_hexversion    sys.hexversion
 *   u8  origin           enum proto_origin
 *   u8  gc_model         enum proto_gc_model
 *   u16 hello_flags      PROTO_HELLO_*
 *   u32 reconnects       0, reserved (was: reconnects of the socket
 *                        transport); a reader ignores it
 *   u8  ngen             baseline and threshold entries (1..PROTO_MAX_GEN)
 *   ngen x {
 *     u64 collections    gc.get_stats() when counting began: collections
 *     u64 collected      that the agent did not see (start-up, or
 *     u64 uncollectable  inherited from the parent at fork)
 *     u32 threshold      gc.get_threshold() at start (0 if none)
 *   }
 *   STR run_id           (<= PROTO_MAX_ID)
 *   STR py_version       sys.version, first line (<= PROTO_MAX_STR)
 *   STR executable       sys.executable (<= PROTO_MAX_STR)
 *   u32 argc             (<= PROTO_MAX_ARGC)
 *   argc x STR argv      sys.argv (each <= PROTO_MAX_STR; all together
 *                        <= PROTO_MAX_ARGV bytes)
 *   STR service          only with PROTO_HELLO_SERVICE in hello_flags: the
 *                        service the program named (gcmon.start(service=)
 *                        or GCMON_SERVICE, <= PROTO_MAX_ID). Without the
 *                        flag the frame ends after argv, as it always did,
 *                        so an area of an older agent still decodes.
 *   only with PROTO_HELLO_PLACE in hello_flags: where the process runs, as
 *   it sees itself (gcmond judges the claims: shm.h, "Identity across
 *   namespaces"); an agent of version-2 areas never set the flag:
 *   u64 pidns_ino        inode and
 *   u64 pidns_dev        device of /proc/self/ns/pid, its PID namespace
 *                        (0 and 0: unknown)
 *   STR hostname         uname(2)'s nodename (<= PROTO_MAX_ID)
 *   STR cgroup           its cgroup: the path of /proc/self/cgroup's
 *                        "0::" line, else of its first (<= PROTO_MAX_STR)
 *   STR pod              Kubernetes' downward-API values from the
 *   STR pod_namespace    environment: GCMON_POD_NAME or POD_NAME, and
 *                        GCMON_POD_NAMESPACE or POD_NAMESPACE (each
 *                        <= PROTO_MAX_ID; empty: none)
 *   only with PROTO_HELLO_PRIOR in hello_flags (an area made by a start()
 *   after a gcmon.stop() in the same process, e.g. an attach after a
 *   detach): what the process's earlier areas reported in all, which the
 *   baseline includes; gcmond leaves it out of run and host totals so that
 *   each collection is counted once, and the rest of the baseline (the
 *   collections while no agent counted) is "before the agent loaded":
 *   ngen x {
 *     u64 collections
 *     u64 collected
 *     u64 uncollectable
 *   }
 *
 * OBJECTS, GARBAGE (agent -> gcmond, in the shared area's exit area, at a
 * clean exit, only when asked):
 *   u64 total            objects examined
 *   u32 n                (<= PROTO_MAX_TYPES)
 *   n x { u64 count, STR type_name (<= PROTO_MAX_ID) }
 *
 * CONTROL (client <-> gcmond, on the socket): the payload is one JSON
 * object, UTF-8, no terminator; its schema is in man/gcmonctl.1 (CONTROL
 * PROTOCOL).
 *
 * WATCH_EVENTS (gcmond -> a client whose `watch` request asked for
 * "events": "binary", on the socket; doc/control.md): the collections of
 * one drain in fixed-size records, in the order the JSON EVENT objects
 * would have come; every other streamed object (process_start,
 * process_end, alert, lost) stays a CONTROL frame, in order between them.
 *   u32 nrec             records (1..PROTO_WATCH_MAX_RECS)
 *   u32 rec_size         bytes a record (PROTO_WATCH_REC_SIZE..
 *                        PROTO_WATCH_REC_MAX): a reader reads the fields
 *                        below and skips the rest, so a later gcmond may
 *                        append fields without a new type
 *   nrec x {
 *     u32 pid
 *     u16 generation
 *     u8  gc_model       enum proto_gc_model of the process (the EVENT's
 *                        "label" is proto_gen_label(gc_model, generation))
 *     u8  rec_flags      PROTO_WATCH_* (unknown bits: ignored)
 *     u64 time_ns        CLOCK_REALTIME of the collection's start, Unix ns
 *                        (the EVENT's "time", in seconds)
 *     u64 pause_ns       the EVENT's "duration_ms", in ns
 *     u64 collector_ns   with PROTO_WATCH_COLLECTOR: its "collector_ms"
 *     u64 collected
 *     u32 uncollectable
 *     u32 reserved       0; a reader ignores it
 *   }
 * nrec x rec_size must be the rest of the payload exactly.
 *
 * Retired types 2 (EVENTS), 3 (SAMPLE) and 6 (BYE) were the agent's
 * frames on the socket before the shared area replaced it. Their numbers
 * stay reserved, never to be reused, and a frame of one of them is
 * refused like an unknown type (-ENOMSG), so an agent of that time is
 * turned away at its first frame with a clear error.
 *
 * PROTO_VERSION stays 1: the header, CONTROL and the three frames still
 * used are byte for byte what version 1 was; retiring types changed no
 * layout, and a peer that sends a retired type gets the unknown-type
 * error it would have had for any type it should not send. WATCH_EVENTS
 * (type 8) is an addition: gcmond sends it only to a client that asked
 * for it, and gcmond itself refuses it from a peer like any frame that is
 * not CONTROL.
 */
#ifndef GCMON_PROTOCOL_H
#define GCMON_PROTOCOL_H

#include <stdint.h>

#define PROTO_VERSION		1

#define PROTO_HDR_SIZE		8u
#define PROTO_MAX_FRAME		(4u << 20)	/* header included */
#define PROTO_MAX_GEN		8u		/* generations a frame may carry */
#define PROTO_MAX_STR		4096u		/* one string */
#define PROTO_MAX_ID		256u		/* run id, type name */
#define PROTO_MAX_ARGC		1024u
#define PROTO_MAX_ARGV		(64u << 10)	/* all argv strings together */
#define PROTO_MAX_TYPES		4096u
/* CONTROL requests (man/gcmonctl.1): the most bucket edges a "durations"
 * request gives ("le_ms"; the launcher's --buckets) and the largest edge
 * (an hour), and the longest "wait". Plain numbers, so that messages can
 * spell them (PROTO_STR); tests/unit/test_doc_facts.py checks the pages
 * that state them. */
#define PROTO_MAX_EDGES		32
#define PROTO_MAX_EDGE_MS	3600000
#define PROTO_WAIT_MAX_MS	60000
/* The pause that is slow unless told otherwise: gcmond's and the
 * launcher's --alert-threshold-ms, and the agent's stack threshold until
 * gcmond writes its own (shm.h). */
#define PROTO_PAUSE_THRESHOLD_MS	50
/* The percentile set every answer gives, and its keys in the answers'
 * JSON (man/gcmonctl.1): initialisers for gcmond's table (agg.h) and the
 * clients' reading of it. */
#define PROTO_NPCTS		4
#define PROTO_PCTS		{ 50.0, 90.0, 99.0, 99.9 }
#define PROTO_PCT_NAMES		{ "p50", "p90", "p99", "p99.9" }
#define PROTO_STR_(x)		#x
#define PROTO_STR(x)		PROTO_STR_(x)
/* Sizes of struct proto_event and struct proto_gen_counters (codec.h),
 * the shared area's ring slot and per-generation counters; shm.c asserts
 * them. */
#define PROTO_EVENT_SIZE	40u
#define PROTO_GEN_COUNTER_SIZE	40u

enum proto_frame_type {
	FRAME_HELLO = 1,
	/* 2 (EVENTS) and 3 (SAMPLE): retired, reserved */
	FRAME_OBJECTS = 4,
	FRAME_GARBAGE = 5,
	/* 6 (BYE): retired, reserved */
	FRAME_CONTROL = 7,
	FRAME_WATCH_EVENTS = 8,
	FRAME_TYPE_MAX = FRAME_WATCH_EVENTS
};

/* How the process came to be monitored. */
enum proto_origin {
	ORIGIN_ROOT = 0,	/* started by the launcher (or by hand) */
	ORIGIN_FORK = 1,	/* forked from a monitored process */
	ORIGIN_EXEC = 2		/* exec'd by a monitored process */
};

enum proto_gc_model {
	GC_MODEL_CLASSIC = 0,		/* three generations, 3.10-3.13 */
	GC_MODEL_INCREMENTAL = 1,	/* 3.14.0-3.14.4 */
	GC_MODEL_FREE_THREADED = 2	/* one generation, stop the world */
};

#define PROTO_HELLO_FREE_THREADED	0x0001u	/* Py_GIL_DISABLED build */
#define PROTO_HELLO_DEBUG_SAVEALL	0x0002u	/* --dump-garbage set it */
#define PROTO_HELLO_BASELINE_INHERITED	0x0004u	/* baseline came via fork */
#define PROTO_HELLO_SERVICE		0x0008u	/* a service name follows argv */
#define PROTO_HELLO_PLACE		0x0010u	/* namespace, cgroup... follow */
#define PROTO_HELLO_LOCKED		0x0020u	/* holds its area's lock (shm.h) */
#define PROTO_HELLO_PRIOR		0x0040u	/* earlier areas' totals follow */

/* WATCH_EVENTS records: the fields read, and the most a record may be. */
#define PROTO_WATCH_REC_SIZE	48u
#define PROTO_WATCH_REC_MAX	256u
#define PROTO_WATCH_MAX_RECS	((PROTO_MAX_FRAME - PROTO_HDR_SIZE - 8u) / \
				    PROTO_WATCH_REC_SIZE)
#define PROTO_WATCH_COLLECTOR	0x01u	/* rec_flags: collector_ns is set */

/* struct proto_event.flags */
#define PROTO_EVENT_HAS_COLLECTOR_NS	0x0001u	/* collector_ns is set */
#define PROTO_EVENT_HAS_STACK		0x0002u	/* the next stack of the area's stack ring is its own (shm.h) */

#endif /* GCMON_PROTOCOL_H */
