/*
 * protocol.h: the wire format between the gcmon agent and gcmond, and
 * between gcmond and its control clients. This header is the
 * specification; common/codec.c implements it and nothing else may
 * hand-craft frames. No I/O here.
 *
 * Transport: a SOCK_STREAM Unix socket. Every integer is little-endian
 * and read byte by byte (never cast a buffer to a struct). A stream is a
 * sequence of frames; each starts with the 8-byte header below.
 *
 *   offset size  field
 *   0      4     len      total frame length in bytes, header included
 *   4      2     type     enum proto_frame_type
 *   6      1     version  PROTO_VERSION
 *   7      1     flags    0 (reserved; a receiver ignores it)
 *
 * A frame shorter than the header or longer than PROTO_MAX_FRAME, of an
 * unknown type or another version is a protocol error: the receiver
 * closes that one connection. Payloads are the concatenation of the
 * fields listed with each type below, in order, with no padding. A
 * payload shorter than its fields say is an error (-EBADMSG); bytes after
 * the last field are an error too, so that every byte is accounted for.
 *
 * Strings (STR): u32 byte length, then that many bytes of UTF-8, no NUL
 * inside and no terminator. A string longer than its cap, or not valid
 * UTF-8, is an error. The agent encodes undecodable bytes with
 * backslashreplace so it never has to send invalid UTF-8.
 *
 * Counters block (COUNTERS), sent in EVENTS and BYE:
 *   u64 dropped          events lost to a full ring since the process
 *                        started (cumulative; detail lost, totals kept)
 *   u8  ngen             number of generation entries that follow
 *                        (1..PROTO_MAX_GEN)
 *   ngen x {             cumulative since the agent started in this
 *                        process (a forked child starts at zero)
 *     u64 count          collections seen by the callback
 *     u64 pause_ns       sum of pauses
 *     u64 max_pause_ns   largest pause
 *     u64 collected      objects collected
 *     u64 uncollectable  objects found uncollectable
 *   }
 * The counters are cumulative, so a receiver keeps the last block it saw;
 * a lost frame or a reconnect loses event detail, never totals.
 *
 * Frame types and payloads:
 *
 * HELLO (agent -> daemon, first frame of an agent connection; sent again
 * on every reconnect with the same identity):
 *   u32 pid, u32 ppid
 *   u64 start_mono_ns    CLOCK_MONOTONIC when the agent started in this
 *                        process; (pid, start_mono_ns) identifies a
 *                        process across reconnects
 *   u64 clock_real_ns    CLOCK_REALTIME and
 *   u64 clock_mono_ns    CLOCK_MONOTONIC read back to back: converts event
 *                        times to wall-clock time
 *   u32 py_hexversion    sys.hexversion
 *   u8  origin           enum proto_origin
 *   u8  gc_model         enum proto_gc_model
 *   u16 hello_flags      PROTO_HELLO_*
 *   u32 reconnects       0 on the first connection, then +1 each time
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
 *
 * EVENTS (agent -> daemon):
 *   COUNTERS             as of the last record in this frame
 *   u32 nrec             (<= PROTO_MAX_EVENTS)
 *   nrec x record        PROTO_EVENT_SIZE bytes each:
 *     u64 start_ns       CLOCK_MONOTONIC at the "start" callback
 *     u64 pause_ns       "stop" minus "start"
 *     u64 collector_ns   the collector's own "duration" (3.15+), else 0
 *     u64 collected
 *     u32 uncollectable
 *     u16 generation     a small integer; never assume three
 *     u16 event_flags    PROTO_EVENT_*
 *
 * SAMPLE (agent -> daemon, every --interval):
 *   u64 mono_ns, u64 rss_bytes, u64 cpu_user_ns, u64 cpu_sys_ns
 *
 * OBJECTS, GARBAGE (agent -> daemon, at exit, only when asked):
 *   u64 total            objects examined
 *   u32 n                (<= PROTO_MAX_TYPES)
 *   n x { u64 count, STR type_name (<= PROTO_MAX_ID) }
 *
 * BYE (agent -> daemon, at interpreter exit; the connection then closes):
 *   u64 mono_ns
 *   COUNTERS             final
 *
 * CONTROL (client <-> daemon): the payload is one JSON object, UTF-8, no
 * terminator; its schema is in man/gcmonctl.1 (CONTROL PROTOCOL). A
 * connection whose first frame is CONTROL is a control connection.
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
#define PROTO_EVENT_SIZE	40u
#define PROTO_GEN_COUNTER_SIZE	40u
#define PROTO_MAX_EVENTS \
	((PROTO_MAX_FRAME - PROTO_HDR_SIZE - 64u - PROTO_MAX_GEN * \
	  PROTO_GEN_COUNTER_SIZE) / PROTO_EVENT_SIZE)

enum proto_frame_type {
	FRAME_HELLO = 1,
	FRAME_EVENTS,
	FRAME_SAMPLE,
	FRAME_OBJECTS,
	FRAME_GARBAGE,
	FRAME_BYE,
	FRAME_CONTROL,
	FRAME_TYPE_MAX = FRAME_CONTROL
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

#define PROTO_EVENT_HAS_COLLECTOR_NS	0x0001u

#endif /* GCMON_PROTOCOL_H */
